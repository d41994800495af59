// Attachments, citations, branches and edits, through the components and the session over
// mocked IPC.
import { cleanup, fireEvent, render, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AttachmentPreviewDto, CitationDto, MessageDto, MessageViewDto } from '../../ipc';
import { clearMocks, emitTurnEvent, mockCommands } from '../../ipc/testing';
import { markCitations } from '../markdown/render';
import ChatView from './ChatView.svelte';
import Composer from './Composer.svelte';
import { AttachmentTray } from './attachments.svelte';
import { ChatSession, type MessageExtras } from './session.svelte';

afterEach(() => {
  cleanup();
  clearMocks();
});

function message(overrides: Partial<MessageDto>): MessageDto {
  return { id: 1, parentId: null, role: 'assistant', content: '', status: 'complete', error: null, createdAtMs: 0, stats: null, ...overrides };
}

function extras(overrides: Partial<MessageExtras> = {}): MessageExtras {
  return { siblingIndex: 0, siblingCount: 1, notices: [], attachments: [], citations: [], ...overrides };
}

function citation(text: string, cited: string, pageNumber: number): CitationDto {
  const bytes = new TextEncoder();
  const at = text.indexOf(cited);
  const spanStart = bytes.encode(text.slice(0, at)).length;
  return { spanStart, spanEnd: spanStart + bytes.encode(cited).length, attachmentId: 4, fileName: 'report.pdf', pageNumber };
}

describe('citations', () => {
  it('become buttons that open the cited page, also after multi-byte text', async () => {
    const text = '보고서에 따르면 매출이 늘었습니다 [p. 2]. Costs fell [p. 5].';
    const citations = [citation(text, '[p. 2]', 2), citation(text, '[p. 5]', 5)];
    const onCitation = vi.fn();
    const view = render(ChatView, {
      messages: [message({ id: 2, content: text })],
      streamingReplyId: null,
      extras: { 2: extras({ citations }) },
      onCitation,
    });
    const buttons = view.getAllByRole('button', { name: /Show page/ });
    expect(buttons.map((button) => button.textContent)).toEqual(['p. 2', 'p. 5']);
    expect(buttons[0]?.getAttribute('aria-label')).toBe('Show page 2 of report.pdf');
    // The cited text is replaced by its button, nothing of it is left over.
    expect(view.container.textContent).not.toContain('[p. 2]');
    await fireEvent.click(buttons[1] as HTMLElement);
    expect(onCitation).toHaveBeenCalledWith(citations[1]);
  });

  it('stay inert when a hostile reply imitates the internal marker or the button', async () => {
    const hostile =
      'Click \uE0000\uE001 or <button class="citation" data-citation="0">p. 9</button> ' +
      'or [p. 9](javascript:alert(1)) or [x](cria-citation:0). Real: [p. 1]';
    const onCitation = vi.fn();
    const view = render(ChatView, {
      messages: [message({ id: 2, content: hostile })],
      streamingReplyId: null,
      extras: { 2: extras({ citations: [citation(hostile, '[p. 1]', 1)] }) },
      onCitation,
    });
    const buttons = view.container.querySelectorAll('button.citation');
    expect(buttons).toHaveLength(1);
    expect(buttons[0]?.textContent).toBe('p. 1');
    expect(view.container.querySelector('a[href^="javascript"], a[href^="cria"]')).toBeNull();
    expect(view.container.textContent).toContain('<button class="citation"');
    // Clicking the imitation (text) does nothing.
    await fireEvent.click(view.getByText(/Click/));
    expect(onCitation).not.toHaveBeenCalled();
  });

  it('skip spans that leave the text, overlap or cut a character', () => {
    const text = '날씨 [p. 1]';
    const good = citation(text, '[p. 1]', 1);
    const marked = markCitations(text, [
      good,
      { ...good, spanStart: 1, spanEnd: 3 },
      { ...good, spanStart: good.spanStart + 1, spanEnd: good.spanEnd + 1 },
      { ...good, spanStart: 0, spanEnd: 999 },
    ]);
    expect(marked).toBe('날씨 \uE0000\uE001');
  });
});

/** What `preview_attachment` answers for a path: a picture, or a document of `pages` pages. */
function previewOf(path: string, pages = 3, scanned = 0): AttachmentPreviewDto {
  const fileName = path.split('/').pop() ?? path;
  const picture = /\.(png|jpe?g)$/.test(fileName);
  return {
    fileName,
    kind: picture ? 'image' : 'document',
    sizeBytes: 1234,
    pageCount: picture ? 1 : pages,
    scannedPages: picture ? 0 : scanned,
    thumbnail: picture || scanned > 0 ? 'data:image/jpeg;base64,/9j/2w==' : null,
  };
}

/** A promise with its resolve and reject at hand, to hold a command's answer back. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

describe('attachments', () => {
  it('show as chips in the composer, can be removed, and go with the message', async () => {
    mockCommands((command, args) => (command === 'preview_attachment' ? previewOf(String(args.path)) : []));
    const tray = new AttachmentTray();
    tray.addPath('/home/me/Documents/report.pdf');
    tray.addPath('/home/me/Pictures/cat.png');
    const onSend = vi.fn(async () => true);
    const view = render(Composer, { streaming: false, tray, onSend, onStop: () => {} });
    expect(view.getAllByTestId('attachment-chip').map((chip) => chip.querySelector('.name')?.textContent)).toEqual(['report.pdf', 'cat.png']);
    await fireEvent.click(view.getByRole('button', { name: 'Remove cat.png' }));
    expect(view.getAllByTestId('attachment-chip')).toHaveLength(1);
    // A file alone can be sent without text.
    await fireEvent.click(view.getByTestId('send'));
    expect(onSend).toHaveBeenCalledWith('', [expect.objectContaining({ name: 'report.pdf', arg: '/home/me/Documents/report.pdf' })]);
    await waitFor(() => expect(view.queryAllByTestId('attachment-chip')).toHaveLength(0));
  });

  it('a refused file shows the core message and keeps the text and the files', async () => {
    mockCommands((command, args) => {
      if (command === 'preview_attachment') return previewOf(String(args.path));
      if (command === 'send_message') {
        throw { kind: 'INVALID_INPUT', message: 'broken.pdf: the PDF is damaged (no page tree). Save it again from its app.' };
      }
      return [];
    });
    const session = new ChatSession();
    const tray = new AttachmentTray();
    tray.addPath('/tmp/broken.pdf');
    const view = render(Composer, {
      streaming: false,
      tray,
      onSend: (text: string, files: Parameters<ChatSession['send']>[1]) => session.send(text, files),
      onStop: () => {},
    });
    const input = view.getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement;
    await fireEvent.input(input, { target: { value: 'summarise this' } });
    await fireEvent.click(view.getByTestId('send'));
    await waitFor(() => expect(input.value).toBe('summarise this'));
    expect(session.notice).toMatch(/^broken\.pdf: the PDF is damaged/);
    expect(tray.items.map((item) => item.name)).toEqual(['broken.pdf']);
    expect(session.messages).toEqual([]);
  });

  it('reports reading progress, then shows page counts and scanned pages on the sent chip', async () => {
    const seen: (string | null)[] = [];
    const view: MessageViewDto[] = [
      {
        message: message({ id: 10, role: 'user', content: 'what does it say?' }),
        siblingIndex: 0,
        siblingCount: 1,
        siblingIds: [10],
        notices: [],
        citations: [],
        attachments: [
          { id: 3, fileName: 'scan.pdf', mime: 'application/pdf', sizeBytes: 9, kind: 'document', pageCount: 12, scannedPages: 3, hasThumbnail: false },
        ],
      },
      { message: message({ id: 11, parentId: 10, content: 'It says hello.' }), siblingIndex: 0, siblingCount: 1, siblingIds: [11], notices: ['Pages 4–12 were too long to include; the best excerpts were used.'], citations: [], attachments: [] },
    ];
    let session: ChatSession;
    mockCommands((command, args) => {
      if (command === 'send_message') {
        expect(args.attachments).toEqual(['/tmp/scan.pdf']);
        emitTurnEvent(args, { event: 'preparing', data: { fileName: 'scan.pdf', donePages: 0, totalPages: 12 } });
        seen.push(session.preparing ? `${session.preparing.fileName} ${session.preparing.donePages}/${session.preparing.totalPages}` : null);
        emitTurnEvent(args, { event: 'started', data: { conversationId: 1, userMessageId: 10, replyMessageId: 11 } });
        seen.push(session.preparing === null ? 'started' : 'still preparing');
        emitTurnEvent(args, { event: 'loadingModel', data: { model: 'Llama-4-Scout' } });
        seen.push(`loading ${session.loadingModel}`);
        emitTurnEvent(args, { event: 'token', data: { text: 'It says hello.' } });
        seen.push(session.loadingModel === null ? 'answering' : 'still loading');
        emitTurnEvent(args, { event: 'finished', data: { status: 'complete', error: null } });
        return { conversationId: 1, userMessageId: 10, replyMessageId: 11 };
      }
      if (command === 'get_conversation_view') return view;
      if (command === 'preview_attachment') return previewOf(String(args.path), 12, 3);
      return [];
    });
    session = new ChatSession();
    const tray = new AttachmentTray();
    tray.addPath('/tmp/scan.pdf');
    expect(await session.send('what does it say?', tray.items)).toBe(true);
    expect(seen).toEqual(['scan.pdf 0/12', 'started', 'loading Llama-4-Scout', 'answering']);
    const rendered = render(ChatView, { messages: session.messages, streamingReplyId: null, extras: session.extras });
    expect(rendered.getByTestId('attachment-pages').textContent).toBe('12 pages · scanned pages: 3');
    expect(rendered.getByTestId('reply-notices').textContent).toContain('best excerpts');
  });
});

describe('attached files read before sending', () => {
  it('show "reading…", then their thumbnail and pages from the backend', async () => {
    const answer = deferred<AttachmentPreviewDto>();
    const asked: unknown[] = [];
    let progress: ((update: { donePages: number; totalPages: number }) => void) | undefined;
    mockCommands((command, args) => {
      if (command !== 'preview_attachment') return [];
      asked.push(args.path);
      progress = (update) => (args.onProgress as { onmessage: (value: unknown) => void }).onmessage(update);
      return answer.promise;
    });
    const tray = new AttachmentTray();
    tray.addPath('/home/me/scan.pdf');
    const view = render(Composer, { streaming: false, tray, onSend: vi.fn(async () => true), onStop: () => {} });
    expect(asked).toEqual(['/home/me/scan.pdf']);
    const chip = view.getByTestId('attachment-chip');
    expect(view.getByTestId('attachment-reading').textContent).toBe('reading…');
    expect(chip.getAttribute('aria-busy')).toBe('true');
    expect(chip.querySelector('img')).toBeNull();
    progress?.({ donePages: 4, totalPages: 12 });
    await waitFor(() => expect(view.getByTestId('attachment-reading').textContent).toBe('reading: page 5 of 12…'));
    answer.resolve(previewOf('/home/me/scan.pdf', 12, 3));
    await waitFor(() => expect(view.getByTestId('attachment-pages').textContent).toBe('12 pages · scanned pages: 3'));
    expect(chip.querySelector('img')?.getAttribute('src')).toBe('data:image/jpeg;base64,/9j/2w==');
    expect(view.queryByTestId('attachment-reading')).toBeNull();
    expect(chip.getAttribute('aria-busy')).toBe('false');
  });

  it('a file taken off while it is read is stopped in the backend', async () => {
    const cancelled: unknown[] = [];
    let previewId: unknown;
    mockCommands((command, args) => {
      if (command === 'preview_attachment') {
        previewId = args.previewId;
        return new Promise(() => {});
      }
      if (command === 'cancel_attachment_preview') cancelled.push(args.previewId);
      return true;
    });
    const tray = new AttachmentTray();
    const view = render(Composer, { streaming: false, tray, onSend: vi.fn(async () => true), onStop: () => {} });
    tray.addPath('/home/me/huge.pdf');
    await waitFor(() => expect(previewId).toBeTypeOf('number'));
    await fireEvent.click(view.getByRole('button', { name: 'Remove huge.pdf' }));
    expect(cancelled).toEqual([previewId]);
    expect(view.queryAllByTestId('attachment-chip')).toHaveLength(0);
  });

  it('a file the backend refuses leaves the tray at once, with the reason', async () => {
    mockCommands((command, args) => {
      if (command !== 'preview_attachment') return [];
      if (String(args.path).startsWith('https:')) {
        throw { kind: 'INVALID_INPUT', message: 'picture.png: No such file or directory (os error 2)' };
      }
      return previewOf(String(args.path));
    });
    const tray = new AttachmentTray();
    const view = render(Composer, { streaming: false, tray, onSend: vi.fn(async () => true), onStop: () => {} });
    tray.addPath('https://example.test/picture.png');
    tray.addPath('/home/me/notes.pdf');
    await waitFor(() => expect(view.getAllByTestId('attachment-chip')).toHaveLength(1));
    expect(view.getByTestId('attachment-chip').textContent).toContain('notes.pdf');
    expect(view.getByRole('alert').textContent).toBe('picture.png: No such file or directory (os error 2)');
  });

  it('a send waits for files still being read, and does not go when one is refused meanwhile', async () => {
    const slow = deferred<AttachmentPreviewDto>();
    const refused = deferred<AttachmentPreviewDto>();
    mockCommands((command, args) => {
      if (command !== 'preview_attachment') return [];
      return String(args.path).endsWith('big.pdf') ? slow.promise : refused.promise;
    });
    const onSend = vi.fn(async () => true);
    const tray = new AttachmentTray();
    tray.addPath('/home/me/big.pdf');
    const view = render(Composer, { streaming: false, tray, onSend, onStop: () => {} });
    const input = view.getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement;
    await fireEvent.input(input, { target: { value: 'summarise it' } });
    await fireEvent.click(view.getByTestId('send'));
    expect(onSend).not.toHaveBeenCalled();
    expect((view.getByTestId('send') as HTMLButtonElement).disabled).toBe(true);
    slow.resolve(previewOf('/home/me/big.pdf', 100));
    await waitFor(() => expect(onSend).toHaveBeenCalledTimes(1));
    expect(onSend).toHaveBeenCalledWith('summarise it', [
      expect.objectContaining({ name: 'big.pdf', reading: false, preview: expect.objectContaining({ pageCount: 100 }) }),
    ]);

    // Second message: the file is refused while the send waits; nothing goes, the text stays.
    tray.addPath('/home/me/locked.pdf');
    await fireEvent.input(input, { target: { value: 'and this one?' } });
    await fireEvent.click(view.getByTestId('send'));
    refused.reject({ kind: 'INVALID_INPUT', message: 'locked.pdf: the PDF needs a password' });
    await waitFor(() => expect(view.getByRole('alert').textContent).toBe('locked.pdf: the PDF needs a password'));
    // Let the waiting send run on, as it would.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(onSend).toHaveBeenCalledTimes(1);
    expect(input.value).toBe('and this one?');
    expect(tray.items).toEqual([]);
  });
});

describe('a just-sent picture', () => {
  it('keeps the composer\'s thumbnail on its message while the reply streams', async () => {
    let shownWhileStreaming: string | null | undefined;
    let session: ChatSession;
    mockCommands((command, args) => {
      if (command === 'preview_attachment') return previewOf(String(args.path));
      if (command === 'send_message') {
        emitTurnEvent(args, { event: 'started', data: { conversationId: 1, userMessageId: 20, replyMessageId: 21 } });
        const streaming = render(ChatView, { messages: session.messages, streamingReplyId: 21, extras: session.extras });
        shownWhileStreaming = streaming.getByTestId('attachment-chip').querySelector('img')?.getAttribute('src');
        emitTurnEvent(args, { event: 'finished', data: { status: 'complete', error: null } });
        return { conversationId: 1, userMessageId: 20, replyMessageId: 21 };
      }
      return [];
    });
    session = new ChatSession();
    const tray = new AttachmentTray();
    tray.addPath('/home/me/cat.png');
    await tray.settled();
    expect(await session.send('', tray.items)).toBe(true);
    expect(shownWhileStreaming).toBe('data:image/jpeg;base64,/9j/2w==');
  });
});

describe('model loading', () => {
  it('says which model a reply waits for, and only while it loads', () => {
    const props = { streaming: true, tray: new AttachmentTray(), onSend: vi.fn(), onStop: vi.fn() };
    const loading = render(Composer, { ...props, loadingModel: 'Llama-4-Scout-Q4_K_M' });
    expect(loading.getByRole('status').textContent).toContain('Loading Llama-4-Scout-Q4_K_M…');
    cleanup();
    const answering = render(Composer, { ...props, loadingModel: null });
    expect(answering.queryByTestId('model-loading')).toBeNull();
  });

  it('shows how far the load is when the engine says', () => {
    const props = { streaming: true, tray: new AttachmentTray(), onSend: vi.fn(), onStop: vi.fn() };
    const view = render(Composer, { ...props, loadingModel: 'Llama-4-Scout-Q4_K_M', loadFraction: 0.42 });
    expect(view.getByTestId('model-loading').textContent).toContain('Loading Llama-4-Scout-Q4_K_M: 42%…');
    expect((view.getByRole('progressbar', { name: 'Model loading' }) as HTMLProgressElement).value).toBeCloseTo(0.42);
  });
});

describe('branches and edits', () => {
  function twoReplies(): MessageViewDto[] {
    return [
      { message: message({ id: 1, role: 'user', content: 'q' }), siblingIndex: 0, siblingCount: 1, siblingIds: [1], notices: [], citations: [], attachments: [] },
      { message: message({ id: 2, parentId: 1, content: 'first answer' }), siblingIndex: 0, siblingCount: 1, siblingIds: [2], notices: [], citations: [], attachments: [] },
    ];
  }

  it('regenerate adds a sibling, and the arrows switch between the two', async () => {
    const switched: unknown[] = [];
    let shown = 3;
    mockCommands((command, args) => {
      switch (command) {
        case 'regenerate':
          expect(args.replyMessageId).toBe(2);
          emitTurnEvent(args, { event: 'started', data: { conversationId: 1, userMessageId: 1, replyMessageId: 3 } });
          emitTurnEvent(args, { event: 'token', data: { text: 'second answer' } });
          emitTurnEvent(args, { event: 'finished', data: { status: 'complete', error: null } });
          return { conversationId: 1, userMessageId: 1, replyMessageId: 3 };
        case 'switch_branch':
          switched.push(args.messageId);
          shown = args.messageId as number;
          return null;
        case 'get_conversation_view': {
          const [user] = twoReplies();
          const reply = shown === 3
            ? { ...twoReplies()[1]!, message: message({ id: 3, parentId: 1, content: 'second answer' }), siblingIndex: 1, siblingCount: 2, siblingIds: [2, 3] }
            : { ...twoReplies()[1]!, siblingIndex: 0, siblingCount: 2, siblingIds: [2, 3] };
          return [user, reply];
        }
        default:
          return [];
      }
    });
    const session = new ChatSession();
    session.activeConversationId = 1;
    mockViewOnce(session, twoReplies());
    expect(await session.regenerate(2)).toBe(true);
    const view = render(ChatView, {
      messages: session.messages,
      streamingReplyId: null,
      extras: session.extras,
      canSwitch: (id: number, step: -1 | 1) => session.siblingOf(id, step) !== null,
      onSwitch: (id: number, step: -1 | 1) => void session.showSibling(id, step),
    });
    expect(view.getByTestId('branch-position').textContent).toBe('2/2');
    expect((view.getByTestId('branch-next') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(view.getByTestId('branch-previous'));
    await waitFor(() => expect(session.messages.at(-1)?.content).toBe('first answer'));
    expect(switched).toEqual([2]);
    expect(session.extras[2]?.siblingIndex).toBe(0);
    expect(session.siblingOf(2, 1)).toBe(3);
  });

  it('edit opens an inline editor and sends the new text as a branch', async () => {
    const onEdit = vi.fn(async () => true);
    const view = render(ChatView, {
      messages: [message({ id: 1, role: 'user', content: 'old question' }), message({ id: 2, parentId: 1, content: 'answer' })],
      streamingReplyId: null,
      extras: { 1: extras(), 2: extras() },
      onEdit,
    });
    await fireEvent.click(view.getByRole('button', { name: 'Edit message' }));
    const editor = view.getByRole('textbox', { name: 'Edit your message' }) as HTMLTextAreaElement;
    expect(editor.value).toBe('old question');
    await fireEvent.input(editor, { target: { value: 'new question' } });
    await fireEvent.click(view.getByTestId('edit-send'));
    expect(onEdit).toHaveBeenCalledWith(1, 'new question');
    await waitFor(() => expect(view.queryByRole('textbox', { name: 'Edit your message' })).toBeNull());
  });

  it('offers Continue on a stopped last reply and Regenerate only on the last reply', () => {
    const view = render(ChatView, {
      messages: [
        message({ id: 1, role: 'user', content: 'q' }),
        message({ id: 2, parentId: 1, content: 'old' }),
        message({ id: 3, parentId: 2, role: 'user', content: 'q2' }),
        message({ id: 4, parentId: 3, content: 'half', status: 'cancelled' }),
      ],
      streamingReplyId: null,
      extras: {},
      onRegenerate: () => {},
      onContinue: () => {},
    });
    expect(view.getAllByTestId('regenerate')).toHaveLength(1);
    expect(view.getByTestId('continue-reply')).toBeTruthy();
    expect(view.getAllByTestId('regenerate')[0]?.closest('article')?.getAttribute('data-message-id')).toBe('4');
  });
});

/** The session loads a conversation's view once, as opening it would. */
function mockViewOnce(session: ChatSession, views: MessageViewDto[]) {
  (session as unknown as { applyView(views: MessageViewDto[]): void }).applyView(views);
}

describe('context meter', () => {
  it('shows the last prompt against the context size and warns above 80%', async () => {
    const { contextUsage } = await import('./replyInfo');
    expect(contextUsage(null, 8192)).toBeNull();
    expect(contextUsage(1200, 0)).toBeNull();
    const calm = contextUsage(2048, 8192);
    expect([calm?.label, calm?.warn]).toEqual(['25%', false]);
    expect(calm?.title).toContain('2,048 of 8,192 tokens');
    const full = contextUsage(7000, 8192);
    expect([full?.label, full?.warn]).toEqual(['85%', true]);
    expect(full?.title).toMatch(/Nearly full/);
  });
});

describe('titles', () => {
  it('the conversation title follows the titled event at once', async () => {
    let session: ChatSession;
    let seenTitle: string | undefined;
    mockCommands((command, args) => {
      if (command === 'send_message') {
        emitTurnEvent(args, { event: 'started', data: { conversationId: 9, userMessageId: 1, replyMessageId: 2 } });
        emitTurnEvent(args, { event: 'finished', data: { status: 'complete', error: null } });
        emitTurnEvent(args, { event: 'titled', data: { title: 'Rice harvest' } });
        seenTitle = session.activeConversation?.title;
        return { conversationId: 9, userMessageId: 1, replyMessageId: 2 };
      }
      if (command === 'list_conversations') return [{ id: 9, title: 'Rice harvest', updatedAtMs: 1, pinned: false, modelPin: null }];
      return [];
    });
    session = new ChatSession();
    session.conversations = [{ id: 9, title: 'What happened to…', updatedAtMs: 0, pinned: false, modelPin: null }];
    session.activeConversationId = 9;
    await session.send('What happened to the harvest?');
    expect(seenTitle).toBe('Rice harvest');
  });
});

describe('branches made before a restart', () => {
  it('the arrows reach siblings listed by the stored view, and a reply cut by length can go on', async () => {
    const switched: unknown[] = [];
    mockCommands((command, args) => {
      if (command === 'switch_branch') {
        switched.push(args.messageId);
        return null;
      }
      return [];
    });
    const session = new ChatSession();
    session.activeConversationId = 1;
    const cut = message({ id: 7, parentId: 1, content: 'a long answer that was cut', stats: { modelId: null, route: null, promptTokens: null, completionTokens: 24, ttftMs: null, tokensPerSecond: null, finishReason: 'length' } });
    mockViewOnce(session, [
      { message: message({ id: 1, role: 'user', content: 'q' }), siblingIndex: 0, siblingCount: 1, siblingIds: [1], notices: [], citations: [], attachments: [] },
      { message: cut, siblingIndex: 2, siblingCount: 3, siblingIds: [2, 5, 7], notices: [], citations: [], attachments: [] },
    ]);
    expect(session.siblingOf(7, -1)).toBe(5);
    expect(session.siblingOf(7, 1)).toBeNull();
    const view = render(ChatView, {
      messages: session.messages,
      streamingReplyId: null,
      extras: session.extras,
      onContinue: () => {},
    });
    expect(view.getByTestId('continue-reply')).toBeTruthy();
    await session.showSibling(7, -1);
    expect(switched).toEqual([5]);
  });
});
