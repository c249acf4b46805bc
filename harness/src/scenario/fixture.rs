//! Fixtures: Kubernetes manifests under `fixtures/`, templated like scenarios.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::load::LoadError;
use super::template::{self, Rendered, Vars};
use crate::diagnostic::{Diagnostic, Position};
use crate::yaml;

/// One object of a fixture file, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub file: PathBuf,
    /// Where the object's document starts in the source file.
    pub position: Position,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub object: Value,
    /// The file as written, the rendered document and where it starts: to locate fields.
    pub source: Arc<String>,
    pub rendered: Arc<Rendered>,
    pub doc_first_line: u32,
    pub doc_text: String,
}

impl Manifest {
    /// Where the field at `path` (e.g. `["metadata", "annotations", "konghq.com/plugins"]`) is
    /// written in the source file; the nearest written ancestor when the field is not.
    pub fn position_of(&self, path: &[&str]) -> Position {
        let p = yaml::locate(&self.doc_text, path);
        self.rendered.source_position(Position::new(p.line + self.doc_first_line - 1, p.column))
    }

    pub fn annotations(&self) -> impl Iterator<Item = (&str, &str)> {
        string_map(&self.object, "/metadata/annotations")
    }

    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        string_map(&self.object, "/metadata/labels")
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The namespace the object lands in (`default` when it names none).
    pub fn namespace_or_default(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

/// The string entries of the map at `pointer` (annotations, labels).
pub fn string_map<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = (&'a str, &'a str)> {
    value
        .pointer(pointer)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
}

/// A document of a multi-document YAML text and the line it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Document<'a> {
    pub first_line: u32,
    pub text: &'a str,
}

/// Split a YAML stream at `---` lines. A `---` at column 0 always starts a document (block
/// scalars are indented), so splitting by lines keeps each document's own line numbers.
pub fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut first_line = 1u32;
    let mut offset = 0usize;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") || bare == "..." {
            docs.push(Document { first_line, text: &text[start..offset] });
            start = offset + line.len();
            first_line = index as u32 + 2;
        }
        offset += line.len();
    }
    docs.push(Document { first_line, text: &text[start..] });
    docs.retain(|d| d.text.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    docs
}

/// The API server's rule for an object's name: a DNS-1123 subdomain for most kinds; RBAC objects
/// take "path segment" names (`system:auth-delegator`), which still exclude `/`, `%`, `.` and `..`
/// (kubernetes/kubernetes pkg/apis/rbac/validation, ValidateRBACName = path.IsValidPathSegmentName).
fn object_name(kind: &str, name: &str) -> Result<(), String> {
    if matches!(kind, "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding") {
        let ok = !name.is_empty()
            && name.len() <= 253
            && name != "."
            && name != ".."
            && !name.contains(['/', '%'])
            && !name.chars().any(char::is_control);
        return if ok {
            Ok(())
        } else {
            Err(format!("`{}` is not a valid {kind} name", crate::names::printable(name)))
        };
    }
    crate::names::dns1123_subdomain(name)
}

/// Read, render and parse a fixture file into its objects. Each object needs apiVersion, kind and metadata.name.
pub fn load(path: &Path, vars: &Vars) -> Result<Vec<Manifest>, LoadError> {
    let source = yaml::read_text(path).map_err(|e| LoadError::from_yaml(path, "", None, e))?;
    let rendered = Arc::new(template::render(&source, vars).map_err(|e| LoadError::from_template(path, &source, e))?);
    let source = Arc::new(source);
    let mut manifests = Vec::new();
    for doc in split_documents(&rendered.text) {
        let shift = |p: Position| {
            let p = if p.line == 0 {
                Position::new(doc.first_line, 1)
            } else {
                Position::new(p.line + doc.first_line - 1, p.column)
            };
            rendered.source_position(p)
        };
        let object: Value = yaml::from_str(doc.text).map_err(|mut e| {
            e.position = shift(e.position);
            LoadError::from_yaml(path, &source, None, e)
        })?;
        let position = shift(Position::WHOLE_FILE);
        let missing = |field: &str| {
            LoadError(Box::new(
                Diagnostic::error("manifest", path, position, format!("Kubernetes object without `{field}`"))
                    .with_field(field)
                    .with_source(&source)
                    .with_help(
                        "every document of a fixture is one Kubernetes object with apiVersion, kind and metadata.name",
                    ),
            ))
        };
        let text = |pointer: &str| {
            object.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        let kind = text("/kind").ok_or_else(|| missing("kind"))?;
        let name = text("/metadata/name").ok_or_else(|| missing("metadata.name"))?;
        if let Err(message) = object_name(&kind, &name) {
            let key = yaml::locate(doc.text, &["metadata", "name"]);
            let at = shift(Position::new(key.line.max(1), key.column.max(1)));
            return Err(LoadError(Box::new(
                Diagnostic::error("manifest", path, at, message)
                    .with_field("metadata.name")
                    .with_source(&source)
                    .with_help("Kubernetes refuses such a name; the harness also uses names in file paths"),
            )));
        }
        manifests.push(Manifest {
            file: path.to_owned(),
            position,
            api_version: text("/apiVersion").ok_or_else(|| missing("apiVersion"))?,
            kind,
            name,
            namespace: text("/metadata/namespace"),
            object,
            source: source.clone(),
            rendered: rendered.clone(),
            doc_first_line: doc.first_line,
            doc_text: doc.text.to_owned(),
        });
    }
    if manifests.is_empty() {
        return Err(LoadError::at("empty", path, Position::WHOLE_FILE, "fixture holds no Kubernetes object"));
    }
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_line_numbers() {
        let docs = split_documents("a: 1\n---\n# c\nb: |\n  --- not a separator\n---\n\n---\nc: 3\n");
        let starts: Vec<u32> = docs.iter().map(|d| d.first_line).collect();
        assert_eq!(starts, [1, 3, 9]);
        assert!(docs[1].text.contains("not a separator"));
    }

    #[test]
    fn objects_need_kind_and_name_and_errors_are_located_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata:\n  name: b\n",
        )
        .unwrap();
        let e = load(&file, &Vars::new()).unwrap_err();
        assert_eq!(e.diagnostic().position, Position::new(5, 1));
        assert_eq!(e.diagnostic().message, "Kubernetes object without `kind`");

        std::fs::write(&file, "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [\n").unwrap();
        assert_eq!(load(&file, &Vars::new()).unwrap_err().diagnostic().position.line, 5);
    }

    /// `plan --out` writes one file per object, named after it: a name that is not a Kubernetes
    /// name (the API server would refuse it anyway) is refused where it is written.
    #[test]
    fn object_names_are_kubernetes_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.yaml");
        std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../../../tmp/evil\n").unwrap();
        let d = load(&file, &Vars::new()).unwrap_err().0;
        assert_eq!((d.position, d.field.as_deref()), (Position::new(4, 3), Some("metadata.name")));
        assert!(d.message.contains("is not a DNS-1123 subdomain"), "{}", d.message);
        std::fs::write(
            &file,
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: system:x\n",
        )
        .unwrap();
        assert_eq!(load(&file, &Vars::new()).unwrap()[0].name, "system:x");
        std::fs::write(&file, "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: a/../b\n")
            .unwrap();
        assert!(load(&file, &Vars::new()).is_err());
    }
}
