//! `k3s`: a single-node k3s in a privileged container, through testcontainers. The container
//! lives as long as the run holds it; its kubeconfig is read from a bind mount in the run
//! directory and rewritten to the API server's mapped host port.
//!
//! A cargo feature (`k3s`, off by default): without it the provider is refused before anything
//! starts, saying how to build with it. Not exercised here (no Docker on the development
//! machine); the kind provider is the default and the one the nightly matrix runs.

use super::kind::HostPorts;
use super::{ClusterError, RunDir};

pub use container::{K3sCluster, start};

/// Whether this build has the k3s provider (cargo feature `k3s`).
pub const BUILT: bool = cfg!(feature = "k3s");

/// Why a build without the feature cannot start k3s, and how to get one that can.
pub const NOT_BUILT: &str = "this kme2e was built without the k3s provider (it is a cargo feature, off by default \
     to keep the build small): run `cargo run --package kme2e --features k3s -- ...` instead of `cargo xtask ...`";

/// Split `rancher/k3s:<tag>@sha256:<digest>` into the name and the tag-with-digest.
#[cfg(any(test, feature = "k3s"))]
fn split_image(image: &str) -> Option<(&str, &str)> {
    image.split_once(':')
}

#[cfg(feature = "k3s")]
mod container {
    use testcontainers::core::ContainerPort;
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{ContainerAsync, ImageExt};
    use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT};

    use super::super::{PROXY_HTTP_NODE_PORT, PROXY_TLS_NODE_PORT};
    use super::{ClusterError, HostPorts, RUN_LABEL, RunDir, split_image};

    /// A running k3s container.
    pub struct K3sCluster {
        container: ContainerAsync<K3s>,
    }

    impl K3sCluster {
        pub fn id(&self) -> &str {
            self.container.id()
        }

        /// Stop and remove the container.
        pub async fn remove(self) -> Result<(), ClusterError> {
            self.container.rm().await.map_err(|e| ClusterError::Provider { provider: "k3s", reason: e.to_string() })
        }
    }

    /// Start k3s from `image` (pinned by digest), mapping Kong's NodePorts to `ports`, and write
    /// the run's kubeconfig.
    pub async fn start(image: &str, ports: HostPorts, run: &RunDir) -> Result<K3sCluster, ClusterError> {
        let (name, tag) = split_image(image)
            .ok_or_else(|| ClusterError::Provider { provider: "k3s", reason: format!("image `{image}` has no tag") })?;
        let conf = run.path.join("k3s");
        std::fs::create_dir_all(&conf).map_err(|source| ClusterError::Io { path: conf.clone(), source })?;
        let container = K3s::default()
            .with_conf_mount(&conf)
            .with_name(name)
            .with_tag(tag)
            .with_privileged(true)
            .with_userns_mode("host")
            .with_label(RUN_LABEL, &run.run)
            .with_mapped_port(ports.http, ContainerPort::Tcp(PROXY_HTTP_NODE_PORT))
            .with_mapped_port(ports.https, ContainerPort::Tcp(PROXY_TLS_NODE_PORT))
            .start()
            .await
            .map_err(|e| ClusterError::Provider { provider: "k3s", reason: e.to_string() })?;
        let api_port = container
            .get_host_port_ipv4(KUBE_SECURE_PORT)
            .await
            .map_err(|e| ClusterError::Provider { provider: "k3s", reason: e.to_string() })?;
        let kubeconfig = container
            .image()
            .read_kube_config()
            .map_err(|source| ClusterError::Io { path: conf.join("k3s.yaml"), source })?;
        // k3s writes its in-container address; the host reaches it through the mapped port.
        let kubeconfig = kubeconfig.replace("https://127.0.0.1:6443", &format!("https://127.0.0.1:{api_port}"));
        super::super::existing::write_private(&run.kubeconfig(), &kubeconfig)?;
        Ok(K3sCluster { container })
    }
}

/// Without the feature: no container can exist, and starting one says how to get a build
/// that can.
#[cfg(not(feature = "k3s"))]
mod container {
    use super::{ClusterError, HostPorts, NOT_BUILT, RunDir};

    /// No k3s container exists in this build.
    pub enum K3sCluster {}

    impl K3sCluster {
        pub fn id(&self) -> &str {
            match *self {}
        }

        pub async fn remove(self) -> Result<(), ClusterError> {
            match self {}
        }
    }

    pub async fn start(_: &str, _: HostPorts, _: &RunDir) -> Result<K3sCluster, ClusterError> {
        Err(ClusterError::Provider { provider: "k3s", reason: NOT_BUILT.into() })
    }
}

/// The label every harness-started container carries: the run it belongs to.
pub const RUN_LABEL: &str = "kme2e.dev/run";

/// The seam to Docker for removing a run's containers (`down` after an interrupted k3s run).
pub trait Containers: Sync {
    /// Remove every container labelled with run `run`; returns their ids.
    fn remove_run(&self, run: &str) -> impl std::future::Future<Output = Result<Vec<String>, String>> + Send;
}

/// Through the docker CLI (as kind and the image preload reach the daemon): `docker ps -aq
/// --filter label=...`, then `docker rm --force --volumes` for each.
#[derive(Debug, Clone, Copy, Default)]
pub struct CliContainers<R = crate::command::Process>(pub R);

impl<R: crate::command::Runner> Containers for CliContainers<R> {
    async fn remove_run(&self, run: &str) -> Result<Vec<String>, String> {
        use crate::command::Invocation;
        let deadline = std::time::Duration::from_secs(60);
        let filter = format!("label={RUN_LABEL}={run}");
        let listed = Invocation::new("docker", ["ps", "--all", "--quiet", "--no-trunc", "--filter", &filter], deadline);
        let listed = self.0.run(&listed).await.map_err(|e| e.to_string())?;
        let mut removed = Vec::new();
        for id in listed.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
            // An id is hex; anything else is not passed on as an argument.
            if !id.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("`docker ps` listed `{}`, which is no container id", crate::names::printable(id)));
            }
            let rm = Invocation::new("docker", ["rm", "--force", "--volumes", id], deadline);
            self.0.run(&rm).await.map_err(|e| format!("{id}: {e}"))?;
            removed.push(id.to_owned());
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_image_splits_into_name_and_tag_with_digest() {
        let (name, tag) = split_image("rancher/k3s:v1.35.1-k3s1@sha256:6349").unwrap();
        assert_eq!((name, tag), ("rancher/k3s", "v1.35.1-k3s1@sha256:6349"));
    }

    fn listed(stdout: &str) -> Result<crate::command::Output, crate::command::CommandError> {
        Ok(crate::command::Output { status: Some(0), stdout: stdout.into(), stderr: String::new() })
    }

    /// `down` finds a run's containers by label and removes each by id; a line that is no id
    /// is never passed to `docker rm`.
    #[tokio::test]
    async fn a_runs_containers_are_found_by_label_and_removed() {
        let ids = "3f4e1c2b9a7d6e5f4c3b2a1908f7e6d5c4b3a2918f7e6d5c4b3a29180f7e6d5c\n";
        let runner = crate::command::Recording::answering([listed(ids), listed("")]);
        let removed = CliContainers(runner.clone()).remove_run("r1").await.unwrap();
        assert_eq!(removed, [ids.trim()]);
        let argvs = runner.argvs();
        assert_eq!(argvs[0], "docker ps --all --quiet --no-trunc --filter label=kme2e.dev/run=r1");
        assert_eq!(argvs[1], format!("docker rm --force --volumes {}", ids.trim()));
        let runner = crate::command::Recording::answering([listed("--privileged\n")]);
        assert!(CliContainers(runner.clone()).remove_run("r1").await.is_err());
        assert_eq!(runner.argvs().len(), 1, "nothing removed");
    }
}
