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

/// Why the harness sets `key` of `chart` over the user's `user` (the first matching prefix).
/// The reason depends on what the user wrote where one key serves several needs.
fn reason(chart: &str, key: &str, user: &Value) -> &'static str {
    match (chart, key) {
        ("ingress", "gateway.env.tracing_instrumentations") if user.as_str() != Some("off") => {
            // Kong's instrumentations other than `request` add spans of its own phases (Kong/kong
            // kong/tracing/instrumentation.lua), which the trace snapshots do not hold.
            return "the trace snapshots hold Kong's request span alone; other instrumentations add spans of \
                    Kong's own phases to every trace";
        }
        ("ingress", "gateway.env.tracing_sampling_rate") => {
            return "every traced request must be sampled, so the trace steps find their trace";
        }
        ("ingress", "gateway.podAnnotations.linkerd.io/inject") if user.as_str() == Some("enabled") => {
            // linkerd/website 2-edge tasks/using-ingress.md documents ingress mode for ingress
            // controllers; its proxy honours an `l5d-dst-override` header and otherwise routes by
            // the address dialled (linkerd2-proxy release/v2.366.0 linkerd/app/outbound/src/ingress.rs).
            return "Kong is meshed either way; Linkerd documents `ingress` mode for ingress controllers (its \
                    proxy then honours Kong's l5d-dst-override header, and routes by the address Kong dialled \
                    otherwise)";
        }
        _ => {}
    }
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
            "controller.podLabels.sidecar.istio.io/inject",
            "Kong's controller stays out of Istio's mesh, also once a canary labels Kong's namespace `istio.io/rev`",
        ),
        (
            "ingress",
            "gateway.env.tracing",
            "Kong's opentelemetry plugin exports no span while tracing instrumentation is off",
        ),
        ("istiod", "global.hub", "registry.istio.io, the released charts' default hub, is shut down"),
        ("istiod", "meshConfig", "the tracing scenarios need the harness's collector"),
        (
            "linkerd-control-plane",
            "identity",
            "the harness makes the run's own trust anchor and issuer, given as PEM, which the chart reads only \
             with `identity.issuer.scheme: linkerd.io/tls` and `identity.externalCA: false`",
        ),
        (
            "linkerd-control-plane",
            "proxy.tracing",
            "the tracing scenarios need the proxies' spans in the harness's collector",
        ),
    ];
    reasons.iter().find(|(c, p, _)| *c == chart && key.starts_with(p)).map_or("the harness needs it", |(_, _, why)| why)
}

/// Whether the user's value at `key` already gives what the harness's is there for, so that no
/// override is needed, and whose value goes to Helm then.
fn already_served(chart: &str, key: &str, user: &Value, harness: &Value) -> Option<Served> {
    match (chart, key) {
        // The chart renders every Kong env value through `quote` (charts/kong
        // templates/_helpers.tpl `kong.renderEnv`), and Kong reads numbers from the string:
        // `1.0` and "1.0" (and "1") configure the same.
        ("ingress", k) if k.starts_with("gateway.env.") => {
            let text = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            };
            let (u, h) = (text(user)?, text(harness)?);
            let same_number = matches!((u.parse::<f64>(), h.parse::<f64>()), (Ok(a), Ok(b)) if a == b);
            (u == h || same_number).then_some(Served::HarnessValue)
        }
        // A hub of the user's own (a private mirror) serves the same images; only the shut-down
        // default registry is replaced.
        ("istiod", "global.hub") => match user.as_str() {
            Some(hub) if !hub.trim().is_empty() && !hub.starts_with(SHUT_DOWN_ISTIO_REGISTRY) => {
                Some(Served::UserValue)
            }
            _ => None,
        },
        _ => None,
    }
}

/// Where the released Istio charts' images used to live (their `global.hub` default).
const SHUT_DOWN_ISTIO_REGISTRY: &str = "registry.istio.io";

enum Served {
    /// The two are the same configuration; the harness's spelling goes to Helm.
    HarnessValue,
    /// The user's value does the job differently (a mirror); it goes to Helm.
    UserValue,
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

/// What a redacted value becomes.
pub const REDACTED: &str = "[redacted]";

/// Helm values with credentials replaced (see [`redact_at`]).
pub fn redact(value: &mut Value) {
    redact_at(value, "", &mut Vec::new());
}

/// Replace credentials in `value`, pushing the path of each (`gateway.env.password`,
/// `gateway.extraEnvVars[0].value`; under `prefix`) to `redacted`, never the value:
/// - by key: a scalar under a key that names a credential ([`sensitive_key`]: passwords, tokens,
///   secrets, private, certificate and API keys, licenses, sessions, credentials, auth);
/// - by pair: the `value` of a `{name, value}` entry (`env`, `extraEnvVars`) whose name does;
/// - by shape, in any string ([`redact_shapes`]): PEM private keys, the password of URL user
///   info, JWT-like tokens, and JSON inside a string (`admin_gui_session_conf`), redacted alike.
///
/// A value already `[redacted]` under such a key is listed again, so redacting twice lists the
/// same paths.
pub fn redact_at(value: &mut Value, prefix: &str, redacted: &mut Vec<String>) {
    walk(value, prefix, redacted, Keys::All);
}

/// [`redact_at`] for a Kubernetes object's fields: by key (a KongPlugin's
/// `config.redis_password`, a ConfigMap's `KONG_PG_PASSWORD`), pair and shape, but for what the
/// scenario needs to run: keys that only describe or refer to a credential
/// ([`MANIFEST_KEEP`]: `kongCredType`, `algorithm`, a KongConsumer's `credentials: [name]`) and
/// template placeholders (`{{ jwt.secret }}`: the harness fills them per run, they hold nothing).
pub fn redact_manifest_value(value: &mut Value, prefix: &str, redacted: &mut Vec<String>) {
    walk(value, prefix, redacted, Keys::Manifest);
}

/// Keys of a manifest kept under [`redact_manifest_value`] although their words name a
/// credential: they describe it or name another object the scenario needs.
pub const MANIFEST_KEEP: &[&str] = &["kongCredType", "algorithm", "credentials"];

/// A template placeholder (`{{ jwt.secret }}`) and nothing else: it holds no secret.
pub fn placeholder(text: &str) -> bool {
    let t = text.trim();
    t.len() > 4
        && t.starts_with("{{")
        && t.ends_with("}}")
        && t[2..t.len() - 2].trim().bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Which keys [`walk`] redacts by.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// Every key naming a credential (Helm values).
    All,
    /// Those but [`MANIFEST_KEEP`], placeholders kept (Kubernetes objects).
    Manifest,
}

fn walk(value: &mut Value, prefix: &str, redacted: &mut Vec<String>, keys: Keys) {
    let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    let manifest = keys == Keys::Manifest;
    match value {
        Value::Object(map) => {
            // `{name: DD_API_KEY, value: ...}`: the name says what the value is.
            let secret_pair = map.get("name").and_then(Value::as_str).is_some_and(sensitive_key);
            for (k, v) in map.iter_mut() {
                let path = join(k);
                let kept = manifest && MANIFEST_KEEP.contains(&k.as_str());
                let by_key = (!kept && sensitive_key(k)) || (secret_pair && k == "value");
                match v {
                    Value::String(s) if manifest && placeholder(s) => {}
                    Value::String(s) if by_key && !s.is_empty() => {
                        *v = Value::from(REDACTED);
                        redacted.push(path);
                    }
                    Value::Number(_) if by_key => {
                        *v = Value::from(REDACTED);
                        redacted.push(path);
                    }
                    // `client_secret: [s1, s2]`: each string of the list.
                    Value::Array(items) if by_key => {
                        for (i, item) in items.iter_mut().enumerate() {
                            let filled = item.as_str().is_some_and(|s| !(s.is_empty() || (manifest && placeholder(s))));
                            if filled || item.is_number() {
                                *item = Value::from(REDACTED);
                                redacted.push(format!("{path}[{i}]"));
                            } else {
                                walk(item, &format!("{path}[{i}]"), redacted, keys);
                            }
                        }
                    }
                    _ => walk(v, &path, redacted, keys),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{prefix}[{i}]"), redacted, keys);
            }
        }
        Value::String(s) => {
            if let Some(clean) = redact_shapes(s) {
                *s = clean;
                redacted.push(prefix.to_owned());
            } else if s.contains(REDACTED) {
                // Redacted before (the values in force are): still listed.
                redacted.push(prefix.to_owned());
            }
        }
        _ => {}
    }
}

/// The words of a key, lowercased: split at `_`, `-`, `.`, `/` and camelCase humps
/// (`ssl_cert_key` -> ssl cert key, `keyPEM` -> key pem, `DD_API_KEY` -> dd api key).
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            words.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        word.push(c.to_ascii_lowercase());
    }
    words.extend((!word.is_empty()).then_some(word));
    words
}

/// Whether a key (of Helm values, or an environment variable's name) names a credential. A word
/// that names one on its own (`password`, `token`, `secret`, `license`, `session`, `auth`,
/// `credential`, `apikey`, ...), or `key` qualified as one (`cert_key`, `api_key`, `privateKey`,
/// `keyPEM`, `tls.key`); a bare `key` (a toleration's, `topologyKey`) is not one. Keys that only
/// refer to a credential or switch one (`secretName`, `...Ref`, `...Enabled`) are not either:
/// their values are names, not secrets.
pub fn sensitive_key(key: &str) -> bool {
    const ALONE: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "credential",
        "credentials",
        "license",
        "session",
        "auth",
        "authorization",
        "apikey",
        "privatekey",
        "keypem",
        "cookie",
        "jwt",
        "bearer",
        "dsn",
    ];
    const KEY_OF: &[&str] = &[
        "api",
        "private",
        "cert",
        "tls",
        "ssl",
        "signing",
        "encryption",
        "access",
        "secret",
        "client",
        "admin",
        "license",
        "session",
        "hmac",
        "shared",
        "master",
        "auth",
    ];
    const REFERENCE: &[&str] =
        &["name", "names", "ref", "enabled", "mode", "type", "affinity", "file", "path", "mount", "volume", "volumes"];
    let words = key_words(key);
    if words.last().is_some_and(|w| REFERENCE.contains(&w.as_str())) {
        return false;
    }
    words.iter().any(|w| ALONE.contains(&w.as_str()))
        || words
            .windows(2)
            .any(|p| (p[1] == "key" && KEY_OF.contains(&p[0].as_str())) || (p[0] == "key" && p[1] == "pem"))
}

/// `text` with credentials recognised by their shape replaced, or `None` when it holds none:
/// a PEM private key (`-----BEGIN … PRIVATE KEY-----`: the whole value), the password of URL
/// user info (`scheme://user:[redacted]@host`), JWT-like tokens (three or more base64url parts
/// whose first is a JSON header, `eyJ…`), and JSON inside the string (an object or array,
/// redacted as values are, then written back).
pub fn redact_shapes(text: &str) -> Option<String> {
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY") {
        return Some(REDACTED.to_owned());
    }
    let trimmed = text.trim();
    let json = (trimmed.starts_with('{') || trimmed.starts_with('[')) && trimmed.len() <= 1 << 20;
    if let Some(mut inner) = json.then(|| serde_json::from_str::<Value>(trimmed).ok()).flatten() {
        let mut found = Vec::new();
        redact_at(&mut inner, "", &mut found);
        return (!found.is_empty()).then(|| inner.to_string());
    }
    redact_inline(text)
}

/// The credentials of [`redact_shapes`] that sit inside a line of text (URL passwords, JWT-like
/// tokens, credentials in a query string), the rest of it kept as it is: for logs.
pub fn redact_inline(text: &str) -> Option<String> {
    let out = redact_query_tokens(&redact_jwts(&redact_userinfo(text)));
    (out != text).then_some(out)
}

/// Every `?token=…` / `&access_token=…` / `api_key`, `sig`, `signature` (and any parameter whose
/// name is a credential's, [`sensitive_key`]) in a URL's query string with its value replaced;
/// a `{{ … }}` placeholder as the value is kept.
fn redact_query_tokens(text: &str) -> String {
    let secret_param = |name: &str| {
        let lower = name.to_ascii_lowercase();
        matches!(lower.as_str(), "sig" | "signature" | "x-amz-signature" | "x-amz-credential") || sensitive_key(name)
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['?', '&']) {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let name_len =
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))).unwrap_or(rest.len());
        let (name, after) = rest.split_at(name_len);
        let Some(value) = after.strip_prefix('=').filter(|_| !name.is_empty() && secret_param(name)) else {
            continue;
        };
        let end = value.find(|c: char| c.is_whitespace() || "&#\"'<>`".contains(c)).unwrap_or(value.len());
        let (v, tail) = value.split_at(end);
        out.push_str(name);
        out.push('=');
        let keep = v.is_empty()
            || v == REDACTED
            || (v.starts_with("{{") && placeholder(&value[..value.find("}}").map_or(end, |e| e + 2)]));
        if keep && v.starts_with("{{") {
            // The placeholder may hold spaces: copy it whole.
            let e = value.find("}}").map_or(end, |e| e + 2);
            out.push_str(&value[..e]);
            rest = &value[e..];
            continue;
        }
        out.push_str(if keep { v } else { REDACTED });
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Every `scheme://user:password@host` in `text` with the password replaced.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after.find(|c: char| c.is_whitespace() || "/?#\"'<>(),;`".contains(c)).unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@').and_then(|(info, host)| info.split_once(':').map(|(user, _)| (user, host))) {
            Some((user, host)) => out.push_str(&format!("{user}:{REDACTED}@{host}")),
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every JWT-like token in `text` (`eyJ…` header, then at least two more base64url parts
/// separated by dots, the last possibly empty) replaced.
fn redact_jwts(text: &str) -> String {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        let boundary = rest[..start].chars().next_back().is_none_or(|c| !part(c) && c != '.');
        let len = rest[start..].find(|c: char| !part(c) && c != '.').unwrap_or(rest.len() - start);
        let token = &rest[start..start + len];
        let parts: Vec<&str> = token.split('.').collect();
        let jwt = boundary && parts.len() >= 3 && parts[0].len() >= 10 && parts[1].len() >= 2;
        out.push_str(&rest[..start]);
        out.push_str(if jwt { REDACTED } else { token });
        rest = &rest[start + len.max(3)..];
    }
    out.push_str(rest);
    out
}

/// `over` layered on `base` as Helm layers `-f base -f over` (helm/helm pkg/cli/values
/// `mergeMaps`): maps merge key by key, anything else (scalars, lists, `null`) from `over`
/// replaces `base`'s. A `null` stays `null`: Helm drops the chart's default for it later.
pub fn layer(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut merged = b.clone();
            for (k, ov) in o {
                let value = match b.get(k) {
                    Some(bv) => layer(bv, ov),
                    None => ov.clone(),
                };
                merged.insert(k.clone(), value);
            }
            Value::Object(merged)
        }
        (_, o) => o.clone(),
    }
}

/// `user` deep-merged under `harness`: maps merge key by key, anything else from `harness` wins,
/// recorded as an override, unless the user's value already gives what the harness's is for
/// (the same Kong env value in another spelling, a mirror of Istio's images).
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
            if u == h {
                return h.clone();
            }
            match already_served(chart, path, u, h) {
                Some(Served::HarnessValue) => h.clone(),
                Some(Served::UserValue) => u.clone(),
                None => {
                    out.push(Override {
                        key: path.to_owned(),
                        user: u.to_string(),
                        harness: h.to_string(),
                        why: reason(chart, path, u).to_owned(),
                    });
                    h.clone()
                }
            }
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
        // A pod's own `none` opts it out of ambient over its namespace (istio.io
        // docs/ambient/usage/add-workloads).
        // A sidecar takes a pod out of ambient too: istio-cni does not redirect a pod that has
        // one (istio/istio 1.30.3 cni/pkg/util/podutil.go `podHasSidecar`).
        Mesh::IstioAmbient => {
            let mode = vec!["gateway", "podLabels", crate::model::AMBIENT_LABEL];
            let sidecar = vec!["gateway", "podLabels", "sidecar.istio.io/inject"];
            if at(&mode) == Some("none") {
                Some((mode, "opts Kong out of Istio's ambient mesh"))
            } else {
                (at(&sidecar) == Some("true"))
                    .then_some((sidecar, "gives Kong a sidecar, which takes it out of Istio's ambient data plane"))
            }
        }
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

    /// Repeated `--values` for one chart layer as `helm -f a -f b`: maps merge, the later
    /// file's scalars and lists win, a `null` is kept for Helm to drop the chart's default.
    #[test]
    fn values_files_layer_in_order_as_helm_layers_them() {
        let a = serde_json::json!({"gateway": {"replicaCount": 1, "podLabels": {"team": "a"}, "env": {"x": "1"}, "args": [1]}});
        let b = serde_json::json!({"gateway": {"replicaCount": 3, "podLabels": {"tier": "edge"}, "env": null, "args": [2, 3]}});
        assert_eq!(
            layer(&a, &b),
            serde_json::json!({"gateway": {"replicaCount": 3, "podLabels": {"team": "a", "tier": "edge"}, "env": null, "args": [2, 3]}})
        );
    }

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

    /// What the plan says it set over the user's values is what it did, for the reason that
    /// applies to the value the user wrote (issue 28, item 11, as the newcomer hit each).
    #[test]
    fn overrides_are_real_and_give_the_reason_for_the_users_value() {
        let kong = |mesh, user: Value| merge("ingress", &user, &crate::stack::kong::values(mesh));
        // `1.0` and "1.0" configure Kong alike (the chart quotes env values): no override.
        let (merged, overrides) = kong(Mesh::Istio, json!({"gateway": {"env": {"tracing_sampling_rate": 1.0}}}));
        assert_eq!(overrides, [], "the same rate in another spelling is no override");
        assert_eq!(merged["gateway"]["env"]["tracing_sampling_rate"], "1.0");
        // A rate that is not 1 is replaced, and the reason is about sampling.
        let (_, overrides) = kong(Mesh::Istio, json!({"gateway": {"env": {"tracing_sampling_rate": "0.5"}}}));
        assert!(overrides[0].why.contains("must be sampled"), "{overrides:?}");
        // `all` traces; the reason is the snapshots, not that tracing is off.
        let (_, overrides) = kong(Mesh::Istio, json!({"gateway": {"env": {"tracing_instrumentations": "all"}}}));
        assert_eq!(overrides.len(), 1, "{overrides:?}");
        assert!(overrides[0].why.contains("request span alone") && !overrides[0].why.contains("off"), "{overrides:?}");
        let (_, overrides) = kong(Mesh::Istio, json!({"gateway": {"env": {"tracing_instrumentations": "off"}}}));
        assert!(overrides[0].why.contains("exports no span"), "{overrides:?}");
        // Linkerd's `enabled` meshes Kong too: the reason says so and names ingress mode.
        let (_, overrides) =
            kong(Mesh::Linkerd, json!({"gateway": {"podAnnotations": {"linkerd.io/inject": "enabled"}}}));
        assert_eq!(overrides[0].key, "gateway.podAnnotations.linkerd.io/inject");
        assert!(
            overrides[0].why.contains("meshed either way") && !overrides[0].why.contains("must be in the mesh"),
            "{overrides:?}"
        );
        // A controller meshed by the user on Istio: kept out, and the reason names the canary.
        let (merged, overrides) = kong(
            Mesh::Istio,
            json!({"controller": {"podLabels": {"sidecar.istio.io/inject": "true", "team": "edge"}}}),
        );
        assert_eq!(merged["controller"]["podLabels"], json!({"sidecar.istio.io/inject": "false", "team": "edge"}));
        assert_eq!(overrides[0].key, "controller.podLabels.sidecar.istio.io/inject");
        assert!(overrides[0].why.contains("canary"), "{overrides:?}");
    }

    /// A private mirror of Istio's images stays the user's; the shut-down default is replaced.
    #[test]
    fn a_users_istio_mirror_is_kept() {
        let harness = json!({"global": {"hub": crate::stack::ISTIO_HUB}});
        let (merged, overrides) = merge("istiod", &json!({"global": {"hub": "mirror.acme.internal/istio"}}), &harness);
        assert_eq!((merged["global"]["hub"].as_str(), overrides.len()), (Some("mirror.acme.internal/istio"), 0));
        let (merged, overrides) = merge("istiod", &json!({"global": {"hub": "registry.istio.io/release"}}), &harness);
        assert_eq!(merged["global"]["hub"], crate::stack::ISTIO_HUB);
        assert!(overrides[0].why.contains("shut down"), "{overrides:?}");
        let (merged, _) = merge("istiod", &json!({"global": {"hub": ""}}), &harness);
        assert_eq!(merged["global"]["hub"], crate::stack::ISTIO_HUB, "an empty hub names no mirror");
    }

    /// Linkerd's issuer from a Secret of the user's (`kubernetes.io/tls`) would silently leave
    /// the harness's PEM issuer unused: the harness sets the scheme, and the plan says why.
    #[test]
    fn a_users_linkerd_issuer_scheme_is_an_override_with_its_reason() {
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        let profile = versions.profile("linkerd", Path::new("versions.toml")).unwrap();
        let release = crate::stack::environment(&profile)
            .into_iter()
            .find_map(|a| match a {
                crate::stack::Action::Helm(r) if r.chart == "linkerd-control-plane" => Some(r),
                _ => None,
            })
            .unwrap();
        let user = json!({"identity": {"issuer": {"scheme": "kubernetes.io/tls"}}});
        let (merged, overrides) = merge("linkerd-control-plane", &user, &release.values);
        assert_eq!(merged["identity"]["issuer"]["scheme"], "linkerd.io/tls");
        assert_eq!(overrides.len(), 1, "{overrides:?}");
        assert_eq!(overrides[0].key, "identity.issuer.scheme");
        assert!(overrides[0].why.contains("linkerd.io/tls"), "{overrides:?}");
    }

    /// Each credential the attack found copied verbatim into bundles, by key, by pair and by
    /// shape; the paths are listed, the values gone; what only names or describes stays.
    #[test]
    fn credentials_are_redacted_by_key_pair_and_shape() {
        const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
        const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXNpZw";
        let mut values = json!({"gateway": {
            "env": {
                "ssl_cert_key": "/etc/secrets/tls.key",
                "cluster_cert_key": PEM,
                "admin_gui_session_conf": "{\"secret\":\"s3ss10n\",\"storage\":\"kong\"}",
                "license_data": "{\"license\":{\"payload\":{\"customer\":\"ACME\"}}}",
                "pg_uri": "postgres://kong:hunter2@db.internal:5432/kong",
                "plugin_conf": "{\"client_secret\":\"cl13nt\",\"issuer\":\"https://idp\"}",
                "note": format!("Bearer {JWT}"),
                "log_level": "debug",
            },
            "extraEnvVars": [{"name": "DD_API_KEY", "value": "dd-0123456789"}, {"name": "TZ", "value": "UTC"}],
            "affinity": {"podAntiAffinity": {"topologyKey": "kubernetes.io/hostname"}},
            "tolerations": [{"key": "node-role", "operator": "Exists"}],
            "secretVolumes": ["kong-tls"],
            "proxy": {"tls": {"secretName": "kong-proxy-tls"}},
            "image": {"repository": "kong", "tag": "3.9.1"},
            "ingressController": {"env": {"kong_admin_token": 12345}},
        }});
        let mut redacted = Vec::new();
        redact_at(&mut values, "", &mut redacted);
        let text = values.to_string();
        for secret in
            ["/etc/secrets/tls.key", "MIIEvQ", "s3ss10n", "ACME", "hunter2", "cl13nt", JWT, "dd-0123", "12345"]
        {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        let env = &values["gateway"]["env"];
        assert_eq!(env["pg_uri"], "postgres://kong:[redacted]@db.internal:5432/kong", "the URL stays useful");
        assert_eq!(env["note"], "Bearer [redacted]");
        assert_eq!(env["plugin_conf"], "{\"client_secret\":\"[redacted]\",\"issuer\":\"https://idp\"}");
        for kept in ["debug", "kubernetes.io/hostname", "node-role", "kong-tls", "kong-proxy-tls", "3.9.1", "UTC"] {
            assert!(text.contains(kept), "{kept} was redacted: {text}");
        }
        redacted.sort();
        assert_eq!(
            redacted,
            [
                "gateway.env.admin_gui_session_conf",
                "gateway.env.cluster_cert_key",
                "gateway.env.license_data",
                "gateway.env.note",
                "gateway.env.pg_uri",
                "gateway.env.plugin_conf",
                "gateway.env.ssl_cert_key",
                "gateway.extraEnvVars[0].value",
                "gateway.ingressController.env.kong_admin_token",
            ],
            "{redacted:?}"
        );
        // Redacting again (the values in force come redacted) lists the same paths.
        let mut again = Vec::new();
        redact_at(&mut values, "", &mut again);
        again.sort();
        assert_eq!(again, redacted);
    }

    #[test]
    fn key_words_and_shapes() {
        for secret in
            ["ssl_cert_key", "keyPEM", "privateKey", "DD_API_KEY", "apiKey", "KONG_PASSWORD", "license", "session"]
        {
            assert!(sensitive_key(secret), "{secret}");
        }
        for plain in ["topologyKey", "key", "secretName", "tokenEnabled", "auth_type", "monkey", "author", "keys"] {
            assert!(!sensitive_key(plain), "{plain}");
        }
        assert_eq!(redact_shapes("echo.shop.svc.cluster.local"), None);
        assert_eq!(redact_shapes("https://user@host/x"), None, "no password, nothing to hide");
        assert_eq!(redact_shapes("a eyJnot.a"), None);
        assert_eq!(
            redact_shapes("see https://a:b@h/x and redis://:pw@r:6379").as_deref(),
            Some("see https://a:[redacted]@h/x and redis://:[redacted]@r:6379")
        );
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
        // Ambient: the pod's own `none`, or a sidecar (a pod with one is not redirected).
        std::fs::write(&file, "gateway:\n  podLabels:\n    istio.io/dataplane-mode: none\n").unwrap();
        assert!(read("kong/ingress", &file, Mesh::IstioAmbient).unwrap_err().message.contains("ambient mesh"));
        assert!(read("kong/ingress", &file, Mesh::Istio).is_ok(), "a label sidecars do not read");
        std::fs::write(&file, "gateway:\n  podLabels:\n    sidecar.istio.io/inject: \"true\"\n").unwrap();
        let d = read("kong/ingress", &file, Mesh::IstioAmbient).unwrap_err();
        assert!(d.message.contains("gives Kong a sidecar"), "{d}");
        assert!(read("kong/ingress", &file, Mesh::Istio).is_ok());
    }
}
