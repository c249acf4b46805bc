//! `cargo xtask bench run`: the wall time of a profile's scenarios with `--jobs 1` and with more,
//! simulated in virtual time through the scheduler a live run uses ([`super::run_all`]). Each
//! scenario's time comes from its own steps under the latency model below; what is measured is
//! how well the scheduler overlaps them (exclusive scenarios alone), not the cluster. The model
//! has no contention (one API server, KIC's full-configuration syncs, one node's CPU), so the
//! ratio it gives is an idealised lower bound of what a cluster shows.
//!
//! The model, per scenario (each figure drawn uniformly within +/-50% with a seeded generator,
//! so a seed gives one answer):
//!
//! | phase | seconds | why |
//! |---|---|---|
//! | namespace and fixtures applied | 1 | a few server-side applies |
//! | workloads ready | 5 (+3 with a mesh) | Kubernetes' pod start-up SLO: 99% of pods within 5 s, images pulled ([sig-scalability SLOs](https://github.com/kubernetes/community/blob/master/sig-scalability/slos/pod_startup_latency.md)); the sidecar's start and the injection check: 3 s, assumed |
//! | http, from-pod (converge) | 3 + 3 | KIC pushes configuration every 3 s by default (`--proxy-sync-seconds`, KIC CLI arguments); then three passes one second apart (`runner::execute::INTERVAL`) |
//! | split | 3 + 20 | sync, then a sequential test of a few hundred requests |
//! | trace | 3 + 10 + quiet | sync, the collector's flush (assumed), then the step's own `quiet` wait before it asks again (20 s by default) |
//! | rate-limit | 3 + 30 | sync, then on average half a minute until a fresh minute window (the harness waits for one) |
//! | metrics, mesh-membership, expect-resource, wait, apply, delete | 2 | one or two API or proxy reads |
//!
//! Cleanup (namespace deletion) overlaps the next scenario and is not counted.

use std::time::Duration;

use crate::scenario::Step;

/// One scenario as the simulation sees it.
#[derive(Debug, Clone)]
pub struct Modelled {
    pub name: String,
    pub exclusive: bool,
    /// Seconds of each phase, drawn.
    pub phases: Vec<f64>,
}

impl Modelled {
    pub fn seconds(&self) -> f64 {
        self.phases.iter().sum()
    }
}

/// The model's draws: uniform within +/-50% of a mean, from the crate's seeded generator.
struct Draws(crate::rng::Rng);

impl Draws {
    fn around(&mut self, seconds: f64) -> f64 {
        seconds * (0.5 + self.0.unit())
    }
}

/// The model's mean seconds for one step.
fn step_seconds(step: &Step) -> f64 {
    const SYNC: f64 = 3.0;
    match step {
        Step::Http(_) | Step::FromPod(_) => SYNC + 3.0,
        Step::Split(_) => SYNC + 20.0,
        Step::Trace(s) => SYNC + 10.0 + s.expect.quiet.0.as_secs_f64(),
        Step::RateLimit(_) => SYNC + 30.0,
        Step::Load(s) => {
            s.warmup.0.as_secs_f64() + s.cooldown.0.as_secs_f64() + s.during.iter().map(step_seconds).sum::<f64>()
        }
        Step::Restart(_) => 60.0,
        Step::Upgrade(_) => 180.0,
        Step::Metrics(_)
        | Step::MeshMembership(_)
        | Step::ExpectResource(_)
        | Step::Wait(_)
        | Step::Apply(_)
        | Step::Delete(_) => 2.0,
    }
}

/// The scenarios a run of `profile` would run, with whether each is exclusive and its steps.
pub fn scenarios_of(
    catalog: &crate::scenario::Catalog,
    profile: &crate::profile::Profile,
) -> Result<Vec<(String, bool, Vec<Step>)>, crate::scenario::CheckError> {
    let plan = crate::plan::build(catalog, profile, "bench", crate::cluster::HostPorts::AT_RUN_TIME)?;
    plan.scenarios
        .iter()
        .map(|s| {
            let checked = catalog.check_mesh(&catalog.project.root().join(&s.file), profile.mesh(), "bench")?;
            Ok((s.name.clone(), s.exclusive, checked.scenario.scenario.steps))
        })
        .collect()
}

/// Each scenario's phases under the model, drawn with `seed`.
pub fn model(scenarios: &[(String, bool, Vec<Step>)], meshed: bool, seed: u64) -> Vec<Modelled> {
    let mut draws = Draws(crate::rng::Rng::with_state(seed));
    scenarios
        .iter()
        .map(|(name, exclusive, steps)| {
            let mut phases = vec![draws.around(1.0), draws.around(if meshed { 8.0 } else { 5.0 })];
            phases.extend(steps.iter().map(|s| draws.around(step_seconds(s))));
            Modelled { name: name.clone(), exclusive: *exclusive, phases }
        })
        .collect()
}

/// Whether this build can simulate (the `virtual-time` feature, or this crate's tests).
pub const VIRTUAL_CLOCK: bool = cfg!(any(test, feature = "virtual-time"));

/// The simulation could not give a figure: an error, never a ratio of 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimulationError {
    #[error("the simulation's runtime could not start: {0}")]
    Runtime(String),
    #[error(
        "this build has no virtual clock (tokio's test-util is the `bench` feature, off by default): run `cargo run \
         --package kme2e --features bench -- bench run ...`"
    )]
    NoVirtualClock,
    #[error("the simulation's thread panicked")]
    Panicked,
    #[error("the simulation took no time at --jobs 1 (no scenario, or every phase 0 s): there is no ratio to give")]
    NoTime,
}

/// The simulated wall time of `scenarios` at `jobs`, in virtual time: a runtime of its own with
/// a paused clock, on a thread of its own (callable from async code too); it returns at once.
pub fn wall_time(scenarios: &[Modelled], jobs: usize) -> Result<Duration, SimulationError> {
    std::thread::scope(|scope| {
        scope.spawn(|| simulate(scenarios, jobs)).join().unwrap_or(Err(SimulationError::Panicked))
    })
}

/// The paused clock is tokio's `test-util`: compiled in only with the `virtual-time` feature
/// (and in this crate's tests), so the product carries no test utilities.
#[cfg(any(test, feature = "virtual-time"))]
fn simulate(scenarios: &[Modelled], jobs: usize) -> Result<Duration, SimulationError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| SimulationError::Runtime(e.to_string()))?;
    Ok(runtime.block_on(async {
        let started = tokio::time::Instant::now();
        super::run_all(
            scenarios.len(),
            jobs,
            |i| scenarios[i].exclusive,
            |i| tokio::time::sleep(Duration::from_secs_f64(scenarios[i].seconds())),
        )
        .await;
        started.elapsed()
    }))
}

#[cfg(not(any(test, feature = "virtual-time")))]
fn simulate(_: &[Modelled], _: usize) -> Result<Duration, SimulationError> {
    Err(SimulationError::NoVirtualClock)
}

/// The bench's result for one seed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub profile: String,
    pub seed: u64,
    pub scenarios: usize,
    pub jobs: usize,
    pub sequential_s: f64,
    pub parallel_s: f64,
    pub ratio: f64,
}

pub fn compare(profile: &str, seed: u64, scenarios: &[Modelled], jobs: usize) -> Result<Comparison, SimulationError> {
    let sequential = wall_time(scenarios, 1)?.as_secs_f64();
    let parallel = wall_time(scenarios, jobs)?.as_secs_f64();
    if sequential <= 0.0 {
        return Err(SimulationError::NoTime);
    }
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Ok(Comparison {
        profile: profile.to_owned(),
        seed,
        scenarios: scenarios.len(),
        jobs,
        sequential_s: round(sequential),
        parallel_s: round(parallel),
        ratio: (parallel / sequential * 1000.0).round() / 1000.0,
    })
}

/// The figure over several seeds (the latency draws differ per seed): the ratio's mean and range.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Spread {
    pub profile: String,
    pub jobs: usize,
    pub seeds: Vec<u64>,
    pub ratio_mean: f64,
    pub ratio_min: f64,
    pub ratio_max: f64,
}

pub fn spread(runs: &[Comparison]) -> Option<Spread> {
    let first = runs.first()?;
    let ratios: Vec<f64> = runs.iter().map(|r| r.ratio).collect();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Some(Spread {
        profile: first.profile.clone(),
        jobs: first.jobs,
        seeds: runs.iter().map(|r| r.seed).collect(),
        ratio_mean: round(ratios.iter().sum::<f64>() / ratios.len() as f64),
        ratio_min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratio_max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// The per-scenario table.
pub fn table(scenarios: &[Modelled]) -> String {
    let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(8).max(8);
    let mut out = format!("{:<width$}  {:>9}  {:>9}\n", "scenario", "seconds", "exclusive");
    for s in scenarios {
        out += &format!("{:<width$}  {:>9.1}  {:>9}\n", s.name, s.seconds(), if s.exclusive { "yes" } else { "" });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> Step {
        crate::yaml::from_str::<Step>("http: {request: {path: /}, expect: {status: 200}}").unwrap()
    }

    #[test]
    fn draws_are_seeded_and_within_half_either_way() {
        let a = model(&[("a".into(), false, vec![http(), http()])], true, 7);
        let b = model(&[("a".into(), false, vec![http(), http()])], true, 7);
        assert_eq!(a[0].phases, b[0].phases);
        assert!(a[0].phases[2] >= 3.0 && a[0].phases[2] <= 9.0, "{:?}", a[0].phases);
    }

    /// Exclusive scenarios serialise: two exclusive 10 s scenarios take 20 s at any jobs.
    #[test]
    fn exclusive_scenarios_cannot_overlap() {
        let s = |exclusive| Modelled { name: "x".into(), exclusive, phases: vec![10.0] };
        assert_eq!(wall_time(&[s(true), s(true)], 4), Ok(Duration::from_secs(20)));
        assert_eq!(wall_time(&[s(false), s(false)], 4), Ok(Duration::from_secs(10)));
    }

    /// Nothing to simulate is an error, not "ratio 0.00".
    #[test]
    fn an_empty_simulation_is_an_error() {
        assert_eq!(compare("istio", 1, &[], 4).unwrap_err(), SimulationError::NoTime);
        let s = Modelled { name: "x".into(), exclusive: false, phases: vec![10.0] };
        let runs: Vec<Comparison> =
            (1..=3).map(|seed| compare("istio", seed, &[s.clone(), s.clone()], 4).unwrap()).collect();
        let spread = spread(&runs).unwrap();
        assert_eq!((spread.ratio_min, spread.ratio_mean, spread.ratio_max), (0.5, 0.5, 0.5));
        assert_eq!(spread.seeds, [1, 2, 3]);
    }

    /// The bench's goal, in virtual time under its stated model: four jobs take at most 0.4 of
    /// the sequential wall time of the Istio profile's scenarios that may run side by side (an
    /// exclusive one, such as a restart of Kong under load, runs alone by design and adds its
    /// whole time, and the wait for the others to finish first, either way).
    #[test]
    fn four_jobs_meet_the_benchs_goal_on_istio() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = crate::scenario::Catalog::open(crate::project::Project::at(&root)).unwrap();
        let profile = catalog.default_profile(crate::model::Mesh::Istio).unwrap();
        let scenarios = scenarios_of(&catalog, &profile).unwrap();
        for seed in 1..=5 {
            let all = model(&scenarios, true, seed);
            let shareable: Vec<Modelled> = all.into_iter().filter(|m| !m.exclusive).collect();
            assert!(!shareable.is_empty());
            let result = compare("istio", seed, &shareable, 4).unwrap();
            assert!(result.ratio <= 0.4 && result.ratio > 0.0, "{result:?}");
        }
    }
}
