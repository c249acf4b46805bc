//! What a run tells afterwards: JUnit XML for CI test reporters, a Markdown summary for
//! `$GITHUB_STEP_SUMMARY`, and `run.json` for machines. All three carry the versions installed
//! and the exact command that reruns the run.

pub mod diagnostics;
pub mod matrix;

use crate::runner::outcome::FailureKind;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// One scenario on one mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// JUnit XML: one `testsuite` per run, one `testcase` per scenario x mesh, named
/// `<scenario>::<mesh>` with the mesh as class name, so reporters group by mesh.
pub fn junit(report: &RunReport) -> Result<String, JunitError> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("kong-mesh-e2e {}", report.profile));
    suite.add_property(("run", report.run.as_str()));
    suite.add_property(("rerun", report.rerun.as_str()));
    for (component, version) in &report.versions {
        suite.add_property((format!("version.{component}").as_str(), version.as_str()));
    }
    for r in &report.results {
        let status = match &r.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed { verdict, evidence, kind } => {
                let mut s = TestCaseStatus::non_success(match kind {
                    FailureKind::Verdict => NonSuccessKind::Failure,
                    FailureKind::Error | FailureKind::Interrupted => NonSuccessKind::Error,
                });
                s.set_message(verdict.as_str());
                let artifacts =
                    r.artifacts.as_ref().map(|p| format!("\nartifacts: {}", p.display())).unwrap_or_default();
                s.set_description(format!("{evidence}{artifacts}\nrerun: {}", report.rerun));
                s
            }
            Outcome::Reproduced { verdict, evidence } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(verdict.as_str());
                s.set_type("reproduced");
                let artifacts =
                    r.artifacts.as_ref().map(|p| format!("\nartifacts: {}", p.display())).unwrap_or_default();
                s.set_description(format!("{evidence}{artifacts}\nrerun: {}", report.rerun));
                s
            }
            Outcome::Skipped { reason } => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(reason.as_str());
                s
            }
            // Surefire's form, which reporters show as flaky: a success with `flakyFailure`.
            Outcome::Flaky { verdict, evidence } => {
                let mut s = TestCaseStatus::success();
                let mut rerun = quick_junit::TestRerun::new(NonSuccessKind::Failure);
                rerun.set_message(verdict.as_str());
                rerun.stack_trace = Some(evidence.as_str().into());
                s.add_rerun(rerun);
                s
            }
        };
        let mut case = TestCase::new(format!("{}::{}", r.scenario, r.mesh), status);
        case.set_classname(format!("{}.{}", report.profile, r.mesh));
        case.set_time(Duration::from_millis(r.duration_ms));
        suite.add_test_case(case);
    }
    let mut junit = Report::new("kong-mesh-e2e");
    junit.add_test_suite(suite);
    junit.to_string().map_err(|e| JunitError(e.to_string()))
}

/// Markdown for `$GITHUB_STEP_SUMMARY`: versions, a result table, the first failure's evidence.
pub fn markdown(report: &RunReport) -> String {
    let failed = report.count(|o| matches!(o, Outcome::Failed { .. }));
    let skipped = report.count(|o| matches!(o, Outcome::Skipped { .. }));
    let flaky = report.count(|o| matches!(o, Outcome::Flaky { .. }));
    let reproduced = report.count(|o| matches!(o, Outcome::Reproduced { .. }));
    let passed = report.results.len() - failed - skipped - flaky - reproduced;
    let mut out = format!(
        "## kong-mesh-e2e: {} on {} ({})\n\n{passed} passed{}, {failed} failed, {skipped} skipped{} · run `{}`\n\n",
        report.profile,
        report.mesh,
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
        report.run
    );
    out.push_str("| component | version |\n|---|---|\n");
    for (component, version) in &report.versions {
        out.push_str(&format!("| {component} | `{version}` |\n"));
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
            "| `{}` | {} | {result} | {:.1}s |\n",
            r.scenario,
            r.mesh,
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
            "\n### First failure: `{}` on {}\n\n{verdict}\n\n```\n{evidence}\n```\n",
            first.scenario, first.mesh
        ));
        if let Some(a) = &first.artifacts {
            out.push_str(&format!("\nArtifacts: `{}`\n", a.display()));
        }
    }
    out.push_str(&format!("\nRerun: `{}`\n", report.rerun));
    out
}

fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().replace('|', "\\|")
}

/// `run.json`.
pub fn json(report: &RunReport) -> String {
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
                },
                ScenarioResult {
                    scenario: "tracing-istio".into(),
                    mesh: "istio".into(),
                    outcome: Outcome::Skipped { reason: "environment failed: istiod not ready".into() },
                    duration_ms: 0,
                    artifacts: None,
                    notes: Vec::new(),
                    phases: Vec::new(),
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
        assert!(markdown(&report).contains("**ERROR**: step `wait"), "{}", markdown(&report));
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
        assert!(summary.contains("**flaky** (passed on a retry; first failure: step `http GET /echo` failed)"));
    }

    #[test]
    fn summary_and_run_json_are_stable() {
        insta::assert_snapshot!("summary", markdown(&sample()));
        insta::assert_snapshot!("run_json", json(&sample()));
    }
}
