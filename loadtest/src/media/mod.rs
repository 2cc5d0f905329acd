//! Publishers' media: codec enums, per-frame video sources and audio payloads, synthetic or
//! from real encoded clips ([`clip`], made by [`encode`]), and the send log that measures
//! delay for clips ([`send_log`]) as stamps do for synthetic payloads ([`stamp`]).
//!
//! Owns the payload side of publishing, as pure code with no clock: [`VideoSource`] turns
//! "next frame, keyframe or not" into the RTP payloads of that frame (the last one carries
//! the marker bit), [`audio::packet`] gives one synthetic 20 ms packet. RTP headers (SSRC,
//! sequence, timestamp, pacing) belong to the peer. Synthetic frame sizes follow a fixed
//! pattern so runs are reproducible (keyframes about 1.8 kB in three packets, deltas
//! 300–900 B with every 15th at 1.5 kB) unless sized from a bitrate; a clip's frames are
//! the encoder's.

pub mod audio;
pub mod bits;
pub mod clip;
pub mod detect;
pub mod encode;
pub mod h264;
pub mod send_log;
pub mod stamp;
pub mod vp8;

/// Largest RTP payload generated, leaving room for RTP header, extensions and SRTP.
pub const MAX_RTP_PAYLOAD: usize = 1100;
/// RTP clock rate of video.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
/// Frames per second of the synthetic video.
pub const VIDEO_FPS: u32 = 30;

/// Video codecs the client can publish and play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VideoCodec {
    /// H.264, constrained baseline 42e01f, packetization-mode 1.
    H264,
    /// VP8.
    Vp8,
}

/// Audio codecs the client can publish and play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AudioCodec {
    /// Opus, 48 kHz stereo signalled, mono content.
    Opus,
    /// G.711 μ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// The RTP payloads of one video frame, in order; the last one gets the marker bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Payloads, each at most [`MAX_RTP_PAYLOAD`] bytes.
    pub packets: Vec<Vec<u8>>,
    /// Whether this is a keyframe.
    pub keyframe: bool,
}

/// Generates the frames of one synthetic video stream.
#[derive(Debug, Clone)]
pub struct VideoSource {
    codec: VideoCodec,
    width: u16,
    height: u16,
    frames: u64,
    deltas: u64,
    frame_num: u32,
    idr_pic_id: u32,
    picture_id: u16,
    clip_position: u64,
}

impl VideoSource {
    /// A source of `width` × `height` frames.
    pub fn new(codec: VideoCodec, width: u16, height: u16) -> Self {
        VideoSource {
            codec,
            width,
            height,
            frames: 0,
            deltas: 0,
            frame_num: 0,
            idr_pic_id: 0,
            picture_id: 0,
            clip_position: 0,
        }
    }

    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// The next frame's payloads. The first frame is always a keyframe.
    pub fn next_frame(&mut self, keyframe: bool) -> VideoFrame {
        let keyframe = keyframe || self.frames == 0;
        let size = if keyframe {
            1800
        } else {
            self.deltas += 1;
            if self.deltas.is_multiple_of(15) {
                1500
            } else {
                300 + (self.deltas * 37 % 600) as usize
            }
        };
        self.next_frame_sized(keyframe, size, MAX_RTP_PAYLOAD)
    }

    /// The next frame of a pre-encoded `clip` (of this source's codec), split into payloads
    /// of at most `mtu` bytes. `restart` (a keyframe request) and the first frame start the
    /// clip over from its keyframe, so the stream stays decodable; the end loops to the start.
    pub fn next_clip_frame(&mut self, clip: &clip::VideoClip, restart: bool, mtu: usize) -> VideoFrame {
        // A request right after the restart is already answered by the keyframe just sent;
        // sending frame 0 twice in a row would repeat its picture identifiers.
        if self.frames == 0 || (restart && self.clip_position != 1) {
            self.clip_position = 0;
        }
        self.frames += 1;
        let Some(frame) = clip.frame(self.clip_position) else {
            return VideoFrame {
                packets: Vec::new(),
                keyframe: false,
            };
        };
        self.clip_position += 1;
        let packets = match frame {
            clip::ClipFrame::Vp8(data) => {
                self.picture_id = (self.picture_id + 1) & 0x7fff;
                vp8::packetize(data, self.picture_id, mtu)
            }
            clip::ClipFrame::H264(nals) => h264::packetize(nals, mtu),
        };
        VideoFrame {
            packets,
            keyframe: frame.is_keyframe(),
        }
    }

    /// The next frame with about `size` bytes of coded data, split into payloads of at
    /// most `mtu` bytes (the load generator's bitrate-driven frames). The first frame is
    /// always a keyframe.
    pub fn next_frame_sized(&mut self, keyframe: bool, size: usize, mtu: usize) -> VideoFrame {
        let keyframe = keyframe || self.frames == 0;
        self.frames += 1;
        let seed = self.frames as u32;
        let packets = match self.codec {
            VideoCodec::H264 => {
                let nals = if keyframe {
                    self.frame_num = 0;
                    self.idr_pic_id = self.idr_pic_id.wrapping_add(1);
                    vec![
                        h264::sps(self.width, self.height),
                        h264::pps(),
                        h264::slice(true, 0, self.idr_pic_id, size, seed),
                    ]
                } else {
                    self.frame_num = self.frame_num.wrapping_add(1);
                    vec![h264::slice(false, self.frame_num, 0, size, seed)]
                };
                h264::packetize(&nals, mtu)
            }
            VideoCodec::Vp8 => {
                self.picture_id = (self.picture_id + 1) & 0x7fff;
                let f = vp8::frame(keyframe, self.width, self.height, size, seed);
                vp8::packetize(&f, self.picture_id, mtu)
            }
        };
        VideoFrame { packets, keyframe }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_in_packets() {
        for codec in [VideoCodec::H264, VideoCodec::Vp8] {
            let mut src = VideoSource::new(codec, 640, 480);
            let first = src.next_frame(false);
            assert!(first.keyframe, "the first frame is a keyframe");
            assert!((2..=3).contains(&first.packets.len()), "{codec:?}");
            let mut two = 0;
            for _ in 0..30 {
                let f = src.next_frame(false);
                assert!(!f.keyframe);
                assert!((1..=2).contains(&f.packets.len()));
                two += usize::from(f.packets.len() == 2);
                assert!(f.packets.iter().all(|p| p.len() <= MAX_RTP_PAYLOAD));
            }
            assert_eq!(two, 2, "every 15th delta spans two packets");
        }
    }

    #[test]
    fn clips_loop_and_restart_from_their_keyframe_on_request() {
        let mut ivf = b"DKIF\0\0\x20\0VP80".to_vec();
        ivf.resize(32, 0);
        for frame in [vec![0x10; 2500], vec![0x11; 40], vec![0x11; 50]] {
            ivf.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            ivf.extend_from_slice(&[0; 8]);
            ivf.extend_from_slice(&frame);
        }
        let clip = clip::VideoClip::parse(VideoCodec::Vp8, &ivf).unwrap();
        let mut src = VideoSource::new(VideoCodec::Vp8, 640, 480);
        let sizes = |f: &VideoFrame| f.packets.iter().map(Vec::len).collect::<Vec<_>>();
        let key = src.next_clip_frame(&clip, false, 1000);
        assert!(key.keyframe);
        assert_eq!(
            sizes(&key),
            vec![1000, 1000, 512],
            "4-byte descriptor on each packet"
        );
        assert!(!src.next_clip_frame(&clip, false, 1000).keyframe);
        assert!(
            src.next_clip_frame(&clip, true, 1000).keyframe,
            "a keyframe request restarts the clip"
        );
        let again = src.next_clip_frame(&clip, true, 1000);
        assert!(
            !again.keyframe,
            "a request right after the restart is already answered"
        );
        assert!(src.next_clip_frame(&clip, true, 1000).keyframe);
        let after_restart = src.next_clip_frame(&clip, false, 1000);
        assert_eq!(
            sizes(&after_restart),
            vec![44],
            "frame 1 follows the restarted keyframe"
        );
        assert_eq!(sizes(&src.next_clip_frame(&clip, false, 1000)), vec![54]);
        assert!(
            src.next_clip_frame(&clip, false, 1000).keyframe,
            "the end loops to frame 0"
        );
        let ids: Vec<u8> = (0..3)
            .map(|_| src.next_clip_frame(&clip, false, 1000).packets[0][3])
            .collect();
        assert_eq!(ids, vec![9, 10, 11], "picture IDs keep counting across loops");
    }
}
