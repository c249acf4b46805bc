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

/// A file of `--manifests` that was not read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: std::path::PathBuf,
    pub why: &'static str,
}

/// [`scaffold_reporting`], each skipped file said as a warning (`--manifests: skipped FILE: why`).
pub fn scaffold(
    catalog: &Catalog,
    name: &str,
    mesh: Mesh,
    manifests: &Path,
    values: BTreeMap<String, serde_json::Value>,
    answer: &Answer<'_>,
) -> Result<Bundle, ReproError> {
    let (bundle, skipped) = scaffold_reporting(catalog, name, mesh, manifests, values, answer)?;
    for s in &skipped {
        tracing::warn!("--manifests: skipped {}: {}", names::printable(&s.file.display().to_string()), s.why);
    }
    Ok(bundle)
}

/// Why an entry of `--manifests` is not read, if it is not: only regular *.yaml / *.yml files
/// directly in the directory, never through a link (it could lead to any file of the user's,
/// which the bundle would then carry), at most [`MAX_MANIFEST_BYTES`].
fn skip_reason(file: &Path) -> Option<&'static str> {
    let Ok(meta) = std::fs::symlink_metadata(file) else { return Some("cannot be read") };
    let yaml = file.extension().is_some_and(|x| x == "yaml" || x == "yml");
    if meta.file_type().is_symlink() {
        Some("a symbolic link: links are not followed (copy the file in instead)")
    } else if meta.is_dir() {
        Some("a directory: only files directly in --manifests are read")
    } else if !meta.is_file() {
        Some("not a regular file (a FIFO, socket or device)")
    } else if !yaml {
        Some("not a .yaml or .yml file")
    } else if meta.len() > MAX_MANIFEST_BYTES {
        Some("larger than the 2 MiB limit for a manifest")
    } else {
        None
    }
}

/// The bundle: `manifests` (every *.yaml / *.yml directly in it) as fixtures, `values` the Helm
/// values in force by chart (`crate::stack::values::in_force`), one request step; credentials in
/// either are redacted ([`Bundle::redact`]). With it, every file of `manifests` not read and why.
pub fn scaffold_reporting(
    catalog: &Catalog,
    name: &str,
    mesh: Mesh,
    manifests: &Path,
    values: BTreeMap<String, serde_json::Value>,
    answer: &Answer<'_>,
) -> Result<(Bundle, Vec<Skipped>), ReproError> {
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

    // The directory the user named (a link to one is the user's own choice); said once.
    if !std::fs::metadata(manifests).is_ok_and(|m| m.is_dir()) {
        let why = match std::fs::metadata(manifests) {
            Ok(_) => "is not a directory".to_owned(),
            Err(e) => format!("cannot be read: {e}"),
        };
        return Err(usage(
            manifests,
            format!("--manifests: `{}` {why}; give the directory holding the manifests", manifests.display()),
        ));
    }
    let mut fixtures = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(manifests)
        .map_err(|error| ReproError::Read { path: manifests.to_owned(), error })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for file in entries {
        if let Some(why) = skip_reason(&file) {
            skipped.push(Skipped { file, why });
            continue;
        }
        let file_name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        names::file_segment(file_name).map_err(|e| usage(&file, format!("manifest file name: {e}")))?;
        // Opened without following a link, in case one took the file's place since the look.
        let text = names::read_regular_text(&file, MAX_MANIFEST_BYTES)
            .map_err(|error| ReproError::Read { path: file.clone(), error })?;
        fixtures.insert(format!("user/{file_name}"), text);
    }
    if fixtures.is_empty() {
        let mut message = "no *.yaml or *.yml manifest directly in this directory".to_owned();
        for s in &skipped {
            let file = s.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            message += &format!("\n  skipped {}: {}", names::printable(&file), s.why);
        }
        return Err(usage(manifests, message));
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
        let text = super::bundle::read_fixture(&catalog.project.fixtures_dir(), rel)?;
        fixtures.insert((*rel).to_owned(), text);
    }
    let mut bundle = Bundle {
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
        versions_toml: super::bundle::read(&catalog.project.versions_file())?,
        values,
        scenario_yaml: scenario,
        fixtures,
        redacted: Vec::new(),
    };
    bundle.redact();
    // Loaded and checked as `repro run` will: a scaffold that cannot run is an error now.
    let dir = tempfile::tempdir().map_err(|error| ReproError::Write { path: std::env::temp_dir(), error })?;
    let unpacked = Catalog::open(bundle.unpack(&dir.path().join("project"))?).map_err(super::CheckError::from)?;
    let file = unpacked.project.scenarios_dir().join(format!("{name}.yaml"));
    unpacked.check_mesh(&file, mesh, "offline")?;
    Ok((bundle, skipped))
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

    /// `--manifests` with a link to a token outside, a FIFO, a subdirectory and a README: each
    /// skipped with why, the link's target never read; the user's credential Secret and the
    /// values' env pair are redacted and listed.
    #[test]
    fn manifests_say_what_they_skipped_and_carry_no_credentials() {
        let outside = tempfile::tempdir().unwrap();
        let token = outside.path().join("token.yaml");
        std::fs::write(&token, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\ndata: {t: ghp_T0KEN}\n")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shop.yaml"), SHOP).unwrap();
        std::fs::write(
            dir.path().join("creds.yaml"),
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: shop-key\n  labels: {konghq.com/credential: key-auth}\n\
             stringData:\n  kongCredType: key-auth\n  key: my-api-key-0123\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), "not a manifest").unwrap();
        std::fs::create_dir(dir.path().join("more.yaml")).unwrap();
        std::os::unix::fs::symlink(&token, dir.path().join("link.yaml")).unwrap();
        let fifo = dir.path().join("pipe.yaml");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let values: BTreeMap<String, serde_json::Value> = [(
            "kong/ingress".to_owned(),
            serde_json::json!({"gateway": {"env": {"license_data": "L1C"},
                "extraEnvVars": [{"name": "DD_API_KEY", "value": "dd-0123456789"}]}}),
        )]
        .into();
        let (bundle, skipped) =
            scaffold_reporting(&catalog(), "shop-503", Mesh::Istio, dir.path(), values, &answer("/")).unwrap();
        let said: Vec<String> =
            skipped.iter().map(|s| format!("{} {}", s.file.file_name().unwrap().to_string_lossy(), s.why)).collect();
        assert_eq!(
            said,
            [
                "README.md not a .yaml or .yml file",
                "link.yaml a symbolic link: links are not followed (copy the file in instead)",
                "more.yaml a directory: only files directly in --manifests are read",
                "pipe.yaml not a regular file (a FIFO, socket or device)",
            ]
        );
        let text = bundle.to_yaml();
        for secret in ["ghp_T0KEN", "stolen", "my-api-key-0123", "dd-0123456789", "L1C"] {
            assert!(!text.contains(secret), "{secret} in the bundle");
        }
        assert_eq!(
            bundle.redacted,
            [
                "fixtures/user/creds.yaml:Secret/shop-key.stringData.key",
                "values.kong/ingress:gateway.env.license_data",
                "values.kong/ingress:gateway.extraEnvVars[0].value",
            ]
        );
        // With nothing readable, the error names what was skipped.
        let only_link = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&token, only_link.path().join("link.yaml")).unwrap();
        let err = scaffold(&catalog(), "shop", Mesh::Istio, only_link.path(), BTreeMap::new(), &answer("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("skipped link.yaml: a symbolic link") && !err.contains("ghp_T0KEN"), "{err}");
    }

    /// `--manifests` naming a file: one usage error, said once (no `Not a directory` repeated
    /// by an error chain).
    #[test]
    fn manifests_that_are_not_a_directory_are_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.yaml");
        std::fs::write(&file, SHOP).unwrap();
        let err = scaffold(&catalog(), "shop", Mesh::Istio, &file, BTreeMap::new(), &answer("/")).unwrap_err();
        assert!(std::error::Error::source(&err).is_none(), "no chain to repeat the cause");
        let text = err.to_string();
        assert_eq!(text.matches("not a directory").count(), 1, "{text}");
        // Nor does a read error repeat its cause through a chain.
        let read = ReproError::Read { path: file, error: std::io::Error::from_raw_os_error(20) };
        assert!(std::error::Error::source(&read).is_none());
        assert_eq!(read.to_string().matches("Not a directory").count(), 1, "{read}");
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
