// Sidebar actions on conversations: rename, pin, delete with undo, search. A delete archives the
// conversation at once (it leaves the list, and survives a crash); only when the undo window has
// passed, or the window closes, is it deleted for good. Undo simply un-archives it. The pending
// delete is also noted in the webview's storage, so a delete cut short by a crash or a closed
// window is finished at the next start instead of leaving a hidden conversation behind.
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
export const UNDO_WINDOW_MS = 6000;

/** Where the pending delete is noted until it is final or undone. */
export const PENDING_DELETE_KEY = 'cria.pendingDelete';

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

  /** `refresh` reloads the list; `onHidden` lets the chat close a conversation that went away. */
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
    // Noted only once archived: a note always means "archived, delete me".
    note({ id, title });
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
    // The note goes first: a crash in between leaves the conversation archived (hidden, kept),
    // never deleted after the user asked to keep it.
    note(null);
    await this.attempt(setConversationArchived(pending.id, false));
    await this.refresh();
  }

  async finishPendingDelete(): Promise<void> {
    const pending = this.pendingDelete;
    if (!pending) return;
    this.clearTimer();
    this.pendingDelete = null;
    // A failed delete keeps its note, so the next start tries again.
    if (await this.attempt(deleteConversation(pending.id))) note(null);
  }

  /**
   * Finishes a delete that an earlier run of the app left pending (it crashed or was closed
   * inside the undo window). `visibleIds` are the conversations listed now: one of them is never
   * deleted, whatever the note says.
   */
  async finishLeftoverDelete(visibleIds: readonly number[]): Promise<void> {
    const leftover = noted();
    if (!leftover || this.pendingDelete?.id === leftover.id) return;
    if (!visibleIds.includes(leftover.id)) {
      try {
        await deleteConversation(leftover.id);
      } catch (error) {
        // Already gone is the outcome we wanted; anything else is tried again next start.
        if (!(error instanceof CriaError && error.kind === 'NOT_FOUND')) {
          this.error = messageOf(error);
          return;
        }
      }
    }
    note(null);
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

function note(pending: PendingDelete | null): void {
  try {
    if (pending) localStorage.setItem(PENDING_DELETE_KEY, JSON.stringify(pending));
    else localStorage.removeItem(PENDING_DELETE_KEY);
  } catch {
    // Storage unavailable: the undo window and the close handler still finish the delete.
  }
}

function noted(): PendingDelete | null {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(PENDING_DELETE_KEY) ?? 'null');
    if (typeof value === 'object' && value !== null && Number.isSafeInteger((value as PendingDelete).id)) {
      const { id, title } = value as PendingDelete;
      return { id, title: String(title) };
    }
  } catch {
    // A damaged note is dropped below.
  }
  note(null);
  return null;
}
