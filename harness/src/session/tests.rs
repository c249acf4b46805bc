use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::*;
use crate::cluster::{Access, HostPorts, Phase, Provider, RunDir, State};
use crate::command::Process;
use crate::plan::Plan;
use crate::profile::Profile;
use crate::progress::Progress;
use crate::runner::outcome::FailureKind;
use crate::testing::{Reply, echo_cluster, kube_mock, kube_status, serve};

/// An environment around `client` whose run directory is `<work>/e2e/<run>`; no helm binary.
fn environment(work: &Path, run: &str, mesh: &str, client: kube::Client, proxy: String) -> Environment {
    let run_dir = RunDir::create(&work.join("e2e"), run).unwrap();
    Environment {
        state: State {
            run: run.into(),
            provider: "existing".into(),
            cluster: "dev".into(),
            mesh: mesh.into(),
            profile: mesh.into(),
            fingerprint: String::new(),
            phase: Phase::Ready,
            proxy: None,
            leftovers: vec![],
            updated: 0,
        },
        provider: Provider::Existing { context: "dev".into(), source: PathBuf::new(), proxy: String::new() },
        access: Access { kubeconfig: run_dir.kubeconfig(), proxy },
        client,
        helm: work.join("no-helm-here"),
        reused: false,
        runner: Process,
        run: run_dir,
    }
}

/// A run of two scenarios against the mock cluster and a stand-in Kong, where the API server
/// refuses jwt-auth's namespace: ingress-basic passes, jwt-auth fails with its evidence.
#[tokio::test]
async fn a_failed_scenario_leaves_its_evidence_and_the_report_says_where() {
    let (catalog, profile, plan) = istio_plan_of(&["ingress-basic", "jwt-auth"]);
    let kong = serve(|head| {
        let mut upstream = head.clone();
        let ns = "ingress-basic-r1test";
        upstream.headers.insert("host".into(), format!("echo.{ns}.svc.cluster.local"));
        upstream.headers.insert("x-kong-request-id".into(), "1".into());
        Reply::json(200, crate::testing::echo_body(&upstream, "echo-v1-6d8f9-abcde", ns))
    })
    .await;
    let (client, _) = kube_mock(|req| match (req.method.as_str(), req.path.as_str()) {
        ("PATCH", p) if p.ends_with("/namespaces/jwt-auth-r1test") => kube_status(403, "Forbidden"),
        _ => crate::testing::echo_cluster(req),
    });
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
    let progress = Progress::lines(Box::new(std::io::sink()));
    let options = ScenarioOptions { keep_namespaces: true, ..Default::default() };
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
    let outcomes: Vec<(String, bool)> = report
        .results
        .iter()
        .map(|r| (r.scenario.clone(), matches!(r.outcome, crate::report::Outcome::Passed)))
        .collect();
    assert_eq!(outcomes, [("ingress-basic".to_owned(), true), ("jwt-auth".to_owned(), false)]);
    let failed = &report.results[1];
    let dir = failed.artifacts.clone().expect("a failed scenario names its artifacts");
    for file in ["steps.json", "observations.yaml", "repro.yaml", "events/jwt-auth-r1test.txt"] {
        assert!(dir.join(file).is_file(), "{file} in {}", dir.display());
    }
    // The passing scenario's traffic steps left transcripts that replay to their verdicts.
    let transcripts = crate::replay::files(&[env.run.artifacts().join("ingress-basic/transcripts")]).unwrap();
    assert!(!transcripts.is_empty());
    for t in &transcripts {
        let outcome = crate::replay::replay_file(t);
        assert!(matches!(outcome, crate::replay::FileOutcome::Matches { .. }), "{}: {outcome:?}", t.display());
    }
    let crate::report::Outcome::Failed { evidence, .. } = &failed.outcome else { unreachable!() };
    assert!(evidence.contains("creating namespace jwt-auth-r1test"), "{evidence}");
    // Helm could not be asked (no binary): the file says so instead of the run failing.
    let values = std::fs::read_to_string(env.run.artifacts().join("helm/kong.values.yaml")).unwrap();
    assert!(values.starts_with("# not available"), "{values}");
    assert!(report.rerun.starts_with("cargo xtask e2e istio --profile istio"));
}

/// `repro run`'s verdict is the bundle's `expected`: a scenario whose steps all pass is
/// "not reproduced" when the bundle expects step 2 to fail, and passes when it expects that.
#[tokio::test]
async fn a_repro_run_is_judged_by_what_the_bundle_expects() {
    use crate::scenario::bundle::{Expected, ExpectedOutcome};
    let (catalog, profile, plan) = istio_plan_of(&["ingress-basic"]);
    let kong = crate::testing::kong_for_any_run().await;
    let fails_at_2 = Expected { outcome: ExpectedOutcome::Fails, step: Some(2), detail: None, note: String::new() };
    // The namespace refused: "step 0" in the run's records, which no bundle step names.
    let refused = |req: &crate::testing::KubeRequest| match (req.method.as_str(), req.path.as_str()) {
        ("PATCH", p) if p.ends_with("/namespaces/ingress-basic-r1test") => kube_status(403, "Forbidden"),
        _ => crate::testing::echo_cluster(req),
    };
    {
        let (client, _) = kube_mock(refused);
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let options =
            ScenarioOptions { keep_namespaces: true, expected: Some(fails_at_2.clone()), ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        let crate::report::Outcome::Failed { evidence, .. } = &report.results[0].outcome else {
            panic!("{:?}", report.results[0].outcome)
        };
        assert!(
            evidence.starts_with("the bundle expects step 2 to fail; the namespace and fixtures failed instead"),
            "{evidence}"
        );
        // The bundle written for the failure cannot name step 0: it keeps `passes`.
        let bundle = std::fs::read_to_string(env.run.artifacts().join("ingress-basic/repro.yaml")).unwrap();
        assert!(bundle.contains("outcome: passes"), "{bundle}");
    }
    for (expected, passed) in [(Expected::passes(), true), (fails_at_2, false)] {
        let (client, _) = kube_mock(echo_cluster);
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let options = ScenarioOptions { keep_namespaces: true, expected: Some(expected.clone()), ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        let result = &report.results[0];
        match (&result.outcome, passed) {
            (crate::report::Outcome::Passed, true) => {
                assert_eq!(result.notes, ["every step passed, as the bundle expects"]);
            }
            (crate::report::Outcome::Failed { verdict, evidence, .. }, false) => {
                assert_eq!(verdict, "not as the bundle expects (step 2 fails)");
                assert_eq!(evidence, "the bundle expects step 2 to fail; every step passed: not reproduced");
            }
            (other, _) => panic!("{expected}: {other:?}"),
        }
    }
}

/// A bundle whose bug shows again (step 2 fails as it expects, with its detail) is the
/// run's success, and still never a clean pass: `reproduced` in the result, a JUnit failure
/// of type `reproduced`, and the summary says so.
#[tokio::test(start_paused = true)]
async fn a_reproduced_bug_is_reported_as_reproduced_not_as_a_pass() {
    use crate::scenario::bundle::{Expected, ExpectedOutcome};
    let (catalog, profile, plan) = istio_plan_of(&["ingress-basic"]);
    let kong = serve(|_| Reply::Respond {
        status: 503,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "no healthy upstream".into(),
    })
    .await;
    let (client, _) = kube_mock(echo_cluster);
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
    let expected = Expected {
        outcome: ExpectedOutcome::Fails,
        step: Some(2),
        detail: Some("status 503 is not 200".into()),
        note: String::new(),
    };
    let options = ScenarioOptions { keep_namespaces: true, expected: Some(expected), ..Default::default() };
    let progress = Progress::lines(Box::new(std::io::sink()));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
    let crate::report::Outcome::Reproduced { verdict, evidence } = &report.results[0].outcome else {
        panic!("{:?}", report.results[0].outcome)
    };
    assert_eq!(verdict, "reproduced: step 2 failed as expected");
    assert!(evidence.contains("status 503 is not 200"), "{evidence}");
    assert!(report.passed(), "the run showed what the bundle expects");
    let junit = crate::report::junit(&report).unwrap();
    assert!(junit.contains("failures=\"1\"") && junit.contains("type=\"reproduced\""), "{junit}");
    let summary = crate::report::markdown(&report);
    assert!(summary.contains("(bug reproduced)") && summary.contains("**reproduced**"), "{summary}");
    assert!(!summary.contains("1 passed"), "{summary}");
}

/// This checkout's catalog, its istio profile and a plan of run `r1test` holding `names`.
fn istio_plan_of(names: &[&str]) -> (crate::scenario::Catalog, Profile, Plan) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let catalog = crate::scenario::Catalog::open(crate::project::Project::at(&root)).unwrap();
    let profile = catalog.versions.profile("istio", Path::new("versions.toml")).unwrap();
    let mut plan = crate::plan::build(&catalog, &profile, "r1test", HostPorts { http: 1, https: 2 }).unwrap();
    plan.scenarios.retain(|s| names.contains(&s.name.as_str()));
    (catalog, profile, plan)
}

/// `--retries`: a scenario that fails once (its first namespace refused) and passes in a
/// fresh namespace is flaky, with the first failure's evidence and artifacts kept; without
/// retries it fails. (Concurrency and order are the scheduler's, tested in `runner`.)
#[tokio::test]
async fn retried_scenarios_pass_as_flaky_in_a_fresh_namespace_and_keep_the_first_failure() {
    let (catalog, profile, plan) = istio_plan_of(&["ingress-basic"]);
    let kong = crate::testing::kong_for_any_run().await;
    for retries in [0, 1] {
        let (client, asked) = kube_mock(|req| match (req.method.as_str(), req.path.as_str()) {
            ("PATCH", p) if p.ends_with("/namespaces/ingress-basic-r1test") => kube_status(403, "Forbidden"),
            _ => crate::testing::echo_cluster(req),
        });
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let options = ScenarioOptions { keep_namespaces: true, jobs: 2, retries, ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        let first = &report.results[0];
        match (retries, &first.outcome) {
            (0, crate::report::Outcome::Failed { evidence, .. }) => {
                assert!(evidence.contains("creating namespace ingress-basic-r1test"), "{evidence}");
            }
            (1, crate::report::Outcome::Flaky { evidence, .. }) => {
                assert!(evidence.contains("creating namespace ingress-basic-r1test"), "the first failure: {evidence}");
                assert_eq!(first.notes[0], "passed on attempt 2 of 2 after failing");
                let dir = first.artifacts.clone().expect("the first failure's artifacts");
                assert!(dir.ends_with("artifacts/ingress-basic") && dir.join("steps.json").is_file());
                let created = asked
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|r| r.method == "PATCH" && r.path.ends_with("/namespaces/ingress-basic-r1test-2"));
                assert!(created, "the retry ran in a namespace of its own");
                assert!(report.passed(), "flaky is not a failure of the run");
            }
            (r, other) => panic!("retries {r}: {other:?}"),
        }
        assert!(!first.phases.is_empty(), "phases are recorded");
    }
    // Failing every time: the first failure is reported, the count and the last noted.
    let (client, _) = kube_mock(|req| match (req.method.as_str(), req.path.as_str()) {
        ("PATCH", p) if p.contains("/namespaces/ingress-basic-r1test") => kube_status(403, "Forbidden"),
        _ => crate::testing::echo_cluster(req),
    });
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
    let options = ScenarioOptions { keep_namespaces: true, retries: 1, ..Default::default() };
    let progress = Progress::lines(Box::new(std::io::sink()));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
    let r = &report.results[0];
    let crate::report::Outcome::Failed { evidence, .. } = &r.outcome else { panic!("{r:?}") };
    assert!(evidence.contains("creating namespace ingress-basic-r1test:"), "the first: {evidence}");
    assert!(r.notes.iter().any(|n| n.starts_with("failed all 2 attempts; the last: ")), "{:?}", r.notes);

    // Stopped right after the first failure: no retry, and the failure stays a failure
    // (never turned into "skipped").
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let (client, asked) = kube_mock(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("PATCH", p) if p.ends_with("/namespaces/ingress-basic-r1test") => {
            stop.cancel();
            kube_status(403, "Forbidden")
        }
        _ => crate::testing::echo_cluster(req),
    });
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
    let options = ScenarioOptions { keep_namespaces: true, retries: 2, ..Default::default() };
    let progress = Progress::lines(Box::new(std::io::sink()));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &cancel, &progress).await;
    assert!(matches!(report.results[0].outcome, crate::report::Outcome::Failed { .. }), "{:?}", report.results[0]);
    let retried = asked.lock().unwrap().iter().any(|r| r.path.contains("ingress-basic-r1test-2"));
    assert!(!retried, "no attempt after the stop");
}

/// Ctrl-C during a run of scenarios side by side stops every running one at its current
/// step (reported as failed there, with what it was doing) and starts no other (skipped).
#[tokio::test]
async fn an_interrupt_stops_every_running_scenario_and_starts_no_other() {
    let (catalog, profile, plan) = istio_plan_of(&["ingress-basic", "jwt-auth", "rate-limit"]);
    let kong = crate::testing::kong_for_any_run().await;
    let (client, _) = kube_mock(echo_cluster);
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
    let options = ScenarioOptions { keep_namespaces: true, jobs: 2, ..Default::default() };
    let progress = Progress::lines(Box::new(std::io::sink()));
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        stop.cancel();
    });
    let started = std::time::Instant::now();
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &cancel, &progress).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "stopped promptly: {:?}", started.elapsed());
    let outcomes: Vec<(&str, &crate::report::Outcome)> =
        report.results.iter().map(|r| (r.scenario.as_str(), &r.outcome)).collect();
    assert_eq!(outcomes.len(), 3, "in plan order: {outcomes:?}");
    for (name, outcome) in &outcomes[..2] {
        let crate::report::Outcome::Failed { evidence, .. } = outcome else { panic!("{name}: {outcome:?}") };
        assert!(evidence.contains("interrupted"), "{name}: {evidence}");
    }
    assert_eq!(*outcomes[2].1, crate::report::Outcome::Skipped { reason: "interrupted".into() });
}

/// A run whose budget ran out starts no further scenario: each is skipped with the budget's
/// reason (not "interrupted"), and nothing is applied.
#[tokio::test(start_paused = true)]
async fn scenarios_after_the_budget_ran_out_are_skipped_as_out_of_time() {
    let (catalog, profile, plan) = istio_plan_of(&["ingress-basic", "jwt-auth"]);
    let (client, requests) = kube_mock(echo_cluster);
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r1test", "istio", client, "http://127.0.0.1:9".into());
    let cancel = CancellationToken::new();
    let deadline = crate::budget::Budget::parse("20m").unwrap().arm(&cancel);
    tokio::time::sleep(std::time::Duration::from_secs(20 * 60)).await;
    assert!(cancel.is_cancelled());
    let options = ScenarioOptions { keep_namespaces: true, deadline: Some(deadline), ..Default::default() };
    let progress = Progress::lines(Box::new(std::io::sink()));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &cancel, &progress).await;
    let reasons: Vec<String> = report
        .results
        .iter()
        .map(|r| match &r.outcome {
            crate::report::Outcome::Skipped { reason } => reason.clone(),
            other => panic!("{}: {other:?}", r.scenario),
        })
        .collect();
    assert_eq!(reasons, ["the run's time budget of 20m ran out (7m kept for evidence and teardown)"; 2]);
    assert!(requests.lock().unwrap().is_empty(), "nothing is sent to the cluster once the budget ran out");
}

/// Mutants need the steps to pass, not the snapshot: in CI a missing snapshot fails every
/// scenario until the first live run's are committed, and the nightly's `--mutants` must
/// still run them then. A surviving mutant is a verdict; both problems are reported.
#[tokio::test]
async fn mutants_run_when_the_steps_pass_even_if_the_snapshot_is_missing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let project = tempfile::tempdir().unwrap();
    for sub in ["base", "kong", "istio"] {
        let to = project.path().join("fixtures").join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(root.join("fixtures").join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
    std::fs::create_dir_all(project.path().join("scenarios")).unwrap();
    std::fs::copy(root.join("versions.toml"), project.path().join("versions.toml")).unwrap();
    let scenario = std::fs::read_to_string(root.join("scenarios/ingress-basic.yaml")).unwrap()
        + "mutants:\n  - name: no-echo-service\n    why: without the Service Kong has nowhere to go\n    \
           remove: [{kind: Service, name: echo}]\n    fails-at: 2\n";
    std::fs::write(project.path().join("scenarios/ingress-basic.yaml"), scenario).unwrap();
    let catalog = crate::scenario::Catalog::open(crate::project::Project::at(project.path())).unwrap();
    let profile = catalog.versions.profile("istio", Path::new("versions.toml")).unwrap();
    let plan = crate::plan::build(&catalog, &profile, "r3", HostPorts { http: 1, https: 2 }).unwrap();
    // The stand-in Kong answers whatever the cluster holds: the mutant survives.
    let kong = crate::testing::kong_for_any_run().await;
    let answer = |req: &crate::testing::KubeRequest| match req.method.as_str() {
        "DELETE" => (200, serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
        _ => crate::testing::echo_cluster(req),
    };
    let options = ScenarioOptions {
        keep_namespaces: true,
        mutants: true,
        snapshots: Some(crate::snapshot::SnapshotMode::Require),
        ..Default::default()
    };
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r3", "istio", kube_mock(answer).0, format!("http://{kong}"));
    let progress = Progress::lines(Box::new(std::io::sink()));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
    let crate::report::Outcome::Failed { verdict, evidence, kind } = &report.results[0].outcome else {
        panic!("{:?}", report.results[0])
    };
    assert_eq!(verdict, "no stored snapshot (required in CI)");
    assert_eq!(*kind, FailureKind::Verdict);
    assert!(evidence.contains("mutants:") && evidence.contains("mutant no-echo-service survived"), "{evidence}");
}

/// `e2e`'s own snapshot comparison: a passing scenario without a stored snapshot passes and
/// leaves `.snap.new` for review; with a different stored one it fails with the diff.
#[tokio::test]
async fn e2e_compares_snapshots_new_is_noted_and_changed_fails() {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &to.join(entry.file_name()));
            } else {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let project = tempfile::tempdir().unwrap();
    copy(&root.join("fixtures"), &project.path().join("fixtures"));
    std::fs::create_dir_all(project.path().join("scenarios")).unwrap();
    std::fs::copy(root.join("versions.toml"), project.path().join("versions.toml")).unwrap();
    std::fs::copy(root.join("scenarios/ingress-basic.yaml"), project.path().join("scenarios/ingress-basic.yaml"))
        .unwrap();
    let catalog = crate::scenario::Catalog::open(crate::project::Project::at(project.path())).unwrap();
    let profile = catalog.versions.profile("istio", Path::new("versions.toml")).unwrap();
    let plan = crate::plan::build(&catalog, &profile, "r3", HostPorts { http: 1, https: 2 }).unwrap();
    let kong = serve(|head| {
        let mut upstream = head.clone();
        let ns = "ingress-basic-r3";
        upstream.headers.insert("host".into(), format!("echo.{ns}.svc.cluster.local"));
        upstream.headers.insert("x-kong-request-id".into(), "1".into());
        Reply::json(200, crate::testing::echo_body(&upstream, "echo-v1-6d8f9-abcde", ns))
    })
    .await;
    let options = ScenarioOptions {
        keep_namespaces: true,
        snapshots: Some(crate::snapshot::SnapshotMode::Compare),
        ..Default::default()
    };
    let work = tempfile::tempdir().unwrap();
    let progress = Progress::lines(Box::new(std::io::sink()));
    let snap = catalog.project.snapshots_dir().join("ingress-basic__istio.snap");

    let env = environment(work.path(), "r3", "istio", kube_mock(echo_cluster).0, format!("http://{kong}"));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
    assert!(matches!(report.results[0].outcome, crate::report::Outcome::Passed), "{:?}", report.results[0]);
    assert!(report.results[0].notes[0].starts_with("new snapshot written for review"), "{:?}", report.results[0]);
    let pending = snap.with_extension("snap.new");
    let text = std::fs::read_to_string(&pending).unwrap();
    // In CI (insta's semantics) the same missing snapshot fails, and is still left for review.
    let _ = std::fs::remove_file(&pending);
    let strict = ScenarioOptions { snapshots: Some(crate::snapshot::SnapshotMode::Require), ..options.clone() };
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r3", "istio", kube_mock(echo_cluster).0, format!("http://{kong}"));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &strict, &CancellationToken::new(), &progress).await;
    let crate::report::Outcome::Failed { evidence, .. } = &report.results[0].outcome else {
        panic!("{:?}", report.results[0])
    };
    assert!(evidence.starts_with("no stored snapshot, and in CI a missing snapshot fails"), "{evidence}");
    assert_eq!(std::fs::read_to_string(&pending).unwrap(), text);
    // Accept it with a changed status, as if an earlier run had seen another answer.
    std::fs::write(&snap, text.replace("status: 200", "status: 201")).unwrap();

    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r3", "istio", kube_mock(echo_cluster).0, format!("http://{kong}"));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
    let crate::report::Outcome::Failed { verdict, evidence, .. } = &report.results[0].outcome else {
        panic!("{:?}", report.results[0])
    };
    assert_eq!(verdict, "the observations differ from the snapshot");
    assert!(evidence.contains("-  status: 201") && evidence.contains("+  status: 200"), "{evidence}");

    // A retry runs in its own namespace (`...-r3-2`) and still matches the accepted snapshot:
    // observations are normalised with the run id the attempt was rendered with.
    std::fs::write(&snap, &text).unwrap();
    let _ = std::fs::remove_file(&pending);
    let kong = crate::testing::kong_for_any_run().await;
    let refuse_first = |req: &crate::testing::KubeRequest| match (req.method.as_str(), req.path.as_str()) {
        ("PATCH", p) if p.ends_with("/namespaces/ingress-basic-r3") => kube_status(403, "Forbidden"),
        _ => crate::testing::echo_cluster(req),
    };
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r3", "istio", kube_mock(refuse_first).0, format!("http://{kong}"));
    let options = ScenarioOptions { retries: 1, ..options };
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
    assert!(matches!(report.results[0].outcome, crate::report::Outcome::Flaky { .. }), "{:?}", report.results[0]);
    assert!(!pending.exists(), "the retry matched the snapshot: nothing new to review");
}

#[tokio::test]
async fn an_environment_failure_fails_the_run_and_skips_every_scenario() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let catalog = crate::scenario::Catalog::open(crate::project::Project::at(&root)).unwrap();
    let profile = catalog.versions.profile("linkerd", Path::new("versions.toml")).unwrap();
    let plan = crate::plan::build(&catalog, &profile, "r2", HostPorts { http: 1, https: 2 }).unwrap();
    let (client, asked) = kube_mock(|req| match req.path.rsplit('/').next() {
        Some("pods") => (200, serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []})),
        Some("events") => {
            (200, serde_json::json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": []}))
        }
        _ => kube_status(404, "NotFound"),
    });
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r2", "linkerd", client, String::new());
    let report = environment_failed(
        &env,
        &plan,
        &profile,
        "webhook linkerd-proxy-injector-webhook-config serving: not reached",
        None,
    )
    .await;
    assert!(!report.passed());
    assert_eq!(report.results[0].scenario, "environment");
    assert!(report.results[1..].iter().all(|r| matches!(r.outcome, crate::report::Outcome::Skipped { .. })));
    assert_eq!(report.results.len(), plan.scenarios.len() + 1);
    let namespaces: std::collections::BTreeSet<String> = asked
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.ends_with("/pods"))
        .map(|r| r.path.split('/').nth(4).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(namespaces, ["kong", "linkerd", "tracing"].map(str::to_owned).into());
    assert!(env.run.artifacts().join("environment/helm/linkerd-control-plane.values.yaml").is_file());
}

/// `--no-install` on a cluster discovery could not use: nothing is asked of the cluster for
/// "evidence" (no pod list, no log, no exec in namespaces the harness only assumed), the
/// failure says why, and every scenario is skipped.
#[tokio::test]
async fn a_failed_discovery_collects_nothing_from_the_cluster() {
    let (_, profile, mut plan) = istio_plan_of(&["ingress-basic"]);
    plan.install_nothing(None);
    let (client, asked) = kube_mock(echo_cluster);
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r1test", "istio", client, "http://127.0.0.1:9".into());
    let error = "discovering what the cluster runs: no Service with a kong-proxy port";
    let report = environment_failed(&env, &plan, &profile, error, None).await;
    assert!(asked.lock().unwrap().is_empty(), "{:?}", asked.lock().unwrap());
    let failed = &report.results[0];
    assert!(matches!(&failed.outcome, crate::report::Outcome::Failed { evidence, .. } if evidence == error));
    assert_eq!(failed.artifacts, None);
    assert!(failed.notes[0].starts_with("no diagnostics collected"), "{:?}", failed.notes);
    assert!(matches!(report.results[1].outcome, crate::report::Outcome::Skipped { .. }));
}

/// A scenario failing on a `--no-install` cluster: its evidence comes from its own
/// namespace and from Kong's (found by discovery, only read); nothing is exec'd outside the
/// scenario's namespace, and namespaces the harness would install into are not looked at.
#[tokio::test]
async fn no_install_evidence_reads_kongs_namespace_and_execs_only_in_the_scenarios() {
    let (catalog, profile, mut plan) = istio_plan_of(&["jwt-auth"]);
    plan.install_nothing(Some("edge"));
    let mut profile = profile;
    profile.versions.kong.namespace = "edge".into();
    let kong = crate::testing::kong_for_any_run().await;
    let (client, asked) = kube_mock(|req| match (req.method.as_str(), req.path.as_str()) {
        ("PATCH", p) if p.ends_with("/namespaces/jwt-auth-r1test") => kube_status(403, "Forbidden"),
        _ => crate::testing::echo_cluster(req),
    });
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
    let options = ScenarioOptions { keep_namespaces: true, ..Default::default() };
    let progress = Progress::lines(Box::new(std::io::sink()));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
    assert!(matches!(report.results[0].outcome, crate::report::Outcome::Failed { .. }));
    let asked = asked.lock().unwrap().clone();
    let namespaces: std::collections::BTreeSet<&str> =
        asked.iter().filter_map(|r| r.path.split("/namespaces/").nth(1)?.split('/').next()).collect();
    assert_eq!(namespaces, ["edge", "jwt-auth-r1test"].into(), "{asked:?}");
    let execs: Vec<&str> = asked.iter().filter(|r| r.path.ends_with("/exec")).map(|r| r.path.as_str()).collect();
    assert!(execs.iter().all(|p| p.contains("/namespaces/jwt-auth-r1test/")), "{execs:?}");
    assert!(asked.iter().any(|r| r.path == "/api/v1/namespaces/edge/pods"), "Kong's pods are read");
}

/// `--no-install` runs without the harness's trace collector: a tracing scenario is
/// skipped with why (not run, not passed), the others run.
#[tokio::test]
async fn no_install_skips_scenarios_that_need_the_harness_collector() {
    let (catalog, profile, mut plan) = istio_plan_of(&["ingress-basic", "tracing-istio"]);
    assert_eq!(plan.scenarios.len(), 2);
    plan.install_nothing(None);
    let kong = crate::testing::kong_for_any_run().await;
    let (client, asked) = kube_mock(echo_cluster);
    let work = tempfile::tempdir().unwrap();
    let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
    let options = ScenarioOptions { keep_namespaces: true, ..Default::default() };
    let progress = Progress::lines(Box::new(std::io::sink()));
    let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
    let outcomes: Vec<(&str, &crate::report::Outcome)> =
        report.results.iter().map(|r| (r.scenario.as_str(), &r.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            ("ingress-basic", &crate::report::Outcome::Passed),
            (
                "tracing-istio",
                &crate::report::Outcome::Skipped {
                    reason: "needs the harness's trace collector, which --no-install does not install".into()
                }
            ),
        ]
    );
    assert!(!asked.lock().unwrap().iter().any(|r| r.path.contains("tracing-istio")), "nothing of it is applied");
}

/// The report lists what ran, and its rerun line repeats the provider flags: under
/// `--provider existing --no-install` no kind, helm, chart, Gateway API, collector or
/// Kubernetes pin is listed, with or without what discovery found; the proxy URL's password
/// is not repeated.
#[test]
fn the_report_says_what_ran_and_how_to_rerun_it() {
    use crate::cluster::discover::{Discovered, FoundKong, FoundMesh};
    let (_, profile, plan) = istio_plan_of(&[]);
    let pins = report_of(&plan, &profile, vec![]);
    for key in ["kind", "helm", "kong/ingress", "gateway-api", "kubernetes", "istio", "image/jaeger"] {
        assert!(pins.versions.contains_key(key), "the plan's pins hold {key}");
    }
    let existing = Options {
        provider: ProviderChoice::Existing,
        context: Some("staging east".into()),
        proxy: Some("http://ops:s3cret@127.0.0.1:8080/".into()),
        no_install: true,
        kong_namespace: Some("edge".into()),
        ..Options::default()
    };
    let found = Discovered {
        kong: FoundKong {
            namespace: "edge".into(),
            release: "edge".into(),
            proxy_service: "edge-gateway-proxy".into(),
            selector: "app=edge-gateway".into(),
            chart: "gateway-3.2.0".into(),
            gateway_image: Some("kong:3.9.1".into()),
            controller_image: Some("kong/kubernetes-ingress-controller:3.5.13".into()),
            service_account: None,
            sidecar: Some(crate::model::Mesh::Istio),
            meshed_by: None,
        },
        mesh: Some(FoundMesh {
            mesh: crate::model::Mesh::Istio,
            namespace: "istio-system".into(),
            version: "1.29.2".into(),
        }),
    };
    for discovered in [None, Some(&found)] {
        let mut report = pins.clone();
        as_run(&mut report, &existing, discovered);
        let keys: Vec<&str> = report.versions.keys().map(String::as_str).collect();
        let expected: &[&str] = match discovered {
            None => &["harness", "image/client", "image/echo"],
            Some(_) => &[
                "harness",
                "image/client",
                "image/echo",
                "istio",
                "kong chart (found)",
                "kong-gateway",
                "kong-ingress-controller",
            ],
        };
        assert_eq!(keys, expected);
        assert_eq!(
            report.rerun,
            "cargo xtask e2e istio --profile istio --provider existing --context 'staging east' \
             --proxy 'http://ops:[redacted]@127.0.0.1:8080/' --no-install --kong-namespace edge"
        );
    }
    assert_eq!(as_run_of(&pins, &Options::default()).rerun, "cargo xtask e2e istio --profile istio");
    let k3s = as_run_of(&pins, &Options { provider: ProviderChoice::K3s, ..Options::default() });
    assert_eq!(k3s.rerun, "cargo xtask e2e istio --profile istio --provider k3s");
    assert!(!k3s.versions.contains_key("kind") && k3s.versions.contains_key("helm"));
}

fn as_run_of(report: &crate::report::RunReport, options: &Options) -> crate::report::RunReport {
    let mut report = report.clone();
    as_run(&mut report, options, None);
    report
}

/// An API server (here a loopback socket) that accepts connections and never answers once
/// held `--no-install` discovery for more than five minutes. With the deadlines the harness
/// sets on its client, the first call fails after [`API_READ_TIMEOUT`] of silence, and the
/// error names that call. (Paused clock: the timers are tokio's.)
#[tokio::test(start_paused = true)]
async fn an_api_server_that_never_answers_fails_the_named_call_at_its_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        // Accept, read nothing, write nothing, close nothing.
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    let client = client_from(config).unwrap();
    let started = tokio::time::Instant::now();
    let asked = tokio::time::timeout(DISCOVERY_TIMEOUT * 3, discover_within(&client, None, DISCOVERY_TIMEOUT));
    let err = asked.await.expect("discovery ends on its own").unwrap_err().to_string();
    let waited = started.elapsed();
    assert_eq!(err, "cannot list Services: ServiceError: client error (SendRequest): connection error: timed out");
    assert!(waited >= API_READ_TIMEOUT && waited < DISCOVERY_TIMEOUT, "{waited:?}");
    held.abort();
}

/// An API server that streams an answer without end (here 1 MiB of limit, the harness's own
/// is [`API_ANSWER_LIMIT`]) fails the call once the limit is passed, instead of filling
/// memory: kube-client reads list answers whole.
#[tokio::test]
async fn an_endless_api_answer_fails_at_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else { return 0usize };
        let mut head = [0u8; 4096];
        let _ = stream.read(&mut head).await;
        let start = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if stream.write_all(start.as_bytes()).await.is_err() {
            return 0;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        let mut sent = 0usize;
        // Stops when the client hangs up; bounded so a broken client cannot keep the test.
        while sent < 512 * 1024 * 1024 && stream.write_all(chunk.as_bytes()).await.is_ok() {
            sent += 64 * 1024;
        }
        sent
    });
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    let client = client_with_limit(config, 1024 * 1024).unwrap();
    let services: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::all(client);
    let err = services.list(&Default::default()).await.unwrap_err().to_string();
    assert!(err.contains("length limit exceeded"), "{err}");
    let sent = served.await.unwrap();
    assert!(sent < 64 * 1024 * 1024, "the client stopped reading early: {sent} bytes sent");
}

/// A server that keeps every answer coming but never complete (here: a mock that holds
/// each request) is bounded by discovery's own deadline, which says what it was reading.
#[tokio::test(start_paused = true)]
async fn discovery_as_a_whole_has_a_deadline() {
    let (service, mut handle) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let held = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(request) = handle.next_request().await {
            pending.push(request);
        }
    });
    let client = kube::Client::new(service, "default");
    let started = tokio::time::Instant::now();
    let asked = tokio::time::timeout(DISCOVERY_TIMEOUT * 3, discover_within(&client, Some("kong"), DISCOVERY_TIMEOUT));
    let err = asked.await.expect("discovery ends on its own").unwrap_err().to_string();
    assert_eq!(started.elapsed(), DISCOVERY_TIMEOUT);
    assert_eq!(
        err,
        "cannot read Kong's proxy Service, its pods and the mesh's control plane: the API server's answers did \
         not complete within 120s"
    );
    held.abort();
}

#[test]
fn impossible_options_are_refused_before_anything_happens() {
    let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let refused = |o: Options| check_options(&o, &profile).unwrap_err().to_string();
    let existing = Options { provider: ProviderChoice::Existing, ..Options::default() };
    assert!(refused(existing.clone()).contains("needs `--context NAME`"));
    let with_context = Options { context: Some("dev".into()), ..existing };
    assert!(refused(with_context.clone()).contains("needs `--proxy URL`"));
    let reusing = Options { proxy: Some("http://127.0.0.1:8080".into()), reuse: true, ..with_context };
    assert_eq!(refused(reusing.clone()), "--reuse works with the kind provider only");
    assert!(check_options(&Options { reuse: false, ..reusing }, &profile).is_ok());
    let k3s_kept = Options { provider: ProviderChoice::K3s, keep: Keep::Always, ..Options::default() };
    assert!(refused(k3s_kept).contains("use the kind provider for --keep"));
    // k3s images are pinned per minor: 1.35 has one (any patch), 1.36 none.
    let k3s = Options { provider: ProviderChoice::K3s, ..Options::default() };
    match crate::cluster::k3s::BUILT {
        true => assert!(check_options(&k3s, &profile).is_ok()),
        // A build without the feature says how to get one with it, before anything starts.
        false => assert_eq!(refused(k3s.clone()), crate::cluster::k3s::NOT_BUILT),
    }
    assert_eq!(profile.k3s_image(), versions.k3s.images.get("v1.35.1").map(String::as_str));
    let newer = versions.profile("istio-1-31-k8s-1-36", Path::new("versions.toml")).unwrap();
    assert!(check_options(&k3s, &newer).unwrap_err().to_string().contains("no k3s image for Kubernetes v1.36.4"));
    assert!(check_options(&Options::default(), &profile).is_ok());
    // istio-cni's default paths are kind's, not k3s's.
    let ambient = versions.profile("istio-ambient", Path::new("versions.toml")).unwrap();
    assert!(check_options(&k3s, &ambient).unwrap_err().to_string().contains("istio-ambient runs on kind"));
    assert!(check_options(&Options::default(), &ambient).is_ok());
}
