"""Publish to webcall over WHIP, or play from it over WHEP, with aiortc (Python WebRTC).

In the venv tests/clients/setup.sh makes (pip's aiortc), for example:

    target/clients-venv/bin/python tests/clients/aiortc_whip.py publish \
        http://127.0.0.1:8080/whip/cam1 --video h264 --audio pcmu
    target/clients-venv/bin/python tests/clients/aiortc_whip.py play \
        http://127.0.0.1:8080/whep/cam1 --seconds 5

A publisher sends a 320x240 test pattern and a 440 Hz tone. A player prints one JSON line:
decoded video frames and audio frames, the audio's peak level and frequency (from its zero
crossings: G.711 must arrive as the same 440 Hz tone), the codecs the answer chose, and the
milliseconds from sending the offer to the first decoded video frame.
"""

import argparse
import array
import asyncio
import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

VIDEO_MIME = {"vp8": "video/VP8", "h264": "video/H264"}
AUDIO_MIME = {"opus": "audio/opus", "pcmu": "audio/PCMU", "pcma": "audio/PCMA"}


def prefer(transceiver, kind, mime):
    """Offer only `mime` (and its RTX) on this transceiver."""
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in codecs if c.mimeType.lower() in (mime.lower(), f"{kind}/rtx")]
    transceiver.setCodecPreferences(chosen)


def post_offer(url, sdp, token, wait_seconds):
    """POST the offer (RFC 9725 §4.2); a 404 (not published yet) is tried again for a while."""
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    deadline = time.monotonic() + wait_seconds
    while True:
        request = urllib.request.Request(url, sdp.encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read().decode(), urllib.parse.urljoin(url, response.headers["Location"])
        except urllib.error.HTTPError as error:
            if error.code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def delete(resource):
    """DELETE the resource (RFC 9725 §4.3); False when the server had ended it already (404)."""
    try:
        urllib.request.urlopen(urllib.request.Request(resource, method="DELETE"), timeout=5).close()
        return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


class AudioMeter:
    """Peak level and zero-crossing frequency of the first channel of s16 audio frames."""

    def __init__(self):
        self.peak, self.crossings, self.samples, self.last = 0, 0, 0, 0

    def add(self, frame):
        # aiortc's decoders give packed s16 (Opus stereo at 48 kHz, G.711 mono at 8 kHz).
        channels = len(frame.layout.channels)
        interleaved = array.array("h", bytes(frame.planes[0])[: frame.samples * channels * 2])
        samples = interleaved[::channels]
        for value in samples:
            self.peak = max(self.peak, abs(value))
            if (value >= 0) != (self.last >= 0):
                self.crossings += 1
            self.last = value
        self.samples += len(samples)
        self.rate = frame.sample_rate

    def report(self):
        if not self.samples:
            return {"audio_peak_db": None, "audio_hz": None}
        seconds = self.samples / self.rate
        return {
            "audio_peak_db": round(20 * math.log10(max(self.peak, 1) / 32768), 1),
            "audio_hz": round(self.crossings / 2 / seconds),
        }


async def consume(track, stats, meter, started):
    while True:
        try:
            frame = await track.recv()
        except Exception:  # the track ended
            return
        if track.kind == "video":
            stats["video_frames"] += 1
            if stats["first_frame_ms"] is None:
                stats["first_frame_ms"] = round((time.monotonic() - started) * 1000)
        else:
            stats["audio_frames"] += 1
            if stats["audio_frames"] > 25:  # past the decoder's first half second
                try:
                    meter.add(frame)
                except Exception as error:  # a frame it cannot read: said, not hidden
                    stats["error"] = f"audio frame unreadable: {error}"


async def run(args):
    pc = RTCPeerConnection()
    stats = {"video_frames": 0, "audio_frames": 0, "first_frame_ms": None, "codecs": [], "error": None}
    meter = AudioMeter()
    tasks = []
    started = time.monotonic()
    if args.mode == "publish":
        video = MediaPlayer("testsrc=size=320x240:rate=30", format="lavfi")
        audio = MediaPlayer("sine=frequency=440:sample_rate=48000", format="lavfi")
        prefer(pc.addTransceiver(video.video, "sendonly"), "video", VIDEO_MIME[args.video])
        prefer(pc.addTransceiver(audio.audio, "sendonly"), "audio", AUDIO_MIME[args.audio])
    else:
        pc.addTransceiver("video", "recvonly")
        pc.addTransceiver("audio", "recvonly")

        @pc.on("track")
        def on_track(track):
            tasks.append(asyncio.ensure_future(consume(track, stats, meter, started)))

    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers before returning
    if args.offer_only:
        print(pc.localDescription.sdp, end="", flush=True)
        await pc.close()
        return 0
    started = time.monotonic()
    try:
        answer, resource = await asyncio.to_thread(
            post_offer, args.url, pc.localDescription.sdp, args.token, args.wait)
    except urllib.error.HTTPError as error:
        stats["error"] = f"HTTP {error.code}: {error.read().decode()}"
        print(json.dumps(stats), flush=True)
        await pc.close()
        return 1
    print(f"resource {resource}", file=sys.stderr, flush=True)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    stats["codecs"] = [t.receiver.track.kind + ":" + (t._codecs[0].mimeType if t._codecs else "?")
                       for t in pc.getTransceivers() if t.receiver.track] if args.mode == "play" else []
    await asyncio.sleep(args.seconds)
    if not args.keep:
        stats["ended_by_server"] = not await asyncio.to_thread(delete, resource)
    await pc.close()
    for task in tasks:
        task.cancel()
    stats.update(meter.report())
    print(json.dumps(stats), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["publish", "play"])
    parser.add_argument("url", help="the WHIP or WHEP endpoint")
    parser.add_argument("--video", choices=sorted(VIDEO_MIME), default="vp8")
    parser.add_argument("--audio", choices=sorted(AUDIO_MIME), default="opus")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--token", help="a room token, sent as Authorization: Bearer")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to retry a 404 (a stream not yet published)")
    parser.add_argument("--offer-only", action="store_true", help="print the offer and stop (no request)")
    parser.add_argument("--keep", action="store_true", help="leave the resource (no DELETE at the end)")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
