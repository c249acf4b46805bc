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

/// Through bollard.
pub struct BollardContainers;

impl Containers for BollardContainers {
    async fn remove_run(&self, run: &str) -> Result<Vec<String>, String> {
        let docker = bollard::Docker::connect_with_defaults().map_err(|e| e.to_string())?;
        let filters = std::collections::HashMap::from([("label".to_owned(), vec![format!("{RUN_LABEL}={run}")])]);
        let options = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let found = docker.list_containers(Some(options)).await.map_err(|e| e.to_string())?;
        let mut removed = Vec::new();
        for id in found.into_iter().filter_map(|c| c.id) {
            let force =
                bollard::query_parameters::RemoveContainerOptions { force: true, v: true, ..Default::default() };
            docker.remove_container(&id, Some(force)).await.map_err(|e| format!("{id}: {e}"))?;
            removed.push(id);
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
}
