//! Executes the environment's actions against a cluster, in order: downloads verified, Helm
//! releases through the command runner (transient failures retried with bounded backoff),
//! manifests through server-side apply, and every readiness gate waited for with a deadline
//! that names what it still waits for.

use std::path::Path;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio_util::sync::CancellationToken;

use super::{Action, Gate, LINKERD_ISSUER_CERT, LINKERD_ISSUER_KEY, LINKERD_TRUST_ANCHOR, Release};
use crate::check::converge::{Attempt, NotConverged, eventually};
use crate::cluster::RunDir;
use crate::command::{CommandError, Invocation, Output, Runner};
use crate::k8s::{self, KubeError, Seen};
use crate::profile::Versions;
use crate::tools::{Cache, Fetch, ToolError};

/// How long each readiness gate may take.
pub const GATE_DEADLINE: Duration = Duration::from_secs(300);
/// How often a gate asks again.
pub const GATE_INTERVAL: Duration = Duration::from_secs(2);
/// helm's own `--timeout` plus a margin for chart download and hooks.
pub const HELM_DEADLINE: Duration = Duration::from_secs(12 * 60);

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{0}")]
    Helm(CommandError),
    #[error(transparent)]
    Download(#[from] ToolError),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{gate}: {detail}")]
    Gate { gate: String, detail: NotConverged },
    #[error("cannot read {file}: {reason}")]
    Manifest { file: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("interrupted during: {0}")]
    Interrupted(String),
    /// A cluster-wide object of the user's stands where the stack needs its own.
    #[error("{0}")]
    Conflict(String),
}

/// Whether a failed command is worth another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The API server, a webhook or a chart repository was briefly unavailable.
    Transient,
    /// Anything else: bad values, a chart that does not exist, a timeout of `--wait`.
    Fatal,
}

/// Messages of failures that pass on their own (helm and client-go wording).
const TRANSIENT: &[&str] = &[
    "connection refused",
    "connection reset by peer",
    "failed calling webhook",
    "no endpoints available for service",
    "i/o timeout",
    "tls handshake timeout",
    "the server is currently unable to handle the request",
    "etcdserver: request timed out",
    "etcdserver: leader changed",
    "http2: client connection lost",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "429 too many requests",
];

/// Whether an error message names a failure that passes on its own.
pub fn is_transient(message: &str) -> bool {
    let text = message.to_ascii_lowercase();
    TRANSIENT.iter().any(|t| text.contains(t))
}

pub fn classify(error: &CommandError) -> Failure {
    match error {
        CommandError::Failed { stderr, .. } => {
            if is_transient(stderr) {
                Failure::Transient
            } else {
                Failure::Fatal
            }
        }
        // A start failure will not change; a timeout already used the command's whole deadline.
        CommandError::Start { .. } | CommandError::Timeout { .. } => Failure::Fatal,
    }
}

/// The log line of a retried failure: the error quotes the API server or a tool (a hostile
/// endpoint could answer anything), so it is escaped onto one line: a newline in it cannot start
/// a CI-log line of its own (`::error::…`, `##[…]`).
fn retry_message(error: &dyn std::fmt::Display, wait: Duration) -> String {
    format!("transient failure, retrying in {wait:?}: {}", crate::names::printable(&error.to_string()))
}

/// The retry policy for transient failures: 5 tries in all, 2 s doubling to at most 30 s.
pub fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(2))
        .with_max_delay(Duration::from_secs(30))
        .with_max_times(4)
}

/// Run `invocation`, retrying transient failures under [`backoff`].
pub async fn run_retrying(runner: &impl Runner, invocation: &Invocation) -> Result<Output, CommandError> {
    (|| runner.run(invocation))
        .retry(backoff())
        .sleep(tokio::time::sleep)
        .when(|e| classify(e) == Failure::Transient)
        .notify(|e, wait| tracing::warn!("{}", retry_message(e, wait)))
        .await
}

/// Checks whether Kong's proxy answers from the host.
pub trait ProxyCheck: Sync {
    fn answers(&self, url: &str) -> impl std::future::Future<Output = Result<u16, String>> + Send;
}

/// Over HTTP with reqwest: any HTTP status counts as an answer.
pub struct HttpProxyCheck;

impl ProxyCheck for HttpProxyCheck {
    async fn answers(&self, url: &str) -> Result<u16, String> {
        crate::tls::install_ring_provider();
        // Kong's proxy is on this machine's loopback: a user's HTTP_PROXY must not take the
        // request elsewhere (many corporate proxies do not exempt 127.0.0.1).
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(5)).no_proxy().build().map_err(|e| e.to_string())?;
        client.get(url).send().await.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
    }
}

/// Everything the installer needs.
pub struct Installer<'a, R, F, P> {
    pub runner: &'a R,
    pub helm: &'a Path,
    pub client: kube::Client,
    pub run: &'a RunDir,
    pub versions: &'a Versions,
    pub cache: &'a Cache,
    pub fetch: &'a F,
    pub proxy_check: &'a P,
    /// Kong's proxy from the host.
    pub proxy: String,
    pub gate_deadline: Duration,
    /// A cluster the harness did not create (`--provider existing`): cluster-wide CRDs are
    /// applied only where absent; ones already there (newer, older or the same) are left as
    /// they are, and said so.
    pub shared_cluster: bool,
}

/// The Gateway API's CRDs carry their release here (e.g. `v1.3.0`).
const GATEWAY_API_BUNDLE_VERSION: &str = "gateway.networking.k8s.io/bundle-version";

impl<R: Runner, F: Fetch, P: ProxyCheck> Installer<'_, R, F, P> {
    /// Execute `actions` in order, stopping at the first failure or at `cancel`.
    pub async fn install(
        &self,
        actions: &[Action],
        cancel: &CancellationToken,
        mut on_step: impl FnMut(&str),
    ) -> Result<(), StackError> {
        for action in actions {
            let what = describe(action);
            on_step(&what);
            tokio::select! {
                done = self.execute(action) => done?,
                () = cancel.cancelled() => return Err(StackError::Interrupted(what)),
            }
        }
        Ok(())
    }

    async fn execute(&self, action: &Action) -> Result<(), StackError> {
        match action {
            Action::Crds { .. } => {
                for artifact in self.versions.gateway_api.artifacts() {
                    let file = self.cache.resolve(&artifact, self.fetch).await?;
                    let text = std::fs::read_to_string(&file.path).map_err(|e| StackError::Manifest {
                        file: file.path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                    let objects: Vec<serde_json::Value> = crate::yaml::documents(&text).map_err(|e| {
                        StackError::Manifest { file: file.path.display().to_string(), reason: e.to_string() }
                    })?;
                    for object in objects {
                        if self.shared_cluster && self.crd_already_there(&object).await? {
                            continue;
                        }
                        self.apply(&k8s::labelled(object, &self.run.run)).await?;
                    }
                }
                Ok(())
            }
            Action::LinkerdIdentity => self.write_identity(),
            Action::Helm(release) => self.helm(release).await,
            Action::Apply { objects, .. } => {
                for object in objects {
                    // On a cluster the harness did not create, a cluster-wide object of the
                    // user's (their GatewayClass `kong`) is left as it is, never overwritten.
                    if self.shared_cluster && self.keep_users_cluster_object(object).await? {
                        continue;
                    }
                    self.apply(&k8s::labelled(object.clone(), &self.run.run)).await?;
                }
                Ok(())
            }
            Action::ChartCrds(release) => self.chart_crds(release).await,
            Action::Relabel { namespace, labels } => {
                k8s::relabel_namespace(&self.client, namespace, labels).await.map_err(StackError::from)
            }
            Action::Ready(gate) => self.wait(gate).await,
        }
    }

    /// The CRDs of `release`'s chart at its version (`helm show crds`), applied server-side.
    async fn chart_crds(&self, release: &Release) -> Result<(), StackError> {
        let invocation = helm_invocation(self.helm, release.show_crds_args(), HELM_DEADLINE, self.run);
        let output = run_retrying(self.runner, &invocation).await.map_err(StackError::Helm)?;
        let source = format!("helm show crds {} {}", release.chart, release.version);
        let objects: Vec<serde_json::Value> = crate::yaml::documents(&output.stdout)
            .map_err(|e| StackError::Manifest { file: source.clone(), reason: e.to_string() })?;
        let mut names = Vec::new();
        for object in objects {
            if object.get("kind").and_then(serde_json::Value::as_str) != Some("CustomResourceDefinition") {
                return Err(StackError::Manifest {
                    file: source,
                    reason: format!(
                        "a document that is no CRD: {}",
                        crate::names::printable(&object["kind"].to_string())
                    ),
                });
            }
            let name =
                object.pointer("/metadata/name").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
            self.apply(&k8s::labelled(object, &self.run.run)).await?;
            names.push(name);
        }
        // The upgraded release may create objects of a changed kind at once: its CRDs first.
        self.wait(&Gate::Crds { names }).await
    }

    /// On a shared cluster: whether `object`, a cluster-scoped stack object (a GatewayClass, a
    /// KongClusterPlugin), exists already as the user's (no run label of the harness: objects of
    /// earlier runs are the harness's and applied again). The user's is kept, never overwritten;
    /// a GatewayClass `kong` of the user's is used only when it is KIC's unmanaged class, else the
    /// harness's Gateway would go to another controller, and the run stops saying so.
    async fn keep_users_cluster_object(&self, object: &serde_json::Value) -> Result<bool, StackError> {
        let kind = object["kind"].as_str().unwrap_or_default();
        if !matches!(kind, "GatewayClass" | "KongClusterPlugin") {
            return Ok(false);
        }
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let Some(found) = k8s::get(&self.client, api_version, kind, name, None).await? else { return Ok(false) };
        if found["metadata"]["labels"][k8s::RUN_LABEL].is_string() {
            return Ok(false);
        }
        let shown = crate::names::printable(name);
        if kind == "GatewayClass" {
            let controller = found["spec"]["controllerName"].as_str().unwrap_or_default();
            let unmanaged = found["metadata"]["annotations"]["konghq.com/gatewayclass-unmanaged"]
                .as_str()
                .is_some_and(|v| !v.is_empty());
            if controller != object["spec"]["controllerName"].as_str().unwrap_or_default() || !unmanaged {
                return Err(StackError::Conflict(format!(
                    "GatewayClass {shown} already exists on this cluster with controller `{}`{}: the harness's \
                     Gateway would not be KIC's; it is left as it is and nothing is installed over it",
                    crate::names::printable(controller),
                    if unmanaged { "" } else { " and without konghq.com/gatewayclass-unmanaged" }
                )));
            }
        }
        tracing::warn!("{kind} {shown} already exists on this cluster and is not the harness's: used as it is");
        Ok(true)
    }

    /// On a shared cluster: whether this CRD exists already (then it is left alone: the harness
    /// never force-applies over a CRD it did not create, and never downgrades one).
    async fn crd_already_there(&self, object: &serde_json::Value) -> Result<bool, KubeError> {
        let name = object.pointer("/metadata/name").and_then(serde_json::Value::as_str).unwrap_or_default();
        let Some(annotations) = k8s::crd_annotations(&self.client, name).await? else { return Ok(false) };
        let pinned = &self.versions.gateway_api.version;
        // The annotation is the API server's answer: shown escaped in the log lines below.
        let theirs = annotations
            .get(GATEWAY_API_BUNDLE_VERSION)
            .map_or_else(|| "unknown".to_owned(), |v| crate::names::printable(v));
        let theirs = theirs.as_str();
        let parts = crate::profile::version_parts;
        if theirs == "unknown" || parts(theirs) < parts(pinned) {
            tracing::warn!(
                "CRD {name} is already installed at Gateway API {theirs}, older than the pinned {pinned} or \
                 unversioned: left as it is (the harness does not change a cluster's CRDs); scenarios needing newer \
                 fields may fail"
            );
        } else {
            tracing::info!("CRD {name} is already installed at Gateway API {theirs} (pinned {pinned}): left as it is");
        }
        Ok(true)
    }

    /// Server-side apply, retrying what passes on its own (a validating webhook not serving
    /// yet, the API server busy) under the same policy as helm.
    async fn apply(&self, object: &serde_json::Value) -> Result<(), KubeError> {
        (|| k8s::apply(&self.client, object, None))
            .retry(backoff())
            .sleep(tokio::time::sleep)
            .when(|e| is_transient(&e.to_string()))
            .notify(|e, wait| tracing::warn!("{}", retry_message(e, wait)))
            .await
    }

    fn write_identity(&self) -> Result<(), StackError> {
        let identity = super::linkerd::generate(time::OffsetDateTime::now_utc())
            .map_err(|e| StackError::Io { path: "linkerd/".into(), reason: e.to_string() })?;
        let dir = self.run.path.join("linkerd");
        std::fs::create_dir_all(&dir)
            .map_err(|e| StackError::Io { path: dir.display().to_string(), reason: e.to_string() })?;
        for (file, text) in [
            (LINKERD_TRUST_ANCHOR, &identity.trust_anchor_pem),
            (LINKERD_ISSUER_CERT, &identity.issuer_cert_pem),
            (LINKERD_ISSUER_KEY, &identity.issuer_key_pem),
        ] {
            let path = self.run.path.join(file);
            crate::cluster::existing::write_private(&path, text)
                .map_err(|e| StackError::Io { path: path.display().to_string(), reason: e.to_string() })?;
        }
        Ok(())
    }

    async fn helm(&self, release: &Release) -> Result<(), StackError> {
        let values = release.values_file(&self.run.path);
        let io = |e: std::io::Error| StackError::Io { path: values.display().to_string(), reason: e.to_string() };
        if let Some(dir) = values.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let yaml = serde_saphyr::to_string(&release.values).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        std::fs::write(&values, yaml).map_err(io)?;
        let invocation = helm_invocation(self.helm, release.helm_args(&self.run.path), HELM_DEADLINE, self.run);
        run_retrying(self.runner, &invocation).await.map_err(StackError::Helm)?;
        Ok(())
    }

    async fn wait(&self, gate: &Gate) -> Result<(), StackError> {
        let expected = gate.to_string();
        let client = &self.client;
        let outcome = eventually(self.gate_deadline, GATE_INTERVAL, &expected, || async {
            let answer: Result<Attempt<Seen>, KubeError> = match gate {
                Gate::Crds { names } => {
                    let mut seen = Vec::new();
                    let mut all = true;
                    for name in names {
                        match k8s::crd_established(client, name).await {
                            Ok(Attempt::Pass(_)) => {}
                            Ok(Attempt::Fail(s)) => {
                                all = false;
                                seen.push(s.0);
                            }
                            Err(e) => return Attempt::Fail(Seen(e.to_string())),
                        }
                    }
                    Ok(if all { Attempt::Pass(Seen(expected.clone())) } else { Attempt::Fail(Seen(seen.join("; "))) })
                }
                Gate::Deployments { namespace } => k8s::deployments_available(client, namespace).await,
                Gate::Webhook { configuration } => k8s::webhook_serving(client, configuration).await,
                Gate::Meshed { namespace, selector, mesh } => {
                    k8s::pods_meshed(client, namespace, selector, *mesh).await
                }
                Gate::GatewayProgrammed { namespace, name } => k8s::gateway_programmed(client, namespace, name).await,
                Gate::DaemonSet { namespace, name } => k8s::rolled_out(client, "DaemonSet", namespace, name, 0).await,
                Gate::ProxyReachable => Ok(match self.proxy_check.answers(&self.proxy).await {
                    Ok(status) => Attempt::Pass(Seen(format!("{} answered HTTP {status}", self.proxy))),
                    Err(e) => Attempt::Fail(Seen(format!("{}: {e}", self.proxy))),
                }),
            };
            // An API error is an observation too: the API server may be restarting.
            answer.unwrap_or_else(|e| Attempt::Fail(Seen(e.to_string())))
        })
        .await;
        outcome.map(|_| ()).map_err(|detail| StackError::Gate { gate: expected.clone(), detail })
    }
}

/// A helm command for `run`: the run's kubeconfig, and Helm's cache, config and data kept
/// under the project's `target/helm/` (shared by runs) instead of the user's home.
pub fn helm_invocation(
    helm: &Path,
    args: impl IntoIterator<Item = impl Into<String>>,
    timeout: Duration,
    run: &RunDir,
) -> Invocation {
    let mut inv = crate::cluster::kind::isolated(Invocation::new(helm, args, timeout), run);
    // Every HELM_* variable of the user's shell is dropped (HELM_KUBECONTEXT would point every
    // release at another context, HELM_NAMESPACE at another namespace, HELM_DRIVER elsewhere);
    // the harness sets the ones it wants below.
    inv.clear_env_prefixes.push("HELM_".into());
    if let Some(target) = run.path.parent().and_then(Path::parent) {
        let helm_home = target.join("helm");
        for (var, dir) in [("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"), ("HELM_DATA_HOME", "data")] {
            inv.env.push((var.into(), helm_home.join(dir).display().to_string()));
        }
    }
    inv
}

/// One line per action, for progress and plans.
pub fn describe(action: &Action) -> String {
    match action {
        Action::Crds { name, version, files } => {
            format!("{name} {version} CRDs ({} files, sha256-verified)", files.len())
        }
        Action::LinkerdIdentity => "Linkerd trust anchor and issuer (ECDSA P-256)".into(),
        Action::Helm(r) => format!("helm {} ({} {} in {})", r.name, r.chart, r.version, r.namespace),
        Action::Apply { name, objects } => format!("apply {name} ({} objects)", objects.len()),
        Action::ChartCrds(r) => format!("CRDs of {} {} (helm show crds), applied", r.chart, r.version),
        Action::Relabel { namespace, labels } => {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => format!("{k}-"),
                })
                .collect();
            format!("label namespace {namespace} {}", labels.join(" "))
        }
        Action::Ready(gate) => format!("wait: {gate}"),
    }
}

#[cfg(test)]
mod tests;
