//! HTTP from the host through Kong's proxy, with the scenario's Host header.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::observation::{BODY_LIMIT, Observation, Outcome, PodVersions, Response, TransportKind};
use crate::model::{Method, Request};

/// Probe settings.
#[derive(Debug, Clone)]
pub struct HttpProbeConfig {
    /// Kong's proxy as reachable from the host, e.g. `http://127.0.0.1:30080`.
    pub endpoint: String,
    /// Per-request deadline.
    pub timeout: Duration,
    /// Open a new connection per request: meshes balance connections, not requests, so a
    /// split measured over one kept-alive connection can be meaningless.
    pub keep_alive: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Sends scenario requests and turns the answers into observations.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    client: reqwest::Client,
    config: HttpProbeConfig,
}

impl HttpProbe {
    pub fn new(config: HttpProbeConfig) -> Result<Self, ProbeError> {
        crate::tls::install_ring_provider();
        let mut builder =
            reqwest::Client::builder().timeout(config.timeout).no_proxy().redirect(reqwest::redirect::Policy::none());
        if !config.keep_alive {
            builder = builder.pool_max_idle_per_host(0);
        }
        let client = builder.build().map_err(|e| ProbeError::Client(e.to_string()))?;
        Ok(HttpProbe { client, config })
    }

    /// Send `request`, using `default_host` when the request names none.
    pub async fn send(
        &self,
        request: &Request,
        default_host: &str,
        extra: &BTreeMap<String, String>,
        versions: &PodVersions,
    ) -> Observation {
        let started = Instant::now();
        let url = format!("{}{}", self.config.endpoint.trim_end_matches('/'), request.path);
        let mut builder = self
            .client
            .request(method(request.method), &url)
            .header("host", request.host.as_deref().unwrap_or(default_host));
        for (name, value) in request.headers.iter().chain(extra) {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let outcome = match builder.send().await {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (name, value) in response.headers() {
                    headers
                        .entry(name.as_str().to_owned())
                        .or_default()
                        .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
                }
                match read_at_most(&mut response, READ_LIMIT).await {
                    Ok(body) => {
                        Outcome::Response(Box::new(Response::from_wire(status, headers, &body, versions, BODY_LIMIT)))
                    }
                    Err(e) => transport(&e),
                }
            }
            Err(e) => transport(&e),
        };
        Observation { outcome, elapsed_ms: started.elapsed().as_millis() as u64 }
    }

    /// Send `count` copies of `request`, at most `concurrency` at a time; results in completion order.
    pub async fn send_many(
        &self,
        request: &Request,
        default_host: &str,
        versions: &PodVersions,
        count: usize,
        concurrency: usize,
    ) -> Vec<Observation> {
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..count {
            let (probe, request, host, versions, limit) =
                (self.clone(), request.clone(), default_host.to_owned(), versions.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                probe.send(&request, &host, &BTreeMap::new(), &versions).await
            });
        }
        let mut out = Vec::with_capacity(count);
        while let Some(joined) = tasks.join_next().await {
            // A probe task only fails by panicking; report it as an observation, not a crash.
            out.push(joined.unwrap_or_else(|e| Observation {
                outcome: Outcome::Transport { kind: TransportKind::Other, message: format!("probe task failed: {e}") },
                elapsed_ms: 0,
            }));
        }
        out
    }
}

/// The most of an answer's body a probe reads. An echo-basic answer is a JSON report of the
/// request (its headers included), a few KiB; 64 KiB decodes any of them, and of any other body
/// the observation keeps only [`BODY_LIMIT`] bytes. The rest is never read: the connection is
/// dropped, so a huge or endless answer costs at most this (plus one chunk) per request, also
/// when a split step sends many at once.
pub const READ_LIMIT: usize = 64 * 1024;

/// The body's first `limit` bytes, streamed chunk by chunk; reading stops there.
async fn read_at_most(response: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while body.len() < limit {
        let Some(chunk) = response.chunk().await? else { break };
        body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]);
    }
    Ok(body)
}

fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
        Method::Options => reqwest::Method::OPTIONS,
    }
}

fn transport(e: &reqwest::Error) -> Outcome {
    Outcome::Transport { kind: classify(e), message: chain(e) }
}

/// Name the failure from the error's causes: the io::Error kind where there is one.
pub fn classify(e: &reqwest::Error) -> TransportKind {
    if e.is_timeout() {
        return TransportKind::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return TransportKind::Refused,
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe => {
                    return TransportKind::Reset;
                }
                std::io::ErrorKind::TimedOut => return TransportKind::Timeout,
                _ => {}
            }
        }
        if err.downcast_ref::<rustls::Error>().is_some() {
            return TransportKind::Tls;
        }
        source = err.source();
    }
    let text = chain(e).to_ascii_lowercase();
    if text.contains("dns error") || text.contains("failed to lookup address") {
        TransportKind::Dns
    } else if text.contains("connection closed before message completed") || text.contains("incomplete message") {
        // The peer closed the connection mid-exchange: what an Istio sidecar does to plaintext under STRICT.
        TransportKind::Reset
    } else {
        TransportKind::Other
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::check::converge::{Attempt, converge};
    use crate::check::expect::evaluate;
    use crate::model::{BackendExpect, Expect, Mesh, OneOrMany};
    use crate::testing::{Reply, echo_body, serve};

    use crate::testing::{get, http_probe as probe};

    fn versions() -> PodVersions {
        PodVersions([("echo-v1-a".to_owned(), "v1".to_owned()), ("echo-v2-b".to_owned(), "v2".to_owned())].into())
    }

    #[tokio::test]
    async fn the_backend_sees_the_scenario_host_and_answers_map_to_versions() {
        let addr = serve(|h| Reply::json(200, echo_body(h, "echo-v2-b", "shop"))).await;
        let obs =
            probe(addr, Duration::from_secs(5)).send(&get("/echo/x"), "s.r1.test", &BTreeMap::new(), &versions()).await;
        let Outcome::Response(r) = &obs.outcome else { panic!("{obs:?}") };
        assert_eq!(r.status, 200);
        assert_eq!(r.version.as_deref(), Some("v2"));
        let echo = r.echo.as_ref().unwrap();
        assert_eq!(echo.host, "s.r1.test");
        assert_eq!(echo.path, "/echo/x");
    }

    #[tokio::test]
    async fn transport_failures_are_classified() {
        // A port nobody listens on: bind, note the port, close.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let kind = |obs: Observation| match obs.outcome {
            Outcome::Transport { kind, .. } => kind,
            other => panic!("{other:?}"),
        };
        let none = BTreeMap::new();
        assert_eq!(
            kind(probe(closed, Duration::from_secs(5)).send(&get("/"), "h", &none, &versions()).await),
            TransportKind::Refused
        );
        let reset = serve(|_| Reply::Reset).await;
        assert_eq!(
            kind(probe(reset, Duration::from_secs(5)).send(&get("/"), "h", &none, &versions()).await),
            TransportKind::Reset
        );
        let hang = serve(|_| Reply::Hang).await;
        assert_eq!(
            kind(probe(hang, Duration::from_millis(200)).send(&get("/"), "h", &none, &versions()).await),
            TransportKind::Timeout
        );
    }

    #[tokio::test]
    async fn a_flapping_backend_converges_only_after_consecutive_passes() {
        // 503, 200, 503, then 200 forever: three in a row first happen at requests 3, 4, 5.
        let addr = serve(|h| match h.index {
            0 | 2 => Reply::json(503, "{}".into()),
            _ => Reply::json(200, echo_body(h, "echo-v1-a", "shop")),
        })
        .await;
        let probe = probe(addr, Duration::from_secs(5));
        let expect = Expect {
            status: Some(OneOrMany::One(200)),
            backend: Some(BackendExpect { version: Some(OneOrMany::One("v1".into())), ..BackendExpect::default() }),
            ..Expect::default()
        };
        let attempts = Arc::new(AtomicUsize::new(0));
        let result = converge(3, Duration::from_secs(20), Duration::from_millis(10), "200 from v1", || {
            let (probe, expect, attempts) = (probe.clone(), expect.clone(), attempts.clone());
            async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                let obs = probe.send(&get("/"), "h", &BTreeMap::new(), &versions()).await;
                let verdict = evaluate(&expect, &obs, Mesh::None, crate::check::denial::Path::ThroughKong);
                if verdict.passed() { Attempt::Pass(obs) } else { Attempt::Fail(verdict) }
            }
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 6);
    }

    /// A Kong (or anything behind it) answering an endless body: once buffered whole (2.6 GB
    /// cost 5.2 GB), it is now read up to [`READ_LIMIT`] and dropped. The probe answers at once
    /// with the kept prefix (not a timeout after reading for its whole deadline), and the server
    /// could write no more than the socket buffers hold past that.
    #[tokio::test]
    async fn an_endless_answer_is_read_up_to_the_limit_and_dropped() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let counter = written.clone();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head).await;
            // No length: the body ends only when the connection does, i.e. never.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n").await;
            let block = vec![b'x'; 64 * 1024];
            while stream.write_all(&block).await.is_ok() {
                counter.fetch_add(block.len(), Ordering::SeqCst);
            }
        });
        let started = Instant::now();
        let obs = probe(addr, Duration::from_secs(30)).send(&get("/"), "h", &BTreeMap::new(), &versions()).await;
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        let Outcome::Response(r) = &obs.outcome else { panic!("{obs:?}") };
        assert_eq!((r.status, r.body.as_ref().map(String::len)), (200, Some(BODY_LIMIT)));
        // The connection was dropped: the server's writes fail soon after.
        tokio::time::timeout(Duration::from_secs(10), server).await.expect("the server stops writing").unwrap();
        let total = written.load(Ordering::SeqCst);
        assert!(total < 64 << 20, "the server wrote {total} bytes");
    }

    #[tokio::test]
    async fn many_requests_run_concurrently_and_all_come_back() {
        let addr = serve(|h| {
            Reply::json(200, echo_body(h, if h.index % 10 == 0 { "echo-v2-b" } else { "echo-v1-a" }, "shop"))
        })
        .await;
        let observations = probe(addr, Duration::from_secs(5)).send_many(&get("/"), "h", &versions(), 50, 8).await;
        assert_eq!(observations.len(), 50);
        let v2 = observations
            .iter()
            .filter(|o| matches!(&o.outcome, Outcome::Response(r) if r.version.as_deref() == Some("v2")))
            .count();
        assert_eq!(v2, 5);
    }
}
