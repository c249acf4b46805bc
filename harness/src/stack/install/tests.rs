use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::command::Recording;
use crate::testing::{Cluster, KubeRequest, Offline, ProxyAnswers as Answers, kube_mock, kube_status, stack_answers};

fn failed(stderr: &str) -> CommandError {
    CommandError::Failed { argv: "helm upgrade".into(), status: Some(1), stderr: stderr.into() }
}

#[test]
fn failures_are_classified() {
    let transient = [
        "Error: Internal error occurred: failed calling webhook \"namespace.sidecar-injector.istio.io\": dial tcp 10.96.0.1:443: connect: connection refused",
        "Error: looks like \"https://charts.konghq.com\" is not a valid chart repository: 503 Service Unavailable",
        "Error: etcdserver: request timed out",
        "Error: no endpoints available for service \"istiod\"",
    ];
    for t in transient {
        assert_eq!(classify(&failed(t)), Failure::Transient, "{t}");
    }
    let fatal = [
        "Error: chart \"ingress\" version \"9.9.9\" not found in https://charts.konghq.com repository",
        "Error: values don't meet the specifications of the schema(s)",
        "Error: UPGRADE FAILED: context deadline exceeded",
    ];
    for f in fatal {
        assert_eq!(classify(&failed(f)), Failure::Fatal, "{f}");
    }
    let timeout = CommandError::Timeout { argv: "helm".into(), timeout: Duration::from_secs(1) };
    assert_eq!(classify(&timeout), Failure::Fatal);
}

fn ok() -> Result<Output, CommandError> {
    Ok(Output { status: Some(0), ..Default::default() })
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_backoff_and_fatal_ones_are_not() {
    let inv = Invocation::new("helm", ["upgrade"], Duration::from_secs(60));
    let runner = Recording::answering([Err(failed("connection refused")), Err(failed("connection refused")), ok()]);
    let started = tokio::time::Instant::now();
    assert!(run_retrying(&runner, &inv).await.is_ok());
    assert_eq!(runner.argvs().len(), 3);
    // 2 s then 4 s of backoff, in virtual time.
    assert_eq!(started.elapsed().as_secs(), 6);

    let runner = Recording::answering([Err(failed("Error: chart not found")), ok()]);
    assert!(run_retrying(&runner, &inv).await.is_err());
    assert_eq!(runner.argvs().len(), 1, "a fatal failure is not retried");

    let runner = Recording::answering((0..10).map(|_| Err(failed("503 Service Unavailable"))));
    let err = run_retrying(&runner, &inv).await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(runner.argvs().len(), 5, "bounded: one try and four retries");
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: httproutes.gateway.networking.k8s.io\n";

/// An installer with the scripted `runner` against the mock `client`, offline.
fn installer<'a>(
    runner: &'a Recording,
    client: kube::Client,
    run: &'a RunDir,
    versions: &'a Versions,
    cache: &'a Cache,
) -> Installer<'a, Recording, Offline, Answers> {
    Installer {
        runner,
        helm: Path::new("helm"),
        client,
        run,
        versions,
        cache,
        fetch: &Offline,
        proxy_check: &Answers,
        proxy: "http://127.0.0.1:40080".into(),
        gate_deadline: Duration::from_secs(30),
        shared_cluster: false,
    }
}

/// The istio environment against the mock, with the Gateway API pinned to one seeded file.
async fn install_istio(world: Cluster) -> (Result<(), StackError>, Vec<String>, Vec<KubeRequest>, Vec<String>) {
    install_profile(if world.ambient { "istio-ambient" } else { "istio" }, world).await
}

async fn install_profile(
    profile: &str,
    world: Cluster,
) -> (Result<(), StackError>, Vec<String>, Vec<KubeRequest>, Vec<String>) {
    let mut versions = Versions::parse(include_str!("../../../../versions.toml")).unwrap();
    let sum: String = ring::digest::digest(&ring::digest::SHA256, CRD.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    versions.gateway_api.sha256 = [("gateway.networking.k8s.io_httproutes.yaml".to_owned(), sum)].into();
    let profile = versions.profile(profile, Path::new("versions.toml")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = Cache::at(work.path().join("tools"));
    for a in versions.gateway_api.artifacts() {
        cache.seed(&a, CRD.as_bytes());
    }
    let run = RunDir::create(&work.path().join("e2e"), "r1").unwrap();
    let (client, asked) = kube_mock(move |req| stack_answers(world, req));
    let runner = Recording::answering((0..10).map(|_| ok()));
    let installer = installer(&runner, client, &run, &versions, &cache);
    let steps = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = steps.clone();
    let result = installer
        .install(&super::super::environment(&profile), &CancellationToken::new(), |s| {
            record.lock().unwrap().push(s.to_owned())
        })
        .await;
    let helm: Vec<String> = runner
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.args.iter().take(3).cloned().collect::<Vec<_>>().join(" "))
        .collect();
    let asked = asked.lock().unwrap().clone();
    let steps = steps.lock().unwrap().clone();
    (result, helm, asked, steps)
}

#[tokio::test(start_paused = true)]
async fn the_istio_environment_installs_in_order() {
    let (result, helm, asked, steps) =
        install_istio(Cluster { webhook_ready: true, kong_meshed: true, ambient: false }).await;
    result.unwrap();
    assert_eq!(helm, ["upgrade --install istio-base", "upgrade --install istiod", "upgrade --install kong"]);
    let applied: Vec<String> = asked.iter().filter(|r| r.method == "PATCH").map(|r| r.path.clone()).collect();
    insta::assert_yaml_snapshot!((steps, applied));
    // Everything applied carries the run label.
    for r in asked.iter().filter(|r| r.method == "PATCH") {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["metadata"]["labels"][crate::k8s::RUN_LABEL], "r1", "{}", r.path);
    }
}

/// On a cluster the harness did not create, a CRD that is already there is never applied over
/// (whatever its version); one that is absent is applied.
#[tokio::test]
async fn shared_clusters_get_only_the_crds_they_lack() {
    let mut versions = Versions::parse(include_str!("../../../../versions.toml")).unwrap();
    let sum = crate::tools::sha256_hex(CRD.as_bytes());
    versions.gateway_api.sha256 = [("gateway.networking.k8s.io_httproutes.yaml".to_owned(), sum)].into();
    let work = tempfile::tempdir().unwrap();
    let cache = Cache::at(work.path().join("tools"));
    for a in versions.gateway_api.artifacts() {
        cache.seed(&a, CRD.as_bytes());
    }
    let run = RunDir::create(&work.path().join("e2e"), "r1").unwrap();
    let crds = [Action::Crds {
        name: "gateway-api".into(),
        version: "v1.3.0".into(),
        files: vec![super::super::PinnedFile {
            file: "x".into(),
            url: "https://example.invalid/x".into(),
            sha256: "0".repeat(64),
        }],
    }];
    for (there, applied) in [(Some("v1.2.1"), false), (Some("v1.4.0"), false), (None, true)] {
        let (client, asked) = kube_mock(move |req| match (req.method.as_str(), there) {
            ("GET", Some(version)) if req.path.ends_with("/httproutes.gateway.networking.k8s.io") => (
                200,
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                       "metadata": {"name": "httproutes.gateway.networking.k8s.io",
                                    "annotations": {"gateway.networking.k8s.io/bundle-version": version}},
                       "spec": {"group": "g", "names": {"plural": "p", "kind": "K"}, "scope": "Cluster", "versions": []}}),
            ),
            ("GET", None) if req.path.ends_with("/httproutes.gateway.networking.k8s.io") => {
                kube_status(404, "NotFound")
            }
            _ => stack_answers(Cluster { webhook_ready: true, kong_meshed: true, ambient: false }, req),
        });
        let runner = Recording::default();
        let mut installer = installer(&runner, client, &run, &versions, &cache);
        installer.shared_cluster = true;
        installer.install(&crds, &CancellationToken::new(), |_| {}).await.unwrap();
        let patched = asked.lock().unwrap().iter().any(|r| r.method == "PATCH");
        assert_eq!(patched, applied, "CRD already there: {there:?}");
    }
}

/// On a shared cluster, the stack's GatewayClass `kong`: absent or left by an earlier run, it
/// is applied; the user's own, when it is KIC's unmanaged class, is used as it is; the user's of
/// another controller (or managed) stops the install before the Gateway goes to it.
#[tokio::test]
async fn a_users_gateway_class_is_used_or_refused_never_overwritten() {
    let versions = Versions::parse(include_str!("../../../../versions.toml")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = Cache::at(work.path().join("tools"));
    let run = RunDir::create(&work.path().join("e2e"), "r1").unwrap();
    let ours: serde_json::Value =
        crate::yaml::from_str(include_str!("../../../../fixtures/kong/gateway.yaml").split("---").next().unwrap())
            .unwrap();
    let apply = [Action::Apply { name: "gateway".into(), objects: vec![ours] }];
    let class = |labels: serde_json::Value, annotations: serde_json::Value, controller: &str| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
               "metadata": {"name": "kong", "labels": labels, "annotations": annotations},
               "spec": {"controllerName": controller}})
    };
    let kic = "konghq.com/kic-gateway-controller";
    let unmanaged = json!({"konghq.com/gatewayclass-unmanaged": "true"});
    for (what, there, applied, refused) in [
        ("absent", None, true, false),
        ("an earlier run's", Some(class(json!({k8s::RUN_LABEL: "r0"}), unmanaged.clone(), kic)), true, false),
        ("the user's KIC class", Some(class(json!({}), unmanaged.clone(), kic)), false, false),
        (
            "the user's Kong Operator class",
            Some(class(json!({}), json!({}), "konghq.com/gateway-operator")),
            false,
            true,
        ),
        ("the user's managed KIC class", Some(class(json!({}), json!({}), kic)), false, true),
    ] {
        let (client, asked) = kube_mock(move |req| match (req.method.as_str(), &there) {
            ("GET", Some(found)) if req.path.ends_with("/gatewayclasses/kong") => (200, found.clone()),
            ("GET", None) if req.path.ends_with("/gatewayclasses/kong") => kube_status(404, "NotFound"),
            _ => stack_answers(Cluster { webhook_ready: true, kong_meshed: true, ambient: false }, req),
        });
        let runner = Recording::default();
        let mut installer = installer(&runner, client, &run, &versions, &cache);
        installer.shared_cluster = true;
        let result = installer.install(&apply, &CancellationToken::new(), |_| {}).await;
        let patched = asked.lock().unwrap().iter().any(|r| r.method == "PATCH");
        assert_eq!(patched, applied, "{what}");
        match result {
            Err(StackError::Conflict(message)) => {
                assert!(refused, "{what}: {message}");
                assert!(message.contains("GatewayClass kong already exists"), "{message}");
            }
            Err(other) => panic!("{what}: {other}"),
            Ok(()) => assert!(!refused, "{what}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn kong_is_not_installed_before_the_injector_serves() {
    let (result, helm, _, _) = install_istio(Cluster { webhook_ready: false, kong_meshed: true, ambient: false }).await;
    let err = result.unwrap_err().to_string();
    assert!(err.starts_with("webhook istio-sidecar-injector serving: not reached within 30s"), "{err}");
    assert!(
        err.contains("last seen: istio-sidecar-injector calls istio-system/istiod, which has no ready endpoint"),
        "{err}"
    );
    assert_eq!(helm, ["upgrade --install istio-base", "upgrade --install istiod"], "no Kong yet");
}

#[tokio::test(start_paused = true)]
async fn a_kong_pod_without_a_sidecar_fails_the_environment() {
    let (result, _, _, _) = install_istio(Cluster { webhook_ready: true, kong_meshed: false, ambient: false }).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.starts_with(
            "pods app.kubernetes.io/name=gateway,app.kubernetes.io/instance=kong in kong carry istio-proxy"
        ),
        "{err}"
    );
    assert!(err.contains("last seen: pod(s) without istio-proxy: kong-gateway-7d9f"), "{err}");
}

/// Ambient: base, istiod, cni and ztunnel in Istio's order, each DaemonSet gated, Kong's
/// namespace enrolled before Kong, and Kong judged meshed by istio-cni's annotation.
#[tokio::test(start_paused = true)]
async fn the_ambient_environment_installs_in_order() {
    let world = Cluster { webhook_ready: true, kong_meshed: true, ambient: true };
    let (result, helm, asked, steps) = install_istio(world).await;
    result.unwrap();
    assert_eq!(
        helm,
        [
            "upgrade --install istio-base",
            "upgrade --install istiod",
            "upgrade --install istio-cni",
            "upgrade --install ztunnel",
            "upgrade --install kong"
        ]
    );
    let gated: Vec<&str> = asked
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/daemonsets/"))
        .map(|r| r.path.as_str())
        .collect();
    assert!(gated.contains(&"/apis/apps/v1/namespaces/istio-system/daemonsets/istio-cni-node"), "{gated:?}");
    assert!(gated.contains(&"/apis/apps/v1/namespaces/istio-system/daemonsets/ztunnel"), "{gated:?}");
    let kong_ns =
        asked.iter().find(|r| r.method == "PATCH" && r.path == "/api/v1/namespaces/kong").expect("Kong's namespace");
    let body: Value = serde_json::from_str(&kong_ns.body).unwrap();
    assert_eq!(body["metadata"]["labels"][crate::model::AMBIENT_LABEL], "ambient");
    let meshed = steps.iter().position(|s| s.contains("carry ambient.istio.io/redirection=enabled")).expect("the gate");
    let ztunnel = steps.iter().position(|s| s.contains("DaemonSet istio-system/ztunnel")).expect("the gate");
    assert!(ztunnel < meshed, "{steps:?}");
}

/// A Kong pod istio-cni has not redirected (no annotation, as when the node agent is not
/// running or the namespace is not enrolled) fails the ambient environment, naming the pod.
#[tokio::test(start_paused = true)]
async fn a_kong_pod_not_redirected_fails_the_ambient_environment() {
    let (result, _, _, _) = install_istio(Cluster { webhook_ready: true, kong_meshed: false, ambient: true }).await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("carry ambient.istio.io/redirection=enabled: not reached within"), "{err}");
    assert!(err.contains("last seen: pod(s) without ambient.istio.io/redirection=enabled: kong-gateway-7d9f"), "{err}");
}

/// A DaemonSet that never rolls out (here: absent) stops the ambient install before Kong.
#[tokio::test(start_paused = true)]
async fn a_daemonset_not_rolled_out_stops_the_ambient_install() {
    // Not an ambient cluster: no DaemonSet answers.
    let (result, helm, _, _) =
        install_profile("istio-ambient", Cluster { webhook_ready: true, kong_meshed: true, ambient: false }).await;
    let err = result.unwrap_err().to_string();
    assert!(err.starts_with("DaemonSet istio-system/istio-cni-node rolled out: not reached within 30s"), "{err}");
    assert!(err.contains("does not exist yet"), "{err}");
    assert!(!helm.iter().any(|h| h.contains("kong")), "no Kong: {helm:?}");
}

#[tokio::test]
async fn linkerd_identity_is_written_privately_for_set_file() {
    let versions = Versions::parse(include_str!("../../../../versions.toml")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = RunDir::create(&work.path().join("e2e"), "r1").unwrap();
    let (client, _) = kube_mock(|_| kube_status(404, "NotFound"));
    let runner = Recording::answering([ok()]);
    let cache = Cache::at(work.path().join("tools"));
    let installer = installer(&runner, client, &run, &versions, &cache);
    let profile = versions.profile("linkerd", Path::new("versions.toml")).unwrap();
    let env = super::super::environment(&profile);
    let control_plane = env
        .iter()
        .find_map(|a| match a {
            Action::Helm(r) if r.name == "linkerd-control-plane" => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    installer
        .install(&[Action::LinkerdIdentity, Action::Helm(control_plane)], &CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let key = run.path.join(LINKERD_ISSUER_KEY);
    assert!(std::fs::read_to_string(&key).unwrap().contains("PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let args = runner.calls.lock().unwrap()[0].args.clone();
    let key_arg = format!("identity.issuer.tls.keyPEM={}", key.display());
    assert!(args.windows(2).any(|w| w[0] == "--set-file" && w[1] == key_arg), "{args:?}");
    assert!(!args.iter().any(|a| a.contains("BEGIN")), "no PEM on the command line");
    // Helm keeps its state in the project, not in the user's home.
    let env = runner.calls.lock().unwrap()[0].env.clone();
    let cache = env.iter().find(|(k, _)| k == "HELM_CACHE_HOME").map(|(_, v)| v.clone()).unwrap();
    assert_eq!(Path::new(&cache), work.path().join("helm").join("cache"));
    assert!(env.iter().any(|(k, v)| k == "KUBECONFIG" && Path::new(v) == run.kubeconfig()));
    // The user's HELM_* (HELM_KUBECONTEXT, HELM_NAMESPACE, ...) and KIND_* variables are dropped first.
    assert_eq!(runner.calls.lock().unwrap()[0].clear_env_prefixes, ["KIND_", "HELM_"]);
}

#[tokio::test(start_paused = true)]
async fn applies_are_retried_while_a_webhook_is_not_serving() {
    let versions = Versions::parse(include_str!("../../../../versions.toml")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = RunDir::create(&work.path().join("e2e"), "r1").unwrap();
    let patches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = patches.clone();
    let (client, _) = kube_mock(move |req| {
        if req.method == "PATCH" && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            let message = "Internal error occurred: failed calling webhook \"validation.istio.io\": dial tcp 10.96.3.4:443: connect: connection refused";
            return (
                500,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": "InternalError", "code": 500}),
            );
        }
        stack_answers(Cluster { webhook_ready: true, kong_meshed: true, ambient: false }, req)
    });
    let runner = Recording::default();
    let cache = Cache::at(work.path().join("tools"));
    let installer = installer(&runner, client, &run, &versions, &cache);
    let telemetry = json!({"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry", "metadata": {"name": "mesh-default", "namespace": "istio-system"}, "spec": {}});
    let action = Action::Apply { name: "istio-telemetry".into(), objects: vec![telemetry] };
    installer.install(&[action], &CancellationToken::new(), |_| {}).await.unwrap();
    assert_eq!(patches.load(std::sync::atomic::Ordering::SeqCst), 2, "one refused, one accepted");
}

/// An error from the API server holding a newline and a workflow command stays on the one log
/// line of the retry: no `::error::` starts a line of the CI log.
#[test]
fn retried_errors_are_logged_on_one_escaped_line() {
    let error = "conflict\n::error file=x::all scenarios passed\n##[stop-commands]t";
    let line = retry_message(&error, Duration::from_secs(1));
    assert!(!line.contains('\n'), "{line}");
    assert!(!line.contains("##["), "{line}");
    assert!(line.starts_with("transient failure, retrying in 1s: conflict"), "{line}");
}
