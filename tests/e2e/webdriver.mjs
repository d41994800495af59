// A minimal W3C WebDriver client over fetch: the handful of calls Cria's end-to-end tests need,
// without a test framework's dependency tree.
import { setTimeout as sleep } from 'node:timers/promises';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

/** Waits until tauri-driver answers at `url`: it takes a moment to start listening. */
export async function waitForDriver(url, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(`${url}/status`, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      if (Date.now() > deadline) throw new Error('tauri-driver did not start');
      await sleep(100);
    }
  }
}

export class WebDriver {
  constructor(baseUrl, sessionId) {
    this.baseUrl = baseUrl;
    this.sessionId = sessionId;
  }

  static async connect(baseUrl, capabilities, timeoutMs = 60_000) {
    const body = await request(baseUrl, 'POST', '/session', { capabilities }, timeoutMs);
    return new WebDriver(baseUrl, body.value.sessionId);
  }

  async command(method, path, payload) {
    const body = await request(this.baseUrl, method, `/session/${this.sessionId}${path}`, payload);
    return body.value;
  }

  async find(css) {
    const found = await this.command('POST', '/element', { using: 'css selector', value: css });
    return found[ELEMENT];
  }

  async findAll(css) {
    const found = await this.command('POST', '/elements', { using: 'css selector', value: css });
    return found.map((element) => element[ELEMENT]);
  }

  async text(elementId) {
    return this.command('GET', `/element/${elementId}/text`);
  }

  /** The rendered text of the first element matching `css` (null when there is none). */
  async textOf(css) {
    // innerText through a script: WebKitWebDriver's element-text command returned "" for some
    // visible elements (a list whose buttons clip their text with an ellipsis).
    return this.execute(
      'const element = document.querySelector(arguments[0]); return element ? element.innerText : null;',
      [css],
    );
  }

  async attribute(elementId, name) {
    return this.command('GET', `/element/${elementId}/attribute/${name}`);
  }

  async click(elementId) {
    return this.command('POST', `/element/${elementId}/click`, {});
  }

  async type(elementId, text) {
    return this.command('POST', `/element/${elementId}/value`, { text });
  }

  async execute(script, args = []) {
    return this.command('POST', '/execute/sync', { script, args });
  }

  /** Polls `probe` until it returns a truthy value; fails with `what` after `timeoutMs`. */
  async waitFor(what, probe, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    let lastError;
    while (Date.now() < deadline) {
      try {
        const value = await probe();
        if (value) return value;
      } catch (error) {
        lastError = error;
      }
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
  }

  async quit() {
    await request(this.baseUrl, 'DELETE', `/session/${this.sessionId}`).catch(() => {});
  }
}

async function request(baseUrl, method, path, payload, timeoutMs = 30_000) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: payload === undefined ? undefined : JSON.stringify(payload),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await response.json();
  if (!response.ok || (body.value && body.value.error)) {
    const error = body.value ?? {};
    throw new Error(`${method} ${path}: ${error.error ?? response.status} ${error.message ?? ''}`);
  }
  return body;
}
