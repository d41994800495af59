//! A stand-in for the app's executable in ingest tests: it only runs the ingest worker, so
//! tests can check that a hostile file costs the worker and never the test process.

use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(code) = cria_ingest::worker_main_if_requested() {
        return code;
    }
    eprintln!(
        "cria-ingest-host: run by the ingest tests with {}",
        cria_ingest::WORKER_FLAG
    );
    ExitCode::from(2)
}
