//! One integration-test binary (fast to link, shared helpers); each feature is a module.

mod architecture;
mod ingest;
mod security_config;
