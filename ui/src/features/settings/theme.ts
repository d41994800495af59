// Applies the chosen theme to the document: `data-theme` wins over the system preference,
// `system` removes it so the `prefers-color-scheme` rules apply.
import type { ThemeDto } from '../../ipc';

export function applyTheme(theme: ThemeDto, root: HTMLElement = document.documentElement): void {
  if (theme === 'system') root.removeAttribute('data-theme');
  else root.setAttribute('data-theme', theme);
}
