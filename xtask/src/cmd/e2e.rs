//! `e2e` and `up`: the live path, carried out by `harness::session` on this machine
//! ([`RealWorld`]); here only what the user asked and what they are told.

use std::path::Path;

use anyhow::Result;
use harness::scenario::{Catalog, Mesh};
use harness::session::{RealWorld, Request, RunChecks, RunError, World};
use harness::snapshot::SnapshotMode;
use tokio_util::sync::CancellationToken;

use crate::args::{E2eArgs, LiveArgs};
use crate::{catalog, emit, say};

pub async fn e2e(args: E2eArgs) -> Result<u8> {
    let catalog = catalog()?;
    // `e2e istio --profile istio-ambient` is an ambient run: its scenarios are ambient's.
    let mesh = harness::session::profile_for(&catalog, args.mesh, args.profile.as_deref())?.mesh();
    let mut only = args.scenarios;
    if let Some(shard) = args.shard {
        only = shard_of(&catalog, mesh, &only, shard, args.durations.as_deref())?;
        if only.is_empty() {
            harness::say_err!("shard {shard}: no scenario of {mesh} falls in it; nothing to run");
            return Ok(0);
        }
        say(&format!("shard {shard}: {}", only.join(", ")));
    }
    let checks = RunChecks {
        snapshots: Some(SnapshotMode::for_run(args.update_snapshots)),
        mutants: args.mutants,
        expected: None,
        jobs: args.jobs.into(),
        retries: args.retries,
        sandbox: false,
    };
    args.live.check()?;
    let request = Request { only, checks, ..args.live.request(mesh, args.profile) };
    run_live(&catalog, &request, args.dry_run).await
}

/// Prepare `request`, then show it (`dry_run`) or run it on this machine and say how it went.
pub async fn run_live(catalog: &Catalog, request: &Request, dry_run: bool) -> Result<u8> {
    let progress = harness::progress::Progress::stderr();
    let run_id = harness::names::new_run_id();
    let prepared = harness::session::prepare(catalog, request, &run_id, RealWorld.free_ports()?, &progress)?;
    if dry_run {
        let plan = &prepared.plan;
        emit(&harness::diagnostic::escape_for_log(&plan.to_string()));
        let exclusive = plan.scenarios.iter().filter(|s| s.exclusive).count();
        harness::say_err!(
            "{} scenario(s), up to {} at once ({exclusive} alone), a failed step retried {} time(s)",
            plan.scenarios.len(),
            request.checks.jobs.max(1),
            request.checks.retries
        );
        return Ok(u8::from(!plan.broken.is_empty()));
    }
    let cancel = CancellationToken::new();
    harness::cluster::cancel_on_ctrl_c(cancel.clone());
    let silent = harness::runner::events::Silent;
    let outcome = match harness::session::run(&RealWorld, catalog, request, prepared, &cancel, &progress, &silent).await
    {
        Ok(outcome) => outcome,
        Err(e) => return refused(e),
    };
    if let Some(e) = &outcome.environment_error {
        // API answers and discovered names may be in it.
        say(&format!("error: {e}"));
    }
    harness::say_err!("{}", harness::session::reports_line(&outcome.run_dir));
    say(&outcome.teardown_message);
    let passed = outcome.report.count(|o| matches!(o, harness::report::Outcome::Passed));
    harness::say_err!("{passed}/{} scenario(s) passed", outcome.report.results.len());
    if let Some(reason) = &outcome.budget_reason {
        harness::say_err!("{reason}");
    }
    if let Some(e) = &outcome.report_error {
        say(&format!("error: the reports could not be written: {e}"));
    }
    Ok(outcome.exit_code())
}

/// A run that could not be made: the preflight report first when Docker is missing; Ctrl-C
/// before a cluster existed exits 130 as any interrupted run.
fn refused(e: RunError) -> Result<u8> {
    match e {
        e if e.is_interrupt() => {
            harness::say_err!("interrupted: nothing was left behind");
            Ok(130)
        }
        RunError::NoDocker { missing, report } => {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                harness::diagnostic::escape_for_log(&report.to_string()).as_bytes(),
            );
            Err(RunError::NoDocker { missing, report }.into())
        }
        e => Err(e.into()),
    }
}

/// `up`: a cluster with the stack, left up.
pub async fn up(mesh: Mesh, profile: Option<String>, live: &LiveArgs) -> Result<u8> {
    live.check()?;
    if live.no_install {
        anyhow::bail!("`up` installs the stack; with --no-install it would do nothing (use `e2e --no-install`)");
    }
    let catalog = catalog()?;
    let mesh = harness::session::profile_for(&catalog, mesh, profile.as_deref())?.mesh();
    let request = live.request(mesh, profile);
    let progress = harness::progress::Progress::stderr();
    let cancel = CancellationToken::new();
    harness::cluster::cancel_on_ctrl_c(cancel.clone());
    let outcome = match harness::session::up(&RealWorld, &catalog, &request, &cancel, &progress).await {
        Ok(outcome) => outcome,
        Err(e) => return refused(e),
    };
    say(&outcome.teardown_message);
    let code = outcome.exit_code();
    outcome.installed?;
    Ok(code)
}

/// The scenarios of `mesh` in `shard` (among `only` when given, else all that run on it),
/// balanced by the durations of an earlier run when given.
fn shard_of(
    catalog: &Catalog,
    mesh: Mesh,
    only: &[String],
    shard: harness::runner::shard::Shard,
    durations: Option<&Path>,
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
