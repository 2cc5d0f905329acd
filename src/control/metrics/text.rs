//! Writing the Prometheus text exposition format (version 0.0.4): a `# HELP` and `# TYPE` line
//! per family, then its samples, label values escaped. Used by `/metrics` only.
//!
//! Invariant: a family is declared once, before its samples; label values are escaped so no
//! name a client chose could break a line (and none is used: labels are bounded sets).

use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A histogram's samples from per-bucket (not cumulative) counts; `counts` has one more
    /// entry than `bounds` (the `+Inf` bucket).
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, count) in counts.iter().enumerate() {
            cumulative = cumulative.saturating_add(*count);
            let le = bounds.get(i).map_or_else(|| "+Inf".to_owned(), |b| number(*b));
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cumulative as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else if value.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_histograms_render_in_the_text_format() {
        let mut e = Exposition::default();
        e.single("webcall_sessions", Kind::Gauge, "Sessions.", 3.0);
        e.family("webcall_turn_seconds", Kind::Histogram, "Turns.");
        e.histogram(
            "webcall_turn_seconds",
            &[("worker", "0")],
            &[0.001, 0.01],
            &[2, 1, 1],
            0.5,
        );
        e.family("webcall_x_total", Kind::Counter, "X.");
        e.sample("webcall_x_total", &[("reason", "a\"b\\c\nd")], 1.5);
        let text = e.finish();
        assert!(text.contains("# TYPE webcall_sessions gauge\nwebcall_sessions 3\n"));
        assert!(text.contains("webcall_turn_seconds_bucket{worker=\"0\",le=\"0.001\"} 2\n"));
        assert!(text.contains("webcall_turn_seconds_bucket{worker=\"0\",le=\"+Inf\"} 4\n"));
        assert!(text.contains("webcall_turn_seconds_count{worker=\"0\"} 4\n"));
        assert!(text.contains("reason=\"a\\\"b\\\\c\\nd\"} 1.5"));
    }
}
