//! What lint knows about the user's Kong install, and from where: the chart its values are for
//! (kong/ingress or kong/kong), its namespace and release (flags, or an assumption said once),
//! and whether its gateway pods join the mesh (pod labels and annotations from the values, the
//! Namespace object when it is among the inputs). A fact lint does not have is `Unknown`, and
//! the rules that need it say so instead of guessing.

use serde_json::Value;

use super::index::ValuesFile;
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

/// Top-level keys of kong/kong's values.yaml at kong-3.2.0 (plus Helm's `global`): any other key
/// is ignored by the chart, which has no values schema to reject it.
const KONG_CHART_TOP_LEVEL: &[&str] = &[
    "deployment",
    "env",
    "envFrom",
    "extraLabels",
    "image",
    "admin",
    "status",
    "clusterCaSecretName",
    "cluster",
    "proxy",
    "udpProxy",
    "plugins",
    "secretVolumes",
    "migrations",
    "dblessConfig",
    "ingressController",
    "postgresql",
    "certificates",
    "waitImage",
    "updateStrategy",
    "resources",
    "initContainerResources",
    "readinessProbe",
    "livenessProbe",
    "lifecycle",
    "terminationGracePeriodSeconds",
    "tolerations",
    "nodeSelector",
    "podAnnotations",
    "podLabels",
    "replicaCount",
    "deploymentAnnotations",
    "autoscaling",
    "podDisruptionBudget",
    "podSecurityPolicy",
    "priorityClassName",
    "securityContext",
    "containerSecurityContext",
    "serviceMonitor",
    "enterprise",
    "manager",
    "portal",
    "portalapi",
    "clustertelemetry",
    "extraConfigMaps",
    "extraSecrets",
    "extraObjects",
    "nameOverride",
    "fullnameOverride",
    "namespace",
    "serviceAccount",
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

    /// The service account Kong's proxy runs as, for release `release`: the subchart's fullname
    /// (`<release>-gateway` under kong/ingress; kong/kong's `kong.fullname`: the release itself
    /// when it contains "kong", else `<release>-kong`), unless the values name one
    /// (Kong/charts charts/kong/templates/_helpers.tpl `kong.fullname`, `kong.serviceAccountName`).
    pub fn service_account(self, release: &str, values: Option<&Value>) -> String {
        let gateway = |path: &[&str]| {
            let full: Vec<&str> = self.gateway().iter().chain(path).copied().collect();
            values.and_then(|v| full.iter().try_fold(v, |v, k| v.get(*k))).and_then(Value::as_str).map(str::to_owned)
        };
        if let Some(named) = gateway(&["serviceAccount", "name"]).filter(|n| !n.is_empty()) {
            return named;
        }
        if let Some(full) = gateway(&["fullnameOverride"]).filter(|n| !n.is_empty()) {
            return full;
        }
        let chart = match self {
            KongChart::Ingress => "gateway".to_owned(),
            KongChart::Kong => gateway(&["nameOverride"]).unwrap_or_else(|| "kong".into()),
        };
        if release.contains(&chart) { release.to_owned() } else { format!("{release}-{chart}") }
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
        match mesh {
            Mesh::None => Meshing::NotMeshed("no mesh".into()),
            // The injector's four webhooks (istio/istio manifests/charts/istio-control/
            // istio-discovery/templates/mutatingwebhook.yaml, 1.30): namespace label
            // istio-injection=enabled or istio.io/rev, or, in a namespace with neither, the pod
            // label sidecar.istio.io/inject=true or istio.io/rev; `sidecar.istio.io/inject:
            // "false"` on the pod opts out of the namespace-wide ones.
            Mesh::Istio => {
                let opt_out = pod("podLabels", "sidecar.istio.io/inject").as_deref() == Some("false");
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

    fn missing(&self, values: Option<&ValuesFile>, namespace: &str) -> String {
        match values {
            None => format!("no Kong values (--values kong/kong=FILE or kong/ingress=FILE) and not {namespace}"),
            Some(_) => format!(
                "the values set no injection label or annotation on the pods, and {namespace} is not among the inputs"
            ),
        }
    }
}
