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
    /// Kong's gateway pods (namespace, label selector) when the upgrade must roll them: Kong's
    /// chart upgrade is seen to happen only when the gateway rolls onto a new pod template.
    rolls: Option<(String, String)>,
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
    let helm = |actions, canary_revision, proxy, rolls, describe| -> Arc<dyn StackUpgrade> {
        Arc::new(HelmUpgrade {
            context: context.clone(),
            versions: profile.versions.clone(),
            actions,
            canary_revision,
            proxy,
            rolls,
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
            helm(crate::stack::mesh_upgrade(installed, &to), None, Some(proxy.clone()), None, describe(" in place")),
        );
        if let Some((actions, revision)) = crate::stack::mesh_canary(installed, &to, &profile.versions.kong.namespace) {
            let proxy = ProxyAt { revision: Some(revision.clone()), ..proxy };
            let how = format!(" as canary revision {revision}");
            out.insert(
                UpgradePart::Mesh(MeshStrategy::Canary),
                helm(actions, Some(revision), Some(proxy), None, describe(&how)),
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
        let kong = &profile.versions.kong;
        let gateway = (kong.namespace.clone(), crate::stack::kong_gateway_selector(&kong.release));
        out.insert(UpgradePart::Kong, helm(actions, None, None, Some(gateway), describe));
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
            let client = &context.client;
            let mut before = Vec::new();
            if let Some((namespace, selector)) = &self.rolls {
                let found =
                    crate::k8s::deployments_running(client, namespace, selector).await.map_err(|e| e.to_string())?;
                if found.is_empty() {
                    return Err(format!("no Deployment in {namespace} runs Kong's gateway pods ({selector})"));
                }
                for (name, _) in found {
                    before.push((namespace.clone(), name.clone(), template_revision(client, namespace, &name).await?));
                }
            }
            let mut done = Vec::new();
            installer
                .install(&actions, &CancellationToken::new(), |step| done.push(step.to_owned()))
                .await
                .map_err(|e| e.to_string())?;
            // helm's `--wait=legacy` has waited for the rollout: the new ReplicaSet is there by now
            // or never will be; a short deadline keeps the step's own deadline from hiding why.
            let deadline = installer.gate_deadline.min(ROLL_DEADLINE);
            for (namespace, name, revision) in before {
                done.push(rolled_past(client, &namespace, &name, revision.as_deref(), deadline).await?);
            }
            Ok(Upgraded { done: done.join("; "), proxy: self.proxy.clone() })
        })
    }
}

/// How long after Kong's upgrade its gateway may take to show its new ReplicaSet rolled out.
const ROLL_DEADLINE: Duration = Duration::from_secs(60);

/// The Deployment's `deployment.kubernetes.io/revision`: the deployment controller raises it
/// when a new pod template gets its ReplicaSet, and only then (kubernetes/kubernetes
/// pkg/controller/deployment/sync.go, `SetNewReplicaSetAnnotations`).
async fn template_revision(client: &kube::Client, namespace: &str, name: &str) -> Result<Option<String>, String> {
    let deployment =
        crate::k8s::get(client, "apps/v1", "Deployment", name, Some(namespace)).await.map_err(|e| e.to_string())?;
    Ok(deployment
        .and_then(|d| d.pointer("/metadata/annotations/deployment.kubernetes.io~1revision").cloned())
        .and_then(|r| r.as_str().map(str::to_owned)))
}

/// Whether Deployment `namespace/name` rolled out a pod template newer than the one of
/// ReplicaSet revision `before` within `deadline`: an upgrade that left the template as it was
/// (the same revision) changed nothing in the pods.
async fn rolled_past(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    before: Option<&str>,
    deadline: Duration,
) -> Result<String, String> {
    use crate::check::converge::{Attempt, eventually};
    let was = before.unwrap_or("none");
    let expected =
        format!("Deployment {namespace}/{name} rolled out a new pod template (ReplicaSet revision {was} before)");
    let outcome = eventually(deadline, crate::stack::install::GATE_INTERVAL, &expected, || async {
        match template_revision(client, namespace, name).await {
            Ok(now) if now.as_deref() == before => Attempt::Fail(crate::k8s::Seen(format!(
                "still at ReplicaSet revision {was}: the upgrade changed nothing in its pods' template"
            ))),
            Ok(_) => match crate::k8s::rolled_out(client, "Deployment", namespace, name, 0).await {
                Ok(attempt) => attempt,
                Err(e) => Attempt::Fail(crate::k8s::Seen(e.to_string())),
            },
            Err(e) => Attempt::Fail(crate::k8s::Seen(e)),
        }
    })
    .await;
    outcome.map(|_| expected.clone()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rollout, deployment, kube_mock};

    fn at(revision: &str, rollout: Rollout) -> serde_json::Value {
        let mut d = deployment("kong-gateway", "kong", rollout);
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = serde_json::json!(revision);
        d
    }

    /// Kong's upgrade is seen only when the gateway rolls a new pod template: a Deployment still
    /// at the ReplicaSet revision it had before fails, saying the upgrade changed nothing; a new
    /// revision not rolled out yet fails; a new one rolled out passes.
    #[tokio::test]
    async fn kongs_upgrade_must_roll_the_gateway() {
        let deadline = Duration::from_millis(50);
        for (answer, expected) in [
            (
                at("1", Rollout::Done),
                Err("still at ReplicaSet revision 1: the upgrade changed nothing in its pods' template"),
            ),
            (at("2", Rollout::OldPodLeft), Err("2 updated")),
            (at("2", Rollout::Done), Ok("rolled out a new pod template (ReplicaSet revision 1 before)")),
        ] {
            let (client, _) = kube_mock(move |req| match req.path.as_str() {
                "/apis/apps/v1" => (200, crate::testing::resources("apps/v1", &[("deployments", "Deployment", true)])),
                _ => (200, answer.clone()),
            });
            let got = rolled_past(&client, "kong", "kong-gateway", Some("1"), deadline).await;
            match (got, expected) {
                (Ok(seen), Ok(want)) => assert!(seen.contains(want), "{seen}"),
                (Err(seen), Err(want)) => assert!(seen.contains(want), "{seen}"),
                (got, want) => panic!("{got:?}, expected {want:?}"),
            }
        }
    }
}
