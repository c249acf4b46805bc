use super::*;

/// The harness's trace id in the answers below.
pub(crate) const TRACE_ID: &str = "463ac35c9f6413ad48485a3953bb6124";

/// Jaeger's answer for a trace through Kong and two Linkerd proxies, in the shape of Jaeger v2's
/// `GET /api/traces/{id}` (model/json: `spans[].references`, `processID` into `processes`, OTLP
/// span kinds as the lowercase `span.kind` tag). Constructed, not recorded: the span layout
/// follows linkerd's distributed-tracing docs (each proxy reports a server span for what it
/// accepts and a client span for what it forwards; Kong's proxy, in `ingress` mode, proxies the
/// request coming in as well as the one going out), the service names follow the
/// `resource.opentelemetry.io/service.name` pod annotation the harness sets, Kong's is its
/// opentelemetry plugin's default `service.name` (kong).
pub(crate) const JAEGER_LINKERD: &str = r#"{"data":[{"traceID":"463ac35c9f6413ad48485a3953bb6124","spans":[
  {"traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"1111000000000001","operationName":"GET","references":[{"refType":"CHILD_OF","traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"0020000000000001"}],"startTime":1699999999999000,"duration":7000,"tags":[{"key":"span.kind","type":"string","value":"server"}],"logs":[],"processID":"p2","warnings":null},
  {"traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"1111000000000002","operationName":"GET","references":[{"refType":"CHILD_OF","traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"1111000000000001"}],"startTime":1699999999999500,"duration":6000,"tags":[{"key":"span.kind","type":"string","value":"client"}],"logs":[],"processID":"p2","warnings":null},
  {"traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"a2fb4a1d1a96d312","operationName":"kong","references":[{"refType":"CHILD_OF","traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"1111000000000002"}],"startTime":1700000000000000,"duration":5123,"tags":[{"key":"span.kind","type":"string","value":"server"},{"key":"http.method","type":"string","value":"GET"}],"logs":[],"processID":"p1","warnings":null},
  {"traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"b7ad6b7169203331","operationName":"GET","references":[{"refType":"CHILD_OF","traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"a2fb4a1d1a96d312"}],"startTime":1700000000001000,"duration":3000,"tags":[{"key":"span.kind","type":"string","value":"server"}],"logs":[],"processID":"p2","warnings":null},
  {"traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"b7ad6b7169203332","operationName":"GET","references":[{"refType":"CHILD_OF","traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"b7ad6b7169203331"}],"startTime":1700000000001100,"duration":2800,"tags":[{"key":"span.kind","type":"string","value":"client"}],"logs":[],"processID":"p2","warnings":null},
  {"traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"c1d2e3f4a5b6c7d8","operationName":"GET","references":[{"refType":"CHILD_OF","traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"b7ad6b7169203332"}],"startTime":1700000000001500,"duration":2000,"tags":[{"key":"span.kind","type":"string","value":"server"}],"logs":[],"processID":"p3","warnings":null},
  {"traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"c1d2e3f4a5b6c7d9","operationName":"GET","references":[{"refType":"CHILD_OF","traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"c1d2e3f4a5b6c7d8"}],"startTime":1700000000001600,"duration":1800,"tags":[{"key":"span.kind","type":"string","value":"client"}],"logs":[],"processID":"p3","warnings":null}
 ],"processes":{
  "p1":{"serviceName":"kong","tags":[{"key":"telemetry.sdk.language","type":"string","value":"lua"}]},
  "p2":{"serviceName":"kong-gateway.kong","tags":[{"key":"k8s.pod.ip","type":"string","value":"10.244.0.12"}]},
  "p3":{"serviceName":"echo.shop","tags":[{"key":"k8s.pod.ip","type":"string","value":"10.244.0.20"}]}
 },"warnings":null}],"total":0,"limit":0,"offset":0,"errors":null}"#;

/// Jaeger's answer for a trace id it does not hold: status 404 with this body (the query
/// handler's `handleError` for `spanstore.ErrTraceNotFound`).
pub(crate) const JAEGER_NOT_FOUND: &str =
    r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#;

/// The same path in Zipkin v2 JSON, as Istio's zipkin provider reports it: Kong's span (a child
/// of the harness's root id, which the collector never saw), the sidecars' client and server
/// spans, named `<app>.<namespace>`.
pub(crate) const ZIPKIN_ISTIO: &str = r#"[
  {"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","parentId":"0020000000000001","name":"get /echo","kind":"SERVER","timestamp":1700000000000000,"duration":5123,"localEndpoint":{"serviceName":"kong","ipv4":"10.244.0.12"},"tags":{"http.method":"GET"}},
  {"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"b7ad6b7169203331","parentId":"a2fb4a1d1a96d312","name":"echo.shop.svc.cluster.local:80/*","kind":"CLIENT","timestamp":1700000000001000,"duration":3000,"localEndpoint":{"serviceName":"kong-gateway.kong","ipv4":"10.244.0.12"}},
  {"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"c1d2e3f4a5b6c7d8","parentId":"b7ad6b7169203331","name":"echo.shop.svc.cluster.local:80/*","kind":"SERVER","timestamp":1700000000001500,"duration":2000,"localEndpoint":{"serviceName":"echo.shop","ipv4":"10.244.0.20"}}
]"#;

fn linkerd() -> Vec<Span> {
    decode(JAEGER_LINKERD).unwrap()
}

#[test]
fn jaeger_answers_become_spans_with_services_kinds_and_parents() {
    let spans = linkerd();
    assert_eq!(spans.len(), 7);
    assert!(spans.iter().all(|s| s.trace_id == TRACE_ID));
    assert_eq!(spans[0].service, "kong-gateway.kong");
    assert_eq!(spans[0].parent_id.as_deref(), Some("0020000000000001"));
    assert_eq!(spans[2].service, "kong");
    assert_eq!(spans[2].kind.as_deref(), Some("SERVER"));
    assert_eq!(spans[4].service, "kong-gateway.kong");
    assert_eq!(spans[4].kind.as_deref(), Some("CLIENT"));
    assert_eq!(spans[5].parent_id.as_deref(), Some("b7ad6b7169203332"));

    let tree = SpanTree::build(&spans);
    assert_eq!(tree.roots.len(), 1, "one trace, rooted at Kong's proxy: {tree:?}");
    let edges: Vec<(String, String)> = tree.edges().into_iter().collect();
    assert_eq!(
        edges,
        [
            ("kong".to_owned(), "kong-gateway.kong".to_owned()),
            ("kong-gateway.kong".to_owned(), "echo.shop".to_owned()),
            ("kong-gateway.kong".to_owned(), "kong".to_owned()),
        ]
    );
}

#[test]
fn zipkin_answers_still_decode() {
    let tree = SpanTree::build(&decode(ZIPKIN_ISTIO).unwrap());
    let services: Vec<String> = tree.services().into_iter().collect();
    assert_eq!(services, ["echo.shop", "kong", "kong-gateway.kong"]);
    assert_eq!(tree.edges().len(), 2);
}

#[test]
fn an_unknown_trace_is_empty_and_collector_errors_are_errors() {
    assert_eq!(decode(JAEGER_NOT_FOUND), Ok(Vec::new()));
    assert_eq!(decode(r#"{"data":[],"errors":null}"#), Ok(Vec::new()));
    assert_eq!(decode("[]"), Ok(Vec::new()));
    assert_eq!(
        decode(r#"{"data":null,"errors":[{"code":500,"msg":"storage unavailable"}]}"#),
        Err(DecodeError::Collector("500 storage unavailable".into()))
    );
    assert!(matches!(decode("{not json"), Err(DecodeError::Shape(_))));
    assert!(matches!(decode("<html>502 Bad Gateway</html>"), Err(DecodeError::Shape(_))));
    // Zipkin's span without an id is not a span; one without a service could be anyone's.
    assert!(matches!(decode(r#"[{"traceId":"ab"}]"#), Err(DecodeError::Shape(_))));
    assert!(matches!(decode(r#"[{"traceId":"ab","id":"01"}]"#), Err(DecodeError::Shape(_))));
    assert!(matches!(decode(r#"[{"traceId":"ab","id":"01","localEndpoint":{}}]"#), Err(DecodeError::Shape(_))));
}

#[test]
fn older_jaeger_shapes_and_unspecified_kinds_are_read() {
    // Jaeger's older shape: the process inline, the parent in `parentSpanID`.
    let body = r#"{"data":[{"traceID":"abc","spans":[
      {"spanID":"01","operationName":"root","references":[],"tags":[],"process":{"serviceName":"kong"}},
      {"spanID":"02","parentSpanID":"01","operationName":"hop","tags":[{"key":"span.kind","value":"unspecified"}],"process":{"serviceName":"echo.shop"}}
    ]}]}"#;
    let spans = decode(body).unwrap();
    assert_eq!(spans[0].trace_id, "00000000000000000000000000000abc");
    assert_eq!(spans[0].service, "kong");
    assert_eq!(spans[1].kind, None);
    let edges: Vec<_> = SpanTree::build(&spans).edges().into_iter().collect();
    assert_eq!(edges, [("kong".to_owned(), "echo.shop".to_owned())]);
}

fn span(id: &str, parent: Option<&str>, service: &str) -> Span {
    Span {
        trace_id: TRACE_ID.into(),
        id: id.into(),
        parent_id: parent.map(str::to_owned),
        name: None,
        kind: None,
        service: service.into(),
    }
}

fn count(tree: &SpanTree) -> usize {
    fn go(n: &SpanNode) -> usize {
        1 + n.children.iter().map(go).sum::<usize>()
    }
    tree.roots.iter().map(go).sum()
}

/// Every span is in the tree exactly once, whatever the parents say: cycles, self-parents,
/// shared ids and chains deeper than the depth bound neither drop spans (a service that must
/// stay silent would go unseen) nor multiply them (a shared id would grow the tree
/// exponentially and hang replay on a hostile transcript).
#[test]
fn every_span_is_placed_once_whatever_the_parents_say() {
    // A two-span cycle under no root, and a self-parent.
    let cycle = [span("01", Some("02"), "kong"), span("02", Some("01"), "echo.shop"), span("03", Some("03"), "jaeger")];
    let tree = SpanTree::build(&cycle);
    assert_eq!(count(&tree), 3);
    let services: Vec<String> = tree.services().into_iter().collect();
    assert_eq!(services, ["echo.shop", "jaeger", "kong"]);

    // Shared ids at every level: children are filed under the first span with their parent's id.
    let mut shared = vec![span("r", None, "kong")];
    for level in 0..40 {
        let (id, parent) = (format!("l{level}"), if level == 0 { "r".to_owned() } else { format!("l{}", level - 1) });
        shared.push(span(&id, Some(&parent), "a"));
        shared.push(span(&id, Some(&parent), "b"));
    }
    let started = std::time::Instant::now();
    let tree = SpanTree::build(&shared);
    assert_eq!(count(&tree), shared.len());
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "linear, not exponential");

    // A chain of 200: deeper than the bound, continued as further roots, none lost.
    let chain: Vec<Span> = (0..200)
        .map(|i| {
            let parent = (i > 0).then(|| format!("{:04}", i - 1));
            span(&format!("{i:04}"), parent.as_deref(), if i == 199 { "deep" } else { "kong" })
        })
        .collect();
    let tree = SpanTree::build(&chain);
    assert_eq!(count(&tree), 200);
    assert!(tree.services().contains("deep"));
    assert!(tree.roots.len() > 1);
}

/// A span whose process the answer does not hold could be anyone's, a service that must stay
/// silent included; a span claiming another trace inside this trace's entry is not this trace's.
#[test]
fn jaeger_answers_that_hide_who_reported_are_unreadable() {
    let orphan = JAEGER_LINKERD.replace(r#""processID":"p3""#, r#""processID":"p9""#);
    let err = decode(&orphan).unwrap_err().to_string();
    assert!(err.contains("names no process the answer holds"), "{err}");
    let no_process = JAEGER_LINKERD.replace(r#","processID":"p3""#, "");
    assert!(matches!(decode(&no_process), Err(DecodeError::Shape(_))));
    let smuggled = JAEGER_LINKERD.replacen(
        r#"{"data":[{"traceID":"463ac35c9f6413ad48485a3953bb6124""#,
        r#"{"data":[{"traceID":"0af7651916cd43dd8448eb211c80319c""#,
        1,
    );
    let err = decode(&smuggled).unwrap_err().to_string();
    assert!(err.contains("inside the entry for trace 0af7651916cd43dd8448eb211c80319c"), "{err}");
}

/// The shape of a wide answer is built in time near-linear in its spans (a key serialised per
/// comparison would make a few thousand siblings take seconds).
#[test]
fn wide_trees_shape_quickly() {
    let mut spans = vec![span("root", None, "kong")];
    spans.extend((0..20_000).map(|i| span(&format!("{i:016x}"), Some("root"), &format!("svc-{}", i % 7))));
    let started = std::time::Instant::now();
    let shape = SpanTree::build(&spans).shape();
    assert_eq!(shape[0]["children"].as_array().unwrap().len(), 20_000);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn answers_for_another_trace_are_wrong_not_empty() {
    use crate::probe::observation::Answer;
    let answer = Answer { status: Some(200), body: JAEGER_LINKERD.into(), ..Answer::default() };
    assert_eq!(count(&tree_of(&answer, TRACE_ID).unwrap()), 7);
    let err = tree_of(&answer, "0af7651916cd43dd8448eb211c80319c").unwrap_err();
    assert!(err.contains("with a span of trace 463ac35c9f6413ad48485a3953bb6124"), "{err}");
    let not_found = Answer { status: Some(404), body: JAEGER_NOT_FOUND.into(), ..Answer::default() };
    assert!(tree_of(&not_found, TRACE_ID).unwrap().roots.is_empty());
    // The API server's own 404 (the collector's Service is missing) is not "not collected yet".
    let no_service = Answer {
        status: Some(404),
        body: r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services \"jaeger\" not found","reason":"NotFound","code":404}"#.into(),
        ..Answer::default()
    };
    assert!(tree_of(&no_service, TRACE_ID).unwrap_err().contains("no collector to ask"));
    // Nor is any other 404: a plain page (Go's net/http NotFound, what a wrong port or another
    // service behind the name answers), or a Jaeger answer that holds data.
    for body in ["404 page not found\n", "", r#"{"data":[],"errors":[]}"#, r#"{"errors":[{"code":500,"msg":"x"}]}"#] {
        let other = Answer { status: Some(404), body: body.into(), ..Answer::default() };
        let err = tree_of(&other, TRACE_ID).unwrap_err();
        assert!(err.contains("not Jaeger's not-found answer"), "{body:?}: {err}");
    }
    let unavailable = Answer { status: Some(503), body: "no endpoints available".into(), ..Answer::default() };
    assert_eq!(tree_of(&unavailable, TRACE_ID).unwrap_err(), "the collector answered 503: no endpoints available");
    let silent = Answer { message: Some("connection refused".into()), ..Answer::default() };
    assert!(tree_of(&silent, TRACE_ID).unwrap_err().contains("connection refused"));
}

#[test]
fn headers_per_format_carry_one_sampled_context() {
    let ctx = TraceContext::from_bytes([0xab; 24]);
    let id = "abababababababababababababababab";
    let w3c = ctx.headers(TraceContextFormat::W3c);
    assert_eq!(w3c.len(), 1);
    assert_eq!(w3c["traceparent"], format!("00-{id}-abababababababab-01"));
    let b3 = ctx.headers(TraceContextFormat::B3);
    assert_eq!(b3.keys().collect::<Vec<_>>(), ["x-b3-sampled", "x-b3-spanid", "x-b3-traceid"]);
    assert_eq!(b3["x-b3-sampled"], "1");
    let single = ctx.headers(TraceContextFormat::B3Single);
    assert_eq!(single.len(), 1);
    assert_eq!(single["b3"], format!("{id}-abababababababab-1"));
    assert_eq!(ctx.headers(TraceContextFormat::W3cAndB3).len(), 4);
    assert_eq!(TraceContext::from_bytes([0; 24]).trace_id, "00000000000000000000000000000001");

    let (a, b) = (TraceContext::fresh(), TraceContext::fresh());
    assert_ne!(a, b);
    assert_ne!(&a.trace_id[..16], "0000000000000000", "both halves of the id are used: {}", a.trace_id);
}

fn received(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()])).collect()
}

#[test]
fn carried_ids_are_read_per_format_and_nothing_else() {
    use TraceContextFormat::*;
    let id = TRACE_ID;
    let trace = |s: &str| Carried::Trace(s.to_owned());
    // What a backend behind Linkerd receives for a W3C request: the same trace, another parent.
    let h = received(&[("traceparent", &format!("00-{id}-1111111111111111-01"))]);
    assert_eq!(carried(W3c, &h), trace(id));
    assert_eq!(carried(B3, &h), Carried::Absent);
    assert_eq!(carried(B3Single, &h), Carried::Absent);
    // A 64-bit B3 id is the low half of the 128-bit one.
    let h = received(&[("x-b3-traceid", "48485a3953bb6124"), ("x-b3-spanid", "1111111111111111")]);
    assert_eq!(carried(B3, &h), trace("000000000000000048485a3953bb6124"));
    let h = received(&[("b3", &format!("{id}-1111111111111111-1-2222222222222222"))]);
    assert_eq!(carried(B3Single, &h), trace(id));
    assert_eq!(carried(B3Single, &received(&[("b3", &format!("{id}-1111111111111111"))])), trace(id));
    // Present but no valid trace: malformed, never absent.
    let malformed = |format, name: &str, value: &str| {
        let c = carried(format, &received(&[(name, value)]));
        assert!(matches!(c, Carried::Malformed(_)), "{name}: {value} -> {c:?}");
    };
    malformed(B3Single, "b3", "0");
    malformed(B3Single, "b3", "d");
    malformed(B3Single, "b3", &format!("{id}-xyz-1"));
    malformed(W3c, "traceparent", "garbage");
    malformed(W3c, "traceparent", &format!("ff-{id}-1111111111111111-01"));
    malformed(W3c, "traceparent", &format!("00-{id}-0000000000000000-01"));
    malformed(W3c, "traceparent", "00-00000000000000000000000000000000-1111111111111111-01");
    malformed(W3c, "traceparent", &format!("00-{id}-1111111111111111-01-extra"));
    malformed(B3, "x-b3-traceid", "xyz");
    malformed(B3, "x-b3-traceid", "0000000000000000");
    malformed(B3, "x-b3-spanid", "1111111111111111");
    malformed(B3, "x-b3-traceid", id);
    malformed(B3Single, "b3", &format!("{id}-1111111111111111-1-2222222222222222-junk"));
    malformed(B3Single, "b3", &format!("{id}-1111111111111111-x"));
    // A header given several times must give one id every time; an empty one is no header.
    let several = |name: &str, values: &[&str]| -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([(name.to_owned(), values.iter().map(|v| (*v).to_owned()).collect())])
    };
    let ours = format!("00-{id}-1111111111111111-01");
    let theirs = "00-0af7651916cd43dd8448eb211c80319c-1111111111111111-01";
    assert_eq!(carried(W3c, &several("traceparent", &[&ours, &ours])), trace(id));
    assert!(matches!(carried(W3c, &several("traceparent", &[&ours, theirs])), Carried::Malformed(_)));
    assert!(matches!(carried(W3c, &several("traceparent", &[])), Carried::Malformed(_)));
    assert!(matches!(carried(B3Single, &several("b3", &[])), Carried::Malformed(_)));
    let mut b3 = several("x-b3-traceid", &[id, "0af7651916cd43dd8448eb211c80319c"]);
    b3.insert("x-b3-spanid".into(), vec!["1111111111111111".into()]);
    assert!(matches!(carried(B3, &b3), Carried::Malformed(_)));
    assert!(matches!(carried(W3cAndB3, &received(&[])), Carried::Malformed(_)), "judged by its parts");
}

/// The snapshot form keeps who reports what under whom: two collections of one path that differ
/// in ids, timings, span names and pod hashes have one shape; a missing hop changes it.
#[test]
fn tree_shapes_ignore_ids_timings_names_and_pod_hashes() {
    let shape = SpanTree::build(&linkerd()).shape();
    insta::assert_yaml_snapshot!("linkerd_trace_shape", shape);

    let other = JAEGER_LINKERD
        .replace("a2fb4a1d1a96d312", "0102030405060708")
        .replace("1700000000001", "1800000000009")
        .replace("\"operationName\":\"GET\"", "\"operationName\":\"POST\"");
    assert_eq!(SpanTree::build(&decode(&other).unwrap()).shape(), shape);

    let pods = |hash: &str| {
        vec![Span {
            trace_id: TRACE_ID.into(),
            id: "01".into(),
            parent_id: None,
            name: None,
            kind: Some("SERVER".into()),
            service: format!("echo-v1-7c9d6b8f4-{hash}"),
        }]
    };
    assert_eq!(SpanTree::build(&pods("abcde")).shape(), SpanTree::build(&pods("fghij")).shape());

    let mut missing = linkerd();
    missing.retain(|s| s.service != "echo.shop");
    assert_ne!(SpanTree::build(&missing).shape(), shape);
}

/// W3C Trace Context Level 1 as written (w3c/trace-context branch `level-1`,
/// spec/20-http_header_format.md), with the values of its own test suite (level-1
/// test/test.py, ids `12345678901234567890123456789012` / `1234567890123456`): §3.2.2 lowercase
/// hex only; §3.2.2.1 version `ff` invalid; §3.2.2.2 version 00 is exactly four fields; §3.2.4 a
/// higher version's known fields are read and its extra data left alone.
#[test]
fn traceparent_is_read_as_the_w3c_spec_and_test_suite_say() {
    use TraceContextFormat::W3c;
    let id = "12345678901234567890123456789012";
    let judge = |value: &str| carried(W3c, &received(&[("traceparent", value)]));
    let carries = |value: &str| assert_eq!(judge(value), Carried::Trace(id.to_owned()), "{value:?}");
    let ignored =
        |value: &str| assert!(matches!(judge(value), Carried::Malformed(_)), "{value:?} -> {:?}", judge(value));
    // test_traceparent_version_0xcc: a future version, with and without its own extra data.
    carries("cc-12345678901234567890123456789012-1234567890123456-01");
    carries("cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like");
    carries("01-12345678901234567890123456789012-1234567890123456-01");
    ignored("cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like");
    // test_traceparent_version_0x00: version 00 has nothing after its flags.
    ignored("00-12345678901234567890123456789012-1234567890123456-01.");
    ignored("00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like");
    // test_traceparent_version_0xff, _illegal_characters, _too_long, _too_short.
    ignored("ff-12345678901234567890123456789012-1234567890123456-01");
    ignored(".0-12345678901234567890123456789012-1234567890123456-01");
    ignored("0.-12345678901234567890123456789012-1234567890123456-01");
    ignored("000-12345678901234567890123456789012-1234567890123456-01");
    ignored("0-12345678901234567890123456789012-1234567890123456-01");
    // trace-id / parent-id / flags: all zero, illegal characters, too long, too short.
    ignored("00-00000000000000000000000000000000-1234567890123456-01");
    ignored("00-12345678901234567890123456789012-0000000000000000-01");
    ignored("00-.2345678901234567890123456789012-1234567890123456-01");
    ignored("00-123456789012345678901234567890123-1234567890123456-01");
    ignored("00-1234567890123456789012345678901-1234567890123456-01");
    ignored("00-12345678901234567890123456789012-12345678901234567-01");
    ignored("00-12345678901234567890123456789012-1234567890123456-.0");
    ignored("00-12345678901234567890123456789012-1234567890123456-001");
    ignored("00-12345678901234567890123456789012-1234567890123456-1");
    // §3.2.2 HEXDIGLC: upper case in any field is not the value, even if it spells the same id.
    ignored("00-ABCDEF78901234567890123456789012-1234567890123456-01");
    ignored("00-12345678901234567890123456789012-ABCDEF7890123456-01");
    ignored("00-12345678901234567890123456789012-1234567890123456-0A");
    ignored("0A-12345678901234567890123456789012-1234567890123456-01");
    ignored("CC-12345678901234567890123456789012-1234567890123456-01");
    // A higher version still needs its known fields in lowercase.
    ignored("cc-ABCDEF78901234567890123456789012-1234567890123456-01-x");
    // test_traceparent_ows_handling: SP and HTAB around the value are not part of it.
    carries(" 00-12345678901234567890123456789012-1234567890123456-01");
    carries("\t 00-12345678901234567890123456789012-1234567890123456-01 \t");
}

/// openzipkin/b3-propagation README.md: trace ids are "32 or 16 lower-hex characters", span and
/// parent span ids "16 lower-hex characters"; `X-B3-ParentSpanId: -` is malformed data.
#[test]
fn b3_ids_are_lower_hex_as_the_b3_readme_says() {
    use TraceContextFormat::{B3, B3Single};
    // The README's own examples.
    let readme = received(&[
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ("x-b3-sampled", "1"),
    ]);
    assert_eq!(carried(B3, &readme), Carried::Trace("80f198ee56343ba864fe8b2a57d3eff7".into()));
    let single = received(&[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")]);
    assert_eq!(carried(B3Single, &single), Carried::Trace("80f198ee56343ba864fe8b2a57d3eff7".into()));
    let with = |name: &str, value: &str| {
        let mut h = readme.clone();
        h.insert(name.to_owned(), vec![value.to_owned()]);
        carried(B3, &h)
    };
    for (name, value) in [
        ("x-b3-traceid", "80F198EE56343BA864FE8B2A57D3EFF7"),
        ("x-b3-traceid", "64FE8B2A57D3EFF7"),
        ("x-b3-spanid", "E457B5A2E4D86BD1"),
        ("x-b3-parentspanid", "05E3AC9A4F6E3B90"),
        ("x-b3-parentspanid", "-"),
        ("x-b3-parentspanid", ""),
    ] {
        assert!(matches!(with(name, value), Carried::Malformed(_)), "{name}: {value}");
    }
    for value in
        ["80F198EE56343BA864FE8B2A57D3EFF7-e457b5a2e4d86bd1-1", "80f198ee56343ba864fe8b2a57d3eff7-E457B5A2E4D86BD1"]
    {
        assert!(matches!(carried(B3Single, &received(&[("b3", value)])), Carried::Malformed(_)), "{value}");
    }
    // A header name is case-insensitive; the caller lowercases names, never values.
    assert_eq!(with("x-b3-traceid", "64fe8b2a57d3eff7"), Carried::Trace("000000000000000064fe8b2a57d3eff7".into()));
}

/// Headers written by the OpenTelemetry Python SDK's own propagators (and variants derived from
/// them by hand, marked so in the file) carry exactly what the generator says: the SDK span's
/// trace id, or nothing the harness may count as a trace (harness/testdata/goldens/generate.py).
#[test]
fn opentelemetry_goldens_carry_the_generators_trace_id() {
    let golden: Value = serde_json::from_str(include_str!("../../../testdata/goldens/trace-context.json")).unwrap();
    assert_eq!(golden["generator"], "harness/testdata/goldens/generate.py");
    assert!(golden["packages"]["opentelemetry-propagator-b3"].is_string(), "versions recorded");
    let cases = golden["cases"].as_array().unwrap();
    let (mut generated, mut derived, mut refused) = (0, 0, 0);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let format = match case["format"].as_str().unwrap() {
            "w3c" => TraceContextFormat::W3c,
            "b3" => TraceContextFormat::B3,
            "b3-single" => TraceContextFormat::B3Single,
            other => panic!("{name}: unknown format {other}"),
        };
        let headers: BTreeMap<String, Vec<String>> = case["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), vec![v.as_str().unwrap().to_owned()]))
            .collect();
        let got = carried(format, &headers);
        match case["expect"]["carried"].as_str().unwrap() {
            "trace" => {
                let id = case["expect"]["trace_id"].as_str().unwrap();
                assert_eq!(got, Carried::Trace(id.to_owned()), "{name}: {headers:?}");
            }
            "malformed" => {
                assert!(matches!(got, Carried::Malformed(_)), "{name}: {headers:?} -> {got:?}");
                refused += 1;
            }
            other => panic!("{name}: unknown expectation {other}"),
        }
        // Every generated case is one the SDK itself reads back to the same id.
        if case["derived"].is_null() {
            generated += 1;
            assert_eq!(case["otel_extract"], case["expect"]["trace_id"], "{name}");
        } else {
            derived += 1;
        }
    }
    assert!(
        generated >= 9 && derived >= 10 && refused >= 10,
        "{generated} generated, {derived} derived, {refused} refused"
    );
}

/// Jaeger's own UI fixture (jaegertracing/jaeger v2.20.0
/// internal/uimodel/converter/v1/json/fixtures/ui_01.json, as the element of the query API's
/// `data`): span 0000000000000004 names a `CHILD_OF` into trace 00000000000000ff first, then its
/// parent 0000000000000002 in this trace, then a `FOLLOWS_FROM` to it.
const JAEGER_UI_01: &str = include_str!("../../../testdata/goldens/upstream/jaeger-ui_01.json");

fn ui_01() -> String {
    format!(r#"{{"data":[{JAEGER_UI_01}],"errors":null}}"#)
}

fn parent(spans: &[Span], id: &str) -> Option<String> {
    spans.iter().find(|s| s.id == id).unwrap().parent_id.clone()
}

#[test]
fn jaeger_parents_are_child_of_references_within_the_trace() {
    let spans = decode(&ui_01()).unwrap();
    assert_eq!(spans.len(), 5);
    assert!(spans.iter().all(|s| s.trace_id == "00000000000000000000000000000001"));
    // Not the other trace's span listed first: this trace's CHILD_OF.
    assert_eq!(parent(&spans, "0000000000000004").as_deref(), Some("0000000000000002"));
    assert_eq!(parent(&spans, "0000000000000005").as_deref(), Some("0000000000000004"));
    assert_eq!(parent(&spans, "0000000000000003").as_deref(), Some("0000000000000002"));
    let tree = SpanTree::build(&spans);
    // The two spans 0000000000000002 (no references) are the roots; every other span is under
    // the first of them.
    assert_eq!(tree.roots.len(), 2, "{tree:?}");
    assert_eq!(count(&tree), 5);
    let edges: Vec<_> = tree.edges().into_iter().collect();
    assert_eq!(edges, [("service-x".to_owned(), "service-y".to_owned())]);
}

/// ui_01.json with its spans edited by `edit` (the derivations below say what they change).
fn ui_01_with(edit: impl FnOnce(&mut Vec<Value>)) -> Vec<Span> {
    let mut trace: Value = serde_json::from_str(JAEGER_UI_01).unwrap();
    edit(trace["spans"].as_array_mut().unwrap());
    decode(&serde_json::json!({"data": [trace], "errors": null}).to_string()).unwrap()
}

fn references_of<'a>(spans: &'a mut [Value], id: &str) -> &'a mut Vec<Value> {
    let span = spans.iter_mut().find(|s| s["spanID"] == id).unwrap();
    span["references"].as_array_mut().unwrap()
}

/// Derived from ui_01.json: a `FOLLOWS_FROM` (an OTLP link, as opentelemetry-collector-contrib
/// pkg/translator/jaeger `makeJaegerProtoReferences` writes links) is never a parent, and a
/// `CHILD_OF` is a parent only within its own trace, even when the other trace's span id is
/// also one of this trace's.
#[test]
fn links_and_other_traces_are_not_parents() {
    let this_trace = |r: &Value| r["refType"] == "CHILD_OF" && r["traceID"] == "0000000000000001";
    // Span 3 (service-y under service-x) removed; span 4 keeps only its FOLLOWS_FROM.
    let link_only = ui_01_with(|spans| {
        spans.retain(|s| s["spanID"] != "0000000000000003");
        references_of(spans, "0000000000000004").retain(|r| r["refType"] == "FOLLOWS_FROM");
    });
    assert_eq!(parent(&link_only, "0000000000000004"), None);
    let tree = SpanTree::build(&link_only);
    assert_eq!(count(&tree), 4);
    assert!(tree.edges().is_empty(), "a link made an edge: {:?}", tree.edges());

    // Span 4's CHILD_OF into trace 00000000000000ff names span id 0000000000000002, which this
    // trace also has; its CHILD_OF in this trace removed.
    let other_trace = ui_01_with(|spans| {
        spans.retain(|s| s["spanID"] != "0000000000000003");
        let refs = references_of(spans, "0000000000000004");
        refs.retain(|r| !this_trace(r));
        refs[0]["spanID"] = "0000000000000002".into();
    });
    assert_eq!(parent(&other_trace, "0000000000000004"), None);
    assert!(SpanTree::build(&other_trace).edges().is_empty());

    // A CHILD_OF without a traceID cannot be shown to be this trace's.
    let unnamed = ui_01_with(|spans| {
        for r in references_of(spans, "0000000000000003") {
            r.as_object_mut().unwrap().remove("traceID");
        }
    });
    assert_eq!(parent(&unnamed, "0000000000000003"), None);

    // The same trace id written with 128 bits in the references still matches (ids are widened).
    let widened = ui_01_with(|spans| {
        for r in references_of(spans, "0000000000000004") {
            if this_trace(r) {
                r["traceID"] = "00000000000000000000000000000001".into();
            }
        }
    });
    assert_eq!(parent(&widened, "0000000000000004").as_deref(), Some("0000000000000002"));
}
