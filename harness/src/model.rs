//! The scenario language: what a scenario file may say.
//!
//! Every struct rejects unknown keys. Defaults are chosen so that the common
//! case needs no tuning; each step documents its retry semantics:
//!
//! - **eventually** (cluster state: `apply`, `delete`, `wait`, `expect-resource`):
//!   poll until the condition holds or `timeout` passes; on timeout report the
//!   last thing seen.
//! - **converge** (traffic: `http`, `from-pod`): the *whole* expectation must pass
//!   `passes` times in a row within `within`; any failing attempt resets the count.
//! - **sequential** (`split`): sample until the statistical test decides or the
//!   request / time budget runs out (then the step fails as undecided).
//! - **fresh-window** (`rate-limit`): wait for a fresh rate-limit window, then
//!   burst; never retried inside a window.
//! - **poll-for-trace** (`trace`): send one request with the harness's own trace
//!   id, then poll the collector until the expected spans appear or `timeout`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::Spanned;

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Kebab-case, equal to the file's stem.
    pub name: Spanned<String>,
    /// One or two sentences: what this proves and why it matters.
    pub summary: String,
    /// Which meshes this scenario runs on. `any` means every mesh.
    #[serde(deserialize_with = "non_empty")]
    pub meshes: Vec<MeshSelector>,
    /// The scenario changes or reads state other scenarios share (a global Kong plugin, Kong's
    /// global metrics): it runs alone, never beside another. Lint refuses the obvious cases
    /// undeclared.
    #[serde(default)]
    pub exclusive: bool,
    /// What capability this scenario covers.
    #[serde(deserialize_with = "non_empty")]
    pub covers: Vec<Tag>,
    /// The scenario namespace's mesh injection and extra metadata.
    #[serde(default)]
    pub namespace: NamespaceSettings,
    /// Manifests under `fixtures/` applied (in order) before the first step.
    #[serde(default)]
    pub fixtures: Vec<Spanned<String>>,
    #[serde(deserialize_with = "non_empty")]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub snapshot: SnapshotSettings,
    /// Lint findings this scenario's fixtures are meant to produce (seed-as-written scenarios
    /// apply known-broken configuration on purpose).
    #[serde(default)]
    pub lint: LintSettings,
    /// Changes to the fixtures under which a named step must fail: proof that the scenario's
    /// checks can fail on a real cluster (`e2e --mutants`).
    #[serde(default)]
    pub mutants: Vec<Mutant>,
}

/// A change to the scenario's fixtures, and the step that must then fail.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawMutant")]
pub struct Mutant {
    pub name: String,
    /// What the change breaks, for people.
    pub why: String,
    /// The meshes it applies to (default: every mesh of the scenario).
    pub meshes: Vec<MeshSelector>,
    /// Objects of the scenario's fixtures to delete.
    pub remove: Vec<ObjectName>,
    /// Fields of the scenario's fixture objects to change.
    pub set: Vec<FieldChange>,
    /// The 1-based number of the step that must fail; the steps before it must still pass.
    pub fails_at: u32,
    /// How long the change is given to reach Kong and the mesh (istiod's push, Linkerd's policy
    /// watch, KIC's sync, a rollout) before the steps rerun.
    pub settle: Timeout,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMutant {
    name: String,
    why: String,
    #[serde(default)]
    meshes: Vec<MeshSelector>,
    #[serde(default)]
    remove: Vec<ObjectName>,
    #[serde(default)]
    set: Vec<FieldChange>,
    fails_at: u32,
    #[serde(default = "Timeout::mutant_settle")]
    settle: Timeout,
}

impl TryFrom<RawMutant> for Mutant {
    type Error = String;
    fn try_from(raw: RawMutant) -> Result<Self, String> {
        let kebab = !raw.name.is_empty()
            && raw.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !raw.name.starts_with('-');
        if !kebab {
            return Err(format!("mutant name `{}` is not kebab-case", raw.name));
        }
        if raw.remove.is_empty() && raw.set.is_empty() {
            return Err(format!("mutant `{}` changes nothing: give `remove` or `set`", raw.name));
        }
        if raw.fails_at == 0 {
            return Err("`fails-at` is a 1-based step number".into());
        }
        if let Some(change) = raw.set.iter().find(|c| c.path.is_empty() || c.path.iter().any(String::is_empty)) {
            return Err(format!("set {}/{}: `path` is a non-empty list of keys", change.kind, change.name));
        }
        Ok(Mutant {
            name: raw.name,
            why: raw.why,
            meshes: raw.meshes,
            remove: raw.remove,
            set: raw.set,
            fails_at: raw.fails_at,
            settle: raw.settle,
        })
    }
}

impl Mutant {
    /// Whether the mutant applies on `mesh`.
    pub fn applies_to(&self, mesh: Mesh) -> bool {
        self.meshes.is_empty()
            || self.meshes.iter().any(|s| {
                matches!(
                    (s, mesh),
                    (MeshSelector::Any, _)
                        | (MeshSelector::Istio, Mesh::Istio)
                        | (MeshSelector::Linkerd, Mesh::Linkerd)
                        | (MeshSelector::None, Mesh::None)
                )
            })
    }

    /// One line for plans and reports.
    pub fn describe(&self) -> String {
        let mut changes: Vec<String> = self.remove.iter().map(|o| format!("remove {}/{}", o.kind, o.name)).collect();
        changes
            .extend(self.set.iter().map(|c| format!("set {}/{} {} = {}", c.kind, c.name, c.path.join("."), c.value)));
        format!(
            "mutant {}: {}; after {}, step {} must fail ({})",
            self.name,
            changes.join(", "),
            self.settle,
            self.fails_at,
            self.why
        )
    }
}

/// An object of the scenario's fixtures, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectName {
    pub kind: String,
    pub name: String,
}

/// `path` (a list of map keys, so keys may hold dots) of the object set to `value`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    pub kind: String,
    pub name: String,
    pub path: Vec<String>,
    pub value: serde_json::Value,
}

/// The scenario's namespace: whether the mesh injects its pods (by default it does, on a
/// meshed profile), and labels and annotations of its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawNamespaceSettings")]
pub struct NamespaceSettings {
    pub inject: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Default for NamespaceSettings {
    fn default() -> Self {
        NamespaceSettings { inject: true, labels: BTreeMap::new(), annotations: BTreeMap::new() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamespaceSettings {
    #[serde(default = "yes")]
    inject: bool,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Keys the harness owns on a scenario namespace: injection is said with `inject`, the run
/// label marks what the harness may delete.
const OWNED_NAMESPACE_KEYS: &[&str] = &["istio-injection", "istio.io/rev", "linkerd.io/inject", "kme2e.dev/run"];

impl TryFrom<RawNamespaceSettings> for NamespaceSettings {
    type Error = String;
    fn try_from(raw: RawNamespaceSettings) -> Result<Self, String> {
        if let Some(key) =
            raw.labels.keys().chain(raw.annotations.keys()).find(|k| OWNED_NAMESPACE_KEYS.contains(&k.as_str()))
        {
            return Err(format!("`{key}` is set by the harness: use `inject: true|false` for mesh injection"));
        }
        Ok(NamespaceSettings { inject: raw.inject, labels: raw.labels, annotations: raw.annotations })
    }
}

/// What a scenario namespace carries on a mesh: shown by `plan`, applied by the runner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NamespaceMetadata {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl NamespaceSettings {
    /// The namespace's metadata on `mesh`: Istio injects pods of a namespace labelled
    /// `istio-injection=enabled` (the injector's namespaceSelector, istio/istio
    /// manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml); Linkerd
    /// those of a namespace annotated `linkerd.io/inject: enabled` (linkerd2 pkg/inject).
    /// Without `inject`, neither is set, so the mesh leaves the namespace alone.
    pub fn metadata(&self, mesh: Mesh) -> NamespaceMetadata {
        let mut out = NamespaceMetadata { labels: self.labels.clone(), annotations: self.annotations.clone() };
        if self.inject {
            match mesh {
                Mesh::Istio => {
                    out.labels.insert("istio-injection".into(), "enabled".into());
                }
                Mesh::Linkerd => {
                    out.annotations.insert("linkerd.io/inject".into(), "enabled".into());
                }
                Mesh::None => {}
            }
        }
        out
    }

    /// Whether pods of the namespace are injected unless they opt out.
    pub fn injects(&self, mesh: Mesh) -> bool {
        self.inject && mesh != Mesh::None
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintSettings {
    /// Rule ids whose findings are expected; each must still appear, or the scenario is stale.
    #[serde(default)]
    pub expect: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mesh {
    Istio,
    Linkerd,
    None,
}

impl Mesh {
    pub const ALL: [Mesh; 3] = [Mesh::Istio, Mesh::Linkerd, Mesh::None];

    /// The name of the mesh's proxy container in injected pods.
    pub fn proxy_container(self) -> Option<&'static str> {
        match self {
            Mesh::Istio => Some("istio-proxy"),
            Mesh::Linkerd => Some("linkerd-proxy"),
            Mesh::None => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mesh::Istio => "istio",
            Mesh::Linkerd => "linkerd",
            Mesh::None => "none",
        }
    }
}

impl fmt::Display for Mesh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mesh {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mesh::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown mesh `{s}`: expected one of istio, linkerd, none"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeshSelector {
    Istio,
    Linkerd,
    None,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tag {
    Ingress,
    Mtls,
    HeaderRouting,
    Split,
    RateLimit,
    Jwt,
    Authz,
    Tracing,
    Metrics,
    SeedAsWritten,
}

impl Tag {
    pub const ALL: [Tag; 10] = [
        Tag::Ingress,
        Tag::Mtls,
        Tag::HeaderRouting,
        Tag::Split,
        Tag::RateLimit,
        Tag::Jwt,
        Tag::Authz,
        Tag::Tracing,
        Tag::Metrics,
        Tag::SeedAsWritten,
    ];
}

/// Snapshot settings. Observations are snapshotted per scenario and mesh unless disabled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Extra header names whose values are redacted (on top of the built-in redactions).
    #[serde(default)]
    pub redact_headers: Vec<String>,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings { enabled: true, redact_headers: Vec::new() }
    }
}

fn yes() -> bool {
    true
}

/// One step. Written as a single-key map: `- http: {...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Apply(ApplyStep),
    Delete(DeleteStep),
    Wait(WaitStep),
    Http(HttpStep),
    Split(SplitStep),
    Trace(TraceStep),
    RateLimit(RateLimitStep),
    FromPod(FromPodStep),
    ExpectResource(ExpectResourceStep),
    Metrics(MetricsStep),
    MeshMembership(MeshMembershipStep),
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Apply(_) => "apply",
            Step::Delete(_) => "delete",
            Step::Wait(_) => "wait",
            Step::Http(_) => "http",
            Step::Split(_) => "split",
            Step::Trace(_) => "trace",
            Step::RateLimit(_) => "rate-limit",
            Step::FromPod(_) => "from-pod",
            Step::ExpectResource(_) => "expect-resource",
            Step::Metrics(_) => "metrics",
            Step::MeshMembership(_) => "mesh-membership",
        }
    }

    /// The fixture files this step names, for existence and render checks.
    pub fn fixtures(&self) -> &[Spanned<String>] {
        match self {
            Step::Apply(s) => &s.fixtures,
            Step::Delete(DeleteStep { fixtures, .. }) => fixtures,
            _ => &[],
        }
    }
}

fn non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let v = Vec::<T>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom("expected at least one entry, found an empty list"));
    }
    Ok(v)
}

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
    pub resource: Option<ResourceRef>,
    pub timeout: Timeout,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeleteStep {
    #[serde(default)]
    fixtures: Vec<Spanned<String>>,
    #[serde(default)]
    resource: Option<ResourceRef>,
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
    pub resource: ResourceRef,
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

/// A Kubernetes object named by kind and name; the namespace defaults to the scenario's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
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

/// A request. `host` defaults to the scenario's own Kong host, `{{ host }}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "Request::get")]
    pub method: Method,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A bearer token the harness makes per run (see the jwt scenarios); `none` sends no token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtToken>,
}

impl Request {
    fn get() -> Method {
        Method::Get
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

/// Names as written in scenario files (the serde names), for plans and messages.
macro_rules! display_as_serde_name {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(s)) => f.write_str(&s),
                    _ => write!(f, "{self:?}"),
                }
            }
        }
    )*};
}

display_as_serde_name!(Method, WaitCondition, RateWindow, Tag, JwtToken);

/// Which token the harness attaches: signed with the run's key and valid, or already expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JwtToken {
    Valid,
    Expired,
}

/// What a response (or its absence) must look like. Fields left out are not checked; at least
/// one must be given (an empty `expect` passes on any answer, a check that cannot fail).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", try_from = "ExpectFields")]
pub struct Expect {
    /// The status code, or a list of acceptable codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OneOrMany<u16>>,
    /// The request must not reach a backend: a transport failure (refused, reset, timeout)
    /// or a response that the echo backend did not produce (e.g. a mesh proxy's 403).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// Response headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderMatch>,
    /// What the echo backend reports about the request it received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendExpect>,
    /// The mesh identity the backend saw for its caller, mesh-neutral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsExpect>,
}

/// [`Expect`] as written, before the check that it can fail.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ExpectFields {
    #[serde(default)]
    status: Option<OneOrMany<u16>>,
    #[serde(default)]
    refused: bool,
    #[serde(default)]
    headers: BTreeMap<String, HeaderMatch>,
    #[serde(default)]
    backend: Option<BackendExpect>,
    #[serde(default)]
    mtls: Option<MtlsExpect>,
}

impl TryFrom<ExpectFields> for Expect {
    type Error = String;

    fn try_from(f: ExpectFields) -> Result<Self, String> {
        let expect =
            Expect { status: f.status, refused: f.refused, headers: f.headers, backend: f.backend, mtls: f.mtls };
        if expect == Expect::default() {
            return Err("an empty `expect` passes on any answer, so it proves nothing: say what the answer must be \
                 (status, refused, headers, backend or mtls)"
                .into());
        }
        Ok(expect)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackendExpect {
    /// The `version` label of the pod that answered (one of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<OneOrMany<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Host header the backend received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Request headers as the backend received them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderMatch>,
}

/// `client: <namespace>/<serviceaccount>`; each mesh maps it to its own evidence
/// (Istio: the XFCC `URI=spiffe://…`; Linkerd: `l5d-client-id`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsExpect {
    #[serde(deserialize_with = "workload_identity")]
    pub client: String,
}

fn workload_identity<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match s.split_once('/') {
        Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() && !sa.contains('/') => Ok(s),
        _ => Err(serde::de::Error::custom(format!(
            "`{s}` is not a workload identity: expected <namespace>/<serviceaccount>"
        ))),
    }
}

/// A header expectation: a plain string means "equals".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderMatch {
    Equals(String),
    Contains(String),
    OneOf(Vec<String>),
    Present,
    Absent,
}

/// Written back the way a scenario file writes it, so recorded steps parse to the same match.
impl Serialize for HeaderMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let form = match self {
            HeaderMatch::Equals(v) => return s.serialize_str(v),
            HeaderMatch::Contains(v) => serde_json::json!({ "contains": v }),
            HeaderMatch::OneOf(vs) => serde_json::json!({ "one-of": vs }),
            HeaderMatch::Present => serde_json::json!({ "present": true }),
            HeaderMatch::Absent => serde_json::json!({ "absent": true }),
        };
        form.serialize(s)
    }
}

impl<'de> Deserialize<'de> for HeaderMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        enum Tagged {
            Equals(String),
            Contains(String),
            OneOf(Vec<String>),
            Present(bool),
            Absent(bool),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Plain(String),
            Tagged(Tagged),
        }
        // Untagged enums lose the inner error, so say exactly what is accepted.
        let form = Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a string (equals) or one of {equals: S}, {contains: S}, {one-of: [S, ...]}, {present: true}, {absent: true}",
            )
        })?;
        Ok(match form {
            Form::Plain(s) | Form::Tagged(Tagged::Equals(s)) => HeaderMatch::Equals(s),
            Form::Tagged(Tagged::Contains(s)) => HeaderMatch::Contains(s),
            Form::Tagged(Tagged::OneOf(v)) => HeaderMatch::OneOf(v),
            Form::Tagged(Tagged::Present(true)) => HeaderMatch::Present,
            Form::Tagged(Tagged::Absent(true)) => HeaderMatch::Absent,
            Form::Tagged(Tagged::Present(false) | Tagged::Absent(false)) => {
                return Err(serde::de::Error::custom(
                    "`present: false` / `absent: false` say nothing; use the other one",
                ));
            }
        })
    }
}

/// `x` or `[x, y]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(x) => std::slice::from_ref(x),
            OneOrMany::Many(v) => v,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form<T> {
            One(T),
            Many(Vec<T>),
        }
        match Form::deserialize(d).map_err(|_| serde::de::Error::custom("expected a value or a list of values"))? {
            Form::One(x) => Ok(OneOrMany::One(x)),
            Form::Many(v) if v.is_empty() => Err(serde::de::Error::custom("expected at least one value")),
            Form::Many(v) => Ok(OneOrMany::Many(v)),
        }
    }
}

/// Converge settings: `passes` consecutive full passes within `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Converge {
    #[serde(default = "Converge::default_passes", deserialize_with = "passes")]
    pub passes: u32,
    #[serde(default = "Timeout::converge")]
    pub within: Timeout,
}

impl Converge {
    fn default_passes() -> u32 {
        3
    }
}

impl Default for Converge {
    fn default() -> Self {
        Converge { passes: Converge::default_passes(), within: Timeout::converge() }
    }
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
fn within_range<'de, D: Deserializer<'de>>(d: D, min: u32, max: u32, what: &str) -> Result<u32, D::Error> {
    let n = u64::deserialize(d)
        .map_err(|_| serde::de::Error::custom(format!("{what}: expected a whole number in {min}..={max}")))?;
    if n < u64::from(min) || n > u64::from(max) {
        return Err(serde::de::Error::custom(format!("{what} {n} is outside {min}..={max}")));
    }
    Ok(n as u32)
}

/// Consecutive passes of a converge: 1 to 100.
fn passes<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
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
    pub resource: ResourceRef,
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

/// A duration written as `500ms`, `30s`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timeout(pub Duration);

impl Timeout {
    /// The longest wait a scenario may ask for: a deadline past it is a typo, and a huge one
    /// would overflow the clock arithmetic of the waits.
    pub const MAX: Timeout = Timeout::secs(2 * 3600);

    pub const fn secs(s: u64) -> Self {
        Timeout(Duration::from_secs(s))
    }
    pub fn apply() -> Self {
        Timeout::secs(60)
    }
    fn delete() -> Self {
        Timeout::secs(120)
    }
    fn wait() -> Self {
        Timeout::secs(180)
    }
    fn converge() -> Self {
        Timeout::secs(60)
    }
    fn split() -> Self {
        Timeout::secs(180)
    }
    fn mutant_settle() -> Self {
        Timeout::secs(10)
    }
    fn trace() -> Self {
        Timeout::secs(90)
    }
    fn trace_quiet() -> Self {
        // Linkerd's proxies export in batches every 10 s (linkerd2-proxy
        // linkerd/opentelemetry/src/lib.rs); Envoy's and Kong's exporters flush within seconds.
        // 20 s leaves a whole batch interval of margin after the trace first looked complete.
        Timeout::secs(20)
    }
    fn is_trace_quiet(&self) -> bool {
        *self == Timeout::trace_quiet()
    }
    fn rate_limit() -> Self {
        // A fresh minute window can be up to 60 s away, plus the burst itself.
        Timeout::secs(150)
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let d = parse_duration(s)?;
        if d.is_zero() {
            return Err("a timeout of zero can never be met".into());
        }
        if d > Timeout::MAX.0 {
            return Err(format!("`{s}` is longer than {}, the longest any wait of a run may take", Timeout::MAX));
        }
        Ok(Timeout(d))
    }
}

/// A duration as scenarios and the command line write it: a whole number and one unit (`500ms`,
/// `30s`, `2m`, `1h`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{s}` is not a duration: expected e.g. 500ms, 30s, 2m, 1h"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("`{s}` has no known unit: expected ms, s, m or h (e.g. 30s)")),
    })
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for Timeout {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timeout::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_back() {
        for (text, ms) in [("500ms", 500), ("30s", 30_000), ("2m", 120_000), ("1h", 3_600_000)] {
            let t = Timeout::parse(text).unwrap();
            assert_eq!(t.0.as_millis(), ms);
            assert_eq!(t.to_string(), text);
        }
        assert!(Timeout::parse("30").unwrap_err().contains("no known unit"));
        assert!(Timeout::parse("s").unwrap_err().contains("not a duration"));
        assert!(Timeout::parse("0s").is_err());
    }

    /// What a run records (a step serialised back) parses to the same expectation.
    #[test]
    fn header_matches_round_trip_through_their_written_form() {
        for text in ["x", "{contains: x}", "{one-of: [a, b]}", "{present: true}", "{absent: true}"] {
            let m: HeaderMatch = crate::yaml::from_str(text).unwrap();
            let back: HeaderMatch = crate::yaml::from_str(&serde_saphyr::to_string(&m).unwrap()).unwrap();
            assert_eq!(back, m, "{text}");
        }
        let e: Expect = crate::yaml::from_str("{status: 200, refused: true, headers: {x: {present: true}}}").unwrap();
        assert_eq!(crate::yaml::from_str::<Expect>(&serde_saphyr::to_string(&e).unwrap()).unwrap(), e);
    }

    #[test]
    fn split_weights_that_overflow_are_an_error_not_a_panic() {
        let e =
            crate::yaml::from_str::<SplitStep>("{request: {path: /}, weights: {v1: 4294967295, v2: 1}}").unwrap_err();
        assert!(e.message.contains("weight 4294967295 of `v1` is not a percentage"), "{e}");
        let e = crate::yaml::from_str::<SplitStep>("{request: {path: /}, weights: {v1: 18446744073709551615, v2: 1}}")
            .unwrap_err();
        assert!(e.message.contains("not a percentage"), "{e}");
    }

    /// Every number has a bound checked where it is written: nothing a scenario says can make
    /// a run allocate without end, overflow a deadline or wait for centuries.
    #[test]
    fn numbers_are_bounded_where_they_are_written() {
        let cases = [
            ("{request: {path: /}, limit: 4294967295, window: minute}", "limit 4294967295 is outside 1..=10000"),
            ("{request: {path: /}, limit: 100, window: minute, timeout: 18446744073709551615s}", "longer than 2h"),
            ("{request: {path: /}, limit: 0, window: minute}", "limit 0 is outside 1..=10000"),
        ];
        for (text, expected) in cases {
            let e = crate::yaml::from_str::<RateLimitStep>(text).unwrap_err();
            assert!(e.message.contains(expected), "{text}: {e}");
            assert_ne!(e.position, crate::diagnostic::Position::WHOLE_FILE, "{text}: located");
        }
        let e = crate::yaml::from_str::<Converge>("{passes: 4000000000, within: 9999999h}").unwrap_err();
        assert!(e.message.contains("passes 4000000000 is outside 1..=100"), "{e}");
        let e = crate::yaml::from_str::<Converge>("{within: 9999999h}").unwrap_err();
        assert!(e.message.contains("longer than 2h"), "{e}");
        let e = crate::yaml::from_str::<SplitStep>(
            "{request: {path: /}, weights: {a: 50, b: 50}, max-requests: 4000000000}",
        )
        .unwrap_err();
        assert!(e.message.contains("max-requests 4000000000 is outside 10..=100000"), "{e}");
        for bad in [".nan", ".inf", "-1", "0", "0.0"] {
            let e = crate::yaml::from_str::<SeriesExpect>(&format!("{{name: x, at-least: {bad}}}")).unwrap_err();
            assert!(e.message.contains("not a finite number > 0"), "{bad}: {e}");
        }
        assert_eq!(Timeout::parse("2h"), Ok(Timeout::MAX));
    }

    /// Every verdict can fail: the forms that pass on anything are refused where they are
    /// written (the list in docs/scenario-format.md, "Checks that cannot fail").
    #[test]
    fn expectations_that_prove_nothing_are_refused() {
        let refused = |yaml: &str| crate::yaml::from_str::<Step>(yaml).unwrap_err();
        for step in [
            "http: {request: {path: /}, expect: {}}",
            "from-pod: {client: {meshed: true}, url: 'http://echo/', expect: {}}",
            "metrics: {target: kong, expect: [{name: kong_http_requests_total, at-least: 0}]}",
            "trace: {request: {path: /}, context: w3c, expect: {}}",
            "trace: {request: {path: /}, context: w3c, expect: {quiet: 5s}}",
            "expect-resource: {resource: {apiVersion: v1, kind: Service, name: echo}, match: {}}",
        ] {
            let e = refused(step);
            assert!(e.message.contains("proves nothing"), "{step}: {e}");
            assert_ne!(e.position, crate::diagnostic::Position::WHOLE_FILE, "{step}: located");
        }
        // The smallest forms that can fail still load.
        for step in [
            "http: {request: {path: /}, expect: {status: 200}}",
            "http: {request: {path: /}, expect: {backend: {}}}",
            "from-pod: {client: {meshed: false}, url: 'http://echo/', expect: {refused: true}}",
            "metrics: {target: kong, expect: [{name: kong_http_requests_total, at-least: 0.5}]}",
            "trace: {request: {path: /}, context: w3c, expect: {absent: [x]}}",
            "expect-resource: {resource: {apiVersion: v1, kind: Service, name: echo}, match: {spec: {type: ClusterIP}}}",
        ] {
            crate::yaml::from_str::<Step>(step).unwrap_or_else(|e| panic!("{step}: {e}"));
        }
    }

    #[test]
    fn meshes_parse_from_the_command_line() {
        assert_eq!("linkerd".parse::<Mesh>(), Ok(Mesh::Linkerd));
        assert!("consul".parse::<Mesh>().unwrap_err().contains("istio, linkerd, none"));
    }
}
