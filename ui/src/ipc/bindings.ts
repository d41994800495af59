// Generated from src-tauri/src/ipc.rs and error.rs by ts-rs. Do not edit by hand:
// run `CRIA_UPDATE_BINDINGS=1 cargo test -p cria-app typescript_bindings`.

export type ConversationDto = { id: number, title: string, updatedAtMs: number, pinned: boolean, 
/**
 * The model this conversation always uses; `None`: chosen per message.
 */
modelPin: ModelPinDto | null, };

export type RoleDto = "system" | "user" | "assistant";

export type MessageStatusDto = "streaming" | "complete" | "interrupted" | "failed" | "cancelled";

export type GenerationStatsDto = { modelId: string | null, 
/**
 * Which engine path answered (for example `fast` or `vision`).
 */
route: string | null, promptTokens: number | null, completionTokens: number | null, 
/**
 * Time to first token.
 */
ttftMs: number | null, tokensPerSecond: number | null, 
/**
 * Why generation ended: `stop`, `stop_string`, `length`, `context_full`, `cancelled`.
 */
finishReason: string | null, };

export type MessageDto = { id: number, parentId: number | null, role: RoleDto, content: string, status: MessageStatusDto, error: string | null, createdAtMs: number, 
/**
 * How the reply was generated; `None` for the user's messages and for replies that
 * recorded nothing (still streaming, or failed before the engine started).
 */
stats: GenerationStatsDto | null, };

export type TurnStartedDto = { conversationId: number, userMessageId: number, replyMessageId: number, };

export type TurnEventDto = { "event": "preparing", "data": { fileName: string, donePages: number, totalPages: number, } } | { "event": "started", "data": TurnStartedDto } | { "event": "loadingModel", "data": { model: string, } } | { "event": "token", "data": { text: string, } } | { "event": "summary", "data": { notices: Array<string>, citations: Array<CitationDto>, } } | { "event": "finished", "data": { status: MessageStatusDto, error: string | null, } } | { "event": "titled", "data": { title: string, } };

export type CitationDto = { 
/**
 * Byte offsets into the reply's text.
 */
spanStart: number, spanEnd: number, attachmentId: number, fileName: string, pageNumber: number, };

export type ModelPinDto = { "kind": "fast" } | { "kind": "vision" } | { "kind": "model", "modelId": string };

export type AttachmentArgDto = string | { name: string, bytesBase64: string, };

export type AttachmentSummaryDto = { id: number, fileName: string, mime: string, sizeBytes: number, 
/**
 * `image`, `document`, `text` or `other`.
 */
kind: string, pageCount: number, 
/**
 * Pages without a usable text layer (sent to the model as images).
 */
scannedPages: number, 
/**
 * Whether `get_attachment_thumbnail` has a picture for it.
 */
hasThumbnail: boolean, };

export type AttachmentPreviewDto = { fileName: string, 
/**
 * `image`, `document`, `text` or `other`.
 */
kind: string, sizeBytes: number, pageCount: number, 
/**
 * Pages without a usable text layer (sent to the model as images).
 */
scannedPages: number, 
/**
 * A `data:` URL of the thumbnail re-encoded by the backend, for pictures and scans.
 */
thumbnail: string | null, };

export type ReadingProgressDto = { donePages: number, totalPages: number, };

export type MessageViewDto = { message: MessageDto, 
/**
 * 0-based.
 */
siblingIndex: number, siblingCount: number, 
/**
 * The message and its siblings, oldest first.
 */
siblingIds: Array<number>, notices: Array<string>, attachments: Array<AttachmentSummaryDto>, citations: Array<CitationDto>, };

export type PagePreviewDto = { attachmentId: number, fileName: string, pageNumber: number, pageCount: number, text: string, 
/**
 * A `data:image/png;base64,…` URL.
 */
imageDataUrl: string | null, };

export type ChatSettingsDto = { systemPrompt: string | null, autoTitle: boolean, temperature: number, topP: number, minP: number, 
/**
 * `None`: a quarter of the context (256 to 2,048 tokens).
 */
maxReplyTokens: number | null, 
/**
 * Library model ids of the fast (text) and vision profiles.
 */
fastProfile: string | null, visionProfile: string | null, };

export type EngineSettingsDto = { contextSize: number | null, threads: number | null, gpuLayers: number | null, };

export type DeviceDto = { name: string, description: string, backend: string, 
/**
 * `cpu`, `gpu`, `igpu`, `accel` or `unknown`.
 */
kind: string, memoryTotalBytes: number, memoryFreeBytes: number, };

export type ModelSummaryDto = { id: string, name: string, architecture: string, sizeBytes: number, quantization: string, contextLength: number | null, vision: boolean, 
/**
 * "fits on GPU", "hybrid", "CPU only", "does not fit", or "" when unknown.
 */
verdict: string, verdictReason: string, active: boolean, };

export type LoadedModelDto = { id: string, architecture: string, contextSize: number, 
/**
 * Why the context has this size (the user's choice, or what memory allowed).
 */
contextReason: string, threads: number, 
/**
 * Layers on a GPU, of `offloadable_layers`.
 */
gpuLayers: number, offloadableLayers: number, gpuWeightBytes: number, gpuDevices: Array<string>, cpuFallbackReason: string | null, vision: boolean, };

export type SnippetPartDto = { text: string, highlighted: boolean, };

export type SearchHitKindDto = "message" | "document";

export type SearchHitDto = { kind: SearchHitKindDto, conversationId: number | null, conversationTitle: string | null, messageId: number | null, pageNumber: number | null, 
/**
 * For document hits: the file's name as it was attached.
 */
documentName: string | null, parts: Array<SnippetPartDto>, };

export type ThemeDto = "light" | "dark" | "system";

export type ExportFormatDto = "markdown" | "json";

export type AppInfoDto = { dataDir: string, exportsDir: string, };

export type ErrorKind = "NOT_FOUND" | "INVALID_INPUT" | "ENGINE" | "MODEL" | "STORAGE" | "INTERNAL" | "CANCELLED";

export type IpcError = { kind: ErrorKind, message: string, };

export type CatalogEntryDto = { id: string, name: string, quantization: string, sizeBytes: number, vision: boolean, note: string | null, verdict: string, verdictReason: string, downloaded: boolean, };

export type DownloadEventDto = { "event": "started", "data": { fileName: string, resumeFrom: number, } } | { "event": "progress", "data": { fileIndex: number, fileCount: number, fileName: string, jobBytes: number, jobTotal: number | null, bytesPerSecond: number, etaSeconds: number | null, } } | { "event": "restarted", "data": { fileName: string, reason: string, } } | { "event": "verified", "data": { fileName: string, } };
