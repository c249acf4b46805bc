//! Transcripts: one step, the raw answers its probe got, and the verdict it must reach, judged
//! again offline by the checks the live run uses (docs/transcripts.md).
//!
//! Live runs write a transcript per traffic step (`artifacts/<scenario>/transcripts/`), so "why
//! did this fail" can be answered without a cluster; `scenarios/transcripts/` holds answer
//! shapes from upstream sources that every check must pass or fail, replayed by `cargo test`.
//!
//! Replay feeds the answers to the step's attempts in order, with the step's own waiting
//! semantics but no clock: `converge` needs `passes` consecutive passing answers, `eventually`
//! one, a split its sequential test's decision. A step still undecided when the answers run out
//! fails as undecided.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::denial::Path as Via;
use crate::check::expect::{evaluate, judge_collector_answer, judge_traced_request, resolve_ambiguity};
use crate::check::split::{Decision, SplitAnswer, SplitRun, SplitTest, TRANSPORT_RETRIES};
use crate::probe::observation::Answer;
use crate::scenario::template::{self, Vars};
use crate::scenario::{Expect, FromPodStep, HttpStep, Mesh, SplitStep, Step, TraceStep};

/// The verdict a step reached, or must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        })
    }
}

/// A transcript file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    pub mesh: Mesh,
    /// Template variables for `{{ name }}` in the step.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub step: Step,
    /// The trace id the harness sent (trace steps): what the backend's headers are judged by.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// An earlier step of the scenario had the echo backend answer a meshed client, which
    /// `refused` needs before it accepts an ambiguous denial through Kong.
    #[serde(default)]
    pub backend_proven: bool,
    /// The step's raw answers. A trace step's first is its request's, the rest the collector's.
    /// A load window's carry when each was sent (`at_ms`) and how long it took (`latency_ms`).
    pub answers: Vec<Answer>,
    /// A load window: the enclosed steps as they ran, from the window's start.
    #[serde(default)]
    pub disruptions: Vec<crate::check::load::Disruption>,
    /// A load window: how long it ran, in milliseconds (outages still open at its end run to it).
    #[serde(default)]
    pub window_ms: Option<u64>,
    /// A load window: the enclosed step that failed, which fails the window whatever its
    /// traffic did.
    #[serde(default)]
    pub enclosed_failure: Option<String>,
    pub verdict: Verdict,
}

/// The same, as a live run writes it (only the step kinds it records).
#[derive(Debug, Clone, Serialize)]
pub struct Recorded<'a> {
    pub mesh: Mesh,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub backend_proven: bool,
    pub step: RecordedStep<'a>,
    pub answers: Vec<Answer>,
    /// A load window's disruptions, length and failed enclosed step.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadRecord<'a>>,
    pub verdict: Verdict,
}

/// What a load window's transcript holds besides its answers.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRecord<'a> {
    pub disruptions: &'a [crate::check::load::Disruption],
    pub window_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosed_failure: Option<&'a str>,
}

/// A recorded step, serialised as a scenario file writes it (`- http: {...}`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordedStep<'a> {
    Http(&'a HttpStep),
    FromPod(&'a FromPodStep),
    Split(&'a SplitStep),
    Trace(&'a TraceStep),
    Load(&'a LoadWindowStep<'a>),
}

/// A load step as its transcript keeps it: everything but the enclosed steps, which ran as
/// the transcript's `disruptions` (replay judges the window, not the restarts).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LoadWindowStep<'a> {
    pub request: &'a crate::scenario::Request,
    pub rate: u32,
    pub expect: &'a crate::scenario::Expect,
    pub budget: LoadBudgetRecord,
}

/// A load budget as a transcript writes it (durations as scenarios write them).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LoadBudgetRecord {
    pub errors: f64,
    pub outage: crate::scenario::Timeout,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyRecord>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencyRecord {
    pub percentile: u8,
    pub max: crate::scenario::Timeout,
}

/// What replaying a transcript concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub verdict: Verdict,
    /// What decided it: the verdict of the deciding answer, or why none decided.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{file}:{line}:{column}: {message}{field}", file = .file.display(), line = .error.position.line, column = .error.position.column,
            message = .error.message, field = field_suffix(&.error.field))]
    Yaml { file: PathBuf, error: crate::yaml::Error },
    #[error("{file}:{line}:{column}: {message}{help}", file = .1.display(), line = .0.position.line,
            column = .0.position.column, message = .0.message,
            help = .0.help.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Template(template::TemplateError, PathBuf),
    #[error("{file}: answers[{index}]: {message}", file = .file.display())]
    Answer { file: PathBuf, index: usize, message: String },
    #[error("{file}: replay judges http, from-pod, split, metrics, trace and load steps, not `{kind}`", file = .file.display())]
    Unsupported { file: PathBuf, kind: &'static str },
    #[error("{file}: {message}", file = .file.display())]
    Invalid { file: PathBuf, message: String },
}

fn field_suffix(field: &str) -> String {
    if field.is_empty() { String::new() } else { format!(" (at {field})") }
}

/// Read `path`: the `vars` first, then the whole file with them substituted.
pub fn load(path: &Path) -> Result<Transcript, ReplayError> {
    let yaml = |error| ReplayError::Yaml { file: path.to_owned(), error };
    let text = crate::yaml::read_text(path).map_err(yaml)?;
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        vars: BTreeMap<String, String>,
    }
    // Only the vars are read here; every other key is checked by the strict parse below.
    let head: Head = crate::yaml::from_str(&text).map_err(yaml)?;
    let mut vars = Vars::new();
    for (name, value) in &head.vars {
        if value.contains(['\n', '\r']) {
            return Err(ReplayError::Invalid {
                file: path.to_owned(),
                message: format!("vars.{name}: template values are one line"),
            });
        }
        vars.set(name, value);
    }
    if head.vars.is_empty() {
        // Recorded transcripts carry rendered steps and raw answers, which may hold `{{`.
        return crate::yaml::from_str(&text).map_err(yaml);
    }
    let rendered = template::render(&text, &vars).map_err(|e| ReplayError::Template(e, path.to_owned()))?;
    crate::yaml::from_str(&rendered.text).map_err(yaml)
}

/// Judge `transcript` (read from `file`) with the current checks.
pub fn judge(transcript: &Transcript, file: &Path) -> Result<Replayed, ReplayError> {
    let observations = || {
        transcript.answers.iter().enumerate().map(|(index, a)| {
            a.observation().map_err(|message| ReplayError::Answer { file: file.to_owned(), index, message })
        })
    };
    let mesh = transcript.mesh;
    match &transcript.step {
        Step::Http(s) => {
            converge(&s.expect, s.converge.passes, mesh, Via::ThroughKong, transcript.backend_proven, observations())
        }
        Step::FromPod(s) => {
            converge(&s.expect, s.converge.passes, mesh, Via::FromPod, transcript.backend_proven, observations())
        }
        Step::Split(s) => {
            let mut run = SplitRun::new(
                &SplitTest::from_weights(&s.weights, s.tolerance, u64::from(s.max_requests)),
                TRANSPORT_RETRIES,
            );
            for observation in observations() {
                if let Some(verdict) = run.feed(SplitAnswer::of(&observation?)) {
                    let passed = verdict.decision == Decision::Pass;
                    let evidence = serde_json::to_string(&verdict.evidence).unwrap_or_default();
                    let detail = format!(
                        "{:?}{}: {evidence}",
                        verdict.decision,
                        verdict.stray.map(|s| format!(", {s}")).unwrap_or_default()
                    );
                    return Ok(Replayed { verdict: if passed { Verdict::Pass } else { Verdict::Fail }, detail });
                }
            }
            let undecided = run.undecided();
            let evidence = serde_json::to_string(&undecided.evidence).unwrap_or_default();
            Ok(undecided_after(transcript.answers.len(), &evidence))
        }
        Step::Metrics(s) => {
            let mut last = String::from("no answers");
            for observation in observations() {
                let body = body_of(&observation?);
                let verdict = crate::check::metrics::evaluate(&s.expect, &crate::check::metrics::parse(&body));
                if verdict.passed() {
                    return Ok(Replayed { verdict: Verdict::Pass, detail: verdict.to_string() });
                }
                last = verdict.to_string();
            }
            Ok(undecided_after(transcript.answers.len(), &last))
        }
        Step::Trace(s) => {
            // As the live step: the traced request first, then the collector's answers until one
            // passes, then the answer asked for after `quiet`, which must pass and decides.
            let Some(trace_id) = transcript.trace_id.as_deref() else {
                return Err(ReplayError::Invalid {
                    file: file.to_owned(),
                    message: "a trace transcript needs the `trace_id` the harness sent".into(),
                });
            };
            let Some((request, polls)) = transcript.answers.split_first() else {
                return Ok(undecided_after(0, "no answers"));
            };
            let observation = request.observation().map_err(|message| ReplayError::Answer {
                file: file.to_owned(),
                index: 0,
                message,
            })?;
            if let Err(e) = judge_traced_request(&s.expect, trace_id, &observation) {
                return Ok(Replayed { verdict: Verdict::Fail, detail: e });
            }
            let judged = |answer: &Answer| judge_collector_answer(&s.expect, trace_id, answer).1;
            let Some(first_pass) = polls.iter().position(|a| judged(a).passed()) else {
                let last = polls.last().map(|a| judged(a).to_string()).unwrap_or_else(|| "no collector answers".into());
                return Ok(undecided_after(polls.len(), &last));
            };
            let Some(last) = polls.get(first_pass + 1..).and_then(<[Answer]>::last) else {
                return Ok(undecided_after(polls.len(), "no answer after the quiet period"));
            };
            let verdict = judged(last);
            let passed = verdict.passed();
            Ok(Replayed {
                verdict: if passed { Verdict::Pass } else { Verdict::Fail },
                detail: if passed { verdict.to_string() } else { format!("after {}: {verdict}", s.expect.quiet) },
            })
        }
        Step::Load(s) => {
            // The window as the live step judged it: each answer by the step's expectation at
            // the time it was sent, then the budget over all of them and the disruptions.
            let mut samples = Vec::new();
            for (index, answer) in transcript.answers.iter().enumerate() {
                let observation = answer.observation().map_err(|message| ReplayError::Answer {
                    file: file.to_owned(),
                    index,
                    message,
                })?;
                let at = answer.at_ms.ok_or_else(|| ReplayError::Answer {
                    file: file.to_owned(),
                    index,
                    message: "a load window's answer needs `at_ms`: when it was sent".into(),
                })?;
                let passed = crate::check::expect::evaluate(&s.expect, &observation, mesh, Via::ThroughKong).passed();
                let latency = answer.latency_ms.map(std::time::Duration::from_millis);
                samples.push(crate::check::load::Sample { at: std::time::Duration::from_millis(at), passed, latency });
            }
            let Some(window_ms) = transcript.window_ms else {
                return Err(ReplayError::Invalid {
                    file: file.to_owned(),
                    message: "a load window needs `window_ms`: how long it ran".into(),
                });
            };
            let budget = crate::check::load::Budget {
                errors: s.budget.errors,
                outage: s.budget.outage.0,
                latency: s
                    .budget
                    .latency
                    .map(|l| crate::check::load::LatencyBudget { percentile: l.percentile, max: l.max.0 }),
            };
            let verdict = crate::check::load::evaluate(
                &samples,
                &transcript.disruptions,
                &budget,
                std::time::Duration::from_millis(window_ms),
            );
            if let Some(failure) = &transcript.enclosed_failure {
                return Ok(Replayed {
                    verdict: Verdict::Fail,
                    detail: format!("an enclosed step failed: {failure}; the load: {verdict}"),
                });
            }
            Ok(Replayed {
                verdict: if verdict.passed() { Verdict::Pass } else { Verdict::Fail },
                detail: verdict.to_string(),
            })
        }
        other => Err(ReplayError::Unsupported { file: file.to_owned(), kind: other.kind() }),
    }
}

/// Converge semantics: `passes` consecutive passing answers; a failing one resets the count.
fn converge(
    expect: &Expect,
    passes: u32,
    mesh: Mesh,
    via: Via,
    backend_proven: bool,
    observations: impl Iterator<Item = Result<crate::probe::Observation, ReplayError>>,
) -> Result<Replayed, ReplayError> {
    let (mut streak, mut last, mut count) = (0, String::from("no answers"), 0);
    for observation in observations {
        let verdict = resolve_ambiguity(evaluate(expect, &observation?, mesh, via), backend_proven);
        count += 1;
        last = verdict.to_string();
        if verdict.passed() {
            streak += 1;
            if streak >= passes {
                return Ok(Replayed { verdict: Verdict::Pass, detail: last });
            }
        } else {
            streak = 0;
        }
    }
    let needed =
        if passes > 1 { format!(" (needs {passes} consecutive passes, ended with {streak})") } else { String::new() };
    Ok(undecided_after(count, &format!("{last}{needed}")))
}

fn undecided_after(answers: usize, last: &str) -> Replayed {
    Replayed { verdict: Verdict::Fail, detail: format!("undecided after {answers} answer(s); last: {last}") }
}

fn body_of(observation: &crate::probe::Observation) -> String {
    match &observation.outcome {
        crate::probe::Outcome::Response(r) => r.body.clone().unwrap_or_default(),
        crate::probe::Outcome::Transport { kind, message } => format!("{kind:?}: {message}"),
    }
}

/// The transcript files named by `paths`: files as given, directories searched recursively
/// for `*.yaml`, sorted.
pub fn files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut stack = vec![path.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir)? {
                    let entry = entry?;
                    let kind = entry.file_type()?;
                    if kind.is_dir() {
                        stack.push(entry.path());
                    } else if kind.is_file() && entry.path().extension().is_some_and(|e| e == "yaml" || e == "yml") {
                        out.push(entry.path());
                    }
                }
            }
        } else {
            out.push(path.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// One transcript's outcome, as `replay` prints it.
#[derive(Debug)]
pub enum FileOutcome {
    Matches { expected: Verdict, detail: String },
    Differs { expected: Verdict, got: Verdict, detail: String },
    Unreadable(ReplayError),
}

pub fn replay_file(path: &Path) -> FileOutcome {
    let transcript = match load(path) {
        Ok(t) => t,
        Err(e) => return FileOutcome::Unreadable(e),
    };
    match judge(&transcript, path) {
        Ok(r) if r.verdict == transcript.verdict => {
            FileOutcome::Matches { expected: transcript.verdict, detail: r.detail }
        }
        Ok(r) => FileOutcome::Differs { expected: transcript.verdict, got: r.verdict, detail: r.detail },
        Err(e) => FileOutcome::Unreadable(e),
    }
}

#[cfg(test)]
mod tests;
