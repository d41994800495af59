//! `cria`: the assistant without the window, over the same core as the app.

mod engine_commands;

use std::io::Write;
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
    if let Some(code) = cria_engine::worker_main_if_requested() {
        return code;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CRIA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
                    TurnEvent::Started(_) => {}
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
