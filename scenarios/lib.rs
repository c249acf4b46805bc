//! The scenario suite lives in tests/suite.rs and the YAML files beside this crate.
