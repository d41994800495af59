// Test helpers over Tauri's IPC mocks, kept beside the IPC module so tests import no platform
// code of their own.
import { emit } from '@tauri-apps/api/event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import type { Channel } from '@tauri-apps/api/core';
import type { DownloadEventDto, MessageDto, MessageViewDto, TurnEventDto } from './bindings';

export type CommandHandler = (command: string, args: Record<string, unknown>) => unknown;

/**
 * Answers commands with `handler`. With `events`, `listen` and `emit` work in the test too
 * (for events the backend sends, such as model load progress).
 */
export function mockCommands(handler: CommandHandler, { events = false }: { events?: boolean } = {}): void {
  mockIPC((command, args) => handler(command, (args ?? {}) as Record<string, unknown>), {
    shouldMockEvents: events,
  });
}

/** Delivers `event` to the Channel a command received as `onEvent`. */
export function emitTurnEvent(args: Record<string, unknown>, event: TurnEventDto): void {
  const channel = args.onEvent as Channel<TurnEventDto>;
  channel.onmessage(event);
}

export { clearMocks };

/** Stored messages as `get_conversation_view` answers: one branch, nothing attached. */
export function asView(messages: MessageDto[]): MessageViewDto[] {
  return messages.map((message) => ({
    message,
    siblingIndex: 0,
    siblingCount: 1,
    siblingIds: [message.id],
    notices: [],
    attachments: [],
    citations: [],
  }));
}

/** Delivers a download `event` to the Channel `download_model` received as `onEvent`. */
export function emitDownloadEvent(args: Record<string, unknown>, event: DownloadEventDto): void {
  const channel = args.onEvent as Channel<DownloadEventDto>;
  channel.onmessage(event);
}

/** Sends an event as the backend would (needs `mockCommands(…, { events: true })`). */
export function emitBackendEvent(name: string, payload: unknown): Promise<void> {
  return emit(name, payload);
}
