//! Rules on how Kong routes to its upstreams: Ingresses it does not serve, routes served twice,
//! and mesh routes Kong bypasses by targeting pod IPs. They change with KIC's translation of
//! Ingresses and Services into Kong's routes and upstreams.

use super::*;

/// KIC matches Ingresses (and KongConsumers) to its class; one without a class is served only
/// when Kong's IngressClass is the cluster default (KIC v3.5.13 internal/store/store.go
/// `ListIngressesV1`, internal/controllers/utils/utils.go `MatchesIngressClass`).
pub(super) fn ingress_no_class(index: &Index, f: &mut Findings) {
    let default_class = index.of_kind("IngressClass").any(|c| {
        c.annotation("ingressclass.kubernetes.io/is-default-class") == Some("true")
            && str_at(&c.object, &["spec", "controller"]) == Some("ingress-controllers.konghq.com/kong")
    });
    if default_class {
        return;
    }
    for o in index.objects.iter().filter(|o| o.kind == "Ingress" || o.kind == "KongConsumer") {
        let class = str_at(&o.object, &["spec", "ingressClassName"]).or(o.annotation("kubernetes.io/ingress.class"));
        if class.is_none() {
            f.on_object(
                o,
                &["metadata", "name"],
                format!(
                    "{} {} names no ingress class: KIC ignores it unless Kong's IngressClass is the cluster default",
                    o.kind, o.name
                ),
                if o.kind == "Ingress" {
                    "set `spec.ingressClassName: kong`".into()
                } else {
                    "annotate it `kubernetes.io/ingress.class: kong`".into()
                },
            );
        }
    }
}

/// Without `ingress.kubernetes.io/service-upstream`, KIC balances over the Service's endpoints
/// (pod IPs) itself: a mesh's per-Service routing (an Istio VirtualService, a Linkerd or Gateway
/// API HTTPRoute attached to the Service) never sees Kong's requests, whatever the mTLS mode.
pub(super) fn kong_upstream_bypasses_mesh_routing(index: &Index, f: &mut Findings) {
    let mut routed: BTreeMap<(String, String), String> = BTreeMap::new();
    for vs in index.of_kind("VirtualService") {
        let ns = vs.namespace_or_default().to_owned();
        for host in strings_at(&vs.object, "/spec/hosts") {
            routed.insert((ns.clone(), service_of_host(host, &ns).to_owned()), format!("VirtualService {}", vs.name));
        }
    }
    for route in index.of_kind("HTTPRoute") {
        let ns = route.namespace_or_default().to_owned();
        for parent in route.object.pointer("/spec/parentRefs").and_then(Value::as_array).into_iter().flatten() {
            if parent.get("kind").and_then(Value::as_str) == Some("Service")
                && let Some(name) = parent.get("name").and_then(Value::as_str)
            {
                routed.insert((ns.clone(), name.to_owned()), format!("HTTPRoute {}", route.name));
            }
        }
    }
    for ingress in index.kong_ingresses() {
        let ns = ingress.namespace_or_default();
        for (service, path) in ingress_backends(ingress) {
            let Some(by) = routed.get(&(ns.to_owned(), service.clone())) else { continue };
            let svc = index.find("Service", ns, &service);
            if svc.and_then(|s| s.annotation("ingress.kubernetes.io/service-upstream")) == Some("true") {
                continue;
            }
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            f.on_object(
                ingress,
                &path,
                format!("{by} routes Service {service}, but Kong sends to its pod IPs (no service-upstream): the mesh's route never applies to Kong's requests"),
                format!("annotate Service {service} with `ingress.kubernetes.io/service-upstream: \"true\"`"),
            );
        }
    }
}

pub(super) fn ingress_route_duplicate(index: &Index, f: &mut Findings) {
    let mut seen: BTreeMap<(String, String), &Manifest> = BTreeMap::new();
    for ingress in index.kong_ingresses() {
        for (host, path, at) in ingress_routes(ingress) {
            match seen.get(&(host.clone(), path.clone())) {
                Some(first) if first.name != ingress.name || first.namespace != ingress.namespace => {
                    let at: Vec<&str> = at.iter().map(String::as_str).collect();
                    f.on_object(
                        ingress,
                        &at,
                        format!(
                            "{host}{path} is also routed by Ingress {}/{}: which one Kong uses is not defined",
                            first.namespace_or_default(),
                            first.name
                        ),
                        "give each Ingress its own host or path".into(),
                    );
                }
                Some(_) => {}
                None => {
                    seen.insert((host, path), ingress);
                }
            }
        }
    }
}
