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
    /// Present but below what a run is known to need (memory, disk, inotify limits): runs may
    /// fail or crawl, so it is said, but it does not make the machine "not ready".
    #[serde(default)]
    pub low: bool,
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
            let state = match (c.ok, c.will_download, c.low) {
                (true, true, _) => "later  ",
                (true, false, true) => "LOW    ",
                (true, false, false) => "ok     ",
                (false, _, _) => "MISSING",
            };
            writeln!(f, "{state} {:<10} {}", c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                let label = if !c.ok || c.low { "fix" } else { "note" };
                writeln!(f, "         {:<10} {label}: {fix}", "")?;
            }
        }
        let missing: Vec<&str> = self.missing().map(|c| c.name.as_str()).collect();
        let low: Vec<&str> = self.checks.iter().filter(|c| c.low).map(|c| c.name.as_str()).collect();
        if missing.is_empty() && low.is_empty() {
            writeln!(
                f,
                "verdict: ready for `{} e2e` (tools marked `later` are downloaded and verified by the run)",
                crate::command_name()
            )
        } else if missing.is_empty() {
            writeln!(f, "verdict: ready, but low on {}: runs may fail or be slow (see the fixes above)", low.join(", "))
        } else {
            writeln!(f, "verdict: not ready: missing {}", missing.join(", "))
        }
    }
}

/// What the daemon said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerInfo {
    pub version: String,
    /// The memory its containers can use (`docker info`'s total: the host's on Linux, the VM's
    /// limit on Docker Desktop), when it says.
    pub memory: Option<u64>,
    /// The cgroup version the daemon's containers (kind's node among them) get, as `docker
    /// info` reports it (`CgroupVersion`: "1" or "2"), when it says.
    pub cgroup_version: Option<String>,
}

/// The seam to the Docker daemon: tests substitute an answer.
pub trait DockerProbe {
    /// `Ok(info)` when a daemon answers, `Err(why)` otherwise. Must return within `timeout`.
    fn ping(&self, timeout: Duration) -> impl std::future::Future<Output = Result<DockerInfo, String>> + Send;
}

/// The daemon as the docker CLI reaches it (its context or `DOCKER_HOST`), which is how kind
/// reaches it too: `docker version` says it answers, `docker info` adds its memory and cgroup
/// version (a bonus, never a failure). Commands go through `R` (tests script the CLI's output).
#[derive(Debug, Clone, Copy, Default)]
pub struct DockerCliProbe<R = crate::command::Process>(pub R);

impl<R: crate::command::Runner> DockerProbe for DockerCliProbe<R> {
    async fn ping(&self, timeout: Duration) -> Result<DockerInfo, String> {
        use crate::command::Invocation;
        let asked = async {
            // The documented form (docs.docker.com/reference/cli/docker/version, `--format`):
            // the server's version only, which fails when no daemon answers.
            let version = Invocation::new("docker", ["version", "--format", "{{.Server.Version}}"], timeout);
            let version = self.0.run(&version).await.map_err(|e| e.to_string())?.stdout.trim().to_owned();
            // `docker info --format '{{json .}}'`: the Engine API's SystemInfo at the top level
            // (`MemTotal` in bytes, `CgroupVersion` "1" or "2"; "" when the daemon does not know).
            let info = Invocation::new("docker", ["info", "--format", "{{json .}}"], timeout);
            let info: Option<serde_json::Value> =
                self.0.run(&info).await.ok().and_then(|out| serde_json::from_str(&out.stdout).ok());
            let memory = info.as_ref().and_then(|i| i["MemTotal"].as_u64());
            let cgroup_version =
                info.as_ref().and_then(|i| i["CgroupVersion"].as_str()).filter(|v| !v.is_empty()).map(str::to_owned);
            let version = if version.is_empty() { "unknown version".to_owned() } else { version };
            Ok(DockerInfo { version, memory, cgroup_version })
        };
        match tokio::time::timeout(timeout, asked).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {}s", timeout.as_secs())),
        }
    }
}

/// Facts about this machine the live path depends on: [`HostFacts::read`] reads them, tests
/// state their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// This machine's memory (`MemTotal`), used when Docker does not say its own.
    pub memory: Option<u64>,
    /// Free bytes on the filesystem of the project's `target/` (builds, tools, run directories).
    pub free_disk: Option<u64>,
    /// `fs.inotify.max_user_watches` and `max_user_instances` (Linux).
    pub inotify: Option<(u64, u64)>,
}

const GIB: u64 = 1 << 30;

/// A kind node with Istio (or Linkerd), Kong and the scenarios' workloads. Istio's local-cluster
/// guides ask for 8 GB (e.g. 8192 MB and 4 CPUs on
/// https://istio.io/v1.2/docs/setup/kubernetes/prepare/platform-setup/minikube/); the harness's
/// own stack is smaller than Istio's demo profile, so this is a comfortable figure, not a floor.
const MEMORY_NEEDED: u64 = 8 * GIB;

/// target/ grows to 2-5 GB with the build; a run adds the tools, the preloaded image archives
/// (about 1-2 GB) and its evidence.
const DISK_NEEDED: u64 = 10 * GIB;

/// kind's known issue "Pod errors due to too many open files": these limits, or more
/// (https://kind.sigs.k8s.io/docs/user/known-issues/#pod-errors-due-to-too-many-open-files).
const INOTIFY_NEEDED: (u64, u64) = (524_288, 512);

impl HostFacts {
    /// Read from `/proc` (Linux) and the filesystem of `target`; what cannot be read stays `None`.
    pub fn read(target: &Path) -> HostFacts {
        let number = |path: &str| std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u64>().ok());
        let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
        let existing = target.ancestors().find(|p| p.exists()).unwrap_or(target);
        let free_disk = rustix::fs::statvfs(existing).ok().map(|s| s.f_bavail.saturating_mul(s.f_frsize));
        let inotify =
            number("/proc/sys/fs/inotify/max_user_watches").zip(number("/proc/sys/fs/inotify/max_user_instances"));
        HostFacts { memory, free_disk, inotify }
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB as f64)
}

/// Memory, disk and inotify limits, each against what a run needs.
fn host_checks(host: &HostFacts, docker_memory: Option<u64>) -> Vec<Check> {
    let check = |name: &str, low: bool, detail: String, fix: Option<String>| Check {
        name: name.into(),
        ok: true,
        will_download: false,
        low,
        detail,
        fix: fix.filter(|_| low),
    };
    let mut checks = Vec::new();
    let memory = match (docker_memory, host.memory) {
        (Some(m), _) => Some((m, "Docker's containers can use")),
        (None, Some(m)) => Some((m, "this machine has")),
        (None, None) => None,
    };
    if let Some((bytes, whose)) = memory {
        checks.push(check(
            "memory",
            bytes < MEMORY_NEEDED,
            format!("{} {whose}; a run needs about {}", gib(bytes), gib(MEMORY_NEEDED)),
            Some("give Docker more memory (Docker Desktop: Settings > Resources), or close what uses it".into()),
        ));
    }
    if let Some(free) = host.free_disk {
        checks.push(check(
            "disk",
            free < DISK_NEEDED,
            format!("{} free for target/; builds and a run need about {}", gib(free), gib(DISK_NEEDED)),
            Some("free space (`cargo clean` drops old builds; `docker system prune` old images)".into()),
        ));
    }
    if let Some((watches, instances)) = host.inotify {
        let (need_watches, need_instances) = INOTIFY_NEEDED;
        checks.push(check(
            "inotify",
            watches < need_watches || instances < need_instances,
            format!("max_user_watches {watches}, max_user_instances {instances}"),
            Some(format!(
                "kind's pods fail with \"too many open files\" below these: `sudo sysctl \
                 fs.inotify.max_user_watches={need_watches} fs.inotify.max_user_instances={need_instances}` \
                 (and in /etc/sysctl.conf to keep them)"
            )),
        ));
    }
    checks
}

/// The cgroup version Docker gives its containers, as `docker info` reports it. kind's node is
/// one of them, and kubelet 1.35 refuses to start on cgroup v1 unless told otherwise
/// (kubernetes/kubernetes#134298: `failCgroupV1` defaults to true), so on "1" the node of a
/// 1.35 profile never becomes ready. `None` for a value Docker does not document.
fn cgroup_check(version: &str) -> Option<Check> {
    let check = |ok: bool, detail: String, fix: Option<String>| Check {
        name: "cgroup-v2".into(),
        ok,
        will_download: false,
        low: false,
        detail,
        fix,
    };
    match version {
        "2" => Some(check(true, "Docker's containers run on cgroup v2".into(), None)),
        "1" => Some(check(
            false,
            "Docker's containers run on cgroup v1 (`docker info` CgroupVersion 1): kubelet 1.35 and later refuse \
             to start on it (kubernetes/kubernetes#134298), so the kind node of a profile on Kubernetes 1.35+ \
             never becomes ready"
                .into(),
            Some(
                "run Docker on a host booted with the unified cgroup hierarchy (cgroup v2; the default of current \
                 distributions, Docker Desktop and WSL 2 with systemd): on a systemd host add \
                 `systemd.unified_cgroup_hierarchy=1` to the kernel command line and reboot, then check that \
                 `docker info --format '{{.CgroupVersion}}'` prints 2"
                    .into(),
            ),
        )),
        _ => None,
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
    host: &HostFacts,
) -> Report {
    let answer = docker.ping(DOCKER_TIMEOUT).await;
    let docker_memory = answer.as_ref().ok().and_then(|info| info.memory);
    let cgroup = answer.as_ref().ok().and_then(|info| cgroup_check(info.cgroup_version.as_deref()?));
    let docker_check = match answer {
        Ok(info) => Check {
            name: "docker".into(),
            ok: true,
            will_download: false,
            low: false,
            detail: format!("daemon answers (Docker {})", info.version),
            fix: None,
        },
        Err(why) => Check {
            name: "docker".into(),
            ok: false,
            will_download: false,
            low: false,
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
            low: false,
            detail: format!("found at {}", path.display()),
            fix: None,
        },
        None => Check {
            name: "docker-cli".into(),
            ok: false,
            will_download: false,
            low: false,
            detail: "no `docker` on PATH; kind runs it to create the node container".into(),
            fix: Some(
                "install the Docker CLI (it comes with Docker Engine and Docker Desktop) and put it on PATH".into(),
            ),
        },
    };
    let mut checks = vec![docker_check, cli_check];
    checks.extend(cgroup);
    checks.extend(host_checks(host, docker_memory));
    for name in versions.tools.keys() {
        let artifact = match crate::tools::tool(versions, name) {
            Ok(a) => a,
            Err(e) => {
                checks.push(Check {
                    name: name.clone(),
                    ok: false,
                    will_download: false,
                    low: false,
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
                low: false,
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
                    low: false,
                    detail: format!(
                        "pinned {} {} will be downloaded by the run into {}{on_path}",
                        name,
                        artifact.version,
                        cache.dir_of(&artifact).display()
                    ),
                    fix: Some(format!(
                        "`{tool} tools` fetches it ahead of time from {} and verifies its sha256; for a machine \
                         without access, run `{tool} tools` elsewhere and copy the tool cache (target/tools, or \
                         KME2E_TOOLS_DIR) over: its files are used only if their sha256 matches the pins",
                        artifact.url,
                        tool = crate::command_name()
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

    struct Answer(Result<DockerInfo, String>);

    impl DockerProbe for Answer {
        async fn ping(&self, _: Duration) -> Result<DockerInfo, String> {
            self.0.clone()
        }
    }

    fn docker(version: &str, memory: Option<u64>) -> Answer {
        Answer(Ok(DockerInfo { version: version.into(), memory, cgroup_version: None }))
    }

    /// A machine with room to spare: host checks all pass.
    fn roomy() -> HostFacts {
        HostFacts { memory: Some(32 * GIB), free_disk: Some(100 * GIB), inotify: Some((1_048_576, 8192)) }
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
            &roomy(),
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
        let report =
            check(&docker("28.2.2", None), &runner, &v, &cache, Some(bin.path().as_os_str()), &HostFacts::default())
                .await;
        assert!(report.checks[1].ok, "{report}");
        assert!(
            report.checks[2].ok && report.checks[2].detail.contains("sha256 verified: v3.18.4+gabcdef"),
            "{report}"
        );
        assert!(report.checks[3].will_download, "kind on PATH is not the pinned one: {report}");
        assert!(report.checks[3].detail.contains("on PATH is not used (kind v0.29.0"), "{report}");
    }

    /// Memory (Docker's own limit first), free disk and inotify limits: below what a run needs
    /// each is LOW with its fix, and the verdict says "ready, but"; at or above, each is ok.
    #[tokio::test]
    async fn memory_disk_and_inotify_below_what_kind_needs_are_low_with_a_fix() {
        let empty = tempfile::tempdir().unwrap();
        let cache = crate::tools::Cache::at(empty.path());
        let runner = crate::command::Recording::default();
        let bin = tempfile::tempdir().unwrap();
        executable(bin.path(), "docker");
        let path = Some(bin.path().as_os_str());
        let tight = HostFacts { memory: Some(64 * GIB), free_disk: Some(3 * GIB), inotify: Some((8192, 128)) };
        // Docker Desktop's VM has 4 GiB although the machine has 64: Docker's figure counts.
        let report = check(&docker("28.2.2", Some(4 * GIB)), &runner, &versions(), &cache, path, &tight).await;
        let low: Vec<&str> = report.checks.iter().filter(|c| c.low).map(|c| c.name.as_str()).collect();
        assert_eq!(low, ["memory", "disk", "inotify"], "{report}");
        assert!(report.ready, "low resources do not make the machine unready: {report}");
        let text = report.to_string();
        assert!(
            text.contains("LOW     memory     4.0 GiB Docker's containers can use; a run needs about 8.0 GiB"),
            "{text}"
        );
        assert!(text.contains("fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512"), "{text}");
        assert!(
            text.ends_with(
                "verdict: ready, but low on memory, disk, inotify: runs may fail or be slow (see the fixes above)\n"
            ),
            "{text}"
        );

        let report = check(&docker("28.2.2", None), &runner, &versions(), &cache, path, &roomy()).await;
        assert!(report.checks.iter().all(|c| !c.low), "{report}");
        let text = report.to_string();
        assert!(text.contains("ok      memory     32.0 GiB this machine has"), "{text}");
        assert!(text.contains("ok      inotify    max_user_watches 1048576, max_user_instances 8192"), "{text}");
        assert!(!text.contains("fix: kind's pods"), "no fix shown for what is fine: {text}");
    }

    /// Docker's `CgroupVersion` "1": a problem (kubelet 1.35 will not start in the node) with
    /// the fix; "2": fine; not reported: no check, rather than a guess.
    #[tokio::test]
    async fn cgroup_v1_is_a_problem_with_a_fix_and_v2_is_fine() {
        let empty = tempfile::tempdir().unwrap();
        let cache = crate::tools::Cache::at(empty.path());
        let runner = crate::command::Recording::default();
        let bin = tempfile::tempdir().unwrap();
        executable(bin.path(), "docker");
        let path = Some(bin.path().as_os_str());
        let with = |cgroup: Option<&str>| {
            Answer(Ok(DockerInfo { version: "28.2.2".into(), memory: None, cgroup_version: cgroup.map(Into::into) }))
        };
        let report = check(&with(Some("1")), &runner, &versions(), &cache, path, &roomy()).await;
        let cgroup = report.checks.iter().find(|c| c.name == "cgroup-v2").expect("a cgroup check");
        assert!(!cgroup.ok && !report.ready, "{report}");
        assert!(cgroup.detail.contains("kubelet 1.35 and later refuse") && cgroup.detail.contains("#134298"));
        let text = report.to_string();
        assert!(text.contains("MISSING cgroup-v2  Docker's containers run on cgroup v1"), "{text}");
        assert!(text.contains("fix: run Docker on a host booted with the unified cgroup hierarchy"), "{text}");
        assert!(text.contains("systemd.unified_cgroup_hierarchy=1"), "{text}");
        assert!(text.ends_with("verdict: not ready: missing cgroup-v2\n"), "{text}");

        let report = check(&with(Some("2")), &runner, &versions(), &cache, path, &roomy()).await;
        assert!(report.ready, "{report}");
        assert!(report.to_string().contains("ok      cgroup-v2  Docker's containers run on cgroup v2"), "{report}");

        let report = check(&with(None), &runner, &versions(), &cache, path, &roomy()).await;
        assert!(report.checks.iter().all(|c| c.name != "cgroup-v2"), "{report}");
    }

    #[test]
    fn host_facts_are_read_from_this_machine() {
        let facts = HostFacts::read(Path::new(env!("CARGO_MANIFEST_DIR")));
        assert!(facts.free_disk.is_some());
        if cfg!(target_os = "linux") {
            assert!(facts.memory.is_some_and(|m| m > 0) && facts.inotify.is_some(), "{facts:?}");
        }
    }

    fn answered(stdout: &str) -> Result<crate::command::Output, crate::command::CommandError> {
        Ok(crate::command::Output { status: Some(0), stdout: stdout.into(), stderr: String::new() })
    }

    /// The daemon through the docker CLI: its version, and from `docker info` (the Engine API's
    /// SystemInfo, docs.docker.com/reference/api/engine: `MemTotal` bytes, `CgroupVersion`) its
    /// memory and cgroup version; without a daemon, the CLI's own error.
    #[tokio::test]
    async fn the_daemon_is_asked_through_the_docker_cli() {
        let info = r#"{"ID":"6f3c","Containers":2,"Driver":"overlay2","CgroupDriver":"systemd","CgroupVersion":"2","MemTotal":8232120320,"NCPU":2,"ServerVersion":"28.5.1","ClientInfo":{"Debug":false,"Context":"default"}}"#;
        let runner = crate::command::Recording::answering([answered("28.5.1\n"), answered(info)]);
        let found = DockerCliProbe(runner.clone()).ping(Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            found,
            DockerInfo { version: "28.5.1".into(), memory: Some(8_232_120_320), cgroup_version: Some("2".into()) }
        );
        assert_eq!(
            runner.argvs(),
            ["docker version --format {{.Server.Version}}", "docker info --format \"{{json .}}\""]
        );
        // `docker info` failing (or saying nothing of them) costs only the bonus figures.
        let runner = crate::command::Recording::answering([answered("27.3.1\n")]);
        let found = DockerCliProbe(runner).ping(Duration::from_secs(5)).await.unwrap();
        assert_eq!((found.version.as_str(), found.memory, found.cgroup_version), ("27.3.1", None, None));
        let down = crate::command::CommandError::Failed {
            argv: "docker version --format {{.Server.Version}}".into(),
            status: Some(1),
            stderr: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
                .into(),
        };
        let err = DockerCliProbe(crate::command::Recording::answering([Err(down)]))
            .ping(Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.contains("Cannot connect to the Docker daemon"), "{err}");
    }
}
