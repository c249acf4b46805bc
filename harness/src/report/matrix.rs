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
    /// An upgrade job for each profile of the matrix with a next mesh pin
    /// (`Profile::next_mesh_pin`) and each of `upgrades` (a scenario that upgrades the mesh, with
    /// the meshes it runs on) on that profile's mesh.
    pub fn with_upgrades(mut self, versions: &Versions, upgrades: &[(String, Vec<crate::scenario::Mesh>)]) -> Matrix {
        let mut jobs = Vec::new();
        for entry in self.include.iter().filter(|e| e.scenario.is_none() && e.shard.is_none()) {
            let Ok(profile) = versions.profile(&entry.profile, std::path::Path::new("versions.toml")) else {
                continue;
            };
            let Some(to) = profile.next_mesh_pin() else { continue };
            let version = |p: &crate::profile::Profile| p.pins.mesh_version.clone().unwrap_or_default();
            for (scenario, _) in upgrades.iter().filter(|(_, m)| m.contains(&profile.mesh())) {
                jobs.push(Entry {
                    name: format!(
                        "upgrade {} {} -> {} on Kubernetes {} ({} -> {}, {scenario})",
                        profile.mesh(),
                        version(&profile),
                        version(&to),
                        entry.kubernetes,
                        profile.name,
                        to.name
                    ),
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

    /// One upgrade job per profile with a next mesh pin and per upgrade scenario on its mesh,
    /// named after both pins; never split into shards.
    #[test]
    fn upgrade_jobs_pair_each_profile_with_its_next_pin() {
        let versions = Versions::parse(crate::profile::BUILT_IN_VERSIONS).unwrap();
        let upgrades =
            [("upgrade-mesh".to_owned(), vec![crate::scenario::Mesh::Istio, crate::scenario::Mesh::Linkerd])];
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
                ("istio", "upgrade istio 1.30.5 -> 1.31.1 on Kubernetes v1.35.8 (istio -> istio-1-31, upgrade-mesh)"),
                (
                    "linkerd",
                    "upgrade linkerd edge-26.8.3 -> edge-26.9.1 on Kubernetes v1.35.8 (linkerd -> linkerd-edge-26-9-1, upgrade-mesh)"
                ),
            ]
        );
        assert!(matrix.include.iter().filter(|e| e.scenario.is_some()).all(|e| e.shard.is_none()));
        assert!(matrix.include.iter().filter(|e| e.scenario.is_none()).all(|e| e.shard.is_some()));
        // A scenario on one mesh only makes that mesh's job.
        let istio_only = [("upgrade-mesh".to_owned(), vec![crate::scenario::Mesh::Istio])];
        let matrix = super::matrix(&versions, None).with_upgrades(&versions, &istio_only);
        assert_eq!(matrix.include.iter().filter(|e| e.scenario.is_some()).count(), 1);
    }
}
