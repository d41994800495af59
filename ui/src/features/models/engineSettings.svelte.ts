// The engine section of the models panel: context size, threads and GPU layers as the user
// chose them (empty = automatic), the devices llama.cpp sees, and applying a change (which
// reloads the loaded model). Errors become a notice; nothing here throws at the components.
import {
  CriaError,
  getEngineSettings,
  listDevices,
  setEngineSettings,
  type DeviceDto,
  type EngineSettingsDto,
} from '../../ipc';

/** Context sizes offered besides automatic (tokens). */
export const CONTEXT_SIZES = [2048, 4096, 8192, 16384, 32768, 65536, 131072];

export class EngineSettingsForm {
  /** '' is automatic; otherwise a number as typed or chosen. */
  contextSize = $state('');
  threads = $state('');
  gpuLayers = $state('');
  devices = $state<DeviceDto[]>([]);
  saved = $state<EngineSettingsDto>({ contextSize: null, threads: null, gpuLayers: null });
  applying = $state(false);
  notice = $state<string | null>(null);

  constructor(private readonly onApplied: () => Promise<void>) {}

  async load(): Promise<void> {
    try {
      // No answer means nothing was chosen: all automatic.
      this.saved = (await getEngineSettings()) ?? { contextSize: null, threads: null, gpuLayers: null };
      this.contextSize = this.saved.contextSize?.toString() ?? '';
      this.threads = this.saved.threads?.toString() ?? '';
      this.gpuLayers = this.saved.gpuLayers?.toString() ?? '';
      this.devices = (await listDevices()) ?? [];
    } catch (error) {
      this.notice = messageOf(error);
    }
  }

  /** What the fields say, or a problem to show instead of applying. */
  chosen(): EngineSettingsDto | string {
    const parse = (label: string, text: string): number | null | string => {
      const trimmed = text.trim();
      if (trimmed === '') return null;
      const value = Number(trimmed);
      if (!Number.isInteger(value) || value < 0) return `${label} must be a whole number, or empty for automatic.`;
      return value;
    };
    const contextSize = parse('Context size', this.contextSize);
    const threads = parse('Threads', this.threads);
    const gpuLayers = parse('GPU layers', this.gpuLayers);
    for (const value of [contextSize, threads, gpuLayers]) if (typeof value === 'string') return value;
    return { contextSize, threads, gpuLayers } as EngineSettingsDto;
  }

  get changed(): boolean {
    const chosen = this.chosen();
    return (
      typeof chosen === 'string' ||
      chosen.contextSize !== this.saved.contextSize ||
      chosen.threads !== this.saved.threads ||
      chosen.gpuLayers !== this.saved.gpuLayers
    );
  }

  async apply(): Promise<boolean> {
    const chosen = this.chosen();
    if (typeof chosen === 'string') {
      this.notice = chosen;
      return false;
    }
    this.applying = true;
    this.notice = null;
    try {
      await setEngineSettings(chosen);
      this.saved = chosen;
      await this.onApplied();
      return true;
    } catch (error) {
      this.notice = messageOf(error);
      return false;
    } finally {
      this.applying = false;
    }
  }
}

export function formatMemory(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  return `${Math.round(bytes / 1024 ** 2)} MiB`;
}

function messageOf(error: unknown): string {
  return error instanceof CriaError ? error.message : String(error);
}
