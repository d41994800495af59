// Sidebar actions on conversations: rename, pin, delete with undo, search. A delete archives the
// conversation at once (it leaves the list, and survives a crash); only when the undo window has
// passed is it deleted for good. Undo simply un-archives it.
import {
  CriaError,
  deleteConversation,
  renameConversation,
  search,
  setConversationArchived,
  setConversationPinned,
  type SearchHitDto,
} from '../../ipc';

/** How long "Undo" is offered after a delete. */
export const UNDO_WINDOW_MS = 8000;

export interface PendingDelete {
  id: number;
  title: string;
}

export class ConversationManager {
  query = $state('');
  results = $state<SearchHitDto[]>([]);
  searching = $state(false);
  pendingDelete = $state<PendingDelete | null>(null);
  error = $state<string | null>(null);
  private deleteTimer: ReturnType<typeof setTimeout> | null = null;
  private searchSerial = 0;

  /** `refresh` reloads the list; `onDeleted` lets the chat close a conversation that went away. */
  constructor(
    private readonly refresh: () => Promise<void>,
    private readonly onHidden: (id: number) => void = () => {},
  ) {}

  async rename(id: number, title: string): Promise<boolean> {
    const ok = await this.attempt(renameConversation(id, title));
    await this.refresh();
    return ok;
  }

  async setPinned(id: number, pinned: boolean): Promise<void> {
    await this.attempt(setConversationPinned(id, pinned));
    await this.refresh();
  }

  async remove(id: number, title: string): Promise<void> {
    // One pending delete at a time: an earlier one is made final now.
    await this.finishPendingDelete();
    if (!(await this.attempt(setConversationArchived(id, true)))) return;
    this.pendingDelete = { id, title };
    this.onHidden(id);
    this.deleteTimer = setTimeout(() => void this.finishPendingDelete(), UNDO_WINDOW_MS);
    await this.refresh();
  }

  async undoDelete(): Promise<void> {
    const pending = this.pendingDelete;
    if (!pending) return;
    this.clearTimer();
    this.pendingDelete = null;
    await this.attempt(setConversationArchived(pending.id, false));
    await this.refresh();
  }

  async finishPendingDelete(): Promise<void> {
    const pending = this.pendingDelete;
    if (!pending) return;
    this.clearTimer();
    this.pendingDelete = null;
    await this.attempt(deleteConversation(pending.id));
  }

  /** Runs a search for `query`; answers to older queries are dropped. */
  async runSearch(query: string): Promise<void> {
    this.query = query;
    const serial = ++this.searchSerial;
    if (query.trim() === '') {
      this.results = [];
      this.searching = false;
      return;
    }
    this.searching = true;
    try {
      const hits = await search(query);
      if (serial === this.searchSerial) this.results = hits;
    } catch (error) {
      if (serial === this.searchSerial) this.error = messageOf(error);
    } finally {
      if (serial === this.searchSerial) this.searching = false;
    }
  }

  private clearTimer(): void {
    if (this.deleteTimer !== null) clearTimeout(this.deleteTimer);
    this.deleteTimer = null;
  }

  private async attempt(promise: Promise<unknown>): Promise<boolean> {
    try {
      await promise;
      this.error = null;
      return true;
    } catch (error) {
      this.error = messageOf(error);
      return false;
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof CriaError ? error.message : String(error);
}
