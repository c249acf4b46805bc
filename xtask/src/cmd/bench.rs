//! `bench`: the split test against fixed-sample methods, a simulated run's wall time at
//! `--jobs N`, and a clean build's cost.

use std::path::PathBuf;

use anyhow::{Context, Result};
use harness::scenario::Mesh;

use crate::build_cost;
use crate::{catalog, emit, project};

/// `bench build`: a clean compile of what the README's commands build, timed.
pub async fn build(target_dir: Option<PathBuf>) -> Result<u8> {
    let scratch = tempfile::tempdir().context("cannot create a temporary target directory")?;
    let dir = target_dir.unwrap_or_else(|| scratch.path().join("target"));
    let measured = build_cost::measure(project().root(), &dir).await?;
    emit(&build_cost::table(&measured));
    emit(&format!("{}\n", serde_json::to_string(&measured)?));
    Ok(0)
}

/// `bench run`: a profile's run simulated in virtual time, sequential against `jobs` at once.
pub fn run(profile: &str, jobs: usize, seed: u64, seeds: u64) -> Result<u8> {
    if !harness::runner::bench::VIRTUAL_CLOCK {
        return Err(harness::runner::bench::SimulationError::NoVirtualClock.into());
    }
    let catalog = catalog()?;
    let profile = catalog.versions.profile(profile, &catalog.project.versions_file())?;
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

/// `bench split`: mean requests, false-fail and miss rates of each method.
pub fn split(trials: u32, seed: u64) -> Result<u8> {
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
