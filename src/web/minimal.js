// webcall minimal page: join a room, publish the camera, play everybody else, chat.
//
// Built on the room SDK (sdk/webcall.js, docs/sdk.md): connect → session.join → room.publish,
// participant streams played into their tiles, room.sendMessage for the chat. The camera is
// opened before connecting, so a denied camera still joins to watch and chat.

import { connect, ROOM_EVENT, SESSION_STATUS, STREAM_EVENT } from './sdk/webcall.js';
import { chatLine, pageToken, roomFromUrl, serverUrl, systemLine } from './apps/ui.js';

const $ = (id) => document.getElementById(id);

const LEAVE_TIMEOUT_MS = 3000;

const MEDIA_PROBLEMS = {
  NotAllowedError: 'Camera and microphone access was denied',
  SecurityError: 'Camera and microphone access was denied',
  NotFoundError: 'No camera or microphone was found',
  OverconstrainedError: 'No camera or microphone was found',
  NotReadableError: 'The camera or microphone is in use by another program',
  AbortError: 'The camera or microphone is in use by another program',
};

let call = null;   // the current Join: {login, roomName, camera, problem, session, room, tiles, players}
let busy = false;  // waiting for the camera

function setStatus(text, kind = '') {
  $('status').textContent = text;
  $('status').className = 'status' + (kind ? ' ' + kind : '');
}

/** {camera} (camera and microphone, else whichever exists), or {problem}: why there is none. */
async function getCamera() {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return { problem: 'Camera access needs a secure page (https or localhost)' };
  let first = null;
  for (const c of [{ audio: true, video: true }, { video: true }, { audio: true }]) {
    try {
      return { camera: await md.getUserMedia(c) };
    } catch (err) {
      first = first || err;
      if (first.name !== 'NotFoundError' && first.name !== 'OverconstrainedError') break;
    }
  }
  const name = first && first.name;
  return { problem: MEDIA_PROBLEMS[name] || `Could not start the camera (${(first && first.message) || name || first})` };
}

// ---------------------------------------------------------------------------------------------
// Joining and leaving

async function join() {
  if (busy || call) return;
  const login = $('name').value.trim();
  const roomName = $('room').value.trim();
  if (!login || !roomName) {
    setStatus(login ? 'Please enter a room name.' : 'Please enter your name.', 'error');
    $(login ? 'room' : 'name').focus();
    return;
  }
  busy = true;
  setForm(true);
  setStatus('Starting camera …');
  const { camera = null, problem = null } = await getCamera();
  busy = false;
  $('localName').textContent = `${login} (you)`;
  $('localState').textContent = camera ? '' : 'no camera';
  if (camera) {
    $('localVideo').srcObject = camera;
    $('localVideo').play().catch(() => {});
  }
  const url = serverUrl();
  const c = { login, roomName, camera, problem, room: null, tiles: new Map(), players: new Map() };
  call = c;
  setStatus(`Connecting to ${url} …`);
  c.session = connect({ urlServer: url, username: login, token: pageToken() })
    .on(SESSION_STATUS.ESTABLISHED, () => joinRoom(c))
    .on(SESSION_STATUS.RECONNECTING, (s, d) => {
      if (c === call) setStatus(`Connection to the server was lost; reconnecting (attempt ${d.attempt}) …`, 'warn');
    })
    .on(SESSION_STATUS.DISCONNECTED, (s, error) => fail(c, error ? error.message : 'Disconnected by the server'))
    .on(SESSION_STATUS.FAILED, (s, error) => fail(c, error.message));
}

function joinRoom(c) {
  if (c !== call) return;
  setStatus(`Connected. Joining room “${c.roomName}” …`);
  c.room = c.session.join({ name: c.roomName })
    .on(ROOM_EVENT.STATE, (room) => {
      $('chatInput').disabled = false;
      $('chatSend').disabled = false;
      const query = `?roomName=${encodeURIComponent(c.roomName)}`;
      const link = `${location.origin}${location.pathname}${query}`;
      $('inviteLink').href = link;
      $('inviteLink').textContent = link;
      $('invite').hidden = false;
      history.replaceState(null, '', query);
      systemLine(`You joined “${c.roomName}”.`);
      if (c.problem) systemLine(`${c.problem}; you can watch and chat.`);
      for (const p of room.getParticipants()) {
        addParticipant(c, p.name());
        for (const rs of p.getStreams()) play(c, rs);
      }
      updateStatus(c);
      if (c.camera) publish(c);
    })
    .on(ROOM_EVENT.JOINED, (p) => {
      addParticipant(c, p.name());
      systemLine(`${p.name()} joined`);
      updateStatus(c);
    })
    .on(ROOM_EVENT.LEFT, (p) => {
      removeParticipant(c, p.name());
      systemLine(`${p.name()} left`);
      updateStatus(c);
    })
    .on(ROOM_EVENT.PUBLISHED, (p, rs) => play(c, rs))
    .on(ROOM_EVENT.UNPUBLISHED, (p, rs) => c.players.get(rs.streamName())?.stream.stop())
    .on(ROOM_EVENT.MESSAGE, (m) => chatLine(m.from.name() || '?', m.text))
    .on(ROOM_EVENT.REJOINED, () => updateStatus(c))
    .on(ROOM_EVENT.FAILED, (r, info, error) => fail(c, `Could not join room “${c.roomName}”: ${info || error.message}`));
}

function updateStatus(c) {
  if (c !== call) return;
  const others = c.room.getParticipants().length;
  const who = others === 0 ? 'nobody else here' : `${others} other participant${others === 1 ? '' : 's'}`;
  const warn = c.camera ? '' : ` — watching only (${c.problem || 'no camera'})`;
  setStatus(`In room “${c.roomName}” as ${c.login} — ${who}${warn}`, c.camera ? 'ok' : 'warn');
}

async function leave() {
  const c = call;
  if (!c) return;
  $('leave').disabled = true;
  if (c.room && c.room.isJoined()) {
    const timeout = new Promise((resolve) => setTimeout(resolve, LEAVE_TIMEOUT_MS));
    await Promise.race([c.room.leave().catch(() => {}), timeout]);
  }
  if (c !== call) return;
  close(c);
  setStatus(`Left room “${c.roomName}”.`);
}

function fail(c, text) {
  if (c !== call) return;
  close(c);
  setStatus(text, 'error');
}

/** Ends the Join: session closed, tiles gone, camera off, form back. */
function close(c) {
  call = null;
  c.session.disconnect();
  for (const tiles of c.tiles.values()) for (const tile of tiles.values()) tile.remove();
  if (c.camera) for (const t of c.camera.getTracks()) t.stop();
  setForm(false);
  $('chatInput').disabled = true;
  $('chatSend').disabled = true;
  $('localVideo').srcObject = null;
  $('localName').textContent = 'You';
  $('localState').textContent = 'camera off';
}

function setForm(inCall) {
  for (const id of ['name', 'room', 'join']) $(id).disabled = inCall;
  $('leave').disabled = !inCall;
}

// ---------------------------------------------------------------------------------------------
// Streams and tiles

function publish(c) {
  const state = $('localState');
  state.textContent = 'connecting…';
  c.room.publish({ display: $('localVideo'), mediaStream: c.camera })
    .on('PENDING', (s) => { if (c === call && s.getInfo()) state.textContent = `${s.getInfo().toLowerCase()}…`; })
    .on('PUBLISHING', () => { if (c === call) state.textContent = 'live'; })
    .on('UNPUBLISHED', () => { if (c === call) state.textContent = 'not publishing'; })
    .on('FAILED', (s, error) => {
      if (c !== call) return;
      const info = (error && (error.info || error.message)) || s.getInfo() || 'failed';
      state.textContent = `failed: ${info}`;
      setStatus(`Your camera could not be published: ${info}`, 'warn');
    });
}

function play(c, rs) {
  const name = rs.streamName();
  const login = rs.participant().name();
  if (c !== call || c.players.has(name)) return;
  const tile = tileFor(c, login, name, rs.isScreen());
  const state = tile.querySelector('.state');
  state.textContent = 'connecting…';
  const stream = rs.play(tile.querySelector('video'));
  c.players.set(name, { stream, login });
  const end = (text) => {
    if (c.players.get(name)?.stream !== stream) return;
    c.players.delete(name);
    releaseTile(c, login, name, text);
  };
  stream
    .on('PENDING', (s) => { if (s.getInfo()) state.textContent = 'waiting for a video format this browser plays…'; })
    .on('PLAYING', () => { state.textContent = ''; })
    .on(STREAM_EVENT.UNMUTE_REQUIRED, (s) => offerUnmute(tile, s))
    .on('STOPPED', () => end(''))
    .on('FAILED', (s, error) => {
      const info = (error && error.info) || s.getInfo() || 'failed';
      console.warn(`webcall: playing ${name} failed: ${info}`);
      end(`failed: ${info}`);
    });
}

function offerUnmute(tile, stream) {
  if (tile.querySelector('.unmute')) return;
  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'unmute';
  btn.textContent = 'Unmute';
  btn.addEventListener('click', () => {
    stream.unmuteRemoteAudio();
    btn.remove();
  });
  tile.append(btn);
}

/** A participant shows as a tile per stream, or one "no video" tile while it plays nothing. */
function addParticipant(c, login) {
  if (!c.tiles.has(login)) c.tiles.set(login, new Map([['', makeTile(login, 'no video')]]));
}

function removeParticipant(c, login) {
  const tiles = c.tiles.get(login);
  c.tiles.delete(login);
  for (const { stream, login: l } of [...c.players.values()]) if (l === login) stream.stop();
  if (tiles) for (const tile of tiles.values()) tile.remove();
}

function tileFor(c, login, streamName, screen) {
  addParticipant(c, login);
  const tiles = c.tiles.get(login);
  let tile = tiles.get('');
  if (tile) tiles.delete('');
  else tile = makeTile(login, '');
  tile.querySelector('.who').textContent = screen ? `${login} (screen)` : login;
  tile.dataset.stream = streamName;
  tiles.set(streamName, tile);
  return tile;
}

function releaseTile(c, login, streamName, text) {
  const tiles = c.tiles.get(login);
  const tile = tiles && tiles.get(streamName);
  if (!tile) return;
  tiles.delete(streamName);
  if (tiles.size > 0) {
    tile.remove();
    return;
  }
  // Keep one placeholder so the participant stays visible.
  tile.querySelector('video').srcObject = null;
  tile.querySelector('.who').textContent = login;
  tile.querySelector('.state').textContent = text || 'no video';
  delete tile.dataset.stream;
  tile.querySelector('.unmute')?.remove();
  tiles.set('', tile);
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
  $('tiles').append(tile);
  return tile;
}

// ---------------------------------------------------------------------------------------------
// Page wiring

function sendChat() {
  const c = call;
  const text = $('chatInput').value.trim();
  if (!text || !c || !c.room || !c.room.isJoined()) return;
  chatLine(c.login, text, 'mine');
  if (c.room.getParticipants().length === 0) systemLine('Nobody else is in the room yet.');
  else c.room.sendMessage(text).catch((err) => systemLine(`Not delivered: ${err.info || err.message}`));
  $('chatInput').value = '';
  $('chatInput').focus();
}

function init() {
  const params = new URLSearchParams(location.search);
  $('room').value = roomFromUrl();
  $('name').value = params.get('name') || '';
  $('joinForm').addEventListener('submit', (ev) => {
    ev.preventDefault();
    join();
  });
  $('leave').addEventListener('click', () => leave());
  $('chatForm').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendChat();
  });
  window.addEventListener('pagehide', () => {
    if (call) close(call);
  });
  if (!window.RTCPeerConnection) {
    setStatus('This browser does not support WebRTC.', 'error');
    $('join').disabled = true;
    return;
  }
  if (location.protocol === 'file:') {
    setStatus('Open this page from the webcall server (http://host:8080/), not from a file.', 'error');
    $('join').disabled = true;
    return;
  }
  $(params.get('name') ? 'join' : 'name').focus();
}

init();
