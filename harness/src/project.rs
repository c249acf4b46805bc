//! Where things live in a checkout of the project: scenarios, fixtures, versions.toml.

use std::path::{Path, PathBuf};

/// The project's files, rooted at the workspace directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    root: PathBuf,
}

impl Project {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Project { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn scenarios_dir(&self) -> PathBuf {
        self.root.join("scenarios")
    }

    /// Stored snapshots of live runs, `scenarios/snapshots/<scenario>__<mesh>.snap`.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.scenarios_dir().join("snapshots")
    }

    pub fn fixtures_dir(&self) -> PathBuf {
        self.root.join("fixtures")
    }

    pub fn versions_file(&self) -> PathBuf {
        self.root.join("versions.toml")
    }

    /// Per-run state: `target/e2e/<run-id>/`.
    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.root.join("target").join("e2e").join(run)
    }

    /// Every scenario file (`scenarios/*.yaml`), sorted so listings and plans are stable.
    pub fn scenario_files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.scenarios_dir())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        Ok(files)
    }

    /// A path relative to the project root when it is inside it, for stable messages and snapshots.
    pub fn display_path<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}
