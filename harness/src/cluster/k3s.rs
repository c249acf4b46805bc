//! `k3s`: a single-node k3s in a privileged container, through testcontainers. The container
//! lives as long as the run holds it; its kubeconfig is read from a bind mount in the run
//! directory and rewritten to the API server's mapped host port.
//!
//! Not exercised here (no Docker on the development machine); the kind provider is the default
//! and the one the nightly matrix runs.

use testcontainers::core::ContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT};

use super::kind::HostPorts;
use super::{ClusterError, RunDir};
use crate::stack::kong::{PROXY_HTTP_NODE_PORT, PROXY_TLS_NODE_PORT};

/// A running k3s container.
pub struct K3sCluster {
    pub container: ContainerAsync<K3s>,
}

impl K3sCluster {
    pub fn id(&self) -> &str {
        self.container.id()
    }
}

/// Split `rancher/k3s:<tag>@sha256:<digest>` into the name and the tag-with-digest.
fn split_image(image: &str) -> Option<(&str, &str)> {
    image.split_once(':')
}

/// Start k3s from `image` (pinned by digest), mapping Kong's NodePorts to `ports`, and write the
/// run's kubeconfig.
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
        .with_label("kme2e.dev/run", &run.run)
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
    super::existing::write_private(&run.kubeconfig(), &kubeconfig)?;
    Ok(K3sCluster { container })
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
