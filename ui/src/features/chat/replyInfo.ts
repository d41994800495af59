// What the quiet line under a reply says: how it ended (a badge and, when it ended badly, what
// happened and what to do) and how it was generated (model, route, time to first token, speed,
// tokens). Pure functions of a MessageDto, so the component stays markup.
import type { GenerationStatsDto, MessageDto } from '../../ipc';

export interface ReplyEnd {
  /** A short label for the badge. */
  badge: string;
  /** What happened and what the user can do; null when the badge says it all. */
  message: string | null;
  /** Technical detail (an engine log tail), shown folded. */
  details: string | null;
}

/** How a reply ended, or null for one that completed normally (or is still streaming). */
export function replyEnd(message: MessageDto): ReplyEnd | null {
  switch (message.status) {
    case 'streaming':
    case 'complete':
      return null;
    case 'cancelled':
      return { badge: 'Stopped', message: null, details: null };
    case 'interrupted':
      return { badge: 'Interrupted', ...interruption(message.error) };
    case 'failed':
      return {
        badge: 'Failed',
        message: message.error ?? 'The reply could not be generated. Send again to retry.',
        details: null,
      };
  }
}

/**
 * The engine's crash message reads "The engine stopped unexpectedly (out of memory). The reply
 * so far was kept; … Details: <log tail>". The line under the reply keeps the reason and the
 * action; the log tail goes in the folded details. A reply recovered after the app itself
 * closed has no error at all.
 */
function interruption(error: string | null): Pick<ReplyEnd, 'message' | 'details'> {
  if (error === null || error.trim() === '') {
    return {
      message: 'The engine stopped: Cria closed before this reply was finished. Send again to retry.',
      details: null,
    };
  }
  const detailsAt = error.indexOf('Details:');
  const details = detailsAt >= 0 ? error.slice(detailsAt + 'Details:'.length).trim() : '';
  const summary = (detailsAt >= 0 ? error.slice(0, detailsAt) : error).trim();
  const reason = /^The engine stopped unexpectedly \(([^)]+)\)/.exec(summary)?.[1];
  return {
    message: `The engine stopped: ${reason ?? summary.replace(/\.$/, '')}. Send again to retry.`,
    details: details || null,
  };
}

/**
 * The parts of the stats line, in order; empty when nothing was recorded. `modelName` turns the
 * stored model id (a slug of its file name) into the library's display name when it knows it.
 */
export function statsParts(
  stats: GenerationStatsDto | null,
  modelName: (id: string) => string | undefined = () => undefined,
): string[] {
  if (!stats) return [];
  const parts: string[] = [];
  if (stats.modelId) parts.push(modelName(stats.modelId) ?? stats.modelId.replace(/\.gguf$/i, ''));
  if (stats.route) parts.push(stats.route);
  // Zero means "not measured" (a test engine, or a reply stopped before its first token).
  if (stats.ttftMs) parts.push(`TTFT ${duration(stats.ttftMs)}`);
  if (stats.tokensPerSecond) parts.push(`${stats.tokensPerSecond.toFixed(1)} tok/s`);
  if (stats.completionTokens !== null) {
    const count = stats.completionTokens;
    parts.push(`${count.toLocaleString('en-US')} ${count === 1 ? 'token' : 'tokens'}`);
  }
  return parts;
}

/** The full figures, for the line's tooltip. */
export function statsTitle(stats: GenerationStatsDto | null): string {
  if (!stats) return '';
  const lines = [
    stats.modelId && `Model: ${stats.modelId}`,
    stats.route && `Route: ${stats.route}`,
    stats.ttftMs !== null && `Time to first token: ${stats.ttftMs} ms`,
    stats.tokensPerSecond !== null && `Speed: ${stats.tokensPerSecond.toFixed(2)} tokens per second`,
    stats.promptTokens !== null && `Prompt: ${stats.promptTokens} tokens`,
    stats.completionTokens !== null && `Reply: ${stats.completionTokens} tokens`,
  ];
  return lines.filter(Boolean).join('\n');
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(Math.round(ms / 100) / 10).toFixed(1)} s`;
}

export interface ContextUsage {
  /** 0–100, rounded. */
  percent: number;
  /** Above 80%: older turns will soon be left out of what the model sees. */
  warn: boolean;
  label: string;
  title: string;
}

/** How full the model's context was for the newest reply; null when either figure is unknown. */
export function contextUsage(promptTokens: number | null, contextSize: number | null | undefined): ContextUsage | null {
  if (promptTokens === null || !contextSize || contextSize <= 0) return null;
  const fraction = Math.min(promptTokens / contextSize, 1);
  const percent = Math.round(fraction * 100);
  const warn = fraction > 0.8;
  const count = (value: number) => value.toLocaleString('en-US');
  return {
    percent,
    warn,
    label: percent === 0 && promptTokens > 0 ? '<1%' : `${percent}%`,
    title:
      `Context: ${count(promptTokens)} of ${count(contextSize)} tokens used by the last reply's prompt.` +
      (warn ? '\nNearly full: the oldest turns and long documents will be left out or cut to excerpts.' : ''),
  };
}
