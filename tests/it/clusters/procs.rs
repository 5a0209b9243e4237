//! Throwaway clusters on loopback: three nats-server processes forming a
//! JetStream cluster, and three redis-server processes made a Redis Cluster
//! with `redis-cli --cluster create`. Each lives in a temporary directory
//! and is killed (and removed) on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::Rng;
use uuid::Uuid;

fn temp_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb{kind}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bindable(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A port that is free, and whose `+ offset` (a cluster bus) is free too.
fn free_pair(offset: u16) -> u16 {
    let mut rng = rand::thread_rng();
    loop {
        let p = rng.gen_range(20_000..45_000);
        if bindable(p) && bindable(p + offset) {
            return p;
        }
    }
}

fn wait_port(port: u16) {
    for _ in 0..250 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

fn binary(name: &str) -> String {
    ["/usr/sbin/", "/usr/bin/", "/usr/local/bin/"]
        .iter()
        .map(|d| format!("{d}{name}"))
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| name.to_owned())
}

fn log_to(path: PathBuf) -> Stdio {
    std::fs::File::create(path)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

/// Three JetStream servers routed to each other.
pub struct NatsCluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    children: Vec<Option<Child>>,
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let dir = temp_dir("natscl");
        let ports: Vec<u16> = (0..3).map(|_| free_pair(2000)).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{}", p + 2000))
            .collect();
        let mut children = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let conf = dir.join(format!("n{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{port}\n\
                     jetstream {{ store_dir: \"{store}\" }}\n\
                     cluster {{ name: sbtest\n  listen: 127.0.0.1:{route}\n  routes: [{routes}] }}\n",
                    store = dir.join(format!("js{i}")).display(),
                    route = port + 2000,
                    routes = routes.join(", "),
                ),
            )
            .unwrap();
            let child = Command::new(binary("nats-server"))
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(log_to(dir.join(format!("n{i}.log"))))
                .spawn()
                .expect("start nats-server");
            children.push(Some(child));
        }
        for p in &ports {
            wait_port(*p);
        }
        NatsCluster {
            ports,
            dir,
            children,
        }
    }

    /// Every server, comma-separated, as NATS_URL takes them.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until JetStream has a meta leader (the cluster formed).
    pub async fn ready(&self) {
        let client = async_nats::connect(self.url().split(',').collect::<Vec<_>>())
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        for _ in 0..300 {
            if js.query_account().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the JetStream cluster never formed: {}", self.logs());
    }

    /// SIGKILLs server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn logs(&self) -> String {
        (0..3)
            .map(|i| {
                std::fs::read_to_string(self.dir.join(format!("n{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three Redis masters sharing the 16,384 slots.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    children: Vec<Child>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let dir = temp_dir("rediscl");
        // Redis Cluster's bus listens on port + 10000.
        let ports: Vec<u16> = (0..3).map(|_| free_pair(10_000)).collect();
        let mut children = Vec::new();
        for port in &ports {
            let child = Command::new(binary("redis-server"))
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .arg("--cluster-config-file")
                .arg(dir.join(format!("nodes-{port}.conf")))
                .arg("--dir")
                .arg(&dir)
                .args(["--save", "", "--appendonly", "no"])
                .stdout(log_to(dir.join(format!("{port}.log"))))
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            children.push(child);
        }
        for p in &ports {
            wait_port(*p);
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new(binary("redis-cli"))
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster {
            ports,
            dir,
            children,
        };
        for p in &cluster.ports {
            for attempt in 0.. {
                if cluster
                    .cli(*p, &["cluster", "info"])
                    .contains("cluster_state:ok")
                {
                    break;
                }
                assert!(attempt < 250, "the Redis Cluster never became ok");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        cluster
    }

    /// The seed list REDIS_URL takes with `--redis-cluster`.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `redis-cli -p port args…`, its output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new(binary("redis-cli"))
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Keys held by each node.
    pub fn sizes(&self) -> Vec<u64> {
        self.ports
            .iter()
            .map(|p| self.cli(*p, &["dbsize"]).trim().parse().unwrap_or(0))
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
