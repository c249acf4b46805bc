//! The run directory `target/e2e/<run>/` and the state file in it.
//!
//! The state file is rewritten at every transition (creating, ready, tearing down, removed,
//! kept), so a crash or a second Ctrl-C leaves a record of what exists; `down` reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where one run keeps its kubeconfig, state, logs and artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub run: String,
    pub path: PathBuf,
}

impl RunDir {
    /// Create `<root>/<run>/` with `logs/` and `artifacts/`.
    /// Fails when the directory exists: two runs never share one (`create_dir` is atomic).
    pub fn create(root: &Path, run: &str) -> std::io::Result<RunDir> {
        crate::names::dns1123_label(run).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let path = root.join(run);
        std::fs::create_dir_all(root)?;
        std::fs::create_dir(&path)?;
        std::fs::create_dir_all(path.join("logs"))?;
        std::fs::create_dir_all(path.join("artifacts"))?;
        Ok(RunDir { run: run.to_owned(), path })
    }

    /// The run's own kubeconfig: every tool the harness starts is pointed here, never at `~/.kube/config`.
    pub fn kubeconfig(&self) -> PathBuf {
        self.path.join("kubeconfig")
    }

    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }

    pub fn logs(&self) -> PathBuf {
        self.path.join("logs")
    }

    pub fn artifacts(&self) -> PathBuf {
        self.path.join("artifacts")
    }

    pub fn write_state(&self, state: &State) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
        // Write then rename, so a reader never sees half a file.
        let tmp = self.path.join(".state.json.tmp");
        std::fs::write(&tmp, json + "\n")?;
        std::fs::rename(tmp, self.state_file())
    }

    pub fn read_state(&self) -> std::io::Result<State> {
        let text = std::fs::read_to_string(self.state_file())?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }
}

/// Every run directory under `root` with a readable state file, newest first.
pub fn runs(root: &Path) -> Vec<(RunDir, State)> {
    let mut found: Vec<(RunDir, State)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let run = e.file_name().to_str()?.to_owned();
            let dir = RunDir { run, path: e.path() };
            let state = dir.read_state().ok()?;
            Some((dir, state))
        })
        .collect();
    found.sort_by_key(|(_, state)| std::cmp::Reverse(state.updated));
    found
}

/// Where a run's cluster stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Creating,
    Ready,
    TearingDown,
    /// Deleted by the harness.
    Removed,
    /// Left up on purpose (`--keep`, `--keep-on-failure`, or the `existing` provider).
    Kept,
    /// Teardown failed or was cut short: `leftovers` says what may still exist.
    Leftover,
}

/// The state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub run: String,
    /// `kind`, `k3s` or `existing`.
    pub provider: String,
    /// The kind cluster name, the k3s container id, or the kubeconfig context.
    pub cluster: String,
    pub mesh: String,
    pub profile: String,
    /// What `--reuse` compares: provider, versions and rendered values.
    pub fingerprint: String,
    pub phase: Phase,
    /// Kong's proxy on the host, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// What teardown could not remove, said so the next `down` finds it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leftovers: Vec<String>,
    /// Seconds since the Unix epoch of the last write.
    pub updated: u64,
}

impl State {
    pub fn touch(&mut self) {
        self.updated =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_is_listed_newest_first() {
        let root = tempfile::tempdir().unwrap();
        let mut older = State {
            run: "r1".into(),
            provider: "kind".into(),
            cluster: "kme2e-istio-r1".into(),
            mesh: "istio".into(),
            profile: "istio".into(),
            fingerprint: "abc".into(),
            phase: Phase::Ready,
            proxy: Some("http://127.0.0.1:40000".into()),
            leftovers: vec![],
            updated: 10,
        };
        let a = RunDir::create(root.path(), "r1").unwrap();
        a.write_state(&older).unwrap();
        assert_eq!(a.read_state().unwrap(), older);
        older.run = "r2".into();
        older.updated = 20;
        let b = RunDir::create(root.path(), "r2").unwrap();
        b.write_state(&older).unwrap();
        std::fs::create_dir(root.path().join("not-a-run")).unwrap();
        let listed: Vec<String> = runs(root.path()).into_iter().map(|(d, _)| d.run).collect();
        assert_eq!(listed, ["r2", "r1"]);
        assert!(a.path.join("logs").is_dir() && a.path.join("artifacts").is_dir());
        let again = RunDir::create(root.path(), "r1").unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists, "two runs never share a directory");
        assert_eq!(RunDir::create(root.path(), "../x").unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    }
}
