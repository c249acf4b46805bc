//! The upgrades a run can make for `upgrade` steps: the installer run again with the actions
//! `stack` plans for each (`mesh_upgrade`, `mesh_canary`, `kong_upgrade`), with the same helm,
//! cluster and run directory as the install. Only on a cluster the harness installed:
//! `--no-install` and a cluster of the user's never get one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cluster::RunDir;
use crate::command::Runner;
use crate::profile::{Profile, Versions};
use crate::runner::execute::{ProxyAt, StackUpgrade, Upgraded};
use crate::scenario::{MeshStrategy, UpgradePart};
use crate::stack::Action;
use crate::stack::install::{Installer, ProxyCheck};
use crate::tools::{Cache, Fetch};

/// What every upgrade of a run shares: how it reaches the cluster.
#[derive(Clone)]
pub struct UpgradeContext<R> {
    pub runner: R,
    pub helm: PathBuf,
    pub client: kube::Client,
    pub run: RunDir,
}

/// One upgrade: its actions, then (a canary) the scenario's namespaces moved to the revision.
pub struct HelmUpgrade<R> {
    context: UpgradeContext<R>,
    versions: Versions,
    actions: Vec<Action>,
    /// Under a canary, the revision the scenario's namespaces move to.
    canary_revision: Option<String>,
    /// What the data plane must run once restarted; none for Kong's chart.
    proxy: Option<ProxyAt>,
    /// `istio 1.30.5 -> 1.31.1 (profile istio-1-31)`.
    describe: String,
}

/// The upgrades `profile` has a newer pin for, by the part they move, planned from the
/// actions the run installed (`installed`, the user's values in them).
pub fn upgrades_for<R: Runner + Clone + 'static>(
    context: &UpgradeContext<R>,
    profile: &Profile,
    installed: &[Action],
) -> BTreeMap<UpgradePart, Arc<dyn StackUpgrade>> {
    let mut out: BTreeMap<UpgradePart, Arc<dyn StackUpgrade>> = BTreeMap::new();
    let mesh_version = |p: &Profile| p.pins.mesh_version.clone().unwrap_or_default();
    let helm = |actions, canary_revision, proxy, describe| -> Arc<dyn StackUpgrade> {
        Arc::new(HelmUpgrade {
            context: context.clone(),
            versions: profile.versions.clone(),
            actions,
            canary_revision,
            proxy,
            describe,
        })
    };
    if let Some(to) = profile.next_mesh_pin() {
        let describe = |how: &str| {
            format!("{} {} -> {}{how} (profile {})", profile.mesh(), mesh_version(profile), mesh_version(&to), to.name)
        };
        let proxy = ProxyAt { version: mesh_version(&to), revision: None };
        out.insert(
            UpgradePart::Mesh(MeshStrategy::InPlace),
            helm(crate::stack::mesh_upgrade(installed, &to), None, Some(proxy.clone()), describe(" in place")),
        );
        if let Some((actions, revision)) = crate::stack::mesh_canary(installed, &to, &profile.versions.kong.namespace) {
            let proxy = ProxyAt { revision: Some(revision.clone()), ..proxy };
            let how = format!(" as canary revision {revision}");
            out.insert(
                UpgradePart::Mesh(MeshStrategy::Canary),
                helm(actions, Some(revision), Some(proxy), describe(&how)),
            );
        }
    }
    if let Some(to) = profile.next_kong_pin()
        && let Some(actions) = crate::stack::kong_upgrade(installed, &to)
    {
        let describe = format!(
            "Kong's chart {} {} -> {} (profile {})",
            profile.versions.kong.chart,
            profile.kong_chart_version(),
            to.kong_chart_version(),
            to.name
        );
        out.insert(UpgradePart::Kong, helm(actions, None, None, describe));
    }
    out
}

/// The upgrade's actions download nothing and ask nothing of Kong's proxy.
struct NotUsed;

impl Fetch for NotUsed {
    async fn fetch(&self, url: &str, _: &mut (dyn std::io::Write + Send), _: u64) -> Result<(), String> {
        Err(format!("an upgrade downloads nothing ({url})"))
    }
}

impl ProxyCheck for NotUsed {
    async fn answers(&self, url: &str) -> Result<u16, String> {
        Err(format!("an upgrade does not wait on Kong's proxy ({url})"))
    }
}

impl<R: Runner + Clone + 'static> StackUpgrade for HelmUpgrade<R> {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn upgrade<'a>(
        &'a self,
        namespaces: &'a [String],
        deadline: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Upgraded, String>> + Send + 'a>> {
        Box::pin(async move {
            let context = &self.context;
            let cache = Cache::at(context.run.path.join("upgrade-cache"));
            let installer = Installer {
                runner: &context.runner,
                helm: &context.helm,
                client: context.client.clone(),
                run: &context.run,
                versions: &self.versions,
                cache: &cache,
                fetch: &NotUsed,
                proxy_check: &NotUsed,
                proxy: String::new(),
                // Each gate as long as the install's, within the step's deadline.
                gate_deadline: crate::stack::install::GATE_DEADLINE.min(deadline),
                shared_cluster: false,
            };
            let mut actions = self.actions.clone();
            if let Some(revision) = &self.canary_revision {
                actions.extend(crate::stack::canary_relabel(namespaces, revision));
            }
            let mut done = Vec::new();
            installer
                .install(&actions, &CancellationToken::new(), |step| done.push(step.to_owned()))
                .await
                .map_err(|e| e.to_string())?;
            Ok(Upgraded { done: done.join("; "), proxy: self.proxy.clone() })
        })
    }
}
