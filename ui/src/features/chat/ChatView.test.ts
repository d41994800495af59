import { cleanup, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import ChatView from './ChatView.svelte';
import type { GenerationStatsDto, MessageDto } from '../../ipc';

afterEach(() => cleanup());

function message(overrides: Partial<MessageDto>): MessageDto {
  return {
    id: 1,
    parentId: null,
    role: 'assistant',
    content: '',
    status: 'complete',
    error: null,
    createdAtMs: 0,
    stats: null,
    ...overrides,
  };
}

const stats: GenerationStatsDto = {
  modelId: 'Llama-4-Scout-17B-16E-Instruct-Q4_K_M.gguf',
  route: 'vision',
  promptTokens: 1200,
  completionTokens: 1532,
  ttftMs: 1450,
  tokensPerSecond: 18.347,
  finishReason: 'stop',
};

describe('ChatView', () => {
  it('renders message text as text, never as markup', () => {
    const payload = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
    const { container } = render(ChatView, {
      messages: [message({ role: 'user', content: payload })],
      streamingReplyId: null,
    });
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('script')).toBeNull();
    expect(container.textContent).toContain(payload);
  });

  it('shows a quiet stats line under a finished reply: model, route, TTFT, speed, tokens', () => {
    const view = render(ChatView, {
      messages: [message({ content: 'Done.', stats })],
      streamingReplyId: null,
    });
    const line = view.getByTestId('reply-stats');
    expect(line.textContent?.replace(/\s+/g, ' ').trim()).toBe(
      'Llama-4-Scout-17B-16E-Instruct-Q4_K_M · vision · TTFT 1.5 s · 18.3 tok/s · 1,532 tokens',
    );
    expect(line.getAttribute('title')).toContain('Prompt: 1200 tokens');
    expect(view.queryByTestId('reply-badge')).toBeNull();
  });

  it('names the model as the library does when it knows the id', () => {
    const view = render(ChatView, {
      messages: [message({ content: 'Done.', stats: { ...stats, modelId: 'llama-4-scout-q4' } })],
      streamingReplyId: null,
      modelName: (id: string) => (id === 'llama-4-scout-q4' ? 'Llama 4 Scout' : undefined),
    });
    expect(view.getByTestId('reply-stats').textContent).toMatch(/^Llama 4 Scout · vision/);
  });

  it('leaves out what was not measured and shows no stats while streaming or for the user', () => {
    const partial = { ...stats, modelId: null, route: null, ttftMs: 0, tokensPerSecond: 0, completionTokens: 1 };
    const view = render(ChatView, {
      messages: [
        message({ id: 1, role: 'user', content: 'q', stats }),
        message({ id: 2, content: 'a', stats: partial }),
        message({ id: 3, content: 'still going', status: 'streaming', stats }),
      ],
      streamingReplyId: 3,
    });
    const lines = view.getAllByTestId('reply-stats');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.textContent?.trim()).toBe('1 token');
  });

  it('badges a stopped reply and keeps its partial text', () => {
    const view = render(ChatView, {
      messages: [message({ content: 'half an answer', status: 'cancelled', stats: { ...stats, completionTokens: 4 } })],
      streamingReplyId: null,
    });
    expect(view.getByTestId('reply-badge').textContent).toBe('Stopped');
    expect(view.container.textContent).toContain('half an answer');
    expect(view.getByTestId('reply-stats').textContent).toContain('4 tokens');
    expect(view.queryByRole('alert')).toBeNull();
  });

  it('explains an interrupted reply with what to do, the engine log folded away', () => {
    const error =
      'The engine stopped unexpectedly (out of memory). The reply so far was kept; the next request restarts the engine. Details: ggml_cuda: out of memory';
    const view = render(ChatView, {
      messages: [message({ content: 'partial', status: 'interrupted', error })],
      streamingReplyId: null,
    });
    expect(view.getByTestId('reply-badge').textContent).toBe('Interrupted');
    expect(view.getByRole('alert').textContent).toBe('The engine stopped: out of memory. Send again to retry.');
    expect(view.container.querySelector('details pre')?.textContent).toBe('ggml_cuda: out of memory');
    expect(view.container.querySelector('details')?.open).toBe(false);
    expect(view.container.textContent).toContain('partial');
  });

  it('explains a reply cut off when the app closed', () => {
    const view = render(ChatView, {
      messages: [message({ content: 'partial', status: 'interrupted', error: null })],
      streamingReplyId: null,
    });
    expect(view.getByRole('alert').textContent).toBe(
      'The engine stopped: Cria closed before this reply was finished. Send again to retry.',
    );
  });

  it('shows why a reply failed, and says so when no text came', () => {
    const view = render(ChatView, {
      messages: [message({ content: '', status: 'failed', error: 'No model is loaded. Choose one in Models.' })],
      streamingReplyId: null,
    });
    expect(view.getByTestId('reply-badge').textContent).toBe('Failed');
    expect(view.getByRole('alert').textContent).toBe('No model is loaded. Choose one in Models.');
    expect(view.container.textContent).toContain('No text was written.');
  });
});
