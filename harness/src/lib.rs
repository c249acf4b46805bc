//! The Kong x service-mesh e2e harness, as a library. See ARCHITECTURE.md for the map.

pub mod diagnostic;
pub mod profile;
pub mod project;
pub mod scenario;
pub mod yaml;
