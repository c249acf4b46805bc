//! `cargo xtask`: the front door of the Kong x service-mesh e2e harness.
//!
//! This file only parses arguments and renders results; everything else lives in the `harness`
//! library so it is tested there.

mod build_cost;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use harness::plan;
use harness::preflight::{self, BollardDocker};
use harness::project::Project;
use harness::scenario::{Catalog, Mesh};
use harness::snapshot::SnapshotMode;

/// End-to-end tests for Kong Ingress Controller in front of a service mesh (Istio or Linkerd).
///
/// Start with `doctor` (what your machine needs), then `list` (the
/// scenarios) and `e2e istio --dry-run` (what a run would do).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
struct Cli {
    /// The project to work in: a directory holding versions.toml and scenarios/ (default: the
    /// current directory or its nearest parent that is one).
    #[arg(long, global = true, value_name = "DIR")]
    project: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The project of this invocation, chosen once in `main`.
static PROJECT: std::sync::OnceLock<Project> = std::sync::OnceLock::new();

#[derive(Debug, Subcommand)]
enum Command {
    /// List the scenarios, with the meshes they run on and what they cover.
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check scenarios, manifests and Helm values for mesh and ingress mistakes, without a cluster.
    ///
    /// Scenario files (in scenarios/) are checked with their fixtures for each mesh they declare;
    /// other YAML files are read as Kubernetes manifests. Exit code 0 when there are no errors
    /// (warnings allowed), 1 when there are, 2 when an input cannot be read.
    Lint {
        /// Files or directories, searched recursively (default: every scenario).
        paths: Vec<PathBuf>,
        /// The mesh the manifests are meant for; scenarios are then checked on this mesh only.
        #[arg(long)]
        mesh: Option<Mesh>,
        /// Helm values for a chart: `kong/ingress=FILE` or `kong/kong=FILE` (repeatable).
        /// Scenarios without them are checked with the harness's own Kong values; other
        /// manifests with what the inputs say (rules missing a fact say so in a note).
        #[arg(long = "values", value_name = "CHART=FILE", value_parser = parse_values_arg)]
        values: Vec<(String, PathBuf)>,
        /// The namespace Kong runs in (default: `kong`, assumed and said so where it matters).
        #[arg(long)]
        kong_namespace: Option<String>,
        /// Kong's Helm release name (default: `kong`, assumed likewise).
        #[arg(long)]
        kong_release: Option<String>,
        /// Exit 1 on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Drop a rule's findings (repeatable); they are counted in the summary. One object can
        /// silence rules with the annotation `lint.kme2e.dev/ignore: "rule-a,rule-b"`.
        #[arg(long = "allow", value_name = "RULE")]
        allow: Vec<String>,
        /// The Kubernetes version core kinds are checked against (lint carries 1.35).
        #[arg(long, value_name = "VERSION")]
        kubernetes_version: Option<String>,
        /// List the rules (id, severity, what each catches) and exit.
        #[arg(long, conflicts_with = "explain")]
        list_rules: bool,
        /// Explain one rule: what it catches, why (upstream evidence), an example.
        #[arg(long, value_name = "RULE")]
        explain: Option<String>,
        /// text, json, sarif (SARIF 2.1.0 for code scanning) or github (workflow annotations).
        #[arg(long, value_enum, default_value_t = LintFormat::Text)]
        format: LintFormat,
    },
    /// Say what the live path needs (Docker, kind, helm), what is there and how to fix the rest.
    Doctor {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show what a run would do for a mesh, without a cluster.
    Plan {
        mesh: Mesh,
        /// A profile from versions.toml (default: the one named after the mesh).
        #[arg(long)]
        profile: Option<String>,
        /// Also write plan.json and every rendered manifest into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Your Helm values for a chart the harness installs (kong/ingress, istiod,
        /// linkerd-control-plane), merged under the harness's own (repeatable).
        #[arg(long = "values", value_name = "CHART=FILE", value_parser = parse_values_arg)]
        values: Vec<(String, PathBuf)>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Repro bundles: one self-contained file that reproduces a scenario on a mesh.
    Repro {
        #[command(subcommand)]
        action: Repro,
    },
    /// Print the nightly CI matrix (one entry per profile of versions.toml) as GitHub Actions JSON.
    CiMatrix {
        /// Only the profiles of this mesh.
        #[arg(long)]
        mesh: Option<Mesh>,
        /// Only the profiles of the meshes this scenario runs on.
        #[arg(long)]
        scenario: Option<String>,
        /// Split each profile's scenarios across N jobs (`e2e --shard K/N` in each).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
        shards: u16,
    },
    /// Judge recorded answers again, offline, with the current checks (docs/transcripts.md).
    /// Exit 0: every verdict is the expected one; 1: one differs; 2: unreadable input.
    Replay {
        /// Transcript files, or directories searched for *.yaml.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Benchmarks. `split`: our sequential split test against the anchors' fixed-sample methods.
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
    /// Run the scenarios of a mesh end to end: cluster, installs, scenarios, report, teardown.
    E2e {
        mesh: Mesh,
        /// A profile of versions.toml (default: the one named after the mesh; `list` shows
        /// the scenarios, `ci-matrix` every profile).
        #[arg(long)]
        profile: Option<String>,
        /// Run only these scenarios (repeatable).
        #[arg(long = "scenario", value_name = "NAME")]
        scenarios: Vec<String>,
        /// Print the plan and stop; needs neither Docker nor a cluster.
        #[arg(long)]
        dry_run: bool,
        /// Accept what each scenario observed as its snapshot (scenarios/snapshots/).
        #[arg(long)]
        update_snapshots: bool,
        /// After each passing scenario, run its mutants: a fixture change under which a declared
        /// step must fail. A mutant that survives fails the scenario.
        #[arg(long)]
        mutants: bool,
        /// Scenarios run at once (each in its own namespace); `exclusive: true` ones run alone.
        #[arg(long, default_value_t = harness::runner::DEFAULT_JOBS, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Run a scenario whose step failed again, in a fresh namespace, up to N times; a pass
        /// after a failure is reported as flaky, never as a clean pass.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=5))]
        retries: u32,
        /// Run only this share of the scenarios (K/N): shards are disjoint and together cover
        /// every scenario (for CI jobs side by side).
        #[arg(long, value_name = "K/N", value_parser = harness::runner::shard::Shard::parse)]
        shard: Option<harness::runner::shard::Shard>,
        /// A run.json of an earlier run: shards are balanced by its durations (a regular file,
        /// at most 8 MiB).
        #[arg(long, value_name = "RUN_JSON", requires = "shard")]
        durations: Option<PathBuf>,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Create a cluster with a mesh's stack installed and leave it up (for debugging by hand).
    Up {
        mesh: Mesh,
        #[arg(long)]
        profile: Option<String>,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Delete harness clusters: this checkout's kept or leftover ones, one run's (`--run ID`), or
    /// also every other kind cluster named with the harness prefix (`--all`). Nothing else.
    Down {
        #[arg(long, conflicts_with = "all")]
        run: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Download the pinned tools (kind, helm) into target/tools and verify their sha256.
    Tools,
    /// The CRD schemas lint checks custom resources against (harness/schemas/crds.shape).
    Schemas {
        #[command(subcommand)]
        action: Schemas,
    },
}

#[derive(Debug, Subcommand)]
enum Schemas {
    /// Compact upstream CRD files into the schema file (descriptions dropped), replacing the
    /// sections of the kinds they define. Helm template lines (`{{ }}`) are skipped.
    Import {
        /// CRD files as upstream publishes them (at the versions pinned in versions.toml).
        files: Vec<PathBuf>,
        /// Where they come from, recorded in each section, e.g. "istio/istio 1.30.3 manifests/charts/base/files/crd-all.gen.yaml".
        #[arg(long)]
        source: String,
        /// Only these kinds (repeatable; default: every kind in the files).
        #[arg(long = "kind")]
        kinds: Vec<String>,
    },
}

/// Where and how a live run gets its cluster.
#[derive(Debug, Clone, clap::Args)]
struct LiveArgs {
    /// Your Helm values for a chart the harness installs (kong/ingress, istiod,
    /// linkerd-control-plane), merged under the harness's own: the plan shows every key the
    /// harness sets over yours and why; values that take Kong out of the mesh are refused.
    #[arg(long = "values", value_name = "CHART=FILE", value_parser = parse_values_arg)]
    values: Vec<(String, PathBuf)>,
    /// kind (default), k3s (testcontainers), or existing (needs --context and --proxy).
    #[arg(long, value_enum, default_value_t = ProviderArg::Kind)]
    provider: ProviderArg,
    /// The kubeconfig context of an existing cluster (read only; copied into the run directory).
    #[arg(long, required_if_eq("provider", "existing"))]
    context: Option<String>,
    /// Install nothing: use the Kong and mesh the existing cluster runs, discovered and reported
    /// when the run starts (needs --provider existing).
    #[arg(long)]
    no_install: bool,
    /// With --no-install: the namespace Kong runs in (default: looked for in every namespace).
    #[arg(long, value_name = "NAMESPACE", requires = "no_install")]
    kong_namespace: Option<String>,
    /// Where Kong's proxy answers from this machine (existing clusters), e.g. http://127.0.0.1:8080.
    #[arg(long, required_if_eq("provider", "existing"))]
    proxy: Option<String>,
    /// Reuse a kept harness cluster whose fingerprint (provider, versions, values) matches.
    #[arg(long)]
    reuse: bool,
    /// Leave the cluster up afterwards.
    #[arg(long, conflicts_with = "keep_on_failure")]
    keep: bool,
    /// Leave the cluster up when something failed.
    #[arg(long)]
    keep_on_failure: bool,
    /// The whole run's time budget (e.g. `75m`): the run stops early enough to collect evidence
    /// and tear down within it (7m are kept for that); scenarios not started are reported as
    /// skipped, and the run fails. Set it below a CI job's timeout.
    #[arg(long, value_name = "DURATION", value_parser = harness::budget::Budget::parse)]
    budget: Option<harness::budget::Budget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProviderArg {
    Kind,
    K3s,
    Existing,
}

impl LiveArgs {
    /// Combinations clap cannot express.
    fn check(&self) -> Result<()> {
        if self.provider != ProviderArg::Existing && (self.context.is_some() || self.proxy.is_some()) {
            bail!("--context and --proxy name an existing cluster: they need --provider existing");
        }
        if self.provider != ProviderArg::Existing && self.no_install {
            bail!("--no-install uses what an existing cluster runs: it needs --provider existing (and --context)");
        }
        if !self.values.is_empty() && self.no_install {
            bail!("--values configure what the harness installs, and --no-install installs nothing");
        }
        if let Some(ns) = &self.kong_namespace {
            harness::names::dns1123_label(ns).map_err(|e| anyhow::anyhow!("--kong-namespace: {e}"))?;
        }
        Ok(())
    }

    /// What the plan says about where the run happens.
    fn describe(&self, plan: &mut plan::Plan, profile: &harness::profile::Profile) {
        match self.provider {
            ProviderArg::Kind => {}
            ProviderArg::K3s => {
                plan.cluster.use_k3s(profile.k3s_image().unwrap_or("(no k3s image pinned for this Kubernetes)"));
            }
            ProviderArg::Existing => plan
                .cluster
                .use_existing(self.context.as_deref().unwrap_or_default(), self.proxy.as_deref().unwrap_or_default()),
        }
        if self.no_install {
            plan.install_nothing(self.kong_namespace.as_deref());
        }
    }

    fn options(&self, keep: harness::cluster::Keep) -> harness::session::Options {
        use harness::session::ProviderChoice;
        harness::session::Options {
            provider: match self.provider {
                ProviderArg::Kind => ProviderChoice::Kind,
                ProviderArg::K3s => ProviderChoice::K3s,
                ProviderArg::Existing => ProviderChoice::Existing,
            },
            context: self.context.clone(),
            no_install: self.no_install,
            kong_namespace: self.kong_namespace.clone(),
            reuse: self.reuse,
            keep,
            proxy: self.proxy.clone(),
        }
    }

    fn keep(&self) -> harness::cluster::Keep {
        use harness::cluster::Keep;
        if self.keep {
            Keep::Always
        } else if self.keep_on_failure {
            Keep::OnFailure
        } else {
            Keep::Never
        }
    }
}

#[derive(Debug, Subcommand)]
enum Repro {
    /// Write a bundle (versions, scenario, every fixture) to FILE, or to stdout.
    Export {
        scenario: String,
        /// The mesh to reproduce on (default: the scenario's first mesh).
        #[arg(long)]
        mesh: Option<Mesh>,
        /// Your Helm values (as for `e2e`): the bundle carries the values in force, merged.
        #[arg(long = "values", value_name = "CHART=FILE", value_parser = parse_values_arg)]
        values: Vec<(String, PathBuf)>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Scaffold a bundle from your own files: your manifests, your Helm values, one request and
    /// the answer it should get. The bundle expects that step to fail (the bug reproduces);
    /// check it with `lint FILE` and `repro run FILE --dry-run`.
    New {
        /// The bundle's scenario name (kebab-case).
        #[arg(long, default_value = "my-bug")]
        name: String,
        #[arg(long)]
        mesh: Mesh,
        /// A directory of Kubernetes manifests (*.yaml) applied in the scenario's namespace.
        #[arg(long, value_name = "DIR")]
        manifests: PathBuf,
        /// Your Helm values for a chart the harness installs (repeatable).
        #[arg(long = "values", value_name = "CHART=FILE", value_parser = parse_values_arg)]
        values: Vec<(String, PathBuf)>,
        /// The request through Kong, e.g. `GET /orders` (method optional).
        #[arg(long, value_name = "REQUEST")]
        request: String,
        /// The Host header your Ingress routes (default: the scenario's own host).
        #[arg(long)]
        host: Option<String>,
        /// The status code the request should get.
        #[arg(long, value_name = "STATUS")]
        expect_status: u16,
        /// What goes wrong, in your words (kept in the bundle for people).
        #[arg(long, default_value = "")]
        note: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a bundle like any scenario, unpacked into a fresh directory under target/e2e/.
    ///
    /// A bundle chooses versions only among this checkout's profiles: when its versions.toml
    /// differs in anything else (tools, URLs, sums, images, chart repositories), the differences
    /// are listed and the run is refused.
    Run {
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
        /// Use the bundle's own versions.toml as it is: its tools are downloaded (https only,
        /// checked against the bundle's sums) and run. Only for bundles from people you trust.
        #[arg(long)]
        trust_bundle_pins: bool,
        /// Trust the bundle entirely: its pins and values (as --trust-bundle-pins), the commands
        /// its containers run, and its pods' reach beyond the cluster's own services. Needed to
        /// run a bundle on --provider existing. Only for bundles from people you trust.
        #[arg(long)]
        trust_bundle: bool,
        #[command(flatten)]
        live: LiveArgs,
    },
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Monte Carlo: mean requests, false-fail and miss rates at a 90/10 target (correct, and off by 0.10).
    Split {
        /// Simulated assertions per case.
        #[arg(long, default_value_t = 20_000)]
        trials: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// A run of a profile's scenarios simulated in virtual time through the real scheduler:
    /// wall time at --jobs 1 and at --jobs N under a stated latency model (runner/bench.rs).
    Run {
        /// The profile (default: istio).
        #[arg(long, default_value = "istio")]
        profile: String,
        #[arg(long, default_value_t = harness::runner::DEFAULT_JOBS.into())]
        jobs: usize,
        /// The first seed of the latency draws.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many seeds (seed, seed+1, ...): the figure is given over all of them.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
        seeds: u64,
    },
    /// Time a clean compile of what the README's commands build (`cargo xtask`, then `cargo test
    /// --workspace`), with target/'s size after each; crates must be downloaded (`cargo fetch`).
    Build {
        /// An empty or absent directory to build in (default: a fresh temporary one, removed after).
        #[arg(long, value_name = "DIR")]
        target_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LintFormat {
    Text,
    Json,
    Sarif,
    Github,
}

/// Write to stdout; a closed pipe (`| head`) ends the program quietly instead of panicking.
/// `replay`: each file's verdict next to the expected one.
fn replay(paths: &[PathBuf]) -> u8 {
    use harness::replay::{FileOutcome, files, replay_file};
    let files = match files(paths) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            say(&format!(
                "error: no transcript files under {}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ));
            return 2;
        }
        Err(e) => {
            say(&format!("error: cannot list transcripts: {e}"));
            return 2;
        }
    };
    let (mut differ, mut unreadable) = (0, 0);
    let mut out = String::new();
    for file in &files {
        match replay_file(file) {
            FileOutcome::Matches { expected, detail } => {
                out.push_str(&format!("ok       {expected:<4} {}  ({detail})\n", file.display()));
            }
            FileOutcome::Differs { expected, got, detail } => {
                differ += 1;
                out.push_str(&format!("DIFFERS  {got:<4} {}  expected {expected}: {detail}\n", file.display()));
            }
            FileOutcome::Unreadable(e) => {
                unreadable += 1;
                out.push_str(&format!("ERROR    {e}\n"));
            }
        }
    }
    out.push_str(&format!(
        "{} transcript(s): {} as expected, {differ} differ, {unreadable} unreadable\n",
        files.len(),
        files.len() - differ - unreadable
    ));
    // Details quote recorded answers and file contents.
    emit(&harness::diagnostic::escape_for_log(&out));
    if unreadable > 0 {
        2
    } else if differ > 0 {
        1
    } else {
        0
    }
}

/// Set once stdout's reader went away: later output is dropped, and the command still ends
/// with its own exit code (`lint --format json | head` must not turn errors into 0).
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A message to stderr that quotes untrusted text (a bundle's expected detail and note, names
/// from input files or the API, paths, errors): through `escape_for_log`, the one escape for
/// terminals and CI logs (no terminal sequences, bidi controls or workflow commands).
fn say(text: &str) {
    eprintln!("{}", harness::diagnostic::escape_for_log(text));
}

fn emit(text: &str) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            return;
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("E2E_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    harness::tls::install_ring_provider();
    // `cargo xtask` (cargo run) sets CARGO_PKG_NAME for the program it runs; an installed
    // `kme2e` runs without it. Usage, help and hints then name the command the user typed.
    let via_cargo = std::env::var_os("CARGO_PKG_NAME").is_some_and(|n| n == env!("CARGO_PKG_NAME"));
    let name = if via_cargo { "cargo xtask" } else { "kme2e" };
    harness::set_command_name(name);
    let cli = match Cli::command().name(name).bin_name(name).try_get_matches() {
        Ok(matches) => match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        },
        Err(e) => e.exit(),
    };
    // Commands that read no project (none today) would skip this; every one does.
    match find_project(cli.project.as_deref()) {
        Ok(project) => {
            let _ = PROJECT.set(project);
        }
        Err(e) => {
            eprintln!("error: {}", harness::diagnostic::escape_for_log(&format!("{e:#}")));
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Diagnostics render their own `error[...]` header with the location.
            // Errors may quote input (file names, scenario names): escaped for the terminal and CI.
            let text = harness::diagnostic::escape_for_log(&format!("{e:#}"));
            if text.starts_with("error[") {
                eprintln!("{text}")
            } else {
                eprintln!("error: {text}")
            }
            ExitCode::FAILURE
        }
    }
}

/// Commands without teardown of their own stop at Ctrl-C: the work is dropped (a download in
/// progress removes its partial file) and the exit code is 130, as a shell reports SIGINT.
async fn interruptible(work: impl std::future::Future<Output = Result<u8>>) -> Result<u8> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => {
            harness::tools::remove_partial_files();
            eprintln!("interrupted");
            Ok(130)
        }
    }
}

/// The project this invocation works in: `--project DIR`, or the current directory's.
fn find_project(explicit: Option<&std::path::Path>) -> Result<Project> {
    match explicit {
        Some(dir) if Project::is_root(dir) => Ok(Project::at(dir)),
        Some(dir) => bail!("{} holds no kme2e project (versions.toml and scenarios/)", dir.display()),
        None => {
            let here = std::env::current_dir().context("cannot read the current directory")?;
            Ok(Project::find(&here)?)
        }
    }
}

fn project() -> Project {
    match PROJECT.get() {
        Some(p) => p.clone(),
        // Unit tests call helpers without `main`: they run inside the checkout.
        None => find_project(None).unwrap_or_else(|_| Project::at(".")),
    }
}

fn catalog() -> Result<Catalog> {
    Ok(Catalog::open(project())?)
}

async fn run(command: Command) -> Result<u8> {
    match command {
        Command::List { format } => list(format),
        Command::Lint {
            paths,
            mesh,
            values,
            kong_namespace,
            kong_release,
            deny_warnings,
            allow,
            kubernetes_version,
            list_rules,
            explain,
            format,
        } => {
            if list_rules {
                return Ok(list_lint_rules());
            }
            if let Some(rule) = explain {
                return explain_rule(&rule);
            }
            let inputs = harness::lint::Inputs {
                paths,
                mesh,
                values,
                kong_namespace,
                kong_release,
                allow,
                deny_warnings,
                kubernetes_version,
            };
            lint(&inputs, format)
        }
        Command::Doctor { format } => interruptible(doctor(format)).await,
        Command::Plan { mesh, profile, out, values, format } => {
            let catalog = catalog()?;
            // Deterministic: ports are chosen when a run starts, not in a plan.
            let ports = harness::cluster::HostPorts::AT_RUN_TIME;
            let plan = make_plan(&catalog, mesh, profile.as_deref(), "plan", ports, &values, &[])?;
            if let Some(dir) = out {
                let written = plan::write(&plan, &dir)?;
                say(&format!("wrote {} file(s) into {}:", written.len(), dir.display()));
                for file in &written {
                    say(&format!("  {}", file.display()));
                }
            }
            match format {
                // A plan quotes its inputs (names, paths, mutants' reasons): escaped for terminals and CI.
                Format::Text => emit(&harness::diagnostic::escape_for_log(&plan.to_string())),
                Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&plan)?)),
            }
            // A scenario that does not load is in the plan, and fails it.
            Ok(u8::from(!plan.broken.is_empty()))
        }
        Command::Replay { paths } => Ok(replay(&paths)),
        Command::Bench { which: Bench::Build { target_dir } } => {
            let scratch = tempfile::tempdir().context("cannot create a temporary target directory")?;
            let dir = target_dir.unwrap_or_else(|| scratch.path().join("target"));
            let measured = build_cost::measure(project().root(), &dir).await?;
            emit(&build_cost::table(&measured));
            emit(&format!("{}\n", serde_json::to_string(&measured)?));
            Ok(0)
        }
        Command::Bench { which: Bench::Run { profile, jobs, seed, seeds } } => {
            let catalog = catalog()?;
            let profile = catalog.versions.profile(&profile, &catalog.project.versions_file())?;
            let scenarios = harness::runner::bench::scenarios_of(&catalog, &profile)?;
            let mut runs = Vec::new();
            for seed in seed..seed.saturating_add(seeds) {
                let modelled = harness::runner::bench::model(&scenarios, profile.mesh() != Mesh::None, seed);
                if runs.is_empty() {
                    emit(&harness::runner::bench::table(&modelled));
                }
                let result = harness::runner::bench::compare(&profile.name, seed, &modelled, jobs)
                    .with_context(|| format!("the simulation of seed {seed} gave no figure"))?;
                emit(&format!(
                    "seed {seed}: {} scenarios of {}: {:.0}s at --jobs 1, {:.0}s at --jobs {jobs} (ratio {:.3})\n",
                    result.scenarios, result.profile, result.sequential_s, result.parallel_s, result.ratio
                ));
                runs.push(result);
            }
            let spread = harness::runner::bench::spread(&runs).context("no seed was simulated")?;
            emit(&format!(
                "\nratio over {} seed(s): mean {:.3}, range {:.3}..{:.3}\n",
                spread.seeds.len(),
                spread.ratio_mean,
                spread.ratio_min,
                spread.ratio_max
            ));
            emit(&format!("{}\n", serde_json::to_string(&spread)?));
            Ok(0)
        }
        Command::Bench { which: Bench::Split { trials, seed } } => {
            let results = harness::check::bench::compare(trials, seed);
            emit(&harness::check::bench::table(&results));
            let last_line: serde_json::Map<String, serde_json::Value> = results
                .iter()
                .map(|r| {
                    let name = serde_json::to_value(r.method)?.as_str().unwrap_or_default().to_owned();
                    let fields = serde_json::json!({
                        "mean_requests": r.mean_requests,
                        "false_fail_rate": r.false_fail_rate,
                        "miss_rate": r.miss_rate,
                    });
                    Ok((name, fields))
                })
                .collect::<Result<_, serde_json::Error>>()?;
            emit(&format!("{}\n", serde_json::Value::Object(last_line)));
            Ok(0)
        }
        Command::E2e {
            mesh,
            profile,
            scenarios,
            dry_run,
            update_snapshots,
            mutants,
            jobs,
            retries,
            shard,
            durations,
            live,
        } => {
            let catalog = catalog()?;
            let mode = SnapshotMode::for_run(update_snapshots);
            let run = RunChecks {
                snapshots: Some(mode),
                mutants,
                expected: None,
                jobs: jobs.into(),
                retries,
                sandbox: false,
            };
            let mut only = scenarios;
            if let Some(shard) = shard {
                only = shard_of(&catalog, mesh, &only, shard, durations.as_deref())?;
                if only.is_empty() {
                    eprintln!("shard {shard}: no scenario of {mesh} falls in it; nothing to run");
                    return Ok(0);
                }
                say(&format!("shard {shard}: {}", only.join(", ")));
            }
            e2e_in(&catalog, mesh, profile.as_deref(), &only, dry_run, run, &live).await
        }
        Command::Up { mesh, profile, live } => up(mesh, profile.as_deref(), &live).await,
        Command::Down { run, all } => interruptible(down(run.as_deref(), all)).await,
        Command::Tools => interruptible(fetch_tools()).await,
        Command::Schemas { action: Schemas::Import { files, source, kinds } } => {
            import_schemas(&files, &source, &kinds)
        }
        Command::Repro {
            action: Repro::New { name, mesh, manifests, values, request, host, expect_status, note, out },
        } => {
            use harness::scenario::scaffold::{Answer, scaffold_reporting};
            let catalog = catalog()?;
            let ports = harness::cluster::HostPorts::AT_RUN_TIME;
            let plan = make_plan(&catalog, mesh, None, "new", ports, &values, &[])?;
            let in_force = harness::stack::values::in_force(&plan.environment);
            let answer = Answer { request: &request, host: host.as_deref(), status: expect_status, note: &note };
            let (bundle, skipped) = scaffold_reporting(&catalog, &name, mesh, &manifests, in_force, &answer)?;
            // What was left out of the bundle, and why (links, FIFOs, files that are no manifest).
            for s in &skipped {
                eprintln!(
                    "{}",
                    harness::diagnostic::escape_for_log(&format!(
                        "note: --manifests: skipped {}: {}",
                        s.file.display(),
                        s.why
                    ))
                );
            }
            write_bundle(&bundle, out.as_deref())
        }
        Command::Repro { action: Repro::Export { scenario, mesh, values, out } } => {
            let catalog = catalog()?;
            let mesh = match mesh {
                Some(m) => m,
                None => {
                    let file = catalog.project.scenarios_dir().join(format!("{scenario}.yaml"));
                    let meshes = if file.is_file() { catalog.meshes_of(&file)? } else { Vec::new() };
                    meshes.first().copied().unwrap_or(Mesh::Istio)
                }
            };
            let profile = catalog.default_profile(mesh)?;
            let ports = harness::cluster::HostPorts::AT_RUN_TIME;
            let plan = make_plan(&catalog, mesh, Some(&profile.name), "export", ports, &values, &[])?;
            let in_force = harness::stack::values::in_force(&plan.environment);
            let bundle = harness::scenario::bundle::export(&catalog, &scenario, &profile, in_force)?;
            write_bundle(&bundle, out.as_deref())
        }
        Command::Repro { action: Repro::Run { file, dry_run, trust_bundle_pins, trust_bundle, live } } => {
            use harness::scenario::bundle::{Bundle, PinTrust};
            let bundle = Bundle::load(&file)?;
            let this = harness::Provenance::this_build();
            if bundle.harness != this {
                eprintln!(
                    "warning: the bundle was written by harness {}, this is {this}: scenario language or checks may \
                     differ",
                    harness::names::printable(&bundle.harness.to_string())
                );
            }
            let checkout = catalog()?;
            // A stranger's bundle never runs on a cluster the harness did not make.
            if !trust_bundle && live.provider == ProviderArg::Existing {
                bail!(
                    "a bundle runs on --provider existing (your own cluster) only with --trust-bundle: its fixtures \
                     would run there with the reach the sandbox otherwise limits (see README, \"Security\")"
                );
            }
            let trust = if trust_bundle_pins || trust_bundle { PinTrust::Bundle } else { PinTrust::Checkout };
            let runs = project().root().join("target").join("e2e");
            let admitted = bundle.admit(&file, &checkout, trust, &runs)?;
            if !admitted.differences.is_empty() {
                eprintln!(
                    "warning: --trust-bundle-pins: using the bundle's own pins where they differ from this checkout's:"
                );
                for d in &admitted.differences {
                    let shown = |v: &Option<String>| v.as_deref().unwrap_or("(absent)").to_owned();
                    eprintln!(
                        "  {}: bundle {}, checkout {}",
                        harness::names::printable(&d.key),
                        harness::names::printable(&shown(&d.bundle)),
                        harness::names::printable(&shown(&d.checkout))
                    );
                }
            }
            say(&format!(
                "bundle {} ({} on {}, profile {}) unpacked into {}",
                file.display(),
                bundle.scenario,
                bundle.mesh,
                admitted.profile,
                admitted.project.root().display()
            ));
            let catalog = Catalog::open(admitted.project.clone())?;
            if !trust_bundle {
                // What only an untrusted bundle may not do (commands of its own), at its line.
                let file = catalog.project.scenarios_dir().join(format!("{}.yaml", bundle.scenario));
                for checked in catalog.check(&file, "offline")? {
                    if let Some(problem) =
                        harness::scenario::scope::untrusted_problem(&checked.scenario, &checked.manifests)
                    {
                        bail!("{problem}");
                    }
                }
            }
            // The detail and the note are the bundle author's text.
            say(&format!("expected: {}", bundle.expected));
            if !bundle.expected.note.is_empty() {
                say(&format!("note: {}", bundle.expected.note));
            }
            // A bundle carries no snapshots: its verdict is what it expects.
            let run = RunChecks {
                snapshots: None,
                mutants: false,
                expected: Some(bundle.expected.clone()),
                jobs: 1,
                retries: 0,
                sandbox: !trust_bundle,
            };
            let only = std::slice::from_ref(&bundle.scenario);
            let mut live = live.clone();
            live.values.extend(admitted.values.iter().cloned());
            let outcome = e2e_in(&catalog, bundle.mesh, Some(&admitted.profile), only, dry_run, run, &live).await;
            if !dry_run {
                // A live run's reports point into the unpacked project: it stays with them.
                let _ = admitted.dir.keep();
            }
            outcome
        }
        Command::CiMatrix { mesh, scenario, shards } => {
            let catalog = catalog()?;
            let meshes = match scenario.filter(|s| !s.is_empty()) {
                None => None,
                Some(name) => {
                    let listing = catalog.listing()?;
                    if let Some(broken) = listing.broken.iter().find(|b| b.name == name) {
                        bail!("scenario `{name}` does not load:\n{}", broken.error);
                    }
                    match listing.scenarios.iter().find(|e| e.name == name) {
                        Some(entry) => Some(entry.meshes.clone()),
                        None => {
                            let known: Vec<&str> = listing.scenarios.iter().map(|e| e.name.as_str()).collect();
                            bail!(
                                "no scenario `{}`; scenarios: {}",
                                harness::names::printable(&name),
                                known.join(", ")
                            );
                        }
                    }
                }
            };
            // One scenario is never split: it runs whole in its profile's job.
            let shards = if meshes.is_some() { 1 } else { usize::from(shards) };
            let matrix =
                harness::report::matrix::matrix_for(&catalog.versions, mesh.map(Mesh::as_str), meshes.as_deref())
                    .sharded(shards);
            if matrix.include.is_empty() {
                eprintln!("ci-matrix: no profile matches (the scenario does not run on that mesh): an empty matrix");
            }
            emit(&format!("{}\n", serde_json::to_string(&matrix)?));
            Ok(0)
        }
    }
}

fn make_plan(
    catalog: &Catalog,
    mesh: Mesh,
    profile: Option<&str>,
    run: &str,
    ports: harness::cluster::HostPorts,
    values: &[(String, PathBuf)],
    only: &[String],
) -> Result<plan::Plan> {
    let profile = profile_for(catalog, mesh, profile)?;
    let mut user = Vec::new();
    for (chart, file) in values {
        // Diagnostics render themselves, located in the values file.
        user.push(harness::stack::values::read(chart, file, mesh).map_err(|d| anyhow::anyhow!("{d}"))?);
    }
    let mut plan = plan::build_selected(catalog, &profile, run, ports, only)?;
    plan.with_user_values(&user);
    Ok(plan)
}

/// Every scenario that loads, then each file that does not with its error (exit 1 then).
fn list(format: Format) -> Result<u8> {
    let listing = catalog()?.listing()?;
    match format {
        Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&listing)?)),
        Format::Text => {
            let names = listing.scenarios.iter().map(|e| &e.name).chain(listing.broken.iter().map(|b| &b.name));
            let width = names.map(String::len).max().unwrap_or(0);
            let mut out = String::new();
            for e in &listing.scenarios {
                let meshes: Vec<&str> = e.meshes.iter().map(|m| m.as_str()).collect();
                let covers: Vec<String> = e.covers.iter().map(ToString::to_string).collect();
                out += &format!("{:<width$}  [{}]  covers: {}\n", e.name, meshes.join(", "), covers.join(", "));
            }
            for b in &listing.broken {
                out += &format!("{:<width$}  DOES NOT LOAD ({}):\n", b.name, b.file.display());
                for line in b.error.lines() {
                    out += &format!("{:<width$}    {line}\n", "");
                }
            }
            emit(&harness::diagnostic::escape_for_log(&out));
        }
    }
    Ok(u8::from(!listing.broken.is_empty()))
}

fn parse_values_arg(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((chart, file)) if !chart.is_empty() && !file.is_empty() => Ok((chart.to_owned(), PathBuf::from(file))),
        _ => Err(format!("`{arg}` is not CHART=FILE (e.g. kong/ingress=values.yaml)")),
    }
}

fn list_lint_rules() -> u8 {
    let rules = harness::lint::rules::RULES;
    let width = rules.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in rules {
        out.push_str(&format!("{:<width$}  {:<7}  {}\n", r.id, r.severity.to_string(), r.summary));
    }
    emit(&out);
    0
}

fn explain_rule(rule: &str) -> Result<u8> {
    match harness::lint::explain(&project(), rule) {
        Some(text) => {
            // Quotes the project's pitfall files.
            emit(&harness::diagnostic::escape_for_log(&text));
            Ok(0)
        }
        None => {
            let ids = harness::lint::rules::RULES.iter().map(|r| r.id);
            let near =
                harness::diagnostic::closest(rule, ids).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
            eprintln!(
                "error: no lint rule `{}`{near} (`cargo xtask lint --list-rules` lists them)",
                harness::names::printable(rule)
            );
            Ok(2)
        }
    }
}

fn lint(inputs: &harness::lint::Inputs, format: LintFormat) -> Result<u8> {
    let outcome = harness::lint::run(&catalog()?, inputs);
    match format {
        LintFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&outcome.findings)?)),
        LintFormat::Sarif => {
            emit(&format!("{}\n", serde_json::to_string_pretty(&harness::lint::output::sarif(&outcome.findings))?))
        }
        LintFormat::Github => emit(&harness::lint::output::github(&outcome.findings)),
        // Findings on standard output, as linters print them (`lint deploy > lint.txt`).
        LintFormat::Text => {
            let text: String = outcome.findings.iter().map(|d| format!("{d}\n\n")).collect();
            emit(&text)
        }
    }
    // The summary goes to stderr in every format.
    let notes = match outcome.notes() {
        0 => String::new(),
        n => format!(", {n} note(s)"),
    };
    let suppressed: usize = outcome.suppressed.values().sum();
    let suppressed = if suppressed == 0 {
        String::new()
    } else {
        // Rule ids as the input's comments wrote them.
        let by_rule: Vec<String> = outcome
            .suppressed
            .iter()
            .map(|(r, n)| format!("{} x{n}", harness::diagnostic::escape_controls(r)))
            .collect();
        format!(", {suppressed} suppressed ({})", by_rule.join(", "))
    };
    let (errors, warnings) = (outcome.errors(), outcome.warnings());
    if outcome.exit_code() == 2 {
        eprintln!("lint: some input could not be read or used (see above); nothing is clean{notes}{suppressed}");
    } else if errors + warnings == 0 {
        eprintln!("lint: clean{notes}{suppressed}");
    } else {
        let denied = if inputs.deny_warnings && warnings > 0 { " (warnings denied)" } else { "" };
        eprintln!("lint: {errors} error(s), {warnings} warning(s){denied}{notes}{suppressed}");
    }
    Ok(outcome.exit_code())
}

async fn doctor(format: Format) -> Result<u8> {
    let report = preflight_report().await?;
    match format {
        Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&report)?)),
        // Versions as the tools on PATH print them.
        Format::Text => emit(&harness::diagnostic::escape_for_log(&report.to_string())),
    }
    Ok(if report.ok() { 0 } else { 1 })
}

async fn preflight_report() -> Result<preflight::Report> {
    let versions = catalog()?.versions;
    let cache = harness::session::tool_cache(project().root());
    let path = std::env::var_os("PATH");
    let host = preflight::HostFacts::read(&project().root().join("target"));
    Ok(preflight::check(&BollardDocker, &harness::command::Process, &versions, &cache, path.as_deref(), &host).await)
}

fn import_schemas(files: &[PathBuf], source: &str, kinds: &[String]) -> Result<u8> {
    use harness::lint::crd;
    let mut sections = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let documents = crd::documents_of(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        sections.extend(crd::import(&crd::of_kinds(documents, kinds), source));
    }
    let out = project().root().join("harness").join("schemas").join("crds.shape");
    let existing = std::fs::read_to_string(&out).unwrap_or_default();
    let merged = crd::merge(&existing, &sections);
    crd::Schemas::parse(&merged).map_err(|e| anyhow::anyhow!("the merged schema file does not parse: {e}"))?;
    std::fs::write(&out, merged).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("{} section(s) written to {}", sections.len(), out.display());
    Ok(0)
}

async fn fetch_tools() -> Result<u8> {
    let versions = catalog()?.versions;
    let cache = harness::session::tool_cache(project().root());
    let http = harness::tools::Http::new()?;
    for name in versions.tools.keys() {
        let artifact = harness::tools::tool(&versions, name)?;
        let got = cache.resolve(&artifact, &http).await?;
        let how = if got.downloaded { "downloaded and verified" } else { "already cached and verified" };
        emit(&harness::diagnostic::escape_for_log(&format!(
            "{name} {}: {} ({how})\n",
            artifact.version,
            got.path.display()
        )));
    }
    Ok(0)
}

async fn down(run: Option<&str>, all: bool) -> Result<u8> {
    let root = project().root().to_owned();
    let versions = catalog()?.versions;
    let runs_dir = root.join("target").join("e2e");
    // Say what there is before fetching kind: a run that does not exist, or nothing left to
    // remove, needs no download.
    let recorded = harness::cluster::state::runs(&runs_dir);
    let open = |state: &harness::cluster::State| {
        !matches!(state.phase, harness::cluster::Phase::Removed) && state.provider != "existing"
    };
    if let Some(id) = run {
        if !recorded.iter().any(|(dir, _)| dir.run == id) {
            let known: Vec<&str> = recorded.iter().map(|(dir, _)| dir.run.as_str()).collect();
            say(&format!(
                "no run `{}` under {} (runs: {})",
                id,
                runs_dir.display(),
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ));
            return Ok(1);
        }
    } else if !all && !recorded.iter().any(|(_, state)| open(state)) {
        eprintln!(
            "no kept or leftover harness cluster of this checkout (only clusters the harness created are ever touched)"
        );
        return Ok(0);
    }
    let cache = harness::session::tool_cache(&root);
    let kind = cache.resolve(&harness::tools::tool(&versions, "kind")?, &harness::tools::Http::new()?).await?;
    let kind = harness::cluster::Kind { binary: kind.path, runner: harness::command::Process };
    let scope = match (run, all) {
        (Some(run), _) => harness::cluster::DownScope::Run(run),
        (None, true) => harness::cluster::DownScope::All,
        (None, false) => harness::cluster::DownScope::Checkout,
    };
    let runs = root.join("target").join("e2e");
    let containers = harness::cluster::k3s::BollardContainers;
    let report = harness::cluster::down(&kind, &containers, &runs, &versions.kind.cluster_prefix, scope).await?;
    if report.removed.is_empty() && report.failed.is_empty() {
        eprintln!(
            "no harness cluster to remove (only clusters named {}-* are ever touched)",
            versions.kind.cluster_prefix
        );
    }
    for name in &report.removed {
        say(&format!("removed kind cluster {name}"));
    }
    for failure in &report.failed {
        say(&format!("could not remove {failure}"));
    }
    Ok(if report.failed.is_empty() { 0 } else { 1 })
}

/// The profile named `profile` (default: the mesh's), checked against `mesh`.
fn profile_for(catalog: &Catalog, mesh: Mesh, profile: Option<&str>) -> Result<harness::profile::Profile> {
    let name = profile.unwrap_or(mesh.as_str());
    let profile = catalog.versions.profile(name, &catalog.project.versions_file())?;
    if profile.mesh() != mesh {
        bail!("profile `{name}` is for mesh {}, not {mesh}", profile.mesh());
    }
    Ok(profile)
}

/// Docker must answer before anything slow starts (not needed for existing clusters).
async fn require_docker(live: &LiveArgs, progress: &harness::progress::Progress) -> Result<()> {
    if live.provider == ProviderArg::Existing {
        return Ok(());
    }
    let phase = progress.phase("preflight");
    phase.waiting_for("the Docker daemon");
    match preflight::DockerProbe::ping(&BollardDocker, preflight::DOCKER_TIMEOUT).await {
        Ok(info) => {
            phase.finish(true, &format!("Docker {}", info.version));
            Ok(())
        }
        Err(_) => {
            phase.finish(false, "no Docker daemon");
            let report = preflight_report().await?;
            eprint!("{}", harness::diagnostic::escape_for_log(&report.to_string()));
            let missing: Vec<&str> = report.missing().map(|c| c.name.as_str()).collect();
            bail!(
                "cannot run the live path: missing {} (see above for fixes; `--dry-run` shows the plan without \
                 them). Nothing was created; kind and helm are downloaded by the run itself once Docker answers",
                missing.join(", ")
            )
        }
    }
}

async fn up(mesh: Mesh, profile: Option<&str>, live: &LiveArgs) -> Result<u8> {
    live.check()?;
    if live.no_install {
        bail!("`up` installs the stack; with --no-install it would do nothing (use `e2e --no-install`)");
    }
    let catalog = catalog()?;
    let profile = profile_for(&catalog, mesh, profile)?;
    let progress = harness::progress::Progress::stderr();
    require_docker(live, &progress).await?;
    let mut plan = make_plan(
        &catalog,
        mesh,
        Some(&profile.name),
        &harness::names::new_run_id(),
        free_ports()?,
        &live.values,
        &[],
    )?;
    plan.scenarios.clear();
    let cancel = tokio_util::sync::CancellationToken::new();
    harness::cluster::cancel_on_ctrl_c(cancel.clone());
    let deadline = live.budget.map(|b| b.arm(&cancel));
    let root = project().root().to_owned();
    let options = live.options(harness::cluster::Keep::Always);
    let env = harness::session::create_cluster(&root, &plan, &profile, &options, &cancel, &progress).await?;
    let installed = harness::session::install(&root, &env, &plan, &profile, &options, &cancel, &progress).await;
    // `up` exists to leave a cluster behind; a failed install is kept only when asked to.
    let keep = if installed.is_ok() { harness::cluster::Keep::Always } else { live.keep() };
    let stopped = Stopped::of(&cancel, deadline.as_ref());
    let (_, message) = harness::session::finish(env, keep, installed.is_err(), stopped == Stopped::Interrupted).await;
    say(&message);
    installed?;
    Ok(stopped.exit_code(false))
}

/// What a run checks beyond the steps, and how its scenarios share the cluster.
#[derive(Debug, Clone)]
struct RunChecks {
    snapshots: Option<SnapshotMode>,
    mutants: bool,
    /// `repro run`: the bundle's expected outcome is the verdict.
    expected: Option<harness::scenario::bundle::Expected>,
    jobs: usize,
    retries: u32,
    /// An untrusted bundle: its namespaces get the sandbox's egress policy.
    sandbox: bool,
}

/// The scenarios of `mesh` in `shard` (among `only` when given, else all that run on it),
/// balanced by the durations of an earlier run when given.
fn shard_of(
    catalog: &Catalog,
    mesh: Mesh,
    only: &[String],
    shard: harness::runner::shard::Shard,
    durations: Option<&std::path::Path>,
) -> Result<Vec<String>> {
    let listing = catalog.listing()?;
    // Broken files take part (by file name): they fail in the shard that owns them.
    let mut names: Vec<String> = listing
        .scenarios
        .iter()
        .filter(|e| e.meshes.contains(&mesh))
        .map(|e| e.name.clone())
        .chain(listing.broken.iter().map(|b| b.name.clone()))
        .filter(|n| only.is_empty() || only.contains(n))
        .collect();
    names.sort();
    let durations = match durations {
        // Bounded, regular files only, typed: the errors name the file.
        Some(file) => harness::runner::shard::durations_from_file(file).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Default::default(),
    };
    let assigned = harness::runner::shard::assign(&names, &durations, shard.count);
    Ok(names.into_iter().filter(|n| assigned.get(n) == Some(&(shard.index - 1))).collect())
}

/// A bundle to FILE (or stdout), with how to check it.
fn write_bundle(bundle: &harness::scenario::bundle::Bundle, out: Option<&std::path::Path>) -> Result<u8> {
    match out {
        Some(path) => {
            std::fs::write(path, bundle.to_yaml()).with_context(|| format!("cannot write {}", path.display()))?;
            let tool = harness::command_name();
            say(&format!(
                "wrote {} ({} on {}, expected: {}); check it with `{tool} lint {}` and `{tool} repro run {} --dry-run`",
                path.display(),
                bundle.scenario,
                bundle.mesh,
                bundle.expected,
                path.display(),
                path.display()
            ));
        }
        None => emit(&bundle.to_yaml()),
    }
    Ok(0)
}

async fn e2e_in(
    catalog: &Catalog,
    mesh: Mesh,
    profile: Option<&str>,
    only: &[String],
    dry_run: bool,
    checks: RunChecks,
    live: &LiveArgs,
) -> Result<u8> {
    let progress = harness::progress::Progress::stderr();
    live.check()?;
    let profile = profile_for(catalog, mesh, profile)?;
    let run_id = harness::names::new_run_id();
    // Only the selected scenarios are read; one that does not load or lint fails alone.
    let mut plan = make_plan(catalog, mesh, Some(&profile.name), &run_id, free_ports()?, &live.values, only)?;
    if let Some(missing) = only
        .iter()
        .find(|n| !plan.scenarios.iter().any(|s| &s.name == *n) && !plan.broken.iter().any(|b| &b.name == *n))
    {
        let listing = catalog.listing()?;
        let on_mesh: Vec<&str> =
            listing.scenarios.iter().filter(|e| e.meshes.contains(&mesh)).map(|e| e.name.as_str()).collect();
        bail!(
            "no scenario `{}` runs on {mesh}; scenarios on {mesh}: {}",
            harness::names::printable(missing),
            on_mesh.join(", ")
        );
    }
    lint_planned(catalog, &mut plan, &profile, &progress);
    for b in &plan.broken {
        let said = format!("scenario {} ({}) fails: it does not load or lint\n{}\n", b.name, b.file.display(), b.error);
        eprintln!("{}", harness::diagnostic::escape_for_log(&said));
    }
    if plan.scenarios.is_empty() && !plan.broken.is_empty() {
        bail!("no selected scenario can run (see above); nothing was created");
    }
    // What the run would use, refused as the run would refuse it.
    harness::session::check_options(&live.options(live.keep()), &profile)?;
    live.describe(&mut plan, &profile);
    if dry_run {
        emit(&harness::diagnostic::escape_for_log(&plan.to_string()));
        let exclusive = plan.scenarios.iter().filter(|s| s.exclusive).count();
        eprintln!(
            "{} scenario(s), up to {} at once ({exclusive} alone), a failed step retried {} time(s)",
            plan.scenarios.len(),
            checks.jobs.max(1),
            checks.retries
        );
        return Ok(u8::from(!plan.broken.is_empty()));
    }
    require_docker(live, &progress).await?;

    let cancel = tokio_util::sync::CancellationToken::new();
    harness::cluster::cancel_on_ctrl_c(cancel.clone());
    let deadline = live.budget.map(|b| b.arm(&cancel));
    let root = project().root().to_owned();
    let keep = live.keep();
    let options = live.options(keep);
    let mut profile = profile;
    let env = harness::session::create_cluster(&root, &plan, &profile, &options, &cancel, &progress).await?;
    let mut discovered = None;
    let installed = if options.no_install {
        harness::session::discover(&env, &mut profile, &options, &progress).await.map(|found| {
            discovered = Some(found);
        })
    } else {
        harness::session::install(&root, &env, &plan, &profile, &options, &cancel, &progress).await
    };
    let report = match installed {
        Ok(()) => {
            let options = harness::session::ScenarioOptions {
                keep_namespaces: keep != harness::cluster::Keep::Never,
                snapshots: checks.snapshots,
                mutants: checks.mutants,
                deadline: deadline.clone(),
                expected: checks.expected.clone(),
                jobs: checks.jobs,
                retries: checks.retries,
                sandbox: checks.sandbox,
            };
            harness::session::run_scenarios(catalog, &env, &plan, &profile, &options, &cancel, &progress).await
        }
        Err(e) => {
            // API answers and discovered names may be in it.
            say(&format!("error: {e}"));
            harness::session::environment_failed(&env, &plan, &profile, &e.to_string(), deadline.as_ref()).await
        }
    };
    let mut report = report;
    // Every path: the versions that ran and a rerun line with this run's provider flags.
    harness::session::as_run(&mut report, &options, discovered.as_ref());
    for b in &plan.broken {
        report.results.push(harness::report::ScenarioResult {
            scenario: b.name.clone(),
            mesh: mesh.to_string(),
            // An input that cannot be judged: JUnit's `error`, not a check that failed.
            outcome: harness::report::Outcome::Failed {
                verdict: "the scenario does not load or lint".into(),
                evidence: b.error.clone(),
                kind: harness::runner::outcome::FailureKind::Error,
            },
            duration_ms: 0,
            artifacts: None,
            notes: Vec::new(),
            phases: Vec::new(),
        });
    }
    let stopped = Stopped::of(&cancel, deadline.as_ref());
    let failed = !report.passed() || stopped == Stopped::OutOfTime;
    write_reports(&env.run, &report)?;
    let (_, message) = harness::session::finish(env, keep, failed, stopped == Stopped::Interrupted).await;
    say(&message);
    let passed = report.count(|o| matches!(o, harness::report::Outcome::Passed));
    eprintln!("{passed}/{} scenario(s) passed", report.results.len());
    if let (Stopped::OutOfTime, Some(d)) = (stopped, deadline) {
        eprintln!("{}", d.reason());
    }
    Ok(stopped.exit_code(failed))
}

/// How a live run ended, for its teardown and exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// It ran to its end.
    No,
    /// Ctrl-C: exit 130 (as a shell reports SIGINT), after the teardown.
    Interrupted,
    /// `--budget` ran out: a failure (exit 1), with the cluster's logs exported as for one.
    OutOfTime,
}

impl Stopped {
    fn of(cancel: &tokio_util::sync::CancellationToken, deadline: Option<&harness::budget::Deadline>) -> Stopped {
        match (cancel.is_cancelled(), deadline.is_some_and(|d| d.passed())) {
            (false, _) => Stopped::No,
            (true, true) => Stopped::OutOfTime,
            (true, false) => Stopped::Interrupted,
        }
    }

    fn exit_code(self, failed: bool) -> u8 {
        match self {
            Stopped::Interrupted => 130,
            Stopped::OutOfTime => 1,
            Stopped::No => u8::from(failed),
        }
    }
}

/// Lint each planned scenario with its fixtures for the run's mesh and Kubernetes: a scenario
/// with errors moves to `plan.broken` (it fails alone, the others run); warnings are shown.
fn lint_planned(
    catalog: &Catalog,
    plan: &mut plan::Plan,
    profile: &harness::profile::Profile,
    progress: &harness::progress::Progress,
) {
    use harness::diagnostic::Severity;
    let phase = progress.phase("lint");
    let kubernetes = &profile.pins.kubernetes;
    let carried = harness::lint::KUBERNETES_SCHEMAS
        .iter()
        .any(|v| kubernetes.trim_start_matches('v').starts_with(&format!("{v}.")));
    let mesh = profile.mesh();
    let mut warnings = 0;
    let mut failing = Vec::new();
    for scenario in &plan.scenarios {
        let inputs = harness::lint::Inputs {
            paths: vec![catalog.project.root().join(&scenario.file)],
            mesh: Some(mesh),
            kubernetes_version: carried.then(|| kubernetes.clone()),
            ..Default::default()
        };
        let outcome = harness::lint::run(catalog, &inputs);
        warnings += outcome.warnings();
        for d in outcome.findings.iter().filter(|d| d.severity == Severity::Warning) {
            eprintln!("{d}\n");
        }
        if outcome.exit_code() != 0 {
            let errors: Vec<String> =
                outcome.findings.iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()).collect();
            failing.push(harness::scenario::Broken {
                name: scenario.name.clone(),
                file: scenario.file.clone(),
                error: errors.join("\n\n"),
            });
        }
    }
    plan.scenarios.retain(|s| !failing.iter().any(|b| b.name == s.name));
    let schema_note = if carried {
        String::new()
    } else {
        format!(
            "; core kinds checked against Kubernetes {}, the profile runs {kubernetes}",
            harness::lint::KUBERNETES_SCHEMAS.join(", ")
        )
    };
    let broken = failing.len() + plan.broken.len();
    plan.broken.extend(failing);
    if broken == 0 {
        phase.finish(true, &format!("clean, {warnings} warning(s){schema_note}"));
    } else {
        phase.finish(false, &format!("{broken} scenario(s) fail to load or lint, {warnings} warning(s){schema_note}"));
    }
}

/// JUnit, the Markdown summary (also appended to `$GITHUB_STEP_SUMMARY` in Actions) and run.json.
fn write_reports(run: &harness::cluster::RunDir, report: &harness::report::RunReport) -> Result<()> {
    let write = |name: &str, text: String| {
        let path = run.path.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write("junit.xml", harness::report::junit(report)?)?;
    let summary = harness::report::markdown(report);
    write("summary.md", summary.clone())?;
    write("run.json", harness::report::json(report))?;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).create(true).open(&path)?;
        file.write_all(summary.as_bytes())?;
    }
    eprintln!("reports: {}/{{junit.xml,summary.md,run.json}}", run.path.display());
    Ok(())
}

/// Two loopback ports free now, for Kong's proxy.
fn free_ports() -> Result<harness::cluster::HostPorts> {
    harness::cluster::HostPorts::free().context("cannot find free loopback ports for Kong's proxy")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOT_PORTS: harness::cluster::HostPorts = harness::cluster::HostPorts { http: 40080, https: 40443 };

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_project_has_versions_and_scenarios() {
        let catalog = catalog().unwrap();
        assert!(!catalog.files().unwrap().is_empty());
    }

    #[test]
    fn plans_render_for_every_mesh() {
        let catalog = catalog().unwrap();
        for mesh in Mesh::ALL {
            let plan = make_plan(&catalog, mesh, None, "snap", SNAPSHOT_PORTS, &[], &[]).unwrap();
            insta::assert_snapshot!(format!("plan_{mesh}"), plan.to_string());
        }
    }

    #[test]
    fn the_ci_matrix_has_one_readable_entry_per_profile() {
        let versions = &catalog().unwrap().versions;
        insta::assert_json_snapshot!("ci_matrix", harness::report::matrix::matrix(versions, None));
        let linkerd = harness::report::matrix::matrix(versions, Some("linkerd"));
        assert!(linkerd.include.iter().all(|e| e.mesh == "linkerd") && !linkerd.include.is_empty());
        // A scenario that runs on Istio only makes no Linkerd or no-mesh jobs.
        let istio_only = [Mesh::Istio];
        let one = harness::report::matrix::matrix_for(versions, None, Some(&istio_only));
        assert!(one.include.iter().all(|e| e.mesh == "istio") && one.include.len() >= 3);
        // --shards 2 doubles the jobs, each profile once per shard.
        let whole = harness::report::matrix::matrix(versions, None);
        let halves = whole.clone().sharded(2);
        assert_eq!(halves.include.len(), 2 * whole.include.len());
        assert_eq!(halves.include[0].shard.as_deref(), Some("1/2"));
        assert_eq!(halves.include[1].shard.as_deref(), Some("2/2"));
        assert_eq!(halves.include[0].profile, halves.include[1].profile);
    }

    /// The bench's goal, in virtual time under its stated model: four jobs take at most 0.4 of
    /// the sequential wall time on the Istio profile.
    #[test]
    fn four_jobs_meet_the_benchs_goal_on_istio() {
        let catalog = catalog().unwrap();
        let profile = catalog.default_profile(Mesh::Istio).unwrap();
        let scenarios = harness::runner::bench::scenarios_of(&catalog, &profile).unwrap();
        for seed in 1..=5 {
            let modelled = harness::runner::bench::model(&scenarios, true, seed);
            let result = harness::runner::bench::compare("istio", seed, &modelled, 4).unwrap();
            assert!(result.ratio <= 0.4 && result.ratio > 0.0, "{result:?}");
        }
    }

    #[test]
    fn kong_resources_of_the_stack_come_after_kongs_crds() {
        let plan = make_plan(&catalog().unwrap(), Mesh::Linkerd, None, "x", SNAPSHOT_PORTS, &[], &[]).unwrap();
        let at = |f: &dyn Fn(&harness::stack::Action) -> bool| plan.environment.iter().position(f).unwrap();
        let kong = at(&|a| matches!(a, harness::stack::Action::Helm(r) if r.name == "kong"));
        let guard = at(&|a| matches!(a, harness::stack::Action::Apply { name, .. } if name == "kong-ingress-guard"));
        assert!(kong < guard, "the KongClusterPlugin needs the CRDs Kong's chart installs");
    }

    /// Every action a workflow uses is pinned by a full commit SHA with its tag beside it (a tag
    /// can be moved by whoever controls the action's repository; a commit cannot).
    #[test]
    fn workflow_actions_are_pinned_by_commit() {
        let pinned = regex::Regex::new(r"^\s*(?:- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$").unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            for line in std::fs::read_to_string(&path).unwrap().lines().filter(|l| l.contains("uses:")) {
                assert!(pinned.is_match(line), "{}: `{line}` is not pinned by commit", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 8, "the workflows use actions ({seen} seen)");
    }

    #[test]
    fn a_profile_of_another_mesh_is_refused() {
        let err =
            make_plan(&catalog().unwrap(), Mesh::Istio, Some("linkerd"), "x", SNAPSHOT_PORTS, &[], &[]).unwrap_err();
        assert_eq!(err.to_string(), "profile `linkerd` is for mesh linkerd, not istio");
    }
}
