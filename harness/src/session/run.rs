//! The whole run behind one entry point: [`prepare`] makes and lints the plan (what `--dry-run`
//! shows), [`run`] carries it out (Docker, cluster, stack or discovery, scenarios, reports,
//! teardown) and returns a [`RunOutcome`] whose exit code the CLI returns; [`up`] is the same
//! without scenarios, leaving the cluster behind.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{Options, ProviderChoice, ScenarioOptions, SessionError, World};
use crate::budget::{Budget, Deadline};
use crate::cluster::{HostPorts, Keep, Teardown};
use crate::diagnostic::{Diagnostic, Severity};
use crate::plan::{self, Plan};
use crate::preflight;
use crate::profile::{Profile, ProfileError};
use crate::progress::Progress;
use crate::report::{Outcome, RunReport, ScenarioResult};
use crate::runner::events::{Fanout, ProgressReporter, ReportFiles, Reporter};
use crate::runner::outcome::FailureKind;
use crate::scenario::catalog::{CatalogError, CheckError};
use crate::scenario::{Catalog, Mesh};
use crate::snapshot::SnapshotMode;

/// What a run checks beyond the steps, and how its scenarios share the cluster.
#[derive(Debug, Clone, Default)]
pub struct RunChecks {
    /// Compare (or update) snapshots; `None` for bundles, which carry none.
    pub snapshots: Option<SnapshotMode>,
    pub mutants: bool,
    /// `repro run`: the bundle's expected outcome is the verdict.
    pub expected: Option<crate::scenario::bundle::Expected>,
    pub jobs: usize,
    pub retries: u32,
    /// An untrusted bundle: its namespaces get the sandbox's egress policy.
    pub sandbox: bool,
}

/// One run as the user asked for it.
#[derive(Debug, Clone)]
pub struct Request {
    pub mesh: Mesh,
    /// The profile's name (default: the mesh's).
    pub profile: Option<String>,
    /// The scenarios to run (every one of the mesh when empty).
    pub only: Vec<String>,
    /// `--values CHART=FILE`, layered in order.
    pub values: Vec<(String, PathBuf)>,
    pub options: Options,
    pub budget: Option<Budget>,
    pub checks: RunChecks,
    /// Where the Markdown summary is appended as well (`$GITHUB_STEP_SUMMARY`).
    pub step_summary: Option<PathBuf>,
}

impl Request {
    /// A run of `mesh`'s default profile, every scenario, the kind provider, no extras.
    pub fn new(mesh: Mesh) -> Self {
        Request {
            mesh,
            profile: None,
            only: Vec::new(),
            values: Vec::new(),
            options: Options::default(),
            budget: None,
            checks: RunChecks { jobs: 1, ..RunChecks::default() },
            step_summary: None,
        }
    }
}

/// Why a run could not be made or carried out (a run that ran and failed is a [`RunOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("profile `{name}` is for mesh {profile_mesh}, not {mesh}")]
    WrongMesh { name: String, profile_mesh: Mesh, mesh: Mesh },
    /// Renders itself, located in the values file.
    #[error("{0}")]
    Values(Box<Diagnostic>),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("no scenario `{name}` runs on {mesh}; scenarios on {mesh}: {on_mesh}")]
    NoSuchScenario { name: String, mesh: Mesh, on_mesh: String },
    #[error("no selected scenario can run (see above); nothing was created")]
    NothingRuns,
    #[error(
        "no scenario of this project runs on {mesh}: a run would install the whole stack to check nothing (`list` \
         shows the scenarios and their meshes); nothing was created"
    )]
    NoScenario { mesh: Mesh },
    /// The preflight report says what is missing and how to get it; show it first.
    #[error(
        "cannot run the live path: missing {missing} (see above for fixes; `--dry-run` shows the plan without them). \
         Nothing was created; kind and helm are downloaded by the run itself once Docker answers"
    )]
    NoDocker { missing: String, report: Box<preflight::Report> },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("interrupted before anything was created")]
    Interrupted,
    /// Findings in the user's values files, each rendering itself.
    #[error("{}\nyour values would fail the install (see above); nothing was created", render(.0))]
    ValuesLint(Vec<Diagnostic>),
    #[error(
        "a bundle runs on --provider existing (your own cluster) only with --trust-bundle: its fixtures would run \
         there with the reach the sandbox otherwise limits (see README, \"Security\")"
    )]
    BundleOnOwnCluster,
    /// What only a trusted bundle may do, at its line (renders itself).
    #[error("{0}")]
    UntrustedBundle(Box<Diagnostic>),
}

impl RunError {
    /// Ctrl-C stopped the run before it had a cluster (it leaves nothing behind): the CLI exits
    /// 130, as for an interrupted run.
    pub fn is_interrupt(&self) -> bool {
        matches!(
            self,
            RunError::Interrupted | RunError::Session(SessionError::Cluster(crate::cluster::ClusterError::Interrupted))
        )
    }
}

fn render(findings: &[Diagnostic]) -> String {
    findings.iter().map(|d| format!("{d}\n")).collect()
}

/// The profile named `name` (default: the mesh's), checked against `mesh`. An `istio` run may
/// name an ambient profile (`e2e istio --profile istio-ambient`): the same control plane; the
/// run is then an `istio-ambient` run ([`Profile::mesh`]).
pub fn profile_for(catalog: &Catalog, mesh: Mesh, name: Option<&str>) -> Result<Profile, RunError> {
    let name = name.unwrap_or(mesh.as_str());
    let profile = catalog.versions.profile(name, &catalog.project.versions_file())?;
    if profile.mesh() != mesh && !(mesh == Mesh::Istio && profile.mesh() == Mesh::IstioAmbient) {
        return Err(RunError::WrongMesh { name: name.to_owned(), profile_mesh: profile.mesh(), mesh });
    }
    Ok(profile)
}

/// The plan of `only` (every scenario when empty) on `mesh`'s profile, with the user's values
/// layered in order.
pub fn make_plan(
    catalog: &Catalog,
    mesh: Mesh,
    profile: Option<&str>,
    run: &str,
    ports: HostPorts,
    values: &[(String, PathBuf)],
    only: &[String],
) -> Result<Plan, RunError> {
    let profile = profile_for(catalog, mesh, profile)?;
    let mut user = Vec::new();
    for (chart, file) in values {
        user.push(crate::stack::values::read(chart, file, profile.mesh()).map_err(RunError::Values)?);
    }
    let mut plan = plan::build_selected(catalog, &profile, run, ports, only)?;
    plan.with_user_values(&user);
    Ok(plan)
}

/// A plan made, linted and checked, ready to show (`--dry-run`) or to run.
pub struct Prepared {
    pub plan: Plan,
    pub profile: Profile,
}

/// Make the plan of `request` for run `run_id` with Kong's proxy on `ports`: a named scenario
/// that does not run on the mesh is refused; each scenario is linted with its fixtures (one
/// with errors moves to `plan.broken` and fails alone; warnings are printed); option
/// combinations that cannot work are refused; the plan says where the run happens.
pub fn prepare(
    catalog: &Catalog,
    request: &Request,
    run_id: &str,
    ports: HostPorts,
    progress: &Progress,
) -> Result<Prepared, RunError> {
    let profile = profile_for(catalog, request.mesh, request.profile.as_deref())?;
    let mesh = profile.mesh();
    let mut plan = make_plan(catalog, mesh, Some(&profile.name), run_id, ports, &request.values, &request.only)?;
    // Your Kong values, before anything is created: what the API server or the chart would
    // refuse or ignore only after the cluster and the mesh are up.
    lint_values(catalog, request, mesh)?;
    let known = |n: &String| plan.scenarios.iter().any(|s| &s.name == n) || plan.broken.iter().any(|b| &b.name == n);
    if let Some(missing) = request.only.iter().find(|n| !known(n)) {
        let listing = catalog.listing()?;
        let on_mesh: Vec<&str> =
            listing.scenarios.iter().filter(|e| e.meshes.contains(&mesh)).map(|e| e.name.as_str()).collect();
        return Err(RunError::NoSuchScenario {
            name: crate::names::printable(missing),
            mesh,
            on_mesh: on_mesh.join(", "),
        });
    }
    lint_planned(catalog, &mut plan, &profile, progress);
    for b in &plan.broken {
        let said = format!("scenario {} ({}) fails: it does not load or lint\n{}\n", b.name, b.file.display(), b.error);
        crate::say_err!("{}", crate::diagnostic::escape_for_log(&said));
    }
    if plan.scenarios.is_empty() && !plan.broken.is_empty() {
        return Err(RunError::NothingRuns);
    }
    // A run without a scenario would install the whole stack to check nothing.
    if plan.scenarios.is_empty() {
        return Err(RunError::NoScenario { mesh });
    }
    super::check_options(&request.options, &profile)?;
    if request.options.reuse && plan.scenarios.iter().any(|s| s.upgrades) {
        return Err(RunError::Session(super::SessionError::Options(
            "--reuse picks up a kept cluster as the profile's stack, and an upgrade leaves the mesh at another release: run upgrades on a fresh cluster".into(),
        )));
    }
    describe(&mut plan, &profile, &request.options);
    Ok(Prepared { plan, profile })
}

/// Each of the user's Kong values files checked on its own (`lint::values_file`): warnings are
/// shown, errors refuse the run.
fn lint_values(catalog: &Catalog, request: &Request, mesh: Mesh) -> Result<(), RunError> {
    let mut errors = Vec::new();
    for (chart, file) in &request.values {
        let outcome = crate::lint::values_file(catalog, chart, file, mesh);
        for d in outcome.findings {
            match d.severity {
                Severity::Error => errors.push(d),
                _ => crate::say_err!("{d}\n"),
            }
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(RunError::ValuesLint(errors)),
    }
}

/// What the plan says about where the run happens.
fn describe(plan: &mut Plan, profile: &Profile, options: &Options) {
    match options.provider {
        ProviderChoice::Kind => {}
        ProviderChoice::K3s => {
            plan.cluster.use_k3s(profile.k3s_image().unwrap_or("(no k3s image pinned for this Kubernetes)"));
        }
        ProviderChoice::Existing => plan
            .cluster
            .use_existing(options.context.as_deref().unwrap_or_default(), options.proxy.as_deref().unwrap_or_default()),
    }
    if options.no_install {
        plan.install_nothing(options.kong_namespace.as_deref());
    }
}

/// Lint each planned scenario with its fixtures for the run's mesh and Kubernetes: a scenario
/// with errors moves to `plan.broken` (it fails alone, the others run); warnings are shown.
fn lint_planned(catalog: &Catalog, plan: &mut Plan, profile: &Profile, progress: &Progress) {
    let phase = progress.phase("lint");
    let kubernetes = &profile.pins.kubernetes;
    let carried = crate::lint::KUBERNETES_SCHEMAS
        .iter()
        .any(|v| kubernetes.trim_start_matches('v').starts_with(&format!("{v}.")));
    let mut warnings = 0;
    let mut failing = Vec::new();
    for scenario in &plan.scenarios {
        let inputs = crate::lint::Inputs {
            paths: vec![catalog.project.root().join(&scenario.file)],
            mesh: Some(profile.mesh()),
            kubernetes_version: carried.then(|| kubernetes.clone()),
            ..Default::default()
        };
        let outcome = crate::lint::run(catalog, &inputs);
        warnings += outcome.warnings();
        for d in outcome.findings.iter().filter(|d| d.severity == Severity::Warning) {
            crate::say_err!("{d}\n");
        }
        if outcome.exit_code() != 0 {
            let errors: Vec<String> =
                outcome.findings.iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()).collect();
            failing.push(crate::scenario::Broken {
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
            "; core kinds checked against Kubernetes {} (lint carries {}), the profile runs {kubernetes}",
            crate::lint::DEFAULT_KUBERNETES_SCHEMA,
            crate::lint::KUBERNETES_SCHEMAS.join(", ")
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

/// How a live run ended, for its teardown and exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It ran to its end.
    No,
    /// Ctrl-C: exit 130 (as a shell reports SIGINT), after the teardown.
    Interrupted,
    /// `--budget` ran out: a failure (exit 1), with the cluster's logs exported as for one.
    OutOfTime,
}

impl Stopped {
    pub fn of(cancel: &CancellationToken, deadline: Option<&Deadline>) -> Stopped {
        match (cancel.is_cancelled(), deadline.is_some_and(|d| d.passed())) {
            (false, _) => Stopped::No,
            (true, true) => Stopped::OutOfTime,
            (true, false) => Stopped::Interrupted,
        }
    }

    pub fn exit_code(self, failed: bool) -> u8 {
        match self {
            Stopped::Interrupted => 130,
            Stopped::OutOfTime => 1,
            Stopped::No => u8::from(failed),
        }
    }
}

/// What a live run did.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: RunReport,
    pub stopped: Stopped,
    /// A scenario failed, or the budget ran out.
    pub failed: bool,
    /// Why the environment (cluster, stack or discovery) failed, when it did.
    pub environment_error: Option<String>,
    pub teardown: Teardown,
    /// What became of the cluster, for people.
    pub teardown_message: String,
    /// The run directory: the reports, state.json and artifacts.
    pub run_dir: PathBuf,
    /// Why the budget stopped the run, when it did.
    pub budget_reason: Option<String>,
    /// Why the final reports could not be written, when they could not: the run fails (an
    /// interrupted one still exits 130).
    pub report_error: Option<String>,
}

impl RunOutcome {
    pub fn exit_code(&self) -> u8 {
        self.stopped.exit_code(self.failed || self.report_error.is_some())
    }
}

/// Docker must answer before anything slow starts (not needed for existing clusters); when it
/// does not, the error carries the preflight report of what is missing.
pub async fn require_docker<W: World>(
    world: &W,
    catalog: &Catalog,
    options: &Options,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<(), RunError> {
    if options.provider == ProviderChoice::Existing {
        return Ok(());
    }
    let phase = progress.phase("preflight");
    phase.waiting_for("the Docker daemon");
    let ping = preflight::DockerProbe::ping(world.docker(), preflight::DOCKER_TIMEOUT);
    let answered = tokio::select! {
        answered = ping => answered,
        () = cancel.cancelled() => {
            phase.finish(false, "interrupted");
            return Err(RunError::Interrupted);
        }
    };
    match answered {
        Ok(info) => {
            phase.finish(true, &format!("Docker {}", info.version));
            Ok(())
        }
        Err(_) => {
            phase.finish(false, "no Docker daemon");
            let report = preflight_report(world, catalog).await;
            let missing: Vec<&str> = report.missing().map(|c| c.name.as_str()).collect();
            Err(RunError::NoDocker { missing: missing.join(", "), report: Box::new(report) })
        }
    }
}

/// What this machine has and lacks for a live run (`doctor`).
pub async fn preflight_report<W: World>(world: &W, catalog: &Catalog) -> preflight::Report {
    let root = catalog.project.root();
    let cache = world.tool_cache(root);
    let path = std::env::var_os("PATH");
    let host = preflight::HostFacts::read(&root.join("target"));
    preflight::check(world.docker(), &world.runner(), &catalog.versions, &cache, path.as_deref(), &host).await
}

/// Carry out a prepared run: Docker, the cluster (created, reused or the user's), the stack
/// installed or discovered, the scenarios (their results written into the run directory as each
/// finishes), the broken scenarios added as errors, the final reports, the teardown `--keep`
/// asks for. `cancel` stops it (Ctrl-C); `request.budget` arms a deadline that does.
///
/// Errors are what stopped the run before it had a cluster (no Docker, the tools, the cluster's
/// creation, Ctrl-C); a run that ran is an `Ok` outcome, passed or not, even when its reports
/// could not be written (`RunOutcome::report_error`).
#[allow(clippy::too_many_arguments)]
pub async fn run<W: World>(
    world: &W,
    catalog: &Catalog,
    request: &Request,
    prepared: Prepared,
    cancel: &CancellationToken,
    progress: &Progress,
    reporter: &dyn Reporter,
) -> Result<RunOutcome, RunError> {
    require_docker(world, catalog, &request.options, cancel, progress).await?;
    let deadline = request.budget.map(|b| b.arm(cancel));
    let root = catalog.project.root();
    let Prepared { plan, mut profile } = prepared;
    let options = &request.options;
    let env = super::create_cluster(world, root, &plan, &profile, options, cancel, progress).await?;
    let mut discovered = None;
    let installed = if options.no_install {
        super::discover(&env, &mut profile, options, progress).await.map(|found| discovered = Some(found))
    } else {
        super::install(world, root, &env, &plan, &profile, options, cancel, progress).await
    };
    let mut environment_error = None;
    let mut report = match installed {
        Ok(()) => {
            let checks = &request.checks;
            let scenario_options = ScenarioOptions {
                keep_namespaces: options.keep != Keep::Never,
                snapshots: checks.snapshots,
                mutants: checks.mutants,
                deadline: deadline.clone(),
                expected: checks.expected.clone(),
                jobs: checks.jobs,
                retries: checks.retries,
                sandbox: checks.sandbox,
            };
            // Each finished scenario is on disk at once: a run killed later keeps its results.
            let mut header = super::report_of(&plan, &profile, Vec::new());
            super::as_run(&mut header, options, discovered.as_ref());
            let names: Vec<String> = plan.scenarios.iter().map(|s| s.name.clone()).collect();
            let files = ReportFiles::new(&env.run.path, header, &names, broken_results(&plan, profile.mesh()));
            let terminal = ProgressReporter::new(progress.clone());
            let reporters = Fanout(vec![&terminal, &files, reporter]);
            super::run_scenarios_reporting(
                catalog,
                &env,
                &plan,
                &profile,
                &scenario_options,
                cancel,
                progress,
                &reporters,
            )
            .await
        }
        Err(e) => {
            let said = e.to_string();
            let report = super::environment_failed(&env, &plan, &profile, &said, deadline.as_ref()).await;
            environment_error = Some(said);
            report
        }
    };
    // Every path: the versions that ran and a rerun line with this run's provider flags.
    super::as_run(&mut report, options, discovered.as_ref());
    report.results.extend(broken_results(&plan, profile.mesh()));
    let stopped = Stopped::of(cancel, deadline.as_ref());
    let failed = !report.passed() || stopped == Stopped::OutOfTime;
    let run_dir = env.run.path.clone();
    let written = crate::report::write(&run_dir, &report, request.step_summary.as_deref());
    // The teardown happens whether or not the reports could be written.
    let (teardown, teardown_message) = super::finish(env, options.keep, failed, stopped == Stopped::Interrupted).await;
    let report_error = written.err().map(|e| e.to_string());
    let budget_reason = match (stopped, &deadline) {
        (Stopped::OutOfTime, Some(d)) => Some(d.reason()),
        _ => None,
    };
    Ok(RunOutcome {
        report,
        stopped,
        failed,
        environment_error,
        teardown,
        teardown_message,
        run_dir,
        budget_reason,
        report_error,
    })
}

/// The scenarios that did not load or lint, as results: JUnit's `error` (an input that cannot
/// be judged), not a check that failed.
fn broken_results(plan: &Plan, mesh: Mesh) -> Vec<ScenarioResult> {
    plan.broken
        .iter()
        .map(|b| ScenarioResult {
            scenario: b.name.clone(),
            mesh: mesh.to_string(),
            outcome: Outcome::Failed {
                verdict: "the scenario does not load or lint".into(),
                evidence: b.error.clone(),
                kind: FailureKind::Error,
            },
            duration_ms: 0,
            artifacts: None,
            notes: Vec::new(),
            phases: Vec::new(),
            load_windows: Vec::new(),
        })
        .collect()
}

/// What `up` did: the cluster's fate and whether the stack installed.
#[derive(Debug)]
pub struct UpOutcome {
    pub stopped: Stopped,
    pub teardown_message: String,
    pub installed: Result<(), SessionError>,
}

impl UpOutcome {
    pub fn exit_code(&self) -> u8 {
        self.stopped.exit_code(self.installed.is_err())
    }
}

/// `up`: the cluster and the stack of `request`'s profile, no scenarios; the cluster is kept
/// when the stack installed (and on failure only when `--keep` asked).
pub async fn up<W: World>(
    world: &W,
    catalog: &Catalog,
    request: &Request,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<UpOutcome, RunError> {
    let profile = profile_for(catalog, request.mesh, request.profile.as_deref())?;
    require_docker(world, catalog, &request.options, cancel, progress).await?;
    let ports = world.free_ports()?;
    let run_id = crate::names::new_run_id();
    let mut plan = make_plan(catalog, request.mesh, Some(&profile.name), &run_id, ports, &request.values, &[])?;
    plan.scenarios.clear();
    let deadline = request.budget.map(|b| b.arm(cancel));
    let root = catalog.project.root();
    let mut options = request.options.clone();
    options.keep = Keep::Always;
    let env = super::create_cluster(world, root, &plan, &profile, &options, cancel, progress).await?;
    let installed = super::install(world, root, &env, &plan, &profile, &options, cancel, progress).await;
    // `up` exists to leave a cluster behind; a failed install is kept only when asked to.
    let keep = if installed.is_ok() { Keep::Always } else { request.options.keep };
    let stopped = Stopped::of(cancel, deadline.as_ref());
    let (_, teardown_message) = super::finish(env, keep, installed.is_err(), stopped == Stopped::Interrupted).await;
    Ok(UpOutcome { stopped, teardown_message, installed })
}

/// The run directory's reports, for people.
pub fn reports_line(run_dir: &Path) -> String {
    format!("reports: {}/{{junit.xml,summary.md,run.json}}", run_dir.display())
}

#[cfg(test)]
mod tests;
