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

    /// Rules silenced for this file by a comment line `# lint.kme2e.dev/ignore: rule-a, rule-b`
    /// (a values file has no annotations): `(line, rule id)` for each rule named.
    pub fn ignored_rules(&self) -> Vec<(u32, &str)> {
        let prefix = format!("{}:", crate::lint::rules::IGNORE_ANNOTATION);
        self.text
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let comment = line.trim_start().strip_prefix('#')?.trim_start();
                // A reason may follow after ` #`.
                let list = comment.strip_prefix(prefix.as_str())?;
                let list = list.split(" #").next().unwrap_or(list);
                Some(list.split(',').map(str::trim).filter(|id| !id.is_empty()).map(move |id| (i as u32 + 1, id)))
            })
            .flatten()
            .collect()
    }

    /// The value at a dotted path whose segments may themselves contain dots (annotation keys).
    pub fn get(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(&self.value, |v, k| v.get(*k))
    }
}
