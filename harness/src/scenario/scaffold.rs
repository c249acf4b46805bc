//! `repro new`: a bundle from a user's own files, the shortest path from a bug report to a
//! runnable reproduction. The user's manifests become the scenario's fixtures (applied in its
//! namespace, under `fixtures/user/`), one request through Kong becomes its one step with the
//! answer it should get, and the bundle expects that step to fail: the bug reproduces.
//!
//! Everything the user gives is input: file names become fixture paths only as checked path
//! segments, and strings enter the scenario YAML only as quoted scalars. The result is loaded
//! and checked like any scenario before it is returned.

use std::collections::BTreeMap;
use std::path::Path;

use super::bundle::{Bundle, Expected, ExpectedOutcome, FORMAT, ReproError};
use super::{Catalog, Mesh};
use crate::diagnostic::{Diagnostic, Position};
use crate::names;

/// The request and the answer it should get.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// `GET /orders`, or just `/orders`.
    pub request: &'a str,
    /// The Host header the user's Ingress routes; the scenario's own host when `None`.
    pub host: Option<&'a str>,
    pub status: u16,
    /// What goes wrong, in the reporter's words.
    pub note: &'a str,
}

/// The largest manifest file read (a Kubernetes object is at most about 1.5 MB in etcd).
const MAX_MANIFEST_BYTES: u64 = 2 << 20;

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn usage(what: &Path, message: String) -> ReproError {
    ReproError::Invalid(Box::new(Diagnostic::error("usage", what, Position::WHOLE_FILE, message)))
}

/// The bundle: `manifests` (every *.yaml / *.yml directly in it) as fixtures, `values` the Helm
/// values in force by chart (`crate::stack::values::in_force`), one request step.
pub fn scaffold(
    catalog: &Catalog,
    name: &str,
    mesh: Mesh,
    manifests: &Path,
    values: BTreeMap<String, serde_json::Value>,
    answer: &Answer<'_>,
) -> Result<Bundle, ReproError> {
    names::dns1123_label(name).map_err(|e| usage(Path::new("--name"), format!("--name: {e}")))?;
    let (method, path) = match answer.request.trim().split_once(' ') {
        Some((method, path)) => (method.trim().to_ascii_uppercase(), path.trim()),
        None => ("GET".to_owned(), answer.request.trim()),
    };
    if !METHODS.contains(&method.as_str()) {
        return Err(usage(Path::new("--request"), format!("`{method}` is not one of {}", METHODS.join(", "))));
    }
    if !path.starts_with('/') || path.contains("{{") || path.chars().any(char::is_control) {
        return Err(usage(
            Path::new("--request"),
            format!("`{}` is not a request path (it starts with `/`)", names::printable(path)),
        ));
    }
    if let Some(host) = answer.host {
        names::dns1123_subdomain(host).map_err(|e| usage(Path::new("--host"), format!("--host: {e}")))?;
    }
    if answer.note.contains("{{") {
        return Err(usage(Path::new("--note"), "a note cannot hold `{{`: scenario text is templated".into()));
    }
    if !(100..=599).contains(&answer.status) {
        return Err(usage(Path::new("--expect-status"), format!("{} is not an HTTP status", answer.status)));
    }

    let mut fixtures = BTreeMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(manifests)
        .map_err(|source| ReproError::Read { path: manifests.to_owned(), source })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for file in entries {
        let is_yaml = file.extension().is_some_and(|x| x == "yaml" || x == "yml");
        // Regular files only: no links out of the directory, no FIFOs.
        let regular = std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file() && m.len() <= MAX_MANIFEST_BYTES);
        if !is_yaml || !regular {
            continue;
        }
        let file_name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        names::file_segment(file_name).map_err(|e| usage(&file, format!("manifest file name: {e}")))?;
        let text = std::fs::read_to_string(&file).map_err(|source| ReproError::Read { path: file.clone(), source })?;
        fixtures.insert(format!("user/{file_name}"), text);
    }
    if fixtures.is_empty() {
        return Err(usage(manifests, "no *.yaml or *.yml manifest directly in this directory".into()));
    }

    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let summary = if answer.note.trim().is_empty() {
        format!("Reported: {method} {path} through Kong should answer {}.", answer.status)
    } else {
        answer.note.trim().to_owned()
    };
    let mut scenario =
        format!("name: {name}\nsummary: {}\nmeshes: [{mesh}]\ncovers: [ingress]\nfixtures:\n", quoted(&summary));
    for rel in fixtures.keys() {
        scenario += &format!("  - {}\n", quoted(rel.trim_start_matches("user/")).replacen('"', "\"user/", 1));
    }
    let host = answer.host.map(|h| format!(", host: {}", quoted(h))).unwrap_or_default();
    scenario += &format!(
        "steps:\n  - http:\n      request: {{method: {method}, path: {}{host}}}\n      expect:\n        status: {}\n",
        quoted(path),
        answer.status
    );
    for rel in crate::stack::kong::stack_manifests(mesh) {
        let text = std::fs::read_to_string(catalog.project.fixtures_dir().join(rel))
            .map_err(|source| ReproError::Read { path: catalog.project.fixtures_dir().join(rel), source })?;
        fixtures.insert((*rel).to_owned(), text);
    }
    let bundle = Bundle {
        bundle: FORMAT.to_owned(),
        harness: crate::Provenance::this_build(),
        scenario: name.to_owned(),
        mesh,
        profile: String::new(),
        // The wrong answer, not any failure: a connection error or a timeout is not the bug.
        expected: Expected {
            outcome: ExpectedOutcome::Fails,
            step: Some(1),
            detail: Some(format!("is not {}", answer.status)),
            note: answer.note.trim().to_owned(),
        },
        versions_toml: std::fs::read_to_string(catalog.project.versions_file())
            .map_err(|source| ReproError::Read { path: catalog.project.versions_file(), source })?,
        values,
        scenario_yaml: scenario,
        fixtures,
    };
    // Loaded and checked as `repro run` will: a scaffold that cannot run is an error now.
    let dir = tempfile::tempdir().map_err(|source| ReproError::Write { path: std::env::temp_dir(), source })?;
    let unpacked = Catalog::open(bundle.unpack(&dir.path().join("project"))?).map_err(super::CheckError::from)?;
    let file = unpacked.project.scenarios_dir().join(format!("{name}.yaml"));
    unpacked.check_mesh(&file, mesh, "offline")?;
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;

    fn catalog() -> Catalog {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        Catalog::open(Project::at(root)).unwrap()
    }

    const SHOP: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: shop\nspec:\n  ports: [{port: 80}]\n  selector: {app: shop}\n";

    fn answer(request: &str) -> Answer<'_> {
        Answer { request, host: Some("shop.example.com"), status: 200, note: "Kong answers 503 since the upgrade" }
    }

    /// A bug report becomes a bundle that loads back, expects its one step to fail, and carries
    /// the user's files as fixtures; strings cannot break out of their YAML scalars.
    #[test]
    fn a_bug_report_becomes_a_runnable_bundle() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shop.yaml"), SHOP).unwrap();
        std::fs::write(dir.path().join("README.md"), "not a manifest").unwrap();
        let bundle =
            scaffold(&catalog(), "shop-503", Mesh::Istio, dir.path(), BTreeMap::new(), &answer("post /orders"))
                .unwrap();
        assert_eq!(bundle.fixtures.get("user/shop.yaml").map(String::as_str), Some(SHOP));
        assert!(!bundle.fixtures.keys().any(|k| k.contains("README")));
        assert_eq!(bundle.expected.to_string(), "step 1 fails with `is not 200`");
        // Only the wrong status reproduces it; a connection failure does not.
        assert!(
            bundle
                .expected
                .judge(Some((1, "status 503 is not 200", crate::runner::outcome::FailureKind::Verdict)))
                .is_ok()
        );
        assert!(
            bundle
                .expected
                .judge(Some((1, "no response (connection refused)", crate::runner::outcome::FailureKind::Verdict)))
                .is_err()
        );
        assert!(
            bundle.scenario_yaml.contains("request: {method: POST, path: \"/orders\", host: \"shop.example.com\"}"),
            "{}",
            bundle.scenario_yaml
        );
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("bundle.yaml");
        std::fs::write(&file, bundle.to_yaml()).unwrap();
        assert_eq!(Bundle::load(&file).unwrap(), bundle);

        // A summary with YAML in it stays a string.
        let tricky = Answer { note: "x\"\nsteps: []\n# y", ..answer("/orders") };
        let bundle = scaffold(&catalog(), "shop-503", Mesh::Istio, dir.path(), BTreeMap::new(), &tricky).unwrap();
        assert!(bundle.scenario_yaml.contains("summary: \"x\\\"\\nsteps: []\\n# y\""), "{}", bundle.scenario_yaml);
    }

    #[test]
    fn bad_requests_and_names_are_refused_before_anything_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let try_with = |name: &str, a: Answer<'_>| {
            scaffold(&catalog(), name, Mesh::Istio, dir.path(), BTreeMap::new(), &a).unwrap_err().to_string()
        };
        assert!(try_with("Shop_Bug", answer("/")).contains("--name"));
        assert!(try_with("shop", answer("FETCH /")).contains("`FETCH` is not one of GET"));
        assert!(try_with("shop", answer("GET orders")).contains("is not a request path"));
        assert!(try_with("shop", answer("GET /{{ namespace }}")).contains("is not a request path"));
        assert!(try_with("shop", Answer { host: Some("a/b"), ..answer("/") }).contains("--host"));
        assert!(try_with("shop", Answer { status: 42, ..answer("/") }).contains("42 is not an HTTP status"));
        assert!(try_with("shop", Answer { note: "{{ run }}", ..answer("/") }).contains("cannot hold `{{`"));
        assert!(try_with("shop", answer("/")).contains("no *.yaml or *.yml manifest"));
    }

    /// A manifest that writes into another namespace fails the scaffold with the scope error,
    /// as `repro run` would.
    #[test]
    fn manifests_are_checked_like_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("shop.yaml"),
            SHOP.replace("  name: shop\n", "  name: shop\n  namespace: prod\n"),
        )
        .unwrap();
        let err = scaffold(&catalog(), "shop", Mesh::Istio, dir.path(), BTreeMap::new(), &answer("/")).unwrap_err();
        assert!(err.to_string().contains("prod"), "{err}");
    }
}
