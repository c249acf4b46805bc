//! HTTP from inside the cluster: a client pod (meshed or not) runs curl, through kube-rs exec
//! over a websocket. What curl prints is turned into the same [`Observation`] as host probes.
//!
//! The exec transport itself needs an API server; it is exercised only by live runs. The
//! command line, the client pod manifest and the parsing of curl's output are tested here, the
//! last two also with a real curl against a loopback server (`curl_tests`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::observation::{Observation, Outcome, PodVersions, Response, TransportKind};
use crate::model::{Mesh, Method};

/// The container name of client pods.
pub const CONTAINER: &str = "curl";

/// The client pod for a scenario: `client-meshed` or `client-plain`, sleeping until exec'd into.
/// Mesh membership is set per pod so the scenario namespace's own injection setting does not decide it.
pub fn client_pod_manifest(
    mesh: Mesh,
    meshed: bool,
    namespace: &str,
    service_account: Option<&str>,
    image: &str,
) -> Value {
    let name = if meshed { "client-meshed" } else { "client-plain" };
    let mut labels = json!({"app": name, "app.kubernetes.io/managed-by": "kong-mesh-e2e"});
    let mut annotations = json!({});
    match mesh {
        // The injector's objectSelector matches this *label* (istio/istio
        // manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml).
        Mesh::Istio => labels["sidecar.istio.io/inject"] = json!(if meshed { "true" } else { "false" }),
        // Linkerd's injector reads pod (and namespace) annotations (linkerd2 pkg/inject/report.go).
        // Ambient: the pod's own label decides over its namespace's (istio.io
        // docs/ambient/usage/add-workloads).
        Mesh::IstioAmbient => labels[crate::model::AMBIENT_LABEL] = json!(if meshed { "ambient" } else { "none" }),
        Mesh::Linkerd => annotations["linkerd.io/inject"] = json!(if meshed { "enabled" } else { "disabled" }),
        Mesh::None => {}
    }
    let mut spec = json!({
        "terminationGracePeriodSeconds": 0,
        "containers": [{
            "name": CONTAINER,
            "image": image,
            "command": ["sleep", "infinity"],
            "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true, "runAsUser": 100},
        }],
    });
    if let Some(sa) = service_account {
        spec["serviceAccountName"] = json!(sa);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": spec,
    })
}

/// First line of what the client pod prints: curl's exit code, the final status and the byte
/// lengths of the response heads and the body that follow it.
const FRAME_MARKER: &str = "__harness_curl";

/// The argv run in the client pod. curl's arguments go through `"$@"`, never through the shell's
/// parser, so header values cannot inject commands.
///
/// curl writes the response heads (`-D`, every head including 1xx ones) and the body (`-o`) to
/// separate files and the final status with `-w '%{http_code}'`; the shell then prints one frame
/// line with their lengths followed by exactly those bytes. Body bytes can therefore never be
/// read as a status line (echo-basic's JSON carries `"proto": "HTTP/1.1"`). The client image is
/// busybox-based (curlimages/curl): `mktemp`, `wc`, `cat` are there.
pub fn command(method: Method, url: &str, headers: &BTreeMap<String, String>, timeout: Duration) -> Vec<String> {
    let script = format!(
        concat!(
            "d=$(mktemp -d) || exit 90; : >\"$d/h\"; : >\"$d/b\"; ",
            "curl -D \"$d/h\" -o \"$d/b\" -w '%{{http_code}}' \"$@\" >\"$d/s\"; rc=$?; ",
            "printf '{marker} rc=%s status=%s head=%s body=%s\\n' \"$rc\" \"$(cat \"$d/s\")\" ",
            "\"$(wc -c <\"$d/h\" | tr -d ' ')\" \"$(wc -c <\"$d/b\" | tr -d ' ')\"; ",
            "cat \"$d/h\" \"$d/b\"; rm -rf \"$d\""
        ),
        marker = FRAME_MARKER
    );
    let mut argv: Vec<String> = vec!["sh".into(), "-c".into(), script, "sh".into()];
    argv.extend(["-sS".into(), "--max-time".into(), timeout.as_secs().max(1).to_string()]);
    match method {
        // `-X HEAD` only renames the request: curl still waits for the body the answer's
        // `content-length` announces, which never comes, and fails with exit 28 or 18 (curl(1),
        // `-X`: "use -I"). `--head` is a real HEAD; `--no-include` undoes the `--include` that
        // `--head` implies, so the heads still go only to `-D`'s file and the body file stays empty.
        Method::Head => argv.extend(["--head".into(), "--no-include".into()]),
        method => argv.extend(["-X".into(), method.to_string()]),
    }
    for (name, value) in headers {
        argv.push("-H".into());
        argv.push(format!("{name}: {value}"));
    }
    argv.push("--".into());
    argv.push(url.into());
    argv
}

/// curl's exit codes for failures without a response (curl's libcurl-errors.3).
fn transport_kind(code: i32) -> TransportKind {
    match code {
        6 => TransportKind::Dns,
        7 => TransportKind::Refused,
        28 => TransportKind::Timeout,
        35 | 51 | 58 | 60 => TransportKind::Tls,
        // 52: "Empty reply from server" (closed without a byte); 56: "Recv failure: Connection
        // reset by peer". Both are what a server-side proxy that drops the request looks like.
        52 | 55 | 56 => TransportKind::Reset,
        _ => TransportKind::Other,
    }
}

/// The frame line's fields.
struct Frame {
    rc: i32,
    status: u16,
    head: usize,
    body: usize,
}

fn frame(line: &str) -> Option<Frame> {
    let mut fields = line.strip_prefix(FRAME_MARKER)?.split_whitespace();
    let mut field = |name: &str| fields.next()?.strip_prefix(name)?.strip_prefix('=').map(str::to_owned);
    let rc = field("rc")?.parse().ok()?;
    // curl prints 000 when no response arrived, nothing when it stopped before (bad option).
    let status = field("status")?.parse().unwrap_or(0);
    let head = field("head")?.parse().ok()?;
    let body = field("body")?.parse().ok()?;
    Some(Frame { rc, status, head, body })
}

/// Turn what the client pod printed (frame line, heads, body) into an outcome.
pub fn parse_output(stdout: &[u8], stderr: &str, versions: &PodVersions) -> Outcome {
    parse_bounded(stdout, true, stderr, versions)
}

/// The most of a client pod's stdout that is read: the frame line, every head and the body's
/// first [`super::http::READ_LIMIT`] bytes fit in it many times over; what follows is never
/// read (the exec is dropped), so a huge answer costs this much, not its size.
pub const OUTPUT_LIMIT: usize = 256 * 1024;
/// The most of its stderr kept (curl `-sS` prints one line); the rest is read and dropped, so
/// the exec's stdout never stalls behind a full stderr pipe.
const STDERR_LIMIT: usize = 16 * 1024;

/// [`parse_output`] of stdout that may have been cut at [`OUTPUT_LIMIT`] (`complete` false): the
/// frame and the heads must be there whole; the body is what was read of it.
fn parse_bounded(stdout: &[u8], complete: bool, stderr: &str, versions: &PodVersions) -> Outcome {
    let other = |message: String| Outcome::Transport { kind: TransportKind::Other, message };
    let Some(newline) = stdout.iter().position(|&b| b == b'\n') else {
        return other(format!("the client pod printed no frame: {}", stderr.trim()));
    };
    let Some(frame) = std::str::from_utf8(&stdout[..newline]).ok().and_then(frame) else {
        return other(format!("the client pod printed no frame: {}", stderr.trim()));
    };
    let rest = &stdout[newline + 1..];
    if frame.rc != 0 {
        // A connection that died after a response's head had arrived is no refusal of the
        // request: only a reset before a complete final head counts as one. curl reports the
        // status (`%{http_code}`) and writes `-D` line by line as soon as the status line is in,
        // so neither the status nor a non-empty head file says that an answer arrived: a reset in
        // the middle of the head shows `status=200 head=17`.
        let answered = final_head_complete(&rest[..frame.head.min(rest.len())]);
        let kind = match transport_kind(frame.rc) {
            TransportKind::Reset if answered => TransportKind::Other,
            kind => kind,
        };
        let when = if answered {
            format!(" after HTTP {} had begun", frame.status)
        } else if frame.status != 0 {
            format!(" in the middle of the head of HTTP {}", frame.status)
        } else {
            String::new()
        };
        return Outcome::Transport { kind, message: format!("curl exit {}{when}: {}", frame.rc, stderr.trim()) };
    }
    // The lengths come from outside: they must add up without overflow, to exactly what followed.
    let announced = frame.head.checked_add(frame.body);
    // Cut at the limit: more was announced than read, and the heads were read whole.
    let cut = !complete && frame.head <= rest.len() && announced.is_some_and(|a| a > rest.len());
    if !complete && !cut {
        return other(format!(
            "the client pod printed more than {} KiB before the body began (the frame announced head={} body={})",
            OUTPUT_LIMIT / 1024,
            frame.head,
            frame.body
        ));
    }
    if frame.status == 0 || (announced != Some(rest.len()) && !cut) {
        return other(format!(
            "curl exit 0 but the output is incomplete (status {}, {} bytes, the frame announced head={} body={})",
            frame.status,
            rest.len(),
            frame.head,
            frame.body
        ));
    }
    let (heads, body) = rest.split_at(frame.head);
    // As much of the body as a host probe reads, so both paths decode the same answers.
    let body = &body[..body.len().min(super::http::READ_LIMIT)];
    let headers = last_head_headers(&String::from_utf8_lossy(heads));
    Outcome::Response(Box::new(Response::from_wire(
        frame.status,
        headers,
        body,
        versions,
        super::observation::BODY_LIMIT,
    )))
}

/// Whether `-D` output ends with a complete final (non-1xx) head: its empty line was read.
fn final_head_complete(heads: &[u8]) -> bool {
    let normalised = String::from_utf8_lossy(heads).replace("\r\n", "\n");
    let Some(complete) = normalised.strip_suffix("\n\n") else { return false };
    let last = complete.rsplit("\n\n").next().unwrap_or("");
    let status = last.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse::<u16>().ok());
    matches!(status, Some(200..))
}

/// The header fields of the last response head in `-D` output: every interim (1xx) head comes
/// first, each ended by an empty line.
fn last_head_headers(heads: &str) -> BTreeMap<String, Vec<String>> {
    let normalised = heads.replace("\r\n", "\n");
    let last = normalised.split("\n\n").filter(|h| !h.trim().is_empty()).last().unwrap_or("");
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // The first line is the status line; the status itself comes from `-w`.
    for line in last.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.entry(k.trim().to_ascii_lowercase()).or_default().push(v.trim().to_owned());
        }
    }
    headers
}

#[derive(Debug, thiserror::Error)]
pub enum PodProbeError {
    #[error("cannot exec into {namespace}/{pod}: {source}")]
    Exec { namespace: String, pod: String, source: kube::Error },
}

/// Run one request from `pod` (a client pod made from [`client_pod_manifest`]).
pub async fn send(
    pods: &Api<Pod>,
    pod: &str,
    namespace: &str,
    argv: Vec<String>,
    deadline: Duration,
    versions: &PodVersions,
) -> Result<Observation, PodProbeError> {
    let started = Instant::now();
    let params = AttachParams::default().container(CONTAINER).stdin(false).stdout(true).stderr(true);
    let mut process = pods.exec(pod, argv, &params).await.map_err(|source| PodProbeError::Exec {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        source,
    })?;
    let (stdout, stderr) = (process.stdout(), process.stderr());
    let outcome = match tokio::time::timeout(deadline, read_output(stdout, stderr)).await {
        Ok((out, complete, err)) => parse_bounded(&out, complete, &err, versions),
        Err(_) => Outcome::Transport {
            kind: TransportKind::Timeout,
            message: format!("no answer from the client pod within {deadline:?}"),
        },
    };
    Ok(Observation { outcome, elapsed_ms: started.elapsed().as_millis() as u64 })
}

/// An exec's stdout (at most [`OUTPUT_LIMIT`] bytes, and whether it ended by itself within
/// that) and stderr (at most [`STDERR_LIMIT`] kept). Both streams are read at once: kube's exec
/// demultiplexes them through small pipes, so a full stderr pipe would stall stdout. Stdout over
/// its limit ends the reading at once: nothing more of the answer is waited for.
async fn read_output<O, E>(stdout: Option<O>, stderr: Option<E>) -> (Vec<u8>, bool, String)
where
    O: tokio::io::AsyncRead + Unpin,
    E: tokio::io::AsyncRead + Unpin,
{
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let complete = {
        let read_out = async {
            let Some(s) = stdout else { return true };
            let mut limited = s.take(OUTPUT_LIMIT as u64 + 1);
            let _ = limited.read_to_end(&mut out).await;
            out.len() <= OUTPUT_LIMIT
        };
        let read_err = async {
            let Some(mut s) = stderr else { return };
            let _ = (&mut s).take(STDERR_LIMIT as u64).read_to_end(&mut err).await;
            let _ = tokio::io::copy(&mut s, &mut tokio::io::sink()).await;
        };
        tokio::pin!(read_out, read_err);
        let mut err_done = false;
        loop {
            tokio::select! {
                complete = &mut read_out => {
                    if complete && !err_done {
                        (&mut read_err).await;
                    }
                    break complete;
                }
                () = &mut read_err, if !err_done => err_done = true,
            }
        }
    };
    if !complete {
        out.truncate(OUTPUT_LIMIT);
    }
    (out, complete, String::from_utf8_lossy(&err).into_owned())
}

#[cfg(test)]
mod curl_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn versions() -> PodVersions {
        PodVersions([("echo-v1-a".to_owned(), "v1".to_owned())].into())
    }

    #[test]
    fn header_values_stay_arguments_not_shell() {
        let headers = BTreeMap::from([("x-evil".to_owned(), "$(reboot); `id`".to_owned())]);
        let argv = command(Method::Post, "http://echo.ns.svc.cluster.local/", &headers, Duration::from_secs(5));
        assert_eq!(&argv[..2], ["sh", "-c"]);
        assert!(!argv[2].contains("reboot"));
        assert!(argv.contains(&"x-evil: $(reboot); `id`".to_owned()));
        assert_eq!(argv.iter().rev().take(2).collect::<Vec<_>>(), ["http://echo.ns.svc.cluster.local/", "--"]);
        assert!(argv.windows(2).any(|w| w == ["-X", "POST"]));
    }

    /// What the client pod prints for one answer, framed as [`command`]'s script frames it.
    fn framed(rc: i32, status: &str, heads: &str, body: &str) -> Vec<u8> {
        format!("{FRAME_MARKER} rc={rc} status={status} head={} body={}\n{heads}{body}", heads.len(), body.len())
            .into_bytes()
    }

    /// echo-basic's own JSON, whose `"proto": "HTTP/1.1"` once parsed as a status line.
    const ECHO: &str = crate::probe::observation::tests::ECHO_BODY;

    #[test]
    fn echo_bodies_are_never_read_as_status_lines() {
        let heads = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n";
        let versions = PodVersions([("echo-v1-6d8f9c7b5-x2x9q".to_owned(), "v1".to_owned())].into());
        let Outcome::Response(r) = parse_output(&framed(0, "200", heads, ECHO), "", &versions) else { panic!() };
        assert_eq!(r.status, 200);
        assert_eq!(r.version.as_deref(), Some("v1"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.echo.as_ref().map(|e| e.namespace.as_str()), Some("shop"));
        assert_eq!(r.body, None);
        // A positive from-pod expectation on that answer passes: status 200, backend v1.
        let expect: crate::model::Expect =
            crate::yaml::from_str("{status: 200, backend: {version: v1, namespace: shop}}").unwrap();
        let observation = Observation { outcome: Outcome::Response(r), elapsed_ms: 1 };
        assert!(
            crate::check::expect::evaluate(
                &expect,
                &observation,
                crate::model::Mesh::Istio,
                crate::check::denial::Path::FromPod
            )
            .passed()
        );
    }

    #[test]
    fn a_body_that_looks_like_a_head_stays_body() {
        let body = "HTTP/1.1 403 Forbidden\r\nl5d-proxy-error: fake\r\n\r\n";
        let heads = "HTTP/1.1 200 OK\r\n\r\n";
        let Outcome::Response(r) = parse_output(&framed(0, "200", heads, body), "", &versions()) else { panic!() };
        assert_eq!((r.status, r.header("l5d-proxy-error")), (200, None));
        assert_eq!(r.body.as_deref(), Some(body));
    }

    #[test]
    fn denials_keep_their_headers_and_body() {
        let heads = "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n\r\n";
        let Outcome::Response(r) = parse_output(&framed(0, "403", heads, "RBAC: access denied"), "", &versions())
        else {
            panic!()
        };
        assert_eq!(r.status, 403);
        assert_eq!(r.body.as_deref(), Some("RBAC: access denied"));
        assert!(r.echo.is_none());
    }

    #[test]
    fn truncated_or_unframed_output_is_no_answer() {
        let mut cut = framed(0, "200", "HTTP/1.1 200 OK\r\n\r\n", ECHO);
        cut.truncate(cut.len() - 10);
        assert!(matches!(parse_output(&cut, "", &versions()), Outcome::Transport { kind: TransportKind::Other, .. }));
        let old_style = format!("HTTP/1.1 200 OK\r\n\r\n{ECHO}");
        assert!(matches!(
            parse_output(old_style.as_bytes(), "", &versions()),
            Outcome::Transport { kind: TransportKind::Other, .. }
        ));
        assert!(matches!(
            parse_output(&framed(0, "000", "", ""), "", &versions()),
            Outcome::Transport { kind: TransportKind::Other, .. }
        ));
        let overflowing = format!("{FRAME_MARKER} rc=0 status=200 head={} body=1\nx", usize::MAX);
        assert!(matches!(
            parse_output(overflowing.as_bytes(), "", &versions()),
            Outcome::Transport { kind: TransportKind::Other, .. }
        ));
    }

    #[test]
    fn curl_failures_map_to_transport_kinds() {
        let kind = |code: i32| match parse_output(&framed(code, "000", "", ""), "curl: (56) Recv failure", &versions())
        {
            Outcome::Transport { kind, .. } => kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(7), TransportKind::Refused);
        assert_eq!(kind(56), TransportKind::Reset);
        assert_eq!(kind(52), TransportKind::Reset);
        assert_eq!(kind(28), TransportKind::Timeout);
        assert_eq!(kind(35), TransportKind::Tls);
        assert_eq!(kind(6), TransportKind::Dns);
        // A reset after the status line, before the head ends, is one although curl reports 200.
        let mid_head = framed(56, "200", "HTTP/1.1 200 OK\r\nContent-Ty", "");
        assert!(matches!(
            parse_output(&mid_head, "", &versions()),
            Outcome::Transport { kind: TransportKind::Reset, .. }
        ));
        // A reset in the middle of the echo backend's body is not a refusal.
        let midway = framed(56, "200", "HTTP/1.1 200 OK\r\n\r\n", "");
        assert!(matches!(
            parse_output(&midway, "", &versions()),
            Outcome::Transport { kind: TransportKind::Other, .. }
        ));
        assert!(matches!(
            parse_output(b"no frame", "exec failed", &versions()),
            Outcome::Transport { kind: TransportKind::Other, .. }
        ));
    }

    /// The script itself, run by a real shell against a fake curl: the frame and the bytes
    /// that follow it are what `parse_output` reads.
    #[test]
    fn the_script_frames_what_curl_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("curl");
        // Writes a head to -D's file, echo JSON to -o's file and the status to stdout, like curl.
        let script = format!(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -D) h=$2; shift;; -o) b=$2; shift;; esac; shift; done\n\
             printf 'HTTP/1.1 200 OK\\r\\n\\r\\n' >\"$h\"; cat >\"$b\" <<'EOF'\n{ECHO}\nEOF\nprintf 200\n"
        );
        std::fs::write(&fake, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let argv = command(Method::Get, "http://echo/", &BTreeMap::new(), Duration::from_secs(1));
        let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
        let out = std::process::Command::new(&argv[0]).args(&argv[1..]).env("PATH", path).output().unwrap();
        let Outcome::Response(r) = parse_output(&out.stdout, "", &versions()) else {
            panic!("{}", String::from_utf8_lossy(&out.stdout))
        };
        assert_eq!(r.status, 200);
        assert_eq!(r.echo.map(|e| e.pod), Some("echo-v1-6d8f9c7b5-x2x9q".to_owned()));
    }

    /// A client pod whose answer is endless (a huge body `cat`-ed through the exec), after a
    /// flood on stderr: once read whole with `read_to_end`, now stdout is read to
    /// [`OUTPUT_LIMIT`] and the reading ends there, stderr is drained past its limit so stdout
    /// never stalls behind it, and the answer is judged on what was read: status, heads, the
    /// body's bounded prefix.
    #[tokio::test]
    async fn endless_exec_output_is_cut_at_the_limit_and_still_an_answer() {
        use tokio::io::AsyncWriteExt;
        // kube's exec hands out each stream through a 1 KiB simplex pipe, written by one task.
        let (mut out_r, mut out_w) = tokio::io::simplex(1024);
        let (mut err_r, mut err_w) = tokio::io::simplex(1024);
        let heads = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n";
        let writer = tokio::spawn(async move {
            err_w.write_all(&vec![b'e'; 100 * 1024]).await?;
            drop(err_w);
            let frame = format!("{FRAME_MARKER} rc=0 status=200 head={} body={}\n{heads}", heads.len(), u64::MAX / 4);
            out_w.write_all(frame.as_bytes()).await?;
            loop {
                out_w.write_all(&[b'x'; 4096]).await?;
            }
            #[allow(unreachable_code)]
            Ok::<_, std::io::Error>(())
        });
        let read = read_output(Some(&mut out_r), Some(&mut err_r));
        let (out, complete, err) = tokio::time::timeout(Duration::from_secs(10), read).await.expect("reading ends");
        assert!(!complete);
        assert_eq!((out.len(), err.len()), (OUTPUT_LIMIT, STDERR_LIMIT));
        let Outcome::Response(r) = parse_bounded(&out, complete, &err, &versions()) else { panic!() };
        assert_eq!((r.status, r.header("content-type")), (200, Some("text/plain")));
        assert_eq!(r.body.map(|b| b.len()), Some(crate::probe::observation::BODY_LIMIT));
        // The same cut output is no answer when it claims to be whole.
        assert!(matches!(parse_output(&out, &err, &versions()), Outcome::Transport { .. }));
        // Nothing reads on (a real exec is cancelled when its process is dropped).
        assert!(!writer.is_finished(), "the writer is cut off, not drained");
        writer.abort();
        // Heads that alone exceed the limit are no answer.
        let huge_head = format!("{FRAME_MARKER} rc=0 status=200 head={} body=0\nHTTP/1.1 200 OK\r\n", OUTPUT_LIMIT * 2);
        assert!(matches!(
            parse_bounded(huge_head.as_bytes(), false, "", &versions()),
            Outcome::Transport { kind: TransportKind::Other, message } if message.contains("more than 256 KiB")
        ));
    }

    #[test]
    fn client_pods_opt_in_or_out_per_mesh() {
        let istio = client_pod_manifest(Mesh::Istio, false, "ns", None, "curl:1");
        assert_eq!(istio["metadata"]["labels"]["sidecar.istio.io/inject"], "false");
        let linkerd = client_pod_manifest(Mesh::Linkerd, true, "ns", Some("other"), "curl:1");
        assert_eq!(linkerd["metadata"]["annotations"]["linkerd.io/inject"], "enabled");
        assert_eq!(linkerd["spec"]["serviceAccountName"], "other");
        assert_eq!(linkerd["metadata"]["name"], "client-meshed");
    }
}
