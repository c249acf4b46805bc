//! A run's time budget (`e2e --budget 75m`): the run stops starting work early enough that the
//! evidence of what was running, the reports and the teardown all fit inside the budget, so a CI
//! job's `timeout-minutes` never kills a run before it has said what happened and cleaned up.
//!
//! The budget counts from the moment it is armed (the start of the run, after compilation).
//! When `total - RESERVE` has passed, it cancels the run's token exactly as Ctrl-C does; the
//! difference is only in what the run reports ([`Deadline::passed`]): scenarios not started are
//! skipped "out of time", the run fails (exit 1, not 130) and the cluster's logs are exported.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{DIAGNOSTICS_BOUND, TEARDOWN_BOUND};
use crate::model::Timeout;

/// `helm get values` of each release after a failure: each call is bounded by a minute, and they
/// usually take a second; two minutes covers the stack's releases on a slow API server.
pub const HELM_VALUES_RESERVE: Duration = Duration::from_secs(120);

/// What must still fit after the run stops: the evidence of the scenario that was running, the
/// Helm values in force, the nodes' logs and the cluster's deletion, each at its own bound.
pub const RESERVE: Duration = Duration::from_secs(
    DIAGNOSTICS_BOUND.as_secs()
        + HELM_VALUES_RESERVE.as_secs()
        + DIAGNOSTICS_BOUND.as_secs()
        + TEARDOWN_BOUND.as_secs(),
);

/// The least time a budget must leave for work: below it, not even a cluster gets created.
const LEAST_WORK: Duration = Duration::from_secs(5 * 60);

/// The longest budget: a day. A longer one is a typo, not a plan.
const LONGEST: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub total: Duration,
}

impl Budget {
    /// `75m`, `2h`, `5400s`: at least the reserve plus five minutes of work, at most a day.
    pub fn parse(s: &str) -> Result<Budget, String> {
        let total = crate::model::parse_duration(s)?;
        let least = RESERVE + LEAST_WORK;
        if total < least {
            return Err(format!(
                "a budget of {} leaves no time to work: the last {} are kept for evidence and teardown, so give at \
                 least {}",
                Timeout(total),
                Timeout(RESERVE),
                Timeout(least)
            ));
        }
        if total > LONGEST {
            return Err(format!("a budget of {} is longer than a day; did you mean minutes?", Timeout(total)));
        }
        Ok(Budget { total })
    }

    /// How long the run may work before it stops.
    pub fn working_time(&self) -> Duration {
        self.total.saturating_sub(RESERVE)
    }

    /// Start counting now: `cancel` is cancelled when the working time is over (unless the run
    /// was cancelled before). The timer task ends with either.
    pub fn arm(self, cancel: &CancellationToken) -> Deadline {
        let deadline = Deadline {
            stop_at: Instant::now() + self.working_time(),
            budget: self,
            fired: Arc::new(AtomicBool::new(false)),
        };
        let (cancel, timer) = (cancel.clone(), deadline.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(timer.stop_at) => {
                    // Only a run not cancelled before counts as stopped by the budget: Ctrl-C
                    // shortly before the deadline stays an interruption.
                    if !cancel.is_cancelled() {
                        timer.fired.store(true, Ordering::SeqCst);
                        tracing::warn!("{}: stopping, collecting evidence and tearing down", timer.reason());
                        crate::say_err!("\n{}: stopping, collecting evidence and tearing down", timer.reason());
                        cancel.cancel();
                    }
                }
                () = cancel.cancelled() => {}
            }
        });
        deadline
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Timeout(self.total).fmt(f)
    }
}

/// When an armed budget stops the run.
#[derive(Debug, Clone)]
pub struct Deadline {
    stop_at: Instant,
    budget: Budget,
    /// Set by the timer when it, and not an interruption before it, cancelled the run.
    fired: Arc<AtomicBool>,
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        self.stop_at == other.stop_at && self.budget == other.budget
    }
}

impl Eq for Deadline {}

impl Deadline {
    /// Whether the budget stopped the run (its timer cancelled it; an interruption that came
    /// first, however close to the deadline, is not the budget's).
    pub fn passed(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    pub fn reason(&self) -> String {
        format!(
            "the run's time budget of {} ran out ({} kept for evidence and teardown)",
            self.budget,
            Timeout(RESERVE)
        )
    }
}

/// Why a scenario that never started was skipped: the budget's reason when it ran out, else an
/// interruption.
pub fn why_stopped(deadline: Option<&Deadline>) -> String {
    match deadline {
        Some(d) if d.passed() => d.reason(),
        _ => "interrupted".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_covers_every_bound_that_runs_after_the_stop() {
        // 1 min evidence, 2 min Helm values, 1 min node logs, 3 min deletion.
        assert_eq!(RESERVE, Duration::from_secs(7 * 60));
        assert_eq!(Budget::parse("75m").unwrap().working_time(), Duration::from_secs(68 * 60));
    }

    #[test]
    fn budgets_too_short_or_absurd_are_refused_with_the_reason() {
        assert_eq!(
            Budget::parse("10m").unwrap_err(),
            "a budget of 10m leaves no time to work: the last 7m are kept for evidence and teardown, so give at \
             least 12m"
        );
        assert!(Budget::parse("12m").is_ok());
        assert!(Budget::parse("3d").unwrap_err().contains("no known unit"));
        assert!(Budget::parse("25h").unwrap_err().contains("longer than a day"));
        assert!(Budget::parse("soon").unwrap_err().contains("not a duration"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_cancels_the_run_when_its_working_time_is_over_and_not_before() {
        let cancel = CancellationToken::new();
        let deadline = Budget::parse("20m").unwrap().arm(&cancel);
        tokio::time::sleep(Duration::from_secs(13 * 60 - 1)).await;
        assert!(!cancel.is_cancelled() && !deadline.passed());
        assert_eq!(why_stopped(Some(&deadline)), "interrupted");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(cancel.is_cancelled() && deadline.passed());
        assert_eq!(
            why_stopped(Some(&deadline)),
            "the run's time budget of 20m ran out (7m kept for evidence and teardown)"
        );
    }

    /// An interruption is an interruption even when the verdict is read after the deadline
    /// (evidence and teardown take minutes after Ctrl-C).
    #[tokio::test(start_paused = true)]
    async fn an_interrupt_before_the_deadline_is_an_interrupt() {
        let cancel = CancellationToken::new();
        let deadline = Budget::parse("20m").unwrap().arm(&cancel);
        tokio::time::sleep(Duration::from_secs(13 * 60 - 30)).await;
        cancel.cancel();
        tokio::time::sleep(Duration::from_secs(10 * 60)).await;
        assert!(!deadline.passed());
        assert_eq!(why_stopped(Some(&deadline)), "interrupted");
        assert_eq!(why_stopped(None), "interrupted");
    }
}
