// Test helpers over Tauri's IPC mocks, kept beside the IPC module so tests import no platform
// code of their own.
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import type { Channel } from '@tauri-apps/api/core';
import type { DownloadEventDto, MessageDto, MessageViewDto, TurnEventDto } from './bindings';

export type CommandHandler = (command: string, args: Record<string, unknown>) => unknown;

export function mockCommands(handler: CommandHandler): void {
  mockIPC((command, args) => handler(command, (args ?? {}) as Record<string, unknown>));
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
