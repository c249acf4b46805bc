//! CRD schemas, compacted: what fields each custom kind has, of which type, which are required
//! and which values an enum allows. Enough to reject what the API server's strict field
//! validation and schema validation would reject, before a cluster exists.
//!
//! `harness/schemas/crds.shape` holds them, one section per apiVersion and kind, produced by
//! [`import`] from the upstream CRD files at the pinned versions (`cargo xtask schemas import`;
//! each section names its source). Descriptions are dropped: only structure is kept.
//!
//! Format, one field per line: `<path> <type>[ required][ enum=a|b]`, where a path joins
//! property names with `.`, array items are `[]` and map values `{}`. Types: `object` (closed),
//! `open` (an object that keeps unknown fields), `map`, `array`, `string`, `integer`, `number`,
//! `boolean`, `int-or-string`, `any`.

use std::collections::BTreeMap;

use serde_json::Value;

/// The schemas compiled into the harness.
pub const BUILT_IN: &str = include_str!("../../schemas/crds.shape");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Object,
    Open,
    Map,
    Array,
    String,
    Integer,
    Number,
    Boolean,
    IntOrString,
    Any,
}

impl Ty {
    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "object" => Ty::Object,
            "open" => Ty::Open,
            "map" => Ty::Map,
            "array" => Ty::Array,
            "string" => Ty::String,
            "integer" => Ty::Integer,
            "number" => Ty::Number,
            "boolean" => Ty::Boolean,
            "int-or-string" => Ty::IntOrString,
            "any" => Ty::Any,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Object => "object",
            Ty::Open => "open",
            Ty::Map => "map",
            Ty::Array => "array",
            Ty::String => "string",
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::Boolean => "boolean",
            Ty::IntOrString => "int-or-string",
            Ty::Any => "any",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub ty: Ty,
    pub required: bool,
    pub allowed: Vec<String>,
}

/// One kind at one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub source: String,
    pub fields: BTreeMap<String, Field>,
}

/// Every known kind, by `(apiVersion, kind)`.
#[derive(Debug, Clone, Default)]
pub struct Schemas {
    pub kinds: BTreeMap<(String, String), Shape>,
}

impl Schemas {
    /// The schemas built into the harness. The file is checked by a test, so a broken one
    /// cannot ship; should it ever not parse, lint runs without CRD schemas rather than crash.
    pub fn built_in() -> &'static Schemas {
        static PARSED: std::sync::OnceLock<Schemas> = std::sync::OnceLock::new();
        PARSED.get_or_init(|| Schemas::parse(BUILT_IN).unwrap_or_default())
    }

    pub fn parse(text: &str) -> Result<Schemas, String> {
        let mut kinds = BTreeMap::new();
        let mut current: Option<((String, String), Shape)> = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(header) = line.strip_prefix("== ") {
                if let Some((key, shape)) = current.take() {
                    kinds.insert(key, shape);
                }
                // `== <apiVersion> <Kind> from <source>`
                let mut parts = header.splitn(3, ' ');
                let (Some(api_version), Some(kind)) = (parts.next(), parts.next()) else {
                    return Err(format!("line {}: a section header needs an apiVersion and a kind", n + 1));
                };
                let source = parts.next().unwrap_or_default().trim_start_matches("from ").to_owned();
                current = Some(((api_version.to_owned(), kind.to_owned()), Shape { source, ..Shape::default() }));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let Some((_, shape)) = current.as_mut() else {
                return Err(format!("line {}: a field before any `== apiVersion Kind` header", n + 1));
            };
            let mut words = line.split(' ');
            let (Some(path), Some(ty)) = (words.next(), words.next()) else {
                return Err(format!("line {}: expected `<path> <type>`", n + 1));
            };
            let ty = Ty::parse(ty).ok_or_else(|| format!("line {}: unknown type `{ty}`", n + 1))?;
            let mut field = Field { ty, required: false, allowed: Vec::new() };
            for word in words {
                match word {
                    "required" => field.required = true,
                    w if w.starts_with("enum=") => field.allowed = w[5..].split('|').map(str::to_owned).collect(),
                    other => return Err(format!("line {}: unknown attribute `{other}`", n + 1)),
                }
            }
            shape.fields.insert(path.to_owned(), field);
        }
        if let Some((key, shape)) = current {
            kinds.insert(key, shape);
        }
        Ok(Schemas { kinds })
    }

    /// Whether any kind of `group` is known (then an unknown version or kind of it is an error).
    pub fn knows_group(&self, group: &str) -> bool {
        self.kinds.keys().any(|(v, _)| v.split_once('/').map(|(g, _)| g) == Some(group))
    }

    /// Versions known for `group` and `kind`.
    pub fn versions_of(&self, group: &str, kind: &str) -> Vec<String> {
        self.kinds
            .keys()
            .filter(|(v, k)| k == kind && v.split_once('/').map(|(g, _)| g) == Some(group))
            .map(|(v, _)| v.clone())
            .collect()
    }

    pub fn shape(&self, api_version: &str, kind: &str) -> Option<&Shape> {
        self.kinds.get(&(api_version.to_owned(), kind.to_owned()))
    }
}

/// A place where an object does not fit its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Keys and list indices from the object's root.
    pub path: Vec<String>,
    pub message: String,
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() { segment.to_owned() } else { format!("{path}.{segment}") }
}

/// Every place `object` does not fit `shape` (apiVersion, kind and metadata are not checked).
pub fn validate(shape: &Shape, object: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(map) = object.as_object() {
        for (key, value) in map {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            let mut at = vec![key.clone()];
            match shape.fields.get(key) {
                Some(_) => check(shape, key, value, &mut at, &mut out),
                None => out.push(Problem { path: at, message: format!("unknown field `{key}`") }),
            }
        }
        for (path, field) in &shape.fields {
            if field.required && !path.contains(['.', '[', '{']) && !map.contains_key(path) {
                out.push(Problem { path: vec![], message: format!("required field `{path}` is missing") });
            }
        }
    }
    out
}

fn check(shape: &Shape, path: &str, value: &Value, at: &mut Vec<String>, out: &mut Vec<Problem>) {
    let Some(field) = shape.fields.get(path) else { return };
    if value.is_null() {
        return;
    }
    let wrong = |expected: &str| Problem {
        path: at.clone(),
        message: format!("`{}` must be {expected}, found {}", at.join("."), kind_of(value)),
    };
    match field.ty {
        Ty::Any => {}
        Ty::String => match value.as_str() {
            None => out.push(wrong("a string")),
            Some(s) if !field.allowed.is_empty() && !field.allowed.iter().any(|a| a == s) => out.push(Problem {
                path: at.clone(),
                message: format!("`{}` is `{s}`, not one of {}", at.join("."), field.allowed.join(", ")),
            }),
            Some(_) => {}
        },
        Ty::Integer if !(value.is_i64() || value.is_u64()) => out.push(wrong("an integer")),
        Ty::Number if !value.is_number() => out.push(wrong("a number")),
        Ty::Boolean if !value.is_boolean() => out.push(wrong("true or false")),
        Ty::IntOrString if !(value.is_i64() || value.is_u64() || value.is_string()) => {
            out.push(wrong("an integer or a string"))
        }
        Ty::Integer | Ty::Number | Ty::Boolean | Ty::IntOrString => {}
        Ty::Array => match value.as_array() {
            None => out.push(wrong("a list")),
            Some(items) => {
                let item_path = format!("{path}[]");
                for (i, item) in items.iter().enumerate() {
                    at.push(i.to_string());
                    check(shape, &item_path, item, at, out);
                    at.pop();
                }
            }
        },
        Ty::Map => match value.as_object() {
            None => out.push(wrong("a map")),
            Some(map) => {
                let value_path = format!("{path}{{}}");
                for (k, v) in map {
                    at.push(k.clone());
                    check(shape, &value_path, v, at, out);
                    at.pop();
                }
            }
        },
        Ty::Object | Ty::Open => match value.as_object() {
            None => out.push(wrong("an object")),
            Some(map) => {
                for (k, v) in map {
                    let child = join(path, k);
                    at.push(k.clone());
                    if shape.fields.contains_key(&child) {
                        check(shape, &child, v, at, out);
                    } else if field.ty == Ty::Object {
                        out.push(Problem { path: at.clone(), message: format!("unknown field `{}`", at.join(".")) });
                    }
                    at.pop();
                }
                let prefix = format!("{path}.");
                for (child, f) in shape.fields.range(prefix.clone()..) {
                    let Some(name) = child.strip_prefix(&prefix) else { break };
                    if f.required && !name.contains(['.', '[', '{']) && !map.contains_key(name) {
                        out.push(Problem {
                            path: at.clone(),
                            message: format!("required field `{}` is missing", join(&at.join("."), name)),
                        });
                    }
                }
            }
        },
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Compact the CRDs in `documents` (parsed YAML) into shape sections, one per served version.
/// Helm template lines (`{{ ... }}`) must be removed before parsing.
pub fn import(documents: &[Value], source: &str) -> Vec<String> {
    let mut sections = Vec::new();
    for crd in documents.iter().filter(|d| d["kind"] == "CustomResourceDefinition") {
        let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
        let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str).unwrap_or_default();
        for version in crd.pointer("/spec/versions").and_then(Value::as_array).into_iter().flatten() {
            if version["served"] == false {
                continue;
            }
            let name = version["name"].as_str().unwrap_or_default();
            let Some(schema) = version.pointer("/schema/openAPIV3Schema") else { continue };
            let mut lines = vec![format!("== {group}/{name} {kind} from {source}")];
            let required = required_of(schema);
            for (key, property) in schema["properties"].as_object().into_iter().flatten() {
                if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                walk(property, key, required.contains(&key.as_str()), &mut lines);
            }
            sections.push(lines.join("\n") + "\n");
        }
    }
    sections
}

/// The CRDs of a manifest file as upstream ships it; lines with Helm template actions (`{{`)
/// are dropped first, so chart templates of CRDs read as plain YAML.
pub fn documents_of(text: &str) -> Result<Vec<Value>, String> {
    let plain: String = text.lines().filter(|l| !l.contains("{{")).map(|l| format!("{l}\n")).collect();
    crate::yaml::documents(&plain).map_err(|e| e.to_string())
}

/// The CRDs among `documents` that define one of `kinds` (all of them when `kinds` is empty).
pub fn of_kinds(documents: Vec<Value>, kinds: &[String]) -> Vec<Value> {
    documents
        .into_iter()
        .filter(|d| {
            let kind = d.pointer("/spec/names/kind").and_then(Value::as_str);
            kinds.is_empty() || kind.is_some_and(|k| kinds.iter().any(|w| w == k))
        })
        .collect()
}

/// `existing` with `sections` added, replacing sections of the same apiVersion and kind; sorted.
pub fn merge(existing: &str, sections: &[String]) -> String {
    let mut by_key: BTreeMap<String, String> = BTreeMap::new();
    let mut preamble = String::new();
    let mut current: Option<(String, String)> = None;
    for line in existing.lines() {
        if let Some(header) = line.strip_prefix("== ") {
            if let Some((k, v)) = current.take() {
                by_key.insert(k, v);
            }
            let key = header.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" ");
            current = Some((key, format!("{line}\n")));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        } else {
            preamble.push_str(line);
            preamble.push('\n');
        }
    }
    if let Some((k, v)) = current {
        by_key.insert(k, v);
    }
    for section in sections {
        let header = section.lines().next().unwrap_or_default().trim_start_matches("== ");
        let key = header.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" ");
        by_key.insert(key, section.clone());
    }
    preamble + &by_key.into_values().collect::<String>()
}

fn required_of(schema: &Value) -> Vec<&str> {
    schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

fn walk(schema: &Value, path: &str, required: bool, lines: &mut Vec<String>) {
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    let properties = schema["properties"].as_object();
    let ty = if schema["x-kubernetes-int-or-string"] == true {
        Ty::IntOrString
    } else {
        match schema["type"].as_str() {
            Some("object") | None if properties.is_some() => {
                if preserve {
                    Ty::Open
                } else {
                    Ty::Object
                }
            }
            Some("object") if schema["additionalProperties"].is_object() => Ty::Map,
            Some("object") if preserve => Ty::Any,
            // An object with neither properties nor a value schema takes anything.
            Some("object") => Ty::Any,
            Some("array") => Ty::Array,
            Some("string") => Ty::String,
            Some("integer") => Ty::Integer,
            Some("number") => Ty::Number,
            Some("boolean") => Ty::Boolean,
            _ => Ty::Any,
        }
    };
    let mut line = format!("{path} {}", ty.name());
    if required {
        line += " required";
    }
    let allowed: Vec<String> = schema["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .filter(|v| !v.contains([' ', '|']) && !v.is_empty())
        .collect();
    if ty == Ty::String && !allowed.is_empty() && allowed.len() == schema["enum"].as_array().map_or(0, Vec::len) {
        line += &format!(" enum={}", allowed.join("|"));
    }
    lines.push(line);
    match ty {
        Ty::Object | Ty::Open => {
            let required = required_of(schema);
            for (key, property) in properties.into_iter().flatten() {
                walk(property, &join(path, key), required.contains(&key.as_str()), lines);
            }
        }
        Ty::Map => walk(&schema["additionalProperties"], &format!("{path}{{}}"), false, lines),
        Ty::Array => walk(&schema["items"], &format!("{path}[]"), false, lines),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "spec": {"group": "example.io", "names": {"kind": "Widget"}, "versions": [
                {"name": "v1", "served": true, "schema": {"openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": {
                    "apiVersion": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": {"type": "object", "required": ["size"], "description": "dropped", "properties": {
                        "size": {"type": "integer"},
                        "mode": {"type": "string", "enum": ["STRICT", "PERMISSIVE"]},
                        "port": {"x-kubernetes-int-or-string": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "rules": {"type": "array", "items": {"type": "object", "properties": {"to": {"type": "string"}}}}
                    }}
                }}}},
                {"name": "v0", "served": false}
            ]}
        })
    }

    #[test]
    fn documents_skip_template_lines_and_kinds_filter() {
        let text = "{{- if .Values.enabled }}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  names: {kind: Widget}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  names: {kind: Gadget}\n{{- end }}\n";
        let docs = documents_of(text).unwrap();
        assert_eq!(docs.len(), 2);
        let widgets = of_kinds(docs.clone(), &["Widget".to_owned()]);
        assert_eq!(widgets.len(), 1);
        assert_eq!(of_kinds(docs, &[]).len(), 2);
    }

    #[test]
    fn merging_replaces_sections_of_the_same_kind_and_keeps_the_preamble() {
        let old = "# preamble\n== a/v1 A from old\nspec object\n== b/v1 B from old\nspec object\n";
        let merged = merge(old, &["== a/v1 A from new\nspec any\n".to_owned()]);
        assert_eq!(merged, "# preamble\n== a/v1 A from new\nspec any\n== b/v1 B from old\nspec object\n");
    }

    #[test]
    fn import_keeps_structure_and_drops_words() {
        let sections = import(&[crd()], "example/widgets v1.0 crd.yaml");
        assert_eq!(sections.len(), 1, "unserved versions are skipped");
        insta::assert_snapshot!(sections[0]);
        assert!(!sections[0].contains("dropped"));
    }

    #[test]
    fn validation_finds_unknown_fields_types_enums_and_missing_fields() {
        let schemas = Schemas::parse(&import(&[crd()], "test").concat()).unwrap();
        let shape = schemas.shape("example.io/v1", "Widget").unwrap();
        let ok = json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 3, "mode": "STRICT", "port": "http", "labels": {"a": "b"}, "config": {"anything": [1]}, "rules": [{"to": "x"}]}});
        assert_eq!(validate(shape, &ok), []);
        let bad = json!({"spec": {"size": "3", "mode": "strict", "port": true, "labels": {"a": 1}, "rules": [{"to": "x", "from": "y"}], "dimensions": {}}, "status": {}});
        let problems: Vec<String> =
            validate(shape, &bad).into_iter().map(|p| format!("{}: {}", p.path.join("."), p.message)).collect();
        insta::assert_yaml_snapshot!(problems);
        let missing: Vec<String> = validate(shape, &json!({"spec": {}})).into_iter().map(|p| p.message).collect();
        assert_eq!(missing, ["required field `spec.size` is missing"]);
        assert_eq!(validate(shape, &json!({}))[0].message, "required field `spec` is missing");
    }

    #[test]
    fn the_built_in_schemas_parse_and_cover_the_fixture_kinds() {
        let schemas = Schemas::parse(BUILT_IN).unwrap();
        for (api_version, kind) in [
            ("configuration.konghq.com/v1", "KongPlugin"),
            ("configuration.konghq.com/v1", "KongConsumer"),
            ("networking.istio.io/v1", "VirtualService"),
            ("networking.istio.io/v1", "DestinationRule"),
            ("security.istio.io/v1", "PeerAuthentication"),
            ("security.istio.io/v1", "AuthorizationPolicy"),
            ("telemetry.istio.io/v1", "Telemetry"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            ("policy.linkerd.io/v1beta3", "Server"),
            ("policy.linkerd.io/v1alpha1", "AuthorizationPolicy"),
            ("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication"),
        ] {
            assert!(schemas.shape(api_version, kind).is_some(), "{api_version} {kind}");
        }
    }
}
