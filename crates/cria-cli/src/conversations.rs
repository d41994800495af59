//! `cria conversations …`, `cria import`, `cria search`: the app's history from a terminal.
//!
//! Contract: every command goes through the core (the same checks as the window). JSON output
//! uses the core's serialised types unchanged (documented in docs/cli.md); human output shows
//! stored text with control characters made harmless on a terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use cria_core::{ConversationId, Cria, ExportFormat, Listing, Message, SearchSource};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::print_json;
use crate::term::{Output, highlighted, utc_minutes};

#[derive(Subcommand)]
pub enum ConversationsCommand {
    /// List conversations, pinned first, then most recently updated.
    ///
    /// Example: cria conversations list --json
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
        /// List archived conversations instead (the app archives before a final delete).
        #[arg(long)]
        archived: bool,
        /// At most this many conversations.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show a conversation's visible branch: roles, statuses, statistics and text.
    ///
    /// Example: cria conversations show 12
    Show {
        id: i64,
        /// Print the conversation and its messages as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export a conversation: Markdown (the visible branch) or JSON (the whole tree, re-importable).
    ///
    /// Writes to stdout unless --output is given; an existing file is never overwritten.
    ///
    /// Example: cria conversations export 12 --format json --output plans.json
    Export {
        id: i64,
        #[arg(long, value_enum)]
        format: FormatArg,
        /// Write to this new file instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Give a conversation a new title.
    ///
    /// Example: cria conversations rename 12 "Trip plans"
    Rename { id: i64, title: String },
    /// Delete a conversation, its messages and the files only it uses. Cannot be undone.
    ///
    /// Asks for confirmation on a terminal; without a terminal, --yes is required.
    ///
    /// Example: cria conversations delete 12 --yes
    Delete {
        id: i64,
        /// Delete without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Md,
    Json,
}

#[derive(Args)]
pub struct SearchArgs {
    /// Words to find; every word must match.
    query: String,
    /// Print the hits as JSON.
    #[arg(long)]
    json: bool,
    /// At most this many hits.
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

pub async fn run(cria: &Cria, command: ConversationsCommand, output: Output) -> CliResult<()> {
    match command {
        ConversationsCommand::List {
            json,
            archived,
            limit,
        } => list(cria, json, archived, limit, output).await,
        ConversationsCommand::Show { id, json } => {
            show(cria, ConversationId(id), json, output).await
        }
        ConversationsCommand::Export {
            id,
            format,
            output: file,
        } => export(cria, ConversationId(id), format, file, output).await,
        ConversationsCommand::Rename { id, title } => {
            cria.rename_conversation(ConversationId(id), title).await?;
            output.note(&format!("renamed conversation {id}"));
            Ok(())
        }
        ConversationsCommand::Delete { id, yes } => {
            delete(cria, ConversationId(id), yes, output).await
        }
    }
}

async fn list(
    cria: &Cria,
    json: bool,
    archived: bool,
    limit: u32,
    output: Output,
) -> CliResult<()> {
    let listing = if archived {
        Listing::Archived
    } else {
        Listing::Active
    };
    let conversations = cria.list_conversations_in(listing, limit, 0).await?;
    if json {
        return print_json(&conversations);
    }
    if conversations.is_empty() {
        output.note(if archived {
            "no archived conversations"
        } else {
            "no conversations yet; start one with: cria ask \"…\""
        });
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    for conversation in conversations {
        let marker = if conversation.pinned { "*" } else { " " };
        writeln!(
            stdout,
            "{:>6} {marker} {}  {}",
            conversation.id.0,
            utc_minutes(conversation.updated_at_ms),
            output.text(&conversation.title).replace('\n', " ")
        )?;
    }
    Ok(())
}

/// `cria conversations show --json`.
#[derive(Serialize)]
struct ShownConversation {
    conversation: cria_core::Conversation,
    /// The visible branch, root first.
    messages: Vec<Message>,
}

async fn show(cria: &Cria, id: ConversationId, json: bool, output: Output) -> CliResult<()> {
    let conversation = cria.conversation(id).await?;
    let messages = cria.conversation_messages(id).await?;
    if json {
        return print_json(&ShownConversation {
            conversation,
            messages,
        });
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "# {} (conversation {}, updated {} UTC)",
        output.text(&conversation.title).replace('\n', " "),
        conversation.id.0,
        utc_minutes(conversation.updated_at_ms)
    )?;
    for message in messages {
        writeln!(stdout, "\n── {} ──", message_header(&message))?;
        writeln!(stdout, "{}", output.text(&message.content))?;
        if let Some(error) = &message.error {
            writeln!(stdout, "[error: {}]", output.text(error))?;
        }
    }
    Ok(())
}

/// `assistant 14 · complete · 120 tokens · 31.2 tokens/s · model x`.
fn message_header(message: &Message) -> String {
    let mut parts = vec![
        format!("{} {}", message.role.as_str(), message.id.0),
        message.status.as_str().to_string(),
    ];
    let stats = &message.stats;
    if let Some(tokens) = stats.completion_tokens {
        parts.push(format!("{tokens} tokens"));
    }
    if let Some(speed) = stats.tokens_per_second.filter(|speed| *speed > 0.0) {
        parts.push(format!("{speed:.1} tokens/s"));
    }
    if let Some(ttft) = stats.ttft_ms {
        parts.push(format!("first token {ttft} ms"));
    }
    if let Some(model) = &stats.model_id {
        parts.push(format!("model {}", crate::term::printable(model, false)));
    }
    parts.join(" · ")
}

async fn export(
    cria: &Cria,
    id: ConversationId,
    format: FormatArg,
    file: Option<PathBuf>,
    output: Output,
) -> CliResult<()> {
    let format = match format {
        FormatArg::Md => ExportFormat::Markdown,
        FormatArg::Json => ExportFormat::Json,
    };
    let text = cria.export_conversation_text(id, format).await?;
    let Some(path) = file else {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(output.text(&text).as_bytes())?;
        if !text.ends_with('\n') {
            stdout.write_all(b"\n")?;
        }
        return Ok(());
    };
    let cannot =
        |error: std::io::Error| CliError::user(format!("cannot write {}: {error}", path.display()));
    let mut written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|error| {
            if error.kind() == std::io::ErrorKind::AlreadyExists {
                CliError::user(format!(
                    "{} already exists; choose another file name or remove it first",
                    path.display()
                ))
            } else {
                cannot(error)
            }
        })?;
    written.write_all(text.as_bytes()).map_err(cannot)?;
    written.sync_all().map_err(cannot)?;
    output.note(&format!(
        "exported conversation {} to {}",
        id.0,
        path.display()
    ));
    Ok(())
}

async fn delete(cria: &Cria, id: ConversationId, yes: bool, output: Output) -> CliResult<()> {
    // Fails with "does not exist" before anything is asked.
    let conversation = cria.conversation(id).await?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::user(
                "refusing to delete without confirmation: stdin is not a terminal; add --yes",
            ));
        }
        eprint!(
            "Delete conversation {} \"{}\"? This cannot be undone. [y/N] ",
            id.0,
            crate::term::printable(&conversation.title, false)
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(CliError::user("not deleted"));
        }
    }
    cria.delete_conversation(id).await?;
    output.note(&format!("deleted conversation {}", id.0));
    Ok(())
}

pub async fn import(cria: &Cria, file: PathBuf) -> CliResult<()> {
    let id = cria.import_conversation(file).await?;
    println!("{}", id.0);
    Ok(())
}

pub async fn search(cria: &Cria, args: SearchArgs, output: Output) -> CliResult<()> {
    let hits = cria.search_limited(args.query, args.limit).await?;
    if args.json {
        return print_json(&hits);
    }
    if hits.is_empty() {
        output.note("no matches");
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    for hit in hits {
        let place = match &hit.source {
            SearchSource::Message {
                conversation_id,
                conversation_title,
                message_id,
                role,
            } => format!(
                "conversation {} \"{}\", {} message {}",
                conversation_id.0,
                crate::term::printable(conversation_title, false),
                role.as_str(),
                message_id.0
            ),
            SearchSource::Chunk {
                sha256,
                page_number,
                line_start,
                line_end,
                attached,
                ..
            } => match attached {
                Some(home) => format!(
                    "document \"{}\", page {page_number}, lines {line_start}-{line_end}, in \
                     conversation {} \"{}\"",
                    crate::term::printable(&home.file_name, false),
                    home.conversation_id.0,
                    crate::term::printable(&home.conversation_title, false),
                ),
                None => format!(
                    "document {}, page {page_number}, lines {line_start}-{line_end}",
                    sha256.get(..12).unwrap_or(sha256)
                ),
            },
        };
        writeln!(stdout, "{place}")?;
        writeln!(
            stdout,
            "    {}",
            highlighted(&hit.snippet, &hit.highlights, output.stdout_terminal)
        )?;
    }
    Ok(())
}
