//! The project's scenarios as a whole: discovery, listing and the offline check that every
//! scenario parses, and that its fixtures exist and render, for every mesh it runs on.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::fixture::Manifest;
use super::load::{LoadError, LoadedScenario, RunContext, load, parse_bytes, vars_for};
use super::model::{Mesh, Tag};
use crate::profile::{Profile, ProfileError, Versions};
use crate::project::Project;

/// The scenarios of a project and the versions they render against.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub project: Project,
    pub versions: Versions,
}

/// A scenario for one mesh, loaded offline with its fixtures rendered.
#[derive(Debug, Clone)]
pub struct Checked {
    pub mesh: Mesh,
    pub scenario: LoadedScenario,
    pub manifests: Vec<Manifest>,
}

/// One line of `cargo xtask list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    pub file: PathBuf,
    pub summary: String,
    pub meshes: Vec<Mesh>,
    pub covers: Vec<Tag>,
    /// The parts of the stack its `upgrade` steps move (the nightly's upgrade jobs pair pins by them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upgrades: Vec<super::model::UpgradePart>,
}

/// A scenario file that does not load or check: it fails on its own; the others go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The file's stem (the name the scenario must have).
    pub name: String,
    pub file: PathBuf,
    pub error: String,
}

/// `list`: the scenarios that load, and each file that does not with its error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub scenarios: Vec<Entry>,
    pub broken: Vec<Broken>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("cannot list scenarios in {dir}: {source}")]
    List { dir: PathBuf, source: std::io::Error },
}

impl Catalog {
    pub fn open(project: Project) -> Result<Self, CatalogError> {
        let versions = Versions::load(&project.versions_file())?;
        Ok(Catalog { project, versions })
    }

    /// A catalog for `project` (standalone: no kme2e project) with the versions built into this
    /// binary: the harness's own `versions.toml` as it was when the binary was built.
    pub fn built_in(project: Project) -> Self {
        Catalog { project, versions: Versions::built_in() }
    }

    pub fn files(&self) -> Result<Vec<PathBuf>, CatalogError> {
        self.project.scenario_files().map_err(|source| CatalogError::List { dir: self.project.scenarios_dir(), source })
    }

    /// The default profile of a mesh: the profile named after it.
    pub fn default_profile(&self, mesh: Mesh) -> Result<Profile, ProfileError> {
        self.versions.profile(mesh.as_str(), &self.project.versions_file())
    }

    /// Load `file` once per mesh it declares (templates may differ per mesh) and render its
    /// fixtures, for run `run` (`"offline"` for checks without a cluster).
    pub fn check(&self, file: &Path, run: &str) -> Result<Vec<Checked>, CheckError> {
        self.meshes_of(file)?.into_iter().map(|mesh| self.check_mesh(file, mesh, run)).collect()
    }

    /// [`Catalog::check`] for one mesh, with the mesh's default profile.
    pub fn check_mesh(&self, file: &Path, mesh: Mesh, run: &str) -> Result<Checked, CheckError> {
        let scenario = self.load_for(file, &RunContext::new(run, mesh))?;
        let manifests = scenario.render_fixtures(&self.project.fixtures_dir())?;
        super::mutant::check(&scenario, mesh, &manifests)?;
        super::scope::check(&scenario, &manifests)?;
        super::feasible::check(&scenario, &manifests)?;
        Ok(Checked { mesh, scenario, manifests })
    }

    /// A scenario loaded for `mesh` with its fixtures rendered, unchecked: for callers that
    /// report every problem of the objects ([`super::scope::manifest_problems`]).
    pub(crate) fn load_rendered(
        &self,
        file: &Path,
        mesh: Mesh,
        run: &str,
    ) -> Result<(LoadedScenario, Vec<Manifest>), CheckError> {
        let scenario = self.load_for(file, &RunContext::new(run, mesh))?;
        let manifests = scenario.render_fixtures(&self.project.fixtures_dir())?;
        Ok((scenario, manifests))
    }

    /// The meshes a scenario file declares.
    pub fn meshes_of(&self, file: &Path) -> Result<Vec<Mesh>, CheckError> {
        Ok(self.parse_only(file)?.meshes())
    }

    /// Parse without looking at fixtures, rendered as for mesh `none`: enough to know the
    /// scenario's name, meshes and tags, whatever its mesh-specific fixture paths are.
    fn parse_only(&self, file: &Path) -> Result<LoadedScenario, CheckError> {
        let bytes = crate::yaml::read_bytes(file).map_err(|e| LoadError::from_yaml(file, "", None, e))?;
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let vars = vars_for(stem, &RunContext::offline(Mesh::None), &self.default_profile(Mesh::None)?);
        Ok(parse_bytes(file, bytes, &vars)?)
    }

    fn load_for(&self, file: &Path, ctx: &RunContext) -> Result<LoadedScenario, CheckError> {
        let profile = self.default_profile(ctx.mesh)?;
        Ok(load(file, &self.project.fixtures_dir(), ctx, &profile)?)
    }

    /// Every scenario as a listing entry; the first file that does not load is an error.
    pub fn entries(&self) -> Result<Vec<Entry>, CheckError> {
        let listing = self.listing()?;
        if let Some(broken) = listing.broken.first() {
            // The typed error, as parsing gives it.
            self.parse_only(&self.project.root().join(&broken.file))?;
        }
        Ok(listing.scenarios)
    }

    /// Every scenario that parses, and every file that does not with its error: one broken file
    /// hides no other scenario.
    pub fn listing(&self) -> Result<Listing, CatalogError> {
        let mut listing = Listing::default();
        for file in self.files()? {
            match self.parse_only(&file) {
                Ok(s) => listing.scenarios.push(Entry {
                    name: s.scenario.name.value.clone(),
                    file: self.project.display_path(&file).to_owned(),
                    summary: s.scenario.summary.trim().to_owned(),
                    meshes: s.meshes(),
                    covers: s.scenario.covers.clone(),
                    upgrades: s.scenario.steps.iter().flat_map(super::model::Step::upgrade_parts).collect(),
                }),
                Err(e) => listing.broken.push(Broken {
                    name: file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned(),
                    file: self.project.display_path(&file).to_owned(),
                    error: e.to_string(),
                }),
            }
        }
        Ok(listing)
    }
}

/// Why an offline check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}
