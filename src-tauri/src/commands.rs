//! Tauri commands: each converts its arguments, calls one core function, converts the result.
//! No logic lives here. The names are listed in `command_names.rs`.

use cria_core::{
    AttachmentId, AttachmentInput, ConversationId, CoreError, Cria, EXPORTS_DIR, MessageId,
    PreviewCancel, TurnEvent, TurnRequest, checked_external_url,
};
use cria_core::{DownloadCancel, DownloadEvent, ModelsError};
use cria_engine::CancelToken;
use tauri::State;
use tauri::ipc::Channel;

use crate::error::{ErrorKind, IpcError, IpcResult};
use crate::ipc::{
    AppInfoDto, AttachmentArgDto, AttachmentPreviewDto, ChatSettingsDto, ConversationDto,
    ExportFormatDto, LoadedModelDto, MessageDto, MessageViewDto, ModelPinDto, ModelSummaryDto,
    PagePreviewDto, ReadingProgressDto, SearchHitDto, ThemeDto, TurnEventDto, TurnStartedDto,
    image_data_url,
};
use crate::ipc::{
    CatalogEntryDto, DeviceDto, DownloadEventDto, EngineSettingsDto, attachment_path,
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

/// Sends a message with its attachments and streams the reply over `on_event`; resolves when
/// the reply has ended. A file that cannot be read fails the send and nothing is stored.
#[tauri::command]
pub async fn send_message(
    cria: State<'_, Cria>,
    conversation_id: Option<i64>,
    text: String,
    attachments: Vec<AttachmentArgDto>,
    on_event: Channel<TurnEventDto>,
) -> IpcResult<TurnStartedDto> {
    let attachments = attachments
        .into_iter()
        .map(AttachmentInput::try_from)
        .collect::<IpcResult<Vec<_>>>()?;
    let request = TurnRequest {
        conversation: conversation_id.map(ConversationId),
        text,
        attachments,
        model: None,
    };
    let started = cria
        .send(request, CancelToken::default(), forward(&on_event))
        .await?;
    Ok(started.into())
}

/// Writes a new reply beside `reply_message_id` (its siblings stay, "‹ 2/2 ›") and streams it.
#[tauri::command]
pub async fn regenerate(
    cria: State<'_, Cria>,
    reply_message_id: i64,
    on_event: Channel<TurnEventDto>,
) -> IpcResult<TurnStartedDto> {
    let started = cria
        .regenerate(
            MessageId(reply_message_id),
            CancelToken::default(),
            forward(&on_event),
        )
        .await?;
    Ok(started.into())
}

/// Sends an edited copy of a user message as a new branch and streams the reply to it.
#[tauri::command]
pub async fn edit_message(
    cria: State<'_, Cria>,
    message_id: i64,
    text: String,
    on_event: Channel<TurnEventDto>,
) -> IpcResult<TurnStartedDto> {
    let started = cria
        .edit_and_resend(
            MessageId(message_id),
            text,
            CancelToken::default(),
            forward(&on_event),
        )
        .await?;
    Ok(started.into())
}

/// Generates more of a reply that was stopped, cut off or interrupted, appended to it.
#[tauri::command]
pub async fn continue_reply(
    cria: State<'_, Cria>,
    reply_message_id: i64,
    on_event: Channel<TurnEventDto>,
) -> IpcResult<TurnStartedDto> {
    let started = cria
        .continue_reply(
            MessageId(reply_message_id),
            CancelToken::default(),
            forward(&on_event),
        )
        .await?;
    Ok(started.into())
}

/// Passes turn events on to the webview.
fn forward(channel: &Channel<TurnEventDto>) -> impl FnMut(TurnEvent) + Send + '_ {
    move |event| {
        // A closed channel means the window went away; the reply is still stored.
        let _ = channel.send(event.into());
    }
}

/// Shows the branch through `message_id` (the "‹ 2/3 ›" arrows).
#[tauri::command]
pub async fn switch_branch(cria: State<'_, Cria>, message_id: i64) -> IpcResult<()> {
    Ok(cria.switch_branch(MessageId(message_id)).await?)
}

/// The visible branch with sibling positions, attachments, citations and notices.
#[tauri::command]
pub async fn get_conversation_view(
    cria: State<'_, Cria>,
    conversation_id: i64,
) -> IpcResult<Vec<MessageViewDto>> {
    let views = cria
        .conversation_view(ConversationId(conversation_id))
        .await?;
    Ok(views.into_iter().map(Into::into).collect())
}

/// Reads a file the user has just dropped or picked (in the ingest worker) for its chip: kind,
/// pages, scans, thumbnail; `on_progress` hears how far a long document is. An error refuses
/// the file before the message is sent; the parse is kept for the send.
/// `preview_id` (chosen by the window, unique among its previews) lets
/// `cancel_attachment_preview` stop it.
#[tauri::command]
pub async fn preview_attachment(
    cria: State<'_, Cria>,
    previews: State<'_, Previews>,
    path: String,
    preview_id: u64,
    on_progress: Channel<ReadingProgressDto>,
) -> IpcResult<AttachmentPreviewDto> {
    let path = attachment_path(path)?;
    let cancel = PreviewCancel::new();
    let _running = previews
        .start(preview_id, cancel.clone())
        .ok_or_else(|| IpcError {
            kind: ErrorKind::InvalidInput,
            message: format!("preview {preview_id} is running already"),
        })?;
    let preview = cria
        .preview_attachment(path, cancel, |progress| {
            let _ = on_progress.send(ReadingProgressDto {
                done_pages: progress.done_pages,
                total_pages: progress.total_pages,
            });
        })
        .await?;
    Ok(preview.into())
}

/// Stops the preview `preview_id` (the user took the file off before it was read); false when
/// it is not running (any more).
#[tauri::command]
pub fn cancel_attachment_preview(previews: State<'_, Previews>, preview_id: u64) -> bool {
    previews
        .running(&preview_id)
        .map(|cancel| cancel.cancel())
        .is_some()
}

/// An attachment's thumbnail as a `data:` URL (re-encoded by the backend), if it has one.
#[tauri::command]
pub async fn get_attachment_thumbnail(
    cria: State<'_, Cria>,
    attachment_id: i64,
) -> IpcResult<Option<String>> {
    let bytes = cria
        .attachment_thumbnail(AttachmentId(attachment_id))
        .await?;
    Ok(bytes.as_deref().map(image_data_url))
}

/// One page of an attached document, for the preview a citation opens.
#[tauri::command]
pub async fn get_page_preview(
    cria: State<'_, Cria>,
    attachment_id: i64,
    page_number: u32,
) -> IpcResult<PagePreviewDto> {
    let preview = cria
        .page_preview(AttachmentId(attachment_id), page_number)
        .await?;
    Ok(preview.into())
}

#[tauri::command]
pub async fn get_chat_settings(cria: State<'_, Cria>) -> IpcResult<ChatSettingsDto> {
    Ok(cria.chat_settings().await?.into())
}

/// Saves the chat settings; every value is checked first and a bad one changes nothing.
#[tauri::command]
pub async fn set_chat_settings(cria: State<'_, Cria>, settings: ChatSettingsDto) -> IpcResult<()> {
    Ok(cria.set_chat_settings(settings.into()).await?)
}

/// Pins a conversation to a profile or a model; `None` routes each message automatically.
#[tauri::command]
pub async fn pin_conversation(
    cria: State<'_, Cria>,
    conversation_id: i64,
    pin: Option<ModelPinDto>,
) -> IpcResult<()> {
    Ok(cria
        .pin_conversation(ConversationId(conversation_id), pin.map(Into::into))
        .await?)
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

/// Context size, threads and GPU offload (`None`: automatic).
#[tauri::command]
pub async fn get_engine_settings(cria: State<'_, Cria>) -> IpcResult<EngineSettingsDto> {
    Ok(cria.engine_settings().await?.into())
}

/// Saves the engine settings and reloads the loaded model with them.
#[tauri::command]
pub async fn set_engine_settings(
    cria: State<'_, Cria>,
    settings: EngineSettingsDto,
) -> IpcResult<()> {
    Ok(cria.set_engine_settings(settings.into()).await?)
}

/// The compute devices llama.cpp sees, with their memory.
#[tauri::command]
pub async fn list_devices(cria: State<'_, Cria>) -> IpcResult<Vec<DeviceDto>> {
    Ok(cria.devices().await?.into_iter().map(Into::into).collect())
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

/// Work the window can stop, by its key, while it runs: downloads by catalog id, previews by
/// the window's id for each.
pub struct Stoppable<K, C> {
    running: std::sync::Mutex<std::collections::HashMap<K, C>>,
}

/// Downloads running now, so `cancel_download` can reach them.
pub type Downloads = Stoppable<String, DownloadCancel>;

/// Attachment previews running now, so a file taken off can be stopped.
pub type Previews = Stoppable<u64, PreviewCancel>;

impl<K, C> Default for Stoppable<K, C> {
    fn default() -> Self {
        Stoppable {
            running: std::sync::Mutex::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, C: Clone> Stoppable<K, C> {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<K, C>> {
        // The map holds plain tokens: a panic elsewhere cannot leave it half-updated.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers `cancel` under `key`, or `None` when something runs under it already. The
    /// entry goes when the returned guard is dropped, however the work ends.
    fn start(&self, key: K, cancel: C) -> Option<Started<'_, K, C>> {
        let mut running = self.lock();
        if running.contains_key(&key) {
            return None;
        }
        running.insert(key.clone(), cancel);
        Some(Started { within: self, key })
    }

    /// The cancel token of what runs under `key`.
    fn running(&self, key: &K) -> Option<C> {
        self.lock().get(key).cloned()
    }
}

/// Takes its entry out of a [`Stoppable`] when dropped.
struct Started<'a, K: std::hash::Hash + Eq + Clone, C: Clone> {
    within: &'a Stoppable<K, C>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Clone, C: Clone> Drop for Started<'_, K, C> {
    fn drop(&mut self) {
        self.within.lock().remove(&self.key);
    }
}

/// The catalog's downloadable entries, each with its fit verdict for this machine and whether
/// it is in the library already.
#[tauri::command]
pub async fn list_catalog(cria: State<'_, Cria>) -> IpcResult<Vec<CatalogEntryDto>> {
    let installed: Vec<String> = cria
        .list_models()
        .await?
        .into_iter()
        .map(|model| model.id)
        .collect();
    let mut entries = Vec::new();
    for entry in cria.catalog_entries()? {
        // A catalog entry's estimate needs no file, so a failure here is unexpected; the entry
        // stays downloadable and says why no verdict is shown.
        let (verdict, verdict_reason) = match cria.fit(&entry.id).await {
            Ok(report) => (report.verdict_label, report.plan.reason),
            Err(error) => (String::new(), format!("No fit estimate: {error}")),
        };
        let downloaded = installed.contains(&entry.id);
        entries.push(CatalogEntryDto::new(
            entry,
            verdict,
            verdict_reason,
            downloaded,
        ));
    }
    Ok(entries)
}

/// Downloads a catalog entry into the library, streaming progress over `on_event`, and resolves
/// with the new library model. A partial file from an earlier try (or an earlier run of the
/// app) is resumed. Cancelling rejects with the `CANCELLED` kind and keeps the partial file.
#[tauri::command]
pub async fn download_model(
    cria: State<'_, Cria>,
    downloads: State<'_, Downloads>,
    id: String,
    with_vision: bool,
    on_event: Channel<DownloadEventDto>,
) -> IpcResult<ModelSummaryDto> {
    let cancel = DownloadCancel::new();
    let _running = downloads
        .start(id.clone(), cancel.clone())
        .ok_or_else(|| IpcError {
            kind: ErrorKind::InvalidInput,
            message: format!("{id} is already being downloaded; wait for it or cancel it first."),
        })?;
    let mut forward = |event: DownloadEvent| {
        // A closed channel means the window went away; the download goes on regardless.
        let _ = on_event.send(event.into());
    };
    match cria
        .pull_model(&id, with_vision, &cancel, &mut forward)
        .await
    {
        Ok(model) => Ok(model.into()),
        Err(CoreError::Models(ModelsError::Cancelled)) => Err(IpcError {
            kind: ErrorKind::Cancelled,
            message: ModelsError::Cancelled.to_string(),
        }),
        Err(error) => Err(error.into()),
    }
}

/// Cancels a running download of catalog entry `id`. Resolves to false when none was running.
#[tauri::command]
pub fn cancel_download(downloads: State<'_, Downloads>, id: String) -> bool {
    downloads
        .running(&id)
        .map(|cancel| cancel.cancel())
        .is_some()
}
