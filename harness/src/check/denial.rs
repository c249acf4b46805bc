//! What a mesh's refusal looks like from the client, per mesh and per path, so that `refused`
//! passes only on a denial the mesh itself produced, never on any answer that merely is not the
//! echo backend's (a DNS failure, a timeout, nothing listening, the client's own sidecar failing,
//! another backend answering).
//!
//! The forms, with their upstream sources (pinned: Istio 1.30 / Envoy, linkerd2-proxy of
//! edge-26.8, Kong 3.9):
//!
//! | mesh | path | denial | evidence |
//! |---|---|---|---|
//! | Istio | from a pod | the server sidecar resets a plaintext connection into STRICT mTLS | curl exit 56 (reset) or 52 (empty reply) |
//! | Istio | any | Envoy's RBAC filter | `403`, body `RBAC: access denied` (envoy source/extensions/filters/http/rbac/rbac_filter.cc) |
//! | Istio | through Kong | the backend's sidecar resets Kong's hop, relayed | Envoy `503` `upstream connect error or disconnect/reset before headers. reset reason: connection termination` (or `remote reset`/`connection reset`), or Kong's `502` `An invalid response was received from the upstream server` (kong/error_handlers.lua) |
//! | Istio ambient | from a pod | ztunnel refuses the connection: an L4 AuthorizationPolicy, or plaintext into STRICT mTLS | curl exit 56 (reset; istio.io docs/ambient/usage/l4-policy: "command terminated with exit code 56"; istio/istio tests/integration/ambient/baseline_test.go expects `connection reset by peer` for ztunnel) or 52 |
//! | Istio ambient | any | a waypoint's RBAC filter (L7 policy) | `403`, body `RBAC: access denied` (istio.io docs/ambient/getting-started/enforce-auth-policies) |
//! | Istio ambient | through Kong | ztunnel resets Kong's hop (Kong has no sidecar), relayed by Kong | Kong's `502` `An invalid response was received from the upstream server`; Envoy's relayed `503` when a waypoint's hop is reset |
//! | Linkerd | any | inbound policy denies an HTTP request | `403` with `content-length: 0` and no body |
//! | Linkerd | from a pod | an opaque server refuses the connection | curl exit 56 / 52 |
//!
//! Linkerd's denial is recognised by its shape, not by `l5d-proxy-error`: at linkerd2-proxy
//! v2.366.0 (edge-26.8.3) the server proxy answers `permission_denied` as a 403 with
//! `content-length: 0` (linkerd/app/core/src/errors/respond.rs), adds `l5d-proxy-error` only for
//! meshed peers (linkerd/app/inbound/src/http/server.rs, "Only emit informational headers to
//! meshed peers"), and the meshed client's own proxy strips it again
//! (linkerd/app/outbound/src/http/handle_proxy_error_headers.rs). So an application never sees
//! the header on a denial; it does see it on its own proxy's failures (502/503/504), which are
//! no denial. A 403 with a body (Kong's JSON, another server's page) is not Linkerd's.
//!
//! The relayed resets through Kong are ambiguous: Kong writes the same 502 body when nothing
//! listens behind the Service, and Envoy writes its 503 `connection termination` / `remote
//! reset` bodies for resets no policy caused too (istio/istio#55138, #45910). They are
//! [`Denial::is_ambiguous`]: `refused` accepts them only once the scenario has proven that the
//! backend answers meshed clients ([`super::expect::resolve_ambiguity`]); without that proof
//! only the unambiguous forms pass (Istio: `403 RBAC: access denied`, and from a pod the
//! server sidecar's reset; Linkerd: the server proxy's empty 403, or an opaque server's reset
//! from a pod).

use std::fmt;

use serde::Serialize;

use crate::model::Mesh;
use crate::probe::{Outcome, Response, TransportKind};

/// Which way a request went: from the host through Kong, or from a client pod straight to a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    ThroughKong,
    FromPod,
}

/// A recognised mesh denial, recorded in the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Denial {
    /// The server's proxy reset or closed the connection before any answer.
    ConnectionReset,
    /// Ambient mode: ztunnel reset or closed the connection (L4 policy, or plaintext into STRICT).
    ZtunnelReset,
    /// Envoy's RBAC filter: `403 RBAC: access denied`.
    IstioRbac,
    /// Linkerd's inbound policy: an empty `403`.
    LinkerdPolicy,
    /// The backend's sidecar reset Kong's hop, relayed by Kong's sidecar (503) or Kong (502).
    UpstreamReset,
}

impl Denial {
    /// A form that other failures produce too, so it proves a denial only together with proof
    /// that the backend itself answers meshed clients.
    pub fn is_ambiguous(self) -> bool {
        // ztunnel accepts a meshed client's connection itself and resets it when the backend
        // behind it is down, the port closed or the Service without endpoints, as it does for a
        // policy's refusal; a sidecar client would see Envoy's 503 instead.
        matches!(self, Denial::UpstreamReset | Denial::ZtunnelReset)
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Denial::ConnectionReset => "the server's proxy reset the connection",
            Denial::ZtunnelReset => "ztunnel reset the connection (L4 policy or STRICT mTLS)",
            Denial::IstioRbac => "Istio RBAC denied it (403 RBAC: access denied)",
            Denial::LinkerdPolicy => "Linkerd policy denied it (empty 403 from the server's proxy)",
            Denial::UpstreamReset => "the backend's proxy reset Kong's connection (relayed as 502/503)",
        })
    }
}

/// Envoy's RBAC denial body.
const RBAC_DENIED: &str = "RBAC: access denied";
/// Envoy's local reply when the upstream connection dies before response headers.
const ENVOY_UPSTREAM_RESET: &str = "upstream connect error or disconnect/reset before headers";
/// Reset reasons (envoy source/common/http/utility.cc `resetReasonToString`) that mean the peer
/// closed or reset an established connection, as opposed to `remote connection failure`
/// (nothing listening), `connection timeout` or `overflow` (Envoy's own circuit breaking).
/// Istio retries by default, so the body may read "retried and the latest reset reason: ...".
const PEER_RESET_REASONS: &[&str] = &["reset reason: connection termination", "reset reason: remote reset"];
/// Kong's 502 body (Kong 3.9 kong/error_handlers.lua).
const KONG_BAD_GATEWAY: &str = "An invalid response was received from the upstream server";

/// The denial `outcome` is, for `mesh` on `path`, or what was seen instead.
pub fn classify(mesh: Mesh, path: Path, outcome: &Outcome) -> Result<Denial, String> {
    match (mesh, outcome) {
        (Mesh::None, _) => Err("without a mesh no proxy can refuse a request".into()),
        (Mesh::IstioAmbient, Outcome::Transport { kind: TransportKind::Reset, .. }) if path == Path::FromPod => {
            Ok(Denial::ZtunnelReset)
        }
        (_, Outcome::Transport { kind: TransportKind::Reset, .. }) if path == Path::FromPod => {
            Ok(Denial::ConnectionReset)
        }
        (_, Outcome::Transport { kind, message }) => Err(format!(
            "no response ({}): {message}; that is not how {mesh} refuses a request{}",
            kind_name(*kind),
            match path {
                Path::FromPod => " (it resets the connection or answers 403)",
                Path::ThroughKong => " through Kong (Kong relays the denial as an HTTP answer)",
            }
        )),
        (_, Outcome::Response(r)) if r.echo.is_some() => {
            let pod = r.echo.as_ref().map(|e| e.pod.as_str()).unwrap_or_default();
            Err(format!("backend pod {pod} answered {}: the request was not refused", r.status))
        }
        // A waypoint is Envoy: the same RBAC answer, the same relayed resets.
        (Mesh::Istio | Mesh::IstioAmbient, Outcome::Response(r)) => istio(path, r),
        (Mesh::Linkerd, Outcome::Response(r)) => linkerd(r),
    }
}

fn istio(path: Path, r: &Response) -> Result<Denial, String> {
    let body = r.body.as_deref().unwrap_or("").trim();
    if r.status == 403 && body == RBAC_DENIED {
        return Ok(Denial::IstioRbac);
    }
    if path == Path::ThroughKong {
        if r.status == 503
            && body.starts_with(ENVOY_UPSTREAM_RESET)
            && PEER_RESET_REASONS.iter().any(|p| body.contains(p))
        {
            return Ok(Denial::UpstreamReset);
        }
        if r.status == 502 && body.contains(KONG_BAD_GATEWAY) {
            return Ok(Denial::UpstreamReset);
        }
    }
    Err(format!(
        "HTTP {} {}is not an Istio denial (expected {})",
        r.status,
        seen_body(r),
        match path {
            Path::FromPod => "a reset, or 403 \"RBAC: access denied\"",
            Path::ThroughKong => "403 \"RBAC: access denied\", or a relayed peer reset as 503/502",
        }
    ))
}

fn linkerd(r: &Response) -> Result<Denial, String> {
    // `content-length: 0` as the proxy writes it: an empty body alone is also what any 403 to a
    // HEAD request looks like.
    let empty = r.body.as_deref().unwrap_or("").is_empty() && r.header("content-length") == Some("0");
    match (r.status, r.header("l5d-proxy-error")) {
        (403, _) if empty => Ok(Denial::LinkerdPolicy),
        (status, Some(error)) if status != 403 => Err(format!(
            "HTTP {status} with l5d-proxy-error {error:?} is a Linkerd proxy's failure, not a policy denial (expected an empty 403)"
        )),
        (status, _) => Err(format!(
            "HTTP {status} {}is not a Linkerd denial (expected an empty 403 from the server's proxy)",
            seen_body(r)
        )),
    }
}

fn seen_body(r: &Response) -> String {
    match r.body.as_deref().map(str::trim) {
        Some(b) if !b.is_empty() => {
            let short: String = b.chars().take(120).collect();
            format!("{short:?} ")
        }
        _ => String::new(),
    }
}

fn kind_name(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Refused => "connection refused: nothing listens there",
        TransportKind::Reset => "connection reset",
        TransportKind::Timeout => "timeout",
        TransportKind::Tls => "TLS failure",
        TransportKind::Dns => "name not resolved",
        TransportKind::Other => "transport failure",
    }
}
