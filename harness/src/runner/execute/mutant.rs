use super::*;
impl Live {
    /// Run `mutant` after its scenario passed, in the same namespace: change the fixtures, rerun
    /// the steps up to the one that must fail, then re-apply the scenario's fixtures. Never
    /// panics; a mutant that cannot be applied is reported as such.
    pub async fn run_mutant(
        &self,
        loaded: &LoadedScenario,
        mutant: &Mutant,
        run: &str,
        cancel: &CancellationToken,
    ) -> MutantOutcome {
        let namespace = loaded.vars.get("namespace").unwrap_or_default().to_owned();
        let mut context = Context::new(self, loaded, &namespace, run);
        // The scenario's own fixtures, which `mutant::check` validated the mutant against.
        let files: Vec<String> = loaded.scenario.fixtures.iter().map(|f| f.value.clone()).collect();
        let objects = match context.manifests(&files) {
            Ok(o) => o,
            Err(e) => return MutantOutcome::NotApplied(e),
        };
        let mutation = match crate::scenario::mutant::mutate(&objects, mutant) {
            Ok(m) => m,
            Err(e) => return MutantOutcome::NotApplied(e),
        };
        let applied = async {
            for ObjectRef { api_version, kind, name, namespace: in_ns } in &mutation.delete {
                let ns = in_ns.as_deref().or(Some(namespace.as_str()));
                k8s::delete_guarded(&self.client, api_version, kind, name, ns, &self.fixture_guard(&namespace))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            for object in &mutation.apply {
                k8s::apply_guarded(&self.client, object, Some(&namespace), &self.fixture_guard(&namespace))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            // The mesh and Kong pick changes up asynchronously; a step judged before that would
            // see the unmutated behaviour.
            tokio::time::sleep(mutant.settle.0.min(self.mutant_settle_cap)).await;
            Ok::<(), String>(())
        };
        let outcome = tokio::select! {
            r = applied => match r {
                Err(e) => MutantOutcome::NotApplied(e),
                Ok(()) => {
                    let mut outcome = MutantOutcome::Survived;
                    for (number, step) in loaded.scenario.steps.iter().enumerate().take(mutant.fails_at as usize) {
                        context.step_number = number + 1;
                        let result = tokio::select! {
                            r = context.step(step) => r,
                            () = cancel.cancelled() => Err(StepFailure::interrupted()),
                        };
                        if cancel.is_cancelled() {
                            // An interrupted step killed nothing.
                            outcome = MutantOutcome::NotApplied("interrupted".into());
                            break;
                        }
                        if let Err(failure) = result {
                            let at = number + 1;
                            outcome = match failure.kind {
                                FailureKind::Verdict => MutantOutcome::Killed {
                                    at,
                                    expected: mutant.fails_at as usize,
                                    detail: failure.detail,
                                },
                                FailureKind::Error => MutantOutcome::Unjudged { at, detail: failure.detail },
                                FailureKind::Interrupted => MutantOutcome::NotApplied("interrupted".into()),
                            };
                            break;
                        }
                    }
                    outcome
                }
            },
            () = cancel.cancelled() => MutantOutcome::NotApplied("interrupted".into()),
        };
        // Back to the scenario as written: the objects the mutant deleted or changed, re-applied
        // as the fixtures have them.
        let mut unrestored = Vec::new();
        for object in &mutation.restore {
            if let Err(e) =
                k8s::apply_guarded(&self.client, object, Some(&namespace), &self.fixture_guard(&namespace)).await
            {
                unrestored.push(e.to_string());
            }
        }
        if unrestored.is_empty() {
            outcome
        } else {
            // Later mutants and a kept cluster would see a changed scenario.
            MutantOutcome::NotRestored(format!("{outcome:?}; restoring failed: {}", unrestored.join("; ")))
        }
    }
}
