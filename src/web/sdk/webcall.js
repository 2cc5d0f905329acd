// webcall room SDK — the module pages import: `import { connect } from '/sdk/webcall.js'`.
// It speaks the Flashphoner WCS WebSocket room protocol, so it works against webcall and WCS,
// and mirrors the official room API (connect → session.join → room.publish / stream.play).
// Types: webcall.d.ts. Guide and example: docs/sdk.md.

export { connect, Session } from './session.js';
export { Room, Participant, ParticipantStream } from './room.js';
export { Stream } from './stream.js';
export {
  SESSION_STATUS, ROOM_EVENT, STREAM_STATUS, STREAM_EVENT, STREAM_INFO,
  isScreenStream, isH264Stream,
} from './protocol.js';
export {
  WebcallError, RefusedError, RoomFullError, ConnectionError, MediaAccessError, StreamError,
  TimeoutError, StateError,
} from './errors.js';

/** The SDK's version. */
export const VERSION = '1.0.0';
