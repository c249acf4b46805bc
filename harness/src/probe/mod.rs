//! Ways to observe: HTTP through Kong from the host (and, later, from a client pod and the
//! Zipkin API). Every probe yields [`Observation`]s.

pub mod http;
pub mod jwt;
pub mod observation;
pub mod pod;
pub mod pod_proxy;
pub mod zipkin;

pub use observation::{Echo, Observation, Outcome, PodVersions, Response, TransportKind};
