//! What a probe saw. Verdicts are computed from observations; snapshots are normalised observations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One request and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Response(Box<Response>),
    /// No HTTP response at all.
    Transport {
        kind: TransportKind,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    pub status: u16,
    /// Response headers, names lowercased.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The echo backend's report, when the body is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<Echo>,
    /// The `version` label of the pod that answered, when it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The body of an answer the echo backend did not write (a proxy's denial, Kong's error),
    /// lossily decoded and cut at [`BODY_LIMIT`] bytes: denials are recognised by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// Headers whose values are credentials: never written to transcripts.
const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "set-cookie", "apikey"];

/// How much of a non-echo body an observation keeps.
pub const BODY_LIMIT: usize = 4096;

impl Response {
    /// An answer as a probe received it: the body is decoded as echo-basic's JSON when it is one,
    /// kept (bounded) otherwise. The one way probes and replayed transcripts build responses.
    /// `limit` bounds the body kept: [`BODY_LIMIT`] for live answers; replay keeps what the
    /// transcript holds (its file is bounded already).
    pub fn from_wire(
        status: u16,
        headers: BTreeMap<String, Vec<String>>,
        body: &[u8],
        versions: &PodVersions,
        limit: usize,
    ) -> Response {
        let echo = Echo::decode(body);
        let version = echo.as_ref().and_then(|e| versions.version_of(&e.pod)).map(str::to_owned);
        let body = match &echo {
            Some(_) => None,
            None if body.is_empty() => None,
            None => {
                let mut end = body.len().min(limit);
                // Never cut inside a UTF-8 sequence of an otherwise valid body.
                while end < body.len() && end > 0 && (body[end] & 0xC0) == 0x80 {
                    end -= 1;
                }
                Some(String::from_utf8_lossy(&body[..end]).into_owned())
            }
        };
        Response { status, headers, echo, version, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).and_then(|v| v.first()).map(String::as_str)
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    Refused,
    Reset,
    Timeout,
    Tls,
    Dns,
    Other,
}

/// The echo server's JSON (kubernetes-sigs/gateway-api conformance/echo-basic/echo-basic.go,
/// `RequestAssertions`): the request as the backend received it, and where it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    pub path: String,
    pub host: String,
    pub method: String,
    #[serde(default)]
    pub proto: String,
    /// Request headers; Go canonicalises names, we lowercase them on decoding.
    #[serde(default, deserialize_with = "lowercase_keys")]
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub ingress: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub pod: String,
}

fn lowercase_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let raw = BTreeMap::<String, Vec<String>>::deserialize(d)?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, values) in raw {
        out.entry(name.to_ascii_lowercase()).or_default().extend(values);
    }
    Ok(out)
}

impl Echo {
    /// Decode a body; `None` when it is not the echo server's JSON (then the echo backend did not answer).
    pub fn decode(body: &[u8]) -> Option<Echo> {
        let echo: Echo = serde_json::from_slice(body).ok()?;
        (!echo.method.is_empty() && !echo.path.is_empty()).then_some(echo)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).and_then(|v| v.first()).map(String::as_str)
    }
}

/// One raw answer as a transcript records it (docs/transcripts.md): a response (`status`,
/// `headers`, `body`, and the answering pod's `version` label when known) or a transport
/// failure (`error`). Live runs write these; `replay` turns them back into observations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Response header names (lowercased on reading) and their value(s).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, crate::model::OneOrMany<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TransportKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A load window's request: when it was sent, in milliseconds from the window's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// A load window's request: how long its answer took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

impl Answer {
    /// What `observation` saw, as a transcript answer. An echo body is written back as JSON.
    /// Credentials (the request's `Authorization`, cookies) and the scenario's `redact`
    /// headers are replaced, in the response and in the request the backend reports.
    pub fn record(observation: &Observation, redact: &[String]) -> Answer {
        let secret = |name: &str| {
            SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str())
                || redact.iter().any(|r| r.eq_ignore_ascii_case(name))
        };
        let hide = |headers: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, Vec<String>> {
            headers
                .iter()
                .map(|(k, v)| (k.clone(), if secret(k) { vec!["[redacted]".to_owned()] } else { v.clone() }))
                .collect()
        };
        match &observation.outcome {
            Outcome::Transport { kind, message } => {
                Answer { error: Some(*kind), message: Some(message.clone()), ..Answer::default() }
            }
            Outcome::Response(r) => Answer {
                status: Some(r.status),
                headers: hide(&r.headers)
                    .iter()
                    .map(|(k, v)| {
                        let values = match v.as_slice() {
                            [one] => crate::model::OneOrMany::One(one.clone()),
                            many => crate::model::OneOrMany::Many(many.to_vec()),
                        };
                        (k.clone(), values)
                    })
                    .collect(),
                body: match (&r.echo, &r.body) {
                    (Some(echo), _) => serde_json::to_string(&Echo { headers: hide(&echo.headers), ..echo.clone() })
                        .unwrap_or_default(),
                    (None, Some(body)) => body.clone(),
                    (None, None) => String::new(),
                },
                version: r.version.clone(),
                ..Answer::default()
            },
        }
    }

    /// The observation this answer stands for; an answer must be exactly one of a response and a
    /// transport failure.
    pub fn observation(&self) -> Result<Observation, String> {
        let outcome = match (self.status, self.error) {
            (Some(status), None) => {
                let headers =
                    self.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_slice().to_vec())).collect();
                let mut response =
                    Response::from_wire(status, headers, self.body.as_bytes(), &PodVersions::default(), usize::MAX);
                response.version = self.version.clone();
                Outcome::Response(Box::new(response))
            }
            (None, Some(kind)) => Outcome::Transport {
                kind,
                message: self.message.clone().unwrap_or_else(|| format!("{kind:?} (recorded)")),
            },
            (Some(_), Some(_)) => return Err("an answer has either `status` or `error`, not both".into()),
            (None, None) => return Err("an answer needs `status` (a response) or `error` (none)".into()),
        };
        Ok(Observation { outcome, elapsed_ms: 0 })
    }
}

/// Pod name -> `version` label, read from the cluster by the runner; answers map to versions
/// through it, never by cutting hashes off pod names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodVersions(pub BTreeMap<String, String>);

impl PodVersions {
    pub fn version_of(&self, pod: &str) -> Option<&str> {
        self.0.get(pod).map(String::as_str)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A body as echo-basic writes it (json.MarshalIndent of RequestAssertions, one-space indent).
    pub(crate) const ECHO_BODY: &str = r#"{
 "path": "/hello",
 "host": "echo.shop.svc.cluster.local",
 "method": "GET",
 "proto": "HTTP/1.1",
 "headers": {
  "User-Agent": ["reqwest"],
  "X-Forwarded-Client-Cert": ["By=spiffe://cluster.local/ns/shop/sa/default;Hash=ab;Subject=\"\";URI=spiffe://cluster.local/ns/kong/sa/kong-gateway"],
  "X-Kong-Request-Id": ["5f1c2b3a"]
 },
 "namespace": "shop",
 "ingress": "",
 "service": "",
 "pod": "echo-v1-6d8f9c7b5-x2x9q",
 "sni": ""
}"#;

    #[test]
    fn decodes_echo_basic_json() {
        let echo = Echo::decode(ECHO_BODY.as_bytes()).unwrap();
        assert_eq!(echo.pod, "echo-v1-6d8f9c7b5-x2x9q");
        assert_eq!(echo.header("x-kong-request-id"), Some("5f1c2b3a"));
        assert_eq!(echo.header("X-KONG-REQUEST-ID"), Some("5f1c2b3a"));
        assert!(echo.header("x-forwarded-client-cert").unwrap().contains("kong-gateway"));
    }

    #[test]
    fn other_bodies_are_not_echoes() {
        assert_eq!(Echo::decode(b"RBAC: access denied"), None);
        assert_eq!(Echo::decode(br#"{"message":"no Route matched with those values"}"#), None);
    }
}
