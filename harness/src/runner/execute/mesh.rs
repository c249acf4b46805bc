use super::*;
impl Context<'_> {
    /// The scenario namespace's pods, as the injection checks see them.
    pub(super) async fn pod_facts(&self, selector: Option<&str>) -> Result<Vec<PodFacts>, String> {
        let pods: Api<Pod> = Api::namespaced(self.live.client.clone(), self.namespace);
        let params = selector.map_or_else(ListParams::default, |s| ListParams::default().labels(s));
        let list = pods.list(&params).await.map_err(|e| format!("listing pods in {}: {e}", self.namespace))?;
        Ok(list
            .items
            .iter()
            // A pod being deleted is on its way out (possibly restarted by the check below).
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| PodFacts {
                name: p.metadata.name.clone().unwrap_or_default(),
                labels: p.metadata.labels.clone().unwrap_or_default(),
                annotations: p.metadata.annotations.clone().unwrap_or_default(),
                in_mesh: k8s::in_mesh(p, self.live.mesh),
                owned: p.metadata.owner_references.as_ref().is_some_and(|o| !o.is_empty()),
            })
            .collect())
    }

    /// After the fixtures are applied on a meshed profile: every workload has pods, and each pod
    /// whose namespace (or own opt-in) asks for the proxy carries it. A pod that raced the
    /// injector is restarted once; if its replacement also lacks the proxy the setup fails
    /// naming it (see `check::injection`).
    pub(super) async fn verify_injection(&self, files: &[String], within: Duration) -> StepResult {
        let mesh = self.live.mesh;
        let Some(container) = mesh.member_mark() else {
            return Ok("no mesh, no injection to verify".into());
        };
        let injects = self.loaded.scenario.namespace.injects(mesh);
        // The pod templates' selectors of the workloads the fixtures create in this namespace.
        let workloads: Vec<(String, BTreeMap<String, String>)> = self
            .manifests(files)?
            .iter()
            .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "StatefulSet" | "DaemonSet")))
            .filter(|o| o.pointer("/metadata/namespace").and_then(Value::as_str).is_none_or(|ns| ns == self.namespace))
            .map(|o| {
                let selector = o
                    .pointer("/spec/selector/matchLabels")
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                    .unwrap_or_default();
                (o["metadata"]["name"].as_str().unwrap_or_default().to_owned(), selector)
            })
            .collect();
        let deadline = tokio::time::Instant::now() + within;
        let mut restarted: Vec<String> = Vec::new();
        loop {
            let pods = self.pod_facts(None).await?;
            let waiting: Vec<&str> = workloads
                .iter()
                .filter(|(_, sel)| !pods.iter().any(|p| sel.iter().all(|(k, v)| p.labels.get(k) == Some(v))))
                .map(|(name, _)| name.as_str())
                .collect();
            let missing = crate::check::injection::missing_proxy(mesh, injects, &pods);
            let seen = if !waiting.is_empty() {
                format!("no pods yet for {}", waiting.join(", "))
            } else if missing.is_empty() {
                let restarts = if restarted.is_empty() {
                    String::new()
                } else {
                    format!(" (restarted {} that started without it)", restarted.join(", "))
                };
                return Ok(format!("{} pod(s) checked for {container}{restarts}", pods.len()));
            } else if !restarted.is_empty() || missing.iter().any(|p| !p.owned) {
                let names: Vec<&str> = missing.iter().map(|p| p.name.as_str()).collect();
                return Err(StepFailure::error(format!(
                    "pod(s) {} lack {container} although their namespace asks for it{}; the mesh's injector did not inject them",
                    names.join(", "),
                    if restarted.is_empty() {
                        " (no controller to restart them)".to_owned()
                    } else {
                        format!(", even after restarting {}", restarted.join(", "))
                    }
                )));
            } else {
                for pod in &missing {
                    k8s::delete(&self.live.client, "v1", "Pod", &pod.name, Some(self.namespace))
                        .await
                        .map_err(|e| format!("restarting {} (started without {container}): {e}", pod.name))?;
                    restarted.push(pod.name.clone());
                }
                format!("restarted {} (started without {container})", restarted.join(", "))
            };
            if tokio::time::Instant::now() + self.live.interval > deadline {
                return Err(StepFailure::error(format!(
                    "pods not ready for the mesh check within {within:?}; last seen: {seen}"
                )));
            }
            tokio::time::sleep(self.live.interval).await;
        }
    }

    pub(super) async fn mesh_membership(&self, s: &MeshMembershipStep) -> StepResult {
        let selector = s.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let mesh = self.live.mesh;
        let what = if s.meshed { "carry" } else { "do not carry" };
        let expected = format!("pods {selector} {what} the mesh proxy");
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval, &expected, || async {
            match self.pod_facts(Some(&selector)).await {
                Ok(pods) => {
                    last.judged();
                    crate::check::injection::membership(mesh, &pods, s.meshed, &selector)
                }
                Err(e) => {
                    last.errored();
                    Attempt::Fail(Seen(e))
                }
            }
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }
}
