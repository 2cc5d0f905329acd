// Page helpers shared by the three applications (Conference, Two Way Video Chat, Video Chat &
// Screen): element lookup, the status label and error line, the chat log, participant tiles,
// the invite link, and readable texts for the SDK's errors. DOM only; no protocol here.

export const $ = (id) => document.getElementById(id);

/** The WebSocket URL: ?ws=..., else the page's own host and port (8080 / 8443 by default). */
export function serverUrl() {
  const params = new URLSearchParams(location.search);
  if (params.get('ws')) return params.get('ws');
  const secure = location.protocol === 'https:';
  const port = location.port || (secure ? '8443' : '8080');
  return `${secure ? 'wss' : 'ws'}://${location.hostname}:${port}/`;
}

/** The access token the application put in the page's URL (?token=...), if any. */
export function pageToken() {
  const token = new URLSearchParams(location.search).get('token');
  return token && token.trim() ? token.trim() : undefined;
}

/** The room of the invite link (?roomName=...), else a new random one. */
export function roomFromUrl() {
  const name = new URLSearchParams(location.search).get('roomName');
  if (name && name.trim()) return name.trim();
  const b = crypto.getRandomValues(new Uint8Array(3));
  return `room-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

/** The invite link for `room`: this page with ?roomName=ROOM (and ?ws= when one was given). */
export function inviteUrl(room) {
  const params = new URLSearchParams();
  params.set('roomName', room);
  const ws = new URLSearchParams(location.search).get('ws');
  if (ws) params.set('ws', ws);
  return `${location.origin}${location.pathname}?${params}`;
}

/** The session status label: ESTABLISHED, DISCONNECTED, FAILED, RECONNECTING ... */
export function showStatus(text) {
  const el = $('status');
  el.textContent = text || '';
  el.dataset.status = text || '';
}

/** The error / notice line under the form; kind: error, warn or info. Empty text hides it. */
export function showNotice(text, kind = 'error') {
  const el = $('notice');
  el.textContent = text || '';
  el.className = `notice ${kind}`;
  el.hidden = !text;
}

function clock() {
  const d = new Date();
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** Appends a chat line: time, sender, text. kind: '' (others), 'mine' or 'system'. */
export function chatLine(from, text, kind = '') {
  const log = $('chatLog');
  const li = document.createElement('li');
  if (kind) li.className = kind;
  const time = document.createElement('time');
  time.textContent = clock();
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = from;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(time, who, body);
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

export function systemLine(text) {
  chatLine('', text, 'system');
}

/**
 * A tile: <figure class="tile" data-login> with a display <div> (the SDK puts the <video> in
 * it), the name and the stream state.
 */
export function makeTile(login, { label = login, kind = 'remote' } = {}) {
  const tile = document.createElement('figure');
  tile.className = `tile ${kind}`;
  tile.dataset.login = login;
  const display = document.createElement('div');
  display.className = 'display';
  const cap = document.createElement('figcaption');
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = label;
  const state = document.createElement('span');
  state.className = 'state';
  cap.append(who, state);
  tile.append(display, cap);
  return tile;
}

/** Sets a tile's stream state text and data-status / data-codec attributes. */
export function setTileState(tile, status, text, codec) {
  if (!tile) return;
  tile.dataset.status = status || '';
  if (codec !== undefined) {
    if (codec) tile.dataset.codec = codec;
    else delete tile.dataset.codec;
  }
  tile.querySelector('.state').textContent = text;
}

/** 'H264' -> 'H.264' for people. */
export function codecLabel(codec) {
  if (!codec) return '';
  return codec.toUpperCase() === 'H264' ? 'H.264' : codec.toUpperCase();
}

/** A readable sentence for any error the SDK reports. */
export function describeError(err, { room, url } = {}) {
  if (!err) return 'Something went wrong.';
  switch (err.name) {
    case 'RoomFullError': {
      const cap = /capacity (\d+)/.exec(err.info || '');
      return cap
        ? `Room “${room}” is full: it admits ${cap[1]} participant${cap[1] === '1' ? '' : 's'}. Try another room.`
        : `Room “${room}” is full (${err.info}). Try another room.`;
    }
    case 'RefusedError':
      return `The server refused to ${err.command === 'join' ? `let you into room “${room}”` : err.command}: ${err.info}`;
    case 'ConnectionError':
      return /Cannot reach|did not answer|Bad server/.test(err.message)
        ? `Cannot reach the server at ${url || err.url}. Check that webcall is running and the address is right.`
        : `${err.message}.`;
    case 'MediaAccessError':
      if (err.device === 'screen') {
        return err.reason === 'denied' ? 'Screen sharing was cancelled or not allowed.' : `${err.message}; screen sharing is not possible here.`;
      }
      if (err.reason === 'denied') return 'Camera and microphone access was denied. You can still watch and chat; allow the camera for this site and join again to be seen.';
      if (err.reason === 'not-found') return 'No camera or microphone was found. You can still watch and chat.';
      if (err.reason === 'in-use') return 'The camera or microphone is busy (used by another program?). You can still watch and chat.';
      return `${err.message}.`;
    case 'StreamError':
      return `A stream failed: ${err.info}`;
    case 'TimeoutError':
      return 'The server did not answer in time. Try again.';
    default:
      return err.message || String(err);
  }
}
