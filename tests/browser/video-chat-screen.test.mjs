// The Two Way Video Chat & Screen application (/video-chat-screen), used as people use it:
// alice (Chromium) and bob (Firefox ESR) join by invite link and see each other; alice clicks
// Share (headless Chromium hands getDisplayMedia a fake screen) and bob decodes her screen in
// its own display; alice clicks "Stop sharing" and it goes; she shares again and stops with the
// browser's own stop (the captured track ends); bob clicks Share too: headless Firefox has no
// screen to capture, so his page must say so in words (if it can share, alice must see it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertNoConsoleErrors, inviteLink, join, openApp, sendChat, waitChatLine, waitCodec, waitDecoding,
  waitLive, waitTileGone,
} from './lib/apps.mjs';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';

const CASE_TIMEOUT_MS = 150000;

async function shareState(page) {
  return page.$eval('#shareBtn', (b) => `${b.dataset.state}|${b.textContent}|${b.disabled}`);
}

async function waitShareButton(page, who, state) {
  await waitInPage(page, `${who}: Share button ${state}`, (s) => {
    const b = document.getElementById('shareBtn');
    return b.dataset.state === s && !b.disabled;
  }, state);
}

test('Video Chat & Screen: share a screen (Chromium) seen by the other side (Firefox ESR), stop by button and by the browser',
  { timeout: CASE_TIMEOUT_MS }, () => withHarness('video chat screen', async (h) => {
    const server = await h.startServer();
    const chromium = await h.launch('chromium');
    const firefox = await h.launch('firefox');
    const alice = await h.newPage(chromium, 'alice/chromium');
    const bob = await h.newPage(firefox, 'bob/firefox');

    await openApp(alice, `${server.httpUrl}video-chat-screen`);
    assert.equal(await shareState(alice), 'idle|Share screen|true', 'Share is disabled before joining');
    await join(alice, 'alice');
    await waitLive(alice, 'alice');
    await openApp(bob, await inviteLink(alice));
    await join(bob, 'bob');
    await waitLive(bob, 'bob');
    await waitDecoding(bob, 'bob', 'alice');
    await waitDecoding(alice, 'alice', 'bob');
    await screenshot(alice, 'screen-01-alice-connected');

    // alice shares her screen: a second, video-only stream named ...-screen.
    await waitShareButton(alice, 'alice', 'idle');
    await alice.click('#shareBtn');
    await waitShareButton(alice, 'alice', 'sharing');
    assert.equal(await shareState(alice), 'sharing|Stop sharing|false');
    const shared = await waitDecoding(bob, 'bob', 'alice', { screen: true });
    assert.ok(shared.width >= 320, `bob sees alice's screen at ${shared.width}x${shared.height}`);
    await waitCodec(bob, 'bob', 'alice', 'VP8', { screen: true });
    const name = await bob.$eval('figure.remote.screen[data-login="alice"]', (t) => t.dataset.stream);
    assert.match(name, /-alice-[0-9a-f]{4}-screen$/, `screen stream name ${name}`);
    assert.equal(await bob.$eval('figure.remote.screen .who', (e) => e.textContent), "alice's screen");
    await waitDecoding(bob, 'bob', 'alice'); // her camera keeps playing beside it
    await screenshot(bob, 'screen-02-bob-sees-alice-screen');
    await screenshot(alice, 'screen-03-alice-sharing');

    await sendChat(bob, 'I can see your screen');
    await waitChatLine(alice, 'alice', 'bob', 'I can see your screen');

    // Stop with the page's button: bob's screen display goes, his camera view of alice stays.
    await alice.click('#shareBtn');
    await waitShareButton(alice, 'alice', 'idle');
    await waitTileGone(bob, 'bob', 'alice', { screen: true });
    await waitDecoding(bob, 'bob', 'alice');

    // Share again, then stop with the browser's own "Stop sharing" (the captured track ends).
    await alice.click('#shareBtn');
    await waitShareButton(alice, 'alice', 'sharing');
    await waitDecoding(bob, 'bob', 'alice', { screen: true });
    await alice.evaluate(() => {
      const track = window.webcallApp.share.getMediaStream().getVideoTracks()[0];
      track.stop();
      track.dispatchEvent(new Event('ended'));
    });
    await waitShareButton(alice, 'alice', 'idle');
    await waitTileGone(bob, 'bob', 'alice', { screen: true });
    await screenshot(bob, 'screen-04-bob-after-share-stopped');

    // bob tries to share from headless Firefox.
    await waitShareButton(bob, 'bob', 'idle');
    await bob.click('#shareBtn');
    const outcome = await waitInPage(bob, 'bob: share outcome', () => {
      const n = document.getElementById('notice');
      const b = document.getElementById('shareBtn');
      if (!n.hidden && n.textContent) return `notice: ${n.textContent}`;
      return b.dataset.state === 'sharing' ? 'sharing' : false;
    });
    if (outcome === 'sharing') {
      await waitDecoding(alice, 'alice', 'bob', { screen: true });
    } else {
      assert.match(outcome, /^notice: (No screen was found; screen sharing is not possible here\.|Screen sharing was cancelled or not allowed\.)$/);
      await waitShareButton(bob, 'bob', 'idle');
    }
    await screenshot(bob, 'screen-05-bob-share-attempt');
    console.log(`# headless Firefox screen share: ${outcome}`);

    assertNoConsoleErrors(h, [alice, bob]);
  }));
