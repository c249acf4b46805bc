//! Expectations against observations: status, headers, backend, mTLS identity, refusal, traces.

use std::fmt;

use serde::Serialize;

use super::denial::{self, Denial, Path};
use super::xfcc::{self, Identity};
use crate::model::{CarriedTrace, Expect, HeaderMatch, Mesh, Rejection, TraceContextFormat, TraceExpect};
use crate::probe::trace::{Carried, SpanTree, carried};
use crate::probe::{Observation, Outcome};

/// Pass or fail, with every unmet expectation spelled out, and the mesh denial that a
/// `refused` expectation recognised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub failures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denial: Option<Denial>,
}

impl Verdict {
    pub fn of(failures: Vec<String>) -> Verdict {
        Verdict { failures, denial: None }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.passed(), self.denial) {
            (true, Some(denial)) => write!(f, "pass: refused, {denial}"),
            (true, None) => f.write_str("pass"),
            (false, _) => write!(f, "fail: {}", self.failures.join("; ")),
        }
    }
}

/// Judge one observation. `mesh` decides how `mtls` is evidenced and what counts as a refusal;
/// `path` says whether Kong stood between the client and the mesh.
pub fn evaluate(expect: &Expect, observation: &Observation, mesh: Mesh, path: Path) -> Verdict {
    let mut failures = Vec::new();
    let mut denial = None;
    if expect.refused {
        match denial::classify(mesh, path, &observation.outcome) {
            Ok(d) => denial = Some(d),
            Err(seen) => failures.push(format!("expected {mesh} to refuse the request, but {seen}")),
        }
    }
    let response = match &observation.outcome {
        Outcome::Transport { kind, message } => {
            if !expect.refused {
                failures.push(format!("no response ({kind:?}): {message}"));
            }
            return Verdict { failures, denial };
        }
        Outcome::Response(r) => r,
    };
    if let Some(status) = &expect.status
        && !status.as_slice().contains(&response.status)
    {
        failures.push(format!("status {} is not {}", response.status, one_of(status.as_slice())));
    }
    for (name, m) in &expect.headers {
        if let Some(problem) = header_problem("response header", name, response.header(name), m) {
            failures.push(problem);
        }
    }
    let needs_echo = expect.backend.is_some() || expect.mtls.is_some();
    match (&response.echo, needs_echo) {
        (None, true) => failures.push(format!("the answer (status {}) is not from the echo backend", response.status)),
        (Some(echo), _) => {
            if let Some(backend) = &expect.backend {
                if let Some(versions) = &backend.version {
                    match response.version.as_deref() {
                        Some(v) if versions.as_slice().iter().any(|x| x == v) => {}
                        Some(v) => failures.push(format!(
                            "answered by version {v} (pod {}), expected {}",
                            echo.pod,
                            one_of(versions.as_slice())
                        )),
                        None => failures.push(format!("pod {} has no known `version` label", echo.pod)),
                    }
                }
                if let Some(ns) = &backend.namespace
                    && &echo.namespace != ns
                {
                    failures.push(format!("backend namespace {:?}, expected {ns:?}", echo.namespace));
                }
                if let Some(host) = &backend.host
                    && &echo.host != host
                {
                    failures.push(format!("backend saw Host {:?}, expected {host:?}", echo.host));
                }
                for (name, m) in &backend.headers {
                    if let Some(problem) = header_problem("backend request header", name, echo.header(name), m) {
                        failures.push(problem);
                    }
                }
            }
            if let Some(problem) =
                expect.mtls.as_ref().and_then(|m| identity_problem(&m.client, mesh, |h| echo.header(h)))
            {
                failures.push(problem);
            }
        }
        (None, false) => {}
    }
    Verdict { failures, denial }
}

/// An ambiguous denial ([`Denial::is_ambiguous`]: Kong's 502, Envoy's relayed peer reset,
/// ztunnel's reset) passes `refused` only when `backend_proven`: an earlier step of the scenario
/// had the echo backend behind the same Service answer a meshed client (a passing `from-pod`
/// step with `client: {meshed: true}`, or a request through Kong, which is meshed), so something
/// does listen behind the Service and answers over the mesh. Otherwise the same answer would
/// also come from a backend that is down, and the verdict would name a cause it cannot know.
pub fn resolve_ambiguity(mut verdict: Verdict, backend_proven: bool) -> Verdict {
    if let Some(denial) = verdict.denial.filter(|d| d.is_ambiguous() && !backend_proven) {
        verdict.denial = None;
        verdict.failures.push(format!(
            "the answer looks like {denial}, but Kong, Envoy and ztunnel answer the same when nothing listens \
             behind the Service or a connection dies for another reason; it counts as the mesh's refusal only \
             after the scenario proved the backend answers meshed clients (a passing step before this one \
             answered by the echo backend behind the same Service: from a pod with `client: {{meshed: true}}`, \
             or through Kong)"
        ));
    }
    verdict
}

fn one_of<T: fmt::Display>(items: &[T]) -> String {
    match items {
        [one] => one.to_string(),
        many => format!("one of [{}]", many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    }
}

fn header_problem(what: &str, name: &str, actual: Option<&str>, m: &HeaderMatch) -> Option<String> {
    let ok = match (m, actual) {
        (HeaderMatch::Absent, None) | (HeaderMatch::Present, Some(_)) => true,
        (HeaderMatch::Equals(v), Some(a)) => a == v,
        (HeaderMatch::Contains(v), Some(a)) => a.contains(v.as_str()),
        (HeaderMatch::OneOf(vs), Some(a)) => vs.iter().any(|v| v == a),
        _ => false,
    };
    (!ok).then(|| {
        format!(
            "{what} {name}: expected {}, got {}",
            describe(m),
            actual.map_or("nothing".to_owned(), |a| format!("{a:?}"))
        )
    })
}

fn describe(m: &HeaderMatch) -> String {
    match m {
        HeaderMatch::Equals(v) => format!("{v:?}"),
        HeaderMatch::Contains(v) => format!("something containing {v:?}"),
        HeaderMatch::OneOf(vs) => format!("one of {vs:?}"),
        HeaderMatch::Present => "the header".into(),
        HeaderMatch::Absent => "no such header".into(),
    }
}

/// The caller identity the backend saw, as each mesh shows it: Istio's XFCC `URI`, Linkerd's
/// `l5d-client-id` (research F9).
pub fn observed_identity(mesh: Mesh, header: impl Fn(&str) -> Option<String>) -> Result<Identity, String> {
    match mesh {
        Mesh::Istio => {
            let value = header("x-forwarded-client-cert")
                .ok_or("no X-Forwarded-Client-Cert reached the backend (is the caller in the mesh?)")?;
            match xfcc::caller_identity(&value) {
                Ok(Some(id)) => Ok(id),
                Ok(None) => Err(format!("X-Forwarded-Client-Cert has no spiffe URI: {value:?}")),
                Err(e) => Err(format!("X-Forwarded-Client-Cert {value:?} does not parse: {e}")),
            }
        }
        Mesh::Linkerd => {
            let value =
                header("l5d-client-id").ok_or("no l5d-client-id reached the backend (is the caller in the mesh?)")?;
            Identity::from_linkerd_client_id(&value)
                .ok_or_else(|| format!("l5d-client-id {value:?} is not a Linkerd identity"))
        }
        // ztunnel parses no HTTP and a waypoint sanitises XFCC unless asked otherwise (istio/istio
        // 1.30 pilot/pkg/networking/core/listener_waypoint.go): the backend sees no identity.
        Mesh::IstioAmbient => Err(
            "in ambient mode the backend sees no caller identity (ztunnel adds no header): prove identity with an L4 AuthorizationPolicy or ztunnel's metrics"
                .to_owned(),
        ),
        Mesh::None => Err("without a mesh there is no workload identity to check".to_owned()),
    }
}

fn identity_problem<'a>(expected: &str, mesh: Mesh, header: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
    match observed_identity(mesh, |h| header(h).map(str::to_owned)) {
        Ok(seen) if seen.to_string() == expected => None,
        Ok(seen) => Some(format!("the backend saw caller {seen}, expected {expected}")),
        Err(why) => Some(why),
    }
}

/// How an apply ended, as far as a `rejected` expectation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    Accepted,
    /// Discovery does not serve the kind.
    UnknownKind {
        kind: String,
    },
    /// The API server refused the object, with its own message.
    Refused {
        server_message: String,
    },
    /// Anything else (no connection, malformed object): never what a scenario expects.
    Failed(String),
}

/// Whether `outcome` is the refusal `expected` names. Only the error's class or the API
/// server's own message count: the harness's wording names the kind whatever went wrong.
pub fn judge_rejection(expected: &Rejection, outcome: &ApplyOutcome) -> Result<String, String> {
    match (expected, outcome) {
        (Rejection::UnknownKind, ApplyOutcome::UnknownKind { kind }) => {
            Ok(format!("rejected as expected: the API server serves no kind {kind}"))
        }
        (Rejection::Message(text), ApplyOutcome::Refused { server_message })
            if server_message.contains(text.as_str()) =>
        {
            Ok(format!("rejected as expected: {server_message}"))
        }
        (_, ApplyOutcome::Accepted) => {
            Err(format!("expected the API server to refuse it ({expected}), but it accepted it"))
        }
        (_, ApplyOutcome::UnknownKind { kind }) => {
            Err(format!("expected a refusal with {expected}, but the API server serves no kind {kind}"))
        }
        (_, ApplyOutcome::Refused { server_message }) => {
            Err(format!("expected a refusal with {expected}, but the API server said: {server_message}"))
        }
        (_, ApplyOutcome::Failed(e)) => {
            Err(format!("expected a refusal with {expected}, but the apply failed otherwise: {e}"))
        }
    }
}

/// A trace must hold every expected service and edge, and no span of an `absent` service. An
/// empty trace never passes: a step that expects nothing of the collector still expects a trace.
pub fn evaluate_trace(expect: &TraceExpect, tree: &SpanTree) -> Verdict {
    let services = tree.services();
    let edges = tree.edges();
    let mut failures = Vec::new();
    if tree.roots.is_empty() {
        failures.push("the collector holds no span of this trace".to_owned());
    }
    for s in &expect.services {
        if !services.contains(s) {
            failures.push(format!("no span from service {s:?} (seen: {services:?})"));
        }
    }
    for e in &expect.edges {
        if !edges.contains(&(e.from.clone(), e.to.clone())) {
            failures.push(format!("no {} -> {} edge (seen: {edges:?})", e.from, e.to));
        }
    }
    for s in &expect.absent {
        if services.contains(s) {
            failures.push(format!("a span from service {s:?}, which must report nothing for this trace"));
        }
    }
    Verdict::of(failures)
}

/// The traced request's own answer: it must have reached a backend (2xx), and what the
/// backend received of the client's trace must be as `expect.backend` says. The live step and
/// replay both judge it first, before any collector answer.
pub fn judge_traced_request(expect: &TraceExpect, trace_id: &str, observation: &Observation) -> Result<(), String> {
    let received = match &observation.outcome {
        Outcome::Response(r) if (200..300).contains(&r.status) => r.echo.as_ref().map(|e| &e.headers),
        Outcome::Response(r) => return Err(format!("the traced request got {} (a route not ready?)", r.status)),
        Outcome::Transport { kind, message } => {
            return Err(format!("the traced request got no answer ({kind:?}): {message}"));
        }
    };
    let verdict = evaluate_carried(expect, trace_id, received);
    if verdict.passed() { Ok(()) } else { Err(format!("trace {trace_id}: {verdict}")) }
}

/// One collector answer for `trace_id` against `expect`: the tree it holds (when it is a
/// readable answer for that trace) and the verdict.
pub fn judge_collector_answer(
    expect: &TraceExpect,
    trace_id: &str,
    answer: &crate::probe::observation::Answer,
) -> (Option<SpanTree>, Verdict) {
    match crate::probe::trace::tree_of(answer, trace_id) {
        Ok(tree) => {
            let verdict = evaluate_trace(expect, &tree);
            (Some(tree), verdict)
        }
        Err(e) => (None, Verdict::of(vec![e])),
    }
}

/// What the backend received of the client's trace (`trace_id`), per header format, against
/// `expect.backend`. `received` is the echo backend's report of the request's headers; without
/// one (no echo body) every expectation fails. A format whose headers are there but hold no
/// valid trace id fails every expectation, `absent` included; `w3c+b3` is one state only when
/// both parts are in it.
pub fn evaluate_carried(
    expect: &TraceExpect,
    trace_id: &str,
    received: Option<&std::collections::BTreeMap<String, Vec<String>>>,
) -> Verdict {
    let client = crate::probe::trace::widen(trace_id);
    let state = |format: TraceContextFormat, headers| match carried(format, headers) {
        Carried::Absent => Ok(CarriedTrace::Absent),
        Carried::Trace(id) if id == client => Ok(CarriedTrace::ClientTrace),
        Carried::Trace(_) => Ok(CarriedTrace::OtherTrace),
        Carried::Malformed(what) => Err(format!("a malformed {what}")),
    };
    let mut failures = Vec::new();
    for (format, wanted) in &expect.backend {
        let Some(headers) = received else {
            failures.push(format!("{format}: the backend's report of the request is missing (not the echo backend?)"));
            continue;
        };
        let seen = match format {
            TraceContextFormat::W3cAndB3 => {
                match (state(TraceContextFormat::W3c, headers), state(TraceContextFormat::B3, headers)) {
                    (Ok(w3c), Ok(b3)) if w3c == b3 => Ok(w3c),
                    (Ok(w3c), Ok(b3)) => Err(format!("w3c: {}, b3: {}", describe_carried(w3c), describe_carried(b3))),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
            single => state(*single, headers),
        };
        let described = match seen {
            Ok(seen) if seen == *wanted => continue,
            Ok(seen) => describe_carried(seen).to_owned(),
            Err(why) => why,
        };
        let shown: Vec<String> = ["traceparent", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "b3"]
            .iter()
            .filter_map(|h| headers.get(*h).map(|v| format!("{h}: {}", v.join(","))))
            .collect();
        failures.push(format!(
            "{format}: the backend received {described} (expected {}); its trace headers: {}",
            describe_carried(*wanted),
            if shown.is_empty() { "none".to_owned() } else { shown.join("; ") }
        ));
    }
    Verdict::of(failures)
}

fn describe_carried(c: CarriedTrace) -> &'static str {
    match c {
        CarriedTrace::ClientTrace => "the client's trace id",
        CarriedTrace::OtherTrace => "another trace's id",
        CarriedTrace::Absent => "no such header",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{BackendExpect, MtlsExpect, OneOrMany, TraceEdge};
    use crate::probe::{Echo, Response, TransportKind};

    fn echo_response(status: u16, headers: &[(&str, &str)]) -> Observation {
        let echo = Echo {
            path: "/".into(),
            host: "echo.shop.svc.cluster.local".into(),
            method: "GET".into(),
            namespace: "shop".into(),
            pod: "echo-v1-abc".into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect(),
            ..Echo::default()
        };
        let response = Response {
            status,
            headers: BTreeMap::from([("x-ratelimit-limit-minute".to_owned(), vec!["100".to_owned()])]),
            echo: Some(echo),
            version: Some("v1".into()),
            body: None,
        };
        Observation { outcome: Outcome::Response(Box::new(response)), elapsed_ms: 3 }
    }

    const XFCC: &str = "By=spiffe://cluster.local/ns/shop/sa/default;Hash=ab;Subject=\"\";URI=spiffe://cluster.local/ns/kong/sa/kong-gateway";

    #[test]
    fn partial_matching_on_status_headers_and_backend() {
        let obs = echo_response(200, &[("x-kong-request-id", "r1")]);
        let expect = Expect {
            status: Some(OneOrMany::Many(vec![200, 204])),
            headers: BTreeMap::from([("X-RateLimit-Limit-Minute".to_owned(), HeaderMatch::Equals("100".into()))]),
            backend: Some(BackendExpect {
                version: Some(OneOrMany::One("v1".into())),
                namespace: Some("shop".into()),
                host: Some("echo.shop.svc.cluster.local".into()),
                headers: BTreeMap::from([
                    ("x-kong-request-id".to_owned(), HeaderMatch::Present),
                    ("x-debug".to_owned(), HeaderMatch::Absent),
                ]),
            }),
            ..Expect::default()
        };
        assert_eq!(evaluate(&expect, &obs, Mesh::None, Path::ThroughKong), Verdict::default());

        let wrong = Expect {
            status: Some(OneOrMany::One(201)),
            backend: Some(BackendExpect { version: Some(OneOrMany::One("v2".into())), ..BackendExpect::default() }),
            ..Expect::default()
        };
        let v = evaluate(&wrong, &obs, Mesh::None, Path::ThroughKong);
        assert_eq!(v.failures, ["status 200 is not 201", "answered by version v1 (pod echo-v1-abc), expected v2"]);
    }

    #[test]
    fn mtls_is_checked_per_mesh() {
        let expect = Expect { mtls: Some(MtlsExpect { client: "kong/kong-gateway".into() }), ..Expect::default() };
        assert!(
            evaluate(
                &expect,
                &echo_response(200, &[("x-forwarded-client-cert", XFCC)]),
                Mesh::Istio,
                Path::ThroughKong
            )
            .passed()
        );
        let l5d = [("l5d-client-id", "kong-gateway.kong.serviceaccount.identity.linkerd.cluster.local")];
        assert!(evaluate(&expect, &echo_response(200, &l5d), Mesh::Linkerd, Path::ThroughKong).passed());
        // The same header under the other mesh is no evidence.
        let v = evaluate(&expect, &echo_response(200, &l5d), Mesh::Istio, Path::ThroughKong);
        assert_eq!(v.failures, ["no X-Forwarded-Client-Cert reached the backend (is the caller in the mesh?)"]);
        let other = XFCC.replace("ns/kong/sa/kong-gateway", "ns/kong/sa/kong");
        let v = evaluate(
            &expect,
            &echo_response(200, &[("x-forwarded-client-cert", &other)]),
            Mesh::Istio,
            Path::ThroughKong,
        );
        assert_eq!(v.failures, ["the backend saw caller kong/kong, expected kong/kong-gateway"]);
    }

    fn transport(kind: TransportKind) -> Observation {
        Observation { outcome: Outcome::Transport { kind, message: format!("{kind:?}") }, elapsed_ms: 1 }
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Observation {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect();
        let response = Response::from_wire(status, headers, body.as_bytes(), &Default::default(), usize::MAX);
        Observation { outcome: Outcome::Response(Box::new(response)), elapsed_ms: 1 }
    }

    fn refused(observation: &Observation, mesh: Mesh, path: Path) -> Verdict {
        evaluate(&Expect { refused: true, ..Expect::default() }, observation, mesh, path)
    }

    /// Kong's 502 and Envoy's relayed reset are what a backend that is down gives too: they pass
    /// `refused` only with proof that the backend answers meshed clients; RBAC's 403 never needs it.
    #[test]
    fn ambiguous_denials_need_a_proven_backend() {
        let kong_502 = answer(
            502,
            &[("server", "kong/3.9.1")],
            "{\n  \"message\":\"An invalid response was received from the upstream server\",\n  \"request_id\":\"4f3a\"\n}",
        );
        let relayed = answer(
            503,
            &[("server", "envoy")],
            "upstream connect error or disconnect/reset before headers. reset reason: remote reset",
        );
        for ambiguous in [&kong_502, &relayed] {
            let v = refused(ambiguous, Mesh::Istio, Path::ThroughKong);
            assert!(v.passed(), "{v}");
            let unproven = resolve_ambiguity(v.clone(), false);
            assert!(!unproven.passed() && unproven.denial.is_none(), "{unproven}");
            assert!(unproven.to_string().contains("proved the backend answers meshed clients"), "{unproven}");
            assert_eq!(resolve_ambiguity(v.clone(), true), v);
        }
        let rbac = refused(&answer(403, &[], "RBAC: access denied"), Mesh::Istio, Path::ThroughKong);
        assert_eq!(resolve_ambiguity(rbac.clone(), false), rbac);
        let l5d = refused(&answer(403, &[("content-length", "0")], ""), Mesh::Linkerd, Path::ThroughKong);
        assert_eq!(resolve_ambiguity(l5d.clone(), false), l5d);
        // A failing verdict stays failing, proof or not.
        let echo = refused(&echo_response(200, &[]), Mesh::Istio, Path::ThroughKong);
        assert!(!resolve_ambiguity(echo, true).passed());
    }

    #[test]
    fn refused_passes_only_on_the_meshes_own_denials() {
        use Path::*;
        // Istio: a plaintext client into STRICT is reset by the server sidecar; RBAC answers 403.
        assert_eq!(
            refused(&transport(TransportKind::Reset), Mesh::Istio, FromPod).denial,
            Some(Denial::ConnectionReset)
        );
        let rbac = answer(403, &[("content-type", "text/plain")], "RBAC: access denied");
        assert_eq!(refused(&rbac, Mesh::Istio, FromPod).denial, Some(Denial::IstioRbac));
        assert_eq!(refused(&rbac, Mesh::Istio, ThroughKong).denial, Some(Denial::IstioRbac));
        let relayed = answer(
            503,
            &[("server", "envoy")],
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        );
        assert_eq!(refused(&relayed, Mesh::Istio, ThroughKong).denial, Some(Denial::UpstreamReset));
        // Linkerd: 403 with l5d-proxy-error; an opaque server resets.
        // linkerd2-proxy's permission_denied: 403, content-length 0; l5d-proxy-error only
        // reaches a client whose own proxy failed to strip it.
        let l5d = answer(403, &[("content-length", "0")], "");
        assert_eq!(refused(&l5d, Mesh::Linkerd, FromPod).denial, Some(Denial::LinkerdPolicy));
        assert_eq!(refused(&l5d, Mesh::Linkerd, ThroughKong).denial, Some(Denial::LinkerdPolicy));
        let with_header =
            answer(403, &[("l5d-proxy-error", "unauthorized request on route"), ("content-length", "0")], "");
        assert_eq!(refused(&with_header, Mesh::Linkerd, FromPod).denial, Some(Denial::LinkerdPolicy));
        assert_eq!(
            refused(&transport(TransportKind::Reset), Mesh::Linkerd, FromPod).denial,
            Some(Denial::ConnectionReset)
        );
        assert!(refused(&l5d, Mesh::Linkerd, FromPod).to_string().starts_with("pass: refused"));
    }

    /// Ambient mode: ztunnel's reset from a pod, a waypoint's RBAC 403 either way, Kong's 502
    /// only as the ambiguous relayed form; nothing else, and no Linkerd shape.
    #[test]
    fn refused_in_ambient_mode() {
        use Path::*;
        let ambient = Mesh::IstioAmbient;
        let reset = refused(&transport(TransportKind::Reset), ambient, FromPod);
        assert_eq!(reset.denial, Some(Denial::ZtunnelReset));
        // ztunnel resets a connection to a dead backend alike: only with the backend proven.
        assert!(!resolve_ambiguity(reset.clone(), false).passed());
        assert!(resolve_ambiguity(reset, true).passed());
        let rbac = answer(403, &[], "RBAC: access denied");
        assert_eq!(refused(&rbac, ambient, FromPod).denial, Some(Denial::IstioRbac));
        assert_eq!(refused(&rbac, ambient, ThroughKong).denial, Some(Denial::IstioRbac));
        let kong_502 = answer(
            502,
            &[("server", "kong/3.9.1")],
            "{\n  \"message\":\"An invalid response was received from the upstream server\",\n  \"request_id\":\"4f3a\"\n}",
        );
        let v = refused(&kong_502, ambient, ThroughKong);
        assert_eq!(v.denial, Some(Denial::UpstreamReset));
        assert!(!resolve_ambiguity(v.clone(), false).passed(), "unproven: {v}");
        assert!(resolve_ambiguity(v, true).passed());
        for kind in [TransportKind::Dns, TransportKind::Timeout, TransportKind::Refused, TransportKind::Tls] {
            assert!(!refused(&transport(kind), ambient, FromPod).passed(), "{kind:?}");
        }
        assert!(!refused(&transport(TransportKind::Reset), ambient, ThroughKong).passed());
        assert!(!refused(&answer(403, &[("content-length", "0")], ""), ambient, FromPod).passed(), "Linkerd's shape");
        assert!(!refused(&echo_response(200, &[]), ambient, FromPod).passed());
        // No identity header to read in ambient mode, whatever the answer carries.
        let expect = Expect { mtls: Some(MtlsExpect { client: "kong/kong-gateway".into() }), ..Expect::default() };
        let xfcc = echo_response(200, &[("x-forwarded-client-cert", XFCC)]);
        assert!(!evaluate(&expect, &xfcc, ambient, ThroughKong).passed());
    }

    #[test]
    fn refused_fails_on_everything_else() {
        use Path::*;
        for kind in [TransportKind::Dns, TransportKind::Timeout, TransportKind::Refused, TransportKind::Tls] {
            for mesh in [Mesh::Istio, Mesh::Linkerd] {
                let v = refused(&transport(kind), mesh, FromPod);
                assert!(!v.passed() && v.denial.is_none(), "{kind:?} on {mesh} passed");
            }
        }
        // Through Kong, a reset is Kong's own failure, not the mesh's answer.
        assert!(!refused(&transport(TransportKind::Reset), Mesh::Istio, ThroughKong).passed());
        // The client's own sidecar finding no endpoint, and an Envoy connect failure (nothing listening).
        let no_upstream = answer(503, &[("server", "envoy")], "no healthy upstream");
        assert!(!refused(&no_upstream, Mesh::Istio, ThroughKong).passed());
        assert!(!refused(&no_upstream, Mesh::Istio, FromPod).passed());
        let connect = answer(
            503,
            &[],
            "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: 111",
        );
        assert!(!refused(&connect, Mesh::Istio, ThroughKong).passed());
        // Another backend's 403, Kong's own 404, Istio's body on Linkerd, Linkerd's header on Istio.
        assert!(!refused(&answer(403, &[], "Forbidden"), Mesh::Istio, FromPod).passed());
        let kong_404 = answer(404, &[("server", "kong/3.9.1")], r#"{"message":"no Route matched with those values"}"#);
        assert!(!refused(&kong_404, Mesh::Istio, ThroughKong).passed());
        assert!(!refused(&kong_404, Mesh::Linkerd, ThroughKong).passed());
        assert!(!refused(&answer(403, &[], "RBAC: access denied"), Mesh::Linkerd, FromPod).passed());
        assert!(!refused(&answer(403, &[("l5d-proxy-error", "x")], ""), Mesh::Istio, FromPod).passed());
        // An empty 403 without `content-length: 0` (e.g. the answer to a HEAD) is not the proxy's.
        assert!(!refused(&answer(403, &[("content-length", "153")], ""), Mesh::Linkerd, FromPod).passed());
        // Kong's own 403 (a JSON body) is no Linkerd denial.
        let kong_403 =
            answer(403, &[], "{\n  \"message\":\"You cannot consume this service\",\n  \"request_id\":\"ab\"\n}");
        assert!(!refused(&kong_403, Mesh::Linkerd, ThroughKong).passed());
        // Linkerd's client-side failure (a 502/504 with l5d-proxy-error) is not a denial.
        let v = refused(&answer(504, &[("l5d-proxy-error", "service in fail-fast")], ""), Mesh::Linkerd, FromPod);
        assert!(v.failures[0].contains("not a policy denial"), "{v}");
        // The echo backend answering, with or without identity headers.
        let v = refused(&echo_response(200, &[("x-forwarded-client-cert", XFCC)]), Mesh::Istio, FromPod);
        assert_eq!(
            v.failures,
            [
                "expected istio to refuse the request, but backend pod echo-v1-abc answered 200: the request was not refused"
            ]
        );
        // No mesh: nothing can refuse.
        assert!(!refused(&transport(TransportKind::Reset), Mesh::None, FromPod).passed());
        // And a refusal where none is expected is a failure naming the transport error.
        let v = evaluate(&Expect::default(), &transport(TransportKind::Reset), Mesh::Istio, FromPod);
        assert_eq!(v.failures, ["no response (Reset): Reset"]);
    }

    #[test]
    fn rejections_match_the_class_or_the_servers_message_only() {
        let unknown = ApplyOutcome::UnknownKind { kind: "split.smi-spec.io/v1alpha2 TrafficSplit".into() };
        assert!(judge_rejection(&Rejection::UnknownKind, &unknown).is_ok());
        // Every other way an apply of a TrafficSplit can fail names the kind in the harness's
        // wording; none of them is the expected refusal.
        let webhook = ApplyOutcome::Refused {
            server_message: "Internal error occurred: failed calling webhook \"validate.linkerd.io\"".into(),
        };
        let offline = ApplyOutcome::Failed("applying TrafficSplit/backend-split: connection refused".into());
        for outcome in [&ApplyOutcome::Accepted, &webhook, &offline] {
            assert!(judge_rejection(&Rejection::UnknownKind, outcome).is_err(), "{outcome:?}");
        }
        let strict = ApplyOutcome::Refused { server_message: ".spec.weights: field not declared in schema".into() };
        let by_message = Rejection::Message("field not declared in schema".into());
        assert!(judge_rejection(&by_message, &strict).is_ok());
        assert!(judge_rejection(&by_message, &webhook).is_err());
        assert!(judge_rejection(&by_message, &unknown).is_err());
        assert!(judge_rejection(&by_message, &ApplyOutcome::Accepted).is_err());
    }

    fn trace(expect: TraceExpect) -> Verdict {
        let spans = crate::probe::trace::decode(crate::probe::trace::tests::JAEGER_LINKERD).unwrap();
        evaluate_trace(&expect, &SpanTree::build(&spans))
    }

    #[test]
    fn traces_need_their_services_and_edges() {
        let expect = TraceExpect {
            services: vec!["kong".into(), "kong-gateway.kong".into(), "echo.shop".into()],
            edges: vec![
                TraceEdge { from: "kong".into(), to: "kong-gateway.kong".into() },
                TraceEdge { from: "kong-gateway.kong".into(), to: "echo.shop".into() },
            ],
            ..TraceExpect::default()
        };
        assert!(trace(expect).passed());
        let missing = TraceExpect {
            services: vec!["jaeger".into()],
            // Both services report, but not as parent and child.
            edges: vec![TraceEdge { from: "kong".into(), to: "echo.shop".into() }],
            ..TraceExpect::default()
        };
        assert_eq!(trace(missing).failures.len(), 2);
        // An empty trace fails even an expectation that names nothing.
        let nothing = evaluate_trace(&TraceExpect::default(), &SpanTree::build(&[]));
        assert_eq!(nothing.failures, ["the collector holds no span of this trace"]);
    }

    #[test]
    fn absent_services_fail_the_trace_when_they_report() {
        let kong_only = TraceExpect {
            services: vec!["kong".into()],
            absent: vec!["kong-gateway.kong".into(), "echo.shop".into()],
            ..TraceExpect::default()
        };
        let v = trace(kong_only.clone());
        assert_eq!(v.failures.len(), 2, "{v}");
        // Kong's span alone (what Linkerd's proxies leave for a single `b3` header) passes.
        let spans = crate::probe::trace::decode(crate::probe::trace::tests::JAEGER_LINKERD).unwrap();
        let kong: Vec<_> = spans.into_iter().filter(|s| s.service == "kong").collect();
        assert!(evaluate_trace(&kong_only, &SpanTree::build(&kong)).passed());
    }

    fn carried_to(expect: &[(TraceContextFormat, CarriedTrace)], headers: &[(&str, &str)]) -> Verdict {
        let expect = TraceExpect { backend: expect.iter().copied().collect(), ..TraceExpect::default() };
        let received: BTreeMap<String, Vec<String>> =
            headers.iter().map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()])).collect();
        evaluate_carried(&expect, crate::probe::trace::tests::TRACE_ID, Some(&received))
    }

    /// Header shapes as the echo backend reports them behind each component: Linkerd rewrites the
    /// span id in the format that came in and drops nothing else (linkerd2-proxy
    /// linkerd/trace-context propagation.rs); Kong's `preserve` re-injects the extracted format.
    #[test]
    fn backend_headers_are_judged_per_format_both_ways() {
        use CarriedTrace::*;
        use TraceContextFormat::*;
        let id = crate::probe::trace::tests::TRACE_ID;
        let w3c = format!("00-{id}-9a9a9a9a9a9a9a9a-01");
        let single = format!("{id}-9a9a9a9a9a9a9a9a-1");
        // W3C in, W3C out, no B3 made up on the way.
        assert!(carried_to(&[(W3c, ClientTrace), (B3, Absent), (B3Single, Absent)], &[("traceparent", &w3c)]).passed());
        // Single b3 kept by Kong, no W3C: what Linkerd passes on untouched.
        assert!(carried_to(&[(B3Single, ClientTrace), (W3c, Absent)], &[("b3", &single)]).passed());

        // The failing answers: a new trace began, the header vanished, a header appeared.
        let fresh = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let v = carried_to(&[(W3c, ClientTrace)], &[("traceparent", fresh)]);
        assert_eq!(v.failures.len(), 1);
        assert!(v.failures[0].contains("another trace's id"), "{v}");
        assert!(!carried_to(&[(W3c, ClientTrace)], &[("b3", &single)]).passed());
        assert!(!carried_to(&[(W3c, Absent)], &[("traceparent", &w3c)]).passed());
        assert!(
            !carried_to(&[(B3, OtherTrace)], &[("x-b3-traceid", id), ("x-b3-spanid", "9a9a9a9a9a9a9a9a")]).passed()
        );
        // `w3c+b3` is one state only when both parts are: one of the two, or the client's id in
        // one and another in the other, is none of client-trace, other-trace or absent.
        let b3_client = [("traceparent", w3c.as_str()), ("x-b3-traceid", id), ("x-b3-spanid", "9a9a9a9a9a9a9a9a")];
        assert!(carried_to(&[(W3cAndB3, ClientTrace)], &b3_client).passed());
        for wanted in [ClientTrace, OtherTrace, Absent] {
            assert!(!carried_to(&[(W3cAndB3, wanted)], &[("traceparent", &w3c)]).passed(), "{wanted}");
            let mixed = [
                ("traceparent", w3c.as_str()),
                ("x-b3-traceid", "0af7651916cd43dd8448eb211c80319c"),
                ("x-b3-spanid", "9a9a9a9a9a9a9a9a"),
            ];
            assert!(!carried_to(&[(W3cAndB3, wanted)], &mixed).passed(), "{wanted}");
        }
        assert!(carried_to(&[(W3cAndB3, Absent)], &[]).passed());
        // Headers that are there but carry no valid trace are not absent, and not any trace: a
        // lone sampling decision, a traceparent of another version or shape, an all-zero id.
        let zero = "00-00000000000000000000000000000000-9a9a9a9a9a9a9a9a-01";
        let ff = format!("ff-{id}-9a9a9a9a9a9a9a9a-01");
        let cases: [(TraceContextFormat, &str, &str); 6] = [
            (B3Single, "b3", "1"),
            (B3Single, "b3", "0"),
            (W3c, "traceparent", zero),
            (W3c, "traceparent", &ff),
            (W3c, "traceparent", "garbage"),
            (B3, "x-b3-sampled", "1"),
        ];
        for (format, name, value) in cases {
            for wanted in [ClientTrace, OtherTrace, Absent] {
                let v = carried_to(&[(format, wanted)], &[(name, value)]);
                assert!(!v.passed(), "{format} {wanted} on {name}: {value}");
                assert!(v.failures[0].contains("malformed"), "{v}");
            }
        }

        // Without the echo backend's report nothing can be judged, so nothing passes.
        let expect = TraceExpect { backend: [(W3c, Absent)].into_iter().collect(), ..TraceExpect::default() };
        assert!(!evaluate_carried(&expect, id, None).passed());
    }
}
