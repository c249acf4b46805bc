//! What traffic steps send and expect: the request, the expected answer (status, backend,
//! headers, mTLS identity) and how often it must hold (`converge`).

use super::*;

/// A request. `host` defaults to the scenario's own Kong host, `{{ host }}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "Request::get")]
    pub method: Method,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A bearer token the harness makes per run (see the jwt scenarios); `none` sends no token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtToken>,
}

impl Request {
    pub(super) fn get() -> Method {
        Method::Get
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

/// Names as written in scenario files (the serde names), for plans and messages.
macro_rules! display_as_serde_name {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(s)) => f.write_str(&s),
                    _ => write!(f, "{self:?}"),
                }
            }
        }
    )*};
}

display_as_serde_name!(Method, WaitCondition, RateWindow, Tag, JwtToken);

/// Which token the harness attaches: signed with the run's key and valid, or already expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JwtToken {
    Valid,
    Expired,
}

/// What a response (or its absence) must look like. Fields left out are not checked; at least
/// one must be given (an empty `expect` passes on any answer, a check that cannot fail).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", try_from = "ExpectFields")]
pub struct Expect {
    /// The status code, or a list of acceptable codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OneOrMany<u16>>,
    /// The request must not reach a backend: a transport failure (refused, reset, timeout)
    /// or a response that the echo backend did not produce (e.g. a mesh proxy's 403).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// Response headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderMatch>,
    /// What the echo backend reports about the request it received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendExpect>,
    /// The mesh identity the backend saw for its caller, mesh-neutral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsExpect>,
}

/// [`Expect`] as written, before the check that it can fail.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ExpectFields {
    #[serde(default)]
    status: Option<OneOrMany<u16>>,
    #[serde(default)]
    refused: bool,
    #[serde(default)]
    headers: BTreeMap<String, HeaderMatch>,
    #[serde(default)]
    backend: Option<BackendExpect>,
    #[serde(default)]
    mtls: Option<MtlsExpect>,
}

impl TryFrom<ExpectFields> for Expect {
    type Error = String;

    fn try_from(f: ExpectFields) -> Result<Self, String> {
        let expect =
            Expect { status: f.status, refused: f.refused, headers: f.headers, backend: f.backend, mtls: f.mtls };
        if expect == Expect::default() {
            return Err("an empty `expect` passes on any answer, so it proves nothing: say what the answer must be \
                 (status, refused, headers, backend or mtls)"
                .into());
        }
        Ok(expect)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackendExpect {
    /// The `version` label of the pod that answered (one of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<OneOrMany<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Host header the backend received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Request headers as the backend received them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderMatch>,
}

/// `client: <namespace>/<serviceaccount>`; each mesh maps it to its own evidence
/// (Istio: the XFCC `URI=spiffe://…`; Linkerd: `l5d-client-id`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsExpect {
    #[serde(deserialize_with = "workload_identity")]
    pub client: String,
}

fn workload_identity<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match s.split_once('/') {
        Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() && !sa.contains('/') => Ok(s),
        _ => Err(serde::de::Error::custom(format!(
            "`{s}` is not a workload identity: expected <namespace>/<serviceaccount>"
        ))),
    }
}

/// A header expectation: a plain string means "equals".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderMatch {
    Equals(String),
    Contains(String),
    OneOf(Vec<String>),
    Present,
    Absent,
}

/// Written back the way a scenario file writes it, so recorded steps parse to the same match.
impl Serialize for HeaderMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let form = match self {
            HeaderMatch::Equals(v) => return s.serialize_str(v),
            HeaderMatch::Contains(v) => serde_json::json!({ "contains": v }),
            HeaderMatch::OneOf(vs) => serde_json::json!({ "one-of": vs }),
            HeaderMatch::Present => serde_json::json!({ "present": true }),
            HeaderMatch::Absent => serde_json::json!({ "absent": true }),
        };
        form.serialize(s)
    }
}

impl<'de> Deserialize<'de> for HeaderMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        enum Tagged {
            Equals(String),
            Contains(String),
            OneOf(Vec<String>),
            Present(bool),
            Absent(bool),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Plain(String),
            Tagged(Tagged),
        }
        // Untagged enums lose the inner error, so say exactly what is accepted.
        let form = Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a string (equals) or one of {equals: S}, {contains: S}, {one-of: [S, ...]}, {present: true}, {absent: true}",
            )
        })?;
        Ok(match form {
            Form::Plain(s) | Form::Tagged(Tagged::Equals(s)) => HeaderMatch::Equals(s),
            Form::Tagged(Tagged::Contains(s)) => HeaderMatch::Contains(s),
            Form::Tagged(Tagged::OneOf(v)) => HeaderMatch::OneOf(v),
            Form::Tagged(Tagged::Present(true)) => HeaderMatch::Present,
            Form::Tagged(Tagged::Absent(true)) => HeaderMatch::Absent,
            Form::Tagged(Tagged::Present(false) | Tagged::Absent(false)) => {
                return Err(serde::de::Error::custom(
                    "`present: false` / `absent: false` say nothing; use the other one",
                ));
            }
        })
    }
}

/// `x` or `[x, y]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(x) => std::slice::from_ref(x),
            OneOrMany::Many(v) => v,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form<T> {
            One(T),
            Many(Vec<T>),
        }
        match Form::deserialize(d).map_err(|_| serde::de::Error::custom("expected a value or a list of values"))? {
            Form::One(x) => Ok(OneOrMany::One(x)),
            Form::Many(v) if v.is_empty() => Err(serde::de::Error::custom("expected at least one value")),
            Form::Many(v) => Ok(OneOrMany::Many(v)),
        }
    }
}

/// Converge settings: `passes` consecutive full passes within `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Converge {
    #[serde(default = "Converge::default_passes", deserialize_with = "passes")]
    pub passes: u32,
    #[serde(default = "Timeout::converge")]
    pub within: Timeout,
}

impl Converge {
    fn default_passes() -> u32 {
        3
    }
}

impl Default for Converge {
    fn default() -> Self {
        Converge { passes: Converge::default_passes(), within: Timeout::converge() }
    }
}
