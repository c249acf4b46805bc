//! HTTP from inside the cluster: a client pod (meshed or not) runs curl, through kube-rs exec
//! over a websocket. What curl prints is turned into the same [`Observation`] as host probes.
//!
//! The exec transport itself needs an API server; it is exercised only by live runs. The
//! command line, the client pod manifest and the parsing of curl's output are tested here.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::observation::{Echo, Observation, Outcome, PodVersions, Response, TransportKind};
use crate::scenario::{Mesh, Method};

/// The container name of client pods.
pub const CONTAINER: &str = "curl";

/// Marker line after curl's output carrying its exit code.
const EXIT_MARKER: &str = "__harness_curl_exit=";

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

/// The argv run in the client pod. curl's arguments go through `"$@"`, never through the shell's
/// parser, so header values cannot inject commands.
pub fn command(method: Method, url: &str, headers: &BTreeMap<String, String>, timeout: Duration) -> Vec<String> {
    let script = format!("curl \"$@\"; rc=$?; printf '\\n{EXIT_MARKER}%s\\n' \"$rc\"");
    let mut argv: Vec<String> = vec!["sh".into(), "-c".into(), script, "sh".into()];
    argv.extend([
        "-sS".into(),
        "-i".into(),
        "--max-time".into(),
        timeout.as_secs().max(1).to_string(),
        "-X".into(),
        method.to_string(),
    ]);
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
        52 | 55 | 56 => TransportKind::Reset,
        _ => TransportKind::Other,
    }
}

/// Turn `curl -i` output plus the exit marker into an outcome.
pub fn parse_output(stdout: &str, stderr: &str, versions: &PodVersions) -> Outcome {
    let Some(marker) = stdout.rfind(EXIT_MARKER) else {
        return Outcome::Transport {
            kind: TransportKind::Other,
            message: format!("the client pod printed no exit code: {}", stderr.trim()),
        };
    };
    let code: i32 = stdout[marker + EXIT_MARKER.len()..].trim().parse().unwrap_or(-1);
    let output = stdout[..marker].strip_suffix('\n').unwrap_or(&stdout[..marker]);
    if code != 0 {
        return Outcome::Transport {
            kind: transport_kind(code),
            message: format!("curl exit {code}: {}", stderr.trim()),
        };
    }
    // `-i` prints every response head (e.g. 100 Continue first); the last one is the answer.
    let Some(start) = output.rfind("HTTP/") else {
        return Outcome::Transport { kind: TransportKind::Other, message: "curl printed no HTTP response".into() };
    };
    let answer = &output[start..];
    let (head, body) = answer.split_once("\r\n\r\n").or_else(|| answer.split_once("\n\n")).unwrap_or((answer, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.entry(k.trim().to_ascii_lowercase()).or_default().push(v.trim().to_owned());
        }
    }
    let echo = Echo::decode(body.as_bytes());
    let version = echo.as_ref().and_then(|e| versions.version_of(&e.pod)).map(str::to_owned);
    Outcome::Response(Box::new(Response { status, headers, echo, version }))
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
    // Both streams at once: a full stderr buffer must not stall stdout.
    let read = async {
        let (mut out, mut err) = (String::new(), String::new());
        let read_out = async {
            if let Some(mut s) = stdout {
                let _ = s.read_to_string(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(mut s) = stderr {
                let _ = s.read_to_string(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        (out, err)
    };
    let outcome = match tokio::time::timeout(deadline, read).await {
        Ok((out, err)) => parse_output(&out, &err, versions),
        Err(_) => Outcome::Transport {
            kind: TransportKind::Timeout,
            message: format!("no answer from the client pod within {deadline:?}"),
        },
    };
    Ok(Observation { outcome, elapsed_ms: started.elapsed().as_millis() as u64 })
}

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

    #[test]
    fn parses_the_last_response_and_its_echo() {
        let body = r#"{"path":"/","host":"echo","method":"GET","headers":{"L5d-Client-Id":["client.ns.serviceaccount.identity.linkerd.cluster.local"]},"namespace":"ns","pod":"echo-v1-a"}"#;
        let out = format!(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{body}\n{EXIT_MARKER}0\n"
        );
        let Outcome::Response(r) = parse_output(&out, "", &versions()) else { panic!() };
        assert_eq!(r.status, 200);
        assert_eq!(r.version.as_deref(), Some("v1"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.echo.unwrap().header("l5d-client-id").is_some());
    }

    #[test]
    fn curl_failures_map_to_transport_kinds() {
        let kind =
            |code: i32| match parse_output(&format!("\n{EXIT_MARKER}{code}\n"), "curl: (56) Recv failure", &versions())
            {
                Outcome::Transport { kind, .. } => kind,
                other => panic!("{other:?}"),
            };
        assert_eq!(kind(7), TransportKind::Refused);
        assert_eq!(kind(56), TransportKind::Reset);
        assert_eq!(kind(28), TransportKind::Timeout);
        assert_eq!(kind(35), TransportKind::Tls);
        assert_eq!(kind(6), TransportKind::Dns);
        assert!(matches!(
            parse_output("no marker", "exec failed", &versions()),
            Outcome::Transport { kind: TransportKind::Other, .. }
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
