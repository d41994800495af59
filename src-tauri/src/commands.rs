//! Tauri commands: each converts its arguments, calls one core function, converts the result.
//! No logic lives here. The names are listed in `command_names.rs`.

use cria_core::{ConversationId, Cria, MessageId};
use cria_engine::CancelToken;
use tauri::State;
use tauri::ipc::Channel;

use crate::error::IpcResult;
use crate::ipc::{ConversationDto, MessageDto, TurnEventDto, TurnStartedDto};

/// Conversations in the page the sidebar shows: pinned first, then most recent.
#[tauri::command]
pub async fn list_conversations(cria: State<'_, Cria>) -> IpcResult<Vec<ConversationDto>> {
    let conversations = cria.list_conversations(200, 0).await?;
    Ok(conversations.into_iter().map(Into::into).collect())
}

/// The visible branch of one conversation, root first.
#[tauri::command]
pub async fn get_conversation_messages(
    cria: State<'_, Cria>,
    conversation_id: i64,
) -> IpcResult<Vec<MessageDto>> {
    let messages = cria
        .conversation_messages(ConversationId(conversation_id))
        .await?;
    Ok(messages.into_iter().map(Into::into).collect())
}

/// Sends a message and streams the reply over `on_event`; resolves when the reply has ended.
#[tauri::command]
pub async fn send_message(
    cria: State<'_, Cria>,
    conversation_id: Option<i64>,
    text: String,
    on_event: Channel<TurnEventDto>,
) -> IpcResult<TurnStartedDto> {
    let started = cria
        .send_message(
            conversation_id.map(ConversationId),
            text,
            CancelToken::default(),
            |event| {
                // A closed channel means the window went away; the reply is still stored.
                let _ = on_event.send(event.into());
            },
        )
        .await?;
    Ok(started.into())
}

/// Stops a reply being generated; its text so far is kept as `cancelled`.
#[tauri::command]
pub fn stop_reply(cria: State<'_, Cria>, reply_message_id: i64) -> bool {
    cria.stop_reply(MessageId(reply_message_id))
}
