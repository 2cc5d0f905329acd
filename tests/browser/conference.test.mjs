// The Conference application (/conference), used as people use it, in headless Chromium with
// fake devices: alice types her login and joins; bob and carol open her invite link in their own
// browser contexts and join; everybody decodes everybody's video (H.264: all are Chromium);
// chat both ways with senders; alice mutes and unmutes; dave finds the room full (the server
// admits 3); carol clicks Leave and her tile goes. Also: the landing page links the apps, and
// readable errors for an unreachable server and a denied camera.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertNoConsoleErrors, inviteLink, join, openApp, sendChat, waitChatLine, waitCodec, waitDecoding,
  waitLive, waitNotice, waitTileGone,
} from './lib/apps.mjs';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';
import { freeTcpPort } from './lib/server.mjs';

const CASE_TIMEOUT_MS = 150000;

test('Conference: three people join by invite link, see each other (H.264), chat, mute, a fourth finds it full, one leaves',
  { timeout: CASE_TIMEOUT_MS }, () => withHarness('conference', async (h) => {
    const server = await h.startServer({ extraArgs: ['--room-capacity', '3'] });
    const browser = await h.launch('chromium');
    const alice = await h.newPage(browser, 'alice');
    const bob = await h.newPage(browser, 'bob');
    const carol = await h.newPage(browser, 'carol');

    const room = `conf-${Math.random().toString(16).slice(2, 8)}`;
    await openApp(alice, `${server.httpUrl}conference?roomName=${room}`);
    await screenshot(alice, 'conference-01-start');
    await join(alice, 'alice');
    assert.equal(await alice.$eval('#status', (e) => e.textContent), 'ESTABLISHED');
    assert.equal(await waitLive(alice, 'alice'), 'H264', 'alone in the room, alice sends H.264');
    await screenshot(alice, 'conference-02-alice-joined');

    const link = await inviteLink(alice);
    assert.match(link, new RegExp(`/conference\\?roomName=${room}$`), 'invite link names the room');
    for (const [page, login] of [[bob, 'bob'], [carol, 'carol']]) {
      await openApp(page, link);
      await join(page, login);
      await waitLive(page, login);
    }

    const people = [[alice, 'alice'], [bob, 'bob'], [carol, 'carol']];
    for (const [page, who] of people) {
      for (const [, from] of people) {
        if (from === who) continue;
        await waitDecoding(page, who, from);
        await waitCodec(page, who, from, 'H264');
      }
      assert.equal(await page.$eval('#localTile', (t) => t.dataset.codec), 'H264', `${who} sends H.264`);
    }
    for (const [page, who] of people) await screenshot(page, `conference-03-${who}-all-connected`);

    // Chat: every line reaches the others with its sender.
    await sendChat(alice, 'hello from alice');
    await waitChatLine(bob, 'bob', 'alice', 'hello from alice');
    await waitChatLine(carol, 'carol', 'alice', 'hello from alice');
    await sendChat(bob, 'bob here');
    await waitChatLine(alice, 'alice', 'bob', 'bob here');
    await waitChatLine(carol, 'carol', 'bob', 'bob here');
    await sendChat(carol, 'and carol');
    await waitChatLine(alice, 'alice', 'carol', 'and carol');
    await waitChatLine(alice, 'alice', 'alice', 'hello from alice');
    for (const page of [alice, bob, carol]) {
      const lines = await page.$$eval('#chatLog li:not(.system)', (ls) => ls.length);
      assert.equal(lines, 3, `${page.__label} has exactly 3 chat lines`);
    }

    // Mute and unmute alice's audio and video: the buttons flip and her tracks are disabled.
    const tracks = () => alice.evaluate(() => {
      const v = document.querySelector('#localDisplay video');
      return v.srcObject.getTracks().map((t) => `${t.kind}:${t.enabled}`).sort().join(' ');
    });
    await alice.click('#muteAudioBtn');
    await alice.click('#muteVideoBtn');
    assert.equal(await tracks(), 'audio:false video:false');
    assert.equal(await alice.$eval('#muteAudioBtn', (b) => `${b.textContent}|${b.getAttribute('aria-pressed')}`), 'Unmute mic|true');
    assert.equal(await alice.$eval('#muteVideoBtn', (b) => `${b.textContent}|${b.getAttribute('aria-pressed')}`), 'Start video|true');
    await screenshot(alice, 'conference-04-alice-muted');
    await alice.click('#muteAudioBtn');
    await alice.click('#muteVideoBtn');
    assert.equal(await tracks(), 'audio:true video:true');
    await waitDecoding(bob, 'bob', 'alice');

    // A fourth person: the server admits 3, the page says the room is full.
    const dave = await h.newPage(browser, 'dave');
    await openApp(dave, link);
    await dave.click('#login');
    await dave.type('#login', 'dave');
    await dave.click('#joinBtn');
    const full = await waitNotice(dave, 'dave', /full/);
    assert.equal(full, `Room “${room}” is full: it admits 3 participants. Try another room.`);
    assert.equal(await dave.$eval('#status', (e) => e.textContent), 'DISCONNECTED');
    await waitInPage(dave, 'dave: Join enabled again', () => !document.getElementById('joinBtn').disabled &&
      !document.getElementById('joinBtn').hidden);
    await screenshot(dave, 'conference-05-dave-room-full');

    // carol leaves: her tile goes on alice's and bob's pages.
    await carol.click('#leaveBtn');
    await waitInPage(carol, 'carol: back to Join', () => !document.getElementById('joinBtn').hidden &&
      document.getElementById('status').textContent === 'DISCONNECTED');
    await waitTileGone(alice, 'alice', 'carol');
    await waitTileGone(bob, 'bob', 'carol');
    await waitChatLine(alice, 'alice', '', 'carol left');
    await screenshot(alice, 'conference-06-alice-after-carol-left');
    await waitDecoding(alice, 'alice', 'bob');

    assertNoConsoleErrors(h, [alice, bob, carol, dave]);
  }));

test('Conference: readable errors for an unreachable server and a denied camera', { timeout: CASE_TIMEOUT_MS },
  () => withHarness('conference errors', async (h) => {
    const server = await h.startServer();
    const browser = await h.launch('chromium');
    const page = await h.newPage(browser, 'erin');
    // The landing page lists the three applications (and keeps its try-it form).
    await page.goto(server.httpUrl);
    const links = await page.$$eval('nav.apps a', (as) => as.map((a) => a.getAttribute('href')));
    assert.deepEqual(links.slice(0, 3), ['conference', 'video-chat', 'video-chat-screen']);
    assert.ok(await page.$('#joinForm #name'), 'the try-it form is still there');
    const deadPort = await freeTcpPort();
    await openApp(page, `${server.httpUrl}conference?ws=${encodeURIComponent(`ws://127.0.0.1:${deadPort}/`)}`);
    await page.type('#login', 'erin');
    await page.click('#joinBtn');
    const text = await waitNotice(page, 'erin', /Cannot reach/);
    assert.match(text, new RegExp(`Cannot reach the server at ws://127.0.0.1:${deadPort}/`));
    assert.equal(await page.$eval('#status', (e) => e.textContent), 'FAILED');
    await waitInPage(page, 'erin: Join enabled again', () => !document.getElementById('joinBtn').disabled);
    await screenshot(page, 'conference-07-unreachable');

    // No fake-UI auto-accept: the camera prompt is denied. The person still joins to watch and chat.
    const denied = await h.launch('chromium', { dropArgs: ['--use-fake-ui-for-media-stream'], extraArgs: ['--deny-permission-prompts'] });
    const frank = await h.newPage(denied, 'frank');
    await openApp(frank, `${server.httpUrl}conference?roomName=denied-room`);
    await join(frank, 'frank');
    const warn = await waitNotice(frank, 'frank', /denied/);
    assert.match(warn, /Camera and microphone access was denied/);
    assert.equal(await frank.$eval('#localTile', (t) => t.dataset.status), 'FAILED');
    assert.equal(await frank.$eval('#leaveBtn', (b) => b.hidden), false, 'frank is still in the room');
    await screenshot(frank, 'conference-08-camera-denied');
    // (erin's page only has the browser's own line about the refused WebSocket.)
    assertNoConsoleErrors(h, [frank]);
  }));
