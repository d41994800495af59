import { cleanup, fireEvent, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clearMocks, mockCommands } from '../../ipc/testing';
import SettingsPanel from './SettingsPanel.svelte';

afterEach(() => {
  cleanup();
  clearMocks();
  document.documentElement.removeAttribute('data-theme');
});

function setup(conversationId: number | null) {
  const calls: [string, Record<string, unknown>][] = [];
  mockCommands((command, args) => {
    calls.push([command, args]);
    switch (command) {
      case 'get_theme':
        return 'light';
      case 'app_info':
        return { dataDir: '/home/me/.local/share/cria', exportsDir: '/home/me/.local/share/cria/exports' };
      case 'export_conversation':
        return `/home/me/.local/share/cria/exports/chat-${args.conversationId}.${args.format === 'json' ? 'json' : 'md'}`;
      default:
        return null;
    }
  });
  const onClose = vi.fn();
  const view = render(SettingsPanel, { conversationId, onClose });
  return { calls, onClose, view };
}

describe('SettingsPanel', () => {
  it('shows the stored theme and applies and stores a new one', async () => {
    const { calls, view } = setup(null);
    await vi.waitFor(() => expect((view.getByRole('radio', { name: 'Light' }) as HTMLInputElement).checked).toBe(true));
    await fireEvent.click(view.getByRole('radio', { name: 'Dark' }));
    expect(document.documentElement.dataset.theme).toBe('dark');
    await vi.waitFor(() => expect(calls).toContainEqual(['set_theme', { theme: 'dark' }]));
    await fireEvent.click(view.getByRole('radio', { name: 'Same as the system' }));
    expect(document.documentElement.hasAttribute('data-theme')).toBe(false);
  });

  it('exports the open chat and shows where the file went', async () => {
    const { calls, view } = setup(7);
    await fireEvent.click(view.getByRole('button', { name: 'Export as JSON' }));
    await vi.waitFor(() => expect(view.getByRole('status').textContent).toContain('/exports/chat-7.json'));
    expect(calls).toContainEqual(['export_conversation', { conversationId: 7, format: 'json' }]);
    expect(view.getByTestId('data-dir').textContent).toBe('/home/me/.local/share/cria');
  });

  it('offers no export without an open chat, and closes on Escape', async () => {
    const { onClose, view } = setup(null);
    expect(view.queryByRole('button', { name: 'Export as Markdown' })).toBeNull();
    await fireEvent.keyDown(view.getByRole('dialog', { name: 'Settings' }), { key: 'Escape' });
    expect(onClose).toHaveBeenCalled();
  });
});
