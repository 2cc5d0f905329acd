// webcall SDK — the WCS session: one WebSocket to the server, the `connection` handshake,
// app commands (`sendData` → `DataStatusEvent`), routing of room events and stream answers,
// keep-alive, and automatic reconnection with re-join after a dropped socket.
//
// Session statuses: PENDING → CONNECTED → ESTABLISHED, then DISCONNECTED (asked for or closed
// by the server) or FAILED (unreachable, or reconnection gave up). A socket lost after
// ESTABLISHED leads to RECONNECTING (one event per attempt) and RECONNECTED, after which every
// room is joined again (room event REJOINED) and every published stream is published again.

import { Emitter } from './emitter.js';
import { ConnectionError, StateError, TimeoutError, refusal } from './errors.js';
import {
  SESSION_STATUS, STREAM_INFO, connectionData, frame, parseFrame, sdpHasH264, sendDataData, uuid,
} from './protocol.js';
import { Room } from './room.js';

const DEFAULTS = {
  timeout: 10000,              // ms to get ESTABLISHED (0: no limit)
  commandTimeoutMs: 15000,     // ms to wait for a DataStatusEvent
  reconnect: true,             // re-open the socket and re-join after a drop
  reconnectDelaysMs: [500, 1000, 2000, 4000],
  reconnectTimeoutMs: 60000,   // give up (FAILED) after this long without a session
  keepAliveTimeoutMs: 15000,   // once the server pings, a silence this long counts as a drop
};

/** What the SDK takes from the page's global scope; tests pass their own. */
function defaultEnv() {
  const g = globalThis;
  return {
    WebSocket: g.WebSocket,
    RTCPeerConnection: g.RTCPeerConnection,
    MediaStream: g.MediaStream,
    mediaDevices: g.navigator && g.navigator.mediaDevices,
    document: g.document,
    clientInfo: {
      os: (g.navigator && g.navigator.appVersion) || '',
      browser: (g.navigator && g.navigator.userAgent) || '',
    },
  };
}

export class Session extends Emitter {
  constructor(options = {}, env = {}) {
    super();
    if (!options.urlServer) throw new StateError('connect: urlServer is required');
    if (!options.username) throw new StateError('connect: username is required');
    this._opts = { ...DEFAULTS, ...options };
    this._env = { ...defaultEnv(), ...env };
    this._id = uuid();
    this._status = SESSION_STATUS.PENDING;
    this._ws = null;
    this._pending = new Map();     // operationId -> {resolve, reject, command, timer}
    this._rooms = new Map();       // room name -> Room
    this._streams = new Map();     // mediaSessionId -> Stream
    this._everEstablished = false;
    this._ended = false;
    this._connectTimer = null;
    this._retry = null;            // {attempt, since, timer} while reconnecting
    this._lastHeard = 0;
    this._keepAliveTimer = null;
    this._h264 = null;             // Promise<boolean>: this browser sends and decodes H.264
    this._open();
  }

  // --- public API ------------------------------------------------------------------------

  /** One of SESSION_STATUS. */
  status() { return this._status; }
  id() { return this._id; }
  username() { return this._opts.username; }
  getServerUrl() { return this._opts.urlServer; }
  getRooms() { return [...this._rooms.values()]; }
  /** Every live stream of this session (published and played). */
  getStreams() { return [...new Set(this._streams.values())]; }

  /** Joins a room; returns the Room at once (its events tell how the join went). */
  join({ name, record } = {}) {
    if (!name) throw new StateError('join: a room name is required');
    if (this._ended) throw new StateError('join: the session is over');
    if (this._rooms.has(name)) return this._rooms.get(name);
    const room = new Room(this, name, record);
    this._rooms.set(name, room);
    if (this._status === SESSION_STATUS.ESTABLISHED) room._join();
    return room;
  }

  /** Closes the session: published streams end UNPUBLISHED, played ones STOPPED. */
  disconnect() {
    if (this._ended) return;
    this._finish(SESSION_STATUS.DISCONNECTED, null, true);
  }

  // --- socket ------------------------------------------------------------------------------

  _open() {
    const url = this._opts.urlServer;
    let ws;
    try {
      if (typeof this._env.WebSocket !== 'function') throw new Error('this environment has no WebSocket');
      ws = new this._env.WebSocket(url);
    } catch (err) {
      const e = new ConnectionError(`Bad server address ${url}: ${err.message}`, { url });
      setTimeout(() => this._socketLost(ws, e, true), 0);
      return;
    }
    this._ws = ws;
    let sawError = false;
    if (this._opts.timeout > 0) {
      clearTimeout(this._connectTimer);
      this._connectTimer = setTimeout(() => {
        if (this._ws === ws && this._status !== SESSION_STATUS.ESTABLISHED) {
          this._socketLost(ws, new ConnectionError(`The server at ${url} did not answer within ${this._opts.timeout} ms`, { url }), true);
        }
      }, this._opts.timeout);
    }
    ws.onopen = () => {
      if (this._ws !== ws) return;
      if (!this._retry) this._setStatus(SESSION_STATUS.CONNECTED);
      this._send('connection', connectionData({
        username: this._opts.username,
        token: this._opts.token,
        appKey: this._opts.appKey,
        clientInfo: this._env.clientInfo,
      }));
    };
    ws.onmessage = (ev) => {
      if (this._ws !== ws) return;
      this._lastHeard = Date.now();
      this._onFrame(ev.data);
    };
    ws.onerror = () => { sawError = true; };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      const reached = this._status === SESSION_STATUS.ESTABLISHED;
      const why = ev && ev.reason ? ` (${ev.reason})` : '';
      const err = reached
        ? new ConnectionError(`The connection to the server was lost${why}`, { url, closeCode: ev && ev.code, reason: ev && ev.reason })
        : new ConnectionError(`Cannot reach the server at ${url}${why}`, { url, closeCode: ev && ev.code, reason: ev && ev.reason });
      this._socketLost(ws, err, sawError || !reached);
    };
  }

  /** Sends one frame; false when the socket is not open. */
  _send(message, data) {
    const ws = this._ws;
    const OPEN = (this._env.WebSocket && this._env.WebSocket.OPEN) ?? 1;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(frame(message, data));
    return true;
  }

  /** Sends an app command; resolves with the DataStatusEvent, rejects with a WebcallError. */
  _sendData(command, options) {
    const operationId = uuid();
    return new Promise((resolve, reject) => {
      if (this._status !== SESSION_STATUS.ESTABLISHED) {
        reject(new ConnectionError(`Cannot send ${command}: the session is ${this._status}`));
        return;
      }
      const timer = this._opts.commandTimeoutMs > 0
        ? setTimeout(() => {
          this._pending.delete(operationId);
          reject(new TimeoutError(command, this._opts.commandTimeoutMs));
        }, this._opts.commandTimeoutMs)
        : null;
      this._pending.set(operationId, { resolve, reject, command, timer });
      this._send('sendData', sendDataData(operationId, command, options));
    });
  }

  _onFrame(text) {
    const f = parseFrame(text);
    if (!f) return;
    const { message, data, obj } = f;
    switch (message) {
      case 'ping':
        this._send('pong', null);
        this._startKeepAlive();
        break;
      case 'getUserData':
        this._onUserData(obj);
        break;
      case 'DataStatusEvent': {
        const op = this._pending.get(obj.operationId);
        if (!op) break;
        this._pending.delete(obj.operationId);
        clearTimeout(op.timer);
        if (obj.status === 'FAILED') op.reject(refusal(op.command, obj.info));
        else op.resolve(obj);
        break;
      }
      case 'OnDataEvent': {
        const payload = obj.payload || {};
        const room = this._rooms.get(payload.roomName);
        if (room) room._onEvent(payload);
        break;
      }
      case 'setRemoteSDP': {
        const stream = this._streams.get(data[0]);
        if (stream) stream._onAnswer(data[1]);
        break;
      }
      case 'notifyStreamStatusEvent': {
        const stream = this._streams.get(obj.mediaSessionId);
        if (stream) stream._onStatus(obj.status, obj.info, obj);
        break;
      }
      case 'fail': {
        if (obj.apiMethod === 'connection') {
          // Refused or ended by the server (a bad or revoked token, a login in use, a kick):
          // it closes the socket next; retrying with the same credentials would not help.
          const err = new ConnectionError(`The server refused the session: ${obj.info}`, { url: this._opts.urlServer, reason: obj.info });
          err.refused = true;
          if (this._retry) clearTimeout(this._retry.timer);
          this._retry = null;
          this._socketLost(this._ws, err, true);
          break;
        }
        if (obj.apiMethod === 'StreamStatusEvent') {
          const stream = this._streams.get(obj.id);
          if (stream) stream._onStatus('FAILED', obj.info, obj);
        }
        this.emit('WARN', this, obj);
        break;
      }
      default:
        break;
    }
  }

  _onUserData(obj) {
    clearTimeout(this._connectTimer);
    const again = !!this._retry;
    if (this._retry) {
      clearTimeout(this._retry.timer);
      this._retry = null;
    }
    this._authToken = obj.authToken;
    // Rooms joined before (or while reconnecting) are joined now; a join() called from the
    // ESTABLISHED handler below sends its own command.
    const waiting = [...this._rooms.values()];
    this._status = SESSION_STATUS.ESTABLISHED;
    this._everEstablished = true;
    for (const room of waiting) room._join();
    this._setStatus(SESSION_STATUS.ESTABLISHED, null, again ? SESSION_STATUS.RECONNECTED : SESSION_STATUS.ESTABLISHED);
  }

  _startKeepAlive() {
    const limit = this._opts.keepAliveTimeoutMs;
    if (!(limit > 0) || this._keepAliveTimer) return;
    this._keepAliveTimer = setInterval(() => {
      const ws = this._ws;
      if (ws && this._status === SESSION_STATUS.ESTABLISHED && Date.now() - this._lastHeard > limit) {
        this._socketLost(ws, new ConnectionError(`The server was silent for ${Math.round(limit / 1000)} s`), false);
      }
    }, Math.max(250, Math.floor(limit / 3)));
  }

  _stopKeepAlive() {
    clearInterval(this._keepAliveTimer);
    this._keepAliveTimer = null;
  }

  /** The socket `ws` is gone (closed, timed out or silent). */
  _socketLost(ws, error, failed) {
    if (this._ended || (ws && this._ws !== ws)) return;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try { ws.close(); } catch { /* already closed */ }
    }
    clearTimeout(this._connectTimer);
    this._stopKeepAlive();
    this._rejectPending(error);
    if (this._retry) {
      this._scheduleRetry(error);
    } else if (this._everEstablished && this._opts.reconnect && !error.refused) {
      this._retry = { attempt: 0, since: Date.now(), timer: null };
      for (const room of this._rooms.values()) room._suspend();
      for (const stream of this.getStreams()) stream._suspend();
      this._scheduleRetry(error);
    } else {
      this._finish(failed ? SESSION_STATUS.FAILED : SESSION_STATUS.DISCONNECTED, error, false);
    }
  }

  _scheduleRetry(error) {
    const r = this._retry;
    const delays = this._opts.reconnectDelaysMs;
    const delayMs = delays[Math.min(r.attempt, delays.length - 1)];
    if (Date.now() + delayMs - r.since > this._opts.reconnectTimeoutMs) {
      this._retry = null;
      const e = new ConnectionError(`Lost the connection to the server and could not reconnect within ${Math.round(this._opts.reconnectTimeoutMs / 1000)} s (${error.message})`,
        { url: this._opts.urlServer });
      this._finish(SESSION_STATUS.FAILED, e, false);
      return;
    }
    r.attempt += 1;
    this._setStatus(SESSION_STATUS.RECONNECTING, { attempt: r.attempt, delayMs, error });
    r.timer = setTimeout(() => {
      if (this._retry === r && !this._ended) this._open();
    }, delayMs);
  }

  _rejectPending(error) {
    for (const op of this._pending.values()) {
      clearTimeout(op.timer);
      op.reject(error);
    }
    this._pending.clear();
  }

  /** Terminal: ends streams and rooms, closes the socket, reports `status` once. */
  _finish(status, error, asked) {
    if (this._ended) return;
    this._ended = true;
    clearTimeout(this._connectTimer);
    this._stopKeepAlive();
    if (this._retry) clearTimeout(this._retry.timer);
    this._retry = null;
    this._rejectPending(error || new ConnectionError('The session was disconnected'));
    for (const stream of this.getStreams()) {
      if (asked) stream._end(stream.published() ? 'UNPUBLISHED' : 'STOPPED', STREAM_INFO.STOPPED_BY_SESSION_DISCONNECT, null);
      else stream._end('FAILED', STREAM_INFO.STOPPED_BY_SESSION_DISCONNECT, error);
    }
    for (const room of this._rooms.values()) room._gone();
    this._rooms.clear();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try { ws.close(1000, 'disconnect'); } catch { /* already closed */ }
    }
    this._setStatus(status, error);
  }

  /** Sets the status and emits `event` (default: the status) with (session, detail). */
  _setStatus(status, detail, event = status) {
    this._status = status;
    this.emit(event, this, detail === undefined ? null : detail);
  }

  // --- helpers for rooms and streams -------------------------------------------------------

  _register(id, stream) { this._streams.set(id, stream); }
  _unregister(id) { this._streams.delete(id); }
  _forgetRoom(room) {
    if (this._rooms.get(room.name()) === room) this._rooms.delete(room.name());
  }

  /** Resolves true when this browser both offers and can receive H.264 (packetization-mode 1). */
  _canH264() {
    if (this._h264) return this._h264;
    const PC = this._env.RTCPeerConnection;
    this._h264 = (async () => {
      if (typeof PC !== 'function') return false;
      let pc;
      try {
        pc = new PC();
        pc.addTransceiver('video', { direction: 'sendrecv' });
        const offer = await pc.createOffer();
        return sdpHasH264(offer.sdp);
      } catch {
        return false;
      } finally {
        try { pc && pc.close(); } catch { /* closed */ }
      }
    })();
    return this._h264;
  }
}

/** Opens a session to a webcall (or WCS) server: `connect({urlServer, username, token?})`. */
export function connect(options, env) {
  return new Session(options, env);
}
