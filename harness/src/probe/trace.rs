//! Traces: the harness's own trace context on a request, the collector's answer for that trace,
//! and its spans arranged as a tree.
//!
//! The collector is Jaeger v2, asked `GET /api/traces/{id}` on its query port through the API
//! server's service proxy; it answers Jaeger's JSON (`{"data": [{"traceID", "spans",
//! "processes"}]}`, jaegertracing/jaeger cmd/jaeger/internal/extension/jaegerquery http_handler.go
//! and model/json). Zipkin v2 JSON (a bare array of spans, zipkin-api zipkin2-api.yaml) is read as
//! well: transcripts recorded against a Zipkin collector carry it. Both become one [`Span`] model.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::TraceContextFormat;

/// A trace id and root span id the harness makes up, with the headers that carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
}

impl TraceContext {
    /// From 24 random-enough bytes (the caller chooses the source; tests pass fixed ones).
    pub fn from_bytes(bytes: [u8; 24]) -> Self {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut trace = hex(&bytes[..16]);
        let mut span = hex(&bytes[16..]);
        // All-zero ids are invalid in both B3 and W3C.
        if trace.bytes().all(|c| c == b'0') {
            trace.replace_range(31.., "1");
        }
        if span.bytes().all(|c| c == b'0') {
            span.replace_range(15.., "1");
        }
        TraceContext { trace_id: trace, span_id: span }
    }

    /// A fresh context from the clock, the process id and a counter: unique per run, and with
    /// both halves of the trace id in use (a 64-bit id would be shown shortened by Jaeger and
    /// widened by others).
    pub fn fresh() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let low = now as u64;
        let high = low.rotate_left(29) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id());
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&high.to_be_bytes());
        bytes[8..16].copy_from_slice(&low.to_be_bytes());
        bytes[16..].copy_from_slice(&(n ^ low.rotate_left(17)).to_be_bytes());
        TraceContext::from_bytes(bytes)
    }

    /// The request headers that carry this context, sampled, in `format`.
    pub fn headers(&self, format: TraceContextFormat) -> BTreeMap<String, String> {
        let (trace, span) = (&self.trace_id, &self.span_id);
        let w3c = [("traceparent".to_owned(), format!("00-{trace}-{span}-01"))];
        let b3 = [
            ("x-b3-traceid".to_owned(), trace.clone()),
            ("x-b3-spanid".to_owned(), span.clone()),
            ("x-b3-sampled".to_owned(), "1".to_owned()),
        ];
        match format {
            TraceContextFormat::W3c => w3c.into_iter().collect(),
            TraceContextFormat::B3 => b3.into_iter().collect(),
            // openzipkin/b3-propagation: `b3: {TraceId}-{SpanId}-{SamplingState}`.
            TraceContextFormat::B3Single => BTreeMap::from([("b3".to_owned(), format!("{trace}-{span}-1"))]),
            TraceContextFormat::W3cAndB3 => w3c.into_iter().chain(b3).collect(),
        }
    }
}

/// What a backend's received headers hold in one trace header format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// None of the format's headers is there.
    Absent,
    /// A trace id, widened to 32 hex digits.
    Trace(String),
    /// The format's headers are there but hold no valid trace id (`b3: 1`, a `traceparent` of
    /// another shape, an all-zero id): neither absent nor any trace.
    Malformed(String),
}

/// Header names each format is written in: never redacted in a trace step's recorded answer
/// (they are not secrets, and replay judges them).
pub const TRACE_HEADERS: &[&str] = &[
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// What `headers` (names lowercased) carry in `format` (`w3c`, `b3` or `b3-single`; `w3c+b3`
/// is judged as its two parts by the caller). A header given several times must give
/// one trace id every time; an empty or disagreeing one is malformed. Values are read as sent:
/// both formats write their ids in lowercase hex, so an uppercase id is malformed, never
/// folded into a match.
pub fn carried(format: TraceContextFormat, headers: &BTreeMap<String, Vec<String>>) -> Carried {
    // Every value of `name`, read by `parse` into a trace id; `None` when the header is not there.
    let read = |name: &str, parse: &dyn Fn(&str) -> Option<String>| -> Option<Result<String, String>> {
        let values = headers.get(name)?;
        // Only optional whitespace (SP / HTAB, RFC 9110 §5.6.3) is trimmed: the W3C test suite
        // (w3c/trace-context level-1 test/test.py `test_traceparent_ows_handling`) sends both.
        let ids: Vec<Option<String>> = values.iter().map(|v| parse(v.trim_matches([' ', '\t']))).collect();
        Some(match ids.as_slice() {
            [] => Err(format!("{name} without a value")),
            [Some(first), rest @ ..] if rest.iter().all(|id| id.as_ref() == Some(first)) => Ok(first.clone()),
            _ => Err(format!("{name}: {values:?}")),
        })
    };
    let state = |found: Option<Result<String, String>>| match found {
        None => Carried::Absent,
        Some(Ok(id)) => Carried::Trace(id),
        Some(Err(what)) => Carried::Malformed(what),
    };
    match format {
        TraceContextFormat::W3c => state(read("traceparent", &w3c_trace_id)),
        // openzipkin/b3-propagation README.md "Multiple Headers": `X-B3-TraceId` is "32 or 16
        // lower-hex characters", `X-B3-SpanId` and `X-B3-ParentSpanId` "16 lower-hex
        // characters"; trace and span id are required unless only a sampling state is sent, so
        // any B3 header without them is malformed, not absent; "an arbitrary nonsense value (ex
        // `X-B3-ParentSpanId: -`)" is malformed data.
        TraceContextFormat::B3 => {
            let trace = read("x-b3-traceid", &|v| is_hex_id(v, &[16, 32]).then(|| widen(v)));
            let span = read("x-b3-spanid", &|v| is_hex_id(v, &[16]).then(|| v.to_owned()));
            let parent = read("x-b3-parentspanid", &|v| is_hex_id(v, &[16]).then(|| v.to_owned()));
            let names = ["x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"];
            match (trace, span, parent) {
                (Some(Err(what)), _, _) | (_, Some(Err(what)), _) | (_, _, Some(Err(what))) => Carried::Malformed(what),
                (Some(Ok(trace)), Some(Ok(_)), _) => Carried::Trace(trace),
                (Some(Ok(_)), None, _) => Carried::Malformed("x-b3-traceid without x-b3-spanid".into()),
                (None, _, _) => match names.iter().find(|n| headers.contains_key(**n)) {
                    Some(n) => Carried::Malformed(format!("{n} without x-b3-traceid")),
                    None => Carried::Absent,
                },
            }
        }
        // b3-propagation README.md "Single Header": `b3: {TraceId}-{SpanId}[-{SamplingState}
        // [-{ParentSpanId}]]`, ids in lower-hex as above, sampling state `0`, `1` or `d`; a lone
        // sampling state (`b3: 0`) carries no trace.
        TraceContextFormat::B3Single => state(read("b3", &|v| {
            let parts: Vec<&str> = v.split('-').collect();
            let sampling = |s: &str| matches!(s, "0" | "1" | "d");
            let ids = |trace: &str, span: &str| is_hex_id(trace, &[16, 32]) && is_hex_id(span, &[16]);
            let valid = match parts.as_slice() {
                [trace, span] => ids(trace, span),
                [trace, span, sampled] => ids(trace, span) && sampling(sampled),
                [trace, span, sampled, parent] => ids(trace, span) && sampling(sampled) && is_hex_id(parent, &[16]),
                _ => false,
            };
            valid.then(|| widen(parts[0]))
        })),
        TraceContextFormat::W3cAndB3 => Carried::Malformed("`w3c+b3` is judged as `w3c` and `b3` separately".into()),
    }
}

/// The trace id of a `traceparent` value, or `None` when a receiver must ignore the header.
///
/// W3C Trace Context Level 1 (REC; w3c/trace-context branch `level-1`,
/// spec/20-http_header_format.md): §3.2.2 `value = version "-" version-format`, every field
/// `HEXDIGLC` (lowercase hex); §3.2.2.1 version `ff` is invalid; §3.2.2.2 version `00` is
/// exactly `trace-id "-" parent-id "-" trace-flags`; §3.2.2.3/§3.2.2.4 all-zero or
/// non-lowercase ids make the receiver ignore the header. §3.2.4 "Versioning of traceparent": a
/// higher version is parsed, not rejected: trace-id (32 hex, then `-`), parent-id (16 hex, then
/// `-`), flags (2 characters at the end or followed by `-`), anything after is that version's
/// and is not looked at. The w3c test suite's `test_traceparent_version_0xcc` /
/// `_0x00` / `_0xff` (level-1 test/test.py) are exactly these cases.
fn w3c_trace_id(value: &str) -> Option<String> {
    let (version, rest) = value.split_once('-')?;
    if !is_lower_hex(version, 2) || version == "ff" {
        return None;
    }
    // At most four pieces: the three known fields and, for a higher version, its own data.
    let (trace, parent, flags, extra) = match rest.splitn(4, '-').collect::<Vec<_>>().as_slice() {
        [trace, parent, flags] => (*trace, *parent, *flags, None),
        [trace, parent, flags, extra] => (*trace, *parent, *flags, Some(*extra)),
        _ => return None,
    };
    // Version 00 has nothing after the flags (§3.2.2.2); only a later version may.
    if version == "00" && extra.is_some() {
        return None;
    }
    (is_hex_id(trace, &[32]) && is_hex_id(parent, &[16]) && is_lower_hex(flags, 2)).then(|| trace.to_owned())
}

/// Exactly `len` lowercase hex digits (W3C's `HEXDIGLC`, B3's "lower-hex").
fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex of one of `lens` digits and not all zeros: W3C §3.2.2.3/§3.2.2.4 forbid
/// all-zero ids; the B3 README says nothing of them, but an all-zero id names no trace, and
/// OpenTelemetry's B3 propagator extracts no valid context from one (opentelemetry-propagator-b3
/// 1.45.1 `B3MultiFormat.extract`; golden `b3-multi-zero-trace-id`).
fn is_hex_id(s: &str, lens: &[usize]) -> bool {
    lens.iter().any(|l| is_lower_hex(s, *l)) && s.bytes().any(|c| c != b'0')
}

/// A trace id as 32 lowercase hex digits: 64-bit ids (B3 allows them, Jaeger prints them) are
/// the low half of a 128-bit one.
pub fn widen(id: &str) -> String {
    format!("{:0>32}", id.to_ascii_lowercase())
}

/// One span, from either collector format: as much of it as the checks use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub trace_id: String,
    pub id: String,
    pub parent_id: Option<String>,
    pub name: Option<String>,
    /// `SERVER`, `CLIENT`, `INTERNAL`, `PRODUCER` or `CONSUMER`; absent for Zipkin's local spans.
    pub kind: Option<String>,
    /// The reporting service's name (an answer with a span of no service is unreadable).
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the collector's answer is neither Jaeger's JSON nor Zipkin v2 JSON: {0}")]
    Shape(String),
    #[error("the collector reported errors: {0}")]
    Collector(String),
}

/// The spans of a collector's answer for one trace. An answer with no trace (Jaeger's empty
/// `data`, Zipkin's `[]`) is an empty list: not collected yet.
pub fn decode(body: &str) -> Result<Vec<Span>, DecodeError> {
    match body.trim_start().as_bytes().first() {
        Some(b'[') => {
            let spans: Vec<zipkin::Span> =
                serde_json::from_str(body).map_err(|e| DecodeError::Shape(format!("as Zipkin v2: {e}")))?;
            spans.into_iter().map(zipkin::Span::into_span).collect()
        }
        Some(b'{') => {
            let answer: jaeger::Answer =
                serde_json::from_str(body).map_err(|e| DecodeError::Shape(format!("as Jaeger: {e}")))?;
            answer.into_spans()
        }
        _ => Err(DecodeError::Shape(format!("it starts with {:?}", body.chars().take(20).collect::<String>()))),
    }
}

/// The span tree in one collector answer for `trace_id` (as a transcript records it): a 404 is
/// a trace not collected yet, a 200 holds spans, anything else (or no answer) is the collector
/// failing. Spans of a trace other than `trace_id` make the answer wrong, not part of the trace.
pub fn tree_of(answer: &crate::probe::observation::Answer, trace_id: &str) -> Result<SpanTree, String> {
    match answer.status {
        // The API server's own 404 (no such Service) is a Kubernetes `Status`; Jaeger's is not.
        Some(404) if is_kubernetes_status(&answer.body) => Err(format!(
            "the API server found no collector to ask: {}",
            answer.body.chars().take(200).collect::<String>()
        )),
        Some(404) if is_jaeger_not_found(&answer.body) => Ok(SpanTree::build(&[])),
        // Any other 404 (a proxy's page, another service behind the name) is not Jaeger saying
        // "not collected yet": waiting on it would turn a misconfiguration into a late timeout.
        Some(404) => Err(format!(
            "the collector's 404 is not Jaeger's not-found answer: {}",
            answer.body.chars().take(200).collect::<String>()
        )),
        Some(200) => {
            let spans = decode(&answer.body).map_err(|e| e.to_string())?;
            let wanted = widen(trace_id);
            if let Some(other) = spans.iter().find(|s| s.trace_id != wanted) {
                return Err(format!(
                    "the collector answered for trace {wanted} with a span of trace {} (service {})",
                    other.trace_id, other.service
                ));
            }
            Ok(SpanTree::build(&spans))
        }
        Some(status) => {
            Err(format!("the collector answered {status}: {}", answer.body.chars().take(200).collect::<String>()))
        }
        None => Err(format!(
            "the collector did not answer: {}",
            answer.message.as_deref().unwrap_or("no status and no message")
        )),
    }
}

/// Jaeger's own answer for a trace it does not hold (jaegertracing/jaeger v2.20.0
/// cmd/jaeger/internal/extension/jaegerquery/internal/http_handler.go): `{"data": null, ...,
/// "errors": [{"code": 404, "msg": "trace not found"}]}`: no data and a 404 among its errors.
fn is_jaeger_not_found(body: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(body) else { return false };
    let no_data = v.get("data").is_none_or(|d| d.is_null() || d.as_array().is_some_and(Vec::is_empty));
    let says_404 = v
        .get("errors")
        .and_then(Value::as_array)
        .is_some_and(|errors| errors.iter().any(|e| e.get("code").and_then(Value::as_u64) == Some(404)));
    no_data && says_404
}

fn is_kubernetes_status(body: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|v| v.get("kind").and_then(Value::as_str) == Some("Status"))
}

/// The collector's query for `trace_id` through the API server's service proxy: the collector
/// needs no port on the host.
pub fn query_path(namespace: &str, service: &str, port: u16, trace_id: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/api/traces/{trace_id}")
}

/// Jaeger's query JSON (jaegertracing/jaeger model/json/model.go and the query service's
/// `structuredResponse`), as much as a span tree needs.
mod jaeger {
    use super::*;

    #[derive(Deserialize)]
    pub(super) struct Answer {
        #[serde(default)]
        data: Option<Vec<Trace>>,
        #[serde(default)]
        errors: Option<Vec<ErrorEntry>>,
    }

    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: Option<i64>,
        #[serde(default)]
        msg: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Trace {
        #[serde(rename = "traceID")]
        trace_id: String,
        #[serde(default)]
        spans: Vec<Span>,
        #[serde(default)]
        processes: BTreeMap<String, Process>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Span {
        #[serde(rename = "traceID", default)]
        trace_id: Option<String>,
        #[serde(rename = "spanID")]
        span_id: String,
        /// Deprecated in Jaeger's model in favour of `references`, still read.
        #[serde(rename = "parentSpanID", default)]
        parent_span_id: Option<String>,
        #[serde(default)]
        operation_name: Option<String>,
        #[serde(default)]
        references: Vec<Reference>,
        #[serde(default)]
        tags: Vec<KeyValue>,
        #[serde(rename = "processID", default)]
        process_id: Option<String>,
        #[serde(default)]
        process: Option<Process>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Reference {
        ref_type: String,
        /// Always written by Jaeger's UI model (internal/uimodel `Reference.TraceID`); a
        /// reference without it cannot be shown to point into this trace.
        #[serde(rename = "traceID", default)]
        trace_id: Option<String>,
        #[serde(rename = "spanID")]
        span_id: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Process {
        service_name: String,
    }

    #[derive(Deserialize)]
    struct KeyValue {
        key: String,
        #[serde(default)]
        value: Value,
    }

    /// The span's parent in this trace: its first `CHILD_OF` reference whose `traceID` is this
    /// trace's. jaegertracing/jaeger v1.40.0 model/span.go `ParentSpanID` reads "the first
    /// child-of reference pointing to the same trace ID"; its ui fixture
    /// internal/uimodel/converter/v1/json/fixtures/ui_01.json (v2.20.0) has a span whose first
    /// `CHILD_OF` points into another trace, before its parent in this one. `FOLLOWS_FROM` is
    /// not a parent: Jaeger v2 answers from OTLP through opentelemetry-collector-contrib
    /// pkg/translator/jaeger `makeJaegerProtoReferences`, which writes the OTLP parent as the
    /// `CHILD_OF` of the span's own trace and each OTLP link as `FOLLOWS_FROM` (later versions
    /// write a link carrying `opentracing.ref_type=child_of` as `CHILD_OF`, and a link may name
    /// another trace: hence the trace check) (jaeger v1.55+
    /// `ParentSpanID` falls back to `FOLLOWS_FROM`; that would file a linked span under the
    /// span it merely links to, inventing an edge). A span whose only `CHILD_OF` is another
    /// trace's is a root of this one. The deprecated `parentSpanID` is read only from answers
    /// that have no references at all (the older shape).
    fn parent_of(span: &Span, trace_id: &str) -> Option<String> {
        let this_trace = widen(trace_id);
        let parent = if span.references.is_empty() {
            span.parent_span_id.clone()
        } else {
            span.references
                .iter()
                .find(|r| r.ref_type == "CHILD_OF" && r.trace_id.as_deref().is_some_and(|t| widen(t) == this_trace))
                .map(|r| r.span_id.clone())
        };
        parent.filter(|p| !p.is_empty() && p.bytes().any(|c| c != b'0'))
    }

    impl Answer {
        pub(super) fn into_spans(self) -> Result<Vec<super::Span>, DecodeError> {
            let traces = self.data.unwrap_or_default();
            let errors: Vec<String> = self
                .errors
                .unwrap_or_default()
                .into_iter()
                // A 404 entry is "not collected yet", like an empty answer.
                .filter(|e| e.code != Some(404))
                .map(|e| match e.code {
                    Some(code) => format!("{code} {}", e.msg),
                    None => e.msg,
                })
                .collect();
            if traces.is_empty() && !errors.is_empty() {
                return Err(DecodeError::Collector(errors.join("; ")));
            }
            let mut out = Vec::new();
            for trace in traces {
                for span in trace.spans {
                    // A span no process names could be any service's, including one that must
                    // stay silent: the answer is unreadable, not a span of `<unknown>`.
                    let process = span
                        .process
                        .as_ref()
                        .or_else(|| span.process_id.as_ref().and_then(|id| trace.processes.get(id)))
                        .ok_or_else(|| {
                            DecodeError::Shape(format!(
                                "span {} names no process the answer holds ({:?})",
                                span.span_id, span.process_id
                            ))
                        })?;
                    let service = process.service_name.clone();
                    if let Some(own) = &span.trace_id
                        && widen(own) != widen(&trace.trace_id)
                    {
                        return Err(DecodeError::Shape(format!(
                            "span {} of trace {own} inside the entry for trace {}",
                            span.span_id, trace.trace_id
                        )));
                    }
                    // The OTLP -> Jaeger translation keeps the kind as the `span.kind` tag, lowercased.
                    let kind = span
                        .tags
                        .iter()
                        .find(|t| t.key == "span.kind")
                        .and_then(|t| t.value.as_str())
                        .filter(|k| !k.is_empty() && *k != "unspecified")
                        .map(str::to_ascii_uppercase);
                    let parent = parent_of(&span, &trace.trace_id);
                    out.push(super::Span {
                        trace_id: widen(&trace.trace_id),
                        id: span.span_id,
                        parent_id: parent,
                        name: span.operation_name,
                        kind,
                        service,
                    });
                }
            }
            Ok(out)
        }
    }
}

/// Zipkin v2 span JSON (zipkin-api zipkin2-api.yaml).
mod zipkin {
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Span {
        trace_id: String,
        id: String,
        #[serde(default)]
        parent_id: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        local_endpoint: Option<Endpoint>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Endpoint {
        #[serde(default)]
        service_name: Option<String>,
    }

    impl Span {
        /// A span that names no service could be anyone's: an error, as for Jaeger's answers.
        pub(super) fn into_span(self) -> Result<super::Span, DecodeError> {
            let Some(service) = self.local_endpoint.and_then(|e| e.service_name).filter(|s| !s.is_empty()) else {
                return Err(DecodeError::Shape(format!(
                    "span {} names no service (localEndpoint.serviceName)",
                    self.id
                )));
            };
            Ok(super::Span {
                trace_id: widen(&self.trace_id),
                id: self.id,
                parent_id: self.parent_id,
                name: self.name,
                kind: self.kind,
                service,
            })
        }
    }
}

/// A trace's spans arranged by parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpanTree {
    pub roots: Vec<SpanNode>,
}

/// One node: ids and timings dropped, children sorted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SpanNode {
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<SpanNode>,
}

impl SpanTree {
    /// Arrange spans, each exactly once: a span whose parent is not in the answer (e.g. the
    /// harness's own root id) is a root; of spans sharing an id (Zipkin's client and server
    /// halves), the first is the parent of that id's children; spans in a parent cycle, which
    /// no root reaches, become roots where the cycle is cut; a chain deeper than
    /// [`MAX_DEPTH`] continues as a root of its own. So every span of the answer is in the tree
    /// (none dropped, none duplicated) in time linear in the answer.
    pub fn build(spans: &[Span]) -> Self {
        const MAX_DEPTH: usize = 64;
        let mut first_with_id: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, span) in spans.iter().enumerate() {
            first_with_id.entry(span.id.as_str()).or_insert(i);
        }
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        let mut pending: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        for (i, span) in spans.iter().enumerate() {
            match span.parent_id.as_deref().and_then(|p| first_with_id.get(p)) {
                Some(&parent) if parent != i => children[parent].push(i),
                _ => pending.push_back(i),
            }
        }
        struct Builder<'a> {
            spans: &'a [Span],
            children: Vec<Vec<usize>>,
            placed: Vec<bool>,
        }
        impl Builder<'_> {
            fn node(&mut self, i: usize, depth: usize, overflow: &mut std::collections::VecDeque<usize>) -> SpanNode {
                self.placed[i] = true;
                let mut kids = Vec::new();
                for c in std::mem::take(&mut self.children[i]) {
                    if self.placed[c] {
                        continue;
                    }
                    if depth + 1 >= MAX_DEPTH {
                        overflow.push_back(c);
                    } else {
                        kids.push(self.node(c, depth + 1, overflow));
                    }
                }
                kids.sort();
                let span = &self.spans[i];
                SpanNode {
                    service: span.service.clone(),
                    kind: span.kind.clone(),
                    name: span.name.clone(),
                    children: kids,
                }
            }
        }
        let mut builder = Builder { spans, children, placed: vec![false; spans.len()] };
        let mut roots = Vec::new();
        let mut cursor = 0;
        loop {
            while let Some(r) = pending.pop_front() {
                if !builder.placed[r] {
                    roots.push(builder.node(r, 0, &mut pending));
                }
            }
            // What no root reached sits in a cycle: cut it at its first span.
            while cursor < spans.len() && builder.placed[cursor] {
                cursor += 1;
            }
            if cursor == spans.len() {
                break;
            }
            pending.push_back(cursor);
        }
        roots.sort();
        SpanTree { roots }
    }

    pub fn services(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.walk(&mut |_, n| {
            out.insert(n.service.clone());
        });
        out
    }

    /// Parent -> child service pairs where the services differ.
    pub fn edges(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        self.walk(&mut |parent, n| {
            if let Some(p) = parent
                && p.service != n.service
            {
                out.insert((p.service.clone(), n.service.clone()));
            }
        });
        out
    }

    /// The tree as a snapshot holds it: services, span kinds and shape only. Span names are
    /// left out (Envoy's carry the upstream host, Kong's vary with its instrumentation), and a
    /// service named after a pod has the pod's hash replaced, so only a change in who reports
    /// what under whom shows as a diff.
    pub fn shape(&self) -> Value {
        fn node(n: &SpanNode) -> Value {
            let mut m = serde_json::Map::new();
            m.insert("service".into(), crate::names::pod_name(&n.service).into());
            if let Some(kind) = &n.kind {
                m.insert("kind".into(), kind.clone().into());
            }
            let mut children: Vec<Value> = n.children.iter().map(node).collect();
            // Sorted after normalising, so pods' hashes do not order siblings.
            // Each key serialised once: a comparison-time key would cost a subtree per comparison.
            children.sort_by_cached_key(|c| c.to_string());
            if !children.is_empty() {
                m.insert("children".into(), Value::Array(children));
            }
            Value::Object(m)
        }
        let mut roots: Vec<Value> = self.roots.iter().map(node).collect();
        roots.sort_by_cached_key(|c| c.to_string());
        Value::Array(roots)
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(Option<&'a SpanNode>, &'a SpanNode)) {
        fn go<'a>(
            parent: Option<&'a SpanNode>,
            n: &'a SpanNode,
            f: &mut impl FnMut(Option<&'a SpanNode>, &'a SpanNode),
        ) {
            f(parent, n);
            for c in &n.children {
                go(Some(n), c, f);
            }
        }
        for r in &self.roots {
            go(None, r, f);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
