// The reply renderer under attack: each payload of the shared corpus (also streamed through the
// real app by tests/e2e/xss.test.mjs) is fed token by token, as a reply streams, and every
// intermediate render must be inert.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { enhancementsLoaded, loadEnhancements } from './enhancements';
import { renderMarkdown } from './render';

const corpusPath = join(import.meta.dirname, '../../../../tests/e2e/fixtures/xss-corpus.md');
const corpus = readFileSync(corpusPath, 'utf8');

const FORBIDDEN = 'script, iframe, object, embed, style, form, img, foreignObject, frame, frameset, base, link, meta, audio, video, source, math, animate, set';

/** Pieces that keep their trailing whitespace, like the scripted engine's tokens. */
function tokens(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

function problemsIn(html: string): string[] {
  const root = document.createElement('div');
  root.innerHTML = html;
  const problems: string[] = [];
  for (const element of root.querySelectorAll(FORBIDDEN)) problems.push(`<${element.localName}>`);
  for (const element of root.querySelectorAll('*')) {
    for (const attribute of element.attributes) {
      const name = attribute.name.toLowerCase();
      if (name.startsWith('on')) problems.push(`${element.localName}[${name}]`);
      if (['src', 'srcdoc', 'action', 'formaction', 'xlink:href', 'data'].includes(name)) {
        problems.push(`${element.localName}[${name}]`);
      }
      if (name === 'style' && !element.closest('.katex')) problems.push(`${element.localName}[style]`);
      if (name === 'href' && !/^(https:|mailto:)/i.test(attribute.value)) {
        problems.push(`${element.localName}[href=${attribute.value}]`);
      }
    }
  }
  return problems;
}

describe('XSS corpus through the reply renderer', () => {
  it('has payloads to test', () => {
    expect(corpus).toContain('onerror');
    expect(tokens(corpus).length).toBeGreaterThan(50);
  });

  function streamedProblems(): string[] {
    let buffer = '';
    const failures: string[] = [];
    for (const piece of tokens(corpus)) {
      buffer += piece;
      const problems = problemsIn(renderMarkdown(buffer));
      if (problems.length > 0) failures.push(`after ${JSON.stringify(buffer.slice(-40))}: ${problems.join(', ')}`);
    }
    return failures;
  }

  it('stays inert at every streaming step, before the highlighter and KaTeX have loaded', () => {
    // One synchronous run: the lazy imports it starts cannot finish in between.
    expect(enhancementsLoaded()).toEqual({ highlight: false, tex: false });
    expect(streamedProblems()).toEqual([]);
  });

  it('stays inert at every streaming step with the highlighter and KaTeX', async () => {
    await loadEnhancements();
    expect(enhancementsLoaded()).toEqual({ highlight: true, tex: true });
    expect(streamedProblems()).toEqual([]);
  });

  it('keeps the payloads visible as text and only the safe link clickable', () => {
    const root = document.createElement('div');
    root.innerHTML = renderMarkdown(corpus);
    expect(root.textContent).toContain("onerror=\"window.__xss='img'\"");
    const links = [...root.querySelectorAll('a[href]')].map((a) => a.getAttribute('href'));
    expect(links).toContain('https://example.org');
    expect(links).toContain('https://attacker.test/?q=secret');
    expect(links.every((href) => href?.startsWith('https:'))).toBe(true);
    // The exfiltration image is a link the user may choose to open, never a request.
    expect(root.querySelector('a.image-link')?.textContent).toContain('exfil');
  });

  it('runs none of the payloads when inserted into a live document', () => {
    const host = document.createElement('div');
    document.body.append(host);
    host.innerHTML = renderMarkdown(corpus);
    expect((window as unknown as { __xss?: unknown }).__xss).toBeUndefined();
    host.remove();
  });
});
