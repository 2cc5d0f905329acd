// A room keeps decoding video while another client throws junk at the server: garbage and
// oversized WebSocket frames, wrong-state commands, garbage SDP, and random datagrams plus every
// truncation of a STUN binding request at each worker's UDP port. The junk client gets the
// protocol's errors; the room's framesDecoded keeps rising throughout.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { waitInPage, withHarness } from './lib/harness.mjs';
import { screenshot } from './lib/screenshots.mjs';

const WORKERS = 2;

/** A STUN binding request with a USERNAME attribute, as a browser's connectivity check starts. */
function stunBindingRequest(username) {
  const user = Buffer.from(username);
  const padded = (user.length + 3) & ~3;
  const attrs = Buffer.alloc(4 + padded);
  attrs.writeUInt16BE(0x0006, 0);
  attrs.writeUInt16BE(user.length, 2);
  user.copy(attrs, 4);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(0x0001, 0);
  header.writeUInt16BE(attrs.length, 2);
  header.writeUInt32BE(0x2112a442, 4);
  for (let i = 8; i < 20; i++) header[i] = (i * 37) & 0xff;
  return Buffer.concat([header, attrs]);
}

async function sendJunkDatagrams(port) {
  const socket = dgram.createSocket('udp4');
  const send = (buf) => new Promise((resolve) => socket.send(buf, port, '127.0.0.1', () => resolve()));
  let seed = 0x2545f491;
  const random = () => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  for (let i = 0; i < 1000; i++) {
    const buf = Buffer.alloc(Math.floor(random() * 1400));
    for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(random() * 256);
    // Make some of them look like RTP, RTCP, DTLS and STUN to the first-byte classifier.
    if (buf.length > 0 && i % 4 === 0) buf[0] = [0x80, 0x81, 0x16, 0x00][i % 16 / 4 | 0];
    await send(buf);
  }
  const stun = stunBindingRequest('nosuchufrag:browser');
  for (let cut = 0; cut <= stun.length; cut++) await send(stun.subarray(0, cut));
  socket.close();
}

/** Junk over a WebSocket from a page: returns the server's answers. */
async function junkOverWebSocket(page, wsUrl) {
  return page.evaluate(async (url) => {
    const answers = [];
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    ws.onmessage = (e) => answers.push(JSON.parse(e.data));
    const send = (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
    send('this is not json');
    send({ message: 'noSuchMessage', data: [{}] });
    send({ message: 'publishStream', data: [{ mediaSessionId: 'early', name: 'x', sdp: 'v=0' }] });
    send({ message: 'connection', data: [{ appKey: 'roomApp', custom: { login: 'mallory' } }] });
    send({ message: 'sendData', data: [{ operationId: 'op-shape', payload: 'not an object' }] });
    send({ message: 'publishStream', data: [{ mediaSessionId: 'm1', name: 'n1', sdp: 'v=0', custom: { name: 'elsewhere' } }] });
    send({ message: 'playStream', data: [{ mediaSessionId: 'm2', name: 'no-such-stream', sdp: 'v=0' }] });
    send({ message: 'publishStream', data: [{ mediaSessionId: 'm3', name: 'n3', sdp: 'garbage sdp' }] });
    send({ message: 'sendData', data: [{ operationId: 'op-big', payload: { command: 'join', options: { name: 'x'.repeat(70000) } } }] });
    ws.send(new Uint8Array([1, 2, 3]));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const open = ws.readyState === WebSocket.OPEN;
    ws.close();
    return { answers, open };
  }, wsUrl);
}

const FRAMES = `
  const r = Object.values(s.streams).find((r) => r.kind === 'play' && r.participant === arg && !r.ended);
  return r ? r.framesDecoded : 0;`;

test('a room keeps decoding while another client sends junk', { timeout: 120000 }, () =>
  withHarness('bad input', async (h) => {
    const server = await h.startServer({ workers: WORKERS });
    const statics = await h.startStatic();
    const browser = await h.launch('chromium');
    const alice = await h.newPage(browser, 'alice');
    const bob = await h.newPage(browser, 'bob');
    const mallory = await h.newPage(browser, 'mallory');
    const room = `junk-${Math.random().toString(16).slice(2, 8)}`;
    const url = (user) => `${statics.url}room.html?${new URLSearchParams({ url: server.wsUrl, user, room, strip: 'H264,VP9,AV1' })}`;
    await alice.goto(url('alice'));
    await bob.goto(url('bob'));
    const frames = (page, from) => page.evaluate((src, a) => new Function('s', 'arg', src)(window.__state, a), FRAMES, from);
    await waitInPage(bob, 'bob decodes alice', ([src, a]) => new Function('s', 'arg', src)(window.__state, a) > 0, [FRAMES, 'alice'], 30000);
    await waitInPage(alice, 'alice decodes bob', ([src, a]) => new Function('s', 'arg', src)(window.__state, a) > 0, [FRAMES, 'bob'], 30000);
    const before = [await frames(bob, 'alice'), await frames(alice, 'bob')];

    const [wsResult] = await Promise.all([
      junkOverWebSocket(mallory, server.wsUrl),
      ...Array.from({ length: WORKERS }, (_, i) => sendJunkDatagrams(server.mediaPort + i)),
    ]);

    const infos = wsResult.answers.map((a) => JSON.stringify(a));
    const has = (needle) => infos.some((line) => line.includes(needle));
    assert.ok(has('Message is not JSON'), `non-JSON refused: ${infos.join('\n')}`);
    assert.ok(has("Unknown message 'noSuchMessage'"), 'unknown message refused');
    assert.ok(has('Session is not established'), 'publish before connection refused');
    assert.ok(has("Not joined to room 'elsewhere'"), 'publish before join refused');
    assert.ok(has('Stream not found'), 'play of an unknown stream refused');
    assert.ok(has('Invalid SDP'), 'garbage SDP refused');
    assert.ok(has('larger than'), 'oversized frame refused');
    assert.ok(has('Binary frames'), 'binary frame refused');
    assert.ok(wsResult.open, 'the junk socket stayed open: every error was answered, none was fatal');

    // The room kept decoding through all of it, and goes on.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const after = [await frames(bob, 'alice'), await frames(alice, 'bob')];
    assert.ok(after[0] >= before[0] + 30, `bob kept decoding alice (${before[0]} -> ${after[0]})`);
    assert.ok(after[1] >= before[1] + 30, `alice kept decoding bob (${before[1]} -> ${after[1]})`);
    await screenshot(bob, 'bad-input-bob-still-decoding');
    const health = await (await fetch(`${server.httpUrl}health`)).json();
    assert.equal(health.rooms, 1, `only the healthy room is left: ${JSON.stringify(health)}`);
    assert.equal(health.peers, 4, `only the healthy room's four peers are left: ${JSON.stringify(health)}`);
  }));
