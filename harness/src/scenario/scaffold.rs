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
    let (bundle, skipped, adapted) = scaffold_reporting(catalog, name, mesh, manifests, values, answer)?;
    for s in &skipped {
        tracing::warn!("--manifests: skipped {}: {}", names::printable(&s.file.display().to_string()), s.why);
    }
    for change in &adapted {
        tracing::info!("--manifests: {}", names::printable(change));
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
/// either are redacted ([`Bundle::redact`]). With it, every file of `manifests` not read and why,
/// and what was changed for the scenario's namespace (`into_scenario_namespace`). `manifests` is
/// a directory (its *.yaml / *.yml files) or one file.
pub fn scaffold_reporting(
    catalog: &Catalog,
    name: &str,
    mesh: Mesh,
    manifests: &Path,
    values: BTreeMap<String, serde_json::Value>,
    answer: &Answer<'_>,
) -> Result<(Bundle, Vec<Skipped>, Vec<String>), ReproError> {
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

    // The directory the user named (a link to one is the user's own choice), or one file.
    let entries: Vec<std::path::PathBuf> = match std::fs::metadata(manifests) {
        Ok(m) if m.is_dir() => {
            let mut entries: Vec<_> = std::fs::read_dir(manifests)
                .map_err(|error| ReproError::Read { path: manifests.to_owned(), error })?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            entries.sort();
            entries
        }
        Ok(_) => vec![manifests.to_owned()],
        Err(e) => {
            return Err(usage(
                manifests,
                format!(
                    "--manifests: `{}` cannot be read: {e}; give a manifest file or the directory holding them",
                    manifests.display()
                ),
            ));
        }
    };
    let mut fixtures = BTreeMap::new();
    // Fixture path -> the user's file, to point findings at the file the user has.
    let mut origins: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut adapted = Vec::new();
    let mut deployments = Vec::new();
    let mut read = Vec::new();
    for file in entries {
        if let Some(why) = skip_reason(&file) {
            skipped.push(Skipped { file, why });
            continue;
        }
        let file_name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        names::file_segment(&file_name).map_err(|e| usage(&file, format!("manifest file name: {e}")))?;
        // Opened without following a link, in case one took the file's place since the look.
        let text = names::read_regular_text(&file, MAX_MANIFEST_BYTES)
            .map_err(|error| ReproError::Read { path: file.clone(), error })?;
        read.push((file, file_name, text));
    }
    // The Services of every file, so a name in one file follows a Service moved in another.
    let services: std::collections::BTreeSet<(String, String)> =
        read.iter().flat_map(|(_, _, text)| namespaced_services(text)).collect();
    for (file, file_name, text) in read {
        let moved = into_scenario_namespace(&text, &services);
        adapted.extend(moved.changes.into_iter().map(|c| format!("{file_name}: {c}")));
        deployments.extend(moved.deployments);
        if moved.nothing_left {
            adapted.push(format!("{file_name}: left out, it holds nothing but the above"));
            continue;
        }
        fixtures.insert(format!("user/{file_name}"), moved.text);
        origins.insert(format!("user/{file_name}"), file);
    }
    if fixtures.is_empty() {
        let mut message = if manifests.is_dir() {
            "no *.yaml or *.yml manifest directly in this directory".to_owned()
        } else {
            "not a manifest repro new can use".to_owned()
        };
        for change in &adapted {
            message += &format!("; {}", names::printable(change));
        }
        for s in &skipped {
            let file = s.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            message += &format!("; skipped {}: {}", names::printable(&file), s.why);
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
    // The user's Deployments ready first, so the request meets the service, not its start-up.
    scenario += "steps:\n";
    for name in &deployments {
        scenario += &format!(
            "  - wait: {{resource: {{apiVersion: apps/v1, kind: Deployment, name: {}}}, condition: available}}\n",
            quoted(name)
        );
    }
    let request_step = deployments.len() + 1;
    scenario += &format!(
        "  - http:\n      request: {{method: {method}, path: {}{host}}}\n      expect:\n        status: {}\n",
        quoted(path),
        answer.status
    );
    for rel in crate::stack::kong::stack_manifests(mesh) {
        let text = super::bundle::read_stack_manifest(&catalog.project.fixtures_dir(), rel)?;
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
            step: Some(request_step),
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
    let fixtures_dir = unpacked.project.fixtures_dir();
    // A finding in the unpacked copy names the user's own file (lines are kept, see
    // `into_scenario_namespace`); one in the generated scenario says so.
    let at_users_file = |mut d: Diagnostic| {
        match d.file.strip_prefix(&fixtures_dir).ok().and_then(|rel| origins.get(&rel.to_string_lossy().into_owned())) {
            Some(origin) => d.file = origin.clone(),
            None if d.file == file => {
                d.file = std::path::PathBuf::from(format!("(the scenario repro new wrote for {name})"));
                if d.code == "unreachable" && answer.host.is_none() {
                    d.help = Some("pass `--host` with a host your manifests route (`routed:` above)".into());
                }
            }
            None => {}
        }
        d
    };
    if let Err(e) = unpacked.check_mesh(&file, mesh, "offline") {
        // Every object the run would refuse, not only the first.
        let problems: Vec<Diagnostic> = match unpacked.load_rendered(&file, mesh, "offline") {
            Ok((loaded, manifests)) => {
                super::scope::manifest_problems(&loaded, &manifests).map(at_users_file).collect()
            }
            Err(_) => Vec::new(),
        };
        if problems.len() > 1 {
            return Err(ReproError::Problems(problems));
        }
        return Err(match e {
            super::CheckError::Load(super::LoadError(d)) => ReproError::Invalid(Box::new(at_users_file(*d))),
            other => ReproError::Check(other),
        });
    }
    Ok((bundle, skipped, adapted))
}

/// A user's manifest file made to run in the scenario's namespace.
#[derive(Debug)]
struct Moved {
    text: String,
    /// What was changed, for the user.
    changes: Vec<String>,
    /// The Deployments it holds, which the scenario waits for.
    deployments: Vec<String>,
    /// Only comments are left (a file of nothing but a Namespace).
    nothing_left: bool,
}

/// `(namespace, name)` of every Service in `text` that names its namespace.
fn namespaced_services(text: &str) -> Vec<(String, String)> {
    super::fixture::split_documents(text)
        .into_iter()
        .filter_map(|doc| crate::yaml::from_str::<serde_json::Value>(doc.text).ok())
        .filter(|o| o["kind"] == "Service")
        .filter_map(|o| {
            Some((o["metadata"]["namespace"].as_str()?.to_owned(), o["metadata"]["name"].as_str()?.to_owned()))
        })
        .collect()
}

/// The user's manifest `text`, made to run in the scenario's namespace line for line (findings
/// keep pointing at the user's own lines): Namespace documents commented out (the scenario runs
/// in a namespace of its own, labelled for the mesh), each `metadata.namespace` value replaced
/// by the scenario's where it stands (nothing else on its line), and the in-cluster names
/// `<service>.<namespace>.svc` of `services` (the Services the user's files move) rewritten to
/// it; other names (`kubernetes.default.svc`) stay.
fn into_scenario_namespace(text: &str, services: &std::collections::BTreeSet<(String, String)>) -> Moved {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut changes = Vec::new();
    let mut deployments = Vec::new();
    let mut start = 0;
    while start < lines.len() {
        let end = (start + 1..lines.len()).find(|&i| is_document_start(&lines[i])).unwrap_or(lines.len());
        // A separator line's own content belongs to its document (`--- {kind: ...}`).
        let doc = lines[start..end].iter().map(|l| l.strip_prefix("---").unwrap_or(l)).collect::<Vec<_>>().join("\n");
        let object: serde_json::Value = crate::yaml::from_str(&doc).unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        if kind == "Namespace" && object["apiVersion"] == "v1" {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            for line in &mut lines[start..end] {
                if let Some(rest) = line.strip_prefix("---") {
                    if !rest.trim().is_empty() && !rest.trim_start().starts_with('#') {
                        *line = format!("--- #{rest}");
                    }
                } else if !line.trim().is_empty() {
                    *line = format!("# {line}");
                }
            }
            // Its labels may carry meaning the scenario's namespace must keep (a waypoint,
            // `istio.io/use-waypoint`, a PodSecurity level): say which, since they are not moved.
            let labels: Vec<String> = object["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !crate::model::OWNED_NAMESPACE_KEYS.contains(&k.as_str()))
                .map(|(k, v)| format!("{}={}", names::printable(k), names::printable(v.as_str().unwrap_or_default())))
                .collect();
            let kept = if labels.is_empty() {
                String::new()
            } else {
                format!(
                    "; its labels {} are not carried over: put those your setup needs under the scenario's `namespace.labels`",
                    labels.join(", ")
                )
            };
            changes.push(format!(
                "Namespace `{}` left out (line {}): the scenario runs in a namespace of its own{kept}",
                names::printable(name),
                start + 1
            ));
        } else if let Some(ns) = object["metadata"]["namespace"].as_str() {
            let at = crate::yaml::locate(&doc, &["metadata", "namespace"]);
            let i = start + (at.line.max(1) as usize) - 1;
            // Where the value cannot be found alone on its line, it is left as written: the check
            // then reports it at the user's line.
            if let Some(span) =
                (at.line >= 1).then(|| namespace_value_span(&lines[i], at.column as usize, ns)).flatten()
            {
                lines[i].replace_range(span, "\"{{ namespace }}\"");
                changes.push(format!(
                    "{kind} {}: namespace `{}` became the scenario's (line {})",
                    names::printable(object["metadata"]["name"].as_str().unwrap_or_default()),
                    names::printable(ns),
                    i + 1
                ));
            }
        }
        if kind == "Deployment"
            && let Some(name) = object["metadata"]["name"].as_str()
        {
            deployments.push(name.to_owned());
        }
        start = end;
    }
    for (ns, service) in services {
        let from = format!("{service}.{ns}.svc");
        let to = format!("{service}.{{{{ namespace }}}}.svc");
        let mut rewrote = false;
        for line in lines.iter_mut().filter(|l| !l.trim_start().starts_with('#')) {
            let mut at = 0;
            while let Some(found) = line[at..].find(&from).map(|f| f + at) {
                // A whole name only: `xorders.shop.svc` is not `orders.shop.svc`.
                let whole = line[..found]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'));
                if whole {
                    line.replace_range(found..found + from.len(), &to);
                    rewrote = true;
                    at = found + to.len();
                } else {
                    at = found + from.len();
                }
            }
        }
        if rewrote {
            changes.push(format!("`{}` became the scenario's Service name", names::printable(&from)));
        }
    }
    let nothing_left = lines.iter().all(|l| {
        let t = l.trim();
        t.is_empty()
            || t.starts_with('#')
            || (t.starts_with("---") && t[3..].trim_start().starts_with('#'))
            || t == "---"
    });
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    Moved { text: out, changes, deployments, nothing_left }
}

/// Where, in `line`, the value of the `namespace` key that `column` (1-based, from
/// `yaml::locate`) points at stands, when it is `ns` written plainly or quoted; in a flow
/// mapping (`metadata: {name: a, namespace: shop}`) the key is found at the mapping's first
/// level. `None` when it cannot be found for certain.
fn namespace_value_span(line: &str, column: usize, ns: &str) -> Option<std::ops::Range<usize>> {
    let key_at = if line.get(column.saturating_sub(1)..)?.starts_with("namespace") {
        column.saturating_sub(1)
    } else {
        flow_key(line, line.find("metadata")?, "namespace")?
    };
    let after_key = key_at + "namespace".len();
    let rest = &line[after_key..];
    let colon = rest.find(|c: char| !c.is_whitespace())?;
    if !rest[colon..].starts_with(':') {
        return None;
    }
    let value_at = after_key + colon + 1 + rest[colon + 1..].find(|c: char| !c.is_whitespace())?;
    let value = &line[value_at..];
    let len = match value.chars().next()? {
        q @ ('"' | '\'') => value[1..].find(q)? + 2,
        _ => value.find([',', '}', '#']).unwrap_or(value.len()),
    };
    let written = value[..len].trim_end();
    (written.trim_matches(['"', '\'']) == ns).then(|| value_at..value_at + written.len())
}

/// Where `key` stands as a key at the first level of the flow mapping that opens after `from`
/// in `line` (quoted text skipped).
fn flow_key(line: &str, from: usize, key: &str) -> Option<usize> {
    let open = from + line[from..].find('{')?;
    let mut depth = 0;
    let mut quote = None;
    let mut expect_key = false;
    for (i, c) in line.char_indices().skip_while(|(i, _)| *i < open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => {
                depth += 1;
                expect_key = depth == 1;
            }
            (None, '}' | ']') => depth -= 1,
            (None, ',') if depth == 1 => expect_key = true,
            (None, c) if c.is_whitespace() => {}
            (None, _) if expect_key => {
                if line[i..].starts_with(key) && line[i + key.len()..].trim_start().starts_with(':') {
                    return Some(i);
                }
                expect_key = false;
            }
            _ => {}
        }
    }
    None
}

/// A YAML document separator line (`---`, possibly followed by a comment or content).
fn is_document_start(line: &str) -> bool {
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t")
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
        let (bundle, skipped, _) =
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

    /// `--manifests` naming one file reads that file; a path that does not exist is one usage
    /// error, said once (no cause repeated by an error chain).
    #[test]
    fn manifests_may_be_one_file_and_a_missing_one_is_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.yaml");
        std::fs::write(&file, SHOP).unwrap();
        let bundle = scaffold(&catalog(), "shop", Mesh::Istio, &file, BTreeMap::new(), &answer("/")).unwrap();
        assert_eq!(bundle.fixtures.get("user/shop.yaml").map(String::as_str), Some(SHOP));
        let missing = dir.path().join("nope.yaml");
        let err = scaffold(&catalog(), "shop", Mesh::Istio, &missing, BTreeMap::new(), &answer("/")).unwrap_err();
        assert!(std::error::Error::source(&err).is_none(), "no chain to repeat the cause");
        let text = err.to_string();
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
        let read = ReproError::Read { path: file, error: std::io::Error::from_raw_os_error(20) };
        assert!(std::error::Error::source(&read).is_none());
        assert_eq!(read.to_string().matches("Not a directory").count(), 1, "{read}");
    }

    /// The manifests of a config repository as they are: their Namespace, `namespace: shop` on
    /// every object, the Service's in-cluster name. They run in the scenario's namespace, line
    /// for line, and the scenario waits for their Deployment before the request it states.
    #[test]
    fn a_repositorys_manifests_move_into_the_scenarios_namespace() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {istio-injection: enabled, istio.io/use-waypoint: waypoint}\n---\n\
            apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: orders\n  namespace: shop\nspec:\n  selector:\n    \
            matchLabels: {app: orders}\n  template:\n    metadata:\n      labels: {app: orders}\n    spec:\n      \
            containers:\n      - {name: orders, image: \"{{ images.echo }}\"}\n---\napiVersion: v1\nkind: Service\n\
            metadata: {name: orders, namespace: \"shop\", annotations: {konghq.com/host-header: orders.shop.svc.cluster.local}}\n\
            spec:\n  selector: {app: orders}\n  ports: [{port: 80}]\n";
        let services = namespaced_services(text).into_iter().collect();
        let Moved { text: adapted, changes, deployments, nothing_left } = into_scenario_namespace(text, &services);
        assert!(!nothing_left);
        assert_eq!(adapted.lines().count(), text.lines().count(), "line for line:\n{adapted}");
        assert!(adapted.starts_with("# apiVersion: v1\n# kind: Namespace\n"), "{adapted}");
        assert_eq!(adapted.matches("namespace: \"{{ namespace }}\"").count(), 2, "{adapted}");
        assert!(adapted.contains("host-header: orders.{{ namespace }}.svc.cluster.local"), "{adapted}");
        assert!(!adapted.contains("shop.svc") && !adapted.contains("namespace: shop"), "{adapted}");
        assert_eq!(deployments, ["orders"]);
        assert!(changes.iter().any(|c| c.contains("Namespace `shop` left out (line 1)")), "{changes:?}");
        // Its own labels are named (the mesh's injection label is the harness's to set).
        let ns = changes.iter().find(|c| c.contains("Namespace `shop`")).unwrap();
        assert!(ns.contains("its labels istio.io/use-waypoint=waypoint are not carried over"), "{ns}");
        assert!(!ns.contains("istio-injection"), "{ns}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("orders.yaml"), text).unwrap();
        let bundle = scaffold(&catalog(), "orders", Mesh::Istio, dir.path(), BTreeMap::new(), &answer("/")).unwrap();
        assert!(
            bundle
                .scenario_yaml
                .contains("  - wait: {resource: {apiVersion: apps/v1, kind: Deployment, name: \"orders\"}")
        );
        assert_eq!(bundle.expected.to_string(), "step 2 fails with `is not 200`");
    }

    /// What the review found the first version got wrong: a label whose key is `namespace`
    /// beside the real one, a name of a Service nobody moves (`kubernetes.default.svc`), a name
    /// in a file without namespaced objects, a file of only a Namespace, a Namespace on its
    /// separator line.
    #[test]
    fn moving_namespaces_touches_only_what_moves() {
        let services = [("shop".to_owned(), "orders".to_owned()), ("default".to_owned(), "web".to_owned())].into();
        let flow = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: orders, labels: {namespace: shop-team}, namespace: shop}\n\
                    data: {api: \"https://kubernetes.default.svc\", orders: \"http://orders.shop.svc.cluster.local\", x: xorders.shop.svc}\n";
        let moved = into_scenario_namespace(flow, &services);
        let line = moved.text.lines().nth(2).unwrap();
        assert_eq!(
            line, "metadata: {name: orders, labels: {namespace: shop-team}, namespace: \"{{ namespace }}\"}",
            "{moved:?}"
        );
        let data = moved.text.lines().nth(3).unwrap();
        assert!(
            data.contains("https://kubernetes.default.svc")
                && data.contains("http://orders.{{ namespace }}.svc.cluster.local")
        );
        assert!(data.contains("x: xorders.shop.svc"), "only whole names: {data}");
        // A name in a file without any namespaced object still follows its Service.
        let config =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {url: orders.shop.svc.cluster.local}\n";
        assert!(into_scenario_namespace(config, &services).text.contains("orders.{{ namespace }}.svc"));
        // A quoted value, a comment after it.
        let quoted = "kind: Service\napiVersion: v1\nmetadata:\n  name: orders\n  namespace: 'shop'  # prod\n";
        assert!(into_scenario_namespace(quoted, &services).text.contains("  namespace: \"{{ namespace }}\"  # prod"));
        // Only a Namespace: nothing is left of the file.
        let only = "# the namespace\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
        assert!(into_scenario_namespace(only, &services).nothing_left);
        let inline = "--- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n";
        let moved = into_scenario_namespace(inline, &services);
        assert!(moved.nothing_left && moved.text.starts_with("--- #"), "{moved:?}");
        // A value lint cannot find alone on its line is left for the check to report.
        let odd = "kind: Service\napiVersion: v1\nmetadata:\n  name: orders\n  namespace: !!str shop\n";
        assert_eq!(into_scenario_namespace(odd, &services).text, odd);
    }

    /// A file of only a Namespace beside the workloads: left out, said, and the bundle made.
    #[test]
    fn a_namespace_file_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("namespace.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n")
            .unwrap();
        std::fs::write(
            dir.path().join("shop.yaml"),
            SHOP.replace("  name: shop\n", "  name: shop\n  namespace: shop\n"),
        )
        .unwrap();
        let (bundle, _, adapted) =
            scaffold_reporting(&catalog(), "shop", Mesh::Istio, dir.path(), BTreeMap::new(), &answer("/")).unwrap();
        assert!(!bundle.fixtures.contains_key("user/namespace.yaml") && bundle.fixtures.contains_key("user/shop.yaml"));
        assert!(adapted.iter().any(|a| a.starts_with("namespace.yaml: left out")), "{adapted:?}");
    }

    /// Every object the run would refuse is reported at once, at the user's own file and line
    /// (never at the temporary copy the check ran on).
    #[test]
    fn every_refused_object_is_reported_at_the_users_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.yaml");
        let text = format!(
            "{SHOP}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: edge\nspec:\n  type: NodePort\n  \
             ports: [{{port: 80}}]\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\nspec:\n  \
             containers: [{{name: c, image: busybox}}]\n"
        );
        std::fs::write(&file, &text).unwrap();
        let err = scaffold(&catalog(), "shop", Mesh::Istio, dir.path(), BTreeMap::new(), &answer("/")).unwrap_err();
        let ReproError::Problems(problems) = &err else { panic!("all problems at once: {err}") };
        let at: Vec<(String, u32)> = problems.iter().map(|d| (d.file.display().to_string(), d.position.line)).collect();
        let shown = file.display().to_string();
        assert_eq!(at, [(shown.clone(), 14), (shown, 22)], "{err}");
        assert!(!err.to_string().contains("fixtures/user"), "{err}");
    }
}
