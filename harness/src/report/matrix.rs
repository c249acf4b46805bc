//! The nightly CI matrix, generated from `versions.toml`: one entry per profile, and one upgrade
//! job per pair of a profile and its next mesh pin for each scenario that upgrades the mesh
//! (such a scenario runs only alone).

use serde::Serialize;

use crate::profile::Versions;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// A readable job name, e.g. `istio 1.30.5 on Kubernetes v1.35.8 (istio)`.
    pub name: String,
    pub profile: String,
    pub mesh: String,
    pub kubernetes: String,
    /// `K/N` when the profile's scenarios are split across N jobs (`ci-matrix --shards N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The one scenario the job runs (`--scenario`): an upgrade job's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
}

/// GitHub Actions' `strategy.matrix` shape: `{"include": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub include: Vec<Entry>,
}

/// One entry per profile of `versions`, only those of `mesh` when given, and only those of
/// `meshes` (the meshes a chosen scenario runs on) when given: a run of one scenario makes no
/// job on a mesh it does not run on.
pub fn matrix(versions: &Versions, mesh: Option<&str>) -> Matrix {
    matrix_for(versions, mesh, None)
}

pub fn matrix_for(versions: &Versions, mesh: Option<&str>, meshes: Option<&[crate::scenario::Mesh]>) -> Matrix {
    let include = versions
        .profiles
        .iter()
        .filter(|(_, p)| mesh.is_none_or(|m| p.mesh.as_str() == m))
        .filter(|(_, p)| meshes.is_none_or(|ms| ms.contains(&p.mesh)))
        .map(|(name, p)| {
            let what = match &p.mesh_version {
                Some(v) => format!("{} {v}", p.mesh),
                None => "kong alone".to_owned(),
            };
            Entry {
                name: format!("{what} on Kubernetes {} ({name})", p.kubernetes),
                profile: name.clone(),
                mesh: p.mesh.to_string(),
                kubernetes: p.kubernetes.clone(),
                shard: None,
                scenario: None,
            }
        })
        .collect();
    Matrix { include }
}

impl Matrix {
    /// An upgrade job for each profile of the matrix and each of `upgrades` (a scenario with an
    /// `upgrade` step: its name, the meshes it runs on, the parts it moves) on that profile's
    /// mesh, when the profile has a next pin of each part (`Profile::next_mesh_pin`,
    /// `Profile::next_kong_pin`; a canary only on Istio's sidecar mode).
    pub fn with_upgrades(
        mut self,
        versions: &Versions,
        upgrades: &[(String, Vec<crate::scenario::Mesh>, Vec<crate::scenario::UpgradePart>)],
    ) -> Matrix {
        use crate::scenario::{Mesh, MeshStrategy, UpgradePart};
        let mut jobs = Vec::new();
        for entry in self.include.iter().filter(|e| e.scenario.is_none() && e.shard.is_none()) {
            let Ok(profile) = versions.profile(&entry.profile, std::path::Path::new("versions.toml")) else {
                continue;
            };
            let mesh_version = |p: &crate::profile::Profile| p.pins.mesh_version.clone().unwrap_or_default();
            let move_of = |part: &UpgradePart| match part {
                UpgradePart::Mesh(MeshStrategy::Canary) if profile.mesh() != Mesh::Istio => None,
                UpgradePart::Mesh(how) => profile.next_mesh_pin().map(|to| {
                    let how = if *how == MeshStrategy::Canary { " (canary)" } else { "" };
                    format!(
                        "{} {} -> {}{how}, {} -> {}",
                        profile.mesh(),
                        mesh_version(&profile),
                        mesh_version(&to),
                        profile.name,
                        to.name
                    )
                }),
                UpgradePart::Kong => profile.next_kong_pin().map(|to| {
                    format!(
                        "Kong's chart {} -> {} on {}, {} -> {}",
                        profile.kong_chart_version(),
                        to.kong_chart_version(),
                        profile.mesh(),
                        profile.name,
                        to.name
                    )
                }),
            };
            for (scenario, _, parts) in upgrades.iter().filter(|(_, m, _)| m.contains(&profile.mesh())) {
                let moves: Option<Vec<String>> = parts.iter().map(move_of).collect();
                let Some(moves) = moves.filter(|m| !m.is_empty()) else { continue };
                jobs.push(Entry {
                    name: format!("upgrade {} on Kubernetes {} ({scenario})", moves.join("; "), entry.kubernetes),
                    scenario: Some(scenario.clone()),
                    ..entry.clone()
                });
            }
        }
        self.include.extend(jobs);
        self
    }
}

impl Matrix {
    /// Each entry split into `shards` jobs, `1/N` to `N/N` (one job per entry when 1).
    pub fn sharded(self, shards: usize) -> Matrix {
        if shards <= 1 {
            return self;
        }
        let include = self
            .include
            .into_iter()
            .flat_map(|e| {
                // A job of one scenario runs it whole.
                let parts = if e.scenario.is_some() { 1 } else { shards };
                (1..=parts).map(move |k| match parts {
                    1 => e.clone(),
                    _ => Entry {
                        name: format!("{} [{k}/{shards}]", e.name),
                        shard: Some(format!("{k}/{shards}")),
                        ..e.clone()
                    },
                })
            })
            .collect();
        Matrix { include }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One upgrade job per profile with a next pin of what the scenario moves and per upgrade
    /// scenario on its mesh, named after both pins; never split into shards. A canary is
    /// Istio's only; Kong's pins pair 0.23.0 with 0.24.0 on each mesh that has both.
    #[test]
    fn upgrade_jobs_pair_each_profile_with_its_next_pin() {
        use crate::scenario::{Mesh, MeshStrategy, UpgradePart};
        let versions = Versions::parse(crate::profile::BUILT_IN_VERSIONS).unwrap();
        let both = vec![Mesh::Istio, Mesh::Linkerd];
        let upgrades = [
            ("upgrade-mesh".to_owned(), both.clone(), vec![UpgradePart::Mesh(MeshStrategy::InPlace)]),
            ("upgrade-canary".to_owned(), both.clone(), vec![UpgradePart::Mesh(MeshStrategy::Canary)]),
            ("upgrade-kong".to_owned(), both, vec![UpgradePart::Kong]),
        ];
        let matrix = matrix(&versions, None).with_upgrades(&versions, &upgrades).sharded(2);
        let jobs: Vec<(&str, &str)> = matrix
            .include
            .iter()
            .filter(|e| e.scenario.is_some())
            .map(|e| (e.profile.as_str(), e.name.as_str()))
            .collect();
        assert_eq!(
            jobs,
            [
                ("istio", "upgrade istio 1.30.5 -> 1.31.1, istio -> istio-1-31 on Kubernetes v1.35.8 (upgrade-mesh)"),
                (
                    "istio",
                    "upgrade istio 1.30.5 -> 1.31.1 (canary), istio -> istio-1-31 on Kubernetes v1.35.8 (upgrade-canary)"
                ),
                (
                    "istio-kong-0-23",
                    "upgrade Kong's chart 0.23.0 -> 0.24.0 on istio, istio-kong-0-23 -> istio on Kubernetes v1.35.8 (upgrade-kong)"
                ),
                (
                    "linkerd",
                    "upgrade linkerd edge-26.8.3 -> edge-26.9.1, linkerd -> linkerd-edge-26-9-1 on Kubernetes v1.35.8 (upgrade-mesh)"
                ),
                (
                    "linkerd-kong-0-23",
                    "upgrade Kong's chart 0.23.0 -> 0.24.0 on linkerd, linkerd-kong-0-23 -> linkerd on Kubernetes v1.35.8 (upgrade-kong)"
                ),
            ]
        );
        assert!(matrix.include.iter().filter(|e| e.scenario.is_some()).all(|e| e.shard.is_none()));
        assert!(matrix.include.iter().filter(|e| e.scenario.is_none()).all(|e| e.shard.is_some()));
        // A scenario on one mesh only makes that mesh's job.
        let istio_only =
            [("upgrade-mesh".to_owned(), vec![Mesh::Istio], vec![UpgradePart::Mesh(MeshStrategy::InPlace)])];
        let matrix = super::matrix(&versions, None).with_upgrades(&versions, &istio_only);
        assert_eq!(matrix.include.iter().filter(|e| e.scenario.is_some()).count(), 1);
    }
}
