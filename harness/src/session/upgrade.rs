//! The mesh upgrade a run can make for an `upgrade` step: the installer run again on the mesh's
//! releases at the next pin (`stack::mesh_upgrade`), with the same helm, cluster and run
//! directory as the install. Only on a cluster the harness installed: `--no-install` never gets
//! one.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cluster::RunDir;
use crate::command::Runner;
use crate::profile::{Profile, Versions};
use crate::runner::execute::MeshUpgrade;
use crate::stack::Action;
use crate::stack::install::{Installer, ProxyCheck};
use crate::tools::{Cache, Fetch};

/// Helm upgrades of the mesh's releases, then its gates.
pub struct HelmMeshUpgrade<R> {
    pub runner: R,
    pub helm: PathBuf,
    pub client: kube::Client,
    pub run: RunDir,
    pub versions: Versions,
    pub actions: Vec<Action>,
    /// `istio 1.30.5`, `istio 1.31.1 (profile istio-1-31)`.
    pub from: String,
    pub to: String,
}

impl<R: Runner + Clone + 'static> HelmMeshUpgrade<R> {
    /// The upgrade from `profile` to its next mesh pin, with the plan's own releases (the
    /// user's values in them) as `installed`; none when nothing newer is pinned.
    pub fn next(
        runner: R,
        helm: PathBuf,
        client: kube::Client,
        run: RunDir,
        profile: &Profile,
        installed: &[Action],
    ) -> Option<Self> {
        let to = profile.next_mesh_pin()?;
        let version = |p: &Profile| p.pins.mesh_version.clone().unwrap_or_default();
        Some(HelmMeshUpgrade {
            runner,
            helm,
            client,
            run,
            versions: profile.versions.clone(),
            actions: crate::stack::mesh_upgrade(installed, &to),
            from: format!("{} {}", profile.mesh(), version(profile)),
            to: format!("{} {} (profile {})", to.mesh(), version(&to), to.name),
        })
    }
}

/// The upgrade's actions download nothing and ask nothing of Kong's proxy.
struct NotUsed;

impl Fetch for NotUsed {
    async fn fetch(&self, url: &str, _: &mut (dyn std::io::Write + Send), _: u64) -> Result<(), String> {
        Err(format!("a mesh upgrade downloads nothing ({url})"))
    }
}

impl ProxyCheck for NotUsed {
    async fn answers(&self, url: &str) -> Result<u16, String> {
        Err(format!("a mesh upgrade does not wait on Kong's proxy ({url})"))
    }
}

impl<R: Runner + Clone + 'static> MeshUpgrade for HelmMeshUpgrade<R> {
    fn describe(&self) -> String {
        format!("{} -> {}", self.from, self.to)
    }

    fn upgrade<'a>(
        &'a self,
        deadline: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            let cache = Cache::at(self.run.path.join("upgrade-cache"));
            let installer = Installer {
                runner: &self.runner,
                helm: &self.helm,
                client: self.client.clone(),
                run: &self.run,
                versions: &self.versions,
                cache: &cache,
                fetch: &NotUsed,
                proxy_check: &NotUsed,
                proxy: String::new(),
                // Each gate as long as the install's, within the step's deadline.
                gate_deadline: crate::stack::install::GATE_DEADLINE.min(deadline),
                shared_cluster: false,
            };
            let mut done = Vec::new();
            installer
                .install(&self.actions, &CancellationToken::new(), |step| done.push(step.to_owned()))
                .await
                .map_err(|e| e.to_string())?;
            Ok(done.join("; "))
        })
    }
}
