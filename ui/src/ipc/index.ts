// The UI's one door to the Rust side. Only this folder imports `@tauri-apps/api`, so every
// component can be tested with mocked IPC and the UI can run in a plain browser for design work.
import { Channel, invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import type {
  AppInfoDto,
  AttachmentArgDto,
  AttachmentPreviewDto,
  ChatSettingsDto,
  CatalogEntryDto,
  ConversationDto,
  DeviceDto,
  DownloadEventDto,
  EngineSettingsDto,
  ErrorKind,
  ExportFormatDto,
  IpcError,
  LoadedModelDto,
  MessageDto,
  MessageViewDto,
  ModelPinDto,
  ModelSummaryDto,
  PagePreviewDto,
  ReadingProgressDto,
  SearchHitDto,
  ThemeDto,
  TurnEventDto,
  TurnStartedDto,
} from './bindings';

export type * from './bindings';

/** An error from a command, with the kind the UI can branch on and a message for people. */
export class CriaError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string) {
    super(message);
    this.name = 'CriaError';
    this.kind = kind;
  }
}

function isIpcError(value: unknown): value is IpcError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as IpcError).kind === 'string' &&
    typeof (value as IpcError).message === 'string'
  );
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    if (isIpcError(error)) throw new CriaError(error.kind, error.message);
    throw new CriaError('INTERNAL', String(error));
  }
}

export function listConversations(): Promise<ConversationDto[]> {
  return call('list_conversations');
}

export function getConversationMessages(conversationId: number): Promise<MessageDto[]> {
  return call('get_conversation_messages', { conversationId });
}

/** Receives a turn's events in order: `preparing`s, `started`, `token`s, `summary`, `finished`, `titled`. */
export type TurnEventHandler = (event: TurnEventDto) => void;

function channelFor(onEvent: TurnEventHandler): Channel<TurnEventDto> {
  const channel = new Channel<TurnEventDto>();
  channel.onmessage = onEvent;
  return channel;
}

/**
 * Sends a message with its attachments (paths, or pasted files as base64); `onEvent` receives
 * the turn's events. Resolves when the reply has ended. A file that cannot be read rejects
 * with its name and the reason, and nothing is stored.
 */
export function sendMessage(
  conversationId: number | null,
  text: string,
  attachments: AttachmentArgDto[],
  onEvent: TurnEventHandler,
): Promise<TurnStartedDto> {
  return call('send_message', { conversationId, text, attachments, onEvent: channelFor(onEvent) });
}

/** Writes a new reply beside `replyMessageId` and streams it. */
export function regenerate(replyMessageId: number, onEvent: TurnEventHandler): Promise<TurnStartedDto> {
  return call('regenerate', { replyMessageId, onEvent: channelFor(onEvent) });
}

/** Sends an edited copy of a user message as a new branch and streams the reply. */
export function editMessage(messageId: number, text: string, onEvent: TurnEventHandler): Promise<TurnStartedDto> {
  return call('edit_message', { messageId, text, onEvent: channelFor(onEvent) });
}

/** Appends more text to a reply that was stopped, cut off or interrupted. */
export function continueReply(replyMessageId: number, onEvent: TurnEventHandler): Promise<TurnStartedDto> {
  return call('continue_reply', { replyMessageId, onEvent: channelFor(onEvent) });
}

/** Shows the branch through `messageId`. */
export function switchBranch(messageId: number): Promise<void> {
  return call('switch_branch', { messageId });
}

/** The visible branch with sibling positions, attachments, citations and notices. */
export function getConversationView(conversationId: number): Promise<MessageViewDto[]> {
  return call('get_conversation_view', { conversationId });
}

/**
 * Reads a dropped or picked file in the backend (kind, pages, scans, thumbnail) before it is
 * sent, reporting the pages of a long document as they are read; fails with the reason when
 * the file cannot be attached.
 */
export function previewAttachment(
  path: string,
  previewId: number,
  onProgress: (progress: ReadingProgressDto) => void = () => {},
): Promise<AttachmentPreviewDto> {
  const channel = new Channel<ReadingProgressDto>();
  channel.onmessage = onProgress;
  return call('preview_attachment', { path, previewId, onProgress: channel });
}

/** Stops reading a file the user took off again; false when it was no longer being read. */
export function cancelAttachmentPreview(previewId: number): Promise<boolean> {
  return call('cancel_attachment_preview', { previewId });
}

/** A `data:` URL of the attachment's thumbnail (re-encoded by the backend), or null. */
export function getAttachmentThumbnail(attachmentId: number): Promise<string | null> {
  return call('get_attachment_thumbnail', { attachmentId });
}

export function getPagePreview(attachmentId: number, pageNumber: number): Promise<PagePreviewDto> {
  return call('get_page_preview', { attachmentId, pageNumber });
}

export function getChatSettings(): Promise<ChatSettingsDto> {
  return call('get_chat_settings');
}

export function setChatSettings(settings: ChatSettingsDto): Promise<void> {
  return call('set_chat_settings', { settings });
}

/** Context size, threads and GPU layers; null is automatic. */
export function getEngineSettings(): Promise<EngineSettingsDto> {
  return call('get_engine_settings');
}

/** Saves the engine settings; a loaded model is reloaded with them (can take a while). */
export function setEngineSettings(settings: EngineSettingsDto): Promise<void> {
  return call('set_engine_settings', { settings });
}

/** The compute devices llama.cpp sees, with their memory. */
export function listDevices(): Promise<DeviceDto[]> {
  return call('list_devices');
}

/** Pins a conversation to a profile or a model; null routes each message automatically. */
export function pinConversation(conversationId: number, pin: ModelPinDto | null): Promise<void> {
  return call('pin_conversation', { conversationId, pin });
}

/** Stops a reply being generated. Resolves to false when it had already ended. */
export function stopReply(replyMessageId: number): Promise<boolean> {
  return call('stop_reply', { replyMessageId });
}

export function renameConversation(conversationId: number, title: string): Promise<void> {
  return call('rename_conversation', { conversationId, title });
}

export function setConversationPinned(conversationId: number, pinned: boolean): Promise<void> {
  return call('set_conversation_pinned', { conversationId, pinned });
}

/** Archiving hides a conversation; it is the undoable first step of deleting one. */
export function setConversationArchived(conversationId: number, archived: boolean): Promise<void> {
  return call('set_conversation_archived', { conversationId, archived });
}

export function deleteConversation(conversationId: number): Promise<void> {
  return call('delete_conversation', { conversationId });
}

export function search(query: string): Promise<SearchHitDto[]> {
  return call('search', { query });
}

/** Writes the conversation into the data folder's `exports/`; resolves to the file's path. */
export function exportConversation(conversationId: number, format: ExportFormatDto): Promise<string> {
  return call('export_conversation', { conversationId, format });
}

export function getTheme(): Promise<ThemeDto> {
  return call('get_theme');
}

export function setTheme(theme: ThemeDto): Promise<void> {
  return call('set_theme', { theme });
}

export function appInfo(): Promise<AppInfoDto> {
  return call('app_info');
}

/** Opens an https/mailto link in the system browser; the shell checks the scheme again. */
export function openExternalUrl(url: string): Promise<void> {
  return call('open_external_url', { url });
}

export function listModels(): Promise<ModelSummaryDto[]> {
  return call('list_models');
}

/** Adds a GGUF file to the library (validated first; a projector beside it is paired). */
export function importModel(path: string): Promise<ModelSummaryDto> {
  return call('import_model', { path });
}

/** Loads a library model now; it stays the active model across restarts. */
export function selectModel(id: string): Promise<LoadedModelDto> {
  return call('select_model', { id });
}

export function removeModel(id: string): Promise<void> {
  return call('remove_model', { id });
}

export function getLoadedModel(): Promise<LoadedModelDto | null> {
  return call('get_loaded_model');
}

/** What the native drag-and-drop tells the window about files from outside it. */
export type FileDragEvent =
  /** Files were dragged over the window (their paths, when the platform says them early). */
  | { type: 'hover'; paths: string[] }
  /** The drag left the window or was cancelled. */
  | { type: 'leave' }
  /** Files were dropped anywhere on the window, with their real paths. */
  | { type: 'drop'; paths: string[] };

/**
 * Calls `onEvent` as files from outside are dragged over, away from, or dropped on the window
 * (the native drop, which gives real paths). Pointer moves over the window are not passed on:
 * nothing in the UI follows the pointer. Returns a function that stops listening.
 */
export async function onFileDrag(onEvent: (event: FileDragEvent) => void): Promise<() => void> {
  return getCurrentWebview().onDragDropEvent((event) => {
    const payload = event.payload;
    if (payload.type === 'enter') onEvent({ type: 'hover', paths: payload.paths });
    else if (payload.type === 'drop') onEvent({ type: 'drop', paths: payload.paths });
    else if (payload.type === 'leave') onEvent({ type: 'leave' });
  });
}

/**
 * Follows model loads, whatever started them (the models panel, a reply, a restart after a
 * crash): `fraction` of the weights read, or null when no load runs. Returns a function that
 * stops listening.
 */
export function onModelLoadProgress(handler: (fraction: number | null) => void): Promise<() => void> {
  return listen<number | null>('model-load-progress', (event) => {
    const fraction = event.payload;
    handler(typeof fraction === 'number' && fraction >= 0 && fraction <= 1 ? fraction : null);
  });
}

// Catalog downloads

/** The catalog's downloadable entries with the fit verdict for this machine. */
export function listCatalog(): Promise<CatalogEntryDto[]> {
  return call('list_catalog');
}

/**
 * Downloads a catalog entry into the library (resuming a partial file from an earlier try);
 * `onEvent` receives `started`, `progress`, `restarted` and `verified` events in order. Resolves
 * with the new library model; a cancelled download rejects with kind `CANCELLED`.
 */
export function downloadModel(
  id: string,
  withVision: boolean,
  onEvent: (event: DownloadEventDto) => void,
): Promise<ModelSummaryDto> {
  const channel = new Channel<DownloadEventDto>();
  channel.onmessage = onEvent;
  return call('download_model', { id, withVision, onEvent: channel });
}

/** Cancels a running download; the partial file is kept. Resolves to false when none ran. */
export function cancelDownload(id: string): Promise<boolean> {
  return call('cancel_download', { id });
}
