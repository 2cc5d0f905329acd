// webcall SDK — the WCS WebSocket protocol as plain data: status names, frame builders and
// parsers, stream naming, and SDP codec ordering. Pure functions only (no sockets, no DOM), so
// it runs and is unit-tested under Node as well as in browsers.
//
// Frames are JSON text: {"message": NAME, "data": [OBJ]}. See docs/sdk.md for the exchange.

/** Session statuses (the official room API's names, plus the two reconnection states). */
export const SESSION_STATUS = Object.freeze({
  PENDING: 'PENDING',
  CONNECTED: 'CONNECTED',
  ESTABLISHED: 'ESTABLISHED',
  RECONNECTING: 'RECONNECTING',
  RECONNECTED: 'RECONNECTED',
  DISCONNECTED: 'DISCONNECTED',
  FAILED: 'FAILED',
});

/** Room events: the official six, plus REJOINED after an automatic re-join. */
export const ROOM_EVENT = Object.freeze({
  STATE: 'STATE',
  JOINED: 'JOINED',
  LEFT: 'LEFT',
  PUBLISHED: 'PUBLISHED',
  UNPUBLISHED: 'UNPUBLISHED',
  MESSAGE: 'MESSAGE',
  FAILED: 'FAILED',
  REJOINED: 'REJOINED',
});

/** Stream statuses as the server reports them in notifyStreamStatusEvent. */
export const STREAM_STATUS = Object.freeze({
  NEW: 'NEW',
  PENDING: 'PENDING',
  PUBLISHING: 'PUBLISHING',
  PLAYING: 'PLAYING',
  UNPUBLISHED: 'UNPUBLISHED',
  STOPPED: 'STOPPED',
  FAILED: 'FAILED',
});

/** Stream events that are not statuses. */
export const STREAM_EVENT = Object.freeze({
  /** A remote stream could not start with sound (autoplay policy); it plays muted. */
  UNMUTE_REQUIRED: 'UNMUTE_REQUIRED',
  /** A published stream was re-published with another video codec (`stream.codec()`). */
  CODEC_CHANGED: 'CODEC_CHANGED',
});

/** `info` texts of the WCS server that the SDK reuses for its own stream endings. */
export const STREAM_INFO = Object.freeze({
  STOPPED_BY_SESSION_DISCONNECT: 'Stopped by session disconnect',
  STOPPED_BY_PUBLISHER_STOP: 'Stopped by publisher stop',
  NO_COMMON_CODECS: 'No common codecs',
  RECONNECTING: 'Reconnecting',
  WAITING_FOR_CODEC: 'Waiting for the publisher to switch to a codec this browser decodes',
});

/** The statuses after which a stream is over. */
export const FINAL_STATUSES = Object.freeze(['UNPUBLISHED', 'STOPPED', 'FAILED']);

/** appKey of the WCS room application. */
export const ROOM_APP_KEY = 'roomApp';

/** Suffix of the second, video-only stream that shares a screen or a window. */
export const SCREEN_SUFFIX = 'screen';

/** Marks a stream sent as H.264 (and so a publisher whose browser decodes H.264). */
export const H264_MARK = 'h264';

// ---------------------------------------------------------------------------------------------
// Frames

/** One client frame, as text. The client always sends `data: [obj]`. */
export function frame(message, data) {
  return JSON.stringify({ message, data: [data === undefined ? null : data] });
}

/**
 * Parses one server frame. Returns {message, data, obj} (obj = data[0] or {}) or null when the
 * text is not a protocol frame.
 */
export function parseFrame(text) {
  if (typeof text !== 'string') return null;
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  if (!msg || typeof msg !== 'object' || typeof msg.message !== 'string') return null;
  const data = Array.isArray(msg.data) ? msg.data : (msg.data === undefined ? [] : [msg.data]);
  const first = data[0];
  return { message: msg.message, data, obj: first && typeof first === 'object' ? first : {} };
}

/** The `connection` frame's object: the room application, the login and an optional token. */
export function connectionData({ username, token, appKey, clientInfo = {} }) {
  const custom = { login: username };
  if (token !== undefined && token !== null && token !== '') custom.token = token;
  return {
    appKey: appKey || ROOM_APP_KEY,
    mediaProviders: ['WebRTC'],
    keepAlive: false,
    clientVersion: '2.0',
    clientOSVersion: clientInfo.os || '',
    clientBrowserVersion: clientInfo.browser || '',
    msePacketizationVersion: 2,
    custom,
  };
}

/** `sendData` object for an app command (join, leave, sendMessage). */
export function sendDataData(operationId, command, options) {
  return { operationId, payload: { command, options } };
}

/** Options of `join`. */
export function joinOptions(room, record) {
  const o = { name: room };
  if (record !== undefined) o.record = !!record;
  return o;
}

/**
 * Options of `sendMessage`. Without `to` it is a broadcast to everyone else in the room (a
 * webcall extension; the official SDK always names one recipient).
 */
export function messageOptions(room, text, to) {
  const o = { roomConfig: { name: room }, text: String(text) };
  if (to !== undefined && to !== null) o.to = to;
  return o;
}

/** `publishStream` object. */
export function publishData({ id, name, room, sdp, hasAudio, hasVideo, record, constraints }) {
  return {
    mediaSessionId: id,
    name,
    published: true,
    hasVideo: !!hasVideo,
    hasAudio: !!hasAudio,
    status: 'PENDING',
    record: !!record,
    mediaProvider: 'WebRTC',
    sdp,
    custom: { name: room },
    bitrate: 0,
    minBitrate: 0,
    maxBitrate: 0,
    constraints: constraints || { audio: !!hasAudio, video: !!hasVideo },
  };
}

/** `playStream` object (the offer is receive-only). */
export function playData({ id, name, room, sdp }) {
  return {
    mediaSessionId: id,
    name,
    published: false,
    hasVideo: true,
    hasAudio: true,
    status: 'PENDING',
    record: false,
    width: 0,
    height: 0,
    mediaProvider: 'WebRTC',
    sdp,
    custom: { name: room },
    bitrate: 0,
    minBitrate: 0,
    maxBitrate: 0,
    quality: 0,
    constraints: { audio: true, video: true },
  };
}

/** `unPublishStream` / `stopStream` object. */
export function streamRef({ id, name }) {
  return { mediaSessionId: id, name, published: false };
}

// ---------------------------------------------------------------------------------------------
// Names and ids

/** A random UUID (v4), also outside secure contexts. */
export function uuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') {
    try {
      return c.randomUUID();
    } catch { /* not a secure context */ }
  }
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * A room stream name: ROOM-LOGIN-XXXX[-SUFFIX][-h264], as the official SDK names them
 * (XXXX four hex digits), with `-h264` when the stream is sent as H.264.
 */
export function streamName(room, login, { suffix, h264 = false, tag } = {}) {
  const id = tag || uuid().replace(/-/g, '').slice(0, 4);
  let name = `${room}-${login}-${id}`;
  if (suffix) name += `-${suffix}`;
  if (h264) name += `-${H264_MARK}`;
  return name;
}

/** The name with the codec mark set or removed. */
export function withH264Mark(name, h264) {
  const bare = isH264Stream(name) ? name.slice(0, -(H264_MARK.length + 1)) : name;
  return h264 ? `${bare}-${H264_MARK}` : bare;
}

/** True for a stream sent as H.264 by a webcall SDK publisher. */
export function isH264Stream(name) {
  return typeof name === 'string' && name.endsWith(`-${H264_MARK}`);
}

/**
 * True for a stream an RTMP encoder publishes (webcall names it ROOM-LOGIN-rtmp-h264). RTMP
 * carries H.264 only, both ways: a room with one prefers H.264.
 */
export function isRtmpStream(name) {
  return typeof name === 'string' && name.endsWith(`-rtmp-${H264_MARK}`);
}

/** True for a screen-sharing stream (webcall's `-screen`, the official examples' `screenShare`). */
export function isScreenStream(name) {
  if (typeof name !== 'string') return false;
  const bare = isH264Stream(name) ? name.slice(0, -(H264_MARK.length + 1)) : name;
  return bare.endsWith(`-${SCREEN_SUFFIX}`) || /screenShare/i.test(bare);
}

// ---------------------------------------------------------------------------------------------
// SDP

/**
 * Video codecs of an SDP's first video m-section, in offer order: [{pt, name, fmtp}].
 */
export function sdpVideoCodecs(sdp) {
  const sections = splitSections(sdp);
  const video = sections.find((s) => s.media === 'video');
  if (!video) return [];
  return video.payloads.map((pt) => ({
    pt,
    name: (video.rtpmap.get(pt) || '').split('/')[0],
    fmtp: video.fmtp.get(pt) || '',
  }));
}

/** True when the SDP offers H.264 with packetization-mode=1 for video. */
export function sdpHasH264(sdp) {
  return sdpVideoCodecs(sdp).some((c) => isH264Pm1(c));
}

function isH264Pm1(c) {
  return c.name.toUpperCase() === 'H264' && /packetization-mode=1/.test(c.fmtp);
}

/**
 * Reorders the payload types of every video m-line so that `prefer` ('H264' or 'VP8') comes
 * first, together with its retransmission (rtx) payloads; everything else keeps its order.
 * For H.264 the packetization-mode=1 entries go first. Returns the SDP unchanged when it lacks
 * the codec.
 */
export function preferVideoCodec(sdp, prefer) {
  const want = String(prefer).toUpperCase();
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(/\r?\n/);
  const sections = splitSections(sdp);
  for (const s of sections) {
    if (s.media !== 'video') continue;
    const main = s.payloads.filter((pt) => {
      const name = (s.rtpmap.get(pt) || '').split('/')[0].toUpperCase();
      if (name !== want) return false;
      return want !== 'H264' || /packetization-mode=1/.test(s.fmtp.get(pt) || '');
    });
    if (!main.length) continue;
    const rtx = s.payloads.filter((pt) => {
      const name = (s.rtpmap.get(pt) || '').split('/')[0].toUpperCase();
      const apt = /apt=(\d+)/.exec(s.fmtp.get(pt) || '');
      return name === 'RTX' && apt && main.includes(apt[1]);
    });
    const first = [...main, ...rtx];
    const order = [...first, ...s.payloads.filter((pt) => !first.includes(pt))];
    const parts = lines[s.line].split(' ');
    lines[s.line] = [...parts.slice(0, 3), ...order].join(' ');
  }
  return lines.join(eol);
}

/** The video codec an answer settled on (its first video payload), e.g. 'H264' or 'VP8'. */
export function answerVideoCodec(sdp) {
  const codecs = sdpVideoCodecs(sdp || '');
  return codecs.length ? codecs[0].name.toUpperCase() : null;
}

function splitSections(sdp) {
  const lines = String(sdp || '').split(/\r?\n/);
  const sections = [];
  let cur = null;
  lines.forEach((l, i) => {
    if (l.startsWith('m=')) {
      const parts = l.slice(2).split(' ');
      cur = { media: parts[0], line: i, payloads: parts.slice(3).filter(Boolean), rtpmap: new Map(), fmtp: new Map() };
      sections.push(cur);
      return;
    }
    if (!cur) return;
    let m = /^a=rtpmap:(\d+) (.+)$/.exec(l);
    if (m) {
      cur.rtpmap.set(m[1], m[2]);
      return;
    }
    m = /^a=fmtp:(\d+) (.+)$/.exec(l);
    if (m) cur.fmtp.set(m[1], m[2]);
  });
  return sections;
}
