//! Running a loaded scenario against a live cluster: its namespace (with the mesh's injection
//! setting), its fixtures, then its steps in order, each with the waiting semantics of its kind
//! (see `model.rs`). The first failing step ends the scenario; every step leaves a record and
//! every observation is kept, normalised, for the report and the snapshot.
//!
//! Probes observe, checks decide: this module only wires them to the cluster.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::outcome::{FailureKind, LastFailure, StepFailure};
use crate::check::converge::{Attempt, converge, eventually};
use crate::check::denial::Path;
use crate::check::expect::{
    ApplyOutcome, Verdict, evaluate, judge_collector_answer, judge_rejection, judge_traced_request, resolve_ambiguity,
};
use crate::check::injection::PodFacts;
use crate::check::split::{Decision, SplitAnswer, SplitTest, TRANSPORT_RETRIES, drive};
use crate::k8s::{self, Seen};
use crate::probe::http::{HttpProbe, HttpProbeConfig};
use crate::probe::observation::Answer;
use crate::probe::trace::{self, SpanTree, TraceContext};
use crate::probe::{Observation, PodVersions, jwt, pod, pod_proxy};
use crate::profile::TracingPins;
use crate::replay::{Recorded, RecordedStep, Verdict as ReplayVerdict};
use crate::scenario::{
    ApplyStep, DeleteStep, ExpectResourceStep, FromPodStep, HttpStep, LoadedScenario, Mesh, MeshMembershipStep,
    MetricsStep, MetricsTarget, Mutant, NamespaceSettings, RateLimitStep, Rejection, Request, SplitStep, Step,
    TraceStep, WaitCondition, WaitStep,
};

/// How often waiting steps ask again, by default.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// One request's own deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a live run of scenarios needs to know about the environment.
pub struct Live {
    pub client: kube::Client,
    pub mesh: Mesh,
    /// Kong's proxy from the host.
    pub proxy: String,
    pub fixtures_dir: PathBuf,
    /// The in-cluster client image (`images.client`).
    pub client_image: String,
    pub tracing: TracingPins,
    pub kong_namespace: String,
    /// Kong's gateway pods (`stack::kong_gateway_selector`).
    pub kong_selector: String,
    /// How often waiting steps ask again ([`INTERVAL`]; shorter in tests).
    pub interval: Duration,
    /// The longest a mutant's `settle` may wait (shortened in tests).
    pub mutant_settle_cap: Duration,
    /// An untrusted bundle runs: its namespace gets an egress policy that keeps its pods inside
    /// the cluster's own services (`scope::sandbox_policy`).
    pub sandbox: bool,
}

/// What became of a mutant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutantOutcome {
    /// A step's check judged the mutated cluster and failed: at the declared one
    /// (`at == expected`) or earlier. Only a verdict kills.
    Killed { at: usize, expected: usize, detail: String },
    /// The harness could not judge step `at` (an API error, a probe that could not run): the
    /// mutant is neither killed nor shown to survive.
    Unjudged { at: usize, detail: String },
    /// Every step up to the declared one passed: that check cannot fail this way.
    Survived,
    /// The change could not be made, or the run was interrupted.
    NotApplied(String),
    /// The fixtures could not be put back: the scenario's state is unknown.
    NotRestored(String),
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub step: String,
    pub passed: bool,
    /// The verdict: what was seen, and on failure what was expected.
    pub detail: String,
    /// Why it did not pass (`None` when it passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// How long the step took (its waits included).
    #[serde(default)]
    pub duration_ms: u64,
}

/// One scenario's outcome on one mesh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioRun {
    pub scenario: String,
    pub mesh: String,
    pub namespace: String,
    pub passed: bool,
    pub steps: Vec<StepRecord>,
    /// Normalised observations, in order (what the snapshot holds).
    pub observations: Vec<Value>,
    /// Every raw answer of each traffic step, as transcripts `cargo xtask replay` reads:
    /// (file name, YAML).
    #[serde(skip)]
    pub transcripts: Vec<(String, String)>,
}

impl ScenarioRun {
    /// The first failing step's record.
    pub fn failure(&self) -> Option<&StepRecord> {
        self.steps.iter().find(|s| !s.passed)
    }
}

type StepResult = Result<String, StepFailure>;

/// What a scenario observed, in order, for its snapshot: traffic answers and trace shapes.
enum Observed {
    Traffic(Observation),
    /// Already normalised ([`SpanTree::shape`]); the run id is replaced with the rest.
    Trace(Value),
}

fn tree_summary(tree: &SpanTree) -> String {
    format!("services {:?}, edges {:?}", tree.services(), tree.edges())
}

/// Poll answers that repeat the previous one are kept once: a transcript of a long wait stays
/// small, and replay (which needs one passing answer) judges the same.
fn keep_distinct(answers: &mut Vec<Answer>, answer: Answer) {
    if answers.last() != Some(&answer) {
        answers.push(answer);
    }
}

/// The longest a mutant's change may be given to propagate.
pub const MUTANT_SETTLE_CAP: Duration = Duration::from_secs(600);
/// How long a scenario's workloads may take to have pods, and those pods their proxies.
const INJECTION_DEADLINE: Duration = Duration::from_secs(180);

impl Live {
    /// The executor for `profile`'s environment, reached with `client`, Kong's proxy at `proxy`.
    pub fn for_profile(
        client: kube::Client,
        profile: &crate::profile::Profile,
        proxy: String,
        fixtures_dir: PathBuf,
    ) -> Live {
        let v = &profile.versions;
        Live {
            client,
            mesh: profile.mesh(),
            proxy,
            fixtures_dir,
            client_image: v.images.get("client").cloned().unwrap_or_default(),
            tracing: v.tracing.clone(),
            kong_namespace: v.kong.namespace.clone(),
            kong_selector: profile
                .kong_selector
                .clone()
                .unwrap_or_else(|| crate::stack::kong_gateway_selector(&v.kong.release)),
            interval: INTERVAL,
            mutant_settle_cap: MUTANT_SETTLE_CAP,
            sandbox: false,
        }
    }

    /// Run `loaded` in run `run`. Never panics on cluster behaviour; an interrupted scenario fails
    /// at the step it was in.
    pub async fn run(&self, loaded: &LoadedScenario, run: &str, cancel: &CancellationToken) -> ScenarioRun {
        let name = loaded.scenario.name.value.clone();
        let namespace = loaded.vars.get("namespace").unwrap_or_default().to_owned();
        let mut out = ScenarioRun {
            scenario: name,
            mesh: self.mesh.to_string(),
            namespace: namespace.clone(),
            passed: false,
            steps: Vec::new(),
            observations: Vec::new(),
            transcripts: Vec::new(),
        };
        let redact = loaded.scenario.snapshot.redact_headers.clone();
        let mut context = Context::new(self, loaded, &namespace, run);

        let setup = async {
            self.namespace(&namespace, run, &loaded.scenario.namespace).await?;
            let files: Vec<String> = loaded.scenario.fixtures.iter().map(|f| f.value.clone()).collect();
            let applied = context.apply(&files, None, crate::scenario::Timeout::apply().0).await?;
            let injection = context.verify_injection(&files, INJECTION_DEADLINE).await?;
            Ok(format!("{applied}; {injection}"))
        };
        let started = tokio::time::Instant::now();
        let setup = tokio::select! {
            r = setup => r,
            () = cancel.cancelled() => Err(StepFailure::interrupted()),
        };
        out.steps.push(record("namespace and fixtures", setup, started));
        if out.steps[0].passed {
            for (number, step) in loaded.scenario.steps.iter().enumerate() {
                context.step_number = number + 1;
                let description = crate::plan::describe(step);
                let started = tokio::time::Instant::now();
                let result = tokio::select! {
                    r = context.step(step) => r,
                    () = cancel.cancelled() => Err(StepFailure::interrupted()),
                };
                let rec = record(&description, result, started);
                let passed = rec.passed;
                out.steps.push(rec);
                if !passed {
                    break;
                }
            }
        }
        out.passed = out.steps.iter().all(|s| s.passed);
        out.transcripts = std::mem::take(&mut context.transcripts);
        // Normalised with the run id the scenario was rendered with (a retry's is its own).
        let rendered_run = loaded.vars.get("run").unwrap_or(run);
        out.observations = context
            .observations
            .iter()
            .map(|o| match o {
                Observed::Traffic(o) => crate::snapshot::normalise(o, rendered_run, &redact),
                Observed::Trace(shape) => {
                    let mut shape = shape.clone();
                    crate::snapshot::replace_run(&mut shape, rendered_run);
                    shape
                }
            })
            .collect();
        out
    }

    async fn namespace(&self, namespace: &str, run: &str, settings: &NamespaceSettings) -> StepResult {
        // The mesh's injection setting (unless the scenario turns it off) and the scenario's own
        // metadata, exactly as `plan` shows them.
        let metadata = settings.metadata(self.mesh);
        fn pairs(m: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
            m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
        }
        let (labels, annotations) = (pairs(&metadata.labels), pairs(&metadata.annotations));
        k8s::ensure_namespace(&self.client, namespace, run, &labels, &annotations).await.map_err(|e| e.to_string())?;
        if self.sandbox {
            let mesh = match self.mesh {
                Mesh::Istio => "istio-system",
                Mesh::Linkerd => "linkerd",
                Mesh::None => "",
            };
            // Not Kong's namespace: its admin API is a request away from reconfiguring Kong.
            let allowed = [mesh, self.tracing.namespace.as_str()];
            let policy = k8s::labelled(crate::scenario::scope::sandbox_policy(namespace, &allowed), run);
            k8s::apply_guarded(&self.client, &policy, Some(namespace), &in_scope(namespace))
                .await
                .map_err(|e| format!("the untrusted bundle's egress policy could not be applied: {e}"))?;
            return Ok(format!("namespace {namespace}, egress limited to the cluster's own services"));
        }
        Ok(format!("namespace {namespace}"))
    }

    /// Run `mutant` after its scenario passed, in the same namespace: change the fixtures, rerun
    /// the steps up to the one that must fail, then re-apply the scenario's fixtures. Never
    /// panics; a mutant that cannot be applied is reported as such.
    pub async fn run_mutant(
        &self,
        loaded: &LoadedScenario,
        mutant: &Mutant,
        run: &str,
        cancel: &CancellationToken,
    ) -> MutantOutcome {
        let namespace = loaded.vars.get("namespace").unwrap_or_default().to_owned();
        let mut context = Context::new(self, loaded, &namespace, run);
        // The scenario's own fixtures, which `mutant::check` validated the mutant against.
        let files: Vec<String> = loaded.scenario.fixtures.iter().map(|f| f.value.clone()).collect();
        let objects = match context.manifests(&files) {
            Ok(o) => o,
            Err(e) => return MutantOutcome::NotApplied(e),
        };
        let mutation = match crate::scenario::mutant::mutate(&objects, mutant) {
            Ok(m) => m,
            Err(e) => return MutantOutcome::NotApplied(e),
        };
        let applied = async {
            for (api_version, kind, name, ns) in &mutation.delete {
                let ns = ns.as_deref().or(Some(namespace.as_str()));
                k8s::delete_guarded(&self.client, api_version, kind, name, ns, &self.fixture_guard(&namespace))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            for object in &mutation.apply {
                k8s::apply_guarded(&self.client, object, Some(&namespace), &self.fixture_guard(&namespace))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            // The mesh and Kong pick changes up asynchronously; a step judged before that would
            // see the unmutated behaviour.
            tokio::time::sleep(mutant.settle.0.min(self.mutant_settle_cap)).await;
            Ok::<(), String>(())
        };
        let outcome = tokio::select! {
            r = applied => match r {
                Err(e) => MutantOutcome::NotApplied(e),
                Ok(()) => {
                    let mut outcome = MutantOutcome::Survived;
                    for (number, step) in loaded.scenario.steps.iter().enumerate().take(mutant.fails_at as usize) {
                        context.step_number = number + 1;
                        let result = tokio::select! {
                            r = context.step(step) => r,
                            () = cancel.cancelled() => Err(StepFailure::interrupted()),
                        };
                        if cancel.is_cancelled() {
                            // An interrupted step killed nothing.
                            outcome = MutantOutcome::NotApplied("interrupted".into());
                            break;
                        }
                        if let Err(failure) = result {
                            let at = number + 1;
                            outcome = match failure.kind {
                                FailureKind::Verdict => MutantOutcome::Killed {
                                    at,
                                    expected: mutant.fails_at as usize,
                                    detail: failure.detail,
                                },
                                FailureKind::Error => MutantOutcome::Unjudged { at, detail: failure.detail },
                                FailureKind::Interrupted => MutantOutcome::NotApplied("interrupted".into()),
                            };
                            break;
                        }
                    }
                    outcome
                }
            },
            () = cancel.cancelled() => MutantOutcome::NotApplied("interrupted".into()),
        };
        // Back to the scenario as written: the objects the mutant deleted or changed, re-applied
        // as the fixtures have them.
        let mut unrestored = Vec::new();
        for object in &mutation.restore {
            if let Err(e) =
                k8s::apply_guarded(&self.client, object, Some(&namespace), &self.fixture_guard(&namespace)).await
            {
                unrestored.push(e.to_string());
            }
        }
        if unrestored.is_empty() {
            outcome
        } else {
            // Later mutants and a kept cluster would see a changed scenario.
            MutantOutcome::NotRestored(format!("{outcome:?}; restoring failed: {}", unrestored.join("; ")))
        }
    }

    /// Delete the scenario's namespace (only if it is this run's) and the cluster-scoped objects
    /// scenarios may create (`scope::CLUSTER_SCOPED_ALLOWED`) that carry this run's label.
    pub async fn clean_up(&self, namespace: &str, run: &str) -> Result<bool, String> {
        // Every part is attempted; the first failure is reported.
        let mut failed = None;
        // The cluster-scoped objects a scenario may make are named after its namespace: only
        // its own go, not those of scenarios running beside it.
        for (api_version, kind) in crate::scenario::scope::CLUSTER_SCOPED_ALLOWED {
            let owned = |name: &str| crate::scenario::scope::owned_by_namespace(name, namespace);
            if let Err(e) = k8s::delete_labelled(&self.client, api_version, kind, run, owned).await {
                failed.get_or_insert(e.to_string());
            }
        }
        let deleted = k8s::delete_run_namespace(&self.client, namespace, run).await.map_err(|e| e.to_string())?;
        failed.map_or(Ok(deleted), Err)
    }
}

/// The guard of every write a scenario makes: its namespace, or an allowed cluster-scoped kind.
fn in_scope(namespace: &str) -> impl Fn(&Value, bool) -> Result<(), String> + Sync + '_ {
    move |object, cluster_scoped| crate::scenario::scope::guard(object, cluster_scoped, namespace)
}

impl Live {
    /// The guard of every write of a scenario's own objects (fixtures, deletes, mutants): the
    /// scope, and for an untrusted bundle the sandbox's rules on the object actually sent, so
    /// nothing the offline check saw differently (another rendering, an apply step) slips by.
    /// The harness's own objects (client pods, the sandbox's policy) go through [`in_scope`].
    fn fixture_guard<'n>(&'n self, namespace: &'n str) -> impl Fn(&Value, bool) -> Result<(), String> + Sync + 'n {
        move |object, cluster_scoped| {
            crate::scenario::scope::guard(object, cluster_scoped, namespace)?;
            if !self.sandbox {
                return Ok(());
            }
            let reachable = [namespace, self.tracing.namespace.as_str()];
            match crate::scenario::scope::untrusted_object_problem(object, &reachable) {
                Some((path, why)) => Err(format!(
                    "{} {}: {why} (at {}; the untrusted bundle's sandbox refuses it)",
                    object.get("kind").and_then(Value::as_str).unwrap_or_default(),
                    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default(),
                    path.join(".")
                )),
                None => Ok(()),
            }
        }
    }
}

fn record(step: &str, result: StepResult, started: tokio::time::Instant) -> StepRecord {
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(detail) => StepRecord { step: step.to_owned(), passed: true, detail, failure: None, duration_ms },
        Err(f) => {
            StepRecord { step: step.to_owned(), passed: false, detail: f.detail, failure: Some(f.kind), duration_ms }
        }
    }
}

struct Context<'a> {
    live: &'a Live,
    loaded: &'a LoadedScenario,
    namespace: &'a str,
    run: &'a str,
    observations: Vec<Observed>,
    transcripts: Vec<(String, String)>,
    /// 1-based number of the step running, for transcript names.
    step_number: usize,
    /// Services of the scenario's namespace whose echo backend answered a meshed client in an
    /// earlier step: an ambiguous denial through Kong counts as the mesh's only when every
    /// Service Kong routes the request to is among them ([`Context::route_backend_proven`]).
    proven: std::collections::BTreeSet<String>,
    /// Whether the traffic step running had that proof (recorded in its transcript).
    backend_proven: bool,
}

impl<'a> Context<'a> {
    fn new(live: &'a Live, loaded: &'a LoadedScenario, namespace: &'a str, run: &'a str) -> Self {
        Context {
            live,
            loaded,
            namespace,
            run,
            observations: Vec::new(),
            transcripts: Vec::new(),
            step_number: 0,
            proven: std::collections::BTreeSet::new(),
            backend_proven: false,
        }
    }

    fn var(&self, name: &str) -> String {
        self.loaded.vars.get(name).unwrap_or_default().to_owned()
    }

    async fn step(&mut self, step: &Step) -> StepResult {
        // Each traffic step establishes its own proof; no step's transcript inherits another's.
        self.backend_proven = false;
        match step {
            Step::Apply(s) => self.apply_step(s).await,
            Step::Delete(s) => self.delete(s).await,
            Step::Wait(s) => self.wait(s).await,
            Step::Http(s) => self.http(s).await,
            Step::Split(s) => self.split(s).await,
            Step::Trace(s) => self.trace(s).await,
            Step::RateLimit(s) => self.rate_limit(s).await,
            Step::FromPod(s) => self.request_from_pod(s).await,
            Step::ExpectResource(s) => self.expect_resource(s).await,
            Step::Metrics(s) => self.metrics(s).await,
            Step::MeshMembership(s) => self.mesh_membership(s).await,
        }
    }

    /// The scenario namespace's pods, as the injection checks see them.
    async fn pod_facts(&self, selector: Option<&str>) -> Result<Vec<PodFacts>, String> {
        let pods: Api<Pod> = Api::namespaced(self.live.client.clone(), self.namespace);
        let params = selector.map_or_else(ListParams::default, |s| ListParams::default().labels(s));
        let list = pods.list(&params).await.map_err(|e| format!("listing pods in {}: {e}", self.namespace))?;
        let container = self.live.mesh.proxy_container().unwrap_or_default();
        Ok(list
            .items
            .iter()
            // A pod being deleted is on its way out (possibly restarted by the check below).
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| PodFacts {
                name: p.metadata.name.clone().unwrap_or_default(),
                labels: p.metadata.labels.clone().unwrap_or_default(),
                annotations: p.metadata.annotations.clone().unwrap_or_default(),
                has_proxy: k8s::proxy_placement(p, container).is_some(),
                owned: p.metadata.owner_references.as_ref().is_some_and(|o| !o.is_empty()),
            })
            .collect())
    }

    /// After the fixtures are applied on a meshed profile: every workload has pods, and each pod
    /// whose namespace (or own opt-in) asks for the proxy carries it. A pod that raced the
    /// injector is restarted once; if its replacement also lacks the proxy the setup fails
    /// naming it (see `check::injection`).
    async fn verify_injection(&self, files: &[String], within: Duration) -> StepResult {
        let mesh = self.live.mesh;
        let Some(container) = mesh.proxy_container() else {
            return Ok("no mesh, no injection to verify".into());
        };
        let injects = self.loaded.scenario.namespace.injects(mesh);
        // The pod templates' selectors of the workloads the fixtures create in this namespace.
        let workloads: Vec<(String, BTreeMap<String, String>)> = self
            .manifests(files)?
            .iter()
            .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "StatefulSet" | "DaemonSet")))
            .filter(|o| o.pointer("/metadata/namespace").and_then(Value::as_str).is_none_or(|ns| ns == self.namespace))
            .map(|o| {
                let selector = o
                    .pointer("/spec/selector/matchLabels")
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                    .unwrap_or_default();
                (o["metadata"]["name"].as_str().unwrap_or_default().to_owned(), selector)
            })
            .collect();
        let deadline = tokio::time::Instant::now() + within;
        let mut restarted: Vec<String> = Vec::new();
        loop {
            let pods = self.pod_facts(None).await?;
            let waiting: Vec<&str> = workloads
                .iter()
                .filter(|(_, sel)| !pods.iter().any(|p| sel.iter().all(|(k, v)| p.labels.get(k) == Some(v))))
                .map(|(name, _)| name.as_str())
                .collect();
            let missing = crate::check::injection::missing_proxy(mesh, injects, &pods);
            let seen = if !waiting.is_empty() {
                format!("no pods yet for {}", waiting.join(", "))
            } else if missing.is_empty() {
                let restarts = if restarted.is_empty() {
                    String::new()
                } else {
                    format!(" (restarted {} that started without it)", restarted.join(", "))
                };
                return Ok(format!("{} pod(s) checked for {container}{restarts}", pods.len()));
            } else if !restarted.is_empty() || missing.iter().any(|p| !p.owned) {
                let names: Vec<&str> = missing.iter().map(|p| p.name.as_str()).collect();
                return Err(StepFailure::error(format!(
                    "pod(s) {} lack {container} although their namespace asks for it{}; the mesh's injector did not inject them",
                    names.join(", "),
                    if restarted.is_empty() {
                        " (no controller to restart them)".to_owned()
                    } else {
                        format!(", even after restarting {}", restarted.join(", "))
                    }
                )));
            } else {
                for pod in &missing {
                    k8s::delete(&self.live.client, "v1", "Pod", &pod.name, Some(self.namespace))
                        .await
                        .map_err(|e| format!("restarting {} (started without {container}): {e}", pod.name))?;
                    restarted.push(pod.name.clone());
                }
                format!("restarted {} (started without {container})", restarted.join(", "))
            };
            if tokio::time::Instant::now() + self.live.interval > deadline {
                return Err(StepFailure::error(format!(
                    "pods not ready for the mesh check within {within:?}; last seen: {seen}"
                )));
            }
            tokio::time::sleep(self.live.interval).await;
        }
    }

    async fn mesh_membership(&self, s: &MeshMembershipStep) -> StepResult {
        let selector = s.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let mesh = self.live.mesh;
        let what = if s.meshed { "carry" } else { "do not carry" };
        let expected = format!("pods {selector} {what} the mesh proxy");
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval, &expected, || async {
            match self.pod_facts(Some(&selector)).await {
                Ok(pods) => {
                    last.judged();
                    crate::check::injection::membership(mesh, &pods, s.meshed, &selector)
                }
                Err(e) => {
                    last.errored();
                    Attempt::Fail(Seen(e))
                }
            }
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }

    fn manifests(&self, files: &[String]) -> Result<Vec<Value>, String> {
        let mut objects = Vec::new();
        for file in files {
            let path = self.live.fixtures_dir.join(file);
            let manifests = crate::scenario::fixture::load(&path, &self.loaded.vars).map_err(|e| e.to_string())?;
            objects.extend(manifests.into_iter().map(|m| {
                let object =
                    if self.live.sandbox { crate::scenario::scope::with_default_seccomp(m.object) } else { m.object };
                k8s::labelled(object, self.run)
            }));
        }
        Ok(objects)
    }

    /// Apply `files`; eventually (a webhook may not serve yet). With `rejected`, the API server
    /// must refuse them the way it says.
    async fn apply(&self, files: &[String], rejected: Option<&Rejection>, within: Duration) -> StepResult {
        let objects = self.manifests(files)?;
        let client = &self.live.client;
        if let Some(expected) = rejected {
            let mut outcome = ApplyOutcome::Accepted;
            for object in &objects {
                if let Err(e) =
                    k8s::apply_guarded(client, object, Some(self.namespace), &self.live.fixture_guard(self.namespace))
                        .await
                {
                    outcome = match e {
                        k8s::KubeError::UnknownKind { api_version, kind, .. } => {
                            ApplyOutcome::UnknownKind { kind: format!("{api_version} {kind}") }
                        }
                        k8s::KubeError::Apply { server_message: Some(server_message), .. } => {
                            ApplyOutcome::Refused { server_message }
                        }
                        other => ApplyOutcome::Failed(other.to_string()),
                    };
                    break;
                }
            }
            let failed_otherwise = matches!(outcome, ApplyOutcome::Failed(_));
            return judge_rejection(expected, &outcome).map_err(|detail| {
                // The API server's answer was judged, unless the apply failed some other way.
                if failed_otherwise { StepFailure::error(detail) } else { StepFailure::verdict(detail) }
            });
        }
        let applied = eventually(within, self.live.interval * 2, &format!("{} applied", files.join(", ")), || async {
            for object in &objects {
                if let Err(e) =
                    k8s::apply_guarded(client, object, Some(self.namespace), &self.live.fixture_guard(self.namespace))
                        .await
                {
                    return Attempt::Fail(Seen(e.to_string()));
                }
            }
            Attempt::Pass(Seen(format!("{} object(s)", objects.len())))
        })
        .await;
        // Objects that could not be applied leave nothing to judge: the harness's failure.
        applied.map(|seen| format!("applied {}", seen.0)).map_err(|e| StepFailure::error(e.to_string()))
    }

    async fn apply_step(&self, s: &ApplyStep) -> StepResult {
        let files: Vec<String> = s.fixtures.iter().map(|f| f.value.clone()).collect();
        self.apply(&files, s.rejected.as_ref(), s.timeout.0).await
    }

    async fn delete(&self, s: &DeleteStep) -> StepResult {
        let targets: Vec<(String, String, String, Option<String>)> = match &s.resource {
            Some(r) => vec![(r.api_version.clone(), r.kind.clone(), r.name.clone(), r.namespace.clone())],
            None => {
                let files: Vec<String> = s.fixtures.iter().map(|f| f.value.clone()).collect();
                self.manifests(&files)?
                    .iter()
                    .map(|o| {
                        let text = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
                        let ns = o.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_owned);
                        (text("/apiVersion"), text("/kind"), text("/metadata/name"), ns)
                    })
                    .collect()
            }
        };
        let client = &self.live.client;
        // A DELETE only starts a deletion: finalizers and graceful shutdown keep the object
        // (with its `deletionTimestamp`) until they are done. The step passes when every object
        // is gone, as the scenario format documents; each is deleted once, then looked at.
        // Foreground propagation, so "gone" includes the dependents: with the default
        // (background) a Deployment vanishes at once while its pods still terminate and serve.
        let requested = std::cell::RefCell::new(vec![false; targets.len()]);
        let last = LastFailure::default();
        let expected = format!("{} object(s) deleted and gone", targets.len());
        let outcome = eventually(s.timeout.0, self.live.interval * 2, &expected, || async {
            let mut still = Vec::new();
            for (i, (api_version, kind, name, ns)) in targets.iter().enumerate() {
                let ns = ns.as_deref().or(Some(self.namespace));
                let asked = requested.borrow().get(i).copied().unwrap_or(false);
                if !asked {
                    if let Err(e) = k8s::delete_guarded_foreground(
                        client,
                        api_version,
                        kind,
                        name,
                        ns,
                        &self.live.fixture_guard(self.namespace),
                    )
                    .await
                    {
                        last.errored();
                        return Attempt::Fail(Seen(e.to_string()));
                    }
                    if let Some(done) = requested.borrow_mut().get_mut(i) {
                        *done = true;
                    }
                }
                match k8s::get(client, api_version, kind, name, ns).await {
                    Ok(None) => {}
                    Ok(Some(object)) => still.push(format!("{kind}/{name} {}", deletion_state(&object))),
                    Err(e) => {
                        last.errored();
                        return Attempt::Fail(Seen(e.to_string()));
                    }
                }
            }
            if still.is_empty() {
                Attempt::Pass(Seen(expected.clone()))
            } else {
                last.judged();
                Attempt::Fail(Seen(format!("still there: {}", still.join(", "))))
            }
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }

    async fn wait(&self, s: &WaitStep) -> StepResult {
        let r = &s.resource;
        let ns = r.namespace.as_deref().or(Some(self.namespace));
        let expected = format!("{}/{} {}", r.kind, r.name, s.condition);
        let client = &self.live.client;
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval, &expected, || async {
            let object = match k8s::get(client, &r.api_version, &r.kind, &r.name, ns).await {
                Ok(o) => o,
                Err(e) => {
                    last.errored();
                    return Attempt::Fail(Seen(e.to_string()));
                }
            };
            last.judged();
            condition_met(s.condition, object.as_ref())
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }

    /// The `version` label of each pod of the scenario's namespace: which version answered.
    /// An API error is the harness's, never an answer "from no version".
    async fn pod_versions(&self) -> Result<PodVersions, String> {
        let pods: Api<Pod> = Api::namespaced(self.live.client.clone(), self.namespace);
        let list = pods
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .map_err(|e| format!("listing the pods of {} to tell versions apart: {e}", self.namespace))?;
        Ok(PodVersions(
            list.into_iter()
                .filter_map(|p| {
                    let version = p.metadata.labels.as_ref()?.get("version")?.clone();
                    Some((p.metadata.name?, version))
                })
                .collect(),
        ))
    }

    fn probe(&self, keep_alive: bool) -> Result<HttpProbe, String> {
        let config = HttpProbeConfig { endpoint: self.live.proxy.clone(), timeout: REQUEST_TIMEOUT, keep_alive };
        HttpProbe::new(config).map_err(|e| e.to_string())
    }

    /// Headers the harness adds to a request: a JWT when asked for.
    fn extra_headers(&self, request: &Request) -> BTreeMap<String, String> {
        let mut extra = BTreeMap::new();
        if let Some(kind) = request.jwt {
            let token = jwt::token(kind, &self.var("jwt.key"), &self.var("jwt.secret"), jwt::now());
            extra.insert("authorization".to_owned(), format!("Bearer {token}"));
        }
        extra
    }

    async fn http(&mut self, s: &HttpStep) -> StepResult {
        let probe = self.probe(false)?;
        let host = self.var("host");
        let extra = self.extra_headers(&s.request);
        let mesh = self.live.mesh;
        let expected = format!("{} {} -> {}", s.request.method, s.request.path, expectation(&s.expect));
        let answers = std::cell::RefCell::new(Vec::new());
        self.backend_proven = self.route_backend_proven(&s.request.path);
        let backend_proven = self.backend_proven;
        let last = LastFailure::default();
        let outcome = converge(s.converge.passes, s.converge.within.0, self.live.interval, &expected, || async {
            let versions = match self.pod_versions().await {
                Ok(v) => v,
                Err(e) => {
                    last.errored();
                    return Attempt::Fail(Failed::Unjudged(Unjudged(e)));
                }
            };
            let observation = probe.send(&s.request, &host, &extra, &versions).await;
            answers.borrow_mut().push(Answer::record(&observation, &self.loaded.scenario.snapshot.redact_headers));
            // Every observation is judged, a transport failure through Kong included.
            last.judged();
            let verdict = evaluate(&s.expect, &observation, mesh, Path::ThroughKong);
            judged(resolve_ambiguity(verdict, backend_proven), observation)
        })
        .await;
        self.record(RecordedStep::Http(s), answers.into_inner(), outcome.is_ok());
        self.keep(outcome, &last)
    }

    /// Whether every Service Kong routes `path` (on the scenario's host) to has answered a meshed
    /// client earlier, read from the scenario's Ingresses. No route found means no proof.
    fn route_backend_proven(&self, path: &str) -> bool {
        let files: Vec<String> = self.loaded.scenario.fixtures.iter().map(|f| f.value.clone()).collect();
        let Ok(objects) = self.manifests(&files) else { return false };
        let backends = ingress_backends(&objects, &self.var("host"), path);
        !backends.is_empty() && backends.iter().all(|b| self.proven.contains(b))
    }

    /// Keep a step's raw answers as a transcript that replays to the verdict it reached.
    fn record(&mut self, step: RecordedStep<'_>, answers: Vec<Answer>, passed: bool) {
        self.record_traced(step, None, answers, passed);
    }

    /// [`Self::record`], naming the trace id a trace step sent.
    fn record_traced(&mut self, step: RecordedStep<'_>, trace_id: Option<&str>, answers: Vec<Answer>, passed: bool) {
        let kind = match step {
            RecordedStep::Http(_) => "http",
            RecordedStep::FromPod(_) => "from-pod",
            RecordedStep::Split(_) => "split",
            RecordedStep::Trace(_) => "trace",
        };
        let verdict = if passed { ReplayVerdict::Pass } else { ReplayVerdict::Fail };
        let recorded =
            Recorded { mesh: self.live.mesh, trace_id, backend_proven: self.backend_proven, step, answers, verdict };
        match serde_saphyr::to_string(&recorded) {
            Ok(text) => self.transcripts.push((format!("{:02}-{kind}.yaml", self.step_number), text)),
            Err(e) => tracing::warn!(
                "step {} answers not recorded: {}",
                self.step_number,
                crate::names::printable(&e.to_string())
            ),
        }
    }

    /// A traffic step's end: the passing observation kept for the snapshot, or the failure of
    /// the kind `last` says the last attempt was.
    fn keep(
        &mut self,
        outcome: Result<Judged, crate::check::converge::NotConverged>,
        last: &LastFailure,
    ) -> StepResult {
        match outcome {
            Ok(judged) => {
                let summary = judged.summary();
                self.observations.push(Observed::Traffic(judged.observation));
                Ok(summary)
            }
            Err(e) => Err(last.failure(e.to_string())),
        }
    }

    async fn split(&mut self, s: &SplitStep) -> StepResult {
        let probe = self.probe(false)?;
        let host = self.var("host");
        let versions = self.pod_versions().await?;
        let next = || async { SplitAnswer::of(&probe.send(&s.request, &host, &BTreeMap::new(), &versions).await) };
        let settled = match s.settle {
            None => String::new(),
            Some(settle) => {
                match crate::check::split::settle(&s.weights, settle.tolerance, settle.within.0, next).await {
                    Ok(windows) => format!("route in effect after {windows} pre-window(s); "),
                    Err(last) => {
                        let evidence = serde_json::to_string(&last.evidence).unwrap_or_default();
                        // Recorded all the same: its measurement never started.
                        self.record(RecordedStep::Split(&SplitStep { settle: None, ..s.clone() }), Vec::new(), false);
                        return Err(StepFailure::verdict(format!(
                            "the route was not in effect within {}: the last pre-window (±{}) was {:?}: {evidence}",
                            settle.within, settle.tolerance, last.decision
                        )));
                    }
                }
            }
        };
        let test = SplitTest::from_weights(&s.weights, s.tolerance, u64::from(s.max_requests));
        // The measurement's answers (not the settle windows') are recorded, version and status
        // only: thousands of echo bodies would say nothing the split judges.
        let answers = std::cell::RefCell::new(Vec::new());
        let verdict = drive(&test, s.timeout.0, TRANSPORT_RETRIES, || async {
            let observation = probe.send(&s.request, &host, &BTreeMap::new(), &versions).await;
            let mut answer = Answer::record(&observation, &self.loaded.scenario.snapshot.redact_headers);
            answer.headers.clear();
            answer.body.clear();
            answers.borrow_mut().push(answer);
            SplitAnswer::of(&observation)
        })
        .await;
        let measured = SplitStep { settle: None, ..s.clone() };
        self.record(RecordedStep::Split(&measured), answers.into_inner(), verdict.decision == Decision::Pass);
        let evidence = serde_json::to_string(&verdict.evidence).unwrap_or_default();
        let dropped = match verdict.transport_failures.len() {
            0 => String::new(),
            n => format!(
                "; {n} request(s) without an answer, retried and not counted: {}",
                verdict.transport_failures.join(" | ")
            ),
        };
        match verdict.decision {
            Decision::Pass => Ok(format!("{settled}split within tolerance: {evidence}{dropped}")),
            other => Err(StepFailure::verdict(format!(
                "{settled}split not as declared ({other:?}){}: {evidence}{dropped}",
                verdict.stray.map(|s| format!(", {s}")).unwrap_or_default()
            ))),
        }
    }

    /// The collector's answer for `trace_id`, as a transcript records it. The API server
    /// relays the collector's status and body; Jaeger's 404 is "not collected yet".
    async fn collector_answer(&self, trace_id: &str) -> Answer {
        let t = &self.live.tracing;
        let uri = trace::query_path(&t.namespace, &t.service, t.query_port, trace_id);
        match pod_proxy::get_relayed(&self.live.client, &uri).await {
            Ok((status, body)) => Answer { status: Some(status), body, ..Answer::default() },
            Err(message) => Answer { message: Some(message), ..Answer::default() },
        }
    }

    /// One request with the harness's own trace context in the step's format; what the backend
    /// received of it is judged at once, then the collector is polled for that trace until it
    /// passes, and asked once more after `quiet`: spans still on their way (Linkerd's proxies
    /// export every 10 s) would fail an `absent` too early and make the snapshot's shape depend
    /// on timing. That last answer decides, and its tree is the snapshot's. Every answer is kept
    /// as the step's transcript (the request's first).
    async fn trace(&mut self, s: &TraceStep) -> StepResult {
        let probe = self.probe(false)?;
        let host = self.var("host");
        let context = TraceContext::fresh();
        let trace_id = context.trace_id.clone();
        let mut headers = context.headers(s.context);
        headers.extend(self.extra_headers(&s.request));
        let versions = self.pod_versions().await?;
        let observation = probe.send(&s.request, &host, &headers, &versions).await;
        // The trace headers stay as they were, whatever the scenario redacts: replay judges them.
        let redact: Vec<String> = (self.loaded.scenario.snapshot.redact_headers.iter())
            .filter(|h| !trace::TRACE_HEADERS.contains(&h.to_ascii_lowercase().as_str()))
            .cloned()
            .collect();
        let mut answers = vec![Answer::record(&observation, &redact)];
        let request = judge_traced_request(&s.expect, &trace_id, &observation);
        self.observations.push(Observed::Traffic(observation));
        if let Err(e) = request {
            self.record_trace(s, &trace_id, answers, false);
            return Err(StepFailure::verdict(e));
        }

        let expected = format!("trace {trace_id} with services {:?}", s.expect.services);
        let polled = std::cell::RefCell::new(Vec::<Answer>::new());
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval * 2, &expected, || async {
            let answer = self.collector_answer(&trace_id).await;
            let (tree, verdict) = judge_collector_answer(&s.expect, &trace_id, &answer);
            keep_distinct(&mut polled.borrow_mut(), answer);
            match tree {
                Some(_) if verdict.passed() => Attempt::Pass(()),
                Some(tree) => {
                    last.judged();
                    Attempt::Fail(Seen(format!("services {:?}: {verdict}", tree.services())))
                }
                // No tree: the collector (the harness's own) failed or answered unreadably.
                None => {
                    last.errored();
                    Attempt::Fail(Seen(verdict.to_string()))
                }
            }
        })
        .await;
        answers.extend(polled.into_inner());
        if let Err(e) = outcome {
            self.record_trace(s, &trace_id, answers, false);
            return Err(last.failure(e.to_string()));
        }
        tokio::time::sleep(s.expect.quiet.0).await;
        let last = self.collector_answer(&trace_id).await;
        let (tree, verdict) = judge_collector_answer(&s.expect, &trace_id, &last);
        answers.push(last);
        let passed = verdict.passed();
        self.record_trace(s, &trace_id, answers, passed);
        match tree {
            Some(tree) if passed => {
                let shape = json!({"trace": {"context": s.context, "tree": tree.shape()}});
                self.observations.push(Observed::Trace(shape));
                Ok(format!("trace {trace_id} ({}): {}", s.context, tree_summary(&tree)))
            }
            Some(_) => {
                Err(StepFailure::verdict(format!("trace {trace_id} asked again after {}: {verdict}", s.expect.quiet)))
            }
            None => {
                Err(StepFailure::error(format!("trace {trace_id} asked again after {}: {verdict}", s.expect.quiet)))
            }
        }
    }

    fn record_trace(&mut self, s: &TraceStep, trace_id: &str, answers: Vec<Answer>, passed: bool) {
        self.record_traced(RecordedStep::Trace(s), Some(trace_id), answers, passed);
    }

    async fn rate_limit(&mut self, s: &RateLimitStep) -> StepResult {
        // Keep-alive: the burst must land inside one window.
        let probe = self.probe(true)?;
        let host = self.var("host");
        let versions = self.pod_versions().await?;
        let extra = self.extra_headers(&s.request);
        let send = || probe.send(&s.request, &host, &extra, &versions);
        let outcome = tokio::time::timeout(
            s.timeout.0,
            crate::check::rate_limit::run(s.limit, s.window, send, tokio::time::sleep),
        )
        .await;
        match outcome {
            Ok(Ok(())) => Ok(format!("{} requests admitted in a fresh window, the next one got 429", s.limit)),
            Ok(Err(e)) => Err(StepFailure::verdict(e)),
            // The measurement could not finish: nothing was judged.
            Err(_) => Err(StepFailure::error(format!("not decided within {:?}", s.timeout.0))),
        }
    }

    async fn request_from_pod(&mut self, s: &FromPodStep) -> StepResult {
        let client = &self.live.client;
        let ns = s.client.namespace.clone().unwrap_or_else(|| self.namespace.to_owned());
        let manifest = pod::client_pod_manifest(
            self.live.mesh,
            s.client.meshed,
            &ns,
            s.client.service_account.as_deref(),
            &self.live.client_image,
        );
        let name = manifest["metadata"]["name"].as_str().unwrap_or("client").to_owned();
        if let Some(account) = s.client.service_account.as_deref().filter(|_| ns == self.namespace) {
            let sa = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                                        "metadata": {"name": account, "namespace": ns}});
            k8s::apply_guarded(client, &k8s::labelled(sa, self.run), Some(&ns), &in_scope(self.namespace))
                .await
                .map_err(|e| e.to_string())?;
        }
        k8s::apply_guarded(client, &k8s::labelled(manifest, self.run), Some(&ns), &in_scope(self.namespace))
            .await
            .map_err(|e| e.to_string())?;
        let ready = eventually(
            Duration::from_secs(180),
            self.live.interval,
            &format!("client pod {ns}/{name} Ready"),
            || async {
                match k8s::get(client, "v1", "Pod", &name, Some(&ns)).await {
                    Ok(o) => condition_met(WaitCondition::Ready, o.as_ref()),
                    Err(e) => Attempt::Fail(Seen(e.to_string())),
                }
            },
        )
        .await;
        ready.map_err(|e| e.to_string())?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if let Some(container) = self.live.mesh.proxy_container() {
            let pod = pods.get(&name).await.map_err(|e| format!("reading client pod {ns}/{name}: {e}"))?;
            let has_proxy = k8s::proxy_placement(&pod, container).is_some();
            crate::check::injection::client_as_asked(
                self.live.mesh,
                &format!("{ns}/{name}"),
                has_proxy,
                s.client.meshed,
            )?;
        }
        let mesh = self.live.mesh;
        let expected = format!("{} {} from {name} -> {}", s.method, s.url, expectation(&s.expect));
        let answers = std::cell::RefCell::new(Vec::new());
        let last = LastFailure::default();
        let outcome = converge(s.converge.passes, s.converge.within.0, self.live.interval, &expected, || async {
            let versions = match self.pod_versions().await {
                Ok(v) => v,
                Err(e) => {
                    last.errored();
                    return Attempt::Fail(Failed::Unjudged(Unjudged(e)));
                }
            };
            let argv = pod::command(s.method, &s.url, &s.headers, REQUEST_TIMEOUT);
            match pod::send(&pods, &name, &ns, argv, REQUEST_TIMEOUT + Duration::from_secs(5), &versions).await {
                Ok(observation) => {
                    answers
                        .borrow_mut()
                        .push(Answer::record(&observation, &self.loaded.scenario.snapshot.redact_headers));
                    last.judged();
                    judged(evaluate(&s.expect, &observation, mesh, Path::FromPod), observation)
                }
                // The exec itself failed: recorded as a failed attempt, so replay resets its
                // count where the live run did.
                Err(e) => {
                    last.errored();
                    let message = e.to_string();
                    answers.borrow_mut().push(Answer {
                        error: Some(crate::probe::TransportKind::Other),
                        message: Some(message.clone()),
                        ..Answer::default()
                    });
                    Attempt::Fail(Failed::Unjudged(Unjudged(message)))
                }
            }
        })
        .await;
        self.record(RecordedStep::FromPod(s), answers.into_inner(), outcome.is_ok());
        if let Ok(judged) = &outcome
            && s.client.meshed
            && matches!(&judged.observation.outcome, crate::probe::Outcome::Response(r) if r.echo.is_some())
            && let Some(service) = service_of_url(&s.url, self.namespace)
        {
            self.proven.insert(service);
        }
        self.keep(outcome, &last)
    }

    async fn expect_resource(&self, s: &ExpectResourceStep) -> StepResult {
        let r = &s.resource;
        let ns = r.namespace.as_deref().or(Some(self.namespace));
        let client = &self.live.client;
        let expected = format!("{}/{} to include {}", r.kind, r.name, s.matches);
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval, &expected, || async {
            match k8s::get(client, &r.api_version, &r.kind, &r.name, ns).await {
                Ok(Some(object)) => match mismatch(&s.matches, &object, "") {
                    None => Attempt::Pass(Seen(format!("{}/{} matches", r.kind, r.name))),
                    Some(m) => {
                        last.judged();
                        Attempt::Fail(Seen(m))
                    }
                },
                Ok(None) => {
                    last.judged();
                    Attempt::Fail(Seen(format!("{}/{} does not exist", r.kind, r.name)))
                }
                Err(e) => {
                    last.errored();
                    Attempt::Fail(Seen(e.to_string()))
                }
            }
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }

    async fn metrics(&self, s: &MetricsStep) -> StepResult {
        let client = &self.live.client;
        let (namespace, selector, port, path) = match &s.target {
            // Kong's status listener (kong chart `status.http.containerPort`, 8100).
            MetricsTarget::Kong => (self.live.kong_namespace.clone(), self.live.kong_selector.clone(), 8100, "metrics"),
            MetricsTarget::MeshProxy { selector } => {
                let selector = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
                match self.live.mesh {
                    Mesh::Istio => (self.namespace.to_owned(), selector, 15020, "stats/prometheus"),
                    Mesh::Linkerd => (self.namespace.to_owned(), selector, 4191, "metrics"),
                    Mesh::None => return Err("no mesh proxy on mesh none".into()),
                }
            }
        };
        let expected = s.expect.iter().map(|e| e.name.clone()).collect::<Vec<_>>().join(", ");
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval * 2, &expected, || async {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let list = match pods.list(&ListParams::default().labels(&selector)).await {
                Ok(l) => l.items,
                Err(e) => {
                    last.errored();
                    return Attempt::Fail(Seen(e.to_string()));
                }
            };
            let mut samples = Vec::new();
            for p in &list {
                let name = p.metadata.name.clone().unwrap_or_default();
                let endpoint = pod_proxy::PodEndpoint { namespace: &namespace, pod: &name, port, path };
                match pod_proxy::get(client, &endpoint).await {
                    Ok(text) => samples.extend(crate::check::metrics::parse(&text)),
                    Err(e) => {
                        last.errored();
                        return Attempt::Fail(Seen(format!("{name}: {e}")));
                    }
                }
            }
            if list.is_empty() {
                last.judged();
                return Attempt::Fail(Seen(format!("no pods {selector} in {namespace}")));
            }
            let verdict = crate::check::metrics::evaluate(&s.expect, &samples);
            if verdict.passed() {
                Attempt::Pass(Seen(verdict.to_string()))
            } else {
                last.judged();
                Attempt::Fail(Seen(verdict.to_string()))
            }
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }
}

/// The Service a from-pod URL names in `namespace`: `http://<svc>[.<namespace>[.svc[.cluster.local]]][:port]/...`.
pub fn service_of_url(url: &str, namespace: &str) -> Option<String> {
    if !crate::scenario::scope::own_service_url(url, namespace) {
        return None;
    }
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#', ':', '.']).next()?;
    Some(host.to_owned())
}

/// The Services the Ingresses among `objects` send `host` + `path` to (KIC's matching: a rule
/// for the host or for any host; `Exact` paths equal, `Prefix` and `ImplementationSpecific`
/// paths prefix by path segment).
fn ingress_backends(objects: &[Value], host: &str, path: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for ingress in objects.iter().filter(|o| o["kind"] == "Ingress") {
        for rule in ingress.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten() {
            if rule.get("host").and_then(Value::as_str).is_some_and(|h| h != host) {
                continue;
            }
            for p in rule.pointer("/http/paths").and_then(Value::as_array).into_iter().flatten() {
                let want = p.get("path").and_then(Value::as_str).unwrap_or("/");
                let matches = match p.get("pathType").and_then(Value::as_str) {
                    Some("Exact") => path == want,
                    _ => {
                        let want = want.trim_end_matches('/');
                        want.is_empty() || path == want || path.starts_with(&format!("{want}/"))
                    }
                };
                if let (true, Some(service)) = (matches, p.pointer("/backend/service/name").and_then(Value::as_str)) {
                    out.insert(service.to_owned());
                }
            }
        }
    }
    out
}

/// An expectation as the scenario file would write it.
fn expectation(expect: &crate::scenario::Expect) -> String {
    serde_json::to_string(expect).unwrap_or_else(|_| format!("{expect:?}"))
}

/// A judged observation.
struct Judged {
    verdict: Verdict,
    observation: Observation,
}

impl Judged {
    fn summary(&self) -> String {
        if let Some(denial) = self.verdict.denial {
            return format!("refused: {denial}");
        }
        match &self.observation.outcome {
            crate::probe::Outcome::Response(r) => format!(
                "HTTP {}{}",
                r.status,
                r.echo.as_ref().map(|e| format!(" from {}", crate::snapshot::pod_name(&e.pod))).unwrap_or_default()
            ),
            crate::probe::Outcome::Transport { kind, .. } => format!("no response ({kind:?})"),
        }
    }
}

impl std::fmt::Debug for Judged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.summary(), self.verdict)
    }
}

/// What could not be judged (the probe itself failed).
struct Unjudged(String);

impl std::fmt::Debug for Unjudged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

enum Failed {
    Judged(Judged),
    Unjudged(Unjudged),
}

impl std::fmt::Debug for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Judged(j) => j.fmt(f),
            Failed::Unjudged(u) => u.fmt(f),
        }
    }
}

fn judged(verdict: Verdict, observation: Observation) -> Attempt<Judged, Failed> {
    let j = Judged { verdict, observation };
    if j.verdict.passed() { Attempt::Pass(j) } else { Attempt::Fail(Failed::Judged(j)) }
}

/// Why an object asked to be deleted is still there: being deleted since its
/// `deletionTimestamp`, held by the finalizers it still lists (metav1 `ObjectMeta`), or not
/// being deleted at all (recreated, or the DELETE did not take).
fn deletion_state(object: &Value) -> String {
    let finalizers: Vec<&str> = object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let held = if finalizers.is_empty() { String::new() } else { format!("; finalizers: {}", finalizers.join(", ")) };
    match object.pointer("/metadata/deletionTimestamp").and_then(Value::as_str) {
        Some(since) => format!("(being deleted since {since}{held})"),
        None => format!("(not being deleted{held})"),
    }
}

/// Whether `object` (as the API server has it; `None` when absent) meets `condition`.
pub fn condition_met(condition: WaitCondition, object: Option<&Value>) -> Attempt<Seen> {
    let Some(object) = object else {
        return if condition == WaitCondition::Deleted {
            Attempt::Pass(Seen("gone".into()))
        } else {
            Attempt::Fail(Seen("does not exist yet".into()))
        };
    };
    let wanted = match condition {
        WaitCondition::Exists => return Attempt::Pass(Seen("exists".into())),
        WaitCondition::Deleted => return Attempt::Fail(Seen("still exists".into())),
        // A Deployment is available when rolled out, as the stack's gates judge it: its
        // `Available` condition alone is True mid-rollout and before a new generation is seen.
        WaitCondition::Available if object["kind"] == "Deployment" => return k8s::deployment_available(object),
        WaitCondition::Available => "Available",
        WaitCondition::Ready => "Ready",
        WaitCondition::Established => "Established",
    };
    let conditions = object.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let status = conditions.iter().find(|c| c["type"] == wanted).and_then(|c| c["status"].as_str());
    match status {
        Some("True") => Attempt::Pass(Seen(format!("{wanted}=True"))),
        Some(other) => {
            let reason =
                conditions.iter().find(|c| c["type"] == wanted).and_then(|c| c["message"].as_str()).unwrap_or("");
            Attempt::Fail(Seen(format!("{wanted}={other} {reason}").trim_end().to_owned()))
        }
        None => Attempt::Fail(Seen(format!("no {wanted} condition yet"))),
    }
}

/// Where `actual` does not include `expected` (maps: every expected key, recursively; lists:
/// every expected element matches some actual element, as `expect-resource` documents;
/// scalars: equal), as a field path and both values.
pub fn mismatch(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => want.iter().find_map(|(k, v)| {
            let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            match have.get(k) {
                Some(a) => mismatch(v, a, &here),
                None => Some(format!("{here}: missing (expected {v})")),
            }
        }),
        (Value::Array(want), Value::Array(have)) => want.iter().enumerate().find_map(|(i, w)| {
            (!have.iter().any(|h| mismatch(w, h, "").is_none()))
                .then(|| format!("{path}: no element matches expected [{i}] {w} (found {})", have.len()))
        }),
        (w, h) if w == h => None,
        (w, h) => Some(format!("{path}: {h}, expected {w}")),
    }
}

#[cfg(test)]
mod tests;
