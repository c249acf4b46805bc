use super::*;
impl Context<'_> {
    /// Apply `files`; eventually (a webhook may not serve yet). With `rejected`, the API server
    /// must refuse them the way it says.
    pub(super) async fn apply(&self, files: &[String], rejected: Option<&Rejection>, within: Duration) -> StepResult {
        let objects = self.manifests(files)?;
        let client = &self.live.client;
        if let Some(expected) = rejected {
            let mut outcome = ApplyOutcome::Accepted;
            for object in &objects {
                if let Err(e) =
                    k8s::apply_guarded(client, object, Some(self.namespace), &self.live.fixture_guard(self.namespace))
                        .await
                {
                    outcome = match e {
                        k8s::KubeError::UnknownKind { api_version, kind, .. } => {
                            ApplyOutcome::UnknownKind { kind: format!("{api_version} {kind}") }
                        }
                        k8s::KubeError::Apply { server_message: Some(server_message), .. } => {
                            ApplyOutcome::Refused { server_message }
                        }
                        other => ApplyOutcome::Failed(other.to_string()),
                    };
                    break;
                }
            }
            let failed_otherwise = matches!(outcome, ApplyOutcome::Failed(_));
            return judge_rejection(expected, &outcome).map_err(|detail| {
                // The API server's answer was judged, unless the apply failed some other way.
                if failed_otherwise { StepFailure::error(detail) } else { StepFailure::verdict(detail) }
            });
        }
        let applied = eventually(within, self.live.interval * 2, &format!("{} applied", files.join(", ")), || async {
            for object in &objects {
                if let Err(e) =
                    k8s::apply_guarded(client, object, Some(self.namespace), &self.live.fixture_guard(self.namespace))
                        .await
                {
                    return Attempt::Fail(Seen(e.to_string()));
                }
            }
            Attempt::Pass(Seen(format!("{} object(s)", objects.len())))
        })
        .await;
        // Objects that could not be applied leave nothing to judge: the harness's failure.
        applied.map(|seen| format!("applied {}", seen.0)).map_err(|e| StepFailure::error(e.to_string()))
    }

    pub(super) async fn apply_step(&self, s: &ApplyStep) -> StepResult {
        let files: Vec<String> = s.fixtures.iter().map(|f| f.value.clone()).collect();
        self.apply(&files, s.rejected.as_ref(), s.timeout.0).await
    }

    pub(super) async fn delete(&self, s: &DeleteStep) -> StepResult {
        let targets: Vec<ObjectRef> = match &s.resource {
            Some(r) => vec![r.clone()],
            None => {
                let files: Vec<String> = s.fixtures.iter().map(|f| f.value.clone()).collect();
                self.manifests(&files)?.iter().map(ObjectRef::of).collect()
            }
        };
        let client = &self.live.client;
        // A DELETE only starts a deletion: finalizers and graceful shutdown keep the object
        // (with its `deletionTimestamp`) until they are done. The step passes when every object
        // is gone, as the scenario format documents; each is deleted once, then looked at.
        // Foreground propagation, so "gone" includes the dependents: with the default
        // (background) a Deployment vanishes at once while its pods still terminate and serve.
        let requested = std::cell::RefCell::new(vec![false; targets.len()]);
        let last = LastFailure::default();
        let expected = format!("{} object(s) deleted and gone", targets.len());
        let outcome = eventually(s.timeout.0, self.live.interval * 2, &expected, || async {
            let mut still = Vec::new();
            for (i, ObjectRef { api_version, kind, name, namespace }) in targets.iter().enumerate() {
                let ns = namespace.as_deref().or(Some(self.namespace));
                let asked = requested.borrow().get(i).copied().unwrap_or(false);
                if !asked {
                    if let Err(e) = k8s::delete_guarded_foreground(
                        client,
                        api_version,
                        kind,
                        name,
                        ns,
                        &self.live.fixture_guard(self.namespace),
                    )
                    .await
                    {
                        last.errored();
                        return Attempt::Fail(Seen(e.to_string()));
                    }
                    if let Some(done) = requested.borrow_mut().get_mut(i) {
                        *done = true;
                    }
                }
                match k8s::get(client, api_version, kind, name, ns).await {
                    Ok(None) => {}
                    Ok(Some(object)) => still.push(format!("{kind}/{name} {}", deletion_state(&object))),
                    Err(e) => {
                        last.errored();
                        return Attempt::Fail(Seen(e.to_string()));
                    }
                }
            }
            if still.is_empty() {
                Attempt::Pass(Seen(expected.clone()))
            } else {
                last.judged();
                Attempt::Fail(Seen(format!("still there: {}", still.join(", "))))
            }
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }

    pub(super) async fn wait(&self, s: &WaitStep) -> StepResult {
        let r = &s.resource;
        let ns = r.namespace.as_deref().or(Some(self.namespace));
        let expected = format!("{}/{} {}", r.kind, r.name, s.condition);
        let client = &self.live.client;
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval, &expected, || async {
            let object = match k8s::get(client, &r.api_version, &r.kind, &r.name, ns).await {
                Ok(o) => o,
                Err(e) => {
                    last.errored();
                    return Attempt::Fail(Seen(e.to_string()));
                }
            };
            last.judged();
            condition_met(s.condition, object.as_ref())
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }
}

/// Why an object asked to be deleted is still there: being deleted since its
/// `deletionTimestamp`, held by the finalizers it still lists (metav1 `ObjectMeta`), or not
/// being deleted at all (recreated, or the DELETE did not take).
fn deletion_state(object: &Value) -> String {
    let finalizers: Vec<&str> = object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let held = if finalizers.is_empty() { String::new() } else { format!("; finalizers: {}", finalizers.join(", ")) };
    match object.pointer("/metadata/deletionTimestamp").and_then(Value::as_str) {
        Some(since) => format!("(being deleted since {since}{held})"),
        None => format!("(not being deleted{held})"),
    }
}

/// Whether `object` (as the API server has it; `None` when absent) meets `condition`.
pub fn condition_met(condition: WaitCondition, object: Option<&Value>) -> Attempt<Seen> {
    let Some(object) = object else {
        return if condition == WaitCondition::Deleted {
            Attempt::Pass(Seen("gone".into()))
        } else {
            Attempt::Fail(Seen("does not exist yet".into()))
        };
    };
    let wanted = match condition {
        WaitCondition::Exists => return Attempt::Pass(Seen("exists".into())),
        WaitCondition::Deleted => return Attempt::Fail(Seen("still exists".into())),
        // A Deployment is available when rolled out, as the stack's gates judge it: its
        // `Available` condition alone is True mid-rollout and before a new generation is seen.
        WaitCondition::Available if object["kind"] == "Deployment" => return k8s::deployment_available(object),
        WaitCondition::Available => "Available",
        WaitCondition::Ready => "Ready",
        WaitCondition::Established => "Established",
    };
    let conditions = object.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let status = conditions.iter().find(|c| c["type"] == wanted).and_then(|c| c["status"].as_str());
    match status {
        Some("True") => Attempt::Pass(Seen(format!("{wanted}=True"))),
        Some(other) => {
            let reason =
                conditions.iter().find(|c| c["type"] == wanted).and_then(|c| c["message"].as_str()).unwrap_or("");
            Attempt::Fail(Seen(format!("{wanted}={other} {reason}").trim_end().to_owned()))
        }
        None => Attempt::Fail(Seen(format!("no {wanted} condition yet"))),
    }
}
