//! What a step that did not pass ran into. A check that judged the cluster and said no, the
//! harness failing to judge at all, and a stop from outside are different facts: retries,
//! mutants and reports (JUnit `failure` vs `error`, as cargo-nextest separates a test's failure
//! from its failing to run) each treat them differently, so they are kept apart from the step
//! that met them onwards.

use std::cell::Cell;

pub use crate::model::FailureKind;

/// A step that did not pass: why, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub kind: FailureKind,
    pub detail: String,
}

impl StepFailure {
    pub fn verdict(detail: impl Into<String>) -> Self {
        StepFailure { kind: FailureKind::Verdict, detail: detail.into() }
    }

    pub fn error(detail: impl Into<String>) -> Self {
        StepFailure { kind: FailureKind::Error, detail: detail.into() }
    }

    pub fn interrupted() -> Self {
        StepFailure { kind: FailureKind::Interrupted, detail: "interrupted".into() }
    }
}

/// A bare message is the harness failing: every verdict is made explicitly with
/// [`StepFailure::verdict`], so no API error can pass for one by accident.
impl From<String> for StepFailure {
    fn from(detail: String) -> Self {
        StepFailure::error(detail)
    }
}

impl From<&str> for StepFailure {
    fn from(detail: &str) -> Self {
        StepFailure::error(detail)
    }
}

/// What a waiting step's last failed attempt was: the check saying no, or the harness unable to
/// ask (an API error). Attempts mark it as they fail; the step's failure takes its kind.
#[derive(Debug, Default)]
pub struct LastFailure(Cell<Option<FailureKind>>);

impl LastFailure {
    pub fn judged(&self) {
        self.0.set(Some(FailureKind::Verdict));
    }

    pub fn errored(&self) {
        self.0.set(Some(FailureKind::Error));
    }

    /// The step's failure with `detail`: of the last attempt's kind; an error when no attempt
    /// finished (the deadline passed while the first was still running: an API call or a probe
    /// that never answered, so nothing was judged).
    pub fn failure(&self, detail: impl Into<String>) -> StepFailure {
        StepFailure { kind: self.0.get().unwrap_or(FailureKind::Error), detail: detail.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_messages_are_errors_and_verdicts_are_explicit() {
        let e: StepFailure = "the API server answered 403".into();
        assert_eq!(e.kind, FailureKind::Error);
        assert_eq!(StepFailure::verdict("status 503 is not 200").kind, FailureKind::Verdict);
        let last = LastFailure::default();
        assert_eq!(last.failure("x").kind, FailureKind::Error, "nothing judged");
        last.errored();
        assert_eq!(last.failure("x").kind, FailureKind::Error);
        last.judged();
        assert_eq!(last.failure("x").kind, FailureKind::Verdict);
    }
}
