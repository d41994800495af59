import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyTheme } from './theme';

afterEach(() => document.documentElement.removeAttribute('data-theme'));

describe('theme', () => {
  it('pins light or dark, and leaves "system" to the system preference', () => {
    applyTheme('dark');
    expect(document.documentElement.dataset.theme).toBe('dark');
    applyTheme('light');
    expect(document.documentElement.dataset.theme).toBe('light');
    applyTheme('system');
    expect(document.documentElement.hasAttribute('data-theme')).toBe(false);
  });

  it('styles "system" with a live prefers-color-scheme rule that a pinned light theme overrides', () => {
    // jsdom evaluates no media queries, so the stylesheet itself is checked: the dark palette
    // applies under prefers-color-scheme: dark unless light was chosen, and a chosen light
    // theme keeps native controls light.
    const css = readFileSync(join(import.meta.dirname, '../../app.css'), 'utf8');
    expect(css).toMatch(/@media \(prefers-color-scheme: dark\)\s*\{\s*:root:not\(\[data-theme='light'\]\)\s*\{[^}]*--bg:/);
    expect(css).toMatch(/:root\[data-theme='light'\]\s*\{[^}]*color-scheme: light;/);
    expect(css).toMatch(/:root\[data-theme='dark'\]\s*\{[^}]*color-scheme: dark;/);
  });
});
