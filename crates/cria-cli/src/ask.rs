//! `cria ask`: one turn through the core, the reply streamed to stdout.
//!
//! Contract: the reply is stored exactly as the app stores it. Ctrl-C cancels the turn and
//! waits for the core to finish it, so the reply stays in the conversation as `cancelled` with
//! its partial text, then exits 130; a second Ctrl-C exits at once (the store recovers the
//! reply as `interrupted` on the next open). A reply that fails exits 2 with the reason.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cria_core::{
    AttachmentInput, ConversationId, Cria, MessageStatus, ModelPin, TurnEvent, TurnRequest,
    TurnSummary,
};
use cria_engine::CancelToken;
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::term::Output;

/// Longest question read from stdin.
const MAX_STDIN_QUESTION_BYTES: u64 = 4 << 20;

#[derive(Args)]
pub struct AskArgs {
    /// Continue this conversation (its id from `cria conversations list`).
    #[arg(long, conflicts_with = "new")]
    conversation: Option<i64>,
    /// Start a new conversation (the default).
    #[arg(long)]
    new: bool,
    /// A file to ask about (image, PDF, Office document, web page, text, code, CSV); repeat
    /// for several. "-" attaches stdin (the question must then be an argument).
    #[arg(long = "attach", value_name = "FILE")]
    attachments: Vec<PathBuf>,
    /// Answer with this profile's model for this question (set profiles in the app).
    #[arg(long, value_enum, conflicts_with = "model")]
    profile: Option<Profile>,
    /// Answer with this library model (its id from `cria models list`).
    #[arg(long)]
    model: Option<String>,
    /// Print the finished reply as JSON (text, status, citations, route, tokens, timings)
    /// instead of streaming it.
    #[arg(long)]
    json: bool,
    /// The question; "-" or nothing reads it from stdin.
    question: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Profile {
    Fast,
    Vision,
}

/// `cria ask --json`: the reply as stored, with what the UI shows beside it.
#[derive(Serialize)]
struct AskJson {
    conversation_id: i64,
    user_message_id: i64,
    reply_message_id: i64,
    status: MessageStatus,
    error: Option<String>,
    content: String,
    #[serde(flatten)]
    summary: Option<TurnSummary>,
}

pub async fn run(cria: &Cria, args: AskArgs, output: Output) -> CliResult<()> {
    let stdin_attached = args.attachments.iter().any(|path| path.as_os_str() == "-");
    let question = match args.question {
        Some(question) if question != "-" => question,
        _ if stdin_attached => {
            return Err(CliError::user(
                "with --attach -, give the question as an argument: cat notes.md | cria ask --attach - \"summarise\"",
            ));
        }
        _ => read_question_from_stdin()?,
    };
    let mut attachments = Vec::with_capacity(args.attachments.len());
    for path in args.attachments {
        attachments.push(if path.as_os_str() == "-" {
            AttachmentInput::Bytes {
                name: "stdin.txt".into(),
                bytes: read_stdin_bytes()?,
            }
        } else {
            AttachmentInput::Path(path)
        });
    }
    let model = match (args.profile, args.model) {
        (Some(Profile::Fast), _) => Some(ModelPin::Fast),
        (Some(Profile::Vision), _) => Some(ModelPin::Vision),
        (None, Some(id)) => Some(ModelPin::Model(id)),
        (None, None) => None,
    };
    let request = TurnRequest {
        conversation: args.conversation.map(ConversationId),
        text: question,
        attachments,
        model,
    };
    let json = args.json;
    let cancel = CancelToken::default();
    let mut stdout = std::io::stdout();
    let mut outcome: Option<(MessageStatus, Option<String>)> = None;
    let mut summary: Option<TurnSummary> = None;
    let mut ends_with_newline = true;
    let mut interrupted = false;
    let mut progress_line = output.progress();
    // The turn borrows the output state; it ends with this block.
    let started = {
        let turn = cria.send(request, cancel.clone(), |event| match event {
            TurnEvent::Preparing(progress) => progress_line.show(
                &format!(
                    "reading {}: page {} of {}",
                    progress.file_name, progress.done_pages, progress.total_pages
                ),
                false,
            ),
            TurnEvent::Started(_) => progress_line.clear(),
            TurnEvent::LoadingModel(model) => {
                progress_line.show(&format!("loading {model}…"), true)
            }
            TurnEvent::Token(piece) if !json => {
                progress_line.clear();
                ends_with_newline = piece.ends_with('\n');
                let _ = stdout.write_all(output.text(&piece).as_bytes());
                let _ = stdout.flush();
            }
            TurnEvent::Summary(s) => summary = Some(s),
            TurnEvent::Finished { status, error } => outcome = Some((status, error)),
            _ => {}
        });
        tokio::pin!(turn);
        tokio::select! {
            result = &mut turn => result,
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                cancel.cancel();
                tokio::select! {
                    result = &mut turn => result,
                    _ = tokio::signal::ctrl_c() => {
                        return Err(CliError::Interrupted(
                            "stopped without waiting; the reply is kept as interrupted".into(),
                        ));
                    }
                }
            }
        }?
    };
    if json {
        let (status, error) = outcome.clone().unwrap_or((MessageStatus::Failed, None));
        let content = cria
            .conversation_messages(started.conversation_id)
            .await?
            .into_iter()
            .find(|message| message.id == started.reply_message_id)
            .map(|message| message.content)
            .unwrap_or_default();
        crate::print_json(&AskJson {
            conversation_id: started.conversation_id.0,
            user_message_id: started.user_message_id.0,
            reply_message_id: started.reply_message_id.0,
            status,
            error,
            content,
            summary: summary.clone(),
        })?;
    }
    if let Some(summary) = &summary {
        for notice in &summary.notices {
            output.note(&format!("note: {notice}"));
        }
    }
    if !ends_with_newline && !json {
        println!();
    }
    let (status, error) = outcome.unwrap_or((MessageStatus::Failed, None));
    let reply = cria
        .conversation_messages(started.conversation_id)
        .await?
        .into_iter()
        .find(|message| message.id == started.reply_message_id);
    if let Some(reply) = &reply {
        let stats = &reply.stats;
        let mut line = format!(
            "[conversation {}, reply {}: {}",
            started.conversation_id.0,
            started.reply_message_id.0,
            status.as_str()
        );
        if let Some(tokens) = stats.completion_tokens {
            line.push_str(&format!(", {tokens} tokens"));
        }
        if let Some(speed) = stats.tokens_per_second.filter(|speed| *speed > 0.0) {
            line.push_str(&format!(", {speed:.1} tokens/s"));
        }
        if let Some(model) = &stats.model_id {
            line.push_str(&format!(", model {model}"));
        }
        line.push(']');
        output.note(&line);
    }
    if interrupted || status == MessageStatus::Cancelled {
        return Err(CliError::Interrupted(format!(
            "interrupted; the partial reply is kept as cancelled in conversation {}",
            started.conversation_id.0
        )));
    }
    match status {
        MessageStatus::Complete => Ok(()),
        _ => Err(CliError::Engine(error.unwrap_or_else(|| {
            format!("the reply ended as {}", status.as_str())
        }))),
    }
}

/// Stdin as an attachment (`--attach -`), bounded like any attached file.
fn read_stdin_bytes() -> CliResult<Vec<u8>> {
    let limit = cria_ingest::IngestLimits::default().max_input_bytes;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(CliError::user(format!(
            "stdin is larger than {limit} bytes, the most Cria reads from one file"
        )));
    }
    Ok(bytes)
}

fn read_question_from_stdin() -> CliResult<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(CliError::user(
            "give the question as an argument, or pipe it in: echo \"...\" | cria ask",
        ));
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(MAX_STDIN_QUESTION_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_STDIN_QUESTION_BYTES {
        return Err(CliError::user(format!(
            "the question on stdin is longer than {MAX_STDIN_QUESTION_BYTES} bytes; shorten it"
        )));
    }
    String::from_utf8(bytes).map_err(|_| CliError::user("the question on stdin is not UTF-8 text"))
}
