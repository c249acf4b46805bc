//! `cargo xtask bench build`: what a newcomer waits for before the first answer. It compiles,
//! in a target directory of its own that starts empty, what the README's two commands compile
//! (`cargo xtask ...` builds the xtask binary; `cargo test --workspace` then builds the tests)
//! and reports the wall time of each and the size of the target directory after it.
//!
//! Crates must already be downloaded (`cargo fetch`): downloads depend on the network, not on
//! this project, and are not counted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// One README command, as the compile it triggers.
struct Step {
    command: &'static str,
    cargo_args: &'static [&'static str],
}

const STEPS: [Step; 2] = [
    Step { command: "cargo xtask (first build)", cargo_args: &["build", "--locked", "-p", "kme2e"] },
    Step { command: "cargo test --workspace (after it)", cargo_args: &["test", "--locked", "--workspace", "--no-run"] },
];

#[derive(Debug, serde::Serialize)]
pub struct Measured {
    pub command: &'static str,
    pub seconds: f64,
    pub target_bytes: u64,
}

/// A clean compile on a slow machine takes minutes; an hour means something hangs.
const BUILD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Compile each step in `target_dir` (which must be empty or absent), in order.
pub async fn measure(root: &Path, target_dir: &Path) -> Result<Vec<Measured>> {
    use harness::command::{Invocation, Runner};
    if target_dir.exists() && std::fs::read_dir(target_dir)?.next().is_some() {
        bail!("{} is not empty: a clean build needs an empty target directory", target_dir.display());
    }
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let manifest = root.join("Cargo.toml").display().to_string();
    let mut measured = Vec::new();
    for step in &STEPS {
        harness::say_err!("compiling: {} ...", step.command);
        let args = step.cargo_args.iter().map(|a| (*a).to_owned()).chain([
            "--quiet".into(),
            "--manifest-path".into(),
            manifest.clone(),
        ]);
        let mut build = Invocation::new(&cargo, args, BUILD_DEADLINE);
        build.env.push(("CARGO_TARGET_DIR".into(), target_dir.display().to_string()));
        let started = Instant::now();
        harness::command::Process
            .run(&build)
            .await
            .with_context(|| format!("the compile behind `{}` failed", step.command))?;
        let seconds = started.elapsed().as_secs_f64();
        measured.push(Measured { command: step.command, seconds, target_bytes: size_of_tree(target_dir) });
    }
    Ok(measured)
}

/// Bytes of the regular files under `dir` (links not followed).
fn size_of_tree(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(entry.path()),
                Ok(t) if t.is_file() => total += entry.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

pub fn table(measured: &[Measured]) -> String {
    let mut out = format!("{:<36} {:>9} {:>12}\n", "command", "seconds", "target/ (GB)");
    for m in measured {
        out.push_str(&format!("{:<36} {:>9.0} {:>12.2}\n", m.command, m.seconds, m.target_bytes as f64 / 1e9));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_sizes_count_files_below_and_a_non_empty_target_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/one"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("a/b/two"), [0u8; 5]).unwrap();
        assert_eq!(size_of_tree(dir.path()), 15);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let err = runtime.block_on(measure(dir.path(), dir.path())).unwrap_err();
        assert!(err.to_string().contains("is not empty"), "{err}");
    }

    #[test]
    fn the_table_shows_seconds_and_gigabytes() {
        let rows = [Measured { command: "cargo xtask (first build)", seconds: 141.6, target_bytes: 1_800_000_000 }];
        insta::assert_snapshot!(table(&rows), @r"
        command                                seconds target/ (GB)
        cargo xtask (first build)                  142         1.80
        ");
    }
}
