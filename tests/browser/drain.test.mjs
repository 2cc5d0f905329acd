// A drain as the official SDK sees it (unmodified @flashphoner/websdk, pages/room.html): alice
// (Firefox ESR) publishes, bob (Chromium) plays her; the server gets SIGTERM. Calls go on
// during the drain (bob keeps decoding), then alice's stream is UNPUBLISHED and bob's player
// STOPPED (not FAILED), bob hears LEFT, both WebSockets close with 1001 "Going Away" (not
// 1006), and the server exits 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';

const STEP_TIMEOUT_MS = 20000;
const DRAIN_SECONDS = 4;

async function waitRoom(page, what, src, arg, timeout = STEP_TIMEOUT_MS) {
  return waitInPage(page, what, ([body, a]) => {
    // eslint-disable-next-line no-new-func
    return new Function('s', 'arg', body)(window.__state, a) || false;
  }, [src, arg], timeout);
}

const OWN_PUBLISHING = `
  const p = s.publishedName && s.streams[s.publishedName];
  return s.joined && p && p.status === 'PUBLISHING';`;
const FRAMES_FROM = `
  const r = Object.values(s.streams).find((r) => r.kind === 'play' && r.participant === arg.from);
  return r && r.framesDecoded >= arg.min ? r.framesDecoded : false;`;
const PLAY_RECORD = `
  return Object.values(s.streams).find((r) => r.kind === 'play' && r.participant === arg) || false;`;
const CLOSED = `return window.__wsCloses.length > 0 ? window.__wsCloses : false;`;

test('SIGTERM drains: UNPUBLISHED, STOPPED, LEFT and a 1001 close in the official SDK, exit 0',
  { timeout: 120000 }, () => withHarness('drain', async (h) => {
    const server = await h.startServer({ extraArgs: ['--drain-timeout', `${DRAIN_SECONDS}s`] });
    const statics = await h.startStatic();
    const alice = await h.newPage(await h.launch('firefox'), 'alice/firefox');
    const bob = await h.newPage(await h.launch('chromium'), 'bob/chromium');
    const room = `drain-${Math.random().toString(16).slice(2, 8)}`;
    const url = (user, publish) => `${statics.url}room.html?${new URLSearchParams({
      url: server.wsUrl, user, room, strip: 'H264,VP9,AV1', publish: publish ? '1' : '0',
    })}`;
    await alice.goto(url('alice', true));
    await waitRoom(alice, 'alice publishing', OWN_PUBLISHING);
    await bob.goto(url('bob', false));
    const before = await waitRoom(bob, 'bob decodes alice', FRAMES_FROM, { from: 'alice', min: 10 });

    process.kill(server.pid, 'SIGTERM');
    const asked = Date.now();
    // During the drain the call goes on.
    await waitRoom(bob, 'bob still decodes during the drain', FRAMES_FROM, { from: 'alice', min: before + 30 },
      (DRAIN_SECONDS - 1) * 1000);
    await screenshot(bob, 'drain-bob-during');

    const closes = await waitRoom(bob, 'bob\'s WebSocket closed', CLOSED, null, (DRAIN_SECONDS + 10) * 1000);
    assert.ok(Date.now() - asked >= (DRAIN_SECONDS - 1) * 1000, 'calls went on until the drain timeout');
    const aliceCloses = await waitRoom(alice, 'alice\'s WebSocket closed', CLOSED, null, 5000);
    for (const [who, list] of [['alice', aliceCloses], ['bob', closes]]) {
      assert.equal(list[0].code, 1001, `${who}: close 1001 Going Away, not 1006: ${JSON.stringify(list)}`);
    }
    const played = await waitRoom(bob, 'bob\'s player of alice', PLAY_RECORD, 'alice');
    assert.equal(played.status, 'STOPPED', `bob's player ends STOPPED (statuses ${played.statuses}, ${played.info})`);
    assert.equal(played.info, 'Server is shutting down', 'the player is told why');
    const own = await alice.evaluate(() => window.__state.streams[window.__state.publishedName]);
    assert.equal(own.status, 'UNPUBLISHED', `alice's stream ends UNPUBLISHED (statuses ${own.statuses})`);
    const left = await bob.evaluate(() => window.__state.events.some((e) => e.name === 'LEFT' && e.info === 'alice'));
    assert.ok(left, 'bob hears alice LEFT');
    await screenshot(bob, 'drain-bob-after');

    const deadline = Date.now() + 20000;
    while (!server.exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(server.exited, 'the server exits after the drain');
    assert.equal(server.exited.code, 0, `exit code 0: ${JSON.stringify(server.exited)}\n${server.log()}`);
  }));
