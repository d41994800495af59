//! One integration-test binary (fast to link, shared helpers); each feature is a module.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod architecture;
mod chat_context;
mod chat_turns;
mod cli;
mod engine;
mod gpu;
mod ingest;
mod security_config;
mod store_crash;
