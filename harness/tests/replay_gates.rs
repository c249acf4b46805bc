//! replay.sh's ambient gate run by a real `kubectl` against a loopback API server: the
//! jsonpath that reads `ambient.istio.io/redirection` (its dots escaped) prints what the gate
//! expects, so the gate passes when every pod is redirected and fails when one is not. The
//! other gates are tested against a stand-in kubectl (`plan.rs`); this one's jsonpath is the
//! belief a stand-in cannot check.
//!
//! kubectl comes from `KUBECTL` if set, else `kubectl` on `PATH`. Without one the trial is
//! reported ignored with the reason, except under CI (`harness::in_ci`), where it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn kubectl() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("KUBECTL").filter(|k| !k.is_empty()) {
        return Some(PathBuf::from(k));
    }
    harness::preflight::find_on_path("kubectl", std::env::var_os("PATH").as_deref())
}

/// An API server on 127.0.0.1 that knows Pods only, and lists `pods` in namespace kong.
fn api_server(pods: serde_json::Value) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().split('?').next().unwrap_or_default();
            let body = match path {
                "/api" => serde_json::json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
                "/apis" => serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
                "/api/v1" => serde_json::json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list"]}]}),
                "/api/v1/namespaces/kong/pods" => pods.clone(),
                _ => serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}),
            };
            let status = if body["code"] == 404 { "404 Not Found" } else { "200 OK" };
            let body = body.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
    });
    port
}

/// The functions replay.sh defines, up to and including `redirected`, from the ambient plan.
fn gate_functions() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let catalog = harness::scenario::Catalog::open(harness::project::Project::at(&root)).unwrap();
    let profile = catalog.versions.profile("istio-ambient", Path::new("versions.toml")).unwrap();
    let plan =
        harness::plan::build(&catalog, &profile, "gates", harness::cluster::HostPorts { http: 1, https: 2 }).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("plan");
    harness::plan::write(&plan, &dir).unwrap();
    let script = std::fs::read_to_string(dir.join("replay.sh")).unwrap();
    let start = script.find("redirected() {").expect("replay.sh defines the ambient gate");
    let end = start + script[start..].find("\n}\n").expect("the gate's end") + 3;
    assert!(script.contains("redirected kong"), "the ambient plan waits on Kong's pods with it");
    script[start..end].to_owned()
}

fn pod(name: &str, annotation: Option<&str>) -> serde_json::Value {
    let annotations =
        annotation.map_or(serde_json::json!({}), |v| serde_json::json!({"ambient.istio.io/redirection": v}));
    serde_json::json!({"metadata": {"name": name, "namespace": "kong", "annotations": annotations},
                       "spec": {"containers": [{"name": "proxy", "image": "kong:3.9"}]}})
}

fn the_redirected_gate_reads_the_annotation_as_kubectl_prints_it() -> Result<Completion, Failed> {
    let Some(kubectl) = kubectl() else {
        if harness::in_ci() {
            return Err("no kubectl (set KUBECTL or put kubectl on PATH): under CI this must run".into());
        }
        return Ok(Completion::ignored_with("no kubectl: set KUBECTL or put kubectl on PATH (README, Development)"));
    };
    let functions = gate_functions();
    let gate = |pods: Vec<serde_json::Value>| -> Result<i32, Failed> {
        let port =
            api_server(serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods}));
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\n\
             users: [{{name: u, user: {{}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
        );
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).map_err(|e| e.to_string())?;
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(&kubectl, bin.join("kubectl")).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("set -eu\n{functions}\nredirected kong app.kubernetes.io/name=gateway"))
            .current_dir(dir.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HOME", dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        Ok(out.status.code().unwrap_or(-1))
    };
    let all = gate(vec![pod("kong-gateway-a", Some("enabled")), pod("kong-gateway-b", Some("enabled"))])?;
    if all != 0 {
        return Err(format!("every pod redirected, and the gate exits {all}").into());
    }
    for (case, pods) in [
        ("one pod without the annotation", vec![pod("kong-gateway-a", Some("enabled")), pod("kong-gateway-b", None)]),
        ("a pod still pending", vec![pod("kong-gateway-a", Some("pending"))]),
        ("no pods", vec![]),
    ] {
        if gate(pods)? == 0 {
            return Err(format!("{case}, and the gate passes").into());
        }
    }
    Ok(Completion::Completed)
}

fn main() {
    let args = Arguments::from_args();
    let trials = vec![Trial::ignorable_test(
        "replay_sh::the_redirected_gate_reads_the_annotation_as_kubectl_prints_it",
        the_redirected_gate_reads_the_annotation_as_kubectl_prints_it,
    )];
    libtest_mimic::run(&args, trials).exit();
}
