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

/// GET `uri` (an API server proxy path) and return the proxied service's status and body,
/// whatever the status: the API server relays it as is, and its body is the service's, not a
/// Kubernetes `Status` (which kube's error handling would read it as, losing the status code
/// when the body is some other JSON). At most [`PROXIED_BODY_LIMIT`] bytes are read.
pub async fn get_relayed(client: &kube::Client, uri: &str) -> Result<(u16, String), String> {
    use http_body_util::BodyExt;
    let request = Request::get(uri).body(kube::client::Body::empty()).map_err(|e| e.to_string())?;
    let response = client.send(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), PROXIED_BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| format!("reading the answer (status {status}): {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
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
