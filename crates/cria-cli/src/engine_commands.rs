//! `cria chat`, `cria devices`, `cria bench`: the engine without the store, for trying a
//! model and measuring it. Each runs llama.cpp in a worker process like the app does.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use cria_engine::{
    BenchRequest, CancelToken, ChatMessage, ChatRole, Engine, EngineHandle, GenerateEvent,
    GenerateOutcome, GenerateRequest, ImageInput, LoadOptions, ModelInfo, Sampling,
    SupervisorOptions,
};
use tokio::sync::mpsc;

#[derive(Args, Debug)]
pub struct ModelArgs {
    /// The GGUF model file.
    #[arg(long, short = 'm')]
    model: PathBuf,
    /// CPU threads (default: chosen for a busy desktop).
    #[arg(long, short = 't')]
    threads: Option<u32>,
    /// Context size in tokens (default: chosen from the KV cache's size and free memory,
    /// 4096 to 32768).
    #[arg(long)]
    ctx: Option<u32>,
    /// Layers to offload to the GPU (default: all when a GPU is available).
    #[arg(long)]
    gpu_layers: Option<u32>,
}

impl ModelArgs {
    fn load_options(&self, mmproj: Option<PathBuf>) -> LoadOptions {
        LoadOptions {
            model_path: self.model.clone(),
            mmproj_path: mmproj,
            n_ctx: self.ctx,
            threads: self.threads,
            gpu_layers: self.gpu_layers,
        }
    }
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// The GGUF model file; without it, a conversation in the app's history
    /// (see `crate::chat_session`).
    #[arg(long, short = 'm')]
    pub model: Option<PathBuf>,
    /// CPU threads (with --model; default: chosen for a busy desktop).
    #[arg(long, short = 't', requires = "model")]
    threads: Option<u32>,
    /// Context size in tokens (with --model).
    #[arg(long, requires = "model")]
    ctx: Option<u32>,
    /// Layers to offload to the GPU (with --model; default: all when a GPU is available).
    #[arg(long, requires = "model")]
    gpu_layers: Option<u32>,
    /// Continue this stored conversation (conversation mode only).
    #[arg(long, conflicts_with = "model")]
    pub conversation: Option<i64>,
    /// The vision projector (mmproj) GGUF, needed for --image.
    #[arg(long)]
    mmproj: Option<PathBuf>,
    /// A PNG or JPEG image to show with the (first) message; repeatable.
    #[arg(long)]
    image: Vec<PathBuf>,
    /// A system prompt.
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 1024)]
    max_tokens: u32,
    /// Sampling temperature (Llama 4 default 0.6); 0 is greedy.
    #[arg(long)]
    temperature: Option<f32>,
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Stop the reply before this text; repeatable.
    #[arg(long)]
    stop: Vec<String>,
    /// Print token counts and speeds to stderr after each reply.
    #[arg(long)]
    stats: bool,
    /// The message; without it, an interactive chat reads lines from stdin.
    pub prompt: Option<String>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt tokens to process (llama-bench's pp test).
    #[arg(short = 'p', long, default_value_t = 512)]
    n_prompt: u32,
    /// Tokens to generate (llama-bench's tg test).
    #[arg(short = 'n', long, default_value_t = 128)]
    n_gen: u32,
    /// Runs per test; the best is reported.
    #[arg(short = 'r', long, default_value_t = 3)]
    repetitions: u32,
    #[arg(long)]
    json: bool,
}

fn engine() -> anyhow::Result<EngineHandle> {
    Ok(EngineHandle::new(SupervisorOptions::current_exe()?))
}

pub async fn chat(args: ChatArgs, model: PathBuf) -> anyhow::Result<()> {
    let model = ModelArgs {
        model,
        threads: args.threads,
        ctx: args.ctx,
        gpu_layers: args.gpu_layers,
    };
    let engine = engine()?;
    let info = engine.load(model.load_options(args.mmproj.clone())).await?;
    report_placement(&info);
    let mut images = Vec::new();
    for path in &args.image {
        images.push(read_image(path)?);
    }
    let sampling = Sampling {
        temperature: args
            .temperature
            .unwrap_or(Sampling::LLAMA4_DEFAULT.temperature),
        seed: args.seed,
        ..Sampling::LLAMA4_DEFAULT
    };
    let mut history = Vec::new();
    if let Some(system) = &args.system {
        history.push(ChatMessage::text(ChatRole::System, system.clone()));
    }
    let mut pending_images = images;
    let mut ask = |text: String| {
        let mut message = ChatMessage::text(ChatRole::User, text);
        message.images = std::mem::take(&mut pending_images);
        message
    };
    if let Some(prompt) = args.prompt.clone() {
        history.push(ask(prompt));
        let (_reply, outcome) = stream_reply(&engine, &args, &history, sampling).await?;
        report(&args, &outcome);
        engine.shutdown().await;
        return Ok(());
    }
    let stdin = std::io::stdin();
    eprint!("> ");
    for line in stdin.lock().lines() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            eprint!("> ");
            continue;
        }
        history.push(ask(line));
        let (reply, outcome) = stream_reply(&engine, &args, &history, sampling).await?;
        history.push(ChatMessage::text(ChatRole::Assistant, reply));
        report(&args, &outcome);
        eprint!("> ");
    }
    engine.shutdown().await;
    Ok(())
}

async fn stream_reply(
    engine: &EngineHandle,
    args: &ChatArgs,
    history: &[ChatMessage],
    sampling: Sampling,
) -> anyhow::Result<(String, GenerateOutcome)> {
    let request = GenerateRequest {
        messages: history.to_vec(),
        max_tokens: args.max_tokens,
        sampling,
        stop: args.stop.clone(),
        ignore_eos: false,
        continue_reply: false,
    };
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let generation = engine.generate(request, sender, CancelToken::default());
    let printer = async {
        let mut reply = String::new();
        let mut stdout = std::io::stdout();
        while let Some(event) = receiver.recv().await {
            if let GenerateEvent::Token(piece) = event {
                let _ = stdout.write_all(piece.as_bytes());
                let _ = stdout.flush();
                reply.push_str(&piece);
            }
        }
        reply
    };
    let (outcome, reply) = tokio::join!(generation, printer);
    println!();
    Ok((reply, outcome?))
}

fn report(args: &ChatArgs, outcome: &GenerateOutcome) {
    if args.stats {
        eprintln!(
            "[{:?}: prompt {} (reused {}, prefilled {}, images encoded {}), generated {}, \
             TTFT {:.0} ms, prefill {:.1} tok/s, generation {:.1} tok/s]",
            outcome.finish_reason,
            outcome.prompt_tokens,
            outcome.reused_tokens,
            outcome.prefilled_tokens,
            outcome.images_encoded,
            outcome.generated_tokens,
            outcome.time_to_first_token_ms,
            outcome.prefill_tokens_per_second,
            outcome.generation_tokens_per_second,
        );
    }
}

fn read_image(path: &PathBuf) -> anyhow::Result<ImageInput> {
    let decoded = image::ImageReader::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("reading {}", path.display()))?
        .decode()
        .with_context(|| format!("decoding {} (PNG and JPEG are supported)", path.display()))?
        .to_rgb8();
    let (width, height) = decoded.dimensions();
    Ok(ImageInput::from_rgb(width, height, decoded.into_raw())?)
}

/// Says on stderr where the model runs: the GPU layers and memory llama.cpp reported, or why it
/// stays on the CPU.
fn report_placement(info: &ModelInfo) {
    if info.gpu_layers > 0 {
        eprintln!(
            "cria: {}/{} layers on {} ({:.1} MiB of weights in GPU memory)",
            info.gpu_layers,
            info.offloadable_layers,
            if info.gpu_devices.is_empty() {
                "the GPU".to_string()
            } else {
                info.gpu_devices.join(", ")
            },
            info.gpu_weight_bytes as f64 / (1u64 << 20) as f64
        );
    }
    if let Some(reason) = &info.cpu_fallback_reason {
        eprintln!("cria: {reason}");
    }
}

pub async fn devices(json: bool) -> anyhow::Result<()> {
    let engine = engine()?;
    let devices = engine.devices().await?;
    engine.shutdown().await;
    let backends = cria_engine::gpu_backends_built();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "gpu_backends_built": backends,
                "devices": devices,
            }))?
        );
        return Ok(());
    }
    if backends.is_empty() {
        println!("GPU backends in this build: none (CPU only)");
    } else {
        println!("GPU backends in this build: {}", backends.join(", "));
        if !devices
            .iter()
            .any(|device| device.kind == "gpu" || device.kind == "igpu")
        {
            println!("no usable GPU found: models run on the CPU (check the graphics driver)");
        }
    }
    for device in devices {
        println!(
            "{:<10} {:<6} {:<8} {:>8.1} GiB free of {:>8.1} GiB  {}",
            device.name,
            device.kind,
            device.backend,
            device.memory_free_bytes as f64 / (1u64 << 30) as f64,
            device.memory_total_bytes as f64 / (1u64 << 30) as f64,
            device.description
        );
    }
    Ok(())
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let engine = engine()?;
    let mut options = args.model.load_options(None);
    // Room for the prompt plus generation, as llama-bench sizes its context.
    options.n_ctx = Some(
        options
            .n_ctx
            .unwrap_or(args.n_prompt + args.n_gen + 16)
            .max(args.n_prompt + args.n_gen + 16),
    );
    let info = engine.load(options).await?;
    report_placement(&info);
    let result = engine
        .bench(BenchRequest {
            n_prompt: args.n_prompt,
            n_gen: args.n_gen,
            repetitions: args.repetitions,
        })
        .await?;
    engine.shutdown().await;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "model": args.model.model,
                "architecture": info.architecture,
                "threads": result.threads,
                "gpu_layers": info.gpu_layers,
                "gpu_devices": info.gpu_devices,
                "cpu_fallback_reason": info.cpu_fallback_reason,
                "n_prompt": args.n_prompt,
                "n_gen": args.n_gen,
                "pp_tokens_per_second": result.prompt_tokens_per_second,
                "tg_tokens_per_second": result.generation_tokens_per_second,
            })
        );
    } else {
        println!(
            "model {} ({}), threads {}, gpu layers {}",
            args.model.model.display(),
            info.architecture,
            result.threads,
            info.gpu_layers
        );
        println!(
            "pp{:<6} {:>10.2} tok/s",
            args.n_prompt, result.prompt_tokens_per_second
        );
        println!(
            "tg{:<6} {:>10.2} tok/s",
            args.n_gen, result.generation_tokens_per_second
        );
    }
    Ok(())
}
