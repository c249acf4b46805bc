//! Which of a repro bundle's Helm values a stranger may set: a full-path allowlist from each
//! chart's root, every value checked for its shape. Everything else (any other key, any value
//! of another shape, a key the harness sets that the bundle drops) needs `--trust-bundle-pins`.
//!
//! **Trust boundary.** An allowlist, not a list of dangerous words: the charts render values in
//! ways a key name does not show. kong/kong prints env strings holding `valueFrom` raw and
//! renders `podLabels`/`podAnnotations` through `tpl` (charts/kong/templates/_helpers.tpl,
//! `kong.renderEnv`, `kong.renderTpl`), istiod quotes env values without escaping them
//! (`value: "{{ $val }}"`), and a Helm parser breaks lines at `\r` as well as `\n`: a value that
//! only looks like a log level can carry a container or a template. So each allowed value must
//! have the one shape its setting takes (a level name, a quantity, a label value), which leaves
//! no room for YAML, template syntax or line breaks.

use serde_json::Value;

/// Kong's `log_level` values (kong.conf.default).
const KONG_LOG_LEVELS: &[&str] = &["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"];
/// KIC's `--log-level` values (KIC internal/cmd/rootcmd/config/cli.go).
const KIC_LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "fatal", "panic"];

/// The entry the bundle may set untrusted at `path` (dotted, from the chart's root, as
/// differences name it) of `chart`: the exact map keys it sits at in `values` and its value,
/// when both the place and the value's shape are allowed. The run gets only such entries, put
/// back at those keys (`Bundle::admit`), never the bundle's document: a flattened name can
/// stand for more than one place (`a.b` under a map, or `b` under a nested `a`).
pub fn allowed_untrusted(chart: &str, values: &Value, path: &str) -> Option<(Vec<String>, Value)> {
    match chart {
        "kong/ingress" => kong_ingress(values, path),
        "istiod" => resources(values, "", path),
        _ => None,
    }
}

/// `segments` of `values` when `check` accepts what is there.
fn checked(values: &Value, segments: &[&str], check: impl Fn(&Value) -> bool) -> Option<(Vec<String>, Value)> {
    let value = at(values, segments).filter(|v| check(v))?;
    Some((segments.iter().map(|s| (*s).to_owned()).collect(), value.clone()))
}

fn kong_ingress(values: &Value, path: &str) -> Option<(Vec<String>, Value)> {
    for section in ["gateway", "controller"] {
        // Maps whose keys hold dots: the key is looked up in the map itself, never re-split.
        if let Some(key) = path.strip_prefix(&format!("{section}.podLabels.")) {
            return checked(values, &[section, "podLabels", key], |v| label(key, v));
        }
        if let Some(key) = path.strip_prefix(&format!("{section}.podAnnotations.")) {
            return checked(values, &[section, "podAnnotations", key], |v| annotation(key, v));
        }
        if path == format!("{section}.replicaCount") {
            return checked(values, &[section, "replicaCount"], replicas);
        }
    }
    match path {
        "gateway.env.log_level" => checked(values, &["gateway", "env", "log_level"], |v| one_of(v, KONG_LOG_LEVELS)),
        "controller.ingressController.env.log_level" => {
            checked(values, &["controller", "ingressController", "env", "log_level"], |v| one_of(v, KIC_LOG_LEVELS))
        }
        "gateway.env.tracing_sampling_rate" => {
            checked(values, &["gateway", "env", "tracing_sampling_rate"], sampling_rate)
        }
        _ => resources(values, "gateway.", path).or_else(|| resources(values, "controller.ingressController.", path)),
    }
}

/// `<prefix>resources.{requests,limits}.{cpu,memory}` set to a quantity.
fn resources(values: &Value, prefix: &str, path: &str) -> Option<(Vec<String>, Value)> {
    let rest = path.strip_prefix(prefix)?;
    let segments: Vec<&str> = rest.split('.').collect();
    let ["resources", kind @ ("requests" | "limits"), what @ ("cpu" | "memory")] = segments.as_slice() else {
        return None;
    };
    let mut full: Vec<&str> = prefix.split('.').filter(|s| !s.is_empty()).collect();
    full.extend(["resources", kind, what]);
    checked(values, &full, quantity)
}

fn at<'v>(values: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(values, |v, k| v.as_object()?.get(*k))
}

fn one_of(value: &Value, allowed: &[&str]) -> bool {
    value.as_str().is_some_and(|v| allowed.contains(&v))
}

/// 1 to 3 replicas: enough to reproduce a bug about several, not enough to exhaust a laptop.
fn replicas(value: &Value) -> bool {
    value.as_u64().is_some_and(|n| (1..=3).contains(&n))
}

/// A number from 0 to 1.
fn sampling_rate(value: &Value) -> bool {
    let rate = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.len() <= 8 && s.chars().all(|c| c.is_ascii_digit() || c == '.') => s.parse().ok(),
        _ => None,
    };
    rate.is_some_and(|r| (0.0..=1.0).contains(&r))
}

/// A Kubernetes quantity as resources are written: digits, an optional fraction, an optional
/// unit (`500m`, `1.5`, `256Mi`, `2Gi`).
fn quantity(value: &Value) -> bool {
    let text = match value {
        Value::Number(n) => return n.as_f64().is_some_and(|x| x > 0.0),
        Value::String(s) => s.as_str(),
        _ => return false,
    };
    let digits_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    !number.is_empty()
        && number.len() <= 9
        && number.matches('.').count() <= 1
        && ["", "m", "k", "M", "G", "Ki", "Mi", "Gi"].contains(&unit)
}

/// Keys of the meshes' own: they configure the injected proxy (its image, volumes, templates,
/// traffic capture), except the two switches of injection itself (values that take Kong out
/// of the mesh are refused on their own, `stack::values`).
fn mesh_key(key: &str) -> bool {
    (key.contains("istio.io") || key.contains("linkerd.io"))
        && !matches!(key, "sidecar.istio.io/inject" | "linkerd.io/inject")
}

/// A label key (`[prefix/]name`, DNS-subdomain prefix, name of alphanumerics with `-_.`).
fn label_key(key: &str) -> bool {
    let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
    let prefix_ok = prefix.len() <= 253
        && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    prefix_ok && !name.contains('/') && label_value(name) && !name.is_empty()
}

/// A label value: at most 63 alphanumerics with `-_.` inside (Kubernetes' syntax); nothing a
/// template or a YAML line could be made of.
fn label_value(value: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    value.len() <= 63
        && value.chars().all(inner)
        && value.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && value.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

fn label(key: &str, value: &Value) -> bool {
    label_key(key) && !mesh_key(key) && value.as_str().is_some_and(label_value)
}

/// An annotation of plain text: printable ASCII without quotes, backslashes or braces (no
/// template, no YAML structure), at most 256 characters.
fn annotation(key: &str, value: &Value) -> bool {
    let plain = |c: char| (' '..='~').contains(&c) && !matches!(c, '"' | '\\' | '{' | '}');
    label_key(key) && !mesh_key(key) && value.as_str().is_some_and(|v| v.len() <= 256 && v.chars().all(plain))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn what_a_stranger_may_set_is_a_short_list_of_shapes() {
        let values = json!({
            "gateway": {
                "podLabels": {"team": "payments", "sidecar.istio.io/inject": "true", "istio.io/rev": "canary"},
                "podAnnotations": {"prometheus.io/scrape": "true", "inject.istio.io/templates": "sidecar,labels",
                                   "note": "{{ lookup \"v1\" \"Secret\" \"\" \"\" }}"},
                "replicaCount": 2,
                "env": {"log_level": "debug", "tracing_sampling_rate": 0.5, "nginx_http_init_by_lua_block": "os.execute()"},
                "resources": {"limits": {"memory": "512Mi", "cpu": "500m"}},
            },
            "controller": {"ingressController": {"env": {"log_level": "info"}}, "replicaCount": 9},
        });
        let ok = |path: &str| allowed_untrusted("kong/ingress", &values, path).is_some();
        for allowed in [
            "gateway.podLabels.team",
            "gateway.podLabels.sidecar.istio.io/inject",
            "gateway.podAnnotations.prometheus.io/scrape",
            "gateway.replicaCount",
            "gateway.env.log_level",
            "gateway.env.tracing_sampling_rate",
            "gateway.resources.limits.memory",
            "gateway.resources.limits.cpu",
            "controller.ingressController.env.log_level",
        ] {
            assert!(ok(allowed), "{allowed}");
        }
        for refused in [
            // The meshes' own keys, a template in an annotation, code in an nginx directive.
            "gateway.podLabels.istio.io/rev",
            "gateway.podAnnotations.inject.istio.io/templates",
            "gateway.podAnnotations.note",
            "gateway.env.nginx_http_init_by_lua_block",
            // Too many replicas; a key the bundle does not have; any other key.
            "controller.replicaCount",
            "gateway.podLabels.absent",
            "gateway.image.repository",
        ] {
            assert!(!ok(refused), "{refused}");
        }
    }

    /// The reviewer's bypass: a value that only looks like a log level carries YAML through
    /// kong/kong's raw `valueFrom` rendering and a `\r` line break. Refused by its shape.
    #[test]
    fn values_that_carry_yaml_or_templates_are_refused_by_their_shape() {
        let smuggled = "value: info # valueFrom\r        image: attacker/pwn:1\r      - name: y";
        let values = json!({
            "gateway": {"env": {"log_level": smuggled}, "podLabels": {"team": "a\rb"},
                        "resources": {"limits": {"memory": "1Gi\r  x: y"}}},
            "controller": {"ingressController": {"env": {"log_level": smuggled}}},
        });
        for path in [
            "gateway.env.log_level",
            "controller.ingressController.env.log_level",
            "gateway.podLabels.team",
            "gateway.resources.limits.memory",
        ] {
            assert!(allowed_untrusted("kong/ingress", &values, path).is_none(), "{path}");
        }
        // istiod: its resources only; its injection templates and env never.
        let istiod = json!({"resources": {"requests": {"cpu": "250m"}},
                            "sidecarInjectorWebhook": {"templates": {"labels": "spec: {}"}},
                            "env": {"LOG_LEVEL": "info"}});
        assert!(allowed_untrusted("istiod", &istiod, "resources.requests.cpu").is_some());
        for path in ["sidecarInjectorWebhook.templates.labels", "env.LOG_LEVEL"] {
            assert!(allowed_untrusted("istiod", &istiod, path).is_none(), "{path}");
        }
        assert!(
            allowed_untrusted("linkerd-control-plane", &json!({"proxy": {"logLevel": "info"}}), "proxy.logLevel")
                .is_none()
        );
    }
}
