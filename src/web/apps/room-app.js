// The controller behind the three applications: Login + Join/Leave, the session status label,
// your camera with mute buttons, a tile per participant with its stream state, chat, the
// invite link, capacity ("room is full"), and (Video Chat & Screen) sharing a screen as a second
// stream. Built on the room SDK (/sdk/webcall.js); each page passes its options to start().
//
// Options: {capacity: participants including you, or null to let the server decide;
//           screen: true to offer the Share button}.

import { connect, ROOM_EVENT, SESSION_STATUS, STREAM_EVENT } from '../sdk/webcall.js';
import {
  $, chatLine, codecLabel, describeError, inviteUrl, makeTile, pageToken, roomFromUrl, serverUrl,
  setTileState, showNotice, showStatus, systemLine,
} from './ui.js';

export function start(options = {}) {
  const app = new RoomApp(options);
  app.init();
  return app;
}

class RoomApp {
  constructor({ capacity = null, screen = false } = {}) {
    this.capacity = capacity;
    this.screenEnabled = screen;
    this.roomName = roomFromUrl();
    this.url = serverUrl();
    this.session = null;
    this.room = null;
    this.camera = null;          // published Stream
    this.share = null;           // published screen Stream
    this.tiles = new Map();      // login -> tile
    this.players = new Map();    // stream name -> {stream, tile}
  }

  init() {
    $('loginForm').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.join();
    });
    $('leaveBtn').addEventListener('click', () => this.leave());
    $('chatForm').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.sendChat();
    });
    $('muteAudioBtn').addEventListener('click', () => this.toggleMute('audio'));
    $('muteVideoBtn').addEventListener('click', () => this.toggleMute('video'));
    $('copyBtn').addEventListener('click', () => this.copyInvite());
    if (this.screenEnabled) $('shareBtn').addEventListener('click', () => this.toggleShare());
    window.addEventListener('pagehide', () => {
      if (this.session) this.session.disconnect();
    });
    $('roomName').textContent = this.roomName;
    this.setInCall(false);
    showStatus('');
    if (!window.RTCPeerConnection || !window.WebSocket) {
      showNotice('This browser does not support WebRTC video calls.');
      $('joinBtn').disabled = true;
      return;
    }
    if (location.protocol === 'file:') {
      showNotice('Open this page from the webcall server (http://host:8080/), not from a file.');
      $('joinBtn').disabled = true;
      return;
    }
    $('login').focus();
  }

  // --- joining and leaving -----------------------------------------------------------------

  join() {
    if (this.session) return;
    const login = $('login').value.trim();
    if (!login) {
      showNotice('Please enter your name.', 'warn');
      $('login').focus();
      return;
    }
    showNotice('');
    $('login').disabled = true;
    $('joinBtn').disabled = true;
    showStatus('CONNECTING');
    const session = connect({ urlServer: this.url, username: login, token: pageToken() });
    this.session = session;
    session
      .on(SESSION_STATUS.ESTABLISHED, () => {
        showStatus(SESSION_STATUS.ESTABLISHED);
        this.joinRoom();
      })
      .on(SESSION_STATUS.RECONNECTING, (s, detail) => {
        showStatus(SESSION_STATUS.RECONNECTING);
        showNotice(`Connection to the server lost; reconnecting (attempt ${detail.attempt}) …`, 'warn');
      })
      .on(SESSION_STATUS.RECONNECTED, () => {
        showStatus(SESSION_STATUS.ESTABLISHED);
        showNotice('');
      })
      .on(SESSION_STATUS.DISCONNECTED, (s, error) => {
        if (this.session !== session) return;
        showStatus(SESSION_STATUS.DISCONNECTED);
        if (error) showNotice(describeError(error, { room: this.roomName, url: this.url }));
        this.reset();
      })
      .on(SESSION_STATUS.FAILED, (s, error) => {
        if (this.session !== session) return;
        showStatus(SESSION_STATUS.FAILED);
        showNotice(describeError(error, { room: this.roomName, url: this.url }));
        this.reset();
      });
  }

  joinRoom() {
    const room = this.session.join({ name: this.roomName });
    this.room = room;
    room
      .on(ROOM_EVENT.STATE, () => this.onState())
      .on(ROOM_EVENT.JOINED, (p) => {
        this.tileFor(p.name());
        systemLine(`${p.name()} joined`);
      })
      .on(ROOM_EVENT.LEFT, (p) => {
        this.removeParticipant(p.name());
        systemLine(`${p.name()} left`);
      })
      .on(ROOM_EVENT.PUBLISHED, (p, rs) => this.play(p, rs))
      .on(ROOM_EVENT.UNPUBLISHED, (p, rs) => this.onUnpublished(p, rs))
      .on(ROOM_EVENT.MESSAGE, (m) => chatLine(m.from.name(), m.text))
      .on(ROOM_EVENT.REJOINED, () => systemLine('Reconnected to the room'))
      .on(ROOM_EVENT.FAILED, (r, info, error) => {
        showNotice(describeError(error, { room: this.roomName, url: this.url }));
        this.quit();
        showStatus(SESSION_STATUS.DISCONNECTED);
      });
  }

  onState() {
    const room = this.room;
    const others = room.getParticipants();
    if (this.capacity && others.length >= this.capacity) {
      showNotice(`Room “${this.roomName}” is full: it already has ${others.length} participant${others.length === 1 ? '' : 's'} ` +
        `and this page allows ${this.capacity}. Try another room.`);
      room.leave().catch(() => {}).finally(() => {
        this.quit();
        showStatus(SESSION_STATUS.DISCONNECTED);
      });
      return;
    }
    this.setInCall(true);
    const link = inviteUrl(room.name());
    $('inviteLink').href = link;
    $('inviteLink').textContent = link;
    $('invite').hidden = false;
    history.replaceState(null, '', link.slice(location.origin.length));
    systemLine(others.length ? `In the room: ${others.map((p) => p.name()).join(', ')}` : 'You are the first in the room');
    for (const p of others) {
      this.tileFor(p.name());
      for (const rs of p.getStreams()) this.play(p, rs);
    }
    this.publishCamera();
  }

  /** Leave: out of the room, session closed, page back to the form. */
  async leave() {
    if (!this.session) return;
    $('leaveBtn').disabled = true;
    if (this.room) {
      try {
        await this.room.leave();
      } catch { /* leaving anyway */ }
    }
    this.quit();
    showStatus(SESSION_STATUS.DISCONNECTED);
    systemLine(`You left “${this.roomName}”`);
  }

  /** Closes the session without a word (after an error or a full room). */
  quit() {
    const s = this.session;
    this.reset();
    if (s) s.disconnect();
  }

  /** Back to the form. */
  reset() {
    this.session = null;
    this.room = null;
    for (const { stream } of this.players.values()) stream.stop();
    this.players.clear();
    for (const tile of this.tiles.values()) tile.remove();
    this.tiles.clear();
    for (const s of [this.camera, this.share]) if (s) s.stop();
    this.camera = null;
    this.share = null;
    $('localDisplay').replaceChildren();
    setTileState($('localTile'), '', 'camera off', null);
    if (this.screenEnabled) {
      $('myScreenDisplay').replaceChildren();
      $('myScreenTile').hidden = true;
    }
    this.setInCall(false);
  }

  setInCall(inCall) {
    $('login').disabled = inCall || !!this.session;
    $('joinBtn').disabled = inCall || !!this.session;
    $('joinBtn').hidden = inCall;
    $('leaveBtn').hidden = !inCall;
    $('leaveBtn').disabled = !inCall;
    $('chatInput').disabled = !inCall;
    $('sendBtn').disabled = !inCall;
    if (!inCall) {
      $('muteAudioBtn').disabled = true;
      $('muteVideoBtn').disabled = true;
      this.setMuteLabels(false, false);
      if (this.screenEnabled) this.setShareButton('idle');
      if (this.session === null) $('joinBtn').disabled = false;
      if (this.session === null) $('login').disabled = false;
    } else if (this.screenEnabled) {
      this.setShareButton('idle');
    }
  }

  // --- your camera ---------------------------------------------------------------------------

  publishCamera() {
    const local = $('localTile');
    local.querySelector('.who').textContent = `${this.session.username()} (you)`;
    setTileState(local, 'PENDING', 'starting camera…');
    const stream = this.room.publish({
      display: $('localDisplay'),
      constraints: { audio: true, video: true },
      record: false,
    });
    this.camera = stream;
    stream
      .on('PUBLISHING', (s) => {
        setTileState(local, 'PUBLISHING', `live · ${codecLabel(s.codec())}`, s.codec());
        $('muteAudioBtn').disabled = false;
        $('muteVideoBtn').disabled = false;
        this.setMuteLabels(s.isAudioMuted(), s.isVideoMuted());
      })
      .on('PENDING', (s) => {
        if (s.getInfo()) setTileState(local, 'PENDING', s.getInfo().toLowerCase() + '…');
      })
      .on(STREAM_EVENT.CODEC_CHANGED, (s, codec) => systemLine(`Your video is now sent as ${codecLabel(codec)} so that everyone can see it`))
      .on('UNPUBLISHED', () => {
        setTileState(local, 'UNPUBLISHED', 'not published', null);
        $('muteAudioBtn').disabled = true;
        $('muteVideoBtn').disabled = true;
      })
      .on('FAILED', (s, error) => {
        if (this.camera !== s) return;
        this.camera = null;
        $('muteAudioBtn').disabled = true;
        $('muteVideoBtn').disabled = true;
        const media = error && error.name === 'MediaAccessError';
        setTileState(local, 'FAILED', media ? 'no camera' : 'camera not published', null);
        showNotice(describeError(error, { room: this.roomName, url: this.url }), media ? 'warn' : 'error');
      });
  }

  toggleMute(kind) {
    const s = this.camera;
    if (!s) return;
    if (kind === 'audio') {
      if (s.isAudioMuted()) s.unmuteAudio();
      else s.muteAudio();
    } else if (s.isVideoMuted()) {
      s.unmuteVideo();
    } else {
      s.muteVideo();
    }
    this.setMuteLabels(s.isAudioMuted(), s.isVideoMuted());
  }

  setMuteLabels(audioMuted, videoMuted) {
    const a = $('muteAudioBtn');
    const v = $('muteVideoBtn');
    a.textContent = audioMuted ? 'Unmute mic' : 'Mute mic';
    a.setAttribute('aria-pressed', String(audioMuted));
    v.textContent = videoMuted ? 'Start video' : 'Stop video';
    v.setAttribute('aria-pressed', String(videoMuted));
    $('localTile').classList.toggle('video-muted', videoMuted);
  }

  // --- other participants --------------------------------------------------------------------

  tileFor(login) {
    let tile = this.tiles.get(login);
    if (!tile) {
      tile = makeTile(login);
      setTileState(tile, '', 'no video');
      $('remotes').append(tile);
      this.tiles.set(login, tile);
      this.updateCount();
    }
    return tile;
  }

  screenTileFor(login) {
    const key = `${login}\u0000screen`;
    let tile = this.tiles.get(key);
    if (!tile) {
      tile = makeTile(login, { label: `${login}'s screen`, kind: 'remote screen' });
      $('screens').append(tile);
      this.tiles.set(key, tile);
      $('screens').hidden = false;
    }
    return tile;
  }

  removeParticipant(login) {
    for (const [name, rec] of [...this.players]) {
      if (rec.login === login) {
        rec.stream.stop();
        this.players.delete(name);
      }
    }
    for (const key of [login, `${login}\u0000screen`]) {
      const tile = this.tiles.get(key);
      if (tile) tile.remove();
      this.tiles.delete(key);
    }
    this.updateScreens();
    this.updateCount();
  }

  updateCount() {
    const el = $('count');
    if (el) {
      const n = [...this.tiles.keys()].filter((k) => !k.includes('\u0000')).length;
      el.textContent = n ? `${n + 1} in the room` : '';
    }
  }

  updateScreens() {
    const box = $('screens');
    if (box) box.hidden = !box.querySelector('.tile');
  }

  play(participant, rs) {
    const name = rs.streamName();
    if (this.players.has(name) || !this.room) return;
    const login = participant.name();
    const screen = rs.isScreen();
    if (screen && !this.screenEnabled && $('screens') === null) return;
    const tile = screen ? this.screenTileFor(login) : this.tileFor(login);
    const display = tile.querySelector('.display');
    display.replaceChildren();
    setTileState(tile, 'PENDING', 'connecting…', null);
    tile.dataset.stream = name;
    const stream = rs.play(display);
    this.players.set(name, { stream, tile, login });
    const done = (text, status) => {
      if (this.players.get(name)?.stream !== stream) return;
      this.players.delete(name);
      if (screen) {
        tile.remove();
        this.tiles.delete(`${login}\u0000screen`);
        this.updateScreens();
      } else if (tile.dataset.stream === name) {
        setTileState(tile, status, text, null);
        delete tile.dataset.stream;
      }
    };
    stream
      .on('PENDING', (s) => {
        if (s.getInfo()) setTileState(tile, 'PENDING', 'waiting for a video format this browser plays…');
      })
      .on('PLAYING', (s) => setTileState(tile, 'PLAYING', `playing · ${codecLabel(s.codec())}`, s.codec()))
      .on(STREAM_EVENT.UNMUTE_REQUIRED, (s) => this.offerUnmute(tile, s))
      .on('STOPPED', () => done('no video', 'STOPPED'))
      .on('FAILED', (s, error) => done(`failed: ${error ? error.info : s.getInfo()}`, 'FAILED'));
  }

  onUnpublished(participant, rs) {
    const rec = this.players.get(rs.streamName());
    if (rec) rec.stream.stop();
  }

  offerUnmute(tile, stream) {
    if (tile.querySelector('.unmute')) return;
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'unmute';
    btn.textContent = 'Tap for sound';
    btn.addEventListener('click', () => {
      stream.unmuteRemoteAudio();
      btn.remove();
    });
    tile.append(btn);
  }

  // --- chat ----------------------------------------------------------------------------------

  sendChat() {
    const input = $('chatInput');
    const text = input.value.trim();
    if (!text || !this.room) return;
    input.value = '';
    chatLine(this.session.username(), text, 'mine');
    if (!this.room.getParticipants().length) {
      systemLine('Nobody else is in the room yet.');
      return;
    }
    this.room.sendMessage(text).catch((err) => systemLine(`Not delivered: ${err.info || err.message}`));
    input.focus();
  }

  async copyInvite() {
    const link = $('inviteLink').href;
    try {
      await navigator.clipboard.writeText(link);
      $('copyBtn').textContent = 'Copied';
    } catch {
      // No clipboard permission: select the link so it can be copied by hand.
      const range = document.createRange();
      range.selectNodeContents($('inviteLink'));
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $('copyBtn').textContent = 'Press Ctrl+C';
    }
    setTimeout(() => { $('copyBtn').textContent = 'Copy'; }, 2000);
  }

  // --- screen sharing ------------------------------------------------------------------------

  setShareButton(state) {
    const btn = $('shareBtn');
    btn.dataset.state = state;
    btn.disabled = state === 'starting' || !this.room;
    btn.textContent = state === 'sharing' ? 'Stop sharing' : state === 'starting' ? 'Sharing…' : 'Share screen';
  }

  toggleShare() {
    if (this.share) {
      this.share.stop();
      return;
    }
    if (!this.room) return;
    const tile = $('myScreenTile');
    this.setShareButton('starting');
    const stream = this.room.publish({
      display: $('myScreenDisplay'),
      constraints: { video: { type: 'screen' }, audio: false },
      screen: true,
    });
    this.share = stream;
    const ended = () => {
      if (this.share !== stream) return;
      this.share = null;
      tile.hidden = true;
      $('myScreenDisplay').replaceChildren();
      if (this.room) this.setShareButton('idle');
    };
    stream
      .on('PUBLISHING', (s) => {
        tile.hidden = false;
        setTileState(tile, 'PUBLISHING', `sharing · ${codecLabel(s.codec())}`, s.codec());
        this.setShareButton('sharing');
        systemLine('You are sharing your screen');
      })
      .on('UNPUBLISHED', () => {
        ended();
        systemLine('You stopped sharing your screen');
      })
      .on('FAILED', (s, error) => {
        ended();
        const media = error && error.name === 'MediaAccessError';
        showNotice(describeError(error, { room: this.roomName, url: this.url }), media ? 'warn' : 'error');
      });
  }
}
