//! `cria chat` without `--model`: an interactive conversation in the app's history, through the
//! same core as the window. One message per line; commands start with `/`:
//! `/attach FILE` (sent with the next message), `/new` (a new conversation), `/quit`.
//! Ctrl-C while a reply streams stops it (kept as `cancelled`); Ctrl-C at the prompt exits 130.

use std::io::Write;
use std::path::PathBuf;

use cria_core::{AttachmentInput, ConversationId, Cria, MessageStatus, TurnEvent, TurnRequest};
use cria_engine::CancelToken;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::error::{CliError, CliResult};
use crate::term::Output;

pub async fn run(
    cria: &Cria,
    conversation: Option<i64>,
    first_message: Option<String>,
    output: Output,
) -> CliResult<()> {
    let mut conversation = conversation.map(ConversationId);
    if let Some(id) = conversation {
        // Fail early on an unknown id, and show where the conversation stands.
        let messages = cria.conversation_messages(id).await?;
        output.note(&format!(
            "[conversation {}: {} messages]",
            id.0,
            messages.len()
        ));
    }
    output.note("Type a message and press Enter. /attach FILE, /new, /quit; Ctrl-C stops a reply.");
    let mut attachments: Vec<AttachmentInput> = Vec::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending = first_message;
    loop {
        let line = match pending.take() {
            Some(line) => line,
            None => {
                let next = tokio::select! {
                    line = lines.next_line() => line?,
                    _ = tokio::signal::ctrl_c() => {
                        return Err(CliError::Interrupted("bye".into()));
                    }
                };
                match next {
                    Some(line) => line,
                    None => return Ok(()),
                }
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(command) = line.strip_prefix('/') {
            let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
            match name {
                "quit" | "exit" => return Ok(()),
                "new" => {
                    conversation = None;
                    attachments.clear();
                    output.note("[a new conversation starts with the next message]");
                }
                "attach" if !rest.trim().is_empty() => {
                    let path = PathBuf::from(rest.trim());
                    output.note(&format!(
                        "[attached {} to the next message]",
                        path.display()
                    ));
                    attachments.push(AttachmentInput::Path(path));
                }
                _ => output.note("commands: /attach FILE, /new, /quit"),
            }
            continue;
        }
        let request = TurnRequest {
            conversation,
            text: line.to_string(),
            attachments: std::mem::take(&mut attachments),
            model: None,
        };
        match turn(cria, request, &output).await {
            Ok(id) => conversation = Some(id),
            // A bad file or message is reported and the chat goes on.
            Err(CliError::User(message)) => output.note(&format!("cria: {message}")),
            Err(other) => return Err(other),
        }
    }
}

/// One turn; Ctrl-C cancels it and waits for the core to store the partial reply.
async fn turn(cria: &Cria, request: TurnRequest, output: &Output) -> CliResult<ConversationId> {
    let cancel = CancelToken::default();
    let mut stdout = std::io::stdout();
    let mut finished = None;
    let mut notices = Vec::new();
    let mut progress_line = output.progress();
    let started = {
        let turn = cria.send(request, cancel.clone(), |event| match event {
            TurnEvent::LoadingModel(model) => {
                progress_line.show(&format!("loading {model}…"), true)
            }
            TurnEvent::Token(piece) => {
                progress_line.clear();
                let _ = stdout.write_all(output.text(&piece).as_bytes());
                let _ = stdout.flush();
            }
            TurnEvent::Summary(summary) => notices = summary.notices,
            TurnEvent::Finished { status, error } => finished = Some((status, error)),
            _ => {}
        });
        tokio::pin!(turn);
        tokio::select! {
            result = &mut turn => result,
            _ = tokio::signal::ctrl_c() => {
                cancel.cancel();
                turn.await
            }
        }?
    };
    println!();
    for notice in notices {
        output.note(&format!("note: {notice}"));
    }
    match finished {
        Some((MessageStatus::Complete, _)) => {}
        Some((MessageStatus::Cancelled, _)) => output.note("[stopped; the partial reply is kept]"),
        Some((status, error)) => output.note(&format!(
            "[the reply ended as {}{}]",
            status.as_str(),
            error.map(|e| format!(": {e}")).unwrap_or_default()
        )),
        None => {}
    }
    Ok(started.conversation_id)
}
