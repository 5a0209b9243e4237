//! PostgreSQL: creating the database, pooling, migrations.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates the database named in `url` if it does not exist yet.
pub async fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
    let opts = PgConnectOptions::from_str(url).context("parse DATABASE_URL")?;
    let name = opts.get_database().unwrap_or("postgres").to_owned();
    let mut admin = opts
        .clone()
        .database("postgres")
        .connect()
        .await
        .context("connect to the postgres maintenance database")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        if let Err(e) = sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut admin)
            .await
        {
            // Another process created it between our check and our create.
            let raced = matches!(&e, sqlx::Error::Database(db)
                if db.code().as_deref() == Some("42P04") || db.code().as_deref() == Some("23505"));
            if !raced {
                return Err(e).context("create database");
            }
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// A pool for `url`.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let opts = PgConnectOptions::from_str(url)
        .context("parse DATABASE_URL")?
        .disable_statement_logging()
        // `CREATE … IF NOT EXISTS` notices are not worth a log line.
        .options([("client_min_messages", "warning")]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await
        .context("connect to PostgreSQL")
}

/// Creates the database if needed, connects, and applies migrations.
pub async fn prepare(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    create_database_if_missing(url).await?;
    let pool = connect(url, max_connections).await?;
    MIGRATOR.run(&pool).await.context("apply migrations")?;
    Ok(pool)
}

/// Whether every embedded migration has been applied.
pub async fn migrations_applied(pool: &PgPool) -> anyhow::Result<bool> {
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    Ok(applied as usize >= MIGRATOR.iter().count())
}
