// The reply settings form: text fields in, a checked ChatSettingsDto out, or a message per field
// that says what is wrong. The core checks the same ranges again; this is for quick feedback.
import type { ChatSettingsDto } from '../../ipc';

/** Llama 4's recommended sampling, shown as the defaults. */
export const LLAMA4_DEFAULTS = { temperature: 0.6, topP: 0.9, minP: 0.01 } as const;
/** Same bound as the core's `MAX_SYSTEM_PROMPT_CHARS`. */
export const MAX_SYSTEM_PROMPT_CHARS = 20_000;

export interface ChatSettingsForm {
  systemPrompt: string;
  autoTitle: boolean;
  temperature: string;
  topP: string;
  minP: string;
  /** Empty: automatic (a quarter of the context). */
  maxReplyTokens: string;
  fastProfile: string;
  visionProfile: string;
}

export type FieldErrors = Partial<Record<keyof ChatSettingsForm, string>>;

export function toForm(settings: ChatSettingsDto): ChatSettingsForm {
  return {
    systemPrompt: settings.systemPrompt ?? '',
    autoTitle: settings.autoTitle,
    temperature: String(round(settings.temperature)),
    topP: String(round(settings.topP)),
    minP: String(round(settings.minP)),
    maxReplyTokens: settings.maxReplyTokens === null ? '' : String(settings.maxReplyTokens),
    fastProfile: settings.fastProfile ?? '',
    visionProfile: settings.visionProfile ?? '',
  };
}

/** The settings the form describes, or what is wrong with each field. */
export function fromForm(form: ChatSettingsForm): { settings: ChatSettingsDto } | { errors: FieldErrors } {
  const errors: FieldErrors = {};
  const number = (field: 'temperature' | 'topP' | 'minP', label: string, max: number): number => {
    const text = form[field].trim();
    const value = Number(text);
    if (text === '' || !Number.isFinite(value) || value < 0 || value > max) {
      errors[field] = `${label} must be a number from 0 to ${max}.`;
    }
    return value;
  };
  const temperature = number('temperature', 'Temperature', 2);
  const topP = number('topP', 'Top-p', 1);
  const minP = number('minP', 'Min-p', 1);
  let maxReplyTokens: number | null = null;
  const tokens = form.maxReplyTokens.trim();
  if (tokens !== '') {
    const value = Number(tokens);
    if (!Number.isInteger(value) || value < 1 || value > 1_000_000) {
      errors.maxReplyTokens = 'The longest reply must be a whole number of tokens, at least 1 (or empty for automatic).';
    } else {
      maxReplyTokens = value;
    }
  }
  const prompt = form.systemPrompt.trim();
  if ([...prompt].length > MAX_SYSTEM_PROMPT_CHARS) {
    errors.systemPrompt = `The system prompt can be at most ${MAX_SYSTEM_PROMPT_CHARS.toLocaleString('en-US')} characters.`;
  }
  if (Object.keys(errors).length > 0) return { errors };
  return {
    settings: {
      systemPrompt: prompt === '' ? null : prompt,
      autoTitle: form.autoTitle,
      temperature,
      topP,
      minP,
      maxReplyTokens,
      fastProfile: form.fastProfile === '' ? null : form.fastProfile,
      visionProfile: form.visionProfile === '' ? null : form.visionProfile,
    },
  };
}

/** Settings are stored as f32: 0.6 comes back as 0.6000000238418579. */
function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
