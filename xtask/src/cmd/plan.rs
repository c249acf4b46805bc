//! `plan`, `list` and `ci-matrix`: what would run, read from the project without a cluster.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use harness::scenario::Mesh;

use crate::args::Format;
use crate::{catalog, emit, say};

/// `plan`: the plan of a mesh's profile as text or JSON, optionally written out with every
/// rendered manifest. Exit 1 when a scenario does not load (it is in the plan, and fails it).
pub fn plan(
    mesh: Mesh,
    profile: Option<&str>,
    out: Option<&Path>,
    values: &[(String, PathBuf)],
    format: Format,
) -> Result<u8> {
    let catalog = catalog()?;
    // Deterministic: ports are chosen when a run starts, not in a plan.
    let ports = harness::cluster::HostPorts::AT_RUN_TIME;
    let plan = harness::session::make_plan(&catalog, mesh, profile, "plan", ports, values, &[])?;
    if let Some(dir) = out {
        let written = harness::plan::write(&plan, dir)?;
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
    Ok(u8::from(!plan.broken.is_empty()))
}

/// Every scenario that loads, then each file that does not with its error (exit 1 then).
pub fn list(format: Format) -> Result<u8> {
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

/// `ci-matrix`: one GitHub Actions matrix entry per profile (of a mesh, or of the meshes a
/// scenario runs on), each split into `shards`.
pub fn ci_matrix(mesh: Option<Mesh>, scenario: Option<String>, shards: u16) -> Result<u8> {
    let catalog = catalog()?;
    let one_scenario = scenario.as_ref().is_some_and(|s| !s.is_empty());
    let meshes = match scenario.filter(|s| !s.is_empty()) {
        // The meshes some scenario runs on: a job for another would build a cluster to test
        // nothing. A file that does not load keeps every mesh (its job shows the error).
        None => {
            let listing = catalog.listing()?;
            listing.broken.is_empty().then(|| {
                let used: std::collections::BTreeSet<Mesh> =
                    listing.scenarios.iter().flat_map(|e| e.meshes.iter().copied()).collect();
                used.into_iter().collect::<Vec<Mesh>>()
            })
        }
        Some(name) => {
            let listing = catalog.listing()?;
            if let Some(broken) = listing.broken.iter().find(|b| b.name == name) {
                bail!("scenario `{name}` does not load:\n{}", broken.error);
            }
            match listing.scenarios.iter().find(|e| e.name == name) {
                Some(entry) => Some(entry.meshes.clone()),
                None => {
                    let known: Vec<&str> = listing.scenarios.iter().map(|e| e.name.as_str()).collect();
                    bail!("no scenario `{}`; scenarios: {}", harness::names::printable(&name), known.join(", "));
                }
            }
        }
    };
    // One scenario is never split: it runs whole in its profile's job.
    let shards = if one_scenario { 1 } else { usize::from(shards) };
    let mut matrix = harness::report::matrix::matrix_for(&catalog.versions, mesh.map(Mesh::as_str), meshes.as_deref());
    // A scenario that upgrades the mesh runs only alone: a job of its own per pair of pins
    // (with `--scenario`, the profile's job already is that).
    if !one_scenario {
        let upgrades: Vec<(String, Vec<Mesh>, Vec<harness::scenario::UpgradePart>)> = catalog
            .listing()?
            .scenarios
            .into_iter()
            .filter(|e| !e.upgrades.is_empty())
            .map(|e| (e.name, e.meshes, e.upgrades))
            .collect();
        matrix = matrix.with_upgrades(&catalog.versions, &upgrades);
    }
    let matrix = matrix.sharded(shards);
    if matrix.include.is_empty() {
        harness::say_err!("ci-matrix: no profile matches (no scenario runs on that mesh): an empty matrix");
    }
    emit(&format!("{}\n", serde_json::to_string(&matrix)?));
    Ok(0)
}
