import { afterEach, describe, expect, it } from 'vitest';
import { clearMocks, emitTurnEvent, mockCommands } from '../../ipc/testing';
import { ChatSession } from './session.svelte';

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
    expect(calls).toEqual(['send_message', 'list_conversations']);
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
});
