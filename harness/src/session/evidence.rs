//! Failure evidence from the cluster: a scenario's (logs, events, objects, a repro bundle), the
//! environment's, and the Helm values in force. Best effort and bounded.

use crate::runner::outcome::FailureKind;
use std::path::Path;

use crate::cluster::{self};
use crate::command::Runner;
use crate::plan::Plan;
use crate::profile::Profile;

use super::Environment;
use super::reports::report_of;

/// Kong's, the collector's and the mesh's namespaces: where environment evidence lives.
fn system_namespaces(profile: &Profile) -> Vec<String> {
    let mut namespaces = vec![profile.versions.kong.namespace.clone(), profile.versions.tracing.namespace.clone()];
    namespaces.extend(profile.mesh().system_namespace().map(str::to_owned));
    namespaces
}

/// Failure evidence of one scenario: logs, events and objects (report::diagnostics), and a
/// repro bundle that reproduces it.
pub(super) async fn collect_evidence<R: Runner>(
    catalog: &crate::scenario::Catalog,
    env: &Environment<R>,
    plan: &Plan,
    profile: &Profile,
    planned: &crate::plan::ScenarioPlan,
    failed_at: Option<(usize, &str)>,
    dir: &Path,
) {
    use crate::report::diagnostics::{Limits, ObjectRef, Target, collect};
    let mut namespaces = vec![planned.namespace.clone()];
    // `--no-install`: the cluster is the user's. Besides the scenario's own namespace, only
    // Kong's, which discovery found, is looked at, and only read.
    let read_only = match plan.discover {
        Some(_) => vec![profile.versions.kong.namespace.clone()],
        None => vec![],
    };
    match plan.discover {
        Some(_) => namespaces.extend(read_only.iter().cloned()),
        None => namespaces.extend(system_namespaces(profile)),
    }
    let objects = planned
        .objects
        .iter()
        .map(|o| ObjectRef {
            namespace: o.object.namespace.clone().or_else(|| Some(planned.namespace.clone())),
            ..o.object.clone()
        })
        .collect();
    let exec = crate::report::diagnostics::KubeExec(env.client.clone());
    let target = Target { namespaces, objects, read_only };
    let collected = bounded(collect(env.client.clone(), &exec, &target, dir, Limits::default())).await;
    for e in &collected.errors {
        tracing::warn!("diagnostics of {}: {}", planned.name, crate::names::printable(&e.to_string()));
    }
    let values = crate::stack::values::in_force(&plan.environment);
    match crate::scenario::bundle::export(catalog, &planned.name, profile, values) {
        Ok(mut bundle) => {
            // The bundle reproduces what was seen: the step that failed, failing again.
            if let Some((step, detail)) = failed_at.filter(|(n, _)| *n > 0) {
                bundle.expected = crate::scenario::bundle::Expected {
                    outcome: crate::scenario::bundle::ExpectedOutcome::Fails,
                    step: Some(step),
                    // What failed, not only where: a later failure of another kind at the same
                    // step is not this bug reproducing.
                    detail: crate::scenario::bundle::failure_signature(detail),
                    note: format!("failed in run {}: {}", plan.run, crate::diagnostic::escape_controls(detail)),
                };
            }
            let _ = std::fs::write(dir.join("repro.yaml"), bundle.to_yaml());
        }
        Err(e) => tracing::warn!("no repro bundle for {}: {}", planned.name, crate::names::printable(&e.to_string())),
    }
}

/// `helm get values` of every release of the plan (what was in force, credentials redacted)
/// into `dir/<release>.values.yaml`; best effort.
pub(super) async fn helm_values_in_force<R: Runner>(env: &Environment<R>, plan: &Plan, dir: &Path) {
    // All releases together within the budget's reserve for them, not each within its own.
    let bound = crate::budget::HELM_VALUES_RESERVE;
    if tokio::time::timeout(bound, helm_values_unbounded(env, plan, dir)).await.is_err() {
        tracing::warn!("helm get values did not finish within {}s; what is missing is not collected", bound.as_secs());
    }
}

async fn helm_values_unbounded<R: Runner>(env: &Environment<R>, plan: &Plan, dir: &Path) {
    let _ = std::fs::create_dir_all(dir);
    for action in &plan.environment {
        let crate::stack::Action::Helm(release) = action else { continue };
        let args =
            ["get", "values", &release.name, "--namespace", &release.namespace, "--output", "json", "--kubeconfig"]
                .map(str::to_owned)
                .into_iter()
                .chain([env.access.kubeconfig.display().to_string()]);
        let inv = crate::stack::install::helm_invocation(&env.helm, args, std::time::Duration::from_secs(60), &env.run);
        let file = dir.join(format!("{}.values.yaml", release.name));
        let text = match env.runner.run(&inv).await {
            Ok(out) => match serde_json::from_str::<serde_json::Value>(&out.stdout) {
                Ok(mut values) => {
                    crate::report::diagnostics::redact_values(&mut values);
                    serde_saphyr::to_string(&values).unwrap_or_default()
                }
                Err(e) => format!("# helm printed what is not JSON: {e}\n"),
            },
            Err(e) => format!("# not available: {e}\n"),
        };
        let _ = std::fs::write(file, text);
    }
}

/// Diagnostics never hold up teardown for long: what is not collected within
/// [`cluster::DIAGNOSTICS_BOUND`] is said, not waited for.
async fn bounded(
    collecting: impl std::future::Future<Output = crate::report::diagnostics::Collected>,
) -> crate::report::diagnostics::Collected {
    tokio::time::timeout(cluster::DIAGNOSTICS_BOUND, collecting).await.unwrap_or_else(|_| {
        crate::report::diagnostics::Collected {
            errors: vec![format!(
                "collection stopped after {}s; what was written is kept",
                cluster::DIAGNOSTICS_BOUND.as_secs()
            )],
            ..Default::default()
        }
    })
}
/// The report of a run whose environment failed: the environment as a failed entry (with the
/// system namespaces' logs, events and the Helm values in force under `artifacts/environment/`),
/// every scenario skipped with the reason.
pub async fn environment_failed<R: Runner>(
    env: &Environment<R>,
    plan: &Plan,
    profile: &Profile,
    error: &str,
    deadline: Option<&crate::budget::Deadline>,
) -> crate::report::RunReport {
    use crate::report::diagnostics::{Limits, Target, collect};
    use crate::report::{Outcome, ScenarioResult};
    let dir = env.run.artifacts().join("environment");
    let mut notes = Vec::new();
    if plan.discover.is_some() {
        // `--no-install` on the user's cluster: discovery (or its verdict) failed, so the
        // namespaces the harness would look in are assumptions, not what the cluster runs. An
        // existing cluster is never exec'd into or read on a guess; the error is the evidence.
        notes.push(
            "no diagnostics collected: with --no-install the cluster is only read where discovery found Kong, \
             and discovery did not succeed"
                .to_owned(),
        );
    } else {
        let namespaces = system_namespaces(profile);
        let exec = crate::report::diagnostics::KubeExec(env.client.clone());
        let target = Target { namespaces, ..Target::default() };
        let collected = bounded(collect(env.client.clone(), &exec, &target, &dir, Limits::default())).await;
        for e in &collected.errors {
            tracing::warn!("environment diagnostics: {}", crate::names::printable(&e.to_string()));
        }
        helm_values_in_force(env, plan, &dir.join("helm")).await;
    }
    let mesh = profile.mesh().to_string();
    let (verdict, skipped) = match deadline.filter(|d| d.passed()) {
        Some(d) => (format!("the environment was not ready when {}", d.reason()), d.reason()),
        None => ("the environment did not become ready".to_owned(), "the environment failed first".to_owned()),
    };
    let mut results = vec![ScenarioResult {
        scenario: "environment".into(),
        mesh: mesh.clone(),
        outcome: Outcome::Failed { verdict, evidence: error.to_owned(), kind: FailureKind::Error },
        duration_ms: 0,
        artifacts: plan.discover.is_none().then_some(dir),
        notes,
        phases: Vec::new(),
        load_windows: Vec::new(),
    }];
    results.extend(plan.scenarios.iter().map(|s| ScenarioResult {
        scenario: s.name.clone(),
        mesh: mesh.clone(),
        outcome: Outcome::Skipped { reason: skipped.clone() },
        duration_ms: 0,
        artifacts: None,
        notes: Vec::new(),
        phases: Vec::new(),
        load_windows: Vec::new(),
    }));
    report_of(plan, profile, results)
}
