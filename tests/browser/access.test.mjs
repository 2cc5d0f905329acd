// Room tokens with the official SDK (unmodified @flashphoner/websdk, pages/room.html passing
// `token` to RoomApi.connect) against `webcall --auth jwt`:
//   - alice and bob, each with a token minted by `webcall token`, join, publish, play each other
//     (frames decoded) and chat (messages delivered);
//   - a page without a token ends with its session FAILED or DISCONNECTED and never joins;
//   - a token for another room: the session is ESTABLISHED, the join FAILED ("Restricted access").
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { webcallBin } from './lib/paths.mjs';
import { screenshot } from './lib/screenshots.mjs';

const CASE_TIMEOUT_MS = 120000;

function keyFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webcall-browser-jwt-'));
  const file = path.join(dir, 'jwt.key');
  fs.writeFileSync(file, `browser-test-secret-${Math.random().toString(16).slice(2)}-0123456789abcdef\n`);
  return file;
}

function mint(key, room, login) {
  const out = spawnSync(webcallBin(), ['token', '--key', key, '--room', room, '--login', login,
    '--publish', '--subscribe', '--chat', '--ttl', '10m'], { encoding: 'utf8' });
  assert.equal(out.status, 0, `webcall token: ${out.stderr}`);
  return out.stdout.trim();
}

test('room tokens through the official SDK: granted users call, others are refused', { timeout: CASE_TIMEOUT_MS },
  () => withHarness('access: tokens', async (h) => {
    const key = keyFile();
    const server = await h.startServer({ extraArgs: ['--auth', 'jwt', '--jwt-key', key] });
    const statics = await h.startStatic();
    const browser = await h.launch('chromium');
    const room = `tok-${Math.random().toString(16).slice(2, 8)}`;
    const pageUrl = (user, token, extra = {}) => `${statics.url}room.html?${new URLSearchParams({
      url: server.wsUrl, user, room, strip: 'H264,VP9,AV1', ...(token ? { token } : {}), ...extra,
    })}`;
    const state = (page, body, arg) => waitInPage(page, body, ([src, a]) =>
      // eslint-disable-next-line no-new-func
      new Function('s', 'arg', src)(window.__state, a) || false, [body, arg], 20000);

    const alice = await h.newPage(browser, 'alice');
    const bob = await h.newPage(browser, 'bob');
    const aliceToken = mint(key, room, 'alice');
    await alice.goto(pageUrl('alice', aliceToken));
    await bob.goto(pageUrl('bob', mint(key, room, 'bob')));
    const decoding = `const r = Object.values(s.streams).find((r) => r.kind === 'play' && r.participant === arg);
      return r && r.framesDecoded > 10 ? r.framesDecoded : false;`;
    await state(alice, decoding, 'bob');
    await state(bob, decoding, 'alice');
    await alice.evaluate(() => window.__app.sendToAll('hello with a token'));
    await state(bob, 'return s.messages.some((m) => m.from === arg && m.text === "hello with a token");', 'alice');
    await screenshot(bob, 'access-bob-with-token');

    const mallory = await h.newPage(browser, 'mallory');
    await mallory.goto(pageUrl('mallory', null, { publish: '0' }));
    const ended = await state(mallory, `return s.sessionStatus === 'FAILED' || s.sessionStatus === 'DISCONNECTED'
      ? s.sessionStatus : false;`);
    assert.ok(ended, 'a page without a token gets no session');
    const malloryState = await mallory.evaluate(() => ({ joined: window.__state.joined, events: window.__state.events }));
    assert.ok(!malloryState.joined, `mallory never joined: ${JSON.stringify(malloryState.events)}`);

    const eve = await h.newPage(browser, 'eve');
    await eve.goto(pageUrl('eve', mint(key, `${room}-other`, 'eve'), { publish: '0' }));
    const refused = await state(eve, `const e = s.events.find((e) => e.name === 'ROOM_FAILED');
      return e ? (e.info === null ? 'null' : JSON.stringify(e.info)) : false;`);
    assert.match(refused, /Restricted access/, `eve's join is refused with the reason: ${refused}`);
    await screenshot(eve, 'access-eve-wrong-room');
    const log = server.log();
    assert.ok(!String(log).includes(aliceToken), 'tokens are never logged');
  }));
