//! Rules on Kong's own configuration objects and annotations: `konghq.com/*` annotations KIC
//! does not read or reads from another object, credential Secrets, and KongIngress. They change
//! with KIC's annotation and credential handling.

use super::*;

/// `konghq.com/*` annotations KIC reads, and where (KIC internal/annotations/annotations.go).
/// Annotations KIC reads only from a Service (Kubernetes-ingress-controller v3.5.13:
/// internal/dataplane/kongstate/service.go `overrideByAnnotation`, kongstate/upstream.go,
/// translator/ingressrules.go for client-cert and the CA references).
const SERVICE_ONLY: &[&str] = &[
    "connect-timeout",
    "read-timeout",
    "write-timeout",
    "retries",
    "protocol",
    "path",
    "host-header",
    "client-cert",
    "tls-verify",
    "tls-verify-depth",
    "ca-certificates-secrets",
    "ca-certificates-configmaps",
    "upstream-policy",
];
/// Annotations KIC reads only from an Ingress (v3.5.13: kongstate/route.go `overrideByAnnotation`,
/// translator/subtranslator/ingress.go for regex-prefix and rewrite).
const ROUTE_ONLY: &[&str] = &[
    "protocols",
    "preserve-host",
    "strip-path",
    "https-redirect-status-code",
    "request-buffering",
    "response-buffering",
    "regex-priority",
    "methods",
    "snis",
    "host-aliases",
    "headers-separator",
    "path-handling",
    "regex-prefix",
    "rewrite",
];
const KNOWN: &[&str] = &[
    "override",
    "plugins",
    "protocol",
    "protocols",
    "client-cert",
    "strip-path",
    "path",
    "https-redirect-status-code",
    "preserve-host",
    "regex-priority",
    "host-header",
    "methods",
    "snis",
    "request-buffering",
    "response-buffering",
    "host-aliases",
    "regex-prefix",
    "connect-timeout",
    "write-timeout",
    "read-timeout",
    "retries",
    "headers-separator",
    "path-handling",
    "tags",
    "rewrite",
    "gatewayclass-unmanaged",
    "publish-service",
    "upstream-policy",
    // Read by newer KIC versions for upstream TLS; tolerated so the rule never flags a real key.
    "tls-verify",
    "tls-verify-depth",
    "ca-certificates-secrets",
    "ca-certificates-configmaps",
];

pub(super) fn kong_annotation_wrong_object(index: &Index, f: &mut Findings) {
    for o in index.objects.iter().filter(|o| o.kind == "Ingress" || o.kind == "Service") {
        for (key, _) in o.annotations() {
            let Some(name) = key.strip_prefix("konghq.com/") else { continue };
            let (wrong, belongs) = match o.kind.as_str() {
                "Ingress" if SERVICE_ONLY.contains(&name) => (true, "Service"),
                "Service" if ROUTE_ONLY.contains(&name) => (true, "Ingress"),
                _ => (false, ""),
            };
            if wrong {
                f.on_object(
                    o,
                    &["metadata", "annotations", key],
                    format!("KIC reads `{key}` only from the {belongs}; on this {} it is ignored", o.kind),
                    format!("move it to the {belongs}"),
                );
            }
        }
    }
}

pub(super) fn kong_annotation_unknown(index: &Index, f: &mut Findings) {
    for o in &index.objects {
        for (key, _) in o.annotations() {
            let Some(name) = key.strip_prefix("konghq.com/") else { continue };
            if KNOWN.contains(&name) || name.starts_with("headers.") {
                continue;
            }
            let fix = if name == "service-upstream" {
                "use `ingress.kubernetes.io/service-upstream: \"true\"` on the Service".to_owned()
            } else {
                match crate::diagnostic::closest(name, KNOWN.iter().copied()) {
                    Some(near) => format!("did you mean `konghq.com/{near}`?"),
                    None => "remove it: KIC reads no such annotation".to_owned(),
                }
            };
            f.on_object(
                o,
                &["metadata", "annotations", key],
                format!("KIC reads no annotation `{key}`; it has no effect"),
                fix,
            );
        }
    }
}

/// KIC 3.x takes a credential's type only from the Secret's `konghq.com/credential` label; the
/// `kongCredType` field was removed in 3.2.0 (KIC CHANGELOG; internal/util/credential.go).
pub(super) fn kong_credential_unlabelled(index: &Index, f: &mut Findings) {
    let referenced: BTreeSet<(String, String)> = index
        .of_kind("KongConsumer")
        .flat_map(|c| {
            let ns = c.namespace_or_default().to_owned();
            strings_at(&c.object, "/credentials").map(move |s| (ns.clone(), s.to_owned())).collect::<Vec<_>>()
        })
        .collect();
    for secret in index.of_kind("Secret") {
        let key = (secret.namespace_or_default().to_owned(), secret.name.clone());
        let labelled = secret.labels().any(|(k, _)| k == "konghq.com/credential");
        let legacy = secret.object.pointer("/stringData/kongCredType").is_some()
            || secret.object.pointer("/data/kongCredType").is_some();
        if (referenced.contains(&key) || legacy) && !labelled {
            f.on_object(
                secret,
                &["metadata", "name"],
                format!("Secret {} is used as a Kong credential but has no `konghq.com/credential` label: KIC 3.x ignores it{}", secret.name, if legacy { " (`kongCredType` was removed in KIC 3.2)" } else { "" }),
                "label it `konghq.com/credential: <type>` (jwt, key-auth, basic-auth, hmac-auth, oauth2, acl, mtls-auth)".into(),
            );
        }
    }
}

/// `KongIngress` and `konghq.com/override` are deprecated since KIC 3.0 (KIC CHANGELOG 3.0.0:
/// "KongIngress is now entirely deprecated"); KongUpstreamPolicy replaces what is left.
pub(super) fn kong_ingress_deprecated(index: &Index, f: &mut Findings) {
    for o in &index.objects {
        if o.kind == "KongIngress" {
            f.on_object(
                o,
                &["kind"],
                "KongIngress is deprecated (KIC 3.0) and will be removed".into(),
                "use a KongUpstreamPolicy (`konghq.com/upstream-policy` on the Service)".into(),
            );
        } else if o.annotation("konghq.com/override").is_some() {
            f.on_object(
                o,
                &["metadata", "annotations", "konghq.com/override"],
                "`konghq.com/override` (KongIngress) is deprecated (KIC 3.0) and will be removed".into(),
                "use `konghq.com/upstream-policy` with a KongUpstreamPolicy".into(),
            );
        }
    }
}
