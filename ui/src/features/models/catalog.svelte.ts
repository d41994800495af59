// The model catalog as the window shows it: entries with the fit verdict for this machine, and
// the downloads started from them (progress, cancel, resume). It lives as long as the window,
// not the models panel, so closing the panel neither stops a download nor loses its progress.
// Errors become a message on the entry; nothing here throws at the components.
import {
  CriaError,
  cancelDownload,
  downloadModel,
  listCatalog,
  type CatalogEntryDto,
  type DownloadEventDto,
  type ModelSummaryDto,
} from '../../ipc';

export type DownloadPhase = 'running' | 'cancelling' | 'cancelled' | 'failed' | 'done';

/** What the window knows about one entry's download. */
export interface DownloadState {
  phase: DownloadPhase;
  /** The file being transferred now (a model may come with its vision projector). */
  fileName: string | null;
  /** Bytes a `.part` file from an earlier try already held, when this try continued it. */
  resumedFrom: number;
  doneBytes: number;
  totalBytes: number | null;
  bytesPerSecond: number;
  etaSeconds: number | null;
  /** Why the file started over (a changed upstream file, a damaged partial file). */
  restartReason: string | null;
  error: string | null;
  /** The library model, once downloaded and verified. */
  model: ModelSummaryDto | null;
}

export class ModelCatalog {
  entries = $state<CatalogEntryDto[]>([]);
  /** Whether the list has been fetched (successfully or not) at least once. */
  loaded = $state(false);
  notice = $state<string | null>(null);
  downloads = $state<Record<string, DownloadState>>({});

  /** `onDownloaded` runs after a download lands in the library (to refresh the library). */
  constructor(private readonly onDownloaded: (model: ModelSummaryDto) => Promise<void> | void) {}

  async refresh(): Promise<void> {
    this.notice = null;
    try {
      this.entries = await listCatalog();
    } catch (error) {
      this.notice = messageOf(error);
    } finally {
      this.loaded = true;
    }
  }

  isRunning(id: string): boolean {
    const phase = this.downloads[id]?.phase;
    return phase === 'running' || phase === 'cancelling';
  }

  /**
   * Downloads an entry (with its vision projector when it has one). Resolves to the library
   * model, or null when it was cancelled or failed (the reason is in the entry's state).
   */
  async start(id: string): Promise<ModelSummaryDto | null> {
    if (this.isRunning(id)) return null;
    const entry = this.entries.find((candidate) => candidate.id === id);
    this.downloads[id] = {
      phase: 'running',
      fileName: null,
      resumedFrom: 0,
      doneBytes: 0,
      totalBytes: entry?.sizeBytes ?? null,
      bytesPerSecond: 0,
      etaSeconds: null,
      restartReason: null,
      error: null,
      model: null,
    };
    try {
      const model = await downloadModel(id, entry?.vision ?? false, (event) => this.apply(id, event));
      this.update(id, { phase: 'done', model, etaSeconds: 0 });
      this.entries = this.entries.map((candidate) =>
        candidate.id === id ? { ...candidate, downloaded: true } : candidate,
      );
      await this.onDownloaded(model);
      return model;
    } catch (error) {
      if (error instanceof CriaError && error.kind === 'CANCELLED') {
        this.update(id, { phase: 'cancelled', bytesPerSecond: 0, etaSeconds: null });
      } else {
        this.update(id, { phase: 'failed', error: messageOf(error), bytesPerSecond: 0, etaSeconds: null });
      }
      return null;
    }
  }

  async cancel(id: string): Promise<void> {
    if (this.downloads[id]?.phase !== 'running') return;
    this.update(id, { phase: 'cancelling' });
    try {
      // False means it ended meanwhile; `start` records how.
      await cancelDownload(id);
    } catch (error) {
      this.update(id, { phase: 'running', error: messageOf(error) });
    }
  }

  private apply(id: string, event: DownloadEventDto): void {
    switch (event.event) {
      case 'started': {
        // Only the job's first file says how much of the whole job was on disk already.
        const first = this.downloads[id]?.fileName === null;
        this.update(id, {
          fileName: event.data.fileName,
          // The bar starts where the partial file ends, not at zero.
          ...(first ? { resumedFrom: event.data.resumeFrom, doneBytes: event.data.resumeFrom } : {}),
        });
        break;
      }
      case 'progress':
        this.update(id, {
          fileName: event.data.fileName,
          doneBytes: event.data.jobBytes,
          totalBytes: event.data.jobTotal ?? this.downloads[id]?.totalBytes ?? null,
          bytesPerSecond: event.data.bytesPerSecond,
          etaSeconds: event.data.etaSeconds,
        });
        break;
      case 'restarted':
        this.update(id, { restartReason: event.data.reason, resumedFrom: 0 });
        break;
      case 'verified':
        break;
    }
  }

  private update(id: string, changes: Partial<DownloadState>): void {
    const current = this.downloads[id];
    if (current) this.downloads[id] = { ...current, ...changes };
  }
}

function messageOf(error: unknown): string {
  return error instanceof CriaError ? error.message : String(error);
}

/** "1.2 GB", "350 MB", "2.5 MB", "12 kB": decimal units, as the catalog and disk tools show them. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  // One decimal below 10 MB, where a whole number would hide most of the progress.
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} kB`;
  return `${Math.max(0, Math.round(bytes))} B`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** "about 3 h 5 min", "2 min 10 s", "40 s". */
export function formatEta(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  if (hours > 0) return `${hours} h ${minutes} min`;
  if (minutes > 0) return `${minutes} min ${rest} s`;
  return `${rest} s`;
}
