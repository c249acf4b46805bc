use super::*;
impl Context<'_> {
    pub(super) async fn expect_resource(&self, s: &ExpectResourceStep) -> StepResult {
        let r = &s.resource;
        let ns = r.namespace.as_deref().or(Some(self.namespace));
        let client = &self.live.client;
        let expected = format!("{}/{} to include {}", r.kind, r.name, s.matches);
        let last = LastFailure::default();
        let outcome = eventually(s.timeout.0, self.live.interval, &expected, || async {
            match k8s::get(client, &r.api_version, &r.kind, &r.name, ns).await {
                Ok(Some(object)) => match mismatch(&s.matches, &object, "") {
                    None => Attempt::Pass(Seen(format!("{}/{} matches", r.kind, r.name))),
                    Some(m) => {
                        last.judged();
                        Attempt::Fail(Seen(m))
                    }
                },
                Ok(None) => {
                    last.judged();
                    Attempt::Fail(Seen(format!("{}/{} does not exist", r.kind, r.name)))
                }
                Err(e) => {
                    last.errored();
                    Attempt::Fail(Seen(e.to_string()))
                }
            }
        })
        .await;
        outcome.map(|s| s.0).map_err(|e| last.failure(e.to_string()))
    }
}

/// Where `actual` does not include `expected` (maps: every expected key, recursively; lists:
/// every expected element matches some actual element, as `expect-resource` documents;
/// scalars: equal), as a field path and both values.
pub fn mismatch(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => want.iter().find_map(|(k, v)| {
            let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            match have.get(k) {
                Some(a) => mismatch(v, a, &here),
                None => Some(format!("{here}: missing (expected {v})")),
            }
        }),
        (Value::Array(want), Value::Array(have)) => want.iter().enumerate().find_map(|(i, w)| {
            (!have.iter().any(|h| mismatch(w, h, "").is_none()))
                .then(|| format!("{path}: no element matches expected [{i}] {w} (found {})", have.len()))
        }),
        (w, h) if w == h => None,
        (w, h) => Some(format!("{path}: {h}, expected {w}")),
    }
}
