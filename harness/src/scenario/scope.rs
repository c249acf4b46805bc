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
/// route), or Kong's metrics read without a label naming the scenario's namespace (counters of
/// every scenario running at the same time).
pub fn shared_state(loaded: &LoadedScenario, manifests: &[Manifest], namespace: &str) -> Option<String> {
    let global = manifests.iter().find(|m| {
        matches!(m.kind.as_str(), "KongClusterPlugin" | "KongPlugin")
            && m.object.pointer("/metadata/labels/global").and_then(Value::as_str) == Some("true")
    });
    if let Some(m) = global {
        return Some(format!("{} {} is labelled `global: \"true\"`: Kong applies it to every route", m.kind, m.name));
    }
    loaded.scenario.steps.iter().enumerate().find_map(|(i, step)| {
        let crate::model::Step::Metrics(metrics) = step else { return None };
        if metrics.target != crate::model::MetricsTarget::Kong {
            return None;
        }
        let scoped = |e: &crate::model::SeriesExpect| {
            e.labels.values().any(|m| match m {
                crate::model::LabelMatch::Equals(v) => v.contains(namespace),
                crate::model::LabelMatch::Prefix { prefix } => prefix.contains(namespace),
            })
        };
        metrics.expect.iter().find(|e| !scoped(e)).map(|e| {
            format!("step {} reads Kong's `{}` series without a label naming the scenario's namespace", i + 1, e.name)
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
                        "image `{}` is not one of the checkout's pinned images (write `{{{{ images.<name> }}}}`; pinned: {})",
                        crate::names::printable(image),
                        images.join(", ")
                    ),
                ));
            }
            if container.pointer("/securityContext/privileged").and_then(Value::as_bool) == Some(true) {
                return Some((
                    here(&["securityContext", "privileged"]),
                    "a privileged container controls the node".into(),
                ));
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
    let images: Vec<&str> =
        loaded.vars.names().filter(|n| n.starts_with("images.")).filter_map(|n| loaded.vars.get(n)).collect();
    for m in manifests {
        if let Some(path) = pod_spec_path(&m.kind) {
            let spec = path.iter().try_fold(&m.object, |v, k| v.get(*k));
            if let Some((rest, message)) = spec.and_then(|s| pod_problem(s, &images)) {
                let full: Vec<&str> = path.iter().copied().chain(rest.iter().map(String::as_str)).collect();
                let d = Diagnostic::error(
                    "scope",
                    &m.file,
                    m.position_of(&full),
                    format!("{} {}: {message}", m.kind, m.name),
                )
                .with_field(full.join("."))
                .with_source(&m.source);
                return Err(LoadError(Box::new(d)));
            }
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
            return Err(LoadError(Box::new(d)));
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

    /// A project holding one scenario (steps and mutants as given) and one fixture file.
    fn check_scenario(steps: &str, fixture: &str, mutants: &str) -> Result<(), Box<crate::diagnostic::Diagnostic>> {
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
    }
}
