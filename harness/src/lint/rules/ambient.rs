//! Rules on Istio's ambient mode: Kong's requests going around a waypoint, namespaces asking
//! for sidecars and ambient at once, waypoints nothing uses, and HTTP rules ztunnel cannot
//! enforce. They change with istiod's ambient controllers and ztunnel.

use super::*;

/// The label that points a namespace, Service or pod at a waypoint (`none` opts out), and the
/// one naming the waypoint's namespace when it is not the object's own (istio.io
/// docs/ambient/usage/waypoint).
const USE_WAYPOINT: &str = "istio.io/use-waypoint";
const USE_WAYPOINT_NAMESPACE: &str = "istio.io/use-waypoint-namespace";
/// What traffic a waypoint handles: `service` (the default istiod picks when the label is
/// absent: istio/istio 1.30.3 pilot/pkg/serviceregistry/ambient/waypoints.go), `workload`,
/// `all` or `none`.
const WAYPOINT_FOR: &str = "istio.io/waypoint-for";
/// The GatewayClass of Istio's waypoints.
const WAYPOINT_CLASS: &str = "istio-waypoint";

fn label<'a>(m: &'a Manifest, key: &str) -> Option<&'a str> {
    m.labels().find(|(k, _)| *k == key).map(|(_, v)| v)
}

fn namespace_label<'a>(index: &'a Index, namespace: &'a str, key: &str) -> Option<&'a str> {
    index.namespace_labels(namespace).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// Whether a namespace among the inputs is enrolled in ambient mode.
fn ambient_namespace(index: &Index, namespace: &str) -> bool {
    namespace_label(index, namespace, crate::model::AMBIENT_LABEL) == Some("ambient")
}

/// The waypoint (namespace, name) `object` uses by its own label, else by its namespace's;
/// `None` when neither names one or the object opts out with `none`.
fn waypoint_of(index: &Index, object: &Manifest) -> Option<(String, String, bool)> {
    let ns = object.namespace_or_default();
    let (name, waypoint_ns, by_namespace) = match label(object, USE_WAYPOINT) {
        Some(name) => (name, label(object, USE_WAYPOINT_NAMESPACE), false),
        None => (namespace_label(index, ns, USE_WAYPOINT)?, namespace_label(index, ns, USE_WAYPOINT_NAMESPACE), true),
    };
    (name != "none").then(|| (waypoint_ns.unwrap_or(ns).to_owned(), name.to_owned(), by_namespace))
}

fn waypoints(index: &Index) -> impl Iterator<Item = &Manifest> {
    index.of_kind("Gateway").filter(|g| str_at(&g.object, &["spec", "gatewayClassName"]) == Some(WAYPOINT_CLASS))
}

/// A Kong backend Service that uses a waypoint for services, while Kong sends to its pod IPs:
/// a service waypoint only sees traffic addressed to the Service (istio.io
/// docs/ambient/usage/waypoint; istio/istio 1.30.3 tests/integration/ambient/baseline_test.go
/// `TestPodIP`: "not traversed, since traffic is to-workload IP"), so its L7 policy and routes
/// silently do not apply to Kong's requests.
pub(super) fn kong_upstream_bypasses_waypoint(index: &Index, f: &mut Findings) {
    for route in index.kong_routes() {
        let ns = route.namespace_or_default();
        for (service, path) in route_backends(route) {
            let Some(svc) = index.find("Service", ns, &service) else { continue };
            if svc.annotation("ingress.kubernetes.io/service-upstream") == Some("true") {
                continue;
            }
            let Some((waypoint_ns, waypoint, by_namespace)) = waypoint_of(index, svc) else { continue };
            let gateway = index.find("Gateway", &waypoint_ns, &waypoint);
            let handles = gateway.and_then(|g| label(g, WAYPOINT_FOR)).unwrap_or("service");
            // A waypoint for workloads sees pod-addressed traffic of the pods that use it; the
            // namespace's label points the pods at it too.
            if by_namespace && matches!(handles, "workload" | "all") {
                continue;
            }
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            f.on_object_about(
                route,
                &[svc],
                &path,
                format!(
                    "Service {service} uses waypoint {waypoint_ns}/{waypoint}, which handles traffic addressed to the Service ({WAYPOINT_FOR}: {handles}); Kong sends to its pod IPs (no service-upstream), so the waypoint's L7 policy and routes never apply to Kong's requests"
                ),
                format!("annotate Service {service} with `ingress.kubernetes.io/service-upstream: \"true\"`"),
            );
        }
    }
}

/// A namespace labelled for ambient and for sidecar injection: the injector still injects, and
/// a pod with a sidecar is not redirected to ztunnel ("sidecar injection takes precedence",
/// istio.io docs/ambient/usage/add-workloads).
pub(super) fn ambient_and_sidecar_injection(index: &Index, f: &mut Findings) {
    for ns in index.of_kind("Namespace") {
        if label(ns, crate::model::AMBIENT_LABEL) != Some("ambient") {
            continue;
        }
        let injection = match (label(ns, "istio-injection"), label(ns, "istio.io/rev")) {
            (Some("enabled"), _) => "istio-injection: enabled",
            (_, Some(_)) => "istio.io/rev",
            _ => continue,
        };
        let key = if injection == "istio.io/rev" { "istio.io/rev" } else { "istio-injection" };
        f.on_object(
            ns,
            &["metadata", "labels", key],
            format!(
                "namespace {} asks for ambient and for sidecars ({injection}): its pods get sidecars, and a pod with a sidecar is not in the ambient data plane",
                ns.name
            ),
            format!("choose one: remove `{key}` for ambient, or `{}` for sidecars", crate::model::AMBIENT_LABEL),
        );
    }
}

/// A waypoint no namespace, Service, workload or ServiceEntry among the inputs points at: it
/// runs and proxies nothing. Judged only where the waypoint's namespace object is among the
/// inputs (a namespace label elsewhere could use it).
pub(super) fn waypoint_unused(index: &Index, f: &mut Findings) {
    for gateway in waypoints(index) {
        let ns = gateway.namespace_or_default();
        if !index.of_kind("Namespace").any(|n| n.name == ns) {
            continue;
        }
        let points_here = |m: &Manifest, labels: &mut dyn Iterator<Item = (&str, &str)>| {
            let labels: BTreeMap<&str, &str> = labels.collect();
            let own_ns = if m.kind == "Namespace" { m.name.as_str() } else { m.namespace_or_default() };
            labels.get(USE_WAYPOINT) == Some(&gateway.name.as_str())
                && labels.get(USE_WAYPOINT_NAMESPACE).copied().unwrap_or(own_ns) == ns
        };
        let used = index.objects.iter().any(|m| match m.kind.as_str() {
            "Namespace" | "Service" | "ServiceEntry" | "Pod" => points_here(m, &mut m.labels()),
            _ => pod_template_labels(m).is_some_and(|labels| {
                let mut iter = labels.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
                points_here(m, &mut iter)
            }),
        });
        if !used {
            f.on_object(
                gateway,
                &["metadata", "name"],
                format!(
                    "waypoint {ns}/{} is used by nothing: no namespace, Service or workload is labelled `{USE_WAYPOINT}: {}`, so it proxies no traffic and its L7 policy applies to none",
                    gateway.name, gateway.name
                ),
                format!("label the namespace or the Services it should serve `{USE_WAYPOINT}: {}`", gateway.name),
            );
        }
    }
}

/// The labels of a workload's pod template.
fn pod_template_labels(m: &Manifest) -> Option<&serde_json::Map<String, Value>> {
    let template = match m.kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => m.object.pointer("/spec/template"),
        "CronJob" => m.object.pointer("/spec/jobTemplate/spec/template"),
        _ => None,
    }?;
    template.pointer("/metadata/labels").and_then(Value::as_object)
}

/// HTTP attributes of an AuthorizationPolicy rule: what only an L7 proxy can see (istio/istio
/// 1.30.3 pilot/pkg/serviceregistry/ambient/authorization.go `httpOperations`, `httpSources`,
/// and `when` keys of the request).
const HTTP_OPERATION_FIELDS: &[&str] = &["methods", "notMethods", "paths", "notPaths", "hosts", "notHosts"];
const HTTP_SOURCE_FIELDS: &[&str] = &["requestPrincipals", "notRequestPrincipals"];

/// The first HTTP attribute of an AuthorizationPolicy rule: its path in the rule and its name.
fn http_attribute(rule: &Value) -> Option<(Vec<String>, String)> {
    let list = |key: &str| rule.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let within = |key: &str, inner: &str, fields: &[&str]| {
        list(key).iter().enumerate().find_map(|(i, item)| {
            let k = fields.iter().find(|k| item.pointer(&format!("/{inner}/{k}")).is_some())?;
            Some((vec![key.to_owned(), i.to_string(), inner.to_owned(), (*k).to_owned()], (*k).to_owned()))
        })
    };
    within("to", "operation", HTTP_OPERATION_FIELDS).or_else(|| within("from", "source", HTTP_SOURCE_FIELDS)).or_else(
        || {
            list("when").iter().enumerate().find_map(|(i, when)| {
                let key = when.get("key").and_then(Value::as_str).filter(|k| k.starts_with("request."))?;
                Some((vec!["when".to_owned(), i.to_string(), "key".to_owned()], key.to_owned()))
            })
        },
    )
}

/// An AuthorizationPolicy ztunnel enforces (no `targetRef(s)`: it selects workloads, in an
/// ambient namespace) with HTTP attributes: istiod omits such rules from an ALLOW policy and
/// enforces a DENY policy without them, "more restrictive than requested" (istio/istio 1.30.3
/// pilot/pkg/serviceregistry/ambient/authorization.go). An ALLOW policy meant to admit Kong for
/// some methods then admits nobody by those rules.
pub(super) fn ambient_policy_http_rules(index: &Index, f: &mut Findings) {
    for policy in index.of_kind("AuthorizationPolicy") {
        let ns = policy.namespace_or_default();
        let spec = &policy.object["spec"];
        if !ambient_namespace(index, ns) || spec.get("targetRef").is_some() || spec.get("targetRefs").is_some() {
            continue;
        }
        let action = spec.get("action").and_then(Value::as_str).unwrap_or("ALLOW");
        if !matches!(action, "ALLOW" | "DENY") {
            continue;
        }
        let rules = spec.get("rules").and_then(Value::as_array).into_iter().flatten().enumerate();
        for (r, rule) in rules {
            let Some((at, field)) = http_attribute(rule) else { continue };
            let r = r.to_string();
            let mut path = vec!["spec", "rules", r.as_str()];
            path.extend(at.iter().map(String::as_str));
            let what = if action == "ALLOW" {
                "ztunnel drops this rule from the ALLOW policy, so the rule admits no one, Kong included"
            } else {
                "ztunnel enforces this DENY rule without its HTTP part, so it denies every request it would match on other terms"
            };
            f.on_object(
                policy,
                &path,
                format!(
                    "AuthorizationPolicy {} selects workloads of ambient namespace {ns} and matches on `{field}`, which only a waypoint sees: {what}",
                    policy.name
                ),
                "keep ztunnel's policy to principals, namespaces, IP blocks and ports, and attach HTTP rules to a waypoint (`targetRefs` to the Service or the waypoint's Gateway, the namespace labelled `istio.io/use-waypoint`)".into(),
            );
        }
    }
}
