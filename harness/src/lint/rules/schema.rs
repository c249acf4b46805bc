//! Rules on the shape of objects: core kinds against the Kubernetes 1.35 types, custom
//! resources against the pinned CRD schemas (`lint::crd`). They change with the pinned versions.

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

/// Core kinds checked against the Kubernetes 1.35 API types (k8s-openapi); CRD kinds are not.
pub(super) fn k8s_schema(index: &Index, f: &mut Findings) {
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
                format!("{} {}: {field} does not fit the Kubernetes 1.35 schema: {message}", o.kind, o.name),
                "fix the field's type or shape".into(),
            );
        }
        match typed {
            None => {}
            Some((cleaned, typed)) => {
                let mut dropped = Vec::new();
                dropped_fields(&cleaned, &typed, &mut Vec::new(), &mut dropped);
                for path in dropped {
                    let at: Vec<&str> = path.iter().map(String::as_str).collect();
                    f.on_object(
                        o,
                        &at,
                        format!(
                            "`{}` is not a field of {} in Kubernetes 1.35: strict field validation rejects the object",
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
