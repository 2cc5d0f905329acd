//! The `process_*` metrics every Prometheus client exports, read from `/proc/self`: CPU
//! seconds, resident and virtual memory, open and maximum descriptors, start time.
//!
//! Control thread, at each scrape. Invariant: a file that cannot be read (not Linux, a
//! hardened `/proc`) leaves its metric out rather than reporting zero.

use super::text::{Exposition, Kind};

/// Clock ticks per second of `/proc/self/stat`'s CPU times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

fn page_bytes() -> f64 {
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        page as f64
    } else {
        4096.0
    }
}

/// Fields of `/proc/self/stat` after the command name (which may hold spaces and parens).
fn stat_fields() -> Option<Vec<String>> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = text.get(text.rfind(')')?.checked_add(2)?..)?;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

fn boot_time_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

pub fn write(e: &mut Exposition) {
    let ticks = ticks_per_second();
    if let Some(fields) = stat_fields() {
        // After the name: state is field 3 of the whole line, so index 0 here; utime is 14 → 11.
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(utime), Some(stime)) = (field(11), field(12)) {
            e.single(
                "process_cpu_seconds_total",
                Kind::Counter,
                "Total user and system CPU time spent in seconds.",
                (utime + stime) / ticks,
            );
        }
        if let Some(vsize) = field(20) {
            e.single(
                "process_virtual_memory_bytes",
                Kind::Gauge,
                "Virtual memory size in bytes.",
                vsize,
            );
        }
        if let Some(rss) = field(21) {
            e.single(
                "process_resident_memory_bytes",
                Kind::Gauge,
                "Resident memory size in bytes.",
                rss * page_bytes(),
            );
        }
        if let (Some(start), Some(boot)) = (field(19), boot_time_seconds()) {
            e.single(
                "process_start_time_seconds",
                Kind::Gauge,
                "Start time of the process since unix epoch in seconds.",
                boot + start / ticks,
            );
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        e.single(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
            entries.count() as f64,
        );
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        e.single(
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
            limit.rlim_cur as f64,
        );
    }
}
