//! The app side: [`IngestClient`] parses each file in a fresh worker process and turns every
//! way a worker can fail into an [`IngestError`].
//!
//! A worker gets one file. The parent enforces the wall-clock limit (the worker is killed at
//! `timeout_seconds`), honours [`CancelFlag`] within ~50 ms, forwards [`Progress`] events, and
//! keeps the last 4 KiB of the worker's stderr for crash reports. A worker that dies without a
//! result (stack overflow, allocation failure under its memory cap, a signal) is reported as
//! [`IngestError::MemoryLimit`] or [`IngestError::WorkerCrashed`]; the app carries on.

use crate::protocol::{MAX_EVENT_FRAME, WorkerEvent, WorkerRequest, read_frame, write_frame};
use crate::{IngestError, IngestOptions, IngestedDocument, Result, WORKER_FLAG};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much of the worker's stderr a crash report keeps.
const STDERR_TAIL_BYTES: usize = 4096;
/// How often the parent checks the deadline and the cancel flag.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How far a long document has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done_pages: u32,
    pub total_pages: u32,
}

/// Set from any thread to stop an ingest in progress; the worker is killed.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Runs ingest workers. Cheap to clone; holds no process between calls.
#[derive(Debug, Clone)]
pub struct IngestClient {
    worker_program: PathBuf,
    worker_args: Vec<OsString>,
}

impl IngestClient {
    /// A client whose workers are this executable re-run with [`WORKER_FLAG`].
    pub fn new() -> Result<Self> {
        let program = std::env::current_exe().map_err(|error| IngestError::Worker {
            detail: format!("cannot find the app's own executable: {error}"),
        })?;
        Ok(Self::with_worker_program(program))
    }

    /// A client whose workers are `program` started with [`WORKER_FLAG`] (the program must
    /// call [`crate::worker_main_if_requested`]).
    pub fn with_worker_program(program: impl Into<PathBuf>) -> Self {
        Self {
            worker_program: program.into(),
            worker_args: vec![OsString::from(WORKER_FLAG)],
        }
    }

    pub fn ingest(&self, path: &Path, options: &IngestOptions) -> Result<IngestedDocument> {
        self.ingest_with(path, options, &CancelFlag::new(), &mut |_| {})
    }

    /// Like [`Self::ingest`], reporting progress and stopping when `cancel` is set.
    pub fn ingest_with(
        &self,
        path: &Path,
        options: &IngestOptions,
        cancel: &CancelFlag,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<IngestedDocument> {
        let io_error = |error: std::io::Error| IngestError::Io {
            path: path.display().to_string(),
            message: error.to_string(),
        };
        let size = std::fs::metadata(path).map_err(io_error)?.len();
        if size > options.limits.max_input_bytes {
            return Err(IngestError::TooLarge {
                what: "the file".into(),
                actual: size,
                limit: options.limits.max_input_bytes,
            });
        }
        let absolute = std::path::absolute(path).map_err(io_error)?;
        let request = WorkerRequest {
            path: absolute,
            file_name: path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned()),
            options: options.clone(),
        };
        let stream_cap_mib = (options.limits.max_stream_bytes / (1024 * 1024)).max(1);
        let child = Command::new(&self.worker_program)
            .args(&self.worker_args)
            .env("PDF_OXIDE_MAX_DECOMPRESS_MB", stream_cap_mib.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| IngestError::Worker {
                detail: format!("cannot start {}: {error}", self.worker_program.display()),
            })?;
        let mut worker = WorkerGuard(child);
        run_worker(&mut worker, &request, options, cancel, on_progress)
    }
}

/// Kills the worker however the parent leaves (error, panic, early return).
struct WorkerGuard(Child);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_worker(
    worker: &mut WorkerGuard,
    request: &WorkerRequest,
    options: &IngestOptions,
    cancel: &CancelFlag,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<IngestedDocument> {
    let broken = |detail: String| IngestError::Worker { detail };
    let mut stdin = worker
        .0
        .stdin
        .take()
        .ok_or_else(|| broken("no stdin pipe".into()))?;
    let mut stdout = worker
        .0
        .stdout
        .take()
        .ok_or_else(|| broken("no stdout pipe".into()))?;
    let mut stderr = worker
        .0
        .stderr
        .take()
        .ok_or_else(|| broken("no stderr pipe".into()))?;

    let stderr_tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    let stderr_sink = Arc::clone(&stderr_tail);
    let stderr_thread = std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(read) = stderr.read(&mut buffer) {
            if read == 0 {
                break;
            }
            if let Ok(mut tail) = stderr_sink.lock() {
                tail.extend_from_slice(&buffer[..read]);
                let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
                tail.drain(..excess);
            }
        }
    });

    let (events, received) = mpsc::channel::<std::io::Result<WorkerEvent>>();
    let reader_thread = std::thread::spawn(move || {
        loop {
            match read_frame::<WorkerEvent>(&mut stdout, MAX_EVENT_FRAME) {
                Ok(Some(event)) => {
                    let last = !matches!(event, WorkerEvent::Progress(_));
                    if events.send(Ok(event)).is_err() || last {
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    let _ = events.send(Err(error));
                    break;
                }
            }
        }
    });

    // A worker that dies before reading its request makes this write fail; the exit status
    // collected below explains why better than the broken pipe does.
    let _ = write_frame(&mut stdin, request);
    drop(stdin);

    let timeout = Duration::from_secs(options.limits.timeout_seconds.max(1));
    let deadline = Instant::now() + timeout;
    let outcome = loop {
        if cancel.is_cancelled() {
            break Some(Err(IngestError::Cancelled));
        }
        let now = Instant::now();
        if now >= deadline {
            break Some(Err(IngestError::Timeout {
                seconds: timeout.as_secs(),
            }));
        }
        match received.recv_timeout(POLL_INTERVAL.min(deadline - now)) {
            Ok(Ok(WorkerEvent::Progress(progress))) => on_progress(progress),
            Ok(Ok(WorkerEvent::Done(document))) => break Some(Ok(*document)),
            Ok(Ok(WorkerEvent::Failed(error))) => break Some(Err(error)),
            Ok(Err(error)) => break Some(Err(broken(format!("unreadable reply: {error}")))),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break None,
        }
    };
    if matches!(
        outcome,
        Some(Err(IngestError::Timeout { .. }
            | IngestError::Cancelled
            | IngestError::Worker { .. }))
    ) {
        // The worker may still be busy: stop it before waiting for it.
        let _ = worker.0.kill();
    }
    let status = worker.0.wait();
    let _ = reader_thread.join();
    let _ = stderr_thread.join();
    if let Some(outcome) = outcome {
        return outcome;
    }
    let tail = stderr_tail
        .lock()
        .map(|tail| String::from_utf8_lossy(&tail).trim().to_string())
        .unwrap_or_default();
    let status = match status {
        Ok(status) => describe_status(status),
        Err(error) => format!("unknown status: {error}"),
    };
    if tail.contains("memory allocation of") || tail.contains("out of memory") {
        return Err(IngestError::MemoryLimit {
            limit_bytes: options.limits.worker_memory_bytes,
        });
    }
    Err(IngestError::WorkerCrashed {
        status,
        stderr_tail: tail,
    })
}

fn describe_status(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                6 => "SIGABRT",
                9 => "SIGKILL",
                11 => "SIGSEGV",
                7 => "SIGBUS",
                _ => "signal",
            };
            return format!("killed by {name} ({signal})");
        }
    }
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => "terminated".into(),
    }
}
