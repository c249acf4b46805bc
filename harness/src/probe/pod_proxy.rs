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
/// kube client sets no read timeout (kube-client 5), and the API server treats `proxy`
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

/// GET the endpoint's text.
pub async fn get(client: &kube::Client, endpoint: &PodEndpoint<'_>) -> Result<String, kube::Error> {
    let request = Request::get(endpoint.uri()).body(Vec::new()).map_err(kube::Error::HttpError)?;
    client.request_text(request).await
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
