// Test doubles for running the webcall SDK under Node: a scriptable WebSocket (the test plays
// the server), an RTCPeerConnection that produces canned offers, and fake capture devices.

/** SDP of a Chromium-like offer: audio (Opus), video (VP8, VP9, H.264 pm1 and pm0, with rtx). */
export const OFFER_SDP = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 0', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendonly',
  'a=rtpmap:111 opus/48000/2', 'a=rtpmap:0 PCMU/8000',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 102 103 104 105', 'c=IN IP4 0.0.0.0', 'a=mid:1', 'a=sendonly',
  'a=rtpmap:96 VP8/90000', 'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96',
  'a=rtpmap:98 VP9/90000', 'a=rtpmap:99 rtx/90000', 'a=fmtp:99 apt=98',
  'a=rtpmap:102 H264/90000', 'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f',
  'a=rtpmap:103 rtx/90000', 'a=fmtp:103 apt=102',
  'a=rtpmap:104 H264/90000', 'a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f',
  'a=rtpmap:105 rtx/90000', 'a=fmtp:105 apt=104',
  '',
].join('\r\n');

/** The same without H.264 (Firefox ESR here). */
export const OFFER_SDP_NO_H264 = OFFER_SDP.replace(/ 102 103 104 105/, '').split('\r\n')
  .filter((l) => !/:(102|103|104|105) /.test(l)).join('\r\n');

export function answerSdp(codec) {
  const pt = codec === 'H264' ? '102' : '96';
  return [
    'v=0', 'o=- 2 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1', 'a=ice-lite',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 127.0.0.1', 'a=candidate:1 1 udp 2130706431 127.0.0.1 31000 typ host', 'a=mid:0', 'a=recvonly', 'a=rtpmap:111 opus/48000/2',
    `m=video 9 UDP/TLS/RTP/SAVPF ${pt}`, 'c=IN IP4 127.0.0.1', 'a=candidate:1 1 udp 2130706431 127.0.0.1 31000 typ host', 'a=mid:1', 'a=recvonly',
    codec === 'H264' ? 'a=rtpmap:102 H264/90000' : 'a=rtpmap:96 VP8/90000',
    '',
  ].join('\r\n');
}

/** A WebSocket whose server side is the test. All instances are kept in FakeWebSocket.all. */
export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static all = [];
  /** When set, new sockets fail to connect (error + close) instead of opening. */
  static refuse = false;

  constructor(url) {
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    this.sent = [];
    this.onopen = this.onmessage = this.onerror = this.onclose = null;
    FakeWebSocket.all.push(this);
    setTimeout(() => {
      if (this.readyState !== FakeWebSocket.CONNECTING) return;
      if (FakeWebSocket.refuse) {
        this.readyState = FakeWebSocket.CLOSED;
        this.onerror && this.onerror({});
        this.onclose && this.onclose({ code: 1006, reason: '' });
        return;
      }
      this.readyState = FakeWebSocket.OPEN;
      this.onopen && this.onopen({});
    }, 0);
  }

  static reset() {
    FakeWebSocket.all = [];
    FakeWebSocket.refuse = false;
  }

  static last() {
    return FakeWebSocket.all[FakeWebSocket.all.length - 1];
  }

  send(text) {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(text));
  }

  close() {
    this.readyState = FakeWebSocket.CLOSED;
  }

  /** The server sends a frame. */
  receive(message, ...data) {
    this.onmessage && this.onmessage({ data: JSON.stringify({ message, data }) });
  }

  /** The server (or the network) drops the connection. */
  drop(code = 1006) {
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose && this.onclose({ code, reason: '' });
  }

  /** Frames sent with `message` (their data[0]). */
  frames(message) {
    return this.sent.filter((f) => f.message === message).map((f) => f.data[0]);
  }

  /** The last sendData with `command`. */
  command(command) {
    const all = this.frames('sendData').filter((d) => d.payload.command === command);
    return all[all.length - 1];
  }
}

export class FakeTrack {
  constructor(kind) {
    this.kind = kind;
    this.enabled = true;
    this.readyState = 'live';
    this.listeners = {};
  }
  stop() { this.readyState = 'ended'; }
  addEventListener(type, f) { (this.listeners[type] ||= []).push(f); }
}

export class FakeMediaStream {
  constructor(tracks = []) { this.tracks = [...tracks]; }
  getTracks() { return [...this.tracks]; }
  getAudioTracks() { return this.tracks.filter((t) => t.kind === 'audio'); }
  getVideoTracks() { return this.tracks.filter((t) => t.kind === 'video'); }
  addTrack(t) { this.tracks.push(t); }
}

export const fakeMediaDevices = {
  denied: false,
  async getUserMedia(c) {
    if (this.denied) throw Object.assign(new Error('Permission denied'), { name: 'NotAllowedError' });
    const tracks = [];
    if (c.audio) tracks.push(new FakeTrack('audio'));
    if (c.video) tracks.push(new FakeTrack('video'));
    return new FakeMediaStream(tracks);
  },
  async getDisplayMedia() {
    return new FakeMediaStream([new FakeTrack('video')]);
  },
};

/** An RTCPeerConnection with canned offers (`FakePeerConnection.offer` decides which). */
export class FakePeerConnection {
  static offer = OFFER_SDP;
  static all = [];
  constructor() {
    this.transceivers = [];
    this.localDescription = null;
    this.remoteDescription = null;
    this.connectionState = 'new';
    this.closed = false;
    this.listeners = {};
    FakePeerConnection.all.push(this);
  }
  addTransceiver(trackOrKind, init) { this.transceivers.push({ trackOrKind, init }); }
  async createOffer() { return { type: 'offer', sdp: FakePeerConnection.offer }; }
  async setLocalDescription(d) { this.localDescription = d; }
  async setRemoteDescription(d) { this.remoteDescription = d; }
  async getStats() { return new Map(); }
  addEventListener(type, f) { (this.listeners[type] ||= []).push(f); }
  close() { this.closed = true; }
}

/** The env a test session runs with. */
export function fakeEnv() {
  return {
    WebSocket: FakeWebSocket,
    RTCPeerConnection: FakePeerConnection,
    MediaStream: FakeMediaStream,
    mediaDevices: fakeMediaDevices,
    document: undefined,
    clientInfo: { os: 'test', browser: 'node' },
  };
}

/** Resolves once fn() is truthy (polled every ms), or rejects after `ms`. */
export async function until(fn, what = 'condition', ms = 2000) {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
