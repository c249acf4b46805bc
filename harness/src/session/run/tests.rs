//! The whole run, end to end, in a world of loopback servers and scripted commands: `kind` and
//! `helm` answer as told (and are recorded), the API server is the kube mock answering as an
//! installed stack does (`testing::stack_answers`, `testing::echo_cluster`), Kong is a stand-in
//! answering as echo-basic behind Kong does (`testing::kong_for_any_run`). Each test checks what
//! the run promises to leave: the reports, state.json, the teardown and the exit code.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::*;
use crate::cluster::Phase;
use crate::command::{CommandError, Invocation, Output, Runner};
use crate::preflight::DockerInfo;
use crate::runner::events::{Event, NOT_FINISHED, Silent};
use crate::testing::{
    Cluster, KubeRequest, Offline, ProxyAnswers as Answers, Reply, echo_cluster, kube_mock, serve, stack_answers,
};
use crate::tools::Cache;

/// kind and helm as scripted: every command succeeds unless its argv contains `failing`,
/// which fails as helm does when a chart's values schema refuses the values (helm v3/v4
/// `pkg/chart/.../values.go`: "values don't meet the specifications of the schema(s)").
#[derive(Clone, Default)]
struct Commands {
    calls: Arc<Mutex<Vec<String>>>,
    failing: Option<&'static str>,
}

impl Commands {
    fn called(&self, prefix: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| c.starts_with(prefix)).count()
    }
}

impl Runner for Commands {
    async fn run(&self, inv: &Invocation) -> Result<Output, CommandError> {
        let argv = inv.argv();
        self.calls.lock().unwrap().push(argv.clone());
        // What `helm show crds` prints for kong/ingress: the CRD file of its kong dependency,
        // vendored (harness/testdata/charts/PROVENANCE.md).
        if argv.contains(" show crds ingress ") {
            let crds = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/charts/kong-ingress-0.24.0/charts/kong/crds/custom-resource-definitions.yaml");
            let stdout = std::fs::read_to_string(crds).unwrap_or_default();
            return Ok(Output { status: Some(0), stdout, ..Default::default() });
        }
        if self.failing.is_some_and(|f| argv.contains(f)) {
            return Err(CommandError::Failed {
                argv,
                status: Some(1),
                stderr: "Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s) in the \
                         following chart(s):\ningress:\n- controller: Additional property replicas is not allowed"
                    .into(),
            });
        }
        Ok(Output { status: Some(0), ..Default::default() })
    }
}

/// A daemon that answers, or none (the `docker version` error of a machine without one).
struct Daemon(bool);

impl crate::preflight::DockerProbe for Daemon {
    async fn ping(&self, _: std::time::Duration) -> Result<DockerInfo, String> {
        match self.0 {
            true => Ok(DockerInfo { version: "28.5.1".into(), memory: None, cgroup_version: Some("2".into()) }),
            false => Err("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon \
                          running?"
                .into()),
        }
    }
}

/// The preload's daemon, unreachable: the preload is skipped (not fatal; the node pulls).
struct NoPuller;

impl crate::cluster::kind::ImagePuller for NoPuller {
    async fn platform(&self) -> Result<String, String> {
        Err("Cannot connect to the Docker daemon".into())
    }
    async fn pull(&self, _: &str, _: &str) -> Result<(), String> {
        Err("Cannot connect to the Docker daemon".into())
    }
    async fn save(&self, _: &str, _: &str, _: &Path) -> Result<(), String> {
        Err("Cannot connect to the Docker daemon".into())
    }
}

struct FakeWorld {
    commands: Commands,
    client: kube::Client,
    docker: Daemon,
    cache: PathBuf,
}

impl World for FakeWorld {
    type Runner = Commands;
    type Fetch = Offline;
    type Puller = NoPuller;
    type ProxyCheck = Answers;
    type Docker = Daemon;

    fn runner(&self) -> Commands {
        self.commands.clone()
    }
    fn fetcher(&self) -> Result<Offline, SessionError> {
        Ok(Offline)
    }
    fn puller(&self) -> &NoPuller {
        &NoPuller
    }
    fn proxy_check(&self) -> &Answers {
        &Answers
    }
    fn docker(&self) -> &Daemon {
        &self.docker
    }
    async fn tools(&self, _: &Profile, _: &Cache, _: bool, _: bool) -> Result<(PathBuf, PathBuf), SessionError> {
        Ok((PathBuf::from("kind"), PathBuf::from("helm")))
    }
    async fn client(&self, _: &Path) -> Result<kube::Client, SessionError> {
        Ok(self.client.clone())
    }
    fn free_ports(&self) -> Result<HostPorts, SessionError> {
        Ok(HostPorts { http: 1, https: 2 })
    }
    fn tool_cache(&self, _: &Path) -> Cache {
        Cache::at(&self.cache)
    }
}

/// The Gateway API CRD the cache holds for every pinned file (the project's versions.toml pins
/// its sum instead of upstream's).
const CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: httproutes.gateway.networking.k8s.io\n";

/// A project in `work`: the checkout's versions.toml (the Gateway API pinned to [`CRD`]), its
/// ingress-basic scenario and, as a second one, the same scenario named ingress-second, with
/// the fixtures they use; the tool cache seeded with the CRDs.
fn project(work: &Path) -> Catalog {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sum = crate::tools::sha256_hex(CRD.as_bytes());
    let pinned = regex::Regex::new(r#"(?m)^("gateway\.networking\.k8s\.io_[a-z]+\.yaml") = "[0-9a-f]{64}"$"#).unwrap();
    let versions = std::fs::read_to_string(checkout.join("versions.toml")).unwrap();
    let versions = pinned.replace_all(&versions, format!("$1 = \"{sum}\""));
    assert_eq!(versions.matches(&sum).count(), 5, "every Gateway API file pinned to the stub");
    std::fs::write(work.join("versions.toml"), versions.as_ref()).unwrap();
    let scenario = std::fs::read_to_string(checkout.join("scenarios/ingress-basic.yaml")).unwrap();
    std::fs::create_dir_all(work.join("scenarios")).unwrap();
    std::fs::write(work.join("scenarios/ingress-basic.yaml"), &scenario).unwrap();
    let second = scenario.replacen("name: ingress-basic", "name: ingress-second", 1);
    std::fs::write(work.join("scenarios/ingress-second.yaml"), second).unwrap();
    // A scenario that does not load: it fails alone, as an error.
    std::fs::write(work.join("scenarios/broken-one.yaml"), "name: broken-one\nsteps: [1]\n").unwrap();
    for fixture in ["base/echo.yaml", "kong/ingress-echo.yaml"] {
        let to = work.join("fixtures").join(fixture);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(checkout.join("fixtures").join(fixture), to).unwrap();
    }
    let catalog = Catalog::open(crate::project::Project::at(work)).unwrap();
    let cache = Cache::at(work.join("cache"));
    for a in catalog.versions.gateway_api.artifacts() {
        cache.seed(&a, CRD.as_bytes());
    }
    catalog
}

/// The project made in `work` ([`project`]) and a world around it: `commands` for kind and helm,
/// `api` as the API server, a Docker daemon that answers or none.
fn world_in(
    work: &Path,
    commands: Commands,
    api: impl Fn(&KubeRequest) -> (u16, serde_json::Value) + Send + Sync + 'static,
    docker: bool,
) -> (Catalog, FakeWorld) {
    let catalog = project(work);
    let (client, _) = kube_mock(api);
    (catalog, FakeWorld { commands, client, docker: Daemon(docker), cache: work.join("cache") })
}

/// The API server of a cluster with the stack installed (Kong meshed, the injector ready) and
/// echo-v1 available in every scenario namespace.
fn api(req: &KubeRequest) -> (u16, serde_json::Value) {
    let stack = stack_answers(Cluster { webhook_ready: true, kong_meshed: true, ambient: false }, req);
    if stack.0 != 404 { stack } else { echo_cluster(req) }
}

/// What a test run left.
struct Ran {
    outcome: Result<RunOutcome, RunError>,
    commands: Commands,
    work: tempfile::TempDir,
}

impl Ran {
    fn outcome(&self) -> &RunOutcome {
        self.outcome.as_ref().unwrap_or_else(|e| panic!("the run could not be made: {e}"))
    }

    fn file(&self, name: &str) -> String {
        let path = self.outcome().run_dir.join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn phase(&self) -> Phase {
        let state: serde_json::Value = serde_json::from_str(&self.file("state.json")).unwrap();
        serde_json::from_value(state["phase"].clone()).unwrap()
    }
}

/// One run of `only` on Istio with the kind provider, in a project made in `work`, against
/// `api` and `kong`; `arrange` adjusts the request and `reporter` sees the events (it may
/// cancel the run).
#[allow(clippy::too_many_arguments)]
async fn run_in(
    work: &Path,
    only: &[&str],
    commands: Commands,
    api: impl Fn(&KubeRequest) -> (u16, serde_json::Value) + Send + Sync + 'static,
    kong: std::net::SocketAddr,
    arrange: impl FnOnce(&mut Request),
    cancel: &CancellationToken,
    reporter: &dyn Reporter,
) -> Result<RunOutcome, RunError> {
    let (catalog, world) = world_in(work, commands, api, true);
    let mut request = Request::new(Mesh::Istio);
    request.only = only.iter().map(|s| s.to_string()).collect();
    arrange(&mut request);
    let progress = Progress::lines(Box::new(std::io::sink()));
    // Kong's proxy is the stand-in: the plan's host port is its port.
    let ports = HostPorts { http: kong.port(), https: 0 };
    let prepared = prepare(&catalog, &request, "r1", ports, &progress).unwrap();
    run(&world, &catalog, &request, prepared, cancel, &progress, reporter).await
}

/// [`run_in`] a fresh directory, keeping it and the commands for the checks.
async fn run_with(
    only: &[&str],
    commands: Commands,
    api: impl Fn(&KubeRequest) -> (u16, serde_json::Value) + Send + Sync + 'static,
    kong: std::net::SocketAddr,
    arrange: impl FnOnce(&mut Request),
    cancel: &CancellationToken,
    reporter: &dyn Reporter,
) -> Ran {
    let work = tempfile::tempdir().unwrap();
    let outcome = run_in(work.path(), only, commands.clone(), api, kong, arrange, cancel, reporter).await;
    Ran { outcome, commands, work }
}

fn junit_counts(junit: &str) -> (String, String, String) {
    let attr = |name: &str| {
        let at = junit.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} in {junit}"));
        junit[at + name.len() + 3..].split('"').next().unwrap_or_default().to_owned()
    };
    (attr("tests"), attr("failures"), attr("errors"))
}

/// Every event, as one line each.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn event(&self, event: &Event<'_>) {
        let line = match event {
            Event::AttemptStarted { index, attempt, .. } => format!("started {index}.{attempt}"),
            Event::AttemptWaiting { .. } => return,
            Event::StepFinished { index, record, .. } => format!("step {index} {} {}", record.step, record.passed),
            Event::AttemptFinished { index, ok, .. } => format!("finished {index} {ok}"),
            Event::AttemptRetried { index, attempt, .. } => format!("retried {index}.{attempt}"),
            Event::ScenarioFinished { index, result } => format!("result {index} {}", result.scenario),
        };
        self.0.lock().unwrap().push(line);
    }
}

#[tokio::test]
async fn a_passing_run_installs_runs_reports_and_removes_the_cluster() {
    let kong = crate::testing::kong_for_any_run().await;
    let cancel = CancellationToken::new();
    let events = Recorder::default();
    let ran = run_with(&["ingress-basic"], Commands::default(), api, kong, |_| {}, &cancel, &events).await;
    assert_eq!(
        *events.0.lock().unwrap(),
        [
            "started 0.0",
            "step 0 namespace and fixtures true",
            "step 0 wait Deployment/echo-v1 available (eventually, 3m) true",
            "step 0 http GET /echo/hello (converge 3x within 1m) true",
            "finished 0 true",
            "result 0 ingress-basic",
        ]
    );
    let outcome = ran.outcome();
    assert_eq!((outcome.exit_code(), outcome.stopped, outcome.failed), (0, Stopped::No, false), "{:?}", outcome.report);
    assert_eq!(outcome.teardown, Teardown::Removed);
    assert!(outcome.environment_error.is_none());
    assert_eq!(ran.commands.called("kind create cluster"), 1);
    assert_eq!(ran.commands.called("helm upgrade --install"), 3, "istio-base, istiod, kong");
    assert_eq!(ran.commands.called("kind delete cluster"), 1);
    assert_eq!(ran.phase(), Phase::Removed);
    assert_eq!(junit_counts(&ran.file("junit.xml")), ("1".into(), "0".into(), "0".into()));
    let run_json: serde_json::Value = serde_json::from_str(&ran.file("run.json")).unwrap();
    assert_eq!(run_json["results"][0]["scenario"], "ingress-basic");
    assert!(ran.file("summary.md").contains("ingress-basic"));
    drop(ran.work);
}

/// A step whose answer is wrong (Envoy's 503 where echo-basic's 200 was expected) fails the
/// run with exit 1, a JUnit `failure` (a verdict, not an error), the failure's evidence, and
/// the cluster's node logs exported before it is removed.
#[tokio::test(start_paused = true)]
async fn a_failing_scenario_fails_the_run_with_its_evidence() {
    // Envoy's local reply when no upstream host is healthy (envoyproxy/envoy
    // source/common/router/router.cc, "no healthy upstream").
    let kong = serve(|_| Reply::Respond {
        status: 503,
        headers: vec![("content-type".into(), "text/plain".into()), ("server".into(), "envoy".into())],
        body: "no healthy upstream".into(),
    })
    .await;
    let cancel = CancellationToken::new();
    let ran = run_with(&["ingress-basic"], Commands::default(), api, kong, |_| {}, &cancel, &Silent).await;
    let outcome = ran.outcome();
    assert_eq!((outcome.exit_code(), outcome.stopped, outcome.failed), (1, Stopped::No, true));
    assert_eq!(junit_counts(&ran.file("junit.xml")), ("1".into(), "1".into(), "0".into()));
    let artifacts = outcome.run_dir.join("artifacts/ingress-basic");
    assert!(artifacts.join("steps.json").is_file() && artifacts.join("repro.yaml").is_file());
    assert_eq!(ran.commands.called("kind export logs"), 1, "a failed run exports the node's logs");
    assert_eq!(ran.commands.called("kind delete cluster"), 1);
    assert_eq!(ran.phase(), Phase::Removed);
}

/// Kong's install refused: every scenario is skipped, the environment is the failure (JUnit
/// `error`), the run exits 1, and the cluster is still removed.
#[tokio::test]
async fn a_failed_install_skips_the_scenarios_and_still_tears_down() {
    let kong = crate::testing::kong_for_any_run().await;
    let commands = Commands { failing: Some("upgrade --install kong"), ..Commands::default() };
    let cancel = CancellationToken::new();
    let ran = run_with(&["ingress-basic"], commands, api, kong, |_| {}, &cancel, &Silent).await;
    let outcome = ran.outcome();
    assert_eq!(outcome.exit_code(), 1);
    let error = outcome.environment_error.as_deref().unwrap_or_default();
    assert!(error.contains("values don't meet the specifications"), "{error}");
    assert!(
        outcome
            .report
            .results
            .iter()
            .any(|r| r.scenario == "ingress-basic" && matches!(r.outcome, Outcome::Skipped { .. })),
        "{:?}",
        outcome.report.results
    );
    let (_, failures, errors) = junit_counts(&ran.file("junit.xml"));
    assert_eq!((failures.as_str(), errors.as_str()), ("0", "1"), "an install failure is an error, not a verdict");
    assert_eq!(ran.commands.called("kind delete cluster"), 1);
    assert_eq!(ran.phase(), Phase::Removed);
}

/// Cancels the run when the first attempt starts, as Ctrl-C would.
struct InterruptAtStart(CancellationToken);

impl Reporter for InterruptAtStart {
    fn event(&self, event: &Event<'_>) {
        if matches!(event, Event::AttemptStarted { .. }) {
            self.0.cancel();
        }
    }
}

/// Ctrl-C during a scenario: exit 130, the reports written, the cluster removed (not kept:
/// `--keep` was not given) and no node logs waited for.
#[tokio::test]
async fn an_interrupted_run_exits_130_with_its_reports_and_tears_down() {
    let kong = crate::testing::kong_for_any_run().await;
    let cancel = CancellationToken::new();
    let interrupt = InterruptAtStart(cancel.clone());
    let ran =
        run_with(&["ingress-basic", "ingress-second"], Commands::default(), api, kong, |_| {}, &cancel, &interrupt)
            .await;
    let outcome = ran.outcome();
    assert_eq!((outcome.exit_code(), outcome.stopped), (130, Stopped::Interrupted));
    assert!(!outcome.report.results.iter().any(|r| matches!(r.outcome, Outcome::Passed)), "{:?}", outcome.report);
    let second = outcome.report.results.iter().find(|r| r.scenario == "ingress-second").unwrap();
    assert_eq!(second.outcome, Outcome::Skipped { reason: crate::budget::why_stopped(None) });
    assert!(ran.file("junit.xml").contains(&crate::budget::why_stopped(None)));
    assert_eq!(ran.commands.called("kind export logs"), 0);
    assert_eq!(ran.commands.called("kind delete cluster"), 1);
    assert_eq!(ran.phase(), Phase::Removed);
}

/// A budget that runs out while a scenario waits (echo-v1's new generation never observed, its
/// `wait` retried): exit 1, out of time, the scenario stopped saying so, the cluster removed.
#[tokio::test(start_paused = true)]
async fn a_run_out_of_budget_fails_with_its_reports_and_tears_down() {
    let kong = crate::testing::kong_for_any_run().await;
    let never_rolled_out = |req: &KubeRequest| match req.path.as_str() {
        p if req.method == "GET" && p.ends_with("/deployments/echo-v1") => {
            let ns = p.split('/').nth(5).unwrap_or_default();
            (200, crate::testing::deployment("echo-v1", ns, crate::testing::Rollout::NotObserved))
        }
        _ => api(req),
    };
    let cancel = CancellationToken::new();
    // 12m leaves 5m of work; the wait gives up after 3m and is retried, so the budget ends the
    // second attempt.
    let budget = |r: &mut Request| {
        r.budget = Some(crate::budget::Budget::parse("12m").unwrap());
        r.checks.retries = 5;
    };
    let ran = run_with(&["ingress-basic"], Commands::default(), never_rolled_out, kong, budget, &cancel, &Silent).await;
    let outcome = ran.outcome();
    assert_eq!((outcome.exit_code(), outcome.stopped, outcome.failed), (1, Stopped::OutOfTime, true));
    let reason = outcome.budget_reason.as_deref().unwrap_or_default();
    assert!(reason.contains("time budget of 12m"), "{reason}");
    let result = outcome.report.results.iter().find(|r| r.scenario == "ingress-basic").unwrap();
    assert!(!matches!(result.outcome, Outcome::Passed), "{result:?}");
    // The first failure is the one to read; the stopped attempt is noted with why it stopped.
    assert!(result.notes.iter().any(|n| n.contains("time budget")), "{:?}", result.notes);
    assert_eq!(ran.commands.called("kind delete cluster"), 1);
    assert_eq!(ran.phase(), Phase::Removed);
}

/// Signals when the first scenario finished.
struct FirstFinished(Mutex<Option<tokio::sync::oneshot::Sender<()>>>);

impl Reporter for FirstFinished {
    fn event(&self, event: &Event<'_>) {
        if let Event::ScenarioFinished { index: 0, .. } = event
            && let Some(tx) = self.0.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
    }
}

/// A run killed while its second scenario hangs (as a CI job's timeout kills it: no teardown,
/// no final report) leaves JUnit, run.json and the summary with the first scenario's result and
/// the second marked not finished.
#[tokio::test]
async fn a_run_killed_mid_way_leaves_the_finished_scenarios_in_its_reports() {
    let kong = serve(|head| {
        if head.headers.get("host").is_some_and(|h| h.starts_with("ingress-second.")) {
            return Reply::Hang;
        }
        let ns = "ingress-basic-r1";
        let mut upstream = head.clone();
        upstream.headers.insert("host".into(), format!("echo.{ns}.svc.cluster.local"));
        upstream.headers.insert("x-kong-request-id".into(), "1".into());
        Reply::json(200, crate::testing::echo_body(&upstream, "echo-v1-6d8f9-abcde", ns))
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let first = FirstFinished(Mutex::new(Some(tx)));
    let cancel = CancellationToken::new();
    let both = ["ingress-basic", "ingress-second", "broken-one"];
    let run = run_in(work.path(), &both, Commands::default(), api, kong, |_| {}, &cancel, &first);
    tokio::select! {
        outcome = run => panic!("the run ended before it was killed: {:?}", outcome.map(|o| o.report)),
        // Killed: the run's future is dropped here, mid-way through ingress-second.
        _ = rx => {}
    }
    let dir = work.path().join("target/e2e/r1");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    // Three scenarios: one passed, one not finished and one broken, both errors (a CI page must
    // not show a killed run green).
    assert_eq!(junit_counts(&junit), ("3".into(), "0".into(), "2".into()), "{junit}");
    assert!(junit.contains("ingress-second") && junit.contains(NOT_FINISHED), "{junit}");
    assert!(junit.contains("broken-one") && junit.contains("does not load or lint"), "{junit}");
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["results"][0]["scenario"], "ingress-basic");
    assert_eq!(run_json["results"][0]["outcome"], "passed", "{run_json}");
    assert!(std::fs::read_to_string(dir.join("summary.md")).unwrap().contains("ingress-basic"));
}

/// No Docker daemon: the run refuses before anything is created (no run directory, no cluster
/// command), with the preflight report of what is missing.
#[tokio::test]
async fn without_docker_nothing_is_created() {
    let work = tempfile::tempdir().unwrap();
    let commands = Commands::default();
    let (catalog, world) = world_in(work.path(), commands.clone(), api, false);
    let mut request = Request::new(Mesh::Istio);
    request.only = vec!["ingress-basic".into()];
    let progress = Progress::lines(Box::new(std::io::sink()));
    let prepared = prepare(&catalog, &request, "r1", HostPorts { http: 1, https: 2 }, &progress).unwrap();
    let cancel = CancellationToken::new();
    let err = run(&world, &catalog, &request, prepared, &cancel, &progress, &Silent).await.unwrap_err();
    let RunError::NoDocker { missing, report } = &err else { panic!("{err}") };
    assert!(missing.contains("docker"), "{missing}");
    assert!(!report.ready);
    assert!(!work.path().join("target/e2e").exists(), "no run directory");
    assert_eq!(commands.called("kind create"), 0);
}

/// `up` leaves the cluster it made with the stack installed: kept, never deleted.
#[tokio::test]
async fn up_keeps_the_cluster_it_made() {
    let work = tempfile::tempdir().unwrap();
    let commands = Commands::default();
    let (catalog, world) = world_in(work.path(), commands.clone(), api, true);
    let request = Request::new(Mesh::Istio);
    let progress = Progress::lines(Box::new(std::io::sink()));
    let cancel = CancellationToken::new();
    let outcome = up(&world, &catalog, &request, &cancel, &progress).await.unwrap();
    assert!(outcome.installed.is_ok(), "{:?}", outcome.installed);
    assert_eq!(outcome.exit_code(), 0);
    assert!(outcome.teardown_message.contains("the cluster is still up"), "{}", outcome.teardown_message);
    assert_eq!(commands.called("helm upgrade --install"), 3);
    assert_eq!(commands.called("kind delete cluster"), 0);
}

/// Kong values the API server would refuse (a boolean pod label: the chart writes it unquoted,
/// and label values are strings) refuse the run when it is prepared, at their line; the same
/// file with the label quoted prepares.
#[test]
fn your_kong_values_are_linted_before_anything_is_created() {
    let work = tempfile::tempdir().unwrap();
    let catalog = project(work.path());
    let file = work.path().join("kong-values.yaml");
    let progress = Progress::lines(Box::new(std::io::sink()));
    let mut request = Request::new(Mesh::Istio);
    request.only = vec!["ingress-basic".into()];
    request.values = vec![("kong/ingress".into(), file.clone())];
    std::fs::write(&file, "gateway:\n  podLabels:\n    team: payments\n    sidecar.istio.io/inject: true\n").unwrap();
    let err = match prepare(&catalog, &request, "r1", HostPorts { http: 1, https: 2 }, &progress) {
        Err(e) => e,
        Ok(_) => panic!("a boolean pod label must refuse the run"),
    };
    let RunError::ValuesLint(findings) = &err else { panic!("{err}") };
    assert_eq!(findings.len(), 1, "{err}");
    assert_eq!((findings[0].code.as_str(), findings[0].position.line), ("kong-values-label-type", 4), "{err}");
    assert!(err.to_string().contains("nothing was created"), "{err}");
    std::fs::write(&file, "gateway:\n  podLabels:\n    team: payments\n    sidecar.istio.io/inject: \"true\"\n")
        .unwrap();
    assert!(prepare(&catalog, &request, "r1", HostPorts { http: 1, https: 2 }, &progress).is_ok());
}

/// A shipped load scenario written into `work` with a short window (load from 200 ms before its
/// disruptions to 300 ms after), with the fixture it needs besides [`project`]'s.
fn with_load_scenario(work: &Path, name: &str) {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scenario = std::fs::read_to_string(checkout.join(format!("scenarios/{name}.yaml"))).unwrap().replacen(
        "      rate: 20\n",
        "      rate: 20\n      warmup: 200ms\n      cooldown: 300ms\n",
        1,
    );
    std::fs::create_dir_all(work.join("scenarios")).unwrap();
    std::fs::write(work.join(format!("scenarios/{name}.yaml")), scenario).unwrap();
    let fixture = work.join("fixtures/base/echo-rollout-safe.yaml");
    std::fs::create_dir_all(fixture.parent().unwrap()).unwrap();
    std::fs::copy(checkout.join("fixtures/base/echo-rollout-safe.yaml"), &fixture).unwrap();
}

/// A simulated run of a resilience scenario: the backend restarted under load through the
/// stand-in Kong, and the window drawn in summary.md and kept in run.json.
#[tokio::test]
async fn a_load_window_reaches_the_runs_summary_and_run_json() {
    let work = tempfile::tempdir().unwrap();
    with_load_scenario(work.path(), "resilience-backend-rollout");
    let kong = crate::testing::kong_for_any_run().await;
    let cancel = CancellationToken::new();
    let outcome = run_in(
        work.path(),
        &["resilience-backend-rollout"],
        Commands::default(),
        api,
        kong,
        |_| {},
        &cancel,
        &crate::runner::events::Silent,
    )
    .await
    .unwrap();
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.report);
    let summary = std::fs::read_to_string(outcome.run_dir.join("summary.md")).unwrap();
    assert!(summary.contains("### Load: `resilience-backend-rollout` on `istio`, step 3"), "{summary}");
    assert!(summary.contains("```mermaid\nxychart-beta\n"), "{summary}");
    assert!(summary.contains("bars: restart Deployment/echo-v1"), "{summary}");
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(outcome.run_dir.join("run.json")).unwrap()).unwrap();
    let window = &run_json["results"][0]["load_windows"][0];
    assert_eq!(window["step"], 3);
    assert_eq!(window["verdict"]["failed"], 0);
    assert!(window["verdict"]["sent"].as_u64().unwrap() >= 5, "{window}");
    assert_eq!(window["disruptions"][0]["name"], "restart Deployment/echo-v1");
}

/// The API server of [`api`], with Kong's gateway Deployment as the chart makes it (its pods'
/// labels are the gateway selector's) and every Deployment rolled out.
fn api_with_kong_deployment(req: &KubeRequest) -> (u16, serde_json::Value) {
    let kong = || {
        let mut d = crate::testing::deployment("kong-gateway", "kong", crate::testing::Rollout::Done);
        d["spec"]["template"]["metadata"]["labels"] =
            serde_json::json!({"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": "kong"});
        d
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/apis/apps/v1/namespaces/kong/deployments") => (
            200,
            serde_json::json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": [kong()]}),
        ),
        (_, "/apis/apps/v1/namespaces/kong/deployments/kong-gateway") => (200, kong()),
        _ => api(req),
    }
}

/// [`api_with_kong_deployment`] whose workloads' pods run Istio's proxy at 1.30.5 of the default
/// revision until their restart's patch arrives, and at `after` of `revision` from then on
/// ([`crate::testing::injected_pod`]); with the canary's injector of revision 1-31-1 as its
/// render has it (renders/istio/istiod-1-30-5.yaml, the revision renamed).
fn api_with_pods_moving_to(
    after: &'static str,
    revision: &'static str,
) -> impl Fn(&KubeRequest) -> (u16, serde_json::Value) + Send + Sync {
    let restarted: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    move |req| {
        if req.method == "PATCH" && req.path.contains("/deployments/") && req.body.contains(crate::k8s::RESTARTED_AT) {
            restarted.lock().unwrap().push(req.path.rsplit('/').next().unwrap_or_default().to_owned());
        }
        let pod = |name: &str, workload: &str, labels: serde_json::Value, app: &str| {
            let moved = restarted.lock().unwrap().iter().any(|w| w == workload);
            let (version, rev) = if moved { (after, revision) } else { ("1.30.5", "default") };
            crate::testing::injected_pod(name, labels, app, Mesh::Istio, version, rev)
        };
        let list = |item: serde_json::Value| {
            (200, serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [item]}))
        };
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/v1/namespaces/kong/pods") => list(pod(
                "kong-gateway-7d9f",
                "kong-gateway",
                serde_json::json!({"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": "kong"}),
                "proxy",
            )),
            (
                "GET",
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-sidecar-injector-1-31-1",
            ) => (
                200,
                serde_json::json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": "istio-sidecar-injector-1-31-1", "labels": {"istio.io/rev": "1-31-1"}},
                    "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                                  "clientConfig": {"service": {"name": "istiod-1-31-1", "namespace": "istio-system", "path": "/inject", "port": 443}},
                                  "namespaceSelector": {"matchExpressions": [
                                      {"key": "istio.io/rev", "operator": "In", "values": ["1-31-1"]},
                                      {"key": "istio-injection", "operator": "DoesNotExist"}]}}]}),
            ),
            ("GET", p) if p.ends_with("/pods") && p.contains("upgrade-") && !req.query.contains("kme2e") => {
                list(pod("echo-v1-6d8f9-abcde", "echo-v1", serde_json::json!({"app": "echo", "version": "v1"}), "echo"))
            }
            _ => api_with_kong_deployment(req),
        }
    }
}

/// A simulated run of the upgrade scenario alone on Istio: under load, the mesh's releases are
/// upgraded with Helm to the next pin (1.31.1), then Kong and the backend restart; the window
/// is judged and reported. With another scenario beside it, it is skipped, saying why.
#[tokio::test]
async fn a_mesh_upgrade_under_load_runs_helm_at_the_next_pin() {
    let work = tempfile::tempdir().unwrap();
    with_load_scenario(work.path(), "upgrade-mesh-under-load");
    let kong = crate::testing::kong_for_any_run().await;
    let commands = Commands::default();
    let cancel = CancellationToken::new();
    let silent = crate::runner::events::Silent;
    let alone = &["upgrade-mesh-under-load"];
    let api = api_with_pods_moving_to("1.31.1", "default");
    let outcome = run_in(work.path(), alone, commands.clone(), api, kong, |_| {}, &cancel, &silent).await.unwrap();
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.report);
    let calls = commands.calls.lock().unwrap().clone();
    let at = |prefix: &str| calls.iter().filter(|c| c.starts_with(prefix)).cloned().collect::<Vec<_>>();
    let istiod = at("helm upgrade --install istiod istiod");
    assert_eq!(istiod.len(), 2, "installed, then upgraded: {calls:#?}");
    assert!(istiod[0].contains("--version 1.30.5") && istiod[1].contains("--version 1.31.1"), "{istiod:#?}");
    assert!(at("helm upgrade --install istio-base base")[1].contains("--version 1.31.1"));
    // Istio's in-place order: base (its CRDs) before istiod.
    let position = |prefix: &str| calls.iter().rposition(|c| c.starts_with(prefix)).unwrap();
    assert!(position("helm upgrade --install istio-base") < position("helm upgrade --install istiod"), "{calls:#?}");
    assert!(at("helm upgrade --install kong").len() == 1, "Kong is not upgraded");
    let window = &outcome.report.results[0].load_windows[0];
    let names: Vec<&str> = window.disruptions.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["upgrade the mesh", "restart Kong's gateway", "restart Deployment/echo-v1"]);

    // Beside another scenario it does not run: the mesh it leaves behind is not the profile's.
    let work = tempfile::tempdir().unwrap();
    with_load_scenario(work.path(), "upgrade-mesh-under-load");
    let both = &["upgrade-mesh-under-load", "ingress-basic"];
    let outcome =
        run_in(work.path(), both, Commands::default(), api_with_kong_deployment, kong, |_| {}, &cancel, &silent)
            .await
            .unwrap();
    let upgrade = outcome.report.results.iter().find(|r| r.scenario == "upgrade-mesh-under-load").unwrap();
    match &upgrade.outcome {
        crate::report::Outcome::Skipped { reason } => assert!(reason.contains("run it alone"), "{reason}"),
        other => panic!("not skipped: {other:?}"),
    }
}

/// A simulated run of the Kong upgrade scenario on the profile with Kong's previous pin: under
/// load, the new chart's CRDs are applied server-side (what `helm show crds` prints for it),
/// then Kong's release is upgraded in place from 0.23.0 to 0.24.0 with the values it was
/// installed with; the mesh is not touched. On the default profile (no newer Kong pin) the
/// scenario is skipped, saying why.
#[tokio::test]
async fn a_kong_upgrade_under_load_applies_the_new_crds_then_upgrades_kong() {
    let work = tempfile::tempdir().unwrap();
    with_load_scenario(work.path(), "upgrade-kong-under-load");
    let kong = crate::testing::kong_for_any_run().await;
    let commands = Commands::default();
    let cancel = CancellationToken::new();
    let silent = crate::runner::events::Silent;
    let applied: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = applied.clone();
    let helm_calls = commands.calls.clone();
    let rolled_asked = Arc::new(Mutex::new(false));
    let asked = rolled_asked.clone();
    let api = move |req: &KubeRequest| {
        if req.method == "PATCH" && req.path.contains("/customresourcedefinitions/") {
            seen.lock().unwrap().push(req.path.rsplit('/').next().unwrap_or_default().to_owned());
        }
        // Once helm has upgraded Kong's release, the gateway's pod template is the new chart's:
        // the Deployment is at a new generation with a new ReplicaSet revision, rolled out.
        let upgraded =
            helm_calls.lock().unwrap().iter().filter(|c| c.starts_with("helm upgrade --install kong ")).count() > 1;
        if upgraded && req.path == "/apis/apps/v1/namespaces/kong/deployments/kong-gateway" {
            *asked.lock().unwrap() = true;
            let (status, mut d) = api_with_kong_deployment(req);
            d["metadata"]["generation"] = serde_json::json!(3);
            d["status"]["observedGeneration"] = serde_json::json!(3);
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = serde_json::json!("2");
            return (status, d);
        }
        api_with_kong_deployment(req)
    };
    let alone = &["upgrade-kong-under-load"];
    let on_old_kong = |r: &mut Request| r.profile = Some("istio-kong-0-23".into());
    let outcome = run_in(work.path(), alone, commands.clone(), api, kong, on_old_kong, &cancel, &silent).await.unwrap();
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.report.results);
    let calls = commands.calls.lock().unwrap().clone();
    let kong_releases: Vec<&String> =
        calls.iter().filter(|c| c.starts_with("helm upgrade --install kong ingress")).collect();
    assert_eq!(kong_releases.len(), 2, "installed, then upgraded: {calls:#?}");
    assert!(kong_releases[0].contains("--version 0.23.0") && kong_releases[1].contains("--version 0.24.0"));
    let position = |prefix: &str| calls.iter().rposition(|c| c.starts_with(prefix)).unwrap();
    assert!(position("helm show crds ingress") < position("helm upgrade --install kong"), "CRDs first: {calls:#?}");
    assert!(
        calls.iter().any(|c| c.starts_with("helm show crds ingress --repo https://charts.konghq.com --version 0.24.0"))
    );
    assert_eq!(commands.called("helm upgrade --install istiod"), 1, "the mesh is not upgraded");
    let applied = applied.lock().unwrap().clone();
    assert!(applied.iter().any(|c| c == "kongplugins.configuration.konghq.com"), "{applied:?}");
    let window = &outcome.report.results[0].load_windows[0];
    assert_eq!(window.disruptions[0].name, "upgrade Kong's chart");
    assert!(*rolled_asked.lock().unwrap(), "after the upgrade, the gateway's roll is waited for");

    // The default profile pins the newest Kong chart: nothing to upgrade to, said so.
    let work = tempfile::tempdir().unwrap();
    with_load_scenario(work.path(), "upgrade-kong-under-load");
    let outcome =
        run_in(work.path(), alone, Commands::default(), api_with_kong_deployment, kong, |_| {}, &cancel, &silent)
            .await
            .unwrap();
    match &outcome.report.results[0].outcome {
        crate::report::Outcome::Skipped { reason } => {
            assert!(reason.contains("cannot upgrade Kong's chart"), "{reason}")
        }
        other => panic!("not skipped: {other:?}"),
    }
}

/// A simulated run of Istio's canary upgrade: base upgraded in place, then istiod of 1.31.1
/// installed beside the old release as `istiod-1-31-1` with its revision, then Kong's namespace
/// and the scenario's relabelled to the revision (istio-injection removed), then Kong and the
/// backend restart onto pods injected by the new revision.
#[tokio::test]
async fn a_canary_upgrade_installs_a_revision_beside_istiod_and_moves_the_namespaces() {
    let work = tempfile::tempdir().unwrap();
    with_load_scenario(work.path(), "upgrade-istio-canary-under-load");
    let kong = crate::testing::kong_for_any_run().await;
    let commands = Commands::default();
    let cancel = CancellationToken::new();
    let relabels: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen = relabels.clone();
    let moving = api_with_pods_moving_to("1.31.1", "1-31-1");
    let api = move |req: &KubeRequest| {
        if req.method == "PATCH" && req.path.starts_with("/api/v1/namespaces/") && req.body.contains("istio.io/rev") {
            let name = req.path.rsplit('/').next().unwrap_or_default().to_owned();
            seen.lock().unwrap().push((name.clone(), req.body.clone()));
            // The API server answers a merge patch with the object as it now is: a removed
            // label is gone, not null.
            return (
                200,
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name, "labels": {"istio.io/rev": "1-31-1"}}}),
            );
        }
        moving(req)
    };
    let alone = &["upgrade-istio-canary-under-load"];
    let silent = crate::runner::events::Silent;
    let outcome = run_in(work.path(), alone, commands.clone(), api, kong, |_| {}, &cancel, &silent).await.unwrap();
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.report.results);
    let calls = commands.calls.lock().unwrap().clone();
    let canary: Vec<&String> =
        calls.iter().filter(|c| c.starts_with("helm upgrade --install istiod-1-31-1 istiod")).collect();
    assert_eq!(canary.len(), 1, "{calls:#?}");
    assert!(canary[0].contains("--version 1.31.1"), "{}", canary[0]);
    assert_eq!(commands.called("helm upgrade --install istiod istiod"), 1, "the old istiod stays as installed");
    let position = |prefix: &str| calls.iter().rposition(|c| c.starts_with(prefix)).unwrap();
    assert!(position("helm upgrade --install istio-base") < position("helm upgrade --install istiod-1-31-1"));
    let values = std::fs::read_to_string(outcome.run_dir.join("helm/istiod-1-31-1.values.yaml")).unwrap();
    assert!(values.contains("revision: 1-31-1"), "{values}");
    let relabels = relabels.lock().unwrap().clone();
    let namespaces: Vec<&str> = relabels.iter().map(|(ns, _)| ns.as_str()).collect();
    assert_eq!(namespaces, ["kong", "upgrade-istio-canary-under-load-r1"], "{relabels:?}");
    let body: serde_json::Value = serde_json::from_str(&relabels[1].1).unwrap();
    assert_eq!(body["metadata"]["labels"], serde_json::json!({"istio-injection": null, "istio.io/rev": "1-31-1"}));
    let detail = &outcome.report.results[0];
    assert!(matches!(detail.outcome, crate::report::Outcome::Passed), "{detail:?}");
}
