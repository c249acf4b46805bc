//! What a run tells afterwards: JUnit XML for CI test reporters, a Markdown summary for
//! `$GITHUB_STEP_SUMMARY`, and `run.json` for machines. All three carry the versions installed
//! and the exact command that reruns the run.

pub mod diagnostics;
pub mod matrix;

use crate::model::FailureKind;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// One scenario on one mesh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub mesh: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub duration_ms: u64,
    /// Where its diagnostics were written, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<PathBuf>,
    /// What the reader should know beyond the outcome (a new snapshot written for review, a
    /// mutant's result).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Where the time went: the setup and each step of the reported attempt (the passing one,
    /// or the first failure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseTime>,
    /// The load windows of the reported attempt: each second's requests and failures, the
    /// disruptions and the budget's verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_windows: Vec<crate::check::load::Window>,
}

/// One phase of a scenario and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseTime {
    pub phase: String,
    pub ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Passed,
    /// The verdict that failed, and the key evidence (the last observation, the counts, ...).
    /// `kind` tells a check that said no (JUnit `failure`) from the harness unable to judge or a
    /// stop from outside (JUnit `error`).
    Failed {
        verdict: String,
        evidence: String,
        kind: FailureKind,
    },
    /// Not run, and why (e.g. the environment failed first).
    Skipped {
        reason: String,
    },
    /// Passed on a retry after failing: not a clean pass. The first failure's verdict and
    /// evidence (its artifacts are the result's).
    Flaky {
        verdict: String,
        evidence: String,
    },
    /// A repro bundle's bug showed again: the step it expects to fail failed, as expected. The
    /// run did what was asked (exit 0), but the system under test is broken: reported as a
    /// failure of type `reproduced`, never as a clean pass.
    Reproduced {
        verdict: String,
        evidence: String,
    },
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub run: String,
    pub profile: String,
    pub mesh: String,
    /// Everything installed, by component (`kubernetes`, `kong/ingress`, `istio`, images, ...).
    pub versions: BTreeMap<String, String>,
    /// The command that reruns this run.
    pub rerun: String,
    pub results: Vec<ScenarioResult>,
}

impl RunReport {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    pub fn passed(&self) -> bool {
        self.count(|o| matches!(o, Outcome::Failed { .. })) == 0
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot render the JUnit report: {0}")]
pub struct JunitError(String);

/// Whether XML 1.0 allows `c` in a document: `Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] |
/// [#xE000-#xFFFD] | [#x10000-#x10FFFF]` (<https://www.w3.org/TR/xml/#charsets>).
fn xml_char(c: char) -> bool {
    matches!(u32::from(c), 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Untrusted text for the JUnit report: shown as in a log (hidden characters escaped, see
/// `diagnostic::escape_for_log`; reporters print these to CI logs and annotations), and any
/// code point XML 1.0 forbids replaced, so the file stays well-formed whatever evidence holds
/// (quick-junit strips only NUL, ESC and BS; U+FFFE made the nightly's merge fail).
fn xml_text(text: &str) -> String {
    let shown = crate::diagnostic::escape_for_log(text);
    if shown.chars().all(xml_char) {
        return shown;
    }
    shown.chars().map(|c| if xml_char(c) { c } else { char::REPLACEMENT_CHARACTER }).collect()
}

/// [`xml_text`] for one line (names, attributes): newlines shown as `\n` too.
fn xml_line(text: &str) -> String {
    xml_text(&crate::diagnostic::escape_controls(text))
}

/// JUnit XML: one `testsuite` per run, one `testcase` per scenario x mesh, named
/// `<scenario>::<mesh>` with the mesh as class name, so reporters group by mesh. Every string
/// passes [`xml_text`] or [`xml_line`].
pub fn junit(report: &RunReport) -> Result<String, JunitError> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(xml_line(&format!("kong-mesh-e2e {}", report.profile)));
    suite.add_property(("run", xml_line(&report.run).as_str()));
    suite.add_property(("rerun", xml_line(&report.rerun).as_str()));
    for (component, version) in &report.versions {
        suite.add_property((xml_line(&format!("version.{component}")).as_str(), xml_line(version).as_str()));
    }
    let details = |evidence: &str, r: &ScenarioResult| {
        let artifacts = r.artifacts.as_ref().map(|p| format!("\nartifacts: {}", p.display())).unwrap_or_default();
        xml_text(&format!("{evidence}{artifacts}\nrerun: {}", report.rerun))
    };
    for r in &report.results {
        let status = match &r.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed { verdict, evidence, kind } => {
                let mut s = TestCaseStatus::non_success(match kind {
                    FailureKind::Verdict => NonSuccessKind::Failure,
                    FailureKind::Error | FailureKind::Interrupted => NonSuccessKind::Error,
                });
                s.set_message(xml_line(verdict));
                s.set_description(details(evidence, r));
                s
            }
            Outcome::Reproduced { verdict, evidence } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(xml_line(verdict));
                s.set_type("reproduced");
                s.set_description(details(evidence, r));
                s
            }
            Outcome::Skipped { reason } => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(xml_line(reason));
                s
            }
            // Surefire's form, which reporters show as flaky: a success with `flakyFailure`.
            Outcome::Flaky { verdict, evidence } => {
                let mut s = TestCaseStatus::success();
                let mut rerun = quick_junit::TestRerun::new(NonSuccessKind::Failure);
                rerun.set_message(xml_line(verdict));
                rerun.stack_trace = Some(xml_text(evidence).into());
                s.add_rerun(rerun);
                s
            }
        };
        let mut case = TestCase::new(xml_line(&format!("{}::{}", r.scenario, r.mesh)), status);
        case.set_classname(xml_line(&format!("{}.{}", report.profile, r.mesh)));
        case.set_time(Duration::from_millis(r.duration_ms));
        suite.add_test_case(case);
    }
    let mut junit = Report::new("kong-mesh-e2e");
    junit.add_test_suite(suite);
    junit.to_string().map_err(|e| JunitError(e.to_string()))
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Untrusted text on one line of GitHub-flavoured Markdown (a heading, a paragraph, a table
/// cell when `in_table`): an inline code span, whose content is never markup (no emphasis,
/// link, autolink, HTML or comment), made of the text shown as in a log (hidden characters and
/// newlines escaped, `diagnostic::escape_controls`). Its backtick string is longer than any run
/// inside, so the text cannot close it, padded by a space where the text begins or ends with a
/// backtick or space (CommonMark 0.31 §6.1). In a table cell every `|` is written `\|`: GFM
/// splits a row at each `|` not preceded by a backslash before it parses code spans (GFM
/// §4.10; cmark-gfm's `table_cell` scanner takes a `\` then `|` as part of the cell whatever
/// precedes the `\`), and drops that backslash again.
fn md_code(text: &str, in_table: bool) -> String {
    let shown = crate::diagnostic::escape_controls(text);
    if shown.is_empty() {
        return "` `".to_owned();
    }
    let shown = if in_table { shown.replace('|', "\\|") } else { shown };
    let fence = "`".repeat(longest_backtick_run(&shown) + 1);
    let pad = if shown.starts_with(['`', ' ']) || shown.ends_with(['`', ' ']) { " " } else { "" };
    format!("{fence}{pad}{shown}{pad}{fence}")
}

/// Untrusted multi-line text as a fenced code block: the lines shown as in a log
/// (`diagnostic::escape_for_log`: no CR, which CommonMark also takes for a line end, nor any
/// other hidden character), inside a backtick fence longer than any backtick run in them, which
/// no line can close (CommonMark 0.31 §4.5: a closing fence is at least as long as the opening
/// one). Its content is literal: no heading, link, HTML or comment.
fn md_block(text: &str) -> String {
    let shown = crate::diagnostic::escape_for_log(text);
    let fence = "`".repeat((longest_backtick_run(&shown) + 1).max(3));
    format!("{fence}text\n{shown}\n{fence}\n")
}

/// Markdown for `$GITHUB_STEP_SUMMARY`: versions, a result table, the first failure's evidence.
/// Every string of the report is untrusted (API answers, evidence, names from input files): each
/// lands only inside an inline code span ([`md_code`]) or a fenced block ([`md_block`]).
pub fn markdown(report: &RunReport) -> String {
    let failed = report.count(|o| matches!(o, Outcome::Failed { .. }));
    let skipped = report.count(|o| matches!(o, Outcome::Skipped { .. }));
    let flaky = report.count(|o| matches!(o, Outcome::Flaky { .. }));
    let reproduced = report.count(|o| matches!(o, Outcome::Reproduced { .. }));
    let passed = report.results.len() - failed - skipped - flaky - reproduced;
    let mut out = format!(
        "## kong-mesh-e2e: {} on {} ({})\n\n{passed} passed{}, {failed} failed, {skipped} skipped{} · run {}\n\n",
        md_code(&report.profile, false),
        md_code(&report.mesh, false),
        match (failed, reproduced) {
            (0, 0) => "pass",
            (0, _) => "bug reproduced",
            _ => "FAIL",
        },
        if flaky == 0 { String::new() } else { format!(" ({flaky} more flaky: passed on a retry)") },
        if reproduced == 0 {
            String::new()
        } else {
            format!(", {reproduced} reproduced (failed as the bundle expects)")
        },
        md_code(&report.run, false)
    );
    out.push_str("| component | version |\n|---|---|\n");
    for (component, version) in &report.versions {
        out.push_str(&format!("| {} | {} |\n", md_code(component, true), md_code(version, true)));
    }
    out.push_str("\n| scenario | mesh | result | time |\n|---|---|---|---|\n");
    for r in &report.results {
        let result = match &r.outcome {
            Outcome::Passed => "pass".to_owned(),
            Outcome::Failed { verdict, kind: FailureKind::Verdict, .. } => format!("**FAIL**: {}", one_line(verdict)),
            Outcome::Failed { verdict, .. } => format!("**ERROR**: {}", one_line(verdict)),
            Outcome::Skipped { reason } => format!("skipped: {}", one_line(reason)),
            Outcome::Flaky { verdict, .. } => {
                format!("**flaky** (passed on a retry; first failure: {})", one_line(verdict))
            }
            Outcome::Reproduced { verdict, .. } => format!("**reproduced**: {}", one_line(verdict)),
        };
        out.push_str(&format!(
            "| {} | {} | {result} | {:.1}s |\n",
            md_code(&r.scenario, true),
            md_code(&r.mesh, true),
            r.duration_ms as f64 / 1000.0
        ));
    }
    let first_failure = report.results.iter().find_map(|r| match &r.outcome {
        Outcome::Failed { verdict, evidence, .. } | Outcome::Reproduced { verdict, evidence } => {
            Some((r, verdict, evidence))
        }
        _ => None,
    });
    if let Some((first, verdict, evidence)) = first_failure {
        out.push_str(&format!(
            "\n### First failure: {} on {}\n\nVerdict: {}\n\n{}",
            md_code(&first.scenario, false),
            md_code(&first.mesh, false),
            md_code(verdict, false),
            md_block(evidence)
        ));
        if let Some(a) = &first.artifacts {
            out.push_str(&format!("\nArtifacts: {}\n", md_code(&a.display().to_string(), false)));
        }
    }
    for r in &report.results {
        for w in &r.load_windows {
            // Names are scenario and step text: code spans in the heading, quotes dropped in
            // Mermaid's own title string.
            out.push_str(&format!(
                "\n### Load: {} on {}, step {}\n\n{}\n\n",
                md_code(&r.scenario, false),
                md_code(&r.mesh, false),
                w.step,
                md_code(&w.verdict.to_string(), false)
            ));
            let title = format!("{} step {}: requests per second, passed and failed", r.scenario, w.step);
            out.push_str(&crate::check::load::mermaid(&title, &w.series, &w.disruptions));
        }
    }
    out.push_str(&format!("\nRerun: {}\n", md_code(&report.rerun, false)));
    out
}

/// A table cell's text: the first line as a code span (a `…` after it says there is more).
fn one_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let more = if lines.next().is_some() { " …" } else { "" };
    format!("{}{more}", md_code(first, true))
}

/// `run.json`.
pub fn json(report: &RunReport) -> String {
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"))
}

/// Writing a report failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Junit(#[from] JunitError),
    #[error("cannot write {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

/// JUnit, the Markdown summary and run.json into `dir`, each replaced atomically (written
/// beside, then renamed: a reader never sees half a file); the summary is also appended to
/// `step_summary` (`$GITHUB_STEP_SUMMARY` in GitHub Actions) when given.
pub fn write(
    dir: &std::path::Path,
    report: &RunReport,
    step_summary: Option<&std::path::Path>,
) -> Result<(), WriteError> {
    let put = |name: &str, text: &str| {
        let path = dir.join(name);
        let partial = dir.join(format!(".{name}.partial"));
        std::fs::write(&partial, text).and_then(|()| std::fs::rename(&partial, &path)).map_err(|source| {
            // Nothing half-written is left beside the reports.
            let _ = std::fs::remove_file(&partial);
            WriteError::Io { path, source }
        })
    };
    put("junit.xml", &junit(report)?)?;
    let summary = markdown(report);
    put("summary.md", &summary)?;
    put("run.json", &json(report))?;
    if let Some(path) = step_summary {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut f| f.write_all(summary.as_bytes()))
            .map_err(|source| WriteError::Io { path: path.to_owned(), source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 6 s window at 5 requests a second, two failing in second 3 while Kong restarts.
    fn sample_window() -> crate::check::load::Window {
        use std::time::Duration;

        use crate::check::load::{Budget, Disruption, Sample, evaluate, series};
        let samples: Vec<Sample> = (0..30)
            .map(|i| {
                let passed = !(15..17).contains(&i);
                Sample {
                    at: Duration::from_millis(i * 200),
                    passed,
                    latency: passed.then(|| Duration::from_millis(14)),
                }
            })
            .collect();
        let restart = Disruption {
            name: "restart Kong's gateway".into(),
            start: Duration::from_secs(2),
            end: Duration::from_secs(4),
        };
        let budget = Budget { errors: 0.1, outage: Duration::from_secs(1), latency: None };
        let verdict = evaluate(&samples, std::slice::from_ref(&restart), &budget, Duration::from_secs(6));
        crate::check::load::Window { step: 3, series: series(&samples), disruptions: vec![restart], verdict }
    }

    pub(crate) fn sample() -> RunReport {
        RunReport {
            run: "r1k2".into(),
            profile: "istio".into(),
            mesh: "istio".into(),
            versions: BTreeMap::from([
                ("kubernetes".to_owned(), "v1.35.1".to_owned()),
                ("istio".to_owned(), "1.30.3".to_owned()),
                ("kong/ingress".to_owned(), "0.24.0".to_owned()),
            ]),
            rerun: "cargo xtask e2e istio --profile istio --scenario split-canary".into(),
            results: vec![
                ScenarioResult {
                    scenario: "ingress-basic".into(),
                    mesh: "istio".into(),
                    outcome: Outcome::Passed,
                    duration_ms: 4200,
                    artifacts: None,
                    notes: Vec::new(),
                    phases: Vec::new(),
                    load_windows: Vec::new(),
                },
                ScenarioResult {
                    scenario: "split-canary".into(),
                    mesh: "istio".into(),
                    outcome: Outcome::Failed {
                        verdict: "split judged wrong: v2 above its share".into(),
                        evidence: "requests 212; v1 150 (0.708, interval [0.60, 0.80]); v2 62 (0.292)".into(),
                        kind: FailureKind::Verdict,
                    },
                    duration_ms: 31000,
                    artifacts: Some("target/e2e/r1k2/artifacts/split-canary".into()),
                    notes: Vec::new(),
                    phases: Vec::new(),
                    load_windows: Vec::new(),
                },
                ScenarioResult {
                    scenario: "tracing-istio".into(),
                    mesh: "istio".into(),
                    outcome: Outcome::Skipped { reason: "environment failed: istiod not ready".into() },
                    duration_ms: 0,
                    artifacts: None,
                    notes: Vec::new(),
                    phases: Vec::new(),
                    load_windows: Vec::new(),
                },
            ],
        }
    }

    /// The harness failing to judge (an API error, an input that does not load, a stop) is
    /// JUnit's `error`; a check that said no is its `failure`, as nextest tells `ExecFail` from
    /// `Fail`. The summary says ERROR for the first.
    #[test]
    fn errors_and_failures_are_told_apart() {
        let mut report = sample();
        report.results[1].outcome = Outcome::Failed {
            verdict: "step `wait apps/v1 Deployment echo-v1 available` failed".into(),
            evidence: "the API server answered 500".into(),
            kind: FailureKind::Error,
        };
        let xml = junit(&report).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
        assert_eq!((suite.attribute("failures"), suite.attribute("errors")), (Some("0"), Some("1")));
        assert!(doc.descendants().any(|n| n.has_tag_name("error")));
        assert!(markdown(&report).contains("**ERROR**: ``step `wait"), "{}", markdown(&report));
        assert!(!report.passed());
    }

    #[test]
    fn junit_follows_the_conventions_test_reporters_read() {
        let xml = junit(&sample()).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        let suite = root.children().find(|n| n.has_tag_name("testsuite")).expect("a testsuite");
        for (attr, value) in [("tests", "3"), ("failures", "1"), ("errors", "0"), ("skipped", "1")] {
            assert_eq!(suite.attribute(attr), Some(value), "testsuite@{attr}");
        }
        let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
        assert_eq!(cases.len(), 3);
        for case in &cases {
            assert!(
                case.attribute("name").is_some()
                    && case.attribute("classname").is_some()
                    && case.attribute("time").is_some()
            );
        }
        let failure = cases[1].children().find(|n| n.has_tag_name("failure")).expect("a failure element");
        assert_eq!(failure.attribute("message"), Some("split judged wrong: v2 above its share"));
        let text = failure.text().unwrap_or_default();
        assert!(
            text.contains("artifacts: target/e2e/r1k2/artifacts/split-canary")
                && text.contains("rerun: cargo xtask e2e")
        );
        assert!(cases[2].children().any(|n| n.has_tag_name("skipped")));
        let props: Vec<_> =
            suite.descendants().filter(|n| n.has_tag_name("property")).filter_map(|n| n.attribute("name")).collect();
        assert!(props.contains(&"rerun") && props.contains(&"version.istio"), "{props:?}");
    }

    /// A pass after a failure is flaky everywhere, never a clean pass: JUnit's `flakyFailure`
    /// (no `failure`), run.json's `flaky` with the first failure, the summary's count and row.
    #[test]
    fn flaky_scenarios_are_reported_as_flaky() {
        let mut report = sample();
        report.results[0].outcome =
            Outcome::Flaky { verdict: "step `http GET /echo` failed".into(), evidence: "status 503 is not 200".into() };
        report.results[0].phases = vec![PhaseTime { phase: "namespace and fixtures".into(), ms: 900 }];
        assert!(!report.passed(), "the split failure still fails it");
        report.results.truncate(1);
        assert!(report.passed(), "flaky alone does not fail the run");
        let xml = junit(&report).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let case = doc.descendants().find(|n| n.has_tag_name("testcase")).unwrap();
        let flaky = case.children().find(|n| n.has_tag_name("flakyFailure")).expect("flakyFailure");
        assert_eq!(flaky.attribute("message"), Some("step `http GET /echo` failed"));
        assert!(!case.children().any(|n| n.has_tag_name("failure")), "{xml}");
        let json: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
        assert_eq!(json["results"][0]["outcome"], "flaky");
        assert_eq!(json["results"][0]["evidence"], "status 503 is not 200");
        assert_eq!(json["results"][0]["phases"][0]["ms"], 900);
        let summary = markdown(&report);
        assert!(summary.contains("0 passed (1 more flaky: passed on a retry), 0 failed"), "{summary}");
        assert!(
            summary.contains("**flaky** (passed on a retry; first failure: ``step `http GET /echo` failed``)"),
            "{summary}"
        );
    }

    /// The lines of `md` a GFM renderer reads as markup: fenced code blocks dropped (a fence
    /// closes only on a backtick run at least as long as the one that opened it, CommonMark
    /// §4.5), and each inline code span (opened and closed by backtick strings of equal length,
    /// §6.1) replaced by `CODE`.
    fn markup_of(md: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut fence: Option<usize> = None;
        for line in md.split('\n') {
            let ticks = line.len() - line.trim_start_matches('`').len();
            match fence {
                Some(n) => {
                    if ticks >= n && line[ticks..].trim().is_empty() {
                        fence = None;
                    }
                    continue;
                }
                None if ticks >= 3 => {
                    fence = Some(ticks);
                    continue;
                }
                None => {}
            }
            let chars: Vec<char> = line.chars().collect();
            let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
            let (mut shown, mut i) = (String::new(), 0);
            while i < chars.len() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    shown.extend(&chars[i..i + 2]);
                    i += 2;
                } else if chars[i] == '`' {
                    let n = run_at(i);
                    let mut j = i + n;
                    let close = loop {
                        match chars.get(j) {
                            None => break None,
                            Some('`') if run_at(j) == n => break Some(j + n),
                            Some('`') => j += run_at(j),
                            Some(_) => j += 1,
                        }
                    };
                    match close {
                        Some(end) => {
                            shown.push_str("CODE");
                            i = end;
                        }
                        None => {
                            shown.extend(&chars[i..i + n]);
                            i += n;
                        }
                    }
                } else {
                    shown.push(chars[i]);
                    i += 1;
                }
            }
            out.push(shown);
        }
        assert_eq!(fence, None, "a fence left open hides the rest:\n{md}");
        out
    }

    /// Issue 25 item 11: an image string from the API with `|`, new lines and `<!--` added fake
    /// rows ("all 17 scenarios passed") and hid the rest; an API message closed the code fence
    /// and added a "PASS" heading and a phishing link. Now: no extra row, no heading, no link,
    /// no HTML, nothing hidden, and every crafted string still shown.
    #[test]
    fn untrusted_text_in_the_summary_is_inert() {
        let mut report = sample();
        let image = "kong:3.9 |\n| all | 17 scenarios passed |\n<!--";
        report.versions.insert("kong-image".into(), image.into());
        report.versions.insert("a|b\n| c | d |".into(), "x\\|y `z` ``w``".into());
        report.results[0].scenario = "ingress`basic``\u{202e}".into();
        report.results[1].outcome = Outcome::Failed {
            verdict: "step 1 failed: ``` <img src=x onerror=alert(1)> | pwned |\n## PASS".into(),
            evidence: "Kong said:\n```\n\n## PASS\n\nAll 17 scenarios passed. [Sign in to see the run](https://evil.example/login)\n\
                       ````\n<!-- the rest is hidden\n<script>alert(1)</script>&lt;\rfake\u{1b}]0;title\u{7}"
                .into(),
            kind: FailureKind::Verdict,
        };
        report.results[1].artifacts = Some("target/<!--/x".into());
        report.results[2].outcome = Outcome::Skipped { reason: "<!-- www.evil.example -->\n| x | y |".into() };
        report.rerun = "cargo xtask e2e istio --scenario 'a|b' `rm -rf`".into();
        let md = markdown(&report);
        let markup = markup_of(&md);
        let text = markup.join("\n");
        for bad in ["<", ">", "[", "](", "http", "www.", "!--", "PASS", "\u{1b}", "\u{202e}", "\r"] {
            assert!(!text.contains(bad), "`{bad}` is markup:\n{text}\n\nfrom:\n{md}");
        }
        let headings: Vec<&String> = markup.iter().filter(|l| l.starts_with('#')).collect();
        assert_eq!(headings.len(), 2, "{headings:?}");
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 2 + report.versions.len() + 2 + report.results.len(), "{md}");
        for row in &rows {
            // Where GFM splits a row: every `|` not directly after a backslash.
            let cells = row.char_indices().filter(|(i, c)| *c == '|' && !row[..*i].ends_with('\\')).count();
            assert!(cells == 3 || cells == 5, "{row}");
        }
        assert!(md.trim_end().lines().last().unwrap().starts_with("Rerun: "), "nothing hidden: {md}");
        // Shown, not dropped: the evidence in full, the image in its cell.
        assert!(
            md.contains("## PASS\n\nAll 17 scenarios passed. [Sign in to see the run](https://evil.example/login)")
        );
        assert!(md.contains("<!-- the rest is hidden\n<script>alert(1)</script>&lt;\\rfake\\u{1b}]0;title\\u{7}"));
        assert!(md.contains("| `kong:3.9 \\|\\n\\| all \\| 17 scenarios passed \\|\\n<!--` |"), "{md}");
        assert!(
            md.contains("| ```` ingress`basic``\\u{202e} ```` |") || md.contains("| ```ingress`basic``\\u{202e}``` |")
        );
    }

    /// Issue 25 item 12: evidence holding U+FFFE (and other code points XML 1.0 forbids) in any
    /// string that reaches the JUnit report still gives a well-formed document.
    #[test]
    fn junit_stays_well_formed_whatever_the_strings_hold() {
        let bad = "\u{fffe}\u{ffff}\u{1}\u{0}\u{1b}[2J\u{8}\u{b}\u{c}\u{7f}\u{85}\u{202e}";
        let mut report = sample();
        report.profile = format!("istio{bad}");
        report.run = format!("r{bad}");
        report.rerun = format!("rerun {bad}");
        report.versions.insert(format!("image{bad}"), format!("kong:3.9{bad}"));
        report.results[0].scenario = format!("s{bad}");
        report.results[0].mesh = format!("m{bad}");
        report.results[1].outcome = Outcome::Failed {
            verdict: format!("v{bad}"),
            evidence: format!("Kong said \u{fffe}\nline two {bad}"),
            kind: FailureKind::Verdict,
        };
        report.results[1].artifacts = Some(format!("target/{bad}").into());
        report.results[2].outcome = Outcome::Skipped { reason: format!("r{bad}") };
        let mut flaky = report.results[0].clone();
        flaky.outcome = Outcome::Flaky { verdict: format!("v{bad}"), evidence: format!("e{bad}") };
        let mut reproduced = report.results[0].clone();
        reproduced.outcome = Outcome::Reproduced { verdict: format!("v{bad}"), evidence: format!("e{bad}") };
        report.results.extend([flaky, reproduced]);
        let xml = junit(&report).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
        assert!(xml.chars().all(xml_char));
        assert!(!xml.contains('\u{202e}') && !xml.contains('\u{1b}'), "{xml}");
        let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
        let text = failure.text().unwrap_or_default();
        assert!(text.contains("Kong said \\u{fffe}\nline two \\u{fffe}\\u{ffff}\\u{1}\\u{0}\\u{1b}[2J"), "{text}");
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("testcase")).count(), 5);
    }

    #[test]
    fn summary_and_run_json_are_stable() {
        insta::assert_snapshot!("summary", markdown(&sample()));
        insta::assert_snapshot!("run_json", json(&sample()));
    }

    /// A load window is drawn in the summary (a Mermaid chart GitHub renders) and kept whole in
    /// run.json (the series per second, the disruptions, the verdict's measures).
    #[test]
    fn a_load_window_is_drawn_and_kept() {
        let mut report = sample();
        report.results = vec![ScenarioResult {
            scenario: "resilience-kong-restart".into(),
            mesh: "istio".into(),
            outcome: Outcome::Passed,
            duration_ms: 46_000,
            artifacts: None,
            notes: Vec::new(),
            phases: Vec::new(),
            load_windows: vec![sample_window()],
        }];
        insta::assert_snapshot!("summary_load", markdown(&report));
        let json: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
        let window = &json["results"][0]["load_windows"][0];
        assert_eq!(window["series"].as_array().map(Vec::len), Some(6));
        assert_eq!(window["disruptions"][0]["start_ms"], 2000);
        assert_eq!(window["verdict"]["longest_outage_ms"], 400);
        assert_eq!(window["verdict"]["failed"], 2);
    }
}
