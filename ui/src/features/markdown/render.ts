// Markdown → safe HTML for assistant replies. One pipeline for finished and streaming text:
//   1. markdown-it with raw HTML OFF (any `<tag>` in a reply is shown as text),
//   2. links limited to https: and mailto: (anything else stays as inert source text),
//      images turned into links (remote images never load),
//   3. DOMPurify over the final HTML with a strict allow-list, `style` only inside KaTeX output.
// Highlighting and KaTeX load on first use (enhancements.ts); until then code is plain and a
// formula shows its TeX source. The result is safe to assign to innerHTML. Clicking a link is
// handled by the component, which asks before opening it in the system browser.
import DOMPurify from 'dompurify';
import MarkdownIt, { type Token } from 'markdown-it';
import { enhancementsLoaded, highlighter, texRenderer } from './enhancements';
import { escapeHtml, mathPlugin } from './math';

/** Highlighting is skipped above this size: the text stays readable, the frame stays short. */
const MAX_HIGHLIGHT_CHARS = 20_000;

/** The only link schemes that may become clickable. */
export function isOpenableUrl(href: string): boolean {
  return /^(https:\/\/[^\s]+|mailto:[^\s]+)$/i.test(href.trim());
}

const md = new MarkdownIt({ html: false, linkify: true, typographer: false, breaks: false });
md.validateLink = isOpenableUrl;
md.linkify.set({ fuzzyLink: false, fuzzyEmail: false });
md.use(mathPlugin, (tex: string, displayMode: boolean) => texRenderer()?.renderTex(tex, displayMode) ?? null);

md.renderer.rules.fence = (tokens, idx) => {
  const code = tokens[idx]?.content ?? '';
  const language = (tokens[idx]?.info ?? '').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  const label = escapeHtml(language || 'text');
  let body = escapeHtml(code);
  if (language && code.length <= MAX_HIGHLIGHT_CHARS) {
    // Plain until the highlighter has loaded; the reply is rendered again when it has.
    body = highlighter()?.highlight(code, language) ?? body;
  }
  return (
    `<div class="code-block"><div class="code-header"><span class="code-lang">${label}</span>` +
    `<button type="button" class="copy-code" aria-label="Copy ${label} code">Copy</button></div>` +
    `<pre><code class="hljs">${body}</code></pre></div>`
  );
};

// Images never load: `![alt](url)` becomes a link to url (itself only when https).
md.renderer.rules.image = (tokens, idx) => {
  const token = tokens[idx];
  const src = String(token?.attrGet('src') ?? '');
  const alt = escapeHtml(token?.content || 'untitled');
  return `<a href="${escapeHtml(src)}" class="image-link">Image: ${alt}</a>`;
};

// Table alignment arrives as `style`; classes keep `style` off everything but KaTeX.
md.core.ruler.push('alignment_classes', (state) => {
  for (const token of state.tokens) {
    if (token.type !== 'inline') {
      moveAlignment(token);
    }
  }
});

function moveAlignment(token: Token) {
  const style = token.attrGet('style')?.toString();
  if (!style) return;
  token.attrs = (token.attrs ?? []).filter(([name]) => name !== 'style');
  const align = /text-align:\s*(left|right|center)/.exec(style)?.[1];
  if (align) token.attrJoin('class', `align-${align}`);
}

// GFM task lists: `- [ ] todo` and `- [x] done` become read-only checkboxes.
md.core.ruler.push('task_lists', (state) => {
  const tokens = state.tokens;
  for (let i = 2; i < tokens.length; i += 1) {
    const inline = tokens[i];
    const item = tokens[i - 2];
    if (!inline || !item || inline.type !== 'inline' || tokens[i - 1]?.type !== 'paragraph_open') continue;
    if (item.type !== 'list_item_open') continue;
    const match = /^\[([ xX])\]\s/.exec(inline.content);
    const first = inline.children?.[0];
    if (!match || !first || first.type !== 'text' || !/^\[([ xX])\]\s/.test(first.content)) {
      continue;
    }
    const checked = match[1] !== ' ';
    if (!inline.children) continue;
    first.content = first.content.slice(match[0].length);
    const checkbox = new state.Token('html_inline', '', 0);
    checkbox.content = `<input type="checkbox" disabled${checked ? ' checked' : ''} aria-label="${checked ? 'Done' : 'Not done'}"> `;
    inline.children.unshift(checkbox);
    item.attrJoin('class', 'task-item');
  }
});

const ALLOWED_TAGS = [
  'a', 'blockquote', 'br', 'button', 'code', 'del', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5',
  'h6', 'hr', 'input', 'li', 'ol', 'p', 'pre', 's', 'span', 'strong', 'sub', 'sup', 'table',
  'tbody', 'td', 'th', 'thead', 'tr', 'ul',
  // KaTeX draws a few glyphs (roots, wide accents, arrows) as inline SVG paths.
  'svg', 'path', 'line',
];
const ALLOWED_ATTR = [
  'href', 'title', 'class', 'aria-label', 'aria-hidden', 'role', 'checked', 'disabled',
  'start', 'style', 'viewBox', 'd', 'width', 'height', 'preserveAspectRatio', 'x1', 'x2', 'y1',
  'y2', 'stroke-width',
];
const SAFE_STYLE = /^[\w\s:;.,%#()-]*$/;

let hooksInstalled = false;
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  DOMPurify.addHook('uponSanitizeAttribute', (node, data) => {
    const name = data.attrName;
    if (name === 'style') {
      // KaTeX positions glyphs with inline styles; nothing else may carry one.
      const inKatex = typeof node.closest === 'function' && node.closest('.katex') !== null;
      if (!inKatex || !SAFE_STYLE.test(data.attrValue) || /url|expression|import/i.test(data.attrValue)) {
        data.keepAttr = false;
      }
    } else if (name === 'href' && !isOpenableUrl(data.attrValue)) {
      data.keepAttr = false;
    }
  });
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    const tag = node.nodeName.toLowerCase();
    if (tag === 'a') {
      if (!node.hasAttribute('href')) {
        node.setAttribute('class', 'inert-link');
      } else {
        node.setAttribute('rel', 'noopener noreferrer');
      }
    } else if (tag === 'input') {
      // Only the renderer's read-only task checkboxes exist; force what they are.
      node.setAttribute('type', 'checkbox');
      node.setAttribute('disabled', '');
    } else if (tag === 'button') {
      node.setAttribute('type', 'button');
    }
  });
}

/** Sanitizes HTML with the reply allow-list. Exported for tests of the sanitizer alone. */
export function sanitize(html: string): string {
  installHooks();
  return DOMPurify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR: [...ALLOWED_ATTR, 'rel'],
    ALLOWED_URI_REGEXP: /^(?:https:|mailto:)/i,
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: true,
    ALLOW_UNKNOWN_PROTOCOLS: false,
    FORBID_TAGS: ['style', 'script', 'iframe', 'object', 'embed', 'form', 'img', 'foreignObject'],
    FORBID_ATTR: ['srcdoc', 'src', 'action', 'formaction', 'xlink:href'],
    SAFE_FOR_TEMPLATES: false,
    WHOLE_DOCUMENT: false,
    RETURN_TRUSTED_TYPE: false,
  });
}

/**
 * Finished HTML (rendered and sanitized) of recently seen top-level blocks, keyed by the
 * block's Markdown source and which renderers were loaded. While a reply streams only its last
 * block changes, so each update renders and sanitizes one block; the formulas and code of the
 * blocks before it are not drawn again. Each block is sanitized on its own; sanitized fragments
 * are complete elements, so joining them cannot form new markup.
 */
const finishedBlocks = new Map<string, string>();
const MAX_CACHED_BLOCKS = 400;
/** Larger blocks are rendered each time rather than held in memory. */
const MAX_CACHED_BLOCK_CHARS = 50_000;

type Env = Parameters<typeof md.parse>[1];

function finishBlock(tokens: Token[], env: Env, key: string | null): string {
  const cached = key === null ? undefined : finishedBlocks.get(key);
  if (cached !== undefined) {
    // Refresh its place, so the blocks of the reply on screen are the last to be dropped.
    finishedBlocks.delete(key as string);
    finishedBlocks.set(key as string, cached);
    return cached;
  }
  const clean = sanitize(md.renderer.render(tokens, md.options, env));
  if (key !== null && key.length <= MAX_CACHED_BLOCK_CHARS) {
    if (finishedBlocks.size >= MAX_CACHED_BLOCKS) {
      const oldest = finishedBlocks.keys().next().value;
      if (oldest !== undefined) finishedBlocks.delete(oldest);
    }
    finishedBlocks.set(key, clean);
  }
  return clean;
}

/**
 * Renders a reply (complete or still streaming) to sanitized HTML, one string per top-level
 * block. While a reply streams only the last block changes, so a view that keeps the others'
 * DOM as it is re-lays out one block per update.
 */
export function renderMarkdownBlocks(source: string): string[] {
  const env: Env = {};
  const tokens = md.parse(source, env);
  const lines = source.split('\n');
  // A block's HTML depends only on its own lines, except through reference-style link
  // definitions elsewhere in the reply; with any of those nothing is taken from the cache.
  const cacheable = Object.keys((env as { references?: object }).references ?? {}).length === 0;
  const { highlight, tex } = enhancementsLoaded();
  const keyOf = (first: Token | undefined): string | null => {
    if (!cacheable || !first?.map) return null;
    const [from, to] = first.map;
    return `${highlight ? 'h' : '-'}${tex ? 't' : '-'}\u0000${lines.slice(from, to).join('\n')}`;
  };
  const blocks: string[] = [];
  let start = 0;
  for (let index = 0; index < tokens.length; index += 1) {
    const token = tokens[index];
    // A top-level block ends at a level-0 token that does not open something.
    if (token && token.level === 0 && token.nesting !== 1) {
      blocks.push(finishBlock(tokens.slice(start, index + 1), env, keyOf(tokens[start])));
      start = index + 1;
    }
  }
  if (start < tokens.length) {
    blocks.push(finishBlock(tokens.slice(start), env, keyOf(tokens[start])));
  }
  return blocks;
}

/** Renders a reply to one string of sanitized HTML. */
export function renderMarkdown(source: string): string {
  return renderMarkdownBlocks(source).join('');
}

// Page citations. The core reports each as a byte span of the reply's Markdown source. Before
// rendering, every span is replaced by a marker made of two private-use characters around the
// citation's index; after rendering and sanitizing, markers found in text nodes become buttons
// built with DOM calls (never from reply text). Marker characters already in the reply are
// removed first, so a reply cannot forge one; and a marker outside a text node (an attribute)
// is dropped rather than turned into anything.
const MARK_OPEN = '\uE000';
const MARK_CLOSE = '\uE001';
const MARKER = /\uE000(\d+)\uE001/g;
const FORGED = /[\uE000\uE001]/g;

/** A citation as the renderer needs it: a byte span and what it points at. */
export interface CitationSpan {
  spanStart: number;
  spanEnd: number;
  fileName: string;
  pageNumber: number;
}

/**
 * `source` with each valid citation span replaced by its marker. Spans that run backwards,
 * overlap, leave the text or cut a character in two are skipped (shown as plain text).
 */
export function markCitations(source: string, citations: readonly CitationSpan[]): string {
  const clean = source.replace(FORGED, '\uFFFD');
  if (citations.length === 0) return clean;
  // UTF-8 byte offset of every UTF-16 index that starts a character, and the end.
  const indexOfByte = new Map<number, number>();
  let bytes = 0;
  for (let index = 0; index < clean.length; ) {
    indexOfByte.set(bytes, index);
    const code = clean.codePointAt(index) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    index += code >= 0x10000 ? 2 : 1;
  }
  indexOfByte.set(bytes, clean.length);
  const spans = citations
    .map((citation, position) => ({
      position,
      start: indexOfByte.get(citation.spanStart),
      end: indexOfByte.get(citation.spanEnd),
    }))
    .filter((span): span is { position: number; start: number; end: number } =>
      span.start !== undefined && span.end !== undefined && span.end > span.start,
    )
    .sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const span of spans) {
    if (span.start < at) continue;
    out += clean.slice(at, span.start) + MARK_OPEN + String(span.position) + MARK_CLOSE;
    at = span.end;
  }
  return out + clean.slice(at);
}

/**
 * Turns the markers in sanitized `html` into citation buttons (`data-citation` is the index
 * into `citations`). Only text nodes are looked at; the labels are set as text.
 */
export function linkCitations(html: string, citations: readonly CitationSpan[]): string {
  if (!html.includes(MARK_OPEN)) return html;
  const template = document.createElement('template');
  template.innerHTML = html;
  const walker = document.createTreeWalker(template.content, NodeFilter.SHOW_TEXT);
  const texts: Text[] = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if ((node.nodeValue ?? '').includes(MARK_OPEN)) texts.push(node as Text);
  }
  for (const text of texts) {
    const value = text.nodeValue ?? '';
    const fragment = document.createDocumentFragment();
    let at = 0;
    for (const match of value.matchAll(MARKER)) {
      const index = match.index;
      fragment.append(value.slice(at, index));
      const citation = citations[Number(match[1])];
      if (citation) fragment.append(citationButton(Number(match[1]), citation));
      at = index + match[0].length;
    }
    fragment.append(value.slice(at).replace(FORGED, ''));
    text.replaceWith(fragment);
  }
  // A marker that ended up in an attribute (a link title) is removed, not interpreted.
  for (const element of template.content.querySelectorAll('*')) {
    for (const attribute of [...element.attributes]) {
      const value = attribute.value;
      if (value.includes(MARK_OPEN) || value.includes(MARK_CLOSE)) {
        element.setAttribute(attribute.name, value.replace(MARKER, '').replace(FORGED, ''));
      }
    }
  }
  return template.innerHTML;
}

function citationButton(index: number, citation: CitationSpan): HTMLButtonElement {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'citation';
  button.dataset.citation = String(index);
  button.textContent = `p. ${citation.pageNumber}`;
  button.setAttribute('aria-label', `Show page ${citation.pageNumber} of ${citation.fileName}`);
  button.title = `${citation.fileName}, page ${citation.pageNumber}`;
  return button;
}

/** Renders a reply with its citations as buttons, one sanitized HTML string per block. */
export function renderReplyBlocks(source: string, citations: readonly CitationSpan[]): string[] {
  const blocks = renderMarkdownBlocks(markCitations(source, citations));
  return citations.length === 0 ? blocks : blocks.map((block) => linkCitations(block, citations));
}
