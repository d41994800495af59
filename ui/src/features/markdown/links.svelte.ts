// The one way a link in a reply leaves the app: the user clicks it, confirms the exact address,
// and the shell (which checks the scheme again) opens it in the system browser.
import { openExternalUrl } from '../../ipc';
import { isOpenableUrl } from './render';

class LinkConfirmation {
  /** The address waiting for the user's answer, or null when no dialog is shown. */
  pending: string | null = $state(null);
  error: string | null = $state(null);

  request(url: string): void {
    if (!isOpenableUrl(url)) return;
    this.error = null;
    this.pending = url;
  }

  cancel(): void {
    this.pending = null;
    this.error = null;
  }

  async confirm(): Promise<void> {
    const url = this.pending;
    if (!url) return;
    try {
      await openExternalUrl(url);
      this.pending = null;
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
  }
}

export const linkConfirmation = new LinkConfirmation();
