//! The supervisor: [`EngineHandle`] starts the worker process, talks to it, and survives it.
//!
//! Contract: one request runs at a time (requests queue on an async mutex). A worker that
//! dies is reported once, as [`EngineError::Crashed`] classified from its exit status and
//! the tail of its stderr (llama.cpp's log), with the text streamed so far; the next request
//! starts a fresh worker and reloads the last model. Model files are validated before the
//! worker is asked to load them, so a malformed file is a typed error, not a crash.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Mutex, mpsc};

use crate::protocol::{
    BenchRequest, BenchResult, Frame, PROTOCOL_VERSION, WorkerEvent, WorkerRequest,
    read_frame_async,
};
use crate::worker::{ALLOW_TEST_ABORT_ENV, WORKER_FLAG};
use crate::{
    BoxFuture, CancelToken, ChatMessage, CrashKind, DeviceInfo, Engine, EngineError, GenerateEvent,
    GenerateOutcome, GenerateRequest, LoadOptions, ModelInfo, Result,
};

const STDERR_TAIL_LINES: usize = 40;
const CANCEL_POLL: Duration = Duration::from_millis(10);
/// Lines at the end of the worker's log that explain its death.
const CLASSIFY_LINES: usize = 12;

/// How to start the worker.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// The executable to run with the worker flag; by default this one.
    pub program: PathBuf,
    /// How long a starting worker may take to say it is ready.
    pub ready_timeout: Duration,
    /// Extra environment for the worker.
    pub env: Vec<(OsString, OsString)>,
    /// Lets tests make the worker abort on purpose ([`EngineHandle::inject_test_abort`]).
    pub allow_test_abort: bool,
}

impl SupervisorOptions {
    /// Runs the current executable as the worker.
    pub fn current_exe() -> Result<Self> {
        let program = std::env::current_exe().map_err(|error| {
            EngineError::WorkerStart(format!("cannot find the running executable: {error}"))
        })?;
        Ok(Self::program(program))
    }

    pub fn program(program: impl Into<PathBuf>) -> Self {
        SupervisorOptions {
            program: program.into(),
            ready_timeout: Duration::from_secs(30),
            env: Vec::new(),
            allow_test_abort: false,
        }
    }
}

/// The llama.cpp engine as seen from the app: cheap to clone, all clones share one worker.
#[derive(Clone)]
pub struct EngineHandle {
    options: Arc<SupervisorOptions>,
    state: Arc<Mutex<State>>,
    test_abort: Arc<AtomicBool>,
    /// How far the model being loaded is (`None`: no load running), for every load: chosen
    /// by the user, started by a reply, or reloading after a crash.
    load_progress: Arc<tokio::sync::watch::Sender<Option<f32>>>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle")
            .field("program", &self.options.program)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    worker: Option<Worker>,
    /// Reloaded into a fresh worker after a crash.
    load: Option<LoadOptions>,
    next_generation_id: u64,
    workers_started: u32,
    /// A request whose caller stopped waiting (its future was dropped) before the worker's
    /// final answer arrived; that answer must be drained before the next request.
    abandoned: Option<Abandoned>,
}

struct Abandoned {
    generation_id: Option<u64>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    /// Fed by a task that owns stdout, so waiting for an event is cancel-safe.
    events: mpsc::UnboundedReceiver<Result<Option<WorkerEvent>>>,
    stderr_tail: Arc<StdMutex<VecDeque<String>>>,
    stderr_done: tokio::task::JoinHandle<()>,
}

impl EngineHandle {
    /// A handle that starts the worker on first use.
    pub fn new(options: SupervisorOptions) -> Self {
        EngineHandle {
            options: Arc::new(options),
            state: Arc::new(Mutex::new(State::default())),
            test_abort: Arc::new(AtomicBool::new(false)),
            load_progress: Arc::new(tokio::sync::watch::Sender::new(None)),
        }
    }

    /// Follows model loads: `Some(fraction)` of the weights read while one runs, `None`
    /// otherwise.
    pub fn load_progress(&self) -> tokio::sync::watch::Receiver<Option<f32>> {
        self.load_progress.subscribe()
    }

    /// Validates the model (and projector) files, then loads them in the worker, replacing
    /// any loaded model. Remembered for restarts after a crash.
    pub async fn load(&self, options: LoadOptions) -> Result<ModelInfo> {
        validate_model_file(&options.model_path, ModelRole::Text)?;
        if let Some(mmproj) = &options.mmproj_path {
            validate_model_file(mmproj, ModelRole::Projector)?;
        }
        let mut state = self.state.lock().await;
        state.load = None;
        let info = self.load_locked(&mut state, &options).await?;
        state.load = Some(options);
        Ok(info)
    }

    /// Frees the model; the worker keeps running.
    pub async fn unload(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        state.load = None;
        self.settle_abandoned(&mut state).await;
        if state.worker.is_none() {
            return Ok(());
        }
        match self.round_trip(&mut state, WorkerRequest::Unload).await? {
            WorkerEvent::Unloaded => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// The loaded model, if any.
    pub async fn status(&self) -> Result<Option<ModelInfo>> {
        let mut state = self.state.lock().await;
        self.ensure_worker(&mut state).await?;
        match self.round_trip(&mut state, WorkerRequest::Status).await? {
            WorkerEvent::Status { loaded } => Ok(loaded),
            other => Err(unexpected(&other)),
        }
    }

    /// The compute devices llama.cpp sees in the worker.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let mut state = self.state.lock().await;
        self.ensure_worker(&mut state).await?;
        match self.round_trip(&mut state, WorkerRequest::Devices).await? {
            WorkerEvent::Devices { devices } => Ok(devices),
            other => Err(unexpected(&other)),
        }
    }

    /// Measures prompt processing and generation speed on the loaded model.
    pub async fn bench(&self, bench: BenchRequest) -> Result<BenchResult> {
        let mut state = self.state.lock().await;
        self.ensure_worker(&mut state).await?;
        match self
            .round_trip(&mut state, WorkerRequest::Bench(bench))
            .await?
        {
            WorkerEvent::BenchResult(result) => Ok(result),
            other => Err(unexpected(&other)),
        }
    }

    /// The prompt the loaded model's chat template makes of `messages` (images appear as
    /// media markers): for checking templates.
    pub async fn render_prompt(&self, messages: Vec<ChatMessage>) -> Result<String> {
        let mut state = self.state.lock().await;
        self.ensure_worker(&mut state).await?;
        match self
            .round_trip(&mut state, WorkerRequest::Render { messages })
            .await?
        {
            WorkerEvent::Rendered { prompt } => Ok(prompt),
            other => Err(unexpected(&other)),
        }
    }

    /// How many worker processes this handle has started (1 until a crash).
    pub async fn workers_started(&self) -> u32 {
        self.state.lock().await.workers_started
    }

    /// Test only: asks the worker to abort in the middle of the running (or next)
    /// generation. Works only with [`SupervisorOptions::allow_test_abort`].
    pub fn inject_test_abort(&self) {
        self.test_abort.store(true, Ordering::SeqCst);
    }

    /// Stops the worker (closing its stdin, then killing it if it lingers).
    pub async fn shutdown(&self) {
        let mut state = self.state.lock().await;
        if let Some(worker) = state.worker.take() {
            let Worker {
                mut child, stdin, ..
            } = worker;
            drop(stdin);
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    async fn load_locked(&self, state: &mut State, options: &LoadOptions) -> Result<ModelInfo> {
        self.ensure_worker(state).await?;
        self.load_in_worker(state, options).await
    }

    /// Asks the running worker to load a model, passing its progress on.
    async fn load_in_worker(&self, state: &mut State, options: &LoadOptions) -> Result<ModelInfo> {
        self.load_progress.send_replace(Some(0.0));
        let answer = self
            .round_trip_with(state, WorkerRequest::Load(options.clone()), |event| {
                let WorkerEvent::LoadProgress { fraction } = event else {
                    return false;
                };
                self.load_progress.send_replace(Some(*fraction));
                true
            })
            .await;
        self.load_progress.send_replace(None);
        match answer? {
            WorkerEvent::Loaded(info) => Ok(info),
            other => Err(unexpected(&other)),
        }
    }

    /// Starts a worker if none is running, reloading the last model into it.
    async fn ensure_worker(&self, state: &mut State) -> Result<()> {
        self.settle_abandoned(state).await;
        if let Some(worker) = &mut state.worker
            && matches!(worker.child.try_wait(), Ok(None))
        {
            return Ok(());
        }
        state.worker = Some(self.spawn().await?);
        state.workers_started += 1;
        self.test_abort.store(false, Ordering::SeqCst);
        if let Some(options) = state.load.clone() {
            tracing::info!(
                "restarting the engine: reloading {}",
                options.model_path.display()
            );
            let result = self.load_in_worker(state, &options).await;
            if result.is_err() {
                state.load = None;
            }
            result?;
        }
        Ok(())
    }

    /// Finishes a request whose caller went away: cancels it if it is a generation, then
    /// reads and drops its events up to its final answer, so they cannot be mistaken for the
    /// next request's. A worker that does not finish in time is killed.
    async fn settle_abandoned(&self, state: &mut State) {
        let Some(abandoned) = state.abandoned.take() else {
            return;
        };
        let Some(worker) = state.worker.as_mut() else {
            return;
        };
        if let Some(id) = abandoned.generation_id {
            let _ = send(
                worker,
                &Frame::of(&WorkerRequest::Cancel { id }, Vec::new()),
            )
            .await;
        }
        let drained = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match read_event(worker).await {
                    Ok(Some(
                        WorkerEvent::Token { .. }
                        | WorkerEvent::PrefillProgress { .. }
                        | WorkerEvent::LoadProgress { .. },
                    )) => {}
                    Ok(Some(_)) => return true,
                    Ok(None) | Err(_) => return false,
                }
            }
        })
        .await;
        if drained != Ok(true) {
            tracing::warn!("the worker did not finish an abandoned request; restarting it");
            self.kill_worker(state).await;
        }
    }

    async fn spawn(&self) -> Result<Worker> {
        let mut command = Command::new(&self.options.program);
        command
            .arg(WORKER_FLAG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // OpenMP threads busy-wait at barriers; on a busy desktop that collapsed generation
        // speed (ENGINE-FACTS). Measured: spinning generates 9-25 % faster on an idle machine
        // and 10-35 % slower when another program wants a core (docs/benchmarks.md), so the
        // worker waits passively; a user who set either knob for OpenMP keeps it.
        if std::env::var_os("OMP_WAIT_POLICY").is_none()
            && std::env::var_os("GOMP_SPINCOUNT").is_none()
        {
            command.env("OMP_WAIT_POLICY", "PASSIVE");
        }
        // On a failed GGML_ASSERT, ggml attaches gdb to print a backtrace; gdb writes to
        // stdout, which is the protocol pipe, and takes seconds. The log line before the abort
        // says what failed, which is what the crash report needs.
        command.env("GGML_NO_BACKTRACE", "1");
        if self.options.allow_test_abort {
            command.env(ALLOW_TEST_ABORT_ENV, "1");
        } else {
            command.env_remove(ALLOW_TEST_ABORT_ENV);
        }
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        let mut child = command.spawn().map_err(|error| {
            EngineError::WorkerStart(format!(
                "cannot run {}: {error}",
                self.options.program.display()
            ))
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(EngineError::WorkerStart(
                "the worker's pipes are missing".into(),
            ));
        };
        let stderr_tail = Arc::new(StdMutex::new(VecDeque::new()));
        let stderr_done = tokio::spawn(collect_stderr(stderr, Arc::clone(&stderr_tail)));
        let (event_sender, mut events) = mpsc::unbounded_channel();
        tokio::spawn(read_events(stdout, event_sender));
        let ready = tokio::time::timeout(self.options.ready_timeout, events.recv()).await;
        let event = match ready {
            Ok(Some(Ok(Some(event)))) => event,
            Ok(_) => {
                let _ = child.wait().await;
                let _ = stderr_done.await;
                return Err(EngineError::WorkerStart(format!(
                    "the worker exited during start-up: {}",
                    tail_text(&stderr_tail)
                )));
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(EngineError::WorkerStart(format!(
                    "the worker did not become ready within {} s",
                    self.options.ready_timeout.as_secs()
                )));
            }
        };
        match event {
            WorkerEvent::Ready {
                protocol_version, ..
            } if protocol_version == PROTOCOL_VERSION => {}
            WorkerEvent::Ready {
                protocol_version, ..
            } => {
                let _ = child.kill().await;
                return Err(EngineError::WorkerStart(format!(
                    "the worker speaks protocol {protocol_version}, this app {PROTOCOL_VERSION}; \
                     the installation is mixed up"
                )));
            }
            other => {
                let _ = child.kill().await;
                return Err(unexpected(&other));
            }
        }
        Ok(Worker {
            child,
            stdin,
            events,
            stderr_tail,
            stderr_done,
        })
    }

    /// Sends a request and waits for its single answer; a worker that dies meanwhile is
    /// turned into a classified error.
    async fn round_trip(&self, state: &mut State, request: WorkerRequest) -> Result<WorkerEvent> {
        self.round_trip_with(state, request, |_| false).await
    }

    /// [`Self::round_trip`] for a request with interim events before its answer: `interim`
    /// takes each event first and returns whether it was one.
    async fn round_trip_with(
        &self,
        state: &mut State,
        request: WorkerRequest,
        mut interim: impl FnMut(&WorkerEvent) -> bool,
    ) -> Result<WorkerEvent> {
        let worker = state
            .worker
            .as_mut()
            .ok_or_else(|| EngineError::WorkerStart("no worker is running".into()))?;
        state.abandoned = Some(Abandoned {
            generation_id: None,
        });
        let sent = send(worker, &Frame::of(&request, Vec::new())).await;
        let event = match sent {
            Ok(()) => loop {
                match read_event(worker).await {
                    Ok(Some(event)) if interim(&event) => continue,
                    other => break other,
                }
            },
            Err(_) => Ok(None),
        };
        state.abandoned = None;
        match event {
            Ok(Some(WorkerEvent::Error(error))) => Err(error),
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(self.bury_worker(state, String::new()).await),
            Err(error) => Err(self.protocol_failure(state, error, String::new()).await),
        }
    }

    /// Collects a dead worker's exit status and log tail into a crash report.
    async fn bury_worker(&self, state: &mut State, partial_text: String) -> EngineError {
        let Some(worker) = state.worker.take() else {
            return EngineError::Crashed {
                kind: CrashKind::Other,
                partial_text,
                stderr_tail: String::new(),
            };
        };
        let Worker {
            mut child,
            stdin,
            stderr_tail,
            stderr_done,
            ..
        } = worker;
        drop(stdin);
        let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = child.kill().await;
                None
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), stderr_done).await;
        let tail = tail_text(&stderr_tail);
        let kind = classify_crash(status, &tail);
        tracing::error!(%kind, ?status, "the engine worker died:\n{tail}");
        EngineError::Crashed {
            kind,
            partial_text,
            stderr_tail: tail,
        }
    }

    async fn kill_worker(&self, state: &mut State) {
        if let Some(mut worker) = state.worker.take() {
            let _ = worker.child.kill().await;
        }
    }

    async fn generate_locked(
        &self,
        request: GenerateRequest,
        events: mpsc::UnboundedSender<GenerateEvent>,
        cancel: CancelToken,
    ) -> Result<GenerateOutcome> {
        let mut state = self.state.lock().await;
        self.ensure_worker(&mut state).await?;
        if state.load.is_none() {
            return Err(EngineError::NoModelLoaded);
        }
        state.next_generation_id += 1;
        let id = state.next_generation_id;
        let blobs = request
            .images()
            .map(|image| image.rgb.as_ref().clone())
            .collect();
        let frame = Frame::of(&WorkerRequest::Generate { id, request }, blobs);
        let worker = state
            .worker
            .as_mut()
            .ok_or_else(|| EngineError::WorkerStart("no worker is running".into()))?;
        if send(worker, &frame).await.is_err() {
            return Err(self.bury_worker(&mut state, String::new()).await);
        }
        state.abandoned = Some(Abandoned {
            generation_id: Some(id),
        });
        let result = self.stream_generation(&mut state, id, events, cancel).await;
        state.abandoned = None;
        result
    }

    /// Forwards a running generation's events until its final answer.
    async fn stream_generation(
        &self,
        state: &mut State,
        id: u64,
        events: mpsc::UnboundedSender<GenerateEvent>,
        cancel: CancelToken,
    ) -> Result<GenerateOutcome> {
        let mut partial_text = String::new();
        let mut cancel_sent = false;
        let mut poll = tokio::time::interval(CANCEL_POLL);
        loop {
            let worker = state
                .worker
                .as_mut()
                .ok_or_else(|| EngineError::WorkerStart("no worker is running".into()))?;
            let event = tokio::select! {
                event = read_event(worker) => Some(event),
                _ = poll.tick() => None,
            };
            let Some(event) = event else {
                // Interrupts go out while the worker is busy; its stdin thread applies them.
                if cancel.is_cancelled() && !cancel_sent {
                    cancel_sent = true;
                    let _ = send(
                        worker,
                        &Frame::of(&WorkerRequest::Cancel { id }, Vec::new()),
                    )
                    .await;
                }
                if self.test_abort.swap(false, Ordering::SeqCst) {
                    let _ = send(worker, &Frame::of(&WorkerRequest::Abort, Vec::new())).await;
                }
                continue;
            };
            match event {
                Ok(Some(WorkerEvent::Token { text })) => {
                    partial_text.push_str(&text);
                    // The caller may have stopped listening; the generation still finishes
                    // cleanly so the worker's cache stays consistent.
                    let _ = events.send(GenerateEvent::Token(text));
                }
                Ok(Some(WorkerEvent::PrefillProgress { done, total })) => {
                    let _ = events.send(GenerateEvent::PrefillProgress { done, total });
                }
                Ok(Some(WorkerEvent::Done(outcome))) => return Ok(outcome),
                Ok(Some(WorkerEvent::Error(error))) => return Err(error),
                Ok(Some(other)) => {
                    self.kill_worker(state).await;
                    return Err(unexpected(&other));
                }
                Ok(None) => return Err(self.bury_worker(state, partial_text).await),
                Err(error) => {
                    return Err(self.protocol_failure(state, error, partial_text).await);
                }
            }
        }
    }

    /// Garbage on the worker's stdout: usually a dying process printing something (a crash
    /// handler); then it is reported as the crash it is. A live worker is killed.
    async fn protocol_failure(
        &self,
        state: &mut State,
        error: EngineError,
        partial_text: String,
    ) -> EngineError {
        if let Some(worker) = state.worker.as_mut() {
            let exited = tokio::time::timeout(Duration::from_secs(2), worker.child.wait()).await;
            if exited.is_ok() {
                return self.bury_worker(state, partial_text).await;
            }
        }
        self.kill_worker(state).await;
        error
    }
}

impl Engine for EngineHandle {
    fn generate(
        &self,
        request: GenerateRequest,
        events: mpsc::UnboundedSender<GenerateEvent>,
        cancel: CancelToken,
    ) -> BoxFuture<'_, Result<GenerateOutcome>> {
        Box::pin(self.generate_locked(request, events, cancel))
    }
}

async fn send(worker: &mut Worker, frame: &Frame) -> std::io::Result<()> {
    worker.stdin.write_all(&frame.encode()).await?;
    worker.stdin.flush().await
}

/// The next event; `Ok(None)` when the worker's stdout closed (it died or exited).
async fn read_event(worker: &mut Worker) -> Result<Option<WorkerEvent>> {
    worker.events.recv().await.unwrap_or(Ok(None))
}

/// Reads the worker's stdout until it closes; the last item is `Ok(None)` or an error.
async fn read_events(
    mut stdout: ChildStdout,
    sender: mpsc::UnboundedSender<Result<Option<WorkerEvent>>>,
) {
    loop {
        let item = match read_frame_async(&mut stdout).await {
            Ok(Some(frame)) => frame.parse().map(Some),
            Ok(None) => Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                Err(EngineError::Protocol(error.to_string()))
            }
            // A pipe broken in the middle of a frame is a dying worker, not a protocol error.
            Err(_) => Ok(None),
        };
        let last = !matches!(item, Ok(Some(_)));
        if sender.send(item).is_err() || last {
            return;
        }
    }
}

async fn collect_stderr(
    stderr: tokio::process::ChildStderr,
    tail: Arc<StdMutex<VecDeque<String>>>,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "cria_engine::worker_log", "{line}");
        let mut tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

fn tail_text(tail: &StdMutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tail.iter().cloned().collect::<Vec<_>>().join("\n")
}

fn unexpected(event: &WorkerEvent) -> EngineError {
    EngineError::Protocol(format!("unexpected answer from the worker: {event:?}"))
}

/// Why a worker died, from how it exited and what llama.cpp logged last.
pub(crate) fn classify_crash(status: Option<ExitStatus>, stderr_tail: &str) -> CrashKind {
    // Only the last lines speak about the death; earlier ones are the ordinary load log.
    let lines: Vec<&str> = stderr_tail.lines().collect();
    let recent = lines[lines.len().saturating_sub(CLASSIFY_LINES)..]
        .join("\n")
        .to_ascii_lowercase();
    let says = |needles: &[&str]| needles.iter().any(|needle| recent.contains(needle));
    if says(&[
        "out of memory",
        "outofdevicememory",
        "outofhostmemory",
        "failed to allocate",
        "cudamalloc failed",
        "memory allocation of",
    ]) {
        return CrashKind::OutOfMemory;
    }
    if says(&["devicelost", "device lost", "device_lost"]) {
        return CrashKind::DeviceLost;
    }
    // llama.cpp refusing something in the file (a tensor type, an architecture) before it
    // aborts: the model is the problem, not the app.
    if says(&["unknown model architecture", "unsupported", "not supported"]) {
        return CrashKind::UnsupportedModel;
    }
    if says(&["ggml_assert", "assertion", "ggml_abort"]) {
        return CrashKind::Assertion;
    }
    let Some(status) = status else {
        return CrashKind::Killed;
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(6) => return CrashKind::Assertion,
            Some(9) => return CrashKind::Killed,
            _ => {}
        }
    }
    #[cfg(windows)]
    {
        // STATUS_STACK_BUFFER_OVERRUN / abort() on the MSVC runtime.
        if status.code() == Some(3) || status.code() == Some(-1073740791) {
            return CrashKind::Assertion;
        }
    }
    CrashKind::Other
}

/// What a file passed to [`EngineHandle::load`] must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelRole {
    Text,
    Projector,
}

/// Checks a model file with `cria-gguf` before any llama.cpp code reads it: a valid GGUF
/// (every count, size and offset consistent with the file) of the right kind.
pub(crate) fn validate_model_file(path: &Path, role: ModelRole) -> Result<()> {
    let invalid = |reason: String| EngineError::InvalidModelFile {
        path: path.to_path_buf(),
        reason,
    };
    let info = cria_gguf::inspect(path).map_err(|error| invalid(error.to_string()))?;
    match (role, &info.projector) {
        (ModelRole::Text, Some(_)) => Err(invalid(
            "this is a vision projector (mmproj); choose it as the projector, not the model".into(),
        )),
        (ModelRole::Projector, None) => Err(invalid(
            "this is not a vision projector (mmproj) file".into(),
        )),
        (ModelRole::Projector, Some(projector)) if !projector.has_vision_encoder => {
            Err(invalid("this projector has no vision encoder".into()))
        }
        (ModelRole::Text, None) if info.split.as_ref().is_some_and(|split| split.count > 1) => {
            Err(invalid(
                "this is one part of a split model; merge the parts with llama-gguf-split first"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crashes_are_classified_from_the_log_first() {
        assert_eq!(
            classify_crash(
                None,
                "ggml_vulkan: Device memory allocation of size 1 failed\nvk::OutOfDeviceMemoryError"
            ),
            CrashKind::OutOfMemory
        );
        assert_eq!(
            classify_crash(None, "vk::DeviceLostError"),
            CrashKind::DeviceLost
        );
        assert_eq!(
            classify_crash(None, "/src/ggml.c:123: GGML_ASSERT(x) failed"),
            CrashKind::Assertion
        );
        assert_eq!(
            classify_crash(
                None,
                "binary_op: unsupported types: dst: f32, src0: f32, src1: f16"
            ),
            CrashKind::UnsupportedModel
        );
        assert_eq!(classify_crash(None, "nothing useful"), CrashKind::Killed);
    }

    #[test]
    fn files_that_are_not_the_right_gguf_are_rejected_before_loading() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.gguf");
        std::fs::write(&text, b"hello, not a model").unwrap();
        let error = validate_model_file(&text, ModelRole::Text).unwrap_err();
        assert!(
            matches!(error, EngineError::InvalidModelFile { .. }),
            "{error}"
        );

        let missing = dir.path().join("missing.gguf");
        assert!(validate_model_file(&missing, ModelRole::Text).is_err());

        let model = dir.path().join("model.gguf");
        let mmproj = dir.path().join("mmproj.gguf");
        cria_gguf::fixture::write_llama4_text_model(&model, 1).unwrap();
        cria_gguf::fixture::write_llama4_mmproj(&mmproj, 1).unwrap();
        validate_model_file(&model, ModelRole::Text).unwrap();
        validate_model_file(&mmproj, ModelRole::Projector).unwrap();
        let swapped = validate_model_file(&mmproj, ModelRole::Text).unwrap_err();
        assert!(swapped.to_string().contains("projector"), "{swapped}");
        assert!(validate_model_file(&model, ModelRole::Projector).is_err());
    }
}
