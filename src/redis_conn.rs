//! The connection to Redis: one server, or a Redis Cluster.
//!
//! Everything Switchboard keeps in Redis is one tenant's cost caps, every
//! key of a tenant under one hash tag (`{<tenant>}`), and every script
//! touches one tenant's keys only: so each script runs on the one node that
//! owns that slot, and the same scripts work on both. `redis::Script`
//! answers NOSCRIPT (a restarted or failed-over node) by loading the script,
//! which on a cluster is sent to every primary, and trying again.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A cloneable, reconnecting connection to Redis or to a Redis Cluster.
// Not boxed: it is cloned for every script call, and a box would allocate
// on each clone of the common (single-server) case.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// `urls` is one `redis://` URL, or with `cluster` a comma-separated
    /// list of seed nodes (one is enough; the rest are found from it).
    pub async fn connect(urls: &str, cluster: bool) -> redis::RedisResult<RedisConn> {
        if cluster {
            let seeds: Vec<&str> = urls
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let client = redis::cluster::ClusterClient::new(seeds)?;
            return Ok(RedisConn::Cluster(client.get_async_connection().await?));
        }
        let client = redis::Client::open(urls)?;
        Ok(RedisConn::Single(ConnectionManager::new(client).await?))
    }
}

impl From<ConnectionManager> for RedisConn {
    fn from(c: ConnectionManager) -> RedisConn {
        RedisConn::Single(c)
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
