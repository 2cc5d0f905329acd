// Per-test harness: owns the webcall server, the static page server, browsers and pages,
// collects browser console output, and prints everything useful when a test fails.
import { launch } from './browsers.mjs';
import { startServer } from './server.mjs';
import { startStaticServer } from './static-server.mjs';

export class Harness {
  constructor(name) {
    this.name = name;
    this.server = null;
    this.statics = null;
    this.browsers = [];
    this.pages = [];       // {label, page, console: [], errors: []}
    this.cleanups = [];
  }

  async startServer(opts) {
    this.server = await startServer(opts);
    return this.server;
  }

  async startStatic() {
    this.statics = await startStaticServer();
    return this.statics;
  }

  async launch(kind, opts) {
    const browser = await launch(kind, opts);
    this.browsers.push(browser);
    return browser;
  }

  /** A new page in a fresh browser context (isolated cookies, storage and media permissions). */
  async newPage(browser, label, { isolated = true } = {}) {
    let page;
    if (isolated && this.pages.some((p) => p.browser === browser)) {
      const ctx = await browser.createBrowserContext();
      page = await ctx.newPage();
    } else {
      const existing = (await browser.pages()).find((p) => p.url() === 'about:blank' && !this.pages.some((q) => q.page === p));
      page = existing || (await browser.newPage());
    }
    const entry = { label, page, browser, console: [], errors: [] };
    page.on('console', (msg) => {
      const line = `${msg.type()}: ${msg.text()}`;
      entry.console.push(line);
      if (msg.type() === 'error') entry.errors.push(line);
    });
    page.on('pageerror', (err) => {
      const line = `pageerror: ${err && err.message ? err.message : err}`;
      entry.console.push(line);
      entry.errors.push(line);
    });
    this.pages.push(entry);
    page.__label = label;
    page.__entry = entry;
    return page;
  }

  consoleErrors(page) {
    return page.__entry ? page.__entry.errors : [];
  }

  async dump(err) {
    const out = [];
    out.push(`\n======== ${this.name}: FAILED: ${err && err.message ? err.message.split('\n')[0] : err}`);
    for (const entry of this.pages) {
      let state = null;
      try {
        state = await Promise.race([
          entry.page.evaluate(() => (window.__state ? JSON.stringify(window.__state) : null)),
          new Promise((r) => setTimeout(() => r('(page did not answer)'), 3000)),
        ]);
      } catch (e) {
        state = `(unavailable: ${e.message})`;
      }
      out.push(`-------- page ${entry.label} (${safeUrl(entry.page)})`);
      if (state) out.push(`__state: ${state}`);
      out.push(`console (${entry.console.length} lines):`);
      for (const l of entry.console.slice(-200)) out.push(`  ${l}`);
    }
    if (this.server) {
      out.push(`-------- webcall server log (${this.server.bin} ${this.server.args.join(' ')})`);
      out.push(this.server.log() || '(empty)');
    }
    out.push(`======== end of ${this.name}\n`);
    console.log(out.join('\n'));
  }

  async close() {
    for (const b of this.browsers.reverse()) {
      try {
        await Promise.race([b.close(), new Promise((r) => setTimeout(r, 10000))]);
      } catch { /* already gone */ }
      try {
        const proc = b.process && b.process();
        if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      } catch { /* already gone */ }
    }
    this.browsers = [];
    if (this.statics) await this.statics.close();
    if (this.server) await this.server.stop();
  }
}

function safeUrl(page) {
  try {
    return page.url();
  } catch {
    return '?';
  }
}

/** Runs fn(harness); on failure prints pages' state, console output and the server log. */
export async function withHarness(name, fn) {
  const h = new Harness(name);
  try {
    await fn(h);
  } catch (err) {
    await h.dump(err);
    throw err;
  } finally {
    await h.close();
  }
}

/**
 * Waits until fn(arg) is truthy in the page (polled every 100 ms), or throws with `what`.
 */
export async function waitInPage(page, what, fn, arg, timeout = 20000) {
  try {
    const handle = await page.waitForFunction(fn, { polling: 100, timeout }, arg);
    const value = await handle.jsonValue().catch(() => true);
    await handle.dispose().catch(() => {});
    return value;
  } catch (err) {
    let snapshot = '';
    try {
      snapshot = await page.evaluate(() => {
        const s = window.__state;
        if (!s) return document.body ? document.body.innerText.slice(0, 2000) : '';
        return JSON.stringify({
          sessionStatus: s.sessionStatus,
          events: s.events.slice(-30),
          streams: s.streams,
          messages: s.messages,
          errors: s.errors,
        });
      });
    } catch { /* page gone */ }
    const e = new Error(`${page.__label || 'page'}: timed out after ${timeout} ms waiting for ${what}` +
      (snapshot ? `\n  page state: ${snapshot}` : '') +
      (err && err.name !== 'TimeoutError' ? `\n  (${err.message})` : ''));
    throw e;
  }
}
