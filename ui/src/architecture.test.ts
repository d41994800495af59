// The UI's one rule about the platform: only src/ipc/ imports `@tauri-apps/api`, so every other
// module can be tested with mocked IPC and rendered in a plain browser.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const sourceRoot = import.meta.dirname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|svelte)$/.test(name) ? [path] : [];
  });
}

describe('UI architecture', () => {
  it('imports @tauri-apps/api only from src/ipc/', () => {
    const offenders = sourceFiles(sourceRoot)
      .filter((path) => !relative(sourceRoot, path).startsWith('ipc/'))
      .filter((path) => /(from|import)\s*\(?\s*['"]@tauri-apps\/api/.test(readFileSync(path, 'utf8')))
      .map((path) => relative(sourceRoot, path));
    expect(offenders).toEqual([]);
  });

  it('finds the source files it checks', () => {
    expect(sourceFiles(sourceRoot).length).toBeGreaterThan(5);
  });
});
