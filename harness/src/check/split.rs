//! Weighted splits as statistics: a sequential test over per-version counts.
//!
//! For each version with target share `p0` and tolerance `δ`, two one-sided sequential
//! probability ratio tests run side by side: `p = p0` against `p = p0 + δ`, and against
//! `p = p0 − δ`. Each test's likelihood ratio is a non-negative martingale under its null, so by
//! Ville's inequality it crosses `1/a` with probability at most `a`, however long we sample
//! and wherever we stop. That gives, by construction:
//!
//! - **judged wrong** while the split is exactly as declared: at most `alpha / 2`, with
//!   `a = alpha / (4k)` per one-sided test over `k` versions (union bound over `2k` tests);
//! - **miss** (a share is off by `δ` or more, the step passes): at most `beta` per
//!   one-sided test, by the same inequality applied to the inverse ratio under the alternative.
//!
//! The other half of `alpha` is headroom for the one outcome the construction cannot bound: the
//! request budget running out first (`Undecided`, which fails the step). At the default budget
//! (6000 requests, 90/10, ±0.05) the simulation in `bench` never reaches it: with 200,000
//! seeded runs the longest took about 3,600 requests.
//!
//! Shares strictly between `p0` and `p0 ± δ` are the indifference zone: either verdict is
//! acceptable there. Sampling stops as soon as every test has accepted (pass) or any test has
//! rejected (fail); when the request budget runs out first the verdict is `Undecided`, which a
//! step reports as a failure with the counts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::probe::{Observation, Outcome};

/// Settings of one split assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitTest {
    /// Target share per version, summing to 1.
    pub targets: BTreeMap<String, f64>,
    pub tolerance: f64,
    /// Bound on the false-failure probability of the whole assertion.
    pub alpha: f64,
    /// Bound on the miss probability per one-sided test.
    pub beta: f64,
    pub max_requests: u64,
}

/// Default bounds: a correct split is judged wrong at most once in 20,000 assertions; a share off
/// by the tolerance passes at most once in 100 (off by twice the tolerance, far less often).
pub const DEFAULT_ALPHA: f64 = 1e-4;
pub const DEFAULT_BETA: f64 = 1e-2;

impl SplitTest {
    /// From percent weights (as in a scenario file).
    pub fn from_weights(weights: &BTreeMap<String, u32>, tolerance: f64, max_requests: u64) -> Self {
        let total: u32 = weights.values().sum();
        let targets = weights.iter().map(|(v, w)| (v.clone(), f64::from(*w) / f64::from(total.max(1)))).collect();
        SplitTest { targets, tolerance, alpha: DEFAULT_ALPHA, beta: DEFAULT_BETA, max_requests }
    }

    pub fn start(&self) -> Sequential {
        let per_test = self.alpha / (4.0 * self.targets.len() as f64);
        let sides = self
            .targets
            .iter()
            .flat_map(|(version, &p0)| {
                [Direction::Above, Direction::Below].into_iter().map(move |direction| (version.clone(), p0, direction))
            })
            .map(|(version, p0, direction)| {
                let p1 = match direction {
                    Direction::Above => p0 + self.tolerance,
                    Direction::Below => p0 - self.tolerance,
                };
                Side::new(version, p0, p1, direction)
            })
            .collect();
        Sequential {
            test: self.clone(),
            reject_at: (1.0 / per_test).ln(),
            accept_at: self.beta.ln(),
            sides,
            counts: self.targets.keys().map(|v| (v.clone(), 0)).collect(),
            n: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Above,
    Below,
}

#[derive(Debug, Clone)]
struct Side {
    version: String,
    direction: Direction,
    /// Log-likelihood increments for a hit (this version answered) and a miss.
    hit: f64,
    miss: f64,
    llr: f64,
    state: SideState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SideState {
    Open,
    Accepted,
    Rejected,
}

impl Side {
    fn new(version: String, p0: f64, p1: f64, direction: Direction) -> Self {
        // An alternative outside [0, 1] is impossible: that side holds from the start.
        if !(0.0..=1.0).contains(&p1) {
            return Side { version, direction, hit: 0.0, miss: 0.0, llr: 0.0, state: SideState::Accepted };
        }
        let ln_ratio = |a: f64, b: f64| if a == b { 0.0 } else { (a / b).ln() };
        Side {
            version,
            direction,
            hit: ln_ratio(p1, p0),
            miss: ln_ratio(1.0 - p1, 1.0 - p0),
            llr: 0.0,
            state: SideState::Open,
        }
    }
}

/// Where a running test stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    Continue,
    Pass,
    /// A version's share is off in `direction`.
    Fail {
        version: String,
        direction: Direction,
    },
    /// A response came from no declared version.
    Unexpected {
        version: String,
    },
    /// The budget ran out before the evidence decided.
    Undecided,
    /// Too many requests got no answer at all.
    Unreachable {
        failures: usize,
    },
}

/// A split test in progress: feed it the version of each answer.
#[derive(Debug, Clone)]
pub struct Sequential {
    test: SplitTest,
    reject_at: f64,
    accept_at: f64,
    sides: Vec<Side>,
    counts: BTreeMap<String, u64>,
    n: u64,
}

impl Sequential {
    /// Record one answer and say whether the evidence now decides.
    pub fn observe(&mut self, version: &str) -> Decision {
        let Some(count) = self.counts.get_mut(version) else {
            return Decision::Unexpected { version: version.to_owned() };
        };
        *count += 1;
        self.n += 1;
        for side in self.sides.iter_mut().filter(|s| s.state == SideState::Open) {
            side.llr += if side.version == version { side.hit } else { side.miss };
            if side.llr >= self.reject_at {
                side.state = SideState::Rejected;
            } else if side.llr <= self.accept_at {
                side.state = SideState::Accepted;
            }
        }
        self.decision()
    }

    pub fn decision(&self) -> Decision {
        if let Some(side) = self.sides.iter().find(|s| s.state == SideState::Rejected) {
            return Decision::Fail { version: side.version.clone(), direction: side.direction };
        }
        if self.sides.iter().all(|s| s.state == SideState::Accepted) {
            return Decision::Pass;
        }
        if self.n >= self.test.max_requests { Decision::Undecided } else { Decision::Continue }
    }

    pub fn requests(&self) -> u64 {
        self.n
    }

    /// Counts, estimates and intervals, for the verdict and the snapshot.
    pub fn evidence(&self) -> SplitEvidence {
        let n = self.n;
        let versions = self
            .counts
            .iter()
            .map(|(version, &count)| {
                let target = self.test.targets[version];
                let (low, high) = wilson(count, n, Z_99_99);
                let estimate = if n == 0 { 0.0 } else { count as f64 / n as f64 };
                (version.clone(), VersionEvidence { count, target, estimate, interval: [low, high] })
            })
            .collect();
        SplitEvidence { requests: n, tolerance: self.test.tolerance, alpha: self.test.alpha, versions }
    }
}

/// What a split verdict shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitEvidence {
    pub requests: u64,
    pub tolerance: f64,
    pub alpha: f64,
    pub versions: BTreeMap<String, VersionEvidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionEvidence {
    pub count: u64,
    pub target: f64,
    pub estimate: f64,
    /// Wilson score interval at 99.99%.
    pub interval: [f64; 2],
}

/// The two-sided 99.99% normal quantile.
const Z_99_99: f64 = 3.890_591_886_413_094;

fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * ((p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt()) / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

pub use crate::rng::Rng;

#[cfg(test)]
mod tests {
    use super::*;

    fn ninety_ten() -> SplitTest {
        let weights = BTreeMap::from([("v1".to_owned(), 90), ("v2".to_owned(), 10)]);
        SplitTest::from_weights(&weights, 0.05, 6000)
    }

    fn run(test: &SplitTest, true_v1: f64, rng: &mut Rng) -> (Decision, u64) {
        let shares = [("v1".to_owned(), true_v1), ("v2".to_owned(), 1.0 - true_v1)];
        let mut s = test.start();
        loop {
            match s.observe(rng.pick(&shares)) {
                Decision::Continue => continue,
                d => return (d, s.requests()),
            }
        }
    }

    /// A route that sends everything one way (header routing), judged as a split with a 0 % side:
    /// the route in effect passes; the route missing (the Service's 50/50) passes no more often
    /// than the test's error bound, so a surviving mutant is a measurement, not luck (ten v2
    /// answers in a row under 50/50, the converge check this replaces, come up by chance).
    #[test]
    fn an_all_one_way_route_is_measured_not_sampled() {
        let weights = BTreeMap::from([("v1".to_owned(), 0), ("v2".to_owned(), 100)]);
        let test = SplitTest::from_weights(&weights, 0.05, 6000);
        let mut rng = Rng::seeded(7);
        let (decision, requests) = run(&test, 0.0, &mut rng);
        assert_eq!(decision, Decision::Pass, "all v2 passes");
        assert!(requests < 400, "decided in {requests} requests");
        let trials = 2000;
        let passed = (0..trials).filter(|_| run(&test, 0.5, &mut rng).0 == Decision::Pass).count();
        assert_eq!(passed, 0, "50/50 passed {passed} of {trials}");
        // A 0 % side is exact: one answer from it is impossible under the route, so it decides
        // at once (settle's pre-windows absorb the time before the route is in effect).
        let mut s = test.start();
        assert!(matches!(s.observe("v1"), Decision::Fail { .. }));
    }

    #[test]
    fn a_correct_split_passes_in_a_seeded_simulation() {
        let mut rng = Rng::seeded(1);
        let trials = 2000;
        let results: Vec<_> = (0..trials).map(|_| run(&ninety_ten(), 0.9, &mut rng)).collect();
        let failures = results.iter().filter(|(d, _)| *d != Decision::Pass).count();
        // The bound is 5e-5 per assertion: 0.1 expected failures in 2000.
        assert!(failures <= 1, "{failures} false failures in {trials}");
        let mean = results.iter().map(|(_, n)| *n).sum::<u64>() as f64 / trials as f64;
        assert!(mean < 1000.0, "mean requests {mean}");
    }

    #[test]
    fn a_split_off_by_ten_points_fails_either_way() {
        let mut rng = Rng::seeded(2);
        for true_v1 in [0.8, 1.0] {
            for _ in 0..500 {
                let (d, _) = run(&ninety_ten(), true_v1, &mut rng);
                assert!(matches!(d, Decision::Fail { .. }), "{true_v1}: {d:?}");
            }
        }
    }

    #[test]
    fn a_version_with_no_weight_fails_on_its_first_answer() {
        let weights = BTreeMap::from([("v1".to_owned(), 100), ("v2".to_owned(), 0)]);
        let mut s = SplitTest::from_weights(&weights, 0.05, 6000).start();
        assert_eq!(s.observe("v1"), Decision::Continue);
        // v1 below its share and v2 above it are the same fact; whichever side is checked first says it.
        let d = s.observe("v2");
        assert!(
            d == Decision::Fail { version: "v1".into(), direction: Direction::Below }
                || d == Decision::Fail { version: "v2".into(), direction: Direction::Above },
            "{d:?}"
        );
    }

    #[test]
    fn unknown_versions_and_budgets_are_explicit() {
        let mut s = ninety_ten().start();
        assert_eq!(s.observe("v3"), Decision::Unexpected { version: "v3".into() });
        let mut tiny = SplitTest { max_requests: 5, ..ninety_ten() }.start();
        let decisions: Vec<_> = (0..5).map(|_| tiny.observe("v1")).collect();
        assert_eq!(decisions.last(), Some(&Decision::Undecided));
    }

    #[test]
    fn evidence_reports_counts_estimates_and_intervals() {
        let mut s = ninety_ten().start();
        for i in 0..100 {
            s.observe(if i % 10 == 0 { "v2" } else { "v1" });
        }
        let e = s.evidence();
        assert_eq!(e.requests, 100);
        let v2 = &e.versions["v2"];
        assert_eq!((v2.count, v2.estimate), (10, 0.1));
        assert!(v2.interval[0] < 0.1 && 0.1 < v2.interval[1] && v2.interval[0] > 0.0);
    }

    #[test]
    fn the_generator_is_uniform_enough() {
        let mut rng = Rng::seeded(7);
        let mean = (0..100_000).map(|_| rng.unit()).sum::<f64>() / 100_000.0;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }
}

/// The outcome of driving a split test with real requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitVerdict {
    pub decision: Decision,
    pub evidence: SplitEvidence,
    /// Answers that mapped to no version (errors, unknown pods), which end the test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stray: Option<String>,
    /// Requests that got no answer at all, retried and never counted as samples.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transport_failures: Vec<String>,
}

/// How many requests without an answer a split tolerates (a connection dropped while Kong
/// reloads, a proxy restarting) before it gives up. They are reported, never counted.
pub const TRANSPORT_RETRIES: usize = 5;

/// One answer, as a split test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitAnswer {
    /// The `version` label of the pod that answered.
    Version(String),
    /// No HTTP answer: retried within [`TRANSPORT_RETRIES`], not a sample.
    Transport(String),
    /// An answer from no pod with a `version` label: the split cannot be judged.
    Stray(String),
}

impl SplitAnswer {
    pub fn of(observation: &Observation) -> SplitAnswer {
        match &observation.outcome {
            Outcome::Response(r) => match &r.version {
                Some(v) => SplitAnswer::Version(v.clone()),
                None => SplitAnswer::Stray(format!(
                    "HTTP {} from no pod with a `version` label (echo: {:?})",
                    r.status,
                    r.echo.as_ref().map(|e| e.pod.as_str())
                )),
            },
            Outcome::Transport { kind, message } => SplitAnswer::Transport(format!("{kind:?}: {message}")),
        }
    }
}

/// A split test fed answer by answer: the one place that turns [`SplitAnswer`]s into a verdict,
/// for live runs ([`drive`]) and replayed transcripts alike.
#[derive(Debug, Clone)]
pub struct SplitRun {
    running: Sequential,
    transport_failures: Vec<String>,
    transport_retries: usize,
}

impl SplitRun {
    pub fn new(test: &SplitTest, transport_retries: usize) -> SplitRun {
        SplitRun { running: test.start(), transport_failures: Vec::new(), transport_retries }
    }

    /// Take one answer; the verdict once it decides.
    pub fn feed(&mut self, answer: SplitAnswer) -> Option<SplitVerdict> {
        let decision = match answer {
            SplitAnswer::Version(version) => self.running.observe(&version),
            SplitAnswer::Transport(why) => {
                self.transport_failures.push(why);
                if self.transport_failures.len() <= self.transport_retries {
                    return None;
                }
                Decision::Unreachable { failures: self.transport_failures.len() }
            }
            SplitAnswer::Stray(why) => {
                return Some(self.verdict(Decision::Unexpected { version: String::new() }, Some(why)));
            }
        };
        if decision == Decision::Continue {
            return None;
        }
        let stray = match &decision {
            Decision::Unexpected { version } => {
                Some(format!("an answer from version {version:?}, which the split does not declare"))
            }
            _ => None,
        };
        Some(self.verdict(decision, stray))
    }

    /// The verdict when the answers or the time ran out first.
    pub fn undecided(&self) -> SplitVerdict {
        self.verdict(Decision::Undecided, None)
    }

    fn verdict(&self, decision: Decision, stray: Option<String>) -> SplitVerdict {
        SplitVerdict {
            decision,
            evidence: self.running.evidence(),
            stray,
            transport_failures: self.transport_failures.clone(),
        }
    }
}

/// Feed `test` with answers from `next` until it decides, the request budget is spent, or
/// `within` passes (then `Undecided`). More than `transport_retries` answerless requests end it
/// as `Unreachable`.
pub async fn drive<F, Fut>(
    test: &SplitTest,
    within: std::time::Duration,
    transport_retries: usize,
    mut next: F,
) -> SplitVerdict
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = SplitAnswer>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut run = SplitRun::new(test, transport_retries);
    loop {
        let answer = match tokio::time::timeout_at(deadline, next()).await {
            Ok(answer) => answer,
            Err(_) => return run.undecided(),
        };
        if let Some(verdict) = run.feed(answer) {
            return verdict;
        }
    }
}

/// Requests of one settle pre-window at most: enough for a ±0.25 test to refuse 50/50 at 90/10.
pub const SETTLE_WINDOW: u64 = 400;

/// Repeat short pre-windows at `tolerance` until one passes (the route is in effect); the
/// number of windows it took, or the last window's verdict when `within` ran out first.
pub async fn settle<F, Fut>(
    weights: &BTreeMap<String, u32>,
    tolerance: f64,
    within: std::time::Duration,
    mut next: F,
) -> Result<usize, SplitVerdict>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = SplitAnswer>,
{
    let window = SplitTest::from_weights(weights, tolerance, SETTLE_WINDOW);
    let deadline = tokio::time::Instant::now() + within;
    let mut windows = 0;
    loop {
        windows += 1;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let verdict = drive(&window, left, TRANSPORT_RETRIES, &mut next).await;
        if verdict.decision == Decision::Pass {
            return Ok(windows);
        }
        // An answer from no versioned pod (a brief 503 while the route is set up) fails that
        // window only; an answer from an undeclared version means the route goes elsewhere.
        let undeclared = matches!(&verdict.decision, Decision::Unexpected { version } if !version.is_empty());
        if tokio::time::Instant::now() >= deadline || undeclared {
            return Err(verdict);
        }
    }
}

#[cfg(test)]
mod drive_tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::probe::PodVersions;
    use crate::testing::{Reply, echo_body, get, http_probe, serve};

    async fn split_against(v2_every: usize) -> SplitVerdict {
        // Deterministic stand-in for a weighted backend: every n-th answer from v2.
        let addr = serve(move |h| {
            Reply::json(200, echo_body(h, if h.index % v2_every == 0 { "echo-v2-b" } else { "echo-v1-a" }, "shop"))
        })
        .await;
        let probe = http_probe(addr, Duration::from_secs(5));
        let versions =
            PodVersions([("echo-v1-a".to_owned(), "v1".to_owned()), ("echo-v2-b".to_owned(), "v2".to_owned())].into());
        let request = get("/");
        let weights = BTreeMap::from([("v1".to_owned(), 90), ("v2".to_owned(), 10)]);
        let test = SplitTest::from_weights(&weights, 0.05, 6000);
        drive(&test, Duration::from_secs(60), TRANSPORT_RETRIES, || {
            let (probe, request, versions) = (probe.clone(), request.clone(), versions.clone());
            async move {
                let obs = probe.send(&request, "h", &BTreeMap::new(), &versions).await;
                SplitAnswer::of(&obs)
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_ninety_ten_backend_passes_and_a_half_half_one_fails() {
        let good = split_against(10).await;
        assert_eq!(good.decision, Decision::Pass, "{:?}", good.evidence);
        assert_eq!(good.evidence.versions["v2"].count, good.evidence.requests.div_ceil(10));
        let bad = split_against(2).await;
        assert!(matches!(bad.decision, Decision::Fail { .. }), "{bad:?}");
        assert!(bad.evidence.requests < 200, "decided quickly: {}", bad.evidence.requests);
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_budget_ends_an_undecided_test() {
        let weights = BTreeMap::from([("v1".to_owned(), 90), ("v2".to_owned(), 10)]);
        let test = SplitTest::from_weights(&weights, 0.05, 6000);
        let verdict = drive(&test, Duration::from_secs(10), TRANSPORT_RETRIES, || async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            SplitAnswer::Version("v1".to_owned())
        })
        .await;
        assert_eq!(verdict.decision, Decision::Undecided);
        assert!(verdict.evidence.requests <= 10);
    }

    /// Before the route applies the Service balances 50/50: pre-windows refuse it until the
    /// route is in effect; a route that never applies ends the settle with the last window.
    #[tokio::test(start_paused = true)]
    async fn settle_waits_for_the_route_and_gives_up_at_its_deadline() {
        let weights = BTreeMap::from([("v1".to_owned(), 90), ("v2".to_owned(), 10)]);
        let backend = |route_after: usize| {
            let n = std::sync::atomic::AtomicUsize::new(0);
            move || {
                let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let v2 = if i < route_after { i.is_multiple_of(2) } else { i.is_multiple_of(10) };
                async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    SplitAnswer::Version(if v2 { "v2" } else { "v1" }.to_owned())
                }
            }
        };
        let windows = settle(&weights, 0.25, Duration::from_secs(60), backend(300)).await.unwrap();
        assert!(windows >= 2, "the 50/50 phase is refused at least once: {windows}");
        let never = settle(&weights, 0.25, Duration::from_secs(30), backend(usize::MAX)).await.unwrap_err();
        assert!(matches!(never.decision, Decision::Fail { .. } | Decision::Undecided), "{never:?}");
    }

    /// A 503 from no versioned pod while the route is set up fails a pre-window, not the settle.
    #[tokio::test(start_paused = true)]
    async fn settle_outlasts_answers_from_no_versioned_pod() {
        let weights = BTreeMap::from([("v1".to_owned(), 90), ("v2".to_owned(), 10)]);
        let n = std::sync::atomic::AtomicUsize::new(0);
        let next = || {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::ready(match i {
                0..3 => SplitAnswer::Stray("HTTP 503 from no pod with a `version` label".into()),
                _ if i.is_multiple_of(10) => SplitAnswer::Version("v2".into()),
                _ => SplitAnswer::Version("v1".into()),
            })
        };
        assert!(settle(&weights, 0.25, Duration::from_secs(60), next).await.unwrap() >= 2);
        let undeclared = || std::future::ready(SplitAnswer::Version("v3".into()));
        assert!(settle(&weights, 0.25, Duration::from_secs(60), undeclared).await.is_err());
    }

    /// A few dropped connections are retried and reported, never counted; too many end the test.
    #[tokio::test]
    async fn transport_failures_are_retried_within_a_bound_and_never_sampled() {
        let weights = BTreeMap::from([("v1".to_owned(), 90), ("v2".to_owned(), 10)]);
        let test = SplitTest::from_weights(&weights, 0.05, 6000);
        let answers = |drops: usize| {
            let n = std::sync::atomic::AtomicUsize::new(0);
            move || {
                let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = if i < drops {
                    SplitAnswer::Transport("Reset: connection reset by peer".into())
                } else if (i - drops).is_multiple_of(10) {
                    SplitAnswer::Version("v2".into())
                } else {
                    SplitAnswer::Version("v1".into())
                };
                std::future::ready(answer)
            }
        };
        let verdict = drive(&test, Duration::from_secs(60), 3, answers(3)).await;
        assert_eq!(verdict.decision, Decision::Pass, "{verdict:?}");
        assert_eq!(verdict.transport_failures.len(), 3);
        let counted: u64 = verdict.evidence.versions.values().map(|v| v.count).sum();
        assert_eq!(counted, verdict.evidence.requests, "only answers are samples");
        let verdict = drive(&test, Duration::from_secs(60), 3, answers(4)).await;
        assert_eq!(verdict.decision, Decision::Unreachable { failures: 4 });
        assert_eq!(verdict.evidence.requests, 0);
    }
}
