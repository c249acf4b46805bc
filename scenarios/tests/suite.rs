//! The scenario suite: one test per scenario x mesh.
//!
//! - `offline::<scenario>::<mesh>` runs everywhere: the file parses, its templates resolve and
//!   its fixtures exist and render for that mesh.
//! - `live::<scenario>::<mesh>` needs a cluster with the mesh's stack. It is reported as
//!   ignored, with the reason, unless `E2E_LIVE=1` is set.

use std::path::Path;

use harness::project::Project;
use harness::scenario::{Catalog, Mesh, Tag};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

const LIVE_ENV: &str = "E2E_LIVE";

fn main() {
    harness::tls::install_ring_provider();
    let args = Arguments::from_args();
    let trials = match trials() {
        Ok(trials) => trials,
        Err(e) => vec![Trial::test("catalog", move || Err(Failed::from(e.clone())))],
    };
    libtest_mimic::run(&args, trials).exit();
}

fn trials() -> Result<Vec<Trial>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace root")?;
    let catalog = Catalog::open(Project::at(root)).map_err(|e| e.to_string())?;
    let live = std::env::var(LIVE_ENV).is_ok_and(|v| v == "1");
    let mut trials = Vec::new();
    let covering = catalog.clone();
    trials.push(Trial::test("offline::catalog-covers-every-tag-on-istio-and-linkerd", move || coverage(&covering)));
    for file in catalog.files().map_err(|e| e.to_string())? {
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_owned();
        let meshes = match catalog.meshes_of(&file) {
            Ok(meshes) => meshes,
            Err(e) => {
                // The scenario does not even parse: one failing test says where.
                let message = e.to_string();
                trials.push(Trial::test(format!("offline::{name}"), move || Err(Failed::from(message.clone()))));
                continue;
            }
        };
        for mesh in meshes {
            let (c, f, scenario) = (catalog.clone(), file.clone(), name.clone());
            trials.push(Trial::test(format!("offline::{name}::{mesh}"), move || offline(&c, &f, mesh)));
            trials.push(Trial::ignorable_test(format!("live::{name}::{mesh}"), move || {
                if !live {
                    return Ok(Completion::ignored_with(format!(
                        "live scenarios need Docker and a cluster; set {LIVE_ENV}=1 to run them"
                    )));
                }
                Err(Failed::from(format!(
                    "{LIVE_ENV}=1, but this version of the harness has no live runner yet: scenario {scenario} was not run on {mesh}"
                )))
            }));
        }
    }
    Ok(trials)
}

/// Every capability tag has at least one scenario on Istio and on Linkerd.
fn coverage(catalog: &Catalog) -> Result<(), Failed> {
    let entries = catalog.entries().map_err(|e| Failed::from(e.to_string()))?;
    let mut missing = Vec::new();
    for mesh in [Mesh::Istio, Mesh::Linkerd] {
        for tag in Tag::ALL {
            if !entries.iter().any(|e| e.meshes.contains(&mesh) && e.covers.contains(&tag)) {
                missing.push(format!("{tag} on {mesh}"));
            }
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(Failed::from(format!("no scenario covers {}", missing.join(", ")))) }
}

/// The scenario loads for `mesh`, and its fixtures render to at least one object each.
fn offline(catalog: &Catalog, file: &Path, mesh: Mesh) -> Result<(), Failed> {
    let checked = catalog.check_mesh(file, mesh, "offline").map_err(|e| Failed::from(e.to_string()))?;
    if checked.manifests.is_empty() && checked.scenario.fixture_refs().next().is_some() {
        return Err(Failed::from("fixtures rendered to no objects"));
    }
    Ok(())
}
