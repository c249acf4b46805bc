//! Rate limits without window-boundary flakes.
//!
//! Kong's rate-limiting plugin advertises `X-RateLimit-Limit-<Window>`, `RateLimit-Remaining`
//! and `RateLimit-Reset` (seconds until the current window ends). The check reads the reset
//! from one request, waits for the next window so the burst starts with a full budget, then
//! sends `limit + 1` requests one after another: the first `limit` must pass and advertise the
//! limit, the next must be 429. If the window rolls over during the burst (the remaining count
//! goes up), the burst proves nothing either way and is repeated in the next window, once.

use std::future::Future;
use std::time::Duration;

use crate::model::RateWindow;
use crate::probe::{Observation, Outcome};

/// How a burst went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Burst {
    Pass,
    /// The window rolled over mid-burst: try again in a fresh one.
    WindowRolled {
        at: usize,
    },
    Fail(String),
}

pub fn limit_header(window: RateWindow) -> String {
    format!("x-ratelimit-limit-{window}")
}

/// Judge the `limit + 1` observations of one burst, in order.
pub fn judge(limit: u32, window: RateWindow, burst: &[Observation]) -> Burst {
    let header = limit_header(window);
    let mut last_remaining: Option<i64> = None;
    for (i, obs) in burst.iter().enumerate() {
        let number = i + 1;
        let Outcome::Response(r) = &obs.outcome else {
            return Burst::Fail(format!("request {number} of the burst got no response: {:?}", obs.outcome));
        };
        let remaining = r.header("ratelimit-remaining").and_then(|v| v.trim().parse::<i64>().ok());
        if let (Some(before), Some(now)) = (last_remaining, remaining)
            && now > before
        {
            return Burst::WindowRolled { at: number };
        }
        last_remaining = remaining.or(last_remaining);
        if number <= limit as usize {
            if r.status == 429 {
                return Burst::Fail(format!("request {number} was rate limited (429) before the limit of {limit}"));
            }
            match r.header(&header) {
                Some(v) if v.trim() == limit.to_string() => {}
                Some(v) => return Burst::Fail(format!("request {number}: {header} is {v:?}, expected {limit:?}")),
                None => {
                    return Burst::Fail(format!(
                        "request {number}: no {header} header (is the plugin attached to this route?)"
                    ));
                }
            }
        } else if r.status != 429 {
            return Burst::Fail(format!(
                "request {number}, past the limit of {limit}, got {} instead of 429",
                r.status
            ));
        }
    }
    if burst.len() != limit as usize + 1 {
        return Burst::Fail(format!("the burst has {} requests, expected {}", burst.len(), limit + 1));
    }
    Burst::Pass
}

/// How long to wait, after a response saying `RateLimit-Reset: reset_secs`, for a fresh window.
/// The header counts whole seconds, so a margin covers the fraction already gone.
pub fn wait_for_fresh_window(observation: &Observation) -> Result<Duration, String> {
    let Outcome::Response(r) = &observation.outcome else {
        return Err(format!("the first request got no response: {:?}", observation.outcome));
    };
    let reset = r
        .header("ratelimit-reset")
        .ok_or("no RateLimit-Reset header: is the rate-limiting plugin attached to this route?")?;
    let secs: u64 =
        reset.trim().parse().map_err(|_| format!("RateLimit-Reset {reset:?} is not a number of seconds"))?;
    Ok(Duration::from_secs(secs) + Duration::from_millis(250))
}

/// Run the whole check: one request to read the window, a wait, a burst; one more window if the
/// first burst straddled a boundary. `send` sends one request; `sleep` waits (virtual in tests).
pub async fn run<S, SF, W, WF>(limit: u32, window: RateWindow, mut send: S, mut sleep: W) -> Result<(), String>
where
    S: FnMut() -> SF,
    SF: Future<Output = Observation>,
    W: FnMut(Duration) -> WF,
    WF: Future<Output = ()>,
{
    for _ in 0..2 {
        let first = send().await;
        sleep(wait_for_fresh_window(&first)?).await;
        let mut burst = Vec::with_capacity(limit as usize + 1);
        for _ in 0..=limit {
            burst.push(send().await);
        }
        match judge(limit, window, &burst) {
            Burst::Pass => return Ok(()),
            Burst::Fail(why) => return Err(why),
            Burst::WindowRolled { .. } => continue,
        }
    }
    Err("the window rolled over during two bursts in a row: the window is shorter than the burst takes".into())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::probe::Response;

    fn answer(status: u16, limit: &str, remaining: i64, reset: u64) -> Observation {
        let headers = BTreeMap::from([
            ("x-ratelimit-limit-minute".to_owned(), vec![limit.to_owned()]),
            ("ratelimit-remaining".to_owned(), vec![remaining.to_string()]),
            ("ratelimit-reset".to_owned(), vec![reset.to_string()]),
        ]);
        Observation {
            outcome: Outcome::Response(Box::new(Response { status, headers, echo: None, version: None, body: None })),
            elapsed_ms: 1,
        }
    }

    /// A fake Kong window of `limit` per minute, driven by a virtual clock in seconds.
    struct Window {
        limit: i64,
        clock: f64,
        window_start: f64,
        used: i64,
    }

    impl Window {
        fn hit(&mut self) -> Observation {
            while self.clock >= self.window_start + 60.0 {
                self.window_start += 60.0;
                self.used = 0;
            }
            self.used += 1;
            self.clock += 0.05;
            let reset = (self.window_start + 60.0 - self.clock).ceil() as u64;
            let status = if self.used > self.limit { 429 } else { 200 };
            answer(status, &self.limit.to_string(), (self.limit - self.used).max(0), reset)
        }
    }

    async fn run_against(start: f64) -> (Result<(), String>, f64) {
        let w = Arc::new(Mutex::new(Window { limit: 100, clock: start, window_start: 0.0, used: 0 }));
        let (ws, wz) = (w.clone(), w.clone());
        let result = run(
            100,
            RateWindow::Minute,
            move || {
                let o = ws.lock().unwrap().hit();
                async move { o }
            },
            move |d| {
                wz.lock().unwrap().clock += d.as_secs_f64();
                async {}
            },
        )
        .await;
        let clock = w.lock().unwrap().clock;
        (result, clock)
    }

    #[tokio::test]
    async fn bursts_start_in_a_fresh_window_wherever_the_clock_is() {
        // Early in a window, and 1 s before its end, where a naive burst would straddle it.
        for start in [0.5, 59.0, 30.0] {
            let (result, clock) = run_against(start).await;
            assert_eq!(result, Ok(()), "start {start}");
            assert!(clock > 60.0, "the burst waited for the next window (clock {clock})");
        }
    }

    #[test]
    fn judges_the_limit_header_and_the_first_429() {
        let mut burst: Vec<Observation> = (0..3).map(|i| answer(200, "3", 2 - i, 40)).collect();
        burst.push(answer(429, "3", 0, 40));
        assert_eq!(judge(3, RateWindow::Minute, &burst), Burst::Pass);

        let mut early = burst.clone();
        early[1] = answer(429, "3", 0, 40);
        assert_eq!(
            judge(3, RateWindow::Minute, &early),
            Burst::Fail("request 2 was rate limited (429) before the limit of 3".into())
        );

        let mut no_limit = burst.clone();
        no_limit[3] = answer(200, "3", 0, 40);
        assert_eq!(
            judge(3, RateWindow::Minute, &no_limit),
            Burst::Fail("request 4, past the limit of 3, got 200 instead of 429".into())
        );

        let wrong = (0..4).map(|i| answer(200, "100", 2 - i, 40)).collect::<Vec<_>>();
        assert!(
            matches!(judge(3, RateWindow::Minute, &wrong), Burst::Fail(m) if m.contains("x-ratelimit-limit-minute is \"100\""))
        );

        let mut rolled = burst.clone();
        rolled[2] = answer(200, "3", 2, 60);
        assert_eq!(judge(3, RateWindow::Minute, &rolled), Burst::WindowRolled { at: 3 });
    }

    #[test]
    fn a_route_without_the_plugin_says_so() {
        let plain = Observation {
            outcome: Outcome::Response(Box::new(Response {
                status: 200,
                headers: BTreeMap::new(),
                echo: None,
                version: None,
                body: None,
            })),
            elapsed_ms: 1,
        };
        assert!(wait_for_fresh_window(&plain).unwrap_err().contains("no RateLimit-Reset header"));
    }
}

#[cfg(test)]
mod server_tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::probe::PodVersions;
    use crate::testing::{Reply, get, http_probe, serve};

    /// A local stand-in for Kong's rate-limiting plugin: `limit` per wall-clock second, with
    /// Kong's headers.
    #[tokio::test]
    async fn a_real_burst_against_a_rate_limiting_server() {
        let limit = 5u32;
        let counts: Arc<Mutex<BTreeMap<u64, u32>>> = Arc::default();
        let addr = serve(move |_| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let mut counts = counts.lock().unwrap();
            let used = counts.entry(now.as_secs()).or_default();
            *used += 1;
            let remaining = limit.saturating_sub(*used);
            let reset = (1_000 - now.subsec_millis()).div_ceil(1_000).max(1);
            let status = if *used > limit { 429 } else { 200 };
            Reply::Respond {
                status,
                headers: vec![
                    ("x-ratelimit-limit-second".into(), limit.to_string()),
                    ("ratelimit-remaining".into(), remaining.to_string()),
                    ("ratelimit-reset".into(), reset.to_string()),
                ],
                body: String::new(),
            }
        })
        .await;
        let probe = http_probe(addr, Duration::from_secs(5));
        let request = get("/limited");
        // Start just after a wall-clock second begins: the reset header has whole seconds only,
        // so the burst lands at the same offset into the next second, and a loaded test machine
        // then still has the rest of that second for it (two straddling bursts failed here).
        let into_second = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_millis();
        tokio::time::sleep(Duration::from_millis(u64::from(1_005 - into_second))).await;
        let send = || {
            let (probe, request) = (probe.clone(), request.clone());
            async move { probe.send(&request, "h", &BTreeMap::new(), &PodVersions::default()).await }
        };
        assert_eq!(run(limit, RateWindow::Second, send, tokio::time::sleep).await, Ok(()));
        // The same server with a wrong expectation fails with a reason, not a hang.
        let wrong = run(limit + 1, RateWindow::Second, send, tokio::time::sleep).await;
        assert!(wrong.unwrap_err().contains("x-ratelimit-limit-second is \"5\""));
    }
}
