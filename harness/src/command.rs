//! The one way the harness runs external CLIs (kind, helm, optional diagnostics tools): with a
//! deadline, captured output, and the exact argv in every error. Tests substitute
//! [`Recording`], which answers from a script and keeps the argv it was given.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A command line to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Inherited variables whose names start with one of these are removed before `env` is
    /// applied: a user's `HELM_KUBECONTEXT` or `HELM_NAMESPACE` must not steer the harness's helm.
    pub clear_env_prefixes: Vec<String>,
    pub timeout: Duration,
}

impl Invocation {
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<String>>,
        timeout: Duration,
    ) -> Self {
        Invocation {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            clear_env_prefixes: Vec::new(),
            timeout,
        }
    }

    /// `program arg arg …`, quoted where needed, for messages and plans.
    pub fn argv(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .map(|a| if a.is_empty() || a.contains([' ', '"', '\'']) { format!("{a:?}") } else { a })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("cannot start `{argv}`: {reason}")]
    Start { argv: String, reason: String },
    #[error("`{argv}` did not finish within {timeout:?} and was killed")]
    Timeout { argv: String, timeout: Duration },
    #[error("`{argv}` failed (exit {status:?}): {stderr}")]
    Failed { argv: String, status: Option<i32>, stderr: String },
}

/// Runs commands.
pub trait Runner: Send + Sync {
    fn run(&self, invocation: &Invocation) -> impl Future<Output = Result<Output, CommandError>> + Send;
}

/// The real runner on `tokio::process`; a command that outlives its deadline is killed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Process;

impl Runner for Process {
    async fn run(&self, inv: &Invocation) -> Result<Output, CommandError> {
        let mut cmd = tokio::process::Command::new(&inv.program);
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if inv.clear_env_prefixes.iter().any(|p| text.starts_with(p.as_str())) {
                cmd.env_remove(&name);
            }
        }
        cmd.args(&inv.args)
            .envs(inv.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        let child = cmd.output();
        let output = match tokio::time::timeout(inv.timeout, child).await {
            Err(_) => return Err(CommandError::Timeout { argv: inv.argv(), timeout: inv.timeout }),
            Ok(Err(e)) => return Err(CommandError::Start { argv: inv.argv(), reason: e.to_string() }),
            Ok(Ok(o)) => o,
        };
        let out = Output {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        if output.status.success() {
            Ok(out)
        } else {
            Err(CommandError::Failed { argv: inv.argv(), status: out.status, stderr: out.stderr.trim().to_owned() })
        }
    }
}

/// A scripted runner for tests: answers in order and records every invocation.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    answers: Arc<Mutex<VecDeque<Result<Output, CommandError>>>>,
    pub calls: Arc<Mutex<Vec<Invocation>>>,
}

impl Recording {
    pub fn answering(answers: impl IntoIterator<Item = Result<Output, CommandError>>) -> Self {
        Recording { answers: Arc::new(Mutex::new(answers.into_iter().collect())), calls: Arc::default() }
    }

    pub fn argvs(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.iter().map(Invocation::argv).collect()).unwrap_or_default()
    }
}

impl Runner for Recording {
    async fn run(&self, inv: &Invocation) -> Result<Output, CommandError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(inv.clone());
        }
        let next = self.answers.lock().ok().and_then(|mut a| a.pop_front());
        next.unwrap_or_else(|| {
            Err(CommandError::Start { argv: inv.argv(), reason: "the recording has no answer left".into() })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inherited variables under a cleared prefix do not reach the command (as a user's
    /// HELM_KUBECONTEXT must not reach the harness's helm); the invocation's own still do.
    #[cfg(unix)]
    #[tokio::test]
    async fn cleared_prefixes_do_not_reach_the_command() {
        // cargo sets CARGO_MANIFEST_DIR for the tests it runs, so clearing it is observable (a
        // shell would invent a default PATH, so PATH cannot show it).
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let script = "echo ${CARGO_MANIFEST_DIR:-unset} ${CARGO_MANIFEST_X:-none}";
        let mut inv = Invocation::new("/bin/sh", ["-c", script], Duration::from_secs(10));
        inv.clear_env_prefixes.push("CARGO_MANIFEST_".into());
        inv.env.push(("CARGO_MANIFEST_X".into(), "set-by-us".into()));
        let out = Process.run(&inv).await.unwrap();
        assert_eq!(out.stdout.trim(), "unset set-by-us");
        // Without the prefix, the inherited value arrives.
        let plain = Invocation::new("/bin/sh", ["-c", "echo ${CARGO_MANIFEST_DIR:-unset}"], Duration::from_secs(10));
        assert_ne!(Process.run(&plain).await.unwrap().stdout.trim(), "unset");
    }

    #[tokio::test]
    async fn runs_captures_and_names_the_argv_in_errors() {
        let ok = Process
            .run(&Invocation::new("sh", ["-c", "echo out; echo err >&2"], Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!((ok.status, ok.stdout.as_str(), ok.stderr.as_str()), (Some(0), "out\n", "err\n"));
        let failed = Process
            .run(&Invocation::new("sh", ["-c", "echo broken >&2; exit 3"], Duration::from_secs(10)))
            .await
            .unwrap_err();
        assert_eq!(
            failed,
            CommandError::Failed {
                argv: "sh -c \"echo broken >&2; exit 3\"".into(),
                status: Some(3),
                stderr: "broken".into()
            }
        );
        let missing = Process.run(&Invocation::new("/no/such/tool", ["x"], Duration::from_secs(10))).await.unwrap_err();
        assert!(matches!(missing, CommandError::Start { ref argv, .. } if argv == "/no/such/tool x"), "{missing}");
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_at_its_deadline() {
        let started = std::time::Instant::now();
        let err = Process.run(&Invocation::new("sleep", ["30"], Duration::from_millis(300))).await.unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn the_recording_keeps_argv_and_answers_in_order() {
        let r = Recording::answering([Ok(Output {
            status: Some(0),
            stdout: "kind v0.32.0".into(),
            stderr: String::new(),
        })]);
        let out = r.run(&Invocation::new("kind", ["version"], Duration::from_secs(1))).await.unwrap();
        assert_eq!(out.stdout, "kind v0.32.0");
        assert!(r.run(&Invocation::new("helm", ["version"], Duration::from_secs(1))).await.is_err());
        assert_eq!(r.argvs(), ["kind version", "helm version"]);
    }
}
