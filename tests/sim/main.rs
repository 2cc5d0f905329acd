//! Deterministic simulation of the whole server: the real directory, worker state and worker
//! turn (on `SimIo`), and the load generator's sans-IO peers as participants of a room, over a
//! seeded network that loses, duplicates, delays and reorders datagrams, on a virtual clock.
//! After every step the forwarding invariant (`check.rs`) and the lifetimes of peers, streams
//! and sessions are checked; a failure names its seed, and
//! `WEBCALL_SIM_SEED=N cargo test --test sim` replays exactly that run
//! (`WEBCALL_SIM_TRACE=1` prints its trace, `WEBCALL_SIM_WATCH=10.0.1.1:5001` every datagram
//! to or from one address, `WEBCALL_SIM_SEEDS=N` sweeps N seeds).
//!
//! The stories: four participants join a room at staggered times and play each other; one
//! leaves the room and comes back with a new stream; one drops its connection; the others
//! carry on.

mod check;
mod client;
mod net;
mod seeded_dtls;
mod webhook_check;
mod world;

use std::time::{Duration, Instant};

use net::{LinkConditions, Rng};
use world::{Action, Plan, Report, Scenario, World};

/// Seeds swept by `many_seeds_with_loss_and_jitter` (`WEBCALL_SIM_SEEDS` overrides).
const SWEEP_SEEDS: u64 = 200;
/// Virtual length of each swept run.
const SWEEP_DURATION: Duration = Duration::from_secs(12);

fn lossy() -> LinkConditions {
    LinkConditions {
        loss: 0.05,
        duplicate: 0.01,
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(50),
    }
}

/// Four participants: staggered joins, one leaves and rejoins, one disconnects.
fn room_of_four(duration: Duration, seed: u64) -> Scenario {
    let mut rng = Rng::new(seed ^ 0x706c_616e);
    let at = |share: f64| Duration::from_secs_f64(duration.as_secs_f64() * share);
    let mut plans: Vec<Plan> = (0..4)
        .map(|participant| Plan {
            at: Duration::from_millis(400 * participant as u64) + rng.up_to(Duration::from_millis(300)),
            participant,
            action: Action::Connect,
        })
        .collect();
    plans.push(Plan {
        at: at(0.55),
        participant: 2,
        action: Action::Leave,
    });
    plans.push(Plan {
        at: at(0.65),
        participant: 2,
        action: Action::Rejoin,
    });
    plans.push(Plan {
        at: at(0.8),
        participant: 3,
        action: Action::Disconnect,
    });
    Scenario {
        participants: 4,
        duration,
        plans,
        conditions: lossy(),
        workers: 2,
        fault: false,
    }
}

/// Run one seed; the error says how to replay it.
fn run_seed(scenario: &Scenario, seed: u64) -> Result<Report, String> {
    World::new(scenario, seed)
        .run(scenario)
        .map_err(|e| format!("seed {seed}: {e}\n  replay: WEBCALL_SIM_SEED={seed} cargo test --test sim"))
}

fn seeds_from_env() -> Option<Vec<u64>> {
    let seed = std::env::var("WEBCALL_SIM_SEED").ok()?;
    Some(vec![seed.trim().parse().expect("WEBCALL_SIM_SEED is a number")])
}

#[test]
fn a_room_of_four_for_a_virtual_minute() {
    let seed = seeds_from_env().and_then(|s| s.first().copied()).unwrap_or(1);
    let scenario = room_of_four(Duration::from_secs(60), seed);
    let started = Instant::now();
    let report = run_seed(&scenario, seed).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "60 virtual seconds in {:?}: {} steps, {} packets forwarded and checked, {} resent, {} datagrams lost",
        started.elapsed(),
        report.steps,
        report.totals.forwarded,
        report.totals.resent,
        report.lost
    );
    assert!(report.totals.forwarded > 10_000, "media flowed: {report:?}");
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let seed = 42;
    let scenario = room_of_four(SWEEP_DURATION, seed);
    let first = run_seed(&scenario, seed).unwrap_or_else(|e| panic!("{e}"));
    let second = run_seed(&scenario, seed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        first.trace_hash, second.trace_hash,
        "seed {seed}: {first:?} vs {second:?}"
    );
    let other = run_seed(&room_of_four(SWEEP_DURATION, seed + 1), seed + 1).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(first.trace_hash, other.trace_hash, "another seed, another run");
}

#[test]
fn many_seeds_with_loss_and_jitter() {
    let count = std::env::var("WEBCALL_SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SWEEP_SEEDS);
    let seeds = seeds_from_env().unwrap_or_else(|| (1000..1000 + count).collect());
    let started = Instant::now();
    // Seeds are independent runs: spread them over the cores, each run on one thread (every
    // generator a run uses is its thread's, seeded at its start).
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut forwarded = 0;
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&seed) = seeds.get(index) else {
                            return Ok(forwarded);
                        };
                        forwarded += run_seed(&room_of_four(SWEEP_DURATION, seed), seed)?
                            .totals
                            .forwarded;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a run panicked".to_owned())))
            .collect()
    });
    let mut forwarded = 0;
    for result in results {
        forwarded += result.unwrap_or_else(|e| panic!("{e}"));
    }
    println!(
        "{} seeds of {SWEEP_DURATION:?} on {threads} threads in {:?}, {forwarded} packets checked",
        seeds.len(),
        started.elapsed()
    );
}

/// Everyone's media path is cut at once: the workers end every peer in the same silence
/// sweep, far more failures than control's (tiny, in the simulation) queue holds, and the
/// directory must still hear of each and free every stream.
#[test]
fn a_whole_room_gone_silent_is_freed_through_a_full_notification_queue() {
    let seed = 11;
    let mut scenario = room_of_four(Duration::from_secs(45), seed);
    scenario.plans.retain(|p| p.action == Action::Connect);
    for participant in 0..4 {
        scenario.plans.push(Plan {
            at: Duration::from_secs(8),
            participant,
            action: Action::CutMedia,
        });
    }
    let report = run_seed(&scenario, seed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.peers_left, 0, "every silent peer was freed: {report:?}");
    assert!(
        report.notifications_deferred > 0,
        "the failures overflowed control's queue and waited in the backlog: {report:?}"
    );
}

#[test]
fn a_fan_out_that_skips_a_player_is_caught() {
    let seed = 7;
    let mut scenario = room_of_four(SWEEP_DURATION, seed);
    scenario.fault = true;
    let error = run_seed(&scenario, seed).expect_err("the simulation must notice the skipped player");
    println!("caught: {error}");
    assert!(
        error.starts_with("seed 7:"),
        "the failure names its seed: {error}"
    );
    assert!(
        error.contains("WEBCALL_SIM_SEED=7"),
        "and how to replay it: {error}"
    );
}
