//! Observations normalised for snapshots: what stays the same from run to run is kept, what
//! cannot (pod hashes, IPs, ids, timestamps, latencies, certificate hashes, the run id) is
//! replaced by a placeholder naming what was there.

use serde_json::{Map, Value};

use crate::probe::{Observation, Outcome};

/// Header names whose values differ on every request.
const VOLATILE_HEADERS: &[(&str, &str)] = &[
    ("date", "[date]"),
    ("x-kong-request-id", "[id]"),
    ("x-request-id", "[id]"),
    ("x-b3-traceid", "[id]"),
    ("x-b3-spanid", "[id]"),
    ("x-b3-parentspanid", "[id]"),
    ("traceparent", "[id]"),
    ("tracestate", "[id]"),
    ("x-kong-upstream-latency", "[ms]"),
    ("x-kong-proxy-latency", "[ms]"),
    ("x-envoy-upstream-service-time", "[ms]"),
    ("x-envoy-attempt-count", "[n]"),
    ("ratelimit-reset", "[s]"),
    ("ratelimit-remaining", "[n]"),
    ("x-ratelimit-remaining-second", "[n]"),
    ("x-ratelimit-remaining-minute", "[n]"),
    ("x-ratelimit-remaining-hour", "[n]"),
    ("x-forwarded-for", "[ip]"),
    ("x-real-ip", "[ip]"),
    ("x-forwarded-port", "[port]"),
    ("authorization", "[secret]"),
    ("cookie", "[secret]"),
    ("set-cookie", "[secret]"),
    ("content-length", "[n]"),
];

/// Normalise one observation. `run` is replaced wherever it appears (namespaces, hosts);
/// `redact` names extra headers (scenario `snapshot.redact_headers`).
pub fn normalise(observation: &Observation, run: &str, redact: &[String]) -> Value {
    let mut value = match &observation.outcome {
        Outcome::Response(r) => {
            let mut m = Map::new();
            m.insert("status".into(), r.status.into());
            if let Some(v) = &r.version {
                m.insert("version".into(), v.clone().into());
            }
            m.insert("headers".into(), headers(r.headers.iter(), redact));
            if let Some(echo) = &r.echo {
                let mut e = Map::new();
                e.insert("method".into(), echo.method.clone().into());
                e.insert("path".into(), echo.path.clone().into());
                e.insert("host".into(), echo.host.clone().into());
                e.insert("namespace".into(), echo.namespace.clone().into());
                e.insert("pod".into(), pod_name(&echo.pod).into());
                e.insert("headers".into(), headers(echo.headers.iter(), redact));
                m.insert("backend".into(), Value::Object(e));
            }
            Value::Object(m)
        }
        Outcome::Transport { kind, .. } => {
            // The message names ports and OS wording; the kind is the stable part.
            serde_json::json!({ "transport": kind })
        }
    };
    replace_run(&mut value, run);
    value
}

fn headers<'a>(headers: impl Iterator<Item = (&'a String, &'a Vec<String>)>, redact: &[String]) -> Value {
    let mut out = Map::new();
    for (name, values) in headers {
        let lower = name.to_ascii_lowercase();
        let fixed = VOLATILE_HEADERS.iter().find(|(h, _)| *h == lower).map(|(_, p)| *p);
        let redacted = redact.iter().any(|r| r.eq_ignore_ascii_case(&lower));
        let shown: Vec<Value> = values
            .iter()
            .map(|v| match (fixed, redacted) {
                (_, true) => "[redacted]".to_owned(),
                (Some(p), _) => p.to_owned(),
                _ if lower == "x-forwarded-client-cert" => xfcc(v),
                _ => ips(v),
            })
            .map(Value::from)
            .collect();
        out.insert(lower, Value::Array(shown));
    }
    Value::Object(out)
}

/// Keep an XFCC's identities, hide its hashes and certificates.
fn xfcc(value: &str) -> String {
    value
        .split(';')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if ["hash", "cert", "chain"].contains(&k.trim().to_ascii_lowercase().as_str()) => {
                format!("{}=[{}]", k, k.trim().to_ascii_lowercase())
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// `echo-v1-6d8f9c7b5-x2x9q` -> `echo-v1-[hash]`: ReplicaSet and pod suffixes change every rollout.
pub fn pod_name(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    let is_suffix = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    match parts.as_slice() {
        [head @ .., rs, pod] if !head.is_empty() && is_suffix(rs, 6, 10) && is_suffix(pod, 5, 5) => {
            format!("{}-[hash]", head.join("-"))
        }
        [head @ .., pod] if !head.is_empty() && is_suffix(pod, 5, 5) => format!("{}-[hash]", head.join("-")),
        _ => pod.to_owned(),
    }
}

/// Compare the normalised observations of `scenario` on `mesh` with the stored snapshot
/// `<dir>/<scenario>__<mesh>.snap`. A mismatch panics the way any insta assertion does (failing
/// the scenario's test) and leaves a `.snap.new` for `cargo insta review`.
pub fn assert_scenario_snapshot(
    dir: &std::path::Path,
    scenario: &str,
    mesh: crate::scenario::Mesh,
    observations: &Value,
) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(format!("normalised observations of scenario {scenario} on {mesh}"));
    settings.bind(|| insta::assert_yaml_snapshot!(format!("{scenario}__{mesh}"), observations));
}

/// IPv4 addresses (with an optional port) become `[ip]`.
fn ips(text: &str) -> String {
    fn flush(token: &mut String, out: &mut String) {
        if is_ipv4(token.split(':').next().unwrap_or_default()) {
            out.push_str("[ip]");
        } else {
            out.push_str(token);
        }
        token.clear();
    }
    let (mut out, mut token) = (String::with_capacity(text.len()), String::new());
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' || c == ':' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
}

fn replace_run(value: &mut Value, run: &str) {
    if run.is_empty() {
        return;
    }
    match value {
        Value::String(s) if s.contains(run) => *s = s.replace(run, "[run]"),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_run(v, run)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_run(v, run)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::probe::{Echo, Response, TransportKind};

    #[test]
    fn scenario_snapshots_pass_when_equal_and_fail_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let observed = serde_json::json!([{"status": 200, "version": "v1"}]);
        // Store the snapshot as insta writes it, then compare.
        let stored = "---\nsource: harness/src/snapshot.rs\ndescription: normalised observations of scenario demo on istio\n---\n- status: 200\n  version: v1\n";
        std::fs::write(dir.path().join("demo__istio.snap"), stored).unwrap();
        assert_scenario_snapshot(dir.path(), "demo", crate::scenario::Mesh::Istio, &observed);
        let changed = serde_json::json!([{"status": 200, "version": "v2"}]);
        let outcome = std::panic::catch_unwind(|| {
            assert_scenario_snapshot(dir.path(), "demo", crate::scenario::Mesh::Istio, &changed)
        });
        assert!(outcome.is_err(), "a different observation must fail the scenario");
    }

    #[test]
    fn pod_hashes_go_and_names_stay() {
        assert_eq!(pod_name("echo-v1-6d8f9c7b5-x2x9q"), "echo-v1-[hash]");
        assert_eq!(pod_name("zipkin-7c9d6b8f4-abcde"), "zipkin-[hash]");
        // Pods of Jobs and DaemonSets carry only the 5-character suffix.
        assert_eq!(pod_name("client-abcde"), "client-[hash]");
        assert_eq!(pod_name("client"), "client");
        assert_eq!(pod_name("kong-gateway-0"), "kong-gateway-0");
    }

    #[test]
    fn an_observation_snapshot_keeps_only_what_is_stable() {
        let h = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<String>> {
            pairs.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect()
        };
        let echo = Echo {
            path: "/hello".into(),
            host: "echo.ingress-basic-r1k2.svc.cluster.local".into(),
            method: "GET".into(),
            namespace: "ingress-basic-r1k2".into(),
            pod: "echo-v1-6d8f9c7b5-x2x9q".into(),
            headers: h(&[
                (
                    "x-forwarded-client-cert",
                    "By=spiffe://cluster.local/ns/ingress-basic-r1k2/sa/default;Hash=9f86d081884c7d65;Cert=\"-----BEGIN%20CERTIFICATE-----\";Subject=\"\";URI=spiffe://cluster.local/ns/kong/sa/kong-gateway",
                ),
                ("x-forwarded-for", "172.18.0.1"),
                ("x-kong-request-id", "0f3c2a9e1b7d"),
                ("x-custom-token", "hunter2"),
                ("via", "1.1 kong/3.9.1"),
                ("x-real-ip", "10.244.0.7"),
            ]),
            ..Echo::default()
        };
        let response = Response {
            status: 200,
            headers: h(&[
                ("date", "Thu, 26 Nov 2026 20:00:00 GMT"),
                ("x-kong-upstream-latency", "3"),
                ("server", "10.96.0.10:80 upstream"),
            ]),
            echo: Some(echo),
            version: Some("v1".into()),
            body: None,
        };
        let obs = Observation { outcome: Outcome::Response(Box::new(response)), elapsed_ms: 12 };
        insta::assert_yaml_snapshot!("observation", normalise(&obs, "r1k2", &["X-Custom-Token".to_owned()]));
        let refused = Observation {
            outcome: Outcome::Transport { kind: TransportKind::Reset, message: "127.0.0.1:3000 reset".into() },
            elapsed_ms: 1,
        };
        assert_eq!(normalise(&refused, "r1k2", &[]), serde_json::json!({"transport": "reset"}));
    }
}
