//! Scenarios and the plan each one expands to: which participants connect, which rooms they
//! join, what each publishes and what each plays.
//!
//! Pure: [`Plan::build`] turns a [`LoadConfig`] into lists of sessions, published streams
//! and plays; the runner carries them out. Names carry a random run tag so two runs against
//! one server never collide. Rooms are used where a browser would use them (meetings and 1:1
//! calls); the livestream and the audio room publish outside rooms, so their audience is not
//! bounded by the room capacity.

use super::config::{LoadConfig, Scenario};

/// One WebSocket session (one emulated browser tab).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPlan {
    /// Login sent in `connection`.
    pub login: String,
    /// Room it joins before streaming, if any.
    pub room: Option<String>,
}

/// One published stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishPlan {
    /// Index into [`Plan::sessions`].
    pub session: usize,
    /// Stream name.
    pub name: String,
    /// Sends video (audio is always sent unless the config disables it).
    pub video: bool,
}

/// One played stream (one subscriber peer connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayPlan {
    /// Index into [`Plan::sessions`].
    pub session: usize,
    /// Index into [`Plan::publishes`].
    pub stream: usize,
}

/// What a scenario does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The run's tag (part of every name).
    pub tag: String,
    /// Every session, publishers' first.
    pub sessions: Vec<SessionPlan>,
    /// Every published stream.
    pub publishes: Vec<PublishPlan>,
    /// Every play, in ramp order.
    pub plays: Vec<PlayPlan>,
}

impl Plan {
    fn session(&mut self, login: String, room: Option<&str>) -> usize {
        self.sessions.push(SessionPlan {
            login,
            room: room.map(str::to_string),
        });
        self.sessions.len() - 1
    }

    fn publish(&mut self, session: usize, name: String, video: bool) -> usize {
        self.publishes.push(PublishPlan { session, name, video });
        self.publishes.len() - 1
    }

    /// Expands the configured scenario.
    pub fn build(cfg: &LoadConfig, tag: &str) -> Plan {
        let mut p = Plan {
            tag: tag.to_string(),
            ..Plan::default()
        };
        match cfg.scenario {
            Scenario::Livestream => {
                let s = p.session(format!("pub-{tag}"), None);
                let stream = p.publish(s, format!("live-{tag}"), true);
                for i in 0..cfg.subscribers {
                    let s = p.session(format!("sub{i}-{tag}"), None);
                    p.plays.push(PlayPlan { session: s, stream });
                }
            }
            Scenario::AudioRoom => {
                let speakers: Vec<usize> = (0..cfg.publishers.max(1))
                    .map(|i| {
                        let s = p.session(format!("spk{i}-{tag}"), None);
                        p.publish(s, format!("audio-{tag}-{i}"), false)
                    })
                    .collect();
                for i in 0..cfg.subscribers {
                    let s = p.session(format!("lst{i}-{tag}"), None);
                    for stream in &speakers {
                        p.plays.push(PlayPlan {
                            session: s,
                            stream: *stream,
                        });
                    }
                }
            }
            Scenario::Meeting => {
                let room = format!("meet-{tag}");
                p.group(&room, cfg.participants.max(2));
            }
            Scenario::Pairs => {
                for r in 0..cfg.rooms.max(1) {
                    p.group(&format!("pair{r}-{tag}"), 2);
                }
            }
        }
        p
    }

    /// `n` participants in `room`, each publishing and playing all the others.
    fn group(&mut self, room: &str, n: usize) {
        let members: Vec<(usize, usize)> = (0..n)
            .map(|i| {
                let login = format!("{room}-u{i}");
                let s = self.session(login.clone(), Some(room));
                let stream = self.publish(s, format!("{room}-{login}"), true);
                (s, stream)
            })
            .collect();
        for (s, own) in &members {
            for (_, stream) in members.iter().filter(|(_, st)| st != own) {
                self.plays.push(PlayPlan {
                    session: *s,
                    stream: *stream,
                });
            }
        }
    }

    /// Sessions that play without publishing (a livestream's audience).
    pub fn is_publisher_session(&self, session: usize) -> bool {
        self.publishes.iter().any(|p| p.session == session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let mut cfg = LoadConfig::new("ws://127.0.0.1:1/");
        cfg.subscribers = 3;
        let p = Plan::build(&cfg, "t");
        assert_eq!((p.sessions.len(), p.publishes.len(), p.plays.len()), (4, 1, 3));
        cfg.scenario = Scenario::Meeting;
        cfg.participants = 4;
        let p = Plan::build(&cfg, "t");
        assert_eq!((p.sessions.len(), p.publishes.len(), p.plays.len()), (4, 4, 12));
        assert!(p.sessions.iter().all(|s| s.room.as_deref() == Some("meet-t")));
        cfg.scenario = Scenario::AudioRoom;
        cfg.publishers = 10;
        cfg.subscribers = 5;
        let p = Plan::build(&cfg, "t");
        assert_eq!((p.sessions.len(), p.publishes.len(), p.plays.len()), (15, 10, 50));
        assert!(p.publishes.iter().all(|x| !x.video));
        cfg.scenario = Scenario::Pairs;
        cfg.rooms = 3;
        let p = Plan::build(&cfg, "t");
        assert_eq!((p.sessions.len(), p.publishes.len(), p.plays.len()), (6, 6, 6));
        assert!(p
            .plays
            .iter()
            .all(|pl| p.publishes[pl.stream].session != pl.session));
    }
}
