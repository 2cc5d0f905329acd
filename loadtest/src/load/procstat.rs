//! CPU time and memory of a process (the server under test, or this one) from `/proc`.
//!
//! Owns the readers of `/proc/PID/stat` (user + system time of every thread of the
//! process, in clock ticks) and `/proc/PID/smaps_rollup` (proportional set size), and of the
//! calling thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`, to tell whether the load
//! engine itself was saturated). Linux only; every reader returns `None` when the file is
//! missing or unreadable (process gone, no permission) rather than failing the run.

use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcSample {
    /// User plus system CPU time of all threads.
    pub cpu: Duration,
    /// Proportional set size, in bytes (0 when unknown).
    pub pss_bytes: u64,
    /// Resident set size, in bytes (0 when unknown).
    pub rss_bytes: u64,
    /// CPU time of the threads named `webcall-worker-*` (webcall's media workers), apart
    /// from control and recorder threads.
    pub worker_cpu: Duration,
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// User + system CPU time from the text of `/proc/PID/stat`.
pub fn parse_stat_cpu(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the
    // last ')'. utime and stime are fields 14 and 15, i.e. 12th and 13th after it.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    let tps = ticks_per_second.max(1);
    Some(Duration::from_secs(ticks / tps) + Duration::from_nanos((ticks % tps) * 1_000_000_000 / tps))
}

/// A `Key: N kB` line's value in bytes.
fn kb_line(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.get(key.len()..)?.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// Reads CPU time and memory of `pid`.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let cpu = parse_stat_cpu(&stat, clock_ticks_per_second())?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Some(ProcSample {
        cpu,
        pss_bytes: kb_line(&rollup, "Pss:").unwrap_or(0),
        rss_bytes: kb_line(&rollup, "Rss:").unwrap_or(0),
        worker_cpu: threads_cpu(pid, "webcall-worker"),
    })
}

/// CPU time of `pid`'s threads whose name starts with `prefix`.
fn threads_cpu(pid: u32, prefix: &str) -> Duration {
    let ticks = clock_ticks_per_second();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim().starts_with(prefix))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| parse_stat_cpu(&stat, ticks))
        .sum()
}

/// CPU time the calling thread has used.
pub fn thread_cpu() -> Duration {
    // SAFETY: timespec is plain data; clock_gettime writes it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// The cores this process may run on (its affinity mask), e.g. `[1]` under `taskset -c 1`.
pub fn allowed_cpus() -> Vec<usize> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Vec::new();
    };
    let Some(list) = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
    else {
        return Vec::new();
    };
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let mut ends = part.split('-').filter_map(|x| x.trim().parse::<usize>().ok());
        match (ends.next(), ends.next()) {
            (Some(a), Some(b)) => cpus.extend(a..=b),
            (Some(a), None) => cpus.push(a),
            _ => {}
        }
    }
    cpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat = "1234 (web call) (x)) S 1 1234 1234 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat_cpu(stat, 100), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat_cpu("garbage", 100), None);
    }

    #[test]
    fn reads_this_process() {
        let me = sample(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0);
        assert!(!allowed_cpus().is_empty());
        let t0 = thread_cpu();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1 && thread_cpu() > t0);
    }
}
