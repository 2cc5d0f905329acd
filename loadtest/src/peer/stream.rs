//! What a publisher and a player share: one WCS stream = one peer connection.
//!
//! Owns [`StreamPeer`]: the `mediaSessionId`, the signalling of one stream over a
//! [`WcsSession`] (offer out, `setRemoteSDP` in, status events, stop) and the peer thread.
//! Invariants:
//! - the media session is watched on the session from before the request is sent until
//!   the handle drops, so no `setRemoteSDP` or status for it can be missed or leak into
//!   the session's general event queue;
//! - a terminal status (`FAILED`, `STOPPED`, `UNPUBLISHED`) met while waiting for another
//!   one ends the wait with `Error::StreamFailed` carrying the server's `info`;
//! - dropping the handle closes the peer connection but sends no WCS stop message (that
//!   is what a vanished browser looks like); call `stop` for an orderly end.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::core::{PeerCore, PeerState};
use super::driver::{Command, PeerDriver, Snapshot};
use super::recorder::PeerStats;
use crate::error::{Error, Result};
use crate::wcs::messages::{self, StreamRequest};
use crate::wcs::session::stream_failed;
use crate::wcs::{StreamStatus, StreamStatusEvent, WcsSession};

/// Signalling parameters of a stream request.
#[derive(Debug, Clone)]
pub(crate) struct StreamParams<'a> {
    pub name: &'a str,
    pub room: Option<&'a str>,
    pub published: bool,
    pub has_audio: bool,
    pub has_video: bool,
    pub record: bool,
    pub bind_ip: IpAddr,
    pub timeout: Duration,
    pub log_max: usize,
    pub offer_candidates: bool,
}

/// Removes `a=candidate` and `a=end-of-candidates` lines, as an offer taken straight from
/// `createOffer()` (what the SDK sends) has none.
pub(crate) fn strip_candidates(sdp: &str) -> String {
    sdp.split_inclusive('\n')
        .filter(|l| !l.starts_with("a=candidate:") && !l.starts_with("a=end-of-candidates"))
        .collect()
}

/// One stream's signalling and peer.
#[derive(Debug)]
pub(crate) struct StreamPeer {
    pub session: WcsSession,
    pub media_session_id: String,
    pub name: String,
    pub published: bool,
    pub timeout: Duration,
    pub driver: PeerDriver,
}

impl StreamPeer {
    /// Binds a socket, makes the offer, sends the request, applies the answer and starts
    /// the peer thread.
    pub async fn start(
        session: &WcsSession,
        p: StreamParams<'_>,
        make: impl FnOnce(SocketAddr, Instant) -> Result<(PeerCore, String)>,
    ) -> Result<Self> {
        let socket = UdpSocket::bind((p.bind_ip, 0))?;
        let (mut core, mut offer) = make(socket.local_addr()?, Instant::now())?;
        if !p.offer_candidates {
            offer = strip_candidates(&offer);
        }
        let msid = uuid::Uuid::new_v4().to_string();
        let req = StreamRequest {
            media_session_id: &msid,
            name: p.name,
            sdp: &offer,
            room: p.room,
            has_video: p.has_video,
            has_audio: p.has_audio,
            record: p.record,
        };
        let text = match p.published {
            true => messages::publish_stream(&req),
            false => messages::play_stream(&req),
        };
        session.watch_stream(&msid);
        let answered = async {
            session.send_text(&text)?;
            let answer = session.wait_remote_sdp(&msid, p.timeout).await?;
            core.accept_answer(&answer)
        };
        if let Err(e) = answered.await {
            session.unwatch_stream(&msid);
            return Err(e);
        }
        let driver = PeerDriver::spawn(socket, core, p.log_max)?;
        Ok(StreamPeer {
            session: session.clone(),
            media_session_id: msid,
            name: p.name.to_string(),
            published: p.published,
            timeout: p.timeout,
            driver,
        })
    }

    pub async fn next_status(&self, timeout: Duration) -> Result<StreamStatusEvent> {
        self.session
            .next_stream_status(&self.media_session_id, timeout)
            .await
    }

    /// Waits for `want`, skipping other non-terminal statuses.
    pub async fn wait_status(&self, want: StreamStatus, timeout: Duration) -> Result<StreamStatusEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let s = match self.next_status(left).await {
                Err(e) if e.is_timeout() => {
                    let what = format!("status {} of {}", want.as_wire(), self.name);
                    return Err(Error::timeout(what, timeout));
                }
                other => other?,
            };
            if s.status == want {
                return Ok(s);
            }
            if s.status.is_terminal() {
                return Err(stream_failed(&s));
            }
        }
    }

    /// Sends `unPublishStream` or `stopStream`.
    pub fn send_stop(&self) -> Result<()> {
        let text = match self.published {
            true => messages::unpublish_stream(&self.media_session_id, &self.name),
            false => messages::stop_stream(&self.media_session_id, &self.name),
        };
        self.session.send_text(&text)
    }

    /// Sends the stop, waits for the stream's terminal status, closes the peer.
    pub async fn stop(&self) -> Result<StreamStatusEvent> {
        self.send_stop()?;
        let deadline = Instant::now() + self.timeout;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_status(left).await {
                Ok(s) if s.status.is_terminal() => break Ok(s),
                Ok(_) => continue,
                Err(e) => break Err(e),
            }
        };
        let _ = self.driver.send(Command::Close);
        result
    }

    pub fn snapshot<T>(&self, f: impl FnOnce(&mut Snapshot) -> T) -> T {
        f(&mut self.driver.shared.lock())
    }

    pub fn stats(&self) -> PeerStats {
        self.snapshot(|s| s.stats.clone())
    }

    pub fn state(&self) -> PeerState {
        self.snapshot(|s| s.state.clone())
    }

    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let r = self
            .driver
            .wait_until("peer connected", timeout, |s| match &s.state {
                PeerState::Connected => Some(Ok(())),
                PeerState::Failed(why) => Some(Err(Error::Rtc(why.clone()))),
                _ => None,
            })
            .await?;
        r
    }

    pub async fn wait_stats(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&PeerStats) -> bool,
    ) -> Result<PeerStats> {
        self.driver
            .wait_until("peer counters", timeout, |s| {
                pred(&s.stats).then(|| s.stats.clone())
            })
            .await
    }
}

impl Drop for StreamPeer {
    fn drop(&mut self) {
        self.session.unwatch_stream(&self.media_session_id);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_candidate_lines_only() {
        let sdp = "v=0\r\na=candidate:1 1 udp 1 127.0.0.1 5 typ host\r\na=mid:0\r\na=end-of-candidates\r\n";
        assert_eq!(super::strip_candidates(sdp), "v=0\r\na=mid:0\r\n");
    }
}
