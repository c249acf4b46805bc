//! The two ways of waiting.
//!
//! - [`converge`] (traffic): the whole check must pass `passes` times in a row before the
//!   deadline; any failure resets the count. Configuration rolls out old -> mixed -> new, so one
//!   pass proves little.
//! - [`eventually`] (cluster state): poll until the check passes once.
//!
//! Both are bounded by a deadline that includes the time an attempt itself takes, and on
//! timeout return the last observation next to the expectation.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

pub use crate::attempt::Attempt;

/// The deadline passed first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct NotConverged {
    pub expected: String,
    /// The last observation, or why there is none (the attempt itself ran out of time).
    pub last_seen: String,
    pub within: Duration,
    pub needed: u32,
    pub best_streak: u32,
    pub attempts: u32,
}

impl fmt::Display for NotConverged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.needed > 1 {
            write!(
                f,
                "did not converge within {:?}: needed {} consecutive passes, best run was {} ({} attempts)",
                self.within, self.needed, self.best_streak, self.attempts
            )?;
        } else {
            write!(f, "not reached within {:?} ({} attempts)", self.within, self.attempts)?;
        }
        write!(f, "\n  expected:  {}\n  last seen: {}", indent(&self.expected), indent(&self.last_seen))
    }
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n             ")
}

/// Poll `attempt` every `interval` until it passes `passes` times in a row, or `within` passes.
pub async fn converge<P, E, F, Fut>(
    passes: u32,
    within: Duration,
    interval: Duration,
    expected: &str,
    mut attempt: F,
) -> Result<P, NotConverged>
where
    P: fmt::Debug,
    E: fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<P, E>>,
{
    let deadline = Instant::now() + within;
    let (mut streak, mut best, mut attempts) = (0u32, 0u32, 0u32);
    let mut last_seen = "nothing yet".to_owned();
    loop {
        attempts += 1;
        match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(Attempt::Pass(o)) => {
                streak += 1;
                best = best.max(streak);
                if streak >= passes.max(1) {
                    return Ok(o);
                }
                last_seen = format!("{o:?}");
            }
            Ok(Attempt::Fail(o)) => {
                streak = 0;
                last_seen = format!("{o:?}");
            }
            Err(_) => {
                last_seen = format!("{last_seen} (the last attempt was still running at the deadline)");
            }
        }
        if Instant::now() + interval >= deadline {
            return Err(NotConverged {
                expected: expected.to_owned(),
                last_seen,
                within,
                needed: passes.max(1),
                best_streak: best,
                attempts,
            });
        }
        tokio::time::sleep(interval).await;
    }
}

/// Poll until the check passes once.
pub async fn eventually<P, E, F, Fut>(
    within: Duration,
    interval: Duration,
    expected: &str,
    attempt: F,
) -> Result<P, NotConverged>
where
    P: fmt::Debug,
    E: fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<P, E>>,
{
    converge(1, within, interval, expected, attempt).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const MS: Duration = Duration::from_millis(100);

    #[tokio::test(start_paused = true)]
    async fn passes_after_n_in_a_row_and_a_failure_resets() {
        // fail, pass, pass, fail, pass, pass, pass
        let script = [false, true, true, false, true, true, true];
        let i = Cell::new(0);
        let started = Instant::now();
        let result = converge(3, Duration::from_secs(10), MS, "200", || {
            let n = i.get();
            i.set(n + 1);
            async move { if script[n] { Attempt::Pass(n) } else { Attempt::Fail(n) } }
        })
        .await;
        assert_eq!(result, Ok(6));
        assert_eq!(started.elapsed(), 6 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flapping_check_times_out_with_the_last_observation() {
        let i = Cell::new(0u32);
        let err = converge(3, Duration::from_secs(2), MS, "status 200 from v2", || {
            let n = i.get();
            i.set(n + 1);
            async move {
                if n % 3 == 2 {
                    Attempt::Fail(format!("status 503 (attempt {n})"))
                } else {
                    Attempt::Pass(format!("200 (attempt {n})"))
                }
            }
        })
        .await
        .unwrap_err();
        assert_eq!(err.best_streak, 2);
        assert_eq!(err.attempts, 20);
        assert_eq!(
            err.to_string(),
            "did not converge within 2s: needed 3 consecutive passes, best run was 2 (20 attempts)\n  expected:  status 200 from v2\n  last seen: \"200 (attempt 19)\""
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_cannot_outlive_the_deadline() {
        let started = Instant::now();
        let err = eventually(Duration::from_secs(5), MS, "Deployment available", || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Attempt::<(), ()>::Pass(())
        })
        .await
        .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(err.last_seen.contains("still running at the deadline"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn eventually_returns_the_first_pass() {
        let i = Cell::new(0);
        let got = eventually(Duration::from_secs(5), MS, "exists", || {
            i.set(i.get() + 1);
            let n = i.get();
            async move { if n == 4 { Attempt::Pass(n) } else { Attempt::Fail(n) } }
        })
        .await;
        assert_eq!(got, Ok(4));
    }
}
