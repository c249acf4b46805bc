//! HTTP to a pod's port through the API server's pod proxy
//! (`/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}`): metrics and status endpoints of
//! Kong and of mesh proxies, without a port-forward. It reaches ports bound on the pod IP, not
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
