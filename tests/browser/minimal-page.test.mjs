// The server's own minimal page (src/web/, served at /), used the way a person would:
// two tabs (isolated browser contexts) type a name and a room, click Join, see each other's
// video, chat both ways, and one leaves. Also: readable errors when the server is unreachable
// and when the camera is denied.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freeTcpPort } from './lib/server.mjs';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';

const CASE_TIMEOUT_MS = 120000;

async function joinAs(page, name, room) {
  await page.locator('#name').fill(name);
  await page.locator('#room').fill(room);
  await page.click('#join');
  await waitInPage(page, `${name}: status "In room"`, () => {
    const s = document.getElementById('status');
    return s.textContent.startsWith('In room') || s.classList.contains('error') ? s.textContent : false;
  }).then((text) => {
    assert.ok(text.startsWith('In room'), `${name}: joined (status: ${text})`);
  });
}

/** Frames presented by the remote <video> of `login`, or false while there are none. */
function remoteFrames(login) {
  const tile = document.querySelector(`#tiles figure.remote[data-login="${CSS.escape(login)}"]`);
  const v = tile && tile.querySelector('video');
  if (!v || !v.srcObject || v.videoWidth === 0) return false;
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
  const n = q ? q.totalVideoFrames : (v.webkitDecodedFrameCount || 0);
  return n > 0 ? n : false;
}

async function waitDecoding(page, who, from) {
  const f0 = await waitInPage(page, `${who}: ${from}'s video has frames`, remoteFrames, from, 20000);
  const f1 = await waitInPage(page, `${who}: ${from}'s video frames keep coming (> ${f0 + 15})`,
    ([login, min, src]) => {
      // eslint-disable-next-line no-new-func
      const n = new Function(`return (${src})`)()(login);
      return n && n >= min ? n : false;
    }, [from, f0 + 15, remoteFrames.toString()], 10000);
  assert.ok(f1 > f0, `${who}: frames from ${from} rise (${f0} -> ${f1})`);
}

async function sendChat(page, text) {
  await page.locator('#chatInput').fill(text);
  await page.keyboard.press('Enter');
}

async function waitChatLine(page, who, from, text) {
  await waitInPage(page, `${who}: chat line "${from}: ${text}"`, ([f, t]) =>
    [...document.querySelectorAll('#chatLog li')].some((li) =>
      li.querySelector('.from')?.textContent === f && li.querySelector('.text')?.textContent === t), [from, text]);
}

test('minimal page: two people join, see each other, chat, one leaves', { timeout: CASE_TIMEOUT_MS },
  () => withHarness('minimal page', async (h) => {
    const server = await h.startServer();
    const browser = await h.launch('chromium');
    const alice = await h.newPage(browser, 'alice');
    const bob = await h.newPage(browser, 'bob');
    const room = `demo-${Math.random().toString(16).slice(2, 8)}`;

    for (const page of [alice, bob]) {
      const res = await page.goto(server.httpUrl);
      assert.equal(res.status(), 200, 'GET / answers 200');
      await page.waitForSelector('#join:not([disabled])');
    }
    await screenshot(alice, 'minimal-01-start');

    await joinAs(alice, 'alice', room);
    await waitInPage(alice, 'alice: local camera live', () =>
      document.getElementById('localState').textContent === 'live');
    await screenshot(alice, 'minimal-02-alice-joined');

    await joinAs(bob, 'bob', room);
    await screenshot(bob, 'minimal-03-bob-joined');

    await waitDecoding(bob, 'bob', 'alice');
    await waitDecoding(alice, 'alice', 'bob');
    await waitInPage(alice, 'alice: status counts 1 other participant', () =>
      document.getElementById('status').textContent.includes('1 other participant'));

    await sendChat(alice, 'hello bob');
    await waitChatLine(bob, 'bob', 'alice', 'hello bob');
    await sendChat(bob, 'hi alice');
    await waitChatLine(alice, 'alice', 'bob', 'hi alice');
    await waitChatLine(alice, 'alice', 'alice', 'hello bob'); // own line, with own name

    await screenshot(alice, 'minimal-04-alice-connected');
    await screenshot(bob, 'minimal-05-bob-connected');

    // alice leaves: bob's tile for alice goes away and the chat says so.
    await alice.click('#leave');
    await waitInPage(alice, 'alice: status "Left room"', () =>
      document.getElementById('status').textContent.startsWith('Left room'));
    await waitInPage(bob, 'bob: alice\'s tile removed', () =>
      !document.querySelector('#tiles figure.remote[data-login="alice"]'));
    await waitInPage(bob, 'bob: "alice left" in chat', () =>
      [...document.querySelectorAll('#chatLog li.system')].some((li) => li.textContent.includes('alice left')));
    await screenshot(bob, 'minimal-06-bob-after-alice-left');

    for (const page of [alice, bob]) {
      assert.deepEqual(h.consoleErrors(page), [], `${page.__label}: no console errors`);
    }
  }));

test('minimal page: readable error when the server is unreachable', { timeout: CASE_TIMEOUT_MS },
  () => withHarness('minimal page unreachable', async (h) => {
    const server = await h.startServer();
    const browser = await h.launch('chromium');
    const page = await h.newPage(browser, 'carol');
    const deadPort = await freeTcpPort();
    await page.goto(`${server.httpUrl}?ws=${encodeURIComponent(`ws://127.0.0.1:${deadPort}/`)}`);
    await page.locator('#name').fill('carol');
    await page.click('#join');
    const text = await waitInPage(page, 'error status', () => {
      const s = document.getElementById('status');
      return s.classList.contains('error') ? s.textContent : false;
    });
    assert.match(text, /Cannot reach the server/);
    assert.equal(await page.$eval('#join', (b) => b.disabled), false, 'Join is enabled again');
    await screenshot(page, 'minimal-07-unreachable');
  }));

test('minimal page: camera denied still joins to watch and chat', { timeout: CASE_TIMEOUT_MS },
  () => withHarness('minimal page camera denied', async (h) => {
    const server = await h.startServer();
    // No fake-UI auto-accept: the permission prompt is denied.
    const denied = await h.launch('chromium', { dropArgs: ['--use-fake-ui-for-media-stream'], extraArgs: ['--deny-permission-prompts'] });
    const page = await h.newPage(denied, 'dave');
    await page.goto(server.httpUrl);
    await page.locator('#name').fill('dave');
    await page.locator('#room').fill('denied-room');
    await page.click('#join');
    const text = await waitInPage(page, 'status after join', () => {
      const s = document.getElementById('status');
      return s.textContent.startsWith('In room') || s.classList.contains('error') ? s.textContent : false;
    });
    assert.match(text, /In room .*watching only \(Camera and microphone access was denied\)/);
    assert.equal(await page.$eval('#localState', (e) => e.textContent), 'no camera');
    await screenshot(page, 'minimal-08-camera-denied');
    assert.deepEqual(h.consoleErrors(page), [], 'no console errors');
  }));

test('minimal page: readable error when the room is full', { timeout: CASE_TIMEOUT_MS },
  () => withHarness('minimal page room full', async (h) => {
    const server = await h.startServer({ extraArgs: ['--room-capacity', '1'] });
    const browser = await h.launch('chromium');
    const erin = await h.newPage(browser, 'erin');
    const frank = await h.newPage(browser, 'frank');
    for (const page of [erin, frank]) await page.goto(server.httpUrl);
    await joinAs(erin, 'erin', 'small-room');
    await frank.locator('#name').fill('frank');
    await frank.locator('#room').fill('small-room');
    await frank.click('#join');
    const text = await waitInPage(frank, 'error status', () => {
      const s = document.getElementById('status');
      return s.classList.contains('error') || s.textContent.startsWith('In room') ? s.textContent : false;
    });
    assert.match(text, /^Could not join room “small-room”: \S/, 'the server\'s reason is shown');
    assert.equal(await frank.$eval('#join', (b) => b.disabled), false, 'Join is enabled again');
    await screenshot(frank, 'minimal-09-room-full');
    assert.deepEqual(h.consoleErrors(frank), [], 'no console errors');
  }));
