//! The steps of a scenario, one struct per kind, with what each accepts and defaults to (the
//! traffic expectations they share are in `expect`).

use super::*;

/// Apply more fixtures mid-scenario (server-side apply, strict field validation). Eventually: retried
/// on transient API errors (e.g. a webhook not yet serving) until `timeout`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyStep {
    #[serde(deserialize_with = "non_empty")]
    pub fixtures: Vec<Spanned<String>>,
    /// The API server must refuse the apply: `unknown-kind` (no such kind is served), or
    /// `{message: TEXT}` (the API server's own message contains TEXT). The step fails if the
    /// apply succeeds or fails otherwise.
    #[serde(default)]
    pub rejected: Option<Rejection>,
    #[serde(default = "Timeout::apply")]
    pub timeout: Timeout,
}

/// How the API server must refuse an apply. Matched against the error's class or the API
/// server's own message, never against the harness's wording (which names the kind anyway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rejection {
    /// Discovery knows no such kind (e.g. SMI's TrafficSplit where no SMI CRD is installed).
    UnknownKind,
    /// The API server refused the object with a message containing this text.
    Message(String),
}

impl<'de> Deserialize<'de> for Rejection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ByMessage {
            message: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Class(String),
            Message(ByMessage),
        }
        let expected = "expected `unknown-kind` or {message: TEXT}";
        match Form::deserialize(d).map_err(|_| serde::de::Error::custom(expected))? {
            Form::Class(c) if c == "unknown-kind" => Ok(Rejection::UnknownKind),
            Form::Class(c) => Err(serde::de::Error::custom(format!("`{c}`: {expected}"))),
            Form::Message(ByMessage { message }) if message.trim().is_empty() => {
                Err(serde::de::Error::custom("an empty message matches every error"))
            }
            Form::Message(ByMessage { message }) => Ok(Rejection::Message(message)),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::UnknownKind => f.write_str("unknown kind"),
            Rejection::Message(m) => write!(f, "a message containing {m:?}"),
        }
    }
}

/// Delete the objects of fixtures, or one resource, and wait until they are gone. Eventually.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawDeleteStep")]
pub struct DeleteStep {
    pub fixtures: Vec<Spanned<String>>,
    pub resource: Option<ObjectRef>,
    pub timeout: Timeout,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeleteStep {
    #[serde(default)]
    fixtures: Vec<Spanned<String>>,
    #[serde(default)]
    resource: Option<ObjectRef>,
    #[serde(default = "Timeout::delete")]
    timeout: Timeout,
}

impl TryFrom<RawDeleteStep> for DeleteStep {
    type Error = String;
    fn try_from(raw: RawDeleteStep) -> Result<Self, String> {
        if raw.fixtures.is_empty() == raw.resource.is_none() {
            return Err("a delete step names either `fixtures` or one `resource`, not both or neither".into());
        }
        Ok(DeleteStep { fixtures: raw.fixtures, resource: raw.resource, timeout: raw.timeout })
    }
}

/// Wait until a resource reaches a condition. Eventually.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    pub resource: ObjectRef,
    pub condition: WaitCondition,
    #[serde(default = "Timeout::wait")]
    pub timeout: Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitCondition {
    /// Deployments: all replicas updated and available.
    Available,
    /// Pods: the Ready condition is True.
    Ready,
    /// CRDs: the Established condition is True.
    Established,
    /// The object exists.
    Exists,
    /// The object is gone.
    Deleted,
}

/// An HTTP request sent through Kong's proxy from the host. Converge.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    pub request: Request,
    pub expect: Expect,
    #[serde(default)]
    pub converge: Converge,
}

/// Weighted traffic split, judged by a sequential statistical test.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SplitStep {
    pub request: Request,
    /// Expected share per backend `version` label, in percent; must sum to 100.
    #[serde(deserialize_with = "percentages")]
    pub weights: BTreeMap<String, u32>,
    /// Accepted absolute deviation of each share (0.05 = ±5 points).
    #[serde(default = "SplitStep::default_tolerance", deserialize_with = "tolerance")]
    pub tolerance: f64,
    #[serde(default = "SplitStep::default_max_requests", deserialize_with = "max_requests")]
    pub max_requests: u32,
    #[serde(default = "Timeout::split")]
    pub timeout: Timeout,
    /// Gate the measurement on the route being in effect: short pre-windows with this wide
    /// tolerance are repeated until one passes (a Service balancing over all versions, before the
    /// mesh's route applies, fails them), then the measurement starts from zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Settle>,
}

/// Pre-windows before a split's measurement. Eventually: until one passes or `within`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settle {
    #[serde(deserialize_with = "tolerance")]
    pub tolerance: f64,
    #[serde(default = "Timeout::converge")]
    pub within: Timeout,
}

fn percentages<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, u32>, D::Error> {
    let weights = BTreeMap::<String, u64>::deserialize(d)?;
    if let Some((version, w)) = weights.iter().find(|(_, w)| **w > 100) {
        return Err(serde::de::Error::custom(format!("weight {w} of `{version}` is not a percentage (0..=100)")));
    }
    let weights: BTreeMap<String, u32> = weights.into_iter().map(|(k, w)| (k, w as u32)).collect();
    let sum: u64 = weights.values().map(|&w| u64::from(w)).sum();
    if weights.len() < 2 || sum != 100 {
        return Err(serde::de::Error::custom(format!(
            "weights are percentages for two or more versions summing to 100; these sum to {sum} over {} version(s)",
            weights.len()
        )));
    }
    Ok(weights)
}

fn tolerance<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let t = f64::deserialize(d)?;
    if !(t > 0.0 && t < 0.5) {
        return Err(serde::de::Error::custom(format!(
            "tolerance {t} is outside (0, 0.5): it is an absolute share, e.g. 0.05"
        )));
    }
    Ok(t)
}

impl SplitStep {
    fn default_tolerance() -> f64 {
        0.05
    }
    fn default_max_requests() -> u32 {
        // Far above what the sequential test needs at 90/10 ±0.05 (see check::split).
        6000
    }
}

/// One request carrying the harness's trace id; then poll the collector for that trace.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TraceStep {
    pub request: Request,
    /// The header format(s) the harness's trace context travels in.
    #[serde(default)]
    pub context: TraceContextFormat,
    pub expect: TraceExpect,
    #[serde(default = "Timeout::trace")]
    pub timeout: Timeout,
}

/// How the client's trace context is written on the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceContextFormat {
    /// W3C `traceparent` (sampled) and B3 multi-header (`x-b3-sampled: 1`) with one id.
    #[default]
    #[serde(rename = "w3c+b3")]
    W3cAndB3,
    /// W3C Trace Context `traceparent: 00-<trace>-<span>-01`.
    W3c,
    /// B3 multi-header: `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled: 1`.
    B3,
    /// The single `b3: <trace>-<span>-1` header.
    B3Single,
}

impl TraceContextFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceContextFormat::W3cAndB3 => "w3c+b3",
            TraceContextFormat::W3c => "w3c",
            TraceContextFormat::B3 => "b3",
            TraceContextFormat::B3Single => "b3-single",
        }
    }
}

impl fmt::Display for TraceContextFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, try_from = "TraceExpectFields")]
pub struct TraceExpect {
    /// Service names (as reported to the collector) that must have spans in the trace.
    #[serde(default)]
    pub services: Vec<String>,
    /// Parent -> child service edges that must appear in the span tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<TraceEdge>,
    /// Service names that must have no span in the trace. Absence cannot be seen at one
    /// instant: once everything else holds, the collector is asked again after `quiet` (as it
    /// is for every trace step, so that late spans also reach the snapshot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    /// How long spans may still arrive after the trace looked complete.
    #[serde(default = "Timeout::trace_quiet", skip_serializing_if = "Timeout::is_trace_quiet")]
    pub quiet: Timeout,
    /// What the backend received, per header format: the client's trace id, another trace's,
    /// or nothing (judged on the echo backend's report of the traced request).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backend: BTreeMap<TraceContextFormat, CarriedTrace>,
}

/// [`TraceExpect`] as written, before the check that it can fail.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceExpectFields {
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    edges: Vec<TraceEdge>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default = "Timeout::trace_quiet")]
    quiet: Timeout,
    #[serde(default)]
    backend: BTreeMap<TraceContextFormat, CarriedTrace>,
}

impl TryFrom<TraceExpectFields> for TraceExpect {
    type Error = String;

    fn try_from(f: TraceExpectFields) -> Result<Self, String> {
        if f.services.is_empty() && f.edges.is_empty() && f.absent.is_empty() && f.backend.is_empty() {
            return Err("a trace expectation without services, edges, absent or backend passes on any trace, so it \
                 proves nothing"
                .into());
        }
        Ok(TraceExpect { services: f.services, edges: f.edges, absent: f.absent, quiet: f.quiet, backend: f.backend })
    }
}

impl Default for TraceExpect {
    fn default() -> Self {
        TraceExpect {
            services: Vec::new(),
            edges: Vec::new(),
            absent: Vec::new(),
            quiet: Timeout::trace_quiet(),
            backend: BTreeMap::new(),
        }
    }
}

/// What one trace header format carried to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CarriedTrace {
    /// The header is there with the client's trace id.
    ClientTrace,
    /// The header is there with a trace id that is not the client's (a new trace began).
    OtherTrace,
    /// The header is not there.
    Absent,
}

impl fmt::Display for CarriedTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CarriedTrace::ClientTrace => "client-trace",
            CarriedTrace::OtherTrace => "other-trace",
            CarriedTrace::Absent => "absent",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEdge {
    pub from: String,
    pub to: String,
}

/// A burst against a rate-limited route, started in a fresh window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitStep {
    pub request: Request,
    /// The limit the plugin is configured with; the response must advertise it and the
    /// request after `limit` must be rejected with 429.
    #[serde(deserialize_with = "rate_limit")]
    pub limit: u32,
    pub window: RateWindow,
    #[serde(default = "Timeout::rate_limit")]
    pub timeout: Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateWindow {
    Second,
    Minute,
    Hour,
}

/// A whole number in `min..=max`: every count a scenario gives has a sane bound, checked where
/// it is written (a limit of 4294967295 would make the run allocate for that many answers).
pub(super) fn within_range<'de, D: Deserializer<'de>>(d: D, min: u32, max: u32, what: &str) -> Result<u32, D::Error> {
    let n = u64::deserialize(d)
        .map_err(|_| serde::de::Error::custom(format!("{what}: expected a whole number in {min}..={max}")))?;
    if n < u64::from(min) || n > u64::from(max) {
        return Err(serde::de::Error::custom(format!("{what} {n} is outside {min}..={max}")));
    }
    Ok(n as u32)
}

/// Consecutive passes of a converge: 1 to 100.
pub(super) fn passes<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    within_range(d, 1, 100, "passes")
}

/// A split's request budget: the sequential test decides 90/10 ±0.05 in a few hundred.
fn max_requests<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    within_range(d, 10, 100_000, "max-requests")
}

/// A burst sends `limit + 1` requests: 1 to 10,000.
fn rate_limit<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    within_range(d, 1, 10_000, "limit")
}

/// A request from a client pod inside the cluster (exec into a pinned client image). Converge.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FromPodStep {
    pub client: ClientPod,
    /// Full URL, e.g. `http://echo.{{ namespace }}.svc.cluster.local/`.
    pub url: String,
    #[serde(default = "Request::get")]
    pub method: Method,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub expect: Expect,
    #[serde(default)]
    pub converge: Converge,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClientPod {
    /// Whether the client pod carries the mesh proxy.
    pub meshed: bool,
    /// Defaults to the scenario's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The client's identity. Defaults to the namespace's `default` service account; a named
    /// one is created by the harness in the scenario's namespace, and must exist elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// A resource must (eventually) match a partial object: only the fields written are compared,
/// lists match when every expected element matches some actual element.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpectResourceStep {
    pub resource: ObjectRef,
    #[serde(rename = "match", deserialize_with = "resource_match")]
    pub matches: serde_json::Value,
    #[serde(default = "Timeout::wait")]
    pub timeout: Timeout,
}

/// An `expect-resource` match: a non-empty map (an empty one matches any object; `wait:
/// {condition: exists}` says that).
fn resource_match<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    match v.as_object() {
        Some(m) if !m.is_empty() => Ok(v),
        _ => Err(serde::de::Error::custom(
            "`match` must be a non-empty map of fields the object must have: an empty one matches any object and \
             proves nothing (to wait for the object to exist, use `wait` with `condition: exists`)",
        )),
    }
}

/// The pods of the scenario namespace selected by `selector` all carry the mesh's proxy
/// (`meshed: true`) or none do (`meshed: false`). Eventually: pods must exist.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshMembershipStep {
    pub selector: BTreeMap<String, String>,
    pub meshed: bool,
    #[serde(default = "Timeout::converge")]
    pub timeout: Timeout,
}

/// Prometheus metrics scraped from Kong or from a workload's mesh proxy must eventually show
/// the expected series. Eventually.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsStep {
    pub target: MetricsTarget,
    #[serde(deserialize_with = "non_empty")]
    pub expect: Vec<SeriesExpect>,
    #[serde(default = "Timeout::converge")]
    pub timeout: Timeout,
}

/// Where metrics come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum MetricsTarget {
    /// Kong's status API (`/metrics`, fed by the prometheus plugin).
    Kong,
    /// The mesh proxy of a pod of the scenario selected by labels (Istio: Envoy's Prometheus
    /// stats; Linkerd: the proxy's metrics endpoint).
    MeshProxy { selector: BTreeMap<String, String> },
    /// Istio ambient: ztunnel's metrics (every node's), where Kong's hop shows as TCP
    /// connections with the peers' identities (`source_principal`) and
    /// `connection_security_policy`. They count every namespace's traffic: scope them with a
    /// label naming the scenario's namespace.
    Ztunnel,
}

/// Series named `name` whose labels match `labels`; their values summed must reach `at-least`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SeriesExpect {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, LabelMatch>,
    #[serde(default = "SeriesExpect::one", deserialize_with = "at_least")]
    pub at_least: f64,
}

/// A series threshold: a finite, positive number. `0` would pass with no matching series at
/// all (their sum is 0), a check that cannot fail.
fn at_least<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(serde::de::Error::custom(format!(
            "at-least {v} is not a finite number > 0 (at-least 0 passes with no series at all: it proves nothing)"
        )));
    }
    Ok(v)
}

impl SeriesExpect {
    fn one() -> f64 {
        1.0
    }
}

/// A label value: a plain string must be equal; `{prefix: S}` must start with S. Counters that
/// outlive a scenario (Kong's, on a kept or reused cluster) are scoped with a prefix naming the
/// scenario's own namespace, which holds the run id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LabelMatch {
    Equals(String),
    Prefix { prefix: String },
}

impl LabelMatch {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            LabelMatch::Equals(v) => v == value,
            LabelMatch::Prefix { prefix } => value.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for LabelMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelMatch::Equals(v) => write!(f, "{v:?}"),
            LabelMatch::Prefix { prefix } => write!(f, "{prefix:?}..."),
        }
    }
}

impl<'de> Deserialize<'de> for LabelMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Prefix {
            prefix: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Equals(String),
            Prefix(Prefix),
        }
        match Form::deserialize(d).map_err(|_| serde::de::Error::custom("expected a string (equals) or {prefix: S}"))? {
            Form::Equals(v) => Ok(LabelMatch::Equals(v)),
            Form::Prefix(Prefix { prefix }) if prefix.is_empty() => {
                Err(serde::de::Error::custom("an empty prefix matches every series; name the scenario's namespace"))
            }
            Form::Prefix(Prefix { prefix }) => Ok(LabelMatch::Prefix { prefix }),
        }
    }
}

/// Background traffic through Kong's proxy at a fixed rate while the enclosed steps run
/// (`during`: restarts, waits, applies), judged against an error budget once the load stops.
/// The load starts `warmup` before the first enclosed step and runs `cooldown` after the last,
/// so the window shows the traffic before, during and after each disruption.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LoadStep {
    pub request: Request,
    /// Requests per second, 1 to 100, each on its own connection's deadline.
    #[serde(deserialize_with = "load_rate")]
    pub rate: u32,
    /// What an answer must be to count as passed (default: status 200).
    #[serde(default = "LoadStep::default_expect")]
    pub expect: Expect,
    #[serde(default = "LoadStep::default_warmup")]
    pub warmup: Timeout,
    #[serde(default = "LoadStep::default_cooldown")]
    pub cooldown: Timeout,
    pub budget: LoadBudget,
    /// The disruptions the load runs through, in order: `restart` and `upgrade` steps (none: the window
    /// measures steady traffic). Only disruptions: every other step kind is checked offline
    /// (scope, feasibility, the untrusted bundle's rules) where a scenario lists it.
    #[serde(default, deserialize_with = "disruptions_only")]
    pub during: Vec<Step>,
}

impl LoadStep {
    fn default_expect() -> Expect {
        Expect { status: Some(OneOrMany::One(200)), ..Expect::default() }
    }
    fn default_warmup() -> Timeout {
        Timeout::secs(10)
    }
    fn default_cooldown() -> Timeout {
        Timeout::secs(20)
    }
}

/// A load window's budget: the largest share of failed requests, the longest outage (a run of
/// consecutive failures, in time), optionally a latency percentile (`check::load`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LoadBudget {
    #[serde(deserialize_with = "error_share")]
    pub errors: f64,
    pub outage: Timeout,
    #[serde(default)]
    pub latency: Option<LatencyLimit>,
}

/// `{percentile: 99, max: 500ms}`: the nearest-rank percentile of passing requests' latencies.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyLimit {
    #[serde(deserialize_with = "percentile")]
    pub percentile: u8,
    pub max: Timeout,
}

/// A load's enclosed steps: disruptions only (`restart`, `upgrade`).
fn disruptions_only<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Step>, D::Error> {
    let steps = Vec::<Step>::deserialize(d)?;
    if let Some(other) = steps.iter().find(|s| !matches!(s, Step::Restart(_) | Step::Upgrade(_))) {
        return Err(serde::de::Error::custom(format!(
            "a load runs disruptions (`restart`, `upgrade`) inside it, not `{}`: put other steps before or after the load",
            other.kind()
        )));
    }
    Ok(steps)
}

/// A load's rate: 1 to 100 requests a second (a test of a kind cluster, not a load test).
fn load_rate<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    within_range(d, 1, 100, "rate")
}

/// The share of failed requests a budget allows: 0 up to, not including, 1 (a budget of 1
/// allows every request to fail: a check that cannot fail).
fn error_share<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(v.is_finite() && (0.0..1.0).contains(&v)) {
        return Err(serde::de::Error::custom(format!(
            "errors {v} is not a share in [0, 1): 1 allows every request to fail, which proves nothing"
        )));
    }
    Ok(v)
}

fn percentile<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = within_range(d, 1, 100, "percentile")?;
    u8::try_from(v).map_err(|_| serde::de::Error::custom("percentile is at most 100"))
}

/// A rolling restart of a workload, as `kubectl rollout restart` does it (the pod template's
/// `kubectl.kubernetes.io/restartedAt` annotation), then waiting until the rollout completes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartStep {
    pub target: RestartTarget,
    #[serde(default = "Timeout::restart")]
    pub timeout: Timeout,
}

/// What a `restart` may restart: the stack's own parts by role (never a name a scenario makes
/// up outside its namespace), or a workload of the scenario's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum RestartTarget {
    /// Kong's gateway Deployment.
    Kong,
    /// The mesh's control plane: istiod, or Linkerd's destination controller.
    MeshControlPlane,
    /// ztunnel's DaemonSet (`istio-ambient` only).
    Ztunnel,
    /// A Deployment, DaemonSet or StatefulSet of the scenario's namespace.
    Workload { kind: WorkloadKind, name: String },
}

/// The apps/v1 kinds a rolling restart applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }
}

impl RestartTarget {
    /// Whether it is shared with everything else on the cluster (not the scenario's own).
    pub fn is_shared(&self) -> bool {
        !matches!(self, RestartTarget::Workload { .. })
    }

    /// Whether its pods carry the mesh's proxy (Kong's and the scenario's workloads), rather than
    /// being the mesh itself (its control plane, ztunnel).
    pub fn carries_proxy(&self) -> bool {
        matches!(self, RestartTarget::Kong | RestartTarget::Workload { .. })
    }
}

impl fmt::Display for RestartTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartTarget::Kong => f.write_str("Kong's gateway"),
            RestartTarget::MeshControlPlane => f.write_str("the mesh's control plane"),
            RestartTarget::Ztunnel => f.write_str("ztunnel"),
            RestartTarget::Workload { kind, name } => write!(f, "{}/{name}", kind.as_str()),
        }
    }
}

/// Upgrade a part of the stack, then wait until it is ready again. One part per step:
/// - `upgrade: {mesh: next}` moves the mesh's control plane to the next newer release pinned in
///   versions.toml for the same Kubernetes and Kong (`Profile::next_mesh_pin`): in place (Helm
///   upgrades of its charts, its gates), or on Istio with `strategy: canary` as a revision
///   beside the old one, the namespaces relabelled to it;
/// - `upgrade: {kong: next}` moves Kong's chart to the next newer Kong pin for the same mesh
///   and Kubernetes (`Profile::next_kong_pin`): its CRDs (until established), then a Helm
///   upgrade, then its gates, then Kong's gateway rolled out on a new pod template.
///
/// After a mesh upgrade the data plane moves when its workloads restart (`restart` steps after
/// it); each such restart of Kong, or of a workload that ran the proxy in a namespace the upgrade
/// moved, then checks that the new pods run the new proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawUpgradeStep")]
pub struct UpgradeStep {
    pub part: UpgradePart,
    pub timeout: Timeout,
}

/// What an upgrade moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradePart {
    Mesh(MeshStrategy),
    Kong,
}

impl fmt::Display for UpgradePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradePart::Mesh(MeshStrategy::InPlace) => f.write_str("the mesh in place"),
            UpgradePart::Mesh(MeshStrategy::Canary) => f.write_str("the mesh as a canary revision"),
            UpgradePart::Kong => f.write_str("Kong's chart"),
        }
    }
}

/// How the mesh's control plane moves: its releases upgraded where they are (Istio's and
/// Linkerd's in-place Helm upgrades), or, on Istio only, a second control plane of the new
/// release installed as a revision, with the workloads' namespaces moved to it (istio.io
/// docs/setup/upgrade/helm, "Canary upgrade").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeshStrategy {
    #[default]
    InPlace,
    Canary,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpgradeStep {
    #[serde(default)]
    mesh: Option<UpgradeTo>,
    #[serde(default)]
    kong: Option<UpgradeTo>,
    #[serde(default)]
    strategy: Option<MeshStrategy>,
    #[serde(default = "Timeout::upgrade")]
    timeout: Timeout,
}

impl TryFrom<RawUpgradeStep> for UpgradeStep {
    type Error = String;
    fn try_from(raw: RawUpgradeStep) -> Result<Self, String> {
        let part = match (raw.mesh, raw.kong, raw.strategy) {
            (Some(UpgradeTo::Next), None, strategy) => UpgradePart::Mesh(strategy.unwrap_or_default()),
            (None, Some(UpgradeTo::Next), None) => UpgradePart::Kong,
            (None, Some(_), Some(_)) => {
                return Err("`strategy` is how the mesh moves (in-place, canary); Kong's chart moves in place".into());
            }
            _ => return Err("an upgrade moves one part of the stack: `mesh: next` or `kong: next`".into()),
        };
        Ok(UpgradeStep { part, timeout: raw.timeout })
    }
}

/// Where an upgrade goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeTo {
    /// The next newer pin of that part in versions.toml.
    Next,
}
