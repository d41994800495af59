// End-to-end checks of the desktop UI in the real app (WebKit under Xvfb, tauri-driver):
//   - XSS: the scripted engine streams tests/e2e/fixtures/xss-corpus.md token by token as a
//     reply; the live DOM must hold no script-capable element or attribute, no payload may run
//     (`window.__xss` stays undefined) and nothing may be requested from the attacker's host;
//   - a Markdown reply (table, highlighted code, KaTeX, task list) and link confirmation;
//   - the sidebar: rename, pin, search with highlighted snippets (Korean), delete and undo;
//   - settings: export to the exports folder, theme kept across a restart.
// Screenshots of the main screens go to docs/screenshots/.
//
// Each group starts its own tauri-driver (ports 4446/4447, so it never collides with
// app.test.mjs) because the scripted engine is chosen by the app's environment.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { stopDriver } from './processes.mjs';
import { WebDriver, waitForDriver } from './webdriver.mjs';

const root = resolve(import.meta.dirname, '../..');
const fixtures = join(import.meta.dirname, 'fixtures');
const app = resolve(process.env.CRIA_APP ?? join(root, 'target/debug/cria-app'));
const screenshots = join(root, 'docs/screenshots');
const port = 4446;
const driverUrl = `http://127.0.0.1:${port}`;
const dataDirs = [];

after(() => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** Captures the display (after a moment, so the last change is painted), optionally cropped. */
async function saveScreenshot(name, crop) {
  mkdirSync(screenshots, { recursive: true });
  await sleep(400);
  const cropArgs = crop ? ['-crop', crop] : [];
  execFileSync('import', ['-window', 'root', ...cropArgs, join(screenshots, name)], { timeout: 15_000 });
}

/** Starts tauri-driver with the app's environment, runs `body(startApp)`, stops the driver. */
async function withDriver(env, body) {
  assert.ok(existsSync(app), `the app is not built at ${app}`);
  const driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(port + 1)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    await waitForDriver(driverUrl);
    const startApp = () =>
      WebDriver.connect(driverUrl, { alwaysMatch: { 'tauri:options': { application: app } } });
    await body(startApp);
  } finally {
    await stopDriver(driver, env.CRIA_DATA_DIR);
  }
}

function newDataDir() {
  const dir = mkdtempSync(join(tmpdir(), 'cria-e2e-ui-'));
  dataDirs.push(dir);
  return dir;
}

async function send(driver, text) {
  const input = await driver.waitFor('the composer', () => driver.find('[data-testid="composer-input"]'));
  await driver.type(input, text);
  await driver.click(await driver.find('[data-testid="send"]'));
  return driver.waitFor(
    'the finished reply',
    async () => {
      const replies = await driver.findAll('[data-testid="message-assistant"]');
      const last = replies.at(-1);
      if (!last) return null;
      return (await driver.attribute(last, 'data-status')) === 'complete' ? last : null;
    },
    60_000,
  );
}

function key(driver, init) {
  return driver.execute(
    'window.dispatchEvent(new KeyboardEvent("keydown", Object.assign({ bubbles: true }, arguments[0])));',
    [init],
  );
}

test('a streamed XSS corpus stays inert in the live app', async () => {
  await withDriver(
    {
      CRIA_DATA_DIR: newDataDir(),
      CRIA_TEST_ENGINE: `scripted-file:${join(fixtures, 'xss-corpus.md')}`,
    },
    async (startApp) => {
      const driver = await startApp();
      try {
        // Checked during the stream as well as at the end: every intermediate render counts.
        const input = await driver.waitFor('the composer', () => driver.find('[data-testid="composer-input"]'));
        await driver.type(input, 'Show me the payloads');
        await driver.click(await driver.find('[data-testid="send"]'));
        const audit = `
          const reply = [...document.querySelectorAll('[data-testid="message-assistant"]')].at(-1);
          const problems = [];
          const forbidden = 'script, iframe, object, embed, style, form, img, frame, frameset, base, link[href^="http"], meta[http-equiv="refresh"], audio, video, math, foreignObject';
          if (reply) for (const el of reply.querySelectorAll(forbidden)) problems.push('<' + el.localName + '>');
          for (const el of document.body.querySelectorAll('*')) {
            for (const attr of el.attributes) {
              const name = attr.name.toLowerCase();
              if (name.startsWith('on')) problems.push(el.localName + '[' + name + ']');
              if (['src', 'srcdoc', 'action', 'formaction', 'xlink:href'].includes(name)) problems.push(el.localName + '[' + name + ']');
              if (name === 'href' && !/^(https:|mailto:)/i.test(attr.value)) problems.push(el.localName + '[href=' + attr.value + ']');
              if (name === 'style' && reply && reply.contains(el) && !el.closest('.katex')) problems.push(el.localName + '[style]');
            }
          }
          if (window.__xss !== undefined) problems.push('window.__xss=' + String(window.__xss));
          if (parent.__xss !== undefined) problems.push('parent.__xss');
          const requests = performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('attacker.test'));
          problems.push(...requests.map((n) => 'request ' + n));
          return { problems, status: reply ? reply.dataset.status : null };`;
        let audits = 0;
        for (;;) {
          const { problems, status } = await driver.execute(audit);
          audits += 1;
          assert.deepEqual(problems, [], `the live DOM was unsafe (audit ${audits})`);
          if (status === 'complete') break;
          await sleep(50);
        }
        assert.ok(audits > 1, 'the reply was audited while it streamed');
        const text = await driver.textOf('[data-testid="message-assistant"]');
        assert.match(text, /onerror/, 'payloads are shown as text');

        // javascript:, data:, file:, smb: links are plain text: clicking them does nothing.
        const inert = await driver.execute(
          'return [...document.querySelectorAll(\'[data-testid="message-assistant"] p\')].find((p) => p.textContent.includes("[js link]"));',
        );
        await driver.click(inert['element-6066-11e4-a52e-4f735466cecf']);
        await sleep(300);
        assert.equal((await driver.findAll('[data-testid="link-confirm"]')).length, 0);

        // The exfiltration image is a link; clicking it only asks, and Cancel leaves it be.
        const location = await driver.execute('return location.href;');
        await driver.click(await driver.find('a.image-link'));
        const dialog = await driver.waitFor('the link confirmation', () => driver.textOf('[data-testid="link-confirm"]'));
        assert.match(dialog, /https:\/\/attacker\.test\/\?q=secret/);
        await saveScreenshot('link-confirmation.png');
        const buttons = await driver.findAll('[data-testid="link-confirm"] button');
        await driver.click(buttons[0]);
        await driver.waitFor('the dialog to close', async () =>
          (await driver.findAll('[data-testid="link-confirm"]')).length === 0,
        );
        assert.equal(await driver.execute('return location.href;'), location);
        const { problems } = await driver.execute(audit);
        assert.deepEqual(problems, []);
      } finally {
        await driver.quit();
      }
    },
  );
});

test('Markdown replies, sidebar management, search, settings and theme', async () => {
  const dataDir = newDataDir();
  const env = {
    CRIA_DATA_DIR: dataDir,
    CRIA_TEST_ENGINE: `scripted-file:${join(fixtures, 'showcase.md')}`,
  };
  await withDriver(env, async (startApp) => {
    const driver = await startApp();
    try {
      await driver.waitFor('the composer', () => driver.find('[data-testid="composer-input"]'));
      await saveScreenshot('main-screen.png');

      const reply = await send(driver, '정렬 알고리즘을 표와 수식으로 비교해 주세요');
      const shape = await driver.execute(`
        const reply = arguments[0];
        return {
          headers: reply.querySelectorAll('table th').length,
          keywords: reply.querySelectorAll('pre code .hljs-keyword').length,
          copy: reply.querySelector('button.copy-code')?.getAttribute('aria-label'),
          math: reply.querySelectorAll('.katex').length,
          display: reply.querySelectorAll('.katex-display').length,
          tasks: reply.querySelectorAll('input[type=checkbox][disabled]').length,
          link: reply.querySelector('a[href^="https:"]')?.getAttribute('href'),
          katexFont: [...document.fonts].some((font) => font.family.includes('KaTeX')),
        };`, [{ 'element-6066-11e4-a52e-4f735466cecf': reply }]);
      assert.equal(shape.headers, 4);
      assert.ok(shape.keywords >= 3, `highlighted keywords: ${shape.keywords}`);
      assert.equal(shape.copy, 'Copy rust code');
      assert.ok(shape.math >= 7, `formulas: ${shape.math}`);
      assert.equal(shape.display, 1);
      assert.equal(shape.tasks, 2);
      assert.equal(shape.link, 'https://en.wikipedia.org/wiki/Sorting_algorithm');
      assert.ok(shape.katexFont, 'KaTeX fonts are bundled');
      await saveScreenshot('markdown-reply.png');
      const copy = await driver.find('[data-testid="message-assistant"] button.copy-code');
      await driver.click(copy);
      await driver.waitFor('the copy confirmation', async () => (await driver.text(copy)) === 'Copied');

      // A second conversation, so pinning and search have something to choose between.
      await driver.click(await driver.find('button.new'));
      await send(driver, 'Plain second question');
      const titles = () => driver.execute(
        'return [...document.querySelectorAll(\'[data-testid="conversation-list"] button.open\')].map((b) => b.textContent.trim());',
      );
      await driver.waitFor('two conversations', async () => (await titles()).length === 2);
      assert.equal((await titles())[0], 'Plain second question', 'most recent first');

      // Open the older one, rename it inline, then pin it: it moves to the top. (A row's
      // actions show on the open row, on hover and on keyboard focus.)
      const openButtons = await driver.findAll('[data-testid="conversation-list"] button.open');
      await driver.click(openButtons[1]);
      await driver.click(await driver.find('[data-testid="conversation-list"] li.active button[aria-label^="Rename"]'));
      const field = await driver.waitFor('the rename field', () => driver.find('input.rename'));
      await driver.execute('arguments[0].value = ""; arguments[0].dispatchEvent(new Event("input", { bubbles: true }));', [
        { 'element-6066-11e4-a52e-4f735466cecf': field },
      ]);
      await driver.type(field, 'Sorting notes\uE007');
      await driver.waitFor('the new title', async () => (await titles()).includes('Sorting notes'));
      const pinButtons = await driver.findAll('[data-testid="conversation-list"] button[aria-label="Pin Sorting notes"]');
      await driver.click(pinButtons[0]);
      await driver.waitFor('the pinned conversation on top', async () => (await titles())[0].includes('Sorting notes'));

      // Ctrl+K focuses search; Korean text is found and highlighted.
      await key(driver, { key: 'k', ctrlKey: true });
      assert.equal(await driver.execute('return document.activeElement?.getAttribute("type");'), 'search');
      await driver.type(await driver.find('input.search'), '알고리즘');
      const marks = await driver.waitFor('highlighted search results', async () => {
        const found = await driver.execute(
          'return [...document.querySelectorAll(\'[data-testid="search-results"] mark\')].map((m) => m.textContent);',
        );
        return found.length > 0 ? found : null;
      });
      assert.ok(marks.some((mark) => mark.includes('알고리즘')), `marks: ${marks}`);
      assert.match(await driver.textOf('[data-testid="search-results"]'), /Sorting notes/);
      await saveScreenshot('search-results.png');
      await driver.click(await driver.find('[data-testid="search-results"] button.hit'));
      await driver.waitFor('the found conversation open', async () =>
        (await driver.textOf('.chat-header h1')) === 'Sorting notes',
      );
      await driver.execute('const s = document.querySelector("input.search"); s.value = ""; s.dispatchEvent(new Event("input", { bubbles: true }));');
      await driver.waitFor('the list back', () => driver.find('[data-testid="conversation-list"]'));

      // Delete with undo: the conversation leaves the list and comes back.
      await driver.click((await driver.findAll('[data-testid="conversation-list"] button.open'))[1]);
      const deleteButton = await driver.find('[data-testid="conversation-list"] button[aria-label="Delete Plain second question"]');
      await driver.click(deleteButton);
      await driver.waitFor('the undo offer', async () => (await titles()).length === 1);
      assert.match(await driver.textOf('[data-testid="undo-toast"]'), /Deleted “Plain second question”/);
      await saveScreenshot('undo-delete.png');
      await driver.click(await driver.find('[data-testid="undo-toast"] button'));
      await driver.waitFor('the conversation restored', async () => (await titles()).length === 2);
      await driver.click((await driver.findAll('[data-testid="conversation-list"] button.open'))[0]);
      await driver.waitFor('the pinned chat open', () => driver.find('.katex-display'));

      // Settings: export the open chat into the exports folder, then switch to dark.
      await key(driver, { key: ',', ctrlKey: true });
      await driver.waitFor('the settings dialog', () => driver.find('[data-testid="settings"]'));
      const exportButton = (await driver.findAll('[data-testid="settings"] .buttons button'))[0];
      await driver.click(exportButton);
      const path = await driver.waitFor('the export path', () => driver.textOf('[data-testid="export-path"]'));
      assert.ok(path.startsWith(join(dataDir, 'exports')), path);
      assert.match(readFileSync(path, 'utf8'), /Merge sort/);
      assert.equal(await driver.textOf('[data-testid="data-dir"]'), dataDir);
      await saveScreenshot('settings.png');
      await driver.click(await driver.find('input[name="theme"][value="dark"]'));
      await driver.waitFor('the dark theme', async () =>
        (await driver.execute('return document.documentElement.dataset.theme;')) === 'dark',
      );
      await driver.execute('document.querySelector("[data-testid=settings]")?.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));');
      await driver.waitFor('settings closed', async () => (await driver.findAll('[data-testid="settings"]')).length === 0);
      await driver.click(await driver.find('[data-testid="conversation-list"] button.open'));
      await driver.waitFor('the reply shown', () => driver.find('.katex-display'));
      await saveScreenshot('dark-theme.png');

      // The smallest supported window: nothing spills sideways, the composer stays on screen.
      await driver.command('POST', '/window/rect', { width: 800, height: 600 });
      const fit = await driver.waitFor('the window at 800x600', async () => {
        const size = await driver.execute(`
          const composer = document.querySelector('[data-testid="composer-input"]').getBoundingClientRect();
          return { width: innerWidth, height: innerHeight, overflow: document.documentElement.scrollWidth - innerWidth,
                   composerBottom: composer.bottom };`);
        return size.width <= 800 ? size : null;
      });
      assert.ok(fit.overflow <= 0, `horizontal overflow ${fit.overflow}px`);
      assert.ok(fit.composerBottom <= fit.height, 'the composer is visible');
      // Below 900 px the sidebar folds behind a toggle; the chat gets the whole width.
      await driver.waitFor('the folded sidebar', async () =>
        (await driver.execute('return document.getElementById("sidebar").hidden;')) === true,
      );
      await saveScreenshot('small-window.png', '800x600+0+0');
      await driver.click(await driver.find('[data-testid="sidebar-toggle"]'));
      await driver.waitFor('the sidebar over the chat', async () =>
        (await driver.execute('return document.getElementById("sidebar").hidden;')) === false,
      );
      await saveScreenshot('small-window-sidebar.png', '800x600+0+0');
      await key(driver, { key: 'Escape' });
      await driver.waitFor('the sidebar folded again', async () =>
        (await driver.execute('return document.getElementById("sidebar").hidden;')) === true,
      );
    } finally {
      await driver.quit();
    }

    // The theme and the pin survive a restart.
    const again = await startApp();
    try {
      await again.waitFor('the dark theme after restart', async () =>
        (await again.execute('return document.documentElement.dataset.theme;')) === 'dark',
      );
      const first = await again.waitFor('the list', () => again.textOf('[data-testid="conversation-list"]'));
      assert.match(first, /^★?\s*(Pinned: )?Sorting notes/);
    } finally {
      await again.quit();
    }
  });
});

/**
 * A long Markdown reply, built here rather than committed: sections of prose with inline math,
 * code blocks, lists and tables, about 2,000 Llama tokens of text (~4 characters a token).
 * The scripted engine streams it a whitespace-separated piece at a time and stops at the chat
 * turn's 1,024-piece limit, so the text is kept under that many pieces.
 */
function longReply() {
  const section = (i) =>
    `## ${i + 1}. Partitioning strategies, revisited\n\n` +
    `Quicksort's expected comparisons are $2n\\ln n \\approx 1.39\\,n\\log_2 n$; ` +
    `**introsort** bounds the worst case by switching to heapsort after $2\\lfloor\\log_2 n\\rfloor$ levels. ` +
    `Three-way partitioning (Dijkstra's "Dutch national flag") handles duplicated keys gracefully.\n\n` +
    (i % 2 === 0
      ? '```rust\nfn partition<T: Ord>(items: &mut [T]) -> usize {\n  let pivot = items.len() - 1;\n  let mut store = 0;\n  for i in 0..pivot {\n    if items[i] <= items[pivot] { items.swap(i, store); store += 1; }\n  }\n  items.swap(store, pivot);\n  store\n}\n```\n\n'
      : '| Variant | Comparisons | Extra memory |\n|---|---:|---|\n| Lomuto | $\\sim 1.5\\,n\\log n$ | $O(\\log n)$ |\n| Hoare | $\\sim 1.0\\,n\\log n$ | $O(\\log n)$ |\n\n') +
    `- Median-of-three sampling removes sorted-input degeneration.\n- Insertion sort finishes subarrays shorter than sixteen elements.\n\n`;
  const pieces = (text) => text.split(/(?<=\s)/).length;
  let text = '';
  for (let i = 0; ; i += 1) {
    const next = text + section(i);
    if (pieces(next) > 1000) break;
    text = next;
  }
  return { text, pieces: pieces(text) };
}

/** Real key presses through the WebDriver actions API (modifier held while `key` is pressed). */
async function chord(driver, modifier, key) {
  const keys = modifier ? [modifier, key] : [key];
  await driver.command('POST', '/actions', {
    actions: [
      {
        type: 'key',
        id: 'keyboard',
        actions: [
          ...keys.map((value) => ({ type: 'keyDown', value })),
          ...keys.reverse().map((value) => ({ type: 'keyUp', value })),
        ],
      },
    ],
  });
  await driver.command('DELETE', '/actions');
}

async function clearComposer(driver) {
  await driver.execute(
    'const c = document.querySelector(\'[data-testid="composer-input"]\'); c.value = ""; c.dispatchEvent(new Event("input", { bubbles: true }));',
  );
}

/**
 * Sends what the composer holds (pressing `sendKey`) and records, until the reply is complete,
 * every animation frame's gap and each typed key's queueing delay (keys are typed one at a
 * time, as a person types, while the reply streams). Ends with the composer holding the typed
 * keys, which the caller checks.
 */
async function streamAndMeasure(driver, input, sendKey, reply) {
  const sentText = await driver.execute('return document.activeElement.value;');
  const before = (await driver.findAll('[data-testid="message-assistant"]')).length;
  await driver.execute(`
    const record = { gaps: [], last: performance.now(), running: true, inputDelays: [] };
    window.__frames = record;
    const loop = (now) => { record.gaps.push(now - record.last); record.last = now; if (record.running) requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
    window.__onKey ??= (event) => window.__frames.inputDelays.push(performance.now() - event.timeStamp);
    document.addEventListener('keydown', window.__onKey, true);`);
  const sentAt = Date.now();
  await driver.type(input, sendKey);
  let typed = '';
  // The probe reads textContent, which needs no layout, so polling costs the page little.
  const finished = await driver.waitFor(
    'the long reply to finish',
    async () => {
      const state = await driver.execute(
        'const all = document.querySelectorAll(\'[data-testid="message-assistant"]\'); const r = all.length > arguments[0] ? all[all.length - 1] : null; return r ? { status: r.dataset.status, length: r.textContent.length } : null;',
        [before],
      );
      if (state?.status === 'streaming' && state.length > 300) {
        const next = 'typing while it streams'[typed.length];
        if (next) {
          await driver.type(input, next);
          typed += next;
        }
      }
      return state?.status === 'complete' ? state : null;
    },
    120_000,
  );
  const streamMs = Date.now() - sentAt;
  const frames = await driver.execute(`
    const record = window.__frames; record.running = false;
    document.removeEventListener('keydown', window.__onKey, true);
    const gaps = record.gaps.slice(1).sort((a, b) => a - b);
    const at = (q) => gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))];
    return { count: gaps.length, max: gaps.at(-1), p50: at(0.5), p95: at(0.95), over50: gaps.filter((g) => g > 50).length,
             keys: record.inputDelays.length, maxKeyDelay: Math.max(0, ...record.inputDelays) };`);
  assert.ok(typed.length > 3, `keys were typed while the reply streamed: ${JSON.stringify(typed)}`);
  assert.ok(frames.count > 10, `frames were recorded: ${JSON.stringify(frames)}`);
  assert.ok(frames.keys >= typed.length, 'the typed keys were observed');
  assert.ok(finished.length > reply.text.length / 2, 'the reply was rendered');
  assert.equal(await driver.execute('return document.activeElement.value;'), typed, 'typing kept up');
  return { ...frames, streamMs, chars: reply.text.length, sentText };
}

function describeFrames(f) {
  return (
    `${f.chars} characters in ${f.streamMs} ms: ${f.count} frames, gap p50 ${f.p50.toFixed(1)} ms, p95 ${f.p95.toFixed(1)} ms, ` +
    `max ${f.max.toFixed(1)} ms, ${f.over50} over 50 ms; longest key queueing delay ${f.maxKeyDelay.toFixed(1)} ms over ${f.keys} keys`
  );
}

const CONTROL = '\uE009';
const SHIFT = '\uE008';
const ENTER = '\uE007';
const ESCAPE = '\uE00C';

test('keyboard, reply stats, and frame times while a long reply streams', async (t) => {
  const dataDir = newDataDir();
  const reply = longReply();
  const replyFile = join(dataDir, 'long-reply.md');
  writeFileSync(replyFile, reply.text);
  t.diagnostic(`long reply: ${reply.text.length} characters in ${reply.pieces} streamed pieces`);
  await withDriver({ CRIA_DATA_DIR: dataDir, CRIA_TEST_ENGINE: `scripted-file:${replyFile}` }, async (startApp) => {
    const launched = Date.now();
    const driver = await startApp();
    try {
      const input = await driver.waitFor('the composer', () => driver.find('[data-testid="composer-input"]'));
      // Start-up: from asking the driver for the app to the UI's "interactive" mark, and the
      // webview's own share of it (its navigation start to the mark).
      const marks = await driver.execute(`
        const mark = performance.getEntriesByName('cria-interactive')[0];
        return mark ? { at: performance.timeOrigin + mark.startTime, webview: mark.startTime } : null;`);
      assert.ok(marks, 'the UI marked itself interactive');
      t.diagnostic(`start-up: driver request → interactive ${Math.round(marks.at - launched)} ms (webview navigation → interactive ${Math.round(marks.webview)} ms)`);

      // Ctrl+N from anywhere puts the cursor in the composer.
      await driver.click(await driver.find('input.search'));
      await chord(driver, CONTROL, 'n');
      await driver.waitFor('the composer focused', async () =>
        (await driver.execute('return document.activeElement?.dataset.testid;')) === 'composer-input',
      );
      // Shift+Enter is a new line, not a send.
      await driver.type(input, 'First line');
      await chord(driver, SHIFT, ENTER);
      await driver.type(input, 'second line');
      assert.equal(await driver.execute('return document.activeElement.value;'), 'First line\nsecond line');
      assert.equal((await driver.findAll('[data-testid="message-user"]')).length, 0);

      // Enter sends. Twice: the first reply also loads the highlighter and KaTeX on demand,
      // the second shows the steady state.
      const first = await streamAndMeasure(driver, input, ENTER, reply);
      t.diagnostic(`first reply (renderers load on demand): ${describeFrames(first)}`);
      assert.equal(first.sentText, 'First line\nsecond line', 'Enter sent what Shift+Enter made');
      const katex = await driver.execute('return document.querySelectorAll(\'[data-testid="message-assistant"] .katex\').length;');
      assert.ok(katex > 0, 'KaTeX was loaded on demand and drew the formulas');
      const stats = await driver.waitFor('the stats line', () => driver.textOf('[data-testid="reply-stats"]'));
      assert.match(stats, /^\d[\d,]* tokens$/);
      await saveScreenshot('chat-stats.png');

      await clearComposer(driver);
      await driver.type(input, 'And again');
      const second = await streamAndMeasure(driver, input, ENTER, reply);
      t.diagnostic(`second reply (renderers loaded): ${describeFrames(second)}`);

      // Esc stops the next reply mid-stream; its text so far stays, badged "Stopped".
      await clearComposer(driver);
      await driver.type(input, `Once more, please${ENTER}`);
      await driver.waitFor('the second reply streaming', async () => {
        const state = await driver.execute(
          'const r = [...document.querySelectorAll(\'[data-testid="message-assistant"]\')].at(-1); return r && r.dataset.status === "streaming" && r.textContent.length > 300;',
        );
        return state === true;
      }, 60_000);
      await chord(driver, null, ESCAPE);
      const badge = await driver.waitFor('the stopped badge', () =>
        driver.execute('const b = [...document.querySelectorAll(\'[data-testid="reply-badge"]\')].at(-1); return b ? b.textContent : null;'),
      );
      assert.equal(badge, 'Stopped');
      const kept = await driver.execute('return [...document.querySelectorAll(\'[data-testid="message-assistant"] .bubble\')].at(-1).innerText.length;');
      assert.ok(kept > 300 && kept < reply.text.length, `partial text kept: ${kept} characters`);
      await driver.execute('const m = document.querySelector(".messages"); m.scrollTop = m.scrollHeight;');
      await saveScreenshot('stopped-reply.png');
    } finally {
      await driver.quit();
    }
  });
});
