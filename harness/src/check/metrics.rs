//! Prometheus text exposition, as Kong's prometheus plugin, Envoy and Linkerd's proxy serve it,
//! and the check of expected series against it.

use std::collections::BTreeMap;

use super::expect::Verdict;
use crate::model::SeriesExpect;

/// One sample: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parse the text format; comment lines and lines that do not parse are skipped (exporters add
/// lines we need not understand), never guessed at.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty()).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => (&line[..i], &line[i..]),
        None => return None,
    };
    let (labels, rest) = if let Some(body) = rest.strip_prefix('{') {
        let (labels, after) = parse_labels(body)?;
        (labels, after)
    } else {
        (BTreeMap::new(), rest)
    };
    // The value, then an optional timestamp.
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name: name.to_owned(), labels, value })
}

/// `a="x",b="y\"z"}` -> labels and the text after `}`.
fn parse_labels(body: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = &after[end + 1..];
    }
}

/// Every expectation must be met by the sum over matching series. A matching sample that is
/// not a finite number (`NaN`, `+Inf`, `-Inf`, all valid sample values in the text format)
/// fails its expectation: it counts no request, and a NaN compares false with every threshold,
/// so a plain `total < at_least` would let it pass any. prometheus-client's own OpenMetrics
/// parser refuses NaN in counter samples outright ("Counter-like samples cannot be NaN",
/// prometheus_client/openmetrics/parser.py).
pub fn evaluate(expect: &[SeriesExpect], samples: &[Sample]) -> Verdict {
    let mut failures = Vec::new();
    for e in expect {
        let matching: Vec<&Sample> = samples
            .iter()
            .filter(|s| e.labels.iter().all(|(k, m)| s.labels.get(k).is_some_and(|v| m.matches(v))) && s.name == e.name)
            .collect();
        let selector = || {
            format!("{}{{{}}}", e.name, e.labels.iter().map(|(k, m)| format!("{k}={m}")).collect::<Vec<_>>().join(","))
        };
        let non_finite: Vec<String> = matching
            .iter()
            .filter(|s| !s.value.is_finite())
            .take(5)
            .map(|s| format!("{:?} = {}", s.labels, s.value))
            .collect();
        if !non_finite.is_empty() {
            failures.push(format!(
                "{}: a matching sample is not a finite number, so no count can be judged against at least {}: [{}]",
                selector(),
                e.at_least,
                non_finite.join("; ")
            ));
            continue;
        }
        let total: f64 = matching.iter().map(|s| s.value).sum::<f64>() + 0.0;
        // Written so that anything not comparable (a sum grown past f64) fails too.
        if !(total.is_finite() && total >= e.at_least) {
            let seen: Vec<String> = samples
                .iter()
                .filter(|s| s.name == e.name)
                .take(5)
                .map(|s| format!("{:?} = {}", s.labels, s.value))
                .collect();
            failures.push(format!(
                "{}: {total} (over {} series), expected at least {}; series of that name: [{}]",
                selector(),
                matching.len(),
                e.at_least,
                seen.join("; ")
            ));
        }
    }
    Verdict::of(failures)
}

#[cfg(test)]
mod goldens;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelMatch;

    // Shapes of Kong's prometheus plugin and Istio's standard metrics (values made up).
    const TEXT: &str = r#"# HELP kong_http_requests_total HTTP status codes per consumer/service/route in Kong
# TYPE kong_http_requests_total counter
kong_http_requests_total{service="ns.echo.http",route="ns.echo.echo.h.test.00",code="200",source="service",workspace="default",consumer=""} 7
kong_http_requests_total{service="ns.echo.http",route="ns.echo.echo.h.test.00",code="404",source="kong",workspace="default",consumer=""} 1
istio_requests_total{response_code="200",source_workload="kong-gateway",source_workload_namespace="kong",connection_security_policy="mutual_tls",reporter="destination"} 5 1700000000000
weird line without value
escaped{path="a\"b\\c"} 1
"#;

    #[test]
    fn parses_labels_values_and_timestamps() {
        let samples = parse(TEXT);
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[2].labels["connection_security_policy"], "mutual_tls");
        assert_eq!(samples[2].value, 5.0);
        assert_eq!(samples[3].labels["path"], "a\"b\\c");
    }

    #[test]
    fn expectations_sum_matching_series() {
        let samples = parse(TEXT);
        let ok = |name: &str, labels: &[(&str, &str)], at_least: f64| SeriesExpect {
            name: name.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), LabelMatch::Equals(v.to_string()))).collect(),
            at_least,
        };
        assert!(evaluate(&[ok("kong_http_requests_total", &[], 8.0)], &samples).passed());
        assert!(
            evaluate(
                &[ok(
                    "istio_requests_total",
                    &[("connection_security_policy", "mutual_tls"), ("source_workload", "kong-gateway")],
                    1.0
                )],
                &samples
            )
            .passed()
        );
        let v = evaluate(&[ok("istio_requests_total", &[("connection_security_policy", "none")], 1.0)], &samples);
        assert!(v.failures[0].contains("expected at least 1"), "{v}");
        assert!(!evaluate(&[ok("missing_total", &[], 1.0)], &samples).passed());
    }

    /// Kong's prometheus plugin text with the counter's sample NaN, +Inf or -Inf: each fails
    /// every threshold, 0 included, and says why; the same series with a number passes.
    #[test]
    fn non_finite_samples_fail_every_threshold() {
        let expect = |at_least: f64| {
            let labels = BTreeMap::from([("code".to_owned(), LabelMatch::Equals("200".into()))]);
            [SeriesExpect { name: "kong_http_requests_total".into(), labels, at_least }]
        };
        let line = |value: &str| {
            format!(
                "# TYPE kong_http_requests_total counter\nkong_http_requests_total{{service=\"t-1.echo.80\",route=\"t-1.echo.echo..80\",code=\"200\",source=\"service\",workspace=\"default\",consumer=\"\"}} {value}\n"
            )
        };
        for value in ["NaN", "+Inf", "-Inf", "Nan", "+inf"] {
            let samples = parse(&line(value));
            assert_eq!(samples.len(), 1, "{value} is a sample value the text format allows");
            for at_least in [0.0, 1.0, 5.0] {
                let v = evaluate(&expect(at_least), &samples);
                assert!(!v.passed(), "{value} passed at-least {at_least}");
                assert!(v.failures[0].contains("not a finite number"), "{v}");
            }
        }
        // Beside a finite series, a non-finite one still poisons the sum.
        let both = parse(&format!("{}{}", line("7"), line("NaN").replace("t-1.echo.80", "t-1.other.80")));
        assert!(!evaluate(&expect(1.0), &both).passed());
        assert!(evaluate(&expect(5.0), &parse(&line("7"))).passed());
        // Finite samples whose sum leaves f64 are not a count either.
        let huge = parse(&format!("{}{}", line("1.7e308"), line("1.7e308").replace("t-1.echo.80", "t-1.b.80")));
        assert!(!evaluate(&expect(1.0), &huge).passed());
    }

    /// Kong's counter on a kept cluster: an earlier run's series (another namespace) must not
    /// satisfy this scenario's expectation. Service names are KIC's `<namespace>.<service>.<port>`
    /// (kubernetes-ingress-controller v3.5 internal/dataplane/translator/subtranslator/ingress.go).
    #[test]
    fn a_prefix_scopes_kongs_counter_to_the_scenarios_namespace() {
        let text = r#"kong_http_requests_total{service="metrics-istio-r1.echo.80",route="metrics-istio-r1.echo.echo..80",code="200",source="service",workspace="default",consumer=""} 40
kong_http_requests_total{service="metrics-istio-r12.echo.80",route="metrics-istio-r12.echo.echo..80",code="200",source="service",workspace="default",consumer=""} 2
"#;
        let samples = parse(text);
        let expect = |ns: &str| {
            let labels = BTreeMap::from([
                ("code".to_owned(), LabelMatch::Equals("200".into())),
                ("service".to_owned(), LabelMatch::Prefix { prefix: format!("{ns}.") }),
            ]);
            [SeriesExpect { name: "kong_http_requests_total".into(), labels, at_least: 5.0 }]
        };
        // The earlier run r1 counted 40; this run r12 only 2: not enough, whatever r1 did.
        let v = evaluate(&expect("metrics-istio-r12"), &samples);
        assert!(!v.passed(), "{v}");
        assert!(v.failures[0].contains("service=\"metrics-istio-r12.\"..."), "{v}");
        assert!(evaluate(&expect("metrics-istio-r1"), &samples).passed());
    }
}
