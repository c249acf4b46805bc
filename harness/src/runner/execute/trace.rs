use super::*;
impl Context<'_> {
    /// The collector's answer for `trace_id`, as a transcript records it. The API server
    /// relays the collector's status and body; Jaeger's 404 is "not collected yet".
    pub(super) async fn collector_answer(&self, trace_id: &str) -> Answer {
        let t = &self.live.tracing;
        let uri = trace_probe::query_path(&t.namespace, &t.service, t.query_port, trace_id);
        match pod_proxy::get_relayed(&self.live.client, &uri).await {
            Ok((status, body)) => Answer { status: Some(status), body, ..Answer::default() },
            Err(message) => Answer { message: Some(message), ..Answer::default() },
        }
    }

    /// One request with the harness's own trace context in the step's format; what the backend
    /// received of it is judged at once, then the collector is polled for that trace until it
    /// passes, and asked once more after `quiet`: spans still on their way (Linkerd's proxies
    /// export every 10 s) would fail an `absent` too early and make the snapshot's shape depend
    /// on timing. That last answer decides, and its tree is the snapshot's. Every answer is kept
    /// as the step's transcript (the request's first).
    pub(super) async fn trace(&mut self, s: &TraceStep) -> StepResult {
        let probe = self.probe(false)?;
        let host = self.var("host");
        let context = TraceContext::fresh();
        let trace_id = context.trace_id.clone();
        let mut headers = context.headers(s.context);
        headers.extend(self.extra_headers(&s.request));
        let versions = self.pod_versions().await?;
        let observation = probe.send(&s.request, &host, &headers, &versions).await;
        // The trace headers stay as they were, whatever the scenario redacts: replay judges them.
        let redact: Vec<String> = (self.loaded.scenario.snapshot.redact_headers.iter())
            .filter(|h| !trace_probe::TRACE_HEADERS.contains(&h.to_ascii_lowercase().as_str()))
            .cloned()
            .collect();
        let mut answers = vec![Answer::record(&observation, &redact)];
        let request = judge_traced_request(&s.expect, &trace_id, &observation);
        self.observations.push(Observed::Traffic(observation));
        if let Err(e) = request {
            self.record_trace(s, &trace_id, answers, false);
            return Err(StepFailure::verdict(e));
        }

        let expected = format!("trace {trace_id} with services {:?}", s.expect.services);
        let polled = std::cell::RefCell::new(Vec::<Answer>::new());
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval * 2, &expected, || async {
            let answer = self.collector_answer(&trace_id).await;
            let (tree, verdict) = judge_collector_answer(&s.expect, &trace_id, &answer);
            keep_distinct(&mut polled.borrow_mut(), answer);
            match tree {
                Some(_) if verdict.passed() => Attempt::Pass(()),
                Some(tree) => {
                    last.judged();
                    Attempt::Fail(Seen(format!("services {:?}: {verdict}", tree.services())))
                }
                // No tree: the collector (the harness's own) failed or answered unreadably.
                None => {
                    last.errored();
                    Attempt::Fail(Seen(verdict.to_string()))
                }
            }
        })
        .await;
        answers.extend(polled.into_inner());
        if let Err(e) = outcome {
            self.record_trace(s, &trace_id, answers, false);
            return Err(last.failure(e.to_string()));
        }
        tokio::time::sleep(s.expect.quiet.0).await;
        let last = self.collector_answer(&trace_id).await;
        let (tree, verdict) = judge_collector_answer(&s.expect, &trace_id, &last);
        answers.push(last);
        let passed = verdict.passed();
        self.record_trace(s, &trace_id, answers, passed);
        match tree {
            Some(tree) if passed => {
                let shape = json!({"trace": {"context": s.context, "tree": tree.shape()}});
                self.observations.push(Observed::Trace(shape));
                Ok(format!("trace {trace_id} ({}): {}", s.context, tree_summary(&tree)))
            }
            Some(_) => {
                Err(StepFailure::verdict(format!("trace {trace_id} asked again after {}: {verdict}", s.expect.quiet)))
            }
            None => {
                Err(StepFailure::error(format!("trace {trace_id} asked again after {}: {verdict}", s.expect.quiet)))
            }
        }
    }

    pub(super) fn record_trace(&mut self, s: &TraceStep, trace_id: &str, answers: Vec<Answer>, passed: bool) {
        self.record_traced(RecordedStep::Trace(s), Some(trace_id), answers, passed);
    }
}

fn tree_summary(tree: &SpanTree) -> String {
    format!("services {:?}, edges {:?}", tree.services(), tree.edges())
}

/// Poll answers that repeat the previous one are kept once: a transcript of a long wait stays
/// small, and replay (which needs one passing answer) judges the same.
fn keep_distinct(answers: &mut Vec<Answer>, answer: Answer) {
    if answers.last() != Some(&answer) {
        answers.push(answer);
    }
}
