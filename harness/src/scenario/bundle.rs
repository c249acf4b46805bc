//! Repro bundles: one YAML file that reproduces a scenario on a mesh anywhere: the versions
//! file, the scenario and every fixture it applies, inline and as written. A bundle unpacks into
//! a project layout, so everything that works on the project (lint, plan, e2e) works on it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Catalog, CheckError, Mesh};
use crate::diagnostic::{Diagnostic, Position};
use crate::project::Project;
use crate::yaml;

/// The format identifier written into every bundle.
pub const FORMAT: &str = "kong-mesh-e2e/repro/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Bundle {
    pub bundle: String,
    pub scenario: String,
    pub mesh: Mesh,
    /// What reproducing means: the steps as written must pass (or, for a bug report, how they fail).
    pub expected: String,
    /// `versions.toml` as the run used it: every pinned version and the profiles.
    pub versions_toml: String,
    /// The scenario file as written.
    pub scenario_yaml: String,
    /// Every fixture file the scenario (and the mesh's stack) applies, by path under fixtures/.
    pub fixtures: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    #[error("no scenario `{name}` in {dir}")]
    UnknownScenario { name: String, dir: PathBuf },
    #[error("scenario `{name}` does not run on {mesh}; it runs on {runs_on}")]
    WrongMesh { name: String, mesh: Mesh, runs_on: String },
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

fn read(path: &Path) -> Result<String, ReproError> {
    std::fs::read_to_string(path).map_err(|source| ReproError::Read { path: path.to_owned(), source })
}

/// Bundle scenario `name` for `mesh` from the catalog's project.
pub fn export(catalog: &Catalog, name: &str, mesh: Mesh) -> Result<Bundle, ReproError> {
    let file = catalog.project.scenarios_dir().join(format!("{name}.yaml"));
    if !file.is_file() {
        return Err(ReproError::UnknownScenario { name: name.to_owned(), dir: catalog.project.scenarios_dir() });
    }
    let meshes = catalog.meshes_of(&file)?;
    if !meshes.contains(&mesh) {
        let runs_on = meshes.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
        return Err(ReproError::WrongMesh { name: name.to_owned(), mesh, runs_on });
    }
    let checked = catalog.check_mesh(&file, mesh, "offline")?;
    let fixtures_dir = catalog.project.fixtures_dir();
    let mut fixtures = BTreeMap::new();
    let referenced = checked.scenario.fixture_refs().map(|f| f.value.clone());
    let stack = crate::stack::kong::stack_manifests(mesh).iter().map(|s| s.to_string());
    for rel in referenced.chain(stack) {
        let text = read(&fixtures_dir.join(&rel))?;
        fixtures.insert(rel, text);
    }
    Ok(Bundle {
        bundle: FORMAT.to_owned(),
        scenario: name.to_owned(),
        mesh,
        expected: "every step of the scenario passes".to_owned(),
        versions_toml: read(&catalog.project.versions_file())?,
        scenario_yaml: read(&file)?,
        fixtures,
    })
}

impl Bundle {
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_default()
    }

    /// Read a bundle file, with located errors.
    pub fn load(path: &Path) -> Result<Bundle, ReproError> {
        let invalid = |e: yaml::Error, text: &str| {
            let mut d = Diagnostic::error(e.code, path, e.position, e.message).with_field(e.field).with_source(text);
            d.help = e.help;
            ReproError::Invalid(Box::new(d))
        };
        let text = yaml::read_text(path).map_err(|e| invalid(e, ""))?;
        let bundle: Bundle = yaml::from_str(&text).map_err(|e| invalid(e, &text))?;
        if bundle.bundle != FORMAT {
            let d = Diagnostic::error(
                "schema",
                path,
                Position::new(1, 1),
                format!("unknown bundle format `{}`", bundle.bundle),
            )
            .with_field("bundle")
            .with_help(format!("this harness reads `{FORMAT}`"));
            return Err(ReproError::Invalid(Box::new(d)));
        }
        Ok(bundle)
    }

    /// Write the bundle out as a project under `dir` (which it owns) and return it.
    pub fn unpack(&self, dir: &Path) -> Result<Project, ReproError> {
        let put = |rel: &Path, text: &str| -> Result<(), ReproError> {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|source| ReproError::Write { path: parent.to_owned(), source })?;
            }
            std::fs::write(&path, text).map_err(|source| ReproError::Write { path, source })
        };
        let safe_name = !self.scenario.is_empty()
            && self.scenario.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !safe_name {
            return Err(ReproError::Invalid(Box::new(Diagnostic::error(
                "schema",
                dir,
                Position::WHOLE_FILE,
                format!("scenario name `{}` is not kebab-case", self.scenario),
            ))));
        }
        put(Path::new("versions.toml"), &self.versions_toml)?;
        put(&Path::new("scenarios").join(format!("{}.yaml", self.scenario)), &self.scenario_yaml)?;
        for (rel, text) in &self.fixtures {
            // A bundle is input from elsewhere: its paths must stay inside fixtures/.
            let inside = Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)));
            if !inside {
                let d = Diagnostic::error(
                    "schema",
                    dir,
                    Position::WHOLE_FILE,
                    format!("fixture path `{rel}` leaves fixtures/"),
                )
                .with_field(format!("fixtures.{rel}"));
                return Err(ReproError::Invalid(Box::new(d)));
            }
            put(&Path::new("fixtures").join(rel), text)?;
        }
        Ok(Project::at(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;

    fn catalog() -> Catalog {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        Catalog::open(Project::at(root)).expect("the project loads")
    }

    #[test]
    fn export_lint_and_plan_round_trip() {
        let original = catalog();
        for (name, mesh) in
            [("split-canary", Mesh::Linkerd), ("seed-istio-as-written", Mesh::Istio), ("ingress-basic", Mesh::None)]
        {
            let bundle = export(&original, name, mesh).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("bundle.yaml");
            std::fs::write(&file, bundle.to_yaml()).unwrap();
            let loaded = Bundle::load(&file).unwrap();
            assert_eq!(loaded, bundle, "{name}: the YAML form reads back identically");
            let unpacked = Catalog::open(loaded.unpack(&dir.path().join("project")).unwrap()).unwrap();
            let lint = crate::lint::run(&unpacked, &crate::lint::Inputs { mesh: Some(mesh), ..Default::default() });
            assert!(lint.findings.is_empty(), "{name}: {:?}", lint.findings);
            let profile = |c: &Catalog| c.default_profile(mesh).unwrap();
            let ports = crate::cluster::HostPorts { http: 40080, https: 40443 };
            let a = plan::build(&original, &profile(&original), "same", ports).unwrap();
            let b = plan::build(&unpacked, &profile(&unpacked), "same", ports).unwrap();
            let scenario_of = |p: &plan::Plan| {
                p.scenarios.iter().find(|s| s.name == name).map(|s| {
                    (
                        s.objects.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>(),
                        s.steps.clone(),
                        s.namespace.clone(),
                        s.host.clone(),
                    )
                })
            };
            assert_eq!(scenario_of(&a), scenario_of(&b), "{name}: the bundle plans what the original plans");
            assert!(scenario_of(&b).is_some());
        }
    }

    #[test]
    fn bundles_are_checked_like_any_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.yaml");
        let mut bundle = export(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        bundle.fixtures.insert("../../etc/evil.yaml".into(), "x".into());
        let err = bundle.unpack(&dir.path().join("p")).unwrap_err().to_string();
        assert!(err.contains("leaves fixtures/"), "{err}");
        std::fs::write(&file, "bundle: kong-mesh-e2e/repro/v1\nscenario: x\nmesh: istio\nexpected: e\nversions-toml: ''\nscenario-yaml: ''\nfixtures: {}\nextra: 1\n").unwrap();
        let err = Bundle::load(&file).unwrap_err().to_string();
        assert!(err.contains("unknown field `extra`") && err.contains("b.yaml:8:1"), "{err}");
        assert!(matches!(export(&catalog(), "header-routing", Mesh::None), Err(ReproError::WrongMesh { .. })));
    }
}
