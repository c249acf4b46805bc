//! `--no-install`: what an existing cluster already runs, read through the API and never
//! changed. Kong is found by its proxy Service (the kong chart labels it `helm.sh/chart:
//! kong-<version>` and names it `<fullname>-proxy`, in kong/ingress and kong/kong alike); its
//! gateway pods (the Service's selector) say which images run and whether a mesh proxy runs
//! beside Kong; the pods' namespace and labels say how that proxy got there. The mesh is found
//! by its control plane: istiod's Deployment (`app: istiod`) or Linkerd's destination
//! (`linkerd.io/control-plane-component: destination`).
//!
//! The label and container names are the charts' own, read in kong/ingress 0.24.0 (kong chart
//! `_helpers.tpl` `kong.metaLabels`, `service-kong-proxy.yaml`), istiod 1.30.3
//! (`templates/deployment.yaml`) and linkerd-control-plane edge-26.8.3
//! (`templates/destination.yaml`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, PodSpec, Service};
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::model::Mesh;

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
    /// The kong chart's `helm.sh/chart` label, e.g. `kong-2.52.0`.
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
        "no Kong proxy Service found{where_}: looked for Services labelled `helm.sh/chart: kong-*` named `*-proxy` \
         (the kong chart's, in kong/ingress and kong/kong)"
    )]
    NoKong { where_: String },
    #[error("more than one Kong proxy Service: {found}; say which with --kong-namespace")]
    ManyKongs { found: String },
    #[error("{0}")]
    Mismatch(String),
}

fn api_error(doing: impl Into<String>) -> impl FnOnce(kube::Error) -> DiscoveryError {
    let doing = doing.into();
    move |e| DiscoveryError::Api { doing, reason: e.to_string() }
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
    let listed = services
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=Helm"))
        .await
        .map_err(api_error("list Helm-managed Services"))?;
    let proxies: Vec<&Service> = listed
        .items
        .iter()
        .filter(|s| label(&s.metadata.labels, "helm.sh/chart").is_some_and(|c| c.starts_with("kong-")))
        .filter(|s| s.metadata.name.as_deref().is_some_and(|n| n.ends_with("-proxy")))
        .collect();
    let service = match proxies.as_slice() {
        [one] => *one,
        [] => {
            let where_ = kong_namespace.map(|ns| format!(" in namespace {ns}")).unwrap_or_default();
            return Err(DiscoveryError::NoKong { where_ });
        }
        many => {
            let found: Vec<String> = many
                .iter()
                .map(|s| {
                    format!(
                        "{}/{}",
                        s.metadata.namespace.as_deref().unwrap_or_default(),
                        s.metadata.name.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            return Err(DiscoveryError::ManyKongs { found: found.join(", ") });
        }
    };
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let release = label(&service.metadata.labels, "app.kubernetes.io/instance").unwrap_or_default().to_owned();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let selector = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .map(|s| s.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    // An empty selector would list every pod of the namespace, and judge Kong by any of them.
    if selector.is_empty() {
        return Err(DiscoveryError::Mismatch(format!(
            "Kong's proxy Service {namespace}/{} has no selector: its pods cannot be told apart",
            service.metadata.name.as_deref().unwrap_or_default()
        )));
    }
    let gateway_pods = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error(format!("list Kong's gateway pods in {namespace}")))?;
    let gateway = gateway_pods.items.first();
    let spec = gateway.and_then(|p| p.spec.as_ref());
    let sidecar = spec.and_then(mesh_proxy_in);
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
    Ok(FoundKong {
        proxy_service: service.metadata.name.clone().unwrap_or_default(),
        selector,
        chart: label(&service.metadata.labels, "helm.sh/chart").unwrap_or_default().to_owned(),
        gateway_image: spec.and_then(|s| image_of(s, "proxy")),
        controller_image,
        service_account: spec.and_then(|s| s.service_account_name.clone()),
        sidecar,
        meshed_by,
        namespace,
        release,
    })
}

async fn find_mesh(client: &kube::Client) -> Result<Option<FoundMesh>, DiscoveryError> {
    let deployments: Api<Deployment> = Api::all(client.clone());
    let istiod =
        deployments.list(&ListParams::default().labels("app=istiod")).await.map_err(api_error("list istiod"))?;
    if let Some(d) = istiod.items.first() {
        let image = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).and_then(|s| image_of(s, "discovery"));
        return Ok(Some(FoundMesh {
            mesh: Mesh::Istio,
            namespace: d.metadata.namespace.clone().unwrap_or_default(),
            version: image.as_deref().and_then(tag_of).unwrap_or("unknown").to_owned(),
        }));
    }
    let destination = deployments
        .list(&ListParams::default().labels("linkerd.io/control-plane-component=destination"))
        .await
        .map_err(api_error("list Linkerd's destination"))?;
    Ok(destination.items.first().map(|d| FoundMesh {
        mesh: Mesh::Linkerd,
        namespace: d.metadata.namespace.clone().unwrap_or_default(),
        version: label(&d.metadata.labels, "app.kubernetes.io/version").unwrap_or("unknown").to_owned(),
    }))
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

/// Which mesh's proxy a pod carries: Istio's `istio-proxy` or Linkerd's `linkerd-proxy`, as a
/// container or a native sidecar (init container).
fn mesh_proxy_in(spec: &PodSpec) -> Option<Mesh> {
    let names: Vec<&str> =
        spec.containers.iter().chain(spec.init_containers.iter().flatten()).map(|c| c.name.as_str()).collect();
    if names.contains(&"istio-proxy") {
        Some(Mesh::Istio)
    } else if names.contains(&"linkerd-proxy") {
        Some(Mesh::Linkerd)
    } else {
        None
    }
}

fn tag_of(image: &str) -> Option<&str> {
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
            _ if found_mesh != Some(mesh) => fail(format!(
                "a {mesh} run needs {mesh}'s control plane, and the cluster runs {}",
                found_mesh.map(|m| m.to_string()).unwrap_or_else(|| "no mesh".into())
            )),
            _ if self.kong.sidecar != Some(mesh) => fail(format!(
                "Kong's gateway pods in {} carry no {mesh} proxy: the scenarios would test Kong outside the mesh. \
                 Mesh Kong first (see the README's \"Test your own setup\")",
                self.kong.namespace
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
    use crate::testing::{KubeRequest, kube_mock, kube_status};

    fn list(kind: &str, items: serde_json::Value) -> (u16, serde_json::Value) {
        (200, json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items}))
    }

    /// Kong in namespace `edge` (release `edge-kong`, kong/ingress layout), meshed by the
    /// namespace's `istio-injection` label; istiod 1.30.5 in istio-system.
    fn istio_cluster(req: &KubeRequest) -> (u16, serde_json::Value) {
        let query = req.query.replace("%2F", "/").replace("%3D", "=").replace("%2C", ",");
        match req.path.as_str() {
            "/api/v1/services" | "/api/v1/namespaces/edge/services" => list(
                "ServiceList",
                json!([
                    {"metadata": {"name": "other-proxy", "namespace": "web",
                                  "labels": {"helm.sh/chart": "nginx-1.0.0", "app.kubernetes.io/managed-by": "Helm"}}},
                    {"metadata": {"name": "edge-kong-gateway-proxy", "namespace": "edge",
                                  "labels": {"helm.sh/chart": "kong-2.52.0", "app.kubernetes.io/instance": "edge-kong",
                                             "app.kubernetes.io/managed-by": "Helm"}},
                     "spec": {"selector": {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": "edge-kong"}}}
                ]),
            ),
            "/api/v1/namespaces/edge/pods" if query.contains("app.kubernetes.io/name=gateway") => list(
                "PodList",
                json!([{"metadata": {"name": "edge-kong-gateway-7c9d-x2x4q"},
                        "spec": {"serviceAccountName": "edge-kong-gateway",
                                 "containers": [{"name": "proxy", "image": "kong:3.9.1"}],
                                 "initContainers": [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.30.5"},
                                                    {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.5",
                                                     "restartPolicy": "Always"}]}}]),
            ),
            "/api/v1/namespaces/edge/pods" => list(
                "PodList",
                json!([{"metadata": {"name": "edge-kong-controller-5d8f-abcde"},
                        "spec": {"containers": [{"name": "ingress-controller",
                                                 "image": "kong/kubernetes-ingress-controller:3.5.13"}]}}]),
            ),
            "/api/v1/namespaces/edge" => (
                200,
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": "edge", "labels": {"istio-injection": "enabled"}}}),
            ),
            "/apis/apps/v1/deployments" if query.contains("app=istiod") => list(
                "DeploymentList",
                json!([{"metadata": {"name": "istiod", "namespace": "istio-system"},
                        "spec": {"selector": {}, "template": {"spec": {"containers": [
                            {"name": "discovery", "image": "docker.io/istio/pilot:1.30.5"}]}}}}]),
            ),
            "/apis/apps/v1/deployments" => list("DeploymentList", json!([])),
            _ => kube_status(404, "NotFound"),
        }
    }

    #[tokio::test]
    async fn kong_in_another_namespace_meshed_by_a_namespace_label_is_found() {
        let (client, asked) = kube_mock(istio_cluster);
        let found = discover(&client, None).await.unwrap();
        assert_eq!(
            found.kong,
            FoundKong {
                namespace: "edge".into(),
                release: "edge-kong".into(),
                proxy_service: "edge-kong-gateway-proxy".into(),
                selector: "app.kubernetes.io/instance=edge-kong,app.kubernetes.io/name=gateway".into(),
                chart: "kong-2.52.0".into(),
                gateway_image: Some("kong:3.9.1".into()),
                controller_image: Some("kong/kubernetes-ingress-controller:3.5.13".into()),
                service_account: Some("edge-kong-gateway".into()),
                sidecar: Some(Mesh::Istio),
                meshed_by: Some("namespace edge label istio-injection=enabled".into()),
            }
        );
        assert_eq!(
            found.mesh,
            Some(FoundMesh { mesh: Mesh::Istio, namespace: "istio-system".into(), version: "1.30.5".into() })
        );
        found.check_for(Mesh::Istio).unwrap();
        // Reports name what runs, not what the harness would have installed.
        let mut versions: BTreeMap<String, String> =
            [("kong/ingress", "0.24.0"), ("istio", "1.30.3"), ("kubernetes", "v1.35.8")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        found.report_versions(&mut versions);
        assert_eq!(versions.get("istio").map(String::as_str), Some("1.30.5 (found)"));
        assert_eq!(versions.get("kong-gateway").map(String::as_str), Some("kong:3.9.1"));
        assert!(!versions.contains_key("kong/ingress") && versions.contains_key("kubernetes"), "{versions:?}");
        let err = found.check_for(Mesh::Linkerd).unwrap_err().to_string();
        assert_eq!(err, "a linkerd run needs linkerd's control plane, and the cluster runs istio");
        assert!(asked.lock().unwrap().iter().all(|r| r.method == "GET"), "discovery only reads");
        insta::assert_snapshot!(found.to_string(), @r"
        Kong: release edge-kong in namespace edge (kong-2.52.0), proxy Service edge-kong-gateway-proxy
          gateway image kong:3.9.1, controller image kong/kubernetes-ingress-controller:3.5.13
          meshed: istio's proxy runs beside Kong, asked for by namespace edge label istio-injection=enabled
        mesh: istio 1.30.5 in namespace istio-system
        ");
    }

    /// Kong without a sidecar on a cluster with Istio: refused for an Istio run, the reason named.
    #[tokio::test]
    async fn kong_outside_the_mesh_is_refused_for_a_mesh_run() {
        let (client, _) = kube_mock(|req| {
            let query = req.query.replace("%2F", "/").replace("%3D", "=");
            if req.path == "/api/v1/namespaces/edge/pods" && query.contains("app.kubernetes.io/name=gateway") {
                return list(
                    "PodList",
                    json!([{"metadata": {"name": "g"}, "spec": {"containers": [{"name": "proxy", "image": "kong:3.9.1"}]}}]),
                );
            }
            istio_cluster(req)
        });
        // --kong-namespace: Services are listed in that namespace only.
        let found = discover(&client, Some("edge")).await.unwrap();
        assert_eq!(found.kong.namespace, "edge");
        let err = discover(&client, Some("web")).await.unwrap_err().to_string();
        assert!(err.contains("cannot list Helm-managed Services") || err.contains("in namespace web"), "{err}");
        let found = discover(&client, None).await.unwrap();
        assert_eq!(found.kong.sidecar, None);
        let err = found.check_for(Mesh::Istio).unwrap_err().to_string();
        assert!(err.starts_with("Kong's gateway pods in edge carry no istio proxy"), "{err}");
        found.check_for(Mesh::None).unwrap();
    }

    #[tokio::test]
    async fn no_kong_or_two_kongs_are_said_so() {
        let (client, _) = kube_mock(|req| match req.path.as_str() {
            "/api/v1/services" => list("ServiceList", json!([])),
            _ => list("List", json!([])),
        });
        let err = discover(&client, None).await.unwrap_err().to_string();
        assert!(err.starts_with("no Kong proxy Service found: looked for"), "{err}");
        let two = |name: &str, ns: &str| json!({"metadata": {"name": name, "namespace": ns, "labels": {"helm.sh/chart": "kong-2.52.0"}}});
        let services = json!([two("a-kong-proxy", "a"), two("b-gateway-proxy", "b")]);
        let (client, _) = kube_mock(move |_| list("ServiceList", services.clone()));
        let err = discover(&client, None).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "more than one Kong proxy Service: a/a-kong-proxy, b/b-gateway-proxy; say which with --kong-namespace"
        );
    }

    /// A proxy Service without a selector names no pods: refused, not judged by any pod.
    #[tokio::test]
    async fn a_proxy_service_without_a_selector_is_refused() {
        let (client, asked) = kube_mock(|req| match req.path.as_str() {
            "/api/v1/services" => list(
                "ServiceList",
                json!([{"metadata": {"name": "k-kong-proxy", "namespace": "k",
                                     "labels": {"helm.sh/chart": "kong-2.52.0", "app.kubernetes.io/instance": "k"}}}]),
            ),
            _ => list("List", json!([])),
        });
        let err = discover(&client, None).await.unwrap_err().to_string();
        assert_eq!(err, "Kong's proxy Service k/k-kong-proxy has no selector: its pods cannot be told apart");
        assert!(!asked.lock().unwrap().iter().any(|r| r.path.ends_with("/pods")), "no pod was listed");
    }

    #[test]
    fn image_tags_are_read_without_registry_ports_or_digests() {
        assert_eq!(tag_of("docker.io/istio/pilot:1.30.5"), Some("1.30.5"));
        assert_eq!(tag_of("registry:5000/istio/pilot"), None);
        assert_eq!(tag_of("kong:3.9.1@sha256:abc"), Some("3.9.1"));
    }
}
