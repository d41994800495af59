//! A host for the engine worker, so integration tests can start real workers
//! (`env!("CARGO_BIN_EXE_cria-worker-host")`) without building the app or the CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    cria_engine::worker_main_if_requested().unwrap_or_else(|| {
        eprintln!(
            "cria-worker-host only runs as an engine worker (started with {})",
            cria_engine::WORKER_FLAG
        );
        ExitCode::from(2)
    })
}
