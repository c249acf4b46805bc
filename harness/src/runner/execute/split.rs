use super::*;
impl Context<'_> {
    pub(super) async fn split(&mut self, s: &SplitStep) -> StepResult {
        let probe = self.probe(false)?;
        let host = self.var("host");
        let versions = self.pod_versions().await?;
        let next = || async { SplitAnswer::of(&probe.send(&s.request, &host, &BTreeMap::new(), &versions).await) };
        let settled = match s.settle {
            None => String::new(),
            Some(settle) => {
                match crate::check::split::settle(&s.weights, settle.tolerance, settle.within.0, next).await {
                    Ok(windows) => format!("route in effect after {windows} pre-window(s); "),
                    Err(last) => {
                        let evidence = serde_json::to_string(&last.evidence).unwrap_or_default();
                        // Recorded all the same: its measurement never started.
                        self.record(RecordedStep::Split(&SplitStep { settle: None, ..s.clone() }), Vec::new(), false);
                        return Err(StepFailure::verdict(format!(
                            "the route was not in effect within {}: the last pre-window (±{}) was {:?}: {evidence}",
                            settle.within, settle.tolerance, last.decision
                        )));
                    }
                }
            }
        };
        let test = SplitTest::from_weights(&s.weights, s.tolerance, u64::from(s.max_requests));
        // The measurement's answers (not the settle windows') are recorded, version and status
        // only: thousands of echo bodies would say nothing the split judges.
        let answers = std::cell::RefCell::new(Vec::new());
        let verdict = drive(&test, s.timeout.0, TRANSPORT_RETRIES, || async {
            let observation = probe.send(&s.request, &host, &BTreeMap::new(), &versions).await;
            let mut answer = Answer::record(&observation, &self.loaded.scenario.snapshot.redact_headers);
            answer.headers.clear();
            answer.body.clear();
            answers.borrow_mut().push(answer);
            SplitAnswer::of(&observation)
        })
        .await;
        let measured = SplitStep { settle: None, ..s.clone() };
        self.record(RecordedStep::Split(&measured), answers.into_inner(), verdict.decision == Decision::Pass);
        let evidence = serde_json::to_string(&verdict.evidence).unwrap_or_default();
        let dropped = match verdict.transport_failures.len() {
            0 => String::new(),
            n => format!(
                "; {n} request(s) without an answer, retried and not counted: {}",
                verdict.transport_failures.join(" | ")
            ),
        };
        match verdict.decision {
            Decision::Pass => Ok(format!("{settled}split within tolerance: {evidence}{dropped}")),
            other => Err(StepFailure::verdict(format!(
                "{settled}split not as declared ({other:?}){}: {evidence}{dropped}",
                verdict.stray.map(|s| format!(", {s}")).unwrap_or_default()
            ))),
        }
    }
}
