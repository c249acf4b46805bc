//! Scenarios that cannot pass, whatever the cluster does, found offline:
//!
//! - a step that reads the echo backend's report (`expect.backend`, `expect.mtls`, a trace's
//!   `expect.backend`, `split`'s attribution by version) while no workload of the scenario runs
//!   the echo image: the answer of any other service has no report to read;
//! - a request through Kong to a host no Ingress or HTTPRoute of the scenario routes, in a step
//!   that needs the request to reach a backend (a negative control expecting 404 is fine);
//! - a `jwt: valid` request with no consumer credential for the run's key: Kong answers 401;
//! - a trace step that needs spans from a service (`services`, `edges`) it also lists as `absent`.
//!
//! Each is a located error at the step, like every other scenario check (`Catalog::check_mesh`
//! and `plan` call it).

use serde_json::Value;

use super::fixture::Manifest;
use super::load::{LoadError, LoadedScenario};
use super::model::{Expect, JwtToken, Mesh, MetricsTarget, Request, Step};
use crate::diagnostic::Diagnostic;

/// What a step asks of the request through Kong.
struct Through<'a> {
    request: &'a Request,
    /// The step reads the echo backend's report.
    needs_echo: bool,
    /// The request must reach a backend for the step to pass.
    must_reach: bool,
}

fn through_kong(step: &Step) -> Option<Through<'_>> {
    let reads_echo = |e: &Expect| e.backend.is_some() || e.mtls.is_some();
    let reaching = |e: &Expect| {
        reads_echo(e)
            || (!e.refused
                && e.status.as_ref().is_some_and(|s| s.as_slice().iter().all(|code| (200..300).contains(code))))
    };
    match step {
        Step::Http(s) => {
            Some(Through { request: &s.request, needs_echo: reads_echo(&s.expect), must_reach: reaching(&s.expect) })
        }
        Step::Split(s) => Some(Through { request: &s.request, needs_echo: true, must_reach: true }),
        Step::Trace(s) => {
            Some(Through { request: &s.request, needs_echo: !s.expect.backend.is_empty(), must_reach: true })
        }
        Step::RateLimit(s) => Some(Through { request: &s.request, needs_echo: false, must_reach: true }),
        _ => None,
    }
}

/// The first reason `loaded` cannot pass with `manifests` (its rendered fixtures and the files
/// its steps apply), as a located error.
pub fn check(loaded: &LoadedScenario, manifests: &[Manifest]) -> Result<(), LoadError> {
    mesh_fit(loaded)?;
    let echo = loaded.vars.get("images.echo").unwrap_or_default();
    let runs_echo = manifests.iter().any(|m| images_of(&m.object).any(|i| i == echo));
    let default_host = loaded.vars.get("host").unwrap_or_default();
    let routes: Vec<Vec<&str>> = manifests.iter().filter_map(route_hosts).collect();
    let jwt_key = loaded.vars.get("jwt.key").unwrap_or_default();
    for (i, step) in loaded.scenario.steps.iter().enumerate() {
        let Some(through) = through_kong(step) else { continue };
        let at =
            |path: &[&str], message: String, help: &str| Err(step_error(loaded, i, "unreachable", path, message, help));
        if through.needs_echo && !runs_echo {
            let what = if matches!(step, Step::Split(_)) {
                "attributes answers by the echo backend's pod"
            } else {
                "reads the echo backend's report"
            };
            return at(
                &["expect"],
                format!("step {} {what}, and no workload of this scenario runs the echo image ({echo})", i + 1),
                "apply fixtures/base/echo.yaml (or `image: \"{{ images.echo }}\"`), or check your own service with \
                 `status`, `headers` and `refused` only",
            );
        }
        let host = through.request.host.as_deref().unwrap_or(default_host);
        if through.must_reach && !routes.is_empty() && !routes.iter().any(|hosts| serves(hosts, host)) {
            let known: Vec<&str> = routes.iter().flatten().copied().collect();
            return at(
                &["request"],
                format!(
                    "step {} requests host `{host}`, which no Ingress or HTTPRoute of this scenario routes (routed: {})",
                    i + 1,
                    known.join(", ")
                ),
                "route the host (`host: \"{{ host }}\"` in the Ingress rule), or request one that is routed",
            );
        }
        if let Step::Trace(t) = step {
            let e = &t.expect;
            let required = e.services.iter().chain(e.edges.iter().flat_map(|edge| [&edge.from, &edge.to]));
            if let Some(both) = required.clone().find(|s| e.absent.contains(s)) {
                return at(
                    &["expect", "absent"],
                    format!("step {} needs spans from `{both}` and none from it at once", i + 1),
                    "a service is either in `services`/`edges` or in `absent`",
                );
            }
        }
        if through.request.jwt == Some(JwtToken::Valid) && !has_jwt_credential(manifests, jwt_key) {
            return at(
                &["request", "jwt"],
                format!(
                    "step {} sends a valid JWT, and no KongConsumer of this scenario holds a jwt credential with the run's key",
                    i + 1
                ),
                "add a Secret labelled `konghq.com/credential: jwt` with `key: \"{{ jwt.key }}\"` and \
                 `secret: \"{{ jwt.secret }}\"`, listed in a KongConsumer's `credentials` (fixtures/kong/jwt.yaml)",
            );
        }
    }
    Ok(())
}

/// A step whose evidence the scenario's mesh does not produce: a caller identity read off the
/// backend's headers in ambient mode (ztunnel adds none; a waypoint strips XFCC unless asked
/// otherwise: istio/istio 1.30 pilot/pkg/networking/core/listener_waypoint.go), a pod's mesh
/// proxy where pods have none, ztunnel's metrics where there is no ztunnel.
fn mesh_fit(loaded: &LoadedScenario) -> Result<(), LoadError> {
    let Some(mesh) = loaded.vars.get("mesh").and_then(|m| m.parse::<Mesh>().ok()) else { return Ok(()) };
    for (i, step) in loaded.scenario.steps.iter().enumerate() {
        let expect = match step {
            Step::Http(s) => Some(&s.expect),
            Step::FromPod(s) => Some(&s.expect),
            _ => None,
        };
        let problem: Option<(&[&str], String, &str)> = match step {
            _ if mesh == Mesh::IstioAmbient && expect.is_some_and(|e| e.mtls.is_some()) => Some((
                &["expect", "mtls"],
                format!(
                    "step {} reads the caller's identity off the backend's headers, which ambient mode does not add",
                    i + 1
                ),
                "prove identity with an L4 AuthorizationPolicy admitting only Kong's principal (a client of another \
                 identity `refused`), or ztunnel's metrics (`target: ztunnel`, `source_principal`)",
            )),
            Step::Metrics(m) => match (&m.target, mesh) {
                (MetricsTarget::MeshProxy { .. }, Mesh::IstioAmbient | Mesh::None) => Some((
                    &["target"],
                    format!("step {} reads the pods' mesh proxy, and on {mesh} pods run none", i + 1),
                    "on istio-ambient read ztunnel's metrics (`target: ztunnel`)",
                )),
                (MetricsTarget::Ztunnel, m) if m != Mesh::IstioAmbient => Some((
                    &["target"],
                    format!("step {} reads ztunnel's metrics, and {mesh} runs no ztunnel", i + 1),
                    "ztunnel is Istio's ambient data plane: run the step on istio-ambient only",
                )),
                _ => None,
            },
            _ => None,
        };
        if let Some((path, message, help)) = problem {
            return Err(step_error(loaded, i, "mesh", path, message, help));
        }
        if mesh != Mesh::Istio
            && let Some(path) = canary_at(step)
        {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            return Err(step_error(
                loaded,
                i,
                "mesh",
                &path,
                format!("step {} upgrades the mesh as a canary revision, which {mesh} does not have", i + 1),
                "a revision-based canary is Istio's (sidecar mode); elsewhere the mesh upgrades in place \
                 (leave `strategy` out), or list the scenario's `meshes: [istio]` only",
            ));
        }
    }
    Ok(())
}

/// Where in `step` (relative to it) an upgrade asks for a canary: its own `strategy`, or that
/// of an upgrade its load runs.
fn canary_at(step: &Step) -> Option<Vec<String>> {
    let canary = |s: &Step| matches!(s, Step::Upgrade(u) if u.part == super::model::UpgradePart::Mesh(super::model::MeshStrategy::Canary));
    if canary(step) {
        return Some(vec!["strategy".into()]);
    }
    let j = step.nested().iter().position(canary)?;
    Some(vec!["during".into(), j.to_string(), "upgrade".into(), "strategy".into()])
}

/// A located error at field `path` of step `i` (0-based).
fn step_error(loaded: &LoadedScenario, i: usize, rule: &str, path: &[&str], message: String, help: &str) -> LoadError {
    let kind = loaded.scenario.steps[i].kind();
    let index = i.to_string();
    let mut field = vec!["steps", index.as_str(), kind];
    field.extend_from_slice(path);
    let position = loaded.rendered.source_position(crate::yaml::locate(&loaded.rendered.text, &field));
    LoadError(Box::new(
        Diagnostic::error(rule, &loaded.path, position, message)
            .with_field(format!("steps[{i}].{kind}.{}", path.join(".")))
            .with_source(&loaded.source)
            .with_help(help.to_owned()),
    ))
}

/// Container images of a workload (Deployment, StatefulSet, DaemonSet, Pod).
fn images_of(object: &Value) -> impl Iterator<Item = &str> {
    let spec = object.pointer("/spec/template/spec").or_else(|| object.get("spec"));
    ["containers", "initContainers"]
        .into_iter()
        .filter_map(move |list| spec.and_then(|s| s.get(list)).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
}

/// The hosts an Ingress or an HTTPRoute on a Gateway serves; an empty list serves every host.
/// An HTTPRoute whose parents are all Services (GAMMA) is the mesh's routing inside the
/// cluster, no route into Kong: it serves no host here.
fn route_hosts(m: &Manifest) -> Option<Vec<&str>> {
    match m.kind.as_str() {
        "Ingress" => {
            let rules = m.object.pointer("/spec/rules").and_then(Value::as_array);
            let hosts: Option<Vec<&str>> =
                rules.map(|rules| rules.iter().map(|r| r.get("host").and_then(Value::as_str).unwrap_or("")).collect());
            // No rules (a default backend) or a rule without host: every host.
            Some(match hosts {
                Some(h) if !h.is_empty() && h.iter().all(|h| !h.is_empty()) => h,
                _ => Vec::new(),
            })
        }
        "HTTPRoute"
            if !m.object.pointer("/spec/parentRefs").and_then(Value::as_array).is_some_and(|parents| {
                !parents.is_empty() && parents.iter().all(|p| p.get("kind").and_then(Value::as_str) == Some("Service"))
            }) =>
        {
            Some(
                m.object
                    .pointer("/spec/hostnames")
                    .and_then(Value::as_array)
                    .map(|h| h.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default(),
            )
        }
        _ => None,
    }
}

/// Whether a route with `hosts` serves `host` (`*.example.com` serves one more label).
fn serves(hosts: &[&str], host: &str) -> bool {
    hosts.is_empty()
        || hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
            None => *h == host,
        })
}

/// A KongConsumer lists a Secret labelled as a jwt credential whose `key` is `key`.
fn has_jwt_credential(manifests: &[Manifest], key: &str) -> bool {
    let credentials: Vec<&str> = manifests
        .iter()
        .filter(|m| m.kind == "Secret")
        .filter(|m| m.object.pointer("/metadata/labels/konghq.com~1credential").and_then(Value::as_str) == Some("jwt"))
        .filter(|m| secret_value(&m.object, "key").as_deref() == Some(key))
        .map(|m| m.name.as_str())
        .collect();
    manifests.iter().filter(|m| m.kind == "KongConsumer").any(|c| {
        c.object
            .get("credentials")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().filter_map(Value::as_str).any(|s| credentials.contains(&s)))
    })
}

/// A Secret's value at `key`, from `stringData` or base64 `data`.
fn secret_value(secret: &Value, key: &str) -> Option<String> {
    if let Some(v) = secret.pointer(&format!("/stringData/{key}")).and_then(Value::as_str) {
        return Some(v.to_owned());
    }
    use base64::Engine;
    let encoded = secret.pointer(&format!("/data/{key}")).and_then(Value::as_str)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::testing::check_in_a_copy as checked;

    const HEAD: &str = "name: case\nsummary: s\nmeshes: [istio]\ncovers: [ingress]\n";

    /// Evidence the mesh does not produce is refused where the step asks for it: a caller
    /// identity header in ambient mode, a pod's mesh proxy where pods have none, ztunnel's
    /// metrics where there is no ztunnel; each passes where the mesh does produce it.
    #[test]
    fn evidence_the_mesh_does_not_produce_cannot_pass() {
        use crate::scenario::Mesh;
        use crate::testing::check_in_a_copy_on as on;
        let head = |meshes: &str| {
            format!(
                "name: case\nsummary: s\nmeshes: [{meshes}]\ncovers: [mtls]\nfixtures: [base/echo.yaml, kong/ingress-echo.yaml]\n"
            )
        };
        let mtls = "steps:\n  - http:\n      request: {path: /echo/x}\n      expect: {status: 200, mtls: {client: kong/kong-gateway}}\n";
        let err = on(Mesh::IstioAmbient, &format!("{}{mtls}", head("istio-ambient")), &[]).unwrap_err();
        assert!(err.contains("step 1 reads the caller's identity off the backend's headers"), "{err}");
        assert!(err.contains("case.yaml:9:") && err.contains("steps[0].http.expect.mtls"), "located: {err}");
        on(Mesh::Istio, &format!("{}{mtls}", head("istio")), &[]).unwrap();
        let metrics = |target: &str| {
            format!(
                "steps:\n  - metrics:\n      target: {target}\n      expect: [{{name: m, labels: {{ns: \"{{{{ namespace }}}}\"}}}}]\n"
            )
        };
        let proxy = metrics("{mesh-proxy: {selector: {app: echo}}}");
        let err = on(Mesh::IstioAmbient, &format!("{}{proxy}", head("istio-ambient")), &[]).unwrap_err();
        assert!(err.contains("reads the pods' mesh proxy, and on istio-ambient pods run none"), "{err}");
        let err = on(Mesh::None, &format!("{}{proxy}", head("none")), &[]).unwrap_err();
        assert!(err.contains("on none pods run none"), "{err}");
        on(Mesh::Linkerd, &format!("{}{proxy}", head("linkerd")), &[]).unwrap();
        let ztunnel = metrics("ztunnel");
        for mesh in [Mesh::Istio, Mesh::Linkerd, Mesh::None] {
            let err = on(mesh, &format!("{}{ztunnel}", head(mesh.as_str())), &[]).unwrap_err();
            assert!(err.contains("reads ztunnel's metrics, and") && err.contains("runs no ztunnel"), "{mesh}: {err}");
        }
        on(Mesh::IstioAmbient, &format!("{}{ztunnel}", head("istio-ambient")), &[]).unwrap();
    }

    /// A canary upgrade is Istio's: on another mesh it is refused at its `strategy`, inside the
    /// load that runs it too; on Istio it checks. An upgrade that names no part, both parts, or
    /// a strategy for Kong's chart is refused where it is written.
    #[test]
    fn a_canary_upgrade_is_istios_and_an_upgrade_moves_one_part() {
        use crate::scenario::Mesh;
        let on = crate::testing::check_in_a_copy_on;
        let scenario = |meshes: &str, upgrade: &str| {
            format!(
                "name: case\nsummary: s\nmeshes: [{meshes}]\ncovers: [upgrade]\nexclusive: true\n\
                 fixtures: [base/echo.yaml, kong/ingress-echo.yaml]\nsteps:\n  - load:\n      request: {{path: /echo/x}}\n\
                 \x20     rate: 5\n      budget: {{errors: 0.01, outage: 2s}}\n      during:\n        - upgrade: {upgrade}\n"
            )
        };
        let canary = "{mesh: next, strategy: canary}";
        for mesh in [Mesh::Linkerd, Mesh::IstioAmbient] {
            let err = on(mesh, &scenario(mesh.as_str(), canary), &[]).unwrap_err();
            assert!(err.contains(&format!("as a canary revision, which {mesh} does not have")), "{err}");
            assert!(err.contains("steps[0].load.during.0.upgrade.strategy") && err.contains("case.yaml:13:"), "{err}");
        }
        on(Mesh::Istio, &scenario("istio", canary), &[]).unwrap();
        on(Mesh::Linkerd, &scenario("linkerd", "{mesh: next}"), &[]).unwrap();
        on(Mesh::Linkerd, &scenario("linkerd", "{kong: next}"), &[]).unwrap();
        for (upgrade, expected) in [
            ("{mesh: next, kong: next}", "an upgrade moves one part of the stack"),
            ("{timeout: 5m}", "an upgrade moves one part of the stack"),
            ("{kong: next, strategy: canary}", "Kong's chart moves in place"),
            ("{mesh: next, strategy: blue-green}", "unknown variant `blue-green`"),
            ("{mesh: next, revision: x}", "unknown field `revision`"),
        ] {
            let err = on(Mesh::Istio, &scenario("istio", upgrade), &[]).unwrap_err();
            assert!(err.contains(expected) && err.contains("case.yaml:13:"), "{upgrade}: {err}");
        }
    }

    #[test]
    fn echo_expectations_without_the_echo_backend_cannot_pass() {
        let shop = concat!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop, namespace: \"{{ namespace }}\"}\n",
            "spec:\n  selector: {matchLabels: {app: shop}}\n  template:\n    metadata: {labels: {app: shop}}\n",
            "    spec:\n      containers: [{name: shop, image: \"{{ images.client }}\"}]\n",
        );
        let steps =
            "steps:\n  - http:\n      request: {path: /echo/x}\n      expect: {status: 200, backend: {version: v1}}\n";
        let err =
            checked(&format!("{HEAD}fixtures: [shop.yaml, kong/ingress-echo.yaml]\n{steps}"), &[("shop.yaml", shop)])
                .unwrap_err();
        assert!(
            err.contains(
                "step 1 reads the echo backend's report, and no workload of this scenario runs the echo image"
            ),
            "{err}"
        );
        assert!(err.contains("case.yaml:9:7"), "located at the step: {err}");
        // What a traced request's backend received is read from the same report.
        let trace = "steps:\n  - trace:\n      request: {path: /echo/t}\n      expect: {services: [kong], backend: {w3c: client-trace}}\n";
        let err =
            checked(&format!("{HEAD}fixtures: [shop.yaml, kong/ingress-echo.yaml]\n{trace}"), &[("shop.yaml", shop)])
                .unwrap_err()
                .to_string();
        assert!(err.contains("step 1 reads the echo backend's report"), "{err}");
        checked(&format!("{HEAD}fixtures: [base/echo.yaml, kong/ingress-echo.yaml]\n{trace}"), &[]).unwrap();
        // A service required and absent at once.
        for required in ["services: [kong]", "edges: [{from: kong, to: echo}]"] {
            let both = format!(
                "steps:\n  - trace:\n      request: {{path: /echo/t}}\n      expect: {{{required}, absent: [echo, kong]}}\n"
            );
            let err = checked(&format!("{HEAD}fixtures: [base/echo.yaml, kong/ingress-echo.yaml]\n{both}"), &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains("needs spans from `") && err.contains("and none from it at once"), "{err}");
        }
        // The same step with the echo backend: fine; and status-only checks need no echo.
        checked(&format!("{HEAD}fixtures: [base/echo.yaml, kong/ingress-echo.yaml]\n{steps}"), &[]).unwrap();
        let status_only = steps.replace(", backend: {version: v1}", "");
        checked(&format!("{HEAD}fixtures: [shop.yaml, kong/ingress-echo.yaml]\n{status_only}"), &[("shop.yaml", shop)])
            .unwrap();
    }

    #[test]
    fn a_host_no_route_serves_cannot_pass_unless_it_expects_not_to() {
        let fixtures = "fixtures: [base/echo.yaml, kong/ingress-echo.yaml]\n";
        let step = |host: &str, status: u16| {
            format!(
                "steps:\n  - http:\n      request: {{path: /echo/x, host: {host}}}\n      expect: {{status: {status}}}\n"
            )
        };
        let err = checked(&format!("{HEAD}{fixtures}{}", step("shop.example.com", 200)), &[]).unwrap_err();
        assert!(
            err.contains("requests host `shop.example.com`, which no Ingress or HTTPRoute of this scenario routes"),
            "{err}"
        );
        // A negative control: an unrouted host must get 404.
        checked(&format!("{HEAD}{fixtures}{}", step("shop.example.com", 404)), &[]).unwrap();
        // The scenario's own host is routed by the fixture.
        checked(&format!("{HEAD}{fixtures}{}", step("\"{{ host }}\"", 200)), &[]).unwrap();
        // A mesh route (GAMMA: its parent is the Service) routes nothing into Kong; an HTTPRoute
        // on Kong's Gateway routes its hostnames.
        let gamma = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: m, namespace: \"{{ namespace }}\"}\n\
                     spec:\n  parentRefs: [{group: \"\", kind: Service, name: echo, port: 80}]\n  rules:\n  - backendRefs: [{name: echo, port: 80}]\n";
        let with_gamma = "fixtures: [base/echo.yaml, kong/ingress-echo.yaml, gamma.yaml]\n";
        let err = checked(&format!("{HEAD}{with_gamma}{}", step("shop.example.com", 200)), &[("gamma.yaml", gamma)])
            .unwrap_err();
        assert!(err.contains("which no Ingress or HTTPRoute of this scenario routes"), "{err}");
        let by_gateway = "fixtures: [base/echo.yaml, kong/httproute-echo.yaml]\n";
        checked(&format!("{HEAD}{by_gateway}{}", step("\"{{ host }}\"", 200)), &[]).unwrap();
    }

    #[test]
    fn a_valid_jwt_without_a_consumer_credential_cannot_pass() {
        let steps = "steps:\n  - http:\n      request: {path: /secured/x, jwt: valid}\n      expect: {status: 200}\n";
        checked(&format!("{HEAD}fixtures: [base/echo.yaml, kong/jwt.yaml]\n{steps}"), &[]).unwrap();
        // The credential's key is not the run's: Kong would answer 401.
        let jwt = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/kong/jwt.yaml"))
            .unwrap()
            .replace("key: \"{{ jwt.key }}\"", "key: \"someone-else\"");
        let err =
            checked(&format!("{HEAD}fixtures: [base/echo.yaml, other-jwt.yaml]\n{steps}"), &[("other-jwt.yaml", &jwt)])
                .unwrap_err();
        assert!(
            err.contains("sends a valid JWT, and no KongConsumer of this scenario holds a jwt credential"),
            "{err}"
        );
    }

    #[test]
    fn wildcard_hosts_serve_one_label() {
        assert!(super::serves(&["*.example.com"], "shop.example.com"));
        assert!(!super::serves(&["*.example.com"], "a.shop.example.com"));
        assert!(!super::serves(&["*.example.com"], "example.com"));
        assert!(super::serves(&[], "anything"));
    }
}
