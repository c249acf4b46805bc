//! Rules on Istio: sidecar opt-in, STRICT mTLS with Kong in or out of the mesh, the Host Kong
//! sends, DestinationRule subsets, deprecated Istio API versions and AuthorizationPolicy
//! principals naming Kong. They change with Istio's injector, security and routing.

use super::*;

/// Whether Istio's injector injects every pod of `namespace` by its label: `istio-injection:
/// enabled`, or a revision's `istio.io/rev` (Istio's sidecar-injector webhooks select namespaces
/// by either). There an opt-in annotation is a leftover that does nothing, not a missing sidecar.
fn injects_by_namespace(index: &Index, namespace: &str) -> bool {
    index.namespace_labels(namespace).any(|(k, v)| (k == "istio-injection" && v == "enabled") || k == "istio.io/rev")
}

pub(super) fn istio_inject_annotation_not_label(index: &Index, f: &mut Findings) {
    let kong_injected = injects_by_namespace(index, &index.kong.namespace);
    if let Some((values, chart)) = index.kong_values() {
        let sections = chart.written_sections();
        for section in sections {
            let path: Vec<&str> =
                section.iter().copied().chain(["podAnnotations", "sidecar.istio.io/inject"]).collect();
            // `"false"` is honoured by the injector as an opt-out; only an opt-in by annotation
            // is the mistake.
            if values.get(&path).and_then(Value::as_str) == Some("true") {
                let labels: Vec<&str> = chart.gateway().iter().copied().chain(["podLabels"]).collect();
                if kong_injected {
                    f.on_values_at(
                        Severity::Warning,
                        values,
                        &path,
                        "`sidecar.istio.io/inject` as a pod *annotation* is a leftover: Kong's namespace is labelled for injection, which injects its pods; the annotation does nothing".into(),
                        "remove it (or use the label to opt pods in or out)".into(),
                    );
                } else {
                    f.on_values(
                        values,
                        &path,
                        "`sidecar.istio.io/inject` as a pod *annotation* does not opt a pod in: Istio's injector selects pods by the label in namespaces without `istio-injection`".into(),
                        format!("use `{}: {{sidecar.istio.io/inject: \"true\"}}`", labels.join(".")),
                    );
                }
            }
        }
    }
    for w in workloads(index) {
        let path = ["spec", "template", "metadata", "annotations", "sidecar.istio.io/inject"];
        if str_at(&w.object, &path) != Some("true") {
            continue;
        }
        if injects_by_namespace(index, w.namespace_or_default()) {
            f.on_object_at(
                Severity::Warning,
                w,
                &path,
                format!("{} {} carries a leftover `sidecar.istio.io/inject` annotation: its namespace is labelled for injection, which injects its pods; the annotation does nothing", w.kind, w.name),
                "remove it (or use the label to opt pods in or out)".into(),
            );
        } else {
            f.on_object(
                w,
                &path,
                format!("{} {} asks for a sidecar with an annotation; Istio's injector matches the *label* `sidecar.istio.io/inject`, so no sidecar is added", w.kind, w.name),
                "move it to `spec.template.metadata.labels`".into(),
            );
        }
    }
}

/// Whether a namespace is under STRICT mTLS: a selector-less PeerAuthentication there, or a
/// mesh-wide one in istio-system.
/// Whether a namespace is under STRICT mTLS: its own selector-less PeerAuthentication decides
/// when there is one, else the mesh-wide one in the root namespace (`istio-system`, Istio's
/// default `rootNamespace`) — a namespace policy overrides the mesh's
/// (istio.io/latest/docs/concepts/security/#peer-authentication).
fn strict_namespace(index: &Index, namespace: &str) -> bool {
    let mode_in = |ns: &str| {
        index
            .of_kind("PeerAuthentication")
            .filter(|pa| pa.namespace_or_default() == ns && pa.object.pointer("/spec/selector").is_none())
            .find_map(|pa| str_at(&pa.object, &["spec", "mtls", "mode"]))
    };
    match mode_in(namespace) {
        Some(mode) => mode == "STRICT",
        None => mode_in("istio-system") == Some("STRICT"),
    }
}

pub(super) fn istio_strict_kong_unmeshed(index: &Index, f: &mut Findings) {
    if index.mesh.is_some_and(|m| !m.is_istio()) {
        return;
    }
    let meshing = index.kong_meshing(Mesh::Istio);
    for ingress in index.kong_routes() {
        let ns = ingress.namespace_or_default();
        if !strict_namespace(index, ns) {
            continue;
        }
        for (service, path) in route_backends(ingress) {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let svc = index.find("Service", ns, &service);
            let upstream = svc.and_then(|s| s.annotation("ingress.kubernetes.io/service-upstream")) == Some("true");
            f.assumed(index, &ingress.file);
            if let Meshing::Unknown(missing) = &meshing {
                f.note(
                    &ingress.file,
                    format!("not checked whether Kong can reach the STRICT namespaces of its backends: lint does not know whether Kong's gateway is in the mesh ({missing})"),
                );
            } else if let Meshing::NotMeshed(why) = &meshing {
                let labels = index.kong_values().map_or("podLabels", |(_, c)| {
                    if c == KongChart::Ingress { "gateway.podLabels" } else { "podLabels" }
                });
                f.on_object_about(
                    ingress,
                    &svc.into_iter().collect::<Vec<_>>(),
                    &path,
                    format!("Service {service} is in STRICT namespace {ns}, but Kong's gateway is not in the mesh ({why}): it sends plaintext, which the backend's sidecar refuses"),
                    format!("mesh Kong: `{labels}: {{sidecar.istio.io/inject: \"true\"}}` in its values, or label its namespace istio-injection=enabled"),
                );
            } else if !upstream {
                f.on_object_about(
                    ingress,
                    &svc.into_iter().collect::<Vec<_>>(),
                    &path,
                    format!("Kong sends to pod IPs of {service} (no service-upstream): Istio's passthrough cluster has no mTLS settings, so STRICT refuses the traffic"),
                    format!("annotate Service {service} with `ingress.kubernetes.io/service-upstream: \"true\"`"),
                );
            }
        }
    }
}

pub(super) fn istio_host_header_mismatch(index: &Index, f: &mut Findings) {
    let routed: BTreeSet<(String, String)> = index
        .of_kind("VirtualService")
        .flat_map(|vs| {
            let ns = vs.namespace_or_default().to_owned();
            strings_at(&vs.object, "/spec/hosts")
                .map(move |h| (ns.clone(), service_of_host(h, &ns).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    for ingress in index.kong_routes() {
        let ns = ingress.namespace_or_default();
        let preserve = ingress.annotation("konghq.com/preserve-host").unwrap_or("true");
        for (service, path) in route_backends(ingress) {
            if !routed.contains(&(ns.to_owned(), service.clone())) {
                continue;
            }
            let host_header = index.find("Service", ns, &service).and_then(|s| s.annotation("konghq.com/host-header"));
            if preserve != "false" || host_header.is_none() {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                f.on_object(
                    ingress,
                    &path,
                    format!("Service {service} has a VirtualService, but Kong sends the client's Host: the sidecar matches routes by Host, so the VirtualService's rules do not apply"),
                    format!("set `konghq.com/preserve-host: \"false\"` on the {} and `konghq.com/host-header: {service}.{ns}.svc.cluster.local` on the Service (on a route with several backends, leave host-header out: KIC needs the Services' konghq.com annotations equal, and sends each target's name)", ingress.kind),
                );
            }
        }
    }
}

/// A DestinationRule subset: the rule, the subset's index in it, its name.
type Subset<'a> = (&'a Manifest, usize, String);

/// Subsets by (namespace, Service name).
fn destination_rule_subsets(index: &Index) -> BTreeMap<(String, String), Vec<Subset<'_>>> {
    let mut out: BTreeMap<(String, String), Vec<Subset<'_>>> = BTreeMap::new();
    for dr in index.of_kind("DestinationRule") {
        let ns = dr.namespace_or_default().to_owned();
        let Some(host) = str_at(&dr.object, &["spec", "host"]) else { continue };
        let service = service_of_host(host, &ns).to_owned();
        let subsets = dr.object.pointer("/spec/subsets").and_then(Value::as_array).into_iter().flatten();
        for (i, s) in subsets.enumerate() {
            if let Some(name) = s.get("name").and_then(Value::as_str) {
                out.entry((ns.clone(), service.clone())).or_default().push((dr, i, name.to_owned()));
            }
        }
    }
    out
}

pub(super) fn istio_subset_undefined(index: &Index, f: &mut Findings) {
    let defined = destination_rule_subsets(index);
    for vs in index.of_kind("VirtualService") {
        let ns = vs.namespace_or_default();
        let routes = vs.object.pointer("/spec/http").and_then(Value::as_array).into_iter().flatten();
        for (h, http) in routes.enumerate() {
            let dests = http.get("route").and_then(Value::as_array).into_iter().flatten();
            for (r, route) in dests.enumerate() {
                let (Some(host), Some(subset)) =
                    (str_at(route, &["destination", "host"]), str_at(route, &["destination", "subset"]))
                else {
                    continue;
                };
                let service = service_of_host(host, ns);
                let known = defined
                    .get(&(ns.to_owned(), service.to_owned()))
                    .is_some_and(|s| s.iter().any(|(_, _, n)| n == subset));
                if !known {
                    let (h, r) = (h.to_string(), r.to_string());
                    f.on_object(
                        vs,
                        &["spec", "http", &h, "route", &r, "destination", "subset"],
                        format!("subset `{subset}` of {host} is defined by no DestinationRule: Istio rejects the route (IST0101) and requests get 503"),
                        format!("add a DestinationRule for {host} with a subset `{subset}` selecting its pods by label (e.g. `version: {subset}`)"),
                    );
                }
            }
        }
    }
}

pub(super) fn istio_subset_selects_nothing(index: &Index, f: &mut Findings) {
    for ((ns, _service), subsets) in destination_rule_subsets(index) {
        for (dr, i, name) in subsets {
            let labels: BTreeMap<&str, &str> = dr
                .object
                .pointer(&format!("/spec/subsets/{i}/labels"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect();
            if labels.is_empty() {
                continue;
            }
            let matched = workloads(index).filter(|w| w.namespace_or_default() == ns).any(|w| {
                let pod: BTreeMap<&str, &str> =
                    crate::scenario::fixture::string_map(&w.object, "/spec/template/metadata/labels").collect();
                labels.iter().all(|(k, v)| pod.get(k) == Some(v))
            });
            // Only judge when the inputs hold workloads of that namespace at all.
            let any_workload = workloads(index).any(|w| w.namespace_or_default() == ns);
            if any_workload && !matched {
                let i = i.to_string();
                f.on_object(
                    dr,
                    &["spec", "subsets", &i, "labels"],
                    format!("subset `{name}` selects pods labelled {labels:?}, and no workload in {ns} has them: traffic routed to it fails"),
                    "add the labels to the pod template of the workload, or fix the subset's labels".into(),
                );
            }
        }
    }
}

pub(super) fn api_version_deprecated(index: &Index, f: &mut Findings) {
    const OLD: &[(&str, &str)] = &[
        ("security.istio.io/v1beta1", "security.istio.io/v1"),
        ("networking.istio.io/v1beta1", "networking.istio.io/v1"),
        ("networking.istio.io/v1alpha3", "networking.istio.io/v1"),
        ("telemetry.istio.io/v1alpha1", "telemetry.istio.io/v1"),
    ];
    let schemas = crate::lint::crd::Schemas::built_in();
    for o in &index.objects {
        // Only where the newer version serves this kind: EnvoyFilter, for one, exists only as
        // v1alpha3 in the pinned CRDs, so there is nothing to move to.
        if let Some((_, new)) =
            OLD.iter().find(|(old, new)| *old == o.api_version && schemas.shape(new, &o.kind).is_some())
        {
            f.on_object(
                o,
                &["apiVersion"],
                format!("{} is deprecated for {}", o.api_version, o.kind),
                format!("use `apiVersion: {new}`"),
            );
        }
    }
}

pub(super) fn authz_principal_unknown(index: &Index, f: &mut Findings) {
    let kong_ns = &index.kong.namespace;
    let values = index.kong_values();
    let chart = values.map_or(KongChart::Ingress, |(_, c)| c);
    let account = chart.service_account(&index.kong.release, values.map(|(v, _)| &v.value));
    let expected = format!("cluster.local/ns/{kong_ns}/sa/{account}");
    // Accounts the chart does create (the gateway's, and the controller's where it has its own).
    let created: Vec<String> =
        std::iter::once(account.clone()).chain(chart.controller_service_account(&index.kong.release)).collect();
    let unknown = |sa: &str| !sa.contains('*') && !created.iter().any(|c| c == sa);
    let mut assumed = match &index.kong.source {
        crate::lint::kong::Source::Assumed(what) => Some(what.clone()),
        crate::lint::kong::Source::Given => None,
    };
    for ap in index.of_kind("AuthorizationPolicy") {
        let rules = ap.object.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten();
        for (r, rule) in rules.enumerate() {
            let froms = rule.get("from").and_then(Value::as_array).into_iter().flatten();
            for (s, from) in froms.enumerate() {
                let principals = from.pointer("/source/principals").and_then(Value::as_array).into_iter().flatten();
                for p in principals.filter_map(Value::as_str) {
                    let sa = p.strip_prefix(&format!("cluster.local/ns/{kong_ns}/sa/"));
                    if sa.is_some_and(&unknown) {
                        if let Some(what) = assumed.take() {
                            f.note(&ap.file, format!("Kong's identity is judged by an assumption: {what}"));
                        }
                        let (r, s) = (r.to_string(), s.to_string());
                        f.on_object(
                            ap,
                            &["spec", "rules", &r, "from", &s, "source", "principals"],
                            format!("principal `{p}` names a service account the {} chart does not create; Kong's gateway runs as `{expected}`, so its requests are denied", chart.name()),
                            format!("use `{expected}`"),
                        );
                    }
                }
            }
        }
    }
    // Linkerd's analogue: a MeshTLSAuthentication naming Kong's namespace with another account,
    // as an identity (`<sa>.<ns>.serviceaccount.identity.<trust domain>`, linkerd2
    // policy.linkerd.io MeshTLSAuthentication) or as an identityRef to a ServiceAccount.
    for mta in index.of_kind("MeshTLSAuthentication") {
        let identities = mta.object.pointer("/spec/identities").and_then(Value::as_array).into_iter().flatten();
        let mut wrong: Vec<(Vec<String>, String, String)> = Vec::new();
        for (i, identity) in identities.enumerate() {
            let Some(identity) = identity.as_str() else { continue };
            let mut parts = identity.splitn(4, '.');
            let (Some(sa), Some(ns), Some("serviceaccount")) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            // `<sa>.<ns>.serviceaccount.identity.<trust domain>`; the fix keeps the user's domain.
            let domain =
                parts.next().and_then(|rest| rest.strip_prefix("identity.")).unwrap_or("linkerd.cluster.local");
            if ns == kong_ns.as_str() && unknown(sa) {
                wrong.push((
                    vec!["spec".into(), "identities".into(), i.to_string()],
                    format!("identity `{identity}`"),
                    format!("{account}.{kong_ns}.serviceaccount.identity.{domain}"),
                ));
            }
        }
        let refs = mta.object.pointer("/spec/identityRefs").and_then(Value::as_array).into_iter().flatten();
        for (i, r) in refs.enumerate() {
            let kind = r.get("kind").and_then(Value::as_str);
            let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            let ns = r.get("namespace").and_then(Value::as_str).unwrap_or(mta.namespace_or_default());
            if kind == Some("ServiceAccount") && ns == kong_ns.as_str() && unknown(name) {
                wrong.push((
                    vec!["spec".into(), "identityRefs".into(), i.to_string(), "name".into()],
                    format!("identityRef ServiceAccount `{ns}/{name}`"),
                    format!("name: {account}"),
                ));
            }
        }
        for (path, what, fix) in wrong {
            if let Some(what) = assumed.take() {
                f.note(&mta.file, format!("Kong's identity is judged by an assumption: {what}"));
            }
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            f.on_object(
                mta,
                &path,
                format!(
                    "MeshTLSAuthentication {}: {what} names a service account the {} chart does not create; Kong's \
                     gateway runs as `{kong_ns}/{account}`, so its requests are not authenticated as allowed",
                    mta.name,
                    chart.name()
                ),
                format!("use `{fix}`"),
            );
        }
    }
}
