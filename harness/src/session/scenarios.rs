//! The scenarios of a live run: each with its retries in fresh namespaces, its snapshot and
//! mutants, and the evidence of what failed.

use crate::runner::outcome::FailureKind;

use tokio_util::sync::CancellationToken;

use crate::plan::Plan;
use crate::profile::Profile;
use crate::progress::Progress;
use crate::runner::events::{Event, ProgressReporter, Reporter};

use super::Environment;
use super::evidence::{collect_evidence, helm_values_in_force};
use super::reports::report_of;
use crate::command::Runner;

/// How scenarios run in a live session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScenarioOptions {
    /// Leave scenario namespaces behind (the cluster is kept).
    pub keep_namespaces: bool,
    /// Compare (or update) each passing scenario's snapshot; `None` skips snapshots (repro
    /// bundles, which carry none).
    pub snapshots: Option<crate::snapshot::SnapshotMode>,
    /// Run each passing scenario's mutants (`e2e --mutants`); one that survives fails it.
    pub mutants: bool,
    /// The run's time budget, when it has one: scenarios it stopped say so.
    pub deadline: Option<crate::budget::Deadline>,
    /// `repro run`: the bundle's expected outcome is the verdict (every step passes, or the
    /// named step fails), not the steps' own.
    pub expected: Option<crate::scenario::bundle::Expected>,
    /// How many scenarios run at once (`--jobs`; 0 counts as 1).
    pub jobs: usize,
    /// How many times a failed scenario is run again, each time in a fresh namespace.
    pub retries: u32,
    /// An untrusted repro bundle: each scenario namespace gets the sandbox's egress policy.
    pub sandbox: bool,
}

/// Run the scenarios of `plan` in `env`, up to `options.jobs` at once (exclusive ones alone),
/// each one whose step failed again in a fresh namespace up to `options.retries` times; failed
/// attempts get diagnostics, their observations and a repro bundle under
/// `artifacts/<scenario>/` (later attempts under `artifacts/<scenario>/attempt-<n>/`). Results
/// are in plan order.
/// Scenario namespaces are deleted afterwards unless the cluster is kept. Progress goes to
/// `progress`; [`run_scenarios_reporting`] also hands the events to another reporter.
pub async fn run_scenarios<R: Runner + Clone + 'static>(
    catalog: &crate::scenario::Catalog,
    env: &Environment<R>,
    plan: &Plan,
    profile: &Profile,
    options: &ScenarioOptions,
    cancel: &CancellationToken,
    progress: &Progress,
) -> crate::report::RunReport {
    let reporter = ProgressReporter::new(progress.clone());
    run_scenarios_reporting(catalog, env, plan, profile, options, cancel, progress, &reporter).await
}

/// [`run_scenarios`], each attempt's start, wait and end and each scenario's result handed to
/// `reporter` as they happen (the terminal progress is one of its reporters; mutants still
/// report on `progress`).
#[allow(clippy::too_many_arguments)]
pub async fn run_scenarios_reporting<R: Runner + Clone + 'static>(
    catalog: &crate::scenario::Catalog,
    env: &Environment<R>,
    plan: &Plan,
    profile: &Profile,
    options: &ScenarioOptions,
    cancel: &CancellationToken,
    progress: &Progress,
    reporter: &dyn Reporter,
) -> crate::report::RunReport {
    use crate::report::Outcome;
    let mut live = crate::runner::execute::Live::for_profile(
        env.client.clone(),
        profile,
        env.access.proxy.clone(),
        catalog.project.fixtures_dir(),
    );
    live.sandbox = options.sandbox;
    // Only on a cluster the harness installed (not `--no-install`, not a shared cluster's).
    let own_stack = plan.discover.is_none() && !matches!(env.provider, crate::cluster::Provider::Existing { .. });
    if own_stack {
        let context = super::upgrade::UpgradeContext {
            runner: env.runner.clone(),
            helm: env.helm.clone(),
            client: env.client.clone(),
            run: env.run.clone(),
        };
        live.upgrades = super::upgrade::upgrades_for(&context, profile, &plan.environment);
    }
    let run = Shared { catalog, env, plan, profile, options, cancel, progress, reporter, live: &live };
    let exclusive: Vec<bool> = plan.scenarios.iter().map(|s| s.exclusive).collect();
    let run = &run;
    let scenario = |i| async move {
        let result = run_scenario(run, i).await;
        reporter.event(&Event::ScenarioFinished { index: i, result: &result });
        result
    };
    let results = crate::runner::run_all(plan.scenarios.len(), options.jobs, |i| exclusive[i], scenario).await;
    if results.iter().any(|r| matches!(r.outcome, Outcome::Failed { .. } | Outcome::Flaky { .. })) {
        helm_values_in_force(env, plan, &env.run.artifacts().join("helm")).await;
    }
    report_of(plan, profile, results)
}

/// One attempt as the reporters see it: started when made, then waiting and finished.
struct AttemptPhase<'r> {
    reporter: &'r dyn Reporter,
    index: usize,
    attempt: u32,
}

impl<'r> AttemptPhase<'r> {
    fn start(reporter: &'r dyn Reporter, index: usize, total: usize, name: &str, attempt: u32) -> Self {
        reporter.event(&Event::AttemptStarted { index, total, name, attempt });
        AttemptPhase { reporter, index, attempt }
    }

    fn waiting_for(&self, what: &str) {
        self.reporter.event(&Event::AttemptWaiting { index: self.index, attempt: self.attempt, what });
    }

    fn finish(self, ok: bool, summary: &str) {
        self.reporter.event(&Event::AttemptFinished { index: self.index, attempt: self.attempt, ok, summary });
    }
}

/// What every scenario of a run shares.
struct Shared<'a, R> {
    catalog: &'a crate::scenario::Catalog,
    env: &'a Environment<R>,
    plan: &'a Plan,
    profile: &'a Profile,
    options: &'a ScenarioOptions,
    cancel: &'a CancellationToken,
    progress: &'a Progress,
    reporter: &'a dyn Reporter,
    live: &'a crate::runner::execute::Live,
}

/// Scenario `number` of the plan, with its retries: a pass after a failure is flaky (the first
/// failure kept as its evidence), never a clean pass.
async fn run_scenario<R: Runner>(run: &Shared<'_, R>, number: usize) -> crate::report::ScenarioResult {
    use crate::report::{Outcome, ScenarioResult};
    let planned = &run.plan.scenarios[number];
    let started = std::time::Instant::now();
    let attempts = run.options.retries + 1;
    let mut first_failure: Option<ScenarioResult> = None;
    let mut last = None;
    let mut tried = 0;
    for attempt in 0..attempts {
        // Stopped (Ctrl-C, budget): a scenario not begun is skipped; one that failed keeps its
        // failure and is not tried again.
        if run.cancel.is_cancelled() && attempt > 0 {
            break;
        }
        if run.cancel.is_cancelled() {
            last = Some(ScenarioResult {
                scenario: planned.name.clone(),
                mesh: run.profile.mesh().to_string(),
                outcome: Outcome::Skipped { reason: crate::budget::why_stopped(run.options.deadline.as_ref()) },
                duration_ms: 0,
                artifacts: None,
                notes: Vec::new(),
                phases: Vec::new(),
                load_windows: Vec::new(),
            });
            break;
        }
        let (result, retryable) = attempt_scenario(run, number, attempt).await;
        tried += 1;
        let failed = matches!(result.outcome, Outcome::Failed { .. });
        if !failed {
            last = Some(match (&result.outcome, first_failure.take().map(|f| (f.outcome, f.artifacts))) {
                (Outcome::Passed, Some((Outcome::Failed { verdict, evidence, .. }, artifacts))) => {
                    let mut notes = result.notes;
                    notes.insert(0, format!("passed on attempt {} of {attempts} after failing", attempt + 1));
                    ScenarioResult { outcome: Outcome::Flaky { verdict, evidence }, artifacts, notes, ..result }
                }
                _ => result,
            });
            break;
        }
        if first_failure.is_none() {
            first_failure = Some(result.clone());
        }
        last = Some(result);
        // Only a step that failed may pass next time; a scenario that does not load, a snapshot
        // that differs or a mutant that survives would fail the same way again.
        if !retryable {
            break;
        }
        if attempt + 1 < attempts && !run.cancel.is_cancelled() {
            let verdict = last.as_ref().map_or("", |r| verdict_of(&r.outcome));
            run.reporter.event(&Event::AttemptRetried {
                index: number,
                name: &planned.name,
                attempt: attempt + 1,
                verdict,
            });
        }
    }
    let mut result = match (last, first_failure) {
        // Every attempt made failed: the first failure is the one to read; the last is noted.
        (Some(last), Some(mut first)) if matches!(last.outcome, Outcome::Failed { .. }) && tried > 1 => {
            first.notes.push(format!("failed all {tried} attempts; the last: {}", verdict_of(&last.outcome)));
            first
        }
        (Some(last), _) => last,
        // No attempt ran: every path above sets `last`; said, not assumed.
        (None, _) => ScenarioResult {
            scenario: planned.name.clone(),
            mesh: run.profile.mesh().to_string(),
            outcome: Outcome::Skipped { reason: "no attempt ran".into() },
            duration_ms: 0,
            artifacts: None,
            notes: Vec::new(),
            phases: Vec::new(),
            load_windows: Vec::new(),
        },
    };
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

fn verdict_of(outcome: &crate::report::Outcome) -> &str {
    match outcome {
        crate::report::Outcome::Failed { verdict, .. } | crate::report::Outcome::Flaky { verdict, .. } => verdict,
        _ => "",
    }
}

/// One attempt of scenario `number`: the first in the plan's namespace, attempt n > 1 in a
/// namespace of its own (`<scenario>-<run>-<n>`), its artifacts under
/// `artifacts/<scenario>/attempt-<n>/`. Also says whether a failure may pass on a retry (a
/// step failed, rather than the scenario not loading, its snapshot or a mutant).
async fn attempt_scenario<R: Runner>(
    run: &Shared<'_, R>,
    number: usize,
    attempt: u32,
) -> (crate::report::ScenarioResult, bool) {
    use crate::report::{Outcome, ScenarioResult};
    let (catalog, env, plan, profile, options, cancel, live) =
        (run.catalog, run.env, run.plan, run.profile, run.options, run.cancel, run.live);
    let planned = &plan.scenarios[number];
    let mesh = profile.mesh();
    let total = plan.scenarios.len();
    let run_id = if attempt == 0 { plan.run.clone() } else { format!("{}-{}", plan.run, attempt + 1) };
    let ctx = crate::scenario::RunContext::new(&run_id, mesh);
    let fixtures_dir = catalog.project.fixtures_dir();
    let phase = AttemptPhase::start(run.reporter, number, total, &planned.name, attempt);
    let failed_result = |verdict: &str, evidence: String| ScenarioResult {
        scenario: planned.name.clone(),
        mesh: mesh.to_string(),
        outcome: Outcome::Failed { verdict: verdict.to_owned(), evidence, kind: FailureKind::Error },
        duration_ms: 0,
        artifacts: None,
        notes: Vec::new(),
        phases: Vec::new(),
        load_windows: Vec::new(),
    };
    let file = catalog.project.root().join(&planned.file);
    let loaded = match crate::scenario::load(&file, &fixtures_dir, &ctx, profile) {
        Ok(l) => l,
        Err(e) => {
            phase.finish(false, "does not load");
            return (failed_result("the scenario does not load", e.to_string()), false);
        }
    };
    // `--no-install` runs on what the cluster has; a scenario needing what only the harness's
    // stack brings is skipped with why, never run to a failure that is not Kong's or the mesh's.
    let skip = plan
        .discover
        .as_ref()
        .and_then(|_| missing_without_install(&loaded.scenario))
        .or_else(|| upgrade_not_possible(&loaded.scenario, plan, run.live));
    if let Some(reason) = skip {
        phase.finish(true, &format!("skipped: {reason}"));
        let skipped = ScenarioResult {
            scenario: planned.name.clone(),
            mesh: mesh.to_string(),
            outcome: Outcome::Skipped { reason },
            duration_ms: 0,
            artifacts: None,
            notes: Vec::new(),
            phases: Vec::new(),
            load_windows: Vec::new(),
        };
        return (skipped, false);
    }
    phase.waiting_for(&format!("{} step(s)", loaded.scenario.steps.len()));
    let on_step = |record: &crate::runner::execute::StepRecord| {
        run.reporter.event(&Event::StepFinished { index: number, attempt, record });
    };
    let outcome = live.run_observed(&loaded, &plan.run, cancel, &on_step).await;
    let first = env.run.artifacts().join(&planned.name);
    let dir = if attempt == 0 { first } else { first.join(format!("attempt-{}", attempt + 1)) };
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("steps.json"), serde_json::to_string_pretty(&outcome.steps).unwrap_or_default());
    let _ = std::fs::write(
        dir.join("observations.yaml"),
        serde_saphyr::to_string(&outcome.observations).unwrap_or_default(),
    );
    // Every traffic step's raw answers, replayable offline: `cargo xtask replay <dir>`.
    if !outcome.transcripts.is_empty() {
        let transcripts = dir.join("transcripts");
        let _ = std::fs::create_dir_all(&transcripts);
        for (name, text) in &outcome.transcripts {
            // Named by the harness (`<step>-<kind>.yaml`); joined only through the name check.
            if let Ok(path) = crate::names::join_under(&transcripts, name) {
                let _ = std::fs::write(path, text);
            }
        }
    }
    let mut notes = Vec::new();
    let snapshot = match (outcome.failure(), options.snapshots, loaded.scenario.snapshot.enabled) {
        (None, Some(mode), true) => snapshot_verdict(catalog, &outcome, mesh, mode, &mut notes),
        _ => Ok(()),
    };
    let mut result_outcome = match (outcome.failure(), snapshot) {
        (None, Ok(())) => {
            phase.finish(true, "passed");
            Outcome::Passed
        }
        (None, Err(difference)) => {
            let verdict = if difference.starts_with("no stored snapshot") {
                "no stored snapshot (required in CI)"
            } else {
                "the observations differ from the snapshot"
            };
            phase.finish(false, verdict);
            Outcome::Failed { verdict: verdict.into(), evidence: difference, kind: FailureKind::Verdict }
        }
        (Some(step), _) => {
            phase.finish(false, &format!("failed at: {}", step.step));
            let failed_at = outcome.steps.iter().position(|s| !s.passed).map(|n| (n, step.detail.as_str()));
            // Evidence from this attempt's namespace.
            let mut here = planned.clone();
            if attempt > 0 {
                for o in &mut here.objects {
                    if o.object.namespace.as_deref() == Some(planned.namespace.as_str()) {
                        o.object.namespace = Some(outcome.namespace.clone());
                    }
                }
                here.namespace = outcome.namespace.clone();
            }
            collect_evidence(catalog, env, plan, profile, &here, failed_at, &dir).await;
            let verdict = match options.deadline.as_ref().filter(|d| d.passed()) {
                Some(d) => format!("step `{}` was stopped: {}", step.step, d.reason()),
                None => format!("step `{}` failed", step.step),
            };
            Outcome::Failed {
                verdict,
                evidence: step.detail.clone(),
                kind: step.failure.unwrap_or(FailureKind::Verdict),
            }
        }
    };
    // A repro bundle's run is judged by what the bundle expects (a bug that reproduces
    // passes), unless it was stopped before it could show anything.
    if let Some(expected) = options.expected.as_ref().filter(|_| !cancel.is_cancelled()) {
        let failed = outcome.steps.iter().position(|s| !s.passed).map(|n| {
            let step = &outcome.steps[n];
            (n, step.detail.as_str(), step.failure.unwrap_or(FailureKind::Verdict))
        });
        result_outcome = match (expected.judge(failed), failed) {
            // The bug showed again: what the bundle asked for, and not a clean pass.
            (Ok(seen), Some((step, _, _))) if expected.outcome == crate::scenario::bundle::ExpectedOutcome::Fails => {
                Outcome::Reproduced { verdict: format!("reproduced: step {step} failed as expected"), evidence: seen }
            }
            (Ok(seen), _) => {
                notes.push(seen);
                Outcome::Passed
            }
            (Err(differs), _) => Outcome::Failed {
                verdict: format!("not as the bundle expects ({expected})"),
                evidence: differs,
                kind: FailureKind::Verdict,
            },
        };
    }
    // Mutants need the steps to pass, not the snapshot: a missing snapshot (every scenario's, in
    // CI, until the first live run's are committed) must not keep them from running.
    let steps_passed = outcome.failure().is_none();
    if options.mutants
        && steps_passed
        && !cancel.is_cancelled()
        && let Err((weak, kind)) = mutants_verdict(live, &loaded, &plan.run, cancel, run.progress, &mut notes).await
    {
        let mutant_failure = Outcome::Failed {
            verdict: match kind {
                FailureKind::Verdict => "a mutant was not killed as declared".into(),
                _ => "a mutant could not be judged".into(),
            },
            evidence: weak,
            kind,
        };
        result_outcome = match result_outcome {
            // Both said: the snapshot's problem first, the mutants' after it.
            Outcome::Failed { verdict, evidence, kind: first } => Outcome::Failed {
                verdict,
                evidence: format!("{evidence}\n\nmutants:\n{}", outcome_evidence(&mutant_failure)),
                kind: first,
            },
            _ => mutant_failure,
        };
    }
    let failed = matches!(result_outcome, Outcome::Failed { .. });
    let retryable = failed && outcome.failure().is_some() && options.expected.is_none();
    if !options.keep_namespaces
        && let Err(e) = live.clean_up(&outcome.namespace, &plan.run).await
    {
        tracing::warn!("namespace {} not deleted: {}", outcome.namespace, crate::names::printable(&e.to_string()));
    }
    let result = ScenarioResult {
        scenario: planned.name.clone(),
        mesh: mesh.to_string(),
        outcome: result_outcome,
        duration_ms: 0,
        artifacts: failed.then_some(dir),
        notes,
        phases: outcome
            .steps
            .iter()
            .map(|s| crate::report::PhaseTime { phase: s.step.clone(), ms: s.duration_ms })
            .collect(),
        load_windows: outcome.windows.clone(),
    };
    (result, retryable)
}

/// Why a scenario that upgrades the mesh cannot run in this run: it is not the run's only
/// scenario (the mesh it leaves behind is not the profile's, for every scenario after it), or
/// the run has no upgrade to make.
fn upgrade_not_possible(
    scenario: &crate::scenario::Scenario,
    plan: &Plan,
    live: &crate::runner::execute::Live,
) -> Option<String> {
    if !scenario.steps.iter().any(crate::scenario::Step::upgrades) {
        return None;
    }
    if plan.scenarios.len() > 1 {
        return Some(format!(
            "it moves the mesh to another release for every scenario after it: run it alone (`--scenario {}`), as the nightly's upgrade jobs do",
            scenario.name.value
        ));
    }
    let parts: Vec<_> = scenario.steps.iter().flat_map(crate::scenario::Step::upgrade_parts).collect();
    parts.into_iter().find(|part| !live.upgrades.contains_key(part)).map(|part| {
        format!(
            "this profile cannot upgrade {part}: versions.toml pins nothing newer for the same stack, the mesh has no \
             such strategy, or the cluster is not the harness's own"
        )
    })
}

/// What `scenario` needs that a `--no-install` run does not have, as the reason to skip it.
/// Discovery finds Kong and the mesh only; the trace collector is the harness's own (a Jaeger
/// it installs, and the tracing configuration of the mesh and Kong that points at it), so a
/// scenario covering `tracing` or with a `trace` step cannot be judged on such a cluster, nor
/// one routing by HTTPRoute through the Gateway the harness installs (`gateway-api`).
pub fn missing_without_install(scenario: &crate::scenario::Scenario) -> Option<String> {
    let traces = scenario.covers.contains(&crate::scenario::Tag::Tracing)
        || scenario.steps.iter().any(|s| matches!(s, crate::scenario::Step::Trace(_)));
    if traces {
        return Some("needs the harness's trace collector, which --no-install does not install".to_owned());
    }
    // The user's own Kong or mesh is never restarted to test it.
    if let Some(target) = scenario.steps.iter().find_map(crate::scenario::Step::restarts_shared) {
        return Some(format!("restarts {target}, which on a cluster of yours the harness does not disrupt"));
    }
    // Its HTTPRoutes attach to the Gateway the harness installs with Kong (`kong/gateway.yaml`),
    // which a cluster of the user's need not have.
    scenario.covers.contains(&crate::scenario::Tag::GatewayApi).then(|| {
        "needs Kong's Gateway `kong` as the harness installs it, which --no-install does not install".to_owned()
    })
}

/// Compare a passing scenario's observations with its stored snapshot: a difference is the
/// scenario's failure; a new or updated snapshot is a note.
fn snapshot_verdict(
    catalog: &crate::scenario::Catalog,
    outcome: &crate::runner::execute::ScenarioRun,
    mesh: crate::scenario::Mesh,
    mode: crate::snapshot::SnapshotMode,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    use crate::snapshot::SnapshotOutcome;
    let observations = serde_json::to_value(&outcome.observations).unwrap_or_default();
    let dir = catalog.project.snapshots_dir();
    match crate::snapshot::check_scenario_snapshot(&dir, &outcome.scenario, mesh, &observations, mode) {
        Ok(SnapshotOutcome::Changed { pending, diff }) => Err(format!(
            "the observations differ from the stored snapshot (review with `cargo insta review`, or rerun with --update-snapshots; new version in {}):\n{diff}",
            pending.display()
        )),
        Ok(SnapshotOutcome::New { pending }) if mode == crate::snapshot::SnapshotMode::Require => Err(format!(
            "no stored snapshot, and in CI a missing snapshot fails (insta's semantics): review {} \
             (the nightly uploads it as an artifact) and commit it as `{}`",
            pending.display(),
            pending.with_extension("").with_extension("snap").display()
        )),
        Ok(SnapshotOutcome::New { pending }) => {
            notes.push(format!("new snapshot written for review: {} (`cargo insta review`)", pending.display()));
            Ok(())
        }
        Ok(SnapshotOutcome::Updated { path }) => {
            notes.push(format!("snapshot updated: {}", path.display()));
            Ok(())
        }
        Ok(SnapshotOutcome::Matched) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn outcome_evidence(outcome: &crate::report::Outcome) -> &str {
    match outcome {
        crate::report::Outcome::Failed { evidence, .. } => evidence,
        _ => "",
    }
}

/// Run a passing scenario's mutants on its mesh: each must be killed at its declared step.
/// Kills are notes; anything else is returned, one line per mutant, with its kind: a verdict
/// when a mutant survived or was killed elsewhere (the scenario's checks are weak), an error
/// when the harness could not apply, judge or restore one.
async fn mutants_verdict(
    live: &crate::runner::execute::Live,
    loaded: &crate::scenario::LoadedScenario,
    run: &str,
    cancel: &CancellationToken,
    progress: &Progress,
    notes: &mut Vec<String>,
) -> Result<(), (String, FailureKind)> {
    use crate::runner::execute::MutantOutcome;
    let mesh = live.mesh;
    let scenario = &loaded.scenario.name.value;
    let mut weak = Vec::new();
    let mut kind = FailureKind::Error;
    for mutant in loaded.scenario.mutants.iter().filter(|m| m.applies_to(mesh)) {
        let phase = progress.phase(&format!("mutant {} of {scenario}", mutant.name));
        let outcome = live.run_mutant(loaded, mutant, run, cancel).await;
        let weak_check = match &outcome {
            MutantOutcome::Survived => true,
            MutantOutcome::Killed { at, expected, .. } => at != expected,
            _ => false,
        };
        if weak_check {
            kind = FailureKind::Verdict;
        }
        let verdict = match outcome {
            MutantOutcome::Killed { at, expected, .. } if at == expected => {
                phase.finish(true, &format!("killed at step {at}"));
                notes.push(format!("mutant {} killed at step {at}, as declared", mutant.name));
                continue;
            }
            MutantOutcome::Killed { at, expected, detail } => {
                format!("mutant {} was killed at step {at}, not at step {expected} as declared: {detail}", mutant.name)
            }
            MutantOutcome::Unjudged { at, detail } => format!(
                "mutant {}: step {at} could not be judged (the harness failed, not the check), so the mutant is \
                 neither killed nor survived: {detail}",
                mutant.name
            ),
            MutantOutcome::Survived => format!(
                "mutant {} survived: steps 1..={} passed with the change ({}), so that check cannot fail this way",
                mutant.name, mutant.fails_at, mutant.why
            ),
            MutantOutcome::NotApplied(e) => format!("mutant {} could not be applied: {e}", mutant.name),
            MutantOutcome::NotRestored(e) => {
                format!("mutant {}: the scenario's fixtures could not be restored: {e}", mutant.name)
            }
        };
        phase.finish(false, &verdict);
        weak.push(verdict);
    }
    if weak.is_empty() { Ok(()) } else { Err((weak.join("\n"), kind)) }
}
