//! Tauri commands: each converts its arguments, calls one core function, converts the result.
//! No logic lives here. The names are listed in `command_names.rs`.

use cria_core::{ConversationId, CoreError, Cria, EXPORTS_DIR, MessageId, checked_external_url};
use cria_engine::CancelToken;
use cria_models::ModelsError;
use cria_models::download::{CancelToken as DownloadCancel, DownloadEvent};
use tauri::State;
use tauri::ipc::Channel;

use crate::error::{ErrorKind, IpcError, IpcResult};
use crate::ipc::{
    AppInfoDto, ConversationDto, ExportFormatDto, LoadedModelDto, MessageDto, ModelSummaryDto,
    SearchHitDto, ThemeDto, TurnEventDto, TurnStartedDto,
};
use crate::ipc::{CatalogEntryDto, DownloadEventDto};

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

/// The cancel switches of the catalog downloads running now, by catalog entry id, so
/// `cancel_download` can reach a download that `download_model` is awaiting.
#[derive(Default)]
pub struct Downloads {
    running: std::sync::Mutex<std::collections::HashMap<String, DownloadCancel>>,
}

impl Downloads {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, DownloadCancel>> {
        // The map holds plain tokens: a panic elsewhere cannot leave it half-updated.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Takes a download's entry out of the map however `download_model` ends (done, failed,
/// cancelled or dropped with the window).
struct RunningDownload<'a> {
    downloads: &'a Downloads,
    id: String,
}

impl Drop for RunningDownload<'_> {
    fn drop(&mut self) {
        self.downloads.lock().remove(&self.id);
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
    {
        let mut running = downloads.lock();
        if running.contains_key(&id) {
            return Err(IpcError {
                kind: ErrorKind::InvalidInput,
                message: format!(
                    "{id} is already being downloaded; wait for it or cancel it first."
                ),
            });
        }
        running.insert(id.clone(), cancel.clone());
    }
    let _running = RunningDownload {
        downloads: &downloads,
        id: id.clone(),
    };
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
    match downloads.lock().get(&id) {
        Some(cancel) => {
            cancel.cancel();
            true
        }
        None => false,
    }
}
