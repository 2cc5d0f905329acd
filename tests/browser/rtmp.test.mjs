// The RTMP bridge with the official SDK (unmodified @flashphoner/websdk, pages/room.html):
//   - ffmpeg publishes testsrc2 + sine (libx264 -bf 0 -g 30, AAC 44.1 kHz) into a room; a
//     headless Chromium viewer joins, finds the encoder in STATE, plays it and decodes >= 20 fps
//     with audio packets arriving (headless Chromium plays no audio out, so the tone itself is
//     checked in tests/rtmp.rs, through a recording of the encoder's stream);
//   - a Chromium participant publishes H.264; `ffmpeg -i rtmp://…/room/ROOM/LOGIN -t 6` decodes
//     >= 150 frames and AAC audio without errors;
//   - with --rtmp-bframes pass, an encoder's B-frames (x264 -bf 2) reach Chromium in decode
//     order with presentation times, and it decodes what it can of them (printed: fps).
// Prints "# rtmp-to-first-frame" (play to the first decoded frame: the cached group of
// pictures lets a late viewer start at once).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';
import { freeTcpPort } from './lib/server.mjs';

const CASE_TIMEOUT_MS = 150000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function encoder(url, videoArgs) {
  const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '90', ...videoArgs, '-c:a', 'aac', '-ar', '44100', '-f', 'flv', url], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderrText = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { child.stderrText += d; });
  return child;
}

async function viewerDecodes(h, server, statics, room, encoderLogin, label, { minFps = 20 } = {}) {
  const browser = await h.launch('chromium');
  const viewer = await h.newPage(browser, `viewer/${label}`);
  const name = `${room}-${encoderLogin}-rtmp-h264`;
  await viewer.goto(`${statics.url}room.html?${new URLSearchParams({ url: server.wsUrl, user: 'viewer', room, publish: '0' })}`);
  const state = await waitInPage(viewer, 'the encoder in STATE', ([n]) => {
    const st = window.__state.events.find((e) => e.name === 'STATE');
    return st && JSON.stringify(st.info).includes(n) ? st.info : false;
  }, [name], 20000);
  assert.ok(JSON.stringify(state).includes(encoderLogin), `STATE lists ${encoderLogin}: ${JSON.stringify(state)}`);
  const first = await waitInPage(viewer, 'frames decoded', ([n]) => {
    const s = window.__state.streams[n];
    return s && s.framesDecoded > 0 ? { at: s.firstFrameAfterPlayMs, codec: s.codec } : false;
  }, [name], 20000);
  const count = () => viewer.evaluate((n) => {
    const s = window.__state.streams[n];
    return { frames: s.framesDecoded, audio: s.audioPackets || 0 };
  }, name);
  await sleep(1000);
  const a = await count();
  await sleep(3000);
  const b = await count();
  const fps = (b.frames - a.frames) / 3;
  console.log(`# rtmp-to-first-frame ${label}: ${first.at} ms after play; ${fps.toFixed(1)} fps; ${first.codec}`);
  assert.ok(fps >= minFps, `${label}: the viewer decodes >= ${minFps} fps (${fps})`);
  assert.ok(b.audio > a.audio + 50, `${label}: audio packets arrive (${a.audio} -> ${b.audio})`);
  assert.equal(first.codec, 'video/H264');
  await screenshot(viewer, `rtmp-${label}-viewer`);
  return viewer;
}

test('RTMP: an encoder publishes into a room; a Chromium viewer on the official SDK plays it', { timeout: CASE_TIMEOUT_MS }, () =>
  withHarness('rtmp into a room', async (h) => {
    const rtmpPort = await freeTcpPort();
    const server = await h.startServer({ extraArgs: ['--rtmp', `127.0.0.1:${rtmpPort}`] });
    const statics = await h.startStatic();
    const room = `rtmp-${Math.random().toString(16).slice(2, 8)}`;
    const enc = encoder(`rtmp://127.0.0.1:${rtmpPort}/room/${room}/obs`, ['-c:v', 'libx264', '-bf', '0', '-g', '30', '-tune', 'zerolatency', '-preset', 'veryfast']);
    try {
      await sleep(3000);
      await viewerDecodes(h, server, statics, room, 'obs', 'no-bframes');
    } finally {
      enc.kill('SIGKILL');
    }
    assert.equal(enc.stderrText.trim(), '', `ffmpeg said nothing: ${enc.stderrText}`);
  }));

test('RTMP: a Chromium participant publishes H.264; ffmpeg plays it over RTMP with AAC', { timeout: CASE_TIMEOUT_MS }, () =>
  withHarness('rtmp out of a room', async (h) => {
    const rtmpPort = await freeTcpPort();
    const server = await h.startServer({ extraArgs: ['--rtmp', `127.0.0.1:${rtmpPort}`] });
    const statics = await h.startStatic();
    // The fake camera runs at 20 fps unless told otherwise; 6 s must give >= 150 frames.
    const browser = await h.launch('chromium', {
      dropArgs: ['--use-fake-device-for-media-stream'],
      extraArgs: ['--use-fake-device-for-media-stream=fps=30'],
    });
    const alice = await h.newPage(browser, 'alice');
    const room = `rtmp-${Math.random().toString(16).slice(2, 8)}`;
    await alice.goto(`${statics.url}room.html?${new URLSearchParams({ url: server.wsUrl, user: 'alice', room, strip: 'VP8,VP9,AV1', fps: '30' })}`);
    await waitInPage(alice, 'alice publishing', () => {
      const s = window.__state;
      const p = s.publishedName && s.streams[s.publishedName];
      return p && p.status === 'PUBLISHING' && p.framesEncoded > 10;
    }, [], 20000);
    const r = spawnSync('ffmpeg', ['-hide_banner', '-nostats', '-i', `rtmp://127.0.0.1:${rtmpPort}/room/${room}/alice`,
      '-t', '6', '-f', 'null', '-', '-progress', 'pipe:1'], { encoding: 'utf8', timeout: 30000 });
    const frames = Math.max(0, ...[...r.stdout.matchAll(/frame=(\d+)/g)].map((m) => Number(m[1])));
    const errors = r.stderr.split('\n').filter((l) => /error/i.test(l));
    console.log(`# rtmp-player of a Chromium H.264 stream: ${frames} frames in 6 s`);
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    assert.ok(frames >= 150, `ffmpeg decoded ${frames} frames: ${r.stderr.slice(-2000)}`);
    assert.match(r.stderr, /Video: h264/);
    assert.match(r.stderr, /Audio: aac/);
    assert.deepEqual(errors, [], 'ffmpeg reports no errors');
  }));

test('RTMP: with --rtmp-bframes pass an encoder\'s B-frames play in Chromium', { timeout: CASE_TIMEOUT_MS }, () =>
  withHarness('rtmp b-frames', async (h) => {
    const rtmpPort = await freeTcpPort();
    const server = await h.startServer({ extraArgs: ['--rtmp', `127.0.0.1:${rtmpPort}`, '--rtmp-bframes', 'pass'] });
    const statics = await h.startStatic();
    const room = `rtmp-${Math.random().toString(16).slice(2, 8)}`;
    const enc = encoder(`rtmp://127.0.0.1:${rtmpPort}/room/${room}/bf`, ['-c:v', 'libx264', '-bf', '2', '-g', '30', '-preset', 'veryfast']);
    try {
      await sleep(3000);
      // Chromium's WebRTC H.264 decoder does not reorder: of a B-frame stream it shows the
      // pictures it can (measured: about 2 of 30 a second) — why `reject` is the default.
      await viewerDecodes(h, server, statics, room, 'bf', 'bframes-pass', { minFps: 1 });
    } finally {
      enc.kill('SIGKILL');
    }
  }));
