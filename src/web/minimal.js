// webcall minimal page: join a room, publish the camera, play everybody else, chat.
//
// Speaks the WCS WebSocket room protocol directly (no SDK):
//   connection -> getUserData, sendData {join|leave|sendMessage} -> DataStatusEvent,
//   OnDataEvent {STATE|JOINED|LEFT|PUBLISHED|UNPUBLISHED|FAILED|MESSAGE},
//   publishStream / playStream with an SDP offer -> setRemoteSDP answer,
//   notifyStreamStatusEvent, ping -> pong.
// One RTCPeerConnection per stream; the browser always makes the offer.

const $ = (id) => document.getElementById(id);

const ui = {
  joinForm: $('joinForm'),
  name: $('name'),
  room: $('room'),
  join: $('join'),
  leave: $('leave'),
  status: $('status'),
  tiles: $('tiles'),
  localVideo: $('localVideo'),
  localName: $('localName'),
  localState: $('localState'),
  invite: $('invite'),
  inviteLink: $('inviteLink'),
  chatLog: $('chatLog'),
  chatForm: $('chatForm'),
  chatInput: $('chatInput'),
  chatSend: $('chatSend'),
};

const CONNECT_TIMEOUT_MS = 10000;
const LEAVE_TIMEOUT_MS = 3000;

// ---------------------------------------------------------------------------------------------
// Small helpers

function uuid() {
  if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // crypto.randomUUID exists only in secure contexts; getRandomValues exists everywhere.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function randomSuffix(len) {
  return uuid().replace(/-/g, '').slice(0, len);
}

function setStatus(text, kind = '') {
  ui.status.textContent = text;
  ui.status.className = 'status' + (kind ? ' ' + kind : '');
}

function clock() {
  const d = new Date();
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

function chatLine(from, text, kind = '') {
  const li = document.createElement('li');
  if (kind) li.className = kind;
  const time = document.createElement('time');
  time.textContent = clock();
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = from || '';
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(time, who, body);
  ui.chatLog.append(li);
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

function systemLine(text) {
  chatLine('', text, 'system');
}

function wsUrlForPage() {
  const params = new URLSearchParams(location.search);
  if (params.get('ws')) return params.get('ws');
  const secure = location.protocol === 'https:';
  const port = location.port || (secure ? '8443' : '8080');
  return `${secure ? 'wss' : 'ws'}://${location.hostname}:${port}/`;
}

function describeMediaError(err) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return 'Camera and microphone access was denied';
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return 'No camera or microphone was found';
  }
  if (name === 'NotReadableError' || name === 'AbortError') {
    return 'The camera or microphone is in use by another program';
  }
  return `Could not start the camera (${(err && err.message) || name || err})`;
}

async function getCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error('Camera access needs a secure page (https or localhost)'), { readable: true });
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch (err) {
    if (err && (err.name === 'NotFoundError' || err.name === 'OverconstrainedError')) {
      // Try with whatever device exists.
      for (const c of [{ video: true }, { audio: true }]) {
        try {
          return await navigator.mediaDevices.getUserMedia(c);
        } catch (_) { /* try the next one */ }
      }
    }
    throw err;
  }
}

function startPlayback(video, tile) {
  video.muted = false;
  const p = video.play();
  if (!p || typeof p.catch !== 'function') return;
  p.catch((err) => {
    if (err && err.name === 'AbortError') return; // superseded by a newer load
    // Autoplay with sound refused: play muted and offer a button.
    video.muted = true;
    video.play().catch(() => {});
    if (tile && !tile.querySelector('.unmute')) {
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'unmute';
      btn.textContent = 'Unmute';
      btn.addEventListener('click', () => {
        video.muted = false;
        video.play().catch(() => {});
        btn.remove();
      });
      tile.append(btn);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// One WCS session = one Join. A new Join opens a new session.

class RoomSession {
  constructor(login, room, url, camera) {
    this.login = login;
    this.room = room;
    this.url = url;
    this.camera = camera;            // MediaStream or null (watch only)
    this.ws = null;
    this.established = false;
    this.joined = false;
    this.closed = false;
    this.pending = new Map();        // operationId -> {resolve, reject}
    this.media = new Map();          // mediaSessionId -> stream record
    this.playing = new Map();        // stream name -> stream record
    this.participants = new Map();   // login -> {tiles: Map(streamName | '' -> tile)}
    this.publisher = null;
    this.connectTimer = null;
  }

  // --- socket ----------------------------------------------------------------------------

  open() {
    setStatus(`Connecting to ${this.url} …`);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.fail(`Bad server address ${this.url}: ${err.message}`);
      return;
    }
    this.ws = ws;
    this.connectTimer = setTimeout(() => {
      if (!this.established) this.fail(`The server at ${this.url} did not answer`);
    }, CONNECT_TIMEOUT_MS);
    ws.addEventListener('open', () => {
      this.send('connection', {
        appKey: 'roomApp',
        mediaProviders: ['WebRTC'],
        clientVersion: '2.0',
        clientOSVersion: navigator.appVersion,
        clientBrowserVersion: navigator.userAgent,
        msePacketizationVersion: 2,
        custom: { login: this.login },
      });
    });
    ws.addEventListener('message', (ev) => this.onMessage(ev));
    ws.addEventListener('close', (ev) => {
      if (this.closed) return;
      if (!this.established) {
        this.fail(`Cannot reach the server at ${this.url}` + (ev.reason ? ` (${ev.reason})` : ''));
      } else {
        this.fail('Connection to the server was lost' + (ev.reason ? `: ${ev.reason}` : ''));
      }
    });
    // 'error' is always followed by 'close', which reports it.
  }

  send(message, data) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ message, data: [data] }));
    }
  }

  sendData(command, options) {
    const operationId = uuid();
    return new Promise((resolve, reject) => {
      this.pending.set(operationId, { resolve, reject });
      this.send('sendData', { operationId, payload: { command, options } });
    });
  }

  onMessage(ev) {
    if (typeof ev.data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (_) {
      console.warn('webcall: unreadable message from server', ev.data);
      return;
    }
    const data = Array.isArray(msg.data) ? msg.data : [];
    const obj = data[0] || {};
    switch (msg.message) {
      case 'ping':
        this.send('pong', null);
        break;
      case 'getUserData':
        this.onEstablished();
        break;
      case 'DataStatusEvent': {
        const op = this.pending.get(obj.operationId);
        if (op) {
          this.pending.delete(obj.operationId);
          if (obj.status === 'FAILED') op.reject(new Error(obj.info || 'refused by the server'));
          else op.resolve(obj);
        }
        break;
      }
      case 'OnDataEvent':
        this.onRoomEvent(obj.payload || {});
        break;
      case 'setRemoteSDP':
        this.onAnswer(data[0], data[1]);
        break;
      case 'notifyStreamStatusEvent':
        this.onStreamStatus(obj.mediaSessionId, obj.status, obj.info);
        break;
      case 'fail':
        if (obj.apiMethod === 'StreamStatusEvent') this.onStreamStatus(obj.id, 'FAILED', obj.info);
        else if (obj.info) console.warn('webcall: server warning:', obj.info);
        break;
      default:
        break;
    }
  }

  // --- session and room --------------------------------------------------------------------

  async onEstablished() {
    if (this.established) return;
    this.established = true;
    clearTimeout(this.connectTimer);
    setStatus(`Connected. Joining room “${this.room}” …`);
    try {
      await this.sendData('join', { name: this.room });
    } catch (err) {
      this.fail(`Could not join room “${this.room}”: ${err.message}`);
      return;
    }
    this.onJoined();
  }

  onJoined() {
    if (this.joined || this.closed) return;
    this.joined = true;
    app.onJoined(this);
    this.updateStatus();
    if (this.camera) this.publish();
  }

  updateStatus() {
    if (this.closed) return;
    const others = this.participants.size;
    const who = others === 0 ? 'nobody else here' : `${others} other participant${others === 1 ? '' : 's'}`;
    const warn = this.camera ? '' : ` — watching only (${this.mediaProblem || 'no camera'})`;
    setStatus(`In room “${this.room}” as ${this.login} — ${who}${warn}`, this.camera ? 'ok' : 'warn');
  }

  onRoomEvent(payload) {
    if (this.closed || payload.roomName !== this.room) return;
    const info = payload.info;
    switch (payload.name) {
      case 'STATE':
        for (const entry of Array.isArray(info) ? info : []) {
          if (typeof entry === 'string') {
            this.addParticipant(entry);
          } else if (entry && entry.login) {
            this.addParticipant(entry.login);
            if (entry.name) this.play(entry.login, entry.name);
          }
        }
        this.onJoined();
        this.updateStatus();
        break;
      case 'JOINED':
        if (typeof info === 'string' && info !== this.login) {
          this.addParticipant(info);
          systemLine(`${info} joined`);
          this.updateStatus();
        }
        break;
      case 'LEFT':
        if (typeof info === 'string' && info !== this.login) {
          this.removeParticipant(info);
          systemLine(`${info} left`);
          this.updateStatus();
        }
        break;
      case 'PUBLISHED':
        if (info && info.login && info.login !== this.login && info.name) {
          this.addParticipant(info.login);
          this.play(info.login, info.name);
        }
        break;
      case 'UNPUBLISHED':
      case 'FAILED':
        if (info && info.name && this.playing.has(info.name)) {
          this.endPlay(this.playing.get(info.name), payload.name === 'FAILED' ? 'stream failed' : 'stopped');
        }
        break;
      case 'MESSAGE':
        if (info) chatLine(info.from || '?', String(info.text ?? ''));
        break;
      default:
        break;
    }
  }

  addParticipant(login) {
    if (login === this.login || this.participants.has(login)) return;
    const p = { tiles: new Map() };
    this.participants.set(login, p);
    p.tiles.set('', makeTile(login, 'no video'));
  }

  removeParticipant(login) {
    const p = this.participants.get(login);
    if (!p) return;
    for (const rec of [...this.playing.values()]) {
      if (rec.login === login) this.endPlay(rec, 'left', true);
    }
    for (const tile of p.tiles.values()) tile.remove();
    this.participants.delete(login);
  }

  tileFor(login, streamName) {
    this.addParticipant(login);
    const p = this.participants.get(login);
    if (p.tiles.has(streamName)) return p.tiles.get(streamName);
    let tile = p.tiles.get('');
    if (tile) {
      p.tiles.delete('');
    } else {
      tile = makeTile(login, '');
    }
    const label = streamName.endsWith('-screenShare') ? `${login} (screen)` : login;
    tile.querySelector('.who').textContent = label;
    tile.dataset.stream = streamName;
    p.tiles.set(streamName, tile);
    return tile;
  }

  releaseTile(login, streamName) {
    const p = this.participants.get(login);
    if (!p) return;
    const tile = p.tiles.get(streamName);
    if (!tile) return;
    p.tiles.delete(streamName);
    if (p.tiles.size === 0) {
      // Keep one placeholder so the participant stays visible.
      const video = tile.querySelector('video');
      video.srcObject = null;
      tile.querySelector('.who').textContent = login;
      tile.querySelector('.state').textContent = 'no video';
      delete tile.dataset.stream;
      const btn = tile.querySelector('.unmute');
      if (btn) btn.remove();
      p.tiles.set('', tile);
    } else {
      tile.remove();
    }
  }

  // --- streams -------------------------------------------------------------------------------

  async publish() {
    const id = uuid();
    const name = `${this.room}-${this.login}-${randomSuffix(4)}`;
    const pc = new RTCPeerConnection();
    const rec = { id, name, pc, kind: 'publish', status: 'PENDING' };
    this.publisher = rec;
    this.media.set(id, rec);
    this.watchConnection(rec, (text) => { ui.localState.textContent = text; });
    for (const track of this.camera.getTracks()) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [this.camera] });
    }
    ui.localState.textContent = 'connecting…';
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
    } catch (err) {
      this.streamFailed(rec, `could not create an offer: ${err.message}`);
      return;
    }
    if (this.closed) return;
    const hasVideo = this.camera.getVideoTracks().length > 0;
    const hasAudio = this.camera.getAudioTracks().length > 0;
    this.send('publishStream', {
      mediaSessionId: id,
      name,
      published: true,
      hasVideo,
      hasAudio,
      status: 'PENDING',
      record: false,
      mediaProvider: 'WebRTC',
      sdp: pc.localDescription.sdp,
      custom: { name: this.room },
      bitrate: 0,
      minBitrate: 0,
      maxBitrate: 0,
      constraints: { audio: hasAudio, video: hasVideo },
    });
  }

  async play(login, streamName) {
    if (this.closed || this.playing.has(streamName)) return;
    const id = uuid();
    const tile = this.tileFor(login, streamName);
    const video = tile.querySelector('video');
    const state = tile.querySelector('.state');
    const pc = new RTCPeerConnection();
    const remote = new MediaStream();
    const rec = { id, name: streamName, login, pc, kind: 'play', status: 'PENDING', tile };
    this.media.set(id, rec);
    this.playing.set(streamName, rec);
    state.textContent = 'connecting…';
    this.watchConnection(rec, (text) => { state.textContent = text; });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addEventListener('track', (ev) => {
      remote.addTrack(ev.track);
      if (video.srcObject !== remote) video.srcObject = remote;
      startPlayback(video, tile);
    });
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
    } catch (err) {
      this.streamFailed(rec, `could not create an offer: ${err.message}`);
      return;
    }
    if (this.closed || rec.ended) return;
    this.send('playStream', {
      mediaSessionId: id,
      name: streamName,
      published: false,
      hasVideo: true,
      hasAudio: true,
      status: 'PENDING',
      record: false,
      width: 0,
      height: 0,
      mediaProvider: 'WebRTC',
      sdp: pc.localDescription.sdp,
      custom: { name: this.room },
      bitrate: 0,
      minBitrate: 0,
      maxBitrate: 0,
      quality: 0,
      constraints: { audio: true, video: true },
    });
  }

  watchConnection(rec, show) {
    rec.pc.addEventListener('connectionstatechange', () => {
      if (rec.ended) return;
      const s = rec.pc.connectionState;
      if (s === 'failed') show('connection failed');
      else if (s === 'disconnected') show('reconnecting…');
      else if (s === 'connected') show(rec.kind === 'publish' ? (rec.status === 'PUBLISHING' ? 'live' : 'connecting…') : '');
    });
  }

  async onAnswer(id, sdp) {
    const rec = this.media.get(id);
    if (!rec || rec.ended || typeof sdp !== 'string') return;
    try {
      await rec.pc.setRemoteDescription({ type: 'answer', sdp });
    } catch (err) {
      this.streamFailed(rec, `the server's answer was not accepted: ${err.message}`);
    }
  }

  onStreamStatus(id, status, info) {
    const rec = this.media.get(id);
    if (!rec || rec.ended) return;
    rec.status = status;
    if (rec.kind === 'publish') {
      if (status === 'PUBLISHING') {
        ui.localState.textContent = 'live';
      } else if (status === 'FAILED') {
        this.streamFailed(rec, info || 'failed');
      } else if (status === 'UNPUBLISHED') {
        this.endPublish('not publishing');
      }
    } else if (status === 'PLAYING') {
      rec.tile.querySelector('.state').textContent = '';
    } else if (status === 'FAILED') {
      this.streamFailed(rec, info || 'failed');
    } else if (status === 'STOPPED') {
      this.endPlay(rec, 'stopped');
    }
  }

  streamFailed(rec, info) {
    if (rec.kind === 'publish') {
      this.endPublish(`failed: ${info}`);
      setStatus(`Your camera could not be published: ${info}`, 'warn');
    } else {
      console.warn(`webcall: playing ${rec.name} failed: ${info}`);
      this.endPlay(rec, `failed: ${info}`);
    }
  }

  endPublish(text) {
    const rec = this.publisher;
    if (!rec || rec.ended) return;
    rec.ended = true;
    rec.pc.close();
    this.media.delete(rec.id);
    ui.localState.textContent = text;
  }

  endPlay(rec, text, removing = false) {
    if (rec.ended) return;
    rec.ended = true;
    rec.pc.close();
    this.media.delete(rec.id);
    this.playing.delete(rec.name);
    if (!removing) {
      this.releaseTile(rec.login, rec.name);
      const p = this.participants.get(rec.login);
      const placeholder = p && p.tiles.get('');
      if (placeholder && text && text !== 'stopped') placeholder.querySelector('.state').textContent = text;
    }
  }

  // --- chat ----------------------------------------------------------------------------------

  sendChat(text) {
    const others = [...this.participants.keys()];
    chatLine(this.login, text, 'mine');
    if (others.length === 0) {
      systemLine('Nobody else is in the room yet.');
      return;
    }
    for (const to of others) {
      this.sendData('sendMessage', { roomConfig: { name: this.room }, to, text }).catch((err) => {
        systemLine(`Not delivered to ${to}: ${err.message}`);
      });
    }
  }

  // --- teardown ------------------------------------------------------------------------------

  async leave() {
    if (this.closed) return;
    if (this.joined && this.ws && this.ws.readyState === WebSocket.OPEN) {
      const timeout = new Promise((resolve) => setTimeout(resolve, LEAVE_TIMEOUT_MS));
      await Promise.race([this.sendData('leave', { name: this.room }).catch(() => {}), timeout]);
      if (this.publisher && !this.publisher.ended) {
        this.send('unPublishStream', { mediaSessionId: this.publisher.id, name: this.publisher.name });
      }
      for (const rec of this.playing.values()) {
        this.send('stopStream', { mediaSessionId: rec.id, name: rec.name });
      }
    }
    this.close();
    setStatus(`Left room “${this.room}”.`);
  }

  fail(text) {
    if (this.closed) return;
    this.close();
    setStatus(text, 'error');
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    for (const op of this.pending.values()) op.reject(new Error('disconnected'));
    this.pending.clear();
    for (const rec of this.media.values()) {
      rec.ended = true;
      rec.pc.close();
    }
    this.media.clear();
    this.playing.clear();
    for (const p of this.participants.values()) {
      for (const tile of p.tiles.values()) tile.remove();
    }
    this.participants.clear();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, 'leave');
    if (this.camera) for (const t of this.camera.getTracks()) t.stop();
    app.onClosed(this);
  }
}

function makeTile(login, stateText) {
  const tile = document.createElement('figure');
  tile.className = 'tile remote';
  tile.dataset.login = login;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  const cap = document.createElement('figcaption');
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = login;
  const state = document.createElement('span');
  state.className = 'state';
  state.textContent = stateText;
  cap.append(who, state);
  tile.append(video, cap);
  ui.tiles.append(tile);
  return tile;
}

// ---------------------------------------------------------------------------------------------
// Page wiring

const app = {
  session: null,
  busy: false,

  init() {
    const params = new URLSearchParams(location.search);
    ui.room.value = params.get('roomName') || `room-${randomSuffix(6)}`;
    ui.name.value = params.get('name') || '';
    ui.joinForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.join();
    });
    ui.leave.addEventListener('click', () => this.leave());
    ui.chatForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = ui.chatInput.value.trim();
      if (!text || !this.session || !this.session.joined) return;
      this.session.sendChat(text);
      ui.chatInput.value = '';
      ui.chatInput.focus();
    });
    window.addEventListener('pagehide', () => {
      if (this.session) this.session.close();
    });
    if (!window.RTCPeerConnection) {
      setStatus('This browser does not support WebRTC.', 'error');
      ui.join.disabled = true;
      return;
    }
    if (location.protocol === 'file:') {
      setStatus('Open this page from the webcall server (http://host:8080/), not from a file.', 'error');
      ui.join.disabled = true;
      return;
    }
    (ui.name.value ? ui.join : ui.name).focus();
  },

  setForm(inCall) {
    ui.name.disabled = inCall;
    ui.room.disabled = inCall;
    ui.join.disabled = inCall;
    ui.leave.disabled = !inCall;
  },

  async join() {
    if (this.busy || this.session) return;
    const login = ui.name.value.trim();
    const room = ui.room.value.trim();
    if (!login) {
      setStatus('Please enter your name.', 'error');
      ui.name.focus();
      return;
    }
    if (!room) {
      setStatus('Please enter a room name.', 'error');
      ui.room.focus();
      return;
    }
    this.busy = true;
    this.setForm(true);
    setStatus('Starting camera …');
    let camera = null;
    let mediaProblem = null;
    try {
      camera = await getCamera();
    } catch (err) {
      mediaProblem = err.readable ? err.message : describeMediaError(err);
    }
    ui.localName.textContent = `${login} (you)`;
    if (camera) {
      ui.localVideo.srcObject = camera;
      ui.localVideo.play().catch(() => {});
      ui.localState.textContent = '';
    } else {
      ui.localState.textContent = 'no camera';
    }
    const session = new RoomSession(login, room, wsUrlForPage(), camera);
    this.session = session;
    this.busy = false;
    session.mediaProblem = mediaProblem;
    session.open();
  },

  onJoined(session) {
    if (session !== this.session) return;
    ui.chatInput.disabled = false;
    ui.chatSend.disabled = false;
    const link = `${location.origin}${location.pathname}?roomName=${encodeURIComponent(session.room)}`;
    ui.inviteLink.href = link;
    ui.inviteLink.textContent = link;
    ui.invite.hidden = false;
    history.replaceState(null, '', `?roomName=${encodeURIComponent(session.room)}`);
    systemLine(`You joined “${session.room}”.`);
    if (session.mediaProblem) systemLine(`${session.mediaProblem}; you can watch and chat.`);
  },

  onClosed(session) {
    if (session !== this.session) return;
    this.session = null;
    this.setForm(false);
    ui.chatInput.disabled = true;
    ui.chatSend.disabled = true;
    ui.localVideo.srcObject = null;
    ui.localName.textContent = 'You';
    ui.localState.textContent = 'camera off';
  },

  async leave() {
    if (!this.session) return;
    ui.leave.disabled = true;
    await this.session.leave();
  },
};

app.init();
