//! A Helm values file as lint reads it: the chart it is for, its text (for positions) and its
//! value. A leaf of `lint`: the index and Kong's chart model both read it.

use std::path::PathBuf;

use serde_json::Value;

use crate::diagnostic::Position;
use crate::yaml;

/// A Helm values file for a named chart.
#[derive(Debug, Clone)]
pub struct ValuesFile {
    pub chart: String,
    pub file: PathBuf,
    pub text: String,
    pub value: Value,
}

impl ValuesFile {
    pub fn position_of(&self, path: &[&str]) -> Position {
        yaml::locate(&self.text, path)
    }

    /// The value at a dotted path whose segments may themselves contain dots (annotation keys).
    pub fn get(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(&self.value, |v, k| v.get(*k))
    }
}
