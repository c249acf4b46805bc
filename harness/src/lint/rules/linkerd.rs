//! Rules on Linkerd: injection annotations in the wrong place, Kong in Linkerd's ingress mode
//! without the `l5d-dst-override` guard, the retired SMI TrafficSplit, ServiceProfiles that
//! override HTTPRoutes. They change with Linkerd's injector and routing.

use super::*;

/// An error only when nothing else injects the pod: when its namespace (among the inputs)
/// injects, the misplaced annotation is only dead weight (a warning); when the namespace is not
/// among the inputs, lint cannot tell (a warning that says so).
pub(super) fn linkerd_inject_on_workload_metadata(index: &Index, f: &mut Findings) {
    for w in workloads(index) {
        if w.annotation("linkerd.io/inject").is_some()
            && str_at(&w.object, &["spec", "template", "metadata", "annotations", "linkerd.io/inject"]).is_none()
        {
            let ns = w.namespace_or_default();
            let namespace = index.of_kind("Namespace").find(|n| n.name == ns);
            let ns_injects = namespace
                .and_then(|n| n.annotation("linkerd.io/inject"))
                .is_some_and(|v| v == "enabled" || v == "ingress");
            let (severity, consequence) = match (namespace, ns_injects) {
                (Some(_), true) => (Severity::Warning, format!("namespace {ns} injects the pods anyway")),
                (Some(_), false) => (Severity::Error, "so its pods are not injected".to_owned()),
                (None, _) => (
                    Severity::Warning,
                    format!("its pods are injected only if namespace {ns} (not among the inputs) is annotated"),
                ),
            };
            f.on_object_at(
                severity,
                w,
                &["metadata", "annotations", "linkerd.io/inject"],
                format!("`linkerd.io/inject` on the {}'s own metadata is ignored: Linkerd's injector reads pod and namespace annotations only; {consequence}", w.kind),
                "move it to `spec.template.metadata.annotations` (or annotate the namespace)".into(),
            );
        }
    }
}

/// Whether `plugin` (a KongPlugin or KongClusterPlugin) strips `l5d-dst-override`.
fn strips_dst_override(plugin: &Manifest) -> bool {
    plugin.object.get("plugin").and_then(Value::as_str) == Some("request-transformer")
        && plugin
            .object
            .pointer("/config/remove/headers")
            .and_then(Value::as_array)
            .is_some_and(|h| h.iter().filter_map(Value::as_str).any(|h| h.eq_ignore_ascii_case("l5d-dst-override")))
}

/// Whether every rule of an HTTPRoute removes `l5d-dst-override` by a `RequestHeaderModifier`
/// filter (KIC turns it into a request-transformer on the route: KIC v3.5.13
/// internal/dataplane/translator/subtranslator/httproute.go).
fn filters_strip_dst_override(route: &Manifest) -> bool {
    let rules = route.object.pointer("/spec/rules").and_then(Value::as_array).cloned().unwrap_or_default();
    route.kind == "HTTPRoute"
        && !rules.is_empty()
        && rules.iter().all(|rule| {
            rule.get("filters").and_then(Value::as_array).into_iter().flatten().any(|filter| {
                filter.get("type").and_then(Value::as_str) == Some("RequestHeaderModifier")
                    && filter.pointer("/requestHeaderModifier/remove").and_then(Value::as_array).is_some_and(|h| {
                        h.iter().filter_map(Value::as_str).any(|h| h.eq_ignore_ascii_case("l5d-dst-override"))
                    })
            })
        })
}

/// Plugin names attached to an object by `konghq.com/plugins`.
fn attached_plugins(o: &Manifest) -> impl Iterator<Item = &str> {
    o.annotation("konghq.com/plugins").unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// In ingress mode Linkerd's proxy routes by the `l5d-dst-override` header, so Kong must strip
/// a client's copy on every route it serves: a guard attached to nothing protects nothing.
/// A guard counts when it is a global KongClusterPlugin (label `global: "true"`), or attached
/// to the Ingress or to its backend Service (KIC merges plugins of both).
pub(super) fn linkerd_ingress_open_relay(index: &Index, f: &mut Findings) {
    let values = index.kong_values();
    if index.kong.linkerd_inject(values.map(|(v, _)| v), &index.objects).as_deref() != Some("ingress") {
        return;
    }
    // A global plugin KIC does not pick up (no class) guards nothing.
    let global = index.of_kind("KongClusterPlugin").any(|p| {
        p.labels().any(|(k, v)| k == "global" && v == "true")
            && p.annotation("kubernetes.io/ingress.class").is_some()
            && strips_dst_override(p)
    });
    if global {
        return;
    }
    let guards = |o: &Manifest| {
        let ns = o.namespace_or_default();
        attached_plugins(o).any(|name| {
            index.find("KongPlugin", ns, name).is_some_and(strips_dst_override)
                || index.of_kind("KongClusterPlugin").any(|p| p.name == name && strips_dst_override(p))
        })
    };
    let mut ingresses = 0;
    for ingress in index.kong_routes() {
        ingresses += 1;
        let ns = ingress.namespace_or_default();
        // Backends lint does not follow (another namespace's) guard nothing it can see.
        let backends = route_backends(ingress);
        let backends_guarded = !backends.is_empty()
            && backends.iter().all(|(service, _)| index.find("Service", ns, service).is_some_and(&guards));
        if !guards(ingress) && !backends_guarded && !filters_strip_dst_override(ingress) {
            f.on_object(
                ingress,
                &["metadata", "name"],
                format!("Kong runs Linkerd's proxy in ingress mode, and nothing strips a client's `l5d-dst-override` on {} {}: any client can steer this route's requests to any service in the cluster", ingress.kind, ingress.name),
                "attach a request-transformer KongPlugin with `config.remove.headers: [l5d-dst-override]` to it (`konghq.com/plugins`; on an HTTPRoute, a RequestHeaderModifier filter removing it does the same), or make it a KongClusterPlugin labelled `global: \"true\"`".into(),
            );
        }
    }
    if ingresses == 0
        && !plugin_objects(index).any(strips_dst_override)
        && let Some((values, chart)) = values
    {
        let path: Vec<&str> = chart.gateway().iter().copied().chain(["podAnnotations", "linkerd.io/inject"]).collect();
        f.on_values(
            values,
            &path,
            "Kong runs Linkerd's proxy in ingress mode but nothing strips a client's `l5d-dst-override` header: any client can steer Kong's requests to any service in the cluster".into(),
            "add a request-transformer KongClusterPlugin labelled `global: \"true\"` with `config.remove.headers: [l5d-dst-override]`".into(),
        );
    }
}

pub(super) fn smi_trafficsplit(index: &Index, f: &mut Findings) {
    for t in
        index.objects.iter().filter(|o| o.kind == "TrafficSplit" && o.api_version.starts_with("split.smi-spec.io/"))
    {
        f.on_object(
            t,
            &["apiVersion"],
            "TrafficSplit needs the linkerd-smi extension, retired since 2024 (last release v0.2.7); without it the kind is unknown".into(),
            "use a gateway.networking.k8s.io/v1 HTTPRoute with the Service as parentRef and weighted backendRefs".into(),
        );
    }
}

pub(super) fn serviceprofile_overrides_httproute(index: &Index, f: &mut Findings) {
    for sp in index.of_kind("ServiceProfile") {
        let service = sp.name.split('.').next().unwrap_or_default();
        let ns = sp.namespace_or_default();
        let routed = index.of_kind("HTTPRoute").filter(|r| r.namespace_or_default() == ns).any(|r| {
            r.object.pointer("/spec/parentRefs").and_then(Value::as_array).into_iter().flatten().any(|p| {
                p.get("kind").and_then(Value::as_str) == Some("Service")
                    && p.get("name").and_then(Value::as_str) == Some(service)
            })
        });
        if routed {
            f.on_object(
                sp,
                &["metadata", "name"],
                format!("ServiceProfile {} and an HTTPRoute both apply to Service {service}; the ServiceProfile wins and the HTTPRoute (e.g. its weights) is ignored", sp.name),
                "remove the ServiceProfile, or move its settings into the HTTPRoute".into(),
            );
        }
    }
}

/// Linkerd's default policies that refuse a client without a mesh identity
/// (linkerd.io/2-edge/reference/authorization-policy/, "Default policies").
const AUTHENTICATED_ONLY: [&str; 3] = ["all-authenticated", "cluster-authenticated", "deny"];

/// A backend of Kong's, meshed, behind a Server that admits only mesh-authenticated clients,
/// while Kong is not in the mesh: Kong's requests carry no identity and are refused. The Linkerd
/// analogue of `istio-strict-kong-unmeshed`. Linkerd enforces policy on meshed pods only, so the
/// backend's injection must be known (its pod or namespace annotation); and anything that may
/// admit a client by network alone (an AuthorizationPolicy with only NetworkAuthentication refs
/// on the Server, an HTTPRoute or the namespace, or a legacy ServerAuthorization of
/// unauthenticated clients) takes the finding back (linkerd/website 2-edge
/// reference/authorization-policy.md).
pub(super) fn linkerd_authz_kong_unmeshed(index: &Index, f: &mut Findings) {
    if index.mesh.is_some_and(|m| m != Mesh::Linkerd) {
        return;
    }
    let servers: Vec<&Manifest> =
        index.of_kind("Server").filter(|s| s.api_version.starts_with("policy.linkerd.io/")).collect();
    if servers.is_empty() {
        return;
    }
    let meshing = index.kong_meshing(Mesh::Linkerd);
    for ingress in index.kong_routes() {
        let ns = ingress.namespace_or_default();
        for (service, path) in route_backends(ingress) {
            let Some(hop) = kong_hop(index, ingress, &service, &path) else { continue };
            let Some((port, port_name)) = hop.pod_port() else { continue };
            if !backend_meshed(index, ns, &hop.pods) {
                continue;
            }
            for server in servers.iter().filter(|s| s.namespace_or_default() == ns) {
                let Some(selector) = server.object.pointer("/spec/podSelector/matchLabels").and_then(Value::as_object)
                else {
                    continue;
                };
                let selected = hop.pods.iter().any(|w| {
                    w.object
                        .pointer("/spec/template/metadata/labels")
                        .and_then(Value::as_object)
                        .is_some_and(|labels| selects(selector, labels))
                });
                let on_port = match server.object.pointer("/spec/port") {
                    Some(Value::Number(n)) => n.as_u64() == Some(u64::from(port)),
                    Some(Value::String(n)) => port_name.as_deref() == Some(n.as_str()),
                    _ => false,
                };
                let policy = server.object.pointer("/spec/accessPolicy").and_then(Value::as_str).unwrap_or("deny");
                if !selected
                    || !on_port
                    || !AUTHENTICATED_ONLY.contains(&policy)
                    || admits_by_network(index, ns, server)
                {
                    continue;
                }
                let policies = policies_on(index, ns, server);
                let mut about: Vec<&Manifest> = vec![hop.service, server];
                about.extend(policies.iter().copied());
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                match &meshing {
                    Meshing::Unknown(missing) => f.note(
                        &ingress.file,
                        format!("not checked whether Kong can pass the Linkerd Servers of its backends: lint does not know whether Kong's gateway is in the mesh ({missing})"),
                    ),
                    Meshing::NotMeshed(why) => {
                        let annotations = index.kong_values().map_or("podAnnotations", |(_, c)| {
                            if c == KongChart::Ingress { "gateway.podAnnotations" } else { "podAnnotations" }
                        });
                        f.assumed(index, &ingress.file);
                        f.on_object_about(
                            ingress,
                            &about,
                            &path,
                            format!(
                                "Service {service} ({ns}) is behind Linkerd Server {} (accessPolicy {policy}), which admits \
                                 only mesh-authenticated clients, but Kong's gateway is not in the mesh ({why}): its requests \
                                 carry no identity and are refused",
                                server.name
                            ),
                            format!("mesh Kong: `{annotations}: {{linkerd.io/inject: ingress}}` in its values, or annotate its namespace"),
                        );
                    }
                    Meshing::Meshed(_) => {}
                }
            }
        }
    }
}

/// Whether the backend's pods get Linkerd's proxy, as far as the inputs say: their own
/// `linkerd.io/inject`, else their namespace's (the injector reads the pod's first).
fn backend_meshed(index: &Index, ns: &str, pods: &[&Manifest]) -> bool {
    let injects = |v: &str| matches!(v, "enabled" | "ingress");
    let namespace = index
        .of_kind("Namespace")
        .find(|n| n.name == ns)
        .and_then(|n| n.annotation("linkerd.io/inject"))
        .is_some_and(injects);
    !pods.is_empty()
        && pods.iter().all(|w| {
            match str_at(&w.object, &["spec", "template", "metadata", "annotations", "linkerd.io/inject"]) {
                Some(own) => injects(own),
                None => namespace,
            }
        })
}

/// AuthorizationPolicies of namespace `ns` that apply to `server`: on the Server itself, on the
/// namespace, or on an HTTPRoute (which may route to it).
fn policies_on<'a>(index: &'a Index, ns: &str, server: &Manifest) -> Vec<&'a Manifest> {
    index
        .of_kind("AuthorizationPolicy")
        .filter(|a| a.api_version.starts_with("policy.linkerd.io/") && a.namespace_or_default() == ns)
        .filter(|a| {
            let kind = a.object.pointer("/spec/targetRef/kind").and_then(Value::as_str);
            let name = a.object.pointer("/spec/targetRef/name").and_then(Value::as_str);
            match kind {
                Some("Server") => name == Some(server.name.as_str()),
                Some("Namespace" | "HTTPRoute" | "GRPCRoute") => true,
                _ => false,
            }
        })
        .collect()
}

/// Whether anything in `ns` may admit a client of `server` without a mesh identity: a policy on
/// it whose required authentications are all NetworkAuthentications, or a legacy
/// ServerAuthorization of unauthenticated clients.
fn admits_by_network(index: &Index, ns: &str, server: &Manifest) -> bool {
    let by_network = policies_on(index, ns, server).into_iter().any(|a| {
        a.object.pointer("/spec/requiredAuthenticationRefs").and_then(Value::as_array).is_some_and(|refs| {
            !refs.is_empty()
                && refs.iter().all(|r| r.get("kind").and_then(Value::as_str) == Some("NetworkAuthentication"))
        })
    });
    let legacy = index.of_kind("ServerAuthorization").filter(|a| a.namespace_or_default() == ns).any(|a| {
        let names_it = a.object.pointer("/spec/server/name").and_then(Value::as_str) == Some(server.name.as_str())
            || a.object.pointer("/spec/server/selector").is_some();
        names_it && a.object.pointer("/spec/client/unauthenticated").and_then(Value::as_bool) == Some(true)
    });
    by_network || legacy
}
