//! What gets installed, in order: the actions of a profile's environment. The plan shows them
//! and (later) the installer executes the same list.

pub mod kong;
pub mod linkerd;

use serde::Serialize;
use serde_json::{Value, json};

use crate::profile::Profile;
use crate::scenario::Mesh;

/// A Helm release as the harness installs it (`helm upgrade --install`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub name: String,
    pub chart: String,
    pub repo: String,
    pub version: String,
    pub namespace: String,
    pub values: Value,
}

impl Release {
    /// The helm argv, with the values file at `values_file`.
    pub fn helm_args(&self, values_file: &str) -> Vec<String> {
        [
            "upgrade",
            "--install",
            &self.name,
            &self.chart,
            "--repo",
            &self.repo,
            "--version",
            &self.version,
            "--namespace",
            &self.namespace,
            "--create-namespace",
            "--values",
            values_file,
            "--wait",
            "--timeout",
            "10m",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// One step of building the environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Helm(Release),
    /// Objects applied with kube-rs (server-side apply), named for the plan's files.
    Apply {
        name: String,
        objects: Vec<Value>,
    },
    /// A step this version cannot perform yet, said plainly.
    NotYet {
        what: String,
    },
}

/// The environment of `profile`, in install order.
pub fn environment(profile: &Profile) -> Vec<Action> {
    let v = &profile.versions;
    let mut actions = vec![Action::NotYet {
        what: "Gateway API v1.3.0 standard CRDs: the download's sha256 is not pinned yet".into(),
    }];
    match profile.mesh() {
        Mesh::Istio => {
            let version = profile.pins.mesh_version.clone().unwrap_or_default();
            let release = |name: &str, values: Value| Release {
                name: format!("istio-{name}"),
                chart: name.to_owned(),
                repo: v.istio.repo.clone(),
                version: version.clone(),
                namespace: "istio-system".into(),
                values,
            };
            actions.push(Action::Helm(release("base", json!({}))));
            actions.push(Action::Helm(release("istiod", istiod_values(profile))));
        }
        Mesh::Linkerd => actions.push(Action::NotYet {
            what: format!(
                "linkerd-crds and linkerd-control-plane for {}: their chart versions are not pinned yet \
                 (identity from stack::linkerd is ready)",
                profile.pins.mesh_version.as_deref().unwrap_or("?")
            ),
        }),
        Mesh::None => {}
    }
    actions.push(Action::Apply { name: "tracing".into(), objects: collector(profile) });
    if profile.mesh() == Mesh::Istio {
        actions.push(Action::Apply { name: "istio-telemetry".into(), objects: vec![telemetry()] });
    }
    actions.push(Action::Helm(Release {
        name: v.kong.release.clone(),
        chart: v.kong.chart.clone(),
        repo: v.kong.repo.clone(),
        version: v.kong.version.clone(),
        namespace: v.kong.namespace.clone(),
        values: kong::values(profile.mesh()),
    }));
    actions
}

/// istiod: tracing on, with a zipkin provider pointing at our collector (istio.io Zipkin task;
/// research F7). Sidecars trace nothing until a Telemetry resource selects the provider.
fn istiod_values(profile: &Profile) -> Value {
    let t = &profile.versions.tracing;
    json!({
        "meshConfig": {
            "enableTracing": true,
            "extensionProviders": [{
                "name": "zipkin",
                "zipkin": {"service": format!("{}.{}.svc.cluster.local", t.service, t.namespace), "port": t.port},
            }],
        },
    })
}

/// Mesh-wide tracing at 100% with the zipkin provider (telemetry.istio.io/v1 `spec.tracing`).
fn telemetry() -> Value {
    json!({
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "mesh-default", "namespace": "istio-system"},
        "spec": {"tracing": [{"providers": [{"name": "zipkin"}], "randomSamplingPercentage": 100}]},
    })
}

/// The Zipkin collector: a namespace, a Deployment and the Service Kong and the meshes report to.
fn collector(profile: &Profile) -> Vec<Value> {
    let t = &profile.versions.tracing;
    let image = profile.versions.images.get("zipkin").cloned().unwrap_or_default();
    let labels = json!({"app": t.service});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": t.namespace}}),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": t.service, "namespace": t.namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{
                        "name": "zipkin",
                        "image": image,
                        "env": [{"name": "STORAGE_TYPE", "value": "mem"}],
                        "ports": [{"name": "http-query", "containerPort": t.port}],
                        "readinessProbe": {"httpGet": {"path": "/health", "port": t.port}},
                    }]},
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": t.service, "namespace": t.namespace, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "http-query", "port": t.port, "targetPort": t.port}]},
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_fits_the_kubernetes_schema() {
        use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        let profile = versions.profile("istio", std::path::Path::new("versions.toml")).unwrap();
        let objects = collector(&profile);
        let _: Deployment = serde_json::from_value(objects[1].clone()).unwrap();
        let _: Service = serde_json::from_value(objects[2].clone()).unwrap();
        assert_eq!(
            istiod_values(&profile)["meshConfig"]["extensionProviders"][0]["zipkin"]["service"],
            "zipkin.tracing.svc.cluster.local"
        );
    }
}
