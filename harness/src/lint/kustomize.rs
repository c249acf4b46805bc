//! Kustomize directories in a lint. Their files are bases and patches, not objects as applied,
//! so lint reads what `kubectl kustomize DIR` builds from them, when `kubectl` is on `PATH` and
//! the build fetches nothing: a kustomization that names a remote base (a URL or a git
//! repository) is not built, since a pull request could then make CI fetch from anywhere.
//! Otherwise a note says how to lint it by hand (`kubectl kustomize DIR | kme2e lint -`).
//!
//! The build runs with a deadline, its output is bounded, and neither Helm charts nor exec
//! functions are enabled (kubectl's defaults: `--enable-helm` and `--enable-alpha-plugins` off).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The names kustomize reads a kustomization from.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// How long one build may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// The largest build output read: rendered manifests with CRDs run to megabytes.
pub const MAX_OUTPUT_BYTES: u64 = 64 << 20;

/// How deep local bases are followed when looking for remote ones.
const MAX_BASE_DEPTH: usize = 16;

/// The kustomization file of `dir`, if it is a kustomize directory.
pub fn kustomization_in(dir: &Path) -> Option<PathBuf> {
    FILE_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// `kubectl kustomize dir`'s output, or why it was not built (a sentence for a note).
pub fn build(dir: &Path, search_path: Option<&std::ffi::OsStr>) -> Result<String, String> {
    let how = format!("lint its build by hand: `kubectl kustomize {} | kme2e lint -`", dir.display());
    if let Some(remote) = remote_reference(dir) {
        return Err(format!("not built: it names the remote base `{remote}`, which a build fetches; {how}"));
    }
    let Some(kubectl) = crate::preflight::find_on_path("kubectl", search_path) else {
        return Err(format!("not built: no `kubectl` on PATH; {how}"));
    };
    run(&kubectl, dir).map_err(|why| format!("not built: {why}; {how}"))
}

fn run(kubectl: &Path, dir: &Path) -> Result<String, String> {
    let mut child = std::process::Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", kubectl.display()))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        return Err("kubectl's output could not be read".into());
    };
    let out = std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut bytes = Vec::new();
        (&mut stdout).take(MAX_OUTPUT_BYTES + 1).read_to_end(&mut bytes)?;
        // The rest is drained, not kept: kubectl must not block on a full pipe (an oversized
        // build is said as such, not as a timeout).
        std::io::copy(&mut stdout, &mut std::io::sink())?;
        Ok::<_, std::io::Error>(bytes)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.take(16 * 1024).read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`kubectl kustomize` did not finish within {}s", DEADLINE.as_secs()));
            }
            Err(e) => return Err(format!("waiting for kubectl: {e}")),
        }
    };
    let bytes = out.join().map_err(|_| "reading kubectl's output failed".to_owned())?.map_err(|e| e.to_string())?;
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        // kubectl's error spans lines (`error: ...`, then the cause); deprecation warnings are not it.
        let said: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("# Warning") && !l.to_ascii_lowercase().starts_with("warning"))
            .take(4)
            .collect();
        let said = if said.is_empty() { "no message".to_owned() } else { said.join(" ") };
        let said: String = said.chars().take(400).collect();
        return Err(format!("`kubectl kustomize` failed: {}", crate::names::printable(&said)));
    }
    if bytes.len() as u64 > MAX_OUTPUT_BYTES {
        return Err(format!("the build is larger than {} MiB", MAX_OUTPUT_BYTES >> 20));
    }
    String::from_utf8(bytes).map_err(|_| "the build is not UTF-8 text".to_owned())
}

/// Keys of a kustomization whose values kustomize never loads (labels, annotations, names,
/// image names, literal values): a URL there fetches nothing.
const INERT_KEYS: [&str; 12] = [
    // An inline patch is text applied, not a file loaded.
    "patch",
    "commonAnnotations",
    "commonLabels",
    "labels",
    "images",
    "replicas",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "buildMetadata",
    "literals",
    "metadata",
];

/// Why a build of `dir` could fetch from the network, if it could: a value that names a remote
/// resource anywhere kustomize loads files from (resources, components, patches, generators'
/// files, transformers, CRDs, openapi, ...), following every local directory named. It fails
/// closed: a kustomization it cannot read or parse, or a chain of bases deeper than it follows,
/// counts as remote.
fn remote_reference(dir: &Path) -> Option<String> {
    let mut visited = std::collections::BTreeSet::new();
    let mut pending = vec![(dir.to_owned(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(canonical) = dir.canonicalize() else { continue };
        if !visited.insert(canonical) {
            continue;
        }
        if depth > MAX_BASE_DEPTH {
            return Some(format!("bases deeper than {MAX_BASE_DEPTH} kustomizations"));
        }
        let Some(file) = kustomization_in(&dir) else { continue };
        let unreadable =
            || Some(format!("{} (not readable as YAML here)", crate::names::printable(&file.display().to_string())));
        let Ok(text) = crate::yaml::read_text(&file) else { return unreadable() };
        let Ok(doc) = crate::yaml::from_str::<serde_json::Value>(&text) else { return unreadable() };
        let mut strings = Vec::new();
        loaded_strings(&doc, &mut strings);
        for entry in strings {
            if is_remote(entry) {
                return Some(crate::names::printable(entry));
            }
            let local = dir.join(entry);
            if local.is_dir() {
                pending.push((local, depth + 1));
            }
        }
    }
    None
}

/// Every string of a kustomization outside [`INERT_KEYS`].
fn loaded_strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        // A string of several lines is inline content (a strategic-merge patch), not a path.
        serde_json::Value::String(s) if !s.contains('\n') => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| loaded_strings(v, out)),
        serde_json::Value::Object(map) => {
            map.iter().filter(|(k, _)| !INERT_KEYS.contains(&k.as_str())).for_each(|(_, v)| loaded_strings(v, out));
        }
        _ => {}
    }
}

/// A reference kustomize fetches rather than reads: a URL, or a git repository in any of the
/// forms its host parser accepts, case-insensitively (`git::`, `git@`, `ssh:`, `github.com/`
/// or `github.com:`, other hosts with `//` before a path, `?ref=` and the like).
fn is_remote(entry: &str) -> bool {
    let e = entry.trim().to_ascii_lowercase();
    let host_forms = ["git::", "git@", "ssh:", "github.com", "gitlab.com", "bitbucket.org", "dev.azure.com"];
    e.contains("://")
        || host_forms.iter().any(|h| e.starts_with(h))
        || ["?ref=", "?version=", "?timeout=", "?submodules=", ".git//", ".git?"].iter().any(|m| e.contains(m))
        // `host/org/repo//path`: a double slash after the first segment names a repository.
        || e.trim_start_matches('/').contains("//")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        dir
    }

    /// Remote bases are found through local overlays and components, in kustomize's forms.
    #[test]
    fn remote_bases_are_found_through_local_ones() {
        for remote in [
            "https://github.com/kubernetes-sigs/kustomize//examples/multibases?ref=v3.3.1",
            "github.com/Kong/charts//charts?ref=main",
            "git@github.com:org/repo.git//base",
            "github.com:org/repo//p",
            "GitHub.com/org/repo//p",
            "git::git@github.com:org/repo//p",
            "example.com/org/repo//deploy",
        ] {
            let dir = tree(&[
                ("overlays/prod/kustomization.yaml", "resources: [../../base]\n"),
                ("base/kustomization.yaml", &format!("resources:\n- app.yaml\ncomponents:\n- {remote}\n")),
                ("base/app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"),
            ]);
            let found = remote_reference(&dir.path().join("overlays/prod"));
            assert_eq!(found.as_deref(), Some(remote), "{remote}");
        }
        let local = tree(&[
            ("overlays/prod/kustomization.yaml", "resources: [../../base, extra.yaml]\n"),
            ("base/kustomization.yaml", "resources: [app.yaml]\n"),
        ]);
        assert_eq!(remote_reference(&local.path().join("overlays/prod")), None);
        // Any field kustomize loads from, not only resources.
        for loaded in [
            "patches:\n- path: https://example.invalid/p.yaml\n",
            "patchesStrategicMerge:\n- https://example.invalid/p.yaml\n",
            "crds:\n- https://example.invalid/crd.yaml\n",
            "configMapGenerator:\n- name: c\n  files: [https://example.invalid/f]\n",
            "transformers:\n- https://example.invalid/t.yaml\n",
        ] {
            let dir = tree(&[("kustomization.yaml", loaded)]);
            assert!(remote_reference(dir.path()).is_some_and(|r| r.contains("example.invalid")), "{loaded}");
        }
        // Inline patches are applied, not fetched, whatever URLs their values hold.
        let inline = tree(&[(
            "kustomization.yaml",
            "resources: [app.yaml]\npatches:\n- target: {kind: ConfigMap}\n  patch: |-\n    - op: add\n      \
             path: /data/url\n      value: http://orders.shop.svc.cluster.local\n\
             patchesStrategicMerge:\n- |-\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n  \
             data: {url: \"https://example.com\"}\n",
        )]);
        assert_eq!(remote_reference(inline.path()), None);
        // Labels and literals fetch nothing.
        let inert = tree(&[(
            "kustomization.yaml",
            "resources: [app.yaml]\ncommonAnnotations: {docs: https://example.com/runbook}\n\
             configMapGenerator:\n- name: c\n  literals: [url=https://example.com]\n",
        )]);
        assert_eq!(remote_reference(inert.path()), None);
        // What cannot be read counts as remote (fail closed): a file over the bound, a parse error.
        let big = tree(&[("kustomization.yaml", &format!("resources: [app.yaml]\n# {}\n", "x".repeat(2 << 20)))]);
        assert!(remote_reference(big.path()).is_some());
        let broken = tree(&[("kustomization.yaml", "resources: [app.yaml\n")]);
        assert!(remote_reference(broken.path()).is_some());
        // A chain deeper than followed counts as remote.
        let mut files: Vec<(String, String)> = (0..=MAX_BASE_DEPTH + 1)
            .map(|i| (format!("b{i}/kustomization.yaml"), format!("resources: [../b{}]\n", i + 1)))
            .collect();
        files.push((
            format!("b{}/kustomization.yaml", MAX_BASE_DEPTH + 2),
            "resources: [https://example.invalid/x]\n".into(),
        ));
        let deep = tree(&files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>());
        assert!(remote_reference(&deep.path().join("b0")).is_some());
        // A key given twice (kustomize reads the last) hides no remote base.
        let twice = tree(&[("kustomization.yaml", "resources: [app.yaml]\nresources: [https://example.invalid/x]\n")]);
        assert!(remote_reference(twice.path()).is_some());
        // A loop of bases ends.
        let looped =
            tree(&[("a/kustomization.yaml", "resources: [../b]\n"), ("b/kustomization.yaml", "resources: [../a]\n")]);
        assert_eq!(remote_reference(&looped.path().join("a")), None);
    }

    /// Without kubectl, or with a remote base, nothing runs and the note says how.
    #[test]
    fn what_is_not_built_says_how() {
        let dir = tree(&[("kustomization.yaml", "resources: [app.yaml]\n")]);
        let nowhere = std::ffi::OsString::from("/nonexistent-kme2e-path");
        let why = build(dir.path(), Some(&nowhere)).unwrap_err();
        assert!(why.contains("no `kubectl` on PATH") && why.contains("| kme2e lint -"), "{why}");
        let remote = tree(&[("kustomization.yaml", "resources: [https://example.com/all.yaml]\n")]);
        let why = build(remote.path(), std::env::var_os("PATH").as_deref()).unwrap_err();
        assert!(why.contains("remote base `https://example.com/all.yaml`"), "{why}");
    }
}
