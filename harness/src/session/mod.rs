//! One live run end to end: tools -> cluster -> stack -> scenarios -> reports -> teardown.
//!
//! [`run`] is the entry point the CLI calls (after [`prepare`] made and linted the plan); its
//! parts are public for `up` and the tests: [`environment`] resolves the pinned tools, creates
//! (or reuses, or finds) the cluster, installs or discovers the stack and tears it down;
//! [`scenarios`] runs the plan's scenarios with retries, snapshots and mutants; [`evidence`]
//! collects what a failure leaves; [`reports`] shapes the report's header (versions, rerun line).
//! Commands, downloads, Docker, Kong's proxy and the API server are reached through the [`World`]
//! seam, so the whole run is tested without Docker.
//!
//! Architecture invariant: nothing here parses arguments; besides progress it prints only lint
//! warnings and what discovery found. The CLI renders [`RunOutcome`] and returns its exit code.

use std::path::PathBuf;

use crate::cluster::{self, Access, Keep, Provider, RunDir, State};
use crate::command::Process;
use crate::stack::install::StackError;
use crate::tools::ToolError;

/// Which cluster provider a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderChoice {
    #[default]
    Kind,
    K3s,
    Existing,
}

/// What the user chose on the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub provider: ProviderChoice,
    /// The kubeconfig context of the `existing` provider.
    pub context: Option<String>,
    /// `existing` only: install nothing; use the Kong and mesh the cluster runs (discovered).
    pub no_install: bool,
    /// Where to look for Kong with `no_install` (default: every namespace).
    pub kong_namespace: Option<String>,
    /// Pick up a kept cluster with the same fingerprint instead of creating one.
    pub reuse: bool,
    pub keep: Keep,
    /// Kong's proxy URL on an `existing` cluster (it has no port mapping the harness controls).
    pub proxy: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    #[error("installing the stack failed: {0}")]
    Stack(#[from] StackError),
    #[error("cannot use the run's kubeconfig {path}: {reason}")]
    Client { path: PathBuf, reason: String },
    #[error("{0}")]
    Options(String),
    #[error("discovering what the cluster runs: {0}")]
    Discovery(cluster::discover::DiscoveryError),
    #[error("cannot create the run directory {path}: {source}")]
    RunDir { path: PathBuf, source: std::io::Error },
}

/// A cluster with the stack installed, ready for scenarios; `R` runs its commands (kind,
/// helm).
pub struct Environment<R = Process> {
    pub run: RunDir,
    pub state: State,
    pub provider: Provider<R>,
    pub access: Access,
    pub client: kube::Client,
    /// The verified helm binary.
    pub helm: PathBuf,
    /// A kept cluster picked up by `--reuse` (same fingerprint): only the readiness gates run.
    pub reused: bool,
    /// Runs helm for the evidence of a failed run (the values in force).
    pub runner: R,
}

mod bundle;
pub mod environment;
pub mod evidence;
pub mod reports;
mod run;
pub mod scenarios;
#[cfg(test)]
mod tests;
mod upgrade;
mod world;

pub use bundle::{BundleTrust, bundle_request, refuse_own_cluster};
pub use environment::*;
pub use evidence::*;
pub use reports::*;
pub use run::*;
pub use scenarios::*;
pub use world::{RealWorld, World};
