//! `cria`: the assistant without the window, over the same core and data folder as the app
//! (safe while the app runs: the store lets a second process read and write beside it).
//!
//! Contract: [`main`] runs Cria's worker processes when asked to (the llama.cpp engine and the
//! document reader are this same executable re-run with a flag), parses the command line, runs
//! one command and returns the documented exit code (see [`error`]): 0 ok, 1 user error, 2
//! engine or model failure, 130 interrupted. Every failure is one line on stderr.
//!
//! The library exists so that integration tests can build a host binary of the very same CLI
//! (`cargo test` does not build other packages' binaries).

mod ask;
mod chat_session;
mod conversations;
mod engine_commands;
pub mod error;
mod ingest;
mod models;
mod term;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cria_core::{AppPaths, Cria};

use engine_commands::{BenchArgs, ChatArgs};
use error::{CliError, CliResult};
use term::Output;

#[derive(Parser)]
#[command(
    name = "cria",
    version,
    about = "Cria, an offline assistant for Llama 4 models",
    after_help = "Exit status: 0 ok, 1 user error, 2 engine or model failure, 130 interrupted.\n\
                  Data folder: CRIA_DATA_DIR, or the platform's data folder (shared with the app)."
)]
struct Cli {
    /// Print no progress, notes or statistics on stderr (errors are still printed).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask one question and stream the reply to stdout (statistics go to stderr).
    ///
    /// Without a question, or with "-", the question is read from stdin.
    ///
    /// Example: cria ask "What is a mixture of experts?"
    ///
    /// Example: cria ask --conversation 12 "And how many experts does Scout have?"
    ///
    /// Example: cria ask --attach report.pdf --json "When does the reactor restart?"
    ///
    /// Example: cat notes.md | cria ask --attach - "Summarise these notes"
    Ask(ask::AskArgs),
    /// Work with stored conversations (the app's history).
    #[command(subcommand)]
    Conversations(conversations::ConversationsCommand),
    /// Import a conversation exported as JSON; prints the new conversation's id.
    ///
    /// Example: cria import exports/plans-12.json
    Import {
        /// A file written by `cria conversations export ID --format json` or the app.
        file: PathBuf,
    },
    /// Search every conversation and attached document (Korean included), best match first.
    ///
    /// Example: cria search "날씨" --limit 5
    Search(conversations::SearchArgs),
    /// Show what Cria extracts from a file: type, pages, text, scanned pages, chunks, warnings.
    ///
    /// The file is read in a separate worker process with memory, size and time limits.
    ///
    /// Example: cria ingest report.pdf --json
    Ingest(ingest::IngestArgs),
    /// The model library: list, import, remove, choose, check fit, download, inspect.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Chat interactively in a stored conversation (like the app), or with --model directly
    /// with a GGUF file (nothing stored).
    ///
    /// Without --model: one message per line, `/attach FILE`, `/new`, `/quit`; Ctrl-C stops a
    /// reply and keeps its text. With --model and no prompt, reads messages from stdin.
    ///
    /// Example: cria chat --conversation 12
    ///
    /// Example: cria chat --model llama4.gguf --mmproj mmproj.gguf --image cat.png "What is this?"
    Chat(ChatArgs),
    /// List the compute devices llama.cpp sees, with their memory.
    ///
    /// Example: cria devices --json
    Devices {
        /// Print the devices as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure prompt processing (pp) and generation (tg) speed like llama-bench.
    ///
    /// Example: cria bench --model model.gguf -p 512 -n 128 --threads 2
    Bench(BenchArgs),
}

/// The whole `cria` program; the binary's `main` returns this.
pub fn main() -> ExitCode {
    // Worker processes are this same executable re-run with a flag; they must not parse the
    // command line or set up anything else.
    if let Some(code) = cria_core::worker_main_if_requested() {
        return code;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CRIA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let output = Output::detect(cli.quiet);
    // Inspecting a file needs neither the data folder nor an async runtime.
    if let Command::Models(models::ModelsCommand::Inspect { file, json }) = &cli.command {
        return finish(models::inspect(file, *json));
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            return CliError::Engine(format!("cannot start: {error}")).report();
        }
    };
    finish(runtime.block_on(run(cli.command, output)))
}

/// `--help` and `--version` print and succeed; a command line that does not parse is a user
/// error like any other (status 1, one line), not clap's status 2, which means an engine
/// failure here.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            CliError::user("a command is missing; run `cria --help` to see them").report()
        }
        _ => {
            let rendered = error.render().to_string();
            let first = rendered
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("the command line is not valid");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            CliError::user(format!("{first}; run `cria --help` for usage")).report()
        }
    }
}

fn finish(result: CliResult<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.report(),
    }
}

async fn run(command: Command, output: Output) -> CliResult<()> {
    match command {
        Command::Chat(mut args) => match args.model.take() {
            Some(model) => Ok(engine_commands::chat(args, model).await?),
            None => chat_session::run(&open()?, args.conversation, args.prompt, output).await,
        },
        Command::Devices { json } => Ok(engine_commands::devices(json).await?),
        Command::Bench(args) => Ok(engine_commands::bench(args).await?),
        Command::Ingest(args) => ingest::run(args, output).await,
        Command::Ask(args) => ask::run(&open()?, args, output).await,
        Command::Conversations(command) => conversations::run(&open()?, command, output).await,
        Command::Import { file } => conversations::import(&open()?, file).await,
        Command::Search(args) => conversations::search(&open()?, args, output).await,
        Command::Models(command) => models::run(&open()?, command, output).await,
    }
}

/// Opens the data folder the app uses (or `CRIA_DATA_DIR`).
fn open() -> CliResult<Cria> {
    Ok(Cria::open(AppPaths::from_env()?)?)
}

/// Prints `value` as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> CliResult<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| CliError::user(format!("cannot print JSON: {error}")))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_shows_an_example() {
        fn check(command: &clap::Command, path: &str) {
            let subcommands: Vec<_> = command.get_subcommands().collect();
            if subcommands.is_empty() {
                let help = command
                    .get_long_about()
                    .or(command.get_about())
                    .map(ToString::to_string)
                    .unwrap_or_default();
                assert!(help.contains("Example: cria "), "{path} has no example");
            }
            for subcommand in subcommands {
                check(subcommand, &format!("{path} {}", subcommand.get_name()));
            }
        }
        check(&Cli::command(), "cria");
    }
}
