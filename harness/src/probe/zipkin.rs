//! Traces through the Zipkin v2 API: the harness's own trace id on the request, then the
//! collector is asked for that trace and its spans are arranged as a tree.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A trace id and root span id the harness makes up, with the headers that carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
}

impl TraceContext {
    /// From 24 random-enough bytes (the caller chooses the source; tests pass fixed ones).
    pub fn from_bytes(bytes: [u8; 24]) -> Self {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut trace = hex(&bytes[..16]);
        let mut span = hex(&bytes[16..]);
        // All-zero ids are invalid in both B3 and W3C.
        if trace.bytes().all(|c| c == b'0') {
            trace.replace_range(31.., "1");
        }
        if span.bytes().all(|c| c == b'0') {
            span.replace_range(15.., "1");
        }
        TraceContext { trace_id: trace, span_id: span }
    }

    /// A fresh context from the clock and a counter; unique per process run, which is all a test needs.
    pub fn fresh() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 24];
        bytes[..16].copy_from_slice(&now.to_be_bytes());
        bytes[16..].copy_from_slice(&(n ^ (now as u64).rotate_left(17)).to_be_bytes());
        TraceContext::from_bytes(bytes)
    }

    /// B3 multi-header and W3C `traceparent`, both sampled: Istio's zipkin provider reads B3,
    /// Linkerd prefers W3C (see research F7).
    pub fn headers(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("x-b3-traceid".to_owned(), self.trace_id.clone()),
            ("x-b3-spanid".to_owned(), self.span_id.clone()),
            ("x-b3-sampled".to_owned(), "1".to_owned()),
            ("traceparent".to_owned(), format!("00-{}-{}-01", self.trace_id, self.span_id)),
        ])
    }
}

/// A Zipkin v2 span, as much of it as the checks use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub trace_id: String,
    pub id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub local_endpoint: Option<Endpoint>,
    #[serde(default)]
    pub timestamp: Option<u64>,
    #[serde(default)]
    pub duration: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default)]
    pub service_name: Option<String>,
}

impl Span {
    pub fn service(&self) -> &str {
        self.local_endpoint.as_ref().and_then(|e| e.service_name.as_deref()).unwrap_or("<unknown>")
    }
}

/// A trace's spans arranged by parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpanTree {
    pub roots: Vec<SpanNode>,
}

/// One node, normalised for snapshots: ids and timings dropped, children sorted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SpanNode {
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<SpanNode>,
}

impl SpanTree {
    /// Arrange spans; a span whose parent is absent (e.g. the harness's own root id) is a root.
    /// Zipkin may return a shared span twice (client and server halves with one id): both are kept.
    pub fn build(spans: &[Span]) -> Self {
        let ids: BTreeSet<&str> = spans.iter().map(|s| s.id.as_str()).collect();
        let mut children: BTreeMap<&str, Vec<&Span>> = BTreeMap::new();
        let mut roots = Vec::new();
        for span in spans {
            match span.parent_id.as_deref() {
                Some(parent) if ids.contains(parent) && parent != span.id => {
                    children.entry(parent).or_default().push(span)
                }
                _ => roots.push(span),
            }
        }
        fn node(span: &Span, children: &BTreeMap<&str, Vec<&Span>>, depth: usize) -> SpanNode {
            let mut kids: Vec<SpanNode> = if depth > 64 {
                Vec::new()
            } else {
                children.get(span.id.as_str()).into_iter().flatten().map(|c| node(c, children, depth + 1)).collect()
            };
            kids.sort();
            SpanNode {
                service: span.service().to_owned(),
                kind: span.kind.clone(),
                name: span.name.clone(),
                children: kids,
            }
        }
        let mut roots: Vec<SpanNode> = roots.into_iter().map(|r| node(r, &children, 0)).collect();
        roots.sort();
        SpanTree { roots }
    }

    pub fn services(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.walk(&mut |parent, n| {
            out.insert(n.service.clone());
            let _ = parent;
        });
        out
    }

    /// Parent -> child service pairs where the services differ.
    pub fn edges(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        self.walk(&mut |parent, n| {
            if let Some(p) = parent
                && p.service != n.service
            {
                out.insert((p.service.clone(), n.service.clone()));
            }
        });
        out
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(Option<&'a SpanNode>, &'a SpanNode)) {
        fn go<'a>(
            parent: Option<&'a SpanNode>,
            n: &'a SpanNode,
            f: &mut impl FnMut(Option<&'a SpanNode>, &'a SpanNode),
        ) {
            f(parent, n);
            for c in &n.children {
                go(Some(n), c, f);
            }
        }
        for r in &self.roots {
            go(None, r, f);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ZipkinError {
    #[error("the collector did not answer: {0}")]
    Unreachable(String),
    #[error("the collector answered {status} for trace {trace_id}")]
    Status { status: u16, trace_id: String },
    #[error("the collector's answer is not Zipkin v2 JSON: {0}")]
    Decode(String),
}

/// A Zipkin v2 API client (the collector's `/api/v2/trace/{id}`).
#[derive(Debug, Clone)]
pub struct ZipkinClient {
    client: reqwest::Client,
    base: String,
}

impl ZipkinClient {
    pub fn new(base: &str, timeout: Duration) -> Result<Self, ZipkinError> {
        crate::tls::install_ring_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| ZipkinError::Unreachable(e.to_string()))?;
        Ok(ZipkinClient { client, base: base.trim_end_matches('/').to_owned() })
    }

    /// The spans of a trace; an unknown trace (404: not collected yet) is an empty list.
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<Span>, ZipkinError> {
        let url = format!("{}/api/v2/trace/{trace_id}", self.base);
        let response = self.client.get(&url).send().await.map_err(|e| ZipkinError::Unreachable(e.to_string()))?;
        match response.status().as_u16() {
            404 => Ok(Vec::new()),
            200 => {
                let body = response.bytes().await.map_err(|e| ZipkinError::Unreachable(e.to_string()))?;
                serde_json::from_slice(&body).map_err(|e| ZipkinError::Decode(e.to_string()))
            }
            status => Err(ZipkinError::Status { status, trace_id: trace_id.to_owned() }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A trace in the shape Zipkin v2 returns: Kong's span (a child of the harness's root id, which
    /// the collector never saw), the Istio sidecars' client and server spans, ids shared between
    /// halves as Envoy does.
    pub(crate) const TRACE: &str = r#"[
      {"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","parentId":"0020000000000001","name":"get /echo","kind":"SERVER","timestamp":1700000000000000,"duration":5123,"localEndpoint":{"serviceName":"kong","ipv4":"10.244.0.12"},"tags":{"http.method":"GET"}},
      {"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"b7ad6b7169203331","parentId":"a2fb4a1d1a96d312","name":"echo.shop.svc.cluster.local:80/*","kind":"CLIENT","timestamp":1700000000001000,"duration":3000,"localEndpoint":{"serviceName":"kong-gateway.kong","ipv4":"10.244.0.12"}},
      {"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"c1d2e3f4a5b6c7d8","parentId":"b7ad6b7169203331","name":"echo.shop.svc.cluster.local:80/*","kind":"SERVER","timestamp":1700000000001500,"duration":2000,"localEndpoint":{"serviceName":"echo.shop","ipv4":"10.244.0.20"}}
    ]"#;

    fn spans() -> Vec<Span> {
        serde_json::from_str(TRACE).unwrap()
    }

    #[test]
    fn builds_the_tree_services_and_edges() {
        let tree = SpanTree::build(&spans());
        assert_eq!(tree.roots.len(), 1);
        assert_eq!(tree.roots[0].service, "kong");
        let services: Vec<String> = tree.services().into_iter().collect();
        assert_eq!(services, ["echo.shop", "kong", "kong-gateway.kong"]);
        let edges: Vec<(String, String)> = tree.edges().into_iter().collect();
        assert_eq!(
            edges,
            [
                ("kong".to_owned(), "kong-gateway.kong".to_owned()),
                ("kong-gateway.kong".to_owned(), "echo.shop".to_owned())
            ]
        );
    }

    #[test]
    fn cycles_and_self_parents_do_not_hang() {
        let mut s = spans();
        s[0].parent_id = Some(s[2].id.clone());
        s[1].parent_id = Some(s[1].id.clone());
        let tree = SpanTree::build(&s);
        // The self-parented span becomes a root; the cycle through the others is cut at depth 64.
        assert!(!tree.roots.is_empty());
    }

    #[test]
    fn trace_headers_carry_one_id_in_both_formats() {
        let ctx = TraceContext::from_bytes([0xab; 24]);
        let h = ctx.headers();
        assert_eq!(h["x-b3-traceid"], "abababababababababababababababab");
        assert_eq!(h["traceparent"], "00-abababababababababababababababab-abababababababab-01");
        assert_eq!(h["x-b3-sampled"], "1");
        assert_eq!(TraceContext::from_bytes([0; 24]).trace_id, "00000000000000000000000000000001");
        assert_ne!(TraceContext::fresh(), TraceContext::fresh());
    }
}

#[cfg(test)]
mod server_tests {
    use super::*;
    use crate::check::converge::{Attempt, eventually};
    use crate::testing::{Reply, serve};

    #[tokio::test]
    async fn polls_until_the_collector_has_the_trace() {
        // The collector knows nothing for two polls (404, then an empty list), then the trace.
        let addr = serve(|h| {
            assert_eq!(h.path, "/api/v2/trace/463ac35c9f6413ad48485a3953bb6124");
            match h.index {
                0 => Reply::json(404, String::new()),
                1 => Reply::json(200, "[]".into()),
                _ => Reply::json(200, tests::TRACE.into()),
            }
        })
        .await;
        let client = ZipkinClient::new(&format!("http://{addr}/"), Duration::from_secs(5)).unwrap();
        let tree =
            eventually(Duration::from_secs(10), Duration::from_millis(10), "spans from kong and echo.shop", || {
                let client = client.clone();
                async move {
                    match client.trace("463ac35c9f6413ad48485a3953bb6124").await {
                        Ok(spans) => {
                            let tree = SpanTree::build(&spans);
                            if tree.services().contains("echo.shop") {
                                Attempt::Pass(tree)
                            } else {
                                Attempt::Fail(format!("{:?}", tree.services()))
                            }
                        }
                        Err(e) => Attempt::Fail(e.to_string()),
                    }
                }
            })
            .await
            .unwrap();
        insta::assert_yaml_snapshot!("trace_tree", tree);
    }

    #[tokio::test]
    async fn collector_errors_are_reported() {
        let addr = serve(|_| Reply::json(500, "oops".into())).await;
        let client = ZipkinClient::new(&format!("http://{addr}"), Duration::from_secs(5)).unwrap();
        assert_eq!(client.trace("ab").await.unwrap_err().to_string(), "the collector answered 500 for trace ab");
        let garbage = serve(|_| Reply::json(200, "{not json".into())).await;
        let client = ZipkinClient::new(&format!("http://{garbage}"), Duration::from_secs(5)).unwrap();
        assert!(matches!(client.trace("ab").await, Err(ZipkinError::Decode(_))));
    }
}
