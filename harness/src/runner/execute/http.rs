use super::*;
impl Context<'_> {
    pub(super) async fn http(&mut self, s: &HttpStep) -> StepResult {
        let probe = self.probe(false)?;
        let host = self.var("host");
        let extra = self.extra_headers(&s.request);
        let mesh = self.live.mesh;
        let expected = format!("{} {} -> {}", s.request.method, s.request.path, expectation(&s.expect));
        let answers = std::cell::RefCell::new(Vec::new());
        self.backend_proven = self.route_backend_proven(&s.request.path);
        let backend_proven = self.backend_proven;
        let last = LastFailure::default();
        let outcome = converge(s.converge.passes, s.converge.within.0, self.live.interval, &expected, || async {
            let versions = match self.pod_versions().await {
                Ok(v) => v,
                Err(e) => {
                    last.errored();
                    return Attempt::Fail(Failed::Unjudged(Unjudged(e)));
                }
            };
            let observation = probe.send(&s.request, &host, &extra, &versions).await;
            answers.borrow_mut().push(Answer::record(&observation, &self.loaded.scenario.snapshot.redact_headers));
            // Every observation is judged, a transport failure through Kong included.
            last.judged();
            let verdict = evaluate(&s.expect, &observation, mesh, Path::ThroughKong);
            judged(resolve_ambiguity(verdict, backend_proven), observation)
        })
        .await;
        self.record(RecordedStep::Http(s), answers.into_inner(), outcome.is_ok());
        // Kong is meshed: the echo backend answering it proves the Services Kong routed the
        // request to, for a later ambiguous refusal.
        if let Ok(judged) = &outcome
            && matches!(&judged.observation.outcome, crate::probe::Outcome::Response(r) if r.echo.is_some())
            && self.live.mesh != Mesh::None
        {
            let backends = self.kong_backends(&s.request.path);
            self.proven.extend(backends);
        }
        self.keep(outcome, &last)
    }

    /// Whether every Service Kong routes `path` (on the scenario's host) to has answered a meshed
    /// client earlier, read from the scenario's Ingresses and HTTPRoutes on a Gateway. No route
    /// found means no proof.
    pub(super) fn route_backend_proven(&self, path: &str) -> bool {
        let backends = self.kong_backends(path);
        !backends.is_empty() && backends.iter().all(|b| self.proven.contains(b))
    }

    /// The Services the scenario's routes send `path` on its host to (none when its fixtures do
    /// not load).
    fn kong_backends(&self, path: &str) -> std::collections::BTreeSet<String> {
        let files: Vec<String> = self.loaded.scenario.fixtures.iter().map(|f| f.value.clone()).collect();
        let Ok(objects) = self.manifests(&files) else { return Default::default() };
        ingress_backends(&objects, &self.var("host"), path)
    }
}

/// The Services Kong's routes among `objects` send `host` + `path` to. Ingresses by KIC's matching (a rule
/// for the host or for any host; `Exact` paths equal, `Prefix` and `ImplementationSpecific`
/// paths prefix by path segment).
pub(super) fn ingress_backends(objects: &[Value], host: &str, path: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for ingress in objects.iter().filter(|o| o["kind"] == "Ingress") {
        for rule in ingress.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten() {
            if rule.get("host").and_then(Value::as_str).is_some_and(|h| h != host) {
                continue;
            }
            for p in rule.pointer("/http/paths").and_then(Value::as_array).into_iter().flatten() {
                let want = p.get("path").and_then(Value::as_str).unwrap_or("/");
                let matches = match p.get("pathType").and_then(Value::as_str) {
                    Some("Exact") => path == want,
                    _ => {
                        let want = want.trim_end_matches('/');
                        want.is_empty() || path == want || path.starts_with(&format!("{want}/"))
                    }
                };
                if let (true, Some(service)) = (matches, p.pointer("/backend/service/name").and_then(Value::as_str)) {
                    out.insert(service.to_owned());
                }
            }
        }
    }
    out.extend(httproute_backends(objects, host, path));
    out
}

/// The Services the HTTPRoutes on a Gateway among `objects` send `host` + `path` to: a route
/// whose hostnames include the host (or that names none), a rule with a PathPrefix match by path
/// segment, an Exact one equal, or no match (every path); backends in the route's namespace. A
/// route whose parents are Services (GAMMA) is the mesh's, not Kong's.
fn httproute_backends(objects: &[Value], host: &str, path: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for route in objects.iter().filter(|o| o["kind"] == "HTTPRoute") {
        let parents = route.pointer("/spec/parentRefs").and_then(Value::as_array).cloned().unwrap_or_default();
        if parents.iter().all(|p| p.get("kind").and_then(Value::as_str) == Some("Service")) {
            continue;
        }
        let hostnames: Vec<&str> = route
            .pointer("/spec/hostnames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !hostnames.is_empty() && !hostnames.contains(&host) {
            continue;
        }
        for rule in route.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten() {
            let matches: Vec<&Value> = rule.get("matches").and_then(Value::as_array).into_iter().flatten().collect();
            let matched = matches.is_empty()
                || matches.iter().any(|m| {
                    let want = m.pointer("/path/value").and_then(Value::as_str).unwrap_or("/");
                    match m.pointer("/path/type").and_then(Value::as_str) {
                        Some("Exact") => path == want,
                        // PathPrefix (the default) by path segment; RegularExpression not judged.
                        Some("RegularExpression") => false,
                        _ => {
                            let want = want.trim_end_matches('/');
                            want.is_empty() || path == want || path.starts_with(&format!("{want}/"))
                        }
                    }
                });
            if !matched {
                continue;
            }
            let route_ns = route.pointer("/metadata/namespace").and_then(Value::as_str);
            for backend in rule.get("backendRefs").and_then(Value::as_array).into_iter().flatten() {
                let service = backend.get("kind").and_then(Value::as_str).is_none_or(|k| k == "Service");
                let Some(name) = backend.get("name").and_then(Value::as_str) else { continue };
                match backend.get("namespace").and_then(Value::as_str) {
                    // Another namespace's Service is never among the proven ones (they are this
                    // scenario's), so it keeps the route unproven instead of being left out.
                    Some(ns) if Some(ns) != route_ns => {
                        out.insert(format!("{ns}/{name}"));
                    }
                    _ if service => {
                        out.insert(name.to_owned());
                    }
                    _ => {
                        out.insert(format!("{name} (not a Service)"));
                    }
                }
            }
        }
    }
    out
}
