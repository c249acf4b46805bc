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

/// Whether a scenario may create cluster-scoped objects of `kind`.
pub fn cluster_scoped_allowed(kind: &str) -> bool {
    CLUSTER_SCOPED_ALLOWED.iter().any(|(_, k)| *k == kind)
}

fn allowed_list() -> String {
    CLUSTER_SCOPED_ALLOWED.iter().map(|(_, k)| *k).collect::<Vec<_>>().join(", ")
}

/// The scenario's fixtures and steps act only in its namespace (and on allowed cluster-scoped kinds).
pub fn check(loaded: &LoadedScenario, manifests: &[Manifest]) -> Result<(), LoadError> {
    let namespace = loaded.vars.get("namespace").unwrap_or_default();
    for m in manifests {
        let problem = if is_cluster_scoped(&m.kind) {
            (!cluster_scoped_allowed(&m.kind)).then(|| {
                (
                    vec!["kind"],
                    format!(
                        "a scenario may not create cluster-scoped {} objects; cluster-scoped kinds it may create: {}",
                        m.kind,
                        allowed_list()
                    ),
                )
            })
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
    let at = |path: &[&str], field: String, message: String| {
        let position = loaded.rendered.source_position(crate::yaml::locate(&loaded.rendered.text, path));
        LoadError(Box::new(
            Diagnostic::error("scope", &loaded.path, position, message).with_field(field).with_source(&loaded.source),
        ))
    };
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
                if is_cluster_scoped(&r.kind) && !(cluster_scoped_allowed(&r.kind) && created_here) {
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
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if cluster_scoped {
        return if cluster_scoped_allowed(kind) {
            Ok(())
        } else {
            Err(format!("{kind}/{name} is cluster-scoped; a scenario may create only: {}", allowed_list()))
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

    #[test]
    fn the_run_time_guard_uses_the_servers_scope() {
        let object = |kind: &str, ns: Option<&str>| serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": ns}});
        assert_eq!(guard(&object("Service", Some("t")), false, "t"), Ok(()));
        assert!(guard(&object("Service", Some("kube-system")), false, "t").is_err());
        // A kind this module does not know is judged by what discovery said.
        assert!(guard(&object("SomeClusterThing", None), true, "t").unwrap_err().contains("cluster-scoped"));
        assert_eq!(guard(&object("KongClusterPlugin", None), true, "t"), Ok(()));
    }
}
