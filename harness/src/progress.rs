//! Progress of long phases: a spinner with the phase, the elapsed time and what it waits for
//! when a person watches a terminal; plain timestamped lines otherwise (CI logs, pipes).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Where progress goes.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
    clock: fn() -> time::OffsetDateTime,
}

#[derive(Clone)]
enum Mode {
    /// One spinner per running phase, stacked: scenarios run side by side.
    Terminal(MultiProgress),
    Lines(Sink),
}

impl Progress {
    /// Spinners on an interactive stderr, plain lines when stderr is not a terminal or `CI` is set.
    pub fn stderr() -> Self {
        let interactive = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        if interactive {
            Progress { mode: Mode::Terminal(MultiProgress::new()), clock: time::OffsetDateTime::now_utc }
        } else {
            Progress::lines(Box::new(std::io::stderr()))
        }
    }

    /// Plain lines into `sink`.
    pub fn lines(sink: Box<dyn Write + Send>) -> Self {
        Progress { mode: Mode::Lines(Arc::new(Mutex::new(sink))), clock: time::OffsetDateTime::now_utc }
    }

    fn line(&self, text: &str) {
        if let Mode::Lines(sink) = &self.mode {
            let t = (self.clock)();
            let stamp = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            if let Ok(mut w) = sink.lock() {
                // Progress output failing must not fail the run.
                let _ = writeln!(w, "{stamp} {text}");
            }
        }
    }

    /// Start a phase.
    pub fn phase(&self, name: &str) -> Phase {
        let bar = match &self.mode {
            Mode::Terminal(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(name.to_owned());
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            Mode::Lines(_) => None,
        };
        self.line(&format!("{name}: started"));
        let waiting = Arc::new(Mutex::new(String::new()));
        let heartbeat = self.heartbeat(name, waiting.clone());
        Phase { progress: self.clone(), name: name.to_owned(), started: Instant::now(), bar, waiting, heartbeat }
    }

    /// In line mode (CI), a line every [`HEARTBEAT`] while a phase runs, saying what it waits
    /// for and for how long: a quiet log looks like a hang, and CI kills jobs that print nothing.
    fn heartbeat(&self, name: &str, waiting: Arc<Mutex<String>>) -> Option<tokio::task::JoinHandle<()>> {
        if !matches!(self.mode, Mode::Lines(_)) {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        // tokio's clock: virtual in tests, the same as std's otherwise.
        let (progress, name, started) = (self.clone(), name.to_owned(), tokio::time::Instant::now());
        Some(runtime.spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
            loop {
                ticks.tick().await;
                let what = waiting.lock().map(|w| w.clone()).unwrap_or_default();
                let what = if what.is_empty() { String::new() } else { format!(", waiting for {what}") };
                progress.line(&format!("{name}: still running after {}s{what}", started.elapsed().as_secs()));
            }
        }))
    }
}

/// How often a running phase says so in line mode.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// One running phase.
pub struct Phase {
    progress: Progress,
    name: String,
    started: Instant,
    bar: Option<ProgressBar>,
    /// What the phase waits for now, for the heartbeat.
    waiting: Arc<Mutex<String>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some(h) = &self.heartbeat {
            h.abort();
        }
    }
}

impl Phase {
    /// Say what the phase now waits for.
    pub fn waiting_for(&self, what: &str) {
        // Messages may quote what a cluster or input said: never raw control characters.
        let what = crate::diagnostic::escape_controls(what);
        if let Ok(mut w) = self.waiting.lock() {
            w.clone_from(&what);
        }
        match &self.bar {
            Some(bar) => bar.set_message(format!("waiting for {what}")),
            None => self.progress.line(&format!("{}: waiting for {what}", self.name)),
        }
    }

    /// End the phase with its outcome.
    pub fn finish(self, ok: bool, summary: &str) {
        let summary = crate::diagnostic::escape_controls(summary);
        let word = if ok { "done" } else { "FAILED" };
        let text = format!("{}: {word} in {:.1}s: {summary}", self.name, self.started.elapsed().as_secs_f64());
        match &self.bar {
            Some(bar) => bar.finish_with_message(format!("{word}: {summary}")),
            None => self.progress.line(&text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// In CI a running phase says so every 30 s, with what it waits for; it stops when the
    /// phase ends.
    #[tokio::test(start_paused = true)]
    async fn a_running_phase_has_a_heartbeat_in_ci() {
        let out = Shared::default();
        let progress = Progress::lines(Box::new(out.clone()));
        let phase = progress.phase("install istio");
        phase.waiting_for("istiod");
        tokio::time::sleep(Duration::from_secs(65)).await;
        phase.finish(true, "ok");
        tokio::time::sleep(Duration::from_secs(65)).await;
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let beats: Vec<&str> = text.lines().filter(|l| l.contains("still running")).collect();
        assert_eq!(beats.len(), 2, "{text}");
        assert!(beats[0].ends_with("install istio: still running after 30s, waiting for istiod"), "{text}");
    }

    #[test]
    fn plain_lines_carry_a_timestamp_the_phase_and_what_it_waits_for() {
        let out = Shared::default();
        let mut progress = Progress::lines(Box::new(out.clone()));
        progress.clock = || time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let phase = progress.phase("install istio");
        phase.waiting_for("deployment istio-system/istiod to be available");
        phase.finish(false, "istiod not available after 5m");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "2027-01-15T08:00:00Z install istio: started");
        assert_eq!(
            lines[1],
            "2027-01-15T08:00:00Z install istio: waiting for deployment istio-system/istiod to be available"
        );
        assert!(
            lines[2].starts_with("2027-01-15T08:00:00Z install istio: FAILED in 0.")
                && lines[2].ends_with("s: istiod not available after 5m"),
            "{}",
            lines[2]
        );
    }
}
