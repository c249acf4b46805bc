//! The one error of loading scenarios and fixtures: a located diagnostic. Its own module so the
//! fixture reader and the scenario loader share it without importing each other.

use std::path::Path;

use super::template::{Rendered, TemplateError};
use crate::diagnostic::{Diagnostic, Position};
use crate::yaml;

/// A scenario or fixture could not be loaded. The diagnostic says where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub Box<Diagnostic>);

impl LoadError {
    pub fn diagnostic(&self) -> &Diagnostic {
        &self.0
    }

    pub(crate) fn at(code: &str, file: &Path, position: Position, message: impl Into<String>) -> Self {
        LoadError(Box::new(Diagnostic::error(code, file, position, message)))
    }

    pub(crate) fn from_yaml(file: &Path, source: &str, rendered: Option<&Rendered>, e: yaml::Error) -> Self {
        let position = rendered.map_or(e.position, |r| r.source_position(e.position));
        LoadError(Box::new(yaml::Error { position, ..e }.into_diagnostic(file, source)))
    }

    pub(crate) fn from_template(file: &Path, source: &str, e: TemplateError) -> Self {
        let mut d = Diagnostic::error("template", file, e.position, e.message).with_source(source);
        d.help = e.help;
        LoadError(Box::new(d))
    }
}
