//! One live run end to end: tools -> cluster -> stack -> (scenarios) -> teardown.
//!
//! `create_cluster` resolves the pinned tools and creates (or reuses) the cluster, `install`
//! installs the plan's environment, `finish` tears it down according to `--keep`. Both honour the cancellation
//! token (Ctrl-C). Needs Docker and network: nothing here runs in the hermetic tests except
//! through the seams of the modules it calls.

use crate::runner::outcome::FailureKind;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::cluster::{self, Access, HostPorts, Keep, Kind, KindCluster, Phase, Provider, RunDir, State, Teardown};
use crate::command::Process;
use crate::plan::Plan;
use crate::profile::Profile;
use crate::progress::Progress;
use crate::stack::install::{HttpProxyCheck, Installer, StackError};
use crate::tools::{self, Cache, Http, ToolError};

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

/// A cluster with the stack installed, ready for scenarios.
pub struct Environment {
    pub run: RunDir,
    pub state: State,
    pub provider: Provider<Process>,
    pub access: Access,
    pub client: kube::Client,
    /// The verified helm binary.
    pub helm: PathBuf,
    /// A kept cluster picked up by `--reuse` (same fingerprint): only the readiness gates run.
    pub reused: bool,
}

/// A kube client for the run's kubeconfig (never the user's).
pub async fn client_for(kubeconfig: &Path) -> Result<kube::Client, SessionError> {
    crate::tls::install_ring_provider();
    let fail = |reason: String| SessionError::Client { path: kubeconfig.to_owned(), reason };
    let config = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| fail(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| fail(e.to_string()))?;
    client_from(config).map_err(|e| fail(e.to_string()))
}

/// The largest answer the harness reads from the API server in one response: a list of every
/// Service of a large cluster fits many times over, and a hostile or broken endpoint streaming
/// without end fails the call instead of filling memory (kube-client reads list and get
/// answers whole).
pub const API_ANSWER_LIMIT: usize = 128 * 1024 * 1024;

/// A kube client for `config` with the harness's deadlines ([`with_deadlines`]) and every
/// answer's body bounded by [`API_ANSWER_LIMIT`] (`http_body_util::Limited`; the response's
/// extensions, and so exec's upgrade, are kept).
pub fn client_from(config: kube::Config) -> Result<kube::Client, kube::Error> {
    client_with_limit(config, API_ANSWER_LIMIT)
}

fn client_with_limit(config: kube::Config, limit: usize) -> Result<kube::Client, kube::Error> {
    let limit = tower::util::MapResponseLayer::new(move |response: http::Response<_>| {
        response.map(|body| http_body_util::Limited::new(body, limit))
    });
    Ok(kube::client::ClientBuilder::try_from(with_deadlines(config))?.with_layer(&limit).build())
}

/// Connecting to the API server: a kubeconfig may point at an address that never completes
/// the handshake.
pub const API_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// The longest silence tolerated while waiting for the API server's bytes (and for a request
/// to be written). It is a per-read idle bound, so it also holds exec websockets: longer than
/// the longest quiet exec (a client pod's curl prints only at its end: `pod::send`'s own
/// deadline is the request timeout + 5 s = 15 s; evidence execs stop at 30 s), and than
/// kube-apiserver's own 60 s `--request-timeout`, so a slow but live server answers (even with
/// its own timeout) before the harness gives up. The harness uses no watches or followed logs.
pub const API_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(75);

/// `config` with the harness's deadlines: an API server that accepts connections and never
/// answers fails the call it was asked (`... timed out`) instead of holding it forever. The read
/// timer restarts when a request is written (`reset_reader_on_write`), so the time a pooled
/// connection sat idle never counts against the next answer.
pub fn with_deadlines(mut config: kube::Config) -> kube::Config {
    config.connect_timeout = Some(API_CONNECT_TIMEOUT);
    config.read_timeout = Some(API_READ_TIMEOUT);
    config.write_timeout = Some(API_READ_TIMEOUT);
    config.reset_reader_on_write = true;
    config
}

/// Resolve (download and verify if needed) the pinned tools a run needs: helm always (installs,
/// and the values in force as evidence), kind only when it is kind's cluster. Returns kind's
/// path (or `kind` for a provider that never runs it) and helm's.
pub async fn tools(
    profile: &Profile,
    cache: &Cache,
    needs_kind: bool,
    needs_helm: bool,
) -> Result<(PathBuf, PathBuf), SessionError> {
    let http = Http::new()?;
    let resolve = |name: &'static str, needed: bool| {
        let http = &http;
        async move {
            Ok::<_, SessionError>(match needed {
                true => cache.resolve(&tools::tool(&profile.versions, name)?, http).await?.path,
                // Never run: a provider without kind, or a run that installs nothing.
                false => PathBuf::from(name),
            })
        }
    };
    Ok((resolve("kind", needs_kind).await?, resolve("helm", needs_helm).await?))
}

/// The fingerprint of what `plan` installs with `provider`.
pub fn fingerprint_of(plan: &Plan, profile: &Profile, provider: &str) -> String {
    let environment = serde_json::to_value(&plan.environment).unwrap_or_default();
    cluster::fingerprint(provider, profile, &environment)
}

/// The tool cache of a checkout (`target/tools`, or `KME2E_TOOLS_DIR` when set, e.g. a CI cache).
pub fn tool_cache(root: &Path) -> Cache {
    match std::env::var_os("KME2E_TOOLS_DIR") {
        Some(dir) => Cache::at(dir),
        None => Cache::at(root.join("target").join("tools")),
    }
}

/// Refuse option combinations that cannot work, before anything is downloaded or created.
pub fn check_options(options: &Options, profile: &Profile) -> Result<(), SessionError> {
    let refuse = |why: &str| Err(SessionError::Options(why.to_owned()));
    match options.provider {
        ProviderChoice::Existing if options.context.is_none() => Err(cluster::ClusterError::NoContext.into()),
        ProviderChoice::Existing if options.proxy.is_none() => {
            refuse("the existing provider needs `--proxy URL`: where Kong's proxy answers from this machine")
        }
        ProviderChoice::K3s if options.keep != Keep::Never => {
            refuse("k3s clusters live as long as the run; use the kind provider for --keep")
        }
        ProviderChoice::K3s if profile.k3s_image().is_none() => Err(SessionError::Options(format!(
            "no k3s image for Kubernetes {} in versions.toml [k3s.images]",
            profile.pins.kubernetes
        ))),
        ProviderChoice::K3s | ProviderChoice::Existing if options.reuse => {
            refuse("--reuse works with the kind provider only")
        }
        ProviderChoice::Kind | ProviderChoice::K3s if options.no_install || options.kong_namespace.is_some() => {
            refuse("--no-install and --kong-namespace use what an existing cluster runs: they need --provider existing")
        }
        ProviderChoice::Existing if options.kong_namespace.is_some() && !options.no_install => {
            refuse("--kong-namespace says where to find Kong with --no-install")
        }
        _ => Ok(()),
    }
}

/// Create the cluster (or reuse one), ready for `install`. A failure after the cluster exists
/// tears it down before returning.
pub async fn create_cluster(
    root: &Path,
    plan: &Plan,
    profile: &Profile,
    options: &Options,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<Environment, SessionError> {
    check_options(options, profile)?;
    let cache = tool_cache(root);
    let runs_root = root.join("target").join("e2e");
    let phase = progress.phase("tools");
    let needs_kind = options.provider == ProviderChoice::Kind;
    let needs_helm = !options.no_install;
    let needed = match (needs_kind, needs_helm) {
        (true, _) => "kind and helm",
        (false, true) => "helm",
        (false, false) => "no tool (--no-install)",
    };
    phase.waiting_for(&format!("{needed} (pinned, sha256-verified)"));
    let resolved = tokio::select! {
        r = tools(profile, &cache, needs_kind, needs_helm) => r,
        () = cancel.cancelled() => Err(cluster::ClusterError::Interrupted.into()),
    };
    let (kind_bin, helm) = match resolved {
        Ok(found) => found,
        Err(e) => {
            phase.finish(false, "not available");
            return Err(e);
        }
    };
    phase.finish(true, &format!("{needed} verified"));
    let kind = Kind { binary: kind_bin, runner: Process };
    let provider_name = match options.provider {
        ProviderChoice::Kind => "kind",
        ProviderChoice::K3s => "k3s",
        ProviderChoice::Existing => "existing",
    };
    let fingerprint = fingerprint_of(plan, profile, provider_name);

    if options.reuse {
        let running = kind.clusters().await?;
        match cluster::find_reusable(&runs_root, &fingerprint, &running) {
            Ok((run, mut state)) => {
                tracing::info!("reusing {} from run {}", state.cluster, state.run);
                let ports = state.proxy.clone().unwrap_or_default();
                let port = |s: &str| s.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let cluster = KindCluster {
                    name: state.cluster.clone(),
                    node_image: String::new(),
                    ports: HostPorts { http: port(&ports), https: 0 },
                };
                state.phase = Phase::Ready;
                state.touch();
                let access = Access { kubeconfig: run.kubeconfig(), proxy: ports };
                let client = client_for(&access.kubeconfig).await?;
                // The stack is unchanged (same fingerprint): `install` only runs the readiness gates.
                return Ok(Environment {
                    run,
                    state,
                    provider: Provider::Kind { kind, cluster },
                    access,
                    client,
                    helm,
                    reused: true,
                });
            }
            Err(why) => eprintln!("not reusing a cluster: {why}; creating a new one"),
        }
    }

    let run = RunDir::create(&runs_root, &plan.run)
        .map_err(|source| SessionError::RunDir { path: runs_root.join(&plan.run), source })?;
    let ports = HostPorts { http: plan.cluster.ports[0], https: plan.cluster.ports[1] };
    let provider = match options.provider {
        ProviderChoice::Kind => Provider::Kind {
            kind,
            cluster: KindCluster {
                name: plan.cluster.name.clone(),
                node_image: plan.cluster.node_image.clone(),
                ports,
            },
        },
        ProviderChoice::K3s => {
            let image = profile.k3s_image().unwrap_or_default().to_owned();
            Provider::K3s { image, ports, running: Box::default() }
        }
        ProviderChoice::Existing => {
            let context = options.context.clone().unwrap_or_default();
            let source = cluster::existing::user_kubeconfig()
                .ok_or_else(|| SessionError::Options("neither KUBECONFIG nor HOME is set".into()))?;
            Provider::Existing { context, source, proxy: options.proxy.clone().unwrap_or_default() }
        }
    };
    let mut state = State {
        run: plan.run.clone(),
        provider: provider_name.into(),
        cluster: provider.cluster(),
        mesh: plan.mesh.clone(),
        profile: plan.profile.clone(),
        fingerprint,
        phase: Phase::Creating,
        proxy: None,
        leftovers: vec![],
        updated: 0,
    };
    let phase = progress.phase("cluster");
    phase.waiting_for(&format!("{provider_name} cluster {}", provider.cluster()));
    let access = match cluster::create(&provider, &run, &mut state, cancel).await {
        Ok(a) => a,
        Err(e) => {
            phase.finish(false, &e.to_string());
            return Err(e.into());
        }
    };
    phase.finish(true, &format!("kubeconfig {}", access.kubeconfig.display()));
    let client = match client_for(&access.kubeconfig).await {
        Ok(c) => c,
        Err(e) => {
            cluster::teardown(&provider, &run, &mut state, options.keep, true, false).await;
            return Err(e);
        }
    };
    Ok(Environment { run, state, provider, access, client, helm, reused: false })
}

/// Install `plan`'s environment into `env` (releases checked first on `existing` clusters).
pub async fn install(
    root: &Path,
    env: &Environment,
    plan: &Plan,
    profile: &Profile,
    options: &Options,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<(), SessionError> {
    let cache = tool_cache(root);
    if let ProviderChoice::Existing = options.provider {
        let releases: Vec<(String, String)> = plan
            .environment
            .iter()
            .filter_map(|a| match a {
                crate::stack::Action::Helm(r) => Some((r.namespace.clone(), r.name.clone())),
                _ => None,
            })
            .collect();
        cluster::existing::check_releases(&env.client, &releases).await?;
    }
    if let Provider::Kind { kind, cluster } = &env.provider {
        let phase = progress.phase("images");
        let images = plan.preload.clone();
        phase.waiting_for(&format!("{} images pulled on the host and loaded into the node", images.len()));
        match kind.load_images(&cluster.name, &images, &cluster::kind::DockerCli, &env.run, cancel).await {
            Ok(failed) if failed.is_empty() => phase.finish(true, "preloaded"),
            Ok(failed) => {
                let list: Vec<String> = failed.iter().map(|(image, why)| format!("{image} ({why})")).collect();
                phase.finish(false, &format!("not preloaded, the node will pull them: {}", list.join("; ")))
            }
            // Ctrl-C or the budget: the run stops here, saying what the preload was doing.
            Err(e @ cluster::ClusterError::Stopped { .. }) => {
                phase.finish(false, &e.to_string());
                return Err(e.into());
            }
            // Not fatal: the node pulls what is missing itself, only slower.
            Err(e) => phase.finish(false, &format!("not preloaded ({e}); the node will pull them")),
        }
    }
    let installer = Installer {
        runner: &Process,
        helm: &env.helm,
        client: env.client.clone(),
        run: &env.run,
        versions: &profile.versions,
        cache: &cache,
        fetch: &Http::new()?,
        proxy_check: &HttpProxyCheck,
        proxy: env.access.proxy.clone(),
        gate_deadline: crate::stack::install::GATE_DEADLINE,
        shared_cluster: options.provider == ProviderChoice::Existing,
    };
    let phase = progress.phase("stack");
    // A reused cluster has this very stack (same fingerprint): check it is ready, install nothing.
    let actions: Vec<crate::stack::Action> = plan
        .environment
        .iter()
        .filter(|a| !env.reused || matches!(a, crate::stack::Action::Ready(_)))
        .cloned()
        .collect();
    let installed = installer.install(&actions, cancel, |step| phase.waiting_for(step)).await;
    match installed {
        Ok(()) => {
            phase.finish(true, "installed and ready");
            Ok(())
        }
        Err(e) => {
            phase.finish(false, &e.to_string());
            Err(e.into())
        }
    }
}

/// `--no-install`: find the Kong and mesh the cluster runs, say what was found, refuse what
/// cannot make a meaningful run (another mesh, Kong outside the mesh), and point `profile`'s Kong
/// at the one found. Reads only.
pub async fn discover(
    env: &Environment,
    profile: &mut Profile,
    options: &Options,
    progress: &Progress,
) -> Result<cluster::discover::Discovered, SessionError> {
    let phase = progress.phase("discover");
    phase.waiting_for("Kong's proxy Service and the mesh's control plane");
    let found = match discover_within(&env.client, options.kong_namespace.as_deref(), DISCOVERY_TIMEOUT).await {
        Ok(found) => found,
        Err(e) => {
            phase.finish(false, "not found");
            return Err(SessionError::Discovery(e));
        }
    };
    eprint!("{}", crate::diagnostic::escape_for_log(&found.to_string()));
    if let Err(e) = found.check_for(profile.mesh()) {
        phase.finish(false, "not usable");
        return Err(SessionError::Discovery(e));
    }
    found.apply_to(profile);
    phase.finish(true, &format!("Kong {} in {}", found.kong.release, found.kong.namespace));
    Ok(found)
}

/// How long `--no-install` discovery may take in all (a handful of reads). A server that never
/// answers fails the call it was asked after [`API_READ_TIMEOUT`], named (`cannot list
/// Services: ...`); this bounds one that answers a byte at a time.
pub const DISCOVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// [`cluster::discover::discover`] within `limit`.
async fn discover_within(
    client: &kube::Client,
    kong_namespace: Option<&str>,
    limit: std::time::Duration,
) -> Result<cluster::discover::Discovered, cluster::discover::DiscoveryError> {
    match tokio::time::timeout(limit, cluster::discover::discover(client, kong_namespace)).await {
        Ok(found) => found,
        Err(_) => Err(cluster::discover::DiscoveryError::Api {
            doing: "read Kong's proxy Service, its pods and the mesh's control plane".into(),
            reason: format!("the API server's answers did not complete within {}s", limit.as_secs()),
        }),
    }
}

/// Tear down (or keep) the environment; says what happened.
pub async fn finish(mut env: Environment, keep: Keep, failed: bool, interrupted: bool) -> (Teardown, String) {
    let outcome = cluster::teardown(&env.provider, &env.run, &mut env.state, keep, failed, interrupted).await;
    let message = match &outcome {
        Teardown::Removed => format!("removed {} cluster {}", env.state.provider, env.state.cluster),
        Teardown::Kept => cluster::keep_message(&env.run, &env.state),
        Teardown::Leftover(what) => format!(
            "teardown incomplete, recorded in {}: {}; `{} down --run {}` retries",
            env.run.state_file().display(),
            what.join("; "),
            crate::command_name(),
            env.run.run
        ),
    };
    (outcome, message)
}

/// How scenarios run in a live session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScenarioOptions {
    /// Leave scenario namespaces behind (the cluster is kept).
    pub keep_namespaces: bool,
    /// Compare (or update) each passing scenario's snapshot; `None` skips snapshots (repro
    /// bundles, which carry none).
    pub snapshots: Option<crate::snapshot::SnapshotMode>,
    /// Run each passing scenario's mutants (`e2e --mutants`); one that survives fails it.
    pub mutants: bool,
    /// The run's time budget, when it has one: scenarios it stopped say so.
    pub deadline: Option<crate::budget::Deadline>,
    /// `repro run`: the bundle's expected outcome is the verdict (every step passes, or the
    /// named step fails), not the steps' own.
    pub expected: Option<crate::scenario::bundle::Expected>,
    /// How many scenarios run at once (`--jobs`; 0 counts as 1).
    pub jobs: usize,
    /// How many times a failed scenario is run again, each time in a fresh namespace.
    pub retries: u32,
    /// An untrusted repro bundle: each scenario namespace gets the sandbox's egress policy.
    pub sandbox: bool,
}

/// Run the scenarios of `plan` in `env`, up to `options.jobs` at once (exclusive ones alone),
/// each one whose step failed again in a fresh namespace up to `options.retries` times; failed
/// attempts get diagnostics, their observations and a repro bundle under
/// `artifacts/<scenario>/` (later attempts under `artifacts/<scenario>/attempt-<n>/`). Results
/// are in plan order.
/// Scenario namespaces are deleted afterwards unless the cluster is kept.
pub async fn run_scenarios(
    catalog: &crate::scenario::Catalog,
    env: &Environment,
    plan: &Plan,
    profile: &Profile,
    options: &ScenarioOptions,
    cancel: &CancellationToken,
    progress: &Progress,
) -> crate::report::RunReport {
    use crate::report::Outcome;
    let mut live = crate::runner::execute::Live::for_profile(
        env.client.clone(),
        profile,
        env.access.proxy.clone(),
        catalog.project.fixtures_dir(),
    );
    live.sandbox = options.sandbox;
    let run = Shared { catalog, env, plan, profile, options, cancel, progress, live: &live };
    let exclusive: Vec<bool> = plan.scenarios.iter().map(|s| s.exclusive).collect();
    let results =
        crate::runner::run_all(plan.scenarios.len(), options.jobs, |i| exclusive[i], |i| run_scenario(&run, i)).await;
    if results.iter().any(|r| matches!(r.outcome, Outcome::Failed { .. } | Outcome::Flaky { .. })) {
        helm_values_in_force(env, plan, &env.run.artifacts().join("helm")).await;
    }
    report_of(plan, profile, results)
}

/// What every scenario of a run shares.
struct Shared<'a> {
    catalog: &'a crate::scenario::Catalog,
    env: &'a Environment,
    plan: &'a Plan,
    profile: &'a Profile,
    options: &'a ScenarioOptions,
    cancel: &'a CancellationToken,
    progress: &'a Progress,
    live: &'a crate::runner::execute::Live,
}

/// Scenario `number` of the plan, with its retries: a pass after a failure is flaky (the first
/// failure kept as its evidence), never a clean pass.
async fn run_scenario(run: &Shared<'_>, number: usize) -> crate::report::ScenarioResult {
    use crate::report::{Outcome, ScenarioResult};
    let planned = &run.plan.scenarios[number];
    let started = std::time::Instant::now();
    let attempts = run.options.retries + 1;
    let mut first_failure: Option<ScenarioResult> = None;
    let mut last = None;
    let mut tried = 0;
    for attempt in 0..attempts {
        // Stopped (Ctrl-C, budget): a scenario not begun is skipped; one that failed keeps its
        // failure and is not tried again.
        if run.cancel.is_cancelled() && attempt > 0 {
            break;
        }
        if run.cancel.is_cancelled() {
            last = Some(ScenarioResult {
                scenario: planned.name.clone(),
                mesh: run.profile.mesh().to_string(),
                outcome: Outcome::Skipped { reason: crate::budget::why_stopped(run.options.deadline.as_ref()) },
                duration_ms: 0,
                artifacts: None,
                notes: Vec::new(),
                phases: Vec::new(),
            });
            break;
        }
        let (result, retryable) = attempt_scenario(run, number, attempt).await;
        tried += 1;
        let failed = matches!(result.outcome, Outcome::Failed { .. });
        if !failed {
            last = Some(match (&result.outcome, first_failure.take().map(|f| (f.outcome, f.artifacts))) {
                (Outcome::Passed, Some((Outcome::Failed { verdict, evidence, .. }, artifacts))) => {
                    let mut notes = result.notes;
                    notes.insert(0, format!("passed on attempt {} of {attempts} after failing", attempt + 1));
                    ScenarioResult { outcome: Outcome::Flaky { verdict, evidence }, artifacts, notes, ..result }
                }
                _ => result,
            });
            break;
        }
        if first_failure.is_none() {
            first_failure = Some(result.clone());
        }
        last = Some(result);
        // Only a step that failed may pass next time; a scenario that does not load, a snapshot
        // that differs or a mutant that survives would fail the same way again.
        if !retryable {
            break;
        }
    }
    let mut result = match (last, first_failure) {
        // Every attempt made failed: the first failure is the one to read; the last is noted.
        (Some(last), Some(mut first)) if matches!(last.outcome, Outcome::Failed { .. }) && tried > 1 => {
            first.notes.push(format!("failed all {tried} attempts; the last: {}", verdict_of(&last.outcome)));
            first
        }
        (Some(last), _) => last,
        // No attempt ran: every path above sets `last`; said, not assumed.
        (None, _) => ScenarioResult {
            scenario: planned.name.clone(),
            mesh: run.profile.mesh().to_string(),
            outcome: Outcome::Skipped { reason: "no attempt ran".into() },
            duration_ms: 0,
            artifacts: None,
            notes: Vec::new(),
            phases: Vec::new(),
        },
    };
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

fn verdict_of(outcome: &crate::report::Outcome) -> &str {
    match outcome {
        crate::report::Outcome::Failed { verdict, .. } | crate::report::Outcome::Flaky { verdict, .. } => verdict,
        _ => "",
    }
}

/// One attempt of scenario `number`: the first in the plan's namespace, attempt n > 1 in a
/// namespace of its own (`<scenario>-<run>-<n>`), its artifacts under
/// `artifacts/<scenario>/attempt-<n>/`. Also says whether a failure may pass on a retry (a
/// step failed, rather than the scenario not loading, its snapshot or a mutant).
async fn attempt_scenario(run: &Shared<'_>, number: usize, attempt: u32) -> (crate::report::ScenarioResult, bool) {
    use crate::report::{Outcome, ScenarioResult};
    let (catalog, env, plan, profile, options, cancel, live) =
        (run.catalog, run.env, run.plan, run.profile, run.options, run.cancel, run.live);
    let planned = &plan.scenarios[number];
    let mesh = profile.mesh();
    let total = plan.scenarios.len();
    let run_id = if attempt == 0 { plan.run.clone() } else { format!("{}-{}", plan.run, attempt + 1) };
    let ctx = crate::scenario::RunContext::new(&run_id, mesh);
    let fixtures_dir = catalog.project.fixtures_dir();
    let retry = if attempt == 0 { String::new() } else { format!(" (attempt {})", attempt + 1) };
    let phase = run.progress.phase(&format!("scenario {}/{total} {}{retry}", number + 1, planned.name));
    let failed_result = |verdict: &str, evidence: String| ScenarioResult {
        scenario: planned.name.clone(),
        mesh: mesh.to_string(),
        outcome: Outcome::Failed { verdict: verdict.to_owned(), evidence, kind: FailureKind::Error },
        duration_ms: 0,
        artifacts: None,
        notes: Vec::new(),
        phases: Vec::new(),
    };
    let file = catalog.project.root().join(&planned.file);
    let loaded = match crate::scenario::load(&file, &fixtures_dir, &ctx, profile) {
        Ok(l) => l,
        Err(e) => {
            phase.finish(false, "does not load");
            return (failed_result("the scenario does not load", e.to_string()), false);
        }
    };
    // `--no-install` runs on what the cluster has; a scenario needing what only the harness's
    // stack brings is skipped with why, never run to a failure that is not Kong's or the mesh's.
    if let Some(reason) = plan.discover.as_ref().and_then(|_| missing_without_install(&loaded.scenario)) {
        phase.finish(true, &format!("skipped: {reason}"));
        let skipped = ScenarioResult {
            scenario: planned.name.clone(),
            mesh: mesh.to_string(),
            outcome: Outcome::Skipped { reason },
            duration_ms: 0,
            artifacts: None,
            notes: Vec::new(),
            phases: Vec::new(),
        };
        return (skipped, false);
    }
    phase.waiting_for(&format!("{} step(s)", loaded.scenario.steps.len()));
    let outcome = live.run(&loaded, &plan.run, cancel).await;
    let first = env.run.artifacts().join(&planned.name);
    let dir = if attempt == 0 { first } else { first.join(format!("attempt-{}", attempt + 1)) };
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("steps.json"), serde_json::to_string_pretty(&outcome.steps).unwrap_or_default());
    let _ = std::fs::write(
        dir.join("observations.yaml"),
        serde_saphyr::to_string(&outcome.observations).unwrap_or_default(),
    );
    // Every traffic step's raw answers, replayable offline: `cargo xtask replay <dir>`.
    if !outcome.transcripts.is_empty() {
        let transcripts = dir.join("transcripts");
        let _ = std::fs::create_dir_all(&transcripts);
        for (name, text) in &outcome.transcripts {
            // Named by the harness (`<step>-<kind>.yaml`); joined only through the name check.
            if let Ok(path) = crate::names::join_under(&transcripts, name) {
                let _ = std::fs::write(path, text);
            }
        }
    }
    let mut notes = Vec::new();
    let snapshot = match (outcome.failure(), options.snapshots, loaded.scenario.snapshot.enabled) {
        (None, Some(mode), true) => snapshot_verdict(catalog, &outcome, mesh, mode, &mut notes),
        _ => Ok(()),
    };
    let mut result_outcome = match (outcome.failure(), snapshot) {
        (None, Ok(())) => {
            phase.finish(true, "passed");
            Outcome::Passed
        }
        (None, Err(difference)) => {
            let verdict = if difference.starts_with("no stored snapshot") {
                "no stored snapshot (required in CI)"
            } else {
                "the observations differ from the snapshot"
            };
            phase.finish(false, verdict);
            Outcome::Failed { verdict: verdict.into(), evidence: difference, kind: FailureKind::Verdict }
        }
        (Some(step), _) => {
            phase.finish(false, &format!("failed at: {}", step.step));
            let failed_at = outcome.steps.iter().position(|s| !s.passed).map(|n| (n, step.detail.as_str()));
            // Evidence from this attempt's namespace.
            let mut here = planned.clone();
            if attempt > 0 {
                for o in &mut here.objects {
                    if o.namespace.as_deref() == Some(planned.namespace.as_str()) {
                        o.namespace = Some(outcome.namespace.clone());
                    }
                }
                here.namespace = outcome.namespace.clone();
            }
            collect_evidence(catalog, env, plan, profile, &here, failed_at, &dir).await;
            let verdict = match options.deadline.as_ref().filter(|d| d.passed()) {
                Some(d) => format!("step `{}` was stopped: {}", step.step, d.reason()),
                None => format!("step `{}` failed", step.step),
            };
            Outcome::Failed {
                verdict,
                evidence: step.detail.clone(),
                kind: step.failure.unwrap_or(FailureKind::Verdict),
            }
        }
    };
    // A repro bundle's run is judged by what the bundle expects (a bug that reproduces
    // passes), unless it was stopped before it could show anything.
    if let Some(expected) = options.expected.as_ref().filter(|_| !cancel.is_cancelled()) {
        let failed = outcome.steps.iter().position(|s| !s.passed).map(|n| {
            let step = &outcome.steps[n];
            (n, step.detail.as_str(), step.failure.unwrap_or(FailureKind::Verdict))
        });
        result_outcome = match (expected.judge(failed), failed) {
            // The bug showed again: what the bundle asked for, and not a clean pass.
            (Ok(seen), Some((step, _, _))) if expected.outcome == crate::scenario::bundle::ExpectedOutcome::Fails => {
                Outcome::Reproduced { verdict: format!("reproduced: step {step} failed as expected"), evidence: seen }
            }
            (Ok(seen), _) => {
                notes.push(seen);
                Outcome::Passed
            }
            (Err(differs), _) => Outcome::Failed {
                verdict: format!("not as the bundle expects ({expected})"),
                evidence: differs,
                kind: FailureKind::Verdict,
            },
        };
    }
    // Mutants need the steps to pass, not the snapshot: a missing snapshot (every scenario's, in
    // CI, until the first live run's are committed) must not keep them from running.
    let steps_passed = outcome.failure().is_none();
    if options.mutants
        && steps_passed
        && !cancel.is_cancelled()
        && let Err((weak, kind)) = mutants_verdict(live, &loaded, &plan.run, cancel, run.progress, &mut notes).await
    {
        let mutant_failure = Outcome::Failed {
            verdict: match kind {
                FailureKind::Verdict => "a mutant was not killed as declared".into(),
                _ => "a mutant could not be judged".into(),
            },
            evidence: weak,
            kind,
        };
        result_outcome = match result_outcome {
            // Both said: the snapshot's problem first, the mutants' after it.
            Outcome::Failed { verdict, evidence, kind: first } => Outcome::Failed {
                verdict,
                evidence: format!("{evidence}\n\nmutants:\n{}", outcome_evidence(&mutant_failure)),
                kind: first,
            },
            _ => mutant_failure,
        };
    }
    let failed = matches!(result_outcome, Outcome::Failed { .. });
    let retryable = failed && outcome.failure().is_some() && options.expected.is_none();
    if !options.keep_namespaces
        && let Err(e) = live.clean_up(&outcome.namespace, &plan.run).await
    {
        tracing::warn!("namespace {} not deleted: {}", outcome.namespace, crate::names::printable(&e.to_string()));
    }
    let result = ScenarioResult {
        scenario: planned.name.clone(),
        mesh: mesh.to_string(),
        outcome: result_outcome,
        duration_ms: 0,
        artifacts: failed.then_some(dir),
        notes,
        phases: outcome
            .steps
            .iter()
            .map(|s| crate::report::PhaseTime { phase: s.step.clone(), ms: s.duration_ms })
            .collect(),
    };
    (result, retryable)
}

/// What `scenario` needs that a `--no-install` run does not have, as the reason to skip it.
/// Discovery finds Kong and the mesh only; the trace collector is the harness's own (a Jaeger
/// it installs, and the tracing configuration of the mesh and Kong that points at it), so a
/// scenario covering `tracing` or with a `trace` step cannot be judged on such a cluster.
pub fn missing_without_install(scenario: &crate::scenario::Scenario) -> Option<String> {
    let traces = scenario.covers.contains(&crate::scenario::Tag::Tracing)
        || scenario.steps.iter().any(|s| matches!(s, crate::scenario::Step::Trace(_)));
    traces.then(|| "needs the harness's trace collector, which --no-install does not install".to_owned())
}

/// Compare a passing scenario's observations with its stored snapshot: a difference is the
/// scenario's failure; a new or updated snapshot is a note.
fn snapshot_verdict(
    catalog: &crate::scenario::Catalog,
    outcome: &crate::runner::execute::ScenarioRun,
    mesh: crate::scenario::Mesh,
    mode: crate::snapshot::SnapshotMode,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    use crate::snapshot::SnapshotOutcome;
    let observations = serde_json::to_value(&outcome.observations).unwrap_or_default();
    let dir = catalog.project.snapshots_dir();
    match crate::snapshot::check_scenario_snapshot(&dir, &outcome.scenario, mesh, &observations, mode) {
        Ok(SnapshotOutcome::Changed { pending, diff }) => Err(format!(
            "the observations differ from the stored snapshot (review with `cargo insta review`, or rerun with --update-snapshots; new version in {}):\n{diff}",
            pending.display()
        )),
        Ok(SnapshotOutcome::New { pending }) if mode == crate::snapshot::SnapshotMode::Require => Err(format!(
            "no stored snapshot, and in CI a missing snapshot fails (insta's semantics): review {} \
             (the nightly uploads it as an artifact) and commit it as `{}`",
            pending.display(),
            pending.with_extension("").with_extension("snap").display()
        )),
        Ok(SnapshotOutcome::New { pending }) => {
            notes.push(format!("new snapshot written for review: {} (`cargo insta review`)", pending.display()));
            Ok(())
        }
        Ok(SnapshotOutcome::Updated { path }) => {
            notes.push(format!("snapshot updated: {}", path.display()));
            Ok(())
        }
        Ok(SnapshotOutcome::Matched) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn outcome_evidence(outcome: &crate::report::Outcome) -> &str {
    match outcome {
        crate::report::Outcome::Failed { evidence, .. } => evidence,
        _ => "",
    }
}

/// Run a passing scenario's mutants on its mesh: each must be killed at its declared step.
/// Kills are notes; anything else is returned, one line per mutant, with its kind: a verdict
/// when a mutant survived or was killed elsewhere (the scenario's checks are weak), an error
/// when the harness could not apply, judge or restore one.
async fn mutants_verdict(
    live: &crate::runner::execute::Live,
    loaded: &crate::scenario::LoadedScenario,
    run: &str,
    cancel: &CancellationToken,
    progress: &Progress,
    notes: &mut Vec<String>,
) -> Result<(), (String, FailureKind)> {
    use crate::runner::execute::MutantOutcome;
    let mesh = live.mesh;
    let scenario = &loaded.scenario.name.value;
    let mut weak = Vec::new();
    let mut kind = FailureKind::Error;
    for mutant in loaded.scenario.mutants.iter().filter(|m| m.applies_to(mesh)) {
        let phase = progress.phase(&format!("mutant {} of {scenario}", mutant.name));
        let outcome = live.run_mutant(loaded, mutant, run, cancel).await;
        let weak_check = match &outcome {
            MutantOutcome::Survived => true,
            MutantOutcome::Killed { at, expected, .. } => at != expected,
            _ => false,
        };
        if weak_check {
            kind = FailureKind::Verdict;
        }
        let verdict = match outcome {
            MutantOutcome::Killed { at, expected, .. } if at == expected => {
                phase.finish(true, &format!("killed at step {at}"));
                notes.push(format!("mutant {} killed at step {at}, as declared", mutant.name));
                continue;
            }
            MutantOutcome::Killed { at, expected, detail } => {
                format!("mutant {} was killed at step {at}, not at step {expected} as declared: {detail}", mutant.name)
            }
            MutantOutcome::Unjudged { at, detail } => format!(
                "mutant {}: step {at} could not be judged (the harness failed, not the check), so the mutant is \
                 neither killed nor survived: {detail}",
                mutant.name
            ),
            MutantOutcome::Survived => format!(
                "mutant {} survived: steps 1..={} passed with the change ({}), so that check cannot fail this way",
                mutant.name, mutant.fails_at, mutant.why
            ),
            MutantOutcome::NotApplied(e) => format!("mutant {} could not be applied: {e}", mutant.name),
            MutantOutcome::NotRestored(e) => {
                format!("mutant {}: the scenario's fixtures could not be restored: {e}", mutant.name)
            }
        };
        phase.finish(false, &verdict);
        weak.push(verdict);
    }
    if weak.is_empty() { Ok(()) } else { Err((weak.join("\n"), kind)) }
}

/// The report of `plan`'s run with `results`: versions and the command that reruns it.
fn report_of(plan: &Plan, profile: &Profile, results: Vec<crate::report::ScenarioResult>) -> crate::report::RunReport {
    let mesh = profile.mesh();
    crate::report::RunReport {
        run: plan.run.clone(),
        profile: profile.name.clone(),
        mesh: mesh.to_string(),
        versions: versions_of_plan(plan, profile),
        rerun: format!("{} e2e {mesh} --profile {}", crate::command_name(), profile.name),
        results,
    }
}

/// The report as the run really happened, for every way a run ends (scenarios run, or the
/// environment or discovery failed): the versions that ran, and a rerun command with the
/// provider flags the run was given. [`report_of`] starts from the plan's pins; a provider that
/// never ran kind, or `--no-install` (no tool, chart or collector of the harness's; the cluster's
/// own Kubernetes), did not run them, so they are not listed, and what discovery found is.
pub fn as_run(
    report: &mut crate::report::RunReport,
    options: &Options,
    discovered: Option<&cluster::discover::Discovered>,
) {
    let versions = &mut report.versions;
    if options.provider != ProviderChoice::Kind {
        versions.remove("kind");
    }
    if options.provider == ProviderChoice::Existing {
        // The cluster's own Kubernetes, not the profile's pin (not read from the cluster).
        versions.remove("kubernetes");
    }
    if options.no_install {
        // Only the harness itself and the scenarios' own images (echo, client) run; the
        // collector's image is the stack's (stack::collector).
        let installed_only = |k: &str| {
            matches!(k, "helm" | "gateway-api" | "kong-gateway" | "kong-ingress-controller" | "image/jaeger")
                || k.starts_with("kong/")
                || [crate::model::Mesh::Istio, crate::model::Mesh::Linkerd].iter().any(|m| m.as_str() == k)
        };
        versions.retain(|k, _| !installed_only(k));
    }
    if let Some(found) = discovered {
        found.report_versions(versions);
    }
    report.rerun.push_str(&provider_flags(options));
}

/// The command-line flags that choose `options`' cluster, for a rerun line: values quoted for a
/// POSIX shell, and a password in the proxy URL replaced (reports are shared).
fn provider_flags(options: &Options) -> String {
    let mut flags = String::new();
    match options.provider {
        ProviderChoice::Kind => return flags,
        ProviderChoice::K3s => return " --provider k3s".into(),
        ProviderChoice::Existing => flags.push_str(" --provider existing"),
    }
    if let Some(context) = &options.context {
        flags.push_str(&format!(" --context {}", shell_word(context)));
    }
    if let Some(proxy) = &options.proxy {
        flags.push_str(&format!(" --proxy {}", shell_word(&without_password(proxy))));
    }
    if options.no_install {
        flags.push_str(" --no-install");
    }
    if let Some(namespace) = &options.kong_namespace {
        flags.push_str(&format!(" --kong-namespace {}", shell_word(namespace)));
    }
    flags
}

/// `word` as one POSIX shell word: as is when it holds only characters no shell treats
/// specially, else single-quoted (a `'` inside as `'\''`).
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A URL with the password of its user info (`scheme://user:password@host`) replaced.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            let hidden = if user_info.contains(':') { format!("{user}:[redacted]") } else { user.to_owned() };
            format!("{scheme}://{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Kong's, the collector's and the mesh's namespaces: where environment evidence lives.
fn system_namespaces(profile: &Profile) -> Vec<String> {
    let mut namespaces = vec![profile.versions.kong.namespace.clone(), profile.versions.tracing.namespace.clone()];
    namespaces.extend(match profile.mesh() {
        crate::scenario::Mesh::Istio => Some("istio-system".to_owned()),
        crate::scenario::Mesh::Linkerd => Some("linkerd".to_owned()),
        crate::scenario::Mesh::None => None,
    });
    namespaces
}

/// Failure evidence of one scenario: logs, events and objects (report::diagnostics), and a
/// repro bundle that reproduces it.
async fn collect_evidence(
    catalog: &crate::scenario::Catalog,
    env: &Environment,
    plan: &Plan,
    profile: &Profile,
    planned: &crate::plan::ScenarioPlan,
    failed_at: Option<(usize, &str)>,
    dir: &Path,
) {
    use crate::report::diagnostics::{Limits, ObjectRef, Target, collect};
    let mut namespaces = vec![planned.namespace.clone()];
    // `--no-install`: the cluster is the user's. Besides the scenario's own namespace, only
    // Kong's, which discovery found, is looked at, and only read.
    let read_only = match plan.discover {
        Some(_) => vec![profile.versions.kong.namespace.clone()],
        None => vec![],
    };
    match plan.discover {
        Some(_) => namespaces.extend(read_only.iter().cloned()),
        None => namespaces.extend(system_namespaces(profile)),
    }
    let objects = planned
        .objects
        .iter()
        .map(|o| ObjectRef {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            name: o.name.clone(),
            namespace: o.namespace.clone().or_else(|| Some(planned.namespace.clone())),
        })
        .collect();
    let exec = crate::report::diagnostics::KubeExec(env.client.clone());
    let target = Target { namespaces, objects, read_only };
    let collected = bounded(collect(env.client.clone(), &exec, &target, dir, Limits::default())).await;
    for e in &collected.errors {
        tracing::warn!("diagnostics of {}: {}", planned.name, crate::names::printable(&e.to_string()));
    }
    let values = crate::stack::values::in_force(&plan.environment);
    match crate::scenario::bundle::export(catalog, &planned.name, profile, values) {
        Ok(mut bundle) => {
            // The bundle reproduces what was seen: the step that failed, failing again.
            if let Some((step, detail)) = failed_at.filter(|(n, _)| *n > 0) {
                bundle.expected = crate::scenario::bundle::Expected {
                    outcome: crate::scenario::bundle::ExpectedOutcome::Fails,
                    step: Some(step),
                    // What failed, not only where: a later failure of another kind at the same
                    // step is not this bug reproducing.
                    detail: crate::scenario::bundle::failure_signature(detail),
                    note: format!("failed in run {}: {}", plan.run, crate::diagnostic::escape_controls(detail)),
                };
            }
            let _ = std::fs::write(dir.join("repro.yaml"), bundle.to_yaml());
        }
        Err(e) => tracing::warn!("no repro bundle for {}: {}", planned.name, crate::names::printable(&e.to_string())),
    }
}

/// `helm get values` of every release of the plan (what was in force, credentials redacted)
/// into `dir/<release>.values.yaml`; best effort.
async fn helm_values_in_force(env: &Environment, plan: &Plan, dir: &Path) {
    // All releases together within the budget's reserve for them, not each within its own.
    let bound = crate::budget::HELM_VALUES_RESERVE;
    if tokio::time::timeout(bound, helm_values_unbounded(env, plan, dir)).await.is_err() {
        tracing::warn!("helm get values did not finish within {}s; what is missing is not collected", bound.as_secs());
    }
}

async fn helm_values_unbounded(env: &Environment, plan: &Plan, dir: &Path) {
    let _ = std::fs::create_dir_all(dir);
    for action in &plan.environment {
        let crate::stack::Action::Helm(release) = action else { continue };
        let args =
            ["get", "values", &release.name, "--namespace", &release.namespace, "--output", "json", "--kubeconfig"]
                .map(str::to_owned)
                .into_iter()
                .chain([env.access.kubeconfig.display().to_string()]);
        let inv = crate::stack::install::helm_invocation(&env.helm, args, std::time::Duration::from_secs(60), &env.run);
        let file = dir.join(format!("{}.values.yaml", release.name));
        let text = match crate::command::Runner::run(&Process, &inv).await {
            Ok(out) => match serde_json::from_str::<serde_json::Value>(&out.stdout) {
                Ok(mut values) => {
                    crate::report::diagnostics::redact_values(&mut values);
                    serde_saphyr::to_string(&values).unwrap_or_default()
                }
                Err(e) => format!("# helm printed what is not JSON: {e}\n"),
            },
            Err(e) => format!("# not available: {e}\n"),
        };
        let _ = std::fs::write(file, text);
    }
}

/// Diagnostics never hold up teardown for long: what is not collected within
/// [`cluster::DIAGNOSTICS_BOUND`] is said, not waited for.
async fn bounded(
    collecting: impl std::future::Future<Output = crate::report::diagnostics::Collected>,
) -> crate::report::diagnostics::Collected {
    tokio::time::timeout(cluster::DIAGNOSTICS_BOUND, collecting).await.unwrap_or_else(|_| {
        crate::report::diagnostics::Collected {
            errors: vec![format!(
                "collection stopped after {}s; what was written is kept",
                cluster::DIAGNOSTICS_BOUND.as_secs()
            )],
            ..Default::default()
        }
    })
}

/// [`versions_of`], with the Kong Gateway and KIC images the plan's Kong release runs (the
/// chart's defaults, or the user's values).
pub fn versions_of_plan(plan: &Plan, profile: &Profile) -> std::collections::BTreeMap<String, String> {
    let mut out = versions_of(profile);
    let kong = plan.environment.iter().find_map(|a| match a {
        crate::stack::Action::Helm(r) if r.name == profile.versions.kong.release => Some(&r.values),
        _ => None,
    });
    if let Some(values) = kong {
        let (gateway, kic) = crate::stack::kong::images_in(values);
        out.insert("kong-gateway".into(), gateway);
        out.insert("kong-ingress-controller".into(), kic);
    }
    out
}

/// Everything installed, by component, for reports.
pub fn versions_of(profile: &Profile) -> std::collections::BTreeMap<String, String> {
    let v = &profile.versions;
    let mut out = std::collections::BTreeMap::new();
    out.insert("kubernetes".into(), profile.pins.kubernetes.clone());
    let chart_version = profile.pins.kong_chart_version.as_ref().unwrap_or(&v.kong.version);
    out.insert(format!("{}/{}", "kong", v.kong.chart), chart_version.clone());
    out.insert("harness".into(), crate::Provenance::this_build().to_string());
    out.insert("gateway-api".into(), v.gateway_api.version.clone());
    if let Some(mesh) = &profile.pins.mesh_version {
        out.insert(profile.mesh().to_string(), mesh.clone());
    }
    for (name, tool) in &v.tools {
        out.insert(name.clone(), tool.version.clone());
    }
    for (name, image) in &v.images {
        out.insert(format!("image/{name}"), image.clone());
    }
    out
}

/// The report of a run whose environment failed: the environment as a failed entry (with the
/// system namespaces' logs, events and the Helm values in force under `artifacts/environment/`),
/// every scenario skipped with the reason.
pub async fn environment_failed(
    env: &Environment,
    plan: &Plan,
    profile: &Profile,
    error: &str,
    deadline: Option<&crate::budget::Deadline>,
) -> crate::report::RunReport {
    use crate::report::diagnostics::{Limits, Target, collect};
    use crate::report::{Outcome, ScenarioResult};
    let dir = env.run.artifacts().join("environment");
    let mut notes = Vec::new();
    if plan.discover.is_some() {
        // `--no-install` on the user's cluster: discovery (or its verdict) failed, so the
        // namespaces the harness would look in are assumptions, not what the cluster runs. An
        // existing cluster is never exec'd into or read on a guess; the error is the evidence.
        notes.push(
            "no diagnostics collected: with --no-install the cluster is only read where discovery found Kong, \
             and discovery did not succeed"
                .to_owned(),
        );
    } else {
        let namespaces = system_namespaces(profile);
        let exec = crate::report::diagnostics::KubeExec(env.client.clone());
        let target = Target { namespaces, ..Target::default() };
        let collected = bounded(collect(env.client.clone(), &exec, &target, &dir, Limits::default())).await;
        for e in &collected.errors {
            tracing::warn!("environment diagnostics: {}", crate::names::printable(&e.to_string()));
        }
        helm_values_in_force(env, plan, &dir.join("helm")).await;
    }
    let mesh = profile.mesh().to_string();
    let (verdict, skipped) = match deadline.filter(|d| d.passed()) {
        Some(d) => (format!("the environment was not ready when {}", d.reason()), d.reason()),
        None => ("the environment did not become ready".to_owned(), "the environment failed first".to_owned()),
    };
    let mut results = vec![ScenarioResult {
        scenario: "environment".into(),
        mesh: mesh.clone(),
        outcome: Outcome::Failed { verdict, evidence: error.to_owned(), kind: FailureKind::Error },
        duration_ms: 0,
        artifacts: plan.discover.is_none().then_some(dir),
        notes,
        phases: Vec::new(),
    }];
    results.extend(plan.scenarios.iter().map(|s| ScenarioResult {
        scenario: s.name.clone(),
        mesh: mesh.clone(),
        outcome: Outcome::Skipped { reason: skipped.clone() },
        duration_ms: 0,
        artifacts: None,
        notes: Vec::new(),
        phases: Vec::new(),
    }));
    report_of(plan, profile, results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Reply, kube_mock, kube_status, serve};

    /// An environment around `client` whose run directory is `<work>/e2e/<run>`; no helm binary.
    fn environment(work: &Path, run: &str, mesh: &str, client: kube::Client, proxy: String) -> Environment {
        let run_dir = RunDir::create(&work.join("e2e"), run).unwrap();
        Environment {
            state: State {
                run: run.into(),
                provider: "existing".into(),
                cluster: "dev".into(),
                mesh: mesh.into(),
                profile: mesh.into(),
                fingerprint: String::new(),
                phase: Phase::Ready,
                proxy: None,
                leftovers: vec![],
                updated: 0,
            },
            provider: Provider::Existing { context: "dev".into(), source: PathBuf::new(), proxy: String::new() },
            access: Access { kubeconfig: run_dir.kubeconfig(), proxy },
            client,
            helm: work.join("no-helm-here"),
            reused: false,
            run: run_dir,
        }
    }

    /// A cluster where every apply succeeds, echo-v1 is available and its one pod carries the
    /// Istio proxy and the `version: v1` label.
    fn echo_cluster(req: &crate::testing::KubeRequest) -> (u16, serde_json::Value) {
        let resources = |group_version: &str, plural: &str, kind: &str| {
            serde_json::json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": [
                {"name": plural, "singularName": "", "namespaced": true, "kind": kind, "verbs": ["patch", "get"]}]})
        };
        match (req.method.as_str(), req.path.as_str()) {
            ("PATCH", _) => (200, serde_json::from_str(&req.body).unwrap_or_default()),
            (_, "/api/v1") => (200, resources("v1", "services", "Service")),
            (_, "/apis/apps/v1") => (200, resources("apps/v1", "deployments", "Deployment")),
            (_, "/apis/networking.k8s.io/v1") => (200, resources("networking.k8s.io/v1", "ingresses", "Ingress")),
            (_, p) if p.ends_with("/deployments/echo-v1") => {
                let namespace = p.split('/').nth(5).unwrap_or_default();
                (200, crate::testing::deployment("echo-v1", namespace, crate::testing::Rollout::Done))
            }
            (_, p) if p.ends_with("/pods") => (
                200,
                serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                    {"metadata": {"name": "echo-v1-6d8f9-abcde", "labels": {"app": "echo", "version": "v1"}},
                     "spec": {"containers": [{"name": "echo"}, {"name": "istio-proxy"}]}}]}),
            ),
            (_, p) if p.ends_with("/events") => {
                (200, serde_json::json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": []}))
            }
            _ => kube_status(404, "NotFound"),
        }
    }

    /// A run of two scenarios against the mock cluster and a stand-in Kong, where the API server
    /// refuses jwt-auth's namespace: ingress-basic passes, jwt-auth fails with its evidence.
    #[tokio::test]
    async fn a_failed_scenario_leaves_its_evidence_and_the_report_says_where() {
        let (catalog, profile, plan) = istio_plan_of(&["ingress-basic", "jwt-auth"]);
        let kong = serve(|head| {
            let mut upstream = head.clone();
            let ns = "ingress-basic-r1test";
            upstream.headers.insert("host".into(), format!("echo.{ns}.svc.cluster.local"));
            upstream.headers.insert("x-kong-request-id".into(), "1".into());
            Reply::json(200, crate::testing::echo_body(&upstream, "echo-v1-6d8f9-abcde", ns))
        })
        .await;
        let (client, _) = kube_mock(|req| match (req.method.as_str(), req.path.as_str()) {
            ("PATCH", p) if p.ends_with("/namespaces/jwt-auth-r1test") => kube_status(403, "Forbidden"),
            _ => echo_cluster(req),
        });
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let progress = Progress::lines(Box::new(std::io::sink()));
        let options = ScenarioOptions { keep_namespaces: true, ..Default::default() };
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        let outcomes: Vec<(String, bool)> = report
            .results
            .iter()
            .map(|r| (r.scenario.clone(), matches!(r.outcome, crate::report::Outcome::Passed)))
            .collect();
        assert_eq!(outcomes, [("ingress-basic".to_owned(), true), ("jwt-auth".to_owned(), false)]);
        let failed = &report.results[1];
        let dir = failed.artifacts.clone().expect("a failed scenario names its artifacts");
        for file in ["steps.json", "observations.yaml", "repro.yaml", "events/jwt-auth-r1test.txt"] {
            assert!(dir.join(file).is_file(), "{file} in {}", dir.display());
        }
        // The passing scenario's traffic steps left transcripts that replay to their verdicts.
        let transcripts = crate::replay::files(&[env.run.artifacts().join("ingress-basic/transcripts")]).unwrap();
        assert!(!transcripts.is_empty());
        for t in &transcripts {
            let outcome = crate::replay::replay_file(t);
            assert!(matches!(outcome, crate::replay::FileOutcome::Matches { .. }), "{}: {outcome:?}", t.display());
        }
        let crate::report::Outcome::Failed { evidence, .. } = &failed.outcome else { unreachable!() };
        assert!(evidence.contains("creating namespace jwt-auth-r1test"), "{evidence}");
        // Helm could not be asked (no binary): the file says so instead of the run failing.
        let values = std::fs::read_to_string(env.run.artifacts().join("helm/kong.values.yaml")).unwrap();
        assert!(values.starts_with("# not available"), "{values}");
        assert!(report.rerun.starts_with("cargo xtask e2e istio --profile istio"));
    }

    /// `repro run`'s verdict is the bundle's `expected`: a scenario whose steps all pass is
    /// "not reproduced" when the bundle expects step 2 to fail, and passes when it expects that.
    #[tokio::test]
    async fn a_repro_run_is_judged_by_what_the_bundle_expects() {
        use crate::scenario::bundle::{Expected, ExpectedOutcome};
        let (catalog, profile, plan) = istio_plan_of(&["ingress-basic"]);
        let kong = kong_for_any_run().await;
        let fails_at_2 = Expected { outcome: ExpectedOutcome::Fails, step: Some(2), detail: None, note: String::new() };
        // The namespace refused: "step 0" in the run's records, which no bundle step names.
        let refused = |req: &crate::testing::KubeRequest| match (req.method.as_str(), req.path.as_str()) {
            ("PATCH", p) if p.ends_with("/namespaces/ingress-basic-r1test") => kube_status(403, "Forbidden"),
            _ => echo_cluster(req),
        };
        {
            let (client, _) = kube_mock(refused);
            let work = tempfile::tempdir().unwrap();
            let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
            let options =
                ScenarioOptions { keep_namespaces: true, expected: Some(fails_at_2.clone()), ..Default::default() };
            let progress = Progress::lines(Box::new(std::io::sink()));
            let report =
                run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
            let crate::report::Outcome::Failed { evidence, .. } = &report.results[0].outcome else {
                panic!("{:?}", report.results[0].outcome)
            };
            assert!(
                evidence.starts_with("the bundle expects step 2 to fail; the namespace and fixtures failed instead"),
                "{evidence}"
            );
            // The bundle written for the failure cannot name step 0: it keeps `passes`.
            let bundle = std::fs::read_to_string(env.run.artifacts().join("ingress-basic/repro.yaml")).unwrap();
            assert!(bundle.contains("outcome: passes"), "{bundle}");
        }
        for (expected, passed) in [(Expected::passes(), true), (fails_at_2, false)] {
            let (client, _) = kube_mock(echo_cluster);
            let work = tempfile::tempdir().unwrap();
            let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
            let options =
                ScenarioOptions { keep_namespaces: true, expected: Some(expected.clone()), ..Default::default() };
            let progress = Progress::lines(Box::new(std::io::sink()));
            let report =
                run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
            let result = &report.results[0];
            match (&result.outcome, passed) {
                (crate::report::Outcome::Passed, true) => {
                    assert_eq!(result.notes, ["every step passed, as the bundle expects"]);
                }
                (crate::report::Outcome::Failed { verdict, evidence, .. }, false) => {
                    assert_eq!(verdict, "not as the bundle expects (step 2 fails)");
                    assert_eq!(evidence, "the bundle expects step 2 to fail; every step passed: not reproduced");
                }
                (other, _) => panic!("{expected}: {other:?}"),
            }
        }
    }

    /// A bundle whose bug shows again (step 2 fails as it expects, with its detail) is the
    /// run's success, and still never a clean pass: `reproduced` in the result, a JUnit failure
    /// of type `reproduced`, and the summary says so.
    #[tokio::test(start_paused = true)]
    async fn a_reproduced_bug_is_reported_as_reproduced_not_as_a_pass() {
        use crate::scenario::bundle::{Expected, ExpectedOutcome};
        let (catalog, profile, plan) = istio_plan_of(&["ingress-basic"]);
        let kong = serve(|_| Reply::Respond {
            status: 503,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: "no healthy upstream".into(),
        })
        .await;
        let (client, _) = kube_mock(echo_cluster);
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let expected = Expected {
            outcome: ExpectedOutcome::Fails,
            step: Some(2),
            detail: Some("status 503 is not 200".into()),
            note: String::new(),
        };
        let options = ScenarioOptions { keep_namespaces: true, expected: Some(expected), ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        let crate::report::Outcome::Reproduced { verdict, evidence } = &report.results[0].outcome else {
            panic!("{:?}", report.results[0].outcome)
        };
        assert_eq!(verdict, "reproduced: step 2 failed as expected");
        assert!(evidence.contains("status 503 is not 200"), "{evidence}");
        assert!(report.passed(), "the run showed what the bundle expects");
        let junit = crate::report::junit(&report).unwrap();
        assert!(junit.contains("failures=\"1\"") && junit.contains("type=\"reproduced\""), "{junit}");
        let summary = crate::report::markdown(&report);
        assert!(summary.contains("(bug reproduced)") && summary.contains("**reproduced**"), "{summary}");
        assert!(!summary.contains("1 passed"), "{summary}");
    }

    /// This checkout's catalog, its istio profile and a plan of run `r1test` holding `names`.
    fn istio_plan_of(names: &[&str]) -> (crate::scenario::Catalog, Profile, Plan) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = crate::scenario::Catalog::open(crate::project::Project::at(&root)).unwrap();
        let profile = catalog.versions.profile("istio", Path::new("versions.toml")).unwrap();
        let mut plan = crate::plan::build(&catalog, &profile, "r1test", HostPorts { http: 1, https: 2 }).unwrap();
        plan.scenarios.retain(|s| names.contains(&s.name.as_str()));
        (catalog, profile, plan)
    }

    /// A Kong stand-in answering for whichever run a request's host names
    /// (`<scenario>.<run>.test`), as the echo backend behind it would.
    async fn kong_for_any_run() -> std::net::SocketAddr {
        serve(|head| {
            let host = head.headers.get("host").cloned().unwrap_or_default();
            let mut parts = host.split('.');
            let (scenario, run) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            let ns = format!("{scenario}-{run}");
            let mut upstream = head.clone();
            upstream.headers.insert("host".into(), format!("echo.{ns}.svc.cluster.local"));
            upstream.headers.insert("x-kong-request-id".into(), "1".into());
            Reply::json(200, crate::testing::echo_body(&upstream, "echo-v1-6d8f9-abcde", &ns))
        })
        .await
    }

    /// `--retries`: a scenario that fails once (its first namespace refused) and passes in a
    /// fresh namespace is flaky, with the first failure's evidence and artifacts kept; without
    /// retries it fails. (Concurrency and order are the scheduler's, tested in `runner`.)
    #[tokio::test]
    async fn retried_scenarios_pass_as_flaky_in_a_fresh_namespace_and_keep_the_first_failure() {
        let (catalog, profile, plan) = istio_plan_of(&["ingress-basic"]);
        let kong = kong_for_any_run().await;
        for retries in [0, 1] {
            let (client, asked) = kube_mock(|req| match (req.method.as_str(), req.path.as_str()) {
                ("PATCH", p) if p.ends_with("/namespaces/ingress-basic-r1test") => kube_status(403, "Forbidden"),
                _ => echo_cluster(req),
            });
            let work = tempfile::tempdir().unwrap();
            let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
            let options = ScenarioOptions { keep_namespaces: true, jobs: 2, retries, ..Default::default() };
            let progress = Progress::lines(Box::new(std::io::sink()));
            let report =
                run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
            let first = &report.results[0];
            match (retries, &first.outcome) {
                (0, crate::report::Outcome::Failed { evidence, .. }) => {
                    assert!(evidence.contains("creating namespace ingress-basic-r1test"), "{evidence}");
                }
                (1, crate::report::Outcome::Flaky { evidence, .. }) => {
                    assert!(
                        evidence.contains("creating namespace ingress-basic-r1test"),
                        "the first failure: {evidence}"
                    );
                    assert_eq!(first.notes[0], "passed on attempt 2 of 2 after failing");
                    let dir = first.artifacts.clone().expect("the first failure's artifacts");
                    assert!(dir.ends_with("artifacts/ingress-basic") && dir.join("steps.json").is_file());
                    let created = asked
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|r| r.method == "PATCH" && r.path.ends_with("/namespaces/ingress-basic-r1test-2"));
                    assert!(created, "the retry ran in a namespace of its own");
                    assert!(report.passed(), "flaky is not a failure of the run");
                }
                (r, other) => panic!("retries {r}: {other:?}"),
            }
            assert!(!first.phases.is_empty(), "phases are recorded");
        }
        // Failing every time: the first failure is reported, the count and the last noted.
        let (client, _) = kube_mock(|req| match (req.method.as_str(), req.path.as_str()) {
            ("PATCH", p) if p.contains("/namespaces/ingress-basic-r1test") => kube_status(403, "Forbidden"),
            _ => echo_cluster(req),
        });
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let options = ScenarioOptions { keep_namespaces: true, retries: 1, ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        let r = &report.results[0];
        let crate::report::Outcome::Failed { evidence, .. } = &r.outcome else { panic!("{r:?}") };
        assert!(evidence.contains("creating namespace ingress-basic-r1test:"), "the first: {evidence}");
        assert!(r.notes.iter().any(|n| n.starts_with("failed all 2 attempts; the last: ")), "{:?}", r.notes);

        // Stopped right after the first failure: no retry, and the failure stays a failure
        // (never turned into "skipped").
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let (client, asked) = kube_mock(move |req| match (req.method.as_str(), req.path.as_str()) {
            ("PATCH", p) if p.ends_with("/namespaces/ingress-basic-r1test") => {
                stop.cancel();
                kube_status(403, "Forbidden")
            }
            _ => echo_cluster(req),
        });
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let options = ScenarioOptions { keep_namespaces: true, retries: 2, ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &cancel, &progress).await;
        assert!(matches!(report.results[0].outcome, crate::report::Outcome::Failed { .. }), "{:?}", report.results[0]);
        let retried = asked.lock().unwrap().iter().any(|r| r.path.contains("ingress-basic-r1test-2"));
        assert!(!retried, "no attempt after the stop");
    }

    /// Ctrl-C during a run of scenarios side by side stops every running one at its current
    /// step (reported as failed there, with what it was doing) and starts no other (skipped).
    #[tokio::test]
    async fn an_interrupt_stops_every_running_scenario_and_starts_no_other() {
        let (catalog, profile, plan) = istio_plan_of(&["ingress-basic", "jwt-auth", "rate-limit"]);
        let kong = kong_for_any_run().await;
        let (client, _) = kube_mock(echo_cluster);
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let options = ScenarioOptions { keep_namespaces: true, jobs: 2, ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            stop.cancel();
        });
        let started = std::time::Instant::now();
        let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &cancel, &progress).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "stopped promptly: {:?}", started.elapsed());
        let outcomes: Vec<(&str, &crate::report::Outcome)> =
            report.results.iter().map(|r| (r.scenario.as_str(), &r.outcome)).collect();
        assert_eq!(outcomes.len(), 3, "in plan order: {outcomes:?}");
        for (name, outcome) in &outcomes[..2] {
            let crate::report::Outcome::Failed { evidence, .. } = outcome else { panic!("{name}: {outcome:?}") };
            assert!(evidence.contains("interrupted"), "{name}: {evidence}");
        }
        assert_eq!(*outcomes[2].1, crate::report::Outcome::Skipped { reason: "interrupted".into() });
    }

    /// A run whose budget ran out starts no further scenario: each is skipped with the budget's
    /// reason (not "interrupted"), and nothing is applied.
    #[tokio::test(start_paused = true)]
    async fn scenarios_after_the_budget_ran_out_are_skipped_as_out_of_time() {
        let (catalog, profile, plan) = istio_plan_of(&["ingress-basic", "jwt-auth"]);
        let (client, requests) = kube_mock(echo_cluster);
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, "http://127.0.0.1:9".into());
        let cancel = CancellationToken::new();
        let deadline = crate::budget::Budget::parse("20m").unwrap().arm(&cancel);
        tokio::time::sleep(std::time::Duration::from_secs(20 * 60)).await;
        assert!(cancel.is_cancelled());
        let options = ScenarioOptions { keep_namespaces: true, deadline: Some(deadline), ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report = run_scenarios(&catalog, &env, &plan, &profile, &options, &cancel, &progress).await;
        let reasons: Vec<String> = report
            .results
            .iter()
            .map(|r| match &r.outcome {
                crate::report::Outcome::Skipped { reason } => reason.clone(),
                other => panic!("{}: {other:?}", r.scenario),
            })
            .collect();
        assert_eq!(reasons, ["the run's time budget of 20m ran out (7m kept for evidence and teardown)"; 2]);
        assert!(requests.lock().unwrap().is_empty(), "nothing is sent to the cluster once the budget ran out");
    }

    /// Mutants need the steps to pass, not the snapshot: in CI a missing snapshot fails every
    /// scenario until the first live run's are committed, and the nightly's `--mutants` must
    /// still run them then. A surviving mutant is a verdict; both problems are reported.
    #[tokio::test]
    async fn mutants_run_when_the_steps_pass_even_if_the_snapshot_is_missing() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let project = tempfile::tempdir().unwrap();
        for sub in ["base", "kong", "istio"] {
            let to = project.path().join("fixtures").join(sub);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(root.join("fixtures").join(sub)).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
        }
        std::fs::create_dir_all(project.path().join("scenarios")).unwrap();
        std::fs::copy(root.join("versions.toml"), project.path().join("versions.toml")).unwrap();
        let scenario = std::fs::read_to_string(root.join("scenarios/ingress-basic.yaml")).unwrap()
            + "mutants:\n  - name: no-echo-service\n    why: without the Service Kong has nowhere to go\n    \
               remove: [{kind: Service, name: echo}]\n    fails-at: 2\n";
        std::fs::write(project.path().join("scenarios/ingress-basic.yaml"), scenario).unwrap();
        let catalog = crate::scenario::Catalog::open(crate::project::Project::at(project.path())).unwrap();
        let profile = catalog.versions.profile("istio", Path::new("versions.toml")).unwrap();
        let plan = crate::plan::build(&catalog, &profile, "r3", HostPorts { http: 1, https: 2 }).unwrap();
        // The stand-in Kong answers whatever the cluster holds: the mutant survives.
        let kong = kong_for_any_run().await;
        let answer = |req: &crate::testing::KubeRequest| match req.method.as_str() {
            "DELETE" => (200, serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
            _ => echo_cluster(req),
        };
        let options = ScenarioOptions {
            keep_namespaces: true,
            mutants: true,
            snapshots: Some(crate::snapshot::SnapshotMode::Require),
            ..Default::default()
        };
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r3", "istio", kube_mock(answer).0, format!("http://{kong}"));
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        let crate::report::Outcome::Failed { verdict, evidence, kind } = &report.results[0].outcome else {
            panic!("{:?}", report.results[0])
        };
        assert_eq!(verdict, "no stored snapshot (required in CI)");
        assert_eq!(*kind, FailureKind::Verdict);
        assert!(evidence.contains("mutants:") && evidence.contains("mutant no-echo-service survived"), "{evidence}");
    }

    /// `e2e`'s own snapshot comparison: a passing scenario without a stored snapshot passes and
    /// leaves `.snap.new` for review; with a different stored one it fails with the diff.
    #[tokio::test]
    async fn e2e_compares_snapshots_new_is_noted_and_changed_fails() {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_dir() {
                    copy(&entry.path(), &to.join(entry.file_name()));
                } else {
                    std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let project = tempfile::tempdir().unwrap();
        copy(&root.join("fixtures"), &project.path().join("fixtures"));
        std::fs::create_dir_all(project.path().join("scenarios")).unwrap();
        std::fs::copy(root.join("versions.toml"), project.path().join("versions.toml")).unwrap();
        std::fs::copy(root.join("scenarios/ingress-basic.yaml"), project.path().join("scenarios/ingress-basic.yaml"))
            .unwrap();
        let catalog = crate::scenario::Catalog::open(crate::project::Project::at(project.path())).unwrap();
        let profile = catalog.versions.profile("istio", Path::new("versions.toml")).unwrap();
        let plan = crate::plan::build(&catalog, &profile, "r3", HostPorts { http: 1, https: 2 }).unwrap();
        let kong = serve(|head| {
            let mut upstream = head.clone();
            let ns = "ingress-basic-r3";
            upstream.headers.insert("host".into(), format!("echo.{ns}.svc.cluster.local"));
            upstream.headers.insert("x-kong-request-id".into(), "1".into());
            Reply::json(200, crate::testing::echo_body(&upstream, "echo-v1-6d8f9-abcde", ns))
        })
        .await;
        let options = ScenarioOptions {
            keep_namespaces: true,
            snapshots: Some(crate::snapshot::SnapshotMode::Compare),
            ..Default::default()
        };
        let work = tempfile::tempdir().unwrap();
        let progress = Progress::lines(Box::new(std::io::sink()));
        let snap = catalog.project.snapshots_dir().join("ingress-basic__istio.snap");

        let env = environment(work.path(), "r3", "istio", kube_mock(echo_cluster).0, format!("http://{kong}"));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        assert!(matches!(report.results[0].outcome, crate::report::Outcome::Passed), "{:?}", report.results[0]);
        assert!(report.results[0].notes[0].starts_with("new snapshot written for review"), "{:?}", report.results[0]);
        let pending = snap.with_extension("snap.new");
        let text = std::fs::read_to_string(&pending).unwrap();
        // In CI (insta's semantics) the same missing snapshot fails, and is still left for review.
        let _ = std::fs::remove_file(&pending);
        let strict = ScenarioOptions { snapshots: Some(crate::snapshot::SnapshotMode::Require), ..options.clone() };
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r3", "istio", kube_mock(echo_cluster).0, format!("http://{kong}"));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &strict, &CancellationToken::new(), &progress).await;
        let crate::report::Outcome::Failed { evidence, .. } = &report.results[0].outcome else {
            panic!("{:?}", report.results[0])
        };
        assert!(evidence.starts_with("no stored snapshot, and in CI a missing snapshot fails"), "{evidence}");
        assert_eq!(std::fs::read_to_string(&pending).unwrap(), text);
        // Accept it with a changed status, as if an earlier run had seen another answer.
        std::fs::write(&snap, text.replace("status: 200", "status: 201")).unwrap();

        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r3", "istio", kube_mock(echo_cluster).0, format!("http://{kong}"));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        let crate::report::Outcome::Failed { verdict, evidence, .. } = &report.results[0].outcome else {
            panic!("{:?}", report.results[0])
        };
        assert_eq!(verdict, "the observations differ from the snapshot");
        assert!(evidence.contains("-  status: 201") && evidence.contains("+  status: 200"), "{evidence}");

        // A retry runs in its own namespace (`...-r3-2`) and still matches the accepted snapshot:
        // observations are normalised with the run id the attempt was rendered with.
        std::fs::write(&snap, &text).unwrap();
        let _ = std::fs::remove_file(&pending);
        let kong = kong_for_any_run().await;
        let refuse_first = |req: &crate::testing::KubeRequest| match (req.method.as_str(), req.path.as_str()) {
            ("PATCH", p) if p.ends_with("/namespaces/ingress-basic-r3") => kube_status(403, "Forbidden"),
            _ => echo_cluster(req),
        };
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r3", "istio", kube_mock(refuse_first).0, format!("http://{kong}"));
        let options = ScenarioOptions { retries: 1, ..options };
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        assert!(matches!(report.results[0].outcome, crate::report::Outcome::Flaky { .. }), "{:?}", report.results[0]);
        assert!(!pending.exists(), "the retry matched the snapshot: nothing new to review");
    }

    #[tokio::test]
    async fn an_environment_failure_fails_the_run_and_skips_every_scenario() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = crate::scenario::Catalog::open(crate::project::Project::at(&root)).unwrap();
        let profile = catalog.versions.profile("linkerd", Path::new("versions.toml")).unwrap();
        let plan = crate::plan::build(&catalog, &profile, "r2", HostPorts { http: 1, https: 2 }).unwrap();
        let (client, asked) = kube_mock(|req| match req.path.rsplit('/').next() {
            Some("pods") => {
                (200, serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}))
            }
            Some("events") => {
                (200, serde_json::json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": []}))
            }
            _ => kube_status(404, "NotFound"),
        });
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r2", "linkerd", client, String::new());
        let report = environment_failed(
            &env,
            &plan,
            &profile,
            "webhook linkerd-proxy-injector-webhook-config serving: not reached",
            None,
        )
        .await;
        assert!(!report.passed());
        assert_eq!(report.results[0].scenario, "environment");
        assert!(report.results[1..].iter().all(|r| matches!(r.outcome, crate::report::Outcome::Skipped { .. })));
        assert_eq!(report.results.len(), plan.scenarios.len() + 1);
        let namespaces: std::collections::BTreeSet<String> = asked
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.ends_with("/pods"))
            .map(|r| r.path.split('/').nth(4).unwrap_or_default().to_owned())
            .collect();
        assert_eq!(namespaces, ["kong", "linkerd", "tracing"].map(str::to_owned).into());
        assert!(env.run.artifacts().join("environment/helm/linkerd-control-plane.values.yaml").is_file());
    }

    /// `--no-install` on a cluster discovery could not use: nothing is asked of the cluster for
    /// "evidence" (no pod list, no log, no exec in namespaces the harness only assumed), the
    /// failure says why, and every scenario is skipped.
    #[tokio::test]
    async fn a_failed_discovery_collects_nothing_from_the_cluster() {
        let (_, profile, mut plan) = istio_plan_of(&["ingress-basic"]);
        plan.install_nothing(None);
        let (client, asked) = kube_mock(echo_cluster);
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, "http://127.0.0.1:9".into());
        let error = "discovering what the cluster runs: no Service with a kong-proxy port";
        let report = environment_failed(&env, &plan, &profile, error, None).await;
        assert!(asked.lock().unwrap().is_empty(), "{:?}", asked.lock().unwrap());
        let failed = &report.results[0];
        assert!(matches!(&failed.outcome, crate::report::Outcome::Failed { evidence, .. } if evidence == error));
        assert_eq!(failed.artifacts, None);
        assert!(failed.notes[0].starts_with("no diagnostics collected"), "{:?}", failed.notes);
        assert!(matches!(report.results[1].outcome, crate::report::Outcome::Skipped { .. }));
    }

    /// A scenario failing on a `--no-install` cluster: its evidence comes from its own
    /// namespace and from Kong's (found by discovery, only read); nothing is exec'd outside the
    /// scenario's namespace, and namespaces the harness would install into are not looked at.
    #[tokio::test]
    async fn no_install_evidence_reads_kongs_namespace_and_execs_only_in_the_scenarios() {
        let (catalog, profile, mut plan) = istio_plan_of(&["jwt-auth"]);
        plan.install_nothing(Some("edge"));
        let mut profile = profile;
        profile.versions.kong.namespace = "edge".into();
        let kong = kong_for_any_run().await;
        let (client, asked) = kube_mock(|req| match (req.method.as_str(), req.path.as_str()) {
            ("PATCH", p) if p.ends_with("/namespaces/jwt-auth-r1test") => kube_status(403, "Forbidden"),
            _ => echo_cluster(req),
        });
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let options = ScenarioOptions { keep_namespaces: true, ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        assert!(matches!(report.results[0].outcome, crate::report::Outcome::Failed { .. }));
        let asked = asked.lock().unwrap().clone();
        let namespaces: std::collections::BTreeSet<&str> =
            asked.iter().filter_map(|r| r.path.split("/namespaces/").nth(1)?.split('/').next()).collect();
        assert_eq!(namespaces, ["edge", "jwt-auth-r1test"].into(), "{asked:?}");
        let execs: Vec<&str> = asked.iter().filter(|r| r.path.ends_with("/exec")).map(|r| r.path.as_str()).collect();
        assert!(execs.iter().all(|p| p.contains("/namespaces/jwt-auth-r1test/")), "{execs:?}");
        assert!(asked.iter().any(|r| r.path == "/api/v1/namespaces/edge/pods"), "Kong's pods are read");
    }

    /// `--no-install` runs without the harness's trace collector: a tracing scenario is
    /// skipped with why (not run, not passed), the others run.
    #[tokio::test]
    async fn no_install_skips_scenarios_that_need_the_harness_collector() {
        let (catalog, profile, mut plan) = istio_plan_of(&["ingress-basic", "tracing-istio"]);
        assert_eq!(plan.scenarios.len(), 2);
        plan.install_nothing(None);
        let kong = kong_for_any_run().await;
        let (client, asked) = kube_mock(echo_cluster);
        let work = tempfile::tempdir().unwrap();
        let env = environment(work.path(), "r1test", "istio", client, format!("http://{kong}"));
        let options = ScenarioOptions { keep_namespaces: true, ..Default::default() };
        let progress = Progress::lines(Box::new(std::io::sink()));
        let report =
            run_scenarios(&catalog, &env, &plan, &profile, &options, &CancellationToken::new(), &progress).await;
        let outcomes: Vec<(&str, &crate::report::Outcome)> =
            report.results.iter().map(|r| (r.scenario.as_str(), &r.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("ingress-basic", &crate::report::Outcome::Passed),
                (
                    "tracing-istio",
                    &crate::report::Outcome::Skipped {
                        reason: "needs the harness's trace collector, which --no-install does not install".into()
                    }
                ),
            ]
        );
        assert!(!asked.lock().unwrap().iter().any(|r| r.path.contains("tracing-istio")), "nothing of it is applied");
    }

    /// The report lists what ran, and its rerun line repeats the provider flags: under
    /// `--provider existing --no-install` no kind, helm, chart, Gateway API, collector or
    /// Kubernetes pin is listed, with or without what discovery found; the proxy URL's password
    /// is not repeated.
    #[test]
    fn the_report_says_what_ran_and_how_to_rerun_it() {
        use crate::cluster::discover::{Discovered, FoundKong, FoundMesh};
        let (_, profile, plan) = istio_plan_of(&[]);
        let pins = report_of(&plan, &profile, vec![]);
        for key in ["kind", "helm", "kong/ingress", "gateway-api", "kubernetes", "istio", "image/jaeger"] {
            assert!(pins.versions.contains_key(key), "the plan's pins hold {key}");
        }
        let existing = Options {
            provider: ProviderChoice::Existing,
            context: Some("staging east".into()),
            proxy: Some("http://ops:s3cret@127.0.0.1:8080/".into()),
            no_install: true,
            kong_namespace: Some("edge".into()),
            ..Options::default()
        };
        let found = Discovered {
            kong: FoundKong {
                namespace: "edge".into(),
                release: "edge".into(),
                proxy_service: "edge-gateway-proxy".into(),
                selector: "app=edge-gateway".into(),
                chart: "gateway-3.2.0".into(),
                gateway_image: Some("kong:3.9.1".into()),
                controller_image: Some("kong/kubernetes-ingress-controller:3.5.13".into()),
                service_account: None,
                sidecar: Some(crate::model::Mesh::Istio),
                meshed_by: None,
            },
            mesh: Some(FoundMesh {
                mesh: crate::model::Mesh::Istio,
                namespace: "istio-system".into(),
                version: "1.29.2".into(),
            }),
        };
        for discovered in [None, Some(&found)] {
            let mut report = pins.clone();
            as_run(&mut report, &existing, discovered);
            let keys: Vec<&str> = report.versions.keys().map(String::as_str).collect();
            let expected: &[&str] = match discovered {
                None => &["harness", "image/client", "image/echo"],
                Some(_) => &[
                    "harness",
                    "image/client",
                    "image/echo",
                    "istio",
                    "kong chart (found)",
                    "kong-gateway",
                    "kong-ingress-controller",
                ],
            };
            assert_eq!(keys, expected);
            assert_eq!(
                report.rerun,
                "cargo xtask e2e istio --profile istio --provider existing --context 'staging east' \
                 --proxy 'http://ops:[redacted]@127.0.0.1:8080/' --no-install --kong-namespace edge"
            );
        }
        assert_eq!(as_run_of(&pins, &Options::default()).rerun, "cargo xtask e2e istio --profile istio");
        let k3s = as_run_of(&pins, &Options { provider: ProviderChoice::K3s, ..Options::default() });
        assert_eq!(k3s.rerun, "cargo xtask e2e istio --profile istio --provider k3s");
        assert!(!k3s.versions.contains_key("kind") && k3s.versions.contains_key("helm"));
    }

    fn as_run_of(report: &crate::report::RunReport, options: &Options) -> crate::report::RunReport {
        let mut report = report.clone();
        as_run(&mut report, options, None);
        report
    }

    /// An API server (here a loopback socket) that accepts connections and never answers once
    /// held `--no-install` discovery for more than five minutes. With the deadlines the harness
    /// sets on its client, the first call fails after [`API_READ_TIMEOUT`] of silence, and the
    /// error names that call. (Paused clock: the timers are tokio's.)
    #[tokio::test(start_paused = true)]
    async fn an_api_server_that_never_answers_fails_the_named_call_at_its_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            // Accept, read nothing, write nothing, close nothing.
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = client_from(config).unwrap();
        let started = tokio::time::Instant::now();
        let asked = tokio::time::timeout(DISCOVERY_TIMEOUT * 3, discover_within(&client, None, DISCOVERY_TIMEOUT));
        let err = asked.await.expect("discovery ends on its own").unwrap_err().to_string();
        let waited = started.elapsed();
        assert_eq!(err, "cannot list Services: ServiceError: client error (SendRequest): connection error: timed out");
        assert!(waited >= API_READ_TIMEOUT && waited < DISCOVERY_TIMEOUT, "{waited:?}");
        held.abort();
    }

    /// An API server that streams an answer without end (here 1 MiB of limit, the harness's own
    /// is [`API_ANSWER_LIMIT`]) fails the call once the limit is passed, instead of filling
    /// memory: kube-client reads list answers whole.
    #[tokio::test]
    async fn an_endless_api_answer_fails_at_the_limit() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else { return 0usize };
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head).await;
            let start = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(start.as_bytes()).await.is_err() {
                return 0;
            }
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
            let mut sent = 0usize;
            // Stops when the client hangs up; bounded so a broken client cannot keep the test.
            while sent < 512 * 1024 * 1024 && stream.write_all(chunk.as_bytes()).await.is_ok() {
                sent += 64 * 1024;
            }
            sent
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = client_with_limit(config, 1024 * 1024).unwrap();
        let services: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::all(client);
        let err = services.list(&Default::default()).await.unwrap_err().to_string();
        assert!(err.contains("length limit exceeded"), "{err}");
        let sent = served.await.unwrap();
        assert!(sent < 64 * 1024 * 1024, "the client stopped reading early: {sent} bytes sent");
    }

    /// A server that keeps every answer coming but never complete (here: a mock that holds
    /// each request) is bounded by discovery's own deadline, which says what it was reading.
    #[tokio::test(start_paused = true)]
    async fn discovery_as_a_whole_has_a_deadline() {
        let (service, mut handle) =
            tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
        let held = tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Some(request) = handle.next_request().await {
                pending.push(request);
            }
        });
        let client = kube::Client::new(service, "default");
        let started = tokio::time::Instant::now();
        let asked =
            tokio::time::timeout(DISCOVERY_TIMEOUT * 3, discover_within(&client, Some("kong"), DISCOVERY_TIMEOUT));
        let err = asked.await.expect("discovery ends on its own").unwrap_err().to_string();
        assert_eq!(started.elapsed(), DISCOVERY_TIMEOUT);
        assert_eq!(
            err,
            "cannot read Kong's proxy Service, its pods and the mesh's control plane: the API server's answers did \
             not complete within 120s"
        );
        held.abort();
    }

    #[test]
    fn impossible_options_are_refused_before_anything_happens() {
        let versions = crate::profile::Versions::parse(include_str!("../../versions.toml")).unwrap();
        let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
        let refused = |o: Options| check_options(&o, &profile).unwrap_err().to_string();
        let existing = Options { provider: ProviderChoice::Existing, ..Options::default() };
        assert!(refused(existing.clone()).contains("needs `--context NAME`"));
        let with_context = Options { context: Some("dev".into()), ..existing };
        assert!(refused(with_context.clone()).contains("needs `--proxy URL`"));
        let reusing = Options { proxy: Some("http://127.0.0.1:8080".into()), reuse: true, ..with_context };
        assert_eq!(refused(reusing.clone()), "--reuse works with the kind provider only");
        assert!(check_options(&Options { reuse: false, ..reusing }, &profile).is_ok());
        let k3s_kept = Options { provider: ProviderChoice::K3s, keep: Keep::Always, ..Options::default() };
        assert!(refused(k3s_kept).contains("use the kind provider for --keep"));
        // k3s images are pinned per minor: 1.35 has one (any patch), 1.36 none.
        let k3s = Options { provider: ProviderChoice::K3s, ..Options::default() };
        assert!(check_options(&k3s, &profile).is_ok());
        assert_eq!(profile.k3s_image(), versions.k3s.images.get("v1.35.1").map(String::as_str));
        let newer = versions.profile("istio-1-31-k8s-1-36", Path::new("versions.toml")).unwrap();
        assert!(check_options(&k3s, &newer).unwrap_err().to_string().contains("no k3s image for Kubernetes v1.36.4"));
        assert!(check_options(&Options::default(), &profile).is_ok());
    }
}
