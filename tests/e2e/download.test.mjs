// End-to-end: first run without a model, download one from the catalog in the real app. A
// loopback HTTP server stands in for the model hub (the app is pointed at it with
// CRIA_TEST_CATALOG_BASE_URL, which only accepts http://localhost): it serves the tiny Llama 4
// fixture under a catalog entry's file name and names the fixture's sha256, as the hub does, so
// the core's size and checksum checks run for real. The first transfer stalls halfway, so the
// test sees progress, cancels, resumes from the partial file, and finally loads the model.
//
// Needs what app.test.mjs needs (CRIA_APP, tauri-driver, WebKitWebDriver, Xvfb, ImageMagick),
// plus the fixture writer (CRIA_FIXTURE_WRITER, or cargo to run it).
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stopDriver } from './processes.mjs';
import { WebDriver, waitForDriver } from './webdriver.mjs';

const root = resolve(import.meta.dirname, '../..');
const app = resolve(process.env.CRIA_APP ?? join(root, 'target/debug/cria-app'));
const screenshots = join(root, 'docs/screenshots');
// Apart from app.test.mjs's drivers (4444/4445 and 4460/4461) and ui.test.mjs's (4446/4447).
const port = Number(process.env.TAURI_DRIVER_PORT ?? 4444) + 32;
const driverUrl = `http://127.0.0.1:${port}`;
/** A small catalog entry without a vision projector; its one file is served by the fake hub. */
const ENTRY = 'llama-3-2-1b-instruct-q4-k-m';
const ENTRY_FILE = 'Llama-3.2-1B-Instruct-Q4_K_M.gguf';

function writeFixtureModel(dir) {
  const writer = process.env.CRIA_FIXTURE_WRITER;
  const output = writer
    ? execFileSync(writer, [dir], { encoding: 'utf8' })
    : execFileSync('cargo', ['run', '--quiet', '-p', 'cria-gguf', '--example', 'llama4_fixture', '--', dir], {
        cwd: root,
        encoding: 'utf8',
      });
  return readFileSync(output.trim());
}

/**
 * Serves `body` the way the model hub does: `/…/resolve/…` redirects to the blob and names its
 * sha256 and size; the blob honours `Range`. The first transfer sends half the body, 64 KiB
 * every 100 ms, and then stalls (until the client hangs up, at most 30 s); later ones wait `resumeDelayMs` before the
 * rest, so the window shows the resumed download for a moment. Bounded: at most 20 requests.
 */
async function serveModel(body, resumeDelayMs) {
  const sha256 = createHash('sha256').update(body).digest('hex');
  let requests = 0;
  let transfers = 0;
  const server = createServer((request, response) => {
    requests += 1;
    if (requests > 20) {
      response.writeHead(503, { connection: 'close' }).end();
      return;
    }
    if (request.url?.includes('/resolve/')) {
      response
        .writeHead(302, {
          location: '/blob',
          'x-linked-etag': `"${sha256}"`,
          'x-linked-size': String(body.length),
          'content-length': '0',
          connection: 'close',
        })
        .end();
      return;
    }
    transfers += 1;
    const from = Number(/bytes=(\d+)-/.exec(request.headers.range ?? '')?.[1] ?? 0);
    const headers = { 'content-length': String(body.length - from), connection: 'close' };
    if (from > 0) {
      response.writeHead(206, { ...headers, 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` });
    } else {
      response.writeHead(200, headers);
    }
    if (transfers === 1) {
      // Dripped, so the app's progress reports (a few a second) see it arrive.
      const half = Math.floor(body.length / 2);
      let sent = 0;
      const drip = setInterval(() => {
        const next = Math.min(half, sent + 64 * 1024);
        response.write(body.subarray(sent, next));
        sent = next;
        if (sent >= half) clearInterval(drip);
      }, 100);
      const stall = setTimeout(() => response.destroy(), 30_000);
      response.on('close', () => {
        clearInterval(drip);
        clearTimeout(stall);
      });
      return;
    }
    setTimeout(() => response.end(body.subarray(from)), resumeDelayMs);
  });
  await new Promise((ready) => server.listen(0, '127.0.0.1', ready));
  return { server, port: server.address().port, transfers: () => transfers };
}

function saveScreenshot(name) {
  execFileSync('import', ['-window', 'root', join(screenshots, name)], { timeout: 15_000 });
}

test('first run: download a model from the catalog with progress, cancel, resume, then use it', async () => {
  assert.ok(existsSync(app), `the app is not built at ${app}`);
  mkdirSync(screenshots, { recursive: true });
  const modelDir = mkdtempSync(join(tmpdir(), 'cria-e2e-model-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'cria-e2e-download-'));
  const model = writeFixtureModel(modelDir);
  const hub = await serveModel(model, 2500);
  const driverProcess = spawn('tauri-driver', ['--port', String(port), '--native-port', String(port + 1)], {
    env: {
      ...process.env,
      CRIA_DATA_DIR: dataDir,
      // The real engine, so the downloaded model can be loaded.
      CRIA_TEST_ENGINE: '',
      CRIA_TEST_CATALOG_BASE_URL: `http://localhost:${hub.port}`,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    await waitForDriver(driverUrl);
    const driver = await WebDriver.connect(driverUrl, {
      alwaysMatch: { 'tauri:options': { application: app } },
    });
    try {
      const chooser = await driver.waitFor('the model chooser', async () => {
        const text = await driver.textOf('[data-testid="open-models"]');
        return text?.includes('Choose a model') ? driver.find('[data-testid="open-models"]') : null;
      });
      await driver.click(chooser);
      const entry = `[data-testid="catalog-entry"][data-entry-id="${ENTRY}"]`;
      const entryText = await driver.waitFor('the catalog entry with its verdict', async () => {
        const text = await driver.textOf(entry);
        return text && /fits on GPU|hybrid|CPU only|does not fit/i.test(text) ? text : null;
      }, 60_000);
      assert.match(entryText, /Q4_K_M · [\d.]+ (MB|GB) · vision: no/);
      await driver.execute('document.querySelector(arguments[0]).scrollIntoView({ block: "center" })', [entry]);
      await driver.click(await driver.find(`${entry} [data-testid="start-download"]`));

      // Half the file arrives, then the server stalls: the bar shows bytes of the total.
      const half = Math.floor(model.length / 2);
      const progress = await driver.waitFor('progress up to the stall', async () => {
        const text = await driver.textOf(`${entry} [data-testid="download-progress"]`);
        return text && /\d+ (kB|MB) of [\d.]+ (MB|GB)/.test(text) && !text.startsWith('0 B') ? text : null;
      });
      assert.ok(progress.includes(ENTRY_FILE), progress);
      const part = join(dataDir, 'library/models', ENTRY, `${ENTRY_FILE}.part`);
      await driver.waitFor('the first half on disk', () => existsSync(part) && statSync(part).size >= half);
      await sleep(400);
      saveScreenshot('catalog-download.png');

      await driver.click(await driver.find(`${entry} [data-testid="cancel-download"]`));
      const cancelled = await driver.waitFor('the cancelled state', async () => {
        const phase = await driver.execute(
          'return document.querySelector(arguments[0])?.dataset.phase ?? null',
          [`${entry} [data-testid="download-state"]`],
        );
        return phase === 'cancelled' ? driver.textOf(`${entry} [data-testid="download-state"]`) : null;
      });
      assert.match(cancelled, /Cancelled at .*partial file is kept/);
      assert.equal(readFileSync(part).length, half, 'the partial file is kept on disk');

      // Resume: the server sends the rest after a pause, long enough to read the label.
      await driver.click(await driver.find(`${entry} [data-testid="start-download"]`));
      const resumed = await driver.waitFor('the resume label', () =>
        driver.textOf(`${entry} [data-testid="download-resumed"]`),
      );
      assert.match(resumed, /^Resuming from \d+ kB$/);
      saveScreenshot('catalog-download-resumed.png');
      const use = await driver.waitFor(
        'the finished download',
        () => driver.find(`${entry} [data-testid="use-downloaded"]`).catch(() => null),
        30_000,
      );
      assert.deepEqual(readFileSync(join(dataDir, 'library/models', ENTRY, ENTRY_FILE)), model);
      assert.equal(existsSync(part), false);
      assert.equal(hub.transfers(), 2, 'one stalled transfer and one resumed one');

      await driver.click(use);
      const loaded = await driver.waitFor('the model to load', () => driver.textOf('[data-testid="loaded-model"]'), 60_000);
      assert.match(loaded, /^Loaded: .+ · \d+ tokens of context/);
      const header = await driver.textOf('[data-testid="open-models"]');
      assert.doesNotMatch(header, /Choose a model/);
    } finally {
      await driver.quit();
    }
  } finally {
    hub.server.closeAllConnections();
    hub.server.close();
    await stopDriver(driverProcess, dataDir);
    rmSync(modelDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
});
