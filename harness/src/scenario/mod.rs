//! The scenario language: model, loading with precise errors, templating, fixtures.

pub mod bundle;
mod bundle_values;
pub mod catalog;
mod error;
pub mod feasible;
pub mod fixture;
pub mod load;
pub mod mutant;
pub mod scaffold;
pub mod scope;
pub mod template;

pub use catalog::{Broken, Catalog, CatalogError, CheckError, Checked, Entry, Listing};
pub use load::{LoadError, LoadedScenario, RunContext, load, namespace_for, parse, parse_bytes, vars_for};
// The vocabulary scenarios are written in lives at the bottom (`crate::model`), for the
// modules below this one; here it is re-exported as the scenario language.
pub use crate::model;
pub use crate::model::*;
