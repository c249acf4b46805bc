//! Local stand-ins for what probes talk to: a tiny HTTP/1.1 server whose behaviour a test scripts
//! (answer, reset, hang). Only for tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::model::Mesh;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The request as the server read it.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub path: String,
    /// Lowercased names.
    pub headers: BTreeMap<String, String>,
    /// 0-based number of this request on this server.
    pub index: usize,
}

pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Raw bytes, e.g. a file download.
    Bytes(Vec<u8>),
    /// Close with RST (SO_LINGER 0), as a sidecar does to plaintext under STRICT mTLS.
    Reset,
    /// Never answer.
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: String) -> Self {
        Reply::Respond { status, headers: vec![("content-type".into(), "application/json".into())], body }
    }
}

/// Serve `handler` on an ephemeral loopback port until the test ends.
pub async fn serve(handler: impl Fn(&Head) -> Reply + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let handler = Arc::new(handler);
    let counter = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (handler, counter) = (handler.clone(), counter.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&buf);
                let mut lines = text.split("\r\n");
                let mut first = lines.next().unwrap_or_default().split(' ');
                let (method, path) =
                    (first.next().unwrap_or_default().to_owned(), first.next().unwrap_or_default().to_owned());
                let headers = lines
                    .take_while(|l| !l.is_empty())
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let head = Head { method, path, headers, index: counter.fetch_add(1, Ordering::SeqCst) };
                match handler(&head) {
                    Reply::Respond { status, headers, body } => {
                        let mut out =
                            format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
                        for (k, v) in headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        out.push_str(&body);
                        let _ = stream.write_all(out.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                    Reply::Bytes(body) => {
                        let head =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(&body).await;
                        let _ = stream.shutdown().await;
                    }
                    Reply::Reset => {
                        // Linger 0 makes close send RST at once; it cannot block here.
                        #[allow(deprecated)]
                        let _ = stream.set_linger(Some(std::time::Duration::ZERO));
                        drop(stream);
                    }
                    Reply::Hang => {
                        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    }
                }
            });
        }
    });
    addr
}

/// A host probe pointed at a local server.
pub fn http_probe(addr: SocketAddr, timeout: std::time::Duration) -> crate::probe::http::HttpProbe {
    let config = crate::probe::http::HttpProbeConfig { endpoint: format!("http://{addr}"), timeout, keep_alive: false };
    crate::probe::http::HttpProbe::new(config).expect("a client for loopback")
}

/// A GET request for `path`, as a scenario would write it.
pub fn get(path: &str) -> crate::scenario::Request {
    serde_json::from_value(serde_json::json!({ "path": path })).expect("a valid request")
}

/// An echo-basic style answer for `head`, from pod `pod` in namespace `ns`.
pub fn echo_body(head: &Head, pod: &str, ns: &str) -> String {
    let headers: serde_json::Map<String, serde_json::Value> = head
        .headers
        .iter()
        .filter(|(k, _)| k.as_str() != "host")
        .map(|(k, v)| (k.clone(), serde_json::json!([v])))
        .collect();
    serde_json::json!({
        "path": head.path,
        "host": head.headers.get("host").cloned().unwrap_or_default(),
        "method": head.method,
        "proto": "HTTP/1.1",
        "headers": headers,
        "namespace": ns,
        "ingress": "",
        "service": "",
        "pod": pod,
    })
    .to_string()
}

/// A request the kube-rs mock received.
#[derive(Debug, Clone)]
pub struct KubeRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

/// kube-rs against a tower-test mock API server: `answer` maps each request to a status and a
/// JSON body; every request is recorded.
pub fn kube_mock(
    answer: impl Fn(&KubeRequest) -> (u16, serde_json::Value) + Send + Sync + 'static,
) -> (kube::Client, Arc<std::sync::Mutex<Vec<KubeRequest>>>) {
    use http_body_util::BodyExt;
    let (service, mut handle) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
            let req = KubeRequest {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            let (status, json) = answer(&req);
            if let Ok(mut seen) = seen.lock() {
                seen.push(req);
            }
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(json.to_string().into_bytes()))
                .expect("a response");
            respond.send_response(response);
        }
    });
    (kube::Client::new(service, "default"), asked)
}

/// Where a Deployment's rollout stands, for [`deployment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// Generation 2 rolled out: every replica updated and available, no old pod left.
    Done,
    /// Generation 3 mid-rollout (maxSurge 1): both new pods up, one old pod still running. The
    /// `Available` condition is True and `updatedReplicas` equals `spec.replicas`.
    OldPodLeft,
    /// Generation 4 just written: the status is still generation 3's, fully rolled out.
    NotObserved,
}

/// A two-replica Deployment as a real API server answers a GET for it: apps/v1 with the
/// defaults filled in and the status the deployment controller writes
/// (kubernetes/kubernetes pkg/controller/deployment/sync.go `calculateStatus`; the condition
/// reasons of pkg/controller/deployment/util/deployment_util.go).
pub fn deployment(name: &str, namespace: &str, rollout: Rollout) -> serde_json::Value {
    let (generation, observed, replicas, updated, available) = match rollout {
        Rollout::Done => (2, 2, 2, 2, 2),
        Rollout::OldPodLeft => (3, 3, 3, 2, 3),
        Rollout::NotObserved => (4, 3, 2, 2, 2),
    };
    let progressing = match rollout {
        Rollout::OldPodLeft => ("ReplicaSetUpdated", format!("ReplicaSet \"{name}-7c4b8\" is progressing.")),
        _ => ("NewReplicaSetAvailable", format!("ReplicaSet \"{name}-6d8f9\" has successfully progressed.")),
    };
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "generation": generation, "uid": "8f0c3d2e-1",
                     "resourceVersion": "4711", "creationTimestamp": "2026-12-01T10:00:00Z",
                     "annotations": {"deployment.kubernetes.io/revision": (generation - 1).to_string()}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": "True", "reason": progressing.0, "message": progressing.1},
            ],
        },
    })
}

/// A Kubernetes `Status` for error answers of the mock.
pub fn kube_status(code: u16, reason: &str) -> (u16, serde_json::Value) {
    (
        code,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason}),
    )
}

/// A project with this checkout's versions and its `base` and `kong` fixtures (plus `extra`
/// fixture files), holding one scenario `text`: its offline check on Istio, as a message.
pub fn check_in_a_copy(text: &str, extra: &[(&str, &str)]) -> Result<(), String> {
    check_in_a_copy_on(crate::scenario::Mesh::Istio, text, extra)
}

/// [`check_in_a_copy`] for `mesh`.
pub fn check_in_a_copy_on(mesh: crate::scenario::Mesh, text: &str, extra: &[(&str, &str)]) -> Result<(), String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root.join("versions.toml"), dir.path().join("versions.toml")).unwrap();
    for sub in ["base", "kong"] {
        let to = dir.path().join("fixtures").join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(root.join("fixtures").join(sub)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
    for (name, content) in extra {
        std::fs::write(dir.path().join("fixtures").join(name), content).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("scenarios")).unwrap();
    let file = dir.path().join("scenarios/case.yaml");
    std::fs::write(&file, text).unwrap();
    let catalog = crate::scenario::Catalog::open(crate::project::Project::at(dir.path())).unwrap();
    catalog.check_mesh(&file, mesh, "offline").map(|_| ()).map_err(|e| e.to_string())
}

/// A read-only API server holding `objects` (any kinds, as JSON): lists by kind, all namespaces
/// or one, filtered by an equality label selector (`k=v,k2=v2`, as kube-rs sends it); gets by
/// name; everything else is a 404 `Status`. It knows nothing of what a caller looks for, so a
/// test fed the objects a real chart renders proves what the code finds in them.
pub fn object_server(objects: Vec<serde_json::Value>) -> impl Fn(&KubeRequest) -> (u16, serde_json::Value) {
    move |req| {
        if req.method != "GET" {
            return kube_status(405, "MethodNotAllowed");
        }
        // /api/v1[/namespaces/NS]/PLURAL[/NAME] or /apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME];
        // a namespace itself is /api/v1/namespaces/NAME.
        let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let rest = match parts.as_slice() {
            ["api", "v1", rest @ ..] => rest,
            ["apis", _, _, rest @ ..] => rest,
            _ => return kube_status(404, "NotFound"),
        };
        let (namespace, plural, name) = match rest {
            ["namespaces", ns, plural] => (Some(*ns), *plural, None),
            ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
            ["namespaces", name] => (None, "namespaces", Some(*name)),
            [plural] => (None, *plural, None),
            [plural, name] => (None, *plural, Some(*name)),
            _ => return kube_status(404, "NotFound"),
        };
        let query = percent_decode(&req.query);
        let selector: Vec<(&str, &str)> = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("labelSelector="))
            .map(|s| s.split(',').filter_map(|kv| kv.split_once('=')).collect())
            .unwrap_or_default();
        let kind_plural = |o: &serde_json::Value| {
            o["kind"].as_str().map(|k| format!("{}s", k.to_ascii_lowercase())).unwrap_or_default()
        };
        let matches = |o: &&serde_json::Value| {
            kind_plural(o) == plural
                && namespace.is_none_or(|ns| o["metadata"]["namespace"].as_str() == Some(ns))
                && selector.iter().all(|(k, v)| o["metadata"]["labels"][*k].as_str() == Some(*v))
        };
        match name {
            Some(name) => objects
                .iter()
                .filter(matches)
                .find(|o| o["metadata"]["name"].as_str() == Some(name))
                .map(|o| (200, o.clone()))
                .unwrap_or_else(|| kube_status(404, "NotFound")),
            None => {
                let items: Vec<serde_json::Value> = objects.iter().filter(matches).cloned().collect();
                (200, serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}))
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => match std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The objects of a golden render (`harness/testdata/renders/<dir>/<release>.yaml`, made by a
/// real helm from the vendored charts; `harness/tests/charts.rs` keeps them current).
pub fn rendered(dir: &str, release: &str) -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/renders")
        .join(dir)
        .join(format!("{release}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    crate::yaml::documents(&text).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

/// What the mock cluster of [`stack_answers`] looks like.
#[derive(Clone, Copy)]
pub struct Cluster {
    pub webhook_ready: bool,
    pub kong_meshed: bool,
    /// Istio's ambient data plane: istio-cni and ztunnel DaemonSets rolled out, and Kong's pods
    /// meshed by istio-cni's redirection annotation instead of a sidecar.
    pub ambient: bool,
}

/// An `APIResourceList` as the API server serves it for discovery: `(plural, kind, namespaced)`
/// per resource, each readable, patchable and deletable.
pub fn resources(group_version: &str, items: &[(&str, &str, bool)]) -> Value {
    let resources: Vec<Value> = items
        .iter()
        .map(|(plural, kind, namespaced)| {
            json!({"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list", "patch", "delete"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn list(kind: &str, items: Vec<Value>) -> (u16, Value) {
    (200, json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items}))
}

/// An API server with the stack installed, as the installer's readiness gates ask it: every
/// apply accepted, CRDs established, every Deployment available, Istio's injector webhook with
/// its endpoint (ready or not), Kong's pods (with the sidecar or not; in ambient mode redirected
/// or not), and in ambient mode the DaemonSets rolled out on a one-node cluster.
pub fn stack_answers(world: Cluster, req: &KubeRequest) -> (u16, Value) {
    if req.method == "PATCH" {
        return (200, serde_json::from_str(&req.body).unwrap_or(json!({})));
    }
    let available = |name: &str| deployment(name, "", Rollout::Done);
    match req.path.as_str() {
        "/api/v1" => (
            200,
            resources(
                "v1",
                &[
                    ("namespaces", "Namespace", false),
                    ("services", "Service", true),
                    ("serviceaccounts", "ServiceAccount", true),
                ],
            ),
        ),
        "/apis/apps/v1" => {
            (200, resources("apps/v1", &[("deployments", "Deployment", true), ("daemonsets", "DaemonSet", true)]))
        }
        // apps/v1 DaemonSetStatus on one node, rolled out.
        p if world.ambient && p.starts_with("/apis/apps/v1/namespaces/istio-system/daemonsets/") => (
            200,
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": p.rsplit('/').next(), "namespace": "istio-system", "generation": 1},
                   "status": {"observedGeneration": 1, "desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberReady": 1,
                              "updatedNumberScheduled": 1, "numberAvailable": 1, "numberMisscheduled": 0}}),
        ),
        "/apis/apiextensions.k8s.io/v1" => (
            200,
            resources("apiextensions.k8s.io/v1", &[("customresourcedefinitions", "CustomResourceDefinition", false)]),
        ),
        "/apis/telemetry.istio.io/v1" => {
            (200, resources("telemetry.istio.io/v1", &[("telemetries", "Telemetry", true)]))
        }
        "/apis/gateway.networking.k8s.io/v1" => (
            200,
            resources(
                "gateway.networking.k8s.io/v1",
                &[("gatewayclasses", "GatewayClass", false), ("gateways", "Gateway", true)],
            ),
        ),
        // Kong's Gateway as KIC leaves it once programmed (KIC v3.5.13
        // internal/controllers/gateway/gateway_controller.go: Accepted, then Programmed).
        p if p.starts_with("/apis/gateway.networking.k8s.io/v1/namespaces/") && p.contains("/gateways/") => (
            200,
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                   "metadata": {"name": p.rsplit('/').next(), "namespace": p.split('/').nth(5), "generation": 1},
                   "spec": {"gatewayClassName": "kong", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
                   "status": {"conditions": [
                       {"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": 1},
                       {"type": "Programmed", "status": "True", "reason": "Programmed", "observedGeneration": 1}],
                              "listeners": [{"name": "http", "attachedRoutes": 0, "conditions": [
                                  {"type": "Programmed", "status": "True", "reason": "Programmed"}]}]}}),
        ),
        p if p.starts_with("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/") => (
            200,
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": p.rsplit('/').next()},
                   "spec": {"group": "g", "names": {"plural": "p", "kind": "K"}, "scope": "Namespaced", "versions": []},
                   "status": {"conditions": [{"type": "Established", "status": "True"}]}}),
        ),
        p if p.ends_with("/deployments") => {
            let ns = p.split('/').nth(5).unwrap_or_default();
            list("DeploymentList", vec![available(&format!("{ns}-main"))])
        }
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-sidecar-injector" => (
            200,
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                   "metadata": {"name": "istio-sidecar-injector"},
                   "webhooks": [{"name": "i.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                                 "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system"}}}]}),
        ),
        "/apis/discovery.k8s.io/v1/namespaces/istio-system/endpointslices" => list(
            "EndpointSliceList",
            vec![json!({"metadata": {"name": "istiod-1"}, "addressType": "IPv4",
                        "endpoints": [{"addresses": ["10.0.0.2"], "conditions": {"ready": world.webhook_ready}}]})],
        ),
        "/api/v1/namespaces/kong/pods" => {
            let sidecar = if world.kong_meshed && !world.ambient {
                json!([{"name": "istio-proxy", "restartPolicy": "Always"}])
            } else {
                json!([])
            };
            let annotations = if world.kong_meshed && world.ambient {
                json!({crate::k8s::AMBIENT_REDIRECTION: "enabled"})
            } else {
                json!({})
            };
            list(
                "PodList",
                vec![
                    json!({"metadata": {"name": "kong-gateway-7d9f", "annotations": annotations}, "spec": {"containers": [{"name": "proxy"}], "initContainers": sidecar}}),
                ],
            )
        }
        _ => kube_status(404, "NotFound"),
    }
}

/// A pod as `mesh`'s injector leaves it at release `version` (and Istio `revision`), in the
/// shape of upstream's own injection fixtures: Istio's native sidecar with its annotations
/// (istio/istio 1.30.3 pkg/kube/inject/testdata/inject/native-sidecar.yaml.injected: `istio.io/rev`,
/// `sidecar.istio.io/status` with its `revision`, init containers `istio-init` and
/// `istio-proxy` running proxyv2), Linkerd's proxy with its version annotation (linkerd/linkerd2
/// edge-26.8.3 controller/proxy-injector/fake/data/pod.patch.json: `linkerd.io/proxy-version`,
/// init containers `linkerd-init` and `linkerd-proxy` running `cr.l5d.io/linkerd/proxy`).
pub fn injected_pod(name: &str, labels: Value, app: &str, mesh: Mesh, version: &str, revision: &str) -> Value {
    let (annotations, init) = match mesh {
        Mesh::Istio => {
            let image = format!("docker.io/istio/proxyv2:{version}");
            let status = format!(
                r#"{{"initContainers":["istio-init","istio-proxy"],"containers":null,"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"{revision}"}}"#
            );
            (
                json!({"istio.io/rev": revision, "sidecar.istio.io/status": status}),
                json!([{"name": "istio-init", "image": image}, {"name": "istio-proxy", "image": image, "restartPolicy": "Always"}]),
            )
        }
        Mesh::Linkerd => {
            let image = format!("cr.l5d.io/linkerd/proxy:{version}");
            (
                json!({"linkerd.io/proxy-version": version}),
                json!([{"name": "linkerd-init", "image": image}, {"name": "linkerd-proxy", "image": image, "restartPolicy": "Always"}]),
            )
        }
        Mesh::IstioAmbient | Mesh::None => (json!({}), json!([])),
    };
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels, "annotations": annotations},
           "spec": {"containers": [{"name": app, "image": "app:1"}], "initContainers": init}})
}

/// A cluster where every apply succeeds, echo-v1 is available and its one pod carries the
/// Istio proxy and the `version: v1` label.
pub fn echo_cluster(req: &KubeRequest) -> (u16, serde_json::Value) {
    let resources = |group_version: &str, plural: &str, kind: &str| {
        serde_json::json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": [
            {"name": plural, "singularName": "", "namespaced": true, "kind": kind, "verbs": ["patch", "get"]}]})
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("PATCH", _) => (200, serde_json::from_str(&req.body).unwrap_or_default()),
        (_, "/api/v1") => (200, resources("v1", "services", "Service")),
        (_, "/apis/apps/v1") => (200, resources("apps/v1", "deployments", "Deployment")),
        (_, "/apis/networking.k8s.io/v1") => (200, resources("networking.k8s.io/v1", "ingresses", "Ingress")),
        (_, p) if p.ends_with("/deployments/echo-v1") => {
            let namespace = p.split('/').nth(5).unwrap_or_default();
            (200, deployment("echo-v1", namespace, Rollout::Done))
        }
        (_, p) if p.ends_with("/pods") => (
            200,
            serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": "echo-v1-6d8f9-abcde", "labels": {"app": "echo", "version": "v1"}},
                 "spec": {"containers": [{"name": "echo"}, {"name": "istio-proxy"}]}}]}),
        ),
        (_, p) if p.ends_with("/events") => {
            (200, serde_json::json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": []}))
        }
        _ => kube_status(404, "NotFound"),
    }
}

/// A Kong stand-in answering for whichever run a request's host names
/// (`<scenario>.<run>.test`), as the echo backend behind it would.
pub async fn kong_for_any_run() -> std::net::SocketAddr {
    serve(|head| {
        let host = head.headers.get("host").cloned().unwrap_or_default();
        let mut parts = host.split('.');
        let (scenario, run) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let ns = format!("{scenario}-{run}");
        let mut upstream = head.clone();
        upstream.headers.insert("host".into(), format!("echo.{ns}.svc.cluster.local"));
        upstream.headers.insert("x-kong-request-id".into(), "1".into());
        Reply::json(200, echo_body(&upstream, "echo-v1-6d8f9-abcde", &ns))
    })
    .await
}

/// Kong's proxy answers from the host (any status is an answer; Kong's 404 for no route).
pub struct ProxyAnswers;

impl crate::stack::install::ProxyCheck for ProxyAnswers {
    async fn answers(&self, _: &str) -> Result<u16, String> {
        Ok(404)
    }
}

/// No network: every pinned file must already be in the cache.
pub struct Offline;

impl crate::tools::Fetch for Offline {
    async fn fetch(&self, url: &str, _: &mut (dyn std::io::Write + Send), _: u64) -> Result<(), String> {
        Err(format!("offline test: {url} must come from the cache"))
    }
}
