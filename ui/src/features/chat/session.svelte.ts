// The state of the window: the conversation list, the open conversation (its visible branch
// with attachments, citations and sibling positions) and the turn being streamed. Components
// render it; only this module talks to the IPC layer for chat.
import {
  CriaError,
  continueReply,
  editMessage,
  getConversationView,
  listConversations,
  pinConversation,
  regenerate,
  sendMessage,
  stopReply,
  switchBranch,
  type AttachmentSummaryDto,
  type CitationDto,
  type ConversationDto,
  type MessageDto,
  type MessageViewDto,
  type ModelPinDto,
  type TurnEventDto,
  type TurnEventHandler,
  type TurnStartedDto,
} from '../../ipc';
import type { PendingAttachment } from './attachments.svelte';

/**
 * An attachment beside its message. `previewUrl`: the picture the composer already had for a
 * just-sent file, shown until the stored view (with the backend's own thumbnail) replaces it.
 */
export type ShownAttachment = AttachmentSummaryDto & { previewUrl?: string | null };

/** What the view shows beside a message besides its text. */
export interface MessageExtras {
  siblingIndex: number;
  siblingCount: number;
  notices: string[];
  attachments: ShownAttachment[];
  citations: CitationDto[];
}

/** An attachment being read before the reply starts. */
export interface Preparing {
  fileName: string;
  donePages: number;
  totalPages: number;
}

export class ChatSession {
  conversations = $state<ConversationDto[]>([]);
  activeConversationId = $state<number | null>(null);
  messages = $state<MessageDto[]>([]);
  /** Keyed by message id. */
  extras = $state<Record<number, MessageExtras>>({});
  /** The reply being generated, if any. */
  streamingReplyId = $state<number | null>(null);
  /** Whether a turn is under way (from the request until its reply ends). */
  busy = $state(false);
  /** Attachments being read for the message being sent. */
  preparing = $state<Preparing | null>(null);
  /** The model being loaded for the streaming reply (before its first token), if any. */
  loadingModel = $state<string | null>(null);
  /** A problem to show above the composer (not tied to one message). */
  notice = $state<string | null>(null);
  /**
   * Sibling ids by parent id ("root" for the first message), oldest first: from the view (which
   * lists them), completed with the ones this window creates before its next reload.
   */
  private siblingIds = new Map<string, number[]>();
  /**
   * Streamed text not yet in `messages`. Tokens arrive hundreds a second; the reply's state
   * changes at most once per animation frame, so the view does its work once per frame too.
   */
  private unflushed = '';
  private flushScheduled = false;

  get isStreaming(): boolean {
    return this.streamingReplyId !== null || this.busy;
  }

  get activeConversation(): ConversationDto | undefined {
    return this.conversations.find((c) => c.id === this.activeConversationId);
  }

  /** Prompt tokens of the newest reply that recorded them (for the context meter). */
  get lastPromptTokens(): number | null {
    for (let index = this.messages.length - 1; index >= 0; index -= 1) {
      const tokens = this.messages[index]?.stats?.promptTokens;
      if (tokens !== null && tokens !== undefined) return tokens;
    }
    return null;
  }

  async refreshConversations(): Promise<void> {
    this.conversations = await this.guard(listConversations(), []);
  }

  async openConversation(id: number): Promise<void> {
    this.activeConversationId = id;
    this.notice = null;
    const views = await this.guard(getConversationView(id), []);
    if (this.activeConversationId === id) this.applyView(views);
  }

  startNewConversation(): void {
    this.activeConversationId = null;
    this.messages = [];
    this.extras = {};
    this.notice = null;
  }

  /**
   * Sends `text` with `attachments`; resolves when the reply has ended. Returns false when
   * nothing was sent (then the caller keeps the text and the files).
   */
  async send(text: string, attachments: PendingAttachment[] = []): Promise<boolean> {
    const trimmed = text.trim();
    if ((trimmed === '' && attachments.length === 0) || this.isStreaming) return false;
    // What the chips show until the stored view replaces them: what the backend read of each
    // file before sending, when it did.
    const provisional: ShownAttachment[] = attachments.map((item, index) => ({
      id: -(index + 1),
      fileName: item.name,
      mime: '',
      sizeBytes: item.preview?.sizeBytes ?? 0,
      kind: item.preview?.kind ?? (item.previewUrl ? 'image' : 'other'),
      pageCount: item.preview?.pageCount ?? 0,
      scannedPages: item.preview?.scannedPages ?? 0,
      hasThumbnail: false,
      previewUrl: item.previewUrl,
    }));
    return this.runTurn(
      (onEvent) => sendMessage(this.activeConversationId, trimmed, attachments.map((item) => item.arg), onEvent),
      (started) => {
        this.activeConversationId = started.conversationId;
        const lastId = this.messages.at(-1)?.id ?? null;
        this.messages.push(
          message(started.userMessageId, lastId, 'user', trimmed, 'complete'),
          message(started.replyMessageId, started.userMessageId, 'assistant', '', 'streaming'),
        );
        this.extras[started.userMessageId] = { ...single(), attachments: provisional };
        this.extras[started.replyMessageId] = single();
      },
    );
  }

  /** Writes another reply in place of `replyId`; the old one stays one arrow away. */
  async regenerate(replyId: number): Promise<boolean> {
    const at = this.messages.findIndex((m) => m.id === replyId);
    const old = this.messages[at];
    if (!old || old.role !== 'assistant' || this.isStreaming) return false;
    const count = (this.extras[replyId]?.siblingCount ?? 1) + 1;
    return this.runTurn(
      (onEvent) => regenerate(replyId, onEvent),
      (started) => {
        this.learnSibling(old.parentId, replyId, started.replyMessageId);
        this.messages = this.messages.slice(0, at);
        this.messages.push(message(started.replyMessageId, old.parentId, 'assistant', '', 'streaming'));
        this.extras[started.replyMessageId] = { ...single(), siblingIndex: count - 1, siblingCount: count };
      },
    );
  }

  /** Sends an edited copy of the user message `messageId` as a new branch. */
  async edit(messageId: number, text: string): Promise<boolean> {
    const trimmed = text.trim();
    const at = this.messages.findIndex((m) => m.id === messageId);
    const original = this.messages[at];
    if (!original || original.role !== 'user' || this.isStreaming) return false;
    const previous = this.extras[messageId];
    if (trimmed === '' && (previous?.attachments.length ?? 0) === 0) return false;
    const count = (previous?.siblingCount ?? 1) + 1;
    return this.runTurn(
      (onEvent) => editMessage(messageId, trimmed, onEvent),
      (started) => {
        this.learnSibling(original.parentId, messageId, started.userMessageId);
        this.messages = this.messages.slice(0, at);
        this.messages.push(
          message(started.userMessageId, original.parentId, 'user', trimmed, 'complete'),
          message(started.replyMessageId, started.userMessageId, 'assistant', '', 'streaming'),
        );
        this.extras[started.userMessageId] = {
          ...single(),
          attachments: previous?.attachments ?? [],
          siblingIndex: count - 1,
          siblingCount: count,
        };
        this.extras[started.replyMessageId] = single();
      },
    );
  }

  /** Generates more of a reply that was stopped, cut off or interrupted. */
  async continueReply(replyId: number): Promise<boolean> {
    const reply = this.messages.find((m) => m.id === replyId);
    if (!reply || this.isStreaming) return false;
    return this.runTurn(
      (onEvent) => continueReply(replyId, onEvent),
      () => {
        reply.status = 'streaming';
        reply.error = null;
      },
    );
  }

  /** The id of the sibling `step` away from `messageId` (-1 older, +1 newer), when known. */
  siblingOf(messageId: number, step: -1 | 1): number | null {
    const found = this.messages.find((m) => m.id === messageId);
    const extras = this.extras[messageId];
    if (!found || !extras) return null;
    const ids = this.siblingIds.get(this.parentKey(found.parentId)) ?? [];
    // Only a complete list maps positions to ids.
    if (ids.length !== extras.siblingCount) return null;
    return ids[extras.siblingIndex + step] ?? null;
  }

  /** Shows the branch through the sibling `step` away from `messageId`. */
  async showSibling(messageId: number, step: -1 | 1): Promise<void> {
    const target = this.siblingOf(messageId, step);
    const conversationId = this.activeConversationId;
    if (target === null || conversationId === null || this.isStreaming) return;
    try {
      await switchBranch(target);
    } catch (error) {
      this.notice = messageOf(error);
      return;
    }
    await this.openConversation(conversationId);
  }

  /** Pins the open conversation to a profile or model (null: automatic). */
  async pin(pin: ModelPinDto | null): Promise<void> {
    const conversationId = this.activeConversationId;
    if (conversationId === null) return;
    try {
      await pinConversation(conversationId, pin);
      this.notice = null;
    } catch (error) {
      this.notice = messageOf(error);
    }
    await this.refreshConversations();
  }

  async stop(): Promise<void> {
    if (this.streamingReplyId !== null) await this.guard(stopReply(this.streamingReplyId), false);
  }

  private async runTurn(
    request: (onEvent: TurnEventHandler) => Promise<TurnStartedDto>,
    onStarted: (started: TurnStartedDto) => void,
  ): Promise<boolean> {
    this.notice = null;
    this.busy = true;
    try {
      await request((event) => this.apply(event, onStarted));
    } catch (error) {
      this.notice = messageOf(error);
      return false;
    } finally {
      this.flushTokens();
      this.streamingReplyId = null;
      this.preparing = null;
      this.busy = false;
    }
    await Promise.all([this.refreshConversations(), this.reloadAfterReply()]);
    return true;
  }

  /**
   * The stream carries text and the final status; the store also has the reply's stats,
   * attachments and sibling positions. Reload the view from the store, the source of truth,
   * unless the user has moved on to another conversation or started a new reply meanwhile.
   */
  private async reloadAfterReply(): Promise<void> {
    const conversationId = this.activeConversationId;
    if (conversationId === null) return;
    const views = await this.guard(getConversationView(conversationId), null);
    if (views && this.activeConversationId === conversationId && !this.isStreaming) {
      this.applyView(views);
    }
  }

  private applyView(views: MessageViewDto[]): void {
    const extras: Record<number, MessageExtras> = {};
    for (const view of views) {
      const { message: shown, ...rest } = view;
      extras[shown.id] = rest;
      // The store lists every sibling, so the arrows reach branches made before a restart too.
      if (view.siblingIds.length === view.siblingCount) {
        this.siblingIds.set(this.parentKey(shown.parentId), [...view.siblingIds]);
      } else {
        this.learnSibling(shown.parentId, shown.id);
      }
    }
    this.messages = views.map((view) => view.message);
    this.extras = extras;
  }

  private learnSibling(parentId: number | null, ...ids: number[]): void {
    const key = this.parentKey(parentId);
    const known = new Set(this.siblingIds.get(key) ?? []);
    for (const id of ids) known.add(id);
    // Siblings are listed oldest first, and ids grow with age.
    this.siblingIds.set(key, [...known].sort((a, b) => a - b));
  }

  /** Message ids are unique, but the first messages of all conversations share "no parent". */
  private parentKey(parentId: number | null): string {
    return parentId === null ? `root:${this.activeConversationId ?? 'new'}` : String(parentId);
  }

  private apply(event: TurnEventDto, onStarted: (started: TurnStartedDto) => void): void {
    switch (event.event) {
      case 'preparing':
        this.preparing = event.data;
        break;
      case 'loadingModel':
        this.loadingModel = event.data.model;
        break;
      case 'started': {
        this.preparing = null;
        this.loadingModel = null;
        this.unflushed = '';
        this.streamingReplyId = event.data.replyMessageId;
        onStarted(event.data);
        break;
      }
      case 'token': {
        this.loadingModel = null;
        this.unflushed += event.data.text;
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          nextFrame(() => this.flushTokens());
        }
        break;
      }
      case 'summary': {
        const id = this.streamingReplyId;
        const extras = id === null ? undefined : this.extras[id];
        if (extras) {
          extras.notices = event.data.notices;
          extras.citations = event.data.citations;
        }
        break;
      }
      case 'finished': {
        this.loadingModel = null;
        this.flushTokens();
        const reply = this.messages.find((m) => m.id === this.streamingReplyId);
        if (reply) {
          reply.status = event.data.status;
          reply.error = event.data.error;
        }
        this.streamingReplyId = null;
        break;
      }
      case 'titled': {
        const conversation = this.activeConversation;
        if (conversation) conversation.title = event.data.title;
        break;
      }
    }
  }

  private flushTokens(): void {
    this.flushScheduled = false;
    if (this.unflushed === '') return;
    const reply = this.messages.find((m) => m.id === this.streamingReplyId);
    if (reply) reply.content += this.unflushed;
    this.unflushed = '';
  }

  private async guard<T>(promise: Promise<T>, fallback: T): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      this.notice = messageOf(error);
      return fallback;
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof CriaError ? error.message : String(error);
}

function single(): MessageExtras {
  return { siblingIndex: 0, siblingCount: 1, notices: [], attachments: [], citations: [] };
}

const nextFrame: (callback: () => void) => void =
  typeof requestAnimationFrame === 'function'
    ? (callback) => requestAnimationFrame(callback)
    : (callback) => setTimeout(callback, 16);

function message(
  id: number,
  parentId: number | null,
  role: MessageDto['role'],
  content: string,
  status: MessageDto['status'],
): MessageDto {
  return { id, parentId, role, content, status, error: null, createdAtMs: Date.now(), stats: null };
}
