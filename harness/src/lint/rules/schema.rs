//! Rules on the shape of objects: core kinds against the Kubernetes 1.35 types, with the fields
//! 1.34 and 1.36 have otherwise (`schemas/k8s-versions.txt`), custom resources against the
//! pinned CRD schemas (`lint::crd`). They change with the pinned versions.

use super::*;

/// Custom resources of the groups the harness knows (Kong, Istio, Gateway API, Linkerd) against
/// their pinned CRD schemas (`lint::crd`): unknown fields, wrong types, enum values, missing
/// required fields, and versions the pinned CRDs do not serve.
pub(super) fn crd_schema(index: &Index, f: &mut Findings) {
    let schemas = crate::lint::crd::Schemas::built_in();
    for o in &index.objects {
        let Some((group, _)) = o.api_version.split_once('/') else { continue };
        match schemas.shape(&o.api_version, &o.kind) {
            Some(shape) => {
                for problem in crate::lint::crd::validate(shape, &o.object) {
                    let at: Vec<&str> = problem.path.iter().map(String::as_str).collect();
                    f.on_object(
                        o,
                        &at,
                        format!(
                            "{} {}: {} (schema of {}: {})",
                            o.kind, o.name, problem.message, o.api_version, shape.source
                        ),
                        "fix the field to match the CRD; the API server rejects the object as written".into(),
                    );
                }
            }
            // Gateway API kinds of the experimental channel (TCPRoute, TLSRoute, ...): the
            // pinned CRDs are the standard channel, so lint has no schema to say anything.
            None if group == "gateway.networking.k8s.io" && schemas.versions_of(group, &o.kind).is_empty() => {
                f.note(
                    &o.file,
                    format!(
                        "{} {} not checked: the pinned Gateway API CRDs are the standard channel, which has no {}",
                        o.kind, o.name, o.kind
                    ),
                );
            }
            None if schemas.knows_group(group) => {
                let versions = schemas.versions_of(group, &o.kind);
                let known = if versions.is_empty() {
                    format!("the pinned CRDs of {group} define no kind {}", o.kind)
                } else {
                    format!("{} is served as {}", o.kind, versions.join(", "))
                };
                f.on_object(
                    o,
                    &["apiVersion"],
                    format!("`{} {}` is not served by the pinned CRDs: {known}", o.api_version, o.kind),
                    "use a served apiVersion (the newest stable one)".into(),
                );
            }
            None => {}
        }
    }
}

/// Fields present in `original` and absent from `typed` (the same object after a trip through
/// the Kubernetes 1.35 types): fields the API server does not know. Paths as key lists.
fn dropped_fields(original: &Value, typed: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                path.push(k.clone());
                match b.get(k) {
                    Some(w) => dropped_fields(v, w, path, out),
                    // An explicit null or empty value may be dropped by the types without meaning anything.
                    None if !(v.is_null()
                        || v.as_object().is_some_and(|m| m.is_empty())
                        || v.as_array().is_some_and(|l| l.is_empty())) =>
                    {
                        out.push(path.clone())
                    }
                    None => {}
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                path.push(i.to_string());
                dropped_fields(v, w, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A type problem: where (as keys) and what.
type TypeError = (Vec<String>, String);

/// `v` through the Kubernetes type `T`: every type problem with its path (each offending value
/// is removed and the rest tried again, up to a bound), then the object as the type keeps it
/// (compared with the cleaned input to find unknown fields).
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
    v: &Value,
) -> (Vec<TypeError>, Option<(Value, Value)>) {
    let mut cleaned = v.clone();
    let mut errors: Vec<TypeError> = Vec::new();
    for _ in 0..32 {
        match serde_path_to_error::deserialize::<_, T>(&cleaned) {
            Ok(typed) => return (errors, serde_json::to_value(&typed).ok().map(|t| (cleaned, t))),
            Err(e) => {
                let path: Vec<String> = e
                    .path()
                    .iter()
                    .filter_map(|segment| match segment {
                        serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                        _ => None,
                    })
                    .collect();
                let repeated = errors.last().is_some_and(|(p, _)| *p == path);
                errors.push((path.clone(), e.inner().to_string()));
                if path.is_empty() || repeated || !remove_at(&mut cleaned, &path) {
                    return (errors, None);
                }
            }
        }
    }
    (errors, None)
}

/// Remove the value at `path` (map key or array element); false when there is none.
fn remove_at(v: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let Some(parent) = parents.iter().try_fold(v, |v, k| match v {
        Value::Object(m) => m.get_mut(k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    }) else {
        return false;
    };
    match parent {
        Value::Object(m) => m.remove(last).is_some(),
        // Replaced, not removed, so later indexes keep their meaning.
        Value::Array(a) => last.parse::<usize>().ok().and_then(|i| a.get_mut(i)).map(|e| *e = Value::Null).is_some(),
        _ => false,
    }
}

/// How the core kinds' fields differ from the 1.35 types, per version: generated from
/// k8s-openapi 0.29.0's v1_34, v1_35 and v1_36 sources by `schemas/generate-k8s-versions.py`.
const K8S_VERSIONS: &str = include_str!("../../../schemas/k8s-versions.txt");

/// `(added, pattern)` of `kind` in `version` (`added`: the version has the field, the 1.35 types
/// drop it; else the version lacks a field the types have). Patterns are paths, `*` any step.
fn version_differences<'a>(version: &'a str, kind: &'a str) -> impl Iterator<Item = (bool, Vec<&'static str>)> + 'a {
    K8S_VERSIONS.lines().filter(|l| !l.starts_with('#')).filter_map(move |line| {
        let mut parts = line.split(' ');
        let (v, how, k, path) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        (v == version && k == kind).then(|| (how == "added", path.split('.').collect()))
    })
}

fn matches_pattern(path: &[String], pattern: &[&str]) -> bool {
    path.len() == pattern.len() && path.iter().zip(pattern).all(|(p, q)| *q == "*" || p == q)
}

/// Every path in `value` that `pattern` matches.
fn paths_matching(value: &Value, pattern: &[&str], here: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some((first, rest)) = pattern.split_first() else {
        // An explicit null or empty value means nothing, as in `dropped_fields`.
        let empty = value.is_null()
            || value.as_object().is_some_and(serde_json::Map::is_empty)
            || value.as_array().is_some_and(Vec::is_empty);
        if !empty {
            out.push(here.clone());
        }
        return;
    };
    let children: Vec<(String, &Value)> = match value {
        Value::Object(m) => {
            m.iter().filter(|(k, _)| *first == "*" || k == first).map(|(k, v)| (k.clone(), v)).collect()
        }
        Value::Array(a) if *first == "*" => a.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        here.push(key);
        paths_matching(child, rest, here, out);
        here.pop();
    }
}

/// Core kinds checked against the Kubernetes API types (k8s-openapi's 1.35, with the fields of
/// the chosen version that differ); CRD kinds are not.
pub(super) fn k8s_schema(index: &Index, f: &mut Findings) {
    let version = index.kubernetes.as_str();
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, networking::v1 as net};
    for o in &index.objects {
        let typed = match (o.api_version.as_str(), o.kind.as_str()) {
            ("apps/v1", "Deployment") => round_trip::<apps::Deployment>(&o.object),
            ("apps/v1", "StatefulSet") => round_trip::<apps::StatefulSet>(&o.object),
            ("apps/v1", "DaemonSet") => round_trip::<apps::DaemonSet>(&o.object),
            ("v1", "Service") => round_trip::<core::Service>(&o.object),
            ("v1", "Pod") => round_trip::<core::Pod>(&o.object),
            ("v1", "Secret") => round_trip::<core::Secret>(&o.object),
            ("v1", "ConfigMap") => round_trip::<core::ConfigMap>(&o.object),
            ("v1", "Namespace") => round_trip::<core::Namespace>(&o.object),
            ("v1", "ServiceAccount") => round_trip::<core::ServiceAccount>(&o.object),
            ("networking.k8s.io/v1", "Ingress") => round_trip::<net::Ingress>(&o.object),
            _ => continue,
        };
        let (errors, typed) = typed;
        // Every type problem of the object, each at its own field.
        for (path, message) in errors {
            let at: Vec<&str> = path.iter().map(String::as_str).collect();
            let field = if path.is_empty() { "the object".to_owned() } else { format!("`{}`", path.join(".")) };
            f.on_object(
                o,
                &at,
                format!("{} {}: {field} does not fit the Kubernetes {version} schema: {message}", o.kind, o.name),
                "fix the field's type or shape".into(),
            );
        }
        match typed {
            None => {}
            Some((cleaned, typed)) => {
                let differences: Vec<(bool, Vec<&str>)> = version_differences(version, &o.kind).collect();
                let mut dropped = Vec::new();
                dropped_fields(&cleaned, &typed, &mut Vec::new(), &mut dropped);
                // Fields this version has beyond the 1.35 types are fields, not typos.
                dropped.retain(|path| !differences.iter().any(|(added, p)| *added && matches_pattern(path, p)));
                // Fields the 1.35 types know and this version does not.
                for (_, pattern) in differences.iter().filter(|(added, _)| !added) {
                    paths_matching(&cleaned, pattern, &mut Vec::new(), &mut dropped);
                }
                for path in dropped {
                    let at: Vec<&str> = path.iter().map(String::as_str).collect();
                    f.on_object(
                        o,
                        &at,
                        format!(
                            "`{}` is not a field of {} in Kubernetes {version}: strict field validation rejects the object",
                            path.join("."),
                            o.kind
                        ),
                        "remove it or fix its spelling".into(),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// `schemas/k8s-versions.txt` is what its generator makes of the k8s-openapi sources this
    /// build compiles against (Cargo.lock's version, in cargo's registry sources): a bump of
    /// k8s-openapi, or an edit by hand, cannot leave lint checking an older difference table.
    #[test]
    fn the_version_table_is_what_the_generator_makes_of_the_crate_in_use() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let lock = std::fs::read_to_string(root.join("../Cargo.lock")).unwrap();
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"k8s-openapi\""))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .map(|v| v.trim_end_matches('"').to_owned())
            .expect("k8s-openapi in Cargo.lock");
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(&std::env::var_os("HOME").unwrap()).join(".cargo"));
        let crate_dir = std::fs::read_dir(cargo_home.join("registry/src"))
            .expect("cargo's registry sources")
            .filter_map(|e| e.ok().map(|e| e.path().join(format!("k8s-openapi-{version}"))))
            .find(|d| d.is_dir())
            .expect("the k8s-openapi sources this build compiled");
        let generated = std::process::Command::new("python3")
            .arg(root.join("schemas/generate-k8s-versions.py"))
            .arg(&crate_dir)
            .output()
            .expect("python3 runs the generator");
        assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
        let expected = String::from_utf8(generated.stdout).unwrap();
        assert!(expected.lines().any(|l| l.starts_with("1.34 ")) && expected.lines().any(|l| l.starts_with("1.36 ")));
        assert_eq!(
            super::K8S_VERSIONS,
            expected,
            "regenerate: python3 harness/schemas/generate-k8s-versions.py <k8s-openapi source> > harness/schemas/k8s-versions.txt"
        );
    }
}
