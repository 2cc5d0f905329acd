// webcall SDK — typed errors. Every error the SDK reports (event argument or rejected promise)
// is a WebcallError; `info` holds the server's own reason text when the server gave one.

/** Base class: `code` names the kind, `info` is the server's text (or the SDK's own). */
export class WebcallError extends Error {
  constructor(code, message, { info, cause } = {}) {
    super(message);
    this.name = 'WebcallError';
    this.code = code;
    this.info = info === undefined ? message : info;
    if (cause !== undefined) this.cause = cause;
  }
}

/** The server answered FAILED to a command (join, leave, sendMessage); `info` is its reason. */
export class RefusedError extends WebcallError {
  constructor(command, info) {
    super('REFUSED', `The server refused ${command}: ${info || 'no reason given'}`, { info: info || '' });
    this.name = 'RefusedError';
    this.command = command;
  }
}

/** A join refused because the room holds as many participants as it admits. */
export class RoomFullError extends RefusedError {
  constructor(command, info) {
    super(command, info);
    this.name = 'RoomFullError';
    this.code = 'ROOM_FULL';
  }
}

/** The WebSocket could not be opened, or closed. */
export class ConnectionError extends WebcallError {
  constructor(message, { url, closeCode, reason } = {}) {
    super('CONNECTION', message);
    this.name = 'ConnectionError';
    this.url = url;
    this.closeCode = closeCode;
    this.reason = reason;
  }
}

/** Camera, microphone or screen capture failed: `reason` is denied, not-found, in-use, insecure or other. */
export class MediaAccessError extends WebcallError {
  constructor(reason, message, cause, device = 'camera') {
    super('MEDIA', message, { cause });
    this.name = 'MediaAccessError';
    this.reason = reason;
    /** 'camera' (camera and microphone) or 'screen' */
    this.device = device;
  }
}

/** A stream ended in FAILED; `info` is the server's reason (e.g. "No common codecs"). */
export class StreamError extends WebcallError {
  constructor(streamName, info) {
    super('STREAM', `Stream ${streamName} failed: ${info || 'no reason given'}`, { info: info || '' });
    this.name = 'StreamError';
    this.streamName = streamName;
  }
}

/** A command got no answer in time. */
export class TimeoutError extends WebcallError {
  constructor(what, ms) {
    super('TIMEOUT', `No answer to ${what} within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** A method was called in a state where it cannot work (e.g. publish before the join). */
export class StateError extends WebcallError {
  constructor(message) {
    super('STATE', message);
    this.name = 'StateError';
  }
}

/** The error for a FAILED answer to `command` with the server's `info`. */
export function refusal(command, info) {
  if (command === 'join' && /\bfull\b/i.test(info || '')) return new RoomFullError(command, info);
  return new RefusedError(command, info);
}

/** Maps a getUserMedia / getDisplayMedia rejection to a MediaAccessError with a readable text. */
export function mediaError(err, what = 'camera and microphone') {
  if (err instanceof MediaAccessError) return err;
  const device = what === 'screen' ? 'screen' : 'camera';
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') {
    return new MediaAccessError('denied', `Access to the ${what} was denied`, err, device);
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError') {
    return new MediaAccessError('not-found', `No ${what} was found`, err, device);
  }
  if (name === 'NotReadableError' || name === 'TrackStartError' || name === 'AbortError') {
    return new MediaAccessError('in-use', `The ${what} could not be started (in use by another program?)`, err, device);
  }
  return new MediaAccessError('other', `Could not start the ${what}: ${(err && err.message) || name || err}`, err, device);
}
