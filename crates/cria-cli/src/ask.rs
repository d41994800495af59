//! `cria ask`: one turn through the core, the reply streamed to stdout.
//!
//! Contract: the reply is stored exactly as the app stores it. Ctrl-C cancels the turn and
//! waits for the core to finish it, so the reply stays in the conversation as `cancelled` with
//! its partial text, then exits 130; a second Ctrl-C exits at once (the store recovers the
//! reply as `interrupted` on the next open). A reply that fails exits 2 with the reason.

use std::io::{IsTerminal, Read, Write};

use clap::Args;
use cria_core::{ConversationId, Cria, MessageStatus, TurnEvent};
use cria_engine::CancelToken;

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
    /// The question; "-" or nothing reads it from stdin.
    question: Option<String>,
}

pub async fn run(cria: &Cria, args: AskArgs, output: Output) -> CliResult<()> {
    let question = match args.question {
        Some(question) if question != "-" => question,
        _ => read_question_from_stdin()?,
    };
    let cancel = CancelToken::default();
    let mut stdout = std::io::stdout();
    let mut outcome: Option<(MessageStatus, Option<String>)> = None;
    let mut ends_with_newline = true;
    let mut interrupted = false;
    // The turn borrows the output state; it ends with this block.
    let started = {
        let turn = cria.send_message(
            args.conversation.map(ConversationId),
            question,
            cancel.clone(),
            |event| match event {
                TurnEvent::Token(piece) => {
                    ends_with_newline = piece.ends_with('\n');
                    let _ = stdout.write_all(output.text(&piece).as_bytes());
                    let _ = stdout.flush();
                }
                TurnEvent::Finished { status, error } => outcome = Some((status, error)),
                _ => {}
            },
        );
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
    if !ends_with_newline {
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
