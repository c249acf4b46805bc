//! The nightly CI matrix, generated from `versions.toml`: one entry per profile.

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
            }
        })
        .collect();
    Matrix { include }
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
                (1..=shards).map(move |k| Entry {
                    name: format!("{} [{k}/{shards}]", e.name),
                    shard: Some(format!("{k}/{shards}")),
                    ..e.clone()
                })
            })
            .collect();
        Matrix { include }
    }
}
