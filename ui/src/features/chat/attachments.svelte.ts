// Files waiting in the composer to go with the next message: paths the user dropped or typed
// (the backend reads and checks them) and pasted images (sent as base64, bounded here and again
// in the shell). Nothing here reads a file from disk: the webview cannot, and must not.
import type { AttachmentArgDto } from '../../ipc';

/** Same bound as the shell's (`MAX_PASTED_BYTES`): larger files are attached by path. */
export const MAX_PASTED_BYTES = 32 * 1024 * 1024;
/** Same bound as the core's (`MAX_ATTACHMENTS_PER_MESSAGE`). */
export const MAX_ATTACHMENTS = 10;

export interface PendingAttachment {
  /** Stable key for the chip list. */
  key: number;
  name: string;
  arg: AttachmentArgDto;
  /** A `data:` URL of a pasted image, shown on its chip. */
  previewUrl: string | null;
}

let nextKey = 1;

export class AttachmentTray {
  items = $state<PendingAttachment[]>([]);
  /** Why the last file could not be added (too large, too many). */
  problem = $state<string | null>(null);

  addPath(path: string): boolean {
    const trimmed = path.trim();
    if (trimmed === '') return false;
    if (this.items.some((item) => item.arg === trimmed)) return true;
    return this.push({ key: nextKey++, name: fileName(trimmed), arg: trimmed, previewUrl: null });
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
    return this.push({ key: nextKey++, name, arg: { name, bytesBase64 }, previewUrl: isImage ? dataUrl : null });
  }

  remove(key: number): void {
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
