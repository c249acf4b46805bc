//! The command line: every command, its arguments and their checks. Parsing only; the commands
//! themselves are in `cmd/`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use harness::scenario::Mesh;

/// End-to-end tests for Kong Ingress Controller in front of a service mesh (Istio or Linkerd).
///
/// Start with `doctor` (what your machine needs), then `list` (the
/// scenarios) and `e2e istio --dry-run` (what a run would do).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
pub struct Cli {
    /// The project to work in: a directory holding versions.toml and scenarios/ (default: the
    /// current directory or its nearest parent that is one).
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    Lint(LintArgs),
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
    E2e(E2eArgs),
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

/// What `lint` was asked.
#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Files or directories, searched recursively (default: every scenario).
    pub paths: Vec<PathBuf>,
    /// The mesh the manifests are meant for; scenarios are then checked on this mesh only.
    #[arg(long)]
    pub mesh: Option<Mesh>,
    /// Helm values for a chart: `kong/ingress=FILE` or `kong/kong=FILE` (repeatable).
    /// Scenarios without them are checked with the harness's own Kong values; other
    /// manifests with what the inputs say (rules missing a fact say so in a note).
    #[arg(long = "values", value_name = "CHART=FILE", value_parser = parse_values_arg)]
    pub values: Vec<(String, PathBuf)>,
    /// The namespace Kong runs in (default: `kong`, assumed and said so where it matters).
    #[arg(long)]
    pub kong_namespace: Option<String>,
    /// Kong's Helm release name (default: `kong`, assumed likewise).
    #[arg(long)]
    pub kong_release: Option<String>,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Drop a rule's findings (repeatable); they are counted in the summary. One object can
    /// silence rules with the annotation `lint.kme2e.dev/ignore: "rule-a,rule-b"` (a values
    /// file with a comment line `# lint.kme2e.dev/ignore: rule-a,rule-b`).
    #[arg(long = "allow", value_name = "RULE")]
    pub allow: Vec<String>,
    /// The Kubernetes version core kinds are checked against: 1.34, 1.35 (the default) or 1.36.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// List the rules (id, severity, what each catches) and exit.
    #[arg(long, conflicts_with = "explain")]
    pub list_rules: bool,
    /// Explain one rule: what it catches, why (upstream evidence), an example.
    #[arg(long, value_name = "RULE")]
    pub explain: Option<String>,
    /// text, json, sarif (SARIF 2.1.0 for code scanning) or github (workflow annotations).
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
}

/// What `e2e` was asked.
#[derive(Debug, clap::Args)]
pub struct E2eArgs {
    pub mesh: Mesh,
    /// A profile of versions.toml (default: the one named after the mesh; `list` shows
    /// the scenarios, `ci-matrix` every profile).
    #[arg(long)]
    pub profile: Option<String>,
    /// Run only these scenarios (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Print the plan and stop; needs neither Docker nor a cluster.
    #[arg(long)]
    pub dry_run: bool,
    /// Accept what each scenario observed as its snapshot (scenarios/snapshots/).
    #[arg(long)]
    pub update_snapshots: bool,
    /// After each passing scenario, run its mutants: a fixture change under which a declared
    /// step must fail. A mutant that survives fails the scenario.
    #[arg(long)]
    pub mutants: bool,
    /// Scenarios run at once (each in its own namespace); `exclusive: true` ones run alone.
    #[arg(long, default_value_t = harness::runner::DEFAULT_JOBS, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Run a scenario whose step failed again, in a fresh namespace, up to N times; a pass
    /// after a failure is reported as flaky, never as a clean pass.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=5))]
    pub retries: u32,
    /// Run only this share of the scenarios (K/N): shards are disjoint and together cover
    /// every scenario (for CI jobs side by side).
    #[arg(long, value_name = "K/N", value_parser = harness::runner::shard::Shard::parse)]
    pub shard: Option<harness::runner::shard::Shard>,
    /// A run.json of an earlier run: shards are balanced by its durations (a regular file,
    /// at most 8 MiB).
    #[arg(long, value_name = "RUN_JSON", requires = "shard")]
    pub durations: Option<PathBuf>,
    #[command(flatten)]
    pub live: LiveArgs,
}

impl Command {
    /// Commands that need no kme2e project: they run anywhere with the built-in pins.
    pub fn works_anywhere(&self) -> bool {
        matches!(self, Command::Doctor { .. } | Command::Lint(_) | Command::Replay { .. })
    }

    /// Whether it reads pins at all (`lint --list-rules` and `--explain` do not: no note about
    /// the built-in ones for them).
    pub fn reads_pins(&self) -> bool {
        !matches!(self, Command::Lint(args) if args.list_rules || args.explain.is_some())
    }
}

#[derive(Debug, Subcommand)]
pub enum Schemas {
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
pub struct LiveArgs {
    /// Your Helm values for a chart the harness installs (kong/ingress, istiod,
    /// linkerd-control-plane), merged under the harness's own: the plan shows every key the
    /// harness sets over yours and why; values that take Kong out of the mesh are refused.
    #[arg(long = "values", value_name = "CHART=FILE", value_parser = parse_values_arg)]
    pub values: Vec<(String, PathBuf)>,
    /// kind (default), k3s (testcontainers), or existing (needs --context and --proxy).
    #[arg(long, value_enum, default_value_t = ProviderArg::Kind)]
    pub provider: ProviderArg,
    /// The kubeconfig context of an existing cluster (read only; copied into the run directory).
    #[arg(long, required_if_eq("provider", "existing"))]
    pub context: Option<String>,
    /// Install nothing: use the Kong and mesh the existing cluster runs, discovered and reported
    /// when the run starts (needs --provider existing).
    #[arg(long)]
    pub no_install: bool,
    /// With --no-install: the namespace Kong runs in (default: looked for in every namespace).
    #[arg(long, value_name = "NAMESPACE", requires = "no_install")]
    pub kong_namespace: Option<String>,
    /// Where Kong's proxy answers from this machine (existing clusters), e.g. http://127.0.0.1:8080.
    #[arg(long, required_if_eq("provider", "existing"))]
    pub proxy: Option<String>,
    /// Reuse a kept harness cluster whose fingerprint (provider, versions, values) matches.
    #[arg(long)]
    pub reuse: bool,
    /// Leave the cluster up afterwards.
    #[arg(long, conflicts_with = "keep_on_failure")]
    pub keep: bool,
    /// Leave the cluster up when something failed.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// The whole run's time budget (e.g. `75m`): the run stops early enough to collect evidence
    /// and tear down within it (7m are kept for that); scenarios not started are reported as
    /// skipped, and the run fails. Set it below a CI job's timeout.
    #[arg(long, value_name = "DURATION", value_parser = harness::budget::Budget::parse)]
    pub budget: Option<harness::budget::Budget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    Kind,
    K3s,
    Existing,
}

impl LiveArgs {
    /// Combinations clap cannot express.
    pub fn check(&self) -> Result<()> {
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

    /// The library's options: provider, cluster and teardown.
    pub fn options(&self) -> harness::session::Options {
        use harness::cluster::Keep;
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
            keep: if self.keep {
                Keep::Always
            } else if self.keep_on_failure {
                Keep::OnFailure
            } else {
                Keep::Never
            },
            proxy: self.proxy.clone(),
        }
    }

    /// A run of `mesh` with these options (the checks and scenarios are the command's).
    pub fn request(&self, mesh: Mesh, profile: Option<String>) -> harness::session::Request {
        harness::session::Request {
            profile,
            values: self.values.clone(),
            options: self.options(),
            budget: self.budget,
            // In GitHub Actions the summary also goes to the job's page.
            step_summary: std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            ..harness::session::Request::new(mesh)
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Repro {
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
        /// Your Kubernetes manifests: a file, or a directory of *.yaml files, applied in the
        /// scenario's namespace (a Namespace of theirs is left out, their namespace becomes the
        /// scenario's).
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
pub enum Bench {
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
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
    Github,
}

pub fn parse_values_arg(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((chart, file)) if !chart.is_empty() && !file.is_empty() => Ok((chart.to_owned(), PathBuf::from(file))),
        _ => Err(format!("`{arg}` is not CHART=FILE (e.g. kong/ingress=values.yaml)")),
    }
}
