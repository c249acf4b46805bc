//! Static checks before any cluster exists. Today: every scenario file loads, its templates
//! resolve and its fixtures exist and render, for each mesh it declares.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Position, Severity};
use crate::scenario::{Catalog, CheckError};

/// The findings of one lint run.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Diagnostic>,
    /// Some input could not be read at all (exit code 2).
    pub unreadable: bool,
}

impl Outcome {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|d| d.severity == Severity::Error).count()
    }

    /// 0 clean, 1 findings with errors, 2 unreadable input.
    pub fn exit_code(&self) -> u8 {
        if self.unreadable {
            2
        } else if self.errors() > 0 {
            1
        } else {
            0
        }
    }
}

/// Lint `paths` (scenario files or directories of them); no paths means every scenario.
pub fn run(catalog: &Catalog, paths: &[PathBuf]) -> Outcome {
    let mut outcome = Outcome::default();
    let files = match expand(catalog, paths) {
        Ok(files) => files,
        Err(d) => {
            outcome.unreadable = true;
            outcome.findings.push(*d);
            return outcome;
        }
    };
    for file in files {
        if let Err(e) = catalog.check(&file, "offline") {
            let d = match e {
                CheckError::Load(e) => *e.0,
                other => Diagnostic::error("config", &file, Position::WHOLE_FILE, other.to_string()),
            };
            outcome.unreadable |= d.code == "read";
            outcome.findings.push(d);
        }
    }
    for d in &mut outcome.findings {
        d.file = catalog.project.display_path(&d.file).to_owned();
    }
    outcome
}

fn expand(catalog: &Catalog, paths: &[PathBuf]) -> Result<Vec<PathBuf>, Box<Diagnostic>> {
    if paths.is_empty() {
        return catalog.files().map_err(|e| {
            Box::new(Diagnostic::error("read", &catalog.project.scenarios_dir(), Position::WHOLE_FILE, e.to_string()))
        });
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| unreadable(path, &e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(unreadable(path, &std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
    }
    Ok(files)
}

fn unreadable(path: &Path, e: &std::io::Error) -> Box<Diagnostic> {
    Box::new(Diagnostic::error("read", path, Position::WHOLE_FILE, format!("cannot read: {e}")))
}
