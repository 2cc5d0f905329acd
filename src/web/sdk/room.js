// webcall SDK — a joined room: its participants and their streams, built from the server's
// room events (STATE, JOINED, LEFT, PUBLISHED, UNPUBLISHED/FAILED, MESSAGE); publishing into the
// room; chat to one participant or to everyone; leaving. Also re-joins after a reconnection and
// decides the video codec of the room's publishers (H.264 when everybody sends it, else VP8).
//
// Room events and their arguments:
//   STATE(room)                      the join was accepted; getParticipants() lists the others
//   JOINED(participant)  LEFT(participant)
//   PUBLISHED(participant, stream)   a participant's stream can be played
//   UNPUBLISHED(participant, stream) it ended
//   MESSAGE({from: participant, text})
//   FAILED(room, info, error)        the join was refused (error: RefusedError / RoomFullError)
//   REJOINED(room)                   joined again after a reconnection

import { Emitter } from './emitter.js';
import { StateError } from './errors.js';
import {
  ROOM_EVENT, STREAM_INFO, isH264Stream, isRtmpStream, isScreenStream, joinOptions, messageOptions, streamName,
} from './protocol.js';
import { Stream } from './stream.js';

/** How long a re-join keeps retrying while the server still holds the old session's login. */
const REJOIN_RETRY_MS = 1000;

export class Room extends Emitter {
  constructor(session, name, record) {
    super();
    this._session = session;
    this._name = name;
    this._record = record;
    this._participants = new Map();   // login -> Participant
    this._joined = false;             // STATE seen on the current socket
    this._everJoined = false;
    this._rejoining = false;
    this._left = false;
    this._publishers = new Set();     // local Streams published into this room
    this._waiters = [];               // {resolve, reject} waiting for the join
  }

  name() { return this._name; }
  getParticipants() { return [...this._participants.values()]; }
  getParticipant(login) { return this._participants.get(login) || null; }
  /** True between STATE and leave (false while reconnecting). */
  isJoined() { return this._joined; }

  /**
   * Publishes into the room. options: {display, constraints, record, name, codec, mediaStream,
   * screen}. Returns the Stream at once; it reports PUBLISHING, UNPUBLISHED or FAILED.
   */
  publish(options = {}) {
    if (this._left) throw new StateError('publish: the room was left');
    const screen = !!options.screen || !!(options.constraints && options.constraints.video && options.constraints.video.type === 'screen');
    const base = streamName(this._name, this._session.username(), {
      suffix: options.name || (screen ? 'screen' : undefined),
    });
    const stream = new Stream(this._session, this, {
      kind: 'publish', name: base, display: options.display, options: { ...options, screen },
    });
    this._publishers.add(stream);
    stream.on('_ended', () => this._publishers.delete(stream));
    // Started after the caller has attached its handlers, so they see PENDING too.
    queueMicrotask(() => stream._start());
    return stream;
  }

  /** Sends `text` to everyone else in the room (one command, broadcast by the server). */
  sendMessage(text) {
    return this._session._sendData('sendMessage', messageOptions(this._name, text));
  }

  /** Leaves the room; ends this room's streams. Resolves with the room. */
  async leave() {
    if (this._left) return this;
    const wasJoined = this._joined;
    this._left = true;
    this._joined = false;
    let error = null;
    if (wasJoined) {
      try {
        await this._session._sendData('leave', { name: this._name });
      } catch (err) {
        error = err;
      }
    }
    this._cleanUp();
    if (error && error.code === 'REFUSED') throw error;
    return this;
  }

  // --- internal ------------------------------------------------------------------------------

  /** Resolves once the room is joined (STATE seen), rejects if the join fails or the room is left. */
  _ready() {
    if (this._joined) return Promise.resolve(this);
    if (this._left) return Promise.reject(new StateError('The room was left'));
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
  }

  _settle(error) {
    const waiters = this._waiters;
    this._waiters = [];
    for (const w of waiters) {
      if (error) w.reject(error);
      else w.resolve(this);
    }
  }

  /** Sends `join` (first time, or again after a reconnection). */
  _join() {
    if (this._left) return;
    this._rejoining = this._everJoined;
    this._session._sendData('join', joinOptions(this._name, this._record)).catch((err) => {
      if (this._left) return;
      // After a drop the server may still hold the old socket's login for a moment.
      if (this._rejoining && err.code === 'REFUSED' && /already/i.test(err.info) && !this._session._ended) {
        setTimeout(() => {
          if (!this._left && this._session.status() === 'ESTABLISHED') this._join();
        }, REJOIN_RETRY_MS);
        return;
      }
      if (err.code === 'CONNECTION') return; // the session reconnects and joins again
      this._left = true;
      this._cleanUp();
      this._settle(err);
      this.emit(ROOM_EVENT.FAILED, this, err.info, err);
    });
  }

  /** The socket dropped: the server has taken us out of the room. */
  _suspend() {
    this._joined = false;
  }

  /** The session ended for good. */
  _gone() {
    this._joined = false;
    this._left = true;
    this._settle(new StateError('The session ended'));
  }

  _cleanUp() {
    for (const s of this._session.getStreams()) {
      if (s._room === this) s.stop();
    }
    this._participants.clear();
    this._session._forgetRoom(this);
    this._settle(new StateError('The room was left'));
  }

  _participant(login) {
    let p = this._participants.get(login);
    if (!p) {
      p = new Participant(this, login);
      this._participants.set(login, p);
    }
    return p;
  }

  _onEvent(payload) {
    if (this._left) return;
    const info = payload.info;
    switch (payload.name) {
      case 'STATE':
        this._onState(Array.isArray(info) ? info : []);
        break;
      case 'JOINED': {
        if (typeof info !== 'string' || info === this._session.username()) break;
        const known = this._participants.has(info);
        const p = this._participant(info);
        if (!known) this.emit(ROOM_EVENT.JOINED, p);
        break;
      }
      case 'LEFT': {
        const p = this._participants.get(info);
        if (!p) break;
        this._participants.delete(info);
        for (const rs of p._streams.values()) rs._ended();
        this.emit(ROOM_EVENT.LEFT, p);
        break;
      }
      case 'PUBLISHED': {
        if (!info || !info.login || !info.name || info.login === this._session.username()) break;
        const p = this._participant(info.login);
        const rs = p._addStream(info.name);
        this.emit(ROOM_EVENT.PUBLISHED, p, rs);
        this._checkCodecs();
        break;
      }
      case 'UNPUBLISHED':
      case 'FAILED': {
        if (!info || !info.login || !info.name) break;
        const p = this._participants.get(info.login);
        const rs = p && p._streams.get(info.name);
        if (!rs) break;
        p._streams.delete(info.name);
        rs._ended();
        this.emit(ROOM_EVENT.UNPUBLISHED, p, rs);
        break;
      }
      case 'MESSAGE': {
        if (!info) break;
        const from = this._participants.get(info.from) || new Participant(this, String(info.from ?? ''));
        this.emit(ROOM_EVENT.MESSAGE, { from, text: String(info.text ?? '') });
        break;
      }
      default:
        break;
    }
  }

  _onState(entries) {
    const fresh = new Map();   // login -> [stream names]
    for (const e of entries) {
      if (typeof e === 'string') {
        if (!fresh.has(e)) fresh.set(e, []);
      } else if (e && e.login) {
        if (!fresh.has(e.login)) fresh.set(e.login, []);
        if (e.name) fresh.get(e.login).push(e.name);
      }
    }
    fresh.delete(this._session.username());
    this._joined = true;
    if (!this._rejoining) {
      for (const [login, names] of fresh) {
        const p = this._participant(login);
        for (const n of names) p._addStream(n);
      }
      this._everJoined = true;
      this._settle(null);
      this.emit(ROOM_EVENT.STATE, this);
      return;
    }
    // Re-join: tell the page what changed while we were away, then publish again.
    this._rejoining = false;
    this.emit(ROOM_EVENT.REJOINED, this);
    for (const [login, p] of [...this._participants]) {
      if (!fresh.has(login)) {
        this._participants.delete(login);
        for (const rs of p._streams.values()) rs._ended();
        this.emit(ROOM_EVENT.LEFT, p);
      }
    }
    for (const [login, names] of fresh) {
      const known = this._participants.has(login);
      const p = this._participant(login);
      for (const rs of p._streams.values()) rs._ended();
      p._streams.clear();
      if (!known) this.emit(ROOM_EVENT.JOINED, p);
      for (const n of names) this.emit(ROOM_EVENT.PUBLISHED, p, p._addStream(n));
    }
    this._settle(null);
    for (const s of this._publishers) s._resume();
  }

  /**
   * The video codec a new publication uses: H.264 when this browser has it and every other
   * participant publishes H.264 (so its browser decodes it), or when an RTMP encoder is in
   * the room (RTMP players get H.264 only), else VP8.
   */
  async _chooseCodec(requested) {
    const want = String(requested || 'auto').toLowerCase();
    if (want === 'vp8') return 'VP8';
    const can = await this._session._canH264();
    if (!can) return 'VP8';
    if (want === 'h264' || this._hasRtmp()) return 'H264';
    for (const p of this._participants.values()) {
      const names = [...p._streams.keys()];
      if (!names.some(isH264Stream)) return 'VP8';
    }
    return 'H264';
  }

  /** Whether an RTMP encoder publishes in the room. */
  _hasRtmp() {
    for (const p of this._participants.values()) {
      if ([...p._streams.keys()].some(isRtmpStream)) return true;
    }
    return false;
  }

  /** A participant published something other than H.264: our H.264 publications switch to VP8. */
  _checkCodecs() {
    if (this._hasRtmp()) return;
    for (const p of this._participants.values()) {
      const names = [...p._streams.keys()];
      if (names.length && !names.some(isH264Stream)) {
        for (const s of this._publishers) s._codecMayChange();
        return;
      }
    }
  }
}

/** Another participant of a room. */
export class Participant {
  constructor(room, login) {
    this._room = room;
    this._login = login;
    this._streams = new Map();   // stream name -> ParticipantStream
  }

  name() { return this._login; }
  /** Streams this participant publishes, oldest first. */
  getStreams() { return [...this._streams.values()]; }

  /** Sends `text` to this participant only. `error` (optional) is called on refusal, as in the official API. */
  sendMessage(text, error) {
    const p = this._room._session._sendData('sendMessage', messageOptions(this._room.name(), text, this._login));
    if (typeof error === 'function') p.catch((e) => error(e));
    return p;
  }

  _addStream(name) {
    let rs = this._streams.get(name);
    if (!rs) {
      rs = new ParticipantStream(this, name);
      this._streams.set(name, rs);
    }
    return rs;
  }
}

/** A stream another participant publishes; `play(display)` starts playing it. */
export class ParticipantStream {
  constructor(participant, name) {
    this._participant = participant;
    this._name = name;
    this._players = new Set();
  }

  streamName() { return this._name; }
  participant() { return this._participant; }
  /** True for a screen or window share. */
  isScreen() { return isScreenStream(this._name); }
  /** True when the publisher sends H.264 (webcall SDK publishers mark their stream name). */
  isH264() { return isH264Stream(this._name); }
  /** The id of the newest live player of this stream, if any. */
  id() {
    const live = [...this._players].filter((s) => !s._done);
    return live.length ? live[live.length - 1].id() : undefined;
  }

  /** Plays the stream into `display` (a <video> or a container for one). Returns the Stream. */
  play(display, options = {}) {
    const room = this._participant._room;
    const stream = new Stream(room._session, room, {
      kind: 'play', name: this._name, display, options, participant: this._participant,
    });
    this._players.add(stream);
    stream.on('_ended', () => this._players.delete(stream));
    // Started after the caller has attached its handlers, so they see PENDING too.
    queueMicrotask(() => stream._start());
    return stream;
  }

  /** Stops every player of this stream. */
  stop() {
    for (const s of [...this._players]) s.stop();
  }

  _ended() {
    for (const s of [...this._players]) {
      if (s.status() === 'PENDING' && s._waitingForCodec) s._end('STOPPED', STREAM_INFO.STOPPED_BY_PUBLISHER_STOP, null);
    }
  }
}
