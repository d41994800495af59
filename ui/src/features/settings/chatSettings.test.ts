import { cleanup, fireEvent, render, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatSettingsDto } from '../../ipc';
import { clearMocks, mockCommands } from '../../ipc/testing';
import ChatSettings from './ChatSettings.svelte';
import { fromForm, toForm } from './chatSettings';

afterEach(() => {
  cleanup();
  clearMocks();
});

const stored: ChatSettingsDto = {
  systemPrompt: null,
  autoTitle: true,
  temperature: 0.6000000238418579,
  topP: 0.8999999761581421,
  minP: 0.009999999776482582,
  maxReplyTokens: null,
  fastProfile: null,
  visionProfile: null,
};

describe('chat settings', () => {
  it('show the Llama 4 defaults as stored, and round-trip unchanged', () => {
    const form = toForm(stored);
    expect([form.temperature, form.topP, form.minP, form.maxReplyTokens]).toEqual(['0.6', '0.9', '0.01', '']);
    const checked = fromForm(form);
    expect(checked).toEqual({ settings: { ...stored, temperature: 0.6, topP: 0.9, minP: 0.01 } });
  });

  it('say what is wrong with each bad field and save nothing', async () => {
    const saved: unknown[] = [];
    mockCommands((command, args) => {
      if (command === 'get_chat_settings') return stored;
      if (command === 'list_models') {
        return [
          { id: 'scout', name: 'Llama 4 Scout', architecture: 'llama4', sizeBytes: 1, quantization: 'Q4_K_M', contextLength: 8192, vision: true, verdict: '', verdictReason: '', active: true },
          { id: 'tiny', name: 'Tiny text', architecture: 'llama4', sizeBytes: 1, quantization: 'Q8_0', contextLength: 8192, vision: false, verdict: '', verdictReason: '', active: false },
        ];
      }
      if (command === 'set_chat_settings') saved.push(args.settings);
      return null;
    });
    const view = render(ChatSettings);
    const temperature = (await view.findByLabelText('Temperature')) as HTMLInputElement;
    expect(temperature.value).toBe('0.6');
    // Only models that see images are offered for the vision profile.
    const vision = view.getByLabelText('Vision profile (images, scans)') as HTMLSelectElement;
    expect([...vision.options].map((option) => option.textContent)).toEqual(['The loaded model, if it sees images', 'Llama 4 Scout']);

    await fireEvent.input(temperature, { target: { value: '3' } });
    await fireEvent.input(view.getByLabelText('Top-p'), { target: { value: 'lots' } });
    await fireEvent.input(view.getByLabelText(/^Longest reply/), { target: { value: '0' } });
    await fireEvent.click(view.getByTestId('save-chat-settings'));
    expect(view.getByText('Temperature must be a number from 0 to 2.')).toBeTruthy();
    expect(view.getByText('Top-p must be a number from 0 to 1.')).toBeTruthy();
    expect(view.getByText(/The longest reply must be a whole number/)).toBeTruthy();
    expect(saved).toEqual([]);

    await fireEvent.click(view.getByRole('button', { name: 'Use the defaults' }));
    await fireEvent.input(view.getByLabelText(/^Longest reply/), { target: { value: '512' } });
    await fireEvent.input(view.getByLabelText('System prompt'), { target: { value: '  Answer briefly.  ' } });
    await fireEvent.click(view.getByTestId('save-chat-settings'));
    await waitFor(() => expect(saved).toHaveLength(1));
    expect(saved[0]).toEqual({ ...stored, temperature: 0.6, topP: 0.9, minP: 0.01, maxReplyTokens: 512, systemPrompt: 'Answer briefly.' });
    expect(await view.findByRole('status')).toBeTruthy();
  });

  it('show the core refusal when the backend says no', async () => {
    mockCommands((command) => {
      if (command === 'get_chat_settings') return stored;
      if (command === 'set_chat_settings') throw { kind: 'INVALID_INPUT', message: '"gone" is not in the model library' };
      return [];
    });
    const view = render(ChatSettings);
    await view.findByLabelText('Temperature');
    await fireEvent.click(view.getByTestId('save-chat-settings'));
    expect((await view.findByRole('alert')).textContent).toContain('is not in the model library');
  });
});
