//! Ways to observe: HTTP through Kong from the host or from a client pod, and the trace
//! collector's answer for the harness's own trace id. Traffic probes yield [`Observation`]s.

pub mod http;
pub mod jwt;
pub mod observation;
pub mod pod;
pub mod pod_proxy;
pub mod trace;

pub use observation::{Echo, Observation, Outcome, PodVersions, Response, TransportKind};
