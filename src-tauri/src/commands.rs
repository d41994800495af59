//! Tauri commands: each converts its arguments, calls one core function, converts the result.
//! No logic lives here. The names are listed in `command_names.rs`.

use cria_core::{ConversationId, Cria, EXPORTS_DIR, MessageId, checked_external_url};
use cria_engine::CancelToken;
use tauri::State;
use tauri::ipc::Channel;

use crate::error::{ErrorKind, IpcError, IpcResult};
use crate::ipc::{
    AppInfoDto, ConversationDto, ExportFormatDto, LoadedModelDto, MessageDto, ModelSummaryDto,
    SearchHitDto, ThemeDto, TurnEventDto, TurnStartedDto,
};

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

/// The model library with a fit verdict for this machine.
#[tauri::command]
pub async fn list_models(cria: State<'_, Cria>) -> IpcResult<Vec<ModelSummaryDto>> {
    let models = cria.list_models().await?;
    Ok(models.into_iter().map(Into::into).collect())
}

/// Adds a GGUF file (a path the user chose or dropped) to the library, validated first.
#[tauri::command]
pub async fn import_model(cria: State<'_, Cria>, path: String) -> IpcResult<ModelSummaryDto> {
    Ok(cria.import_model(path.into()).await?.into())
}

/// Loads a library model now and remembers it as the active one.
#[tauri::command]
pub async fn select_model(cria: State<'_, Cria>, id: String) -> IpcResult<LoadedModelDto> {
    Ok(cria.select_model(id).await?.into())
}

/// Forgets a library model (a file referenced in place is not deleted).
#[tauri::command]
pub async fn remove_model(cria: State<'_, Cria>, id: String) -> IpcResult<()> {
    Ok(cria.remove_model(id).await?)
}

/// The model the engine holds now, if any.
#[tauri::command]
pub async fn get_loaded_model(cria: State<'_, Cria>) -> IpcResult<Option<LoadedModelDto>> {
    Ok(cria.loaded_model().await?.map(Into::into))
}

/// Gives a conversation a new title.
#[tauri::command]
pub async fn rename_conversation(
    cria: State<'_, Cria>,
    conversation_id: i64,
    title: String,
) -> IpcResult<()> {
    Ok(cria
        .rename_conversation(ConversationId(conversation_id), title)
        .await?)
}

#[tauri::command]
pub async fn set_conversation_pinned(
    cria: State<'_, Cria>,
    conversation_id: i64,
    pinned: bool,
) -> IpcResult<()> {
    Ok(cria
        .set_conversation_pinned(ConversationId(conversation_id), pinned)
        .await?)
}

/// Archiving is the undoable first step of a delete; un-archiving is the undo.
#[tauri::command]
pub async fn set_conversation_archived(
    cria: State<'_, Cria>,
    conversation_id: i64,
    archived: bool,
) -> IpcResult<()> {
    Ok(cria
        .set_conversation_archived(ConversationId(conversation_id), archived)
        .await?)
}

#[tauri::command]
pub async fn delete_conversation(cria: State<'_, Cria>, conversation_id: i64) -> IpcResult<()> {
    Ok(cria
        .delete_conversation(ConversationId(conversation_id))
        .await?)
}

/// Messages and documents matching `query`, best first, with highlighted snippets.
#[tauri::command]
pub async fn search(cria: State<'_, Cria>, query: String) -> IpcResult<Vec<SearchHitDto>> {
    let hits = cria.search(query).await?;
    Ok(hits.into_iter().map(Into::into).collect())
}

/// Writes the conversation to the data folder's `exports/` and returns the file's path.
#[tauri::command]
pub async fn export_conversation(
    cria: State<'_, Cria>,
    conversation_id: i64,
    format: ExportFormatDto,
) -> IpcResult<String> {
    let path = cria
        .export_conversation(ConversationId(conversation_id), format.into())
        .await?;
    Ok(path.display().to_string())
}

#[tauri::command]
pub async fn get_theme(cria: State<'_, Cria>) -> IpcResult<ThemeDto> {
    Ok(cria.theme().await?.into())
}

#[tauri::command]
pub async fn set_theme(cria: State<'_, Cria>, theme: ThemeDto) -> IpcResult<()> {
    Ok(cria.set_theme(theme.into()).await?)
}

#[tauri::command]
pub fn app_info(cria: State<'_, Cria>) -> AppInfoDto {
    let data_dir = cria.paths().data_dir();
    AppInfoDto {
        data_dir: data_dir.display().to_string(),
        exports_dir: data_dir.join(EXPORTS_DIR).display().to_string(),
    }
}

/// Opens an https or mailto link in the system's browser or mail app, after the user confirmed
/// it in the UI. The scheme is checked again here: the webview is never trusted with that.
#[tauri::command]
pub fn open_external_url(url: String) -> IpcResult<()> {
    let url = checked_external_url(&url)?;
    crate::opener::open(&url).map_err(|error| IpcError {
        kind: ErrorKind::Internal,
        message: format!("The link could not be opened: {error}. Copy it into a browser instead."),
    })
}
