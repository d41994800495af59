import { afterEach, describe, expect, it, vi } from 'vitest';
import { asView, clearMocks, emitTurnEvent, mockCommands } from '../../ipc/testing';
import type { GenerationStatsDto, MessageDto } from '../../ipc';
import { ChatSession } from './session.svelte';

const noStats: GenerationStatsDto = {
  modelId: null, route: null, promptTokens: null, completionTokens: null, ttftMs: null, tokensPerSecond: null, finishReason: null,
};

function stored(id: number, role: MessageDto['role'], content: string, stats: GenerationStatsDto | null): MessageDto {
  return { id, parentId: id > 1 ? id - 1 : null, role, content, status: 'complete', error: null, createdAtMs: 0, stats };
}

afterEach(() => clearMocks());

describe('ChatSession', () => {
  it('streams a reply into the open conversation and refreshes the sidebar', async () => {
    const calls: string[] = [];
    mockCommands((command, args) => {
      calls.push(command);
      if (command === 'send_message') {
        expect(args.conversationId).toBeNull();
        expect(args.text).toBe('hello');
        emitTurnEvent(args, {
          event: 'started',
          data: { conversationId: 3, userMessageId: 10, replyMessageId: 11 },
        });
        emitTurnEvent(args, { event: 'token', data: { text: 'Hi ' } });
        emitTurnEvent(args, { event: 'token', data: { text: 'there' } });
        emitTurnEvent(args, { event: 'finished', data: { status: 'complete', error: null } });
        return { conversationId: 3, userMessageId: 10, replyMessageId: 11 };
      }
      if (command === 'list_conversations') {
        return [{ id: 3, title: 'hello', updatedAtMs: 1, pinned: false }];
      }
      if (command === 'get_conversation_view') {
        expect(args.conversationId).toBe(3);
        return asView([
          stored(10, 'user', 'hello', null),
          stored(11, 'assistant', 'Hi there', { ...noStats, modelId: 'scout.gguf', completionTokens: 2, ttftMs: 310 }),
        ]);
      }
      throw new Error(`unexpected command ${command}`);
    });

    const session = new ChatSession();
    const sent = await session.send('  hello  ');

    expect(sent).toBe(true);
    expect(session.activeConversationId).toBe(3);
    expect(session.messages.map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'hello', 'complete'],
      ['assistant', 'Hi there', 'complete'],
    ]);
    expect(session.isStreaming).toBe(false);
    expect(session.activeConversation?.title).toBe('hello');
    // The stored reply replaces the streamed copy, so its stats show.
    expect(session.messages.at(-1)?.stats?.ttftMs).toBe(310);
    expect(calls).toEqual(['send_message', 'list_conversations', 'get_conversation_view']);
  });

  it('keeps a failed reply with its error message', async () => {
    mockCommands((command, args) => {
      if (command === 'send_message') {
        emitTurnEvent(args, {
          event: 'started',
          data: { conversationId: 1, userMessageId: 1, replyMessageId: 2 },
        });
        emitTurnEvent(args, {
          event: 'finished',
          data: { status: 'failed', error: 'No model is loaded.' },
        });
        return { conversationId: 1, userMessageId: 1, replyMessageId: 2 };
      }
      if (command === 'get_conversation_view') {
        return asView([stored(1, 'user', 'hi', null), { ...stored(2, 'assistant', '', null), status: 'failed', error: 'No model is loaded.' }]);
      }
      return [];
    });
    const session = new ChatSession();
    await session.send('hi');
    const reply = session.messages.at(-1);
    expect(reply?.status).toBe('failed');
    expect(reply?.error).toBe('No model is loaded.');
    expect(session.messages[0]?.content).toBe('hi');
  });

  it('shows a command error as a notice and reports nothing sent', async () => {
    mockCommands(() => {
      throw { kind: 'STORAGE', message: 'database is locked' };
    });
    const session = new ChatSession();
    expect(await session.send('hi')).toBe(false);
    expect(session.notice).toBe('database is locked');
    expect(session.messages).toEqual([]);
  });

  it('sends nothing for blank text', async () => {
    let called = false;
    mockCommands(() => {
      called = true;
      return [];
    });
    const session = new ChatSession();
    expect(await session.send('   ')).toBe(false);
    expect(called).toBe(false);
  });

  it('asks the backend to stop the reply being streamed', async () => {
    let stopped: unknown = null;
    let release: () => void = () => {};
    mockCommands((command, args) => {
      if (command === 'send_message') {
        emitTurnEvent(args, {
          event: 'started',
          data: { conversationId: 1, userMessageId: 1, replyMessageId: 2 },
        });
        return new Promise((resolve) => {
          release = () => {
            emitTurnEvent(args, { event: 'finished', data: { status: 'cancelled', error: null } });
            resolve({ conversationId: 1, userMessageId: 1, replyMessageId: 2 });
          };
        });
      }
      if (command === 'stop_reply') {
        stopped = args.replyMessageId;
        release();
        return true;
      }
      if (command === 'get_conversation_view') {
        return asView([stored(1, 'user', 'long question', null), { ...stored(2, 'assistant', 'half', null), status: 'cancelled' }]);
      }
      return [];
    });
    const session = new ChatSession();
    const sending = session.send('long question');
    await Promise.resolve();
    expect(session.isStreaming).toBe(true);
    await session.stop();
    await sending;
    expect(stopped).toBe(2);
    expect(session.messages.at(-1)?.status).toBe('cancelled');
    expect(session.isStreaming).toBe(false);
  });

  it('does not replace another conversation the user opened while the reply streamed', async () => {
    let finish: () => void = () => {};
    mockCommands((command, args) => {
      if (command === 'send_message') {
        emitTurnEvent(args, { event: 'started', data: { conversationId: 1, userMessageId: 1, replyMessageId: 2 } });
        return new Promise((resolve) => {
          finish = () => {
            emitTurnEvent(args, { event: 'finished', data: { status: 'complete', error: null } });
            resolve({ conversationId: 1, userMessageId: 1, replyMessageId: 2 });
          };
        });
      }
      if (command === 'get_conversation_view') {
        return asView(args.conversationId === 7 ? [stored(70, 'user', 'older chat', null)] : [stored(1, 'user', 'q', null)]);
      }
      return [];
    });
    const session = new ChatSession();
    const sending = session.send('q');
    await Promise.resolve();
    await session.openConversation(7);
    finish();
    await sending;
    expect(session.activeConversationId).toBe(7);
    expect(session.messages.map((m) => m.content)).toEqual(['older chat']);
  });

  it('shows streamed text once per frame, not once per token', async () => {
    let finish: () => void = () => {};
    let emit: (text: string) => void = () => {};
    mockCommands((command, args) => {
      if (command === 'send_message') {
        emitTurnEvent(args, { event: 'started', data: { conversationId: 1, userMessageId: 1, replyMessageId: 2 } });
        emit = (text) => emitTurnEvent(args, { event: 'token', data: { text } });
        return new Promise((resolve) => {
          finish = () => {
            emitTurnEvent(args, { event: 'finished', data: { status: 'complete', error: null } });
            resolve({ conversationId: 1, userMessageId: 1, replyMessageId: 2 });
          };
        });
      }
      if (command === 'get_conversation_view') return asView([stored(1, 'user', 'q', null), stored(2, 'assistant', 'a b c', null)]);
      return [];
    });
    const session = new ChatSession();
    const sending = session.send('q');
    await Promise.resolve();
    emit('a ');
    emit('b ');
    expect(session.messages.at(-1)?.content).toBe('');
    await vi.waitFor(() => expect(session.messages.at(-1)?.content).toBe('a b '));
    emit('c');
    finish();
    // The end of the stream lands at once, with nothing left behind.
    expect(session.messages.at(-1)?.content).toBe('a b c');
    await sending;
  });
});
