use super::*;
impl Context<'_> {
    pub(super) async fn rate_limit(&mut self, s: &RateLimitStep) -> StepResult {
        // Keep-alive: the burst must land inside one window.
        let probe = self.probe(true)?;
        let host = self.var("host");
        let versions = self.pod_versions().await?;
        let extra = self.extra_headers(&s.request);
        let send = || probe.send(&s.request, &host, &extra, &versions);
        let outcome = tokio::time::timeout(
            s.timeout.0,
            crate::check::rate_limit::run(s.limit, s.window, send, tokio::time::sleep),
        )
        .await;
        match outcome {
            Ok(Ok(())) => Ok(format!("{} requests admitted in a fresh window, the next one got 429", s.limit)),
            Ok(Err(e)) => Err(StepFailure::verdict(e)),
            // The measurement could not finish: nothing was judged.
            Err(_) => Err(StepFailure::error(format!("not decided within {:?}", s.timeout.0))),
        }
    }
}
