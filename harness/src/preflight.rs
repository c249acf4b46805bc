//! What the live path needs on this machine, checked quickly: a Docker daemon that answers,
//! and the kind and helm CLIs. `doctor` prints the report; `e2e` refuses to start without it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// One prerequisite and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    /// Nothing to do before a run: present, or fetched by the run itself (`will_download`).
    pub ok: bool,
    /// Not here yet, and the run downloads and verifies it itself: not a missing prerequisite.
    #[serde(default)]
    pub will_download: bool,
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
    /// The verdict: nothing is missing (tools the run downloads itself do not count).
    pub ready: bool,
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
            let state = match (c.ok, c.will_download) {
                (true, true) => "later  ",
                (true, false) => "ok     ",
                (false, _) => "MISSING",
            };
            writeln!(f, "{state} {:<10} {}", c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "         {:<10} {}: {fix}", "", if c.ok { "note" } else { "fix" })?;
            }
        }
        let missing: Vec<&str> = self.missing().map(|c| c.name.as_str()).collect();
        if missing.is_empty() {
            writeln!(
                f,
                "verdict: ready for `cargo xtask e2e` (tools marked `later` are downloaded and verified by the run)"
            )
        } else {
            writeln!(f, "verdict: not ready: missing {}", missing.join(", "))
        }
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

/// Check everything: the daemon, and each pinned tool in the harness's cache (`cache`).
/// A tool that is only on `search_path` is reported with its version, but the harness uses
/// the pinned, verified one; `runner` asks each tool found for its version.
pub async fn check(
    docker: &impl DockerProbe,
    runner: &impl crate::command::Runner,
    versions: &crate::profile::Versions,
    cache: &crate::tools::Cache,
    search_path: Option<&std::ffi::OsStr>,
) -> Report {
    let docker_check = match docker.ping(DOCKER_TIMEOUT).await {
        Ok(version) => Check {
            name: "docker".into(),
            ok: true,
            will_download: false,
            detail: format!("daemon answers (Docker {version})"),
            fix: None,
        },
        Err(why) => Check {
            name: "docker".into(),
            ok: false,
            will_download: false,
            detail: format!("no Docker daemon reachable: {why}"),
            fix: Some(
                "install Docker (https://docs.docker.com/engine/install/) or Docker Desktop, start it, and make sure \
                 `docker info` works for this user (or set DOCKER_HOST)"
                    .into(),
            ),
        },
    };
    // kind drives the engine through the docker CLI, not the API.
    let cli_check = match find_on_path("docker", search_path) {
        Some(path) => Check {
            name: "docker-cli".into(),
            ok: true,
            will_download: false,
            detail: format!("found at {}", path.display()),
            fix: None,
        },
        None => Check {
            name: "docker-cli".into(),
            ok: false,
            will_download: false,
            detail: "no `docker` on PATH; kind runs it to create the node container".into(),
            fix: Some(
                "install the Docker CLI (it comes with Docker Engine and Docker Desktop) and put it on PATH".into(),
            ),
        },
    };
    let mut checks = vec![docker_check, cli_check];
    for name in versions.tools.keys() {
        let artifact = match crate::tools::tool(versions, name) {
            Ok(a) => a,
            Err(e) => {
                checks.push(Check {
                    name: name.clone(),
                    ok: false,
                    will_download: false,
                    detail: e.to_string(),
                    fix: None,
                });
                continue;
            }
        };
        let version_of = |path: PathBuf| async move {
            let args: &[&str] = if name == "helm" { &["version", "--short"] } else { &["version"] };
            let ask = crate::command::Invocation::new(&path, args.iter().copied(), Duration::from_secs(5));
            match runner.run(&ask).await {
                Ok(out) => out.stdout.lines().next().unwrap_or("").trim().to_owned(),
                Err(e) => format!("version unknown: {e}"),
            }
        };
        checks.push(match cache.cached(&artifact) {
            Some(path) => Check {
                name: name.clone(),
                ok: true,
                will_download: false,
                detail: format!(
                    "{} at {} (sha256 verified: {})",
                    artifact.version,
                    path.display(),
                    version_of(path.clone()).await
                ),
                fix: None,
            },
            None => {
                let on_path = match find_on_path(name, search_path) {
                    Some(p) => format!("; {} on PATH is not used ({})", p.display(), version_of(p.clone()).await),
                    None => String::new(),
                };
                Check {
                    name: name.clone(),
                    ok: true,
                    will_download: true,
                    detail: format!(
                        "pinned {} {} will be downloaded by the run into {}{on_path}",
                        name,
                        artifact.version,
                        cache.dir_of(&artifact).display()
                    ),
                    fix: Some(format!(
                        "`cargo xtask tools` fetches it ahead of time from {} and verifies its sha256; for a machine \
                         without access, run `cargo xtask tools` elsewhere and copy the tool cache (target/tools, or \
                         KME2E_TOOLS_DIR) over: its files are used only if their sha256 matches the pins",
                        artifact.url
                    )),
                }
            }
        });
    }
    let ready = checks.iter().all(|c| c.ok);
    Report { checks, ready }
}

/// A CLI on `search_path`.
pub fn find_on_path(name: &str, search_path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(search_path?).map(|dir| dir.join(name)).find(|p| is_executable(p))
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

    fn versions() -> crate::profile::Versions {
        crate::profile::Versions::parse(include_str!("../../versions.toml")).unwrap()
    }

    #[tokio::test]
    async fn reports_each_missing_prerequisite_with_a_fix() {
        let empty = tempfile::tempdir().unwrap();
        let runner = crate::command::Recording::default();
        let cache = crate::tools::Cache::at(empty.path());
        let report = check(
            &Answer(Err("connection refused".into())),
            &runner,
            &versions(),
            &cache,
            Some(empty.path().as_os_str()),
        )
        .await;
        assert!(runner.argvs().is_empty(), "no tool to ask");
        assert!(!report.ok());
        let missing: Vec<&str> = report.missing().map(|c| c.name.as_str()).collect();
        // Tools the run downloads itself are not missing prerequisites.
        assert_eq!(missing, ["docker", "docker-cli"]);
        assert!(report.missing().all(|c| c.fix.is_some()));
        assert!(report.checks.iter().filter(|c| c.will_download).count() == 2);
        let text = report.to_string();
        assert!(text.contains("no Docker daemon reachable: connection refused"), "{text}");
        assert!(text.contains("later   kind"), "{text}");
        assert!(
            text.contains(
                "fetches it ahead of time from https://github.com/kubernetes-sigs/kind/releases/download/v0.33.0/"
            ),
            "{text}"
        );
        assert!(text.ends_with("verdict: not ready: missing docker, docker-cli\n"), "{text}");
    }

    #[tokio::test]
    async fn cached_tools_count_and_path_tools_are_only_mentioned() {
        let bin = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = crate::tools::Cache::at(cache_dir.path());
        let mut v = versions();
        // A plain (non-archive) pin of exactly the seeded bytes for this machine.
        let helm = v.tools.get_mut("helm").unwrap();
        helm.archive_path = None;
        for sum in helm.sha256.values_mut() {
            *sum = crate::tools::sha256_hex(b"#!/bin/sh\n");
        }
        cache.seed(&crate::tools::tool(&v, "helm").unwrap(), b"#!/bin/sh\n");
        executable(bin.path(), "kind");
        executable(bin.path(), "docker");
        // A non-executable file is not a tool.
        std::fs::write(bin.path().join("helm"), "").unwrap();
        let out = |s: &str| Ok(crate::command::Output { status: Some(0), stdout: s.into(), stderr: String::new() });
        let runner =
            crate::command::Recording::answering([out("v3.18.4+gabcdef\n"), out("kind v0.29.0 go1.24 linux/amd64\n")]);
        let report = check(&Answer(Ok("28.2.2".into())), &runner, &v, &cache, Some(bin.path().as_os_str())).await;
        assert!(report.checks[1].ok, "{report}");
        assert!(
            report.checks[2].ok && report.checks[2].detail.contains("sha256 verified: v3.18.4+gabcdef"),
            "{report}"
        );
        assert!(report.checks[3].will_download, "kind on PATH is not the pinned one: {report}");
        assert!(report.checks[3].detail.contains("on PATH is not used (kind v0.29.0"), "{report}");
    }
}
