//! Events from the scenario runner to the reporters: the terminal progress, and the report files
//! written as scenarios finish (so a run killed by its job's timeout leaves a JUnit file for what
//! did finish). The runner (`session::scenarios`) only emits; what is shown or written is the
//! reporters' business, as in cargo-nextest's runner/reporter split.
//!
//! Architecture invariant: a reporter never changes an outcome; it sees each event once, in
//! the order the runner emitted it for that scenario (scenarios run side by side, so events of
//! different scenarios interleave).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::model::FailureKind;
use crate::progress::{Phase, Progress};
use crate::report::{Outcome, RunReport, ScenarioResult, write};

/// What happened in a run, as it happens.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Attempt `attempt` (0 is the first) of scenario `index` (of `total`, plan order) began.
    AttemptStarted { index: usize, total: usize, name: &'a str, attempt: u32 },
    /// The attempt now waits for `what`.
    AttemptWaiting { index: usize, attempt: u32, what: &'a str },
    /// The attempt ended: `ok` when it passed (or was skipped), with a one-line summary.
    AttemptFinished { index: usize, attempt: u32, ok: bool, summary: &'a str },
    /// A step of the attempt ended (the namespace and fixtures count as the first).
    StepFinished { index: usize, attempt: u32, record: &'a super::execute::StepRecord },
    /// A failed attempt runs again, in a fresh namespace.
    AttemptRetried { index: usize, name: &'a str, attempt: u32, verdict: &'a str },
    /// Scenario `index` has its final result.
    ScenarioFinished { index: usize, result: &'a ScenarioResult },
}

/// Consumes events. Implementations must be cheap and must not fail the run: a report that
/// cannot be written is said on the log.
pub trait Reporter: Sync {
    fn event(&self, event: &Event<'_>);
}

/// No reporter.
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: &Event<'_>) {}
}

/// Every reporter, in order.
pub struct Fanout<'a>(pub Vec<&'a dyn Reporter>);

impl Reporter for Fanout<'_> {
    fn event(&self, event: &Event<'_>) {
        for r in &self.0 {
            r.event(event);
        }
    }
}

/// The terminal (or CI log) progress: one phase per attempt.
pub struct ProgressReporter {
    progress: Progress,
    open: Mutex<HashMap<(usize, u32), Phase>>,
}

impl ProgressReporter {
    pub fn new(progress: Progress) -> Self {
        ProgressReporter { progress, open: Mutex::new(HashMap::new()) }
    }
}

impl Reporter for ProgressReporter {
    fn event(&self, event: &Event<'_>) {
        let Ok(mut open) = self.open.lock() else { return };
        match *event {
            Event::AttemptStarted { index, total, name, attempt } => {
                let retry = if attempt == 0 { String::new() } else { format!(" (attempt {})", attempt + 1) };
                let phase = self.progress.phase(&format!("scenario {}/{total} {name}{retry}", index + 1));
                open.insert((index, attempt), phase);
            }
            Event::AttemptWaiting { index, attempt, what } => {
                if let Some(phase) = open.get(&(index, attempt)) {
                    phase.waiting_for(what);
                }
            }
            Event::AttemptFinished { index, attempt, ok, summary } => {
                if let Some(phase) = open.remove(&(index, attempt)) {
                    phase.finish(ok, summary);
                }
            }
            Event::StepFinished { index, attempt, record } => {
                if let Some(phase) = open.get(&(index, attempt)) {
                    let verdict = if record.passed { "passed" } else { "did not pass" };
                    let secs = record.duration_ms as f64 / 1000.0;
                    phase.waiting_for(&format!("what follows `{}` ({verdict} in {secs:.1}s)", record.step));
                }
            }
            Event::AttemptRetried { .. } | Event::ScenarioFinished { .. } => {}
        }
    }
}

/// The reason a scenario carries in a report written while the run still goes.
pub const NOT_FINISHED: &str = "not finished when this report was written (the run was still going or was killed)";

/// `junit.xml`, `summary.md` and `run.json` in the run directory, written when the scenarios
/// start and rewritten (each file atomically) each time one finishes: a scenario not finished
/// yet is an error (never a skip, which a CI page would show green) saying [`NOT_FINISHED`].
/// The run writes the final reports over them ([`crate::report::write`]).
pub struct ReportFiles {
    dir: PathBuf,
    /// The report's header (versions, rerun line) and every planned scenario, not finished.
    pending: Mutex<RunReport>,
}

impl ReportFiles {
    /// `header`'s results are replaced by `planned`, each not finished yet, then `settled`
    /// (results known before any scenario runs: the broken ones); written at once.
    pub fn new(dir: &Path, mut header: RunReport, planned: &[String], settled: Vec<ScenarioResult>) -> Self {
        header.results = planned
            .iter()
            .map(|name| ScenarioResult {
                scenario: name.clone(),
                mesh: header.mesh.clone(),
                outcome: Outcome::Failed {
                    verdict: NOT_FINISHED.into(),
                    evidence: "the run ended (killed, or out of its job's time) before this scenario finished".into(),
                    kind: FailureKind::Error,
                },
                duration_ms: 0,
                artifacts: None,
                notes: Vec::new(),
                phases: Vec::new(),
                load_windows: Vec::new(),
            })
            .chain(settled)
            .collect();
        let files = ReportFiles { dir: dir.to_owned(), pending: Mutex::new(header) };
        if let Ok(report) = files.pending.lock() {
            files.save(&report);
        }
        files
    }

    fn save(&self, report: &RunReport) {
        if let Err(e) = write(&self.dir, report, None) {
            tracing::warn!("the reports so far could not be written: {e}");
        }
    }
}

impl Reporter for ReportFiles {
    fn event(&self, event: &Event<'_>) {
        let Event::ScenarioFinished { index, result } = *event else { return };
        let Ok(mut report) = self.pending.lock() else { return };
        if let Some(slot) = report.results.get_mut(index) {
            *slot = result.clone();
        }
        self.save(&report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RunReport {
        RunReport {
            run: "r1".into(),
            profile: "istio".into(),
            mesh: "istio".into(),
            versions: Default::default(),
            rerun: "cargo xtask e2e istio".into(),
            results: Vec::new(),
        }
    }

    /// Before any scenario finishes the reports exist, every planned scenario an error saying it
    /// did not finish (a run killed in its first scenario still leaves a red JUnit file); each
    /// result replaces its line as it comes.
    #[test]
    fn the_reports_exist_from_the_start_and_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        let planned = ["a".to_owned(), "b".to_owned()];
        let files = ReportFiles::new(dir.path(), header(), &planned, Vec::new());
        let junit = || std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
        assert!(junit().contains("tests=\"2\"") && junit().contains("errors=\"2\""), "{}", junit());
        let passed = ScenarioResult {
            scenario: "a".into(),
            mesh: "istio".into(),
            outcome: Outcome::Passed,
            duration_ms: 5,
            artifacts: None,
            notes: Vec::new(),
            phases: Vec::new(),
            load_windows: Vec::new(),
        };
        files.event(&Event::ScenarioFinished { index: 0, result: &passed });
        assert!(junit().contains("errors=\"1\""), "{}", junit());
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).unwrap()).unwrap();
        assert_eq!(run["results"][0]["outcome"], "passed");
        assert_eq!(run["results"][1]["verdict"], NOT_FINISHED, "{run}");
    }
}
