//! `--no-install`: what an existing cluster already runs, read through the API and never
//! changed. Kong is found by its proxy Service, the one Service with a port named `kong-proxy`
//! (the kong chart's port name in kong/ingress and kong/kong alike; chart labels differ between
//! the two, since kong/ingress renames its kong subchart to the alias `gateway`); its gateway
//! pods (the Service's selector) say which images run and whether a mesh proxy runs beside
//! Kong; the pods' namespace and labels say how that proxy got there. The mesh is found by its
//! control plane: istiod's Deployment (`app: istiod`) or Linkerd's destination
//! (`linkerd.io/control-plane-component: destination`).
//!
//! The names are the charts' own, and the tests check them against the objects the vendored
//! charts render with a real helm (`harness/testdata/renders/`): kong/ingress 0.24.0 with kong
//! 3.2.0, istiod 1.30.3, linkerd-control-plane edge-26.8.3. Every name the API answers is
//! validated before it becomes a selector, a Kubernetes name or part of a file name.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, PodSpec, Service};
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::model::Mesh;
use crate::names;

/// What the cluster runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovered {
    pub kong: FoundKong,
    /// The mesh's control plane, when one runs.
    pub mesh: Option<FoundMesh>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundKong {
    pub namespace: String,
    /// The Helm release (`app.kubernetes.io/instance`).
    pub release: String,
    pub proxy_service: String,
    /// The proxy Service's selector (`k=v,...`): Kong's gateway pods.
    pub selector: String,
    /// The proxy Service's `helm.sh/chart` label: `gateway-3.2.0` under kong/ingress (its kong
    /// subchart's alias), `kong-3.2.0` from kong/kong.
    pub chart: String,
    /// The image of the gateway pods' `proxy` container.
    pub gateway_image: Option<String>,
    /// The image of the controller's `ingress-controller` container (KIC).
    pub controller_image: Option<String>,
    /// The gateway pods' service account (their mesh identity).
    pub service_account: Option<String>,
    /// The mesh whose proxy runs in Kong's gateway pods.
    pub sidecar: Option<Mesh>,
    /// How that proxy got there, as far as labels and annotations say.
    pub meshed_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundMesh {
    pub mesh: Mesh,
    pub namespace: String,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot {doing}: {reason}")]
    Api { doing: String, reason: String },
    #[error(
        "no Kong proxy Service found{where_}: looked for a Service with a port named `kong-proxy`, as the kong/ingress \
         and kong/kong charts render it{unsupported}"
    )]
    NoKong { where_: String, unsupported: String },
    #[error("more than one Kong proxy Service: {found}; say which with --kong-namespace")]
    ManyKongs { found: String },
    #[error("{0}")]
    Mismatch(String),
}

fn api_error(doing: impl Into<String>) -> impl FnOnce(kube::Error) -> DiscoveryError {
    let doing = doing.into();
    move |e| {
        // With its causes: kube says only `client error (SendRequest)`; the cause says "timed out".
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !reason.ends_with(&text) {
                reason.push_str(&format!(": {text}"));
            }
            source = cause.source();
        }
        DiscoveryError::Api { doing, reason }
    }
}

/// Find Kong (in `kong_namespace`, or anywhere when `None`) and the mesh.
pub async fn discover(client: &kube::Client, kong_namespace: Option<&str>) -> Result<Discovered, DiscoveryError> {
    let kong = find_kong(client, kong_namespace).await?;
    let mesh = find_mesh(client).await?;
    Ok(Discovered { kong, mesh })
}

async fn find_kong(client: &kube::Client, kong_namespace: Option<&str>) -> Result<FoundKong, DiscoveryError> {
    let services: Api<Service> = match kong_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // Every Service: the chart's labels differ between layouts (kong/ingress renames its kong
    // subchart to the alias `gateway`, so its proxy Service carries `helm.sh/chart:
    // gateway-<version>`, a label Istio's own gateway chart writes too), while the port name is
    // the kong chart's in every layout.
    let listed = services.list(&ListParams::default()).await.map_err(api_error("list Services"))?;
    let proxies: Vec<&Service> = listed.items.iter().filter(|s| has_port(s, KONG_PROXY_PORT)).collect();
    let service = match proxies.as_slice() {
        [one] => *one,
        [] => {
            let where_ = kong_namespace.map(|ns| format!(" in namespace {ns}")).unwrap_or_default();
            let unsupported = listed.items.iter().find_map(unsupported_layout);
            return Err(DiscoveryError::NoKong { where_, unsupported: unsupported.unwrap_or_default() });
        }
        many => {
            let mut found: Vec<String> = many
                .iter()
                .map(|s| {
                    format!(
                        "{}/{}",
                        names::printable(s.metadata.namespace.as_deref().unwrap_or_default()),
                        names::printable(s.metadata.name.as_deref().unwrap_or_default())
                    )
                })
                .collect();
            found.sort();
            return Err(DiscoveryError::ManyKongs { found: found.join(", ") });
        }
    };
    // Names from the API become Kubernetes names, label selectors and file names of evidence:
    // a hostile or impersonated API server could answer anything, so each is checked as the
    // API server itself would have.
    let namespace =
        api_name("the proxy Service's namespace", service.metadata.namespace.as_deref(), names::dns1123_label)?;
    let proxy_service = api_name("the proxy Service's name", service.metadata.name.as_deref(), names::dns1123_label)?;
    let release = match label(&service.metadata.labels, "app.kubernetes.io/instance") {
        Some(r) => api_name("the Helm release (app.kubernetes.io/instance)", Some(r), helm_release)?,
        None => {
            return Err(DiscoveryError::Mismatch(format!(
                "Kong's proxy Service {namespace}/{proxy_service} has no `app.kubernetes.io/instance` label: \
                 it was not installed by the kong/ingress or kong/kong Helm chart, the layouts --no-install supports"
            )));
        }
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut selector = Vec::new();
    for (k, v) in service.spec.as_ref().and_then(|s| s.selector.as_ref()).into_iter().flatten() {
        names::label_key(k).and_then(|()| names::label_value(v)).map_err(|why| {
            DiscoveryError::Mismatch(format!(
                "Kong's proxy Service {namespace}/{proxy_service} has a selector the API server would refuse: {why}"
            ))
        })?;
        selector.push(format!("{k}={v}"));
    }
    let selector = selector.join(",");
    // An empty selector would list every pod of the namespace, and judge Kong by any of them.
    if selector.is_empty() {
        return Err(DiscoveryError::Mismatch(format!(
            "Kong's proxy Service {namespace}/{proxy_service} has no selector: its pods cannot be told apart"
        )));
    }
    let gateway_pods = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error(format!("list Kong's gateway pods in {namespace}")))?;
    let gateway = gateway_pods.items.first();
    let spec = gateway.and_then(|p| p.spec.as_ref());
    let sidecar = gateway.and_then(mesh_of_pod);
    let controller_pods = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={release}")))
        .await
        .map_err(api_error(format!("list the pods of release {release} in {namespace}")))?;
    let controller_image = controller_pods.items.iter().find_map(|p| image_of(p.spec.as_ref()?, "ingress-controller"));
    let meshed_by = match (sidecar, gateway) {
        (Some(mesh), Some(pod)) => {
            let namespaces: Api<Namespace> = Api::all(client.clone());
            let ns = namespaces.get(&namespace).await.map_err(api_error(format!("read namespace {namespace}")))?;
            Some(how_meshed(mesh, &ns, pod))
        }
        _ => None,
    };
    let service_account = match spec.and_then(|s| s.service_account_name.as_deref()) {
        Some(sa) => Some(api_name("the gateway pods' service account", Some(sa), names::dns1123_subdomain)?),
        None => None,
    };
    Ok(FoundKong {
        proxy_service,
        selector,
        chart: label(&service.metadata.labels, "helm.sh/chart").map(names::printable).unwrap_or_default(),
        gateway_image: spec.and_then(|s| image_of(s, "proxy")).map(|i| names::printable(&i)),
        controller_image: controller_image.map(|i| names::printable(&i)),
        service_account,
        sidecar,
        meshed_by,
        namespace,
        release,
    })
}

/// istiod's Deployment, as the istiod chart labels it (istio/istio 1.30.3
/// manifests/charts/istio-control/istio-discovery templates/deployment.yaml: `app: istiod`).
/// `stack/chart_beliefs.rs` checks it against the vendored chart's render.
pub const ISTIOD_SELECTOR: &str = "app=istiod";
/// The container of istiod's pod whose image tag is Istio's version (same template).
pub const ISTIOD_CONTAINER: &str = "discovery";
/// Linkerd's destination Deployment (linkerd/linkerd2 edge-26.8.3 charts/linkerd-control-plane
/// templates/destination.yaml: `linkerd.io/control-plane-component: destination`).
pub const LINKERD_DESTINATION_SELECTOR: &str = "linkerd.io/control-plane-component=destination";

async fn find_mesh(client: &kube::Client) -> Result<Option<FoundMesh>, DiscoveryError> {
    let deployments: Api<Deployment> = Api::all(client.clone());
    let istiod =
        deployments.list(&ListParams::default().labels(ISTIOD_SELECTOR)).await.map_err(api_error("list istiod"))?;
    if let Some(d) = istiod.items.first() {
        let image = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).and_then(|s| image_of(s, ISTIOD_CONTAINER));
        return Ok(Some(FoundMesh {
            mesh: Mesh::Istio,
            namespace: api_name("istiod's namespace", d.metadata.namespace.as_deref(), names::dns1123_label)?,
            // The ambient profile's images carry the variant in the tag (`1.30.5-distroless`).
            version: image
                .as_deref()
                .and_then(tag_of)
                .map(|t| names::printable(t.trim_end_matches("-distroless").trim_end_matches("-debug")))
                .unwrap_or("unknown".into()),
        }));
    }
    let destination = deployments
        .list(&ListParams::default().labels(LINKERD_DESTINATION_SELECTOR))
        .await
        .map_err(api_error("list Linkerd's destination"))?;
    let Some(d) = destination.items.first() else { return Ok(None) };
    Ok(Some(FoundMesh {
        mesh: Mesh::Linkerd,
        namespace: api_name("Linkerd's namespace", d.metadata.namespace.as_deref(), names::dns1123_label)?,
        version: label(&d.metadata.labels, "app.kubernetes.io/version")
            .map(names::printable)
            .unwrap_or("unknown".into()),
    }))
}

/// The kong chart's name for the proxy Service's HTTP port, in every layout it renders (Kong/charts
/// charts/kong `templates/_helpers.tpl` at kong-3.2.0: `kong-{{ .serviceName }}` with
/// serviceName `proxy`; `kong-proxy-tls` is the TLS port).
pub const KONG_PROXY_PORT: &str = "kong-proxy";

fn has_port(service: &Service, name: &str) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|ports| ports.iter().any(|p| p.name.as_deref() == Some(name)))
}

/// The labels Kong Gateway Operator puts on a DataPlane's ingress Service, its proxy (Kong/
/// gateway-operator v1.6.2 pkg/utils/kubernetes/resources/services.go
/// `GenerateNewIngressServiceForDataPlane` with `LabelObjectAsDataPlaneManaged` (labels.go);
/// keys and values from pkg/consts/consts.go and dataplane.go, unchanged from v1.0.0 to
/// v2.0.0-alpha.4). Both, not the `gateway-operator.konghq.com/` prefix alone: the operator's
/// other Services (a DataPlane's admin Service, a ControlPlane's webhook Service) carry the
/// prefix too, and are not the proxy to name.
const KGO_DATA_PLANE_INGRESS: [(&str, &str); 2] = [
    ("gateway-operator.konghq.com/managed-by", "dataplane"),
    ("gateway-operator.konghq.com/dataplane-service-type", "ingress"),
];

/// A Kong that `--no-install` does not support, recognised so the error can say so: KIC's
/// all-in-one manifests (a Service `kong-proxy` with ports `proxy`/`proxy-ssl`, Kong/kubernetes-
/// ingress-controller `config/base/service.yaml`) and Kong Gateway Operator data planes (their
/// ingress Service, [`KGO_DATA_PLANE_INGRESS`]).
fn unsupported_layout(service: &Service) -> Option<String> {
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let ns = service.metadata.namespace.as_deref().unwrap_or_default();
    let operator = KGO_DATA_PLANE_INGRESS.iter().all(|(k, v)| label(&service.metadata.labels, k) == Some(*v));
    if operator {
        Some(format!(
            " ({}/{} is a Kong Gateway Operator data plane, which --no-install does not support)",
            names::printable(ns),
            names::printable(name)
        ))
    } else if name == "kong-proxy" {
        Some(format!(
            " ({}/kong-proxy looks like KIC's all-in-one manifests, which --no-install does not support: install Kong with the kong/ingress or kong/kong chart)",
            names::printable(ns)
        ))
    } else {
        None
    }
}

/// A name the API answered, checked with `check` before it is used; `what` says which.
fn api_name(what: &str, name: Option<&str>, check: fn(&str) -> Result<(), String>) -> Result<String, DiscoveryError> {
    let name = name.unwrap_or_default();
    check(name)
        .map_err(|why| DiscoveryError::Mismatch(format!("{what} as the API server answered it is unusable: {why}")))?;
    Ok(name.to_owned())
}

/// The longest Helm release name (helm/helm `releaseNameMaxLen`).
const MAX_RELEASE: usize = 53;

/// A Helm release name as taken from `app.kubernetes.io/instance`: Helm's own rule (a DNS-1123
/// label of at most 53 characters), and a label value, since it goes into a label selector.
fn helm_release(name: &str) -> Result<(), String> {
    names::label_value(name)?;
    names::dns1123_label(name)?;
    if name.len() > MAX_RELEASE {
        return Err(format!(
            "`{}` is not a Helm release name: it must have at most {MAX_RELEASE} characters",
            names::printable(name)
        ));
    }
    Ok(())
}

fn label<'a>(labels: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    labels.as_ref()?.get(key).map(String::as_str)
}

/// The image of container `name`, among containers and init containers (native sidecars).
fn image_of(spec: &PodSpec, name: &str) -> Option<String> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .and_then(|c| c.image.clone())
}

/// Which mesh a pod is in: Istio's `istio-proxy` or Linkerd's `linkerd-proxy` beside it (as a
/// container or a native sidecar), or redirected to ztunnel in Istio's ambient mode.
fn mesh_of_pod(pod: &Pod) -> Option<Mesh> {
    [Mesh::Istio, Mesh::Linkerd, Mesh::IstioAmbient].into_iter().find(|m| crate::k8s::in_mesh(pod, *m))
}

/// An image reference's tag: `docker.io/istio/proxyv2:1.31.1@sha256:...` -> `1.31.1`; none
/// without one (a port in the registry's host is no tag).
pub fn tag_of(image: &str) -> Option<&str> {
    let name = image.split('@').next()?;
    let (_, tag) = name.rsplit_once(':')?;
    (!tag.contains('/')).then_some(tag)
}

/// The label or annotation that asked for the proxy, most specific first (as the injectors
/// read them: the pod's own setting wins over its namespace's).
fn how_meshed(mesh: Mesh, namespace: &Namespace, pod: &Pod) -> String {
    let ns = namespace.metadata.name.as_deref().unwrap_or_default();
    let pod_labels = &pod.metadata.labels;
    let pod_annotations = &pod.metadata.annotations;
    let ns_labels = &namespace.metadata.labels;
    let ns_annotations = &namespace.metadata.annotations;
    match mesh {
        Mesh::Istio => {
            if let Some(v) = label(pod_labels, "sidecar.istio.io/inject") {
                format!("pod label sidecar.istio.io/inject={v}")
            } else if let Some(v) = label(ns_labels, "istio-injection") {
                format!("namespace {ns} label istio-injection={v}")
            } else if let Some(v) = label(pod_labels, "istio.io/rev").or(label(ns_labels, "istio.io/rev")) {
                format!("revision label istio.io/rev={v}")
            } else {
                "Istio's injector (no injection label found on the pod or namespace)".into()
            }
        }
        Mesh::IstioAmbient => {
            if let Some(v) = label(pod_labels, crate::model::AMBIENT_LABEL) {
                format!("pod label {}={v}", crate::model::AMBIENT_LABEL)
            } else if let Some(v) = label(ns_labels, crate::model::AMBIENT_LABEL) {
                format!("namespace {ns} label {}={v}", crate::model::AMBIENT_LABEL)
            } else {
                "istio-cni's redirection (no istio.io/dataplane-mode label found on the pod or namespace)".into()
            }
        }
        Mesh::Linkerd => {
            if let Some(v) = label(pod_annotations, "linkerd.io/inject") {
                format!("pod annotation linkerd.io/inject={v}")
            } else if let Some(v) = label(ns_annotations, "linkerd.io/inject") {
                format!("namespace {ns} annotation linkerd.io/inject={v}")
            } else {
                "Linkerd's injector (no linkerd.io/inject annotation found)".into()
            }
        }
        Mesh::None => "no mesh".into(),
    }
}

impl Discovered {
    /// Point `profile`'s Kong at the one found: scenario templates (`kong.namespace`), evidence
    /// and metrics then follow it.
    pub fn apply_to(&self, profile: &mut crate::profile::Profile) {
        let kong = &mut profile.versions.kong;
        kong.namespace = self.kong.namespace.clone();
        kong.release = self.kong.release.clone();
        if let Some(account) = &self.kong.service_account {
            kong.gateway_service_account = account.clone();
        }
        profile.kong_selector = Some(self.kong.selector.clone());
    }

    /// Put what runs in the cluster into a report's versions, in place of the pins the harness
    /// would have installed.
    pub fn report_versions(&self, versions: &mut BTreeMap<String, String>) {
        versions.retain(|k, _| !k.starts_with("kong/") && !matches!(k.as_str(), "istio" | "linkerd"));
        versions.insert("kong chart (found)".into(), self.kong.chart.clone());
        let unknown = || "unknown".to_owned();
        versions.insert("kong-gateway".into(), self.kong.gateway_image.clone().unwrap_or_else(unknown));
        versions.insert("kong-ingress-controller".into(), self.kong.controller_image.clone().unwrap_or_else(unknown));
        if let Some(m) = &self.mesh {
            versions.insert(m.mesh.to_string(), format!("{} (found)", m.version));
        }
    }

    /// A run on `mesh` needs that mesh's control plane and Kong's gateway carrying its proxy;
    /// a run without a mesh needs neither.
    pub fn check_for(&self, mesh: Mesh) -> Result<(), DiscoveryError> {
        let found_mesh = self.mesh.as_ref().map(|m| m.mesh);
        let fail = |why: String| Err(DiscoveryError::Mismatch(why));
        match mesh {
            Mesh::None => Ok(()),
            // Ambient runs on istiod like sidecars do; what differs is how Kong is meshed.
            _ if found_mesh.is_none_or(|m| m.is_istio() != mesh.is_istio()) => fail(format!(
                "a {mesh} run needs {mesh}'s control plane, and the cluster runs {}",
                found_mesh.map(|m| m.to_string()).unwrap_or_else(|| "no mesh".into())
            )),
            _ if self.kong.sidecar != Some(mesh) => fail(format!(
                "Kong's gateway pods in {} do not carry {} ({mesh}): the scenarios would test Kong outside the mesh. \
                 Mesh Kong first (see the README's \"Test your own setup\")",
                self.kong.namespace,
                mesh.member_mark().unwrap_or("a mesh proxy")
            )),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Discovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = &self.kong;
        let unknown = "unknown".to_owned();
        writeln!(
            f,
            "Kong: release {} in namespace {} ({}), proxy Service {}",
            k.release, k.namespace, k.chart, k.proxy_service
        )?;
        writeln!(
            f,
            "  gateway image {}, controller image {}",
            k.gateway_image.as_ref().unwrap_or(&unknown),
            k.controller_image.as_ref().unwrap_or(&unknown)
        )?;
        match (k.sidecar, &k.meshed_by) {
            (Some(Mesh::IstioAmbient), Some(how)) => {
                writeln!(f, "  meshed: Kong's traffic goes through ztunnel (ambient), asked for by {how}")?
            }
            (Some(mesh), Some(how)) => writeln!(f, "  meshed: {mesh}'s proxy runs beside Kong, asked for by {how}")?,
            _ => writeln!(f, "  not meshed: no mesh proxy in Kong's gateway pods")?,
        }
        match &self.mesh {
            Some(m) => writeln!(f, "mesh: {} {} in namespace {}", m.mesh, m.version, m.namespace),
            None => writeln!(f, "mesh: none found (no istiod, no Linkerd destination)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{kube_mock, object_server, rendered};

    fn namespace(name: &str, labels: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    }

    /// A cluster running `objects` (real renders of the pinned charts): each Deployment's pod as
    /// its template makes it, with the mesh's proxy added where that mesh's injector would add it
    /// (Istio: the pod label `sidecar.istio.io/inject`, else the namespace label
    /// `istio-injection`; Linkerd: the `linkerd.io/inject` annotation of pod or namespace). The
    /// proxy containers' names are the injectors' own: both templates are in the renders, and
    /// the test checks they name them.
    fn cluster(mut objects: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
        let namespaces: Vec<serde_json::Value> = objects.iter().filter(|o| o["kind"] == "Namespace").cloned().collect();
        let ns_meta = |ns: &str, field: &str, key: &str| {
            namespaces
                .iter()
                .find(|n| n["metadata"]["name"] == ns)
                .and_then(|n| n["metadata"][field][key].as_str().map(str::to_owned))
        };
        let mut pods = Vec::new();
        for d in objects.iter().filter(|o| o["kind"] == "Deployment") {
            let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            let template = &d["spec"]["template"];
            let mut spec = template["spec"].clone();
            let pod_label = template["metadata"]["labels"]["sidecar.istio.io/inject"].as_str().map(str::to_owned);
            let istio = match pod_label {
                Some(v) => v == "true",
                None => ns_meta(ns, "labels", "istio-injection").as_deref() == Some("enabled"),
            };
            let linkerd = template["metadata"]["annotations"]["linkerd.io/inject"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| ns_meta(ns, "annotations", "linkerd.io/inject"))
                .is_some_and(|v| v == "enabled" || v == "ingress");
            if istio {
                // Istio 1.30 injects a native sidecar by default (an init container that keeps
                // running); discovery reads both placements.
                spec["initContainers"] = json!([{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.3", "restartPolicy": "Always"}]);
            }
            if linkerd {
                spec["containers"]
                    .as_array_mut()
                    .unwrap()
                    .insert(0, json!({"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.8.3"}));
            }
            pods.push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-7c9d5b6f4-x2x4q"), "namespace": ns,
                             "labels": template["metadata"]["labels"], "annotations": template["metadata"]["annotations"]},
                "spec": spec}));
        }
        objects.extend(pods);
        objects
    }

    /// Istio's own ingress gateway Service, exactly as `helm template istio-ingressgateway
    /// --namespace istio-ingress` (helm v4.1.4, default values) renders istio/istio tag 1.30.3
    /// manifests/charts/gateway templates/service.yaml with its values.yaml (`Chart.yaml`
    /// version set to 1.30.3, as the release process does): `helm.sh/chart: gateway-<version>`
    /// like kong/ingress's gateway, but Istio's ports.
    fn istio_gateway_service() -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "istio-ingressgateway", "namespace": "istio-ingress",
                            "labels": {"app.kubernetes.io/name": "istio-ingressgateway",
                                       "app.kubernetes.io/managed-by": "Helm",
                                       "app.kubernetes.io/instance": "istio-ingressgateway",
                                       "app.kubernetes.io/part-of": "istio",
                                       "app.kubernetes.io/version": "1.30.3",
                                       "helm.sh/chart": "gateway-1.30.3",
                                       "app": "istio-ingressgateway", "istio": "ingressgateway",
                                       "istio.io/dataplane-mode": "none"},
                            "annotations": {}},
               "spec": {"type": "LoadBalancer",
                        "ports": [{"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
                                  {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 80},
                                  {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}],
                        "selector": {"app": "istio-ingressgateway", "istio": "ingressgateway"}}})
    }

    fn rendered_cluster(parts: &[(&str, &str)], extra: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
        let mut objects: Vec<serde_json::Value> =
            parts.iter().flat_map(|(dir, release)| rendered(dir, release)).collect();
        objects.extend(extra);
        cluster(objects)
    }

    /// The Kong the harness itself installs (kong/ingress, rendered with the plan's values) in
    /// front of istiod, both rendered by the real charts: found, meshed, and nothing written.
    #[tokio::test]
    async fn the_harness_own_kong_is_found_on_istio() {
        let injector = rendered("istio", "istiod");
        let template = serde_json::to_string(&injector).unwrap();
        assert!(template.contains("- name: istio-proxy"), "Istio's injector names its proxy istio-proxy");
        let objects = rendered_cluster(
            &[("istio", "kong"), ("istio", "istiod")],
            vec![namespace("kong", json!({})), namespace("istio-system", json!({})), istio_gateway_service()],
        );
        let (client, asked) = kube_mock(object_server(objects));
        let found = discover(&client, None).await.unwrap();
        assert_eq!(
            found.kong,
            FoundKong {
                namespace: "kong".into(),
                release: "kong".into(),
                proxy_service: "kong-gateway-proxy".into(),
                selector:
                    "app.kubernetes.io/component=app,app.kubernetes.io/instance=kong,app.kubernetes.io/name=gateway"
                        .into(),
                chart: "gateway-3.2.0".into(),
                gateway_image: Some("kong:3.9".into()),
                controller_image: Some("kong/kubernetes-ingress-controller:3.5".into()),
                service_account: Some("kong-gateway".into()),
                sidecar: Some(Mesh::Istio),
                meshed_by: Some("pod label sidecar.istio.io/inject=true".into()),
            }
        );
        assert_eq!(
            found.mesh,
            Some(FoundMesh { mesh: Mesh::Istio, namespace: "istio-system".into(), version: "1.30.3".into() })
        );
        found.check_for(Mesh::Istio).unwrap();
        assert!(asked.lock().unwrap().iter().all(|r| r.method == "GET"), "discovery only reads");
    }

    #[tokio::test]
    async fn the_harness_own_kong_is_found_on_linkerd() {
        let template = serde_json::to_string(&rendered("linkerd", "linkerd-control-plane")).unwrap();
        assert!(template.contains("name: linkerd-proxy"), "Linkerd's injector names its proxy linkerd-proxy");
        let objects = rendered_cluster(
            &[("linkerd", "kong"), ("linkerd", "linkerd-control-plane")],
            vec![namespace("kong", json!({})), namespace("linkerd", json!({}))],
        );
        let (client, _) = kube_mock(object_server(objects));
        let found = discover(&client, Some("kong")).await.unwrap();
        assert_eq!(found.kong.proxy_service, "kong-gateway-proxy");
        assert_eq!(found.kong.service_account.as_deref(), Some("kong-gateway"));
        assert_eq!(found.kong.sidecar, Some(Mesh::Linkerd));
        assert_eq!(found.kong.meshed_by.as_deref(), Some("pod annotation linkerd.io/inject=ingress"));
        assert_eq!(
            found.mesh,
            Some(FoundMesh { mesh: Mesh::Linkerd, namespace: "linkerd".into(), version: "edge-26.8.3".into() })
        );
        found.check_for(Mesh::Linkerd).unwrap();
    }

    /// A user's Kong from the single kong/kong chart (release `edge`), meshed by its pod label,
    /// beside Istio's own gateway: found, and the report names what runs.
    #[tokio::test]
    async fn a_kong_chart_kong_is_found_and_reported_as_it_runs() {
        let objects = rendered_cluster(
            &[("kong-chart", "edge"), ("istio", "istiod")],
            vec![namespace("edge", json!({"istio-injection": "enabled"})), istio_gateway_service()],
        );
        let (client, asked) = kube_mock(object_server(objects));
        let found = discover(&client, None).await.unwrap();
        assert_eq!(found.kong.namespace, "edge");
        assert_eq!(found.kong.release, "edge");
        assert_eq!(found.kong.proxy_service, "edge-kong-proxy");
        assert_eq!(found.kong.chart, "kong-3.2.0");
        assert_eq!(found.kong.service_account.as_deref(), Some("edge-kong"));
        // kong/kong runs KIC in the gateway's own pod.
        assert_eq!(found.kong.controller_image.as_deref(), Some("kong/kubernetes-ingress-controller:3.5"));
        assert_eq!(found.kong.sidecar, Some(Mesh::Istio));
        found.check_for(Mesh::Istio).unwrap();
        // Reports name what runs, not what the harness would have installed.
        let mut versions: BTreeMap<String, String> =
            [("kong/ingress", "0.24.0"), ("istio", "1.30.5"), ("kubernetes", "v1.35.8")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        found.report_versions(&mut versions);
        assert_eq!(versions.get("istio").map(String::as_str), Some("1.30.3 (found)"));
        assert_eq!(versions.get("kong-gateway").map(String::as_str), Some("kong:3.9"));
        assert!(!versions.contains_key("kong/ingress") && versions.contains_key("kubernetes"), "{versions:?}");
        let err = found.check_for(Mesh::Linkerd).unwrap_err().to_string();
        assert_eq!(err, "a linkerd run needs linkerd's control plane, and the cluster runs istio");
        assert!(asked.lock().unwrap().iter().all(|r| r.method == "GET"), "discovery only reads");
        insta::assert_snapshot!(found.to_string(), @r"
        Kong: release edge in namespace edge (kong-3.2.0), proxy Service edge-kong-proxy
          gateway image kong:3.9, controller image kong/kubernetes-ingress-controller:3.5
          meshed: istio's proxy runs beside Kong, asked for by pod label sidecar.istio.io/inject=true
        mesh: istio 1.30.3 in namespace istio-system
        ");
    }

    /// Kong without a sidecar (the harness's own values for no mesh) on a cluster with Istio:
    /// refused for an Istio run, the reason named.
    #[tokio::test]
    async fn kong_outside_the_mesh_is_refused_for_a_mesh_run() {
        let objects = rendered_cluster(&[("none", "kong"), ("istio", "istiod")], vec![namespace("kong", json!({}))]);
        let (client, _) = kube_mock(object_server(objects));
        // --kong-namespace: Services are listed in that namespace only.
        let found = discover(&client, Some("kong")).await.unwrap();
        assert_eq!(found.kong.namespace, "kong");
        let err = discover(&client, Some("web")).await.unwrap_err().to_string();
        assert!(err.starts_with("no Kong proxy Service found in namespace web"), "{err}");
        assert_eq!(found.kong.sidecar, None);
        let err = found.check_for(Mesh::Istio).unwrap_err().to_string();
        assert!(err.starts_with("Kong's gateway pods in kong do not carry istio-proxy (istio)"), "{err}");
        found.check_for(Mesh::None).unwrap();
    }

    #[tokio::test]
    async fn no_kong_two_kongs_and_unsupported_layouts_are_said_so() {
        let (client, _) = kube_mock(object_server(vec![istio_gateway_service()]));
        let err = discover(&client, None).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "no Kong proxy Service found: looked for a Service with a port named `kong-proxy`, as the kong/ingress and \
             kong/kong charts render it"
        );
        // Both layouts at once: two proxies, named.
        let objects = rendered_cluster(&[("istio", "kong"), ("kong-chart", "edge")], vec![]);
        let (client, _) = kube_mock(object_server(objects));
        let err = discover(&client, None).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "more than one Kong proxy Service: edge/edge-kong-proxy, kong/kong-gateway-proxy; say which with --kong-namespace"
        );
        // KIC's manifests without Helm: Kong/kubernetes-ingress-controller tag v3.5.13
        // config/base/service.yaml, as `kubectl kustomize config/base` renders it (its
        // kustomization sets only the namespace, `kong`). At v3.5.x deploy/single/
        // all-in-one-dbless.yaml is a `kind: Deprecated` stub pointing at Helm; the last real
        // one (v2.12.0) publishes the same Service with selector `app: proxy-kong`. Refused,
        // and said why.
        let all_in_one = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kong-proxy", "namespace": "kong",
                         "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                                         "service.beta.kubernetes.io/aws-load-balancer-backend-protocol": "tcp"}},
            "spec": {"type": "LoadBalancer",
                     "ports": [{"name": "proxy", "port": 80, "targetPort": 8000, "protocol": "TCP"},
                               {"name": "proxy-ssl", "port": 443, "targetPort": 8443, "protocol": "TCP"}],
                     "selector": {"app": "ingress-kong"}}});
        let (client, _) = kube_mock(object_server(vec![all_in_one]));
        let err = discover(&client, None).await.unwrap_err().to_string();
        assert!(err.contains("kong/kong-proxy looks like KIC's all-in-one manifests"), "{err}");
    }

    /// A Kong Gateway Operator install: no `kong-proxy` port anywhere, so no Kong is found, and
    /// the error names the DataPlane's ingress Service, not the operator's other Services that
    /// share its label prefix. The Services as Kong/gateway-operator v1.6.2 makes them (API
    /// order, by name): a ControlPlane's webhook Service
    /// (pkg/utils/kubernetes/resources/services.go `GenerateNewAdmissionWebhookServiceForControlPlane`),
    /// the DataPlane's admin Service (`GenerateNewAdminServiceForDataPlane`) and its ingress
    /// Service (`GenerateNewIngressServiceForDataPlane`, default ports and type), each labelled
    /// by labels.go `LabelObjectAs*Managed`; names are the generateName prefixes plus the API
    /// server's five random characters; only the fields discovery reads are copied.
    #[tokio::test]
    async fn a_kong_gateway_operator_data_plane_is_named_as_unsupported() {
        let service = |name: &str, labels: serde_json::Value, spec: serde_json::Value| {
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": "kong", "labels": labels,
                                "finalizers": ["gateway-operator.konghq.com/wait-for-owner"]},
                   "spec": spec})
        };
        let objects = vec![
            service(
                "controlplane-webhook-kong-8xk2w",
                json!({"app": "kong", "gateway-operator.konghq.com/service": "webhook",
                       "gateway-operator.konghq.com/managed-by": "controlplane"}),
                json!({"type": "ClusterIP", "selector": {"app": "kong"},
                       "ports": [{"name": "webhook", "protocol": "TCP", "port": 8080}]}),
            ),
            service(
                "dataplane-admin-kong-q5v9t",
                json!({"app": "kong", "gateway-operator.konghq.com/dataplane-service-type": "admin",
                       "gateway-operator.konghq.com/managed-by": "dataplane"}),
                json!({"type": "ClusterIP", "clusterIP": "None", "selector": {"app": "kong"},
                       "publishNotReadyAddresses": true,
                       "ports": [{"name": "admin", "protocol": "TCP", "port": 8444, "targetPort": 8444}]}),
            ),
            service(
                "dataplane-ingress-kong-7fz4d",
                json!({"app": "kong", "gateway-operator.konghq.com/dataplane-service-type": "ingress",
                       "gateway-operator.konghq.com/managed-by": "dataplane"}),
                json!({"type": "LoadBalancer", "selector": {"app": "kong"},
                       "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8000},
                                 {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443}]}),
            ),
        ];
        let (client, asked) = kube_mock(object_server(objects));
        let err = discover(&client, None).await.unwrap_err().to_string();
        assert!(err.starts_with("no Kong proxy Service found"), "{err}");
        assert!(
            err.ends_with(
                " (kong/dataplane-ingress-kong-7fz4d is a Kong Gateway Operator data plane, which --no-install does \
                 not support)"
            ),
            "{err}"
        );
        assert!(asked.lock().unwrap().iter().all(|r| r.method == "GET"), "discovery only reads");
    }

    /// A proxy Service without a selector names no pods: refused, not judged by any pod.
    #[tokio::test]
    async fn a_proxy_service_without_a_selector_is_refused() {
        let mut objects = rendered("none", "kong");
        for o in objects.iter_mut().filter(|o| o["metadata"]["name"] == "kong-gateway-proxy") {
            o["spec"].as_object_mut().unwrap().remove("selector");
        }
        let (client, asked) = kube_mock(object_server(cluster(objects)));
        let err = discover(&client, None).await.unwrap_err().to_string();
        assert_eq!(err, "Kong's proxy Service kong/kong-gateway-proxy has no selector: its pods cannot be told apart");
        assert!(!asked.lock().unwrap().iter().any(|r| r.path.ends_with("/pods")), "no pod was listed");
    }

    /// Names from an API server become selectors, Kubernetes names and file names: a hostile
    /// answer (a namespace, release or selector no real API server would accept) is refused
    /// before any of them is used.
    #[tokio::test]
    async fn names_a_real_api_server_would_refuse_are_refused() {
        type Corrupt = fn(&mut serde_json::Value);
        let cases: [(&str, Corrupt); 6] = [
            ("namespace", |s| s["metadata"]["namespace"] = json!("../../tmp/x")),
            ("release", |s| s["metadata"]["labels"]["app.kubernetes.io/instance"] = json!("kong/../x")),
            // A valid subdomain, but no Helm release name nor (at 100 characters) label value.
            ("long release", |s| s["metadata"]["labels"]["app.kubernetes.io/instance"] = json!("k".repeat(100))),
            ("dotted release", |s| s["metadata"]["labels"]["app.kubernetes.io/instance"] = json!("kong.prod")),
            ("selector", |s| s["spec"]["selector"]["app.kubernetes.io/name"] = json!("gateway,app!=x")),
            ("name", |s| s["metadata"]["name"] = json!("proxy\u{1b}[2J")),
        ];
        for (what, corrupt) in cases {
            let mut objects = rendered("none", "kong");
            for o in objects.iter_mut().filter(|o| o["metadata"]["name"] == "kong-gateway-proxy") {
                corrupt(o);
            }
            let (client, asked) = kube_mock(object_server(cluster(objects)));
            let err = discover(&client, None).await.unwrap_err().to_string();
            assert!(err.contains("unusable") || err.contains("would refuse"), "{what}: {err}");
            assert!(!err.contains('\u{1b}'), "{what}: escaped: {err}");
            assert!(!asked.lock().unwrap().iter().any(|r| r.path.ends_with("/pods")), "{what}: nothing used it");
        }
    }

    /// Helm release names are DNS-1123 labels of at most 53 characters, and label values.
    #[test]
    fn helm_releases_are_labels_of_helms_length() {
        assert_eq!(helm_release("kong"), Ok(()));
        assert_eq!(helm_release(&"k".repeat(53)), Ok(()));
        for bad in ["k".repeat(54), "k".repeat(100), "kong.prod".into(), "Kong".into(), "a,b=c".into()] {
            assert!(helm_release(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_tags_are_read_without_registry_ports_or_digests() {
        assert_eq!(tag_of("docker.io/istio/pilot:1.30.5"), Some("1.30.5"));
        assert_eq!(tag_of("registry:5000/istio/pilot"), None);
        assert_eq!(tag_of("kong:3.9.1@sha256:abc"), Some("3.9.1"));
    }
}
