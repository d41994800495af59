import { cleanup, fireEvent, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clearMocks, mockCommands } from '../../ipc/testing';
import type { ConversationDto, SearchHitDto } from '../../ipc';
import ConversationList from './ConversationList.svelte';
import { ConversationManager, PENDING_DELETE_KEY, UNDO_WINDOW_MS } from './manager.svelte';
import UndoToast from './UndoToast.svelte';

afterEach(() => {
  cleanup();
  localStorage.clear();
  clearMocks();
  vi.useRealTimers();
});

const conversations: ConversationDto[] = [
  { id: 1, title: 'Pinned plans', updatedAtMs: 1, pinned: true, modelPin: null },
  { id: 2, title: 'Recent chat', updatedAtMs: 2, pinned: false, modelPin: null },
];

function setup(
  handler: (command: string, args: Record<string, unknown>) => unknown,
  onOpen: (id: number) => void = vi.fn(),
) {
  const calls: [string, Record<string, unknown>][] = [];
  mockCommands((command, args) => {
    calls.push([command, args]);
    return handler(command, args);
  });
  const refresh = vi.fn(async () => {});
  const hidden = vi.fn();
  const manager = new ConversationManager(refresh, hidden);
  const view = render(ConversationList, {
    conversations,
    activeId: 2,
    manager,
    onOpen,
    onNew: vi.fn(),
    onSettings: vi.fn(),
  });
  const toast = render(UndoToast, { manager });
  return { calls, manager, refresh, hidden, view, toast };
}

describe('ConversationList', () => {
  it('gives every control an accessible name', () => {
    const { view } = setup(() => null);
    for (const button of view.container.querySelectorAll('button')) {
      const name = button.getAttribute('aria-label') ?? button.textContent?.trim();
      expect(name, button.outerHTML).toBeTruthy();
    }
    expect(view.getByRole('searchbox', { name: 'Search conversations and documents' })).toBeTruthy();
    expect(view.getByRole('button', { name: 'Unpin Pinned plans' }).getAttribute('aria-pressed')).toBe('true');
  });

  it('renames inline with Enter and keeps the old title on Escape', async () => {
    const { calls, view } = setup(() => null);
    await fireEvent.click(view.getByRole('button', { name: 'Rename Recent chat' }));
    const field = view.getByRole('textbox', { name: 'New title for Recent chat' }) as HTMLInputElement;
    await fireEvent.input(field, { target: { value: 'Trip to Busan' } });
    await fireEvent.keyDown(field, { key: 'Enter' });
    await vi.waitFor(() => expect(calls).toContainEqual(['rename_conversation', { conversationId: 2, title: 'Trip to Busan' }]));

    await fireEvent.click(view.getByRole('button', { name: 'Rename Pinned plans' }));
    const other = view.getByRole('textbox', { name: 'New title for Pinned plans' });
    await fireEvent.input(other, { target: { value: 'never saved' } });
    await fireEvent.keyDown(other, { key: 'Escape' });
    expect(calls.filter(([command]) => command === 'rename_conversation')).toHaveLength(1);
  });

  it('deletes only after the undo window, and undo brings the conversation back', async () => {
    vi.useFakeTimers();
    const { calls, manager, hidden, view, toast } = setup(() => null);
    expect(UNDO_WINDOW_MS).toBeGreaterThanOrEqual(5000);
    expect(UNDO_WINDOW_MS).toBeLessThanOrEqual(8000);
    await fireEvent.click(view.getByRole('button', { name: 'Delete Recent chat' }));
    await vi.waitFor(() => expect(manager.pendingDelete?.id).toBe(2));
    expect(calls).toContainEqual(['set_conversation_archived', { conversationId: 2, archived: true }]);
    expect(hidden).toHaveBeenCalledWith(2);
    expect(toast.getByRole('status').textContent).toContain('Deleted “Recent chat”');
    // Noted, so a crash inside the window still ends in the delete at the next start.
    expect(JSON.parse(localStorage.getItem(PENDING_DELETE_KEY) ?? 'null')).toEqual({ id: 2, title: 'Recent chat' });
    await fireEvent.click(toast.getByRole('button', { name: 'Undo' }));
    await vi.waitFor(() => expect(calls).toContainEqual(['set_conversation_archived', { conversationId: 2, archived: false }]));
    expect(localStorage.getItem(PENDING_DELETE_KEY)).toBeNull();
    expect(toast.queryByRole('button', { name: 'Undo' })).toBeNull();
    await vi.advanceTimersByTimeAsync(UNDO_WINDOW_MS * 2);
    expect(calls.map(([command]) => command)).not.toContain('delete_conversation');

    await fireEvent.click(view.getByRole('button', { name: 'Delete Pinned plans' }));
    await vi.waitFor(() => expect(manager.pendingDelete?.id).toBe(1));
    await vi.advanceTimersByTimeAsync(UNDO_WINDOW_MS - 100);
    expect(calls.map(([command]) => command)).not.toContain('delete_conversation');
    await vi.advanceTimersByTimeAsync(110);
    expect(calls).toContainEqual(['delete_conversation', { conversationId: 1 }]);
    expect(localStorage.getItem(PENDING_DELETE_KEY)).toBeNull();
    expect(toast.queryByTestId('undo-toast')).toBeNull();
  });

  it('finishes a delete left pending by an earlier run, unless the conversation is listed', async () => {
    const { calls, manager } = setup((command) => {
      if (command === 'delete_conversation') throw { kind: 'NOT_FOUND', message: 'no such conversation' };
      return null;
    });
    localStorage.setItem(PENDING_DELETE_KEY, JSON.stringify({ id: 9, title: 'Old' }));
    await manager.finishLeftoverDelete([1, 2]);
    expect(calls).toContainEqual(['delete_conversation', { conversationId: 9 }]);
    expect(localStorage.getItem(PENDING_DELETE_KEY)).toBeNull();
    expect(manager.error).toBeNull();

    localStorage.setItem(PENDING_DELETE_KEY, JSON.stringify({ id: 2, title: 'Recent chat' }));
    await manager.finishLeftoverDelete([1, 2]);
    expect(calls.filter(([command]) => command === 'delete_conversation')).toHaveLength(1);
    expect(localStorage.getItem(PENDING_DELETE_KEY)).toBeNull();
  });

  it('keeps the note when the final delete fails, so the next start tries again', async () => {
    const { manager } = setup((command) => {
      if (command === 'delete_conversation') throw { kind: 'STORAGE', message: 'database is locked' };
      return null;
    });
    localStorage.setItem(PENDING_DELETE_KEY, JSON.stringify({ id: 9, title: 'Old' }));
    await manager.finishLeftoverDelete([]);
    expect(manager.error).toBe('database is locked');
    expect(localStorage.getItem(PENDING_DELETE_KEY)).not.toBeNull();
  });

  it('shows search results with highlighted snippets', async () => {
    const hits: SearchHitDto[] = [
      {
        kind: 'message',
        conversationId: 2,
        conversationTitle: 'Recent chat',
        messageId: 5,
        pageNumber: null,
        documentName: null,
        parts: [
          { text: '오늘 ', highlighted: false },
          { text: '날씨', highlighted: true },
          { text: '가 좋네요', highlighted: false },
        ],
      },
      {
        kind: 'document',
        conversationId: 3,
        conversationTitle: 'Weather talk',
        messageId: 9,
        pageNumber: 4,
        documentName: 'forecast.pdf',
        parts: [{ text: '날씨 report', highlighted: false }],
      },
      { kind: 'document', conversationId: null, conversationTitle: null, messageId: null, pageNumber: 2, documentName: null, parts: [] },
    ];
    const opened: number[] = [];
    const { manager, view } = setup(
      (command, args) => {
        if (command === 'search') {
          expect(args.query).toBe('날씨');
          return hits;
        }
        return null;
      },
      (id) => opened.push(id),
    );
    await manager.runSearch('날씨');
    await vi.waitFor(() => expect(view.container.querySelector('mark')?.textContent).toBe('날씨'));
    const results = view.getByRole('region', { name: 'Search results' });
    expect(results.textContent).toContain('Recent chat');
    // A document hit names the file, the page and the conversation, and opens it.
    const documentHit = view.getByRole('button', { name: /forecast\.pdf, p\. 4 · Weather talk/ });
    await fireEvent.click(documentHit);
    expect(opened).toEqual([3]);
    // A document no conversation holds any more cannot be opened.
    expect((view.getByRole('button', { name: /Document, p\. 2/ }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('drops answers to searches that were replaced', async () => {
    let answer: (value: SearchHitDto[]) => void = () => {};
    const { manager } = setup((command, args) => {
      if (command !== 'search') return null;
      if (args.query === 'slow') return new Promise((resolve) => (answer = resolve));
      return [];
    });
    const slow = manager.runSearch('slow');
    await manager.runSearch('fast');
    answer([{ kind: 'document', conversationId: null, conversationTitle: null, messageId: null, pageNumber: 1, documentName: null, parts: [] }]);
    await slow;
    expect(manager.results).toEqual([]);
    expect(manager.query).toBe('fast');
  });
});
