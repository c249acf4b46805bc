//! kind: the default provider. The harness writes the kind config itself (node image pinned by
//! digest, Kong's proxy NodePorts mapped to free loopback ports so parallel clusters do not
//! clash) and drives the `kind` CLI through the command runner, always with `--kubeconfig`
//! pointing into the run directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{ClusterError, RunDir};
use super::{PROXY_HTTP_NODE_PORT, PROXY_TLS_NODE_PORT};
use crate::command::{Invocation, Runner};

/// How long `kind create cluster` may take, node image pull included.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// `--wait` for the control plane, inside the create timeout.
pub const CONTROL_PLANE_WAIT: &str = "180s";
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(120);
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);
pub const EXPORT_LOGS_TIMEOUT: Duration = Duration::from_secs(180);

/// Loopback ports on the host that reach Kong's proxy NodePorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPorts {
    pub http: u16,
    pub https: u16,
}

impl HostPorts {
    /// Ports not chosen yet: what plans show (they are picked when a run starts), so the same
    /// inputs always give the same plan.
    pub const AT_RUN_TIME: HostPorts = HostPorts { http: 0, https: 0 };

    /// Two ports free right now (the OS picks them; kind binds them moments later).
    pub fn free() -> std::io::Result<HostPorts> {
        let a = std::net::TcpListener::bind("127.0.0.1:0")?;
        let b = std::net::TcpListener::bind("127.0.0.1:0")?;
        Ok(HostPorts { http: a.local_addr()?.port(), https: b.local_addr()?.port() })
    }
}

/// One kind cluster as the harness creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCluster {
    /// `<prefix>-<mesh>-<run>`.
    pub name: String,
    /// `kindest/node:<tag>@sha256:<digest>`.
    pub node_image: String,
    pub ports: HostPorts,
}

/// kind's limit comes from the node container's hostname `<name>-control-plane` (a DNS label).
const MAX_NAME: usize = 63 - "-control-plane".len();

impl KindCluster {
    pub fn name_for(prefix: &str, mesh: &str, run: &str) -> String {
        let mut name = format!("{prefix}-{mesh}-{run}");
        name.truncate(MAX_NAME);
        name
    }

    /// The kind config (kind.x-k8s.io/v1alpha4) as YAML.
    pub fn config(&self) -> String {
        let mapping = |container: u16, host: u16| json!({"containerPort": container, "hostPort": host, "listenAddress": "127.0.0.1", "protocol": "TCP"});
        let config = json!({
            "kind": "Cluster",
            "apiVersion": "kind.x-k8s.io/v1alpha4",
            "name": self.name,
            // The API server stays on loopback (kind's default address, stated so a
            // user-level kind default cannot widen it).
            "networking": {"apiServerAddress": "127.0.0.1"},
            "nodes": [{
                "role": "control-plane",
                "image": self.node_image,
                "extraPortMappings": [
                    mapping(PROXY_HTTP_NODE_PORT, self.ports.http),
                    mapping(PROXY_TLS_NODE_PORT, self.ports.https),
                ],
            }],
        });
        serde_saphyr::to_string(&config).unwrap_or_default()
    }

    pub fn config_file(run: &RunDir) -> PathBuf {
        run.path.join("kind-config.yaml")
    }

    /// `kind create cluster …` for this cluster in `run`.
    pub fn create(&self, kind: &Path, run: &RunDir) -> Invocation {
        let args = [
            "create".to_owned(),
            "cluster".to_owned(),
            "--name".to_owned(),
            self.name.clone(),
            "--config".to_owned(),
            Self::config_file(run).display().to_string(),
            "--kubeconfig".to_owned(),
            run.kubeconfig().display().to_string(),
            "--wait".to_owned(),
            CONTROL_PLANE_WAIT.to_owned(),
        ];
        isolated(Invocation::new(kind, args, CREATE_TIMEOUT), run)
    }
}

/// Point a command at the run's kubeconfig through the environment too, so nothing the
/// command starts falls back to `~/.kube/config`.
pub fn isolated(mut inv: Invocation, run: &RunDir) -> Invocation {
    inv.env.push(("KUBECONFIG".into(), run.kubeconfig().display().to_string()));
    // A user's KIND_EXPERIMENTAL_PROVIDER (podman, nerdctl) would put the node where the
    // harness's docker commands do not look.
    inv.clear_env_prefixes.push("KIND_".into());
    inv
}

/// The kind CLI, through a runner.
#[derive(Debug, Clone)]
pub struct Kind<R> {
    pub binary: PathBuf,
    pub runner: R,
}

impl<R: Runner> Kind<R> {
    pub async fn create(&self, cluster: &KindCluster, run: &RunDir) -> Result<(), ClusterError> {
        let file = KindCluster::config_file(run);
        std::fs::write(&file, cluster.config()).map_err(|source| ClusterError::Io { path: file, source })?;
        self.runner.run(&cluster.create(&self.binary, run)).await?;
        Ok(())
    }

    /// `kind delete cluster`; the run's kubeconfig is the one kind edits on the way out.
    pub async fn delete(&self, name: &str, run: &RunDir) -> Result<(), ClusterError> {
        let args = ["delete", "cluster", "--name", name, "--kubeconfig"].map(str::to_owned);
        let args = args.into_iter().chain([run.kubeconfig().display().to_string()]);
        self.runner.run(&isolated(Invocation::new(&self.binary, args, DELETE_TIMEOUT), run)).await?;
        Ok(())
    }

    /// Names of the kind clusters on this machine.
    pub async fn clusters(&self) -> Result<Vec<String>, ClusterError> {
        let out = self.runner.run(&Invocation::new(&self.binary, ["get", "clusters"], Duration::from_secs(30))).await?;
        Ok(out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
    }

    /// `kind export logs` (node journal, kubelet, containerd, every container) into the run's
    /// artifacts, `<run>/artifacts/kind-logs`.
    pub async fn export_logs(&self, name: &str, run: &RunDir) -> Result<PathBuf, ClusterError> {
        let dir = run.artifacts().join("kind-logs");
        let args =
            ["export".to_owned(), "logs".to_owned(), dir.display().to_string(), "--name".to_owned(), name.to_owned()];
        self.runner.run(&isolated(Invocation::new(&self.binary, args, EXPORT_LOGS_TIMEOUT), run)).await?;
        Ok(dir)
    }

    /// Preload images into the node: each is pulled on the host for the daemon's platform (the
    /// node's), saved to an archive of that platform only, and loaded with `kind load
    /// image-archive`. `kind load docker-image` fails under Docker's containerd image store,
    /// where a saved multi-platform image references blobs that were never pulled
    /// (kubernetes-sigs/kind#3795). Best effort, image by image: returns the images that could
    /// not be preloaded, with why (the node pulls those itself).
    ///
    /// `cancel` (Ctrl-C, `--budget`) stops it between the steps of each image and during any
    /// of them (a dropped docker or kind command is killed): the error says what was under way,
    /// and no archive is left behind.
    pub async fn load_images(
        &self,
        name: &str,
        images: &[String],
        docker: &impl ImagePuller,
        run: &RunDir,
        cancel: &CancellationToken,
    ) -> Result<Vec<(String, String)>, ClusterError> {
        const STOPPED: &str = "stopped";
        let stopped = |doing: &str| ClusterError::Stopped { doing: format!("preloading images: {doing}") };
        let platform = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(stopped("nothing pulled yet")),
            platform = docker.platform() => {
                platform.map_err(|reason| ClusterError::Pull { image: "(any)".into(), reason })?
            }
        };
        let dir = run.path.join("images");
        std::fs::create_dir_all(&dir).map_err(|source| ClusterError::Io { path: dir.clone(), source })?;
        let archive_of = |i: usize| dir.join(format!("{i:02}.tar"));
        // What each image's preload is doing (empty once done), said when the run stops.
        let doing = std::sync::Mutex::new(vec![String::new(); images.len()]);
        let now = |i: usize, what: String| {
            if let Some(slot) = doing.lock().unwrap_or_else(|e| e.into_inner()).get_mut(i) {
                *slot = what;
            }
        };
        let loads = images.iter().enumerate().map(|(i, image)| {
            let (platform, archive) = (&platform, archive_of(i));
            let now = &now;
            async move {
                // Each step starts only if the run goes on; a stop is said by the caller.
                let step = |what: String| {
                    now(i, what);
                    if cancel.is_cancelled() { Err(STOPPED.to_owned()) } else { Ok(()) }
                };
                let loaded = async {
                    step(format!("pulling {image}"))?;
                    docker.pull(image, platform).await?;
                    step(format!("saving {image}"))?;
                    docker.save(image, platform, &archive).await?;
                    step(format!("loading {image} into the node"))?;
                    let args = [
                        "load".to_owned(),
                        "image-archive".to_owned(),
                        archive.display().to_string(),
                        "--name".to_owned(),
                        name.to_owned(),
                    ];
                    let load = isolated(Invocation::new(&self.binary, args, LOAD_TIMEOUT), run);
                    self.runner.run(&load).await.map(drop).map_err(|e| e.to_string())
                }
                .await;
                // The archive was only a vehicle, whatever happened: the node keeps the image.
                let _ = std::fs::remove_file(&archive);
                // Done, or failed on its own (reported with why): nothing under way any more.
                if !matches!(&loaded, Err(why) if why == STOPPED) {
                    now(i, String::new());
                }
                loaded.err().map(|why| (image.clone(), why))
            }
        });
        let finished = tokio::select! {
            biased;
            () = cancel.cancelled() => None,
            failed = futures::future::join_all(loads) => Some(failed),
        };
        let busy = || -> Vec<String> {
            let doing = doing.lock().unwrap_or_else(|e| e.into_inner());
            doing.iter().filter(|d| !d.is_empty()).cloned().collect()
        };
        match finished {
            // Every image done: a stop that came after is the next phase's to notice.
            Some(failed) if !cancel.is_cancelled() || busy().is_empty() => Ok(failed.into_iter().flatten().collect()),
            _ => {
                // Loads dropped mid-way leave their archives.
                for i in 0..images.len() {
                    let _ = std::fs::remove_file(archive_of(i));
                }
                Err(stopped(&busy().join(", ")))
            }
        }
    }
}

/// The seam to the Docker daemon for image pulls and saves.
pub trait ImagePuller: Sync {
    /// The daemon's own `os/arch`: the platform of the node containers it runs.
    fn platform(&self) -> impl std::future::Future<Output = Result<String, String>> + Send;
    fn pull(&self, image: &str, platform: &str) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Write `image` for `platform` only into a tar archive at `archive`.
    fn save(
        &self,
        image: &str,
        platform: &str,
        archive: &Path,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

/// The docker CLI, through the runner: it follows the user's docker context and credentials,
/// as kind itself does, so pulls, saves and kind's loads all reach the same daemon.
pub struct DockerCli;

impl DockerCli {
    async fn docker(args: &[&str]) -> Result<String, String> {
        use crate::command::{Process, Runner};
        let inv = Invocation::new("docker", args.iter().copied(), LOAD_TIMEOUT);
        Process.run(&inv).await.map(|o| o.stdout).map_err(|e| e.to_string())
    }
}

impl ImagePuller for DockerCli {
    async fn platform(&self) -> Result<String, String> {
        let out = Self::docker(&["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"]).await?;
        let platform = out.trim().to_owned();
        if platform.contains('/') && !platform.contains(' ') {
            Ok(platform)
        } else {
            Err(format!("unexpected `docker version` answer: {platform}"))
        }
    }

    async fn pull(&self, image: &str, platform: &str) -> Result<(), String> {
        Self::docker(&["pull", "--quiet", "--platform", platform, image]).await.map(drop)
    }

    async fn save(&self, image: &str, platform: &str, archive: &Path) -> Result<(), String> {
        let out = archive.display().to_string();
        match Self::docker(&["image", "save", "--platform", platform, "--output", &out, image]).await {
            Ok(_) => Ok(()),
            // An older CLI has no `--platform` on save ("unknown flag"), an older daemon no API
            // for it ("requires API version 1.48"); such a Docker saves what it has pulled.
            Err(e) if e.contains("unknown flag") || e.contains("requires API version") => {
                Self::docker(&["image", "save", "--output", &out, image]).await.map(drop)
            }
            Err(e) => Err(e),
        }
    }
}
