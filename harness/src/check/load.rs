//! The error budget of traffic under disruption: a load window's answers (when each request
//! was sent, whether it passed, how long it took) and its disruptions (when each restart or
//! upgrade ran) judged against a budget: the largest share of failed requests, the longest
//! outage, optionally a latency percentile. No I/O: the runner feeds the samples, replay feeds
//! a transcript's.
//!
//! Definitions, so that a verdict can be checked by hand:
//! - an **outage** is a maximal run of consecutive failed requests, in send order; it lasts from
//!   the first of them being sent to the next passing request being sent. One that no passing
//!   request ends lasts to the end of the window; when that is [`NEVER_RECOVERED_AFTER`] or
//!   more, the traffic **never recovered**, which fails whatever the budget says (a last
//!   request or two failing just before the window closed is an outage like any other);
//! - a disruption's **recovery time** is from its start to the end of the last outage still
//!   going on at its start or beginning after it, before the next disruption's (0 when none);
//! - a latency percentile is the nearest-rank percentile of the passing requests' latencies.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long an outage still open when the window ends must have lasted for the traffic to
/// count as never recovered.
pub const NEVER_RECOVERED_AFTER: Duration = Duration::from_secs(1);

/// One request of a load window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When it was sent, from the window's start.
    pub at: Duration,
    pub passed: bool,
    /// How long its answer took (none when it got none).
    pub latency: Option<Duration>,
}

/// A step that ran while the load did (a restart, an upgrade), from the window's start; in
/// transcripts and `run.json` as milliseconds (`start_ms`, `end_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disruption {
    pub name: String,
    #[serde(rename = "start_ms", with = "millis")]
    pub start: Duration,
    #[serde(rename = "end_ms", with = "millis")]
    pub end: Duration,
}

/// A duration as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }

    pub mod option {
        use std::time::Duration;

        use serde::Serializer;

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&(d.as_millis() as u64)),
                None => s.serialize_none(),
            }
        }
    }
}

/// What a load window may cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// The largest share of failed requests, in [0, 1).
    pub errors: f64,
    /// The longest outage allowed.
    pub outage: Duration,
    /// Optionally: the nearest-rank `percentile` of passing requests' latencies must stay under `max`.
    pub latency: Option<LatencyBudget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyBudget {
    pub percentile: u8,
    pub max: Duration,
}

/// How long the traffic took to recover after one disruption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovery {
    pub disruption: String,
    /// `None`: it never recovered within the window.
    #[serde(rename = "after_ms", with = "millis::option")]
    pub after: Option<Duration>,
}

/// The measured window and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadVerdict {
    pub sent: usize,
    pub failed: usize,
    pub error_ratio: f64,
    #[serde(rename = "longest_outage_ms", with = "millis")]
    pub longest_outage: Duration,
    pub recovered: bool,
    pub recoveries: Vec<Recovery>,
    /// The budget's percentile, measured (when the budget has one and a request passed).
    #[serde(rename = "latency_ms", with = "millis::option")]
    pub latency: Option<Duration>,
    /// Each way the window broke its budget; empty when within it.
    pub problems: Vec<String>,
}

impl LoadVerdict {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for LoadVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} request(s) failed ({:.2}%), longest outage {}",
            self.failed,
            self.sent,
            self.error_ratio * 100.0,
            millis(self.longest_outage)
        )?;
        for r in &self.recoveries {
            match r.after {
                Some(after) => write!(f, ", recovered {} after {} began", millis(after), r.disruption)?,
                None => write!(f, ", never recovered after {} began", r.disruption)?,
            }
        }
        if let Some(l) = self.latency {
            write!(f, ", latency percentile {}", millis(l))?;
        }
        if !self.problems.is_empty() {
            write!(f, ": {}", self.problems.join("; "))?;
        }
        Ok(())
    }
}

/// `2s`, `1500ms`, `12.3s`: exact below ten seconds, so a measure and its budget never print alike
/// when they differ.
fn millis(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms < 10_000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The outages of `samples` (sorted by send time): (start, end, ended by a passing request).
fn outages(samples: &[Sample], window_end: Duration) -> Vec<(Duration, Duration, bool)> {
    let mut out = Vec::new();
    let mut start = None;
    for s in samples {
        match (s.passed, start) {
            (false, None) => start = Some(s.at),
            (true, Some(begun)) => {
                out.push((begun, s.at, true));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(begun) = start {
        out.push((begun, window_end.max(begun), false));
    }
    out
}

/// Judge a window of `samples` that ran until `window_end`, with `disruptions`, against `budget`.
pub fn evaluate(samples: &[Sample], disruptions: &[Disruption], budget: &Budget, window_end: Duration) -> LoadVerdict {
    let mut samples = samples.to_vec();
    samples.sort_by_key(|s| s.at);
    let sent = samples.len();
    let failed = samples.iter().filter(|s| !s.passed).count();
    let error_ratio = if sent == 0 { 0.0 } else { failed as f64 / sent as f64 };
    let outages = outages(&samples, window_end);
    let longest_outage = outages.iter().map(|(s, e, _)| *e - *s).max().unwrap_or_default();
    let recovered = outages.last().is_none_or(|(s, e, ended)| *ended || *e - *s < NEVER_RECOVERED_AFTER);
    let mut starts: Vec<&Disruption> = disruptions.iter().collect();
    starts.sort_by_key(|d| d.start);
    let recoveries = starts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let next = starts.get(i + 1).map_or(Duration::MAX, |n| n.start);
            // An outage still going on when the disruption starts (a request sent just before it,
            // answered after) is the disruption's too.
            let last = outages.iter().filter(|(s, e, _)| *e > d.start && *s < next).max_by_key(|(s, _, _)| *s);
            let after = match last {
                None => Some(Duration::ZERO),
                Some((_, end, true)) => Some(*end - d.start),
                Some((s, e, false)) if *e - *s >= NEVER_RECOVERED_AFTER => None,
                Some((_, end, false)) => Some(*end - d.start),
            };
            Recovery { disruption: d.name.clone(), after }
        })
        .collect();
    let latency = budget.latency.and_then(|l| {
        let mut passing: Vec<Duration> = samples.iter().filter(|s| s.passed).filter_map(|s| s.latency).collect();
        passing.sort();
        let rank = (f64::from(l.percentile) / 100.0 * passing.len() as f64).ceil() as usize;
        passing.get(rank.saturating_sub(1)).copied()
    });

    let mut problems = Vec::new();
    if sent == 0 {
        problems.push("no request was sent: the window measured nothing".to_owned());
    }
    if !recovered {
        problems.push("the traffic never recovered: the window ended in an outage".to_owned());
    }
    if error_ratio > budget.errors {
        problems.push(format!(
            "{:.2}% of requests failed, over the budget's {:.2}%",
            error_ratio * 100.0,
            budget.errors * 100.0
        ));
    }
    if longest_outage > budget.outage {
        problems.push(format!(
            "an outage of {} is longer than the budget's {}",
            millis(longest_outage),
            millis(budget.outage)
        ));
    }
    if let Some(l) = budget.latency {
        match latency {
            Some(measured) if measured > l.max => problems.push(format!(
                "latency p{} {} is over the budget's {}",
                l.percentile,
                millis(measured),
                millis(l.max)
            )),
            Some(_) => {}
            None => problems.push(format!("no passing request to measure latency p{} on", l.percentile)),
        }
    }
    LoadVerdict { sent, failed, error_ratio, longest_outage, recovered, recoveries, latency, problems }
}

/// A load window as the report keeps it: the step that ran it (1-based), the series per
/// second, the disruptions and the verdict (`run.json`; the summary draws it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub step: usize,
    pub series: Vec<Bucket>,
    pub disruptions: Vec<Disruption>,
    pub verdict: LoadVerdict,
}

/// One second of a load window, for the report's chart and `run.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// The second, from the window's start.
    pub second: u64,
    pub sent: u32,
    pub failed: u32,
    /// The slowest passing request sent in this second, in milliseconds.
    pub max_latency_ms: Option<u64>,
}

/// The window per second, every second from 0 to the last sample's (empty ones included, so a
/// chart's x axis is time).
pub fn series(samples: &[Sample]) -> Vec<Bucket> {
    let last = samples.iter().map(|s| s.at.as_secs()).max();
    let Some(last) = last else { return Vec::new() };
    let mut buckets: Vec<Bucket> =
        (0..=last).map(|second| Bucket { second, sent: 0, failed: 0, max_latency_ms: None }).collect();
    for s in samples {
        let Some(b) = buckets.get_mut(s.at.as_secs() as usize) else { continue };
        b.sent += 1;
        if s.passed {
            let ms = s.latency.map(|l| l.as_millis() as u64);
            b.max_latency_ms = b.max_latency_ms.max(ms);
        } else {
            b.failed += 1;
        }
    }
    buckets
}

/// The window as a Mermaid `xychart-beta` GitHub renders in a job summary: requests that passed
/// and failed per second as lines, each disruption as bars spanning its seconds.
pub fn mermaid(title: &str, series: &[Bucket], disruptions: &[Disruption]) -> String {
    // An empty x axis is a Mermaid syntax error: no chart for a window without requests.
    if series.is_empty() {
        return String::new();
    }
    let seconds: Vec<String> = series.iter().map(|b| b.second.to_string()).collect();
    let passed: Vec<String> = series.iter().map(|b| (b.sent - b.failed).to_string()).collect();
    let failed: Vec<String> = series.iter().map(|b| b.failed.to_string()).collect();
    let top = series.iter().map(|b| b.sent).max().unwrap_or(1).max(1);
    let during: Vec<String> = series
        .iter()
        .map(|b| {
            let t = Duration::from_secs(b.second);
            let inside = disruptions.iter().any(|d| d.start.as_secs() <= b.second && t <= d.end);
            if inside { top.to_string() } else { "0".to_owned() }
        })
        .collect();
    // Names come from scenarios: only characters that can neither end Mermaid's quoted title
    // nor the Markdown code block.
    let plain = |text: &str| -> String {
        text.chars().map(|c| if c.is_ascii_alphanumeric() || " ./,:'_-()".contains(c) { c } else { '_' }).collect()
    };
    let title = plain(&title.replace('"', "'"));
    let names: Vec<String> = disruptions.iter().map(|d| plain(&d.name.replace('"', "'"))).collect();
    format!(
        "```mermaid\nxychart-beta\n    title \"{title} (lines: passed, failed; bars: {})\"\n    x-axis \"second\" [{}]\n    y-axis \"requests\" 0 --> {top}\n    bar [{}]\n    line [{}]\n    line [{}]\n```\n",
        if names.is_empty() { "no disruption".to_owned() } else { names.join(", ") },
        seconds.join(", "),
        during.join(", "),
        passed.join(", "),
        failed.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// 20 requests a second for `seconds`, failing in `[from, to)` milliseconds.
    fn window(seconds: u64, failing: &[(u64, u64)]) -> Vec<Sample> {
        (0..seconds * 20)
            .map(|i| {
                let at = i * 50;
                let passed = !failing.iter().any(|(from, to)| (*from..*to).contains(&at));
                Sample { at: ms(at), passed, latency: passed.then(|| ms(20 + i % 7)) }
            })
            .collect()
    }

    fn budget(errors: f64, outage_ms: u64) -> Budget {
        Budget { errors, outage: ms(outage_ms), latency: None }
    }

    fn restart(start: u64, end: u64) -> Disruption {
        Disruption { name: "restart kong".into(), start: ms(start), end: ms(end) }
    }

    #[test]
    fn a_window_within_budget_passes_with_its_measures() {
        // 60 s at 20/s, 1 s of failures during a restart from 10 s to 30 s.
        let samples = window(60, &[(12_000, 13_000)]);
        let v = evaluate(&samples, &[restart(10_000, 30_000)], &budget(0.02, 2_000), ms(60_000));
        assert!(v.passed(), "{v}");
        assert_eq!((v.sent, v.failed), (1200, 20));
        assert_eq!(v.longest_outage, ms(1_000), "from the first failure sent to the next pass sent");
        assert_eq!(v.recoveries, [Recovery { disruption: "restart kong".into(), after: Some(ms(3_000)) }]);
        assert_eq!(
            v.to_string(),
            "20 of 1200 request(s) failed (1.67%), longest outage 1s, recovered 3s after restart kong began"
        );
    }

    #[test]
    fn a_blown_budget_fails_naming_each_breach() {
        let samples = window(60, &[(12_000, 17_000)]);
        let v = evaluate(&samples, &[restart(10_000, 30_000)], &budget(0.01, 2_000), ms(60_000));
        assert!(!v.passed());
        assert_eq!(v.problems.len(), 2, "{v}");
        assert!(v.problems[0].contains("8.33% of requests failed, over the budget's 1.00%"), "{v}");
        assert!(v.problems[1].contains("an outage of 5s is longer than the budget's 2s"), "{v}");
        // The outage alone breaks a generous error share.
        let v = evaluate(&samples, &[restart(10_000, 30_000)], &budget(0.5, 2_000), ms(60_000));
        assert_eq!(v.problems.len(), 1, "{v}");
    }

    #[test]
    fn traffic_that_never_recovers_fails_whatever_the_budget() {
        let samples = window(60, &[(40_000, 60_000)]);
        let v = evaluate(&samples, &[restart(39_000, 45_000)], &budget(0.99, 3_600_000), ms(60_000));
        assert!(!v.recovered);
        assert!(!v.passed());
        assert!(v.problems.iter().any(|p| p.contains("never recovered")), "{v}");
        assert_eq!(v.recoveries[0].after, None);
        assert!(v.to_string().contains("never recovered after restart kong began"), "{v}");
    }

    /// A request or two failing just before the window closes is an outage like any other, not
    /// traffic that never came back.
    #[test]
    fn a_last_failure_at_the_close_is_an_outage_not_a_loss() {
        let samples = window(10, &[(9_900, 10_000)]);
        let v = evaluate(&samples, &[restart(2_000, 5_000)], &budget(0.05, 500), ms(9_960));
        assert!(v.recovered && v.passed(), "{v}");
        let v = evaluate(&samples, &[restart(2_000, 5_000)], &budget(0.05, 500), ms(11_000));
        assert!(!v.recovered, "open for 1.1 s: {v}");
    }

    #[test]
    fn an_empty_window_measures_nothing_and_fails() {
        let v = evaluate(&[], &[], &budget(0.5, 1_000), ms(10_000));
        assert!(!v.passed());
        assert!(v.problems[0].contains("no request was sent"), "{v}");
    }

    #[test]
    fn recovery_is_per_disruption() {
        // Two restarts; only the second one costs anything.
        let samples = window(60, &[(41_000, 42_500)]);
        let v = evaluate(&samples, &[restart(40_000, 50_000), restart(5_000, 15_000)], &budget(0.1, 5_000), ms(60_000));
        let after: Vec<Option<Duration>> = v.recoveries.iter().map(|r| r.after).collect();
        assert_eq!(after, [Some(Duration::ZERO), Some(ms(2_500))], "sorted by start");
    }

    #[test]
    fn the_latency_percentile_is_nearest_rank_of_passing_requests() {
        let mut samples: Vec<Sample> =
            (1..=100).map(|i| Sample { at: ms(i * 10), passed: true, latency: Some(ms(i)) }).collect();
        samples.push(Sample { at: ms(2_000), passed: false, latency: None });
        samples.push(Sample { at: ms(2_010), passed: true, latency: Some(ms(101)) });
        let mut b = budget(0.5, 1_000);
        b.latency = Some(LatencyBudget { percentile: 99, max: ms(100) });
        let v = evaluate(&samples, &[], &b, ms(3_000));
        assert_eq!(v.latency, Some(ms(100)), "rank ceil(0.99 * 101) = 100");
        assert!(v.passed(), "{v}");
        b.latency = Some(LatencyBudget { percentile: 99, max: ms(99) });
        assert!(
            evaluate(&samples, &[], &b, ms(3_000)).problems[0].contains("latency p99 100ms is over the budget's 99ms")
        );
    }

    #[test]
    fn the_series_has_every_second_and_the_chart_marks_the_disruption() {
        let samples = window(4, &[(1_000, 1_500)]);
        let s = series(&samples);
        assert_eq!(s.len(), 4);
        assert_eq!((s[1].sent, s[1].failed), (20, 10));
        assert_eq!(s[0].max_latency_ms, Some(26));
        let chart = mermaid("restart under load", &s, &[restart(1_000, 2_000)]);
        assert!(chart.starts_with("```mermaid\nxychart-beta\n"), "{chart}");
        assert!(chart.contains("x-axis \"second\" [0, 1, 2, 3]"), "{chart}");
        assert!(chart.contains("bar [0, 20, 20, 0]"), "{chart}");
        assert!(chart.contains("line [20, 10, 20, 20]") && chart.contains("line [0, 10, 0, 0]"), "{chart}");
        assert!(chart.contains("(lines: passed, failed; bars: restart kong)"), "{chart}");
        assert_eq!(mermaid("empty", &[], &[]), "", "no axis to draw");
    }
}
