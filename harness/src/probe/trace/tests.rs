use super::*;

/// The harness's trace id in the answers below.
pub(crate) const TRACE_ID: &str = "463ac35c9f6413ad48485a3953bb6124";

/// Jaeger's answer for a trace through Kong and two Linkerd proxies, in the shape of Jaeger v2's
/// `GET /api/traces/{id}` (model/json: `spans[].references`, `processID` into `processes`, OTLP
/// span kinds as the lowercase `span.kind` tag). Constructed, not recorded: the span layout
/// follows linkerd's distributed-tracing docs (each meshed pod's proxy reports a server span for
/// what it accepts and a client span for what it forwards), the service names follow the
/// `resource.opentelemetry.io/service.name` pod annotation the harness sets, Kong's is its
/// opentelemetry plugin's default `service.name` (kong).
pub(crate) const JAEGER_LINKERD: &str = r#"{"data":[{"traceID":"463ac35c9f6413ad48485a3953bb6124","spans":[
  {"traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"a2fb4a1d1a96d312","operationName":"kong","references":[{"refType":"CHILD_OF","traceID":"463ac35c9f6413ad48485a3953bb6124","spanID":"0020000000000001"}],"startTime":1700000000000000,"duration":5123,"tags":[{"key":"span.kind","type":"string","value":"server"},{"key":"http.method","type":"string","value":"GET"}],"logs":[],"processID":"p1","warnings":null},
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
    assert_eq!(spans.len(), 5);
    assert!(spans.iter().all(|s| s.trace_id == TRACE_ID));
    assert_eq!(spans[0].service, "kong");
    assert_eq!(spans[0].kind.as_deref(), Some("SERVER"));
    assert_eq!(spans[0].parent_id.as_deref(), Some("0020000000000001"));
    assert_eq!(spans[2].service, "kong-gateway.kong");
    assert_eq!(spans[2].kind.as_deref(), Some("CLIENT"));
    assert_eq!(spans[3].parent_id.as_deref(), Some("b7ad6b7169203332"));

    let tree = SpanTree::build(&spans);
    assert_eq!(tree.roots.len(), 1, "one trace, rooted at Kong: {tree:?}");
    let edges: Vec<(String, String)> = tree.edges().into_iter().collect();
    assert_eq!(
        edges,
        [("kong".to_owned(), "kong-gateway.kong".to_owned()), ("kong-gateway.kong".to_owned(), "echo.shop".to_owned())]
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
    // Zipkin's span without an id is not a span.
    assert!(matches!(decode(r#"[{"traceId":"ab"}]"#), Err(DecodeError::Shape(_))));
}

#[test]
fn a_span_without_a_process_or_kind_is_still_placed() {
    // Jaeger's older shape: the process inline, the parent in `parentSpanID`.
    let body = r#"{"data":[{"traceID":"abc","spans":[
      {"spanID":"01","operationName":"root","references":[],"tags":[],"process":{"serviceName":"kong"}},
      {"spanID":"02","parentSpanID":"01","operationName":"hop","tags":[{"key":"span.kind","value":"unspecified"}]}
    ]}]}"#;
    let spans = decode(body).unwrap();
    assert_eq!(spans[0].trace_id, "00000000000000000000000000000abc");
    assert_eq!(spans[0].service, "kong");
    assert_eq!(spans[1].service, "<unknown>");
    assert_eq!(spans[1].kind, None);
    let edges: Vec<_> = SpanTree::build(&spans).edges().into_iter().collect();
    assert_eq!(edges, [("kong".to_owned(), "<unknown>".to_owned())]);
}

#[test]
fn cycles_and_self_parents_do_not_hang() {
    let mut s = linkerd();
    s[0].parent_id = Some(s[4].id.clone());
    s[1].parent_id = Some(s[1].id.clone());
    let tree = SpanTree::build(&s);
    // The self-parented span becomes a root; the cycle through the others is cut at depth 64.
    assert!(!tree.roots.is_empty());
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
    // What a backend behind Linkerd receives for a W3C request: the same trace, another parent.
    let h = received(&[("traceparent", &format!("00-{id}-1111111111111111-01"))]);
    assert_eq!(carried(W3c, &h).as_deref(), Some(id));
    assert_eq!(carried(B3, &h), None);
    assert_eq!(carried(B3Single, &h), None);
    // A 64-bit B3 id is the low half of the 128-bit one.
    let h = received(&[("x-b3-traceid", "48485A3953BB6124"), ("x-b3-spanid", "1111111111111111")]);
    assert_eq!(carried(B3, &h).as_deref(), Some("000000000000000048485a3953bb6124"));
    let h = received(&[("b3", &format!("{id}-1111111111111111-1-2222222222222222"))]);
    assert_eq!(carried(B3Single, &h).as_deref(), Some(id));
    // A sampling decision alone, or a malformed value, carries no id.
    assert_eq!(carried(B3Single, &received(&[("b3", "0")])), None);
    assert_eq!(carried(W3c, &received(&[("traceparent", "garbage")])), None);
    assert_eq!(carried(B3, &received(&[("x-b3-traceid", "xyz")])), None);
    // Both formats must agree for `w3c+b3`.
    let both = received(&[("traceparent", &format!("00-{id}-1111111111111111-01")), ("x-b3-traceid", id)]);
    assert_eq!(carried(W3cAndB3, &both).as_deref(), Some(id));
    let split = received(&[("traceparent", &format!("00-{id}-1111111111111111-01")), ("x-b3-traceid", "ab")]);
    assert_eq!(carried(W3cAndB3, &split), None);
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
