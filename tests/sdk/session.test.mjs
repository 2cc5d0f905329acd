// SDK unit tests: the session and room state machines against a scripted server (a fake
// WebSocket): handshake, keep-alive, commands and their answers, room event dispatch, errors,
// publishing with codec choice, mute, and automatic re-join after a dropped socket.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { connect, RoomFullError, RefusedError, ConnectionError } from '../../src/web/sdk/webcall.js';
import {
  FakePeerConnection, FakeWebSocket, OFFER_SDP, OFFER_SDP_NO_H264, answerSdp, fakeEnv, fakeMediaDevices, until,
} from './fakes.mjs';

beforeEach(() => {
  FakeWebSocket.reset();
  FakePeerConnection.all = [];
  FakePeerConnection.offer = OFFER_SDP;
  fakeMediaDevices.denied = false;
});

const sessions = [];
afterEach(() => {
  for (const s of sessions.splice(0)) s.disconnect();
});

/** Connects as `login` and answers the handshake; resolves {session, ws, events}. */
async function established(login = 'alice', options = {}) {
  const events = [];
  const session = connect({ urlServer: 'ws://server/', username: login, reconnectDelaysMs: [5], ...options }, fakeEnv());
  sessions.push(session);
  for (const e of ['ESTABLISHED', 'DISCONNECTED', 'FAILED', 'RECONNECTING', 'RECONNECTED']) {
    session.on(e, (s, detail) => events.push([e, detail]));
  }
  const ws = await until(() => FakeWebSocket.last()?.frames('connection').length && FakeWebSocket.last(), 'connection frame');
  ws.receive('getUserData', { authToken: 't1' });
  return { session, ws, events };
}

/** Joins `room`, accepts it and sends STATE; resolves {room, log}. */
async function joined(session, ws, name = 'r1', state = []) {
  const log = [];
  const room = session.join({ name });
  for (const e of ['STATE', 'JOINED', 'LEFT', 'PUBLISHED', 'UNPUBLISHED', 'MESSAGE', 'FAILED', 'REJOINED']) {
    room.on(e, (...args) => log.push([e, ...args]));
  }
  const cmd = await until(() => ws.command('join'), 'join command');
  ws.receive('DataStatusEvent', { operationId: cmd.operationId, status: 'ACCEPTED' });
  ws.receive('OnDataEvent', { payload: { roomName: name, name: 'STATE', info: state } });
  await until(() => log.some((e) => e[0] === 'STATE' || e[0] === 'REJOINED'), 'STATE');
  return { room, log };
}

function roomEvent(ws, roomName, name, info) {
  ws.receive('OnDataEvent', { payload: { roomName, name, info } });
}

test('handshake: connection frame, ESTABLISHED, ping answered with pong', async () => {
  const { session, ws, events } = await established('alice', { token: 'jwt' });
  const c = ws.frames('connection')[0];
  assert.equal(c.appKey, 'roomApp');
  assert.deepEqual(c.custom, { login: 'alice', token: 'jwt' });
  assert.equal(session.status(), 'ESTABLISHED');
  assert.deepEqual(events.map((e) => e[0]), ['ESTABLISHED']);
  ws.receive('ping', null);
  assert.deepEqual(ws.sent[ws.sent.length - 1], { message: 'pong', data: [null] });
});

test('join: STATE builds the participants; JOINED, PUBLISHED, MESSAGE, UNPUBLISHED, LEFT dispatch', async () => {
  const { session, ws } = await established();
  const { room, log } = await joined(session, ws, 'r1', ['bob', { login: 'carol', name: 'r1-carol-0001' }]);
  assert.deepEqual(ws.command('join').payload.options, { name: 'r1' });
  assert.equal(log[0][1], room);
  assert.deepEqual(room.getParticipants().map((p) => p.name()), ['bob', 'carol']);
  assert.deepEqual(room.getParticipant('carol').getStreams().map((s) => s.streamName()), ['r1-carol-0001']);
  assert.equal(room.getParticipant('bob').getStreams().length, 0);

  roomEvent(ws, 'r1', 'JOINED', 'dave');
  roomEvent(ws, 'r1', 'PUBLISHED', { login: 'dave', name: 'r1-dave-0002-screen' });
  roomEvent(ws, 'r1', 'MESSAGE', { from: 'dave', text: 'hello' });
  roomEvent(ws, 'r1', 'UNPUBLISHED', { login: 'dave', name: 'r1-dave-0002-screen' });
  roomEvent(ws, 'r1', 'LEFT', 'bob');
  roomEvent(ws, 'other-room', 'JOINED', 'zed');
  const names = log.map((e) => e[0]);
  assert.deepEqual(names, ['STATE', 'JOINED', 'PUBLISHED', 'MESSAGE', 'UNPUBLISHED', 'LEFT']);
  assert.equal(log[1][1].name(), 'dave');
  assert.equal(log[2][1].name(), 'dave');
  assert.equal(log[2][2].streamName(), 'r1-dave-0002-screen');
  assert.equal(log[2][2].isScreen(), true);
  assert.equal(log[3][1].from.name(), 'dave');
  assert.equal(log[3][1].text, 'hello');
  assert.equal(log[5][1].name(), 'bob');
  assert.deepEqual(room.getParticipants().map((p) => p.name()), ['carol', 'dave']);
  assert.equal(room.getParticipant('dave').getStreams().length, 0);
});

test('chat: to one participant (with "to") and to everyone (without); refusals are RefusedError with info', async () => {
  const { session, ws } = await established();
  const { room } = await joined(session, ws, 'r1', ['bob']);
  const one = room.getParticipant('bob').sendMessage('hi bob');
  let cmd = ws.command('sendMessage');
  assert.deepEqual(cmd.payload.options, { roomConfig: { name: 'r1' }, to: 'bob', text: 'hi bob' });
  ws.receive('DataStatusEvent', { operationId: cmd.operationId, status: 'ACCEPTED' });
  await one;

  const all = room.sendMessage('hi all');
  cmd = ws.command('sendMessage');
  assert.deepEqual(cmd.payload.options, { roomConfig: { name: 'r1' }, text: 'hi all' });
  ws.receive('DataStatusEvent', { operationId: cmd.operationId, status: 'FAILED', info: 'Not in room' });
  await assert.rejects(all, (e) => e instanceof RefusedError && e.info === 'Not in room' && e.command === 'sendMessage');

  // The official API's error callback also works.
  let called = null;
  room.getParticipant('bob').sendMessage('x', (e) => { called = e; }).catch(() => {});
  cmd = ws.command('sendMessage');
  ws.receive('DataStatusEvent', { operationId: cmd.operationId, status: 'FAILED', info: 'nope' });
  await until(() => called, 'error callback');
  assert.equal(called.info, 'nope');
});

test('a refused join fires the room FAILED with the server\'s info and a RoomFullError', async () => {
  const { session, ws } = await established();
  const room = session.join({ name: 'full' });
  let failed = null;
  room.on('FAILED', (r, info, error) => { failed = { r, info, error }; });
  const cmd = await until(() => ws.command('join'), 'join');
  ws.receive('DataStatusEvent', { operationId: cmd.operationId, status: 'FAILED', info: 'Room is full (capacity 2)' });
  await until(() => failed, 'FAILED');
  assert.equal(failed.r, room);
  assert.equal(failed.info, 'Room is full (capacity 2)');
  assert.ok(failed.error instanceof RoomFullError);
  assert.equal(session.getRooms().length, 0, 'the room is forgotten');
});

test('an unreachable server ends FAILED with a ConnectionError; disconnect() ends DISCONNECTED', async () => {
  FakeWebSocket.refuse = true;
  const session = connect({ urlServer: 'ws://nowhere/', username: 'alice' }, fakeEnv());
  const failed = await new Promise((resolve) => session.on('FAILED', (s, e) => resolve(e)));
  assert.ok(failed instanceof ConnectionError);
  assert.match(failed.message, /Cannot reach the server at ws:\/\/nowhere\//);
  assert.equal(session.status(), 'FAILED');

  FakeWebSocket.refuse = false;
  const { session: s2, events } = await established('bob');
  s2.disconnect();
  assert.deepEqual(events.map((e) => e[0]), ['ESTABLISHED', 'DISCONNECTED']);
  assert.equal(s2.status(), 'DISCONNECTED');
});

test('a session the server refuses or kicks ends FAILED with the reason and is not retried', async () => {
  const refused = [];
  const session = connect({ urlServer: 'ws://server/', username: 'mallory', reconnectDelaysMs: [5] }, fakeEnv());
  sessions.push(session);
  session.on('FAILED', (s, e) => refused.push(e));
  const ws = await until(() => FakeWebSocket.last()?.frames('connection').length && FakeWebSocket.last(), 'connection frame');
  ws.receive('fail', { apiMethod: 'connection', info: 'Restricted access: a token is required' });
  ws.drop(1000);
  await until(() => refused.length, 'FAILED');
  assert.ok(refused[0] instanceof ConnectionError);
  assert.match(refused[0].message, /Restricted access: a token is required/);

  const { session: kicked, ws: ws2, events } = await established('alice');
  const sockets = FakeWebSocket.all ? FakeWebSocket.all.length : null;
  ws2.receive('fail', { apiMethod: 'connection', info: 'Kicked by the administrator' });
  ws2.drop(1000);
  await until(() => events.some((e) => e[0] === 'FAILED'), 'FAILED after the kick');
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(!events.some((e) => e[0] === 'RECONNECTING'), `no retry: ${events.map((e) => e[0])}`);
  if (sockets !== null) assert.equal(FakeWebSocket.all.length, sockets, 'no new socket');
  assert.equal(kicked.status(), 'FAILED');
});

test('leave sends leave and ends the room\'s streams', async () => {
  const { session, ws } = await established();
  const { room } = await joined(session, ws, 'r1');
  const p = room.leave();
  const cmd = await until(() => ws.command('leave'), 'leave');
  assert.deepEqual(cmd.payload.options, { name: 'r1' });
  ws.receive('DataStatusEvent', { operationId: cmd.operationId, status: 'ACCEPTED' });
  assert.equal(await p, room);
  assert.equal(session.getRooms().length, 0);
});

test('publish: offer sent as publishStream, answer applied, PUBLISHING; mute; stop unpublishes', async () => {
  const { session, ws } = await established();
  const { room } = await joined(session, ws, 'r1', ['bob']);   // bob publishes nothing: VP8
  const statuses = [];
  const stream = room.publish({ constraints: { audio: true, video: true } });
  for (const s of ['PENDING', 'PUBLISHING', 'UNPUBLISHED', 'FAILED']) stream.on(s, () => statuses.push(s));
  const pub = await until(() => ws.frames('publishStream')[0], 'publishStream');
  assert.match(pub.name, /^r1-alice-[0-9a-f]{4}$/);
  assert.equal(pub.hasAudio, true);
  assert.equal(pub.hasVideo, true);
  assert.deepEqual(pub.custom, { name: 'r1' });
  assert.match(pub.sdp, /m=video 9 UDP\/TLS\/RTP\/SAVPF 96 97 /, 'VP8 first');
  assert.equal(stream.name(), pub.name);
  ws.receive('setRemoteSDP', pub.mediaSessionId, answerSdp('VP8'));
  // (the SDK also makes a throwaway connection to learn whether the browser has H.264)
  const pc = FakePeerConnection.all.find((c) => c.transceivers.some((t) => typeof t.trackOrKind === 'object'));
  await until(() => pc.remoteDescription, 'answer applied');
  ws.receive('notifyStreamStatusEvent', { mediaSessionId: pub.mediaSessionId, name: pub.name, status: 'PUBLISHING' });
  assert.equal(stream.status(), 'PUBLISHING');
  assert.equal(stream.codec(), 'VP8');

  stream.muteAudio();
  stream.muteVideo();
  assert.equal(stream.isAudioMuted(), true);
  assert.equal(stream.isVideoMuted(), true);
  assert.ok(stream.getMediaStream().getTracks().every((t) => !t.enabled));
  stream.unmuteVideo();
  assert.equal(stream.isVideoMuted(), false);
  assert.equal(stream.isAudioMuted(), true);

  stream.stop();
  assert.deepEqual(ws.frames('unPublishStream')[0], { mediaSessionId: pub.mediaSessionId, name: pub.name, published: false });
  assert.deepEqual(statuses, ['PENDING', 'PUBLISHING', 'UNPUBLISHED']);
  assert.ok(stream.getMediaStream().getTracks().every((t) => t.readyState === 'ended'), 'captured tracks stopped');
  assert.equal(pc.closed, true);
});

test('publish fails with a MediaAccessError when the camera is denied', async () => {
  fakeMediaDevices.denied = true;
  const { session, ws } = await established();
  const { room } = await joined(session, ws);
  const stream = room.publish({});
  const err = await new Promise((resolve) => stream.on('FAILED', (s, e) => resolve(e)));
  assert.equal(err.name, 'MediaAccessError');
  assert.equal(err.reason, 'denied');
  assert.equal(stream.status(), 'FAILED');
  assert.equal(ws.frames('publishStream').length, 0);
});

test('codec: H.264 when every participant sends H.264; switch to VP8 when one who cannot shows up', async () => {
  const { session, ws } = await established();
  const { room } = await joined(session, ws, 'r1', [{ login: 'bob', name: 'r1-bob-0001-h264' }]);
  const changed = [];
  const stream = room.publish({});
  stream.on('CODEC_CHANGED', (s, c) => changed.push(c));
  const pub = await until(() => ws.frames('publishStream')[0], 'publishStream');
  assert.match(pub.name, /^r1-alice-[0-9a-f]{4}-h264$/);
  assert.match(pub.sdp, /m=video 9 UDP\/TLS\/RTP\/SAVPF 102 103 96 /, 'H.264 first');
  ws.receive('setRemoteSDP', pub.mediaSessionId, answerSdp('H264'));
  ws.receive('notifyStreamStatusEvent', { mediaSessionId: pub.mediaSessionId, name: pub.name, status: 'PUBLISHING' });
  await until(() => stream.codec() === 'H264', 'H264 answer');

  // carol (no H.264) publishes: alice's stream is re-published as VP8 under a new media session.
  roomEvent(ws, 'r1', 'JOINED', 'carol');
  roomEvent(ws, 'r1', 'PUBLISHED', { login: 'carol', name: 'r1-carol-0002' });
  const again = await until(() => ws.frames('publishStream')[1], 'second publishStream');
  assert.deepEqual(ws.frames('unPublishStream')[0], { mediaSessionId: pub.mediaSessionId, name: pub.name, published: false });
  assert.equal(again.name, pub.name.replace(/-h264$/, ''));
  assert.notEqual(again.mediaSessionId, pub.mediaSessionId);
  assert.match(again.sdp, /m=video 9 UDP\/TLS\/RTP\/SAVPF 96 97 /);
  ws.receive('notifyStreamStatusEvent', { mediaSessionId: pub.mediaSessionId, name: pub.name, status: 'UNPUBLISHED' });
  ws.receive('setRemoteSDP', again.mediaSessionId, answerSdp('VP8'));
  await until(() => stream.codec() === 'VP8', 'VP8 answer');
  ws.receive('notifyStreamStatusEvent', { mediaSessionId: again.mediaSessionId, name: again.name, status: 'PUBLISHING' });
  assert.equal(stream.status(), 'PUBLISHING', 'the old session\'s UNPUBLISHED did not end the stream');
  assert.deepEqual(changed, ['VP8']);
});

test('codec: a room with an RTMP encoder keeps H.264, even when a VP8 publisher shows up', async () => {
  const { session, ws } = await established();
  // The encoder's stream plus a VP8 participant: without the encoder the SDK would choose VP8.
  const { room } = await joined(session, ws, 'r1', [
    { login: 'obs', name: 'r1-obs-rtmp-h264' },
    { login: 'carol', name: 'r1-carol-0002' },
  ]);
  const changed = [];
  const stream = room.publish({});
  stream.on('CODEC_CHANGED', (s, c) => changed.push(c));
  const pub = await until(() => ws.frames('publishStream')[0], 'publishStream');
  assert.match(pub.name, /-h264$/, 'H.264 for the RTMP players');
  assert.match(pub.sdp, /m=video 9 UDP\/TLS\/RTP\/SAVPF 102 103 96 /, 'H.264 first');
  ws.receive('setRemoteSDP', pub.mediaSessionId, answerSdp('H264'));
  ws.receive('notifyStreamStatusEvent', { mediaSessionId: pub.mediaSessionId, name: pub.name, status: 'PUBLISHING' });
  await until(() => stream.codec() === 'H264', 'H264 answer');
  roomEvent(ws, 'r1', 'JOINED', 'dave');
  roomEvent(ws, 'r1', 'PUBLISHED', { login: 'dave', name: 'r1-dave-0003' });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(ws.frames('publishStream').length, 1, 'no switch to VP8');
  assert.deepEqual(changed, []);
});

test('a browser without H.264 always publishes VP8 and waits instead of playing an H.264 stream', async () => {
  FakePeerConnection.offer = OFFER_SDP_NO_H264;
  const { session, ws } = await established('bob');
  const { room } = await joined(session, ws, 'r1', [{ login: 'alice', name: 'r1-alice-0001-h264' }]);
  room.publish({});
  const pub = await until(() => ws.frames('publishStream')[0], 'publishStream');
  assert.doesNotMatch(pub.name, /h264/);
  const player = room.getParticipant('alice').getStreams()[0].play(null);
  await until(() => player.getInfo(), 'waiting info');
  assert.equal(player.status(), 'PENDING');
  assert.equal(ws.frames('playStream').length, 0, 'no play request that would fail with No common codecs');
  let stopped = false;
  player.on('STOPPED', () => { stopped = true; });
  roomEvent(ws, 'r1', 'UNPUBLISHED', { login: 'alice', name: 'r1-alice-0001-h264' });
  assert.equal(stopped, true);
});

test('play: playStream with a receive-only offer, PLAYING, STOPPED by the publisher', async () => {
  const { session, ws } = await established('bob');
  const { room } = await joined(session, ws, 'r1', [{ login: 'alice', name: 'r1-alice-0001' }]);
  const rs = room.getParticipant('alice').getStreams()[0];
  const player = rs.play(null);
  const seen = [];
  for (const s of ['PLAYING', 'STOPPED', 'FAILED']) player.on(s, (st) => seen.push([s, st.getInfo()]));
  const req = await until(() => ws.frames('playStream')[0], 'playStream');
  assert.equal(req.name, 'r1-alice-0001');
  assert.equal(req.published, false);
  const pc = FakePeerConnection.all[FakePeerConnection.all.length - 1];
  assert.deepEqual(pc.transceivers.map((t) => `${t.trackOrKind}:${t.init.direction}`), ['audio:recvonly', 'video:recvonly']);
  ws.receive('setRemoteSDP', req.mediaSessionId, answerSdp('VP8'));
  ws.receive('notifyStreamStatusEvent', { mediaSessionId: req.mediaSessionId, name: req.name, status: 'PLAYING' });
  ws.receive('notifyStreamStatusEvent', { mediaSessionId: req.mediaSessionId, name: req.name, status: 'STOPPED', info: 'Stopped by publisher stop' });
  assert.deepEqual(seen, [['PLAYING', ''], ['STOPPED', 'Stopped by publisher stop']]);

  // A FAILED status carries the server's info in a StreamError.
  const p2 = rs.play(null);
  const err = new Promise((resolve) => p2.on('FAILED', (s, e) => resolve(e)));
  const req2 = await until(() => ws.frames('playStream')[1], 'second playStream');
  ws.receive('notifyStreamStatusEvent', { mediaSessionId: req2.mediaSessionId, name: req2.name, status: 'FAILED', info: 'No common codecs' });
  const e = await err;
  assert.equal(e.name, 'StreamError');
  assert.equal(e.info, 'No common codecs');
});

test('a dropped socket: RECONNECTING, RECONNECTED, the room is joined again and the camera published again', async () => {
  const { session, ws, events } = await established();
  const { room, log } = await joined(session, ws, 'r1', ['bob', { login: 'carol', name: 'r1-carol-0001' }]);
  const stream = room.publish({});
  const pub = await until(() => ws.frames('publishStream')[0], 'publishStream');
  ws.receive('notifyStreamStatusEvent', { mediaSessionId: pub.mediaSessionId, name: pub.name, status: 'PUBLISHING' });
  const player = room.getParticipant('carol').getStreams()[0].play(null);
  await until(() => ws.frames('playStream')[0], 'playStream');
  const streamStatuses = [];
  stream.on('PENDING', (s) => streamStatuses.push(`PENDING:${s.getInfo()}`));
  stream.on('PUBLISHING', () => streamStatuses.push('PUBLISHING'));
  let playerEnd = null;
  player.on('STOPPED', (s) => { playerEnd = s.getInfo(); });

  ws.drop();
  assert.equal(session.status(), 'RECONNECTING');
  assert.equal(playerEnd, 'Stopped by session disconnect');
  assert.deepEqual(streamStatuses, ['PENDING:Reconnecting']);
  const ws2 = await until(() => FakeWebSocket.all.length === 2 && FakeWebSocket.all[1].frames('connection').length && FakeWebSocket.all[1], 'new socket');
  ws2.receive('getUserData', { authToken: 't2' });
  // bob left meanwhile, dave came; carol's stream is there again.
  const cmd = await until(() => ws2.command('join'), 'join again');
  ws2.receive('DataStatusEvent', { operationId: cmd.operationId, status: 'ACCEPTED' });
  roomEvent(ws2, 'r1', 'STATE', [{ login: 'carol', name: 'r1-carol-0001' }, 'dave']);
  await until(() => log.some((e) => e[0] === 'REJOINED'), 'REJOINED');
  const after = log.slice(log.findIndex((e) => e[0] === 'REJOINED')).map((e) => `${e[0]}${e[1] && e[1].name && e[0] !== 'REJOINED' ? ':' + e[1].name() : ''}`);
  assert.deepEqual(after, ['REJOINED', 'LEFT:bob', 'PUBLISHED:carol', 'JOINED:dave']);
  assert.deepEqual(events.map((e) => e[0]), ['ESTABLISHED', 'RECONNECTING', 'RECONNECTED']);
  assert.equal(events[1][1].attempt, 1);
  assert.ok(events[1][1].error instanceof ConnectionError);

  const pub2 = await until(() => ws2.frames('publishStream')[0], 'publish again');
  assert.notEqual(pub2.mediaSessionId, pub.mediaSessionId);
  ws2.receive('notifyStreamStatusEvent', { mediaSessionId: pub2.mediaSessionId, name: pub2.name, status: 'PUBLISHING' });
  assert.deepEqual(streamStatuses, ['PENDING:Reconnecting', 'PUBLISHING']);
  assert.equal(session.status(), 'ESTABLISHED');
});

test('a re-join refused while the server still holds the old login is retried', async () => {
  const { session, ws } = await established();
  const { log } = await joined(session, ws, 'r1');
  ws.drop();
  const ws2 = await until(() => FakeWebSocket.all[1]?.frames('connection').length && FakeWebSocket.all[1], 'new socket');
  ws2.receive('getUserData', {});
  const first = await until(() => ws2.command('join'), 'join again');
  ws2.receive('DataStatusEvent', { operationId: first.operationId, status: 'FAILED', info: "Login 'alice' is already in room 'r1'" });
  const second = await until(() => {
    const c = ws2.command('join');
    return c && c.operationId !== first.operationId && c;
  }, 'join retried', 3000);
  ws2.receive('DataStatusEvent', { operationId: second.operationId, status: 'ACCEPTED' });
  roomEvent(ws2, 'r1', 'STATE', []);
  await until(() => log.some((e) => e[0] === 'REJOINED'), 'REJOINED');
  assert.ok(!log.some((e) => e[0] === 'FAILED'));
});

test('reconnection gives up after reconnectTimeoutMs: FAILED', async () => {
  const { session, ws, events } = await established('alice', { reconnectTimeoutMs: 40, reconnectDelaysMs: [10] });
  FakeWebSocket.refuse = true;
  ws.drop();
  await until(() => session.status() === 'FAILED', 'FAILED', 3000);
  const failed = events.find((e) => e[0] === 'FAILED');
  assert.match(failed[1].message, /could not reconnect within/);
  assert.ok(events.filter((e) => e[0] === 'RECONNECTING').length >= 2);
});
