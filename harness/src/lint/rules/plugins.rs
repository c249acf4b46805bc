//! Rules on Kong plugins (KongPlugin, KongClusterPlugin): references that resolve to nothing,
//! unknown, Enterprise-only or deprecated plugins and fields, and tracing plugins that trace
//! (almost) nothing. They change with Kong's bundled plugins and their schemas.

use super::*;

pub(super) fn kong_plugin_unresolved(index: &Index, f: &mut Findings) {
    let cluster: BTreeSet<&str> = index.of_kind("KongClusterPlugin").map(|p| p.name.as_str()).collect();
    let grants = index.of_kind("ReferenceGrant").count() > 0;
    for o in index.objects.iter().filter(|o| o.annotation("konghq.com/plugins").is_some()) {
        let ns = o.namespace_or_default();
        for name in
            o.annotation("konghq.com/plugins").unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty())
        {
            let found = match name.split_once(':') {
                Some((other_ns, n)) => grants && index.find("KongPlugin", other_ns, n).is_some(),
                None => index.find("KongPlugin", ns, name).is_some() || cluster.contains(name),
            };
            if !found {
                let elsewhere: Vec<String> = index
                    .of_kind("KongPlugin")
                    .filter(|p| p.name == name)
                    .map(|p| p.namespace_or_default().to_owned())
                    .collect();
                let fix = if elsewhere.is_empty() {
                    format!("create KongPlugin {name} in namespace {ns}, or a KongClusterPlugin {name}")
                } else {
                    format!(
                        "KongPlugin {name} exists in {}: plugins are looked up in the {} {} own namespace; move it to {ns} or make it a KongClusterPlugin",
                        elsewhere.join(", "),
                        o.kind,
                        o.name
                    )
                };
                f.on_object(
                    o,
                    &["metadata", "annotations", "konghq.com/plugins"],
                    format!("plugin `{name}` resolves to no KongPlugin in {ns} and no KongClusterPlugin: KIC drops it silently and the route runs without it"),
                    fix,
                );
            }
        }
    }
}

pub(super) fn kong_cluster_plugin_no_class(index: &Index, f: &mut Findings) {
    for p in index.of_kind("KongClusterPlugin") {
        if p.annotation("kubernetes.io/ingress.class").is_none() {
            f.on_object(
                p,
                &["metadata"],
                format!(
                    "KongClusterPlugin {} has no `kubernetes.io/ingress.class` annotation; KIC may not pick it up",
                    p.name
                ),
                "add `kubernetes.io/ingress.class: kong`".into(),
            );
        }
    }
}

pub(super) fn kong_plugin_deprecated_field(index: &Index, f: &mut Findings) {
    for p in plugin_objects(index) {
        let plugin = p.object.get("plugin").and_then(Value::as_str).unwrap_or_default();
        let deprecated: &[&str] = match plugin {
            "zipkin" => &["header_type", "default_header_type"],
            "opentelemetry" => &["header_type", "endpoint"],
            _ => &[],
        };
        for field in deprecated {
            if p.object.pointer(&format!("/config/{field}")).is_some() {
                let schema = if plugin == "opentelemetry" { KONG_OTEL_SCHEMA } else { KONG_ZIPKIN_SCHEMA };
                f.on_object_citing(
                    schema,
                    p,
                    &["config", field],
                    format!("`{field}` of the {plugin} plugin is deprecated (removed in Kong 4.0)"),
                    if *field == "endpoint" {
                        "use `traces_endpoint`".into()
                    } else {
                        "use `propagation: {extract: [...], inject: [...], default_format: b3}`".into()
                    },
                );
            }
        }
    }
}

/// Plugins only Kong Enterprise ships (absent from Kong OSS `kong/plugins/`).
const ENTERPRISE_PLUGINS: &[&str] = &[
    "mtls-auth",
    "openid-connect",
    "rate-limiting-advanced",
    "request-validator",
    "opa",
    "canary",
    "jwt-signer",
    "oauth2-introspection",
];

pub(super) fn kong_enterprise_plugin(index: &Index, f: &mut Findings) {
    // Kong Enterprise runs them: `image.repository: kong/kong-gateway` or `enterprise.enabled`.
    if let Some((values, chart)) = index.kong_values() {
        let at = |path: &[&str]| {
            let full: Vec<&str> = chart.gateway().iter().chain(path).copied().collect();
            values.get(&full).cloned()
        };
        let enterprise_image =
            at(&["image", "repository"]).and_then(|v| v.as_str().map(|s| s.contains("kong-gateway"))).unwrap_or(false);
        if enterprise_image || at(&["enterprise", "enabled"]).and_then(|v| v.as_bool()) == Some(true) {
            return;
        }
    }
    for p in plugin_objects(index) {
        let plugin = p.object.get("plugin").and_then(Value::as_str).unwrap_or_default();
        if ENTERPRISE_PLUGINS.contains(&plugin) {
            f.on_object(
                p,
                &["plugin"],
                format!("`{plugin}` is a Kong Enterprise plugin; the OSS image (the chart's default, and the harness's) has no such plugin and KIC fails to configure it"),
                if plugin == "mtls-auth" {
                    "mtls-auth authenticates *clients to Kong*, not Kong to the mesh; the mesh's own mTLS covers Kong -> backend".into()
                } else {
                    "remove it, or install Kong Enterprise with a licence".into()
                },
            );
        }
    }
}

/// The plugins bundled with Kong Gateway OSS 3.9 (Kong/kong 3.9.1 kong/constants.lua, `plugins`).
const KONG_39_PLUGINS: &[&str] = &[
    "jwt",
    "acl",
    "correlation-id",
    "cors",
    "oauth2",
    "tcp-log",
    "udp-log",
    "file-log",
    "http-log",
    "key-auth",
    "hmac-auth",
    "basic-auth",
    "ip-restriction",
    "request-transformer",
    "response-transformer",
    "request-size-limiting",
    "rate-limiting",
    "response-ratelimiting",
    "syslog",
    "loggly",
    "datadog",
    "ldap-auth",
    "statsd",
    "bot-detection",
    "aws-lambda",
    "request-termination",
    "prometheus",
    "proxy-cache",
    "session",
    "acme",
    "grpc-gateway",
    "grpc-web",
    "pre-function",
    "post-function",
    "azure-functions",
    "zipkin",
    "opentelemetry",
    "ai-proxy",
    "ai-prompt-decorator",
    "ai-prompt-template",
    "ai-prompt-guard",
    "ai-request-transformer",
    "ai-response-transformer",
    "standard-webhooks",
    "redirect",
];

pub(super) fn kong_plugin_unknown(index: &Index, f: &mut Findings) {
    for p in plugin_objects(index) {
        let Some(plugin) = p.object.get("plugin").and_then(Value::as_str) else { continue };
        // Enterprise plugins have their own rule; custom plugins are named in KONG_PLUGINS by the
        // user and cannot be known here, so the finding names the closest bundled one.
        if KONG_39_PLUGINS.contains(&plugin) || ENTERPRISE_PLUGINS.contains(&plugin) {
            continue;
        }
        let fix = match crate::diagnostic::closest(plugin, KONG_39_PLUGINS.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => {
                "use a plugin Kong bundles, or install the custom plugin (KONG_PLUGINS) and ignore this finding".into()
            }
        };
        f.on_object(
            p,
            &["plugin"],
            format!(
                "Kong 3.9 bundles no plugin `{plugin}`: KIC cannot configure it and Kong rejects the configuration"
            ),
            fix,
        );
    }
}

/// A zipkin plugin that does not set `sample_ratio` keeps its default, 0.001: tests and
/// debugging see almost no trace.
pub(super) fn kong_zipkin_sampled_rarely(index: &Index, f: &mut Findings) {
    for p in plugin_objects(index) {
        if p.object.get("plugin").and_then(Value::as_str) == Some("zipkin")
            && p.object.pointer("/config/sample_ratio").is_none()
        {
            f.on_object(
                p,
                &["plugin"],
                "the zipkin plugin samples 0.001 of requests unless `config.sample_ratio` says otherwise".into(),
                "set `config.sample_ratio: 1` where every request should be traced (tests, debugging)".into(),
            );
        }
    }
}

/// An opentelemetry plugin exports spans only when Kong's tracing instrumentation is on
/// (`tracing_instrumentations`, `KONG_TRACING_INSTRUMENTATIONS`, default `off`). Known from
/// Kong's values (`env.tracing_instrumentations`, under `gateway.` for kong/ingress); without
/// them, a note says it was not checked.
pub(super) fn kong_otel_not_instrumented(index: &Index, f: &mut Findings) {
    let instrumented = index.kong_values().map(|(values, chart)| {
        let mut path: Vec<&str> = chart.gateway().to_vec();
        path.extend(["env", "tracing_instrumentations"]);
        let setting = path.iter().try_fold(&values.value, |v, k| v.get(*k)).and_then(Value::as_str);
        setting.is_some_and(|s| !s.trim().eq_ignore_ascii_case("off"))
    });
    for p in plugin_objects(index) {
        if p.object.get("plugin").and_then(Value::as_str) != Some("opentelemetry") {
            continue;
        }
        match instrumented {
            Some(true) => {}
            Some(false) => f.on_object(
                p,
                &["plugin"],
                "Kong's tracing instrumentation is off (`tracing_instrumentations` unset or `off`): the opentelemetry \
                 plugin only propagates headers and exports no span"
                    .into(),
                "set `env.tracing_instrumentations: all` (kong/ingress: `gateway.env`) and a sampling rate \
                 (`env.tracing_sampling_rate: 1` or the plugin's `config.sampling_rate: 1`)"
                    .into(),
            ),
            None => f.on_object_at(
                Severity::Note,
                p,
                &["plugin"],
                "not checked whether Kong's tracing instrumentation is on (the opentelemetry plugin exports nothing \
                 without it): no Kong values given"
                    .into(),
                "pass Kong's values (--values kong/ingress=FILE) to check".into(),
            ),
        }
    }
}
