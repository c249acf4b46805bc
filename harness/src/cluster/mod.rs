//! Clusters: where a run's environment lives, how it is created, kept, found again and removed.
//!
//! Three providers: `kind` (default), `k3s` (testcontainers) and `existing` (a kubeconfig
//! context). Whatever the provider, the run talks to the cluster through the kubeconfig in its
//! run directory. Teardown is bounded in time and always leaves the state file saying what is
//! left, so an interrupted run can be cleaned up by `down` later.

pub mod discover;
pub mod existing;
pub mod k3s;
pub mod kind;
pub mod state;

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::command::{CommandError, Runner};
pub use kind::{HostPorts, Kind, KindCluster};
pub use state::{Phase, RunDir, State};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot read the kubeconfig {path}: {reason}")]
    Kubeconfig { path: PathBuf, reason: String },
    #[error("no context `{context}` in {path}; known: {known}")]
    NoSuchContext { context: String, path: PathBuf, known: String },
    #[error("the `existing` provider needs `--context NAME`: the harness never guesses which cluster to install into")]
    NoContext,
    #[error(
        "Helm release(s) {} exist and were not installed by this harness; the harness never upgrades them \
         (their values would be replaced). To test what runs there, pass `--no-install`: Kong and the mesh are \
         then discovered and used as they are",
        releases.join(", ")
    )]
    ForeignReleases { releases: Vec<String> },
    #[error("{doing}: {reason}")]
    Api { doing: String, reason: String },
    #[error("cannot pull {image}: {reason}")]
    Pull { image: String, reason: String },
    #[error("{provider}: {reason}")]
    Provider { provider: &'static str, reason: String },
    #[error("interrupted")]
    Interrupted,
    /// Cancelled (Ctrl-C or the budget) in the middle of something worth naming.
    #[error("stopped while {doing}")]
    Stopped { doing: String },
}

/// How long teardown may take in all (diagnostics, then deletion) before the harness gives up
/// and records what is left.
pub const TEARDOWN_BOUND: Duration = Duration::from_secs(180);
/// The share of the bound diagnostics may use when a run is interrupted.
pub const DIAGNOSTICS_BOUND: Duration = Duration::from_secs(60);

/// What a run reaches the cluster with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub kubeconfig: PathBuf,
    /// Kong's proxy from the host, e.g. `http://127.0.0.1:40123`.
    pub proxy: String,
}

/// NodePorts of Kong's proxy Service; the kind config maps host ports to them. Both sit in the
/// static band of the default range (30000-30085: band = min(max(16, 2768/32), 128) ports,
/// Kubernetes KEP-3668 ServiceNodePortStaticSubrange, GA in 1.29), which random allocations
/// use last, so another Service's random NodePort cannot take them first.
pub const PROXY_HTTP_NODE_PORT: u16 = 30080;
pub const PROXY_TLS_NODE_PORT: u16 = 30081;

/// A cluster provider, chosen per run.
pub enum Provider<R> {
    Kind { kind: Kind<R>, cluster: KindCluster },
    K3s { image: String, ports: HostPorts, running: Box<tokio::sync::Mutex<Option<k3s::K3sCluster>>> },
    Existing { context: String, source: PathBuf, proxy: String },
}

impl<R: Runner> Provider<R> {
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Kind { .. } => "kind",
            Provider::K3s { .. } => "k3s",
            Provider::Existing { .. } => "existing",
        }
    }

    /// The kind cluster's name, the k3s container's id (its image before it runs), or the context.
    pub fn cluster(&self) -> String {
        match self {
            Provider::Kind { cluster, .. } => cluster.name.clone(),
            Provider::K3s { image, running, .. } => running
                .try_lock()
                .ok()
                .and_then(|k| k.as_ref().map(|k| k.id().to_owned()))
                .unwrap_or_else(|| image.clone()),
            Provider::Existing { context, .. } => context.clone(),
        }
    }

    /// Whether teardown deletes the cluster (never for `existing`).
    pub fn owns_cluster(&self) -> bool {
        !matches!(self, Provider::Existing { .. })
    }

    pub async fn create(&self, run: &RunDir) -> Result<Access, ClusterError> {
        let proxy = match self {
            Provider::Kind { kind, cluster } => {
                kind.create(cluster, run).await?;
                format!("http://127.0.0.1:{}", cluster.ports.http)
            }
            Provider::K3s { image, ports, running } => {
                let started = k3s::start(image, *ports, run).await?;
                *running.lock().await = Some(started);
                format!("http://127.0.0.1:{}", ports.http)
            }
            Provider::Existing { context, source, proxy } => {
                existing::isolate_context(source, context, run)?;
                proxy.clone()
            }
        };
        Ok(Access { kubeconfig: run.kubeconfig(), proxy })
    }

    /// Node-level logs into the run's `logs/` (kind only; other providers have no such export).
    pub async fn export_logs(&self, run: &RunDir) -> Result<(), ClusterError> {
        match self {
            Provider::Kind { kind, cluster } => kind.export_logs(&cluster.name, run).await.map(|_| ()),
            Provider::K3s { .. } | Provider::Existing { .. } => Ok(()),
        }
    }

    pub async fn delete(&self, run: &RunDir) -> Result<(), ClusterError> {
        match self {
            Provider::Kind { kind, cluster } => kind.delete(&cluster.name, run).await,
            Provider::K3s { running, .. } => match running.lock().await.take() {
                Some(k) => k.remove().await,
                None => Ok(()),
            },
            Provider::Existing { .. } => Ok(()),
        }
    }
}

/// When to leave the cluster up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    #[default]
    Never,
    Always,
    OnFailure,
}

impl Keep {
    pub fn keeps(self, failed: bool) -> bool {
        match self {
            Keep::Never => false,
            Keep::Always => true,
            Keep::OnFailure => failed,
        }
    }
}

/// Record `state` in the run directory; a state that cannot be written is said, not hidden.
fn record(run: &RunDir, state: &mut State) {
    state.touch();
    if let Err(e) = run.write_state(state) {
        tracing::error!("cannot write {}: {e}", run.state_file().display());
    }
}

/// Create the cluster, or stop at `cancel`. A failed or interrupted creation is torn down
/// (within [`TEARDOWN_BOUND`]) before the error is returned.
pub async fn create<R: Runner>(
    provider: &Provider<R>,
    run: &RunDir,
    state: &mut State,
    cancel: &CancellationToken,
) -> Result<Access, ClusterError> {
    state.phase = Phase::Creating;
    record(run, state);
    let created = tokio::select! {
        created = provider.create(run) => created,
        () = cancel.cancelled() => Err(ClusterError::Interrupted),
    };
    match created {
        Ok(access) => {
            state.phase = Phase::Ready;
            state.cluster = provider.cluster();
            state.proxy = Some(access.proxy.clone());
            record(run, state);
            Ok(access)
        }
        Err(e) => {
            // A half-created kind cluster still has a node container; delete it like a whole one.
            let interrupted = matches!(e, ClusterError::Interrupted);
            teardown(provider, run, state, Keep::Never, true, interrupted).await;
            Err(e)
        }
    }
}

/// What teardown did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Teardown {
    Removed,
    Kept,
    Leftover(Vec<String>),
}

/// Collect node logs (on failure), then delete the cluster unless kept; never longer than
/// [`TEARDOWN_BOUND`] in all. The state file ends in `removed`, `kept` or `leftover`.
pub async fn teardown<R: Runner>(
    provider: &Provider<R>,
    run: &RunDir,
    state: &mut State,
    keep: Keep,
    failed: bool,
    interrupted: bool,
) -> Teardown {
    if failed && !interrupted {
        // Interrupted creations rarely have logs worth the wait; failed runs always do.
        if let Err(e) = tokio::time::timeout(DIAGNOSTICS_BOUND, provider.export_logs(run)).await.unwrap_or_else(|_| {
            Err(ClusterError::Provider { provider: provider.name(), reason: "log export timed out".into() })
        }) {
            tracing::warn!("node logs not collected: {}", crate::names::printable(&e.to_string()));
        }
    }
    if keep.keeps(failed) || !provider.owns_cluster() {
        state.phase = Phase::Kept;
        record(run, state);
        return Teardown::Kept;
    }
    state.phase = Phase::TearingDown;
    record(run, state);
    let outcome = match tokio::time::timeout(TEARDOWN_BOUND, provider.delete(run)).await {
        Ok(Ok(())) => Teardown::Removed,
        Ok(Err(e)) => Teardown::Leftover(vec![format!("{} cluster `{}`: {e}", provider.name(), provider.cluster())]),
        Err(_) => Teardown::Leftover(vec![format!(
            "{} cluster `{}`: deletion did not finish within {}s",
            provider.name(),
            provider.cluster(),
            TEARDOWN_BOUND.as_secs()
        )]),
    };
    match &outcome {
        Teardown::Removed => {
            state.phase = Phase::Removed;
            state.leftovers.clear();
        }
        Teardown::Leftover(what) => {
            state.phase = Phase::Leftover;
            state.leftovers = what.clone();
        }
        Teardown::Kept => {}
    }
    record(run, state);
    outcome
}

/// How to reach a kept cluster and how to remove it, for people.
pub fn keep_message(run: &RunDir, state: &State) -> String {
    let mut text = format!("the cluster is still up ({} `{}`).\n", state.provider, state.cluster);
    text += &format!("  reach it:   export KUBECONFIG={}\n", run.kubeconfig().display());
    if let Some(proxy) = &state.proxy {
        text += &format!("  Kong proxy: {proxy}\n");
    }
    if state.provider == "existing" {
        text += "  the harness never deletes an existing cluster; scenario namespaces carry the label kme2e.dev/run=";
        text += &state.run;
        text += "\n";
    } else {
        text += &format!("  remove it:  {} down --run {}\n", crate::command_name(), state.run);
    }
    text
}

/// Cancel `token` on the first Ctrl-C; exit at once (status 130) on the second.
pub fn cancel_on_ctrl_c(token: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        crate::say_err!(
            "\ninterrupted: stopping, collecting what diagnostics we can and tearing down (Ctrl-C again exits at once)"
        );
        token.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            crate::say_err!(
                "exiting at once; `{} down` removes what was left (see the run's state.json)",
                crate::command_name()
            );
            crate::tools::remove_partial_files();
            std::process::exit(130);
        }
    });
}

/// The runs `down` would act on, and what it removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DownReport {
    pub removed: Vec<String>,
    pub failed: Vec<String>,
}

/// Which harness clusters `down` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownScope<'a> {
    /// One run's.
    Run(&'a str),
    /// Those of this checkout's runs (their state files under `target/e2e`).
    Checkout,
    /// Those of this checkout, and every other kind cluster carrying the harness prefix.
    All,
}

/// Remove harness clusters in `scope`. Clusters without the prefix are never touched, whatever
/// their state file says; state files are updated to say what happened.
pub async fn down<R: Runner>(
    kind: &Kind<R>,
    containers: &impl k3s::Containers,
    runs_root: &std::path::Path,
    prefix: &str,
    scope: DownScope<'_>,
) -> Result<DownReport, ClusterError> {
    let only = match scope {
        DownScope::Run(run) => Some(run),
        DownScope::Checkout | DownScope::All => None,
    };
    let ours = |name: &str| name.starts_with(&format!("{prefix}-"));
    let running: Vec<String> = kind.clusters().await?.into_iter().filter(|c| ours(c)).collect();
    let mut report = DownReport::default();
    let mut states = state::runs(runs_root);
    if let Some(run) = only {
        states.retain(|(dir, _)| dir.run == run);
        if states.is_empty() {
            return Err(ClusterError::Provider {
                provider: "kind",
                reason: format!("no run `{run}` under {}", runs_root.display()),
            });
        }
    }
    let mut handled = Vec::new();
    for (dir, mut st) in states {
        if st.provider == "k3s" && st.phase != Phase::Removed {
            // Containers carry their run's label, so even one whose id was never recorded is found.
            match containers.remove_run(&st.run).await {
                Ok(ids) => {
                    report.removed.extend(ids.into_iter().map(|id| format!("k3s container {id}")));
                    st.phase = Phase::Removed;
                    st.leftovers.clear();
                }
                Err(e) => {
                    report.failed.push(format!("k3s containers of run {}: {e}", st.run));
                    st.phase = Phase::Leftover;
                    st.leftovers = vec![e];
                }
            }
            record(&dir, &mut st);
            continue;
        }
        if st.provider != "kind" || st.phase == Phase::Removed || !ours(&st.cluster) {
            continue;
        }
        handled.push(st.cluster.clone());
        if !running.contains(&st.cluster) {
            st.phase = Phase::Removed;
            st.leftovers.clear();
            record(&dir, &mut st);
            continue;
        }
        match kind.delete(&st.cluster, &dir).await {
            Ok(()) => {
                report.removed.push(st.cluster.clone());
                st.phase = Phase::Removed;
                st.leftovers.clear();
            }
            Err(e) => {
                report.failed.push(format!("{}: {e}", st.cluster));
                st.phase = Phase::Leftover;
                st.leftovers = vec![e.to_string()];
            }
        }
        record(&dir, &mut st);
    }
    if scope == DownScope::All {
        // Prefixed clusters whose run directory is gone (e.g. `cargo clean`, another checkout).
        let scratch = RunDir::create(runs_root, "down")
            .map_err(|source| ClusterError::Io { path: runs_root.join("down"), source })?;
        for name in running.iter().filter(|c| !handled.contains(c)) {
            match kind.delete(name, &scratch).await {
                Ok(()) => report.removed.push(name.clone()),
                Err(e) => report.failed.push(format!("{name}: {e}")),
            }
        }
    }
    Ok(report)
}

/// The fingerprint `--reuse` compares: provider, profile versions and everything the stack
/// would install (rendered values and manifests).
pub fn fingerprint(provider: &str, profile: &crate::profile::Profile, environment: &serde_json::Value) -> String {
    let input = serde_json::json!({
        "provider": provider,
        "profile": profile.name,
        "kubernetes": profile.pins.kubernetes,
        "mesh": profile.mesh().as_str(),
        "mesh_version": profile.pins.mesh_version,
        "environment": environment,
    });
    let digest = ring::digest::digest(&ring::digest::SHA256, input.to_string().as_bytes());
    digest.as_ref().iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// A running harness cluster with the same fingerprint, or why none can be reused.
pub fn find_reusable(
    runs_root: &std::path::Path,
    fingerprint: &str,
    running: &[String],
) -> Result<(RunDir, State), String> {
    let candidates: Vec<(RunDir, State)> = state::runs(runs_root)
        .into_iter()
        .filter(|(_, s)| matches!(s.phase, Phase::Ready | Phase::Kept) && s.provider == "kind")
        .collect();
    if candidates.is_empty() {
        return Err("no kept or ready harness cluster found under target/e2e".into());
    }
    let mut reasons = Vec::new();
    for (dir, st) in candidates {
        if !running.contains(&st.cluster) {
            reasons.push(format!("{} ({}): the cluster no longer exists", st.run, st.cluster));
        } else if st.fingerprint != fingerprint {
            reasons.push(format!(
                "{} ({}): fingerprint {} differs from this run's {fingerprint} (versions or values changed)",
                st.run, st.cluster, st.fingerprint
            ));
        } else {
            return Ok((dir, st));
        }
    }
    Err(reasons.join("; "))
}

#[cfg(test)]
mod tests;
