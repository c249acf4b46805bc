//! The from-pod probe against a real curl: [`command`]'s exact argv (the `sh -c` script and
//! curl's arguments, only the URL pointing at 127.0.0.1 instead of a Service) is run by the local
//! `sh` and Debian's `curl`, against a loopback server answering as the backends and proxies of a
//! live run do; stdout and stderr, as the exec delivers them, go through [`parse_output`].
//!
//! curl must be on PATH (`apt-get install -y curl`). libtest cannot mark a test ignored at run
//! time, and a `cfg`-gated `#[ignore]` would need a build script probing for curl, so: without
//! curl each test writes `skipped: curl not found` straight to the terminal (past libtest's
//! capture) and returns, reported as `ok` although nothing ran; with `CI=true` it fails instead,
//! so CI never passes without having run curl.
//!
//! The client image of live runs is busybox-based (curlimages/curl, curl 8.x, ash); here the
//! shell is the host's `sh` and curl is whichever version the host has.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{command, parse_output};
use crate::check::denial::{Denial, Path, classify};
use crate::model::{Mesh, Method};
use crate::probe::observation::{Outcome, PodVersions, Response, TransportKind};

const POD: &str = "echo-v1-6d8f9c7b5-x2x9q";
const NAMESPACE: &str = "shop";

fn versions() -> PodVersions {
    PodVersions([(POD.to_owned(), "v1".to_owned())].into())
}

/// Whether curl can run here; see the module's documentation for what happens when it cannot.
fn curl_available(test: &str) -> bool {
    let why = match std::process::Command::new("curl").arg("--version").output() {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!("`curl --version` exited with {}", out.status),
        Err(e) => format!("curl not found: {e}"),
    };
    assert!(!crate::in_ci(), "{test}: {why}; under CI=true the real-curl tests must run (apt-get install -y curl)");
    // Straight to stderr, not `eprintln!`: libtest captures the macros of passing tests.
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}; reported as ok, nothing ran");
    false
}

/// What an exec of `argv` in the client pod delivers: stdout's bytes, stderr as text (`send`
/// reads it with `read_to_string`) and the shell's exit code, which `send` never reads.
struct Exec {
    stdout: Vec<u8>,
    stderr: String,
    code: Option<i32>,
}

async fn exec(argv: &[String]) -> Exec {
    // The pod's environment, not the developer's: no proxy variables, no ~/.curlrc.
    let home = tempfile::tempdir().expect("a temporary HOME");
    let out = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("sh runs");
    Exec {
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).expect("curl's stderr is text"),
        code: out.status.code(),
    }
}

/// `method` with `headers` from the client pod to `path` on `addr`, as the probe sends it.
async fn probe(method: Method, addr: SocketAddr, path: &str, headers: &[(&str, &str)], timeout: Duration) -> Outcome {
    let headers: BTreeMap<String, String> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let argv = command(method, &format!("http://{addr}{path}"), &headers, timeout);
    let out = exec(&argv).await;
    // The script always ends with `rm -rf`: curl's exit code travels in the frame, never here.
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    parse_output(&out.stdout, &out.stderr, &versions())
}

fn response(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Response(r) => *r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn transport(outcome: Outcome) -> (TransportKind, String) {
    match outcome {
        Outcome::Transport { kind, message } => (kind, message),
        other => panic!("expected a transport failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The loopback server.

/// The request head as the server read it; header names as sent, in order.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

/// How the server answers each connection.
#[derive(Clone)]
enum Script {
    /// echo-basic behind Go's net/http (kubernetes-sigs/gateway-api
    /// conformance/echo-basic/echo-basic.go, `echoHandler`).
    EchoBasic,
    /// These bytes, then the connection stays open as a keep-alive proxy's does.
    Raw(&'static str),
    /// These bytes (possibly none), then close with RST (SO_LINGER 0).
    ResetAfter(&'static str),
    /// Read the request, never answer.
    Hang,
}

async fn serve(script: Script) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, script.clone()));
        }
    });
    addr
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    Some(Request { method, target, headers })
}

async fn answer(mut stream: TcpStream, script: Script) {
    let Some(request) = read_request(&mut stream).await else { return };
    match script {
        Script::EchoBasic => {
            let _ = stream.write_all(&go_echo_response(&request)).await;
        }
        Script::Raw(bytes) => {
            let _ = stream.write_all(bytes.as_bytes()).await;
        }
        Script::ResetAfter(bytes) => {
            let _ = stream.write_all(bytes.as_bytes()).await;
            // Let curl read what was sent before the RST discards the connection.
            tokio::time::sleep(Duration::from_millis(100)).await;
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            return;
        }
        Script::Hang => {}
    }
    // Keep-alive: hold the connection until the client closes it (or the test ends).
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// echo-basic's `RequestAssertions` with its `Context` promoted (Go ignores the `inline`
/// option: the embedded struct's fields are flattened); `tls` is nil on plain HTTP and omitted.
#[derive(Serialize)]
struct RequestAssertions {
    path: String,
    host: String,
    method: String,
    proto: String,
    headers: BTreeMap<String, Vec<String>>,
    namespace: String,
    ingress: String,
    service: String,
    pod: String,
    sni: String,
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for token names: `x-evil` -> `X-Evil`.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

/// The bytes echo-basic's answer to `request` has on the wire: `json.MarshalIndent(.., "", " ")`
/// (map keys sorted, `<`, `>`, `&` escaped as `\u003c`...), `Content-Type` and
/// `X-Content-Type-Options` set by the handler, and net/http's framing: `Content-Length` when
/// the body fits its 2048-byte buffer, one chunk of `Transfer-Encoding: chunked` otherwise; a
/// HEAD answer keeps the `Content-Length` of the body it does not send.
fn go_echo_response(request: &Request) -> Vec<u8> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut host = String::new();
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("host") {
            host = value.clone(); // Go moves it to `r.Host`.
        } else {
            headers.entry(canonical(name)).or_default().push(value.clone());
        }
    }
    let assertions = RequestAssertions {
        path: request.target.clone(),
        host,
        method: request.method.clone(),
        proto: "HTTP/1.1".into(),
        headers,
        namespace: NAMESPACE.into(),
        ingress: String::new(),
        service: String::new(),
        pod: POD.into(),
        sni: String::new(),
    };
    let mut json = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    assertions.serialize(&mut serde_json::Serializer::with_formatter(&mut json, formatter)).expect("JSON");
    let json = String::from_utf8(json)
        .expect("JSON is UTF-8")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let date = "Date: Mon, 02 Jun 2025 10:00:00 GMT\r\n";
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n";
    let out = if request.method == "HEAD" {
        format!("{head}{date}Content-Length: {}\r\n\r\n", json.len())
    } else if json.len() <= 2048 {
        format!("{head}{date}Content-Length: {}\r\n\r\n{json}", json.len())
    } else {
        format!("{head}Transfer-Encoding: chunked\r\n{date}\r\n{:x}\r\n{json}\r\n0\r\n\r\n", json.len())
    };
    out.into_bytes()
}

/// Envoy's RBAC filter denying a request (envoy source/extensions/filters/http/rbac/rbac_filter.cc:
/// local reply 403 "RBAC: access denied"), as an Istio sidecar writes it.
const ENVOY_RBAC_403: &str = "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n\
     date: Mon, 02 Jun 2025 10:00:00 GMT\r\nserver: envoy\r\n\r\nRBAC: access denied";

/// linkerd2-proxy's inbound policy denial (linkerd/app/core/src/errors/respond.rs): an empty 403.
const LINKERD_403: &str = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\ndate: Mon, 02 Jun 2025 10:00:00 GMT\r\n\r\n";

const QUICK: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// The tests.

/// (a) echo-basic's JSON, framed by Content-Length: the status, the response headers and the
/// decoded report of what the backend received, including header values with shell and JSON
/// metacharacters, arrive intact; the answer is attributed to its pod's version.
#[tokio::test]
async fn echo_basic_answers_decode_through_real_curl() {
    if !curl_available("echo_basic_answers_decode_through_real_curl") {
        return;
    }
    let addr = serve(Script::EchoBasic).await;
    let evil = "$(touch /tmp/pwned); `id` & <b>\"q\"</b>";
    let r = response(
        probe(Method::Get, addr, "/hello?x=1", &[("x-evil", evil), ("x-kong-request-id", "5f1c2b3a")], QUICK).await,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("content-length").map(|n| n.parse::<usize>().is_ok()), Some(true));
    assert_eq!(r.version.as_deref(), Some("v1"));
    assert_eq!(r.body, None, "an echo body is decoded, not kept");
    let echo = r.echo.expect("echo-basic's JSON decoded");
    assert_eq!((echo.method.as_str(), echo.path.as_str(), echo.proto.as_str()), ("GET", "/hello?x=1", "HTTP/1.1"));
    assert_eq!(echo.host, addr.to_string());
    assert_eq!((echo.namespace.as_str(), echo.pod.as_str()), (NAMESPACE, POD));
    assert_eq!(echo.header("x-evil"), Some(evil));
    assert_eq!(echo.header("x-kong-request-id"), Some("5f1c2b3a"));
    assert!(echo.header("user-agent").is_some_and(|ua| ua.starts_with("curl/")), "{:?}", echo.headers);
    assert!(!std::path::Path::new("/tmp/pwned").exists());
}

/// (a) again, as echo-basic answers a large request: chunked, after an interim `100 Continue`
/// head, to a POST. curl decodes the chunks into the body file and `-D` holds both heads; the
/// final head's headers are the ones kept.
#[tokio::test]
async fn chunked_echo_after_an_interim_head() {
    if !curl_available("chunked_echo_after_an_interim_head") {
        return;
    }
    // A 100 Continue ahead of echo-basic's answer: a proxy may send one unasked.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else { return };
                let mut out = b"HTTP/1.1 100 Continue\r\nx-interim: yes\r\n\r\n".to_vec();
                out.extend(go_echo_response(&request));
                let _ = stream.write_all(&out).await;
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    let big = "a".repeat(3000);
    let r = response(probe(Method::Post, addr, "/big", &[("x-big", &big)], QUICK).await);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("x-interim"), None, "the interim head's headers are not the answer's");
    let echo = r.echo.expect("the chunked body decoded");
    assert_eq!((echo.method.as_str(), echo.header("x-big")), ("POST", Some(big.as_str())));
    assert_eq!(r.version.as_deref(), Some("v1"));
}

/// HEAD from a pod: echo-basic (Go) answers with the `Content-Length` of the body it does not
/// send and keeps the connection. The probe must not wait for that body.
#[tokio::test]
async fn head_requests_do_not_wait_for_a_body() {
    if !curl_available("head_requests_do_not_wait_for_a_body") {
        return;
    }
    let addr = serve(Script::EchoBasic).await;
    let started = Instant::now();
    let r = response(probe(Method::Head, addr, "/hello", &[], Duration::from_secs(2)).await);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("content-length").is_some_and(|n| n != "0"));
    assert_eq!((r.body, r.echo), (None, None));
}

/// (b) Envoy's RBAC denial: 403 with its body kept, recognised as Istio's denial from a pod.
#[tokio::test]
async fn envoy_rbac_denial_keeps_its_body() {
    if !curl_available("envoy_rbac_denial_keeps_its_body") {
        return;
    }
    let addr = serve(Script::Raw(ENVOY_RBAC_403)).await;
    let outcome = probe(Method::Get, addr, "/", &[], QUICK).await;
    assert_eq!(classify(Mesh::Istio, Path::FromPod, &outcome), Ok(Denial::IstioRbac));
    let r = response(outcome);
    assert_eq!(r.status, 403);
    assert_eq!(r.body.as_deref(), Some("RBAC: access denied"));
    assert_eq!((r.header("server"), r.header("content-type")), (Some("envoy"), Some("text/plain")));
    assert!(r.echo.is_none());
}

/// (c) Linkerd's denial: 403 with `content-length: 0` and no body, recognised as Linkerd's.
#[tokio::test]
async fn empty_403_stays_empty() {
    if !curl_available("empty_403_stays_empty") {
        return;
    }
    let addr = serve(Script::Raw(LINKERD_403)).await;
    let outcome = probe(Method::Get, addr, "/", &[], QUICK).await;
    assert_eq!(classify(Mesh::Linkerd, Path::FromPod, &outcome), Ok(Denial::LinkerdPolicy));
    let r = response(outcome);
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!((r.status, r.body, r.echo), (403, None, None));
}

/// (d) A reset before any answer (curl exit 56), a close without a byte (exit 52) and a reset
/// after the status line but before the head's end (exit 56, `%{http_code}` already 200) are
/// resets, the denial form of a sidecar under STRICT mTLS; a reset after a complete head, in the
/// body, is not.
#[tokio::test]
async fn resets_are_resets_until_a_head_is_complete() {
    if !curl_available("resets_are_resets_until_a_head_is_complete") {
        return;
    }
    let cases = [
        (Script::ResetAfter(""), "(56)", TransportKind::Reset),
        (Script::ResetAfter("HTTP/1.1 200 OK\r\nContent-Ty"), "(56)", TransportKind::Reset),
        (Script::ResetAfter("HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nabc"), "(56)", TransportKind::Other),
    ];
    let mut runs = Vec::new();
    for (script, code, kind) in cases {
        let addr = serve(script).await;
        runs.push(async move { (transport(probe(Method::Get, addr, "/", &[], QUICK).await), code, kind) });
    }
    // A close without a byte: accept, read, drop.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let empty = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = read_request(&mut stream).await;
        }
    });
    let empty_reply = transport(probe(Method::Get, empty, "/", &[], QUICK).await);
    for ((seen, message), code, kind) in futures::future::join_all(runs).await {
        assert_eq!(seen, kind, "{message}");
        assert!(message.contains(code), "{message}");
    }
    assert_eq!(empty_reply.0, TransportKind::Reset, "{}", empty_reply.1);
    assert!(empty_reply.1.contains("(52)"), "{}", empty_reply.1);
    let reset = Outcome::Transport { kind: empty_reply.0, message: empty_reply.1 };
    assert_eq!(classify(Mesh::Istio, Path::FromPod, &reset), Ok(Denial::ConnectionReset));
}

/// (e) Nothing listening: curl exit 7, refused, which is no mesh's denial.
#[tokio::test]
async fn nothing_listening_is_refused() {
    if !curl_available("nothing_listening_is_refused") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let outcome = probe(Method::Get, port, "/", &[], QUICK).await;
    assert!(classify(Mesh::Istio, Path::FromPod, &outcome).is_err());
    let (kind, message) = transport(outcome);
    assert_eq!(kind, TransportKind::Refused, "{message}");
    assert!(message.starts_with("curl exit 7: curl: (7)"), "{message}");
}

/// (f) A server that accepts and never answers: curl's `--max-time` as the probe sets it (here
/// its shortest, 1 s) ends it with exit 28, a timeout, well within the exec's own deadline.
#[tokio::test]
async fn silence_times_out_at_max_time() {
    if !curl_available("silence_times_out_at_max_time") {
        return;
    }
    let addr = serve(Script::Hang).await;
    let started = Instant::now();
    let (kind, message) = transport(probe(Method::Get, addr, "/", &[], Duration::from_secs(1)).await);
    let took = started.elapsed();
    assert_eq!(kind, TransportKind::Timeout, "{message}");
    assert!(message.starts_with("curl exit 28: curl: (28)"), "{message}");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(3), "took {took:?}");
}
