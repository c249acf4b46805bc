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

use crate::names;
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

pub use crate::model::ObjectRef;

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
    /// Write `text` as `rel` under the directory. `rel` is joined only through
    /// [`names::join_under`]: a segment that is not a plain file name (`..`, `/`) is refused and
    /// said in the errors, never written.
    fn put(&mut self, rel: String, text: String) {
        // Room for the truncation marker, so no file ever exceeds its bound.
        const MARKER: usize = 64;
        let path = match names::join_under(self.dir, &rel) {
            Ok(path) => path,
            Err(e) => {
                self.out.errors.push(format!("not written: {e}"));
                return;
            }
        };
        let rel = PathBuf::from(rel);
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
        let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&path, &text));
        match written {
            Ok(()) => {
                self.written += text.len();
                self.out.files.push(rel);
            }
            Err(e) => self.out.errors.push(format!("cannot write {}: {e}", path.display())),
        }
    }

    /// [`Writer::put`] an answer read by [`fetch`]; one cut at the read bound says so at its end.
    fn put_answer(&mut self, rel: String, (bytes, cut): (Vec<u8>, bool), cap: usize) {
        let mut text = redact_text(&String::from_utf8_lossy(&bytes));
        if cut {
            text.push_str(&format!("\n[cut: the answer was longer than {cap} bytes; the rest was not read]"));
        }
        let before = self.out.truncated.len();
        self.put(rel.clone(), text);
        let written = self.out.files.last().is_some_and(|f| *f == Path::new(&rel));
        if cut && written && self.out.truncated.len() == before {
            self.out.truncated.push(PathBuf::from(rel));
        }
    }
}

/// The most of one answer read whole (a namespace's pods or events, an object): a real list is
/// kilobytes to a few megabytes. A larger one is refused, not buffered.
pub const MAX_ANSWER: usize = 8 << 20;

/// How long one evidence request may take, answer and body together: the kube client sets no
/// read timeout, and a stalled API server (or the service behind its proxy) must not hold the
/// collection.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How much of a log or a proxy's answer is read: its file keeps at most `per_file` (the end), so
/// a few times that, never the whole of an answer that does not end.
fn answer_cap(limits: Limits) -> usize {
    limits.per_file.saturating_mul(4).clamp(64 * 1024, MAX_ANSWER)
}

/// Send `request` through the API server and read at most `cap` bytes of the body as it
/// streams, within [`REQUEST_TIMEOUT`]: the bytes and whether the answer was longer. A status
/// other than 2xx is an error with the API server's message (bounded, escaped).
async fn fetch(client: &kube::Client, request: http::Request<Vec<u8>>, cap: usize) -> Result<(Vec<u8>, bool), String> {
    use http_body_util::BodyExt;
    let uri = request.uri().to_string();
    let exchange = async {
        let response = client.send(request.map(kube::client::Body::from)).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let mut body = response.into_body();
        let (mut bytes, mut cut) = (Vec::new(), false);
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|e| format!("reading the answer: {e}"))?.into_data() else { continue };
            let room = cap.saturating_sub(bytes.len());
            if data.len() > room {
                bytes.extend_from_slice(&data[..room]);
                cut = true;
                break;
            }
            bytes.extend_from_slice(&data);
        }
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            let message: String = crate::diagnostic::escape_controls(&message).chars().take(300).collect();
            return Err(format!("status {}: {message}", status.as_u16()));
        }
        Ok((bytes, cut))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("GET {uri}: {e}")),
        Err(_) => Err(format!("GET {uri}: no complete answer within {}s", REQUEST_TIMEOUT.as_secs())),
    }
}

/// The items of the list at `url_path`, read within [`MAX_ANSWER`].
async fn list<K: serde::de::DeserializeOwned + Clone>(client: &kube::Client, url_path: &str) -> Result<Vec<K>, String> {
    let request = kube::core::Request::new(url_path).list(&ListParams::default()).map_err(|e| e.to_string())?;
    let (bytes, cut) = fetch(client, request, MAX_ANSWER).await?;
    if cut {
        return Err(format!("GET {url_path}: the answer is larger than {} MiB; not read", MAX_ANSWER >> 20));
    }
    serde_json::from_slice::<kube::core::ObjectList<K>>(&bytes)
        .map(|list| list.items)
        .map_err(|e| format!("GET {url_path}: not a list: {e}"))
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
        let mut out = Vec::new();
        if let Some(stdout) = process.stdout() {
            // At most MAX_ANSWER bytes: an Envoy config dump is megabytes, never unbounded.
            let mut stdout = stdout.take(MAX_ANSWER as u64 + 1);
            let read = stdout.read_to_end(&mut out);
            tokio::time::timeout(std::time::Duration::from_secs(30), read)
                .await
                .map_err(|_| "no output within 30s".to_owned())?
                .map_err(|e| e.to_string())?;
        }
        let cut = out.len() > MAX_ANSWER;
        out.truncate(MAX_ANSWER);
        let mut text = String::from_utf8_lossy(&out).into_owned();
        if cut {
            text.push_str(&format!("\n[cut: the output was longer than {MAX_ANSWER} bytes; the rest was not read]"));
        }
        Ok(text)
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

/// Collect `target` into `dir`. Every name taken from an API answer (pods, containers) and every
/// namespace is checked as Kubernetes defines it before it becomes part of a path, a URL or an
/// exec's argument; a refused name is said in the errors and not used. Every answer is read as
/// it streams, within a size bound and a deadline.
pub async fn collect(client: kube::Client, exec: &impl Exec, target: &Target, dir: &Path, limits: Limits) -> Collected {
    let mut w = Writer { dir, limits, written: 0, out: Collected::default() };
    let cap = answer_cap(limits);
    for ns in &target.namespaces {
        if let Err(e) = names::dns1123_label(ns) {
            w.out.errors.push(format!("namespace refused: {e}"));
            continue;
        }
        match list::<Pod>(&client, &format!("/api/v1/namespaces/{ns}/pods")).await {
            Ok(pods) => {
                for pod in pods {
                    collect_pod(&client, exec, target, ns, pod, cap, &mut w).await;
                }
            }
            Err(e) => w.out.errors.push(format!("pods of {ns}: {e}")),
        }
        match list::<Event>(&client, &format!("/api/v1/namespaces/{ns}/events")).await {
            Ok(events) => {
                let lines: Vec<String> = events
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
                w.put(format!("events/{ns}.txt"), redact_text(&lines.join("\n")));
            }
            Err(e) => w.out.errors.push(format!("events of {ns}: {e}")),
        }
    }
    for o in &target.objects {
        let label = format!("{}/{}", names::printable(&o.kind), names::printable(&o.name));
        if let Some(Err(e)) = o.namespace.as_deref().map(names::dns1123_label) {
            w.out.errors.push(format!("{label}: namespace refused: {e}"));
            continue;
        }
        let (group, version) = o.api_version.rsplit_once('/').unwrap_or(("", &o.api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &o.kind));
        let url_path = <DynamicObject as kube::Resource>::url_path(&resource, o.namespace.as_deref());
        let answer = match kube::core::Request::new(url_path).get(&o.name, &Default::default()) {
            Ok(request) => fetch(&client, request, MAX_ANSWER).await,
            Err(e) => Err(e.to_string()),
        };
        let object = answer.and_then(|(bytes, cut)| {
            if cut {
                return Err(format!("larger than {} MiB; not read", MAX_ANSWER >> 20));
            }
            serde_json::from_slice::<Value>(&bytes).map_err(|e| format!("not an object: {e}"))
        });
        match object {
            Ok(mut value) => {
                redact_object(&mut value);
                let yaml = serde_saphyr::to_string(&value).unwrap_or_else(|e| format!("cannot render: {e}"));
                let ns = o.namespace.as_deref().unwrap_or("cluster");
                w.put(format!("objects/{ns}/{}-{}.yaml", o.kind.to_lowercase(), o.name), yaml);
            }
            Err(e) => w.out.errors.push(format!("{label}: {e}")),
        }
    }
    w.out
}

/// One pod's evidence: every container's log, its proxies' endpoints, and what exec reaches.
async fn collect_pod(
    client: &kube::Client,
    exec: &impl Exec,
    target: &Target,
    ns: &str,
    pod: Pod,
    cap: usize,
    w: &mut Writer<'_>,
) {
    // Pod names are DNS-1123 subdomains, container names DNS-1123 labels (the API server
    // validates them so): an answer holding anything else is not one to trust, and its names
    // are not used.
    let name = pod.metadata.name.unwrap_or_default();
    if let Err(e) = names::dns1123_subdomain(&name) {
        w.out.errors.push(format!("a pod of {ns} refused: {e}"));
        return;
    }
    let spec = pod.spec.unwrap_or_default();
    let mut containers = Vec::new();
    for c in spec.init_containers.unwrap_or_default().into_iter().chain(spec.containers) {
        match names::dns1123_label(&c.name) {
            Ok(()) => containers.push(c.name),
            Err(e) => w.out.errors.push(format!("a container of {ns}/{name} refused: {e}")),
        }
    }
    let pods_path = format!("/api/v1/namespaces/{ns}/pods");
    for c in &containers {
        let params = LogParams {
            container: Some(c.clone()),
            limit_bytes: Some(w.limits.per_file as i64),
            ..LogParams::default()
        };
        let answer = match kube::core::Request::new(&pods_path).logs(&name, &params) {
            Ok(request) => fetch(client, request, cap).await,
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(answer) => w.put_answer(format!("pods/{ns}/{name}/{c}.log"), answer, cap),
            Err(e) => w.out.errors.push(format!("logs of {ns}/{name}/{c}: {e}")),
        }
    }
    // The proxies' own view: mesh proxy metrics, Kong's status and metrics.
    for (port, path, file) in pod_proxy::evidence_endpoints(&containers) {
        let endpoint = pod_proxy::PodEndpoint { namespace: ns, pod: &name, port, path };
        let answer = match http::Request::get(endpoint.uri()).body(Vec::new()) {
            Ok(request) => fetch(client, request, cap).await,
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(answer) => w.put_answer(format!("proxies/{ns}/{name}/{file}"), answer, cap),
            // `fetch` names the request (`GET <uri>: ...`).
            Err(e) => w.out.errors.push(e),
        }
    }
    let execs = if target.read_only.iter().any(|r| r == ns) { Vec::new() } else { exec_evidence(&containers) };
    for (container, argv, file) in execs {
        match exec.exec(ns, &name, container, argv).await {
            Ok(text) => w.put(format!("proxies/{ns}/{name}/{file}"), redact_text(&text)),
            Err(e) => w.out.errors.push(format!("exec {} in {ns}/{name}: {e}", argv.join(" "))),
        }
    }
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

/// Values after credential-looking keys (`authorization: Bearer …`, `token=…`, `password: …`,
/// `api_key`, `cookie` / `set-cookie`) become `[redacted]`, to the end of the value; then
/// credentials by their shape ([`crate::stack::values::redact_inline`]:
/// `scheme://user:[redacted]@host`, JWT-like tokens). First of all, the body of every PEM block
/// (`-----BEGIN …-----` to `-----END …-----`, across lines or within one) is redacted whole: a
/// private key's middle lines have no key of their own to be recognised by.
pub fn redact_text(text: &str) -> String {
    const KEYS: &[&str] =
        &["authorization", "bearer ", "token", "password", "secret", "api-key", "apikey", "api_key", "cookie"];
    let text = redact_pem_blocks(text);
    text.lines()
        .map(|line| {
            let lower = line.to_ascii_lowercase();
            let by_key = match KEYS.iter().filter_map(|k| lower.find(k).map(|i| i + k.len())).min() {
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
            };
            // Then by shape: URL passwords, JWT-like tokens.
            crate::stack::values::redact_inline(&by_key).unwrap_or(by_key)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with the body of every PEM block replaced by `[redacted]`, the markers kept; a block
/// with no `-----END` is redacted to the end of the text.
fn redact_pem_blocks(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        // The marker runs to its closing dashes (`-----BEGIN RSA PRIVATE KEY-----`).
        let label_at = start + BEGIN.len();
        let marker_end = rest[label_at..].find("-----").map_or(rest.len(), |i| label_at + i + 5);
        out.push_str(&rest[..marker_end]);
        out.push_str("[redacted]");
        match rest[marker_end..].find(END) {
            Some(i) => rest = &rest[marker_end + i..],
            None => return out,
        }
        // Past the END marker's own start, so it is copied as it is.
        let end_marker = rest[END.len()..].find("-----").map_or(rest.len(), |i| END.len() + i + 5);
        out.push_str(&rest[..end_marker]);
        rest = &rest[end_marker..];
    }
    out.push_str(rest);
    out
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

    /// A hostile API server names pods `../../x`, `a/b` and `..` and a container `../c`: each is
    /// refused and said in the errors, nothing is written outside the artifacts directory, and
    /// the names are never sent back as paths of requests.
    #[tokio::test]
    async fn names_from_the_api_never_become_paths_outside_the_artifacts() {
        let pod = |name: &str, containers: &[&str]| {
            let containers: Vec<_> = containers.iter().map(|c| json!({"name": c})).collect();
            json!({"metadata": {"name": name, "namespace": "shop"}, "spec": {"containers": containers}})
        };
        let pods = vec![
            pod("../../x", &["app"]),
            pod("a/b", &["app"]),
            pod("..", &["app"]),
            pod("ok", &["../c", "app", "istio-proxy"]),
        ];
        let (client, asked) = crate::testing::kube_mock(move |req| match req.path.as_str() {
            "/api/v1/namespaces/shop/pods" => {
                (200, json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods}))
            }
            "/api/v1/namespaces/shop/events" => {
                (200, json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": []}))
            }
            p if p.ends_with("/log") => (200, json!("a log line")),
            _ => crate::testing::kube_status(404, "NotFound"),
        });
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("target/e2e/run/artifacts/demo");
        std::fs::create_dir_all(&dir).unwrap();
        let target = Target {
            namespaces: vec!["shop".into(), "../../etc".into()],
            objects: vec![ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "x".into(),
                namespace: Some("../up".into()),
            }],
            read_only: vec![],
        };
        let exec = Recorded::default();
        let got = collect(client, &exec, &target, &dir, Limits::default()).await;
        let files: Vec<String> = got.files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            files,
            [
                "pods/shop/ok/app.log",
                "pods/shop/ok/istio-proxy.log",
                "proxies/shop/ok/envoy-clusters.txt",
                "proxies/shop/ok/envoy-config-dump.json",
                "events/shop.txt"
            ],
            "{got:?}"
        );
        for refused in ["`../../x`", "`a/b`", "`..`", "`../c`", "`../../etc`", "`../up`"] {
            assert!(got.errors.iter().any(|e| e.contains(refused)), "{refused} not refused: {:?}", got.errors);
        }
        // Everything on disk is under the artifacts directory.
        fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() { all_files(&path, out) } else { out.push(path) }
            }
        }
        let mut on_disk = Vec::new();
        all_files(root.path(), &mut on_disk);
        assert!(on_disk.iter().all(|f| f.starts_with(&dir)), "{on_disk:?}");
        assert_eq!(on_disk.len(), files.len(), "{on_disk:?}");
        // The refused names reached no request path, and no exec.
        let asked = asked.lock().unwrap();
        assert!(asked.iter().all(|r| !r.path.contains("..") && !r.query.contains("..")), "{asked:?}");
        assert!(exec.0.lock().unwrap().iter().all(|e| e.starts_with("shop/ok/istio-proxy:")), "{:?}", exec.0);
    }

    /// An API server that streams a log without end: the read stops at its bound, the file says
    /// it was cut, and the collection goes on (the old `request_text` read it whole).
    #[tokio::test]
    async fn an_endless_answer_is_read_only_up_to_its_bound() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = sent.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or_default().split('?').next().unwrap_or_default();
                    if path == "/api/v1/namespaces/shop/pods" {
                        let body = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
                            "items": [{"metadata": {"name": "big"}, "spec": {"containers": [{"name": "app"}]}}]})
                        .to_string();
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                    } else if path.ends_with("/log") {
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").await;
                        let line = "x".repeat(4000) + "\n";
                        let chunk = format!("{:x}\r\n{line}\r\n", line.len());
                        // Until the reader hangs up.
                        while stream.write_all(chunk.as_bytes()).await.is_ok() {
                            counted.fetch_add(line.len(), std::sync::atomic::Ordering::SeqCst);
                        }
                    } else {
                        let body =
                            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404,"message":"nope"}"#;
                        let answer = format!(
                            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                    }
                });
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = Target { namespaces: vec!["shop".into()], ..Target::default() };
        let limits = Limits { per_file: 16 * 1024, total: 1 << 20 };
        let exec = Recorded::default();
        let collecting = collect(client, &exec, &target, dir.path(), limits);
        let got = tokio::time::timeout(std::time::Duration::from_secs(20), collecting).await.expect("the read ends");
        assert_eq!(got.files, [PathBuf::from("pods/shop/big/app.log")], "{got:?}");
        assert_eq!(got.truncated, [PathBuf::from("pods/shop/big/app.log")]);
        let log = std::fs::read_to_string(dir.path().join("pods/shop/big/app.log")).unwrap();
        assert!(log.len() <= limits.per_file && log.ends_with("the rest was not read]"), "{}", &log[log.len() - 80..]);
        // What the server got out before the hang-up is bounded by socket buffers, not by
        // the answer: far less than it would have sent.
        assert!(sent.load(std::sync::atomic::Ordering::SeqCst) < 64 << 20);
        assert!(got.errors.iter().any(|e| e.contains("status 404: nope")), "{:?}", got.errors);
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
        assert_eq!(
            redact_text("dial postgres://kong:hunter2@db:5432 failed\nid eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."),
            "dial postgres://kong:[redacted]@db:5432 failed\nid [redacted]"
        );
    }

    /// A PEM private key's middle lines carry no key word: the whole block goes, across lines
    /// or within one (a JSON string); `api_key`, `apikey`, `cookie` and `set-cookie` values too.
    #[test]
    fn pem_blocks_and_cookie_and_api_key_values_are_redacted() {
        let log = "loading key\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nQ2hvY29sYXRl\n-----END RSA PRIVATE KEY-----\nready";
        let out = redact_text(log);
        assert!(!out.contains("MIIEpAIBAAKCAQEA") && !out.contains("Q2hvY29sYXRl"), "{out}");
        assert!(out.starts_with("loading key\n-----BEGIN RSA PRIVATE KEY-----[redacted]-----END RSA PRIVATE KEY-----"));
        assert!(out.ends_with("\nready"), "{out}");
        let inline = r#"{"key":"-----BEGIN PRIVATE KEY-----\nMIIBVg\n-----END PRIVATE KEY-----\n","n":1}"#;
        assert!(!redact_text(inline).contains("MIIBVg"));
        let cut = redact_text("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n(truncated)");
        assert!(!cut.contains("MHcCAQEEIBkg"), "{cut}");
        assert_eq!(redact_text("api_key=K3Y-VALUE"), "api_key=[redacted]");
        assert_eq!(redact_text("apikey: K3Y-VALUE"), "apikey: [redacted]");
        assert_eq!(redact_text("cookie: session=S3SS10N"), "cookie: [redacted]");
        assert_eq!(redact_text("< set-cookie: session=S3SS10N; Path=/"), "< set-cookie: [redacted]");
    }
}
