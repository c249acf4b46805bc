#!/usr/bin/env python3
"""Goldens from independent implementations, for the harness's trace-context and metrics readers.

Writes, next to this file:
  trace-context.json  traceparent/tracestate, B3 multi and single `b3` headers injected by the
                      OpenTelemetry Python SDK's propagators, plus a few hand-derived invalid
                      variants (marked `derived`, with how they were made).
  exposition.json     Prometheus text format 0.0.4 and OpenMetrics 1.0 text produced by
                      prometheus-client, with the samples prometheus-client's own parsers read
                      back from that text, and the verdicts expectations over them must reach.

Every output carries the generator's name and the exact package versions. The Rust tests read
the outputs with include_str! (probe/trace/tests.rs, check/metrics/goldens.rs); they never run
Python. Re-run (Python 3.11) from the repository root, in a venv outside the repository:

  python3 -m venv /tmp/goldens-venv
  /tmp/goldens-venv/bin/pip install opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 \
      opentelemetry-propagator-b3==1.45.1 prometheus-client==0.26.0
  /tmp/goldens-venv/bin/python harness/testdata/goldens/generate.py

The output is deterministic: ids come from a seeded generator, the registry holds no clock
values except `_created` samples, which are pinned below.
"""

import json
import math
import random
from importlib.metadata import version
from pathlib import Path

from opentelemetry import trace
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

HERE = Path(__file__).resolve().parent
GENERATOR = "harness/testdata/goldens/generate.py"
PACKAGES = {
    name: version(name)
    for name in ("opentelemetry-api", "opentelemetry-sdk", "opentelemetry-propagator-b3", "prometheus-client")
}

W3C = TraceContextTextMapPropagator()
B3_MULTI = B3MultiFormat()
B3_SINGLE = B3SingleFormat()


class SeededIds(IdGenerator):
    """The SDK's ids, from a seeded source so a re-run writes the same files."""

    def __init__(self, seed, high_zero=False):
        self.rng = random.Random(seed)
        self.high_zero = high_zero

    def generate_span_id(self):
        return self.rng.getrandbits(64) or 1

    def generate_trace_id(self):
        # A zero high half: a trace id a 64-bit B3 tracer could have made.
        bits = 64 if self.high_zero else 128
        return self.rng.getrandbits(bits) or 1


def otel_reads(propagator, headers):
    """What the same OpenTelemetry propagator extracts from `headers`: the trace id or None."""
    context = propagator.extract(headers)
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return None
    return trace.format_trace_id(span_context.trace_id)


def inject(propagator, seed, sampled, parent_headers=None, high_zero=False):
    """Headers the SDK writes for a span it starts (as a child of `parent_headers`, if given)."""
    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF, id_generator=SeededIds(seed, high_zero))
    tracer = provider.get_tracer("kme2e-goldens")
    parent = propagator.extract(parent_headers) if parent_headers else None
    with tracer.start_as_current_span("golden", context=parent) as span:
        carrier = {}
        propagator.inject(carrier)
        trace_id = trace.format_trace_id(span.get_span_context().trace_id)
    return carrier, trace_id


def trace_cases():
    cases = []

    def generated(name, fmt, propagator, headers, trace_id, note):
        cases.append(
            {
                "name": name,
                "derived": None,
                "format": fmt,
                "headers": headers,
                "expect": {"carried": "trace", "trace_id": trace_id},
                "otel_extract": otel_reads(propagator, headers),
                "note": note,
            }
        )

    def derived(name, fmt, propagator, headers, expect, source, how, rule):
        cases.append(
            {
                "name": name,
                "derived": {"from": source, "how": how},
                "format": fmt,
                "headers": headers,
                "expect": expect,
                "otel_extract": otel_reads(propagator, headers),
                "note": rule,
            }
        )

    w3c_sampled, w3c_id = inject(W3C, 1, True)
    generated("w3c-sampled", "w3c", W3C, w3c_sampled, w3c_id, "TraceContextTextMapPropagator.inject, SDK span sampled")
    w3c_unsampled, w3c_unsampled_id = inject(W3C, 2, False)
    generated(
        "w3c-unsampled", "w3c", W3C, w3c_unsampled, w3c_unsampled_id, "flags 00: the trace id is carried all the same"
    )
    # A continued trace with tracestate: the SDK keeps the parent's trace id and tracestate.
    parent = {
        "traceparent": w3c_sampled["traceparent"],
        "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    }
    continued, continued_id = inject(W3C, 3, True, parent_headers=parent)
    assert continued_id == w3c_id and "tracestate" in continued, continued
    generated("w3c-continued-tracestate", "w3c", W3C, continued, continued_id, "child of w3c-sampled, tracestate kept")

    b3_sampled, b3_id = inject(B3_MULTI, 4, True)
    generated("b3-multi-sampled", "b3", B3_MULTI, b3_sampled, b3_id, "B3MultiFormat.inject, SDK span sampled")
    b3_unsampled, b3_unsampled_id = inject(B3_MULTI, 5, False)
    generated("b3-multi-unsampled", "b3", B3_MULTI, b3_unsampled, b3_unsampled_id, "x-b3-sampled: 0")
    single_sampled, single_id = inject(B3_SINGLE, 6, True)
    generated("b3-single-sampled", "b3-single", B3_SINGLE, single_sampled, single_id, "B3SingleFormat.inject")
    single_unsampled, single_unsampled_id = inject(B3_SINGLE, 7, False)
    generated("b3-single-unsampled", "b3-single", B3_SINGLE, single_unsampled, single_unsampled_id, "sampling state 0")
    # The propagator always writes 32 digits (format_trace_id); a 64-bit id shows as a zero
    # high half. The 16-digit form below is derived from it.
    b3_64, b3_64_id = inject(B3_MULTI, 8, True, high_zero=True)
    assert b3_64["x-b3-traceid"].startswith("0" * 16), b3_64
    generated("b3-multi-64bit-id-as-32", "b3", B3_MULTI, b3_64, b3_64_id, "zero high half, written as 32 digits")
    single_64, single_64_id = inject(B3_SINGLE, 9, True, high_zero=True)
    generated("b3-single-64bit-id-as-32", "b3-single", B3_SINGLE, single_64, single_64_id, "zero high half")

    tp = w3c_sampled["traceparent"]
    _, tid, pid, flags = tp.split("-")
    malformed = {"carried": "malformed"}
    derived(
        "w3c-uppercase",
        "w3c",
        W3C,
        {"traceparent": tp.upper()},
        malformed,
        "w3c-sampled",
        "traceparent upper-cased",
        "W3C Trace Context L1 §3.2.2: HEXDIGLC; §3.2.2.3/§3.2.2.4: ignore the header",
    )
    derived(
        "w3c-version-ff",
        "w3c",
        W3C,
        {"traceparent": f"ff-{tid}-{pid}-{flags}"},
        malformed,
        "w3c-sampled",
        "version 00 replaced by ff",
        "W3C L1 §3.2.2.1: version ff is invalid",
    )
    derived(
        "w3c-version-00-with-extra",
        "w3c",
        W3C,
        {"traceparent": f"{tp}-what-the-future-will-be-like"},
        malformed,
        "w3c-sampled",
        "`-what-the-future-will-be-like` appended (w3c test suite's value)",
        "W3C L1 §3.2.2.2: version 00 is exactly four fields",
    )
    derived(
        "w3c-version-cc-with-extra",
        "w3c",
        W3C,
        {"traceparent": f"cc-{tid}-{pid}-{flags}-what-the-future-will-be-like"},
        {"carried": "trace", "trace_id": tid},
        "w3c-sampled",
        "version cc, extra field appended",
        "W3C L1 §3.2.4: a higher version's known fields are parsed, never rejected for the version",
    )
    derived(
        "w3c-version-01",
        "w3c",
        W3C,
        {"traceparent": f"01-{tid}-{pid}-{flags}"},
        {"carried": "trace", "trace_id": tid},
        "w3c-sampled",
        "version 00 replaced by 01",
        "W3C L1 §3.2.4",
    )
    derived(
        "w3c-version-cc-flags-not-delimited",
        "w3c",
        W3C,
        {"traceparent": f"cc-{tid}-{pid}-{flags}.what-the-future-will-be-like"},
        malformed,
        "w3c-sampled",
        "version cc, `.` right after the flags",
        "W3C L1 §3.2.4: flags at the end or followed by `-`",
    )
    derived(
        "w3c-zero-trace-id",
        "w3c",
        W3C,
        {"traceparent": f"00-{'0' * 32}-{pid}-{flags}"},
        malformed,
        "w3c-sampled",
        "trace-id zeroed",
        "W3C L1 §3.2.2.3: all zeroes forbidden",
    )
    derived(
        "w3c-zero-parent-id",
        "w3c",
        W3C,
        {"traceparent": f"00-{tid}-{'0' * 16}-{flags}"},
        malformed,
        "w3c-sampled",
        "parent-id zeroed",
        "W3C L1 §3.2.2.4: all zeroes forbidden",
    )
    derived(
        "w3c-ows",
        "w3c",
        W3C,
        {"traceparent": f"\t {tp} \t"},
        {"carried": "trace", "trace_id": tid},
        "w3c-sampled",
        "SP/HTAB around the value (w3c test suite test_traceparent_ows_handling)",
        "RFC 9110 §5.6.3 OWS is not part of the value",
    )
    b3 = b3_sampled
    derived(
        "b3-multi-uppercase-trace-id",
        "b3",
        B3_MULTI,
        {**b3, "x-b3-traceid": b3["x-b3-traceid"].upper()},
        malformed,
        "b3-multi-sampled",
        "x-b3-traceid upper-cased",
        "openzipkin/b3-propagation README: X-B3-TraceId is lower-hex (OpenTelemetry's extract is lenient here)",
    )
    derived(
        "b3-multi-uppercase-span-id",
        "b3",
        B3_MULTI,
        {**b3, "x-b3-spanid": b3["x-b3-spanid"].upper()},
        malformed,
        "b3-multi-sampled",
        "x-b3-spanid upper-cased",
        "b3-propagation README: X-B3-SpanId is 16 lower-hex characters",
    )
    derived(
        "b3-multi-64bit-id",
        "b3",
        B3_MULTI,
        {**b3_64, "x-b3-traceid": b3_64["x-b3-traceid"][16:]},
        {"carried": "trace", "trace_id": b3_64_id},
        "b3-multi-64bit-id-as-32",
        "the zero high half dropped: 16 digits",
        "b3-propagation README: 32 or 16 lower-hex characters; a 64-bit id is the low half",
    )
    derived(
        "b3-multi-zero-trace-id",
        "b3",
        B3_MULTI,
        {**b3, "x-b3-traceid": "0" * 32},
        malformed,
        "b3-multi-sampled",
        "x-b3-traceid zeroed",
        "an all-zero id identifies no trace (OpenTelemetry extracts no valid context)",
    )
    derived(
        "b3-multi-parent-nonsense",
        "b3",
        B3_MULTI,
        {**b3, "x-b3-parentspanid": "-"},
        malformed,
        "b3-multi-sampled",
        "x-b3-parentspanid: - added",
        "b3-propagation README: `X-B3-ParentSpanId: -` is malformed data",
    )
    single = single_sampled["b3"]
    derived(
        "b3-single-uppercase",
        "b3-single",
        B3_SINGLE,
        {"b3": single.upper()},
        malformed,
        "b3-single-sampled",
        "b3 upper-cased",
        "b3-propagation README Single Header: lower-hex TraceId and SpanId",
    )
    derived(
        "b3-single-64bit-id",
        "b3-single",
        B3_SINGLE,
        {"b3": single_64["b3"][16:]},
        {"carried": "trace", "trace_id": single_64_id},
        "b3-single-64bit-id-as-32",
        "the zero high half dropped: 16 digits",
        "b3-propagation README: 32 or 16 lower-hex characters",
    )
    derived(
        "b3-single-deny-only",
        "b3-single",
        B3_SINGLE,
        {"b3": "0"},
        malformed,
        "b3-propagation README",
        "the README's deny example `b3: 0`",
        "a sampling state alone carries no trace id",
    )
    return cases


def go_float(v):
    """A sample value in JSON: finite numbers as numbers, the rest as the text format spells them."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


class NonFinite:
    """Counters no client would increment to: prometheus-client's families with these values."""

    def collect(self):
        nan = CounterMetricFamily("golden_nan_requests", "A counter whose sample is NaN.", labels=["code"])
        nan.add_metric(["200"], math.nan)
        yield nan
        inf = CounterMetricFamily("golden_inf_requests", "A counter whose sample is +Inf.", labels=["code"])
        inf.add_metric(["200"], math.inf)
        yield inf


def registry(non_finite_counters):
    reg = CollectorRegistry()
    requests = Counter(
        "golden_requests", "Requests, by path.\nSecond HELP line with a \\ backslash.", ["path", "code"], registry=reg
    )
    requests.labels(path='/quote"d', code="200").inc(3)
    requests.labels(path="/back\\slash", code="200").inc(2)
    requests.labels(path="/new\nline", code="404").inc(1)
    requests.labels(path="/plain", code="200").inc(1.5)
    latency = Histogram("golden_latency_seconds", "Latency.", ["route"], buckets=(0.1, 1.0), registry=reg)
    for v in (0.05, 0.5, 2.0):
        latency.labels(route="r1").observe(v)
    temp = Gauge("golden_temperature", "A gauge that went NaN.", registry=reg)
    temp.set(math.nan)
    inf_gauge = Gauge("golden_capacity", "A gauge at +Inf.", registry=reg)
    inf_gauge.set(math.inf)
    neg_gauge = Gauge("golden_neg_inf_gauge", "A gauge at -Inf.", registry=reg)
    neg_gauge.set(-math.inf)
    if non_finite_counters:
        reg.register(NonFinite())
    return reg


def pin_created(text):
    """`_created` samples hold the wall clock; pin them so a re-run writes the same bytes."""
    out = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#") and "_created" in line.split(" ", 1)[0].split("{", 1)[0]:
            head, _, _ = line.rstrip("\n").rpartition(" ")
            line = f"{head} 1.7e+09\n"
        out.append(line)
    return "".join(out)


def read_back(parser, text):
    """The samples prometheus-client's own parser reads from `text`, or its refusal."""
    try:
        samples = [
            {"name": s.name, "labels": dict(s.labels), "value": go_float(s.value)}
            for family in parser(text)
            for s in family.samples
        ]
        return samples, None
    except ValueError as e:
        return None, str(e)


def exposition_cases():
    cases = []
    for suffix, non_finite in (("", False), ("-non-finite-counters", True)):
        reg = registry(non_finite)
        for name, content_type, text, parser in (
            ("text-0.0.4", "text/plain; version=0.0.4", pin_created(generate_latest(reg).decode()), parse_text),
            (
                "openmetrics-1.0.0",
                "application/openmetrics-text; version=1.0.0",
                pin_created(generate_openmetrics(reg).decode()),
                parse_openmetrics,
            ),
        ):
            samples, refused = read_back(parser, text)
            cases.append(
                {
                    "name": name + suffix,
                    "content_type": content_type,
                    "text": text,
                    # What prometheus-client's parser for this format reads: every sample, or
                    # its refusal of the whole text (its OpenMetrics parser refuses a NaN
                    # counter: "Counter-like samples cannot be NaN").
                    "samples": samples,
                    "parser_refuses": refused,
                }
            )
    # Verdicts an expectation must reach over every text that holds its series (the harness
    # sums matching series).
    checks = [
        {
            "expect": {"name": "golden_requests_total", "labels": {"code": "200"}, "at_least": 6.5},
            "verdict": "pass",
            "why": "3 + 2 + 1.5 over the code=200 series",
        },
        {
            "expect": {"name": "golden_requests_total", "labels": {"code": "200"}, "at_least": 7},
            "verdict": "fail",
            "why": "the sum is 6.5",
        },
        {
            "expect": {"name": "golden_requests_total", "labels": {"path": '/quote"d'}, "at_least": 3},
            "verdict": "pass",
            "why": "an escaped quote in a label value",
        },
        {
            "expect": {"name": "golden_requests_total", "labels": {"path": "/new\nline"}, "at_least": 1},
            "verdict": "pass",
            "why": "an escaped newline in a label value",
        },
        {
            "expect": {"name": "golden_requests_total", "labels": {"path": "/back\\slash"}, "at_least": 2},
            "verdict": "pass",
            "why": "an escaped backslash in a label value",
        },
        {
            "expect": {"name": "golden_latency_seconds_count", "labels": {"route": "r1"}, "at_least": 3},
            "verdict": "pass",
            "why": "three observations",
        },
        {
            "expect": {"name": "golden_latency_seconds_bucket", "labels": {"le": "+Inf"}, "at_least": 3},
            "verdict": "pass",
            "why": "+Inf as a label value is a bucket bound, not a sample value",
        },
        {
            "expect": {"name": "golden_nan_requests_total", "labels": {}, "at_least": 0},
            "verdict": "fail",
            "why": "a NaN counter sample: no threshold can be judged, not even 0",
        },
        {
            "expect": {"name": "golden_inf_requests_total", "labels": {"code": "200"}, "at_least": 1},
            "verdict": "fail",
            "why": "a +Inf counter sample counts no request",
        },
        {
            "expect": {"name": "golden_temperature", "labels": {}, "at_least": 0},
            "verdict": "fail",
            "why": "a NaN gauge sample",
        },
        {
            "expect": {"name": "golden_capacity", "labels": {}, "at_least": 1},
            "verdict": "fail",
            "why": "a +Inf gauge sample",
        },
        {
            "expect": {"name": "golden_neg_inf_gauge", "labels": {}, "at_least": 0},
            "verdict": "fail",
            "why": "a -Inf sample",
        },
    ]
    return cases, checks


def write(name, payload):
    payload = {"generator": GENERATOR, "packages": PACKAGES, **payload}
    (HERE / name).write_text(json.dumps(payload, indent=1, ensure_ascii=False, allow_nan=False) + "\n")


def main():
    write("trace-context.json", {"cases": trace_cases()})
    cases, checks = exposition_cases()
    write("exposition.json", {"cases": cases, "checks": checks})


if __name__ == "__main__":
    main()
