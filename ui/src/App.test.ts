// The window as a whole: keyboard shortcuts, the folding sidebar, delete with undo. The Rust side
// is mocked at the IPC boundary.
import { cleanup, fireEvent, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import App from './App.svelte';
import { asView, clearMocks, emitTurnEvent, mockCommands } from './ipc/testing';
import type { ConversationDto, MessageDto } from './ipc';
import { PENDING_DELETE_KEY } from './features/conversations/manager.svelte';

afterEach(() => {
  cleanup();
  clearMocks();
  localStorage.clear();
  vi.unstubAllGlobals();
  document.documentElement.removeAttribute('data-theme');
});

const conversations: ConversationDto[] = [
  { id: 1, title: 'Trip to Busan', updatedAtMs: 2, pinned: false, modelPin: null },
  { id: 2, title: 'Sourdough', updatedAtMs: 1, pinned: false, modelPin: null },
];

function stored(id: number, role: MessageDto['role'], content: string): MessageDto {
  return { id, parentId: null, role, content, status: 'complete', error: null, createdAtMs: 0, stats: null };
}

type Handler = (command: string, args: Record<string, unknown>) => unknown;

/** Renders the app over mocked commands; `extra` answers first, the defaults after. */
function setup(extra: Handler = () => undefined) {
  const calls: [string, Record<string, unknown>][] = [];
  mockCommands((command, args) => {
    calls.push([command, args]);
    const answer = extra(command, args);
    if (answer !== undefined) return answer;
    switch (command) {
      case 'list_conversations':
        return conversations;
      case 'get_conversation_view':
        return asView([stored(10, 'user', `question in ${String(args.conversationId)}`), stored(11, 'assistant', 'answer')]);
      case 'get_theme':
        return 'system';
      case 'app_info':
        return { dataDir: '/data', exportsDir: '/data/exports' };
      case 'list_models':
        return [];
      case 'preview_attachment': {
        const fileName = String(args.path).split('/').pop() ?? '';
        return { fileName, kind: 'document', sizeBytes: 10, pageCount: 1, scannedPages: 0, thumbnail: null };
      }
      default:
        return null;
    }
  });
  const view = render(App);
  return { calls, view };
}

/** A window narrower (or wider) than the fold, as `matchMedia` reports it. */
function stubWidth(narrow: boolean) {
  const listeners: (() => void)[] = [];
  const query = {
    matches: narrow,
    addEventListener: (_: string, listener: () => void) => listeners.push(listener),
    removeEventListener: () => {},
  };
  vi.stubGlobal('matchMedia', () => query);
  return {
    resize(toNarrow: boolean) {
      query.matches = toNarrow;
      for (const listener of listeners) listener();
    },
  };
}

function press(init: KeyboardEventInit) {
  return fireEvent.keyDown(window, init);
}

describe('App keyboard', () => {
  it('Ctrl+N starts a new chat and puts the cursor in the composer', async () => {
    const { view } = setup();
    await fireEvent.click(await view.findByRole('button', { name: 'Sourdough' }));
    await view.findByText('question in 2');
    await press({ key: 'n', ctrlKey: true });
    await vi.waitFor(() => expect(view.getByRole('heading', { level: 1 }).textContent).toBe('New chat'));
    expect(view.queryByText('question in 2')).toBeNull();
    expect(document.activeElement).toBe(view.getByRole('textbox', { name: 'Message' }));
  });

  it('Cmd+K focuses search and Ctrl+, opens and closes settings', async () => {
    const { view } = setup();
    await press({ key: 'k', metaKey: true });
    await vi.waitFor(() =>
      expect(document.activeElement).toBe(view.getByRole('searchbox', { name: 'Search conversations and documents' })),
    );
    await press({ key: ',', ctrlKey: true });
    expect(await view.findByRole('dialog', { name: 'Settings' })).toBeTruthy();
    await press({ key: ',', ctrlKey: true });
    await vi.waitFor(() => expect(view.queryByRole('dialog', { name: 'Settings' })).toBeNull());
  });

  it('Enter sends, Shift+Enter does not, and Esc stops the streaming reply', async () => {
    let stopped: unknown = null;
    let release: () => void = () => {};
    const { calls, view } = setup((command, args) => {
      if (command === 'send_message') {
        emitTurnEvent(args, { event: 'started', data: { conversationId: 5, userMessageId: 50, replyMessageId: 51 } });
        emitTurnEvent(args, { event: 'token', data: { text: 'Partial ' } });
        return new Promise((resolve) => {
          release = () => {
            emitTurnEvent(args, { event: 'finished', data: { status: 'cancelled', error: null } });
            resolve({ conversationId: 5, userMessageId: 50, replyMessageId: 51 });
          };
        });
      }
      if (command === 'stop_reply') {
        stopped = args.replyMessageId;
        release();
        return true;
      }
      if (command === 'get_conversation_view' && args.conversationId === 5) {
        return asView([stored(50, 'user', 'line one\nline two'), { ...stored(51, 'assistant', 'Partial '), status: 'cancelled' }]);
      }
      return undefined;
    });
    const composer = view.getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement;
    await fireEvent.input(composer, { target: { value: 'line one' } });
    await fireEvent.keyDown(composer, { key: 'Enter', shiftKey: true });
    expect(calls.map(([command]) => command)).not.toContain('send_message');
    await fireEvent.input(composer, { target: { value: 'line one\nline two' } });
    await fireEvent.keyDown(composer, { key: 'Enter' });
    await vi.waitFor(() => expect(calls).toContainEqual(['send_message', expect.objectContaining({ text: 'line one\nline two' })]));
    expect(await view.findByRole('button', { name: 'Stop reply' })).toBeTruthy();

    await fireEvent.keyDown(composer, { key: 'Escape' });
    await vi.waitFor(() => expect(stopped).toBe(51));
    await vi.waitFor(() => expect(view.getByTestId('reply-badge').textContent).toBe('Stopped'));
    expect(view.getByTestId('message-assistant').textContent).toContain('Partial');
  });

  it('Esc closes an open dialog rather than stopping anything', async () => {
    const { calls, view } = setup();
    await press({ key: ',', ctrlKey: true });
    const dialog = await view.findByRole('dialog', { name: 'Settings' });
    await fireEvent.keyDown(dialog, { key: 'Escape' });
    await vi.waitFor(() => expect(view.queryByRole('dialog', { name: 'Settings' })).toBeNull());
    expect(calls.map(([command]) => command)).not.toContain('stop_reply');
  });
});

describe('App layout', () => {
  it('gives every button an accessible name', async () => {
    const { view } = setup();
    await view.findByRole('button', { name: 'Sourdough' });
    for (const button of view.container.querySelectorAll('button')) {
      const name = button.getAttribute('aria-label') ?? button.textContent?.trim();
      expect(name, button.outerHTML).toBeTruthy();
    }
  });

  it('folds the sidebar behind a toggle in a narrow window', async () => {
    const width = stubWidth(true);
    const { view } = setup();
    const toggle = view.getByRole('button', { name: 'Show conversations' });
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    expect(view.container.querySelector('#sidebar')?.hasAttribute('hidden')).toBe(true);

    await fireEvent.click(toggle);
    expect(view.container.querySelector('#sidebar')?.hasAttribute('hidden')).toBe(false);
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    await vi.waitFor(() => expect(document.activeElement?.textContent).toContain('New chat'));

    // Esc folds it again and gives focus back to the toggle.
    await press({ key: 'Escape' });
    expect(view.container.querySelector('#sidebar')?.hasAttribute('hidden')).toBe(true);
    expect(document.activeElement).toBe(toggle);

    // Ctrl+K unfolds it to reach the search field; opening a conversation folds it.
    await press({ key: 'k', ctrlKey: true });
    await vi.waitFor(() => expect(document.activeElement?.getAttribute('type')).toBe('search'));
    await fireEvent.click(await view.findByRole('button', { name: 'Trip to Busan' }));
    expect(view.container.querySelector('#sidebar')?.hasAttribute('hidden')).toBe(true);
    await view.findByText('question in 1');

    // Wider again: the sidebar is simply there and the toggle goes away.
    width.resize(false);
    await vi.waitFor(() => expect(view.queryByRole('button', { name: /conversations$/ })).toBeNull());
    expect(view.container.querySelector('#sidebar')?.hasAttribute('hidden')).toBe(false);
  });

  it('shows the sidebar without a toggle in a wide window', () => {
    stubWidth(false);
    const { view } = setup();
    expect(view.queryByTestId('sidebar-toggle')).toBeNull();
    expect(view.container.querySelector('#sidebar')?.hasAttribute('hidden')).toBe(false);
  });
});

describe('App delete with undo', () => {
  it('hides a deleted conversation at once and offers Undo over the window', async () => {
    let listed = conversations;
    const { calls, view } = setup((command, args) => {
      if (command === 'list_conversations') return listed;
      if (command === 'set_conversation_archived') {
        listed = args.archived ? conversations.filter((c) => c.id !== args.conversationId) : conversations;
        return null;
      }
      return undefined;
    });
    await fireEvent.click(await view.findByRole('button', { name: 'Delete Sourdough' }));
    await vi.waitFor(() => expect(view.queryByRole('button', { name: 'Sourdough' })).toBeNull());
    await fireEvent.click(view.getByRole('button', { name: 'Undo' }));
    expect(await view.findByRole('button', { name: 'Sourdough' })).toBeTruthy();
    expect(calls.map(([command]) => command)).not.toContain('delete_conversation');
  });

  it('finishes at start a delete that the last run left pending', async () => {
    localStorage.setItem(PENDING_DELETE_KEY, JSON.stringify({ id: 7, title: 'Gone' }));
    const { calls } = setup();
    await vi.waitFor(() => expect(calls).toContainEqual(['delete_conversation', { conversationId: 7 }]));
    await vi.waitFor(() => expect(localStorage.getItem(PENDING_DELETE_KEY)).toBeNull());
  });
});

describe('App file drop', () => {
  it('sends model files to the library and attaches every other file to the next message', async () => {
    const { calls, view } = setup((command, args) =>
      command === 'import_model'
        ? { id: 'm', name: String(args.path), architecture: 'llama4', sizeBytes: 1, quantization: 'Q4_K_M', contextLength: 8192, vision: false, verdict: '', verdictReason: '', active: true }
        : undefined,
    );
    const app = view.component as unknown as { routeDroppedFiles(paths: string[]): void };
    app.routeDroppedFiles(['/home/me/models/Llama-4-Scout.GGUF', '/home/me/Documents/report.pdf', '/home/me/cat.png']);
    await vi.waitFor(() => expect(view.getAllByTestId('attachment-chip')).toHaveLength(2));
    expect(view.getAllByTestId('attachment-chip').map((chip) => chip.querySelector('.name')?.textContent)).toEqual(['report.pdf', 'cat.png']);
    await vi.waitFor(() =>
      expect(calls.filter(([command]) => command === 'import_model').map(([, args]) => args.path)).toEqual(['/home/me/models/Llama-4-Scout.GGUF']),
    );
  });
});

describe('App drag hint', () => {
  type Dragging = { handleFileDrag(event: { type: 'hover'; paths: string[] } | { type: 'leave' } | { type: 'drop'; paths: string[] }): void };

  it('shows where files will go while they hover, and hides the hint when the drag leaves', async () => {
    const { view } = setup();
    const app = view.component as unknown as Dragging;
    expect(view.queryByTestId('drop-hint')).toBeNull();
    app.handleFileDrag({ type: 'hover', paths: ['/home/me/cat.png'] });
    const hint = await view.findByTestId('drop-hint');
    expect(hint.getAttribute('role')).toBe('status');
    expect(hint.textContent).toContain('Drop to attach cat.png');
    app.handleFileDrag({ type: 'leave' });
    await vi.waitFor(() => expect(view.queryByTestId('drop-hint')).toBeNull());
    expect(view.queryAllByTestId('attachment-chip')).toHaveLength(0);
  });

  it('hides the hint on the drop and attaches what was dropped', async () => {
    const { view } = setup();
    const app = view.component as unknown as Dragging;
    app.handleFileDrag({ type: 'hover', paths: [] });
    expect((await view.findByTestId('drop-hint')).textContent).toContain('.gguf');
    app.handleFileDrag({ type: 'drop', paths: ['/home/me/cat.png'] });
    await vi.waitFor(() => expect(view.queryByTestId('drop-hint')).toBeNull());
    expect(view.getAllByTestId('attachment-chip').map((chip) => chip.querySelector('.name')?.textContent)).toEqual(['cat.png']);
  });
});

describe('App model pin', () => {
  it('pins the open conversation from the header and shows the pin it has', async () => {
    let pinned: unknown = 'unset';
    const model = { id: 'scout', name: 'Llama 4 Scout', architecture: 'llama4', sizeBytes: 1, quantization: 'Q4_K_M', contextLength: 8192, vision: true, verdict: '', verdictReason: '', active: true };
    const { view } = setup((command, args) => {
      if (command === 'list_models') return [model];
      if (command === 'pin_conversation') {
        pinned = args.pin;
        return null;
      }
      if (command === 'list_conversations') {
        return conversations.map((c) => (c.id === 1 && pinned !== 'unset' ? { ...c, modelPin: pinned } : c));
      }
      return undefined;
    });
    await fireEvent.click(await view.findByText('Trip to Busan'));
    const select = (await view.findByRole('combobox', { name: 'Model for this chat' })) as HTMLSelectElement;
    expect(select.value).toBe('auto');
    await fireEvent.change(select, { target: { value: 'model:scout' } });
    await vi.waitFor(() => expect(pinned).toEqual({ kind: 'model', modelId: 'scout' }));
    await vi.waitFor(() => expect(select.value).toBe('model:scout'));
    await fireEvent.change(select, { target: { value: 'auto' } });
    await vi.waitFor(() => expect(pinned).toBeNull());
  });
});
