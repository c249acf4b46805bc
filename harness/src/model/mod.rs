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

mod expect;
mod steps;

pub use expect::*;
pub use steps::*;

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
        self.meshes.is_empty() || self.meshes.iter().any(|s| s.selects(mesh))
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
pub const OWNED_NAMESPACE_KEYS: &[&str] =
    &["istio-injection", "istio.io/rev", AMBIENT_LABEL, "linkerd.io/inject", "kme2e.dev/run"];

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

/// The label that enrolls a namespace in Istio's ambient mode (`ambient`), or opts a pod in or
/// out (`ambient`, `none`) over its namespace.
pub const AMBIENT_LABEL: &str = "istio.io/dataplane-mode";

impl NamespaceSettings {
    /// The namespace's metadata on `mesh`: Istio injects pods of a namespace labelled
    /// `istio-injection=enabled` (the injector's namespaceSelector, istio/istio
    /// manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml); Linkerd
    /// those of a namespace annotated `linkerd.io/inject: enabled` (linkerd2 pkg/inject).
    /// In Istio's ambient mode, a namespace labelled `istio.io/dataplane-mode: ambient` joins
    /// (istio.io docs/ambient/usage/add-workloads). Without `inject`, none is set, so the mesh
    /// leaves the namespace alone.
    pub fn metadata(&self, mesh: Mesh) -> NamespaceMetadata {
        let mut out = NamespaceMetadata { labels: self.labels.clone(), annotations: self.annotations.clone() };
        if self.inject {
            match mesh {
                Mesh::Istio => {
                    out.labels.insert("istio-injection".into(), "enabled".into());
                }
                Mesh::IstioAmbient => {
                    out.labels.insert(AMBIENT_LABEL.into(), "ambient".into());
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
    /// Istio with sidecars: Envoy in every meshed pod, Kong's included.
    Istio,
    /// Istio's ambient data plane: no sidecar anywhere; ztunnel on each node carries meshed
    /// pods' traffic over mTLS (L4), waypoint proxies add L7 where a namespace or Service asks
    /// for one. The same control plane (istiod), another data plane, other answers.
    IstioAmbient,
    Linkerd,
    None,
}

impl Mesh {
    pub const ALL: [Mesh; 4] = [Mesh::Istio, Mesh::IstioAmbient, Mesh::Linkerd, Mesh::None];

    /// The name of the mesh's proxy container in meshed pods (none in ambient mode: ztunnel
    /// runs beside the pods, on the node).
    pub fn proxy_container(self) -> Option<&'static str> {
        match self {
            Mesh::Istio => Some("istio-proxy"),
            Mesh::Linkerd => Some("linkerd-proxy"),
            Mesh::IstioAmbient | Mesh::None => None,
        }
    }

    /// What marks a pod as inside the mesh, for messages: the proxy container, or in ambient
    /// mode istio-cni's annotation once it has redirected the pod's traffic to ztunnel.
    pub fn member_mark(self) -> Option<&'static str> {
        match self {
            Mesh::IstioAmbient => Some("ambient.istio.io/redirection=enabled"),
            _ => self.proxy_container(),
        }
    }

    /// Where the mesh's control plane (and ztunnel, in ambient mode) runs, as the stack installs it.
    pub fn system_namespace(self) -> Option<&'static str> {
        match self {
            Mesh::Istio | Mesh::IstioAmbient => Some("istio-system"),
            Mesh::Linkerd => Some("linkerd"),
            Mesh::None => None,
        }
    }

    /// Istio's control plane, whatever the data plane: istiod, its CRDs and its charts.
    pub fn is_istio(self) -> bool {
        matches!(self, Mesh::Istio | Mesh::IstioAmbient)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mesh::Istio => "istio",
            Mesh::IstioAmbient => "istio-ambient",
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
            .ok_or_else(|| format!("unknown mesh `{s}`: expected one of istio, istio-ambient, linkerd, none"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeshSelector {
    Istio,
    IstioAmbient,
    Linkerd,
    None,
    Any,
}

impl MeshSelector {
    /// Whether a scenario (or mutant) written for `self` runs on `mesh`. `istio` is Istio with
    /// sidecars only: a check written for sidecars (XFCC, the sidecar's metrics and spans) has
    /// no meaning in ambient mode, so ambient is chosen by name (`istio-ambient`) or by `any`.
    pub fn selects(self, mesh: Mesh) -> bool {
        matches!(
            (self, mesh),
            (MeshSelector::Any, _)
                | (MeshSelector::Istio, Mesh::Istio)
                | (MeshSelector::IstioAmbient, Mesh::IstioAmbient)
                | (MeshSelector::Linkerd, Mesh::Linkerd)
                | (MeshSelector::None, Mesh::None)
        )
    }
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
    /// Kong routes by Gateway API HTTPRoutes on its own Gateway (not Ingresses).
    GatewayApi,
    /// Istio ambient's L7 proxy: policy or routing a waypoint applies to Kong's requests.
    Waypoint,
    /// Traffic through Kong within an error budget while parts of the stack restart.
    Resilience,
    /// Traffic through Kong within an error budget while the mesh moves to its next release.
    Upgrade,
}

impl Tag {
    pub const ALL: [Tag; 14] = [
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
        Tag::GatewayApi,
        Tag::Waypoint,
        Tag::Resilience,
        Tag::Upgrade,
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
    Load(LoadStep),
    Restart(RestartStep),
    Upgrade(UpgradeStep),
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
            Step::Load(_) => "load",
            Step::Restart(_) => "restart",
            Step::Upgrade(_) => "upgrade",
        }
    }

    /// The steps a step runs inside it (a load's `during`), none for the others.
    pub fn nested(&self) -> &[Step] {
        match self {
            Step::Load(s) => &s.during,
            _ => &[],
        }
    }

    /// The shared part of the cluster this step restarts (Kong, the mesh's control plane,
    /// ztunnel) or upgrades, itself or in the steps it runs, for people.
    pub fn restarts_shared(&self) -> Option<String> {
        match self {
            Step::Restart(r) if r.target.is_shared() => Some(r.target.to_string()),
            Step::Upgrade(u) => Some(format!("{} (an upgrade)", u.part)),
            _ => self.nested().iter().find_map(Step::restarts_shared),
        }
    }

    /// Whether this step, or one it runs, upgrades a part of the stack.
    pub fn upgrades(&self) -> bool {
        matches!(self, Step::Upgrade(_)) || self.nested().iter().any(Step::upgrades)
    }

    /// The parts this step, or one it runs, upgrades, in order.
    pub fn upgrade_parts(&self) -> Vec<UpgradePart> {
        match self {
            Step::Upgrade(u) => vec![u.part],
            _ => self.nested().iter().flat_map(Step::upgrade_parts).collect(),
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

/// A Kubernetes object: apiVersion, kind, name and (for namespaced kinds, when known) the
/// namespace. The one object reference of the crate: scenario files name objects with it (the
/// namespace defaulting to the scenario's), plans list fixture objects with it, evidence is
/// collected and mutants delete by it. Spelled as Kubernetes spells it (`apiVersion`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ObjectRef {
    /// The reference of a manifest as the API server reads it (absent fields empty).
    pub fn of(object: &serde_json::Value) -> Self {
        let text = |p: &str| object.pointer(p).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        ObjectRef {
            api_version: text("/apiVersion"),
            kind: text("/kind"),
            name: text("/metadata/name"),
            namespace: object.pointer("/metadata/namespace").and_then(serde_json::Value::as_str).map(str::to_owned),
        }
    }
}

/// Why a step did not pass (vocabulary shared by the runner, the reports and bundles; the
/// runner's typed outcomes are in `runner::outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The step's check judged what the cluster did and said no: the scenario's verdict.
    Verdict,
    /// The harness could not judge: the API server refused or failed, a fixture did not load, a
    /// probe could not run, the trace collector did not answer.
    Error,
    /// Ctrl-C or the run's budget stopped the step before it decided.
    Interrupted,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Verdict => "failed",
            FailureKind::Error => "could not be judged",
            FailureKind::Interrupted => "was interrupted",
        })
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
    fn restart() -> Self {
        Timeout::secs(300)
    }
    fn upgrade() -> Self {
        // helm's own `--timeout` per release is 10m (stack::HELM_TIMEOUT); two releases.
        Timeout::secs(1200)
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
        assert_eq!("istio-ambient".parse::<Mesh>(), Ok(Mesh::IstioAmbient));
        assert!("consul".parse::<Mesh>().unwrap_err().contains("istio, istio-ambient, linkerd, none"));
    }
}
