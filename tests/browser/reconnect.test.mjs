// The room SDK's automatic re-join, seen through the Conference page: alice and bob (Chromium)
// are in a call when the server restarts on the same address. Both pages show RECONNECTING,
// the SDK reconnects, joins the room again and publishes the cameras again, and each person
// decodes the other's video again, without anyone clicking anything.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inviteLink, join, openApp, waitChatLine, waitDecoding, waitLive } from './lib/apps.mjs';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';
import { startServer } from './lib/server.mjs';

const CASE_TIMEOUT_MS = 120000;

test('Conference: after a server restart both people are reconnected, re-joined and see each other again',
  { timeout: CASE_TIMEOUT_MS }, () => withHarness('reconnect', async (h) => {
    const server = await h.startServer();
    const browser = await h.launch('chromium');
    const alice = await h.newPage(browser, 'alice');
    const bob = await h.newPage(browser, 'bob');
    await openApp(alice, `${server.httpUrl}conference`);
    await join(alice, 'alice');
    await waitLive(alice, 'alice');
    await openApp(bob, await inviteLink(alice));
    await join(bob, 'bob');
    await waitLive(bob, 'bob');
    await waitDecoding(alice, 'alice', 'bob');
    await waitDecoding(bob, 'bob', 'alice');

    await server.stop();
    for (const [page, who] of [[alice, 'alice'], [bob, 'bob']]) {
      await waitInPage(page, `${who}: RECONNECTING`, () => document.getElementById('status').textContent === 'RECONNECTING');
    }
    await screenshot(alice, 'reconnect-01-alice-reconnecting');

    h.server = await startServer({ reuse: server });
    for (const [page, who, other] of [[alice, 'alice', 'bob'], [bob, 'bob', 'alice']]) {
      await waitInPage(page, `${who}: ESTABLISHED again`, () => document.getElementById('status').textContent === 'ESTABLISHED', null, 30000);
      await waitChatLine(page, who, '', 'Reconnected to the room');
      await waitLive(page, who);
      await waitDecoding(page, who, other);
    }
    assert.equal(await alice.$eval('#notice', (n) => n.hidden), true, 'the reconnecting notice is gone');
    await screenshot(alice, 'reconnect-02-alice-back');
    // Only the browser's own lines about refused WebSocket attempts while the server was down.
    for (const page of [alice, bob]) {
      const errors = h.consoleErrors(page).filter((l) => !/WebSocket connection to '.*' failed/.test(l));
      assert.deepEqual(errors, [], `${page.__label}: no console errors`);
    }
  }));
