//! `cria`: the assistant without the window, over the same core as the app.

mod engine_commands;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cria_core::{AppPaths, ConversationId, Cria, TurnEvent};
use cria_engine::CancelToken;

use engine_commands::{BenchArgs, ChatArgs};

#[derive(Parser)]
#[command(
    name = "cria",
    version,
    about = "Cria, an offline assistant for Llama 4 models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask one question and stream the reply to stdout.
    ///
    /// Example: cria ask "What is a mixture of experts?"
    Ask {
        /// Continue this conversation instead of starting a new one.
        #[arg(long)]
        conversation: Option<i64>,
        question: String,
    },
    /// Work with stored conversations.
    #[command(subcommand)]
    Conversations(ConversationsCommand),
    /// Work with model files.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Chat with a GGUF model directly, streaming the reply to stdout.
    ///
    /// Without a prompt, reads one message per line from stdin (an interactive chat).
    ///
    /// Example: cria chat --model llama4.gguf --mmproj mmproj.gguf --image cat.png "What is this?"
    Chat(ChatArgs),
    /// List the compute devices llama.cpp sees, with their memory.
    ///
    /// Example: cria devices --json
    Devices {
        #[arg(long)]
        json: bool,
    },
    /// Measure prompt processing (pp) and generation (tg) speed like llama-bench.
    ///
    /// Example: cria bench --model model.gguf -p 512 -n 128 --threads 2
    Bench(BenchArgs),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Check a GGUF file and show what it holds, without loading it.
    ///
    /// Exits with status 1 and the reason when the file is damaged or not a GGUF model.
    ///
    /// Example: cria models inspect models/gemma-3-270m-q4_k_m.gguf --json
    Inspect {
        file: PathBuf,
        /// Print the full summary, every tensor included, as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConversationsCommand {
    /// List recent conversations, pinned first.
    ///
    /// Example: cria conversations list --json
    List {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // The engine worker is this same executable re-run with a flag; it must not parse the
    // command line or set up anything else.
    if let Some(code) = cria_core::worker_main_if_requested() {
        return code;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CRIA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Inspecting a file needs neither the app's data directory nor an async runtime.
    if let Command::Models(ModelsCommand::Inspect { file, json }) = &cli.command {
        return inspect_model(file, *json);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cria: cannot start: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cria: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Chat(args) => engine_commands::chat(args).await,
        Command::Devices { json } => engine_commands::devices(json).await,
        Command::Bench(args) => engine_commands::bench(args).await,
        Command::Ask {
            conversation,
            question,
        } => {
            let cria = Cria::open(AppPaths::from_env()?)?;
            let mut stdout = std::io::stdout();
            let mut failure = None;
            cria.send_message(
                conversation.map(ConversationId),
                question,
                CancelToken::default(),
                |event| match event {
                    TurnEvent::Token(piece) => {
                        let _ = stdout.write_all(piece.as_bytes());
                        let _ = stdout.flush();
                    }
                    TurnEvent::Finished { error, .. } => failure = error,
                    _ => {}
                },
            )
            .await?;
            println!();
            if let Some(error) = failure {
                eprintln!("cria: {error}");
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::Inspect { file, json }) => Ok(inspect_model(&file, json)),
        Command::Conversations(ConversationsCommand::List { json }) => {
            let cria = Cria::open(AppPaths::from_env()?)?;
            let conversations = cria.list_conversations(100, 0).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&conversations)?);
            } else {
                for conversation in conversations {
                    println!("{:>6}  {}", conversation.id.0, conversation.title);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn inspect_model(path: &Path, json: bool) -> ExitCode {
    let info = match cria_gguf::inspect(path) {
        Ok(info) => info,
        Err(error) => {
            eprintln!(
                "cria: {} is not a usable model file: {error}",
                path.display()
            );
            return ExitCode::from(1);
        }
    };
    if json {
        match serde_json::to_string_pretty(&info) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("cria: cannot print the summary: {error}");
                return ExitCode::from(2);
            }
        }
        return ExitCode::SUCCESS;
    }
    print!("{}", describe_model(path, &info));
    ExitCode::SUCCESS
}

/// The human-readable summary: one `label  value` line per known fact.
fn describe_model(path: &Path, info: &cria_gguf::ModelInfo) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("file", path.display().to_string()),
        (
            "size",
            format!(
                "{} (GGUF v{})",
                human_bytes(info.file_bytes),
                info.gguf_version
            ),
        ),
    ];
    let mut optional = |label, value: Option<String>| {
        if let Some(value) = value {
            lines.push((label, value));
        }
    };
    optional("architecture", info.architecture.clone());
    optional("name", info.name.clone());
    optional("quantization", Some(info.quantization.clone()));
    optional("context length", info.context_length.map(|n| n.to_string()));
    optional("layers", info.block_count.map(|n| n.to_string()));
    optional("embedding", info.embedding_length.map(|n| n.to_string()));
    optional(
        "feed-forward",
        info.feed_forward_length.map(|n| n.to_string()),
    );
    optional(
        "heads",
        info.head_count.map(|heads| match info.head_count_kv {
            Some(kv) => format!("{heads} ({kv} key/value)"),
            None => heads.to_string(),
        }),
    );
    optional("head size", info.key_length.map(|n| n.to_string()));
    optional(
        "experts",
        info.expert_count.map(|experts| {
            let used = info
                .expert_used_count
                .map_or(String::new(), |n| format!(", {n} used"));
            let width = info
                .expert_feed_forward_length
                .map_or(String::new(), |n| format!(", feed-forward {n}"));
            let step = info
                .interleave_moe_layer_step
                .map_or(String::new(), |n| format!(", every {n} layers"));
            format!("{experts}{used}{width}{step}")
        }),
    );
    optional("sliding window", info.sliding_window.map(|n| n.to_string()));
    optional(
        "attention chunk",
        info.attention_chunk_size.map(|n| n.to_string()),
    );
    optional("vocabulary", info.vocab_size.map(|n| n.to_string()));
    optional(
        "tokenizer",
        info.tokenizer_model
            .as_ref()
            .map(|model| match &info.tokenizer_pre {
                Some(pre) => format!("{model} (pre {pre})"),
                None => model.clone(),
            }),
    );
    optional(
        "chat template",
        Some(match &info.chat_template {
            Some(template) => format!("yes ({} bytes)", template.len()),
            None => "none".to_owned(),
        }),
    );
    optional(
        "projector",
        info.projector.as_ref().map(|projector| {
            format!(
                "mmproj, type {}",
                projector.projector_type.as_deref().unwrap_or("unknown")
            )
        }),
    );
    optional(
        "split",
        info.split
            .as_ref()
            .map(|split| format!("file {} of {}", split.index + 1, split.count)),
    );
    optional(
        "tensors",
        Some(format!(
            "{} tensors, {} ({} in experts)",
            info.tensors.len(),
            human_bytes(info.tensor_bytes),
            human_bytes(info.expert_tensor_bytes)
        )),
    );
    let by_type: Vec<String> = info
        .bytes_by_type
        .iter()
        .map(|(name, bytes)| format!("{name} {}", human_bytes(*bytes)))
        .collect();
    optional("tensor types", Some(by_type.join(", ")));
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    lines
        .iter()
        .map(|(label, value)| format!("{label:<width$}  {value}\n"))
        .collect()
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_summary_names_the_llama4_facts() {
        let bytes = cria_gguf::fixture::llama4_text_model(1)
            .expect("fixture builds")
            .to_bytes();
        let file = cria_gguf::parse_bytes(&bytes).expect("fixture is valid");
        let info = cria_gguf::summarize(&file).expect("fixture summarises");
        let text = describe_model(Path::new("llama4.gguf"), &info);
        let value_of = |label: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(label))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(value_of("architecture"), "llama4");
        assert_eq!(value_of("layers"), "4");
        assert_eq!(value_of("heads"), "4 (2 key/value)");
        assert_eq!(
            value_of("experts"),
            "4, 1 used, feed-forward 96, every 2 layers"
        );
        assert_eq!(value_of("attention chunk"), "8192");
        assert_eq!(value_of("tokenizer"), "gpt2 (pre llama4)");
        assert!(value_of("chat template").starts_with("yes ("), "{text}");
        assert_eq!(value_of("quantization"), "F32");
        assert!(!text.contains("projector"));
    }

    #[test]
    fn sizes_are_shown_in_decimal_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(253_113_024), "253.1 MB");
        assert_eq!(human_bytes(2_000_000_000_000), "2.0 TB");
    }
}
