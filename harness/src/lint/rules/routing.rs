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
    for ingress in index.kong_routes() {
        let ns = ingress.namespace_or_default();
        for (service, path) in route_backends(ingress) {
            let Some(by) = routed.get(&(ns.to_owned(), service.clone())) else { continue };
            let svc = index.find("Service", ns, &service);
            if svc.and_then(|s| s.annotation("ingress.kubernetes.io/service-upstream")) == Some("true") {
                continue;
            }
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            f.on_object_about(
                ingress,
                &svc.into_iter().collect::<Vec<_>>(),
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

/// The annotations that take ports out of a mesh proxy's interception, per mesh and direction:
/// Linkerd's proxy-init reads `config.linkerd.io/skip-{inbound,outbound}-ports` from the pod or
/// its namespace (ports and ranges, linkerd.io/2-edge/reference/proxy-configuration/); Istio's
/// `traffic.sidecar.istio.io/exclude{Inbound,Outbound}Ports` from the pod
/// (istio.io/latest/docs/reference/config/annotations/).
const SKIP_OUTBOUND: [(Mesh, &str); 2] = [
    (Mesh::Linkerd, "config.linkerd.io/skip-outbound-ports"),
    (Mesh::Istio, "traffic.sidecar.istio.io/excludeOutboundPorts"),
];
const SKIP_INBOUND: [(Mesh, &str); 2] = [
    (Mesh::Linkerd, "config.linkerd.io/skip-inbound-ports"),
    (Mesh::Istio, "traffic.sidecar.istio.io/excludeInboundPorts"),
];

/// Kong's hop to a backend taken around a mesh proxy: Kong's pods skipping the port they dial
/// (the request leaves in plaintext, without Kong's identity), or the backend's pods skipping
/// the port Kong reaches (mTLS and the mesh's policies never see Kong's requests). Only where
/// that side has the proxy as far as the inputs say (not known to be out of the mesh), and with
/// the pod's own annotation winning over its namespace's (Linkerd's injector copies a namespace
/// annotation only where the pod has none: linkerd2 controller/proxy-injector/webhook.go).
pub(super) fn mesh_proxy_skips_kong_hop(index: &Index, f: &mut Findings) {
    let meshes: Vec<Mesh> = match index.mesh {
        Some(Mesh::None) => return,
        Some(m) => vec![m],
        None => vec![Mesh::Linkerd, Mesh::Istio],
    };
    let evidence = |mesh: Mesh| if mesh == Mesh::Istio { ISTIO_ANNOTATIONS } else { LINKERD_PROXY_CONFIG };
    let proxy = |mesh: Mesh| if mesh == Mesh::Istio { "Istio sidecar" } else { "Linkerd proxy" };
    // Linkerd takes ports and ranges (`4000-5000`); Istio's injector single ports only.
    let holds = |mesh: Mesh, list: &str, port: u16| port_list_holds(list, port, mesh == Mesh::Linkerd);
    let values = index.kong_values();
    let kong_namespace = index.of_kind("Namespace").find(|n| n.name == index.kong.namespace);
    for ingress in index.kong_routes() {
        for (service, path) in route_backends(ingress) {
            let Some(hop) = kong_hop(index, ingress, &service, &path) else { continue };
            let ns = ingress.namespace_or_default();
            let mut about: Vec<&Manifest> = vec![ingress, hop.service];
            for (mesh, key) in SKIP_OUTBOUND.iter().filter(|(m, _)| meshes.contains(m)) {
                let Some(port) = hop.dialled_port() else { continue };
                if matches!(index.kong_meshing(*mesh), Meshing::NotMeshed(_)) {
                    continue;
                }
                let how = if hop.service_upstream { "the Service port it dials" } else { "the pod port it dials" };
                let consequence = format!(
                    "Kong's requests to Service {service} ({ns}) on port {port} ({how}) leave around its {}, \
                     in plaintext and without Kong's identity",
                    proxy(*mesh)
                );
                let fix = format!("remove port {port} from `{key}`");
                // Kong's pods: the values' pod annotations, which win over its namespace's.
                let own = values.and_then(|(v, chart)| {
                    let at: Vec<&str> = chart.gateway().iter().copied().chain(["podAnnotations", key]).collect();
                    v.get(&at).map(|list| {
                        let list = match list {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (v, at, list)
                    })
                });
                if let Some((v, at, list)) = own {
                    if holds(*mesh, &list, port) {
                        let before = f.out.len();
                        let message =
                            format!("Kong's pods skip port {port} outbound (`{key}: \"{list}\"`): {consequence}");
                        f.on_values(v, &at, message, fix.clone());
                        f.cite_since(before, evidence(*mesh));
                    }
                    continue;
                }
                if *mesh == Mesh::Linkerd
                    && let Some(n) = kong_namespace
                    && let Some(list) = n.annotation(key).filter(|l| holds(*mesh, l, port))
                {
                    let before = f.out.len();
                    f.on_object_about(
                        n,
                        &about,
                        &["metadata", "annotations", key],
                        format!(
                            "Kong's namespace {} skips port {port} outbound (`{key}: \"{list}\"`): {consequence}",
                            n.name
                        ),
                        fix.clone(),
                    );
                    f.cite_since(before, evidence(*mesh));
                }
            }
            for (mesh, key) in SKIP_INBOUND.iter().filter(|(m, _)| meshes.contains(m)) {
                let Some((port, name)) = hop.pod_port() else { continue };
                let shown = name.map_or(port.to_string(), |n| format!("{port} ({n})"));
                let consequence = format!(
                    "Kong's requests reach the pods of Service {service} on port {shown} around their {}, so the \
                     mesh's mutual TLS and policies do not apply to Kong's hop",
                    proxy(*mesh)
                );
                let namespace = index.of_kind("Namespace").find(|n| n.name == ns);
                for w in &hop.pods {
                    if backend_out_of_mesh(*mesh, w, namespace) {
                        continue;
                    }
                    let at = ["spec", "template", "metadata", "annotations", key];
                    let list = match str_at(&w.object, &at) {
                        Some(own) => own,
                        // Linkerd: the namespace's value where the pod has none of its own.
                        None if *mesh == Mesh::Linkerd => match namespace.and_then(|n| n.annotation(key)) {
                            Some(from_namespace) if holds(*mesh, from_namespace, port) => {
                                if let Some(n) = namespace {
                                    about.push(w);
                                    let before = f.out.len();
                                    f.on_object_about(
                                        n,
                                        &about,
                                        &["metadata", "annotations", key],
                                        format!("namespace {ns} skips port {port} inbound for {} {} (`{key}: \"{from_namespace}\"`): {consequence}", w.kind, w.name),
                                        format!("remove port {port} from `{key}`"),
                                    );
                                    f.cite_since(before, evidence(*mesh));
                                    about.pop();
                                }
                                continue;
                            }
                            _ => continue,
                        },
                        None => continue,
                    };
                    if holds(*mesh, list, port) {
                        let before = f.out.len();
                        f.on_object_about(
                            w,
                            &about,
                            &at,
                            format!(
                                "{} {} skips port {port} inbound (`{key}: \"{list}\"`): {consequence}",
                                w.kind, w.name
                            ),
                            format!("remove port {port} from `{key}`"),
                        );
                        f.cite_since(before, evidence(*mesh));
                    }
                }
            }
        }
    }
}

/// Whether a backend workload is known to run without `mesh`'s proxy: its own opt-out, or (with
/// no opt-in of its own) a namespace among the inputs that does not inject.
fn backend_out_of_mesh(mesh: Mesh, workload: &Manifest, namespace: Option<&Manifest>) -> bool {
    let pod = |map: &str, key: &str| str_at(&workload.object, &["spec", "template", "metadata", map, key]);
    match mesh {
        Mesh::Linkerd => match pod("annotations", "linkerd.io/inject") {
            Some(v) => !matches!(v, "enabled" | "ingress"),
            None => {
                namespace.is_some_and(|n| !matches!(n.annotation("linkerd.io/inject"), Some("enabled" | "ingress")))
            }
        },
        Mesh::Istio | Mesh::IstioAmbient => {
            let label = pod("labels", "sidecar.istio.io/inject").or(pod("annotations", "sidecar.istio.io/inject"));
            let ambient = pod("labels", crate::model::AMBIENT_LABEL);
            match (label, ambient) {
                (Some("true"), _) | (_, Some("ambient")) => false,
                (Some("false"), _) => {
                    namespace.is_none_or(|n| !n.labels().any(|kv| kv == (crate::model::AMBIENT_LABEL, "ambient")))
                        || ambient == Some("none")
                }
                _ => namespace.is_some_and(|n| {
                    let l = |k: &str| n.labels().find(|(key, _)| *key == k).map(|(_, v)| v.to_owned());
                    l("istio-injection").as_deref() != Some("enabled")
                        && l("istio.io/rev").is_none()
                        && (l(crate::model::AMBIENT_LABEL).as_deref() != Some("ambient") || ambient == Some("none"))
                }),
            }
        }
        Mesh::None => true,
    }
}

/// A backend of Kong's HTTPRoute in another namespace needs a ReferenceGrant there admitting
/// HTTPRoutes of the route's namespace to that Service; without one KIC drops the backend
/// (`ResolvedRefs=False`, `RefNotPermitted`: KIC v3.5.13 internal/gatewayapi/references.go,
/// internal/dataplane/translator/backendref.go). Judged only where the backend's namespace has
/// objects among the inputs (a grant kept elsewhere is otherwise unseen), said in a note else.
pub(super) fn kong_httproute_backend_not_granted(index: &Index, f: &mut Findings) {
    for route in index.kong_routes().filter(|r| r.kind == "HTTPRoute") {
        let ns = route.namespace_or_default();
        let rules = route.object.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten();
        for (r, rule) in rules.enumerate() {
            let refs = rule.get("backendRefs").and_then(Value::as_array).into_iter().flatten();
            for (b, backend) in refs.enumerate() {
                let Some(target_ns) = backend.get("namespace").and_then(Value::as_str).filter(|t| *t != ns) else {
                    continue;
                };
                let kind = backend.get("kind").and_then(Value::as_str).unwrap_or("Service");
                let group = backend.get("group").and_then(Value::as_str).unwrap_or("");
                let name = backend.get("name").and_then(Value::as_str).unwrap_or_default();
                let granted =
                    index.of_kind("ReferenceGrant").filter(|g| g.namespace_or_default() == target_ns).any(|g| {
                        let from =
                            g.object.pointer("/spec/from").and_then(Value::as_array).into_iter().flatten().any(|f| {
                                f.get("group").and_then(Value::as_str) == Some(super::super::index::GATEWAY_API_GROUP)
                                    && f.get("kind").and_then(Value::as_str) == Some("HTTPRoute")
                                    && f.get("namespace").and_then(Value::as_str) == Some(ns)
                            });
                        let to =
                            g.object.pointer("/spec/to").and_then(Value::as_array).into_iter().flatten().any(|t| {
                                // Groups compare exactly (KIC internal/gatewayapi/references.go).
                                t.get("group").and_then(Value::as_str).unwrap_or("") == group
                                    && t.get("kind").and_then(Value::as_str) == Some(kind)
                                    && t.get("name").and_then(Value::as_str).is_none_or(|n| n == name)
                            });
                        from && to
                    });
                if granted {
                    continue;
                }
                // Only objects that name that namespace show it is among the inputs (cluster-scoped
                // ones count for no namespace).
                if !index.objects.iter().any(|o| o.namespace.as_deref() == Some(target_ns)) {
                    f.note(
                        &route.file,
                        format!("not checked whether HTTPRoute {} may reach {kind} {target_ns}/{name}: nothing of namespace {target_ns} (where its ReferenceGrant would be) is among the inputs", route.name),
                    );
                    continue;
                }
                let (r, b) = (r.to_string(), b.to_string());
                f.on_object(
                    route,
                    &["spec", "rules", &r, "backendRefs", &b, "namespace"],
                    format!(
                        "HTTPRoute {} sends to {kind} {target_ns}/{name}, and no ReferenceGrant in {target_ns} lets HTTPRoutes of {ns} refer to it: KIC drops the backend (RefNotPermitted)",
                        route.name
                    ),
                    format!(
                        "add a ReferenceGrant in {target_ns}: `from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {ns}}}]`, `to: [{{group: \"{group}\", kind: {kind}, name: {name}}}]`"
                    ),
                );
            }
        }
    }
}
