//! The user's Helm values for the charts the harness installs (`--values CHART=FILE`), merged
//! with what the harness needs: the user's values are the base, the harness's keys win, and
//! every key where the harness replaced a value the user wrote is recorded with the reason, for
//! the plan to show. A user value that would make the run meaningless (Kong opted out of the
//! mesh) is an error before anything is created, never a silent override.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Position};
use crate::model::Mesh;

/// Charts whose values a user may give, as `--values` names them, and the chart the harness
/// installs for each.
pub const CHARTS: &[(&str, &str)] =
    &[("kong/ingress", "ingress"), ("istiod", "istiod"), ("linkerd-control-plane", "linkerd-control-plane")];

/// One `--values CHART=FILE`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserValues {
    /// The chart the harness installs (`ingress`, `istiod`, `linkerd-control-plane`).
    pub chart: String,
    pub file: PathBuf,
    pub value: Value,
}

/// A key the harness set over the user's value, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    pub key: String,
    pub user: String,
    pub harness: String,
    pub why: String,
}

/// Why the harness sets a key of a chart (the first matching prefix).
fn reason(chart: &str, key: &str) -> &'static str {
    let reasons: &[(&str, &str, &str)] = &[
        ("ingress", "gateway.proxy", "Kong's proxy must be reachable from the host through the kind port mappings"),
        ("ingress", "gateway.manager", "no Service of Kong's may take random NodePorts"),
        (
            "ingress",
            "gateway.podAnnotations.resource.opentelemetry.io",
            "Linkerd's proxy in Kong's pod must not report under Kong's own span name",
        ),
        ("ingress", "gateway.pod", "Kong must be in the mesh for the scenarios to mean anything"),
        (
            "ingress",
            "gateway.env.tracing",
            "Kong's opentelemetry plugin exports no span while tracing instrumentation is off",
        ),
        ("istiod", "global.hub", "registry.istio.io, the released charts' default hub, is shut down"),
        ("istiod", "meshConfig", "the tracing scenarios need the harness's collector"),
        ("linkerd-control-plane", "identity", "the harness makes the run's own trust anchor and issuer"),
        (
            "linkerd-control-plane",
            "proxy.tracing",
            "the tracing scenarios need the proxies' spans in the harness's collector",
        ),
    ];
    reasons.iter().find(|(c, p, _)| *c == chart && key.starts_with(p)).map_or("the harness needs it", |(_, _, why)| why)
}

/// The values of each Helm release in `environment`, by chart as `--values` names them, with
/// credentials redacted: what a repro bundle carries as "the values in force".
pub fn in_force(environment: &[super::Action]) -> std::collections::BTreeMap<String, Value> {
    environment
        .iter()
        .filter_map(|action| match action {
            super::Action::Helm(release) => {
                let (name, _) = CHARTS.iter().find(|(_, installed)| *installed == release.chart)?;
                let mut values = release.values.clone();
                redact(&mut values);
                Some(((*name).to_owned(), values))
            }
            _ => None,
        })
        .collect()
}

/// Helm values with credentials replaced: values under keys that name a key, a password, a
/// token or a secret (Linkerd's `identity.issuer.tls.keyPEM` among them).
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let k = k.to_ascii_lowercase();
                let sensitive = ["keypem", "password", "token", "secret", "privatekey"].iter().any(|s| k.contains(s));
                if sensitive && !v.is_object() && !v.is_array() {
                    *v = Value::from("[redacted]");
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// `user` deep-merged under `harness`: maps merge key by key, anything else from `harness` wins.
pub fn merge(chart: &str, user: &Value, harness: &Value) -> (Value, Vec<Override>) {
    let mut overrides = Vec::new();
    let merged = merge_at(chart, "", user, harness, &mut overrides);
    (merged, overrides)
}

fn merge_at(chart: &str, path: &str, user: &Value, harness: &Value, out: &mut Vec<Override>) -> Value {
    match (user, harness) {
        (Value::Object(u), Value::Object(h)) => {
            let mut merged = u.clone();
            for (k, hv) in h {
                let key = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                let value = match u.get(k) {
                    Some(uv) => merge_at(chart, &key, uv, hv, out),
                    None => hv.clone(),
                };
                merged.insert(k.clone(), value);
            }
            Value::Object(merged)
        }
        (u, h) => {
            if u != h {
                out.push(Override {
                    key: path.to_owned(),
                    user: u.to_string(),
                    harness: h.to_string(),
                    why: reason(chart, path).to_owned(),
                });
            }
            h.clone()
        }
    }
}

/// Read `--values CHART=FILE`: a known chart, a YAML mapping, and nothing that would take Kong
/// out of the mesh on `mesh`.
pub fn read(chart: &str, file: &Path, mesh: Mesh) -> Result<UserValues, Box<Diagnostic>> {
    let Some((_, installed)) = CHARTS.iter().find(|(name, _)| *name == chart) else {
        let known: Vec<&str> = CHARTS.iter().map(|(n, _)| *n).collect();
        let mut d =
            Diagnostic::error("usage", file, Position::WHOLE_FILE, format!("the harness installs no chart `{chart}`"));
        d.help = Some(if chart == "kong/kong" {
            "the harness installs Kong with kong/ingress; give its values as kong/ingress (gateway.* and controller.*)"
                .into()
        } else {
            format!("charts whose values a run takes: {}", known.join(", "))
        });
        return Err(Box::new(d));
    };
    let (text, value) = read_file(file)?;
    if *installed == "ingress"
        && let Some((path, why)) = opts_kong_out(&value, mesh)
    {
        let position = crate::yaml::locate(&text, &path);
        let key = path.join(".");
        return Err(Box::new(
            Diagnostic::error("values-conflict", file, position, format!("`{key}` {why}: the run would test nothing"))
                .with_field(key)
                .with_source(&text)
                .with_help("remove it: the scenarios check Kong in the mesh"),
        ));
    }
    Ok(UserValues { chart: (*installed).to_owned(), file: file.to_owned(), value })
}

/// A Helm values file: bounded YAML, a mapping, errors located in it. Returns the text (to
/// locate keys later) and the value.
pub fn read_file(file: &Path) -> Result<(String, Value), Box<Diagnostic>> {
    let located = |e: crate::yaml::Error, text: &str| Box::new(e.into_diagnostic(file, text));
    let text = crate::yaml::read_text(file).map_err(|e| located(e, ""))?;
    let value: Value = crate::yaml::from_str(&text).map_err(|e| located(e, &text))?;
    if !value.is_object() {
        return Err(Box::new(
            Diagnostic::error("schema", file, Position::new(1, 1), "Helm values must be a mapping").with_source(&text),
        ));
    }
    Ok((text, value))
}

/// A kong/ingress value that takes Kong's gateway out of the mesh: its path (keys may hold
/// dots) and what it does.
fn opts_kong_out(values: &Value, mesh: Mesh) -> Option<(Vec<&'static str>, &'static str)> {
    let at = |path: &[&str]| path.iter().try_fold(values, |v, k| v.get(*k)).and_then(Value::as_str);
    match mesh {
        Mesh::Istio => ["podLabels", "podAnnotations"].into_iter().find_map(|map| {
            let path = vec!["gateway", map, "sidecar.istio.io/inject"];
            (at(&path) == Some("false")).then_some((path, "opts Kong out of Istio's mesh"))
        }),
        Mesh::Linkerd => {
            let path = vec!["gateway", "podAnnotations", "linkerd.io/inject"];
            (at(&path) == Some("disabled")).then_some((path, "opts Kong out of Linkerd's mesh"))
        }
        Mesh::None => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn user_values_are_the_base_and_the_harness_keys_win_with_a_reason() {
        let user =
            json!({"gateway": {"replicaCount": 2, "proxy": {"type": "LoadBalancer"}, "env": {"log_level": "debug"}}});
        let harness = crate::stack::kong::values(Mesh::Istio);
        let (merged, overrides) = merge("ingress", &user, &harness);
        assert_eq!(merged["gateway"]["replicaCount"], 2, "the user's own keys stay");
        assert_eq!(merged["gateway"]["env"]["log_level"], "debug");
        assert_eq!(merged["gateway"]["proxy"]["type"], "NodePort");
        assert_eq!(merged["gateway"]["podLabels"]["sidecar.istio.io/inject"], "true");
        assert_eq!(overrides.len(), 1, "{overrides:?}");
        assert_eq!(overrides[0].key, "gateway.proxy.type");
        assert_eq!(overrides[0].user, "\"LoadBalancer\"");
        assert!(overrides[0].why.contains("reachable from the host"));
    }

    #[test]
    fn values_that_take_kong_out_of_the_mesh_are_refused_where_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kong.yaml");
        std::fs::write(&file, "gateway:\n  podLabels:\n    sidecar.istio.io/inject: \"false\"\n").unwrap();
        let d = read("kong/ingress", &file, Mesh::Istio).unwrap_err();
        assert_eq!(d.code, "values-conflict");
        assert_eq!(d.position.line, 3, "{d}");
        assert!(read("kong/ingress", &file, Mesh::None).is_ok(), "no mesh, no conflict");
        std::fs::write(&file, "gateway:\n  podAnnotations:\n    linkerd.io/inject: disabled\n").unwrap();
        assert!(read("kong/ingress", &file, Mesh::Linkerd).is_err());
        let d = read("kong/kong", &file, Mesh::Linkerd).unwrap_err();
        assert!(d.help.unwrap().contains("give its values as kong/ingress"));
        assert!(read("istiod", &file, Mesh::Istio).is_ok());
    }
}
