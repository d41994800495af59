import { render } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import ChatView from './ChatView.svelte';
import type { MessageDto } from '../../ipc';

function message(overrides: Partial<MessageDto>): MessageDto {
  return {
    id: 1,
    parentId: null,
    role: 'assistant',
    content: '',
    status: 'complete',
    error: null,
    createdAtMs: 0,
    ...overrides,
  };
}

describe('ChatView', () => {
  it('renders message text as text, never as markup', () => {
    const payload = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
    const { container } = render(ChatView, {
      messages: [message({ content: payload })],
      streamingReplyId: null,
    });
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('script')).toBeNull();
    expect(container.textContent).toContain(payload);
  });

  it('shows why a reply ended early', () => {
    const { getByRole, getByText } = render(ChatView, {
      messages: [
        message({ id: 1, content: 'partial', status: 'failed', error: 'The engine stopped.' }),
        message({ id: 2, content: 'half', status: 'cancelled' }),
      ],
      streamingReplyId: null,
    });
    expect(getByRole('alert').textContent).toBe('The engine stopped.');
    expect(getByText('Stopped')).toBeTruthy();
  });
});
