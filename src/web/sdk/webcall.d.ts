// Type declarations of the webcall room SDK (webcall.js). See docs/sdk.md.

export declare const VERSION: string;

export declare const SESSION_STATUS: {
  readonly PENDING: 'PENDING';
  readonly CONNECTED: 'CONNECTED';
  readonly ESTABLISHED: 'ESTABLISHED';
  readonly RECONNECTING: 'RECONNECTING';
  readonly RECONNECTED: 'RECONNECTED';
  readonly DISCONNECTED: 'DISCONNECTED';
  readonly FAILED: 'FAILED';
};
export declare const ROOM_EVENT: {
  readonly STATE: 'STATE';
  readonly JOINED: 'JOINED';
  readonly LEFT: 'LEFT';
  readonly PUBLISHED: 'PUBLISHED';
  readonly UNPUBLISHED: 'UNPUBLISHED';
  readonly MESSAGE: 'MESSAGE';
  readonly FAILED: 'FAILED';
  readonly REJOINED: 'REJOINED';
};
export declare const STREAM_STATUS: {
  readonly NEW: 'NEW';
  readonly PENDING: 'PENDING';
  readonly PUBLISHING: 'PUBLISHING';
  readonly PLAYING: 'PLAYING';
  readonly UNPUBLISHED: 'UNPUBLISHED';
  readonly STOPPED: 'STOPPED';
  readonly FAILED: 'FAILED';
};
export declare const STREAM_EVENT: {
  readonly UNMUTE_REQUIRED: 'UNMUTE_REQUIRED';
  readonly CODEC_CHANGED: 'CODEC_CHANGED';
};
export declare const STREAM_INFO: {
  readonly STOPPED_BY_SESSION_DISCONNECT: string;
  readonly STOPPED_BY_PUBLISHER_STOP: string;
  readonly NO_COMMON_CODECS: string;
  readonly RECONNECTING: string;
  readonly WAITING_FOR_CODEC: string;
};

export type SessionStatus = typeof SESSION_STATUS[keyof typeof SESSION_STATUS];
export type StreamStatus = typeof STREAM_STATUS[keyof typeof STREAM_STATUS];
export type VideoCodec = 'H264' | 'VP8';

export declare function isScreenStream(name: string): boolean;
export declare function isH264Stream(name: string): boolean;

// --- errors ---------------------------------------------------------------------------------

export declare class WebcallError extends Error {
  /** REFUSED, ROOM_FULL, CONNECTION, MEDIA, STREAM, TIMEOUT or STATE. */
  readonly code: string;
  /** The server's reason text when the server gave one, else the message. */
  readonly info: string;
}
export declare class RefusedError extends WebcallError {
  /** join, leave or sendMessage */
  readonly command: string;
}
export declare class RoomFullError extends RefusedError {}
export declare class ConnectionError extends WebcallError {
  readonly url?: string;
  readonly closeCode?: number;
  readonly reason?: string;
}
export declare class MediaAccessError extends WebcallError {
  readonly reason: 'denied' | 'not-found' | 'in-use' | 'insecure' | 'other';
}
export declare class StreamError extends WebcallError {
  readonly streamName: string;
}
export declare class TimeoutError extends WebcallError {}
export declare class StateError extends WebcallError {}

// --- session ------------------------------------------------------------------------------

export interface ConnectOptions {
  /** ws://host:8080/ or wss://host:8443/ */
  urlServer: string;
  username: string;
  token?: string;
  /** WCS application key [roomApp] */
  appKey?: string;
  /** ms to reach ESTABLISHED before FAILED; 0 = no limit [10000] */
  timeout?: number;
  /** ms to wait for the answer to a command [15000] */
  commandTimeoutMs?: number;
  /** reconnect and re-join after a dropped socket [true] */
  reconnect?: boolean;
  /** delays between reconnection attempts [500, 1000, 2000, 4000] (the last one repeats) */
  reconnectDelaysMs?: number[];
  /** give up reconnecting (FAILED) after this long [60000] */
  reconnectTimeoutMs?: number;
  /** once the server pings, this much silence counts as a drop; 0 = off [15000] */
  keepAliveTimeoutMs?: number;
  /** passed to every RTCPeerConnection */
  rtcConfiguration?: RTCConfiguration;
}

export interface ReconnectingDetail {
  attempt: number;
  delayMs: number;
  error: WebcallError;
}

export declare class Session {
  status(): SessionStatus;
  id(): string;
  username(): string;
  getServerUrl(): string;
  getRooms(): Room[];
  getStreams(): Stream[];
  join(options: { name: string; record?: boolean }): Room;
  disconnect(): void;
  on(event: 'ESTABLISHED' | 'CONNECTED' | 'RECONNECTED', cb: (session: Session) => void): this;
  on(event: 'DISCONNECTED' | 'FAILED', cb: (session: Session, error: WebcallError | null) => void): this;
  on(event: 'RECONNECTING', cb: (session: Session, detail: ReconnectingDetail) => void): this;
  on(event: 'WARN', cb: (session: Session, info: unknown) => void): this;
  on(event: string, cb: (...args: any[]) => void): this;
  once(event: string, cb: (...args: any[]) => void): this;
  off(event: string, cb?: (...args: any[]) => void): this;
}

export declare function connect(options: ConnectOptions): Session;

// --- room ---------------------------------------------------------------------------------

export interface MediaConstraintsLike {
  audio?: boolean | MediaTrackConstraints;
  /** `{type: 'screen'}` shares a screen or window (getDisplayMedia), as in the official API */
  video?: boolean | (MediaTrackConstraints & { type?: 'screen' });
}

export interface PublishOptions {
  /** a <video> element, or a container the SDK adds one to */
  display?: HTMLElement | null;
  constraints?: MediaConstraintsLike;
  record?: boolean;
  /** suffix of the stream name: ROOM-LOGIN-XXXX-name */
  name?: string;
  /** share a screen or window (the same as constraints.video.type = 'screen'); suffix "screen" */
  screen?: boolean;
  /** publish this MediaStream instead of capturing one */
  mediaStream?: MediaStream;
  /** 'auto' (default): H.264 when this browser and every participant's stream has it, else VP8 */
  codec?: 'auto' | 'h264' | 'vp8';
}

export interface ChatMessage {
  from: Participant;
  text: string;
}

export declare class Room {
  name(): string;
  getParticipants(): Participant[];
  getParticipant(login: string): Participant | null;
  isJoined(): boolean;
  publish(options?: PublishOptions): Stream;
  /** one message to everyone else in the room */
  sendMessage(text: string): Promise<unknown>;
  leave(): Promise<Room>;
  on(event: 'STATE' | 'REJOINED', cb: (room: Room) => void): this;
  on(event: 'JOINED' | 'LEFT', cb: (participant: Participant) => void): this;
  on(event: 'PUBLISHED' | 'UNPUBLISHED', cb: (participant: Participant, stream: ParticipantStream) => void): this;
  on(event: 'MESSAGE', cb: (message: ChatMessage) => void): this;
  on(event: 'FAILED', cb: (room: Room, info: string, error: WebcallError) => void): this;
  on(event: string, cb: (...args: any[]) => void): this;
  once(event: string, cb: (...args: any[]) => void): this;
  off(event: string, cb?: (...args: any[]) => void): this;
}

export declare class Participant {
  name(): string;
  getStreams(): ParticipantStream[];
  sendMessage(text: string, error?: (e: WebcallError) => void): Promise<unknown>;
}

export declare class ParticipantStream {
  streamName(): string;
  participant(): Participant;
  isScreen(): boolean;
  isH264(): boolean;
  id(): string | undefined;
  play(display?: HTMLElement | null, options?: { unmutePlayOnStart?: boolean }): Stream;
  stop(): void;
}

// --- stream -------------------------------------------------------------------------------

export declare class Stream {
  id(): string;
  name(): string;
  status(): StreamStatus;
  getInfo(): string;
  /** The recording's file name (`record: true`), or null. */
  getRecordInfo(): string | null;
  published(): boolean;
  isScreen(): boolean;
  participant(): Participant | null;
  codec(): VideoCodec | string | null;
  getMediaStream(): MediaStream | null;
  getVideoElement(): HTMLVideoElement | null;
  getStats(): Promise<RTCStatsReport | null>;
  stop(): void;
  muteAudio(): void;
  unmuteAudio(): void;
  isAudioMuted(): boolean;
  muteVideo(): void;
  unmuteVideo(): void;
  isVideoMuted(): boolean;
  unmuteRemoteAudio(): void;
  on(event: 'PENDING' | 'PUBLISHING' | 'PLAYING' | 'UNPUBLISHED' | 'STOPPED' | 'UNMUTE_REQUIRED', cb: (stream: Stream) => void): this;
  on(event: 'RECORDING_FAILED', cb: (stream: Stream, info: string) => void): this;
  on(event: 'FAILED', cb: (stream: Stream, error: WebcallError) => void): this;
  on(event: 'CODEC_CHANGED', cb: (stream: Stream, codec: VideoCodec) => void): this;
  on(event: string, cb: (...args: any[]) => void): this;
  once(event: string, cb: (...args: any[]) => void): this;
  off(event: string, cb?: (...args: any[]) => void): this;
}
