//! The Kong x service-mesh e2e harness, as a library. See ARCHITECTURE.md for the map.
//!
//! A run flows one way: profile -> (cluster -> stack) -> scenarios -> probes/checks -> report.
//! Modules are named after the stage they own.

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
