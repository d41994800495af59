// End-to-end: the real built app in WebKit under Xvfb, driven through tauri-driver and
// WebKitWebDriver. Starts on an empty data folder, sends a message, checks the streamed reply in
// the DOM, restarts the app and checks the conversation is still listed.
//
// Needs: the app built (CRIA_APP, default target/debug/cria-app), `tauri-driver` and
// `WebKitWebDriver` on PATH, and a display (scripts/e2e.sh starts Xvfb).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { stopDriver } from './processes.mjs';
import { WebDriver, waitForDriver } from './webdriver.mjs';

const root = resolve(import.meta.dirname, '../..');
const app = resolve(process.env.CRIA_APP ?? join(root, 'target/debug/cria-app'));
const screenshots = join(root, 'docs/screenshots');
const port = Number(process.env.TAURI_DRIVER_PORT ?? 4444);
const driverUrl = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(join(tmpdir(), 'cria-e2e-'));

let tauriDriver;

before(async () => {
  assert.ok(existsSync(app), `the app is not built at ${app}`);
  mkdirSync(screenshots, { recursive: true });
  tauriDriver = spawn('tauri-driver', ['--port', String(port)], {
    env: {
      ...process.env,
      CRIA_DATA_DIR: dataDir,
      // The scripted engine echoes the message; tests only. The app's default has no model.
      CRIA_TEST_ENGINE: 'scripted',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitForDriver(driverUrl);
});


after(async () => {
  // SIGTERM lets tauri-driver stop WebKitWebDriver; SIGKILL would orphan it and hang the run.
  if (tauriDriver) await stopDriver(tauriDriver, dataDir);
  rmSync(dataDir, { recursive: true, force: true });
});

/**
 * Saves what the user sees: the X display the app runs on. (WebKitWebDriver's own screenshot
 * command hangs under Xvfb without GPU compositing, so the display is captured instead.)
 */
function saveScreenshot(name) {
  execFileSync('import', ['-window', 'root', join(screenshots, name)], { timeout: 15_000 });
}

function startApp() {
  return WebDriver.connect(driverUrl, {
    alwaysMatch: { 'tauri:options': { application: app } },
  });
}

test('a message streams a reply, and the conversation survives a restart', async () => {
  let driver = await startApp();
  try {
    const input = await driver.waitFor('the composer', () => driver.find('[data-testid="composer-input"]'));
    await driver.type(input, 'Hello from the end-to-end test');
    await driver.click(await driver.find('[data-testid="send"]'));

    // The reply streams word by word; wait for the whole of it and its final state.
    const reply = await driver.waitFor('the assistant reply', async () => {
      const [element] = await driver.findAll('[data-testid="message-assistant"]');
      if (!element) return null;
      return (await driver.attribute(element, 'data-status')) === 'complete' ? element : null;
    });
    assert.equal((await driver.textOf('[data-testid="message-assistant"] .bubble')).trim(), 'Echo: Hello from the end-to-end test');
    // Once finished, the stored reply's figures show under it (the echo engine counts words).
    const stats = await driver.waitFor('the reply stats', () => driver.textOf('[data-testid="reply-stats"]'));
    assert.match(stats, /^\d+ tokens$/);

    // The bubble: the line under it holds the message's actions (Edit).
    assert.equal((await driver.textOf('[data-testid="message-user"] .bubble')).trim(), 'Hello from the end-to-end test');

    const listed = await driver.waitFor('the conversation in the sidebar', async () => {
      const text = await driver.textOf('[data-testid="conversation-list"]');
      return text?.includes('Hello from the end-to-end test') ? text : null;
    });
    assert.match(listed, /Hello from the end-to-end test/);
    saveScreenshot('skeleton-chat.png');
  } finally {
    await driver.quit();
  }

  driver = await startApp();
  try {
    const listed = await driver.waitFor('the conversation list after restart', () =>
      driver.textOf('[data-testid="conversation-list"]'),
    );
    assert.match(listed, /Hello from the end-to-end test/);
    await driver.click(await driver.find('[data-testid="conversation-list"] button'));
    const reply = await driver.waitFor('the stored reply', () =>
      driver.textOf('[data-testid="message-assistant"] .bubble'),
    );
    assert.equal(reply.trim(), 'Echo: Hello from the end-to-end test');
    saveScreenshot('skeleton-restart.png');
  } finally {
    await driver.quit();
  }
});

test('first run: import a Llama 4 GGUF, load it, get a reply from llama.cpp, and a vision-routed reply about an attached picture', async () => {
  const modelDir = mkdtempSync(join(tmpdir(), 'cria-e2e-model-'));
  // The fixture writer is built with the workspace (scripts/test.sh says where); cargo run is
  // the fallback when the test runs on its own.
  const writer = process.env.CRIA_FIXTURE_WRITER;
  const model = (
    writer
      ? execFileSync(writer, [modelDir], { encoding: 'utf8' })
      : execFileSync(
          'cargo',
          ['run', '--quiet', '-p', 'cria-gguf', '--example', 'llama4_fixture', '--', modelDir],
          { cwd: root, encoding: 'utf8' },
        )
  ).trim();
  const realEngineData = mkdtempSync(join(tmpdir(), 'cria-e2e-engine-'));
  // A second tauri-driver whose app runs the real engine (no test double) on its own data.
  // Ports apart from the first driver's (4444, and 4445 for its WebKitWebDriver) and the UI
  // test's (4446, 4447).
  const enginePort = port + 16;
  const engineDriver = spawn(
    'tauri-driver',
    ['--port', String(enginePort), '--native-port', String(enginePort + 1)],
    {
      env: { ...process.env, CRIA_DATA_DIR: realEngineData, CRIA_TEST_ENGINE: '' },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  try {
    await waitForDriver(`http://127.0.0.1:${enginePort}`);
    const driver = await WebDriver.connect(`http://127.0.0.1:${enginePort}`, {
      alwaysMatch: { 'tauri:options': { application: app } },
    });
    try {
      // With no model yet, the header offers to choose one.
      const chooser = await driver.waitFor('the model chooser', async () => {
        const text = await driver.textOf('[data-testid="open-models"]');
        return text?.includes('Choose a model') ? driver.find('[data-testid="open-models"]') : null;
      });
      await driver.click(chooser);
      const pathInput = await driver.waitFor('the first-run model import', () =>
        driver.find('[data-testid="model-path"]'),
      );
      saveScreenshot('first-run.png');
      await driver.type(pathInput, model);
      await driver.click(await driver.find('[data-testid="import-model"]'));
      const loaded = await driver.waitFor(
        'the model to load',
        () => driver.textOf('[data-testid="loaded-model"]'),
        60_000,
      );
      // Named by the file (before the library lists it) or by its general.name afterwards.
      assert.match(loaded, /Cria Llama 4 test fixture|Llama-4-Tiny-Test/i);
      assert.match(loaded, /sees images/, 'the projector beside the model was paired');
      saveScreenshot('model-loaded.png');
      // Esc closes the panel, as a user would.
      await driver.execute('window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }))');

      const input = await driver.find('[data-testid="composer-input"]');
      await driver.type(input, 'Hello, Llama 4');
      await driver.click(await driver.find('[data-testid="send"]'));
      const status = await driver.waitFor(
        'a finished reply from llama.cpp',
        async () => {
          const [reply] = await driver.findAll('[data-testid="message-assistant"]');
          if (!reply) return null;
          const value = await driver.attribute(reply, 'data-status');
          return value === 'streaming' ? null : value;
        },
        120_000,
      );
      // Random weights say nothing sensible, but the reply must come from the real engine
      // and end normally, not fail.
      assert.equal(status, 'complete');
      // The stats line comes from llama.cpp's own timings: the model, TTFT, speed, tokens.
      const stats = await driver.waitFor('the reply stats', () => driver.textOf('[data-testid="reply-stats"]'));
      assert.match(stats, /TTFT \d/, stats);
      // Replies are sampled with a fresh seed: the random-weight fixture may end after one
      // token, and a speed needs two.
      const tokens = Number(/(\d+) tokens?$/.exec(stats)?.[1]);
      assert.ok(tokens >= 1, stats);
      if (tokens >= 2) assert.match(stats, /[\d.]+ tok\/s/, stats);
      saveScreenshot('real-engine-reply.png');

      // A picture goes to the vision path: the model's mmproj encodes it through llama.cpp.
      const picture = join(modelDir, 'shot.png');
      execFileSync('convert', ['-size', '96x64', 'gradient:red-blue', picture]);
      await driver.click(await driver.waitFor('the attach button', () => driver.find('[data-testid="attach-button"]')));
      await driver.type(await driver.waitFor('the path field', () => driver.find('[data-testid="attach-path"]')), picture);
      await driver.click(await driver.find('[data-testid="attach-add"]'));
      await driver.waitFor('the picture chip', () => driver.textOf('[data-testid="attachment-chip"] .name'));
      await driver.type(await driver.find('[data-testid="composer-input"]'), 'What is in this picture?');
      await driver.click(await driver.find('[data-testid="send"]'));
      const lastReply = () =>
        driver.execute(
          `const replies = [...document.querySelectorAll('[data-testid="message-assistant"]')];
           const reply = replies.length >= 2 ? replies.at(-1) : null;
           if (!reply || reply.getAttribute('data-status') === 'streaming') return null;
           const status = reply.getAttribute('data-status');
           const stats = reply.querySelector('[data-testid="reply-stats"]');
           // The stats line appears when the window reloads the finished reply from the store.
           if (status === 'complete' && !(stats && stats.textContent)) return null;
           return { status, stats: stats ? stats.textContent : '' };`,
        );
      const vision = await driver.waitFor('a finished reply about the picture', lastReply, 120_000);
      assert.equal(vision.status, 'complete', JSON.stringify(vision));
      assert.match(vision.stats, /vision/, vision.stats);
      saveScreenshot('vision-reply.png');
    } finally {
      await driver.quit();
    }
  } finally {
    // The real engine's worker can outlive the app's session and keep the runner waiting.
    await stopDriver(engineDriver, realEngineData);
    rmSync(modelDir, { recursive: true, force: true });
    rmSync(realEngineData, { recursive: true, force: true });
  }
});
