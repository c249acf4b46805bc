use std::path::Path;

use base64::Engine;
use serde_json::json;

use super::http::ingress_backends;

use super::*;
use crate::scenario::{RunContext, load};
use crate::testing::{Head, KubeRequest, Reply, kube_mock, kube_status, resources, serve};

#[test]
fn conditions_read_status_and_existence() {
    let deployment =
        json!({"status": {"conditions": [{"type": "Available", "status": "False", "message": "0/1 ready"}]}});
    let seen = |a: Attempt<Seen>| match a {
        Attempt::Pass(s) => format!("pass {}", s.0),
        Attempt::Fail(s) => format!("fail {}", s.0),
    };
    assert_eq!(seen(condition_met(WaitCondition::Available, Some(&deployment))), "fail Available=False 0/1 ready");
    assert_eq!(seen(condition_met(WaitCondition::Ready, Some(&deployment))), "fail no Ready condition yet");
    assert_eq!(seen(condition_met(WaitCondition::Exists, None)), "fail does not exist yet");
    assert_eq!(seen(condition_met(WaitCondition::Deleted, None)), "pass gone");
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    assert_eq!(seen(condition_met(WaitCondition::Ready, Some(&ready))), "pass Ready=True");
}

/// `wait: available` on a Deployment is the stack's `Gate::Deployments` question
/// (`k8s::deployment_available`): rolled out passes; an old pod left or a generation not yet
/// observed fails, though the `Available` condition is True in both.
#[test]
fn wait_available_means_rolled_out_as_the_gates_do() {
    use crate::testing::{Rollout, deployment};
    for (rollout, passes) in [(Rollout::Done, true), (Rollout::OldPodLeft, false), (Rollout::NotObserved, false)] {
        let object = deployment("echo-v1", "shop", rollout);
        let waited = condition_met(WaitCondition::Available, Some(&object));
        assert_eq!(waited, k8s::deployment_available(&object), "{rollout:?}");
        assert_eq!(matches!(waited, Attempt::Pass(_)), passes, "{rollout:?}: {waited:?}");
    }
}

/// A `delete` step whose object lingers (a finalizer, a graceful shutdown) passes only once the
/// object is gone, and fails at its deadline naming what is still there and why.
#[tokio::test(start_paused = true)]
async fn a_delete_step_waits_until_the_object_is_gone() {
    async fn delete_with(gets_before_gone: Option<usize>) -> (ScenarioRun, Vec<KubeRequest>) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
        let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
        let ctx = RunContext::new("r1test", Mesh::Istio);
        let mut loaded =
            load(&root.join("scenarios/ingress-basic.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
        loaded.scenario.steps = vec![Step::Delete(crate::scenario::DeleteStep {
            fixtures: vec![],
            resource: Some(crate::scenario::ObjectRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "echo-v1".into(),
                namespace: None,
            }),
            timeout: crate::scenario::Timeout(Duration::from_secs(5)),
        })];
        let namespace = loaded.vars.get("namespace").unwrap().to_owned();
        let terminating = {
            let mut d = crate::testing::deployment("echo-v1", &namespace, crate::testing::Rollout::Done);
            d["metadata"]["deletionTimestamp"] = json!("2026-12-01T10:05:00Z");
            d["metadata"]["finalizers"] = json!(["example.com/drain"]);
            d
        };
        let gets = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (client, asked) = kube_mock(move |req| {
            if !req.path.ends_with("/deployments/echo-v1") {
                return cluster(req);
            }
            match req.method.as_str() {
                "DELETE" => (200, terminating.clone()),
                "GET"
                    if gets_before_gone
                        .is_some_and(|n| gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= n) =>
                {
                    kube_status(404, "NotFound")
                }
                "GET" => (200, terminating.clone()),
                // The scenario's fixtures, applied first.
                _ => cluster(req),
            }
        });
        let addr = serve(|_| Reply::Hang).await;
        let mut live = live(&versions, &root, addr);
        live.client = client;
        let run = live.run(&loaded, "r1test", &CancellationToken::new()).await;
        let asked = asked.lock().unwrap().clone();
        (run, asked)
    }
    let (run, asked) = delete_with(Some(3)).await;
    assert!(run.passed, "{run:#?}");
    let on_it: Vec<&str> =
        asked.iter().filter(|r| r.path.ends_with("/deployments/echo-v1")).map(|r| r.method.as_str()).collect();
    assert_eq!(on_it, ["PATCH", "DELETE", "GET", "GET", "GET", "GET"], "deleted once, then looked at until gone");
    assert_eq!(run.steps.last().unwrap().detail, "1 object(s) deleted and gone");
    // Foreground: the Deployment stays (finalizer `foregroundDeletion`) until its pods are gone,
    // so "gone" is not said while they still terminate. kube sends DeleteOptions as the body.
    let delete = asked.iter().find(|r| r.method == "DELETE" && r.path.ends_with("/deployments/echo-v1")).unwrap();
    let options: serde_json::Value = serde_json::from_str(&delete.body).unwrap();
    assert_eq!(options["propagationPolicy"], "Foreground", "{}", delete.body);

    let (run, _) = delete_with(None).await;
    assert!(!run.passed);
    let detail = &run.failure().unwrap().detail;
    assert!(detail.contains("not reached within 5s"), "{detail}");
    assert!(
        detail.contains(
            "still there: Deployment/echo-v1 (being deleted since 2026-12-01T10:05:00Z; finalizers: example.com/drain)"
        ),
        "{detail}"
    );
}

#[test]
fn partial_matches_name_the_first_difference() {
    let actual = json!({"status": {"conditions": [{"type": "Programmed", "status": "True"}], "addresses": []}, "spec": {"x": 1}});
    assert_eq!(mismatch(&json!({"spec": {"x": 1}}), &actual, ""), None);
    assert_eq!(mismatch(&json!({"status": {"conditions": [{"type": "Programmed"}]}}), &actual, ""), None);
    assert_eq!(mismatch(&json!({"spec": {"x": 2}}), &actual, "").unwrap(), "spec.x: 1, expected 2");
    assert_eq!(mismatch(&json!({"spec": {"y": 2}}), &actual, "").unwrap(), "spec.y: missing (expected 2)");
    assert_eq!(
        mismatch(&json!({"status": {"addresses": [{"value": "1.2.3.4"}]}}), &actual, "").unwrap(),
        "status.addresses: no element matches expected [0] {\"value\":\"1.2.3.4\"} (found 0)"
    );
    // Any element may match, in any order.
    let conditions = json!({"status": {"conditions": [{"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "False"}]}});
    assert_eq!(
        mismatch(&json!({"status": {"conditions": [{"type": "Programmed", "status": "False"}]}}), &conditions, ""),
        None
    );
    assert!(
        mismatch(&json!({"status": {"conditions": [{"type": "Programmed", "status": "True"}]}}), &conditions, "")
            .is_some()
    );
}

/// A cluster where every apply succeeds, echo-v1 is available and its pod is labelled v1.
fn cluster(req: &KubeRequest) -> (u16, serde_json::Value) {
    if req.method == "PATCH" {
        return (200, serde_json::from_str(&req.body).unwrap_or(json!({})));
    }
    match req.path.as_str() {
        "/api/v1" => (
            200,
            resources(
                "v1",
                &[
                    ("namespaces", "Namespace", false),
                    ("services", "Service", true),
                    ("secrets", "Secret", true),
                    ("pods", "Pod", true),
                ],
            ),
        ),
        "/apis/apps/v1" => (200, resources("apps/v1", &[("deployments", "Deployment", true)])),
        "/apis/networking.k8s.io/v1" => (200, resources("networking.k8s.io/v1", &[("ingresses", "Ingress", true)])),
        "/apis/configuration.konghq.com/v1" => (
            200,
            resources(
                "configuration.konghq.com/v1",
                &[("kongplugins", "KongPlugin", true), ("kongconsumers", "KongConsumer", true)],
            ),
        ),
        p if p.ends_with("/deployments/echo-v1") => {
            let namespace = p.split('/').nth(5).unwrap_or_default();
            (200, crate::testing::deployment("echo-v1", namespace, crate::testing::Rollout::Done))
        }
        p if p.ends_with("/pods") => (
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": "echo-v1-6d8f9-abcde", "labels": {"app": "echo", "version": "v1"}},
                 "spec": {"containers": [{"name": "echo"}, {"name": "istio-proxy"}]}}]}),
        ),
        _ => kube_status(404, "NotFound"),
    }
}

/// Kong as the scenarios expect it: the route's upstream Host, a request id, and the jwt
/// plugin's verdict for `/secured/*` (HS256 with `secret`, `exp` checked).
fn kong(head: &Head, namespace: &str, secret: &str) -> Reply {
    let mut upstream = head.clone();
    upstream.headers.insert("host".into(), format!("echo.{namespace}.svc.cluster.local"));
    upstream.headers.insert("x-kong-request-id".into(), "7f3c".into());
    if head.path.starts_with("/secured/") {
        let Some(token) = head.headers.get("authorization").and_then(|a| a.strip_prefix("Bearer ")) else {
            return Reply::json(401, r#"{"message":"Unauthorized"}"#.into());
        };
        let parts: Vec<&str> = token.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let signature = b64.decode(parts.get(2).copied().unwrap_or_default()).unwrap_or_default();
        let signed = ring::hmac::verify(
            &key,
            format!("{}.{}", parts[0], parts.get(1).copied().unwrap_or_default()).as_bytes(),
            &signature,
        );
        let claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts.get(1).copied().unwrap_or_default()).unwrap_or_default())
                .unwrap_or_default();
        let expired = claims["exp"].as_u64().unwrap_or(0) < jwt::now();
        if signed.is_err() || expired {
            return Reply::json(401, r#"{"exp":"token expired"}"#.into());
        }
    }
    Reply::json(200, crate::testing::echo_body(&upstream, "echo-v1-6d8f9-abcde", namespace))
}

/// The executor against the mock cluster and a stand-in Kong at `proxy`.
fn live(versions: &crate::profile::Versions, root: &Path, proxy: std::net::SocketAddr) -> Live {
    let (client, _) = kube_mock(cluster);
    Live {
        client,
        mesh: Mesh::Istio,
        proxy: format!("http://{proxy}"),
        fixtures_dir: root.join("fixtures"),
        client_image: "curl:1".into(),
        tracing: versions.tracing.clone(),
        kong_namespace: "kong".into(),
        kong_selector: "app.kubernetes.io/name=gateway".into(),
        interval: Duration::from_millis(10),
        mutant_settle_cap: Duration::from_millis(10),
        sandbox: false,
        upgrades: BTreeMap::new(),
    }
}

async fn run_scenario(name: &str) -> ScenarioRun {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let loaded =
        load(&root.join("scenarios").join(format!("{name}.yaml")), &root.join("fixtures"), &ctx, &profile).unwrap();
    let namespace = loaded.vars.get("namespace").unwrap().to_owned();
    let secret = ctx.secret.clone();
    let addr = serve(move |head| kong(head, &namespace, &secret)).await;
    live(&versions, &root, addr).run(&loaded, "r1test", &CancellationToken::new()).await
}

#[tokio::test]
async fn ingress_basic_runs_its_steps_and_keeps_observations() {
    let run = run_scenario("ingress-basic").await;
    assert!(run.passed, "{run:#?}");
    let steps: Vec<&str> = run.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(run.steps[2].detail, "HTTP 200 from echo-v1-6d8f9-[hash]");
    assert_eq!(run.observations.len(), 1);
    insta::assert_yaml_snapshot!(run.observations[0], {".elapsed_ms" => "[ms]"});
}

#[tokio::test]
async fn jwt_tokens_are_signed_with_the_runs_secret() {
    let run = run_scenario("jwt-auth").await;
    assert!(run.passed, "{run:#?}");
    assert_eq!(run.steps.len(), 4);
}

#[tokio::test]
async fn a_failing_step_stops_the_scenario_and_says_what_it_saw() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let loaded = load(&root.join("scenarios/jwt-auth.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
    // A Kong that lets everyone in: the "no token gets 401" step must fail and end the run.
    let addr_open = serve(move |head| {
        let mut h = head.clone();
        h.headers.remove("authorization");
        Reply::json(200, crate::testing::echo_body(&h, "echo-v1-6d8f9-abcde", "ns"))
    })
    .await;
    let live = live(&versions, &root, addr_open);
    let mut short = loaded.clone();
    if let Step::Http(s) = &mut short.scenario.steps[0] {
        s.converge.within = crate::scenario::Timeout(Duration::from_millis(300));
    }
    let run = live.run(&short, "r1test", &CancellationToken::new()).await;
    assert!(!run.passed);
    assert_eq!(run.steps.len(), 2, "stops at the first failure: {run:#?}");
    let failure = run.failure().unwrap();
    assert!(failure.detail.contains("status 200 is not 401"), "{}", failure.detail);
    assert!(failure.detail.contains("last seen: HTTP 200 from echo-v1-6d8f9-[hash]"), "{}", failure.detail);
}

/// A cluster whose first echo pod raced the injector (no istio-proxy). After the harness
/// deletes it, the ReplicaSet's replacement carries the proxy when `injector_fixed`.
fn racing_cluster(injector_fixed: bool) -> impl Fn(&KubeRequest) -> (u16, serde_json::Value) + Send + Sync + 'static {
    let deleted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    move |req| {
        let pod = |name: &str, proxy: bool| {
            let mut containers = vec![json!({"name": "echo"})];
            if proxy {
                containers.push(json!({"name": "istio-proxy"}));
            }
            json!({"metadata": {"name": name, "labels": {"app": "echo", "version": "v1"},
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "echo-v1-6d8f9", "uid": "u1"}]},
                   "spec": {"containers": containers}})
        };
        if req.method == "DELETE" && req.path.ends_with("/pods/echo-v1-6d8f9-raced") {
            deleted.store(true, std::sync::atomic::Ordering::SeqCst);
            return (200, pod("echo-v1-6d8f9-raced", false));
        }
        if req.method == "GET" && req.path.ends_with("/pods") {
            let items = if !deleted.load(std::sync::atomic::Ordering::SeqCst) {
                vec![pod("echo-v1-6d8f9-raced", false)]
            } else if injector_fixed {
                vec![pod("echo-v1-6d8f9-fresh", true)]
            } else {
                vec![pod("echo-v1-6d8f9-again", false)]
            };
            return (200, json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}));
        }
        cluster(req)
    }
}

async fn run_against(answer: impl Fn(&KubeRequest) -> (u16, serde_json::Value) + Send + Sync + 'static) -> ScenarioRun {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let mut loaded = load(&root.join("scenarios/ingress-basic.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
    // The setup is under test; the first step (a wait) shows the scenario goes on.
    loaded.scenario.steps.truncate(1);
    let namespace = loaded.vars.get("namespace").unwrap().to_owned();
    let secret = ctx.secret.clone();
    let addr = serve(move |head| kong(head, &namespace, &secret)).await;
    let mut live = live(&versions, &root, addr);
    live.client = kube_mock(answer).0;
    live.run(&loaded, "r1test", &CancellationToken::new()).await
}

#[tokio::test]
async fn a_pod_that_raced_the_injector_is_restarted_once() {
    let run = run_against(racing_cluster(true)).await;
    assert!(run.passed, "{run:#?}");
    assert!(run.steps[0].detail.contains("restarted echo-v1-6d8f9-raced"), "{}", run.steps[0].detail);
}

#[tokio::test]
async fn a_pod_still_without_its_proxy_after_a_restart_fails_the_setup_by_name() {
    let run = run_against(racing_cluster(false)).await;
    assert!(!run.passed);
    assert_eq!(run.steps.len(), 1, "{run:#?}");
    let detail = &run.steps[0].detail;
    assert!(detail.contains("echo-v1-6d8f9-again lack istio-proxy"), "{detail}");
    assert!(detail.contains("even after restarting echo-v1-6d8f9-raced"), "{detail}");
}

/// How the mock API server treats a mutant's writes.
#[derive(Clone, Copy, PartialEq)]
enum Writes {
    /// Deletes of the plugin reach Kong (the stand-in stops enforcing it).
    Honoured,
    /// The cluster ignores them: Kong keeps enforcing the plugin.
    Ignored,
    /// The API server refuses the DELETE (403).
    DeleteRefused,
    /// The DELETE works, the restoring PATCH of the plugin is refused (403).
    RestoreRefused,
}

/// jwt-auth with the mutant `mutant` (YAML) that removes the jwt plugin. The stand-in Kong stops
/// enforcing the plugin once the harness deletes it, unless the cluster ignores the write.
async fn jwt_mutant_as(mutant: &str, writes: Writes) -> (MutantOutcome, Vec<KubeRequest>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let mut loaded = load(&root.join("scenarios/jwt-auth.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
    loaded.scenario.mutants = vec![crate::yaml::from_str(mutant).unwrap()];
    for step in &mut loaded.scenario.steps {
        if let Step::Http(s) = step {
            s.converge.within = crate::scenario::Timeout(Duration::from_millis(300));
        }
    }
    let deleted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (namespace, secret, seen) =
        (loaded.vars.get("namespace").unwrap().to_owned(), ctx.secret.clone(), deleted.clone());
    let addr = serve(move |head| {
        if seen.load(std::sync::atomic::Ordering::SeqCst) {
            return Reply::json(200, crate::testing::echo_body(head, "echo-v1-6d8f9-abcde", &namespace));
        }
        kong(head, &namespace, &secret)
    })
    .await;
    let mut live = live(&versions, &root, addr);
    let (client, asked) = kube_mock(move |req| {
        let plugin = req.path.ends_with("/kongplugins/jwt");
        match (req.method.as_str(), writes) {
            ("DELETE", Writes::DeleteRefused) if plugin => kube_status(403, "Forbidden"),
            ("PATCH", Writes::RestoreRefused) if plugin && deleted.load(std::sync::atomic::Ordering::SeqCst) => {
                kube_status(403, "Forbidden")
            }
            ("DELETE", _) if plugin => {
                deleted.store(writes != Writes::Ignored, std::sync::atomic::Ordering::SeqCst);
                (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
            }
            _ => cluster(req),
        }
    });
    live.client = client;
    let outcome = live.run_mutant(&loaded, &loaded.scenario.mutants[0], "r1test", &CancellationToken::new()).await;
    let asked = asked.lock().unwrap().clone();
    (outcome, asked)
}

const NO_JWT_AT_1: &str = "{name: no-jwt, why: anyone gets in, fails-at: 1, remove: [{kind: KongPlugin, name: jwt}]}";

#[tokio::test]
async fn a_mutant_is_killed_at_its_step_and_the_fixtures_restored() {
    let (outcome, asked) = jwt_mutant_as(NO_JWT_AT_1, Writes::Honoured).await;
    let MutantOutcome::Killed { at: 1, expected: 1, detail } = outcome else { panic!("{outcome:?}") };
    assert!(detail.contains("status 200 is not 401"), "{detail}");
    let delete = asked.iter().position(|r| r.method == "DELETE" && r.path.ends_with("/kongplugins/jwt")).unwrap();
    let restore = asked.iter().rposition(|r| r.method == "PATCH" && r.path.ends_with("/kongplugins/jwt")).unwrap();
    assert!(restore > delete, "the plugin is re-applied after the mutant");
}

#[tokio::test]
async fn a_mutant_that_changes_nothing_survives() {
    let (outcome, _) = jwt_mutant_as(NO_JWT_AT_1, Writes::Ignored).await;
    assert_eq!(outcome, MutantOutcome::Survived);
}

/// Declared at step 3 but step 1 already fails: killed, at another step than declared (the
/// session reports that as a mutant not killed as declared).
#[tokio::test]
async fn a_mutant_killed_before_its_declared_step_says_where() {
    let at_3 = "{name: no-jwt, why: anyone gets in, fails-at: 3, remove: [{kind: KongPlugin, name: jwt}]}";
    let (outcome, _) = jwt_mutant_as(at_3, Writes::Honoured).await;
    let MutantOutcome::Killed { at: 1, expected: 3, .. } = outcome else { panic!("{outcome:?}") };
}

/// A change the API server refuses is not applied; one that cannot be undone leaves the
/// scenario's state unknown. Neither is a kill.
#[tokio::test]
async fn a_mutant_not_applied_or_not_restored_is_neither_killed_nor_survived() {
    let (outcome, _) = jwt_mutant_as(NO_JWT_AT_1, Writes::DeleteRefused).await;
    let MutantOutcome::NotApplied(why) = outcome else { panic!("{outcome:?}") };
    assert!(why.contains("403") || why.contains("Forbidden"), "{why}");
    let (outcome, _) = jwt_mutant_as(NO_JWT_AT_1, Writes::RestoreRefused).await;
    let MutantOutcome::NotRestored(why) = outcome else { panic!("{outcome:?}") };
    assert!(why.starts_with("Killed"), "the kill is kept in the report: {why}");
}

/// Only a verdict kills: a declared step that fails because the API server errs (the harness
/// could not ask) leaves the mutant unjudged, never killed.
#[tokio::test]
async fn an_api_error_at_the_declared_step_does_not_kill_a_mutant() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let mut loaded = load(&root.join("scenarios/ingress-basic.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
    // Step 1 waits for echo-v1, which the API server cannot give while the mutant is in place.
    if let Step::Wait(w) = &mut loaded.scenario.steps[0] {
        w.timeout = crate::scenario::Timeout(Duration::from_millis(200));
    }
    loaded.scenario.mutants = vec![
        crate::yaml::from_str("{name: no-service, why: x, fails-at: 1, remove: [{kind: Service, name: echo}]}")
            .unwrap(),
    ];
    let mut live = live(&versions, &root, "127.0.0.1:9".parse().unwrap());
    let (client, _) = kube_mock(|req| {
        if req.method == "GET" && req.path.ends_with("/deployments/echo-v1") {
            return kube_status(500, "InternalError");
        }
        if req.method == "DELETE" {
            return (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        }
        cluster(req)
    });
    live.client = client;
    let outcome = live.run_mutant(&loaded, &loaded.scenario.mutants[0], "r1test", &CancellationToken::new()).await;
    let MutantOutcome::Unjudged { at: 1, detail } = outcome else { panic!("{outcome:?}") };
    assert!(detail.contains("InternalError") || detail.contains("500"), "{detail}");
}

/// A failing step says what kind of failure it is, and the scenario's records keep it.
#[tokio::test]
async fn step_failures_are_typed_verdicts_or_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let mut loaded = load(&root.join("scenarios/ingress-basic.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
    if let Step::Wait(w) = &mut loaded.scenario.steps[0] {
        w.timeout = crate::scenario::Timeout(Duration::from_millis(200));
    }
    for (answer, kind) in [
        (kube_status(500, "InternalError"), crate::runner::outcome::FailureKind::Error),
        (
            (200, crate::testing::deployment("echo-v1", "ingress-basic-r1test", crate::testing::Rollout::OldPodLeft)),
            crate::runner::outcome::FailureKind::Verdict,
        ),
    ] {
        let mut live = live(&versions, &root, "127.0.0.1:9".parse().unwrap());
        let (client, _) = kube_mock(move |req| {
            if req.method == "GET" && req.path.ends_with("/deployments/echo-v1") {
                return answer.clone();
            }
            cluster(req)
        });
        live.client = client;
        let run = live.run(&loaded, "r1test", &CancellationToken::new()).await;
        let failed = run.failure().unwrap_or_else(|| panic!("{run:#?}"));
        assert!(failed.step.starts_with("wait"), "the wait step failed, not the setup: {failed:?}");
        assert_eq!(failed.failure, Some(kind), "{failed:?}");
    }
}

/// The executor's last check before a write reaches the API server: whatever the offline check
/// missed, a cluster-scoped kind (as discovery reports it) or another namespace is refused and
/// nothing is sent.
#[tokio::test]
async fn writes_outside_the_scenario_are_refused_before_the_api_server() {
    let (client, asked) = kube_mock(cluster);
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}});
    let err = k8s::apply_guarded(&client, &namespace, Some("t"), &in_scope("t")).await.unwrap_err();
    assert!(matches!(err, k8s::KubeError::OutOfScope(_)), "{err}");
    let elsewhere =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"}});
    let err = k8s::apply_guarded(&client, &elsewhere, Some("t"), &in_scope("t")).await.unwrap_err();
    assert!(matches!(err, k8s::KubeError::OutOfScope(_)), "{err}");
    let err = k8s::delete_guarded(&client, "v1", "Namespace", "kube-system", None, &in_scope("t")).await.unwrap_err();
    assert!(err.to_string().contains("cluster-scoped"), "{err}");
    let writes =
        |asked: &std::sync::Mutex<Vec<KubeRequest>>| asked.lock().unwrap().iter().filter(|r| r.method != "GET").count();
    assert_eq!(writes(&asked), 0, "nothing was written");
    let here = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"}});
    k8s::apply_guarded(&client, &here, Some("t"), &in_scope("t")).await.unwrap();
    let patched: Vec<String> =
        asked.lock().unwrap().iter().filter(|r| r.method == "PATCH").map(|r| r.path.clone()).collect();
    assert_eq!(patched, ["/api/v1/namespaces/t/services/echo"]);
}

/// A namespace that exists without this run's label is never adopted (and so never deleted).
#[tokio::test]
async fn an_existing_namespace_is_not_adopted() {
    let (client, asked) = kube_mock(|req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/api/v1/namespaces/prod") => {
            (200, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}))
        }
        _ => kube_status(404, "NotFound"),
    });
    let err = k8s::ensure_namespace(&client, "prod", "r1", &[], &[]).await.unwrap_err();
    assert!(matches!(err, k8s::KubeError::OutOfScope(_)), "{err}");
    assert!(asked.lock().unwrap().iter().all(|r| r.method == "GET"), "nothing written");
    assert!(!k8s::delete_run_namespace(&client, "prod", "r1").await.unwrap(), "and never deleted");
}

/// A cluster whose collector (Jaeger through the API server's service proxy) answers "not
/// found" once (with `not_found_first`), then the trace for the asked id with spans from
/// `services`, each the child of the one before; the first span is the child of an id the
/// collector never saw (the client's).
fn tracing_cluster(
    services: Vec<String>,
    not_found_first: bool,
) -> impl Fn(&KubeRequest) -> (u16, serde_json::Value) + Send + Sync + 'static {
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    move |req| {
        let prefix = "/api/v1/namespaces/tracing/services/jaeger:16686/proxy/api/traces/";
        let Some(trace_id) = req.path.strip_prefix(prefix) else { return cluster(req) };
        if asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 && not_found_first {
            return (404, serde_json::from_str(crate::probe::trace::tests::JAEGER_NOT_FOUND).unwrap());
        }
        let mut parent = "0020000000000001".to_owned();
        let mut spans = Vec::new();
        let mut processes = serde_json::Map::new();
        for (i, service) in services.iter().enumerate() {
            let id = format!("{:016x}", 0xa000 + i);
            spans.push(json!({"traceID": trace_id, "spanID": id, "operationName": "GET",
                              "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}],
                              "tags": [{"key": "span.kind", "type": "string", "value": if i % 2 == 0 { "server" } else { "client" }}],
                              "processID": format!("p{i}")}));
            processes.insert(format!("p{i}"), json!({"serviceName": service, "tags": []}));
            parent = id;
        }
        (200, json!({"data": [{"traceID": trace_id, "spans": spans, "processes": processes}], "errors": null}))
    }
}

async fn run_traced(services: &[&str], timeout: Duration) -> ScenarioRun {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let mut loaded = load(&root.join("scenarios/tracing-istio.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
    let namespace = loaded.vars.get("namespace").unwrap().to_owned();
    let services = services.iter().map(|s| s.replace("{namespace}", &namespace)).collect();
    if let Step::Trace(s) = &mut loaded.scenario.steps[1] {
        s.timeout = crate::scenario::Timeout(timeout);
        s.expect.quiet = crate::scenario::Timeout(Duration::from_millis(20));
    }
    // A scenario steadying its snapshots by redacting a trace header: the transcript must still
    // carry it, or replay would judge `[redacted]` where the live run judged the id.
    loaded.scenario.snapshot.redact_headers.push("Traceparent".into());
    let secret = ctx.secret.clone();
    let addr = serve(move |head| kong(head, &namespace, &secret)).await;
    let mut live = live(&versions, &root, addr);
    live.client = kube_mock(tracing_cluster(services, true)).0;
    live.run(&loaded, "r1test", &CancellationToken::new()).await
}

/// The trace step end to end offline: the traced request's backend headers, the collector
/// polled through the service proxy (its 404 read as "not yet", not as an error), the trace's
/// shape in the snapshot, and a transcript that replays to the verdict the run reached.
#[tokio::test]
async fn a_trace_through_kong_and_both_sidecars_passes_and_is_recorded() {
    let run = run_traced(&["kong", "kong-gateway.kong", "echo.{namespace}"], Duration::from_secs(5)).await;
    assert!(run.passed, "{run:#?}");
    assert!(run.steps[2].detail.contains("(w3c): services"), "{}", run.steps[2].detail);
    let shape = run.observations.last().unwrap();
    insta::assert_yaml_snapshot!("traced_observation", shape);

    let (name, text) = run.transcripts.iter().find(|(n, _)| n.ends_with("-trace.yaml")).unwrap();
    assert_eq!(name, "02-trace.yaml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let transcript = crate::replay::load(&path).unwrap();
    assert_eq!(transcript.answers[1].status, Some(404), "the collector's first answer, as it was");
    let replayed = crate::replay::judge(&transcript, &path).unwrap();
    assert_eq!(replayed.verdict, crate::replay::Verdict::Pass, "{replayed:?}");
}

#[tokio::test]
async fn a_trace_without_the_sidecars_spans_fails_with_what_the_collector_held() {
    let run = run_traced(&["kong"], Duration::from_millis(300)).await;
    assert!(!run.passed);
    let failure = run.failure().unwrap();
    assert!(failure.detail.contains("no span from service \"kong-gateway.kong\""), "{}", failure.detail);
    assert!(failure.detail.contains("{\"kong\"}"), "says what it saw: {}", failure.detail);
    // The evidence: the collector's answers, kept as a transcript that replays to the failure.
    let (name, text) = run.transcripts.iter().find(|(n, _)| n.ends_with("-trace.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let transcript = crate::replay::load(&path).unwrap();
    assert!(transcript.answers.len() >= 3, "request, 404, at least one trace: {}", transcript.answers.len());
    let replayed = crate::replay::judge(&transcript, &path).unwrap();
    assert_eq!(replayed.verdict, crate::replay::Verdict::Fail, "{replayed:?}");
}

/// `absent` in the executor: the trace looks complete (Kong's span alone), then the collector is
/// asked again after `quiet`; spans arriving late fail the step, none arriving passes it. The
/// stand-in sidecars start their own trace for a B3 request, as Envoy's OpenTelemetry tracer does.
#[tokio::test]
async fn absence_is_judged_after_the_quiet_period_both_ways() {
    async fn run(late: bool) -> ScenarioRun {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
        let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
        let ctx = RunContext::new("r1test", Mesh::Istio);
        let mut loaded =
            load(&root.join("scenarios/trace-propagation-istio.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
        // The warm-up and the B3 step only.
        loaded.scenario.steps.remove(1);
        loaded.scenario.steps.truncate(2);
        if let Step::Trace(s) = &mut loaded.scenario.steps[1] {
            assert_eq!(s.context, crate::model::TraceContextFormat::B3);
            s.expect.quiet = crate::scenario::Timeout(Duration::from_millis(50));
        }
        let namespace = loaded.vars.get("namespace").unwrap().to_owned();
        let ns = namespace.clone();
        let secret = ctx.secret.clone();
        let addr = serve(move |head| {
            let mut h = head.clone();
            if !h.headers.contains_key("traceparent") {
                h.headers
                    .insert("traceparent".into(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
            }
            kong(&h, &ns, &secret)
        })
        .await;
        let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let kong_only = tracing_cluster(vec!["kong".into()], false);
        let with_sidecars = tracing_cluster(vec!["kong".into(), "kong-gateway.kong".into()], false);
        let mut live = live(&versions, &root, addr);
        live.client = kube_mock(move |req| {
            if req.path.contains("/proxy/api/traces/") {
                // Kong's span alone at first; with `late`, the sidecars' spans when asked again.
                let n = polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if late && n >= 1 { with_sidecars(req) } else { kong_only(req) }
            } else {
                cluster(req)
            }
        })
        .0;
        live.run(&loaded, "r1test", &CancellationToken::new()).await
    }
    let quiet = run(false).await;
    assert!(quiet.passed, "{quiet:#?}");
    let late = run(true).await;
    assert!(!late.passed);
    let detail = &late.failure().unwrap().detail;
    assert!(
        detail.contains("after 50ms") && detail.contains("\"kong-gateway.kong\", which must report nothing"),
        "{detail}"
    );
}

/// Cleanup deletes every cluster-scoped object the scope check let the scenario create (named
/// `<namespace>` or `<namespace>-...`, carrying the run's label), and no other scenario's: a
/// leaked `global: "true"` KongClusterPlugin would apply to every later scenario.
#[tokio::test]
async fn clean_up_deletes_the_scenarios_own_cluster_plugins_and_no_others() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let plugin = |name: &str| {
        json!({"apiVersion": "configuration.konghq.com/v1", "kind": "KongClusterPlugin",
               "metadata": {"name": name, "labels": {"kme2e.dev/run": "r1"}}, "plugin": "cors"})
    };
    let (client, asked) = kube_mock(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/apis/configuration.konghq.com/v1") => (
            200,
            json!({"kind": "APIResourceList", "groupVersion": "configuration.konghq.com/v1", "resources": [
                {"name": "kongclusterplugins", "singularName": "kongclusterplugin", "namespaced": false,
                 "kind": "KongClusterPlugin", "verbs": ["get", "list", "delete"]}]}),
        ),
        ("GET", "/apis/configuration.konghq.com/v1/kongclusterplugins") => (
            200,
            json!({"apiVersion": "configuration.konghq.com/v1", "kind": "KongClusterPluginList", "metadata": {},
                   "items": [plugin("t-1"), plugin("t-1-global"), plugin("t-10-global"), plugin("t-2-x")]}),
        ),
        ("DELETE", _) => (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
        _ => kube_status(404, "NotFound"),
    });
    let mut live = live(&versions, &root, "127.0.0.1:9".parse().unwrap());
    live.client = client;
    live.clean_up("t-1", "r1").await.unwrap();
    let deleted: Vec<String> = asked
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("kongclusterplugins"))
        .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(deleted, ["t-1", "t-1-global"]);
}

/// The proof a relayed denial needs is about the Service behind the refused route: the from-pod
/// URL names one Service of the scenario's namespace, the Ingress routes the path to Services.
#[test]
fn the_proven_backend_is_the_routes_own() {
    assert_eq!(
        service_of_url("http://backend-service.t-1.svc.cluster.local/", "t-1").as_deref(),
        Some("backend-service")
    );
    assert_eq!(service_of_url("http://echo:8080/x", "t-1").as_deref(), Some("echo"));
    assert_eq!(service_of_url("http://echo.other.svc.cluster.local/", "t-1"), None, "another namespace");
    let (objects, host) = fixture_objects("seed-istio-as-written");
    let host = host.as_str();
    let backends = ingress_backends(&objects, host, "/api/health");
    assert_eq!(backends.into_iter().collect::<Vec<_>>(), ["backend-service"]);
    assert!(ingress_backends(&objects, host, "/apix").is_empty(), "prefix by path segment");
    assert!(ingress_backends(&objects, "other.example", "/api/health").is_empty(), "another host");
}

/// Scenario `name`'s fixture objects on Istio, rendered for run `r1test`, and its host.
fn fixture_objects(name: &str) -> (Vec<serde_json::Value>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let loaded = load(&root.join(format!("scenarios/{name}.yaml")), &root.join("fixtures"), &ctx, &profile).unwrap();
    let mut objects = Vec::new();
    for f in &loaded.scenario.fixtures {
        let manifests = crate::scenario::fixture::load(&root.join("fixtures").join(&f.value), &loaded.vars).unwrap();
        objects.extend(manifests.into_iter().map(|m| m.object));
    }
    (objects, loaded.vars.get("host").unwrap().to_owned())
}

/// Kong's HTTPRoutes count for the backend proof as its Ingresses do: the scenario's own
/// gateway-split fixture routes its host's /echo to both Services; the mesh's route (its parent
/// is a Service) routes nothing into Kong.
#[test]
fn the_backends_of_kongs_httproutes_are_read_from_the_fixtures() {
    let (objects, host) = fixture_objects("gateway-split-layered");
    let host = host.as_str();
    let backends: Vec<String> = ingress_backends(&objects, host, "/echo/split").into_iter().collect();
    assert_eq!(backends, ["echo-v1", "echo-v2"]);
    assert!(ingress_backends(&objects, host, "/echox").is_empty(), "prefix by path segment");
    assert!(ingress_backends(&objects, "other.example", "/echo/split").is_empty(), "another host");
    // A backend in another namespace keeps the route unproven: it is never among the proven.
    let mut crossed = objects.clone();
    for o in crossed.iter_mut().filter(|o| o["kind"] == "HTTPRoute" && o["metadata"]["name"] == "echo-split") {
        o["spec"]["rules"][0]["backendRefs"][1]["namespace"] = serde_json::json!("payments");
    }
    let backends: Vec<String> = ingress_backends(&crossed, host, "/echo/split").into_iter().collect();
    assert_eq!(backends, ["echo-v1", "payments/echo-v2"]);
}

/// An untrusted bundle's namespace gets the sandbox's egress policy before any fixture: the
/// mesh's control plane, Kong's and the collector's namespaces and DNS stay reachable, nothing
/// else. Without the sandbox no policy is written.
#[tokio::test(start_paused = true)]
async fn an_untrusted_bundles_namespace_gets_the_egress_sandbox() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let mut loaded = load(&root.join("scenarios/ingress-basic.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
    // The namespace and the fixtures are what this is about.
    loaded.scenario.steps.clear();
    for sandbox in [true, false] {
        let mut live = live(&versions, &root, "127.0.0.1:9".parse().unwrap());
        let (client, asked) = kube_mock(cluster_with_network_policies);
        live.client = client;
        live.sandbox = sandbox;
        let _ = live.run(&loaded, "r1test", &CancellationToken::new()).await;
        let asked = asked.lock().unwrap().clone();
        let policy = asked.iter().find(|r| r.method == "PATCH" && r.path.contains("/networkpolicies/"));
        match (sandbox, policy) {
            (true, Some(p)) => {
                assert!(p.path.ends_with(&format!("/networkpolicies/{}", crate::scenario::scope::SANDBOX_POLICY)));
                let body: Value = serde_json::from_str(&p.body).unwrap();
                let allowed = &body["spec"]["egress"][2]["to"][0]["namespaceSelector"]["matchExpressions"][0]["values"];
                assert_eq!(allowed, &json!(["istio-system", "tracing"]), "{body}");
                let first_fixture = asked.iter().position(|r| r.method == "PATCH" && r.path.contains("/services/"));
                let policy_at = asked.iter().position(|r| r.path.contains("/networkpolicies/"));
                assert!(policy_at < first_fixture, "the policy comes before the fixtures");
            }
            (false, None) => {}
            other => panic!("sandbox {sandbox}: {other:?}"),
        }
    }
}

/// The sandbox's rules hold on what is actually sent, whatever the offline check saw: an
/// untrusted bundle's fixture with a command of its own is refused before the API server, and
/// its pods get the default seccomp filter.
#[tokio::test(start_paused = true)]
async fn the_sandbox_guards_every_object_sent() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let mut loaded = load(&root.join("scenarios/ingress-basic.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
    loaded.scenario.steps.clear();
    let fixtures = tempfile::tempdir().unwrap();
    for sub in ["base", "kong"] {
        std::fs::create_dir_all(fixtures.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(root.join("fixtures").join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), fixtures.path().join(sub).join(entry.file_name())).unwrap();
        }
    }
    let echo = std::fs::read_to_string(fixtures.path().join("base/echo.yaml")).unwrap();
    let line = echo.lines().find(|l| l.trim() == "image: \"{{ images.echo }}\"").unwrap().to_owned();
    let indent = &line[..line.len() - line.trim_start().len()];
    for (sandbox, with_command) in [(true, true), (true, false)] {
        let text = if with_command {
            echo.replacen(&format!("{line}\n"), &format!("{line}\n{indent}command: [sh, -c, 'id']\n"), 1)
        } else {
            echo.clone()
        };
        std::fs::write(fixtures.path().join("base/echo.yaml"), text).unwrap();
        let mut live = live(&versions, &root, "127.0.0.1:9".parse().unwrap());
        live.fixtures_dir = fixtures.path().to_owned();
        let (client, asked) = kube_mock(cluster_with_network_policies);
        live.client = client;
        live.sandbox = sandbox;
        let run = live.run(&loaded, "r1test", &CancellationToken::new()).await;
        let asked = asked.lock().unwrap().clone();
        let sent = asked.iter().find(|r| r.method == "PATCH" && r.path.ends_with("/deployments/echo-v1"));
        if with_command {
            assert!(sent.is_none(), "refused before the API server");
            assert!(run.steps[0].detail.contains("sandbox refuses it"), "{:?}", run.steps[0]);
        } else {
            let body: Value = serde_json::from_str(&sent.expect("applied").body).unwrap();
            assert_eq!(
                body.pointer("/spec/template/spec/securityContext/seccompProfile/type"),
                Some(&json!("RuntimeDefault"))
            );
        }
    }
}

/// The mock cluster, also serving NetworkPolicies (the sandbox's own kind).
fn cluster_with_network_policies(req: &KubeRequest) -> (u16, Value) {
    if req.path == "/apis/networking.k8s.io/v1" {
        return (
            200,
            json!({"kind": "APIResourceList", "groupVersion": "networking.k8s.io/v1", "resources": [
                {"name": "ingresses", "singularName": "", "namespaced": true, "kind": "Ingress", "verbs": ["patch", "get"]},
                {"name": "networkpolicies", "singularName": "", "namespaced": true, "kind": "NetworkPolicy", "verbs": ["patch", "get"]}]}),
        );
    }
    cluster(req)
}

/// A restart under load, end to end against the mock cluster and a stand-in Kong whose answers
/// fail for `outage` after the restart's patch reaches the API server (`None`: from then on):
/// within budget, over it, and never recovering. The window, its transcript and the
/// disruption's timing come from the real step.
async fn restart_under_load(outage: Option<Duration>) -> ScenarioRun {
    use std::sync::{Arc, Mutex};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let mut loaded =
        load(&root.join("scenarios/resilience-backend-rollout.yaml"), &root.join("fixtures"), &ctx, &profile).unwrap();
    let Some(Step::Load(s)) = loaded.scenario.steps.get_mut(2) else { panic!("step 3 is the load") };
    s.rate = 50;
    s.warmup = crate::scenario::Timeout(Duration::from_millis(300));
    s.cooldown = crate::scenario::Timeout(Duration::from_millis(1_200));
    s.budget.outage = crate::scenario::Timeout(Duration::from_millis(150));
    let namespace = loaded.vars.get("namespace").unwrap().to_owned();
    let restarted: Arc<Mutex<Option<std::time::Instant>>> = Arc::default();
    let seen_restart = restarted.clone();
    let (client, _) = kube_mock(move |req| {
        if req.method == "PATCH" && req.path.ends_with("/deployments/echo-v1") && req.body.contains(k8s::RESTARTED_AT) {
            *seen_restart.lock().unwrap() = Some(std::time::Instant::now());
            let namespace = req.path.split('/').nth(5).unwrap_or_default();
            return (200, crate::testing::deployment("echo-v1", namespace, crate::testing::Rollout::Done));
        }
        cluster(req)
    });
    let secret = ctx.secret.clone();
    let ns = namespace.clone();
    let addr = serve(move |head| {
        let since = *restarted.lock().unwrap();
        let failing = since.is_some_and(|t| outage.is_none_or(|o| t.elapsed() < o));
        if failing && head.path.starts_with("/echo/load") {
            return Reply::json(
                502,
                r#"{"message":"An invalid response was received from the upstream server"}"#.into(),
            );
        }
        kong(head, &ns, &secret)
    })
    .await;
    let mut live = live(&versions, &root, addr);
    live.client = client;
    live.run(&loaded, "r1test", &CancellationToken::new()).await
}

#[tokio::test]
async fn a_restart_under_load_is_judged_by_its_budget() {
    let run = restart_under_load(Some(Duration::ZERO)).await;
    assert!(run.passed, "{run:#?}");
    let window = &run.windows[0];
    assert_eq!(window.step, 3);
    assert_eq!(window.disruptions.len(), 1);
    assert_eq!(window.disruptions[0].name, "restart Deployment/echo-v1");
    assert!(window.disruptions[0].start >= Duration::from_millis(300), "after the warmup: {window:?}");
    assert!(window.verdict.sent >= 30 && window.verdict.failed == 0, "{}", window.verdict);
    assert!(run.steps[3].detail.starts_with("0 of "), "{}", run.steps[3].detail);
    // The window's transcript replays to the same verdict.
    let (_, text) = run.transcripts.iter().find(|(name, _)| name.ends_with("-load.yaml")).expect("a load transcript");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("load.yaml");
    std::fs::write(&file, text).unwrap();
    let replayed = crate::replay::judge(&crate::replay::load(&file).unwrap(), &file).unwrap();
    assert_eq!(replayed.verdict, crate::replay::Verdict::Pass, "{}", replayed.detail);

    // 400 ms of 502s: an outage over the 150 ms budget, a verdict naming it.
    let run = restart_under_load(Some(Duration::from_millis(400))).await;
    assert!(!run.passed);
    let failure = run.failure().unwrap();
    assert_eq!(failure.failure, Some(FailureKind::Verdict), "{failure:?}");
    assert!(failure.detail.contains("is longer than the budget's 150ms"), "{}", failure.detail);
    assert!(run.windows[0].verdict.recovered);
    let after = run.windows[0].verdict.recoveries[0].after.unwrap();
    assert!(after >= Duration::from_millis(300), "the outage is the restart's: recovered after {after:?}");

    // Never answering again after the restart: the window ends in an outage.
    let run = restart_under_load(None).await;
    let failure = run.failure().unwrap();
    assert!(failure.detail.contains("the traffic never recovered"), "{}", failure.detail);
    assert!(!run.windows[0].verdict.recovered);
}

/// An upgrade the test makes instead of Helm: it records the namespaces it was handed and
/// reports `proxy` as what the data plane must run afterwards.
struct FakeUpgrade {
    proxy: ProxyAt,
    namespaces: std::sync::Mutex<Vec<String>>,
}

impl StackUpgrade for FakeUpgrade {
    fn describe(&self) -> String {
        "istio 1.30.5 -> 1.31.1 as canary revision 1-31-1 (profile istio-1-31)".into()
    }

    fn upgrade<'a>(
        &'a self,
        namespaces: &'a [String],
        _: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Upgraded, String>> + Send + 'a>> {
        self.namespaces.lock().unwrap().extend(namespaces.iter().cloned());
        Box::pin(async move { Ok(Upgraded { done: "helm istiod-1-31-1".into(), proxy: Some(self.proxy.clone()) }) })
    }
}

/// The canary upgrade scenario against the mock cluster: once a workload's restart patch
/// arrives, its pods are the ones `after` describes (release, revision), as an injector leaves
/// them ([`crate::testing::injected_pod`]); before, they run 1.30.5 of the default revision.
async fn canary_under_load(after: fn(&str) -> (&'static str, &'static str)) -> (ScenarioRun, Vec<String>) {
    canary_under_load_in(after, true).await
}

/// [`canary_under_load`] with the scenario's namespace injected by the mesh or not (`inject`).
async fn canary_under_load_in(
    after: fn(&str) -> (&'static str, &'static str),
    inject: bool,
) -> (ScenarioRun, Vec<String>) {
    use std::sync::{Arc, Mutex};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let versions = crate::profile::Versions::load(&root.join("versions.toml")).unwrap();
    let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
    let ctx = RunContext::new("r1test", Mesh::Istio);
    let mut loaded =
        load(&root.join("scenarios/upgrade-istio-canary-under-load.yaml"), &root.join("fixtures"), &ctx, &profile)
            .unwrap();
    let Some(Step::Load(s)) = loaded.scenario.steps.get_mut(2) else { panic!("step 3 is the load") };
    s.warmup = crate::scenario::Timeout(Duration::from_millis(100));
    s.cooldown = crate::scenario::Timeout(Duration::from_millis(100));
    for step in &mut s.during {
        if let Step::Restart(r) = step {
            r.timeout = crate::scenario::Timeout(Duration::from_millis(400));
        }
    }
    loaded.scenario.namespace.inject = inject;
    let namespace = loaded.vars.get("namespace").unwrap().to_owned();
    let restarted: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = restarted.clone();
    let kong_deployment = || {
        let mut d = crate::testing::deployment("kong-gateway", "kong", crate::testing::Rollout::Done);
        d["spec"]["selector"] = json!({"matchLabels": {"app.kubernetes.io/name": "gateway"}});
        d["spec"]["template"]["metadata"]["labels"] = json!({"app.kubernetes.io/name": "gateway"});
        d
    };
    let (client, _) = kube_mock(move |req| {
        let name_of = |path: &str| path.rsplit('/').next().unwrap_or_default().to_owned();
        if req.method == "PATCH" && req.path.contains("/deployments/") && req.body.contains(k8s::RESTARTED_AT) {
            seen.lock().unwrap().push(name_of(&req.path));
        }
        let pod = |name: &str, workload: &str, labels: Value, app: &str| {
            let moved = seen.lock().unwrap().iter().any(|w| w == workload);
            let (version, revision) =
                if moved || after(workload).0 == "out" { after(workload) } else { ("1.30.5", "default") };
            // `out`: a workload that opts out of the mesh, before and after.
            if version == "out" {
                let mut labels = labels;
                labels["sidecar.istio.io/inject"] = json!("false");
                return crate::testing::injected_pod(name, labels, app, Mesh::None, "", "");
            }
            crate::testing::injected_pod(name, labels, app, Mesh::Istio, version, revision)
        };
        let list =
            |items: Vec<Value>| (200, json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}));
        match req.path.as_str() {
            "/apis/apps/v1/namespaces/kong/deployments" => (
                200,
                json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": [kong_deployment()]}),
            ),
            "/apis/apps/v1/namespaces/kong/deployments/kong-gateway" => (200, kong_deployment()),
            "/api/v1/namespaces/kong/pods" => list(vec![pod(
                "kong-gateway-7d9f-x2k4q",
                "kong-gateway",
                json!({"app.kubernetes.io/name": "gateway"}),
                "proxy",
            )]),
            p if p.ends_with("/pods") && !req.query.contains("kme2e") => {
                list(vec![pod("echo-v1-6d8f9-abcde", "echo-v1", json!({"app": "echo", "version": "v1"}), "echo")])
            }
            _ => cluster(req),
        }
    });
    let secret = ctx.secret.clone();
    let ns = namespace.clone();
    let addr = serve(move |head| kong(head, &ns, &secret)).await;
    let upgrade = Arc::new(FakeUpgrade {
        proxy: ProxyAt { version: "1.31.1".into(), revision: Some("1-31-1".into()) },
        namespaces: Mutex::default(),
    });
    let mut live = live(&versions, &root, addr);
    live.client = client;
    live.upgrades.insert(crate::scenario::UpgradePart::Mesh(crate::scenario::MeshStrategy::Canary), upgrade.clone());
    let run = live.run(&loaded, "r1test", &CancellationToken::new()).await;
    let handed = upgrade.namespaces.lock().unwrap().clone();
    let expected: Vec<String> = if inject { vec![namespace] } else { vec![] };
    assert_eq!(handed, expected, "the canary is handed the scenario's namespace to relabel when the mesh injects it");
    (run, handed)
}

/// After a canary upgrade, each restart checks its new pods: the new release's proxy injected
/// by the new revision passes; a pod left on the old release, or on the old revision's
/// injector, fails the restart (and so the load) naming the pod and what it runs.
#[tokio::test]
async fn after_an_upgrade_each_restart_checks_its_pods_run_the_new_proxy() {
    let (run, _) = canary_under_load(|_| ("1.31.1", "1-31-1")).await;
    assert!(run.passed, "{run:#?}");
    let window = &run.windows[0];
    let names: Vec<&str> = window.disruptions.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["upgrade the mesh as a canary revision", "restart Kong's gateway", "restart Deployment/echo-v1"]
    );

    // The backend's pods keep the old proxy (its pods pin the old image).
    let (run, _) =
        canary_under_load(|w| if w == "echo-v1" { ("1.30.5", "1-31-1") } else { ("1.31.1", "1-31-1") }).await;
    assert!(!run.passed);
    let failure = run.failure().unwrap();
    assert_eq!(failure.failure, Some(FailureKind::Verdict), "{failure:?}");
    assert!(
        failure.detail.contains("echo-v1-6d8f9-abcde")
            && failure.detail.contains("runs istio-proxy docker.io/istio/proxyv2:1.30.5, not release 1.31.1")
            && failure.detail.contains("the data plane did not move"),
        "{}",
        failure.detail
    );

    // A backend that opts out of the mesh is not asked to come back on a proxy it never had.
    let (run, _) = canary_under_load(|w| if w == "echo-v1" { ("out", "") } else { ("1.31.1", "1-31-1") }).await;
    assert!(run.passed, "{run:#?}");

    // A namespace the mesh does not inject is not moved: a pod there that opted in itself stays
    // on the old revision, and is not asked for the new one.
    let (run, _) =
        canary_under_load_in(|w| if w == "echo-v1" { ("1.30.5", "default") } else { ("1.31.1", "1-31-1") }, false)
            .await;
    assert!(run.passed, "{run:#?}");
    let details: Vec<&str> = run.steps.iter().map(|s| s.detail.as_str()).collect();
    assert!(details.iter().any(|d| d.contains("its namespace was not moved to the revision")), "{details:#?}");

    // Kong's pods injected by the old control plane (its namespace was not moved to the revision).
    let (run, _) =
        canary_under_load(|w| if w == "kong-gateway" { ("1.31.1", "default") } else { ("1.31.1", "1-31-1") }).await;
    let failure = run.failure().unwrap();
    assert!(
        failure.detail.contains("kong-gateway-7d9f-x2k4q") && failure.detail.contains("revision `default`, not 1-31-1"),
        "{}",
        failure.detail
    );
}
