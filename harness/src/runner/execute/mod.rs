//! Running a loaded scenario against a live cluster: its namespace (with the mesh's injection
//! setting), its fixtures, then its steps in order, each with the waiting semantics of its kind
//! (see `model`). The first failing step ends the scenario; every step leaves a record and
//! every observation is kept, normalised, for the report and the snapshot.
//!
//! Probes observe, checks decide: this module only wires them to the cluster. It holds [`Live`],
//! the scenario loop and the `Context` every step runs in, with what the steps share (fixtures,
//! probes, transcripts, judged observations); each step kind's method sits in its own module:
//! `apply` (apply, delete, wait), `http`, `split`, `trace`, `rate_limit`, `from_pod`,
//! `resource` (expect-resource), `metrics`, `mesh` (the injection check and mesh-membership);
//! `mutant` reruns a scenario's steps against a mutant.

mod apply;
mod from_pod;
mod http;
mod load;
mod mesh;
mod metrics;
mod mutant;
mod rate_limit;
mod resource;
mod split;
mod trace;

pub use self::apply::condition_met;
pub use self::from_pod::service_of_url;
pub use self::resource::mismatch;
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
use crate::probe::trace::{self as trace_probe, SpanTree, TraceContext};
use crate::probe::{Observation, PodVersions, jwt, pod, pod_proxy};
use crate::profile::TracingPins;
use crate::replay::{Recorded, RecordedStep, Verdict as ReplayVerdict};
use crate::scenario::{
    ApplyStep, DeleteStep, ExpectResourceStep, FromPodStep, HttpStep, LoadedScenario, Mesh, MeshMembershipStep,
    MetricsStep, MetricsTarget, Mutant, NamespaceSettings, ObjectRef, RateLimitStep, Rejection, Request, SplitStep,
    Step, TraceStep, WaitCondition, WaitStep,
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
    /// The upgrades this run can make (`upgrade` steps), by the part they move: the session's,
    /// which run Helm; none without a newer pin or on a cluster of the user's.
    pub upgrades: BTreeMap<crate::scenario::UpgradePart, std::sync::Arc<dyn StackUpgrade>>,
}

/// An upgrade the session can carry out for a step: Helm upgrades and readiness gates
/// (`stack::mesh_upgrade`, `stack::mesh_canary`, `stack::kong_upgrade`), with the deadline the
/// step gives.
pub trait StackUpgrade: Send + Sync {
    /// What it moves, for verdicts: `istio 1.30.5 -> 1.31.1 (profile istio-1-31)`.
    fn describe(&self) -> String;
    /// Carries it out. `namespaces` are the scenario's, where its workloads run: a canary moves
    /// them to the new revision along with Kong's.
    fn upgrade<'a>(
        &'a self,
        namespaces: &'a [String],
        deadline: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Upgraded, String>> + Send + 'a>>;
}

/// What an upgrade did, and what the data plane must show once its workloads restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// The stages it went through, for the verdict.
    pub done: String,
    /// The mesh proxy a pod restarted after it must run; none when the data plane does not move
    /// (Kong's chart).
    pub proxy: Option<ProxyAt>,
}

pub use crate::check::injection::ProxyAt;

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
    /// The load windows its steps measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<crate::check::load::Window>,
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
            upgrades: BTreeMap::new(),
        }
    }

    /// Run `loaded` in run `run`. Never panics on cluster behaviour; an interrupted scenario fails
    /// at the step it was in.
    pub async fn run(&self, loaded: &LoadedScenario, run: &str, cancel: &CancellationToken) -> ScenarioRun {
        self.run_observed(loaded, run, cancel, &|_| {}).await
    }

    /// [`Live::run`], each step's record handed to `on_step` as soon as the step ends (the
    /// namespace and fixtures first).
    pub async fn run_observed(
        &self,
        loaded: &LoadedScenario,
        run: &str,
        cancel: &CancellationToken,
        on_step: &(dyn Fn(&StepRecord) + Sync),
    ) -> ScenarioRun {
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
            windows: Vec::new(),
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
        on_step(&out.steps[0]);
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
                on_step(&rec);
                out.steps.push(rec);
                if !passed {
                    break;
                }
            }
        }
        out.passed = out.steps.iter().all(|s| s.passed);
        out.transcripts = std::mem::take(&mut context.transcripts);
        out.windows = std::mem::take(&mut context.windows);
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
            let mesh = self.mesh.system_namespace().unwrap_or_default();
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
    /// Each load window measured.
    windows: Vec<crate::check::load::Window>,
    /// The proxy the data plane must run after the scenario's upgrade, with the namespaces the
    /// upgrade moved to it (all: `None`): each later restart of Kong or a meshed workload there
    /// checks its new pods for it.
    proxy_after_upgrade: Option<(ProxyAt, Option<Vec<String>>)>,
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
            windows: Vec::new(),
            proxy_after_upgrade: None,
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
            Step::Load(s) => self.load(s).await,
            Step::Restart(s) => self.restart(s).await,
            Step::Upgrade(s) => self.upgrade(s).await,
        }
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
    /// Keep a step's raw answers as a transcript that replays to the verdict it reached.
    fn record(&mut self, step: RecordedStep<'_>, answers: Vec<Answer>, passed: bool) {
        self.record_traced(step, None, answers, passed);
    }

    /// [`Self::record`], naming the trace id a trace step sent.
    fn record_traced(&mut self, step: RecordedStep<'_>, trace_id: Option<&str>, answers: Vec<Answer>, passed: bool) {
        self.record_full(step, trace_id, answers, None, passed);
    }

    /// Keep a transcript with everything a step kind may record (a load window's disruptions,
    /// length and failed enclosed step included).
    fn record_full(
        &mut self,
        step: RecordedStep<'_>,
        trace_id: Option<&str>,
        answers: Vec<Answer>,
        load: Option<crate::replay::LoadRecord<'_>>,
        passed: bool,
    ) {
        let kind = match step {
            RecordedStep::Http(_) => "http",
            RecordedStep::FromPod(_) => "from-pod",
            RecordedStep::Split(_) => "split",
            RecordedStep::Trace(_) => "trace",
            RecordedStep::Load(_) => "load",
        };
        let verdict = if passed { ReplayVerdict::Pass } else { ReplayVerdict::Fail };
        let recorded = Recorded {
            mesh: self.live.mesh,
            trace_id,
            backend_proven: self.backend_proven,
            step,
            answers,
            load,
            verdict,
        };
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
                r.echo.as_ref().map(|e| format!(" from {}", crate::names::pod_name(&e.pod))).unwrap_or_default()
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

#[cfg(test)]
mod tests;
