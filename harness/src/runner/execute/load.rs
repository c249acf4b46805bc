use std::collections::BTreeMap;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};

use super::*;
use crate::check::load::{Budget, Disruption, LatencyBudget, Sample, Window};
use crate::scenario::{LoadStep, RestartStep, RestartTarget};

/// The most requests of a load window in flight at once: at 100 a second with a 10 s deadline,
/// a backend that stops answering would otherwise pile up a thousand.
const MAX_IN_FLIGHT: usize = 200;

impl Context<'_> {
    /// Load through Kong at `rate` while the enclosed steps run, then the budget's verdict. An
    /// enclosed step that fails fails the load step with its own failure (the window is still
    /// recorded).
    pub(super) async fn load(&mut self, s: &LoadStep) -> StepResult {
        let probe = self.probe(false)?;
        let host = self.var("host");
        let extra = self.extra_headers(&s.request);
        let versions = self.pod_versions().await?;
        let mesh = self.live.mesh;
        let redact = self.loaded.scenario.snapshot.redact_headers.clone();
        let stop = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let traffic = drive(&probe, s, &host, &extra, &versions, mesh, &redact, start, stop.clone());
        let during = async {
            tokio::time::sleep(s.warmup.0).await;
            let mut disruptions = Vec::new();
            let mut failed = None;
            let mut enclosed = Vec::new();
            for (i, step) in s.during.iter().enumerate() {
                let begun = start.elapsed();
                let result = Box::pin(self.step(step)).await;
                disruptions.push(Disruption { name: disruption_name(step), start: begun, end: start.elapsed() });
                match result {
                    Ok(detail) => enclosed.push(format!("{}: {detail}", disruption_name(step))),
                    Err(e) => {
                        failed = Some((i, e));
                        break;
                    }
                }
            }
            if failed.is_none() {
                tokio::time::sleep(s.cooldown.0).await;
            }
            // The window ends when the load stops sending, not when its last answers arrive.
            let window_end = start.elapsed();
            stop.cancel();
            (disruptions, failed, window_end, enclosed)
        };
        let (answered, (disruptions, failed, window_end, enclosed)) = tokio::join!(traffic, during);
        let samples: Vec<Sample> = answered.iter().map(|(sample, _)| *sample).collect();
        let budget = Budget {
            errors: s.budget.errors,
            outage: s.budget.outage.0,
            latency: s.budget.latency.map(|l| LatencyBudget { percentile: l.percentile, max: l.max.0 }),
        };
        let verdict = crate::check::load::evaluate(&samples, &disruptions, &budget, window_end);
        let passed = failed.is_none() && verdict.passed();
        let answers = answered.into_iter().map(|(_, a)| a).collect();
        let budget_record = crate::replay::LoadBudgetRecord {
            errors: s.budget.errors,
            outage: s.budget.outage,
            latency: s.budget.latency.map(|l| crate::replay::LatencyRecord { percentile: l.percentile, max: l.max }),
        };
        let window = crate::replay::LoadWindowStep {
            request: &s.request,
            rate: s.rate,
            expect: &s.expect,
            budget: budget_record,
        };
        let load = crate::replay::LoadRecord {
            disruptions: &disruptions,
            window_ms: window_end.as_millis() as u64,
            enclosed_failure: failed.as_ref().map(|(_, e)| e.detail.as_str()),
        };
        self.record_full(RecordedStep::Load(&window), None, answers, Some(load), passed);
        let series = crate::check::load::series(&samples);
        self.windows.push(Window { step: self.step_number, series, disruptions, verdict: verdict.clone() });
        if let Some((i, e)) = failed {
            return Err(StepFailure {
                kind: e.kind,
                detail: format!("under load, enclosed step {} failed: {}; the load so far: {verdict}", i + 1, e.detail),
            });
        }
        // What each disruption did (the upgrade's stages, the restarts' rollouts and proxies) is
        // part of the evidence.
        let during = if enclosed.is_empty() { String::new() } else { format!("; during: {}", enclosed.join("; ")) };
        if verdict.passed() {
            Ok(format!("{verdict}{during}"))
        } else {
            Err(StepFailure::verdict(format!("{verdict}{during}")))
        }
    }

    /// A rolling restart of `s.target`, then until it has rolled out.
    pub(super) async fn restart(&mut self, s: &RestartStep) -> StepResult {
        let client = &self.live.client;
        let targets = self.restart_targets(&s.target).await?;
        let after_upgrade = self.proxy_after_upgrade.clone().filter(|_| s.target.carries_proxy());
        // Which targets must come back on the new proxy: Kong's gateway always (the stack meshes
        // it), a workload when it ran the proxy before, in a namespace the upgrade moved.
        let mut checked = vec![false; targets.len()];
        let mut unchecked = Vec::new();
        if let Some((_, moved)) = &after_upgrade {
            let meshed = self.meshed_now(&targets).await?;
            for (i, (kind, namespace, name)) in targets.iter().enumerate() {
                let in_moved = moved.as_ref().is_none_or(|m| m.contains(namespace));
                checked[i] = matches!(s.target, RestartTarget::Kong) || (meshed[i] && in_moved);
                if !checked[i] {
                    let why = if meshed[i] {
                        "its namespace was not moved to the revision"
                    } else {
                        "it ran no proxy before"
                    };
                    unchecked.push(format!("{kind} {namespace}/{name} not checked for the new proxy ({why})"));
                }
            }
        }
        let proxy = after_upgrade.map(|(proxy, _)| proxy);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let at = k8s::rfc3339_utc(now.as_secs());
        let mut restarted = Vec::new();
        for (kind, namespace, name) in &targets {
            let generation =
                k8s::restart_workload(client, kind, namespace, name, &at).await.map_err(|e| e.to_string())?;
            restarted.push((kind.as_str(), namespace.as_str(), name.as_str(), generation));
        }
        let expected = format!("{} rolled out", s.target);
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval, &expected, || async {
            for (kind, namespace, name, generation) in &restarted {
                match k8s::rolled_out(client, kind, namespace, name, *generation).await {
                    Ok(Attempt::Pass(_)) => {}
                    Ok(Attempt::Fail(Seen(seen))) => {
                        last.judged();
                        return Attempt::Fail(Seen(format!("{kind} {namespace}/{name}: {seen}")));
                    }
                    Err(e) => {
                        last.errored();
                        return Attempt::Fail(Seen(e.to_string()));
                    }
                }
            }
            let names: Vec<String> = restarted.iter().map(|(k, ns, n, _)| format!("{k} {ns}/{n}")).collect();
            let rolled = format!("restarted and rolled out: {}", names.join(", "));
            let rolled = if unchecked.is_empty() { rolled } else { format!("{rolled}; {}", unchecked.join("; ")) };
            // The data plane after an upgrade: the rolled-out pods run the new proxy. Only Kong's
            // and the scenario's workloads carry a proxy; the control plane and ztunnel are
            // the mesh's own.
            let moving: Vec<_> =
                restarted.iter().zip(&checked).filter(|(_, checked)| **checked).map(|(w, _)| *w).collect();
            match proxy.as_ref().filter(|_| !moving.is_empty()) {
                None => Attempt::Pass(Seen(rolled)),
                Some(proxy) => match self.on_new_proxy(&moving, proxy).await {
                    Ok(Attempt::Pass(Seen(on))) => Attempt::Pass(Seen(format!("{rolled}; {on}"))),
                    Ok(Attempt::Fail(off)) => {
                        last.judged();
                        Attempt::Fail(off)
                    }
                    Err(e) => {
                        last.errored();
                        Attempt::Fail(Seen(e))
                    }
                },
            }
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }

    /// The run's upgrade of the part the step names, within the step's deadline.
    pub(super) async fn upgrade(&mut self, s: &crate::scenario::UpgradeStep) -> StepResult {
        let Some(upgrade) = self.live.upgrades.get(&s.part).cloned() else {
            return Err(StepFailure::error(format!(
                "this run cannot upgrade {}: no newer pin of it for the same stack in versions.toml, a strategy its mesh \
                 does not have, or a cluster the harness did not create",
                s.part
            )));
        };
        let what = upgrade.describe();
        // A namespace the scenario keeps out of the mesh stays out (no revision label either).
        let namespaces: Vec<String> =
            self.loaded.scenario.namespace.inject.then(|| self.namespace.to_owned()).into_iter().collect();
        match tokio::time::timeout(s.timeout.0, upgrade.upgrade(&namespaces, s.timeout.0)).await {
            Ok(Ok(upgraded)) => {
                if let Some(proxy) = upgraded.proxy {
                    // Under a canary only the relabelled namespaces move: Kong's, and the
                    // scenario's when the mesh injects it.
                    let moved = proxy.revision.is_some().then(|| {
                        let mut moved = namespaces.to_vec();
                        moved.push(self.live.kong_namespace.clone());
                        moved
                    });
                    self.proxy_after_upgrade = Some((proxy, moved));
                }
                Ok(format!("upgraded {what}: {}", upgraded.done))
            }
            Ok(Err(e)) => Err(StepFailure::error(format!("upgrading {what}: {e}"))),
            Err(_) => Err(StepFailure::error(format!("upgrading {what}: not done within {}", s.timeout))),
        }
    }

    /// After an upgrade: whether every running pod of the restarted workloads runs `proxy` (its
    /// image's tag, and under a canary the injector's revision annotation). A pod still on the
    /// old proxy means the data plane did not move: the namespace's injection did not follow
    /// the upgrade.
    /// An API error is `Err`: no verdict on the pods.
    async fn on_new_proxy(
        &self,
        workloads: &[(&str, &str, &str, i64)],
        proxy: &ProxyAt,
    ) -> Result<Attempt<Seen>, String> {
        let mut seen = Vec::new();
        for (kind, namespace, name, _) in workloads {
            let pods = k8s::workload_pods(&self.live.client, kind, namespace, name)
                .await
                .map_err(|e| format!("listing the pods of {kind} {namespace}/{name}: {e}"))?;
            if pods.is_empty() {
                return Ok(Attempt::Fail(Seen(format!("{kind} {namespace}/{name} runs no pod"))));
            }
            for pod in &pods {
                let pod_name = pod.metadata.name.as_deref().unwrap_or("?");
                if let Err(why) = crate::check::injection::runs_proxy(pod, self.live.mesh, proxy) {
                    return Ok(Attempt::Fail(Seen(format!(
                        "pod {namespace}/{pod_name} of {kind}/{name} {why}: the data plane did not move to the upgrade"
                    ))));
                }
            }
            seen.push(format!("{kind} {namespace}/{name}: {} pods", pods.len()));
        }
        let revision = proxy.revision.as_deref().map(|r| format!(" (revision {r})")).unwrap_or_default();
        Ok(Attempt::Pass(Seen(format!("on the proxy {}{revision}: {}", proxy.version, seen.join(", ")))))
    }

    /// Which of `workloads` run the mesh's proxy now (any of their pods): after an upgrade only
    /// those must come back on the new one; a workload the mesh leaves out stays out.
    async fn meshed_now(&self, workloads: &[(String, String, String)]) -> Result<Vec<bool>, StepFailure> {
        let mut meshed = Vec::new();
        for (kind, namespace, name) in workloads {
            let pods = k8s::workload_pods(&self.live.client, kind, namespace, name)
                .await
                .map_err(|e| StepFailure::error(format!("listing the pods of {kind} {namespace}/{name}: {e}")))?;
            meshed.push(pods.iter().any(|p| k8s::in_mesh(p, self.live.mesh)));
        }
        Ok(meshed)
    }

    /// The workloads `target` names on this cluster: (kind, namespace, name).
    async fn restart_targets(&self, target: &RestartTarget) -> Result<Vec<(String, String, String)>, String> {
        let client = &self.live.client;
        let by_selector = |namespace: String, selector: String, what: &'static str| async move {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| format!("listing {what} ({selector}) in {namespace}: {e}"))?;
            let found: Vec<(String, String, String)> = list
                .items
                .into_iter()
                .filter_map(|d| Some(("Deployment".to_owned(), namespace.clone(), d.metadata.name?)))
                .collect();
            if found.is_empty() {
                return Err(format!("no Deployment of {what} ({selector}) in {namespace}"));
            }
            Ok(found)
        };
        match target {
            // Kong's gateway Deployment: the one whose pods the gateway selector picks.
            RestartTarget::Kong => {
                let namespace = &self.live.kong_namespace;
                let found = k8s::deployments_running(client, namespace, &self.live.kong_selector)
                    .await
                    .map_err(|e| e.to_string())?;
                if found.is_empty() {
                    return Err(format!(
                        "no Deployment in {namespace} runs Kong's gateway pods ({})",
                        self.live.kong_selector
                    ));
                }
                Ok(found.into_iter().map(|(name, _)| ("Deployment".to_owned(), namespace.clone(), name)).collect())
            }
            RestartTarget::MeshControlPlane => {
                let namespace = self.live.mesh.system_namespace().unwrap_or_default().to_owned();
                match self.live.mesh {
                    Mesh::Istio | Mesh::IstioAmbient => {
                        by_selector(namespace, crate::cluster::discover::ISTIOD_SELECTOR.into(), "istiod").await
                    }
                    Mesh::Linkerd => {
                        let selector = crate::cluster::discover::LINKERD_DESTINATION_SELECTOR.into();
                        by_selector(namespace, selector, "Linkerd's destination").await
                    }
                    Mesh::None => Err("mesh none has no control plane to restart".into()),
                }
            }
            RestartTarget::Ztunnel => {
                if self.live.mesh != Mesh::IstioAmbient {
                    return Err(format!("no ztunnel on {}", self.live.mesh));
                }
                let api: Api<DaemonSet> = Api::namespaced(client.clone(), "istio-system");
                api.get_opt("ztunnel")
                    .await
                    .map_err(|e| format!("reading DaemonSet istio-system/ztunnel: {e}"))?
                    .ok_or("no DaemonSet istio-system/ztunnel")?;
                Ok(vec![("DaemonSet".into(), "istio-system".into(), "ztunnel".into())])
            }
            RestartTarget::Workload { kind, name } => {
                Ok(vec![(kind.as_str().to_owned(), self.namespace.to_owned(), name.clone())])
            }
        }
    }
}

/// How a disruption is named in the verdict and the chart: `restart Kong's gateway`.
fn disruption_name(step: &Step) -> String {
    match step {
        Step::Restart(r) => format!("restart {}", r.target),
        Step::Upgrade(u) => match u.part {
            crate::scenario::UpgradePart::Mesh(crate::scenario::MeshStrategy::InPlace) => "upgrade the mesh".to_owned(),
            part => format!("upgrade {part}"),
        },
        other => other.kind().to_owned(),
    }
}

/// Send `s.request` through Kong at `s.rate` a second from `start` until `stop`, each request
/// judged by `s.expect` as it answers ([`schedule`]).
#[allow(clippy::too_many_arguments)]
async fn drive(
    probe: &HttpProbe,
    s: &LoadStep,
    host: &str,
    extra: &BTreeMap<String, String>,
    versions: &PodVersions,
    mesh: Mesh,
    redact: &[String],
    start: tokio::time::Instant,
    stop: CancellationToken,
) -> Vec<(Sample, Answer)> {
    let one = |sent: Duration| async move {
        let observation = probe.send(&s.request, host, extra, versions).await;
        let passed = evaluate(&s.expect, &observation, mesh, Path::ThroughKong).passed();
        let latency = matches!(observation.outcome, crate::probe::Outcome::Response(_))
            .then(|| Duration::from_millis(observation.elapsed_ms));
        let mut answer = Answer::record(&observation, redact);
        answer.at_ms = Some(sent.as_millis() as u64);
        answer.latency_ms = latency.map(|l| l.as_millis() as u64);
        (Sample { at: sent, passed, latency }, answer)
    };
    schedule(s.rate, start, stop, one).await
}

/// Call `send` `rate` times a second from `start` until `stop` (its argument: the time since
/// `start` it was sent at), then wait for those still in flight (each has its own deadline);
/// the answers in the order sent. Requests are sent on schedule whatever earlier ones do, so a
/// backend that hangs shows as failures, not as fewer requests; past [`MAX_IN_FLIGHT`] waiting,
/// a tick is recorded as a failed request it did not send. Time is tokio's, so tests run it on
/// a paused clock.
async fn schedule<F, Fut>(
    rate: u32,
    start: tokio::time::Instant,
    stop: CancellationToken,
    send: F,
) -> Vec<(Sample, Answer)>
where
    F: Fn(Duration) -> Fut,
    Fut: std::future::Future<Output = (Sample, Answer)>,
{
    let period = Duration::from_secs(1) / rate.max(1);
    let mut ticks = tokio::time::interval_at(start, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = FuturesUnordered::new();
    let mut done = Vec::new();
    loop {
        tokio::select! {
            // In this order: a stop wins over a tick due at the same instant, and a due tick
            // goes out before answers are collected (it fires once a period, so it starves none).
            biased;
            _ = stop.cancelled() => break,
            _ = ticks.tick() => {
                let sent = start.elapsed();
                if in_flight.len() < MAX_IN_FLIGHT {
                    in_flight.push(send(sent));
                } else {
                    // Not sent, and counted as failed: a backend that holds every request must
                    // not look like a smaller window.
                    let answer = Answer {
                        error: Some(crate::probe::TransportKind::Other),
                        message: Some(format!("not sent: {MAX_IN_FLIGHT} requests were still waiting for an answer")),
                        at_ms: Some(sent.as_millis() as u64),
                        ..Answer::default()
                    };
                    done.push((Sample { at: sent, passed: false, latency: None }, answer));
                }
            }
            Some(answered) = in_flight.next(), if !in_flight.is_empty() => done.push(answered),
        }
    }
    while let Some(answered) = in_flight.next().await {
        done.push(answered);
    }
    done.sort_by_key(|(s, _)| s.at);
    done
}

#[cfg(test)]
mod tests {
    //! The load generator on tokio's paused clock: no sockets, so virtual time only moves when
    //! every task waits on a timer, and each answer's timing is exact.

    use super::*;
    use crate::check::load::{Budget, Disruption, evaluate};

    /// A backend whose answers take `latency` and fail while `failing` says so (by send time).
    fn backend(
        latency: Duration,
        failing: impl Fn(Duration) -> bool + Copy + 'static,
    ) -> impl Fn(Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = (Sample, Answer)>>> {
        move |sent| {
            Box::pin(async move {
                tokio::time::sleep(latency).await;
                let passed = !failing(sent);
                let answer = Answer { status: Some(if passed { 200 } else { 503 }), ..Answer::default() };
                (Sample { at: sent, passed, latency: Some(latency) }, answer)
            })
        }
    }

    /// Runs the generator for `window` at `rate` against `send`, with the disruption from
    /// `disrupted.0` to `disrupted.1`, and judges it against 1 % and a 300 ms outage.
    async fn window(
        rate: u32,
        window: Duration,
        disrupted: (Duration, Duration),
        send: impl Fn(Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = (Sample, Answer)>>>,
    ) -> (Vec<(Sample, Answer)>, crate::check::load::LoadVerdict) {
        let start = tokio::time::Instant::now();
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        let timer = async move {
            tokio::time::sleep(window).await;
            stopper.cancel();
        };
        let (answered, ()) = tokio::join!(schedule(rate, start, stop, send), timer);
        let samples: Vec<Sample> = answered.iter().map(|(s, _)| *s).collect();
        let disruption = Disruption { name: "restart".into(), start: disrupted.0, end: disrupted.1 };
        let budget = Budget { errors: 0.01, outage: Duration::from_millis(300), latency: None };
        let verdict = evaluate(&samples, &[disruption], &budget, window);
        (answered, verdict)
    }

    const S: fn(u64) -> Duration = Duration::from_millis;

    #[tokio::test(start_paused = true)]
    async fn requests_go_out_on_schedule_and_a_steady_window_is_within_budget() {
        let (answered, verdict) = window(20, S(1_990), (S(500), S(900)), backend(S(30), |_| false)).await;
        let sent: Vec<u128> = answered.iter().map(|(s, _)| s.at.as_millis()).collect();
        assert_eq!(sent.len(), 40, "20 a second for 2 s (the window closes between two ticks): {sent:?}");
        assert!(sent.windows(2).all(|w| w[1] - w[0] == 50), "every 50 ms: {sent:?}");
        assert!(verdict.passed(), "{verdict}");
        assert_eq!(verdict.recoveries[0].after, Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_over_budget_is_blown_and_its_recovery_measured() {
        // Failing from 600 ms to 1.2 s, the disruption starting at 500 ms.
        let failing = |at: Duration| at >= S(600) && at < S(1_200);
        let (_, verdict) = window(20, S(2_995), (S(500), S(700)), backend(S(10), failing)).await;
        assert!(!verdict.passed(), "{verdict}");
        assert_eq!(verdict.longest_outage, S(600), "from the first failure to the first pass after it: {verdict}");
        assert_eq!(verdict.recoveries[0].after, Some(S(700)), "the first pass after the outage, at 1.2 s: {verdict}");
        // A shorter outage (600 to 850 ms) is within the outage budget, not within the share.
        let short = |at: Duration| at >= S(600) && at < S(850);
        let (_, verdict) = window(20, S(2_995), (S(500), S(700)), backend(S(10), short)).await;
        assert!(!verdict.passed() && verdict.longest_outage == S(250), "{verdict}");
        let text = verdict.to_string();
        assert!(text.contains("over the budget's 1.00%") && !text.contains("is longer than"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_that_never_recovers_fails_and_a_hung_backend_still_counts_every_tick() {
        let (_, verdict) = window(20, S(2_995), (S(500), S(700)), backend(S(10), |at| at >= S(1_000))).await;
        assert!(!verdict.recovered, "{verdict}");
        assert!(!verdict.passed());
        // A backend that holds every request for 10 s at 100 a second: past 200 in flight, ticks
        // are failures it did not send; nothing is lost from the window.
        let (answered, verdict) = window(100, S(2_995), (S(500), S(700)), backend(S(10_000), |_| false)).await;
        assert_eq!(answered.len(), 300, "every tick of 3 s at 100/s is in the window");
        let not_sent =
            answered.iter().filter(|(_, a)| a.message.as_deref().is_some_and(|m| m.starts_with("not sent"))).count();
        assert_eq!(not_sent, 100, "the 201st tick on, at 2 s");
        assert!(!verdict.passed(), "{verdict}");
    }
}
