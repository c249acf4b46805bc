//! Where things live in a checkout of the project: scenarios, fixtures, versions.toml.

use std::path::{Path, PathBuf};

/// The project's files, rooted at the workspace directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    root: PathBuf,
    /// Not a kme2e project: a directory where commands that need none (`doctor`, `lint`,
    /// `replay`) run with the pins built into the binary. It has no scenarios.
    standalone: bool,
}

/// No project where one was looked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "no kme2e project at {start} or above it: a project is a directory holding versions.toml and \
     scenarios/ (run from inside one, or pass --project DIR)"
)]
pub struct NotAProject {
    pub start: PathBuf,
}

impl Project {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Project { root: root.into(), standalone: false }
    }

    /// `dir`, which is no kme2e project: no scenarios, no fixtures of its own; the versions are
    /// the ones built into the binary ([`crate::scenario::Catalog::built_in`]).
    pub fn standalone(dir: impl Into<PathBuf>) -> Self {
        Project { root: dir.into(), standalone: true }
    }

    /// Whether this is no kme2e project ([`Project::standalone`]).
    pub fn is_standalone(&self) -> bool {
        self.standalone
    }

    /// Whether `dir` is a project root: `versions.toml` and `scenarios/` side by side.
    pub fn is_root(dir: &Path) -> bool {
        dir.join("versions.toml").is_file() && dir.join("scenarios").is_dir()
    }

    /// The project containing `start`: `start` itself or its nearest ancestor that is a project
    /// root. The binary never falls back to the checkout it was built from: a copied checkout,
    /// or a team's own repository of scenarios, is the project it is run in.
    pub fn find(start: &Path) -> Result<Project, NotAProject> {
        start
            .ancestors()
            .find(|dir| Project::is_root(dir))
            .map(Project::at)
            .ok_or_else(|| NotAProject { start: start.to_owned() })
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
        if self.standalone {
            return Ok(Vec::new());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_is_found_from_inside_it_and_nowhere_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("team-repo");
        std::fs::create_dir_all(root.join("scenarios").join("deep")).unwrap();
        std::fs::write(root.join("versions.toml"), "").unwrap();
        assert_eq!(Project::find(&root.join("scenarios").join("deep")).unwrap().root(), root);
        assert_eq!(Project::find(&root).unwrap().root(), root);
        let err = Project::find(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no kme2e project") && err.contains("--project"), "{err}");
    }
}
