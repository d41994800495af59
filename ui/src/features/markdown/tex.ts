// Loaded on demand (see enhancements.ts): KaTeX and its stylesheet and fonts. Renders HTML only
// (no MathML, no `trust`), so the sanitizer's allow-list stays small.
import katex from 'katex';
import 'katex/dist/katex.min.css';

/** Formulas longer than this stay as their source: KaTeX time grows with input. */
const MAX_TEX_CHARS = 4000;

/** KaTeX's HTML for `tex`, or null when it is too long to draw. */
export function renderTex(tex: string, displayMode: boolean): string | null {
  if (tex.length > MAX_TEX_CHARS) return null;
  return katex.renderToString(tex, {
    displayMode,
    output: 'html',
    throwOnError: false,
    trust: false,
    strict: 'ignore',
    maxExpand: 200,
    maxSize: 50,
  });
}
