#!/usr/bin/python3
"""Publish to webcall over WHIP, or play from it over WHEP, with GStreamer's webrtcbin.

Run with Debian's /usr/bin/python3 (its python3-gi binds GStreamer), for example:

    /usr/bin/python3 tests/clients/gst_whip.py publish http://127.0.0.1:8080/whip/cam1
    /usr/bin/python3 tests/clients/gst_whip.py play http://127.0.0.1:8080/whep/cam1 --seconds 5

webrtcbin keeps its default DTLS certificate (RSA). The offer is sent once ICE gathering is
complete (webcall's answer carries its one candidate; no trickle). A player prints one JSON
line: decoded video frames and audio buffers, the loudest audio level, and the milliseconds
from sending the offer to the first decoded frame. DELETE on the resource ends the stream.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

VIDEO = {
    "vp8": "vp8enc deadline=1 target-bitrate=600000 keyframe-max-dist=30 ! rtpvp8pay pt=96"
    " ! application/x-rtp,media=video,encoding-name=VP8,payload=96",
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=600"
    " ! video/x-h264,profile=constrained-baseline"
    " ! rtph264pay pt=102 config-interval=-1 aggregate-mode=zero-latency"
    " ! application/x-rtp,media=video,encoding-name=H264,payload=102",
}
AUDIO = {
    "opus": "opusenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111",
    # 20 ms packets, as browsers send: the payloader would otherwise fill the MTU (175 ms).
    "pcmu": "mulawenc ! rtppcmupay pt=0 max-ptime=20000000 ! application/x-rtp,media=audio,encoding-name=PCMU,payload=0",
    "pcma": "alawenc ! rtppcmapay pt=8 max-ptime=20000000 ! application/x-rtp,media=audio,encoding-name=PCMA,payload=8",
}
# What a player offers to receive: every codec webcall forwards.
PLAY_VIDEO_CAPS = (
    "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000;"
    "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
    "packetization-mode=(string)1,profile-level-id=(string)42e01f;"
    "application/x-rtp,media=video,encoding-name=H264,payload=103,clock-rate=90000,"
    "packetization-mode=(string)1,profile-level-id=(string)42001f"
)
PLAY_AUDIO_CAPS = (
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2;"
    "application/x-rtp,media=audio,encoding-name=PCMU,payload=0,clock-rate=8000;"
    "application/x-rtp,media=audio,encoding-name=PCMA,payload=8,clock-rate=8000"
)


class Client:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.resource = None
        self.offer_created = False
        self.offer_sent_at = None
        self.stats = {"video_frames": 0, "audio_buffers": 0, "audio_peak_db": -200.0,
                      "first_frame_ms": None, "error": None}
        if args.mode == "publish":
            description = (
                f"webrtcbin name=webrtc bundle-policy={args.bundle_policy} "
                "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1"
                f" ! videoconvert ! queue ! {VIDEO[args.video]} ! webrtc. "
                "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audioconvert ! audioresample"
                f" ! queue ! {AUDIO[args.audio]} ! webrtc. "
            )
            self.pipe = Gst.parse_launch(description)
            self.webrtc = self.pipe.get_by_name("webrtc")
        else:
            self.pipe = Gst.Pipeline.new("player")
            self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
            self.webrtc.set_property("bundle-policy", args.bundle_policy)
            self.pipe.add(self.webrtc)
            for caps in (PLAY_VIDEO_CAPS, PLAY_AUDIO_CAPS):
                direction = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
                self.webrtc.emit("add-transceiver", direction, Gst.Caps.from_string(caps))
            self.webrtc.connect("pad-added", self.on_incoming_pad)
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)

    def on_negotiation_needed(self, webrtc):
        if self.offer_created:
            return  # one offer: WHIP has no renegotiation
        self.offer_created = True
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        webrtc.emit("create-offer", None, promise)

    def on_offer_created(self, promise, _):
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            self.fail(f"no offer: {reply.to_string() if reply else 'no reply'}")
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def on_gathering(self, webrtc, _):
        if webrtc.get_property("ice-gathering-state") != GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            return
        offer = webrtc.get_property("local-description").sdp.as_text()
        GLib.idle_add(self.exchange, offer)

    def exchange(self, offer):
        """POST the offer (RFC 9725 §4.2), apply the answer."""
        if self.args.offer_only:
            print(offer, end="", flush=True)
            self.loop.quit()
            return False
        headers = {"Content-Type": "application/sdp"}
        if self.args.token:
            headers["Authorization"] = f"Bearer {self.args.token}"
        if self.args.mangle_fingerprint:
            offer = mangle_fingerprint(offer)
        deadline = time.monotonic() + self.args.wait
        while True:
            request = urllib.request.Request(self.args.url, offer.encode(), headers, method="POST")
            self.offer_sent_at = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = response.read().decode()
                    location = response.headers["Location"]
                break
            except urllib.error.HTTPError as error:
                if error.code == 404 and time.monotonic() < deadline:
                    time.sleep(0.2)  # not published yet
                    continue
                self.fail(f"HTTP {error.code}: {error.read().decode()}")
                return False
        self.resource = urllib.parse.urljoin(self.args.url, location)
        print(f"resource {self.resource}", file=sys.stderr, flush=True)
        _, message = GstSdp.SDPMessage.new_from_text(answer)
        description = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        self.webrtc.emit("set-remote-description", description, Gst.Promise.new())
        return False

    def on_incoming_pad(self, _, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", self.on_decoded_pad)
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def on_decoded_pad(self, _, pad):
        kind = pad.get_current_caps().get_structure(0).get_name()
        if kind.startswith("video"):
            chain = "videoconvert ! fakesink name=vsink signal-handoffs=true sync=false"
        elif kind.startswith("audio"):
            chain = "audioconvert ! level interval=100000000 ! fakesink name=asink signal-handoffs=true sync=false"
        else:
            return
        sink_bin = Gst.parse_bin_from_description(chain, True)
        self.pipe.add(sink_bin)
        sink_bin.sync_state_with_parent()
        pad.link(sink_bin.get_static_pad("sink"))
        fakesink = sink_bin.get_by_name("vsink") or sink_bin.get_by_name("asink")
        counter = "video_frames" if kind.startswith("video") else "audio_buffers"
        fakesink.connect("handoff", self.on_handoff, counter)

    def on_handoff(self, _sink, _buffer, _pad, counter):
        self.stats[counter] += 1
        if counter == "video_frames" and self.stats["first_frame_ms"] is None:
            self.stats["first_frame_ms"] = round((time.monotonic() - self.offer_sent_at) * 1000)

    def on_message(self, _, message):
        if message.type == Gst.MessageType.ERROR:
            error, _ = message.parse_error()
            self.fail(f"pipeline error: {error.message}")
        elif message.type == Gst.MessageType.ELEMENT and message.get_structure().get_name() == "level":
            peaks = message.get_structure().get_value("peak")
            if peaks:
                self.stats["audio_peak_db"] = max(self.stats["audio_peak_db"], max(peaks))

    def fail(self, reason):
        self.stats["error"] = reason
        self.loop.quit()

    def run(self):
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add(int(self.args.seconds * 1000), self.loop.quit)
        self.loop.run()
        if self.resource and not self.args.keep:
            self.stats["ended_by_server"] = not delete(self.resource)
        self.pipe.set_state(Gst.State.NULL)
        if not self.args.offer_only:
            print(json.dumps(self.stats), flush=True)
        return 1 if self.stats["error"] else 0


def delete(resource):
    """DELETE the resource (RFC 9725 §4.3); False when the server had ended it already (404)."""
    try:
        urllib.request.urlopen(urllib.request.Request(resource, method="DELETE"), timeout=5).close()
        return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def mangle_fingerprint(offer):
    """A fingerprint that is not the certificate's: flips the last hex digit (a test's case)."""
    lines = offer.split("\r\n")
    for i, line in enumerate(lines):
        if line.startswith("a=fingerprint:"):
            last = line[-1]
            lines[i] = line[:-1] + ("0" if last != "0" else "1")
    return "\r\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["publish", "play"])
    parser.add_argument("url", help="the WHIP or WHEP endpoint")
    parser.add_argument("--video", choices=sorted(VIDEO), default="vp8")
    parser.add_argument("--audio", choices=sorted(AUDIO), default="opus")
    parser.add_argument("--bundle-policy", choices=["max-bundle", "max-compat", "balanced"], default="max-bundle")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--token", help="a room token, sent as Authorization: Bearer")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to retry a 404 (a stream not yet published)")
    parser.add_argument("--keep", action="store_true", help="leave the resource (no DELETE at the end)")
    parser.add_argument("--offer-only", action="store_true", help="print the offer and stop (no request)")
    parser.add_argument("--mangle-fingerprint", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    Gst.init(None)
    sys.exit(Client(args).run())


if __name__ == "__main__":
    main()
