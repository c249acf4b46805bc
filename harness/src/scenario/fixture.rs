//! Fixtures: Kubernetes manifests under `fixtures/`, templated like scenarios.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::error::LoadError;
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
    /// Where the object sits inside its document: empty, or `["items", "<i>"]` for an item of
    /// a `kind: List`.
    pub doc_path: Vec<String>,
}

impl Manifest {
    /// Where the field at `path` (e.g. `["metadata", "annotations", "konghq.com/plugins"]`) is
    /// written in the source file; the nearest written ancestor when the field is not.
    pub fn position_of(&self, path: &[&str]) -> Position {
        let full: Vec<&str> = self.doc_path.iter().map(String::as_str).chain(path.iter().copied()).collect();
        let p = yaml::locate(&self.doc_text, &full);
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

/// Read, render and parse a fixture file into its objects. Each needs apiVersion, kind and
/// metadata.name; the first problem of the file is the error.
pub fn load(path: &Path, vars: &Vars) -> Result<Vec<Manifest>, LoadError> {
    first_problem(path, load_all(path, vars))
}

/// [`load`] for a fixture whose `text` is given; `path` names it in findings.
pub fn load_text(path: &Path, text: &str, vars: &Vars) -> Result<Vec<Manifest>, LoadError> {
    first_problem(path, read_all(path, Reading::GivenFixture(vars, text)))
}

fn first_problem(
    path: &Path,
    (manifests, mut errors): (Vec<Manifest>, Vec<LoadError>),
) -> Result<Vec<Manifest>, LoadError> {
    if !errors.is_empty() {
        return Err(errors.remove(0));
    }
    if manifests.is_empty() {
        return Err(LoadError::at("empty", path, Position::WHOLE_FILE, "fixture holds no Kubernetes object"));
    }
    Ok(manifests)
}

/// Whether a template error is about Helm/Go template syntax (`{{ .Values.x }}`,
/// `{{- if ... }}`): a chart's source, not a manifest.
fn is_go_template(text: &str) -> bool {
    text.match_indices("{{").any(|(i, _)| {
        let rest = text[i + 2..].trim_start_matches('-').trim_start();
        rest.starts_with('.')
            || rest.starts_with('$')
            || ["if ", "range ", "end", "include ", "define ", "template ", "with ", "else", "toYaml ", "tpl "]
                .iter()
                .any(|k| rest.starts_with(k))
    })
}

/// How a file is read: as one of the project's fixtures (templated with the run's variables,
/// every document an object), or as a user's manifest (taken verbatim: `{{ }}` in it is the
/// user's own text; a document that is not a Kubernetes object is skipped with a note).
#[derive(Debug, Clone, Copy)]
pub enum Reading<'a> {
    Fixture(&'a Vars),
    UserManifest,
    /// A fixture whose text is given (the harness's built-in stack manifests), not read.
    GivenFixture(&'a Vars, &'a str),
}

/// Every object of a file, and every problem, each located: one bad document does not hide the
/// others. A `kind: List` is expanded into its items.
pub fn load_all(path: &Path, vars: &Vars) -> (Vec<Manifest>, Vec<LoadError>) {
    read_all(path, Reading::Fixture(vars))
}

/// Why a fixture file may not be read, if it may not: a fixture is the project's own file under
/// `fixtures/`, so neither it nor any directory between it and `fixtures/` (that one included)
/// may be a link, and it must be a regular file. A link placed there could point at any file
/// of the user's (a token, a key), which lint, plan, e2e and `repro export` would then read and
/// carry. The project's fixtures directory is taken as the outermost ancestor named `fixtures`
/// (never the nearest: `fixtures/x/fixtures/a.yaml` with `x` a link must still see `x`); a file
/// with no `fixtures` directory above it is checked alone. [`link_problem_in`] when the
/// project's fixtures directory is known.
pub fn link_problem(path: &Path) -> Option<String> {
    let fixtures_dir = path.ancestors().skip(1).filter(|d| d.file_name().is_some_and(|n| n == "fixtures")).last();
    match fixtures_dir {
        Some(dir) => link_problem_in(dir, path),
        None => crate::names::regular_or_absent(path).err().map(|e| format!("not read: the fixture is {e}")),
    }
}

/// [`link_problem`] against the project's real fixtures directory `fixtures_dir`: `path` must lie
/// under it, and every component from `fixtures_dir` (included) down to the file is examined.
pub fn link_problem_in(fixtures_dir: &Path, path: &Path) -> Option<String> {
    let Ok(rel) = path.strip_prefix(fixtures_dir) else {
        return Some(format!("not read: the fixture is not under {}", fixtures_dir.display()));
    };
    if let Err(e) = crate::names::regular_or_absent(path) {
        return Some(format!("not read: the fixture is {e}"));
    }
    let mut dir = fixtures_dir.to_path_buf();
    let mut components = rel.components().peekable();
    let mut on_the_way = vec![dir.clone()];
    while let Some(c) = components.next() {
        if components.peek().is_none() {
            break;
        }
        dir.push(c);
        on_the_way.push(dir.clone());
    }
    on_the_way.into_iter().find(|d| std::fs::symlink_metadata(d).is_ok_and(|m| m.file_type().is_symlink())).map(|d| {
        format!(
            "not read: `{}` on the way to it is a symbolic link; fixtures are read only from real directories \
             under fixtures/",
            d.display()
        )
    })
}

/// Read a fixture file as the project's own ([`link_problem`]), bounded like every YAML input,
/// opened without following a link.
pub fn read_fixture_text(path: &Path) -> Result<String, yaml::Error> {
    let refuse = |message: String| yaml::Error {
        code: "read",
        position: Position::WHOLE_FILE,
        message,
        field: String::new(),
        help: Some("copy the file into fixtures/ instead of linking to it".into()),
    };
    if let Some(problem) = link_problem(path) {
        return Err(refuse(problem));
    }
    let bytes = match crate::names::read_regular(path, yaml::MAX_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(yaml::Error {
                code: "too-large",
                help: Some("split it into several files".into()),
                ..refuse(format!("file is larger than the {} KiB limit for YAML inputs", yaml::MAX_FILE_BYTES / 1024))
            });
        }
        Err(e) => return Err(yaml::Error { help: None, ..refuse(format!("cannot read file: {e}")) }),
    };
    yaml::text_from_bytes(bytes)
}

/// [`load_all`] for a given way of reading. A project's fixture is read only as a regular file
/// inside fixtures/ ([`read_fixture_text`]); a user's manifest as the caller found it (lint's walk
/// decides which links it follows).
pub fn read_all(path: &Path, reading: Reading<'_>) -> (Vec<Manifest>, Vec<LoadError>) {
    let read = match reading {
        Reading::Fixture(_) => read_fixture_text(path),
        Reading::UserManifest => yaml::read_manifest_text(path),
        Reading::GivenFixture(_, text) => Ok((*text).to_owned()),
    };
    let source = match read {
        Ok(s) => s,
        Err(e) => return (Vec::new(), vec![LoadError::from_yaml(path, "", None, e)]),
    };
    let rendered = match reading {
        Reading::UserManifest => Ok(template::Rendered::verbatim(&source)),
        Reading::Fixture(vars) | Reading::GivenFixture(vars, _) => template::render(&source, vars),
    };
    let rendered = match rendered {
        Ok(r) => Arc::new(r),
        Err(e) if is_go_template(&source) => {
            let d = Diagnostic::error(
                "helm-template",
                path,
                e.position,
                "this is a Helm/Go template (`{{ .Values... }}`), not a manifest",
            )
            .with_source(&source)
            .with_help("render it first (`helm template RELEASE CHART -f values.yaml > out.yaml`) and lint the output");
            return (Vec::new(), vec![LoadError(Box::new(d))]);
        }
        Err(e) => return (Vec::new(), vec![LoadError::from_template(path, &source, e)]),
    };
    let source = Arc::new(source);
    let (mut manifests, mut errors) = (Vec::new(), Vec::new());
    // Content on a separator line is no document's: kubectl refuses the file ("invalid Yaml
    // document separator", k8s.io/apimachinery util/yaml), and it would be read by no one here.
    for (i, line) in rendered.text.lines().enumerate() {
        let after = line.strip_prefix("--- ").map(str::trim).unwrap_or_default();
        if !after.is_empty() && !after.starts_with('#') {
            let at = rendered.source_position(Position::new(i as u32 + 1, 5));
            let d = Diagnostic::error(
                "syntax",
                path,
                at,
                "content after a `---` separator is not part of any document (kubectl refuses the file)",
            )
            .with_source(&source)
            .with_help("start the document on the next line");
            errors.push(LoadError(Box::new(d)));
        }
    }
    for doc in split_documents(&rendered.text) {
        let shift = |p: Position| {
            let p = if p.line == 0 {
                Position::new(doc.first_line, 1)
            } else {
                Position::new(p.line + doc.first_line - 1, p.column)
            };
            rendered.source_position(p)
        };
        let object: Value = match yaml::from_str(doc.text) {
            Ok(v) => v,
            Err(e) if matches!(reading, Reading::UserManifest) && is_go_template(doc.text) => {
                let d = Diagnostic::error(
                    "helm-template",
                    path,
                    shift(e.position),
                    "this document is a Helm/Go template (`{{ .Values... }}`), not a manifest",
                )
                .with_source(&source)
                .with_help(
                    "render it first (`helm template RELEASE CHART -f values.yaml > out.yaml`) and lint the output",
                );
                errors.push(LoadError(Box::new(d)));
                continue;
            }
            Err(mut e) => {
                e.position = shift(e.position);
                errors.push(LoadError::from_yaml(path, &source, None, e));
                continue;
            }
        };
        // A user's file may hold YAML that is no Kubernetes object at all (a compose file, a
        // workflow): said in a note, not an error.
        let no_identity = object.get("apiVersion").is_none() && object.get("kind").is_none();
        if matches!(reading, Reading::UserManifest) && no_identity {
            let mut d = Diagnostic::note(
                "skipped",
                path,
                "not read: this document is no Kubernetes object (no apiVersion, no kind)",
            );
            d.position = shift(Position::WHOLE_FILE);
            errors.push(LoadError(Box::new(d)));
            continue;
        }
        let is_list = object.get("kind").and_then(Value::as_str) == Some("List")
            && object.get("apiVersion").and_then(Value::as_str) == Some("v1");
        let items: Vec<(Vec<String>, Value)> = if is_list {
            let items = object.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            items.into_iter().enumerate().map(|(i, item)| (vec!["items".to_owned(), i.to_string()], item)).collect()
        } else {
            vec![(Vec::new(), object)]
        };
        for (doc_path, object) in items {
            let at = |field: &[&str]| {
                let full: Vec<&str> = doc_path.iter().map(String::as_str).chain(field.iter().copied()).collect();
                let key = yaml::locate(doc.text, &full);
                shift(Position::new(key.line.max(1), key.column.max(1)))
            };
            let position = if doc_path.is_empty() { shift(Position::WHOLE_FILE) } else { at(&[]) };
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
            let (Some(api_version), Some(kind), Some(name)) =
                (text("/apiVersion"), text("/kind"), text("/metadata/name"))
            else {
                let field = if text("/apiVersion").is_none() {
                    "apiVersion"
                } else if text("/kind").is_none() {
                    "kind"
                } else {
                    "metadata.name"
                };
                errors.push(missing(field));
                continue;
            };
            if let Err(message) = object_name(&kind, &name) {
                let d = Diagnostic::error("manifest", path, at(&["metadata", "name"]), message)
                    .with_field("metadata.name")
                    .with_source(&source)
                    .with_help("Kubernetes refuses such a name; the harness also uses names in file paths");
                errors.push(LoadError(Box::new(d)));
                continue;
            }
            manifests.push(Manifest {
                file: path.to_owned(),
                position,
                api_version,
                kind,
                name,
                namespace: text("/metadata/namespace"),
                object,
                source: source.clone(),
                rendered: rendered.clone(),
                doc_first_line: doc.first_line,
                doc_text: doc.text.to_owned(),
                doc_path,
            });
        }
    }
    (manifests, errors)
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

    /// A fixture that is a link out of fixtures/ (to a file holding a token), one under a linked
    /// directory, and a FIFO are refused unread; the error never shows the target's content.
    #[test]
    fn fixtures_are_never_read_through_links() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        let token = outside.path().join("token.yaml");
        std::fs::write(&token, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\ndata: {t: ghp_SECRET}\n")
            .unwrap();
        let project = tempfile::tempdir().unwrap();
        let fixtures = project.path().join("fixtures");
        std::fs::create_dir_all(fixtures.join("real")).unwrap();
        symlink(&token, fixtures.join("real/leak.yaml")).unwrap();
        symlink(outside.path(), fixtures.join("linked")).unwrap();
        let fifo = fixtures.join("real/pipe.yaml");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        for (path, why) in [
            (fixtures.join("real/leak.yaml"), "symbolic link"),
            (fixtures.join("linked/token.yaml"), "on the way to it is a symbolic link"),
            (fifo, "not a regular file"),
        ] {
            let e = load(&path, &Vars::new()).unwrap_err();
            let message = e.diagnostic().to_string();
            assert!(message.contains(why), "{}: {message}", path.display());
            assert!(!message.contains("ghp_SECRET") && !message.contains("stolen"), "{message}");
        }
        // A link further up than the nearest `fixtures` directory: `fixtures/x -> elsewhere`,
        // referenced as `x/fixtures/a.yaml`, is still refused, naming `x`.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::create_dir(elsewhere.path().join("fixtures")).unwrap();
        std::fs::copy(&token, elsewhere.path().join("fixtures/a.yaml")).unwrap();
        symlink(elsewhere.path(), fixtures.join("x")).unwrap();
        let nested = fixtures.join("x/fixtures/a.yaml");
        for problem in [link_problem(&nested), link_problem_in(&fixtures, &nested)] {
            let problem = problem.expect("the link `x` is examined");
            assert!(problem.contains(&format!("`{}` on the way", fixtures.join("x").display())), "{problem}");
        }
        let message = load(&nested, &Vars::new()).unwrap_err().diagnostic().to_string();
        assert!(message.contains("symbolic link") && !message.contains("ghp_SECRET"), "{message}");
        let e = crate::scenario::bundle::read_fixture(&fixtures, "x/fixtures/a.yaml").unwrap_err().to_string();
        assert!(e.contains("symbolic link") && !e.contains("ghp_SECRET"), "{e}");
        // The same file, copied in, loads.
        std::fs::copy(&token, fixtures.join("real/copy.yaml")).unwrap();
        assert_eq!(load(&fixtures.join("real/copy.yaml"), &Vars::new()).unwrap()[0].name, "stolen");
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

    /// A `kind: List` is its items, each located; one bad document does not hide the next; a
    /// Helm chart template is named as such.
    #[test]
    fn lists_are_expanded_and_bad_documents_do_not_hide_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: b\n---\nkind: [\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        )
        .unwrap();
        let (objects, errors) = load_all(&file, &Vars::new());
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(objects[1].position_of(&["metadata", "name"]), Position::new(10, 5));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].diagnostic().position.line, 12);
        std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n")
            .unwrap();
        let (_, errors) = load_all(&file, &Vars::new());
        assert_eq!(errors[0].diagnostic().code, "helm-template");
        assert!(errors[0].diagnostic().help.as_deref().unwrap_or_default().contains("helm template"));
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
