//! Observations normalised for snapshots: what stays the same from run to run is kept, what
//! cannot (pod hashes, IPs, ids, timestamps, latencies, certificate hashes, the run id) is
//! replaced by a placeholder naming what was there.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::probe::{Observation, Outcome};

/// Header names whose values differ on every request.
const VOLATILE_HEADERS: &[(&str, &str)] = &[
    ("date", "[date]"),
    ("x-kong-request-id", "[id]"),
    ("x-request-id", "[id]"),
    ("x-b3-traceid", "[id]"),
    ("x-b3-spanid", "[id]"),
    ("x-b3-parentspanid", "[id]"),
    // The single-header B3 form (`b3: <trace>-<span>-<sampled>`), as trace steps send it.
    ("b3", "[id]"),
    ("traceparent", "[id]"),
    ("tracestate", "[id]"),
    ("x-kong-upstream-latency", "[ms]"),
    ("x-kong-proxy-latency", "[ms]"),
    ("x-envoy-upstream-service-time", "[ms]"),
    ("x-envoy-attempt-count", "[n]"),
    ("ratelimit-reset", "[s]"),
    ("ratelimit-remaining", "[n]"),
    ("x-ratelimit-remaining-second", "[n]"),
    ("x-ratelimit-remaining-minute", "[n]"),
    ("x-ratelimit-remaining-hour", "[n]"),
    ("x-forwarded-for", "[ip]"),
    ("x-real-ip", "[ip]"),
    ("x-forwarded-port", "[port]"),
    ("authorization", "[secret]"),
    ("cookie", "[secret]"),
    ("set-cookie", "[secret]"),
    ("content-length", "[n]"),
];

/// Normalise one observation. `run` is replaced wherever it appears (namespaces, hosts);
/// `redact` names extra headers (scenario `snapshot.redact_headers`).
pub fn normalise(observation: &Observation, run: &str, redact: &[String]) -> Value {
    let mut value = match &observation.outcome {
        Outcome::Response(r) => {
            let mut m = Map::new();
            m.insert("status".into(), r.status.into());
            if let Some(v) = &r.version {
                m.insert("version".into(), v.clone().into());
            }
            m.insert("headers".into(), headers(r.headers.iter(), redact));
            if let Some(echo) = &r.echo {
                let mut e = Map::new();
                e.insert("method".into(), echo.method.clone().into());
                e.insert("path".into(), echo.path.clone().into());
                e.insert("host".into(), echo.host.clone().into());
                e.insert("namespace".into(), echo.namespace.clone().into());
                e.insert("pod".into(), pod_name(&echo.pod).into());
                e.insert("headers".into(), headers(echo.headers.iter(), redact));
                m.insert("backend".into(), Value::Object(e));
            }
            Value::Object(m)
        }
        Outcome::Transport { kind, .. } => {
            // The message names ports and OS wording; the kind is the stable part.
            serde_json::json!({ "transport": kind })
        }
    };
    replace_run(&mut value, run);
    value
}

fn headers<'a>(headers: impl Iterator<Item = (&'a String, &'a Vec<String>)>, redact: &[String]) -> Value {
    let mut out = Map::new();
    for (name, values) in headers {
        let lower = name.to_ascii_lowercase();
        let fixed = VOLATILE_HEADERS.iter().find(|(h, _)| *h == lower).map(|(_, p)| *p);
        let redacted = redact.iter().any(|r| r.eq_ignore_ascii_case(&lower));
        let shown: Vec<Value> = values
            .iter()
            .map(|v| match (fixed, redacted) {
                (_, true) => "[redacted]".to_owned(),
                (Some(p), _) => p.to_owned(),
                _ if lower == "x-forwarded-client-cert" => xfcc(v),
                // `Via: 1.1 kong/3.9.1`, `Server: kong/3.9.1`: a version bump is no behaviour change.
                _ if lower == "via" || lower == "server" => product_versions(&ips(v)),
                _ => ips(v),
            })
            .map(Value::from)
            .collect();
        out.insert(lower, Value::Array(shown));
    }
    Value::Object(out)
}

/// `product/1.2.3` -> `product/[version]`.
fn product_versions(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '/' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-') {
                chars.next();
            }
            out.push_str("[version]");
        }
    }
    out
}

/// Keep an XFCC's identities, hide its hashes and certificates.
fn xfcc(value: &str) -> String {
    value
        .split(';')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if ["hash", "cert", "chain"].contains(&k.trim().to_ascii_lowercase().as_str()) => {
                format!("{}=[{}]", k, k.trim().to_ascii_lowercase())
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

use crate::names::pod_name;

/// What to do with a scenario's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Compare; a missing or different snapshot leaves `<name>.snap.new` for `cargo insta review`.
    Compare,
    /// Compare as in CI (insta's semantics there): a missing snapshot is a failure, not a new
    /// one to accept later; its `.snap.new` is still written, for review.
    Require,
    /// Accept what was observed (`--update-snapshots`): write `<name>.snap`.
    Update,
}

impl SnapshotMode {
    /// The mode of a run: `--update-snapshots` accepts; in CI ([`crate::in_ci`], as insta reads
    /// it) a missing snapshot fails; elsewhere it is written as new for review.
    pub fn for_run(update: bool) -> SnapshotMode {
        match (update, crate::in_ci()) {
            (true, _) => SnapshotMode::Update,
            (false, true) => SnapshotMode::Require,
            (false, false) => SnapshotMode::Compare,
        }
    }
}

/// How a scenario's observations compared with its stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotOutcome {
    Matched,
    /// No snapshot was stored: the observations were written as new, for review. Not a failure.
    New {
        pending: PathBuf,
    },
    /// The observations differ: a failure of the scenario, with the diff.
    Changed {
        pending: PathBuf,
        diff: String,
    },
    /// `--update-snapshots` wrote what was observed.
    Updated {
        path: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot render the observations as YAML: {0}")]
    Render(String),
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The largest stored snapshot read: observations are bounded, so a larger file is not one.
pub const MAX_SNAPSHOT_BYTES: u64 = 4 << 20;

/// The snapshot file of `scenario` on `mesh` under `dir`, named as insta names them.
pub fn snapshot_path(dir: &Path, scenario: &str, mesh: crate::model::Mesh) -> PathBuf {
    dir.join(format!("{scenario}__{mesh}.snap"))
}

/// Compare the normalised observations of `scenario` on `mesh` with the stored snapshot
/// `<dir>/<scenario>__<mesh>.snap`, in insta's file format (a `---` metadata header, then the
/// YAML), so `cargo insta review` accepts or rejects the `.snap.new` files left behind. The one
/// snapshot mechanism of live runs: `cargo xtask e2e` and the suite's live tests both use it.
pub fn check_scenario_snapshot(
    dir: &Path,
    scenario: &str,
    mesh: crate::model::Mesh,
    observations: &Value,
    mode: SnapshotMode,
) -> Result<SnapshotOutcome, SnapshotError> {
    let rendered = serde_saphyr::to_string(observations).map_err(|e| SnapshotError::Render(e.to_string()))?;
    let file = format!(
        "---\nsource: scenarios/{scenario}.yaml\ndescription: normalised observations of scenario {scenario} on {mesh}\n---\n{}\n",
        rendered.trim_end()
    );
    let path = snapshot_path(dir, scenario, mesh);
    let pending = path.with_extension("snap.new");
    // Snapshots are the project's own files: the directory is a real one (not a link out of the
    // project), and each file is read and written only as a regular file, never through a link.
    let io = |path: &Path, source: std::io::Error| SnapshotError::Io { path: path.to_owned(), source };
    for d in [dir.parent(), Some(dir)].into_iter().flatten().filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::symlink_metadata(d) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(io(d, std::io::Error::other("not a directory of the project (a link or a file)"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(d, e)),
        }
    }
    let write = |target: &Path| {
        std::fs::create_dir_all(dir)
            .and_then(|()| crate::names::write_regular(target, file.as_bytes()))
            .map_err(|source| io(target, source))
    };
    if mode == SnapshotMode::Update {
        write(&path)?;
        let _ = std::fs::remove_file(&pending);
        return Ok(SnapshotOutcome::Updated { path });
    }
    let stored = match crate::names::read_regular_text(&path, MAX_SNAPSHOT_BYTES) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write(&pending)?;
            return Ok(SnapshotOutcome::New { pending });
        }
        Err(source) => return Err(SnapshotError::Io { path, source }),
    };
    let stored_contents = contents_of(&stored);
    if stored_contents.trim_end() == rendered.trim_end() {
        let _ = std::fs::remove_file(&pending);
        return Ok(SnapshotOutcome::Matched);
    }
    write(&pending)?;
    let diff = similar::TextDiff::from_lines(stored_contents.trim_end(), rendered.trim_end())
        .unified_diff()
        .context_radius(3)
        .header("stored", "observed")
        .to_string();
    Ok(SnapshotOutcome::Changed { pending, diff })
}

/// The snapshot body of an insta `.snap` file: everything after its metadata header.
fn contents_of(file: &str) -> &str {
    let normalised = file.strip_prefix("---\n");
    match normalised.and_then(|rest| rest.find("\n---\n").map(|i| &rest[i + 5..])) {
        Some(body) => body,
        None => file,
    }
}

/// IPv4 addresses (with an optional port) become `[ip]`.
fn ips(text: &str) -> String {
    fn flush(token: &mut String, out: &mut String) {
        if is_ipv4(token.split(':').next().unwrap_or_default()) {
            out.push_str("[ip]");
        } else {
            out.push_str(token);
        }
        token.clear();
    }
    let (mut out, mut token) = (String::with_capacity(text.len()), String::new());
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' || c == ':' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
}

pub(crate) fn replace_run(value: &mut Value, run: &str) {
    if run.is_empty() {
        return;
    }
    match value {
        Value::String(s) if s.contains(run) => *s = s.replace(run, "[run]"),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_run(v, run)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_run(v, run)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::probe::{Echo, Response, TransportKind};

    #[test]
    fn scenario_snapshots_are_new_matched_changed_or_updated() {
        use crate::model::Mesh;
        let dir = tempfile::tempdir().unwrap();
        let observed = serde_json::json!([{"status": 200, "version": "v1"}]);
        let check =
            |value: &Value, mode| check_scenario_snapshot(dir.path(), "demo", Mesh::Istio, value, mode).unwrap();
        // Nothing stored: written as new for review, not a failure, and no .snap is invented.
        let SnapshotOutcome::New { pending } = check(&observed, SnapshotMode::Compare) else { panic!() };
        assert!(pending.ends_with("demo__istio.snap.new") && pending.is_file());
        assert!(!snapshot_path(dir.path(), "demo", Mesh::Istio).exists());
        // Accepted (as `cargo insta review` would), the same observations match.
        std::fs::rename(&pending, snapshot_path(dir.path(), "demo", Mesh::Istio)).unwrap();
        assert_eq!(check(&observed, SnapshotMode::Compare), SnapshotOutcome::Matched);
        // A different answer fails with a diff and leaves the new version for review.
        let changed = serde_json::json!([{"status": 200, "version": "v2"}]);
        let SnapshotOutcome::Changed { pending, diff } = check(&changed, SnapshotMode::Compare) else { panic!() };
        assert!(diff.contains("-  version: v1") && diff.contains("+  version: v2"), "{diff}");
        assert!(pending.is_file());
        // --update-snapshots accepts it.
        assert!(matches!(check(&changed, SnapshotMode::Update), SnapshotOutcome::Updated { .. }));
        assert_eq!(check(&changed, SnapshotMode::Compare), SnapshotOutcome::Matched);
        assert!(!pending.exists());
    }

    /// A `.snap` that is a link is never read (its target never becomes the "diff"), a
    /// `.snap.new` that is a link is never written through, nor is a FIFO opened, and a
    /// snapshots directory that is a link is refused.
    #[test]
    fn snapshot_files_are_never_read_or_written_through_links() {
        use crate::model::Mesh;
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        let key = outside.path().join("id_rsa");
        std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n").unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let project = tempfile::tempdir().unwrap();
        let dir = project.path().join("snapshots");
        std::fs::create_dir(&dir).unwrap();
        let observed = serde_json::json!([{"status": 200}]);
        let check = |mode| check_scenario_snapshot(&dir, "demo", Mesh::Istio, &observed, mode);

        // A stored snapshot that is a link to a key: an error naming the file, no diff of the key.
        symlink(&key, snapshot_path(&dir, "demo", Mesh::Istio)).unwrap();
        let err = check(SnapshotMode::Compare).unwrap_err().to_string();
        assert!(err.contains("demo__istio.snap") && err.contains("symbolic link"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        // --update-snapshots does not write through it either.
        assert!(check(SnapshotMode::Update).unwrap_err().to_string().contains("symbolic link"));
        assert!(std::fs::read_to_string(&key).unwrap().contains("secret"));
        std::fs::remove_file(snapshot_path(&dir, "demo", Mesh::Istio)).unwrap();

        // A pending file that is a link is refused; its target keeps its content.
        let pending = dir.join("demo__istio.snap.new");
        symlink(&victim, &pending).unwrap();
        let err = check(SnapshotMode::Compare).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        std::fs::remove_file(&pending).unwrap();

        // A FIFO as the stored snapshot is not opened (the check returns instead of blocking).
        let fifo = snapshot_path(&dir, "demo", Mesh::Istio);
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(check(SnapshotMode::Compare).unwrap_err().to_string().contains("not a regular file"));
        std::fs::remove_file(&fifo).unwrap();

        // The snapshots directory itself as a link out of the project.
        let linked = project.path().join("linked");
        symlink(outside.path(), &linked).unwrap();
        let err = check_scenario_snapshot(&linked, "demo", Mesh::Istio, &observed, SnapshotMode::Update)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory of the project"), "{err}");
        assert!(!outside.path().join("demo__istio.snap").exists());
    }

    #[test]
    fn product_versions_are_redacted() {
        assert_eq!(product_versions("1.1 kong/3.9.1"), "1.1 kong/[version]");
        assert_eq!(product_versions("kong/3.9.1-enterprise"), "kong/[version]");
        assert_eq!(product_versions("istio-envoy"), "istio-envoy");
    }

    #[test]
    fn insta_written_snapshots_are_read_by_their_body() {
        let stored = "---\nsource: harness/src/snapshot.rs\ndescription: x\n---\n- status: 200\n";
        assert_eq!(contents_of(stored), "- status: 200\n");
    }

    #[test]
    fn pod_hashes_go_and_names_stay() {
        assert_eq!(pod_name("echo-v1-6d8f9c7b5-x2x9q"), "echo-v1-[hash]");
        assert_eq!(pod_name("zipkin-7c9d6b8f4-abcde"), "zipkin-[hash]");
        // Pods of Jobs and DaemonSets carry only the 5-character suffix.
        assert_eq!(pod_name("client-abcde"), "client-[hash]");
        assert_eq!(pod_name("client"), "client");
        assert_eq!(pod_name("kong-gateway-0"), "kong-gateway-0");
    }

    #[test]
    fn an_observation_snapshot_keeps_only_what_is_stable() {
        let h = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<String>> {
            pairs.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect()
        };
        let echo = Echo {
            path: "/hello".into(),
            host: "echo.ingress-basic-r1k2.svc.cluster.local".into(),
            method: "GET".into(),
            namespace: "ingress-basic-r1k2".into(),
            pod: "echo-v1-6d8f9c7b5-x2x9q".into(),
            headers: h(&[
                (
                    "x-forwarded-client-cert",
                    "By=spiffe://cluster.local/ns/ingress-basic-r1k2/sa/default;Hash=9f86d081884c7d65;Cert=\"-----BEGIN%20CERTIFICATE-----\";Subject=\"\";URI=spiffe://cluster.local/ns/kong/sa/kong-gateway",
                ),
                ("x-forwarded-for", "172.18.0.1"),
                ("x-kong-request-id", "0f3c2a9e1b7d"),
                ("x-custom-token", "hunter2"),
                ("via", "1.1 kong/3.9.1"),
                ("x-real-ip", "10.244.0.7"),
            ]),
            ..Echo::default()
        };
        let response = Response {
            status: 200,
            headers: h(&[
                ("date", "Thu, 26 Nov 2026 20:00:00 GMT"),
                ("x-kong-upstream-latency", "3"),
                ("server", "10.96.0.10:80 upstream"),
            ]),
            echo: Some(echo),
            version: Some("v1".into()),
            body: None,
        };
        let obs = Observation { outcome: Outcome::Response(Box::new(response)), elapsed_ms: 12 };
        insta::assert_yaml_snapshot!("observation", normalise(&obs, "r1k2", &["X-Custom-Token".to_owned()]));
        let refused = Observation {
            outcome: Outcome::Transport { kind: TransportKind::Reset, message: "127.0.0.1:3000 reset".into() },
            elapsed_ms: 1,
        };
        assert_eq!(normalise(&refused, "r1k2", &[]), serde_json::json!({"transport": "reset"}));
    }
}
