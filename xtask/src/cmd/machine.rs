//! The machine and its tools: `doctor` (what the live path needs), `tools` (the pinned
//! binaries, downloaded and verified), `down` (harness clusters removed), `schemas import`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use harness::session::{RealWorld, World};

use crate::args::Format;
use crate::{catalog, emit, project, say};

/// `doctor`: the preflight report; exit 1 when something the live path needs is missing.
pub async fn doctor(format: Format) -> Result<u8> {
    let report = harness::session::preflight_report(&RealWorld, &catalog()?).await;
    match format {
        Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&report)?)),
        // Versions as the tools on PATH print them.
        Format::Text => emit(&harness::diagnostic::escape_for_log(&report.to_string())),
    }
    Ok(if report.ok() { 0 } else { 1 })
}

pub fn import_schemas(files: &[PathBuf], source: &str, kinds: &[String]) -> Result<u8> {
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
    harness::say_err!("{} section(s) written to {}", sections.len(), out.display());
    Ok(0)
}

pub async fn fetch_tools() -> Result<u8> {
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

pub async fn down(run: Option<&str>, all: bool) -> Result<u8> {
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
        harness::say_err!(
            "no kept or leftover harness cluster of this checkout (only clusters the harness created are ever touched)"
        );
        return Ok(0);
    }
    let cache = harness::session::tool_cache(&root);
    let kind = cache.resolve(&harness::tools::tool(&versions, "kind")?, &harness::tools::Http::new()?).await?;
    let kind = harness::cluster::Kind { binary: kind.path, runner: RealWorld.runner() };
    let scope = match (run, all) {
        (Some(run), _) => harness::cluster::DownScope::Run(run),
        (None, true) => harness::cluster::DownScope::All,
        (None, false) => harness::cluster::DownScope::Checkout,
    };
    let runs = root.join("target").join("e2e");
    let containers = harness::cluster::k3s::CliContainers(harness::command::Process);
    let report = harness::cluster::down(&kind, &containers, &runs, &versions.kind.cluster_prefix, scope).await?;
    if report.removed.is_empty() && report.failed.is_empty() {
        harness::say_err!(
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
