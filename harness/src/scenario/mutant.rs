//! Mutants: a scenario's fixtures changed so that a named step must fail. A mutant that
//! survives (every step passes anyway) shows a check that cannot fail on the real cluster.
//!
//! This module holds what can be decided without a cluster: whether a mutant names objects and
//! a step that exist (so lint refuses a stale one), and which objects a mutant deletes and
//! re-applies. The executor (`run.rs`) applies them, reruns the steps and restores the fixtures.

use serde_json::Value;

use super::fixture::Manifest;
use super::load::{LoadError, LoadedScenario};
use super::{Mesh, Mutant};
use crate::diagnostic::Diagnostic;

/// What a mutant does to the cluster: objects to delete, objects to apply changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub delete: Vec<crate::model::ObjectRef>,
    pub apply: Vec<Value>,
    /// The touched objects as the fixtures have them: re-applied afterwards.
    pub restore: Vec<Value>,
}

/// The mutation of `objects` (the scenario's rendered fixture objects) that `mutant` describes.
pub fn mutate(objects: &[Value], mutant: &Mutant) -> Result<Mutation, String> {
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| format!("mutant {}: no {kind}/{name} among the scenario's fixtures", mutant.name))
    };
    let mut delete = Vec::new();
    let mut restore: Vec<Value> = Vec::new();
    for target in &mutant.remove {
        let object = find(&target.kind, &target.name)?;
        restore.push(object.clone());
        delete.push(crate::model::ObjectRef::of(object));
    }
    let mut apply: Vec<Value> = Vec::new();
    for change in &mutant.set {
        let original = find(&change.kind, &change.name)?;
        // Several changes to one object accumulate.
        let index = match apply
            .iter()
            .position(|o| o["kind"] == original["kind"] && o["metadata"]["name"] == original["metadata"]["name"])
        {
            Some(i) => i,
            None => {
                restore.push(original.clone());
                apply.push(original.clone());
                apply.len() - 1
            }
        };
        set_path(&mut apply[index], &change.path, change.value.clone()).map_err(|why| {
            format!("mutant {}: {}/{} {}: {why}", mutant.name, change.kind, change.name, change.path.join("."))
        })?;
    }
    Ok(Mutation { delete, apply, restore })
}

/// Set `path` (map keys) in `object`, creating missing maps on the way; a non-map on the way is an error.
fn set_path(object: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else { return Err("empty path".into()) };
    let mut here = object;
    for key in parents {
        let map = here.as_object_mut().ok_or_else(|| format!("`{key}` is under a value that is not a map"))?;
        here = map.entry(key.clone()).or_insert_with(|| Value::Object(Default::default()));
    }
    let map = here.as_object_mut().ok_or_else(|| format!("`{last}` is under a value that is not a map"))?;
    map.insert(last.clone(), value);
    Ok(())
}

/// Refuse a mutant of `loaded` on `mesh` that names an object its fixtures do not hold, or a
/// step it does not have, located at the mutant in the scenario file.
pub fn check(loaded: &LoadedScenario, mesh: Mesh, manifests: &[Manifest]) -> Result<(), LoadError> {
    // Mutants change what the scenario's own `fixtures` create; objects of apply/delete steps
    // come and go with the steps.
    let objects: Vec<Value> = manifests
        .iter()
        .filter(|m| loaded.scenario.fixtures.iter().any(|f| m.file.ends_with(&f.value)))
        .map(|m| m.object.clone())
        .collect();
    let steps = &loaded.scenario.steps;
    for (i, mutant) in loaded.scenario.mutants.iter().enumerate().filter(|(_, m)| m.applies_to(mesh)) {
        let index = i.to_string();
        let changing = steps
            .iter()
            .take(mutant.fails_at as usize)
            .enumerate()
            .find(|(_, s)| matches!(s, super::Step::Apply(_) | super::Step::Delete(_)));
        let problem = if mutant.fails_at as usize > steps.len() {
            let n = steps.len();
            let message = format!(
                "mutant {}: step {} does not exist: the scenario has {n} step(s)",
                mutant.name, mutant.fails_at
            );
            Some(("fails-at", message))
        } else if let Some((k, step)) = changing {
            let message = format!(
                "mutant {}: steps 1 to {} are rerun, and step {} ({}) changes the cluster in a way the mutant cannot undo",
                mutant.name,
                mutant.fails_at,
                k + 1,
                step.kind()
            );
            Some(("fails-at", message))
        } else {
            mutate(&objects, mutant).err().map(|e| ("name", format!("{e} on {mesh}")))
        };
        if let Some((key, message)) = problem {
            let position =
                loaded.rendered.source_position(crate::yaml::locate(&loaded.rendered.text, &["mutants", &index, key]));
            let d = Diagnostic::error("mutant", &loaded.path, position, message)
                .with_field(format!("mutants[{i}].{key}"))
                .with_source(&loaded.source);
            return Err(LoadError(Box::new(d)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mutant(yaml: &str) -> Mutant {
        crate::yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn removes_and_sets_name_existing_objects() {
        let objects = [
            json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": "require-mtls", "namespace": "t"}, "spec": {"mtls": {"mode": "STRICT"}}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"}}),
        ];
        let m = mutant(
            "{name: permissive, why: x, fails-at: 3, remove: [{kind: PeerAuthentication, name: require-mtls}], set: [{kind: Service, name: echo, path: [metadata, annotations, ingress.kubernetes.io/service-upstream], value: 'true'}]}",
        );
        let mutation = mutate(&objects, &m).unwrap();
        assert_eq!(
            mutation.delete,
            [crate::model::ObjectRef {
                api_version: "security.istio.io/v1".into(),
                kind: "PeerAuthentication".into(),
                name: "require-mtls".into(),
                namespace: Some("t".into())
            }]
        );
        assert_eq!(mutation.apply[0]["metadata"]["annotations"]["ingress.kubernetes.io/service-upstream"], "true");
        // What is put back afterwards is the fixtures' own version of both objects.
        assert_eq!(mutation.restore, objects);
        // The scenario's own objects are not changed.
        assert!(objects[1]["metadata"].get("annotations").is_none());
        let missing = mutant("{name: gone, why: x, fails-at: 1, remove: [{kind: PeerAuthentication, name: default}]}");
        assert!(mutate(&objects, &missing).unwrap_err().contains("no PeerAuthentication/default"));
        let through_a_string = mutant(
            "{name: deep, why: x, fails-at: 1, set: [{kind: PeerAuthentication, name: require-mtls, path: [spec, mtls, mode, x], value: 1}]}",
        );
        assert!(mutate(&objects, &through_a_string).unwrap_err().contains("not a map"));
    }

    #[test]
    fn a_mutant_must_change_something_with_a_valid_name_and_step() {
        let err = |yaml: &str| crate::yaml::from_str::<Mutant>(yaml).unwrap_err().message;
        assert!(err("{name: x, why: y, fails-at: 1}").contains("changes nothing"));
        assert!(err("{name: X_1, why: y, fails-at: 1, remove: [{kind: A, name: b}]}").contains("kebab-case"));
        assert!(err("{name: x, why: y, fails-at: 0, remove: [{kind: A, name: b}]}").contains("1-based"));
        assert!(
            err("{name: x, why: y, fails-at: 1, remove: [{kind: A, name: b}], extra: 1}").contains("unknown field")
        );
    }

    /// The seed scenario's `service-upstream` mutant stands for "the guide's backend fixed the way
    /// the project's working fixtures are": it must apply every Kong-side annotation they use to
    /// reach a meshed Service (service-upstream and host-header on the Service, preserve-host off
    /// on the Ingress). With service-upstream alone KIC keeps the client's Host, Istio's sidecar
    /// sends it through PassthroughCluster in plaintext, the STRICT backend resets, and the
    /// mutant would survive on a correct cluster.
    #[test]
    fn the_seed_mutant_applies_the_working_fixtures_whole_remedy() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let catalog = crate::scenario::Catalog::open(crate::project::Project::at(root)).unwrap();
        let annotations = |file: &str, kind: &str| -> Vec<String> {
            let checked = catalog
                .check_mesh(&root.join("scenarios").join(file), Mesh::Istio, "r1")
                .unwrap_or_else(|e| panic!("{e}"));
            let manifests = checked.manifests;
            let object = manifests.iter().find(|m| m.kind == kind).unwrap_or_else(|| panic!("{file}: no {kind}"));
            object.object["metadata"]["annotations"]
                .as_object()
                .map(|a| a.keys().cloned().collect())
                .unwrap_or_default()
        };
        // The working fixtures' remedy, read from them (ingress-basic uses base/echo.yaml and
        // kong/ingress-echo.yaml).
        let remedy = ["ingress.kubernetes.io/service-upstream", "konghq.com/host-header", "konghq.com/preserve-host"];
        let working: Vec<String> =
            [annotations("ingress-basic.yaml", "Service"), annotations("ingress-basic.yaml", "Ingress")].concat();
        for key in remedy {
            assert!(working.contains(&key.to_owned()), "the working fixtures use {key}: {working:?}");
        }
        let file = root.join("scenarios/seed-istio-as-written.yaml");
        let checked = catalog.check_mesh(&file, Mesh::Istio, "r1").unwrap();
        let objects: Vec<Value> = checked.manifests.iter().map(|m| m.object.clone()).collect();
        let m = checked.scenario.scenario.mutants.iter().find(|m| m.name == "service-upstream").unwrap();
        let mutated = mutate(&objects, m).unwrap().apply;
        let applied: Vec<String> = mutated
            .iter()
            .flat_map(|o| {
                o["metadata"]["annotations"]
                    .as_object()
                    .map(|a| a.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect();
        for key in remedy {
            assert!(applied.contains(&key.to_owned()), "the mutant applies {key}: {applied:?}");
        }
        let ingress = mutated.iter().find(|o| o["kind"] == "Ingress").unwrap();
        assert_eq!(ingress["metadata"]["annotations"]["konghq.com/preserve-host"], "false");
    }
}
