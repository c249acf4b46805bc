use super::*;
impl Context<'_> {
    pub(super) async fn request_from_pod(&mut self, s: &FromPodStep) -> StepResult {
        let client = &self.live.client;
        let ns = s.client.namespace.clone().unwrap_or_else(|| self.namespace.to_owned());
        let manifest = pod::client_pod_manifest(
            self.live.mesh,
            s.client.meshed,
            &ns,
            s.client.service_account.as_deref(),
            &self.live.client_image,
        );
        let name = manifest["metadata"]["name"].as_str().unwrap_or("client").to_owned();
        if let Some(account) = s.client.service_account.as_deref().filter(|_| ns == self.namespace) {
            let sa = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                                        "metadata": {"name": account, "namespace": ns}});
            k8s::apply_guarded(client, &k8s::labelled(sa, self.run), Some(&ns), &in_scope(self.namespace))
                .await
                .map_err(|e| e.to_string())?;
        }
        k8s::apply_guarded(client, &k8s::labelled(manifest, self.run), Some(&ns), &in_scope(self.namespace))
            .await
            .map_err(|e| e.to_string())?;
        let ready = eventually(
            Duration::from_secs(180),
            self.live.interval,
            &format!("client pod {ns}/{name} Ready"),
            || async {
                match k8s::get(client, "v1", "Pod", &name, Some(&ns)).await {
                    Ok(o) => condition_met(WaitCondition::Ready, o.as_ref()),
                    Err(e) => Attempt::Fail(Seen(e.to_string())),
                }
            },
        )
        .await;
        ready.map_err(|e| e.to_string())?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if self.live.mesh.member_mark().is_some() {
            let pod = pods.get(&name).await.map_err(|e| format!("reading client pod {ns}/{name}: {e}"))?;
            crate::check::injection::client_as_asked(
                self.live.mesh,
                &format!("{ns}/{name}"),
                k8s::in_mesh(&pod, self.live.mesh),
                s.client.meshed,
            )?;
        }
        let mesh = self.live.mesh;
        // A reset from a pod is ambiguous in ambient mode: proven only by this Service's backend
        // having answered before.
        self.backend_proven = service_of_url(&s.url, self.namespace).is_some_and(|svc| self.proven.contains(&svc));
        let backend_proven = self.backend_proven;
        let expected = format!("{} {} from {name} -> {}", s.method, s.url, expectation(&s.expect));
        let answers = std::cell::RefCell::new(Vec::new());
        let last = LastFailure::default();
        let outcome = converge(s.converge.passes, s.converge.within.0, self.live.interval, &expected, || async {
            let versions = match self.pod_versions().await {
                Ok(v) => v,
                Err(e) => {
                    last.errored();
                    return Attempt::Fail(Failed::Unjudged(Unjudged(e)));
                }
            };
            let argv = pod::command(s.method, &s.url, &s.headers, REQUEST_TIMEOUT);
            match pod::send(&pods, &name, &ns, argv, REQUEST_TIMEOUT + Duration::from_secs(5), &versions).await {
                Ok(observation) => {
                    answers
                        .borrow_mut()
                        .push(Answer::record(&observation, &self.loaded.scenario.snapshot.redact_headers));
                    last.judged();
                    let verdict = evaluate(&s.expect, &observation, mesh, Path::FromPod);
                    judged(resolve_ambiguity(verdict, backend_proven), observation)
                }
                // The exec itself failed: recorded as a failed attempt, so replay resets its
                // count where the live run did.
                Err(e) => {
                    last.errored();
                    let message = e.to_string();
                    answers.borrow_mut().push(Answer {
                        error: Some(crate::probe::TransportKind::Other),
                        message: Some(message.clone()),
                        ..Answer::default()
                    });
                    Attempt::Fail(Failed::Unjudged(Unjudged(message)))
                }
            }
        })
        .await;
        self.record(RecordedStep::FromPod(s), answers.into_inner(), outcome.is_ok());
        if let Ok(judged) = &outcome
            && s.client.meshed
            && matches!(&judged.observation.outcome, crate::probe::Outcome::Response(r) if r.echo.is_some())
            && let Some(service) = service_of_url(&s.url, self.namespace)
        {
            self.proven.insert(service);
        }
        self.keep(outcome, &last)
    }
}

/// The Service a from-pod URL names in `namespace`: `http://<svc>[.<namespace>[.svc[.cluster.local]]][:port]/...`.
pub fn service_of_url(url: &str, namespace: &str) -> Option<String> {
    if !crate::scenario::scope::own_service_url(url, namespace) {
        return None;
    }
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#', ':', '.']).next()?;
    Some(host.to_owned())
}
