// WHIP and WHEP with browsers and the official SDK (pages/whip.html and pages/whep.html are
// standard clients of 30 lines, no SDK; the static server is another origin, so CORS is used):
//   - a Chromium WHIP page publishes into a room as a participant; a Chromium viewer on the
//     official SDK sees it join, plays its stream and decodes frames with audio arriving; the
//     page's DELETE ends the stream and the viewer hears it leave;
//   - a Chromium participant (official SDK) publishes; a Firefox WHEP page plays it through
//     the room route (the participant's camera by its login) and decodes frames;
//   - GStreamer's webrtcbin (RSA DTLS certificate, max-bundle) publishes into a room over WHIP;
//     the official SDK in Chromium plays it.
// Prints "# whip-..." lines: the time from offer (or play) to the first decoded frame.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';

const CASE_TIMEOUT_MS = 120000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const roomName = (prefix) => `${prefix}-${Math.random().toString(16).slice(2, 8)}`;

/** An official-SDK viewer of `room` that waits for stream `name` to decode; returns its page. */
async function sdkViewer(h, browser, server, statics, room, name, label) {
  const viewer = await h.newPage(browser, label);
  await viewer.goto(`${statics.url}room.html?${new URLSearchParams({ url: server.wsUrl, user: label, room, publish: '0' })}`);
  const first = await waitInPage(viewer, `${name} decoded`, ([n]) => {
    const s = window.__state.streams[n];
    return s && s.framesDecoded > 0 ? { at: s.firstFrameAfterPlayMs, codec: s.codec } : false;
  }, [name], 25000);
  const count = () => viewer.evaluate((n) => {
    const s = window.__state.streams[n];
    return { frames: s.framesDecoded, audio: s.audioPackets || 0 };
  }, name);
  const a = await count();
  await sleep(2000);
  const b = await count();
  assert.ok(b.frames - a.frames >= 20, `${label}: frames keep decoding (${a.frames} -> ${b.frames})`);
  assert.ok(b.audio - a.audio >= 40, `${label}: audio packets arrive (${a.audio} -> ${b.audio})`);
  return { viewer, first };
}

test('WHIP: a standard Chromium WHIP page publishes into a room; the official SDK plays it', { timeout: CASE_TIMEOUT_MS }, () =>
  withHarness('whip page into a room', async (h) => {
    const server = await h.startServer();
    const statics = await h.startStatic();
    const browser = await h.launch('chromium');
    const room = roomName('whip');
    const page = await h.newPage(browser, 'whip-page');
    await page.goto(`${statics.url}whip.html?${new URLSearchParams({ whip: `${server.httpUrl}whip/room/${room}/cam` })}`);
    const published = await waitInPage(page, 'WHIP published', () => (
      window.__whip.status === 'failed' ? window.__whip : (window.__whip.framesEncoded > 10 && window.__whip)
    ), [], 20000);
    assert.equal(published.status, 'published', JSON.stringify(published));
    assert.match(published.location, /\/whip\/resource\/[0-9a-f-]{36}$/);
    const name = `${room}-cam-whip`;
    const { viewer, first } = await sdkViewer(h, browser, server, statics, room, name, 'viewer');
    console.log(`# whip-page-to-sdk: first frame ${first.at} ms after play; ${first.codec}`);
    const joined = await viewer.evaluate(() => window.__state.events.filter((e) => e.name === 'JOINED').map((e) => JSON.stringify(e.info)));
    assert.ok(joined.some((j) => j.includes('cam')) || await viewer.evaluate(() => JSON.stringify(window.__state.events.find((e) => e.name === 'STATE'))).then((s) => s.includes('cam')),
      'the room lists the WHIP participant');
    await screenshot(page, 'whip-page-publisher');
    await screenshot(viewer, 'whip-page-sdk-viewer');
    await page.evaluate(() => window.__stop());
    assert.equal(await page.evaluate(() => window.__whip.deleted), 200, 'DELETE on the Location ends it');
    await waitInPage(viewer, 'the WHIP participant left', () => (
      window.__state.events.some((e) => e.name === 'LEFT' && JSON.stringify(e.info).includes('cam'))
    ), [], 10000);
  }));

test('WHEP: a Firefox WHEP page plays a stream the official SDK publishes in Chromium', { timeout: CASE_TIMEOUT_MS }, () =>
  withHarness('whep page from a room', async (h) => {
    const server = await h.startServer();
    const statics = await h.startStatic();
    const chromium = await h.launch('chromium');
    const room = roomName('whep');
    const alice = await h.newPage(chromium, 'alice');
    await alice.goto(`${statics.url}room.html?${new URLSearchParams({ url: server.wsUrl, user: 'alice', room })}`);
    await waitInPage(alice, 'alice publishing', () => {
      const s = window.__state;
      const p = s.publishedName && s.streams[s.publishedName];
      return p && p.status === 'PUBLISHING' && p.framesEncoded > 10;
    }, [], 20000);
    const firefox = await h.launch('firefox');
    const page = await h.newPage(firefox, 'whep-page');
    await page.goto(`${statics.url}whep.html?${new URLSearchParams({ whep: `${server.httpUrl}whep/room/${room}/alice` })}`);
    const playing = await waitInPage(page, 'WHEP frames decoded', () => (
      window.__whep.status === 'failed' ? window.__whep : (window.__whep.framesDecoded > 30 && window.__whep.audioPackets > 50 && window.__whep)
    ), [], 25000);
    assert.equal(playing.status, 'playing', JSON.stringify(playing));
    console.log(`# whep-firefox: first frame ${playing.firstFrameMs} ms after the offer`);
    await screenshot(page, 'whep-firefox-player');
    // Firefox's close() sends RTCP BYE (no close_notify): the server ends the stream within
    // about two seconds, and its resource with it (a PATCH then finds nothing: 404).
    await page.evaluate(() => window.__pc.close());
    const closed = Date.now();
    let status = 0;
    while (Date.now() - closed < 5000 && status !== 404) {
      await sleep(200);
      status = (await fetch(playing.location, { method: 'PATCH' })).status;
    }
    console.log(`# whep-firefox-close: resource gone ${Date.now() - closed} ms after close()`);
    assert.equal(status, 404, 'the closed player\'s resource ended');
    assert.ok(Date.now() - closed < 3500, `ended within 3.5 s of close() (${Date.now() - closed} ms)`);
  }));

test('WHIP: GStreamer webrtcbin (RSA certificate) publishes into a room; the official SDK plays it', { timeout: CASE_TIMEOUT_MS }, () =>
  withHarness('webrtcbin into a room', async (h) => {
    // libnice pairs no loopback candidate: the server announces this host's own address.
    const ip = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal);
    assert.ok(ip, 'this host has a non-loopback IPv4 address');
    const server = await h.startServer({ mediaIp: ip.address });
    const statics = await h.startStatic();
    const room = roomName('gst');
    const script = path.resolve(import.meta.dirname, '../clients/gst_whip.py');
    const gst = spawn('/usr/bin/python3', [script, 'publish', `${server.httpUrl}whip/room/${room}/gst`,
      '--bundle-policy', 'max-bundle', '--video', 'vp8', '--audio', 'opus', '--seconds', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let gstOut = '';
    gst.stdout.on('data', (d) => { gstOut += d; });
    gst.stderr.on('data', (d) => { gstOut += d; });
    try {
      const browser = await h.launch('chromium');
      const { viewer, first } = await sdkViewer(h, browser, server, statics, room, `${room}-gst-whip`, 'viewer');
      console.log(`# whip-webrtcbin-to-sdk: first frame ${first.at} ms after play; ${first.codec}`);
      assert.equal(first.codec, 'video/VP8');
      await screenshot(viewer, 'whip-webrtcbin-sdk-viewer');
    } catch (e) {
      throw new Error(`${e.message}\nwebrtcbin: ${gstOut}`);
    } finally {
      gst.kill('SIGTERM');
    }
  }));
