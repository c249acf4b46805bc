//! The scenario suite: one test per scenario x mesh.
//!
//! - `offline::<scenario>::<mesh>` runs everywhere: the file parses, its templates resolve and
//!   its fixtures exist and render for that mesh.
//! - `live::<scenario>::<mesh>` needs a cluster with the mesh's stack. It is reported as
//!   ignored, with the reason, unless `E2E_LIVE=1` is set; then `E2E_RUN` names a kept cluster
//!   (`cargo xtask up <mesh>` prints it), the scenario runs against it and its normalised
//!   observations are compared with `scenarios/snapshots/<scenario>__<mesh>.snap` by
//!   `harness::snapshot::check_scenario_snapshot`, the one comparison `cargo xtask e2e` makes too.

use std::path::Path;

use harness::project::Project;
use harness::scenario::{Catalog, Mesh, Tag};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

const LIVE_ENV: &str = "E2E_LIVE";
const RUN_ENV: &str = "E2E_RUN";

fn main() {
    harness::tls::install_ring_provider();
    let args = Arguments::from_args();
    let trials = match trials() {
        Ok(trials) => trials,
        Err(e) => vec![Trial::test("catalog", move || Err(Failed::from(e.clone())))],
    };
    libtest_mimic::run(&args, trials).exit();
}

fn trials() -> Result<Vec<Trial>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace root")?;
    let catalog = Catalog::open(Project::at(root)).map_err(|e| e.to_string())?;
    let live = std::env::var(LIVE_ENV).is_ok_and(|v| v == "1");
    let mut trials = Vec::new();
    // Every shipped transcript replays to its expected verdict (docs/transcripts.md).
    let transcripts = root.join("scenarios").join("transcripts");
    let files = harness::replay::files(std::slice::from_ref(&transcripts)).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err(format!("no transcripts under {}", transcripts.display()));
    }
    for file in files {
        let name = file.strip_prefix(&transcripts).unwrap_or(&file).with_extension("").display().to_string();
        trials.push(Trial::test(format!("transcript::{name}"), move || replay(&file)));
    }
    trials.push(Trial::test("transcript::coverage", move || transcript_coverage(&transcripts)));
    let mutated = catalog.clone();
    trials.push(Trial::test("offline::policy-scenarios-declare-mutants", move || mutants_declared(&mutated)));
    let covering = catalog.clone();
    trials.push(Trial::test("offline::catalog-covers-every-tag-on-every-mesh", move || coverage(&covering)));
    for file in catalog.files().map_err(|e| e.to_string())? {
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_owned();
        let meshes = match catalog.meshes_of(&file) {
            Ok(meshes) => meshes,
            Err(e) => {
                // The scenario does not even parse: one failing test says where.
                let message = e.to_string();
                trials.push(Trial::test(format!("offline::{name}"), move || Err(Failed::from(message.clone()))));
                continue;
            }
        };
        for mesh in meshes {
            let (c, f) = (catalog.clone(), file.clone());
            trials.push(Trial::test(format!("offline::{name}::{mesh}"), move || offline(&c, &f, mesh)));
            let (c, f) = (catalog.clone(), file.clone());
            trials.push(Trial::ignorable_test(format!("live::{name}::{mesh}"), move || {
                if !live {
                    return Ok(Completion::ignored_with(format!(
                        "live scenarios need Docker and a cluster; set {LIVE_ENV}=1 and {RUN_ENV}=<run of `cargo xtask up {mesh}`> to run them"
                    )));
                }
                live_trial(&c, &f, mesh)
            }));
        }
    }
    Ok(trials)
}

fn replay(file: &Path) -> Result<(), Failed> {
    use harness::replay::FileOutcome;
    match harness::replay::replay_file(file) {
        FileOutcome::Matches { .. } => Ok(()),
        FileOutcome::Differs { expected, got, detail } => {
            Err(Failed::from(format!("expected {expected}, replayed to {got}: {detail}")))
        }
        FileOutcome::Unreadable(e) => Err(Failed::from(e.to_string())),
    }
}

/// The shipped transcripts hold, for Istio and Linkerd, answers that must pass and answers that
/// must fail every traffic check kind.
fn transcript_coverage(dir: &Path) -> Result<(), Failed> {
    use harness::replay::Verdict;
    use harness::scenario::Step;
    let mut seen = std::collections::BTreeSet::new();
    for file in harness::replay::files(&[dir.to_owned()]).map_err(|e| Failed::from(e.to_string()))? {
        let t = harness::replay::load(&file).map_err(|e| Failed::from(e.to_string()))?;
        let mut kinds = Vec::new();
        match &t.step {
            Step::Http(s) => kinds.extend(expect_kinds(&s.expect)),
            Step::FromPod(s) => kinds.extend(expect_kinds(&s.expect)),
            Step::Split(_) => kinds.push("split"),
            Step::Metrics(_) => kinds.push("metrics"),
            Step::Trace(_) => kinds.push("trace"),
            Step::Load(_) => kinds.push("load"),
            _ => {}
        }
        for kind in kinds {
            // A failing transcript credits only the checks that fail on their own: one failing
            // on mTLS is no failing case of `status`.
            let credited = match t.verdict {
                Verdict::Pass => true,
                Verdict::Fail => fails_alone(&t, &file, kind)?,
            };
            if credited {
                seen.insert((t.mesh, kind, t.verdict == Verdict::Pass));
            }
        }
    }
    let mut missing = Vec::new();
    for mesh in [Mesh::Istio, Mesh::Linkerd] {
        for kind in ["status", "refused", "mtls", "split", "metrics", "load"] {
            for pass in [true, false] {
                if !seen.contains(&(mesh, kind, pass)) {
                    missing.push(format!("{kind} {} on {mesh}", if pass { "passing" } else { "failing" }));
                }
            }
        }
    }
    // Ambient: the denial forms of ztunnel and waypoints, ztunnel's metrics (no `mtls`: ambient
    // adds no identity header, and the suite refuses such a step there).
    let ambient = [(Mesh::IstioAmbient, "refused"), (Mesh::IstioAmbient, "metrics")];
    for (mesh, kind) in
        [(Mesh::Istio, "backend"), (Mesh::Istio, "trace"), (Mesh::None, "headers")].into_iter().chain(ambient)
    {
        for pass in [true, false] {
            if !seen.contains(&(mesh, kind, pass)) {
                missing.push(format!("{kind} {} on {mesh}", if pass { "passing" } else { "failing" }));
            }
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(Failed::from(format!("no transcript for: {}", missing.join(", ")))) }
}

/// Whether the check `kind` of a failing transcript fails by itself: the transcript replayed
/// with its step's expectation cut down to that check. Step kinds with one check fail as a whole.
fn fails_alone(t: &harness::replay::Transcript, file: &Path, kind: &str) -> Result<bool, Failed> {
    use harness::scenario::{Expect, Step};
    let only = |e: &Expect| {
        let mut o = Expect::default();
        match kind {
            "status" => o.status = e.status.clone(),
            "refused" => o.refused = e.refused,
            "headers" => o.headers = e.headers.clone(),
            "backend" => o.backend = e.backend.clone(),
            "mtls" => o.mtls = e.mtls.clone(),
            _ => return e.clone(),
        }
        o
    };
    let mut alone = t.clone();
    match &mut alone.step {
        Step::Http(s) => s.expect = only(&s.expect),
        Step::FromPod(s) => s.expect = only(&s.expect),
        _ => {}
    }
    let replayed = harness::replay::judge(&alone, file).map_err(|e| Failed::from(e.to_string()))?;
    Ok(replayed.verdict == harness::replay::Verdict::Fail)
}

fn expect_kinds(e: &harness::scenario::Expect) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if e.status.is_some() {
        kinds.push("status");
    }
    if e.refused {
        kinds.push("refused");
    }
    if !e.headers.is_empty() {
        kinds.push("headers");
    }
    if e.backend.is_some() {
        kinds.push("backend");
    }
    if e.mtls.is_some() {
        kinds.push("mtls");
    }
    kinds
}

/// A scenario with a negative or policy assertion (a `refused` expectation, or covering authz,
/// header routing, rate limits, JWT, splits or a seed-as-written control) declares a mutant on
/// each of its meshes, so `e2e --mutants` shows its checks can fail.
fn mutants_declared(catalog: &Catalog) -> Result<(), Failed> {
    use harness::scenario::Step;
    let policy_tags = [Tag::Authz, Tag::HeaderRouting, Tag::RateLimit, Tag::Jwt, Tag::Split, Tag::SeedAsWritten];
    let mut missing = Vec::new();
    for file in catalog.files().map_err(|e| Failed::from(e.to_string()))? {
        for checked in catalog.check(&file, "offline").map_err(|e| Failed::from(e.to_string()))? {
            let scenario = &checked.scenario.scenario;
            let refuses = scenario.steps.iter().any(|s| match s {
                Step::Http(h) => h.expect.refused,
                Step::FromPod(p) => p.expect.refused,
                _ => false,
            });
            let policy = refuses || scenario.covers.iter().any(|t| policy_tags.contains(t));
            if policy && !scenario.mutants.iter().any(|m| m.applies_to(checked.mesh)) {
                missing.push(format!("{} on {}", scenario.name.value, checked.mesh));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failed::from(format!("policy scenarios without a mutant: {}", missing.join(", "))))
    }
}

/// Every capability tag has at least one scenario on Istio and on Linkerd.
fn coverage(catalog: &Catalog) -> Result<(), Failed> {
    let entries = catalog.entries().map_err(|e| Failed::from(e.to_string()))?;
    let mut missing = Vec::new();
    // Every capability on both sidecar meshes (a waypoint exists only in Istio's ambient
    // mode), and what ambient changes on istio-ambient: identity without XFCC, L4 and L7
    // policy, the waypoint, Kong's routes of both kinds.
    let sidecar_tags = Tag::ALL.into_iter().filter(|t| *t != Tag::Waypoint);
    let wanted = [Mesh::Istio, Mesh::Linkerd]
        .into_iter()
        .flat_map(|mesh| sidecar_tags.clone().map(move |tag| (mesh, tag)))
        .chain([Tag::Mtls, Tag::Authz, Tag::Waypoint, Tag::Ingress, Tag::GatewayApi].map(|t| (Mesh::IstioAmbient, t)));
    for (mesh, tag) in wanted {
        if !entries.iter().any(|e| e.meshes.contains(&mesh) && e.covers.contains(&tag)) {
            missing.push(format!("{tag} on {mesh}"));
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(Failed::from(format!("no scenario covers {}", missing.join(", ")))) }
}

/// The scenario loads for `mesh`, and its fixtures render to at least one object each.
fn offline(catalog: &Catalog, file: &Path, mesh: Mesh) -> Result<(), Failed> {
    let checked = catalog.check_mesh(file, mesh, "offline").map_err(|e| Failed::from(e.to_string()))?;
    if checked.manifests.is_empty() && checked.scenario.fixture_refs().next().is_some() {
        return Err(Failed::from("fixtures rendered to no objects"));
    }
    Ok(())
}

/// Run one scenario against the kept cluster of `E2E_RUN`.
fn live_trial(catalog: &Catalog, file: &Path, mesh: Mesh) -> Result<Completion, Failed> {
    let run = std::env::var(RUN_ENV).map_err(|_| {
        Failed::from(format!("{LIVE_ENV}=1 needs {RUN_ENV}: the run id of a cluster from `cargo xtask up {mesh}`"))
    })?;
    let dir = harness::cluster::RunDir { run: run.clone(), path: catalog.project.run_dir(&run) };
    let state =
        dir.read_state().map_err(|e| Failed::from(format!("cannot read {}: {e}", dir.state_file().display())))?;
    if state.mesh != mesh.as_str() {
        return Ok(Completion::ignored_with(format!("the cluster of run {run} runs {}, not {mesh}", state.mesh)));
    }
    let profile = catalog
        .versions
        .profile(&state.profile, &catalog.project.versions_file())
        .map_err(|e| Failed::from(e.to_string()))?;
    // A run id of its own per suite process, so repeated suites on one cluster do not collide.
    let suite_run = format!("t{}", std::process::id());
    let ctx = harness::scenario::RunContext::new(&suite_run, mesh);
    let fixtures_dir = catalog.project.fixtures_dir();
    let loaded =
        harness::scenario::load(file, &fixtures_dir, &ctx, &profile).map_err(|e| Failed::from(e.to_string()))?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Failed::from(e.to_string()))?;
    let outcome = runtime.block_on(async {
        let client = harness::session::client_for(&dir.kubeconfig()).await.map_err(|e| Failed::from(e.to_string()))?;
        let proxy = state.proxy.clone().unwrap_or_default();
        let live = harness::runner::execute::Live::for_profile(client, &profile, proxy, fixtures_dir.clone());
        let outcome = live.run(&loaded, &suite_run, &tokio_util::sync::CancellationToken::new()).await;
        if let Err(e) = live.clean_up(&outcome.namespace, &suite_run).await {
            eprintln!("namespace {} not deleted: {e}", outcome.namespace);
        }
        Ok::<_, Failed>(outcome)
    })?;
    if let Some(step) = outcome.failure() {
        return Err(Failed::from(format!("step `{}` failed:\n{}", step.step, step.detail)));
    }
    if loaded.scenario.snapshot.enabled {
        let observations = serde_json::to_value(&outcome.observations).map_err(|e| Failed::from(e.to_string()))?;
        // The same comparison `cargo xtask e2e` makes: a new snapshot is written for review, a
        // different one fails with its diff.
        let dir = catalog.project.snapshots_dir();
        let mode = harness::snapshot::SnapshotMode::for_run(false);
        match harness::snapshot::check_scenario_snapshot(&dir, &outcome.scenario, mesh, &observations, mode) {
            Ok(harness::snapshot::SnapshotOutcome::Changed { diff, pending }) => {
                return Err(Failed::from(format!(
                    "observations differ from the snapshot (new version in {}):\n{diff}",
                    pending.display()
                )));
            }
            Ok(harness::snapshot::SnapshotOutcome::New { pending }) => {
                if mode == harness::snapshot::SnapshotMode::Require {
                    return Err(Failed::from(format!(
                        "no stored snapshot; in CI a missing snapshot fails: review {} and commit it",
                        pending.display()
                    )));
                }
                eprintln!("new snapshot for review: {}", pending.display());
            }
            Ok(_) => {}
            Err(e) => return Err(Failed::from(e.to_string())),
        }
    }
    Ok(Completion::Completed)
}
