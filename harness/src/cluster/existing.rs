//! `existing`: a cluster the user already has, named by an explicit kubeconfig context.
//!
//! The user's kubeconfig is only read: the one context (with its cluster and user) is copied
//! into the run directory, and every tool the harness starts uses that copy. The cluster is
//! never deleted, and Helm releases the harness did not create are never upgraded: a run either
//! installs its own stack beside nothing of the user's, or (`--no-install`) uses what is there.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::config::Kubeconfig;

use super::{ClusterError, RunDir};

/// The label the harness puts on its Helm releases (`helm upgrade --labels`, stored on the
/// release Secret), so a later run can tell its own releases from the user's.
pub const RELEASE_LABEL: &str = "kme2e.dev/managed";

/// Where the user's kubeconfig is: `$KUBECONFIG` (first entry) or `~/.kube/config`.
pub fn user_kubeconfig() -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("KUBECONFIG") {
        return std::env::split_paths(&paths).find(|p| !p.as_os_str().is_empty());
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kube").join("config"))
}

/// Copy `context` out of `source` into the run's kubeconfig, with nothing else in it.
pub fn isolate_context(source: &Path, context: &str, run: &RunDir) -> Result<(), ClusterError> {
    let config = Kubeconfig::read_from(source)
        .map_err(|e| ClusterError::Kubeconfig { path: source.to_owned(), reason: e.to_string() })?;
    let known: Vec<String> = config.contexts.iter().map(|c| c.name.clone()).collect();
    let named = config.contexts.iter().find(|c| c.name == context).ok_or_else(|| ClusterError::NoSuchContext {
        context: context.to_owned(),
        path: source.to_owned(),
        known: known.join(", "),
    })?;
    let ctx = named.context.clone().unwrap_or_default();
    let only = Kubeconfig {
        current_context: Some(context.to_owned()),
        contexts: vec![named.clone()],
        clusters: config.clusters.iter().filter(|c| c.name == ctx.cluster).cloned().collect(),
        auth_infos: config.auth_infos.iter().filter(|u| Some(&u.name) == ctx.user.as_ref()).cloned().collect(),
        api_version: config.api_version.clone(),
        kind: config.kind.clone(),
        ..Kubeconfig::default()
    };
    let text = serde_json::to_string_pretty(&only)
        .map_err(|e| ClusterError::Kubeconfig { path: source.to_owned(), reason: e.to_string() })?;
    write_private(&run.kubeconfig(), &text)
}

/// Write a file only its owner can read (kubeconfigs and keys hold credentials). The content
/// goes into a new file created with mode 0600 (tempfile's default on Unix) beside the target,
/// then renamed over it: it is never readable by others, not even for a moment, and an
/// existing file with wider permissions is replaced rather than written into.
pub fn write_private(path: &Path, text: &str) -> Result<(), ClusterError> {
    use std::io::Write;
    let io = |source| ClusterError::Io { path: path.to_owned(), source };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".private-").tempfile_in(dir).map_err(io)?;
    file.write_all(text.as_bytes()).and_then(|()| file.flush()).map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// A Helm release as `(namespace, name)`.
pub type ReleaseRef = (String, String);

/// Refuse when any of `releases` exists without the harness's label: a release the harness did
/// not create is never upgraded (its values would be replaced by the harness's). Returns the
/// releases that exist and will be upgraded (the harness's own, from an earlier run).
pub async fn check_releases(client: &kube::Client, releases: &[ReleaseRef]) -> Result<Vec<ReleaseRef>, ClusterError> {
    let mut existing = Vec::new();
    let mut foreign = Vec::new();
    for (namespace, name) in releases {
        // Helm's secret driver stores each revision as a Secret labelled owner=helm,name=<release>.
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let found =
            secrets.list_metadata(&ListParams::default().labels(&format!("owner=helm,name={name}"))).await.map_err(
                |e| ClusterError::Api { doing: format!("listing Helm releases in {namespace}"), reason: e.to_string() },
            )?;
        if found.items.is_empty() {
            continue;
        }
        let ours = found
            .items
            .iter()
            .all(|s| s.metadata.labels.as_ref().and_then(|l| l.get(RELEASE_LABEL)).is_some_and(|v| v == "true"));
        existing.push((namespace.clone(), name.clone()));
        if !ours {
            foreign.push(format!("{namespace}/{name}"));
        }
    }
    if !foreign.is_empty() {
        return Err(ClusterError::ForeignReleases { releases: foreign });
    }
    Ok(existing)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::kube_mock;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: prod
contexts:
- name: prod
  context: {cluster: prod, user: admin}
- name: dev
  context: {cluster: dev, user: dev-user}
clusters:
- name: prod
  cluster: {server: "https://prod.example:6443"}
- name: dev
  cluster: {server: "https://dev.example:6443"}
users:
- name: admin
  user: {token: prod-secret}
- name: dev-user
  user: {token: dev-token}
"#;

    /// Credentials are never on disk with wider permissions than 0600, and an existing file with
    /// wider ones is replaced, not written into.
    #[cfg(unix)]
    #[test]
    fn private_files_are_created_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, "secret").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "secret");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["kubeconfig"], "no temporary file stays behind");
    }

    #[test]
    fn only_the_named_context_is_copied_and_the_source_is_untouched() {
        let home = tempfile::tempdir().unwrap();
        let source = home.path().join("config");
        std::fs::write(&source, KUBECONFIG).unwrap();
        let run = RunDir::create(&home.path().join("e2e"), "r1").unwrap();
        isolate_context(&source, "dev", &run).unwrap();
        let copied = std::fs::read_to_string(run.kubeconfig()).unwrap();
        assert!(copied.contains("dev.example") && copied.contains("dev-token"), "{copied}");
        assert!(!copied.contains("prod"), "nothing of another context: {copied}");
        assert_eq!(std::fs::read_to_string(&source).unwrap(), KUBECONFIG);
        let err = isolate_context(&source, "staging", &run).unwrap_err().to_string();
        assert!(err.contains("no context `staging`") && err.contains("known: prod, dev"), "{err}");
    }

    fn release_secret(labels: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sh.helm.release.v1.kong.v1", "namespace": "kong", "labels": labels}})
    }

    #[tokio::test]
    async fn foreign_releases_are_refused_and_never_upgraded() {
        let (client, asked) = kube_mock(|req| {
            if req.path == "/api/v1/namespaces/kong/secrets" {
                let items = vec![release_secret(json!({"owner": "helm", "name": "kong"}))];
                (200, json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": items}))
            } else {
                (200, json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": []}))
            }
        });
        let releases = vec![("kong".to_owned(), "kong".to_owned()), ("istio-system".to_owned(), "istiod".to_owned())];
        let err = check_releases(&client, &releases).await.unwrap_err().to_string();
        assert!(err.contains("kong/kong") && err.contains("never upgrades") && err.contains("--no-install"), "{err}");
        assert!(!err.contains("istiod"), "{err}");
        let asked = asked.lock().unwrap();
        assert!(asked[0].query.contains("labelSelector=owner%3Dhelm%2Cname%3Dkong"), "{:?}", asked[0]);
    }

    #[tokio::test]
    async fn the_harness_recognises_its_own_releases() {
        let (client, _) = kube_mock(|_| {
            let items = vec![release_secret(json!({"owner": "helm", "name": "kong", RELEASE_LABEL: "true"}))];
            (200, json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": items}))
        });
        let releases = vec![("kong".to_owned(), "kong".to_owned())];
        assert_eq!(check_releases(&client, &releases).await.unwrap(), releases);
    }
}
