// Its own file, so its module graph starts with neither renderer loaded.
import { describe, expect, it, vi } from 'vitest';
import { enhancementsLoaded } from './enhancements';
import { renderMarkdown } from './render';

describe('lazy reply renderers', () => {
  it('loads neither the highlighter nor KaTeX for replies that need neither', async () => {
    renderMarkdown('Just **words**, a [link](https://example.org), a price of $5 and $6.');
    renderMarkdown('```\nplain fence without a language\n```\n\n| a |\n|---|\n| 1 |\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(enhancementsLoaded()).toEqual({ highlight: false, tex: false });
  });

  it('loads only what a reply needs', async () => {
    renderMarkdown('```python\nprint(1)\n```');
    await vi.waitFor(() => expect(enhancementsLoaded().highlight).toBe(true));
    expect(enhancementsLoaded().tex).toBe(false);
  });
});
