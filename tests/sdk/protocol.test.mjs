// SDK unit tests: the protocol layer (frames, names, SDP codec order, answer repair) and the
// error types, as pure functions under Node.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  answerVideoCodec, connectionData, frame, isH264Stream, isRtmpStream, isScreenStream, joinOptions, messageOptions,
  parseFrame, playData, preferVideoCodec, publishData, sdpHasH264, sdpVideoCodecs,
  sendDataData, streamName, streamRef, withH264Mark,
} from '../../src/web/sdk/protocol.js';
import {
  ConnectionError, MediaAccessError, RefusedError, RoomFullError, WebcallError, mediaError, refusal,
} from '../../src/web/sdk/errors.js';
import { OFFER_SDP, OFFER_SDP_NO_H264 } from './fakes.mjs';

test('frames are {message, data: [obj]} and parse back', () => {
  const text = frame('pong', null);
  assert.equal(text, '{"message":"pong","data":[null]}');
  assert.deepEqual(parseFrame('{"message":"setRemoteSDP","data":["id1","v=0"]}'),
    { message: 'setRemoteSDP', data: ['id1', 'v=0'], obj: {} });
  assert.deepEqual(parseFrame('{"message":"ping","data":[null]}').obj, {});
  assert.equal(parseFrame('not json'), null);
  assert.equal(parseFrame('{"data":[]}'), null);
  assert.equal(parseFrame(42), null);
});

test('connection carries the room app key, the login and the token only when given', () => {
  const c = connectionData({ username: 'alice', clientInfo: { os: 'x', browser: 'y' } });
  assert.equal(c.appKey, 'roomApp');
  assert.deepEqual(c.custom, { login: 'alice' });
  assert.deepEqual(c.mediaProviders, ['WebRTC']);
  assert.equal(c.clientBrowserVersion, 'y');
  assert.deepEqual(connectionData({ username: 'bob', token: 'jwt' }).custom, { login: 'bob', token: 'jwt' });
  assert.equal(connectionData({ username: 'bob', appKey: 'other' }).appKey, 'other');
});

test('app commands: join, leave, sendMessage to one and to everyone', () => {
  assert.deepEqual(sendDataData('op1', 'join', joinOptions('r1', false)),
    { operationId: 'op1', payload: { command: 'join', options: { name: 'r1', record: false } } });
  assert.deepEqual(joinOptions('r1'), { name: 'r1' });
  assert.deepEqual(messageOptions('r1', 'hi', 'bob'), { roomConfig: { name: 'r1' }, text: 'hi', to: 'bob' });
  const all = messageOptions('r1', 'hi all');
  assert.deepEqual(all, { roomConfig: { name: 'r1' }, text: 'hi all' });
  assert.ok(!('to' in all), 'a broadcast has no "to"');
});

test('publishStream and playStream objects', () => {
  const p = publishData({ id: 'm1', name: 'r1-alice-abcd', room: 'r1', sdp: 'SDP', hasAudio: true, hasVideo: false });
  assert.equal(p.published, true);
  assert.equal(p.mediaProvider, 'WebRTC');
  assert.deepEqual(p.custom, { name: 'r1' });
  assert.deepEqual(p.constraints, { audio: true, video: false });
  assert.equal(p.record, false);
  const q = playData({ id: 'm2', name: 'r1-alice-abcd', room: 'r1', sdp: 'SDP' });
  assert.equal(q.published, false);
  assert.equal(q.mediaSessionId, 'm2');
  assert.deepEqual(streamRef({ id: 'm2', name: 'n' }), { mediaSessionId: 'm2', name: 'n', published: false });
});

test('stream names: ROOM-LOGIN-XXXX[-suffix][-h264]', () => {
  assert.match(streamName('r1', 'alice'), /^r1-alice-[0-9a-f]{4}$/);
  assert.equal(streamName('r1', 'alice', { tag: 'abcd', suffix: 'screen' }), 'r1-alice-abcd-screen');
  assert.equal(streamName('r1', 'alice', { tag: 'abcd', h264: true }), 'r1-alice-abcd-h264');
  assert.ok(isH264Stream('r1-alice-abcd-h264'));
  assert.ok(!isH264Stream('r1-alice-abcd'));
  assert.ok(isRtmpStream('r1-obs-rtmp-h264'), 'an RTMP encoder\'s stream');
  assert.ok(!isRtmpStream('r1-alice-abcd-h264'));
  assert.ok(isScreenStream('r1-alice-abcd-screen'));
  assert.ok(isScreenStream('r1-alice-abcd-screen-h264'));
  assert.ok(isScreenStream('r1-alice-abcd-screenShare'), 'the official examples\' name');
  assert.ok(!isScreenStream('r1-alice-abcd'));
  assert.equal(withH264Mark('r1-alice-abcd-h264', false), 'r1-alice-abcd');
  assert.equal(withH264Mark('r1-alice-abcd', true), 'r1-alice-abcd-h264');
  assert.equal(withH264Mark('r1-alice-abcd-h264', true), 'r1-alice-abcd-h264');
});

test('codec order: H.264 (packetization-mode 1) or VP8 first, rtx with it, the rest kept', () => {
  assert.deepEqual(sdpVideoCodecs(OFFER_SDP).map((c) => c.pt), ['96', '97', '98', '99', '102', '103', '104', '105']);
  assert.ok(sdpHasH264(OFFER_SDP));
  assert.ok(!sdpHasH264(OFFER_SDP_NO_H264));
  const h = preferVideoCodec(OFFER_SDP, 'H264');
  assert.match(h, /\r\nm=video 9 UDP\/TLS\/RTP\/SAVPF 102 103 96 97 98 99 104 105\r\n/);
  assert.match(h, /\r\nm=audio 9 UDP\/TLS\/RTP\/SAVPF 111 0\r\n/, 'audio untouched');
  const v = preferVideoCodec(h, 'VP8');
  assert.match(v, /\r\nm=video 9 UDP\/TLS\/RTP\/SAVPF 96 97 102 103 98 99 104 105\r\n/);
  assert.equal(preferVideoCodec(OFFER_SDP_NO_H264, 'H264'), OFFER_SDP_NO_H264, 'no H.264: unchanged');
  assert.equal(answerVideoCodec('v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n'), 'H264');
  assert.equal(answerVideoCodec(''), null);
});

test('errors: typed, with the server\'s info', () => {
  const full = refusal('join', 'Room is full (capacity 3)');
  assert.ok(full instanceof RoomFullError && full instanceof RefusedError && full instanceof WebcallError);
  assert.equal(full.code, 'ROOM_FULL');
  assert.equal(full.info, 'Room is full (capacity 3)');
  const dup = refusal('join', "Login 'bob' is already in room 'r1'");
  assert.ok(dup instanceof RefusedError && !(dup instanceof RoomFullError));
  assert.equal(dup.command, 'join');
  assert.match(dup.message, /refused join: Login 'bob'/);
  const denied = mediaError(Object.assign(new Error('x'), { name: 'NotAllowedError' }));
  assert.ok(denied instanceof MediaAccessError);
  assert.equal(denied.reason, 'denied');
  assert.equal(denied.device, 'camera');
  const screen = mediaError(Object.assign(new Error('x'), { name: 'NotFoundError' }), 'screen');
  assert.equal(screen.reason, 'not-found');
  assert.equal(screen.device, 'screen');
  assert.equal(screen.message, 'No screen was found');
  assert.equal(new ConnectionError('gone', { url: 'ws://x/' }).code, 'CONNECTION');
});
