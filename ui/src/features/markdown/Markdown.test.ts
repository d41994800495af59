import { cleanup, fireEvent, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clearMocks, mockCommands } from '../../ipc/testing';
import LinkConfirmDialog from './LinkConfirmDialog.svelte';
import Markdown from './Markdown.svelte';
import { linkConfirmation } from './links.svelte';

afterEach(() => {
  cleanup();
  clearMocks();
  linkConfirmation.cancel();
});

describe('Markdown', () => {
  it('re-renders the whole buffer as a reply streams', async () => {
    const view = render(Markdown, { source: '| a |\n|---|\n' });
    expect(view.container.querySelector('table')).not.toBeNull();
    await view.rerender({ source: '| a |\n|---|\n| 1 |\n\n```js\nlet x' });
    await vi.waitFor(() => expect(view.container.querySelector('pre code')?.textContent).toBe('let x'));
    expect(view.container.querySelectorAll('td')).toHaveLength(1);
  });

  it('renders again, highlighted, once the highlighter has loaded', async () => {
    const view = render(Markdown, { source: '```rust\nfn main() {}\n```\n' });
    expect(view.container.querySelector('pre code')?.textContent).toBe('fn main() {}\n');
    await vi.waitFor(() => expect(view.container.querySelector('pre code .hljs-keyword')?.textContent).toBe('fn'));
  });

  it('asks before opening a link and opens it only after confirmation', async () => {
    const opened: unknown[] = [];
    mockCommands((command, args) => {
      if (command === 'open_external_url') opened.push(args.url);
      return null;
    });
    const view = render(Markdown, { source: 'See [docs](https://example.org/docs).' });
    const link = view.getByRole('link', { name: 'docs' });
    const click = new MouseEvent('click', { bubbles: true, cancelable: true });
    link.dispatchEvent(click);
    expect(click.defaultPrevented).toBe(true);
    expect(linkConfirmation.pending).toBe('https://example.org/docs');
    expect(opened).toEqual([]);

    const dialog = render(LinkConfirmDialog);
    expect(dialog.getByRole('alertdialog').textContent).toContain('https://example.org/docs');
    await fireEvent.click(dialog.getByRole('button', { name: 'Open link' }));
    await vi.waitFor(() => expect(opened).toEqual(['https://example.org/docs']));
    expect(linkConfirmation.pending).toBeNull();
  });

  it('never asks to open a non-https link', () => {
    linkConfirmation.request('javascript:alert(1)');
    linkConfirmation.request('file:///etc/passwd');
    expect(linkConfirmation.pending).toBeNull();
  });
});
