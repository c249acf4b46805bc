//! The environment of a run: the pinned tools, the cluster (created, reused or the user's),
//! the stack installed or discovered, and its teardown.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::cluster::{self, Access, HostPorts, Keep, Kind, KindCluster, Phase, Provider, RunDir, State, Teardown};
use crate::plan::Plan;
use crate::profile::Profile;
use crate::progress::Progress;
use crate::stack::install::Installer;
use crate::tools::{self, Cache, Http};

use super::{Environment, Options, ProviderChoice, SessionError, World};
use crate::command::Runner;

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

pub(super) fn client_with_limit(config: kube::Config, limit: usize) -> Result<kube::Client, kube::Error> {
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
    let fingerprint = cluster::fingerprint(provider, profile, &environment);
    // A run that upgrades the mesh leaves a cluster that is not this stack: no other run may
    // pick it up as one.
    if plan.scenarios.iter().any(|s| s.upgrades) { format!("{fingerprint}+upgraded") } else { fingerprint }
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
        // istio-cni writes its plugin where kind's CNI reads it; k3s keeps its CNI elsewhere and
        // needs the charts' k3s platform profile (istio manifests/charts/istio-cni
        // files/profile-platform-k3s.yaml), which the stack does not set.
        ProviderChoice::K3s if profile.mesh() == crate::model::Mesh::IstioAmbient => {
            refuse("istio-ambient runs on kind: on k3s istio-cni needs k3s's CNI paths, which the stack does not set")
        }
        ProviderChoice::K3s if options.keep != Keep::Never => {
            refuse("k3s clusters live as long as the run; use the kind provider for --keep")
        }
        ProviderChoice::K3s if profile.k3s_image().is_none() => Err(SessionError::Options(format!(
            "no k3s image for Kubernetes {} in versions.toml [k3s.images]",
            profile.pins.kubernetes
        ))),
        // After the checks of what was asked, so they hold in every build.
        ProviderChoice::K3s if !cluster::k3s::BUILT => refuse(cluster::k3s::NOT_BUILT),
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
pub async fn create_cluster<W: World>(
    world: &W,
    root: &Path,
    plan: &Plan,
    profile: &Profile,
    options: &Options,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<Environment<W::Runner>, SessionError> {
    check_options(options, profile)?;
    let cache = world.tool_cache(root);
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
        r = world.tools(profile, &cache, needs_kind, needs_helm) => r,
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
    let kind = Kind { binary: kind_bin, runner: world.runner() };
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
                let client = world.client(&access.kubeconfig).await?;
                // The stack is unchanged (same fingerprint): `install` only runs the readiness gates.
                return Ok(Environment {
                    run,
                    state,
                    provider: Provider::Kind { kind, cluster },
                    access,
                    client,
                    helm,
                    reused: true,
                    runner: world.runner(),
                });
            }
            Err(why) => crate::say_err!("not reusing a cluster: {why}; creating a new one"),
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
    let client = match world.client(&access.kubeconfig).await {
        Ok(c) => c,
        Err(e) => {
            cluster::teardown(&provider, &run, &mut state, options.keep, true, false).await;
            return Err(e);
        }
    };
    Ok(Environment { run, state, provider, access, client, helm, reused: false, runner: world.runner() })
}

/// Install `plan`'s environment into `env` (releases checked first on `existing` clusters).
#[allow(clippy::too_many_arguments)]
pub async fn install<W: World>(
    world: &W,
    root: &Path,
    env: &Environment<W::Runner>,
    plan: &Plan,
    profile: &Profile,
    options: &Options,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<(), SessionError> {
    let cache = world.tool_cache(root);
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
        match kind.load_images(&cluster.name, &images, world.puller(), &env.run, cancel).await {
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
        runner: &env.runner,
        helm: &env.helm,
        client: env.client.clone(),
        run: &env.run,
        versions: &profile.versions,
        cache: &cache,
        fetch: &world.fetcher()?,
        proxy_check: world.proxy_check(),
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
pub async fn discover<R>(
    env: &Environment<R>,
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
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        crate::diagnostic::escape_for_log(&found.to_string()).as_bytes(),
    );
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
pub(super) async fn discover_within(
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
pub async fn finish<R: Runner>(
    mut env: Environment<R>,
    keep: Keep,
    failed: bool,
    interrupted: bool,
) -> (Teardown, String) {
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
