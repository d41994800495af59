// End-to-end: a PDF attached in the real app, a reply citing one of its pages, the page
// preview the citation opens, then regenerate, the branch arrows, and editing a message.
// The PDF and the scripted reply are generated here; the scripted engine streams the reply.
// The file goes in through the composer's path field, which adds it to the same tray the
// window's native drop handler fills.
//
// Screenshots: docs/screenshots/chat-pdf-citation.png and branches.png.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { stopDriver } from './processes.mjs';
import { WebDriver, waitForDriver } from './webdriver.mjs';

const root = resolve(import.meta.dirname, '../..');
const app = resolve(process.env.CRIA_APP ?? join(root, 'target/debug/cria-app'));
const screenshots = join(root, 'docs/screenshots');
// Apart from app.test.mjs (4444/4445, 4460/4461) and ui.test.mjs (4446/4447).
const port = 4450;
const driverUrl = `http://127.0.0.1:${port}`;
const work = mkdtempSync(join(tmpdir(), 'cria-e2e-attach-'));

after(() => rmSync(work, { recursive: true, force: true }));

/**
 * A small text PDF, one string per page, written with correct cross-reference offsets (the
 * reader checks them). Helvetica is one of the standard fonts, so nothing is embedded.
 */
function makePdf(pages) {
  const objects = [];
  const add = (body) => {
    objects.push(body);
    return objects.length;
  };
  const catalog = add(null);
  const pageTree = add(null);
  const font = add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>');
  const pageIds = pages.map((lines) => {
    const text = lines
      .map((line, i) => `BT /F1 12 Tf 72 ${720 - i * 18} Td (${line.replace(/[\\()]/g, (c) => `\\${c}`)}) Tj ET`)
      .join('\n');
    const content = add(`<< /Length ${Buffer.byteLength(text)} >>\nstream\n${text}\nendstream`);
    return add(
      `<< /Type /Page /Parent ${pageTree} 0 R /MediaBox [0 0 612 792] ` +
        `/Resources << /Font << /F1 ${font} 0 R >> >> /Contents ${content} 0 R >>`,
    );
  });
  objects[catalog - 1] = `<< /Type /Catalog /Pages ${pageTree} 0 R >>`;
  objects[pageTree - 1] = `<< /Type /Pages /Kids [${pageIds.map((id) => `${id} 0 R`).join(' ')}] /Count ${pageIds.length} >>`;
  let pdf = '%PDF-1.4\n';
  const offsets = objects.map((body, i) => {
    const offset = Buffer.byteLength(pdf);
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
    return offset;
  });
  const xref = Buffer.byteLength(pdf);
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  pdf += offsets.map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join('');
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root ${catalog} 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return pdf;
}

/** Captures the display (after a moment, so the last change is painted). */
async function saveScreenshot(name) {
  mkdirSync(screenshots, { recursive: true });
  await sleep(400);
  execFileSync('import', ['-window', 'root', join(screenshots, name)], { timeout: 15_000 });
}

async function lastReplyDone(driver, what) {
  return driver.waitFor(
    what,
    async () => {
      const status = await driver.execute(
        'const r = [...document.querySelectorAll(\'[data-testid="message-assistant"]\')].at(-1); return r ? r.dataset.status : null;',
      );
      return status === 'complete' ? status : null;
    },
    60_000,
  );
}

/** The text of `selector` in the message of the given role that is `index` from the end. */
function textIn(driver, role, selector, fromEnd = 1) {
  return driver.execute(
    `const m = [...document.querySelectorAll('[data-testid="message-${role}"]')].at(-arguments[1]);
     const el = m && m.querySelector(arguments[0]); return el ? el.textContent.trim() : null;`,
    [selector, fromEnd],
  );
}

async function clickIn(driver, role, selector, fromEnd = 1) {
  const clicked = await driver.execute(
    `const m = [...document.querySelectorAll('[data-testid="message-${role}"]')].at(-arguments[1]);
     const el = m && m.querySelector(arguments[0]); if (!el || el.disabled) return false; el.click(); return true;`,
    [selector, fromEnd],
  );
  assert.ok(clicked, `${selector} in the ${role} message can be clicked`);
}

test('a PDF citation opens its page; regenerate, branch arrows and edit', async () => {
  assert.ok(existsSync(app), `the app is not built at ${app}`);
  const pdfPath = join(work, 'harvest-report.pdf');
  writeFileSync(
    pdfPath,
    makePdf([
      ['Harvest report 2025', 'Prepared by the village cooperative.', 'Page one covers the weather.'],
      ['Results', 'The rice harvest doubled to 4,200 tonnes.', 'Rain in June came two weeks early.'],
    ]),
  );
  const replyPath = join(work, 'reply.md');
  writeFileSync(replyPath, 'The report says the **rice harvest doubled** to 4,200 tonnes [p. 2].\n');
  const driverProcess = spawn('tauri-driver', ['--port', String(port), '--native-port', String(port + 1)], {
    env: { ...process.env, CRIA_DATA_DIR: join(work, 'data'), CRIA_TEST_ENGINE: `scripted-file:${replyPath}` },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    await waitForDriver(driverUrl);
    const driver = await WebDriver.connect(driverUrl, { alwaysMatch: { 'tauri:options': { application: app } } });
    try {
      // Attach: the path goes to the same tray the native drop fills.
      await driver.click(await driver.waitFor('the attach button', () => driver.find('[data-testid="attach-button"]')));
      await driver.type(await driver.waitFor('the path field', () => driver.find('[data-testid="attach-path"]')), pdfPath);
      await driver.click(await driver.find('[data-testid="attach-add"]'));
      const chip = await driver.waitFor('the chip', () => driver.textOf('[data-testid="attachment-chip"] .name'));
      assert.equal(chip, 'harvest-report.pdf');
      // The backend reads the file as soon as it is attached: the chip counts its pages before sending.
      const trayPages = await driver.waitFor('the page count on the chip before sending', () =>
        driver.textOf('.composer-area [data-testid="attachment-pages"]'),
      );
      assert.equal(trayPages, '2 pages');

      await driver.type(await driver.find('[data-testid="composer-input"]'), 'What happened to the harvest?');
      await driver.click(await driver.find('[data-testid="send"]'));
      await lastReplyDone(driver, 'the cited reply');
      // The sent message carries its chip with the page count from the stored document.
      const pages = await driver.waitFor('the page count on the sent chip', () =>
        textIn(driver, 'user', '[data-testid="attachment-pages"]'),
      );
      assert.equal(pages, '2 pages');

      // The citation is a button (the [p. 2] text is gone), and opens page 2.
      const label = await driver.waitFor('the citation button', () => textIn(driver, 'assistant', 'button.citation'));
      assert.equal(label, 'p. 2');
      await clickIn(driver, 'assistant', 'button.citation');
      const page = await driver.waitFor('the page preview', () => driver.textOf('[data-testid="page-preview-text"]'));
      assert.match(page, /rice harvest doubled to 4,200 tonnes/);
      assert.match(await driver.textOf('[data-testid="page-preview"]'), /Page 2 of 2/);
      await saveScreenshot('chat-pdf-citation.png');
      await driver.execute('document.querySelector(\'[aria-label="Close page preview"]\').click();');

      // Regenerate: a second reply beside the first, "2/2".
      await clickIn(driver, 'assistant', '[data-testid="regenerate"]');
      await lastReplyDone(driver, 'the regenerated reply');
      const second = await driver.waitFor('the branch arrows', () =>
        textIn(driver, 'assistant', '[data-testid="branch-position"]'),
      );
      assert.equal(second, '2/2');
      await clickIn(driver, 'assistant', '[data-testid="branch-previous"]');
      await driver.waitFor('the first reply again', async () =>
        (await textIn(driver, 'assistant', '[data-testid="branch-position"]')) === '1/2' ? true : null,
      );
      // The first reply still cites its page.
      assert.equal(await textIn(driver, 'assistant', 'button.citation'), 'p. 2');

      // Edit the question: a new branch of the user message, with its own reply.
      await clickIn(driver, 'user', '[data-testid="edit-message"]');
      await driver.waitFor('the inline editor', () => driver.find('[data-testid="edit-input"]'));
      await driver.execute(`
        const editor = document.querySelector('[data-testid="edit-input"]');
        editor.value = 'How much rice was harvested?';
        editor.dispatchEvent(new Event('input', { bubbles: true }));`);
      await driver.click(await driver.find('[data-testid="edit-send"]'));
      await driver.waitFor('the edited message', async () =>
        (await textIn(driver, 'user', '.text')) === 'How much rice was harvested?' ? true : null,
      );
      await lastReplyDone(driver, 'the reply to the edited message');
      assert.equal(await textIn(driver, 'user', '[data-testid="branch-position"]'), '2/2');
      await clickIn(driver, 'user', '[data-testid="branch-previous"]');
      await driver.waitFor('the original question again', async () =>
        (await textIn(driver, 'user', '.text')) === 'What happened to the harvest?' ? true : null,
      );
      assert.equal(await textIn(driver, 'assistant', '[data-testid="branch-position"]'), '1/2');
      await saveScreenshot('branches.png');
    } finally {
      await driver.quit();
    }
  } finally {
    await stopDriver(driverProcess, join(work, 'data'));
  }
});
