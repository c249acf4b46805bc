//! Profiles: a mesh plus pinned versions, read from `versions.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Position};
use crate::scenario::Mesh;

/// The parsed `versions.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    pub kong: KongPins,
    pub tracing: TracingPins,
    pub istio: IstioPins,
    /// Container images by short name; each is a template variable `images.<name>`.
    pub images: BTreeMap<String, String>,
    pub profiles: BTreeMap<String, ProfilePins>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KongPins {
    pub repo: String,
    pub chart: String,
    pub version: String,
    pub release: String,
    pub namespace: String,
    pub gateway_service_account: String,
}

/// Where Istio's charts come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IstioPins {
    pub repo: String,
}

/// Where the trace collector runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingPins {
    pub namespace: String,
    pub service: String,
    pub port: u16,
}

impl TracingPins {
    /// The collector's span intake, as Kong's zipkin plugin and Istio's provider address it.
    pub fn spans_url(&self) -> String {
        format!("http://{}.{}.svc.cluster.local:{}/api/v2/spans", self.service, self.namespace, self.port)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePins {
    pub mesh: Mesh,
    /// kindest/node tag, e.g. `v1.35.1`.
    pub kubernetes: String,
    /// The mesh's release (absent for `none`).
    #[serde(default)]
    pub mesh_version: Option<String>,
}

/// A named profile resolved against the rest of the versions file.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub pins: ProfilePins,
    pub versions: Versions,
}

/// `versions.toml` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    #[error("no profile named `{name}` in {file}; known profiles: {known}")]
    Unknown { name: String, file: PathBuf, known: String },
}

impl Versions {
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let invalid = |position, message: String| {
            ProfileError::Invalid(Box::new(Diagnostic::error("versions", path, position, message)))
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(Position::WHOLE_FILE, format!("cannot read versions file: {e}")))?;
        Self::parse(&text).map_err(|(position, message)| {
            ProfileError::Invalid(Box::new(Diagnostic::error("versions", path, position, message).with_source(&text)))
        })
    }

    pub fn parse(text: &str) -> Result<Self, (Position, String)> {
        let versions: Versions = toml::from_str(text).map_err(|e| {
            let position = e.span().map_or(Position::WHOLE_FILE, |s| Position::of_offset(text, s.start));
            (position, e.message().to_owned())
        })?;
        if let Some((name, p)) =
            versions.profiles.iter().find(|(_, p)| p.mesh != Mesh::None && p.mesh_version.is_none())
        {
            return Err((Position::WHOLE_FILE, format!("profile `{name}` (mesh {}) has no mesh_version", p.mesh)));
        }
        Ok(versions)
    }

    /// The profile named `name`, or the default one of `mesh` (the profile named after it).
    pub fn profile(&self, name: &str, file: &Path) -> Result<Profile, ProfileError> {
        let pins = self.profiles.get(name).ok_or_else(|| ProfileError::Unknown {
            name: name.to_owned(),
            file: file.to_owned(),
            known: self.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        Ok(Profile { name: name.to_owned(), pins: pins.clone(), versions: self.clone() })
    }
}

impl Profile {
    pub fn mesh(&self) -> Mesh {
        self.pins.mesh
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The smallest valid versions file; other modules' tests build their profile from it.
    pub(crate) const MINIMAL: &str = r#"
[kong]
repo = "https://charts.konghq.com"
chart = "ingress"
version = "0.24.0"
release = "kong"
namespace = "kong"
gateway_service_account = "kong-gateway"
[tracing]
namespace = "tracing"
service = "zipkin"
port = 9411
[istio]
repo = "https://istio-release.storage.googleapis.com/charts"
[images]
echo = "echo:1"
[profiles.istio]
mesh = "istio"
kubernetes = "v1.35.1"
mesh_version = "1.30.3"
"#;

    #[test]
    fn parses_profiles() {
        let v = Versions::parse(MINIMAL).unwrap();
        let p = v.profile("istio", Path::new("versions.toml")).unwrap();
        assert_eq!(p.mesh(), Mesh::Istio);
        let err = v.profile("consul", Path::new("versions.toml")).unwrap_err().to_string();
        assert_eq!(err, "no profile named `consul` in versions.toml; known profiles: istio");
    }

    #[test]
    fn unknown_keys_are_located() {
        let text = MINIMAL.replace("kubernetes = ", "kubernets = ");
        let (position, message) = Versions::parse(&text).unwrap_err();
        assert_eq!(position.line, 19);
        assert!(message.contains("unknown field `kubernets`"), "{message}");
    }

    #[test]
    fn meshes_need_a_version() {
        let text = MINIMAL.replace("mesh_version = \"1.30.3\"\n", "");
        assert!(Versions::parse(&text).unwrap_err().1.contains("has no mesh_version"));
    }
}
