use super::*;

/// Where the stack's ztunnel runs (`stack::environment`) and its pods' label.
const ZTUNNEL_NAMESPACE: &str = "istio-system";
const ZTUNNEL_SELECTOR: &str = "app=ztunnel";
impl Context<'_> {
    pub(super) async fn metrics(&self, s: &MetricsStep) -> StepResult {
        let client = &self.live.client;
        let (namespace, selector, port, path) = match &s.target {
            // Kong's status listener (kong chart `status.http.containerPort`, 8100).
            MetricsTarget::Kong => (self.live.kong_namespace.clone(), self.live.kong_selector.clone(), 8100, "metrics"),
            MetricsTarget::MeshProxy { selector } => {
                let selector = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
                match self.live.mesh {
                    Mesh::Istio => (self.namespace.to_owned(), selector, 15020, "stats/prometheus"),
                    Mesh::Linkerd => (self.namespace.to_owned(), selector, 4191, "metrics"),
                    Mesh::None => return Err("no mesh proxy on mesh none".into()),
                    Mesh::IstioAmbient => {
                        return Err(
                            "no mesh proxy in pods in ambient mode: read ztunnel's with `target: ztunnel`".into()
                        );
                    }
                }
            }
            // ztunnel's stats port and path (istio/ztunnel 1.30.3 src/config.rs
            // `DEFAULT_STATS_PORT` 15020, src/metrics/server.rs `/metrics`), on the pods of its
            // DaemonSet (manifests/charts/ztunnel templates/daemonset.yaml: `app: ztunnel`).
            MetricsTarget::Ztunnel => match self.live.mesh {
                Mesh::IstioAmbient => (ZTUNNEL_NAMESPACE.to_owned(), ZTUNNEL_SELECTOR.to_owned(), 15020, "metrics"),
                mesh => return Err(format!("no ztunnel on {mesh}: ztunnel is Istio's ambient data plane").into()),
            },
        };
        let expected = s.expect.iter().map(|e| e.name.clone()).collect::<Vec<_>>().join(", ");
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval * 2, &expected, || async {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let list = match pods.list(&ListParams::default().labels(&selector)).await {
                Ok(l) => l.items,
                Err(e) => {
                    last.errored();
                    return Attempt::Fail(Seen(e.to_string()));
                }
            };
            let mut samples = Vec::new();
            for p in &list {
                let name = p.metadata.name.clone().unwrap_or_default();
                let endpoint = pod_proxy::PodEndpoint { namespace: &namespace, pod: &name, port, path };
                match pod_proxy::get(client, &endpoint).await {
                    Ok(text) => samples.extend(crate::check::metrics::parse(&text)),
                    Err(e) => {
                        last.errored();
                        return Attempt::Fail(Seen(format!("{name}: {e}")));
                    }
                }
            }
            if list.is_empty() {
                last.judged();
                return Attempt::Fail(Seen(format!("no pods {selector} in {namespace}")));
            }
            let verdict = crate::check::metrics::evaluate(&s.expect, &samples);
            if verdict.passed() {
                Attempt::Pass(Seen(verdict.to_string()))
            } else {
                last.judged();
                Attempt::Fail(Seen(verdict.to_string()))
            }
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }
}
