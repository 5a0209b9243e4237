//! Switchboard: an event-sourced telephony control plane.
//!
//! Each role (gateway, relay, projectors, originate worker) is a library
//! function; `switchboard serve` composes them in one process, and the other
//! subcommands run one each. See ARCHITECTURE.md for the codemap.

pub mod app;
pub mod audit;
pub mod auth;
pub mod callproc;
pub mod caps;
pub mod carrier;
pub mod checkpoint;
pub mod cli;
pub mod client;
pub mod clock;
pub mod commands;
pub mod config;
pub mod db;
pub mod domain;
pub mod gateway;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod namespace;
pub mod projection;
pub mod redis_conn;
pub mod relay;
pub mod roles;
pub mod secrets;
pub mod store;
pub mod supervisor;
pub mod turns;
pub mod worker;
pub mod write;
