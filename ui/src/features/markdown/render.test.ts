import { beforeAll, describe, expect, it } from 'vitest';
import { enhancementsLoaded, loadEnhancements, onEnhancementLoaded } from './enhancements';
import { isOpenableUrl, renderMarkdown } from './render';

function dom(html: string): HTMLElement {
  const root = document.createElement('div');
  root.innerHTML = html;
  return root;
}

describe('renderMarkdown before the highlighter and KaTeX have loaded', () => {
  // Runs first in this file: nothing has asked for either renderer yet.
  it('shows code plain and formulas as their TeX, then tells listeners when both arrive', async () => {
    expect(enhancementsLoaded()).toEqual({ highlight: false, tex: false });
    const loaded = new Promise<void>((resolve) => {
      let count = 0;
      const stop = onEnhancementLoaded(() => {
        count += 1;
        if (count === 2) {
          stop();
          resolve();
        }
      });
    });
    const source = '```rust\nfn main() {}\n```\n\nEuler: $e^{i\\pi}+1=0$\n';
    const plain = dom(renderMarkdown(source));
    expect(plain.querySelector('pre code')?.textContent).toBe('fn main() {}\n');
    expect(plain.querySelector('.hljs-keyword')).toBeNull();
    expect(plain.querySelector('.math-inline.math-source code')?.textContent).toBe('e^{i\\pi}+1=0');
    expect(plain.querySelector('.katex')).toBeNull();

    await loaded;
    const enhanced = dom(renderMarkdown(source));
    expect(enhanced.querySelector('.hljs-keyword')?.textContent).toBe('fn');
    expect(enhanced.querySelector('.math-inline .katex')).not.toBeNull();
  });
});

describe('renderMarkdown', () => {
  beforeAll(() => loadEnhancements());

  it('renders GFM tables with alignment as classes, not styles', () => {
    const root = dom(renderMarkdown('| a | b |\n|:--|--:|\n| 1 | 2 |\n'));
    expect(root.querySelectorAll('table th')).toHaveLength(2);
    expect(root.querySelector('th.align-right')?.textContent).toBe('b');
    expect(root.querySelector('[style]')).toBeNull();
  });

  it('renders task lists as read-only checkboxes', () => {
    const root = dom(renderMarkdown('- [x] done\n- [ ] todo\n'));
    const boxes = [...root.querySelectorAll('input[type=checkbox]')] as HTMLInputElement[];
    expect(boxes.map((box) => box.checked)).toEqual([true, false]);
    expect(boxes.every((box) => box.disabled)).toBe(true);
    expect(root.querySelector('li')?.textContent?.trim()).toBe('done');
  });

  it('highlights fenced code and adds a copy button', () => {
    const root = dom(renderMarkdown('```rust\nfn main() { let x = 1; }\n```\n'));
    expect(root.querySelector('.code-lang')?.textContent).toBe('rust');
    expect(root.querySelector('pre code .hljs-keyword')?.textContent).toBe('fn');
    expect(root.querySelector('button.copy-code')?.getAttribute('aria-label')).toBe('Copy rust code');
    expect(root.querySelector('pre code')?.textContent).toBe('fn main() { let x = 1; }\n');
  });

  it('renders inline and display math with KaTeX, labelled with its TeX', () => {
    const root = dom(renderMarkdown('Euler: $e^{i\\pi}+1=0$\n\n$$\n\\int_0^1 x\\,dx\n$$\n'));
    expect(root.querySelector('.math-inline .katex')).not.toBeNull();
    expect(root.querySelector('.math-inline')?.getAttribute('aria-label')).toBe('e^{i\\pi}+1=0');
    expect(root.querySelector('.math-block .katex-display')).not.toBeNull();
    // Styles survive only inside KaTeX output.
    for (const styled of root.querySelectorAll('[style]')) {
      expect(styled.closest('.katex')).not.toBeNull();
    }
  });

  it('does not treat prices as math', () => {
    const root = dom(renderMarkdown('It costs $5 and $6 today.'));
    expect(root.querySelector('.katex')).toBeNull();
    expect(root.textContent).toContain('$5 and $6');
  });

  it('shows raw HTML as text', () => {
    const root = dom(renderMarkdown('<b>bold</b> <script>x()</script>'));
    expect(root.querySelector('b')).toBeNull();
    expect(root.querySelector('script')).toBeNull();
    expect(root.textContent).toContain('<b>bold</b>');
  });

  it('makes only https and mailto links clickable', () => {
    const root = dom(
      renderMarkdown('[a](https://example.org) [b](mailto:x@example.org) [c](http://example.org) [d](javascript:alert(1))'),
    );
    const hrefs = [...root.querySelectorAll('a[href]')].map((a) => a.getAttribute('href'));
    expect(hrefs).toEqual(['https://example.org', 'mailto:x@example.org']);
    expect(root.textContent).toContain('[d](javascript:alert(1))');
  });

  it('turns images into links and never emits img', () => {
    const root = dom(renderMarkdown('![cat](https://example.org/cat.png)'));
    expect(root.querySelector('img')).toBeNull();
    expect(root.querySelector('a.image-link')?.getAttribute('href')).toBe('https://example.org/cat.png');
  });

  it('renders each update of a streamed reply as a cold render would', () => {
    const reply = '# Plan\n\nSteps with $x^2$:\n\n1. one\n2. two\n\n```js\nlet a = 1;\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n';
    const pieces = reply.match(/\S+\s*|\s+/g) ?? [];
    let buffer = '';
    let last = '';
    for (const piece of pieces) {
      buffer += piece;
      last = renderMarkdown(buffer);
    }
    const root = dom(last);
    expect(root.querySelector('h1')?.textContent).toBe('Plan');
    expect(root.querySelectorAll('ol li')).toHaveLength(2);
    expect(root.querySelector('.math-inline .katex')).not.toBeNull();
    expect(root.querySelector('pre code .hljs-keyword')?.textContent).toBe('let');
    expect(root.querySelectorAll('td')).toHaveLength(2);
  });

  it('makes an earlier reference link live once its definition streams in', () => {
    const before = dom(renderMarkdown('See [the docs][d].\n\n'));
    expect(before.querySelector('a[href]')).toBeNull();
    const after = dom(renderMarkdown('See [the docs][d].\n\n[d]: https://example.org/docs\n'));
    expect(after.querySelector('a[href]')?.getAttribute('href')).toBe('https://example.org/docs');
  });

  it('keeps Korean text intact', () => {
    expect(dom(renderMarkdown('**안녕하세요** 세계')).textContent?.trim()).toBe('안녕하세요 세계');
  });
});

describe('isOpenableUrl', () => {
  it('accepts https and mailto only', () => {
    expect(isOpenableUrl('https://example.org/a?b=c')).toBe(true);
    expect(isOpenableUrl('mailto:someone@example.org')).toBe(true);
    for (const url of ['http://example.org', 'javascript:alert(1)', 'data:text/html,x', 'file:///etc/passwd', 'smb://host/share', 'HTTPS:// x', '']) {
      expect(isOpenableUrl(url)).toBe(false);
    }
  });
});
