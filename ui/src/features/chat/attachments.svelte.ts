// Files waiting in the composer to go with the next message: paths the user dropped or typed
// (the backend reads and checks them) and pasted images (sent as base64, bounded here and again
// in the shell). Nothing here reads a file from disk: the webview cannot, and must not.
import {
  cancelAttachmentPreview,
  previewAttachment,
  type AttachmentArgDto,
  type AttachmentPreviewDto,
  type ReadingProgressDto,
} from '../../ipc';

/** Same bound as the shell's (`MAX_PASTED_BYTES`): larger files are attached by path. */
export const MAX_PASTED_BYTES = 32 * 1024 * 1024;
/** Same bound as the core's (`MAX_ATTACHMENTS_PER_MESSAGE`). */
export const MAX_ATTACHMENTS = 10;

export interface PendingAttachment {
  /** Stable key for the chip list. */
  key: number;
  name: string;
  arg: AttachmentArgDto;
  /** A `data:` URL shown on its chip: a pasted image, or the backend's thumbnail of a file. */
  previewUrl: string | null;
  /** What the backend read from a dropped or picked file: kind, pages, scans. */
  preview: AttachmentPreviewDto | null;
  /** The backend is still reading the file (a long PDF takes a while). */
  reading: boolean;
  /** How far that reading is, for documents with pages. */
  progress: ReadingProgressDto | null;
}

let nextKey = 1;

export class AttachmentTray {
  items = $state<PendingAttachment[]>([]);
  /** Why the last file could not be added (too large, too many, cannot be read). */
  problem = $state<string | null>(null);
  /** Files being read by the backend, by key. */
  private reads = new Map<number, Promise<void>>();
  /** Files refused after they were added (counted, so a send can tell one happened). */
  private refusals = 0;

  /** Whether the backend is still reading any of the files. */
  get reading(): boolean {
    return this.items.some((item) => item.reading);
  }

  /**
   * Adds a dropped, picked or typed path. The backend reads the file at once: its chip then
   * shows a thumbnail and the pages, and a file that cannot be attached (a folder, a link
   * dragged from a browser, a damaged or locked document) is taken off with the reason.
   */
  addPath(path: string): boolean {
    const trimmed = path.trim();
    if (trimmed === '') return false;
    if (this.items.some((item) => item.arg === trimmed)) return true;
    const key = nextKey++;
    const name = fileName(trimmed);
    if (!this.push({ key, name, arg: trimmed, previewUrl: null, preview: null, reading: true, progress: null })) {
      return false;
    }
    const read = this.read(key, trimmed).finally(() => this.reads.delete(key));
    this.reads.set(key, read);
    return true;
  }

  /**
   * Resolves when every file has been read. False when one was refused meanwhile: the user
   * should see why before anything is sent.
   */
  async settled(): Promise<boolean> {
    const refusalsBefore = this.refusals;
    await Promise.all([...this.reads.values()]);
    return this.refusals === refusalsBefore;
  }

  private async read(key: number, path: string): Promise<void> {
    try {
      const preview = await previewAttachment(path, key, (progress) => {
        const item = this.items.find((candidate) => candidate.key === key);
        if (item) item.progress = progress;
      });
      const item = this.items.find((candidate) => candidate.key === key);
      if (!item) return;
      item.preview = preview;
      item.reading = false;
      // Only the backend's own data: URLs are shown.
      if (preview.thumbnail?.startsWith('data:image/')) item.previewUrl = preview.thumbnail;
    } catch (error) {
      if (!this.items.some((item) => item.key === key)) return;
      this.items = this.items.filter((item) => item.key !== key);
      this.refusals += 1;
      this.problem = error instanceof Error ? error.message : String(error);
    }
  }

  /** Adds a pasted file (a clipboard image); resolves to false when it was refused. */
  async addPasted(file: Blob, name: string): Promise<boolean> {
    if (file.size > MAX_PASTED_BYTES) {
      this.problem = `${name} is larger than ${MAX_PASTED_BYTES / (1024 * 1024)} MiB. Save it as a file and drop that instead.`;
      return false;
    }
    const dataUrl = await readAsDataUrl(file);
    const comma = dataUrl.indexOf(',');
    const bytesBase64 = comma >= 0 ? dataUrl.slice(comma + 1) : '';
    const isImage = /^data:image\/(png|jpeg|gif|webp|bmp);base64,/.test(dataUrl);
    return this.push({
      key: nextKey++,
      name,
      arg: { name, bytesBase64 },
      previewUrl: isImage ? dataUrl : null,
      preview: null,
      reading: false,
      progress: null,
    });
  }

  remove(key: number): void {
    // A file still being read is stopped, so it does not hold up the files dropped next.
    if (this.items.some((item) => item.key === key && item.reading)) {
      cancelAttachmentPreview(key).catch(() => {
        // Already finished: nothing to stop.
      });
    }
    this.items = this.items.filter((item) => item.key !== key);
    this.problem = null;
  }

  clear(): void {
    this.items = [];
    this.problem = null;
  }

  private push(item: PendingAttachment): boolean {
    if (this.items.length >= MAX_ATTACHMENTS) {
      this.problem = `A message can carry at most ${MAX_ATTACHMENTS} files.`;
      return false;
    }
    this.problem = null;
    this.items.push(item);
    return true;
  }
}

export function fileName(path: string): string {
  return path.split(/[\\/]/).filter(Boolean).pop() ?? path;
}

function readAsDataUrl(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result ?? ''));
    reader.onerror = () => reject(reader.error ?? new Error('the pasted file could not be read'));
    reader.readAsDataURL(file);
  });
}
