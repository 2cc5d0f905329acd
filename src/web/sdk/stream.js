// webcall SDK — one media stream, published or played, on its own RTCPeerConnection. The browser
// always sends the offer (`publishStream` / `playStream`), the server answers with
// `setRemoteSDP` and reports statuses with `notifyStreamStatusEvent`.
//
// Events (argument: the stream; FAILED also gets a WebcallError):
//   published: PENDING, PUBLISHING, UNPUBLISHED, FAILED, CODEC_CHANGED
//   played:    PENDING, PLAYING, STOPPED, FAILED, UNMUTE_REQUIRED
// A published stream survives a reconnection: it goes PENDING ("Reconnecting") and then
// PUBLISHING again under a new media session. It is also published again, as VP8, when a
// participant who cannot decode H.264 shows up (CODEC_CHANGED).

import { Emitter } from './emitter.js';
import { MediaAccessError, StreamError, mediaError } from './errors.js';
import {
  FINAL_STATUSES, STREAM_EVENT, STREAM_INFO, STREAM_STATUS, answerVideoCodec, isH264Stream,
  isScreenStream, playData, preferVideoCodec, publishData, streamRef, uuid, withH264Mark,
} from './protocol.js';

export class Stream extends Emitter {
  constructor(session, room, { kind, name, display, options = {}, participant = null }) {
    super();
    this._session = session;
    this._room = room;
    this._kind = kind;               // 'publish' | 'play'
    this._name = name;
    this._display = display || null;
    this._options = options;
    this._participant = participant;
    this._id = uuid();
    this._status = STREAM_STATUS.NEW;
    this._info = '';
    this._pc = null;
    this._media = null;              // local capture or remote MediaStream
    this._ownsMedia = false;         // we captured it, so we stop its tracks
    this._video = null;
    this._ownsVideo = false;
    this._codec = null;
    this._done = false;
    this._waitingForCodec = false;
    this._renegotiating = null;      // Promise while a new media session is being set up
    this._negotiated = false;        // a publishStream was sent at least once
    this._muted = { audio: false, video: false };
  }

  // --- public API ------------------------------------------------------------------------

  id() { return this._id; }
  name() { return this._name; }
  status() { return this._status; }
  getInfo() { return this._info; }
  /** The recording's file name, when the server records this published stream. */
  getRecordInfo() { return this._recordName || null; }
  published() { return this._kind === 'publish'; }
  isScreen() { return isScreenStream(this._name); }
  /** The participant whose stream this is (played streams). */
  participant() { return this._participant; }
  /** Negotiated video codec ('H264', 'VP8') once the server answered. */
  codec() { return this._codec; }
  /** The MediaStream shown: the local capture, or the received tracks. */
  getMediaStream() { return this._media; }
  /** The <video> element the stream is shown in. */
  getVideoElement() { return this._video; }
  /** The RTCStatsReport of the stream's peer connection (null when it has none). */
  async getStats() { return this._pc ? this._pc.getStats() : null; }

  /** Ends the stream: unPublishStream / stopStream to the server, local resources released. */
  stop() {
    if (this._done) return;
    if (this._pc && !this._waitingForCodec) {
      this._session._send(this._kind === 'publish' ? 'unPublishStream' : 'stopStream', streamRef({ id: this._id, name: this._name }));
    }
    this._end(this._kind === 'publish' ? STREAM_STATUS.UNPUBLISHED : STREAM_STATUS.STOPPED, '', null);
  }

  muteAudio() { this._setEnabled('audio', false); }
  unmuteAudio() { this._setEnabled('audio', true); }
  isAudioMuted() { return this._isMuted('audio'); }
  muteVideo() { this._setEnabled('video', false); }
  unmuteVideo() { this._setEnabled('video', true); }
  isVideoMuted() { return this._isMuted('video'); }

  /** Played streams: starts the sound after the browser refused autoplay with sound. */
  unmuteRemoteAudio() {
    if (this._video) {
      this._video.muted = false;
      const p = this._video.play();
      if (p && p.catch) p.catch(() => {});
    }
  }

  // --- internal: common ----------------------------------------------------------------------

  _setStatus(status, info = '', error = null) {
    this._status = status;
    this._info = info || '';
    if (error) this.emit(status, this, error);
    else this.emit(status, this);
  }

  _setEnabled(kind, enabled) {
    if (this._kind !== 'publish') return;
    this._muted[kind] = !enabled;
    const tracks = this._media ? (kind === 'audio' ? this._media.getAudioTracks() : this._media.getVideoTracks()) : [];
    for (const t of tracks) t.enabled = enabled;
  }

  _isMuted(kind) {
    if (!this._media) return true;
    const tracks = kind === 'audio' ? this._media.getAudioTracks() : this._media.getVideoTracks();
    return tracks.length === 0 || tracks.every((t) => !t.enabled);
  }

  /** Final status: releases everything and reports `status` once. */
  _end(status, info, error) {
    if (this._done) return;
    this._done = true;
    this._session._unregister(this._id);
    this._closePc();
    if (this._ownsMedia && this._media) for (const t of this._media.getTracks()) t.stop();
    if (this._video) {
      if (this._ownsVideo) this._video.remove();
      else if (this._video.srcObject === this._media) this._video.srcObject = null;
    }
    this._status = status;
    this._info = info || '';
    this.emit('_ended', this);
    if (error) this.emit(status, this, error);
    else this.emit(status, this);
  }

  _fail(error) {
    this._end(STREAM_STATUS.FAILED, error.info || error.message, error);
  }

  _closePc() {
    if (this._pc) {
      try { this._pc.close(); } catch { /* closed */ }
      this._pc = null;
    }
  }

  _newPc() {
    const PC = this._session._env.RTCPeerConnection;
    if (typeof PC !== 'function') throw new StreamError(this._name, 'This browser does not support WebRTC');
    return new PC(this._session._opts.rtcConfiguration || {});
  }

  /** A <video> for the display: the display itself, or a new one inside it. */
  _videoElement(local) {
    const d = this._display;
    const doc = this._session._env.document;
    if (!d && !doc) return null;
    let v;
    if (d && d.tagName === 'VIDEO') {
      v = d;
    } else if (doc) {
      v = doc.createElement('video');
      v.id = this._id;
      v.className = 'webcall-video';
      v.setAttribute('playsinline', '');
      v.autoplay = true;
      v.playsInline = true;
      if (d) d.append(v);
      this._ownsVideo = true;
    }
    if (v && local) {
      v.muted = true;
      v.defaultMuted = true;
    }
    return v;
  }

  _show(media, local) {
    if (!this._video) this._video = this._videoElement(local);
    const v = this._video;
    if (!v) return;
    if (v.srcObject !== media) v.srcObject = media;
    if (local) v.muted = true;
    else if (this._options.unmutePlayOnStart !== false) v.muted = false;
    const p = v.play();
    if (!p || typeof p.catch !== 'function') return;
    p.catch((err) => {
      if (this._done || (err && err.name === 'AbortError')) return;
      if (!local && !v.muted) {
        // Autoplay with sound refused: play muted and let the page offer an unmute button.
        v.muted = true;
        const again = v.play();
        if (again && again.catch) again.catch(() => {});
        this.emit(STREAM_EVENT.UNMUTE_REQUIRED, this);
      }
    });
  }

  async _start() {
    try {
      if (this._kind === 'publish') await this._startPublish();
      else await this._startPlay();
    } catch (err) {
      if (!this._done) this._fail(err instanceof Error && err.code ? err : new StreamError(this._name, err && err.message ? err.message : String(err)));
    }
  }

  async _onAnswer(sdp) {
    if (this._done || !this._pc || typeof sdp !== 'string') return;
    const pc = this._pc;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp });
      this._codec = answerVideoCodec(sdp);
    } catch (err) {
      if (pc === this._pc) this._fail(new StreamError(this._name, `The server's answer was not accepted: ${err.message}`));
    }
  }

  _onStatus(status, info, obj) {
    if (this._done) return;
    if (status === 'FAILED') {
      this._fail(new StreamError(this._name, info));
    } else if (FINAL_STATUSES.includes(status)) {
      this._end(status, info, null);
    } else if (status === STREAM_STATUS.PUBLISHING || status === STREAM_STATUS.PLAYING) {
      const first = this._status !== status;
      this._status = status;
      this._info = info || '';
      if (obj && obj.recordName) this._recordName = obj.recordName;
      const recorded = this._kind === 'publish' && this._options && this._options.record;
      if (first) this.emit(status, this);
      // A PUBLISHING with a reason: the recording stopped or never started (the stream goes on).
      if (info && recorded && status === STREAM_STATUS.PUBLISHING) this.emit('RECORDING_FAILED', this, info);
    } else {
      this._status = status;
      this._info = info || '';
      this.emit(status, this);
    }
  }

  // --- internal: publishing --------------------------------------------------------------------

  async _capture() {
    const o = this._options;
    if (o.mediaStream) return { media: o.mediaStream, owned: false };
    const md = this._session._env.mediaDevices;
    const c = o.constraints || { audio: true, video: true };
    if (o.screen) {
      if (!md || typeof md.getDisplayMedia !== 'function') {
        throw new MediaAccessError('insecure', 'Screen sharing is not available here (it needs a secure page in a desktop browser)', null, 'screen');
      }
      const video = typeof c.video === 'object' ? { ...c.video } : {};
      delete video.type;
      delete video.mediaSource;
      delete video.withoutExtension;
      try {
        return { media: await md.getDisplayMedia({ video: Object.keys(video).length ? video : true, audio: !!c.audio }), owned: true };
      } catch (err) {
        throw mediaError(err, 'screen');
      }
    }
    if (!md || typeof md.getUserMedia !== 'function') {
      throw new MediaAccessError('insecure', 'Camera access needs a secure page (https or localhost)');
    }
    try {
      return { media: await md.getUserMedia(c), owned: true };
    } catch (err) {
      if (err && (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') && c.audio && c.video) {
        // Publish whatever device exists.
        for (const only of [{ video: c.video }, { audio: c.audio }]) {
          try {
            return { media: await md.getUserMedia(only), owned: true };
          } catch { /* try the next one */ }
        }
      }
      throw mediaError(err);
    }
  }

  async _startPublish() {
    this._setStatus(STREAM_STATUS.PENDING);
    const { media, owned } = await this._capture();
    if (this._done) {
      if (owned) for (const t of media.getTracks()) t.stop();
      return;
    }
    this._media = media;
    this._ownsMedia = owned;
    for (const kind of ['audio', 'video']) if (this._muted[kind]) this._setEnabled(kind, false);
    this._show(media, true);
    const video = media.getVideoTracks()[0];
    if (video && this._options.screen) {
      // The browser's own "Stop sharing" ends the track: unpublish.
      video.addEventListener('ended', () => this.stop());
    }
    await this._room._ready();
    // (once negotiated, a stream is published again by _resume(), not here)
    if (this._done || this._negotiated) return;
    await this._negotiatePublish();
  }

  async _negotiatePublish() {
    this._negotiated = true;
    const media = this._media;
    const pc = this._newPc();
    this._pc = pc;
    this._session._register(this._id, this);
    for (const track of media.getTracks()) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    }
    pc.addEventListener('connectionstatechange', () => {
      if (pc === this._pc && pc.connectionState === 'failed' && !this._done && this._session.status() === 'ESTABLISHED') {
        this._fail(new StreamError(this._name, 'The media connection failed'));
      }
    });
    const offer = await pc.createOffer();
    const codec = await this._room._chooseCodec(this._options.codec);
    if (this._done || pc !== this._pc) return;
    let sdp = offer.sdp;
    const h264 = codec === 'H264' && /H264\/90000/i.test(sdp);
    sdp = preferVideoCodec(sdp, h264 ? 'H264' : 'VP8');
    this._name = withH264Mark(this._name, h264 && media.getVideoTracks().length > 0);
    await pc.setLocalDescription(offer);
    if (this._done || pc !== this._pc) return;
    const hasAudio = media.getAudioTracks().length > 0;
    const hasVideo = media.getVideoTracks().length > 0;
    this._session._send('publishStream', publishData({
      id: this._id,
      name: this._name,
      room: this._room.name(),
      sdp,
      hasAudio,
      hasVideo,
      record: this._options.record,
      constraints: { audio: hasAudio, video: hasVideo },
    }));
  }

  /** Publishes again under a new media session (after a reconnection or for a codec change). */
  async _republish(reason) {
    if (this._done || this._kind !== 'publish' || !this._media) return;
    if (this._renegotiating) return;
    const oldId = this._id;
    const oldName = this._name;
    const oldCodec = this._codec;
    if (reason === 'codec' && this._session.status() === 'ESTABLISHED') {
      this._session._send('unPublishStream', streamRef({ id: oldId, name: oldName }));
    }
    this._session._unregister(oldId);
    this._closePc();
    this._id = uuid();
    this._codec = null;
    this._status = STREAM_STATUS.PENDING;
    this._renegotiating = (async () => {
      try {
        await this._negotiatePublish();
      } catch (err) {
        if (!this._done) this._fail(new StreamError(this._name, err && err.message ? err.message : String(err)));
      } finally {
        this._renegotiating = null;
      }
    })();
    await this._renegotiating;
    if (reason === 'codec' && !this._done) {
      this.once(STREAM_STATUS.PUBLISHING, () => {
        if (this._codec !== oldCodec) this.emit(STREAM_EVENT.CODEC_CHANGED, this, this._codec);
      });
    }
  }

  /** Called when a participant who cannot decode H.264 published: switch from H.264 to VP8. */
  _codecMayChange() {
    if (this._done || this._kind !== 'publish' || !isH264Stream(this._name)) return;
    if (String(this._options.codec || 'auto').toLowerCase() !== 'auto') return;
    if (this._status !== STREAM_STATUS.PUBLISHING && this._status !== STREAM_STATUS.PENDING) return;
    if (!this._pc) return;
    this._republish('codec');
  }

  /** The socket dropped: publishers wait for the re-join, players are over. */
  _suspend() {
    if (this._done) return;
    if (this._kind === 'publish') {
      this._session._unregister(this._id);
      this._closePc();
      if (this._media) this._setStatus(STREAM_STATUS.PENDING, STREAM_INFO.RECONNECTING);
    } else {
      this._end(STREAM_STATUS.STOPPED, STREAM_INFO.STOPPED_BY_SESSION_DISCONNECT, null);
    }
  }

  /** The room was joined again: publish again. */
  _resume() {
    if (this._done || this._kind !== 'publish' || !this._media || !this._negotiated) return;
    this._republish('reconnect');
  }

  // --- internal: playing -----------------------------------------------------------------------

  async _startPlay() {
    this._setStatus(STREAM_STATUS.PENDING);
    await this._room._ready();
    if (this._done) return;
    if (isH264Stream(this._name) && !(await this._session._canH264())) {
      // Its publisher switches to VP8 once it sees this participant's stream; until then wait.
      this._waitingForCodec = true;
      this._setStatus(STREAM_STATUS.PENDING, STREAM_INFO.WAITING_FOR_CODEC);
      return;
    }
    if (this._done) return;
    const pc = this._newPc();
    this._pc = pc;
    this._session._register(this._id, this);
    const MS = this._session._env.MediaStream;
    const remote = typeof MS === 'function' ? new MS() : null;
    this._media = remote;
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addEventListener('track', (ev) => {
      if (pc !== this._pc || !remote) return;
      remote.addTrack(ev.track);
      this._show(remote, false);
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc === this._pc && pc.connectionState === 'failed' && !this._done && this._session.status() === 'ESTABLISHED') {
        this._fail(new StreamError(this._name, 'The media connection failed'));
      }
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    if (this._done || pc !== this._pc) return;
    this._session._send('playStream', playData({
      id: this._id, name: this._name, room: this._room.name(), sdp: pc.localDescription.sdp,
    }));
  }
}

