// Start-up benchmark of the built app (not a test: nothing is asserted). For each launch: the
// time from the app's process start to its window being mapped, to the UI's `cria-interactive`
// performance mark, and the resident memory of each of its processes 6 s after the start.
//
//   CRIA_APP=target-release/release/cria-app CRIA_FIXTURE_WRITER=target/debug/examples/llama4_fixture \
//     xvfb-run --auto-servernum --server-args="-screen 0 1100x760x24" \
//     node tests/e2e/tools/startup-bench.mjs [RUNS]
//
// Two data folders: an empty one (first run, fresh for each launch), and one that holds the tiny
// Llama 4 fixture (text + mmproj) as the active model and a few conversations with real replies,
// prepared once through the window. Driven launches go through tauri-driver (the only way to read
// the UI's mark); plain launches start the app directly, as a user does, without automation. The
// launch time is the app process's own start time from /proc, so no driver's start-up is counted. The window counts as mapped when `xdotool search
// --onlyvisible` first finds it (polled every 10 ms; `--sync` polls only twice a second).
//
// The app's own start-up log lines (data folder open, window created, page loaded) are read
// from the data folder's log and shown against the same process start. Prints one line per
// launch and a JSON summary (medians) on the last line.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { commandLine, memoryKiB, processesWith, startedAtMs, stopLeftovers } from '../processes.mjs';
import { WebDriver, waitForDriver } from '../webdriver.mjs';

const root = resolve(import.meta.dirname, '../../..');
const app = resolve(process.env.CRIA_APP ?? join(root, 'target/release/cria-app'));
const writer = process.env.CRIA_FIXTURE_WRITER ?? join(root, 'target/debug/examples/llama4_fixture');
const runs = Number(process.argv[2] ?? 3);
// Apart from every E2E test's ports.
const port = 4490;
const driverUrl = `http://127.0.0.1:${port}`;
const IDLE_AFTER_MS = 6_000;
const run = promisify(execFile);

if (!existsSync(app)) throw new Error(`the app is not built at ${app}`);
if (!process.env.DISPLAY) throw new Error('no display: run under xvfb-run');

async function withDriver(dataDir, body) {
  const driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(port + 1)], {
    env: { ...process.env, CRIA_DATA_DIR: dataDir, CRIA_TEST_ENGINE: '' },
    // The app logs to its data folder too; the phases are read from there.
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  try {
    await waitForDriver(driverUrl);
    return await body();
  } finally {
    driver.kill('SIGTERM');
    await new Promise((done) => (driver.exitCode !== null ? done() : driver.once('exit', done)));
    await stopLeftovers(`CRIA_DATA_DIR=${dataDir}`);
  }
}

/** The epoch ms at which a visible window titled exactly "Cria" is first found. */
async function windowMappedAt(deadlineMs) {
  while (Date.now() < deadlineMs) {
    try {
      const { stdout } = await run('xdotool', ['search', '--onlyvisible', '--name', '^Cria$']);
      if (stdout.trim()) return Date.now();
    } catch {
      // Exit status 1: nothing found yet.
    }
    await sleep(10);
  }
  return null;
}

/**
 * The app's own start-up lines (`start-up: …`) logged since `sinceMs`, as milliseconds after
 * `sinceMs` by their wall-clock stamps: data folder open, window created, page loaded.
 */
function startupPhases(dataDir, sinceMs) {
  const logs = join(dataDir, 'logs');
  const phases = {};
  for (const name of existsSync(logs) ? readdirSync(logs) : []) {
    for (const line of readFileSync(join(logs, name), 'utf8').split('\n')) {
      const found = /^(\S+Z)\s+INFO cria_app: start-up: ([a-z ]+?)\s+elapsed=/.exec(line);
      if (!found) continue;
      const at = Date.parse(found[1]);
      if (at >= sinceMs - 5) phases[found[2]] = Math.round(at - sinceMs);
    }
  }
  return phases;
}

/** The data folder with a model and conversations, made through the window once. */
async function preparePopulated() {
  const dataDir = mkdtempSync(join(tmpdir(), 'cria-bench-populated-'));
  const modelDir = join(dataDir, '..', `${dataDir.split('/').pop()}-model`);
  mkdirSync(modelDir);
  const model = execFileSync(writer, [modelDir], { encoding: 'utf8' }).trim();
  await withDriver(dataDir, async () => {
    const driver = await WebDriver.connect(driverUrl, { alwaysMatch: { 'tauri:options': { application: app } } });
    try {
      await driver.click(await driver.waitFor('the model chooser', () => driver.find('[data-testid="open-models"]')));
      await driver.type(await driver.waitFor('the model import', () => driver.find('[data-testid="model-path"]')), model);
      await driver.click(await driver.find('[data-testid="import-model"]'));
      await driver.waitFor('the model to load', () => driver.textOf('[data-testid="loaded-model"]'), 60_000);
      await driver.execute('window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }))');
      for (const question of ['Plan a weekend in Busan', 'How do I keep sourdough starter alive?', 'Explain a B-tree']) {
        await driver.execute('document.querySelector("#sidebar button.new")?.click();');
        await driver.type(await driver.waitFor('the composer', () => driver.find('[data-testid="composer-input"]')), question);
        await driver.click(await driver.find('[data-testid="send"]'));
        await driver.waitFor(
          'the reply',
          () =>
            driver.execute(
              'const r = [...document.querySelectorAll(\'[data-testid="message-assistant"]\')].at(-1); return r && r.dataset.status !== "streaming" ? r.dataset.status : null;',
            ),
          120_000,
        );
      }
    } finally {
      await driver.quit();
    }
  });
  return { dataDir, modelDir };
}

async function launch(dataDir) {
  return withDriver(dataDir, async () => {
    const requested = Date.now();
    const mapped = windowMappedAt(requested + 30_000);
    const driver = await WebDriver.connect(driverUrl, { alwaysMatch: { 'tauri:options': { application: app } } });
    try {
      const pids = processesWith(`CRIA_DATA_DIR=${dataDir}`);
      const appPid = pids.find((pid) => {
        const args = commandLine(pid);
        return args[0]?.endsWith('/cria-app') && !args.includes('--cria-engine-worker');
      });
      if (!appPid) throw new Error('the app process was not found');
      const startedAt = startedAtMs(appPid);
      await driver.waitFor('the composer', () => driver.find('[data-testid="composer-input"]'));
      const mark = await driver.execute(`
        const mark = performance.getEntriesByName('cria-interactive')[0];
        return mark ? { at: performance.timeOrigin + mark.startTime, webview: mark.startTime } : null;`);
      if (!mark) throw new Error('the UI never marked itself interactive');
      const mappedAt = await mapped;
      await sleep(Math.max(0, startedAt + IDLE_AFTER_MS - Date.now()));
      const memory = memoryOf(`CRIA_DATA_DIR=${dataDir}`);
      return {
        phases: startupPhases(dataDir, startedAt),
        mappedMs: mappedAt === null ? null : Math.round(mappedAt - startedAt),
        interactiveMs: Math.round(mark.at - startedAt),
        webviewMs: Math.round(mark.webview),
        memory,
      };
    } finally {
      await driver.quit();
    }
  });
}

/**
 * A launch as a user's: the app started directly (no WebDriver automation), its window and log
 * phases timed, its memory read, then stopped. The UI's mark cannot be read without a driver.
 */
async function plainLaunch(dataDir) {
  const marker = `CRIA_DATA_DIR=${dataDir}`;
  const child = spawn(app, [], { env: { ...process.env, CRIA_DATA_DIR: dataDir, CRIA_TEST_ENGINE: '' }, stdio: 'ignore' });
  try {
    const startedAt = startedAtMs(child.pid);
    const mappedAt = await windowMappedAt(startedAt + 30_000);
    await sleep(Math.max(0, startedAt + IDLE_AFTER_MS - Date.now()));
    return {
      phases: startupPhases(dataDir, startedAt),
      mappedMs: mappedAt === null ? null : Math.round(mappedAt - startedAt),
      memory: memoryOf(marker),
    };
  } finally {
    child.kill('SIGTERM');
    await stopLeftovers(marker);
  }
}

/** Resident memory of each of the app's processes, by a readable name. */
function memoryOf(marker) {
  const memory = {};
  for (const pid of processesWith(marker)) {
    const args = commandLine(pid);
    const name = args.includes('--cria-engine-worker')
      ? 'engine worker'
      : args[0]?.endsWith('/cria-app')
        ? 'cria-app'
        : (args[0] ?? '').split('/').pop();
    if (!['cria-app', 'engine worker', 'WebKitWebProcess', 'WebKitNetworkProcess'].includes(name)) continue;
    memory[name] = memoryKiB(pid);
  }
  return memory;
}

function describe(result) {
  const phases = Object.entries(result.phases)
    .map(([name, ms]) => `${name} ${ms}`)
    .join(', ');
  const memory = Object.entries(result.memory)
    .map(([name, { rss, pss }]) => `${name} RSS ${(rss / 1024).toFixed(0)} MiB (PSS ${(pss / 1024).toFixed(0)})`)
    .join(', ');
  const interactive = result.interactiveMs === undefined ? '' : `, interactive ${result.interactiveMs} ms (webview ${result.webviewMs} ms)`;
  return `window mapped ${result.mappedMs} ms${interactive}; logged: ${phases}; ${memory}`;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const populated = await preparePopulated();
const results = { empty: [], populated: [], 'empty, plain': [], 'populated, plain': [] };
try {
  for (let i = 0; i < runs; i += 1) {
    for (const kind of Object.keys(results)) {
      const dataDir = kind.startsWith('empty') ? mkdtempSync(join(tmpdir(), 'cria-bench-empty-')) : populated.dataDir;
      try {
        const once = () => (kind.endsWith('plain') ? plainLaunch(dataDir) : launch(dataDir));
        // WebKitWebDriver now and then never answers a new session right after another
        // launch on this machine; one retry keeps a run of launches going (and is reported).
        const result = await once().catch((error) => {
          console.log(`${kind} #${i + 1}: launch failed (${error.message}); retrying once`);
          return once();
        });
        results[kind].push(result);
        console.log(`${kind} #${i + 1}: ${describe(result)}`);
      } finally {
        if (kind.startsWith('empty')) rmSync(dataDir, { recursive: true, force: true });
      }
    }
  }
} finally {
  rmSync(populated.dataDir, { recursive: true, force: true });
  rmSync(populated.modelDir, { recursive: true, force: true });
}
const summary = Object.fromEntries(
  Object.entries(results).map(([kind, list]) => [
    kind,
    {
      mappedMs: median(list.map((r) => r.mappedMs)),
      interactiveMs: list[0]?.interactiveMs === undefined ? null : median(list.map((r) => r.interactiveMs)),
      pageLoadedMs: median(list.map((r) => r.phases['page loaded'] ?? NaN)),
      launches: list.length,
    },
  ]),
);
console.log(JSON.stringify(summary));
