//! HTTP to a pod's port through the API server's pod proxy
//! (`/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}`): metrics and status endpoints of
//! Kong and of mesh proxies, without a port-forward; and any proxied GET whose status matters
//! ([`get_relayed`], the trace collector's query through the service proxy). It reaches ports bound on the pod IP, not
//! those bound to localhost (Envoy's admin port is; its Prometheus port 15020 is not).

use http::Request;

/// A pod endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEndpoint<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub port: u16,
    /// Path without the leading slash, e.g. `stats/prometheus`.
    pub path: &'a str,
}

impl PodEndpoint<'_> {
    pub fn uri(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/pods/{}:{}/proxy/{}",
            self.namespace,
            self.pod,
            self.port,
            self.path.trim_start_matches('/')
        )
    }
}

/// The most of an answer relayed through the API server that is read.
const PROXIED_BODY_LIMIT: usize = 8 << 20;

/// How long one relayed GET may take, answer and body together. Nothing else bounds it: the
/// kube client's read timeout (`session::with_deadlines`) bounds only silences, not a slow
/// trickle, and the API server treats `proxy`
/// subresource requests as long-running (no server-side request timeout), so a stalled
/// service or proxy would hold the caller until it gives up. A Jaeger query of an in-memory
/// trace answers in milliseconds; this is a stall, not a slow answer.
pub const RELAYED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// GET `uri` (an API server proxy path) and return the proxied service's status and body,
/// whatever the status: the API server relays it as is, and its body is the service's, not a
/// Kubernetes `Status` (which kube's error handling would read it as, losing the status code
/// when the body is some other JSON). At most [`PROXIED_BODY_LIMIT`] bytes are read, within
/// [`RELAYED_TIMEOUT`]; an error names the request.
pub async fn get_relayed(client: &kube::Client, uri: &str) -> Result<(u16, String), String> {
    use http_body_util::BodyExt;
    let exchange = async {
        let request = Request::get(uri).body(kube::client::Body::empty()).map_err(|e| e.to_string())?;
        let response = client.send(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), PROXIED_BODY_LIMIT)
            .collect()
            .await
            .map_err(|e| format!("reading the answer (status {status}): {e}"))?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    match tokio::time::timeout(RELAYED_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("GET {uri}: {e}")),
        Err(_) => Err(format!(
            "GET {uri}: no complete answer within {}s (the API server holds proxied requests open)",
            RELAYED_TIMEOUT.as_secs()
        )),
    }
}

/// The most of a metrics or status page read. A busy Envoy's merged Prometheus text is a few
/// MiB; a larger answer is an error, never judged (or kept) on the part that was read, since a
/// half scrape can miss the very series an expectation is about.
pub const SCRAPE_LIMIT: usize = 16 << 20;

/// How long one scrape may take, answer and body together (the API server holds proxied
/// requests open; see [`RELAYED_TIMEOUT`]). 16 MiB through the API server takes well under this.
pub const SCRAPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// GET the endpoint's text: at most [`SCRAPE_LIMIT`] bytes, within [`SCRAPE_TIMEOUT`]. An answer
/// that is not 2xx, larger, cut or late is an error saying which.
pub async fn get(client: &kube::Client, endpoint: &PodEndpoint<'_>) -> Result<String, String> {
    use http_body_util::BodyExt;
    let exchange = async {
        let request = Request::get(endpoint.uri()).body(kube::client::Body::empty()).map_err(|e| e.to_string())?;
        let response = client.send(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = match http_body_util::Limited::new(response.into_body(), SCRAPE_LIMIT).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return Err(format!(
                    "the answer (status {}) is larger than {} MiB: not judged on a part of it",
                    status.as_u16(),
                    SCRAPE_LIMIT >> 20
                ));
            }
            Err(e) => return Err(format!("reading the answer (status {}): {e}", status.as_u16())),
        };
        if !status.is_success() {
            // The API server's own refusal is a `Status`; a proxied service's is its body.
            let message = serde_json::from_slice::<kube::core::Status>(&body)
                .ok()
                .map(|s| s.message)
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
            return Err(format!("HTTP {}: {}", status.as_u16(), message.chars().take(512).collect::<String>()));
        }
        String::from_utf8(body.to_vec()).map_err(|e| format!("the answer is not UTF-8 text: {e}"))
    };
    match tokio::time::timeout(SCRAPE_TIMEOUT, exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no complete answer within {}s", SCRAPE_TIMEOUT.as_secs())),
    }
}

/// The metrics and status endpoints worth keeping for a pod, by the containers it runs:
/// Istio's sidecar (merged Prometheus stats on 15020), Linkerd's proxy (metrics on 4191), Kong
/// (its status listener on 8100: `/status` and the prometheus plugin's `/metrics`).
pub fn evidence_endpoints(containers: &[String]) -> Vec<(u16, &'static str, &'static str)> {
    let mut out = Vec::new();
    if containers.iter().any(|c| c == "istio-proxy") {
        out.push((15020, "stats/prometheus", "istio-proxy-metrics.txt"));
    }
    if containers.iter().any(|c| c == "linkerd-proxy") {
        out.push((4191, "metrics", "linkerd-proxy-metrics.txt"));
    }
    if containers.iter().any(|c| c == "proxy") {
        // The kong chart names Kong's container `proxy`; its status listener is on 8100 by default
        // (Kong/charts charts/kong/values.yaml `status.http.containerPort`).
        out.push((8100, "status", "kong-status.json"));
        out.push((8100, "metrics", "kong-metrics.txt"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An API server that takes the proxied request and never answers (a stalled collector or
    /// proxy): the GET gives up at its deadline, saying which request it was.
    #[tokio::test(start_paused = true)]
    async fn a_relayed_get_that_never_answers_ends_at_its_deadline() {
        let (service, mut handle) =
            tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
        // Take each request and keep it unanswered for as long as the test runs.
        let held = tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Some(request) = handle.next_request().await {
                pending.push(request);
            }
        });
        let client = kube::Client::new(service, "default");
        let uri = "/api/v1/namespaces/tracing/services/jaeger:16686/proxy/api/traces/abc";
        let started = tokio::time::Instant::now();
        // Bounded here too, so a GET without its own deadline fails this test instead of hanging it.
        let asked = tokio::time::timeout(RELAYED_TIMEOUT * 3, get_relayed(&client, uri)).await;
        let err = asked.expect("the GET ends on its own").unwrap_err();
        assert_eq!(started.elapsed(), RELAYED_TIMEOUT);
        assert_eq!(
            err,
            format!("GET {uri}: no complete answer within 20s (the API server holds proxied requests open)")
        );
        held.abort();
    }

    /// A metrics endpoint (through a stand-in API server on loopback) answering an endless
    /// body: once read whole by `request_text`, now read to [`SCRAPE_LIMIT`] and reported as an
    /// error, never judged on the part that came; a refusal carries the API server's message.
    #[tokio::test]
    async fn an_endless_scrape_is_an_error_at_the_limit() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = written.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut head = vec![0u8; 8192];
                    let n = stream.read(&mut head).await.unwrap_or(0);
                    if String::from_utf8_lossy(&head[..n]).contains("/proxy/missing") {
                        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"x\" not found","code":404}"#;
                        let answer = format!(
                            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                        return;
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n")
                        .await;
                    let block = b"kong_http_requests_total{code=\"200\"} 1\n".repeat(1024);
                    while stream.write_all(&block).await.is_ok() {
                        counter.fetch_add(block.len(), std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = kube::Client::try_from(crate::session::with_deadlines(config)).unwrap();
        let started = std::time::Instant::now();
        let endpoint = PodEndpoint { namespace: "kong", pod: "kong-gateway-7d9", port: 8100, path: "metrics" };
        let err = get(&client, &endpoint).await.unwrap_err();
        assert_eq!(err, "the answer (status 200) is larger than 16 MiB: not judged on a part of it");
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
        let total = written.load(std::sync::atomic::Ordering::SeqCst);
        assert!(total < 64 << 20, "read far past the limit: {total} bytes");
        let missing = PodEndpoint { path: "missing", ..endpoint };
        assert_eq!(get(&client, &missing).await.unwrap_err(), "HTTP 404: pods \"x\" not found");
    }

    #[test]
    fn endpoints_follow_the_pod_proxy_path() {
        let e = PodEndpoint { namespace: "kong", pod: "kong-gateway-7d9", port: 8100, path: "/metrics" };
        assert_eq!(e.uri(), "/api/v1/namespaces/kong/pods/kong-gateway-7d9:8100/proxy/metrics");
        let names = |cs: &[&str]| {
            evidence_endpoints(&cs.iter().map(|c| c.to_string()).collect::<Vec<_>>())
                .into_iter()
                .map(|(_, _, f)| f)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&["echo", "istio-proxy"]), ["istio-proxy-metrics.txt"]);
        assert_eq!(
            names(&["linkerd-proxy", "proxy"]),
            ["linkerd-proxy-metrics.txt", "kong-status.json", "kong-metrics.txt"]
        );
        assert!(names(&["echo"]).is_empty());
    }
}
