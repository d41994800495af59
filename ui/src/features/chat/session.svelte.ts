// The state of the window: the conversation list, the open conversation and the reply being
// streamed. Components render it; only this module talks to the IPC layer for chat.
import {
  CriaError,
  getConversationMessages,
  listConversations,
  sendMessage,
  stopReply,
  type ConversationDto,
  type MessageDto,
  type TurnEventDto,
} from '../../ipc';

export class ChatSession {
  conversations = $state<ConversationDto[]>([]);
  activeConversationId = $state<number | null>(null);
  messages = $state<MessageDto[]>([]);
  /** The reply being generated, if any: its id and the text streamed so far. */
  streamingReplyId = $state<number | null>(null);
  /** A problem to show above the composer (not tied to one message). */
  notice = $state<string | null>(null);
  /**
   * Streamed text not yet in `messages`. Tokens arrive hundreds a second; the reply's state
   * changes at most once per animation frame, so the view does its work once per frame too.
   */
  private unflushed = '';
  private flushScheduled = false;

  get isStreaming(): boolean {
    return this.streamingReplyId !== null;
  }

  get activeConversation(): ConversationDto | undefined {
    return this.conversations.find((c) => c.id === this.activeConversationId);
  }

  async refreshConversations(): Promise<void> {
    this.conversations = await this.guard(listConversations(), []);
  }

  async openConversation(id: number): Promise<void> {
    this.activeConversationId = id;
    this.messages = await this.guard(getConversationMessages(id), []);
  }

  startNewConversation(): void {
    this.activeConversationId = null;
    this.messages = [];
    this.notice = null;
  }

  /** Sends `text`; resolves when the reply has ended. Returns false when nothing was sent. */
  async send(text: string): Promise<boolean> {
    const trimmed = text.trim();
    if (trimmed === '' || this.isStreaming) return false;
    this.notice = null;
    try {
      await sendMessage(this.activeConversationId, trimmed, (event) => this.apply(event, trimmed));
    } catch (error) {
      this.notice = error instanceof CriaError ? error.message : String(error);
      return false;
    } finally {
      this.streamingReplyId = null;
    }
    await Promise.all([this.refreshConversations(), this.reloadAfterReply()]);
    return true;
  }

  /**
   * The stream carries text and the final status; the stored reply also has its stats (model,
   * timings, tokens). Reload the conversation from the store, the source of truth, unless the
   * user has moved on to another one or started a new reply meanwhile.
   */
  private async reloadAfterReply(): Promise<void> {
    const conversationId = this.activeConversationId;
    if (conversationId === null) return;
    const messages = await this.guard(getConversationMessages(conversationId), null);
    if (messages && this.activeConversationId === conversationId && !this.isStreaming) {
      this.messages = messages;
    }
  }

  async stop(): Promise<void> {
    if (this.streamingReplyId !== null) await this.guard(stopReply(this.streamingReplyId), false);
  }

  private apply(event: TurnEventDto, text: string): void {
    switch (event.event) {
      case 'started': {
        const { conversationId, userMessageId, replyMessageId } = event.data;
        this.activeConversationId = conversationId;
        this.streamingReplyId = replyMessageId;
        this.unflushed = '';
        const lastId = this.messages.at(-1)?.id ?? null;
        const now = Date.now();
        this.messages.push(
          message(userMessageId, lastId, 'user', text, 'complete', now),
          message(replyMessageId, userMessageId, 'assistant', '', 'streaming', now),
        );
        break;
      }
      case 'token': {
        this.unflushed += event.data.text;
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          nextFrame(() => this.flushTokens());
        }
        break;
      }
      case 'finished': {
        this.flushTokens();
        const reply = this.messages.at(-1);
        if (reply && reply.id === this.streamingReplyId) {
          reply.status = event.data.status;
          reply.error = event.data.error;
        }
        this.streamingReplyId = null;
        break;
      }
    }
  }

  private flushTokens(): void {
    this.flushScheduled = false;
    if (this.unflushed === '') return;
    const reply = this.messages.at(-1);
    if (reply && reply.id === this.streamingReplyId) reply.content += this.unflushed;
    this.unflushed = '';
  }

  private async guard<T>(promise: Promise<T>, fallback: T): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      this.notice = error instanceof CriaError ? error.message : String(error);
      return fallback;
    }
  }
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
  createdAtMs: number,
): MessageDto {
  return { id, parentId, role, content, status, error: null, createdAtMs, stats: null };
}
