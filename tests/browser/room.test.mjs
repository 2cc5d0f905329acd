// Two participants join one room through the official Flashphoner room API (unmodified
// @flashphoner/websdk, pages/room.html), publish camera + microphone, play each other, chat,
// and one leaves.
//
// Cases:
//   - Chromium + Chromium, VP8   (publishers strip H264,VP9,AV1 with the SDK's stripCodecs)
//   - Chromium + Chromium, H.264 (publishers strip VP8,VP9,AV1; the negotiated codec is checked
//                                 in getStats codecId -> mimeType on both ends)
//   - Firefox ESR + Chromium, VP8 (alice is Firefox ESR over WebDriver BiDi, bob is Chromium)
//
// Prints "join-to-first-frame" for each participant: from the page calling session.join() to the
// first remote video frame decoded (inbound-rtp framesDecoded > 0).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { SCREENSHOT_DIR } from './lib/paths.mjs';
import { screenshot } from './lib/screenshots.mjs';

const CASE_TIMEOUT_MS = 120000;
const STEP_TIMEOUT_MS = 20000;

const CASES = [
  { id: 'chromium-vp8', title: 'Chromium + Chromium, VP8', alice: 'chromium', bob: 'chromium',
    strip: 'H264,VP9,AV1', codec: 'video/vp8' },
  { id: 'chromium-h264', title: 'Chromium + Chromium, H.264', alice: 'chromium', bob: 'chromium',
    strip: 'VP8,VP9,AV1', codec: 'video/h264' },
  { id: 'firefox-vp8', title: 'Firefox ESR (alice) + Chromium (bob), VP8', alice: 'firefox', bob: 'chromium',
    strip: 'H264,VP9,AV1', codec: 'video/vp8' },
];

const timings = [];

after(() => {
  if (!timings.length) return;
  const lines = timings.map((t) =>
    `# join-to-first-frame ${t.case.padEnd(14)} ${t.viewer.padEnd(16)} <- ${t.publisher.padEnd(16)} ` +
    `${String(t.msAfterJoin).padStart(6)} ms after join (${t.msAfterPlay} ms after play started${t.note ? ', ' + t.note : ''})`);
  console.log(lines.join('\n'));
  try {
    fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
    fs.writeFileSync(path.join(SCREENSHOT_DIR, 'room-timings.json'), JSON.stringify(timings, null, 2));
  } catch { /* informative only */ }
});

/** Waits for cond in the room page; stops early with the page's own failure reason. */
async function waitRoom(page, what, cond, arg, timeout = STEP_TIMEOUT_MS) {
  const value = await waitInPage(page, what, ([src, a]) => {
    const failure = window.__failure && window.__failure();
    if (failure) return failure;
    // eslint-disable-next-line no-new-func
    return new Function('s', 'arg', src)(window.__state, a) || false;
  }, [cond, arg], timeout);
  if (typeof value === 'string' && value.startsWith('FAILURE')) {
    throw new Error(`${page.__label}: ${value} (while waiting for ${what})`);
  }
  return value;
}

// Conditions are function bodies over (s = window.__state, arg), so they run in any browser.
const OWN_PUBLISHING = `
  const p = s.publishedName && s.streams[s.publishedName];
  return s.joined && p && p.status === 'PUBLISHING';`;
const PLAYING_FROM = `
  return Object.values(s.streams).some((r) => r.kind === 'play' && r.participant === arg && r.status === 'PLAYING');`;
const DECODING_FROM = `
  const r = Object.values(s.streams).find((r) => r.kind === 'play' && r.participant === arg && !r.ended);
  return r && r.framesDecoded > 0 ? r.framesDecoded : false;`;
const FRAMES_ABOVE = `
  const r = Object.values(s.streams).find((r) => r.kind === 'play' && r.participant === arg.from && !r.ended);
  return r && r.framesDecoded >= arg.min ? r.framesDecoded : false;`;
const VIDEO_SHOWING = `
  const r = Object.values(s.streams).find((r) => r.kind === 'play' && r.participant === arg.from && !r.ended);
  const v = r && r.video;
  if (!v || !v.attached || v.paused || !(v.width > 0)) return false;
  return v.frames === null || v.frames >= arg.min ? v : false;`;
const MESSAGE_FROM = `
  return s.messages.some((m) => m.from === arg.from && m.text === arg.text);`;
const LEFT_SEEN = `
  return s.events.some((e) => e.name === 'LEFT' && e.info === arg);`;
const PLAY_ENDED = `
  return Object.values(s.streams).some((r) => r.kind === 'play' && r.participant === arg && r.ended) ? true : false;`;

async function playRecord(page, from) {
  return page.evaluate((who) =>
    Object.values(window.__state.streams).find((r) => r.kind === 'play' && r.participant === who) || null, from);
}

async function publishRecord(page) {
  return page.evaluate(() => window.__state.streams[window.__state.publishedName] || null);
}

for (const c of CASES) {
  test(c.title, { timeout: CASE_TIMEOUT_MS }, () => withHarness(`room: ${c.title}`, async (h) => {
    const server = await h.startServer();
    const statics = await h.startStatic();
    const browserA = await h.launch(c.alice);
    const browserB = c.bob === c.alice ? browserA : await h.launch(c.bob);
    const alice = await h.newPage(browserA, `alice/${c.alice}`);
    const bob = await h.newPage(browserB, `bob/${c.bob}`);
    const room = `room-${c.id}-${Math.random().toString(16).slice(2, 8)}`;
    const pageUrl = (user) => `${statics.url}room.html?${new URLSearchParams({
      url: server.wsUrl, user, room, strip: c.strip,
    })}`;

    // alice joins an empty room and publishes.
    await alice.goto(pageUrl('alice'));
    await waitRoom(alice, 'alice: session ESTABLISHED, STATE, own stream PUBLISHING', OWN_PUBLISHING);

    // bob joins: he gets alice's stream in STATE and plays it; alice gets JOINED then PUBLISHED.
    await bob.goto(pageUrl('bob'));
    await waitRoom(bob, 'bob: own stream PUBLISHING', OWN_PUBLISHING);
    const bobState = await bob.evaluate(() => window.__state.events.find((e) => e.name === 'STATE'));
    assert.ok(bobState, 'bob saw STATE');
    assert.deepEqual(bobState.info.map((p) => p.name), ['alice'], 'bob\'s STATE lists alice only');
    assert.equal(bobState.info[0].streams.length, 1, 'bob\'s STATE carries alice\'s published stream');

    await waitRoom(bob, 'bob: alice\'s stream PLAYING', PLAYING_FROM, 'alice');
    await waitRoom(alice, 'alice: JOINED bob', `return s.events.some((e) => e.name === 'JOINED' && e.info === 'bob');`);
    await waitRoom(alice, 'alice: bob\'s stream PLAYING', PLAYING_FROM, 'bob');

    // Video decodes on both sides.
    await waitRoom(bob, 'bob: first decoded frame from alice', DECODING_FROM, 'alice');
    await waitRoom(alice, 'alice: first decoded frame from bob', DECODING_FROM, 'bob');
    await screenshot(alice, `room-${c.id}-alice-playing`);
    await screenshot(bob, `room-${c.id}-bob-playing`);

    // ... and keeps decoding: at least 20 more frames (under a second at 30 fps) within 10 s.
    for (const [page, from] of [[alice, 'bob'], [bob, 'alice']]) {
      const r0 = await playRecord(page, from);
      const f0 = r0.framesDecoded;
      const f1 = await waitRoom(page, `${page.__label}: framesDecoded from ${from} rising past ${f0 + 20}`,
        FRAMES_ABOVE, { from, min: f0 + 20 }, 10000);
      assert.ok(f1 > f0, `${page.__label}: framesDecoded rises (${f0} -> ${f1})`);
    }

    // The SDK's own <video> element shows it: the stream is attached (the SDK uses
    // RTCTrackEvent.streams[0], so the answer must carry a=msid), playing, and presenting frames.
    for (const [page, from] of [[alice, 'bob'], [bob, 'alice']]) {
      const v0 = await waitRoom(page, `${page.__label}: the SDK's <video> for ${from} is attached and playing`,
        VIDEO_SHOWING, { from, min: 1 }, 10000);
      const v1 = await waitRoom(page, `${page.__label}: the SDK's <video> for ${from} keeps presenting frames`,
        VIDEO_SHOWING, { from, min: v0.frames + 10 }, 10000);
      assert.ok((v1.frames === null || v1.frames > v0.frames) && v1.width > 0, `${page.__label}: <video> of ${from}: ${JSON.stringify(v1)}`);
    }

    // Negotiated codec, read from getStats codecId -> codec.mimeType.
    for (const [page, from] of [[alice, 'bob'], [bob, 'alice']]) {
      const rec = await playRecord(page, from);
      assert.equal(String(rec.codec).toLowerCase(), c.codec,
        `${page.__label} receives ${from}'s video as ${c.codec} (stats say ${rec.codec}; ${rec.codecId}; ${rec.allCodecs})`);
      const pub = await publishRecord(page);
      if (pub.codec) {
        assert.equal(String(pub.codec).toLowerCase(), c.codec,
          `${page.__label} sends its video as ${c.codec} (stats say ${pub.codec})`);
      }
    }

    for (const [page, viewer, from, pubBrowser] of [[bob, `bob/${c.bob}`, 'alice', c.alice], [alice, `alice/${c.alice}`, 'bob', c.bob]]) {
      const rec = await playRecord(page, from);
      timings.push({
        case: c.id,
        viewer,
        publisher: `${from}/${pubBrowser}`,
        codec: rec.codec,
        msAfterJoin: rec.firstFrameAt,
        msAfterPlay: rec.firstFrameAfterPlayMs,
        note: viewer.startsWith('bob') ? 'joined a room with a live publisher' : 'first in the room, waited for bob',
      });
      console.log(`# ${c.id}: ${viewer} first frame from ${from} ${rec.firstFrameAt} ms after join, ` +
        `${rec.firstFrameAfterPlayMs} ms after play started (${rec.codec}, ${rec.frameWidth}x${rec.frameHeight})`);
    }

    // Chat, both ways, with the right sender.
    const toBob = await alice.evaluate(() => window.__app.sendToAll('hello from alice'));
    assert.deepEqual(toBob, ['bob'], 'alice\'s participant list is [bob]');
    await waitRoom(bob, 'bob: MESSAGE from alice', MESSAGE_FROM, { from: 'alice', text: 'hello from alice' });
    const toAlice = await bob.evaluate(() => window.__app.sendToAll('hi alice, bob here'));
    assert.deepEqual(toAlice, ['alice'], 'bob\'s participant list is [alice]');
    await waitRoom(alice, 'alice: MESSAGE from bob', MESSAGE_FROM, { from: 'bob', text: 'hi alice, bob here' });
    for (const page of [alice, bob]) {
      const st = await page.evaluate(() => ({ messages: window.__state.messages, sendErrors: window.__state.sendErrors }));
      assert.equal(st.messages.length, 1, `${page.__label} got exactly one message: ${JSON.stringify(st.messages)}`);
      assert.deepEqual(st.sendErrors, [], `${page.__label}: no sendMessage was refused`);
    }

    // alice leaves: bob sees LEFT(alice), and his player of alice's stream ends.
    const leftOk = await alice.evaluate(() => window.__app.leave());
    assert.equal(leftOk, true, 'alice\'s leave was ACCEPTED');
    await waitRoom(bob, 'bob: LEFT alice', LEFT_SEEN, 'alice');
    await waitRoom(bob, 'bob: player of alice\'s stream ended (STOPPED)', PLAY_ENDED, 'alice', 10000);
    const ended = await playRecord(bob, 'alice');
    assert.equal(ended.status, 'STOPPED', `bob's player of alice ends STOPPED (statuses ${ended.statuses})`);
    await screenshot(bob, `room-${c.id}-bob-after-alice-left`);

    for (const page of [alice, bob]) {
      const errors = await page.evaluate(() => window.__state.errors);
      assert.deepEqual(errors, [], `${page.__label}: no errors on the page`);
    }
  }));
}
