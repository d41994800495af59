// End-to-end: a real XDND drop. A small GTK 3 window (tools/drag_source.py) offers a picture as
// a `text/uri-list`, the way a file manager does; `xdotool` presses the pointer on it, drags it
// across the X display and releases it over Cria's window. The drop reaches the app through the
// X server, WebKitGTK and Tauri's native drag-drop event, exactly as a user's drop does. The
// picture's chip must appear, and sending it to the tiny Llama 4 fixture (text + mmproj, the
// real llama.cpp engine) must give a reply routed to vision, whose sent chip shows the
// backend's thumbnail.
//
// No window manager is needed: under a bare Xvfb GTK finds the drop target itself (XDND walks
// the window tree), and windows stay where they are put.
//
// Needs: xdotool, ImageMagick (`convert`, `import`), Python 3 with PyGObject and GTK 3
// (python3-gi, gir1.2-gtk-3.0), a display. Outside CI the test skips when one is missing; in CI
// (CI=true) a missing tool fails it. On failure the display is saved as failure.png in the
// test's temp folder, which is then kept (its path is printed as a test diagnostic).
//
// Screenshots: docs/screenshots/drop-hover.png (the window while a file is dragged over it),
// drop-tray.png (the dropped picture's chip with its thumbnail, before sending) and
// drop-reply.png (the sent picture and the vision-routed reply).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stopDriver } from './processes.mjs';
import { WebDriver, waitForDriver } from './webdriver.mjs';

const root = resolve(import.meta.dirname, '../..');
const app = resolve(process.env.CRIA_APP ?? join(root, 'target/debug/cria-app'));
const dragSource = join(import.meta.dirname, 'tools/drag_source.py');
const screenshots = join(root, 'docs/screenshots');
// Apart from app.test.mjs (4444/4445, 4460/4461), ui.test.mjs (4446/4447), attachments.test.mjs
// (4450/4451) and download.test.mjs (4476/4477).
const port = 4454;
const driverUrl = `http://127.0.0.1:${port}`;

/** The first Python 3 that can load GTK 3 through PyGObject (pyenv's often cannot). */
function findGtkPython() {
  const probe = "import gi; gi.require_version('Gtk', '3.0'); from gi.repository import Gtk";
  for (const python of ['/usr/bin/python3', 'python3']) {
    const result = spawnSync(python, ['-c', probe], { stdio: 'ignore', timeout: 20_000 });
    if (result.status === 0) return python;
  }
  return null;
}

function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** What this test needs that the machine lacks, said so a user knows what to do. */
function missingTools(python) {
  const packages = [];
  if (!hasCommand('xdotool')) packages.push('xdotool');
  if (!hasCommand('convert') || !hasCommand('import')) packages.push('imagemagick');
  if (!python) packages.push('python3-gi', 'gir1.2-gtk-3.0');
  const missing = packages.length > 0 ? [`the packages ${packages.join(' ')} (scripts/setup.sh --test installs them)`] : [];
  if (!process.env.DISPLAY) missing.push('a display (DISPLAY is unset: run it under xvfb-run)');
  return missing;
}

function xdotool(...args) {
  return execFileSync('xdotool', args.map(String), { encoding: 'utf8', timeout: 20_000 }).trim();
}

/** `xdotool getwindowgeometry --shell` as numbers: X, Y, WIDTH, HEIGHT. */
function geometry(windowId) {
  const fields = Object.fromEntries(
    xdotool('getwindowgeometry', '--shell', windowId)
      .split('\n')
      .map((line) => line.split('='))
      .map(([key, value]) => [key, Number(value)]),
  );
  return { x: fields.X, y: fields.Y, width: fields.WIDTH, height: fields.HEIGHT };
}

/** A child process's stdout lines as they come, and a bounded wait for one of them. */
function lineReader(child) {
  const lines = [];
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop();
    lines.push(...parts);
  });
  return {
    lines,
    async waitFor(what, predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const found = lines.find(predicate);
        if (found) return found;
        if (child.exitCode !== null) break;
        await sleep(50);
      }
      throw new Error(`the drag source never reported ${what} (it said: ${lines.join(' | ') || 'nothing'})`);
    },
  };
}

/**
 * Drags with the real pointer from `from` to `to`: press, a few small moves past GTK's drag
 * threshold (the drag starts), then steps across so the target sees XdndEnter and XdndPosition
 * messages, a pause over the target, and `beforeRelease` (the test looks at the window while the
 * file hovers over it) before the release that drops.
 */
async function dragWithPointer(from, to, beforeRelease) {
  xdotool('mousemove', from.x, from.y);
  await sleep(150);
  xdotool('mousedown', 1);
  await sleep(150);
  for (const step of [4, 8, 14, 24]) {
    xdotool('mousemove', from.x + step, from.y - step);
    await sleep(60);
  }
  const steps = 8;
  for (let i = 1; i <= steps; i += 1) {
    xdotool('mousemove', Math.round(from.x + ((to.x - from.x) * i) / steps), Math.round(from.y + ((to.y - from.y) * i) / steps));
    await sleep(80);
  }
  // A last small move over the target: a drop needs an answered XdndPosition first.
  xdotool('mousemove', to.x + 3, to.y + 3);
  await sleep(300);
  try {
    await beforeRelease();
  } finally {
    xdotool('mouseup', 1);
  }
}

test('a picture dropped from another window through XDND is attached and gets a vision-routed reply', async (t) => {
  const python = findGtkPython();
  const missing = missingTools(python);
  if (missing.length > 0) {
    const message = `the real XDND drop needs ${missing.join(' and ')}`;
    assert.ok(process.env.CI !== 'true', `in CI every tool must be there; ${message}`);
    t.skip(message);
    return;
  }
  assert.ok(existsSync(app), `the app is not built at ${app}`);

  const work = mkdtempSync(join(tmpdir(), 'cria-e2e-drop-'));
  let failed = true;
  const modelDir = join(work, 'model');
  mkdirSync(modelDir);
  const writer = process.env.CRIA_FIXTURE_WRITER;
  const model = (
    writer
      ? execFileSync(writer, [modelDir], { encoding: 'utf8' })
      : execFileSync('cargo', ['run', '--quiet', '-p', 'cria-gguf', '--example', 'llama4_fixture', '--', modelDir], {
          cwd: root,
          encoding: 'utf8',
        })
  ).trim();
  const picture = join(work, 'dropped-picture.png');
  execFileSync('convert', ['-size', '160x100', 'gradient:orange-purple', picture]);

  const dataDir = join(work, 'data');
  const driverProcess = spawn('tauri-driver', ['--port', String(port), '--native-port', String(port + 1)], {
    // The real engine (no test double) on a data folder of its own.
    env: { ...process.env, CRIA_DATA_DIR: dataDir, CRIA_TEST_ENGINE: '' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let source;
  let driver;
  try {
    await waitForDriver(driverUrl);
    driver = await WebDriver.connect(driverUrl, { alwaysMatch: { 'tauri:options': { application: app } } });

    // Load the fixture first, so the drop lands on a ready chat.
    await driver.click(await driver.waitFor('the model chooser', () => driver.find('[data-testid="open-models"]')));
    await driver.type(await driver.waitFor('the model import', () => driver.find('[data-testid="model-path"]')), model);
    await driver.click(await driver.find('[data-testid="import-model"]'));
    const loaded = await driver.waitFor('the model to load', () => driver.textOf('[data-testid="loaded-model"]'), 60_000);
    assert.match(loaded, /sees images/, 'the projector beside the model was paired');
    await driver.execute('window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }))');
    await driver.waitFor('the models panel to close', async () => (await driver.findAll('[data-testid="model-path"]')).length === 0);

    // Both windows where the pointer arithmetic expects them.
    const cria = execFileSync('xdotool', ['search', '--sync', '--onlyvisible', '--name', '^Cria$'], {
      encoding: 'utf8',
      timeout: 20_000,
    })
      .trim()
      .split('\n')[0];
    xdotool('windowmove', cria, 0, 0);
    const target = await driver.waitFor('the Cria window at the top left', async () => {
      const place = geometry(cria);
      return place.x === 0 && place.y === 0 ? place : null;
    });
    const [, screenHeight] = xdotool('getdisplaygeometry').split(' ').map(Number);
    const sourcePlace = { x: 30, y: Math.min(target.height, screenHeight) - 150, width: 220, height: 110 };
    source = spawn(python, [dragSource, picture, ...[sourcePlace.x, sourcePlace.y, sourcePlace.width, sourcePlace.height].map(String)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const sourceLines = lineReader(source);
    await sourceLines.waitFor('its window', (line) => line.startsWith('ready '));
    await sleep(300);

    const from = { x: sourcePlace.x + sourcePlace.width / 2, y: sourcePlace.y + sourcePlace.height / 2 };
    const to = { x: Math.round(target.width * 0.6), y: Math.round(target.height * 0.4) };
    await dragWithPointer(from, to, async () => {
      await sourceLines.waitFor('the start of the drag', (line) => line === 'drag-begin');
      const hint = await driver.waitFor('the drop hint while the file hovers', () =>
        driver.textOf('[data-testid="drop-hint"]'),
      );
      assert.match(hint, /attach/i);
      mkdirSync(screenshots, { recursive: true });
      execFileSync('import', ['-window', 'root', join(screenshots, 'drop-hover.png')], { timeout: 15_000 });
    });
    await sourceLines.waitFor('the target asking for the file', (line) => line === 'data-get');
    await sourceLines.waitFor('the end of the drag', (line) => line === 'drag-end' || line.startsWith('drag-failed'));
    assert.ok(!sourceLines.lines.some((line) => line.startsWith('drag-failed')), sourceLines.lines.join(' | '));
    source.kill('SIGTERM');

    const chip = await driver.waitFor('the dropped picture in the tray', () =>
      driver.textOf('.composer-area [data-testid="attachment-chip"] .name'),
    );
    assert.equal(chip, 'dropped-picture.png');
    await driver.waitFor('the drop hint to go', async () => (await driver.findAll('[data-testid="drop-hint"]')).length === 0);
    // Before anything is sent, the backend has read the picture: its chip shows the re-encoded thumbnail.
    const trayThumbnail = await driver.waitFor('the thumbnail on the chip before sending', () =>
      driver.execute(`
        const img = document.querySelector('.composer-area [data-testid="attachment-chip"] img.thumb');
        return img && img.complete && img.naturalWidth > 0 ? img.getAttribute('src').slice(0, 15) : null;`),
    );
    assert.match(trayThumbnail, /^data:image\/jpeg/);
    execFileSync('import', ['-window', 'root', join(screenshots, 'drop-tray.png')], { timeout: 15_000 });

    await driver.type(await driver.find('[data-testid="composer-input"]'), 'What is in this picture?');
    await driver.click(await driver.find('[data-testid="send"]'));
    const reply = await driver.waitFor(
      'a finished reply about the picture',
      () =>
        driver.execute(`
          const reply = [...document.querySelectorAll('[data-testid="message-assistant"]')].at(-1);
          if (!reply || reply.getAttribute('data-status') === 'streaming') return null;
          const status = reply.getAttribute('data-status');
          const stats = reply.querySelector('[data-testid="reply-stats"]');
          // The stats line appears when the window reloads the finished reply from the store.
          if (status === 'complete' && !(stats && stats.textContent)) return null;
          return { status, stats: stats ? stats.textContent : '' };`),
      120_000,
    );
    assert.equal(reply.status, 'complete', JSON.stringify(reply));
    assert.match(reply.stats, /vision/, reply.stats);
    // The sent message keeps the picture's chip, now with the backend's re-encoded thumbnail.
    const thumbnail = await driver.waitFor('the thumbnail on the sent chip', () =>
      driver.execute(`
        const message = [...document.querySelectorAll('[data-testid="message-user"]')].at(-1);
        const chip = message && message.querySelector('[data-testid="attachment-chip"]');
        const img = chip && chip.querySelector('img.thumb');
        return img && img.complete && img.naturalWidth > 0
          ? { name: chip.querySelector('.name').textContent.trim(), src: img.getAttribute('src').slice(0, 15), width: img.naturalWidth }
          : null;`),
    );
    assert.equal(thumbnail.name, 'dropped-picture.png');
    assert.match(thumbnail.src, /^data:image\//);
    await sleep(300);
    execFileSync('import', ['-window', 'root', join(screenshots, 'drop-reply.png')], { timeout: 15_000 });
    failed = false;
  } finally {
    if (failed) {
      try {
        execFileSync('import', ['-window', 'root', join(work, 'failure.png')], { timeout: 15_000 });
        t.diagnostic(`the display at the failure: ${join(work, 'failure.png')}`);
      } catch (error) {
        t.diagnostic(`no failure screenshot: ${error.message}`);
      }
    }
    source?.kill('SIGTERM');
    await driver?.quit();
    await stopDriver(driverProcess, dataDir);
    if (!failed) rmSync(work, { recursive: true, force: true });
  }
});
