//! `repro`: bundles that reproduce a scenario on a mesh, written from a scenario or from the
//! user's own files, and run (a stranger's bundle only inside the limits its trust allows).

use std::path::PathBuf;

use anyhow::{Context, Result};
use harness::scenario::{Catalog, Mesh};

use crate::args::LiveArgs;
use crate::{catalog, emit, project, say};

/// What `repro new` was asked, as parsed.
pub struct NewArgs {
    pub name: String,
    pub mesh: Mesh,
    pub manifests: PathBuf,
    pub values: Vec<(String, PathBuf)>,
    pub request: String,
    pub host: Option<String>,
    pub expect_status: u16,
    pub note: String,
    pub out: Option<PathBuf>,
}

/// `repro new`: a bundle scaffolded from the user's manifests and values.
pub fn new(args: NewArgs) -> Result<u8> {
    let NewArgs { name, mesh, manifests, values, request, host, expect_status, note, out } = args;
    use harness::scenario::scaffold::{Answer, scaffold_reporting};
    let catalog = catalog()?;
    let ports = harness::cluster::HostPorts::AT_RUN_TIME;
    let plan = harness::session::make_plan(&catalog, mesh, None, "new", ports, &values, &[])?;
    let in_force = harness::stack::values::in_force(&plan.environment);
    let answer = Answer { request: &request, host: host.as_deref(), status: expect_status, note: &note };
    let (bundle, skipped, adapted) = scaffold_reporting(&catalog, &name, mesh, &manifests, in_force, &answer)?;
    // What was left out of the bundle, and why (links, FIFOs, files that are no manifest).
    for s in &skipped {
        harness::say_err!(
            "{}",
            harness::diagnostic::escape_for_log(&format!("note: --manifests: skipped {}: {}", s.file.display(), s.why))
        );
    }
    // What was changed so the manifests run in the scenario's namespace.
    for change in &adapted {
        harness::say_err!("{}", harness::diagnostic::escape_for_log(&format!("note: --manifests: {change}")));
    }
    write_bundle(&bundle, out.as_deref())
}

/// `repro export`: a scenario of the checkout as a bundle.
pub fn export(
    scenario: String,
    mesh: Option<Mesh>,
    values: Vec<(String, PathBuf)>,
    out: Option<PathBuf>,
) -> Result<u8> {
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
    let plan = harness::session::make_plan(&catalog, mesh, Some(&profile.name), "export", ports, &values, &[])?;
    let in_force = harness::stack::values::in_force(&plan.environment);
    let bundle = harness::scenario::bundle::export(&catalog, &scenario, &profile, in_force)?;
    write_bundle(&bundle, out.as_deref())
}

/// `repro run`: a bundle unpacked into a fresh project under target/e2e/ and run like any
/// scenario; its verdict is what it expects.
pub async fn run(
    file: PathBuf,
    dry_run: bool,
    trust_bundle_pins: bool,
    trust_bundle: bool,
    live: LiveArgs,
) -> Result<u8> {
    use harness::scenario::bundle::Bundle;
    use harness::session::BundleTrust;
    let bundle = Bundle::load(&file)?;
    let this = harness::Provenance::this_build();
    if bundle.harness != this {
        harness::say_err!(
            "warning: the bundle was written by harness {}, this is {this}: scenario language or checks may \
             differ",
            harness::names::printable(&bundle.harness.to_string())
        );
    }
    let checkout = catalog()?;
    let trust = match (trust_bundle, trust_bundle_pins) {
        (true, _) => BundleTrust::All,
        (false, true) => BundleTrust::Pins,
        (false, false) => BundleTrust::None,
    };
    live.check()?;
    // Before anything is unpacked: a stranger's bundle never runs on a cluster the harness did
    // not make.
    harness::session::refuse_own_cluster(&live.options(), trust)?;
    let runs = project().root().join("target").join("e2e");
    let admitted = bundle.admit(&file, &checkout, trust.pins(), &runs)?;
    if !admitted.differences.is_empty() {
        harness::say_err!(
            "warning: --trust-bundle-pins: using the bundle's own pins where they differ from this checkout's:"
        );
        for d in &admitted.differences {
            let shown = |v: &Option<String>| v.as_deref().unwrap_or("(absent)").to_owned();
            harness::say_err!(
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
    let base = live.request(bundle.mesh, Some(admitted.profile.clone()));
    let request = harness::session::bundle_request(&bundle, &admitted, &catalog, trust, base)?;
    // The detail and the note are the bundle author's text.
    say(&format!("expected: {}", bundle.expected));
    if !bundle.expected.note.is_empty() {
        say(&format!("note: {}", bundle.expected.note));
    }
    let outcome = super::e2e::run_live(&catalog, &request, dry_run).await;
    if !dry_run {
        // A live run's reports point into the unpacked project: it stays with them.
        let _ = admitted.dir.keep();
    }
    outcome
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
