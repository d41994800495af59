//! The data that crosses the IPC boundary. TypeScript types for the UI are generated from these
//! (`ui/src/ipc/bindings.ts`); `tests::typescript_bindings_are_current` fails when they drift.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cria_core::{
    AttachmentInput, AttachmentKind, AttachmentPreview, AttachmentSummary, ChatSettings,
    Conversation, EngineSettings, ExportFormat, LoadedModel, Message, MessageStatus, MessageView,
    ModelPin, ModelSummary, PagePreview, Role, SearchHit, SearchSource, Theme, TurnEvent,
    TurnStarted,
};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{ErrorKind, IpcError};

/// Largest pasted file accepted over IPC (decoded bytes). Larger files are attached by path,
/// which the core reads itself.
pub const MAX_PASTED_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConversationDto {
    pub id: i64,
    pub title: String,
    pub updated_at_ms: i64,
    pub pinned: bool,
    /// The model this conversation always uses; `None`: chosen per message.
    pub model_pin: Option<ModelPinDto>,
}

impl From<Conversation> for ConversationDto {
    fn from(conversation: Conversation) -> Self {
        ConversationDto {
            id: conversation.id.0,
            title: conversation.title,
            updated_at_ms: conversation.updated_at_ms,
            pinned: conversation.pinned,
            model_pin: conversation
                .model_profile
                .as_deref()
                .and_then(ModelPin::from_setting)
                .map(Into::into),
        }
    }
}

/// A conversation's model pin: a profile (fast / vision) or one library model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", content = "modelId", rename_all = "lowercase")]
pub enum ModelPinDto {
    Fast,
    Vision,
    Model(String),
}

impl From<ModelPin> for ModelPinDto {
    fn from(pin: ModelPin) -> Self {
        match pin {
            ModelPin::Fast => ModelPinDto::Fast,
            ModelPin::Vision => ModelPinDto::Vision,
            ModelPin::Model(id) => ModelPinDto::Model(id),
        }
    }
}

impl From<ModelPinDto> for ModelPin {
    fn from(pin: ModelPinDto) -> Self {
        match pin {
            ModelPinDto::Fast => ModelPin::Fast,
            ModelPinDto::Vision => ModelPin::Vision,
            ModelPinDto::Model(id) => ModelPin::Model(id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum RoleDto {
    System,
    User,
    Assistant,
}

impl From<Role> for RoleDto {
    fn from(role: Role) -> Self {
        match role {
            Role::System => RoleDto::System,
            Role::User => RoleDto::User,
            Role::Assistant => RoleDto::Assistant,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatusDto {
    Streaming,
    Complete,
    Interrupted,
    Failed,
    Cancelled,
}

impl From<MessageStatus> for MessageStatusDto {
    fn from(status: MessageStatus) -> Self {
        match status {
            MessageStatus::Streaming => MessageStatusDto::Streaming,
            MessageStatus::Complete => MessageStatusDto::Complete,
            MessageStatus::Interrupted => MessageStatusDto::Interrupted,
            MessageStatus::Failed => MessageStatusDto::Failed,
            MessageStatus::Cancelled => MessageStatusDto::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MessageDto {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub role: RoleDto,
    pub content: String,
    pub status: MessageStatusDto,
    pub error: Option<String>,
    pub created_at_ms: i64,
    /// How the reply was generated; `None` for the user's messages and for replies that
    /// recorded nothing (still streaming, or failed before the engine started).
    pub stats: Option<GenerationStatsDto>,
}

impl From<Message> for MessageDto {
    fn from(message: Message) -> Self {
        let stats = message.stats;
        let stats = GenerationStatsDto {
            model_id: stats.model_id,
            route: stats.route,
            prompt_tokens: stats.prompt_tokens,
            completion_tokens: stats.completion_tokens,
            ttft_ms: stats.ttft_ms,
            tokens_per_second: stats.tokens_per_second,
            finish_reason: stats.finish_reason,
        };
        MessageDto {
            id: message.id.0,
            parent_id: message.parent_id.map(|id| id.0),
            role: message.role.into(),
            content: message.content,
            status: message.status.into(),
            error: message.error,
            created_at_ms: message.created_at_ms,
            stats: (!stats.is_empty()).then_some(stats),
        }
    }
}

/// Figures about one reply, for the quiet line under it. Every field is optional: a test
/// engine, a reply cut short or an older database may lack some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GenerationStatsDto {
    pub model_id: Option<String>,
    /// Which engine path answered (for example `fast` or `vision`).
    pub route: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// Time to first token.
    pub ttft_ms: Option<u32>,
    pub tokens_per_second: Option<f64>,
    /// Why generation ended: `stop`, `stop_string`, `length`, `context_full`, `cancelled`.
    pub finish_reason: Option<String>,
}

impl GenerationStatsDto {
    fn is_empty(&self) -> bool {
        self.model_id.is_none()
            && self.route.is_none()
            && self.prompt_tokens.is_none()
            && self.completion_tokens.is_none()
            && self.ttft_ms.is_none()
            && self.tokens_per_second.is_none()
            && self.finish_reason.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TurnStartedDto {
    pub conversation_id: i64,
    pub user_message_id: i64,
    pub reply_message_id: i64,
}

impl From<TurnStarted> for TurnStartedDto {
    fn from(started: TurnStarted) -> Self {
        TurnStartedDto {
            conversation_id: started.conversation_id.0,
            user_message_id: started.user_message_id.0,
            reply_message_id: started.reply_message_id.0,
        }
    }
}

/// Streamed over a Tauri `Channel` while a reply is generated, in order.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(tag = "event", content = "data", rename_all = "camelCase")]
pub enum TurnEventDto {
    /// An attachment is being read (before `started`).
    #[serde(rename_all = "camelCase")]
    Preparing {
        file_name: String,
        done_pages: u32,
        total_pages: u32,
    },
    Started(TurnStartedDto),
    /// The reply waits for its model to load (after `started`, before the first token).
    LoadingModel {
        model: String,
    },
    Token {
        text: String,
    },
    /// What the user should know about the reply's context, and its page citations.
    Summary {
        notices: Vec<String>,
        citations: Vec<CitationDto>,
    },
    Finished {
        status: MessageStatusDto,
        error: Option<String>,
    },
    /// The conversation was given a title by the model.
    Titled {
        title: String,
    },
}

/// A span of a reply that cites a page of an attached document.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CitationDto {
    /// Byte offsets into the reply's text.
    pub span_start: u32,
    pub span_end: u32,
    pub attachment_id: i64,
    pub file_name: String,
    pub page_number: u32,
}

impl From<cria_core::CitationView> for CitationDto {
    fn from(citation: cria_core::CitationView) -> Self {
        CitationDto {
            span_start: citation.span_start,
            span_end: citation.span_end,
            attachment_id: citation.attachment_id.0,
            file_name: citation.file_name,
            page_number: citation.page_number,
        }
    }
}

impl From<TurnEvent> for TurnEventDto {
    fn from(event: TurnEvent) -> Self {
        match event {
            TurnEvent::Preparing(progress) => TurnEventDto::Preparing {
                file_name: progress.file_name,
                done_pages: progress.done_pages,
                total_pages: progress.total_pages,
            },
            TurnEvent::Started(started) => TurnEventDto::Started(started.into()),
            TurnEvent::LoadingModel(model) => TurnEventDto::LoadingModel { model },
            TurnEvent::Token(text) => TurnEventDto::Token { text },
            TurnEvent::Summary(summary) => TurnEventDto::Summary {
                notices: summary.notices,
                citations: summary.citations.into_iter().map(Into::into).collect(),
            },
            TurnEvent::Finished { status, error } => TurnEventDto::Finished {
                status: status.into(),
                error,
            },
            TurnEvent::Titled(title) => TurnEventDto::Titled { title },
        }
    }
}

/// A piece of a search snippet; `highlighted` pieces matched the query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SnippetPartDto {
    pub text: String,
    pub highlighted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum SearchHitKindDto {
    Message,
    Document,
}

/// One search result. Message hits name their conversation; document hits their page.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SearchHitDto {
    pub kind: SearchHitKindDto,
    pub conversation_id: Option<i64>,
    pub conversation_title: Option<String>,
    pub message_id: Option<i64>,
    pub page_number: Option<u32>,
    /// For document hits: the file's name as it was attached.
    pub document_name: Option<String>,
    pub parts: Vec<SnippetPartDto>,
}

impl From<SearchHit> for SearchHitDto {
    fn from(hit: SearchHit) -> Self {
        let parts = snippet_parts(&hit.snippet, &hit.highlights);
        match hit.source {
            SearchSource::Message {
                conversation_id,
                conversation_title,
                message_id,
                ..
            } => SearchHitDto {
                kind: SearchHitKindDto::Message,
                conversation_id: Some(conversation_id.0),
                conversation_title: Some(conversation_title),
                message_id: Some(message_id.0),
                page_number: None,
                document_name: None,
                parts,
            },
            SearchSource::Chunk {
                page_number,
                attached,
                ..
            } => SearchHitDto {
                kind: SearchHitKindDto::Document,
                conversation_id: attached.as_ref().map(|home| home.conversation_id.0),
                conversation_title: attached
                    .as_ref()
                    .map(|home| home.conversation_title.clone()),
                message_id: attached.as_ref().map(|home| home.message_id.0),
                page_number: Some(page_number),
                document_name: attached.map(|home| home.file_name),
                parts,
            },
        }
    }
}

/// Splits a snippet at its highlight byte ranges. Ranges that overlap, run backwards or cut a
/// character in two are skipped rather than trusted.
fn snippet_parts(snippet: &str, highlights: &[std::ops::Range<usize>]) -> Vec<SnippetPartDto> {
    let mut parts = Vec::new();
    let mut at = 0;
    let mut push = |text: &str, highlighted: bool| {
        if !text.is_empty() {
            parts.push(SnippetPartDto {
                text: text.to_string(),
                highlighted,
            });
        }
    };
    let mut ranges = highlights.to_vec();
    ranges.sort_by_key(|range| range.start);
    for range in ranges {
        if range.start < at || range.end <= range.start {
            continue;
        }
        let (Some(before), Some(matched)) =
            (snippet.get(at..range.start), snippet.get(range.clone()))
        else {
            continue;
        };
        push(before, false);
        push(matched, true);
        at = range.end;
    }
    push(snippet.get(at..).unwrap_or_default(), false);
    parts
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ThemeDto {
    Light,
    Dark,
    System,
}

impl From<Theme> for ThemeDto {
    fn from(theme: Theme) -> Self {
        match theme {
            Theme::Light => ThemeDto::Light,
            Theme::Dark => ThemeDto::Dark,
            Theme::System => ThemeDto::System,
        }
    }
}

impl From<ThemeDto> for Theme {
    fn from(theme: ThemeDto) -> Self {
        match theme {
            ThemeDto::Light => Theme::Light,
            ThemeDto::Dark => Theme::Dark,
            ThemeDto::System => Theme::System,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormatDto {
    Markdown,
    Json,
}

impl From<ExportFormatDto> for ExportFormat {
    fn from(format: ExportFormatDto) -> Self {
        match format {
            ExportFormatDto::Markdown => ExportFormat::Markdown,
            ExportFormatDto::Json => ExportFormat::Json,
        }
    }
}

/// Where Cria keeps its files, for the settings panel.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppInfoDto {
    pub data_dir: String,
    pub exports_dir: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ModelSummaryDto {
    pub id: String,
    pub name: String,
    pub architecture: String,
    pub size_bytes: u64,
    pub quantization: String,
    pub context_length: Option<u64>,
    pub vision: bool,
    /// "fits on GPU", "hybrid", "CPU only", "does not fit", or "" when unknown.
    pub verdict: String,
    pub verdict_reason: String,
    pub active: bool,
}

impl From<ModelSummary> for ModelSummaryDto {
    fn from(model: ModelSummary) -> Self {
        ModelSummaryDto {
            id: model.id,
            name: model.name,
            architecture: model.architecture,
            size_bytes: model.size_bytes,
            quantization: model.quantization,
            context_length: model.context_length,
            vision: model.vision,
            verdict: model.verdict,
            verdict_reason: model.verdict_reason,
            active: model.active,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LoadedModelDto {
    pub id: String,
    pub architecture: String,
    pub context_size: u32,
    /// Why the context has this size (the user's choice, or what memory allowed).
    pub context_reason: String,
    pub threads: u32,
    /// Layers on a GPU, of `offloadable_layers`.
    pub gpu_layers: u32,
    pub offloadable_layers: u32,
    pub gpu_weight_bytes: u64,
    pub gpu_devices: Vec<String>,
    pub cpu_fallback_reason: Option<String>,
    pub vision: bool,
}

impl From<LoadedModel> for LoadedModelDto {
    fn from(model: LoadedModel) -> Self {
        LoadedModelDto {
            id: model.id,
            architecture: model.architecture,
            context_size: model.context_size,
            context_reason: model.context_reason,
            threads: model.threads,
            gpu_layers: model.gpu_layers,
            offloadable_layers: model.offloadable_layers,
            gpu_weight_bytes: model.gpu_weight_bytes,
            gpu_devices: model.gpu_devices,
            cpu_fallback_reason: model.cpu_fallback_reason,
            vision: model.vision,
        }
    }
}

/// A file attached from the webview: a path the user dropped or typed (the core checks and
/// reads it; the shell never does), or a pasted image as base64.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(untagged)]
pub enum AttachmentArgDto {
    Path(String),
    #[serde(rename_all = "camelCase")]
    Pasted {
        name: String,
        bytes_base64: String,
    },
}

/// A path the window sent for an attachment; the core checks and reads the file itself.
pub fn attachment_path(path: String) -> Result<std::path::PathBuf, IpcError> {
    if path.trim().is_empty() {
        return Err(invalid(
            "An attachment has an empty path. Drop the file again.".into(),
        ));
    }
    Ok(path.into())
}

impl TryFrom<AttachmentArgDto> for AttachmentInput {
    type Error = IpcError;

    fn try_from(arg: AttachmentArgDto) -> Result<Self, IpcError> {
        match arg {
            AttachmentArgDto::Path(path) => Ok(AttachmentInput::Path(attachment_path(path)?)),
            AttachmentArgDto::Pasted { name, bytes_base64 } => {
                // Checked on the encoded length first, so an oversized paste is never decoded.
                if bytes_base64.len() / 4 * 3 > MAX_PASTED_BYTES + 3 {
                    return Err(invalid(format!(
                        "{name}: a pasted file can be at most {} MiB. Save it and attach the file instead.",
                        MAX_PASTED_BYTES / (1024 * 1024)
                    )));
                }
                let bytes = BASE64.decode(bytes_base64.as_bytes()).map_err(|error| {
                    invalid(format!(
                        "{name}: the pasted data is not valid base64 ({error})."
                    ))
                })?;
                if bytes.len() > MAX_PASTED_BYTES {
                    return Err(invalid(format!(
                        "{name}: a pasted file can be at most {} MiB. Save it and attach the file instead.",
                        MAX_PASTED_BYTES / (1024 * 1024)
                    )));
                }
                Ok(AttachmentInput::Bytes { name, bytes })
            }
        }
    }
}

fn invalid(message: String) -> IpcError {
    IpcError {
        kind: ErrorKind::InvalidInput,
        message,
    }
}

/// A file the user has just attached, as its chip shows it before the message is sent
/// (`preview_attachment`).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentPreviewDto {
    pub file_name: String,
    /// `image`, `document`, `text` or `other`.
    pub kind: String,
    pub size_bytes: u64,
    pub page_count: u32,
    /// Pages without a usable text layer (sent to the model as images).
    pub scanned_pages: u32,
    /// A `data:` URL of the thumbnail re-encoded by the backend, for pictures and scans.
    pub thumbnail: Option<String>,
}

impl From<AttachmentPreview> for AttachmentPreviewDto {
    fn from(preview: AttachmentPreview) -> Self {
        AttachmentPreviewDto {
            file_name: preview.name,
            kind: attachment_kind_name(preview.kind).into(),
            size_bytes: preview.size_bytes,
            page_count: preview.page_count,
            scanned_pages: preview.scanned_pages,
            thumbnail: preview.thumbnail.as_deref().map(image_data_url),
        }
    }
}

fn attachment_kind_name(kind: AttachmentKind) -> &'static str {
    match kind {
        AttachmentKind::Image => "image",
        AttachmentKind::Document => "document",
        AttachmentKind::Text => "text",
        AttachmentKind::Other => "other",
    }
}

/// How far reading an attached file has got (`preview_attachment`'s progress channel).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReadingProgressDto {
    pub done_pages: u32,
    pub total_pages: u32,
}

/// An attachment as its chip shows it.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentSummaryDto {
    pub id: i64,
    pub file_name: String,
    pub mime: String,
    pub size_bytes: u64,
    /// `image`, `document`, `text` or `other`.
    pub kind: String,
    pub page_count: u32,
    /// Pages without a usable text layer (sent to the model as images).
    pub scanned_pages: u32,
    /// Whether `get_attachment_thumbnail` has a picture for it.
    pub has_thumbnail: bool,
}

impl From<AttachmentSummary> for AttachmentSummaryDto {
    fn from(summary: AttachmentSummary) -> Self {
        let attachment = summary.attachment;
        AttachmentSummaryDto {
            id: attachment.id.0,
            file_name: attachment.original_name,
            mime: attachment.mime,
            size_bytes: attachment.size,
            kind: attachment_kind_name(attachment.kind).into(),
            page_count: summary.page_count,
            scanned_pages: summary.scanned_pages,
            has_thumbnail: attachment.thumbnail_sha256.is_some(),
        }
    }
}

/// A message of the visible branch with its place among its siblings ("‹ 2/3 ›"), its
/// attachments, its page citations and what was left out of its context.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MessageViewDto {
    pub message: MessageDto,
    /// 0-based.
    pub sibling_index: u32,
    pub sibling_count: u32,
    /// The message and its siblings, oldest first.
    pub sibling_ids: Vec<i64>,
    pub notices: Vec<String>,
    pub attachments: Vec<AttachmentSummaryDto>,
    pub citations: Vec<CitationDto>,
}

impl From<MessageView> for MessageViewDto {
    fn from(view: MessageView) -> Self {
        let notices = view.entry.message.notices.clone();
        MessageViewDto {
            message: view.entry.message.into(),
            sibling_index: u32::try_from(view.entry.sibling_index).unwrap_or(u32::MAX),
            sibling_count: u32::try_from(view.entry.sibling_count).unwrap_or(u32::MAX),
            sibling_ids: view.sibling_ids.iter().map(|id| id.0).collect(),
            notices,
            attachments: view.attachments.into_iter().map(Into::into).collect(),
            citations: view.citations.into_iter().map(Into::into).collect(),
        }
    }
}

/// A page a citation points at: its text, and its picture for a scanned page or an image.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PagePreviewDto {
    pub attachment_id: i64,
    pub file_name: String,
    pub page_number: u32,
    pub page_count: u32,
    pub text: String,
    /// A `data:image/png;base64,…` URL.
    pub image_data_url: Option<String>,
}

impl From<PagePreview> for PagePreviewDto {
    fn from(preview: PagePreview) -> Self {
        PagePreviewDto {
            attachment_id: preview.attachment_id.0,
            file_name: preview.file_name,
            page_number: preview.page_number,
            page_count: preview.page_count,
            text: preview.text,
            image_data_url: preview.image_png.as_deref().map(image_data_url),
        }
    }
}

/// A `data:` URL for image bytes the backend encoded itself (PNG or JPEG, told apart by their
/// signature), so the webview shows them without any file access.
pub fn image_data_url(bytes: &[u8]) -> String {
    let mime = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else {
        "image/png"
    };
    format!("data:{mime};base64,{}", BASE64.encode(bytes))
}

/// How models are loaded; `null` is automatic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EngineSettingsDto {
    pub context_size: Option<u32>,
    pub threads: Option<u32>,
    pub gpu_layers: Option<u32>,
}

impl From<EngineSettings> for EngineSettingsDto {
    fn from(settings: EngineSettings) -> Self {
        EngineSettingsDto {
            context_size: settings.context_size,
            threads: settings.threads,
            gpu_layers: settings.gpu_layers,
        }
    }
}

impl From<EngineSettingsDto> for EngineSettings {
    fn from(settings: EngineSettingsDto) -> Self {
        EngineSettings {
            context_size: settings.context_size,
            threads: settings.threads,
            gpu_layers: settings.gpu_layers,
        }
    }
}

/// A compute device llama.cpp sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DeviceDto {
    pub name: String,
    pub description: String,
    pub backend: String,
    /// `cpu`, `gpu`, `igpu`, `accel` or `unknown`.
    pub kind: String,
    pub memory_total_bytes: u64,
    pub memory_free_bytes: u64,
}

impl From<cria_engine::DeviceInfo> for DeviceDto {
    fn from(device: cria_engine::DeviceInfo) -> Self {
        DeviceDto {
            name: device.name,
            description: device.description,
            backend: device.backend,
            kind: device.kind,
            memory_total_bytes: device.memory_total_bytes,
            memory_free_bytes: device.memory_free_bytes,
        }
    }
}

/// How replies are written (settings panel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChatSettingsDto {
    pub system_prompt: Option<String>,
    pub auto_title: bool,
    pub temperature: f32,
    pub top_p: f32,
    pub min_p: f32,
    /// `None`: a quarter of the context (256 to 2,048 tokens).
    pub max_reply_tokens: Option<u32>,
    /// Library model ids of the fast (text) and vision profiles.
    pub fast_profile: Option<String>,
    pub vision_profile: Option<String>,
}

impl From<ChatSettings> for ChatSettingsDto {
    fn from(settings: ChatSettings) -> Self {
        ChatSettingsDto {
            system_prompt: settings.system_prompt,
            auto_title: settings.auto_title,
            temperature: settings.temperature,
            top_p: settings.top_p,
            min_p: settings.min_p,
            max_reply_tokens: settings.max_reply_tokens,
            fast_profile: settings.fast_profile,
            vision_profile: settings.vision_profile,
        }
    }
}

impl From<ChatSettingsDto> for ChatSettings {
    fn from(settings: ChatSettingsDto) -> Self {
        ChatSettings {
            system_prompt: settings.system_prompt,
            auto_title: settings.auto_title,
            temperature: settings.temperature,
            top_p: settings.top_p,
            min_p: settings.min_p,
            max_reply_tokens: settings.max_reply_tokens,
            fast_profile: settings.fast_profile,
            vision_profile: settings.vision_profile,
        }
    }
}

/// Renders every DTO as one TypeScript module.
pub fn typescript_bindings() -> String {
    let config = ts_rs::Config::new().with_large_int("number");
    let declarations = [
        ConversationDto::decl(&config),
        RoleDto::decl(&config),
        MessageStatusDto::decl(&config),
        GenerationStatsDto::decl(&config),
        MessageDto::decl(&config),
        TurnStartedDto::decl(&config),
        TurnEventDto::decl(&config),
        CitationDto::decl(&config),
        ModelPinDto::decl(&config),
        AttachmentArgDto::decl(&config),
        AttachmentSummaryDto::decl(&config),
        AttachmentPreviewDto::decl(&config),
        ReadingProgressDto::decl(&config),
        MessageViewDto::decl(&config),
        PagePreviewDto::decl(&config),
        ChatSettingsDto::decl(&config),
        EngineSettingsDto::decl(&config),
        DeviceDto::decl(&config),
        ModelSummaryDto::decl(&config),
        LoadedModelDto::decl(&config),
        SnippetPartDto::decl(&config),
        SearchHitKindDto::decl(&config),
        SearchHitDto::decl(&config),
        ThemeDto::decl(&config),
        ExportFormatDto::decl(&config),
        AppInfoDto::decl(&config),
        crate::error::ErrorKind::decl(&config),
        crate::error::IpcError::decl(&config),
        CatalogEntryDto::decl(&config),
        DownloadEventDto::decl(&config),
    ];
    let mut module = String::from(
        "// Generated from src-tauri/src/ipc.rs and error.rs by ts-rs. Do not edit by hand:\n\
         // run `CRIA_UPDATE_BINDINGS=1 cargo test -p cria-app typescript_bindings`.\n",
    );
    for declaration in declarations {
        module.push_str("\nexport ");
        module.push_str(&declaration);
        module.push('\n');
    }
    module
}

/// A downloadable catalog entry with its fit verdict for this machine.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntryDto {
    // What `download_model` takes; also the library id once downloaded.
    pub id: String,
    pub name: String,
    pub quantization: String,
    // The published size of its files (the model, plus the vision projector if any).
    pub size_bytes: u64,
    pub vision: bool,
    pub note: Option<String>,
    // "fits on GPU", "hybrid GPU + CPU", "CPU only", "does not fit", or "" when unknown.
    pub verdict: String,
    pub verdict_reason: String,
    // It is in the library already.
    pub downloaded: bool,
}

impl CatalogEntryDto {
    pub fn new(
        entry: cria_core::CatalogEntry,
        verdict: String,
        verdict_reason: String,
        downloaded: bool,
    ) -> Self {
        CatalogEntryDto {
            id: entry.id,
            name: entry.name,
            quantization: entry.quantization,
            size_bytes: entry.size_bytes,
            vision: entry.vision,
            note: entry.note,
            verdict,
            verdict_reason,
            downloaded,
        }
    }
}

/// Streamed over a Tauri `Channel` while a catalog download runs, in order. A job has one or
/// more files (a model may come with its vision projector); each starts with `started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "event", content = "data", rename_all = "camelCase")]
pub enum DownloadEventDto {
    // A file starts; `resume_from > 0` when a partial file from an earlier try is continued.
    #[serde(rename_all = "camelCase")]
    Started { file_name: String, resume_from: u64 },
    #[serde(rename_all = "camelCase")]
    Progress {
        // Which file of the job, from 0.
        file_index: u32,
        file_count: u32,
        file_name: String,
        // Bytes of the whole job on disk so far, and its total when known.
        job_bytes: u64,
        job_total: Option<u64>,
        bytes_per_second: f64,
        eta_seconds: Option<f64>,
    },
    // The partial file was discarded and the file starts over.
    #[serde(rename_all = "camelCase")]
    Restarted { file_name: String, reason: String },
    // A file arrived whole and its sha256 matched.
    #[serde(rename_all = "camelCase")]
    Verified { file_name: String },
}

impl From<cria_core::DownloadEvent> for DownloadEventDto {
    fn from(event: cria_core::DownloadEvent) -> Self {
        use cria_core::DownloadEvent;
        match event {
            DownloadEvent::Started {
                file_name,
                resume_from,
            } => DownloadEventDto::Started {
                file_name,
                resume_from,
            },
            DownloadEvent::Progress(progress) => DownloadEventDto::Progress {
                file_index: u32::try_from(progress.file_index).unwrap_or(u32::MAX),
                file_count: u32::try_from(progress.file_count).unwrap_or(u32::MAX),
                file_name: progress.file_name,
                job_bytes: progress.job_bytes,
                job_total: progress.job_total,
                bytes_per_second: progress.bytes_per_second,
                eta_seconds: progress.eta_seconds,
            },
            DownloadEvent::Restarted { file_name, reason } => {
                DownloadEventDto::Restarted { file_name, reason }
            }
            DownloadEvent::Verified { file_name, .. } => DownloadEventDto::Verified { file_name },
        }
    }
}

#[cfg(test)]
mod snippet_tests {
    use super::*;

    fn parts(snippet: &str, highlights: &[std::ops::Range<usize>]) -> Vec<(String, bool)> {
        snippet_parts(snippet, highlights)
            .into_iter()
            .map(|part| (part.text, part.highlighted))
            .collect()
    }

    #[test]
    fn splits_korean_snippets_at_byte_ranges() {
        let snippet = "오늘 날씨가 좋네요";
        let start = snippet.find("날씨").unwrap();
        assert_eq!(
            parts(
                snippet,
                std::slice::from_ref(&(start..start + "날씨".len()))
            ),
            vec![
                ("오늘 ".to_string(), false),
                ("날씨".to_string(), true),
                ("가 좋네요".to_string(), false)
            ]
        );
    }

    #[test]
    fn skips_ranges_that_cut_characters_or_overlap() {
        assert_eq!(
            parts("날씨", std::slice::from_ref(&(1..3))),
            vec![("날씨".to_string(), false)]
        );
        assert_eq!(
            parts("abcdef", &[1..4, 2..3, 5..99]),
            vec![
                ("a".to_string(), false),
                ("bcd".to_string(), true),
                ("ef".to_string(), false)
            ]
        );
    }
}
