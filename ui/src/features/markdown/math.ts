// TeX math for markdown-it: `$…$` and `\(…\)` inline, `$$…$$` and `\[…\]` as blocks. KaTeX
// renders to HTML only (no MathML, no `trust`), so the sanitizer's allow-list stays small; the
// TeX source becomes the accessible name of each formula.
import katex from 'katex';
import type { MarkdownIt, StateBlock, StateInline } from 'markdown-it';

/** Formulas longer than this are shown as code: KaTeX time grows with input. */
const MAX_TEX_CHARS = 4000;

export function renderTex(tex: string, displayMode: boolean): string {
  const escaped = escapeHtml(tex);
  if (tex.length > MAX_TEX_CHARS) return `<code>${escaped}</code>`;
  const html = katex.renderToString(tex, {
    displayMode,
    output: 'html',
    throwOnError: false,
    trust: false,
    strict: 'ignore',
    maxExpand: 200,
    maxSize: 50,
  });
  const tag = displayMode ? 'div' : 'span';
  const kind = displayMode ? 'math-block' : 'math-inline';
  return `<${tag} class="${kind}" role="math" aria-label="${escaped}">${html}</${tag}>`;
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function mathInline(state: StateInline, silent: boolean): boolean {
  const src = state.src;
  const start = state.pos;
  let open: string;
  let close: string;
  if (src.startsWith('\\(', start)) {
    open = '\\(';
    close = '\\)';
  } else if (src[start] === '$' && src[start + 1] !== '$') {
    open = '$';
    close = '$';
  } else {
    return false;
  }
  const contentStart = start + open.length;
  // `$ 5 and $ 6` are prices, not math: TeX after `$` starts and ends with a non-space.
  if (open === '$' && /\s/.test(src[contentStart] ?? ' ')) return false;
  let end = contentStart;
  for (;;) {
    end = src.indexOf(close, end);
    if (end < 0) return false;
    if (src[end - 1] === '\\' && open === '$') {
      end += 1;
      continue;
    }
    break;
  }
  if (end === contentStart) return false;
  if (open === '$' && (/\s/.test(src[end - 1] ?? '') || /\d/.test(src[end + 1] ?? ''))) return false;
  if (!silent) {
    const token = state.push('math_inline', 'math', 0);
    token.content = src.slice(contentStart, end);
    token.markup = open;
  }
  state.pos = end + close.length;
  return true;
}

function mathBlock(state: StateBlock, startLine: number, endLine: number, silent: boolean): boolean {
  const at = (values: number[], line: number): number => values[line] ?? 0;
  let pos = at(state.bMarks, startLine) + at(state.tShift, startLine);
  let max = at(state.eMarks, startLine);
  if (at(state.sCount, startLine) - state.blkIndent >= 4) return false;
  const line = state.src.slice(pos, max);
  let close: string;
  if (line.startsWith('$$')) close = '$$';
  else if (line.startsWith('\\[')) close = '\\]';
  else return false;
  if (silent) return true;

  let content = '';
  let firstRest = line.slice(2);
  let next = startLine;
  let found = false;
  const closeAt = firstRest.indexOf(close);
  if (closeAt >= 0) {
    content = firstRest.slice(0, closeAt);
    found = true;
  } else {
    const lines = [firstRest];
    while (!found) {
      next += 1;
      if (next >= endLine) break;
      pos = at(state.bMarks, next) + at(state.tShift, next);
      max = at(state.eMarks, next);
      const text = state.src.slice(pos, max);
      const closeIndex = text.indexOf(close);
      if (closeIndex >= 0) {
        lines.push(text.slice(0, closeIndex));
        found = true;
      } else {
        lines.push(text);
      }
    }
    content = lines.join('\n');
    firstRest = '';
  }
  state.line = next + 1;
  const token = state.push('math_block', 'math', 0);
  token.block = true;
  token.content = content.trim();
  token.map = [startLine, state.line];
  token.markup = close;
  return true;
}

export function mathPlugin(md: MarkdownIt): void {
  md.inline.ruler.before('escape', 'math_inline', mathInline);
  md.block.ruler.after('blockquote', 'math_block', mathBlock, {
    alt: ['paragraph', 'reference', 'blockquote', 'list'],
  });
  md.renderer.rules.math_inline = (tokens, idx) => renderTex(tokens[idx]?.content ?? '', false);
  md.renderer.rules.math_block = (tokens, idx) => `${renderTex(tokens[idx]?.content ?? '', true)}\n`;
}
