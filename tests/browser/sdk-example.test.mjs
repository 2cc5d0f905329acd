// The SDK example of docs/sdk.md, as served by webcall at /sdk-example: the doc must show the
// page verbatim, and the page must work: two people (Chromium) type a name, click Join, see
// each other's video, chat, and one leaves.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { assertNoConsoleErrors } from './lib/apps.mjs';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { REPO_ROOT } from './lib/paths.mjs';
import { screenshot } from './lib/screenshots.mjs';

const CASE_TIMEOUT_MS = 90000;

function remoteFrames(login) {
  const v = document.querySelector(`#videos div[title="${login}"] video`);
  if (!v || !v.srcObject || v.videoWidth === 0) return false;
  if (v.__n === undefined) {
    v.__n = 0;
    const count = () => { v.__n += 1; v.requestVideoFrameCallback(count); };
    v.requestVideoFrameCallback(count);
  }
  return v.__n > 10 ? v.__n : false;
}

test('docs/sdk.md: the complete example is the page at /sdk-example, and it works', { timeout: CASE_TIMEOUT_MS },
  () => withHarness('sdk example', async (h) => {
    const page = fs.readFileSync(path.join(REPO_ROOT, 'src', 'web', 'sdk-example.html'), 'utf8');
    const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'sdk.md'), 'utf8');
    assert.ok(doc.includes('```html\n' + page + '```'), 'docs/sdk.md shows src/web/sdk-example.html verbatim');

    const server = await h.startServer();
    const browser = await h.launch('chromium');
    const alice = await h.newPage(browser, 'alice');
    const bob = await h.newPage(browser, 'bob');
    const room = `ex-${Math.random().toString(16).slice(2, 8)}`;
    for (const [p, login] of [[alice, 'alice'], [bob, 'bob']]) {
      await p.goto(`${server.httpUrl}sdk-example`);
      await p.type('#login', login);
      await p.$eval('#room', (e, r) => { e.value = r; }, room);
      await p.click('#join');
      await waitInPage(p, `${login}: PUBLISHING`, () => document.getElementById('status').textContent === 'PUBLISHING');
    }
    await waitInPage(alice, 'alice: bob\'s video', remoteFrames, 'bob');
    await waitInPage(bob, 'bob: alice\'s video', remoteFrames, 'alice');
    await alice.type('#text', 'hello from the example');
    await alice.click('#send');
    await waitInPage(bob, 'bob: chat line', () =>
      [...document.querySelectorAll('#chat li')].some((li) => li.textContent === 'alice: hello from the example'));
    await screenshot(bob, 'sdk-example-01-bob');
    await alice.click('#leave');
    await waitInPage(bob, 'bob: alice left', () =>
      [...document.querySelectorAll('#chat li')].some((li) => li.textContent === 'alice: left') &&
      !document.querySelector('#videos div[title="alice"]'));
    assertNoConsoleErrors(h, [alice, bob]);
  }));
