//! What the live path needs on this machine, checked quickly: a Docker daemon that answers,
//! and the kind and helm CLIs. `doctor` prints the report; `e2e` refuses to start without it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// One prerequisite and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was found (a path, a version) or what went wrong.
    pub detail: String,
    /// How to fix it, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// All prerequisites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    pub fn missing(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.checks {
            writeln!(f, "{} {:<8} {}", if c.ok { "ok     " } else { "MISSING" }, c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "         {:<8} fix: {fix}", "")?;
            }
        }
        Ok(())
    }
}

/// The seam to the Docker daemon: tests substitute an answer.
pub trait DockerProbe {
    /// `Ok(version)` when a daemon answers, `Err(why)` otherwise. Must return within `timeout`.
    fn ping(&self, timeout: Duration) -> impl std::future::Future<Output = Result<String, String>> + Send;
}

/// The real daemon, found the way the docker CLI finds it (`DOCKER_HOST` or the local socket).
pub struct BollardDocker;

impl DockerProbe for BollardDocker {
    async fn ping(&self, timeout: Duration) -> Result<String, String> {
        let docker = bollard::Docker::connect_with_defaults().map_err(|e| e.to_string())?;
        match tokio::time::timeout(timeout, docker.version()).await {
            Ok(Ok(v)) => Ok(v.version.unwrap_or_else(|| "unknown version".into())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", timeout.as_secs())),
        }
    }
}

/// How long the daemon may take to answer before it counts as unreachable.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Check everything. `search_path` is the PATH to look for CLIs in (the process's own in real
/// use); `runner` asks each tool found for its version.
pub async fn check(
    docker: &impl DockerProbe,
    runner: &impl crate::command::Runner,
    search_path: Option<&std::ffi::OsStr>,
    tool_cache: &Path,
) -> Report {
    let docker_check = match docker.ping(DOCKER_TIMEOUT).await {
        Ok(version) => {
            Check { name: "docker", ok: true, detail: format!("daemon answers (Docker {version})"), fix: None }
        }
        Err(why) => Check {
            name: "docker",
            ok: false,
            detail: format!("no Docker daemon reachable: {why}"),
            fix: Some(
                "install Docker (https://docs.docker.com/engine/install/) or Docker Desktop, start it, and make sure \
                 `docker info` works for this user (or set DOCKER_HOST)"
                    .into(),
            ),
        },
    };
    let mut checks = vec![docker_check];
    for (tool, version_args, fix) in [
        (
            "kind",
            &["version"][..],
            "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation) and put it on PATH",
        ),
        ("helm", &["version", "--short"][..], "install helm (https://helm.sh/docs/intro/install/) and put it on PATH"),
    ] {
        checks.push(match find_tool(tool, search_path, tool_cache) {
            Some(path) => {
                let ask = crate::command::Invocation::new(&path, version_args.iter().copied(), Duration::from_secs(5));
                let version = match runner.run(&ask).await {
                    Ok(out) => out.stdout.lines().next().unwrap_or("").trim().to_owned(),
                    Err(e) => format!("version unknown: {e}"),
                };
                Check { name: tool, ok: true, detail: format!("found at {} ({version})", path.display()), fix: None }
            }
            None => Check {
                name: tool,
                ok: false,
                detail: format!("`{tool}` is neither on PATH nor in {}", tool_cache.display()),
                fix: Some(fix.into()),
            },
        });
    }
    Report { checks }
}

/// A CLI in the harness's tool cache (`<cache>/<name>-*/<name>`) or on `search_path`.
pub fn find_tool(name: &str, search_path: Option<&std::ffi::OsStr>, tool_cache: &Path) -> Option<PathBuf> {
    let cached = std::fs::read_dir(tool_cache).ok().into_iter().flatten().filter_map(|e| e.ok()).find_map(|e| {
        let dir = e.path();
        let versioned = dir.file_name()?.to_str()?.strip_prefix(name)?.starts_with('-');
        let exe = dir.join(name);
        (versioned && is_executable(&exe)).then_some(exe)
    });
    cached.or_else(|| std::env::split_paths(search_path?).map(|dir| dir.join(name)).find(|p| is_executable(p)))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Answer(Result<String, String>);

    impl DockerProbe for Answer {
        async fn ping(&self, _: Duration) -> Result<String, String> {
            self.0.clone()
        }
    }

    fn executable(dir: &Path, name: &str) {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[tokio::test]
    async fn reports_each_missing_prerequisite_with_a_fix() {
        let empty = tempfile::tempdir().unwrap();
        let runner = crate::command::Recording::default();
        let report =
            check(&Answer(Err("connection refused".into())), &runner, Some(empty.path().as_os_str()), empty.path())
                .await;
        assert!(runner.argvs().is_empty(), "no tool to ask");
        assert!(!report.ok());
        let missing: Vec<&str> = report.missing().map(|c| c.name).collect();
        assert_eq!(missing, ["docker", "kind", "helm"]);
        assert!(report.missing().all(|c| c.fix.is_some()));
        assert!(report.to_string().contains("no Docker daemon reachable: connection refused"));
    }

    #[tokio::test]
    async fn finds_tools_on_path_and_in_the_cache() {
        let bin = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        executable(bin.path(), "kind");
        std::fs::create_dir(cache.path().join("helm-v3.18.4")).unwrap();
        executable(&cache.path().join("helm-v3.18.4"), "helm");
        // A non-executable file is not a tool.
        std::fs::write(bin.path().join("helm"), "").unwrap();
        let out = |s: &str| Ok(crate::command::Output { status: Some(0), stdout: s.into(), stderr: String::new() });
        let runner =
            crate::command::Recording::answering([out("kind v0.32.0 go1.24 linux/amd64\n"), out("v3.18.4+gabcdef\n")]);
        let report = check(&Answer(Ok("28.2.2".into())), &runner, Some(bin.path().as_os_str()), cache.path()).await;
        assert!(report.ok(), "{report}");
        assert!(report.checks[1].detail.ends_with("(kind v0.32.0 go1.24 linux/amd64)"), "{report}");
        assert!(
            report.checks[2].detail.contains("helm-v3.18.4") && report.checks[2].detail.ends_with("(v3.18.4+gabcdef)")
        );
        let argvs = runner.argvs();
        assert!(argvs[0].ends_with("/kind version") && argvs[1].ends_with("/helm version --short"), "{argvs:?}");
    }
}
