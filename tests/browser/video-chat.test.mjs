// The Two Way Video Chat application (/video-chat), used as people use it: alice (Chromium)
// joins an empty room and publishes H.264; bob (Firefox ESR, no H.264) opens her invite link
// and joins, so alice's page switches her camera to VP8 and both decode each other; chat both
// ways; carol (a third browser context) is told the room is full; the layout puts the other
// person large and you small in the lower left, also on a phone-sized screen; bob clicks
// Leave and his tile goes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertNoConsoleErrors, inviteLink, join, openApp, sendChat, waitChatLine, waitCodec, waitDecoding,
  waitLive, waitNotice, waitTileGone,
} from './lib/apps.mjs';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';

const CASE_TIMEOUT_MS = 150000;

/** Where the local and the remote tile sit, in CSS pixels. */
function layout() {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
  };
  return {
    local: box(document.getElementById('localTile')),
    remote: box(document.querySelector('#remotes figure.remote')),
    pageWidth: document.documentElement.scrollWidth,
    viewWidth: window.innerWidth,
  };
}

test('Two Way Video Chat: Chromium + Firefox ESR (VP8 after a switch from H.264), chat, a third is turned away, leave',
  { timeout: CASE_TIMEOUT_MS }, () => withHarness('video chat', async (h) => {
    const server = await h.startServer();
    const chromium = await h.launch('chromium');
    const firefox = await h.launch('firefox');
    const alice = await h.newPage(chromium, 'alice/chromium');
    const bob = await h.newPage(firefox, 'bob/firefox');

    await openApp(alice, `${server.httpUrl}video-chat`);
    await join(alice, 'alice');
    assert.equal(await waitLive(alice, 'alice'), 'H264', 'alone in the room, Chromium sends H.264');
    await screenshot(alice, 'video-chat-01-alice-joined');

    const link = await inviteLink(alice);
    assert.match(link, /\/video-chat\?roomName=room-[0-9a-f]{6}$/, 'invite link names the new room');
    await openApp(bob, link);
    await join(bob, 'bob');
    assert.equal(await waitLive(bob, 'bob'), 'VP8', 'Firefox ESR sends VP8');

    // alice sees bob's VP8 stream and re-publishes as VP8; both decode.
    await waitChatLine(alice, 'alice', '', 'Your video is now sent as VP8 so that everyone can see it');
    await waitInPage(alice, 'alice: own camera live as VP8', () => {
      const t = document.getElementById('localTile');
      return t.dataset.status === 'PUBLISHING' && t.dataset.codec === 'VP8';
    });
    await waitDecoding(bob, 'bob', 'alice');
    await waitDecoding(alice, 'alice', 'bob');
    await waitCodec(bob, 'bob', 'alice', 'VP8');
    await waitCodec(alice, 'alice', 'bob', 'VP8');
    await screenshot(alice, 'video-chat-02-alice-connected');
    await screenshot(bob, 'video-chat-03-bob-connected');

    // The other person is large, you are small in the lower-left corner over it.
    const l = await alice.evaluate(layout);
    assert.ok(l.local.width < l.remote.width / 2, `local tile is small (${l.local.width} vs ${l.remote.width})`);
    assert.ok(l.local.left - l.remote.left < 40 && l.remote.bottom - l.local.bottom < 40,
      `local tile sits in the lower left of the remote one: ${JSON.stringify(l)}`);

    await sendChat(alice, 'hi bob');
    await waitChatLine(bob, 'bob', 'alice', 'hi bob');
    await sendChat(bob, 'hello alice, from Firefox');
    await waitChatLine(alice, 'alice', 'bob', 'hello alice, from Firefox');

    // A third person on the same link: the page allows two.
    const carol = await h.newPage(chromium, 'carol/chromium');
    await openApp(carol, link);
    await carol.click('#login');
    await carol.type('#login', 'carol');
    await carol.click('#joinBtn');
    const full = await waitNotice(carol, 'carol', /full/);
    assert.match(full, /^Room “room-[0-9a-f]{6}” is full: it already has 2 participants and this page allows 2\./);
    await screenshot(carol, 'video-chat-04-carol-room-full');
    await waitChatLine(alice, 'alice', '', 'carol left');

    // A phone-sized screen: no sideways scrolling, the small local tile still in the corner.
    await alice.setViewport({ width: 390, height: 844 });
    await waitInPage(alice, 'alice: relayout at 390 px', () => window.innerWidth === 390);
    const p = await alice.evaluate(layout);
    assert.ok(p.pageWidth <= 390, `no horizontal scrolling on a phone (page is ${p.pageWidth} px wide)`);
    assert.ok(p.local.width < p.remote.width && p.remote.width > 300, `phone layout: ${JSON.stringify(p)}`);
    await screenshot(alice, 'video-chat-05-alice-phone');
    await alice.setViewport({ width: 1280, height: 800 });

    await bob.click('#leaveBtn');
    await waitTileGone(alice, 'alice', 'bob');
    await waitChatLine(alice, 'alice', '', 'bob left');
    await screenshot(alice, 'video-chat-06-alice-after-bob-left');

    assertNoConsoleErrors(h, [alice, bob, carol]);
  }));
