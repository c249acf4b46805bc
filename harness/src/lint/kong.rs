//! What lint knows about the user's Kong install, and from where: the chart its values are for
//! (kong/ingress or kong/kong), its namespace and release (flags, or an assumption said once),
//! and whether its gateway pods join the mesh (pod labels and annotations from the values, the
//! Namespace object when it is among the inputs). A fact lint does not have is `Unknown`, and
//! the rules that need it say so instead of guessing.

use serde_json::Value;

use super::values_file::ValuesFile;
use crate::scenario::Mesh;
use crate::scenario::fixture::Manifest;

/// The Kong charts whose values lint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KongChart {
    /// `kong/ingress`: an umbrella of two `kong` subcharts aliased `controller` and `gateway`
    /// (Kong/charts charts/ingress/Chart.yaml and values.yaml, 0.24.0).
    Ingress,
    /// `kong/kong`: one chart, Kong and (by default) its controller in one pod
    /// (Kong/charts charts/kong/values.yaml, kong-3.2.0).
    Kong,
}

/// Top-level values kong/kong reads: every `.Values.<key>` its templates refer to at
/// kong-3.2.0 (charts/kong/templates/*.yaml and _helpers.tpl), plus Helm's `global`. Any other key
/// is ignored by the chart, which has no values schema to reject it.
const KONG_CHART_TOP_LEVEL: &[&str] = &[
    "admin",
    "affinity",
    "autoscaling",
    "certificates",
    "cluster",
    "clustertelemetry",
    "containerSecurityContext",
    "customEnv",
    "dblessConfig",
    "deployment",
    "deploymentAnnotations",
    "dnsConfig",
    "dnsPolicy",
    "enterprise",
    "env",
    "envFrom",
    "extraConfigMaps",
    "extraLabels",
    "extraObjects",
    "extraSecrets",
    "fullnameOverride",
    "image",
    "ingressController",
    "initContainerResources",
    "lifecycle",
    "livenessProbe",
    "manager",
    "migrations",
    "nameOverride",
    "namespace",
    "nodeSelector",
    "plugins",
    "podAnnotations",
    "podDisruptionBudget",
    "podLabels",
    "podSecurityPolicy",
    "portal",
    "portalapi",
    "postgresql",
    "priorityClassName",
    "proxy",
    "readinessProbe",
    "replicaCount",
    "resources",
    "secretVolumes",
    "securityContext",
    "serviceMonitor",
    "startupProbe",
    "status",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
    "udpProxy",
    "updateStrategy",
    "waitImage",
    "global",
];

impl KongChart {
    pub const NAMES: [&'static str; 2] = ["kong/ingress", "kong/kong"];

    pub fn from_name(chart: &str) -> Option<Self> {
        match chart {
            "kong/ingress" => Some(KongChart::Ingress),
            "kong/kong" => Some(KongChart::Kong),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KongChart::Ingress => "kong/ingress",
            KongChart::Kong => "kong/kong",
        }
    }

    /// Where the settings of the proxy (gateway) pods sit in the values.
    pub fn gateway(self) -> &'static [&'static str] {
        match self {
            KongChart::Ingress => &["gateway"],
            KongChart::Kong => &[],
        }
    }

    /// Every section where a user writes pod or proxy settings, including kong/ingress's top
    /// level (ignored by the umbrella, and checked so the mistake is named).
    pub fn written_sections(self) -> &'static [&'static [&'static str]] {
        match self {
            KongChart::Ingress => &[&[], &["gateway"], &["controller"]],
            KongChart::Kong => &[&[]],
        }
    }

    /// Every section holding pod settings: the gateway's, and the controller's own pods for
    /// kong/ingress (kong/kong runs both in one pod).
    pub fn pod_sections(self) -> &'static [&'static [&'static str]] {
        match self {
            KongChart::Ingress => &[&["gateway"], &["controller"]],
            KongChart::Kong => &[&[]],
        }
    }

    /// Where KIC's env settings sit. For kong/ingress, also the top-level spelling (ignored by
    /// the umbrella, reported as such): its keys are checked too, as they will be once moved.
    pub fn controller_env(self) -> &'static [&'static [&'static str]] {
        match self {
            KongChart::Ingress => &[&["controller", "ingressController", "env"], &["ingressController", "env"]],
            KongChart::Kong => &[&["ingressController", "env"]],
        }
    }

    /// Top-level keys the chart reads; `None`: any (not checked).
    pub fn top_level_keys(self) -> &'static [&'static str] {
        match self {
            KongChart::Ingress => &["controller", "gateway", "deployment", "global"],
            KongChart::Kong => KONG_CHART_TOP_LEVEL,
        }
    }

    /// The value at `path` under the gateway's section.
    fn gateway_value<'v>(self, values: Option<&'v Value>, path: &[&str]) -> Option<&'v Value> {
        let full: Vec<&str> = self.gateway().iter().chain(path).copied().collect();
        values.and_then(|v| full.iter().try_fold(v, |v, k| v.get(*k)))
    }

    /// The service account Kong's proxy runs as, for release `release` (charts/kong/templates/
    /// _helpers.tpl at kong-3.2.0: `kong.serviceAccountName` is `deployment.serviceAccount.name`,
    /// else `kong.fullname` when the chart creates it (the default) or `default` when it does not;
    /// `kong.fullname` is `fullnameOverride`, else `<release>-<nameOverride or chart name>`, the
    /// chart name being the alias `gateway` under kong/ingress).
    pub fn service_account(self, release: &str, values: Option<&Value>) -> String {
        let text = |path: &[&str]| {
            self.gateway_value(values, path).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        if let Some(named) = text(&["deployment", "serviceAccount", "name"]) {
            return named;
        }
        let created = self.gateway_value(values, &["deployment", "serviceAccount", "create"]).and_then(Value::as_bool);
        if created == Some(false) {
            return "default".into();
        }
        if let Some(full) = text(&["fullnameOverride"]) {
            return full;
        }
        let chart = match self {
            KongChart::Ingress => "gateway".to_owned(),
            KongChart::Kong => text(&["nameOverride"]).unwrap_or_else(|| "kong".into()),
        };
        let mut name = format!("{release}-{chart}");
        name.truncate(63);
        name.trim_end_matches('-').to_owned()
    }

    /// The controller's own service account, where it runs apart from the gateway: kong/ingress
    /// names its `controller` subchart's account `<release>-controller` (as rendered from the
    /// vendored chart: harness/testdata/renders/*/kong.yaml); kong/kong runs both in one pod.
    pub fn controller_service_account(self, release: &str) -> Option<String> {
        match self {
            KongChart::Ingress => {
                let mut name = format!("{release}-controller");
                name.truncate(63);
                Some(name.trim_end_matches('-').to_owned())
            }
            KongChart::Kong => None,
        }
    }

    /// The namespace the values put Kong in (kong/kong's `namespace`, which overrides the
    /// release namespace: `kong.namespace` in _helpers.tpl).
    pub fn namespace(self, values: Option<&Value>) -> Option<String> {
        self.gateway_value(values, &["namespace"]).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    /// The ingress class KIC serves (`ingressController.ingressClass`, default `kong`).
    pub fn ingress_class(self, values: Option<&Value>) -> String {
        let path: &[&str] = match self {
            KongChart::Ingress => &["controller", "ingressController", "ingressClass"],
            KongChart::Kong => &["ingressController", "ingressClass"],
        };
        values
            .and_then(|v| path.iter().try_fold(v, |v, k| v.get(*k)))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("kong")
            .to_owned()
    }
}

/// Where a fact came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag (or the harness's own install, for its scenarios).
    Given,
    /// Assumed; the text says what was assumed and how to say otherwise.
    Assumed(String),
}

/// What lint knows of Kong's install.
#[derive(Debug, Clone)]
pub struct KongSetup {
    pub namespace: String,
    pub release: String,
    /// Where namespace and release came from.
    pub source: Source,
    /// The chart its values are for, when values were given.
    pub chart: Option<KongChart>,
}

/// Whether Kong's gateway pods carry the mesh's proxy, and why lint thinks so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meshing {
    Meshed(String),
    NotMeshed(String),
    /// The inputs do not say; the text names what is missing.
    Unknown(String),
}

impl KongSetup {
    /// Whether the gateway's pods join `mesh`, from the pod labels and annotations in `values`
    /// and the labels and annotations of Kong's Namespace when it is among `objects`.
    pub fn meshing(&self, mesh: Mesh, values: Option<&ValuesFile>, objects: &[Manifest]) -> Meshing {
        let ns = objects.iter().find(|o| o.kind == "Namespace" && o.name == self.namespace);
        let pod = |map: &str, key: &str| -> Option<String> {
            let (values, chart) = (values?, self.chart?);
            let path: Vec<&str> = chart.gateway().iter().copied().chain([map, key]).collect();
            values.get(&path).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let ns_label = |key: &str| ns.and_then(|n| n.labels().find(|(k, _)| *k == key).map(|(_, v)| v.to_owned()));
        let ns_annotation =
            |key: &str| ns.and_then(|n| n.annotations().find(|(k, _)| *k == key).map(|(_, v)| v.to_owned()));
        let where_ns = format!("namespace {}", self.namespace);
        // Without Kong's values the pods' own labels are unknown: they could opt in or out. Only
        // the namespace can still decide, with the chart's defaults (no opt-out) assumed.
        if values.is_none() || self.chart.is_none() {
            let assumed = "Kong's values are not given: the chart's default of no opt-out is assumed";
            return match (mesh, ns) {
                (Mesh::None, _) => Meshing::NotMeshed("no mesh".into()),
                (Mesh::Istio | Mesh::IstioAmbient, Some(_)) => {
                    match (ns_label("istio.io/dataplane-mode"), ns_label("istio-injection"), ns_label("istio.io/rev")) {
                        (Some(mode), _, _) if mode == "ambient" => {
                            Meshing::Meshed(format!("{where_ns} is in Istio's ambient mode"))
                        }
                        (_, Some(i), _) if i == "enabled" => {
                            Meshing::Meshed(format!("{where_ns} has istio-injection=enabled; {assumed}"))
                        }
                        (_, Some(i), _) => Meshing::NotMeshed(format!(
                            "{where_ns} has istio-injection={i}, which no injector webhook selects"
                        )),
                        (_, None, Some(rev)) => {
                            Meshing::Meshed(format!("{where_ns} has istio.io/rev={rev}; {assumed}"))
                        }
                        _ => Meshing::Unknown(self.missing(values, "its pods' labels")),
                    }
                }
                (Mesh::Linkerd, Some(_)) => match ns_annotation("linkerd.io/inject") {
                    Some(n) if n == "enabled" || n == "ingress" => {
                        Meshing::Meshed(format!("{where_ns} is annotated linkerd.io/inject: {n}; {assumed}"))
                    }
                    Some(n) => Meshing::NotMeshed(format!("{where_ns} is annotated linkerd.io/inject: {n}")),
                    None => Meshing::Unknown(self.missing(values, "its pods' annotations")),
                },
                (_, None) => Meshing::Unknown(self.missing(values, "its pods' labels and its namespace")),
            };
        }
        match mesh {
            Mesh::None => Meshing::NotMeshed("no mesh".into()),
            // The injector's four webhooks (istio/istio manifests/charts/istio-control/
            // istio-discovery/templates/mutatingwebhook.yaml, 1.30): namespace label
            // istio-injection=enabled or istio.io/rev, or, in a namespace with neither, the pod
            // label sidecar.istio.io/inject=true or istio.io/rev; `sidecar.istio.io/inject:
            // "false"` on the pod opts out of the namespace-wide ones.
            Mesh::Istio | Mesh::IstioAmbient => {
                // The injector also honours the annotation, the label winning when both are set
                // (istio/istio pkg/kube/inject/inject.go `injectRequired`).
                let label = pod("podLabels", "sidecar.istio.io/inject");
                let annotation = pod("podAnnotations", "sidecar.istio.io/inject");
                let opt_out = label.as_deref().or(annotation.as_deref()) == Some("false");
                // Ambient: the pod's own `istio.io/dataplane-mode` decides over its namespace's
                // (istio.io docs/ambient/usage/add-workloads).
                match (
                    pod("podLabels", crate::model::AMBIENT_LABEL).as_deref(),
                    ns_label(crate::model::AMBIENT_LABEL).as_deref(),
                ) {
                    (Some("ambient"), _) => {
                        return Meshing::Meshed("the pods carry istio.io/dataplane-mode=ambient".into());
                    }
                    (None, Some("ambient")) => {
                        return Meshing::Meshed(format!("{where_ns} is in Istio's ambient mode"));
                    }
                    _ => {}
                }
                let pod_in = pod("podLabels", "sidecar.istio.io/inject").as_deref() == Some("true");
                let pod_rev = pod("podLabels", "istio.io/rev");
                match (ns, ns_label("istio-injection"), ns_label("istio.io/rev")) {
                    (Some(_), Some(injection), _) if injection == "enabled" => {
                        if opt_out {
                            Meshing::NotMeshed("the pods opt out with `sidecar.istio.io/inject: \"false\"`".into())
                        } else {
                            Meshing::Meshed(format!("{where_ns} has istio-injection=enabled"))
                        }
                    }
                    (Some(_), Some(injection), _) => Meshing::NotMeshed(format!(
                        "{where_ns} has istio-injection={injection}, which no injector webhook selects"
                    )),
                    (Some(_), None, Some(rev)) => {
                        if opt_out {
                            Meshing::NotMeshed("the pods opt out with `sidecar.istio.io/inject: \"false\"`".into())
                        } else {
                            Meshing::Meshed(format!("{where_ns} has istio.io/rev={rev}"))
                        }
                    }
                    (ns, _, _) => {
                        if opt_out {
                            Meshing::NotMeshed("the pods opt out with `sidecar.istio.io/inject: \"false\"`".into())
                        } else if let Some(rev) = pod_rev {
                            Meshing::Meshed(format!("the pods carry istio.io/rev={rev}"))
                        } else if pod_in {
                            Meshing::Meshed("the pods carry sidecar.istio.io/inject=true".into())
                        } else if ns.is_some() {
                            Meshing::NotMeshed(format!(
                                "neither {where_ns} nor the pods carry an injection label (istio-injection, istio.io/rev, sidecar.istio.io/inject)"
                            ))
                        } else {
                            Meshing::Unknown(self.missing(values, "the Namespace object of Kong's namespace"))
                        }
                    }
                }
            }
            // The proxy injector reads `linkerd.io/inject` on the pod, then on its namespace;
            // `disabled` on the pod opts out (linkerd.io/2-edge/features/proxy-injection/).
            Mesh::Linkerd => {
                let injects = |v: &str| matches!(v, "enabled" | "ingress");
                match (pod("podAnnotations", "linkerd.io/inject"), ns_annotation("linkerd.io/inject")) {
                    (Some(p), _) if injects(&p) => {
                        Meshing::Meshed(format!("the pods are annotated linkerd.io/inject: {p}"))
                    }
                    (Some(p), _) => Meshing::NotMeshed(format!("the pods are annotated linkerd.io/inject: {p}")),
                    (None, Some(n)) if injects(&n) => {
                        Meshing::Meshed(format!("{where_ns} is annotated linkerd.io/inject: {n}"))
                    }
                    (None, Some(n)) => Meshing::NotMeshed(format!("{where_ns} is annotated linkerd.io/inject: {n}")),
                    (None, None) if ns.is_some() => {
                        Meshing::NotMeshed(format!("neither {where_ns} nor the pods are annotated linkerd.io/inject"))
                    }
                    (None, None) => Meshing::Unknown(self.missing(values, "the Namespace object of Kong's namespace")),
                }
            }
        }
    }

    fn missing(&self, values: Option<&ValuesFile>, what: &str) -> String {
        match values {
            None => format!("no Kong values (--values kong/kong=FILE or kong/ingress=FILE), so {what} are unknown"),
            Some(_) => format!(
                "the values set no injection label or annotation on the pods, and {what} is not among the inputs"
            ),
        }
    }

    /// The `linkerd.io/inject` value Kong's pods get: their own annotation, else their
    /// namespace's. `None` when the inputs do not say.
    pub fn linkerd_inject(&self, values: Option<&ValuesFile>, objects: &[Manifest]) -> Option<String> {
        let pod = values.zip(self.chart).and_then(|(v, chart)| {
            let path: Vec<&str> =
                chart.gateway().iter().copied().chain(["podAnnotations", "linkerd.io/inject"]).collect();
            v.get(&path).and_then(Value::as_str).map(str::to_owned)
        });
        pod.or_else(|| {
            objects
                .iter()
                .find(|o| o.kind == "Namespace" && o.name == self.namespace)
                .and_then(|n| n.annotation("linkerd.io/inject"))
                .map(str::to_owned)
        })
    }
}
