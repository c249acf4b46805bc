//! The outside world a run touches, as one seam: the commands it runs (kind, helm, docker), the
//! downloads, the Docker daemon, Kong's proxy from the host and the API server. [`RealWorld`] is
//! the machine; tests substitute a world of scripted commands and loopback servers, so the whole
//! run ([`super::run`]) is tested end to end without Docker or a network.

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::cluster::HostPorts;
use crate::cluster::kind::{DockerCli, ImagePuller};
use crate::command::{Process, Runner};
use crate::preflight::{DockerCliProbe, DockerProbe};
use crate::profile::Profile;
use crate::stack::install::{HttpProxyCheck, ProxyCheck};
use crate::tools::{Cache, Fetch, Http};

use super::SessionError;

/// Everything a run reaches outside the process.
pub trait World: Sync {
    /// Runs kind, helm and docker.
    type Runner: Runner + Clone + 'static;
    /// Downloads pinned artifacts (the Gateway API CRDs) into the tool cache.
    type Fetch: Fetch;
    /// Pulls and saves images for kind's preload.
    type Puller: ImagePuller;
    /// Asks whether Kong's proxy answers from the host.
    type ProxyCheck: ProxyCheck;
    /// Asks whether a Docker daemon answers.
    type Docker: DockerProbe + Sync;

    fn runner(&self) -> Self::Runner;
    fn fetcher(&self) -> Result<Self::Fetch, SessionError>;
    fn puller(&self) -> &Self::Puller;
    fn proxy_check(&self) -> &Self::ProxyCheck;
    fn docker(&self) -> &Self::Docker;

    /// The pinned kind and helm binaries, downloaded and verified when needed (see
    /// [`super::tools`]); a tool a run never starts is its bare name.
    fn tools(
        &self,
        profile: &Profile,
        cache: &Cache,
        needs_kind: bool,
        needs_helm: bool,
    ) -> impl Future<Output = Result<(PathBuf, PathBuf), SessionError>> + Send;

    /// A kube client for the run's kubeconfig.
    fn client(&self, kubeconfig: &Path) -> impl Future<Output = Result<kube::Client, SessionError>> + Send;

    /// Two loopback ports for Kong's proxy, free now.
    fn free_ports(&self) -> Result<HostPorts, SessionError>;

    /// Where pinned downloads are cached for the checkout at `root`.
    fn tool_cache(&self, root: &Path) -> Cache;
}

/// This machine: processes, HTTPS, the Docker daemon, the API server of the run's kubeconfig.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealWorld;

impl World for RealWorld {
    type Runner = Process;
    type Fetch = Http;
    type Puller = DockerCli;
    type ProxyCheck = HttpProxyCheck;
    type Docker = DockerCliProbe;

    fn runner(&self) -> Process {
        Process
    }

    fn fetcher(&self) -> Result<Http, SessionError> {
        Ok(Http::new()?)
    }

    fn puller(&self) -> &DockerCli {
        &DockerCli
    }

    fn proxy_check(&self) -> &HttpProxyCheck {
        &HttpProxyCheck
    }

    fn docker(&self) -> &DockerCliProbe {
        static DOCKER: DockerCliProbe = DockerCliProbe(Process);
        &DOCKER
    }

    async fn tools(
        &self,
        profile: &Profile,
        cache: &Cache,
        needs_kind: bool,
        needs_helm: bool,
    ) -> Result<(PathBuf, PathBuf), SessionError> {
        super::tools(profile, cache, needs_kind, needs_helm).await
    }

    async fn client(&self, kubeconfig: &Path) -> Result<kube::Client, SessionError> {
        super::client_for(kubeconfig).await
    }

    fn tool_cache(&self, root: &Path) -> Cache {
        super::tool_cache(root)
    }

    fn free_ports(&self) -> Result<HostPorts, SessionError> {
        HostPorts::free()
            .map_err(|e| SessionError::Options(format!("cannot find free loopback ports for Kong's proxy: {e}")))
    }
}
