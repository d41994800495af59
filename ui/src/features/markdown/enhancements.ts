// Syntax highlighting and TeX are the two heavy parts of reply rendering (most of the bundle),
// and most replies need neither. They are loaded on first use: the renderer asks for one, gets
// `null` while it loads (and renders plain code or the TeX source meanwhile), and every
// listener is told when it arrives so replies on screen render again, now highlighted.
// A failed load (a damaged install) is reported once and leaves replies plain, never broken.
import type * as HighlightModule from './highlight';
import type * as TexModule from './tex';

type Highlighter = typeof HighlightModule;
type TexRenderer = typeof TexModule;

interface Lazy<T> {
  module: T | null;
  loading: Promise<void> | null;
  load: () => Promise<T>;
}

const highlight: Lazy<Highlighter> = { module: null, loading: null, load: () => import('./highlight') };
const tex: Lazy<TexRenderer> = { module: null, loading: null, load: () => import('./tex') };
const listeners = new Set<() => void>();

function start<T>(lazy: Lazy<T>): Promise<void> {
  lazy.loading ??= lazy.load().then(
    (module) => {
      lazy.module = module;
      for (const listener of [...listeners]) listener();
    },
    (error: unknown) => {
      console.error('a reply renderer could not be loaded; replies stay plain', error);
    },
  );
  return lazy.loading;
}

/** The highlighter if loaded; otherwise starts loading it and returns null. */
export function highlighter(): Highlighter | null {
  if (!highlight.module) void start(highlight);
  return highlight.module;
}

/** The TeX renderer if loaded; otherwise starts loading it and returns null. */
export function texRenderer(): TexRenderer | null {
  if (!tex.module) void start(tex);
  return tex.module;
}

/** Calls `listener` whenever a renderer finishes loading. Returns a function that stops it. */
export function onEnhancementLoaded(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Loads both renderers now (tests and benchmarks, which want the final output at once). */
export async function loadEnhancements(): Promise<void> {
  await Promise.all([start(highlight), start(tex)]);
}

/** Whether a renderer has been loaded (for tests of the lazy loading itself). */
export function enhancementsLoaded(): { highlight: boolean; tex: boolean } {
  return { highlight: highlight.module !== null, tex: tex.module !== null };
}
