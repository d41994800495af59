// TeX math for markdown-it: `$…$` and `\(…\)` inline, `$$…$$` and `\[…\]` as blocks. This
// module only finds the formulas; `tex.ts` (KaTeX, loaded on first use) draws them. Until it
// has loaded a formula shows as its TeX source; either way the TeX is its accessible name.
import type { MarkdownIt, StateBlock, StateInline } from 'markdown-it';

/** Draws one formula as HTML, or returns null while the TeX renderer is not loaded yet. */
export type TexDrawer = (tex: string, displayMode: boolean) => string | null;

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A formula in its wrapper: the drawn HTML, or its TeX source as code meanwhile. */
function formula(tex: string, displayMode: boolean, draw: TexDrawer): string {
  const escaped = escapeHtml(tex);
  const drawn = draw(tex, displayMode);
  const tag = displayMode ? 'div' : 'span';
  const kind = displayMode ? 'math-block' : 'math-inline';
  if (drawn === null) return `<${tag} class="${kind} math-source"><code>${escaped}</code></${tag}>`;
  return `<${tag} class="${kind}" role="math" aria-label="${escaped}">${drawn}</${tag}>`;
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

export function mathPlugin(md: MarkdownIt, draw: TexDrawer): void {
  md.inline.ruler.before('escape', 'math_inline', mathInline);
  md.block.ruler.after('blockquote', 'math_block', mathBlock, {
    alt: ['paragraph', 'reference', 'blockquote', 'list'],
  });
  md.renderer.rules.math_inline = (tokens, idx) => formula(tokens[idx]?.content ?? '', false, draw);
  md.renderer.rules.math_block = (tokens, idx) => `${formula(tokens[idx]?.content ?? '', true, draw)}\n`;
}
