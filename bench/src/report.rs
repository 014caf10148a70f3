//! The end-of-run report: a human-readable table and the same figures as JSON.
//!
//! Rates divide by the measured elapsed time of the run (first ticket to last worker
//! done). MB are 10^6 bytes. Latencies are in milliseconds, from the histograms of
//! successful operations; failed operations are counted, not timed.

use crate::error::ErrorKind;
use crate::load::Plan;
use crate::stats::{ErrorSample, Operation, OperationStats, Stats};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Percentiles of one operation's latency, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LatencyReport {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    pub max: f64,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OperationReport {
    pub name: &'static str,
    pub ok: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    pub ops_per_second: f64,
    /// `None` when the operation is not timed or never succeeded.
    pub latency_ms: Option<LatencyReport>,
}

impl OperationReport {
    fn new(name: &'static str, stats: &OperationStats, elapsed_seconds: f64) -> Self {
        let histogram = &stats.latency_micros;
        let millis = |micros: u64| micros as f64 / 1000.0;
        let latency_ms = (!histogram.is_empty()).then(|| LatencyReport {
            mean: histogram.mean() / 1000.0,
            p50: millis(histogram.value_at_quantile(0.50)),
            p90: millis(histogram.value_at_quantile(0.90)),
            p99: millis(histogram.value_at_quantile(0.99)),
            p99_9: millis(histogram.value_at_quantile(0.999)),
            max: millis(histogram.max()),
        });
        OperationReport {
            name,
            ok: stats.ok,
            errors: stats.error_total(),
            errors_by_kind: stats
                .errors
                .iter()
                .map(|(kind, count)| (kind.name(), *count))
                .collect(),
            ops_per_second: per_second(stats.ok, elapsed_seconds),
            latency_ms,
        }
    }
}

/// Everything a run reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub protocol: &'static str,
    pub server: String,
    /// `"closed"` or `"open"`.
    pub mode: &'static str,
    pub rate_per_second: Option<f64>,
    pub sessions: usize,
    pub elapsed_seconds: f64,
    pub operations: Vec<OperationReport>,
    /// The protocol's units of work merged: SMTP messages, the IMAP mix, POP3 sessions.
    pub total: OperationReport,
    pub messages: u64,
    pub bytes: u64,
    pub messages_per_second: f64,
    pub megabytes_per_second: f64,
    pub error_total: u64,
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    /// The first failures with the command and the reply that failed them (the IMAP
    /// load records them; the SMTP and POP3 loads only count their failures).
    pub error_samples: Vec<ErrorSample>,
    pub counters: BTreeMap<&'static str, u64>,
}

fn per_second(count: u64, elapsed_seconds: f64) -> f64 {
    if elapsed_seconds > 0.0 {
        count as f64 / elapsed_seconds
    } else {
        0.0
    }
}

impl Report {
    /// Builds the report of a run. `units` are the operations that make up the
    /// protocol's unit of work, merged into the `total` row.
    pub fn new(
        protocol: &'static str,
        server: String,
        plan: &Plan,
        elapsed: Duration,
        stats: &Stats,
        units: &[Operation],
    ) -> Self {
        let elapsed_seconds = elapsed.as_secs_f64();
        let operations = stats
            .operations
            .iter()
            .map(|(operation, op_stats)| {
                OperationReport::new(operation.name(), op_stats, elapsed_seconds)
            })
            .collect();
        let mut errors_by_kind = BTreeMap::new();
        for kind in ErrorKind::ALL {
            let count: u64 = stats
                .operations
                .values()
                .map(|op_stats| op_stats.errors_of(kind))
                .sum();
            if count > 0 {
                errors_by_kind.insert(kind.name(), count);
            }
        }
        Report {
            protocol,
            server,
            mode: if plan.rate_per_second.is_some() {
                "open"
            } else {
                "closed"
            },
            rate_per_second: plan.rate_per_second,
            sessions: plan.sessions,
            elapsed_seconds,
            operations,
            total: OperationReport::new("total", &stats.combined(units), elapsed_seconds),
            messages: stats.messages,
            bytes: stats.bytes,
            messages_per_second: per_second(stats.messages, elapsed_seconds),
            megabytes_per_second: per_second(stats.bytes, elapsed_seconds) / 1e6,
            error_total: errors_by_kind.values().sum(),
            errors_by_kind,
            error_samples: stats.error_samples.clone(),
            counters: stats
                .counters
                .iter()
                .map(|(name, count)| (*name, *count))
                .collect(),
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of numbers and strings cannot fail.
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    /// The report as a table for people.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let mode = match self.rate_per_second {
            Some(rate) => format!(
                "open loop at {rate} arrivals/s, up to {} sessions",
                self.sessions
            ),
            None => format!("closed loop, {} sessions", self.sessions),
        };
        let _ = writeln!(
            out,
            "{} {}: {mode}, {:.2} s",
            self.protocol, self.server, self.elapsed_seconds
        );
        let _ = writeln!(
            out,
            "{:<14} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "operation",
            "ok",
            "errors",
            "ops/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        for row in self.operations.iter().chain(std::iter::once(&self.total)) {
            let latency = match &row.latency_ms {
                Some(latency) => format!(
                    "{:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    latency.p50, latency.p90, latency.p99, latency.p99_9, latency.max
                ),
                None => format!("{:>9} {:>9} {:>9} {:>9} {:>9}", "-", "-", "-", "-", "-"),
            };
            let _ = writeln!(
                out,
                "{:<14} {:>9} {:>7} {:>10.1} {latency}",
                row.name, row.ok, row.errors, row.ops_per_second
            );
        }
        let _ = writeln!(
            out,
            "messages: {} ({:.1}/s), {:.2} MB ({:.2} MB/s)",
            self.messages,
            self.messages_per_second,
            self.bytes as f64 / 1e6,
            self.megabytes_per_second
        );
        if self.error_total == 0 {
            let _ = writeln!(out, "errors: none");
        } else {
            let _ = writeln!(out, "errors: {}", self.error_total);
            for row in &self.operations {
                if row.errors > 0 {
                    let kinds: Vec<String> = row
                        .errors_by_kind
                        .iter()
                        .map(|(kind, count)| format!("{kind}={count}"))
                        .collect();
                    let _ = writeln!(out, "  {:<14} {}", row.name, kinds.join(" "));
                }
            }
            if !self.error_samples.is_empty() {
                let _ = writeln!(out, "first errors (command -> reply):");
            }
            for sample in &self.error_samples {
                let reply = if sample.reply.is_empty() {
                    "(no reply)"
                } else {
                    &sample.reply
                };
                let _ = writeln!(
                    out,
                    "  {:<14} {:<9} {} -> {reply}",
                    sample.operation, sample.kind, sample.command
                );
            }
        }
        if !self.counters.is_empty() {
            let counters: Vec<String> = self
                .counters
                .iter()
                .map(|(name, count)| format!("{name}={count}"))
                .collect();
            let _ = writeln!(out, "counters: {}", counters.join(" "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Progress, Recorder};
    use std::sync::Arc;

    #[test]
    fn report_counts_and_rates() {
        let mut recorder = Recorder::new(Arc::new(Progress::default()));
        for _ in 0..90 {
            recorder.ok(Operation::Message, Duration::from_millis(2));
            recorder.transferred(1, 1000);
        }
        for _ in 0..10 {
            recorder.error(Operation::Message, ErrorKind::Transient);
        }
        recorder.error(Operation::Connect, ErrorKind::ConnectRefused);
        let stats = recorder.finish();
        let report = Report::new(
            "smtp",
            "127.0.0.1:25".into(),
            &Plan::closed(1, 100),
            Duration::from_secs(10),
            &stats,
            &[Operation::Message],
        );
        assert_eq!(report.total.ok, 90);
        assert_eq!(report.total.errors, 10);
        assert_eq!(report.errors_by_kind.get("4xx"), Some(&10));
        assert_eq!(report.errors_by_kind.get("connect-refused"), Some(&1));
        assert_eq!(report.error_total, 11);
        assert!((report.messages_per_second - 9.0).abs() < 1e-9);
        assert!((report.megabytes_per_second - 0.009).abs() < 1e-9);
        let latency = report.total.latency_ms.expect("timed");
        assert!((latency.p50 - 2.0).abs() < 0.01);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
        assert_eq!(json["total"]["errors_by_kind"]["4xx"], 10);
        assert!(report.to_table().contains("4xx=10"));
        assert!(report.error_samples.is_empty());
    }

    #[test]
    fn error_samples_show_the_command_and_the_reply() {
        let mut recorder = Recorder::new(Arc::new(Progress::default()));
        recorder.error_with_reply(
            Operation::FetchHeaders,
            ErrorKind::ImapNo,
            b"FETCH 1:10 (UID)",
            b"b3 NO [EXPUNGEISSUED] Some messages were expunged",
        );
        recorder.error_with_reply(Operation::Connect, ErrorKind::Closed, b"", b"\xff");
        let stats = recorder.finish();
        let report = Report::new(
            "imap",
            "127.0.0.1:143".into(),
            &Plan::closed(1, 100),
            Duration::from_secs(1),
            &stats,
            &[Operation::FetchHeaders],
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
        let first = &json["error_samples"][0];
        assert_eq!(first["operation"], "fetch-headers");
        assert_eq!(first["kind"], "imap-no");
        assert_eq!(first["command"], "FETCH 1:10 (UID)");
        assert_eq!(
            first["reply"],
            "b3 NO [EXPUNGEISSUED] Some messages were expunged"
        );
        assert_eq!(json["error_samples"][1]["reply"], "\\xff");
        let table = report.to_table();
        assert!(
            table.contains(
                "fetch-headers  imap-no   FETCH 1:10 (UID) -> b3 NO [EXPUNGEISSUED] Some messages were expunged"
            ),
            "{table}"
        );
        assert!(
            table.contains("connect        closed     -> \\xff"),
            "{table}"
        );
    }
}
