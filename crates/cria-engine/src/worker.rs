//! The engine worker process: llama.cpp's backend, the model, its context and the vision
//! projector, all owned by one thread, driven by framed requests on stdin.
//!
//! Contract: the worker speaks first (`Ready`), answers every request with exactly one final
//! event (`Loaded`, `Unloaded`, `Status`, `Devices`, `Done` or `Error`; a generation streams
//! `PrefillProgress` and `Token` before it), and exits when stdin closes. A separate thread
//! reads stdin so that `Cancel` takes effect while the engine thread is busy: prompts are
//! prefilled in slices of about 250 ms (at least 64 tokens) and the cancel flag is checked between slices and
//! before every generated token. (llama-cpp-2 0.1.160 exposes neither the raw context nor
//! the abort callback, so slicing is how a long prefill stays cancellable without `unsafe`;
//! one image encode is the longest step that cannot be interrupted.) Cancelling leaves the
//! KV cache consistent with what was decoded, so the next request reuses it.
//!
//! KV reuse: the cache holds one sequence, remembered as units (text tokens, images by
//! content hash). A new prompt keeps the longest common prefix of units and prefills only
//! the rest, so a follow-up question, or a second question about the same image, processes
//! only new text. Llama 4's chunked-attention layers use an iSWA cache; by default llama.cpp
//! prunes cells older than the 8192-token window there, after which removing a tail fails
//! and the prompt must be processed again. The context is created with `swa_full`, keeping
//! every cell, so tail removal always works. Up to the window (8192 tokens) that costs no
//! memory; beyond it the windowed layers cost as much as full ones, which the default context
//! size accounts for (`kv_cache_geometry`).
//!
//! Tokenizing reuses work the same way: the token ids of recent prompts are kept with
//! checkpoints at the end of their whole messages, so a follow-up tokenizes only its new text
//! (`token_cache`, whose contract guarantees the same tokens as tokenizing the whole prompt).

use std::io::{self, Write};
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::mtmd::{
    MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputChunks, MtmdInputText, mtmd_default_marker,
};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token_type::LlamaTokenAttr;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};

use crate::context_size::{FreeMemory, KvCacheGeometry, choose_context_size, parse_mem_available};
use crate::offload::{OffloadReport, OffloadWatch, gpu_backends_built};
use crate::protocol::{
    Frame, PROTOCOL_VERSION, WorkerEvent, WorkerRequest, read_frame, write_frame,
};
use crate::text::{StopMatcher, StopScan, Utf8Stream, message_content, render_plain_prompt};
use crate::token_cache::{PrefixTokenCache, SpecialTexts, TokenizeStats};
use crate::{
    ChatMessage, ChatRole, DeviceInfo, EngineError, FinishReason, GenerateOutcome, GenerateRequest,
    ImageInput, LoadOptions, ModelInfo, Sampling,
};

/// The command-line flag that turns any Cria executable into an engine worker.
pub const WORKER_FLAG: &str = "--cria-engine-worker";

/// Environment variable that enables the test-only `abort` request.
pub(crate) const ALLOW_TEST_ABORT_ENV: &str = "CRIA_ENGINE_ALLOW_TEST_ABORT";

/// Bounds for a context size the caller chooses (the default is chosen from memory, see
/// [`choose_context_size`]).
const MIN_N_CTX: u32 = 256;
const MAX_N_CTX: u32 = 1 << 20;
const N_BATCH: u32 = 512;
/// llama.cpp's `swa_full`: windowed layers keep every cell (see the module doc).
const SWA_KEEP_ALL_CELLS: bool = true;
/// Prompt slices aim at this duration so a cancel lands quickly...
const PREFILL_SLICE_TARGET: Duration = Duration::from_millis(250);
/// ...but never shrink below this many tokens: a batch of a few tokens reads all the weights
/// for a few tokens of work (matrix-vector products), so throughput collapses, and the
/// per-token time measured on a slow small slice would then keep the slices small. A cancel
/// still lands after at most one such slice.
const MIN_PREFILL_SLICE: usize = 64;
const FIRST_PREFILL_SLICE: usize = 64;

/// Runs the worker and returns its exit code when this process was started with
/// [`WORKER_FLAG`]; returns `None` otherwise. Call it first thing in `main`.
pub fn worker_main_if_requested() -> Option<ExitCode> {
    if !std::env::args_os().any(|arg| arg == WORKER_FLAG) {
        return None;
    }
    Some(run_worker())
}

/// Threads for llama.cpp when the user does not choose: on a desktop other programs compete
/// for the cores, and with as many busy-waiting threads as cores generation collapsed from
/// ~70 to ~4 tok/s (ENGINE-FACTS). Up to four physical cores all are used (the supervisor
/// sets `OMP_WAIT_POLICY=PASSIVE`, which keeps contention graceful); above that one core is
/// left free. Hyper-threads are not counted: they slow matrix work down.
pub fn default_threads() -> u32 {
    let physical = physical_cores();
    if physical <= 4 {
        physical
    } else {
        physical - 1
    }
    .max(1)
}

fn physical_cores() -> u32 {
    let logical = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    #[cfg(target_os = "linux")]
    if let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") {
        let mut cores = std::collections::HashSet::new();
        let mut physical_id = String::new();
        for line in cpuinfo.lines() {
            if let Some((key, value)) = line.split_once(':') {
                match key.trim() {
                    "physical id" => physical_id = value.trim().to_string(),
                    "core id" => {
                        cores.insert((physical_id.clone(), value.trim().to_string()));
                    }
                    _ => {}
                }
            }
        }
        if !cores.is_empty() {
            return (cores.len() as u32).min(logical);
        }
    }
    logical
}

/// Flags the stdin thread sets while the engine thread works.
#[derive(Default)]
struct Interrupts {
    /// The generation id to cancel (ids start at 1; 0 means none).
    cancel_id: AtomicU64,
    abort_requested: AtomicBool,
    stdin_closed: AtomicBool,
}

struct Incoming {
    request: WorkerRequest,
    blobs: Vec<Vec<u8>>,
}

fn run_worker() -> ExitCode {
    let offload = OffloadWatch::default();
    let _ = tracing_subscriber_init(offload.clone());
    send_logs_to_tracing(LogOptions::default());
    let backend = match LlamaBackend::init() {
        Ok(backend) => backend,
        Err(error) => {
            tracing::error!("cannot initialise llama.cpp: {error}");
            return ExitCode::from(3);
        }
    };
    let mut out = EventWriter {
        stdout: io::stdout(),
    };
    if out
        .send(&WorkerEvent::Ready {
            protocol_version: PROTOCOL_VERSION,
            pid: std::process::id(),
        })
        .is_err()
    {
        return ExitCode::from(4);
    }

    let interrupts = Arc::new(Interrupts::default());
    let (sender, receiver) = mpsc::channel::<Incoming>();
    let reader_interrupts = Arc::clone(&interrupts);
    let reader = std::thread::Builder::new()
        .name("cria-worker-stdin".into())
        .spawn(move || read_requests(sender, &reader_interrupts));
    if reader.is_err() {
        return ExitCode::from(5);
    }

    let mut engine = WorkerEngine {
        backend: &backend,
        interrupts: &interrupts,
        out: &mut out,
        offload: &offload,
    };
    let mut next = None;
    while let Some(incoming) = next.take().or_else(|| receiver.recv().ok()) {
        next = engine.handle_without_model(incoming, &receiver);
    }
    ExitCode::SUCCESS
}

/// The log goes to stderr (the supervisor keeps its tail for crash reports), filtered by
/// `CRIA_LOG`; the offload watch sees every event whatever that filter says.
fn tracing_subscriber_init(
    offload: OffloadWatch,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CRIA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .with_ansi(false)
        .with_filter(filter);
    tracing_subscriber::registry()
        .with(log)
        .with(offload)
        .try_init()
}

/// The stdin thread: interrupts are applied at once, everything else is queued.
fn read_requests(sender: mpsc::Sender<Incoming>, interrupts: &Interrupts) {
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    loop {
        let frame = match read_frame(&mut stdin) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(error) => {
                tracing::error!("stopping: unreadable request from the supervisor: {error}");
                break;
            }
        };
        let request = match frame.parse::<WorkerRequest>() {
            Ok(request) => request,
            Err(error) => {
                tracing::error!("stopping: {error}");
                break;
            }
        };
        match request {
            WorkerRequest::Cancel { id } => interrupts.cancel_id.store(id, Ordering::SeqCst),
            WorkerRequest::Abort => {
                if std::env::var(ALLOW_TEST_ABORT_ENV).as_deref() == Ok("1") {
                    interrupts.abort_requested.store(true, Ordering::SeqCst);
                } else {
                    tracing::warn!(
                        "refusing the test-only abort request ({ALLOW_TEST_ABORT_ENV} is not 1)"
                    );
                }
            }
            request => {
                let blobs = frame.blobs;
                if sender.send(Incoming { request, blobs }).is_err() {
                    break;
                }
            }
        }
    }
    // Stdin closed: the supervisor is gone. Stop any running generation and exit.
    interrupts.stdin_closed.store(true, Ordering::SeqCst);
}

struct EventWriter {
    stdout: io::Stdout,
}

/// llama.cpp's load progress callback: reports each whole percent to the supervisor (it is
/// called once per tensor, thousands of times for a large model). Frames cannot interleave
/// with others: every frame is written under the stdout lock, and nothing else is sent
/// while a load runs.
fn load_progress_reporter() -> impl FnMut(f32) -> bool + 'static {
    let mut out = EventWriter {
        stdout: io::stdout(),
    };
    let mut reported = -1i32;
    move |fraction| {
        let percent = (fraction.clamp(0.0, 1.0) * 100.0).floor() as i32;
        if percent > reported {
            reported = percent;
            if let Err(error) = out.send(&WorkerEvent::LoadProgress {
                fraction: percent as f32 / 100.0,
            }) {
                tracing::error!("cannot write to the supervisor: {error}");
            }
        }
        // Keep loading: a load is cancelled by replacing or unloading the model afterwards.
        true
    }
}

impl EventWriter {
    fn send(&mut self, event: &WorkerEvent) -> io::Result<()> {
        let mut stdout = self.stdout.lock();
        write_frame(&mut stdout, &Frame::of(event, Vec::new()))?;
        stdout.flush()
    }
}

struct WorkerEngine<'a> {
    backend: &'a LlamaBackend,
    interrupts: &'a Interrupts,
    out: &'a mut EventWriter,
    /// What llama.cpp said about the last load (layers and bytes on devices).
    offload: &'a OffloadWatch,
}

/// Where a loaded model's weights are, as llama.cpp reported it (see [`OffloadWatch`]).
#[derive(Debug, Clone, Default)]
struct Placement {
    gpu_layers: u32,
    offloadable_layers: u32,
    gpu_weight_bytes: u64,
    gpu_devices: Vec<String>,
    cpu_fallback_reason: Option<String>,
}

impl Placement {
    /// Reads llama.cpp's statements about the load just done. `asked_layers` is what was
    /// passed to llama.cpp, used only if it said nothing about layers (no GPU device).
    fn observed(
        model: &LlamaModel,
        report: &OffloadReport,
        asked_layers: u32,
        gpu_offload_possible: bool,
    ) -> Placement {
        let offloadable = model.n_layer().saturating_add(1);
        let gpu_layers = match report.layers {
            Some((offloaded, _)) => offloaded,
            // llama.cpp's own rule: the repeating layers plus the output layer, at most.
            None if gpu_offload_possible => asked_layers.min(offloadable),
            None => 0,
        };
        let devices = list_devices();
        let gpu_devices = report
            .device_buffer_names()
            .into_iter()
            .map(
                |buffer| match devices.iter().find(|device| device.name == buffer) {
                    Some(device) => format!("{} ({})", device.name, device.description),
                    None => buffer,
                },
            )
            .collect();
        Placement {
            gpu_layers,
            offloadable_layers: offloadable,
            gpu_weight_bytes: report.device_weight_bytes(),
            gpu_devices,
            cpu_fallback_reason: None,
        }
    }
}

/// One unit of the cached sequence: a text token or a whole image.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CacheUnit {
    Token(LlamaToken),
    Image {
        content_hash: String,
        positions: u32,
    },
}

impl CacheUnit {
    fn positions(&self) -> u32 {
        match self {
            CacheUnit::Token(_) => 1,
            CacheUnit::Image { positions, .. } => *positions,
        }
    }
}

/// A unit of the new prompt; images carry their mtmd chunks for encoding.
enum PromptUnit {
    Token(LlamaToken),
    Image {
        key: CacheUnit,
        /// `None` for an image that sits in the cached prefix: preparing it (mtmd's resize
        /// and normalisation) is skipped, since the cache already holds its embeddings. If the
        /// cache cannot be kept after all, it is prepared when prefill reaches it.
        chunks: Option<MtmdInputChunks>,
        /// The image's index among the request's images.
        image_index: usize,
    },
}

impl PromptUnit {
    fn key(&self) -> CacheUnit {
        match self {
            PromptUnit::Token(token) => CacheUnit::Token(*token),
            PromptUnit::Image { key, .. } => key.clone(),
        }
    }
}

enum TemplateChoice {
    Model(LlamaChatTemplate),
    BuiltIn(&'static str, LlamaChatTemplate),
    Plain,
}

impl TemplateChoice {
    fn name(&self) -> String {
        match self {
            TemplateChoice::Model(_) => "model".into(),
            TemplateChoice::BuiltIn(name, _) => (*name).into(),
            TemplateChoice::Plain => "plain".into(),
        }
    }
}

struct Loaded<'m> {
    model: &'m LlamaModel,
    context: LlamaContext<'m>,
    mtmd: Option<MtmdContext>,
    template: TemplateChoice,
    info: ModelInfo,
    cached: Vec<CacheUnit>,
    /// Tokenizations of recent prompts, so a follow-up tokenizes only its new text.
    token_cache: PrefixTokenCache<LlamaToken>,
    special_texts: SpecialTexts<LlamaToken>,
}

impl<'a> WorkerEngine<'a> {
    fn send(&mut self, event: WorkerEvent) {
        if let Err(error) = self.out.send(&event) {
            tracing::error!("cannot write to the supervisor: {error}");
        }
    }

    /// Handles a request while no model is loaded. Returns a request to handle next (a
    /// `Load` that replaced the model being served).
    fn handle_without_model(
        &mut self,
        incoming: Incoming,
        receiver: &mpsc::Receiver<Incoming>,
    ) -> Option<Incoming> {
        match incoming.request {
            WorkerRequest::Load(options) => self.serve_model(options, receiver),
            WorkerRequest::Generate { .. } => {
                self.send(WorkerEvent::Error(EngineError::NoModelLoaded));
                None
            }
            WorkerRequest::Unload => {
                self.send(WorkerEvent::Unloaded);
                None
            }
            WorkerRequest::Status => {
                self.send(WorkerEvent::Status { loaded: None });
                None
            }
            WorkerRequest::Devices => {
                self.send(WorkerEvent::Devices {
                    devices: list_devices(),
                });
                None
            }
            WorkerRequest::Bench(_) | WorkerRequest::Render { .. } => {
                self.send(WorkerEvent::Error(EngineError::NoModelLoaded));
                None
            }
            WorkerRequest::Cancel { .. } | WorkerRequest::Abort => None,
        }
    }

    /// Loads a model and serves requests with it until it is unloaded or replaced.
    fn serve_model(
        &mut self,
        options: LoadOptions,
        receiver: &mpsc::Receiver<Incoming>,
    ) -> Option<Incoming> {
        self.serve_model_with_reason(options, receiver, None)
    }

    fn serve_model_with_reason(
        &mut self,
        options: LoadOptions,
        receiver: &mpsc::Receiver<Incoming>,
        forced_cpu_reason: Option<String>,
    ) -> Option<Incoming> {
        let (model, mut placement) = match self.load_model(&options) {
            Ok(loaded) => loaded,
            Err(error) => {
                self.send(WorkerEvent::Error(error));
                return None;
            }
        };
        placement.cpu_fallback_reason = forced_cpu_reason.or(placement.cpu_fallback_reason);
        let gpu_layers = placement.gpu_layers;
        match self.serve_loaded(model, &options, placement, receiver) {
            Ok(next) => next,
            Err(error) if gpu_layers > 0 => {
                // The weights fit on the GPU but the context or projector did not (the model
                // is freed by now): run on the CPU rather than not at all, and say why.
                tracing::warn!("GPU setup failed, retrying on the CPU: {error}");
                let cpu_only = LoadOptions {
                    gpu_layers: Some(0),
                    ..options
                };
                let reason = format!(
                    "the GPU could not hold the model's context ({error}); running on the CPU"
                );
                self.serve_model_with_reason(cpu_only, receiver, Some(reason))
            }
            Err(error) => {
                self.send(WorkerEvent::Error(error));
                None
            }
        }
    }

    /// Prepares a loaded model and serves requests with it; an `Err` means it could not be
    /// prepared (nothing was sent).
    fn serve_loaded(
        &mut self,
        model: LlamaModel,
        options: &LoadOptions,
        placement: Placement,
        receiver: &mpsc::Receiver<Incoming>,
    ) -> Result<Option<Incoming>, EngineError> {
        let mut loaded = self.prepare(&model, options, placement)?;
        self.send(WorkerEvent::Loaded(loaded.info.clone()));
        loop {
            let Ok(incoming) = receiver.recv() else {
                return Ok(None);
            };
            match incoming.request {
                WorkerRequest::Load(_) => return Ok(Some(incoming)),
                WorkerRequest::Unload => {
                    self.send(WorkerEvent::Unloaded);
                    return Ok(None);
                }
                WorkerRequest::Generate { id, request } => {
                    let event = match self.generate(&mut loaded, id, request, incoming.blobs) {
                        Ok(outcome) => WorkerEvent::Done(outcome),
                        Err(error) => WorkerEvent::Error(error),
                    };
                    self.send(event);
                }
                WorkerRequest::Bench(bench) => {
                    let event = match run_bench(&mut loaded, bench) {
                        Ok(result) => WorkerEvent::BenchResult(result),
                        Err(error) => WorkerEvent::Error(error),
                    };
                    self.send(event);
                }
                WorkerRequest::Render { messages } => {
                    let event =
                        match render_prompt(&loaded, &messages, mtmd_default_marker(), false) {
                            Ok(prompt) => WorkerEvent::Rendered {
                                prompt: prompt.text,
                            },
                            Err(error) => WorkerEvent::Error(error),
                        };
                    self.send(event);
                }
                WorkerRequest::Status => self.send(WorkerEvent::Status {
                    loaded: Some(loaded.info.clone()),
                }),
                WorkerRequest::Devices => self.send(WorkerEvent::Devices {
                    devices: list_devices(),
                }),
                WorkerRequest::Cancel { .. } | WorkerRequest::Abort => {}
            }
        }
    }

    /// Loads the weights, offloading layers when a GPU is there and offload is wanted; a
    /// failed GPU load is retried on the CPU, and the reason is kept for the user.
    fn load_model(
        &mut self,
        options: &LoadOptions,
    ) -> Result<(LlamaModel, Placement), EngineError> {
        let load_error = |reason: String| EngineError::ModelLoad {
            path: options.model_path.clone(),
            reason,
        };
        let gpu_offload_possible = self.backend.supports_gpu_offload();
        let gpus: Vec<DeviceInfo> = list_devices()
            .into_iter()
            .filter(|device| device.kind == "gpu" || device.kind == "igpu")
            .collect();
        let has_gpu = gpu_offload_possible && !gpus.is_empty();
        let wanted_layers = options.gpu_layers.unwrap_or(if has_gpu { 999 } else { 0 });
        let mut fallback_reason = None;
        if wanted_layers > 0 && has_gpu {
            let params = LlamaModelParams::default()
                .with_n_gpu_layers(wanted_layers)
                .with_progress_callback(load_progress_reporter());
            self.offload.reset();
            match LlamaModel::load_from_file(self.backend, &options.model_path, &params) {
                Ok(model) => {
                    let placement = Placement::observed(
                        &model,
                        &self.offload.report(),
                        wanted_layers,
                        gpu_offload_possible,
                    );
                    return Ok((model, placement));
                }
                Err(error) => {
                    let devices = gpus
                        .iter()
                        .map(|device| device.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    tracing::warn!("GPU offload to {devices} failed, loading on the CPU: {error}");
                    fallback_reason = Some(format!(
                        "loading {wanted_layers} layers onto {devices} failed ({error}; the \
                         device may not have enough free memory, try fewer GPU layers); \
                         running on the CPU"
                    ));
                }
            }
        } else if wanted_layers > 0 {
            fallback_reason = Some(no_gpu_reason(wanted_layers));
        }
        // No device at all, not just no layers: with a GPU in the device list llama.cpp still
        // puts compute and host buffers there and offloads large operations to it, so a model
        // "on the CPU" would still use (and need memory on) the GPU that refused it. Measured on
        // lavapipe: with the device listed, 0 layers gave the Vulkan output, not the CPU's.
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(0)
            .with_progress_callback(load_progress_reporter())
            .with_devices(&[])
            .map_err(|error| load_error(format!("cannot select the CPU alone: {error}")))?;
        self.offload.reset();
        let model = LlamaModel::load_from_file(self.backend, &options.model_path, &params)
            .map_err(|error| {
                load_error(format!(
                    "{error}; the file may use an architecture or tensor type this version of \
                     llama.cpp does not support (see the log for details)"
                ))
            })?;
        let mut placement =
            Placement::observed(&model, &self.offload.report(), 0, gpu_offload_possible);
        placement.cpu_fallback_reason = fallback_reason;
        Ok((model, placement))
    }

    fn prepare<'m>(
        &mut self,
        model: &'m LlamaModel,
        options: &LoadOptions,
        placement: Placement,
    ) -> Result<Loaded<'m>, EngineError> {
        let gpu_layers = placement.gpu_layers;
        let architecture = model
            .meta_val_str("general.architecture")
            .unwrap_or_else(|_| "unknown".into());
        let n_ctx_train = model.n_ctx_train();
        let (n_ctx, n_ctx_reason) = match options.n_ctx {
            Some(asked) => {
                let n_ctx = asked.clamp(MIN_N_CTX, MAX_N_CTX);
                (n_ctx, format!("{n_ctx} tokens: chosen in the settings"))
            }
            None => {
                let geometry = kv_cache_geometry(model, &architecture);
                let free = free_memory_for_cache(model, gpu_layers);
                let choice = choose_context_size(&geometry, n_ctx_train, free.as_ref());
                tracing::info!(?geometry, ?free, reason = %choice.reason, "default context size");
                (choice.n_ctx, choice.reason)
            }
        };
        let threads = options
            .threads
            .unwrap_or_else(default_threads)
            .clamp(1, 512);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(N_BATCH)
            .with_n_ubatch(N_BATCH)
            .with_n_seq_max(1)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads as i32)
            .with_swa_full(SWA_KEEP_ALL_CELLS);
        let context =
            model
                .new_context(self.backend, params)
                .map_err(|error| EngineError::ModelLoad {
                    path: options.model_path.clone(),
                    reason: format!(
                        "cannot create a context of {n_ctx} tokens ({error}); try a smaller context"
                    ),
                })?;
        let mtmd = match &options.mmproj_path {
            None => None,
            Some(path) => {
                let path_text = path.to_str().ok_or_else(|| EngineError::ModelLoad {
                    path: path.clone(),
                    reason: "the path is not valid Unicode".into(),
                })?;
                let params = MtmdContextParams {
                    use_gpu: gpu_layers > 0,
                    print_timings: false,
                    n_threads: threads as i32,
                    ..MtmdContextParams::default()
                };
                let mtmd =
                    MtmdContext::init_from_file(path_text, model, &params).map_err(|error| {
                        EngineError::ModelLoad {
                            path: path.clone(),
                            reason: format!(
                                "the vision projector does not fit this model: {error}"
                            ),
                        }
                    })?;
                if !mtmd.support_vision() {
                    return Err(EngineError::ModelLoad {
                        path: path.clone(),
                        reason: "this projector has no vision encoder".into(),
                    });
                }
                Some(mtmd)
            }
        };
        let template = choose_template(model, &architecture);
        let info = ModelInfo {
            architecture,
            n_ctx,
            n_ctx_reason,
            n_ctx_train,
            threads,
            gpu_layers,
            offloadable_layers: placement.offloadable_layers,
            gpu_weight_bytes: placement.gpu_weight_bytes,
            gpu_devices: placement.gpu_devices,
            cpu_fallback_reason: placement.cpu_fallback_reason,
            chat_template: template.name(),
            vision: mtmd.is_some(),
        };
        tracing::info!(?info, "model loaded");
        Ok(Loaded {
            model,
            context,
            mtmd,
            template,
            info,
            cached: Vec::new(),
            token_cache: PrefixTokenCache::default(),
            special_texts: special_texts(model),
        })
    }

    fn cancelled(&self, id: u64) -> bool {
        self.interrupts.cancel_id.load(Ordering::SeqCst) == id
            || self.interrupts.stdin_closed.load(Ordering::SeqCst)
    }

    fn generate(
        &mut self,
        loaded: &mut Loaded<'_>,
        id: u64,
        mut request: GenerateRequest,
        blobs: Vec<Vec<u8>>,
    ) -> Result<GenerateOutcome, EngineError> {
        let started = Instant::now();
        attach_pixels(&mut request, blobs)?;
        let n_images = request.images().count();
        if n_images > 0 && loaded.mtmd.is_none() {
            return Err(EngineError::NoVisionProjector);
        }
        let marker = mtmd_default_marker();
        let prompt = render_prompt(loaded, &request.messages, marker, request.continue_reply)?;
        let rendered_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (units, tokenized) = tokenize_prompt(loaded, &prompt, &request, marker)?;
        let tokenized_ms = started.elapsed().as_secs_f64() * 1000.0;
        if units.is_empty() {
            return Err(EngineError::InvalidRequest("the prompt is empty".into()));
        }
        let prompt_positions: u32 = units.iter().map(|unit| unit.key().positions()).sum();
        let n_ctx = loaded.context.n_ctx();
        if prompt_positions >= n_ctx {
            return Err(EngineError::ContextOverflow {
                prompt_tokens: prompt_positions,
                n_ctx,
            });
        }

        // Keep the longest common prefix; at least one unit is decoded to get fresh logits.
        let mut common = loaded
            .cached
            .iter()
            .zip(units.iter())
            .take_while(|(cached, unit)| **cached == unit.key())
            .count();
        if common == units.len() {
            common -= 1;
        }
        let mut reused: u32 = loaded.cached[..common]
            .iter()
            .map(CacheUnit::positions)
            .sum();
        let kept = loaded
            .context
            .clear_kv_cache_seq(Some(0), Some(reused), None)
            .unwrap_or(false);
        if !kept {
            loaded.context.clear_kv_cache();
            common = 0;
            reused = 0;
        }
        loaded.cached.truncate(common);

        let mut outcome = GenerateOutcome::simple(FinishReason::Stop, 0);
        outcome.images_prepared = units
            .iter()
            .filter(|unit| {
                matches!(
                    unit,
                    PromptUnit::Image {
                        chunks: Some(_),
                        ..
                    }
                )
            })
            .count() as u32;
        outcome.prompt_tokens = prompt_positions;
        outcome.reused_tokens = reused;
        let prefill_started = Instant::now();
        if !self.prefill(loaded, id, &request, &units[common..], reused, &mut outcome)? {
            outcome.finish_reason = FinishReason::Cancelled;
            outcome.time_to_first_token_ms = started.elapsed().as_secs_f64() * 1000.0;
            return Ok(outcome);
        }
        let prefill_seconds = prefill_started.elapsed().as_secs_f64();
        tracing::debug!(
            rendered_ms,
            tokenized_ms,
            prefilled_ms = started.elapsed().as_secs_f64() * 1000.0,
            prompt_bytes = prompt.text.len(),
            tokenized_bytes = tokenized.tokenized_bytes,
            prompt_positions,
            reused,
            "prompt timings"
        );
        if outcome.prefilled_tokens > 0 && prefill_seconds > 0.0 {
            outcome.prefill_tokens_per_second =
                f64::from(outcome.prefilled_tokens) / prefill_seconds;
        }
        self.decode_reply(loaded, id, &request, started, &mut outcome)?;
        Ok(outcome)
    }

    /// Processes the new prompt units. Returns `false` when cancelled (the cache then holds
    /// exactly the units decoded so far).
    fn prefill(
        &mut self,
        loaded: &mut Loaded<'_>,
        id: u64,
        request: &GenerateRequest,
        units: &[PromptUnit],
        mut n_past: u32,
        outcome: &mut GenerateOutcome,
    ) -> Result<bool, EngineError> {
        let total: u32 = units.iter().map(|unit| unit.key().positions()).sum();
        let mut done = 0u32;
        let mut slice_len = FIRST_PREFILL_SLICE;
        let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
        let mut index = 0;
        while index < units.len() {
            if self.cancelled(id) {
                return Ok(false);
            }
            match &units[index] {
                PromptUnit::Image {
                    key,
                    chunks,
                    image_index,
                } => {
                    let is_last = index + 1 == units.len();
                    // An image expected from the cache whose cache could not be kept.
                    let prepared_now = match chunks {
                        Some(_) => None,
                        None => {
                            let image = request.images().nth(*image_index).ok_or_else(|| {
                                EngineError::Decode("an image of the prompt is missing".into())
                            })?;
                            let PromptUnit::Image { chunks, .. } = encode_image_unit(
                                loaded,
                                *image_index,
                                image,
                                mtmd_default_marker(),
                            )?
                            else {
                                unreachable!("an image unit")
                            };
                            outcome.images_prepared += 1;
                            chunks
                        }
                    };
                    let chunks = chunks
                        .as_ref()
                        .or(prepared_now.as_ref())
                        .expect("prepared above");
                    let mtmd = loaded.mtmd.as_mut().ok_or(EngineError::NoVisionProjector)?;
                    let new_past = chunks
                        .eval_chunks(
                            mtmd,
                            &mut loaded.context,
                            n_past as i32,
                            0,
                            N_BATCH as i32,
                            is_last,
                        )
                        .map_err(|error| {
                            EngineError::Decode(format!("encoding an image failed: {error}"))
                        })?;
                    let positions = (new_past as u32).saturating_sub(n_past);
                    n_past = new_past as u32;
                    done += positions;
                    outcome.images_encoded += 1;
                    loaded.cached.push(key.clone());
                    index += 1;
                }
                PromptUnit::Token(_) => {
                    let run_end = units[index..]
                        .iter()
                        .position(|unit| matches!(unit, PromptUnit::Image { .. }))
                        .map_or(units.len(), |offset| index + offset);
                    let slice_end = run_end.min(index + slice_len);
                    batch.clear();
                    for (offset, unit) in units[index..slice_end].iter().enumerate() {
                        let PromptUnit::Token(token) = unit else {
                            unreachable!("the run holds tokens only")
                        };
                        let is_last = index + offset + 1 == units.len();
                        batch
                            .add(*token, (n_past + offset as u32) as i32, &[0], is_last)
                            .map_err(|error| EngineError::Decode(error.to_string()))?;
                    }
                    let slice_started = Instant::now();
                    loaded
                        .context
                        .decode(&mut batch)
                        .map_err(|error| EngineError::Decode(error.to_string()))?;
                    let count = slice_end - index;
                    let per_token = slice_started.elapsed().as_secs_f64() / count as f64;
                    if per_token > 0.0 {
                        slice_len = ((PREFILL_SLICE_TARGET.as_secs_f64() / per_token) as usize)
                            .clamp(MIN_PREFILL_SLICE, N_BATCH as usize);
                    }
                    for unit in &units[index..slice_end] {
                        loaded.cached.push(unit.key());
                    }
                    n_past += count as u32;
                    done += count as u32;
                    index = slice_end;
                }
            }
            outcome.prefilled_tokens = done;
            self.send(WorkerEvent::PrefillProgress { done, total });
        }
        Ok(true)
    }

    fn decode_reply(
        &mut self,
        loaded: &mut Loaded<'_>,
        id: u64,
        request: &GenerateRequest,
        started: Instant,
        outcome: &mut GenerateOutcome,
    ) -> Result<(), EngineError> {
        let mut sampler = make_sampler(&request.sampling);
        let mut utf8 = Utf8Stream::default();
        let mut stops = StopMatcher::new(&request.stop);
        let mut batch = LlamaBatch::new(1, 1);
        let mut n_past: u32 = loaded.cached.iter().map(CacheUnit::positions).sum();
        let n_ctx = loaded.context.n_ctx();
        let mut first_token_at = None;
        let finish = loop {
            if self.cancelled(id) {
                break FinishReason::Cancelled;
            }
            if outcome.generated_tokens >= request.max_tokens {
                break FinishReason::Length;
            }
            let token = sampler.sample(&loaded.context, -1);
            if first_token_at.is_none() {
                first_token_at = Some(Instant::now());
                outcome.time_to_first_token_ms = started.elapsed().as_secs_f64() * 1000.0;
            }
            if loaded.model.vocab().is_eog(token) && !request.ignore_eos {
                break FinishReason::Stop;
            }
            outcome.generated_tokens += 1;
            let bytes = loaded.model.vocab().token_to_piece(token, false, None);
            let piece = utf8.push(&bytes);
            let streamed = match stops.push(&piece) {
                StopScan::Continue(text) => self.send_text(text),
                StopScan::Stopped(text) => {
                    self.send_text(text);
                    break FinishReason::StopString;
                }
            };
            // The test abort fires once text is out, to prove partial replies survive.
            if streamed && self.interrupts.abort_requested.load(Ordering::SeqCst) {
                tracing::error!("abort requested by the supervisor (test only)");
                std::process::abort();
            }
            if n_past + 1 >= n_ctx {
                break FinishReason::ContextFull;
            }
            batch.clear();
            batch
                .add(token, n_past as i32, &[0], true)
                .map_err(|error| EngineError::Decode(error.to_string()))?;
            loaded
                .context
                .decode(&mut batch)
                .map_err(|error| EngineError::Decode(error.to_string()))?;
            loaded.cached.push(CacheUnit::Token(token));
            n_past += 1;
        };
        if finish != FinishReason::StopString {
            let tail = utf8.finish();
            let mut text = match stops.push(&tail) {
                StopScan::Continue(text) | StopScan::Stopped(text) => text,
            };
            text.push_str(&stops.finish());
            self.send_text(text);
        }
        outcome.finish_reason = finish;
        if let Some(first) = first_token_at {
            let seconds = first.elapsed().as_secs_f64();
            if outcome.generated_tokens > 1 && seconds > 0.0 {
                outcome.generation_tokens_per_second =
                    f64::from(outcome.generated_tokens - 1) / seconds;
            }
        }
        Ok(())
    }

    /// Streams a piece; returns whether there was anything to stream.
    fn send_text(&mut self, text: String) -> bool {
        if text.is_empty() {
            return false;
        }
        self.send(WorkerEvent::Token { text });
        true
    }
}

fn attach_pixels(request: &mut GenerateRequest, blobs: Vec<Vec<u8>>) -> Result<(), EngineError> {
    let n_images = request.images().count();
    if blobs.len() != n_images {
        return Err(EngineError::Protocol(format!(
            "{n_images} images but {} pixel buffers",
            blobs.len()
        )));
    }
    let mut blobs = blobs.into_iter();
    for (index, image) in request
        .messages
        .iter_mut()
        .flat_map(|message| message.images.iter_mut())
        .enumerate()
    {
        let rgb = blobs.next().unwrap_or_default();
        let checked = ImageInput::from_rgb(image.width, image.height, rgb).map_err(|error| {
            EngineError::ImageRejected {
                index,
                reason: error.to_string(),
            }
        })?;
        *image = checked;
    }
    Ok(())
}

fn choose_template(model: &LlamaModel, architecture: &str) -> TemplateChoice {
    if let Ok(template) = model.chat_template(None) {
        let usable = LlamaChatMessage::new("user".into(), "hi".into())
            .map(|probe| model.apply_chat_template(&template, &[probe], true).is_ok())
            .unwrap_or(false);
        if usable {
            return TemplateChoice::Model(template);
        }
        tracing::warn!("the model's chat template is not supported; using a built-in one");
    }
    let name = match architecture {
        "llama4" => Some("llama4"),
        "llama" => Some("llama3"),
        "gemma" | "gemma2" | "gemma3" => Some("gemma"),
        "phi3" => Some("phi3"),
        "qwen2" | "qwen3" => Some("chatml"),
        _ => None,
    };
    match name.map(|name| (name, LlamaChatTemplate::new(name))) {
        Some((name, Ok(template))) => TemplateChoice::BuiltIn(name, template),
        _ => TemplateChoice::Plain,
    }
}

/// Renders the conversation with the chosen template; images become media markers. With
/// `continue_reply`, a final assistant message is left open: the template renders the turns
/// before it and the assistant header, and its text follows unterminated, so the model carries
/// on where it stopped.
fn render_prompt(
    loaded: &Loaded<'_>,
    messages: &[ChatMessage],
    marker: &str,
    continue_reply: bool,
) -> Result<RenderedPrompt, EngineError> {
    // A user typing the marker must not be able to smuggle in an image slot.
    let sanitized: Vec<ChatMessage> = messages
        .iter()
        .map(|message| ChatMessage {
            role: message.role,
            // NUL cannot cross into llama.cpp's C strings (a random-weight model can write
            // one; an imported conversation can hold one).
            content: message.content.replace(marker, "").replace('\0', ""),
            images: message.images.clone(),
        })
        .collect();
    let (turns, open_reply) = match sanitized.split_last() {
        Some((last, before)) if continue_reply && last.role == ChatRole::Assistant => {
            (before, message_content(last, marker))
        }
        _ => (sanitized.as_slice(), String::new()),
    };
    let template = match &loaded.template {
        TemplateChoice::Model(template) | TemplateChoice::BuiltIn(_, template) => template,
        TemplateChoice::Plain => {
            return Ok(RenderedPrompt {
                text: render_plain_prompt(turns, marker) + &open_reply,
                messages_end: None,
            });
        }
    };
    let chat = turns
        .iter()
        .map(|message| {
            LlamaChatMessage::new(
                message.role.as_str().into(),
                message_content(message, marker),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| EngineError::InvalidRequest(format!("message text: {error}")))?;
    let apply = |add_assistant_header: bool| {
        loaded
            .model
            .apply_chat_template(template, &chat, add_assistant_header)
            .map_err(|error| EngineError::Decode(format!("applying the chat template: {error}")))
    };
    let text = apply(true)? + &open_reply;
    // Where the whole messages end and the reply's header begins: the next request's prompt
    // shares the text up to here (a cut point for the token cache). Templates that render
    // differently without the header simply give no cut point.
    let messages_end = apply(false)
        .ok()
        .filter(|messages| text.starts_with(messages.as_str()))
        .map(|messages| messages.len());
    Ok(RenderedPrompt { text, messages_end })
}

/// A prompt rendered by the chat template.
struct RenderedPrompt {
    text: String,
    /// Byte offset where the last whole message ends (before the reply's header), if known.
    messages_end: Option<usize>,
}

/// Splits the rendered prompt at media markers: text segments become tokens, each image
/// becomes one unit with its encoded chunks (tokenized by mtmd, so the projector's own image
/// framing tokens are included).
fn tokenize_prompt(
    loaded: &mut Loaded<'_>,
    rendered: &RenderedPrompt,
    request: &GenerateRequest,
    marker: &str,
) -> Result<(Vec<PromptUnit>, TokenizeStats), EngineError> {
    let prompt = rendered.text.as_str();
    let model = loaded.model;
    let vocab = model.vocab();
    let bos_text = if vocab.should_add_bos() {
        String::from_utf8(vocab.token_to_piece(vocab.bos(), true, None)).unwrap_or_default()
    } else {
        String::new()
    };
    // Templates usually write BOS themselves; adding another would double it.
    let add_bos = vocab.should_add_bos() && (bos_text.is_empty() || !prompt.starts_with(&bos_text));
    let mut units: Vec<PromptUnit> = Vec::new();
    let mut images = request.images().enumerate();
    let mut segment_start = 0;
    let mut stats = TokenizeStats::default();
    // Whether every unit so far matches the cache, so the next one may be reused from it
    // (checked incrementally: units before `checked_units` were compared already).
    let mut on_cached_prefix = true;
    let mut checked_units = 0;
    for (segment_index, segment) in prompt.split(marker).enumerate() {
        if segment_index > 0 {
            let (index, image) = images.next().ok_or_else(|| {
                EngineError::Decode("the template produced more image slots than images".into())
            })?;
            on_cached_prefix = on_cached_prefix
                && units
                    .iter()
                    .zip(&loaded.cached)
                    .skip(checked_units)
                    .all(|(unit, cached)| unit.key() == *cached);
            checked_units = units.len();
            match loaded.cached.get(units.len()) {
                Some(cached @ CacheUnit::Image { content_hash, .. })
                    if on_cached_prefix && *content_hash == image.content_hash =>
                {
                    units.push(PromptUnit::Image {
                        key: cached.clone(),
                        chunks: None,
                        image_index: index,
                    });
                }
                _ => units.push(encode_image_unit(loaded, index, image, marker)?),
            }
            segment_start += marker.len();
        }
        let add_special = segment_index == 0 && add_bos;
        let cuts: Vec<usize> = rendered
            .messages_end
            .and_then(|end| end.checked_sub(segment_start))
            .filter(|&end| end < segment.len())
            .into_iter()
            .collect();
        let (tokens, segment_stats) = loaded.token_cache.tokenize(
            segment,
            add_special,
            &cuts,
            &loaded.special_texts,
            |piece, add_special| vocab.tokenize(piece.as_bytes(), add_special, true),
        );
        stats.reused_bytes += segment_stats.reused_bytes;
        stats.tokenized_bytes += segment_stats.tokenized_bytes;
        units.extend(tokens.into_iter().map(PromptUnit::Token));
        segment_start += segment.len();
    }

    if images.next().is_some() {
        return Err(EngineError::Decode(
            "the chat template dropped an image; this model's template cannot show images".into(),
        ));
    }
    Ok((units, stats))
}

/// The texts llama.cpp cuts a prompt at before tokenizing it: its control, user-defined and
/// unknown-attribute tokens (see [`SpecialTexts`]).
fn special_texts(model: &LlamaModel) -> SpecialTexts<LlamaToken> {
    let vocab = model.vocab();
    let cut_at = LlamaTokenAttr::Control | LlamaTokenAttr::UserDefined | LlamaTokenAttr::Unknown;
    SpecialTexts::new((0..vocab.n_tokens()).filter_map(|id| {
        let token = LlamaToken::new(id);
        let attrs = vocab.attr(token);
        if !attrs.intersects(cut_at) {
            return None;
        }
        let text = vocab.text(token)?.to_str().ok()?.to_owned();
        Some((text, attrs.contains(LlamaTokenAttr::LStrip), token))
    }))
}

fn encode_image_unit(
    loaded: &Loaded<'_>,
    index: usize,
    image: &ImageInput,
    marker: &str,
) -> Result<PromptUnit, EngineError> {
    let rejected = |reason: String| EngineError::ImageRejected { index, reason };
    let mtmd = loaded.mtmd.as_ref().ok_or(EngineError::NoVisionProjector)?;
    let mut bitmap = MtmdBitmap::from_image_data(image.width, image.height, &image.rgb)
        .map_err(|error| rejected(error.to_string()))?;
    bitmap
        .set_id(&image.content_hash)
        .map_err(|error| rejected(error.to_string()))?;
    let chunks = mtmd
        .tokenize(
            MtmdInputText {
                text: marker.to_string(),
                add_special: false,
                parse_special: true,
            },
            &[&bitmap],
        )
        .map_err(|error| rejected(format!("the vision projector cannot take it: {error}")))?;
    let positions = chunks.total_positions();
    if positions <= 0 {
        return Err(rejected("it produced no image tokens".into()));
    }
    Ok(PromptUnit::Image {
        key: CacheUnit::Image {
            content_hash: image.content_hash.clone(),
            positions: positions as u32,
        },
        chunks: Some(chunks),
        image_index: index,
    })
}

fn make_sampler(sampling: &Sampling) -> LlamaSampler {
    if sampling.temperature <= 0.0 {
        return LlamaSampler::greedy();
    }
    LlamaSampler::chain_simple([
        LlamaSampler::top_p(sampling.top_p.clamp(0.0, 1.0), 1),
        LlamaSampler::min_p(sampling.min_p.clamp(0.0, 1.0), 1),
        LlamaSampler::temp(sampling.temperature),
        LlamaSampler::dist(sampling.seed),
    ])
}

/// Why layers that were asked for stay on the CPU when no GPU is usable: the build has no GPU
/// backend, or its backend found no device.
fn no_gpu_reason(wanted_layers: u32) -> String {
    let built = gpu_backends_built();
    if built.is_empty() {
        format!(
            "{wanted_layers} GPU layers were asked for, but this build of Cria has no GPU \
             backend (it runs on the CPU only; builds with Vulkan, CUDA or Metal can offload); \
             running on the CPU"
        )
    } else {
        format!(
            "{wanted_layers} GPU layers were asked for, but the {} backend found no usable GPU \
             (check the graphics driver; `cria devices` lists what llama.cpp sees); running on \
             the CPU",
            built.join("/")
        )
    }
}

fn list_devices() -> Vec<DeviceInfo> {
    use llama_cpp_2::LlamaBackendDeviceType as Kind;
    llama_cpp_2::list_llama_ggml_backend_devices()
        .into_iter()
        .map(|device| DeviceInfo {
            name: device.name,
            description: device.description,
            backend: device.backend,
            kind: match device.device_type {
                Kind::Cpu => "cpu",
                Kind::Gpu => "gpu",
                Kind::IntegratedGpu => "igpu",
                Kind::Accelerator => "accel",
                Kind::Unknown => "unknown",
            }
            .into(),
            memory_total_bytes: device.memory_total as u64,
            memory_free_bytes: device.memory_free as u64,
        })
        .collect()
}

/// The KV cache's cost per token, from the GGUF hyperparameters llama.cpp reads. Windowed
/// layers (Gemma's sliding window, Llama 4's chunked attention) are counted as full ones: the
/// context keeps every cell (`swa_full`, see the module doc) so that KV reuse always works.
/// A model whose layout is not known here is costed as if every layer were full, which can
/// only make the default smaller.
fn kv_cache_geometry(model: &LlamaModel, architecture: &str) -> KvCacheGeometry {
    let read = |key: &str| -> Option<u32> {
        model
            .meta_val_str(&format!("{architecture}.{key}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let layers = model.n_layer();
    let heads = model.n_head().max(1);
    let kv_heads = model.n_head_kv().max(1);
    let embd_head = u32::try_from(model.n_embd()).unwrap_or(0) / heads;
    let key_dim = read("attention.key_length").unwrap_or(embd_head);
    let value_dim = read("attention.value_length").unwrap_or(embd_head);
    let window = read("attention.sliding_window");
    let pattern = read("attention.sliding_window_pattern");
    // llama.cpp's per-architecture defaults for the window and its layer pattern.
    let (window, pattern) = match (architecture, window) {
        ("llama4", Some(0)) => (0, 1),
        ("llama4", _) => (8192, pattern.unwrap_or(4)),
        ("gemma3", Some(window)) => (window, pattern.unwrap_or(6)),
        ("gemma2", window) => (window.unwrap_or(4096), pattern.unwrap_or(2)),
        (_, Some(window)) if pattern.is_some() => (window, pattern.unwrap_or(1)),
        _ => (0, 1),
    };
    KvCacheGeometry::windowed(
        layers,
        kv_heads,
        key_dim,
        value_dim,
        pattern,
        window,
        N_BATCH,
        SWA_KEEP_ALL_CELLS,
    )
}

/// Memory free for the KV cache on the device that will hold it, after the weights: the GPU's
/// free memory when layers are offloaded (the weights are on it already), otherwise the RAM
/// programs can still get (Linux: `MemAvailable`, which counts the memory-mapped model file as
/// reclaimable, so the weights are subtracted; elsewhere llama.cpp's CPU device report).
fn free_memory_for_cache(model: &LlamaModel, gpu_layers: u32) -> Option<FreeMemory> {
    let devices = list_devices();
    if gpu_layers > 0
        && let Some(gpu) = devices
            .iter()
            .find(|device| device.kind == "gpu" || device.kind == "igpu")
    {
        return Some(FreeMemory {
            bytes: gpu.memory_free_bytes,
            device: format!("GPU {}", gpu.name),
        });
    }
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_mem_available(&text))
        .or_else(|| {
            devices
                .iter()
                .find(|device| device.kind == "cpu" && device.memory_free_bytes > 0)
                .map(|device| device.memory_free_bytes)
        })?;
    Some(FreeMemory {
        bytes: available.saturating_sub(model.size()),
        device: "RAM".into(),
    })
}

/// llama-bench's `pp` and `tg` tests: a prompt of random tokens decoded in `n_batch` slices
/// from an empty cache, then `n_gen` single-token decodes; the best of `repetitions` runs.
fn run_bench(
    loaded: &mut Loaded<'_>,
    bench: crate::protocol::BenchRequest,
) -> Result<crate::protocol::BenchResult, EngineError> {
    let n_vocab = loaded.model.n_vocab().max(1) as u32;
    let n_ctx = loaded.context.n_ctx();
    if bench.n_prompt + bench.n_gen >= n_ctx {
        return Err(EngineError::ContextOverflow {
            prompt_tokens: bench.n_prompt + bench.n_gen,
            n_ctx,
        });
    }
    // A fixed pseudo-random sequence (xorshift) so runs are comparable.
    let mut state = 0x2545_f491_u32;
    let mut next_token = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        LlamaToken((state % n_vocab) as i32)
    };
    let decode_err = |error: llama_cpp_2::DecodeError| EngineError::Decode(error.to_string());
    let batch_err =
        |error: llama_cpp_2::llama_batch::BatchAddError| EngineError::Decode(error.to_string());
    let mut pp_best = 0.0f64;
    let mut tg_best = 0.0f64;
    let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
    for _ in 0..bench.repetitions.max(1) {
        if bench.n_prompt > 0 {
            loaded.context.clear_kv_cache();
            let started = Instant::now();
            let mut position = 0u32;
            while position < bench.n_prompt {
                let end = (position + N_BATCH).min(bench.n_prompt);
                batch.clear();
                for pos in position..end {
                    batch
                        .add(next_token(), pos as i32, &[0], pos + 1 == end)
                        .map_err(batch_err)?;
                }
                loaded.context.decode(&mut batch).map_err(decode_err)?;
                position = end;
            }
            pp_best = pp_best.max(f64::from(bench.n_prompt) / started.elapsed().as_secs_f64());
        }
        if bench.n_gen > 0 {
            loaded.context.clear_kv_cache();
            let started = Instant::now();
            for pos in 0..bench.n_gen {
                batch.clear();
                batch
                    .add(next_token(), pos as i32, &[0], true)
                    .map_err(batch_err)?;
                loaded.context.decode(&mut batch).map_err(decode_err)?;
            }
            tg_best = tg_best.max(f64::from(bench.n_gen) / started.elapsed().as_secs_f64());
        }
    }
    loaded.context.clear_kv_cache();
    loaded.cached.clear();
    Ok(crate::protocol::BenchResult {
        prompt_tokens_per_second: pp_best,
        generation_tokens_per_second: tg_best,
        threads: loaded.info.threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded<'m>(backend: &LlamaBackend, model: &'m LlamaModel) -> Loaded<'m> {
        let architecture = model
            .meta_val_str("general.architecture")
            .expect("architecture");
        let params = LlamaContextParams::default().with_n_ctx(NonZeroU32::new(512));
        Loaded {
            model,
            context: model.new_context(backend, params).expect("context"),
            mtmd: None,
            template: choose_template(model, &architecture),
            info: ModelInfo {
                architecture,
                n_ctx: 512,
                n_ctx_reason: String::new(),
                n_ctx_train: model.n_ctx_train(),
                threads: 1,
                gpu_layers: 0,
                cpu_fallback_reason: None,
                chat_template: String::new(),
                vision: false,
                offloadable_layers: 0,
                gpu_weight_bytes: 0,
                gpu_devices: Vec::new(),
            },
            cached: Vec::new(),
            token_cache: PrefixTokenCache::default(),
            special_texts: special_texts(model),
        }
    }

    /// Tokenizes the conversation through the worker's cache and checks the tokens against
    /// tokenizing the whole rendered prompt at once. Returns what the cache did and where the
    /// prompt's whole messages end.
    fn tokenize_and_compare(
        loaded: &mut Loaded<'_>,
        messages: &[ChatMessage],
    ) -> (TokenizeStats, Option<usize>) {
        let marker = mtmd_default_marker();
        let request = GenerateRequest::new(messages.to_vec(), 1);
        let rendered = render_prompt(loaded, messages, marker, false).expect("render");
        let (units, stats) =
            tokenize_prompt(loaded, &rendered, &request, marker).expect("tokenize");
        let vocab = loaded.model.vocab();
        let bos =
            String::from_utf8(vocab.token_to_piece(vocab.bos(), true, None)).unwrap_or_default();
        let add_bos = vocab.should_add_bos() && !rendered.text.starts_with(&bos);
        let whole = vocab.tokenize(rendered.text.as_bytes(), add_bos, true);
        let cached: Vec<LlamaToken> = units
            .iter()
            .map(|unit| match unit {
                PromptUnit::Token(token) => *token,
                PromptUnit::Image { .. } => unreachable!("no images here"),
            })
            .collect();
        assert_eq!(cached, whole, "{:?}", rendered.text);
        (stats, rendered.messages_end)
    }

    /// With real vocabularies (Llama 4's byte-level BPE and its pre-tokenizer; Gemma 3's
    /// SentencePiece with thousands of user-defined tokens), a conversation that grows, is
    /// regenerated and edited is tokenized from the cache exactly as the whole prompt is, and
    /// later turns hand the tokenizer only their new text.
    #[test]
    fn cached_tokenization_equals_whole_tokenization_with_real_vocabularies() {
        let backend = LlamaBackend::init().expect("the only llama.cpp backend in this binary");
        let dir = tempfile::tempdir().expect("temp dir");
        let fixture = dir.path().join("llama4.gguf");
        cria_gguf::fixture::write_llama4_text_model(&fixture, 11).expect("fixture");
        let gemma = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/gemma-3-270m-q4_k_m.gguf");
        let mut models = vec![fixture];
        if gemma.is_file() {
            models.push(gemma);
        }
        // Text that looks like template syntax, whitespace at the edges, other scripts.
        let said = [
            "Hello there  ",
            "  <|eot|> is not the end, nor <end_of_turn> or <|header_start|>",
            "\n\nA table:\n| a | b |\n|---|---|\n| 1 | 2 |\n",
            "안녕하세요, 世界! 🙂\t tabs\tand\r\nCRLF",
            "<start_of_turn>model\nfake turn<|begin_of_text|>",
            "short",
        ];
        for path in models {
            let model = LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default())
                .expect("model loads");
            let mut loaded = loaded(&backend, &model);
            let mut messages = Vec::new();
            let mut previous_end = None;
            for (turn, text) in said.iter().enumerate() {
                let role = if turn % 2 == 0 {
                    ChatRole::User
                } else {
                    ChatRole::Assistant
                };
                messages.push(ChatMessage::text(role, *text));
                if role == ChatRole::Assistant {
                    continue;
                }
                let (asked, messages_end) = tokenize_and_compare(&mut loaded, &messages);
                // A follow-up reuses everything up to the end of the previous prompt's
                // messages and tokenizes only the reply, the question and the header.
                if let Some(previous_end) = previous_end {
                    assert_eq!(asked.reused_bytes, previous_end, "{path:?} turn {turn}");
                }
                previous_end = Some(messages_end.expect("the templates render a cut point"));
                // Asking the same again (regenerate) tokenizes nothing.
                let (again, _) = tokenize_and_compare(&mut loaded, &messages);
                assert_eq!(again.tokenized_bytes, 0, "{path:?} turn {turn}");
            }

            // Editing an earlier question reuses the text before it.
            messages.truncate(3);
            messages[2] = ChatMessage::text(ChatRole::User, "an edited question");
            let (edited, _) = tokenize_and_compare(&mut loaded, &messages);
            assert!(edited.reused_bytes > 0, "{path:?}: {edited:?}");
        }
    }
}
