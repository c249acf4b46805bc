//! `cargo xtask`: the front door of the Kong x service-mesh e2e harness.
//!
//! Argument parsing (`args`), one module per command (`cmd/`), and the output conventions
//! every command shares (`say`, `emit`); everything else lives in the `harness` library so it
//! is tested there. Architecture invariant: no orchestration here; a command turns its
//! arguments into a library call and renders what comes back, with its exit code.

mod args;
mod build_cost;
mod cmd;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches};
use harness::project::Project;
use harness::scenario::Catalog;

use args::{Bench, Cli, Command, Repro, Schemas};

/// The project of this invocation, chosen once in `main`.
static PROJECT: std::sync::OnceLock<Project> = std::sync::OnceLock::new();

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
    match find_project(cli.project.as_deref()) {
        Ok(project) => {
            let _ = PROJECT.set(project);
        }
        // `doctor`, `lint` and `replay` work anywhere (a config repository's CI has no kme2e
        // project), with the pins built into this binary, and say so.
        Err(_) if cli.project.is_none() && cli.command.works_anywhere() => match std::env::current_dir() {
            Ok(here) => {
                if cli.command.reads_pins() {
                    harness::say_err!("{}", harness::diagnostic::escape_for_log(&assumed_pins_note(&here)));
                }
                let _ = PROJECT.set(Project::standalone(here));
            }
            Err(e) => {
                harness::say_err!("error: cannot read the current directory: {e}");
                return ExitCode::from(2);
            }
        },
        Err(e) => {
            harness::say_err!("error: {}", harness::diagnostic::escape_for_log(&format!("{e:#}")));
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            harness::say_err!("error: cannot start the async runtime: {e}");
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
                harness::say_err!("{text}")
            } else {
                harness::say_err!("error: {text}")
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
            harness::say_err!("interrupted");
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
    let project = project();
    if project.is_standalone() {
        return Ok(Catalog::built_in(project));
    }
    Ok(Catalog::open(project)?)
}

/// What a command run outside any project assumes: the versions this binary was built with.
fn assumed_pins_note(here: &std::path::Path) -> String {
    let versions = harness::profile::Versions::built_in();
    let profiles: Vec<String> = versions
        .profiles
        .iter()
        .filter(|(name, _)| ["istio", "linkerd", "none"].contains(&name.as_str()))
        .map(|(name, pins)| match &pins.mesh_version {
            Some(version) => format!("{name} {version} on Kubernetes {}", pins.kubernetes),
            None => format!("{name} on Kubernetes {}", pins.kubernetes),
        })
        .collect();
    format!(
        "note: no kme2e project at {} or above it: using the pins built into {} {} (kong/{} {}; {})",
        here.display(),
        harness::command_name(),
        harness::Provenance::this_build(),
        versions.kong.chart,
        versions.kong.version,
        profiles.join(", ")
    )
}

async fn run(command: Command) -> Result<u8> {
    match command {
        Command::List { format } => cmd::plan::list(format),
        Command::Lint(args) => cmd::lint::run(args),
        Command::Doctor { format } => interruptible(cmd::machine::doctor(format)).await,
        Command::Plan { mesh, profile, out, values, format } => {
            cmd::plan::plan(mesh, profile.as_deref(), out.as_deref(), &values, format)
        }
        Command::Replay { paths } => Ok(cmd::replay::replay(&paths)),
        Command::Bench { which: Bench::Build { target_dir } } => cmd::bench::build(target_dir).await,
        Command::Bench { which: Bench::Run { profile, jobs, seed, seeds } } => {
            cmd::bench::run(&profile, jobs, seed, seeds)
        }
        Command::Bench { which: Bench::Split { trials, seed } } => cmd::bench::split(trials, seed),
        Command::E2e(args) => cmd::e2e::e2e(args).await,
        Command::Up { mesh, profile, live } => cmd::e2e::up(mesh, profile, &live).await,
        Command::Down { run, all } => interruptible(cmd::machine::down(run.as_deref(), all)).await,
        Command::Tools => interruptible(cmd::machine::fetch_tools()).await,
        Command::Schemas { action: Schemas::Import { files, source, kinds } } => {
            cmd::machine::import_schemas(&files, &source, &kinds)
        }
        Command::Repro {
            action: Repro::New { name, mesh, manifests, values, request, host, expect_status, note, out },
        } => cmd::repro::new(cmd::repro::NewArgs {
            name,
            mesh,
            manifests,
            values,
            request,
            host,
            expect_status,
            note,
            out,
        }),
        Command::Repro { action: Repro::Export { scenario, mesh, values, out } } => {
            cmd::repro::export(scenario, mesh, values, out)
        }
        Command::Repro { action: Repro::Run { file, dry_run, trust_bundle_pins, trust_bundle, live } } => {
            cmd::repro::run(file, dry_run, trust_bundle_pins, trust_bundle, live).await
        }
        Command::CiMatrix { mesh, scenario, shards } => cmd::plan::ci_matrix(mesh, scenario, shards),
    }
}

/// Set once stdout's reader went away: later output is dropped, and the command still ends
/// with its own exit code (`lint --format json | head` must not turn errors into 0).
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A message to stderr that quotes untrusted text (a bundle's expected detail and note, names
/// from input files or the API, paths, errors): through `escape_for_log`, the one escape for
/// terminals and CI logs (no terminal sequences, bidi controls or workflow commands).
fn say(text: &str) {
    harness::say_err!("{}", harness::diagnostic::escape_for_log(text));
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
        harness::say_err!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::scenario::Mesh;

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
            let plan = harness::session::make_plan(&catalog, mesh, None, "snap", SNAPSHOT_PORTS, &[], &[]).unwrap();
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

    #[test]
    fn kong_resources_of_the_stack_come_after_kongs_crds() {
        let plan = harness::session::make_plan(&catalog().unwrap(), Mesh::Linkerd, None, "x", SNAPSHOT_PORTS, &[], &[])
            .unwrap();
        let at = |f: &dyn Fn(&harness::stack::Action) -> bool| plan.environment.iter().position(f).unwrap();
        let kong = at(&|a| matches!(a, harness::stack::Action::Helm(r) if r.name == "kong"));
        let guard = at(&|a| matches!(a, harness::stack::Action::Apply { name, .. } if name == "kong-ingress-guard"));
        assert!(kong < guard, "the KongClusterPlugin needs the CRDs Kong's chart installs");
    }

    /// Every action a workflow uses is pinned by a full commit SHA with its tag beside it (a tag
    /// can be moved by whoever controls the action's repository; a commit cannot).
    #[test]
    fn workflow_actions_are_pinned_by_commit() {
        let pinned =
            regex::Regex::new(r"^\s*(?:- )?uses: [\w.-]+/[\w.-]+(?:/[\w.-]+)*@[0-9a-f]{40} # v\d+(\.\d+)*$").unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files: Vec<std::path::PathBuf> =
            std::fs::read_dir(root.join(".github/workflows")).unwrap().map(|e| e.unwrap().path()).collect();
        // The Action users put in their own workflows, too.
        files.push(root.join("action.yml"));
        let mut seen = 0;
        for path in files {
            for line in std::fs::read_to_string(&path).unwrap().lines().filter(|l| l.contains("uses:")) {
                assert!(pinned.is_match(line), "{}: `{line}` is not pinned by commit", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 10, "the workflows and the Action use actions ({seen} seen)");
    }

    #[test]
    fn a_profile_of_another_mesh_is_refused() {
        let err = harness::session::make_plan(
            &catalog().unwrap(),
            Mesh::Istio,
            Some("linkerd"),
            "x",
            SNAPSHOT_PORTS,
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "profile `linkerd` is for mesh linkerd, not istio");
    }
}
