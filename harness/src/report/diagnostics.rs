//! Evidence from the cluster when something fails: pod logs of every container (mesh proxies
//! and init / native sidecars included), events, the proxies' own view (Istio: Envoy's
//! `config_dump` and `clusters` through `pilot-agent request` in the sidecar; Linkerd: the
//! proxy's metrics; Kong: its status and metrics), and the objects a scenario applied as the API
//! server now has them. Bounded in size, with secrets and tokens redacted, and best effort:
//! what cannot be fetched is listed, never fatal.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, LogParams};
use serde_json::Value;

use crate::probe::pod_proxy;

/// What to collect.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Pod logs and events of these namespaces (the scenario's and the system ones).
    pub namespaces: Vec<String>,
    /// Objects to save as they are now (what the scenario applied).
    pub objects: Vec<ObjectRef>,
    /// Namespaces only read (logs, events, GETs through the API server's proxy), never exec'd
    /// into: those of a cluster the harness did not install (`--no-install`), where only the
    /// scenarios' own namespaces are the harness's to act in.
    pub read_only: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// Size bounds: a nightly failure must not upload gigabytes (istio/istio#33034).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_file: usize,
    pub total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { per_file: 256 * 1024, total: 16 * 1024 * 1024 }
    }
}

/// What was written, what was cut, and what could not be fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    pub files: Vec<PathBuf>,
    pub truncated: Vec<PathBuf>,
    pub skipped_for_size: Vec<PathBuf>,
    pub errors: Vec<String>,
}

struct Writer<'a> {
    dir: &'a Path,
    limits: Limits,
    written: usize,
    out: Collected,
}

impl Writer<'_> {
    fn put(&mut self, rel: PathBuf, text: String) {
        // Room for the truncation marker, so no file ever exceeds its bound.
        const MARKER: usize = 64;
        let mut text = text;
        let room = self.limits.per_file.min(self.limits.total.saturating_sub(self.written));
        if room <= MARKER {
            self.out.skipped_for_size.push(rel);
            return;
        }
        if text.len() > room {
            // Keep the end: the last lines of a log say most about a failure.
            let mut cut = text.len() - (room - MARKER);
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text = format!("[truncated: first {cut} bytes dropped]\n{}", &text[cut..]);
            self.out.truncated.push(rel.clone());
        }
        let path = self.dir.join(&rel);
        let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&path, &text));
        match written {
            Ok(()) => {
                self.written += text.len();
                self.out.files.push(rel);
            }
            Err(e) => self.out.errors.push(format!("cannot write {}: {e}", path.display())),
        }
    }
}

/// Runs a command in a container; the seam for what only exec can reach (Envoy's admin API
/// listens on localhost inside the pod, out of the API server proxy's reach).
pub trait Exec: Sync {
    fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[&str],
    ) -> impl std::future::Future<Output = Result<String, String>> + Send;
}

/// Exec through the API server (kube-rs, websocket).
pub struct KubeExec(pub kube::Client);

impl Exec for KubeExec {
    async fn exec(&self, namespace: &str, pod: &str, container: &str, argv: &[&str]) -> Result<String, String> {
        use tokio::io::AsyncReadExt;
        let pods: Api<Pod> = Api::namespaced(self.0.clone(), namespace);
        let params = kube::api::AttachParams::default().container(container).stdout(true).stderr(false);
        let mut process = pods.exec(pod, argv.to_vec(), &params).await.map_err(|e| e.to_string())?;
        let mut out = String::new();
        if let Some(mut stdout) = process.stdout() {
            let read = stdout.read_to_string(&mut out);
            tokio::time::timeout(std::time::Duration::from_secs(30), read)
                .await
                .map_err(|_| "no output within 30s".to_owned())?
                .map_err(|e| e.to_string())?;
        }
        Ok(out)
    }
}

/// What to ask a mesh proxy through exec, by the containers a pod runs: Envoy's admin API via
/// `pilot-agent request` (istio/istio pilot/cmd/pilot-agent/app/request.go).
pub fn exec_evidence(containers: &[String]) -> Vec<(&'static str, &'static [&'static str], &'static str)> {
    if containers.iter().any(|c| c == "istio-proxy") {
        vec![
            ("istio-proxy", &["pilot-agent", "request", "GET", "clusters"], "envoy-clusters.txt"),
            ("istio-proxy", &["pilot-agent", "request", "GET", "config_dump"], "envoy-config-dump.json"),
        ]
    } else {
        Vec::new()
    }
}

/// Collect `target` into `dir`.
pub async fn collect(client: kube::Client, exec: &impl Exec, target: &Target, dir: &Path, limits: Limits) -> Collected {
    let mut w = Writer { dir, limits, written: 0, out: Collected::default() };
    for ns in &target.namespaces {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        match pods.list(&ListParams::default()).await {
            Ok(list) => {
                for pod in list.items {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let spec = pod.spec.unwrap_or_default();
                    let containers: Vec<_> =
                        spec.init_containers.unwrap_or_default().into_iter().chain(spec.containers).collect();
                    let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
                    for c in &containers {
                        let params = LogParams {
                            container: Some(c.name.clone()),
                            limit_bytes: Some(limits.per_file as i64),
                            ..LogParams::default()
                        };
                        match pods.logs(&name, &params).await {
                            Ok(log) => {
                                w.put(PathBuf::from(format!("pods/{ns}/{name}/{}.log", c.name)), redact_text(&log))
                            }
                            Err(e) => w.out.errors.push(format!("logs of {ns}/{name}/{}: {e}", c.name)),
                        }
                    }
                    // The proxies' own view: mesh proxy metrics, Kong's status and metrics.
                    for (port, path, file) in pod_proxy::evidence_endpoints(&names) {
                        let endpoint = pod_proxy::PodEndpoint { namespace: ns, pod: &name, port, path };
                        match pod_proxy::get(&client, &endpoint).await {
                            Ok(text) => w.put(PathBuf::from(format!("proxies/{ns}/{name}/{file}")), redact_text(&text)),
                            Err(e) => w.out.errors.push(format!("{}: {e}", endpoint.uri())),
                        }
                    }
                    let execs = if target.read_only.contains(ns) { Vec::new() } else { exec_evidence(&names) };
                    for (container, argv, file) in execs {
                        match exec.exec(ns, &name, container, argv).await {
                            Ok(text) => w.put(PathBuf::from(format!("proxies/{ns}/{name}/{file}")), redact_text(&text)),
                            Err(e) => w.out.errors.push(format!("exec {} in {ns}/{name}: {e}", argv.join(" "))),
                        }
                    }
                }
            }
            Err(e) => w.out.errors.push(format!("pods of {ns}: {e}")),
        }
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        match events.list(&ListParams::default()).await {
            Ok(list) => {
                let lines: Vec<String> = list
                    .items
                    .iter()
                    .map(|e| {
                        let object = &e.involved_object;
                        format!(
                            "{} {} {}/{}: {} (x{})",
                            e.type_.as_deref().unwrap_or("?"),
                            e.reason.as_deref().unwrap_or("?"),
                            object.kind.as_deref().unwrap_or("?"),
                            object.name.as_deref().unwrap_or("?"),
                            e.message.as_deref().unwrap_or("").trim(),
                            e.count.unwrap_or(1)
                        )
                    })
                    .collect();
                w.put(PathBuf::from(format!("events/{ns}.txt")), redact_text(&lines.join("\n")));
            }
            Err(e) => w.out.errors.push(format!("events of {ns}: {e}")),
        }
    }
    for o in &target.objects {
        let (group, version) = o.api_version.rsplit_once('/').unwrap_or(("", &o.api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &o.kind));
        let api: Api<DynamicObject> = match &o.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let label = format!("{}/{}", o.kind, o.name);
        match api.get(&o.name).await {
            Ok(obj) => match serde_json::to_value(&obj) {
                Ok(mut value) => {
                    redact_object(&mut value);
                    let yaml = serde_saphyr::to_string(&value).unwrap_or_else(|e| format!("cannot render: {e}"));
                    let ns = o.namespace.as_deref().unwrap_or("cluster");
                    w.put(PathBuf::from(format!("objects/{ns}/{}-{}.yaml", o.kind.to_lowercase(), o.name)), yaml);
                }
                Err(e) => w.out.errors.push(format!("{label}: {e}")),
            },
            Err(e) => w.out.errors.push(format!("{label}: {e}")),
        }
    }
    w.out
}

/// Secrets keep their keys, not their values; managedFields are noise.
pub fn redact_object(value: &mut Value) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            // kubectl keeps the whole applied object, secrets included, in this annotation.
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    if value.get("kind").and_then(Value::as_str) == Some("Secret") {
        for field in ["data", "stringData"] {
            if let Some(map) = value.get_mut(field).and_then(Value::as_object_mut) {
                for v in map.values_mut() {
                    *v = Value::from("[redacted]");
                }
            }
        }
    }
}

pub use crate::stack::values::redact as redact_values;

/// Values after credential-looking keys (`authorization: Bearer …`, `token=…`, `password: …`)
/// become `[redacted]`, to the end of the value.
pub fn redact_text(text: &str) -> String {
    const KEYS: &[&str] = &["authorization", "bearer ", "token", "password", "secret", "api-key", "apikey"];
    text.lines()
        .map(|line| {
            let lower = line.to_ascii_lowercase();
            match KEYS.iter().filter_map(|k| lower.find(k).map(|i| i + k.len())).min() {
                Some(after_key) => {
                    // Keep the key and its separator; drop the value up to the next quote, comma or end.
                    let rest = &line[after_key..];
                    let sep = rest.len() - rest.trim_start_matches([':', '=', ' ', '"', '\'']).len();
                    let value_start = after_key + sep;
                    let tail = &line[value_start..];
                    let value_len = tail.find(['"', '\'', ',', '}']).unwrap_or(tail.len());
                    if value_len == 0 {
                        line.to_owned()
                    } else {
                        format!("{}[redacted]{}", &line[..value_start], &tail[value_len..])
                    }
                }
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::json;

    use super::*;

    /// Serve the kube-rs mock: answer each request by its path, record what was asked.
    fn mock_cluster() -> (kube::Client, Arc<Mutex<Vec<String>>>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = asked.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let uri = request.uri().to_string();
                seen.lock().unwrap().push(uri.clone());
                let path = request.uri().path().to_owned();
                let (status, body): (u16, Vec<u8>) = match path.as_str() {
                    "/api/v1/namespaces/shop/pods" => (200, json!({
                        "apiVersion": "v1", "kind": "PodList", "metadata": {},
                        "items": [{"metadata": {"name": "echo-v1-abc", "namespace": "shop"},
                                   "spec": {"initContainers": [{"name": "istio-proxy"}], "containers": [{"name": "echo"}]}}]
                    }).to_string().into_bytes()),
                    "/api/v1/namespaces/shop/pods/echo-v1-abc/log" if uri.contains("container=istio-proxy") => {
                        (200, b"[info] upstream reset\nauthorization: Bearer abc.def.ghi\n".to_vec())
                    }
                    "/api/v1/namespaces/shop/pods/echo-v1-abc/log" => (200, "x".repeat(5000).into_bytes()),
                    "/api/v1/namespaces/shop/pods/echo-v1-abc:15020/proxy/stats/prometheus" => {
                        (200, b"istio_requests_total{connection_security_policy=\"mutual_tls\"} 5\n".to_vec())
                    }
                    "/api/v1/namespaces/shop/events" => (200, json!({
                        "apiVersion": "v1", "kind": "EventList", "metadata": {},
                        "items": [{"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "echo-v1-abc"},
                                   "type": "Warning", "reason": "BackOff", "message": "Back-off restarting", "count": 3}]
                    }).to_string().into_bytes()),
                    "/api/v1/namespaces/shop/secrets/creds" => (200, json!({
                        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "shop", "managedFields": [{}]},
                        "data": {"secret": "aHVudGVyMg=="}
                    }).to_string().into_bytes()),
                    "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/echo" => (200, json!({
                        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "echo", "namespace": "shop"},
                        "spec": {"hosts": ["echo"]}, "status": {"validationMessages": [{"type": {"code": "IST0101"}}]}
                    }).to_string().into_bytes()),
                    _ => (404, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}).to_string().into_bytes()),
                };
                let response = Response::builder().status(status).body(Body::from(body)).expect("a response");
                respond.send_response(response);
            }
        });
        (kube::Client::new(service, "default"), asked)
    }

    /// Exec that records what it was asked and answers a small Envoy-like text.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);

    impl Exec for Recorded {
        async fn exec(&self, ns: &str, pod: &str, container: &str, argv: &[&str]) -> Result<String, String> {
            self.0.lock().unwrap().push(format!("{ns}/{pod}/{container}: {}", argv.join(" ")));
            Ok("outbound|80||echo.shop.svc.cluster.local::10.0.0.9:8080::health_flags::healthy\n".into())
        }
    }

    #[tokio::test]
    async fn collects_logs_events_and_objects_redacted_and_bounded() {
        let (client, asked) = mock_cluster();
        let dir = tempfile::tempdir().unwrap();
        let target = Target {
            namespaces: vec!["shop".into()],
            objects: vec![
                ObjectRef {
                    api_version: "v1".into(),
                    kind: "Secret".into(),
                    name: "creds".into(),
                    namespace: Some("shop".into()),
                },
                ObjectRef {
                    api_version: "networking.istio.io/v1".into(),
                    kind: "VirtualService".into(),
                    name: "echo".into(),
                    namespace: Some("shop".into()),
                },
                ObjectRef {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: "gone".into(),
                    namespace: Some("shop".into()),
                },
            ],
            read_only: vec![],
        };
        let exec = Recorded::default();
        let got = collect(client, &exec, &target, dir.path(), Limits { per_file: 1024, total: 1 << 20 }).await;
        assert_eq!(
            *exec.0.lock().unwrap(),
            [
                "shop/echo-v1-abc/istio-proxy: pilot-agent request GET clusters",
                "shop/echo-v1-abc/istio-proxy: pilot-agent request GET config_dump"
            ]
        );
        let files: Vec<String> = got.files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            files,
            [
                "pods/shop/echo-v1-abc/istio-proxy.log",
                "pods/shop/echo-v1-abc/echo.log",
                "proxies/shop/echo-v1-abc/istio-proxy-metrics.txt",
                "proxies/shop/echo-v1-abc/envoy-clusters.txt",
                "proxies/shop/echo-v1-abc/envoy-config-dump.json",
                "events/shop.txt",
                "objects/shop/secret-creds.yaml",
                "objects/shop/virtualservice-echo.yaml",
            ]
        );
        // Every container's log was asked for, the sidecar included, with a byte limit.
        let asked = asked.lock().unwrap().clone();
        assert!(
            asked.iter().any(|u| u.contains("container=istio-proxy") && u.contains("limitBytes=1024")),
            "{asked:?}"
        );
        // Redaction.
        let proxy = std::fs::read_to_string(dir.path().join("pods/shop/echo-v1-abc/istio-proxy.log")).unwrap();
        assert!(proxy.contains("authorization: [redacted]") && !proxy.contains("abc.def"), "{proxy}");
        let secret = std::fs::read_to_string(dir.path().join("objects/shop/secret-creds.yaml")).unwrap();
        assert!(
            secret.contains("[redacted]") && !secret.contains("aHVudGVyMg") && !secret.contains("managedFields"),
            "{secret}"
        );
        let vs = std::fs::read_to_string(dir.path().join("objects/shop/virtualservice-echo.yaml")).unwrap();
        assert!(vs.contains("IST0101"), "objects keep their status: {vs}");
        let events = std::fs::read_to_string(dir.path().join("events/shop.txt")).unwrap();
        assert_eq!(events, "Warning BackOff Pod/echo-v1-abc: Back-off restarting (x3)");
        // Size cap: the long log is cut to the limit, keeping its end.
        assert_eq!(got.truncated, [PathBuf::from("pods/shop/echo-v1-abc/echo.log")]);
        let echo = std::fs::read_to_string(dir.path().join("pods/shop/echo-v1-abc/echo.log")).unwrap();
        assert!(echo.starts_with("[truncated: first 4040 bytes dropped]"), "{}", &echo[..60]);
        assert!(echo.len() <= 1024);
        // What could not be fetched is reported, not fatal.
        assert_eq!(got.errors.len(), 1);
        assert!(got.errors[0].starts_with("ConfigMap/gone"), "{:?}", got.errors);
    }

    /// A read-only namespace is read (logs, events, the proxy's metrics through the API server)
    /// and never exec'd into.
    #[tokio::test]
    async fn read_only_namespaces_are_never_execd_into() {
        let (client, _) = mock_cluster();
        let dir = tempfile::tempdir().unwrap();
        let target = Target { namespaces: vec!["shop".into()], objects: vec![], read_only: vec!["shop".into()] };
        let exec = Recorded::default();
        let got = collect(client, &exec, &target, dir.path(), Limits::default()).await;
        assert!(exec.0.lock().unwrap().is_empty(), "{:?}", exec.0.lock().unwrap());
        let files: Vec<String> = got.files.iter().map(|p| p.display().to_string()).collect();
        assert!(files.contains(&"pods/shop/echo-v1-abc/istio-proxy.log".to_owned()), "{files:?}");
        assert!(files.contains(&"proxies/shop/echo-v1-abc/istio-proxy-metrics.txt".to_owned()), "{files:?}");
    }

    #[tokio::test]
    async fn the_total_cap_skips_what_does_not_fit() {
        let (client, _) = mock_cluster();
        let dir = tempfile::tempdir().unwrap();
        let target = Target { namespaces: vec!["shop".into()], ..Target::default() };
        let got =
            collect(client, &Recorded::default(), &target, dir.path(), Limits { per_file: 1024, total: 1100 }).await;
        let skipped = [
            PathBuf::from("proxies/shop/echo-v1-abc/istio-proxy-metrics.txt"),
            PathBuf::from("proxies/shop/echo-v1-abc/envoy-clusters.txt"),
            PathBuf::from("proxies/shop/echo-v1-abc/envoy-config-dump.json"),
            PathBuf::from("events/shop.txt"),
        ];
        assert_eq!(got.skipped_for_size, skipped, "{got:?}");
        let total: u64 = got.files.iter().map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len()).sum();
        assert!(total <= 1100, "{total}");
    }

    #[test]
    fn helm_values_lose_their_credentials() {
        let mut values = serde_json::json!({"identity": {"issuer": {"tls": {"crtPEM": "CERT", "keyPEM": "-----BEGIN EC PRIVATE KEY-----"}}},
                                            "gateway": {"env": {"password": "x"}, "podLabels": {"a": "b"}}});
        redact_values(&mut values);
        assert_eq!(values["identity"]["issuer"]["tls"]["keyPEM"], "[redacted]");
        assert_eq!(values["identity"]["issuer"]["tls"]["crtPEM"], "CERT");
        assert_eq!(values["gateway"]["env"]["password"], "[redacted]");
        assert_eq!(values["gateway"]["podLabels"]["a"], "b");
    }

    #[test]
    fn credentials_in_text_are_redacted() {
        assert_eq!(redact_text("Authorization: Bearer x.y.z"), "Authorization: [redacted]");
        assert_eq!(redact_text(r#"{"token":"abc","ok":1}"#), r#"{"token":"[redacted]","ok":1}"#);
        assert_eq!(redact_text("password=hunter2 rest"), "password=[redacted]");
        assert_eq!(redact_text("nothing to see"), "nothing to see");
    }
}
