//! The worker side: the app's own executable started with [`WORKER_FLAG`] parses one file and
//! exits. It caps its own address space first (`RLIMIT_AS`), so an allocation bomb ends in an
//! allocation failure inside the worker, which the parent reports as
//! [`crate::IngestError::MemoryLimit`]. Parsing runs on a thread with a large stack so deeply
//! nested but legitimate documents do not overflow; hostile nesting still ends the worker,
//! never the app.

use crate::protocol::{MAX_REQUEST_FRAME, WorkerEvent, WorkerRequest, read_frame, write_frame};
use crate::{IngestError, PARSER_STACK_BYTES, ingest_bytes};
use std::io::Read;
use std::process::ExitCode;

/// The first argument that turns an executable into an ingest worker.
pub const WORKER_FLAG: &str = "--cria-ingest-worker";

/// Call first thing in `main` of every binary that uses [`crate::IngestClient`]: when the
/// process was started as a worker this runs the worker and returns its exit code (return it
/// from `main`); otherwise it returns `None` at once.
pub fn worker_main_if_requested() -> Option<ExitCode> {
    let first = std::env::args_os().nth(1)?;
    if first != WORKER_FLAG {
        return None;
    }
    Some(run_worker())
}

fn run_worker() -> ExitCode {
    let mut stdin = std::io::stdin().lock();
    let request: WorkerRequest = match read_frame(&mut stdin, MAX_REQUEST_FRAME) {
        Ok(Some(request)) => request,
        Ok(None) => return ExitCode::from(2),
        Err(error) => {
            eprintln!("cria ingest worker: bad request: {error}");
            return ExitCode::from(2);
        }
    };
    set_memory_cap(request.options.limits.worker_memory_bytes);
    let parser = std::thread::Builder::new()
        .name("cria-ingest-parser".into())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || parse(request));
    let event = match parser.map(std::thread::JoinHandle::join) {
        Ok(Ok(event)) => event,
        Ok(Err(_panic)) => WorkerEvent::Failed(IngestError::Corrupt {
            kind: "document".into(),
            detail: "the parser failed on malformed content (it panicked)".into(),
        }),
        Err(error) => WorkerEvent::Failed(IngestError::Worker {
            detail: format!("could not start the parser thread: {error}"),
        }),
    };
    match write_frame(&mut std::io::stdout().lock(), &event) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cria ingest worker: could not send the result: {error}");
            ExitCode::from(4)
        }
    }
}

/// Caps the worker's address space. Where the platform refuses (or has no `RLIMIT_AS`, as on
/// Windows) parsing still runs, bounded by the parent's timeout and the decoded-byte caps; the
/// reason goes to stderr, which the parent keeps for crash reports.
fn set_memory_cap(bytes: u64) {
    #[cfg(unix)]
    if let Err(error) = rlimit::setrlimit(rlimit::Resource::AS, bytes, bytes) {
        eprintln!("cria ingest worker: memory cap not set: {error}");
    }
    #[cfg(not(unix))]
    let _ = bytes;
}

fn parse(request: WorkerRequest) -> WorkerEvent {
    let bytes = match read_capped(&request) {
        Ok(bytes) => bytes,
        Err(error) => return WorkerEvent::Failed(error),
    };
    let mut send_progress = |progress| {
        // A parent that stopped listening will kill us; nothing to do about a failed write.
        let _ = write_frame(
            &mut std::io::stdout().lock(),
            &WorkerEvent::Progress(progress),
        );
    };
    match ingest_bytes(
        &bytes,
        request.file_name.as_deref(),
        &request.options,
        &mut send_progress,
    ) {
        Ok(document) => WorkerEvent::Done(Box::new(document)),
        Err(error) => WorkerEvent::Failed(error),
    }
}

/// Reads the file, refusing more than `max_input_bytes` even if it grew after the parent
/// looked at its size.
fn read_capped(request: &WorkerRequest) -> crate::Result<Vec<u8>> {
    let io_error = |error: std::io::Error| IngestError::Io {
        path: request.path.display().to_string(),
        message: error.to_string(),
    };
    let limit = request.options.limits.max_input_bytes;
    let file = std::fs::File::open(&request.path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > limit {
        return Err(IngestError::TooLarge {
            what: "the file".into(),
            actual: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}
