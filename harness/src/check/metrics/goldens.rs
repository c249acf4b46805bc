//! The parser and the check against exposition text made by others: prometheus-client's
//! output (harness/testdata/goldens/generate.py) and a Linkerd proxy's `/metrics` captured by
//! Linkerd's tests (harness/testdata/goldens/README.md says where each file comes from).

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::model::LabelMatch;

const EXPOSITION: &str = include_str!("../../../testdata/goldens/exposition.json");

fn golden() -> Value {
    serde_json::from_str(EXPOSITION).unwrap()
}

/// A golden's value: a JSON number, or the text format's spelling of a non-finite one.
fn value_of(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "+Inf" => f64::INFINITY,
        Value::String(s) if s == "-Inf" => f64::NEG_INFINITY,
        other => panic!("not a sample value: {other}"),
    }
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect()
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

/// Every text prometheus-client wrote is read to exactly the samples its own parser for that
/// format reads from it: same names, same labels (escaped `"`, `\` and newlines undone), same
/// values (NaN and infinities kept as such, never dropped), none more, none fewer.
#[test]
fn prometheus_client_texts_parse_to_its_own_samples() {
    let golden = golden();
    assert_eq!(golden["generator"], "harness/testdata/goldens/generate.py");
    assert!(golden["packages"]["prometheus-client"].is_string());
    let mut compared = 0;
    for case in golden["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let text = case["text"].as_str().unwrap();
        let ours = parse(text);
        let Some(theirs) = case["samples"].as_array() else {
            // prometheus-client refused this text; ours still reads it (the check decides).
            assert!(case["parser_refuses"].as_str().unwrap().contains("cannot be NaN"), "{name}");
            assert!(ours.iter().any(|s| s.value.is_nan() && s.name.ends_with("_total")), "{name}");
            continue;
        };
        assert_eq!(ours.len(), theirs.len(), "{name}: {ours:#?}");
        for expected in theirs {
            let (sample, labels, value) =
                (expected["name"].as_str().unwrap(), labels_of(&expected["labels"]), value_of(&expected["value"]));
            let found = ours.iter().find(|s| s.name == sample && s.labels == labels);
            let Some(found) = found else { panic!("{name}: no {sample}{labels:?} in {ours:#?}") };
            assert!(same(found.value, value), "{name}: {sample}{labels:?} = {} (expected {value})", found.value);
            compared += 1;
        }
    }
    assert!(compared >= 50, "{compared}");
}

/// The verdicts generate.py states, over every text that holds the expectation's series: sums
/// over escaped label values pass and fail at their thresholds; a NaN or infinite sample fails
/// whatever the threshold.
#[test]
fn prometheus_client_texts_reach_the_stated_verdicts() {
    let golden = golden();
    let mut judged = (0, 0);
    for check in golden["checks"].as_array().unwrap() {
        let e = &check["expect"];
        let expect = SeriesExpect {
            name: e["name"].as_str().unwrap().to_owned(),
            labels: labels_of(&e["labels"]).into_iter().map(|(k, v)| (k, LabelMatch::Equals(v))).collect(),
            at_least: e["at_least"].as_f64().unwrap(),
        };
        let pass = match check["verdict"].as_str().unwrap() {
            "pass" => true,
            "fail" => false,
            other => panic!("verdict {other}"),
        };
        let mut texts = 0;
        for case in golden["cases"].as_array().unwrap() {
            let samples = parse(case["text"].as_str().unwrap());
            if !samples.iter().any(|s| s.name == expect.name) {
                continue;
            }
            texts += 1;
            let verdict = evaluate(std::slice::from_ref(&expect), &samples);
            assert_eq!(verdict.passed(), pass, "{} over {}: {verdict} ({})", expect.name, case["name"], check["why"]);
            if pass { judged.0 += 1 } else { judged.1 += 1 }
        }
        assert!(texts >= 2, "{} is in both formats' texts", expect.name);
    }
    assert!(judged.0 >= 10 && judged.1 >= 10, "{judged:?}");
}

const LINKERD_PROXY: &str = include_str!("../../../testdata/goldens/upstream/linkerd-sampleMetrics.txt");

/// A Linkerd proxy's own `/metrics` (linkerd/linkerd2 testutil/prommatch/testdata/sampleMetrics.txt):
/// every sample line is read, histogram buckets with `le="+Inf"` keep their finite counts, and
/// the proxy's inbound count here is of plaintext admin-port scrapes only.
#[test]
fn a_linkerd_proxys_metrics_are_read_whole() {
    let samples = parse(LINKERD_PROXY);
    let lines = LINKERD_PROXY.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
    assert_eq!(samples.len(), lines);
    assert!(samples.iter().all(|s| s.value.is_finite()));
    let expect = |labels: &[(&str, &str)], at_least: f64| {
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), LabelMatch::Equals((*v).to_owned()))).collect();
        [SeriesExpect { name: "request_total".into(), labels, at_least }]
    };
    let scrapes = [("direction", "inbound"), ("target_port", "4191"), ("tls", "no_identity")];
    assert!(evaluate(&expect(&scrapes, 30.0), &samples).passed());
    assert!(!evaluate(&expect(&scrapes, 31.0), &samples).passed());
    let v = evaluate(&expect(&[("direction", "inbound"), ("tls", "true")], 1.0), &samples);
    assert!(v.failures[0].contains("0 (over 0 series)"), "{v}");
    let buckets = SeriesExpect {
        name: "response_latency_ms_bucket".into(),
        labels: BTreeMap::from([("le".to_owned(), LabelMatch::Equals("+Inf".into()))]),
        at_least: 29.0,
    };
    assert!(evaluate(&[buckets], &samples).passed());
}
