//! Values for Kong's umbrella chart `kong/ingress` (0.24.0), per mesh.
//!
//! `kong/ingress` wraps the `kong` chart twice, as `controller` and `gateway`; settings at the
//! top level other than those (and `deployment`, `global`) are ignored without a word
//! (Kong/charts charts/ingress/README.md). Every key set here exists in the pinned chart's
//! values (checked by hand against charts/kong/values.yaml at kong-3.2.0).

use serde_json::{Value, json};

use crate::model::Mesh;

use crate::cluster::{PROXY_HTTP_NODE_PORT, PROXY_TLS_NODE_PORT};

/// Manifests (under `fixtures/`) the stack applies cluster-wide on `mesh`, besides the charts.
pub fn stack_manifests(mesh: Mesh) -> &'static [&'static str] {
    match mesh {
        Mesh::Linkerd => &["kong/gateway.yaml", "linkerd/kong-ingress-guard.yaml"],
        Mesh::Istio | Mesh::IstioAmbient | Mesh::None => &["kong/gateway.yaml"],
    }
}

/// The harness's own copy of each stack manifest, built into the binary: a project that does
/// not carry one (a team's repository with only `versions.toml` and its scenarios) gets it, as
/// it gets the built-in pins outside a project.
const BUILT_IN_STACK: &[(&str, &str)] = &[
    ("kong/gateway.yaml", include_str!("../../../fixtures/kong/gateway.yaml")),
    ("linkerd/kong-ingress-guard.yaml", include_str!("../../../fixtures/linkerd/kong-ingress-guard.yaml")),
];

/// The project's file for stack manifest `rel` under `fixtures_dir`, when the project has one
/// (or when there is no built-in copy, so that the caller reports the project's path); `None`
/// when the built-in copy stands in.
pub fn stack_manifest(fixtures_dir: &std::path::Path, rel: &str) -> Option<std::path::PathBuf> {
    let path = fixtures_dir.join(rel);
    (std::fs::symlink_metadata(&path).is_ok() || built_in_stack_manifest(rel).is_none()).then_some(path)
}

/// The built-in copy of stack manifest `rel`.
pub fn built_in_stack_manifest(rel: &str) -> Option<&'static str> {
    BUILT_IN_STACK.iter().find(|(name, _)| *name == rel).map(|(_, text)| *text)
}

/// Stack manifest `rel`'s objects: the project's file when it has one (read as any fixture),
/// else the built-in copy, templated with `vars` alike.
pub fn load_stack_manifest(
    fixtures_dir: &std::path::Path,
    rel: &str,
    vars: &crate::scenario::template::Vars,
) -> Result<Vec<crate::scenario::fixture::Manifest>, crate::scenario::LoadError> {
    match (stack_manifest(fixtures_dir, rel), built_in_stack_manifest(rel)) {
        (None, Some(text)) => crate::scenario::fixture::load_text(
            &std::path::PathBuf::from(format!("(built into kme2e) fixtures/{rel}")),
            text,
            vars,
        ),
        (path, _) => crate::scenario::fixture::load(&path.unwrap_or_else(|| fixtures_dir.join(rel)), vars),
    }
}

/// The images Kong's chart runs by default (charts/kong/values.yaml at kong-3.2.0: `image`
/// `kong:3.9`, `ingressController.image` `kong/kubernetes-ingress-controller:3.5`); the harness's
/// values do not override them.
pub const CHART_IMAGES: [&str; 2] = ["kong:3.9", "kong/kubernetes-ingress-controller:3.5"];

/// The Kong Gateway and KIC images a kong/ingress release with `values` runs: the values'
/// `gateway.image` and `controller.ingressController.image` (repository and tag), else the
/// chart's defaults ([`CHART_IMAGES`]).
pub fn images_in(values: &Value) -> (String, String) {
    let image = |path: &[&str], default: &str| {
        let at = |key: &str| {
            path.iter().chain([&key]).try_fold(values, |v, k| v.get(*k)).and_then(Value::as_str).map(str::to_owned)
        };
        let (repo, tag) = default.split_once(':').unwrap_or((default, "latest"));
        format!(
            "{}:{}",
            at("repository").unwrap_or_else(|| repo.to_owned()),
            at("tag").unwrap_or_else(|| tag.to_owned())
        )
    };
    (
        image(&["gateway", "image"], CHART_IMAGES[0]),
        image(&["controller", "ingressController", "image"], CHART_IMAGES[1]),
    )
}

/// The values the harness installs Kong with for `profile`: [`values`] for its mesh, with the
/// profile's Kong Gateway and KIC images where it pins them.
pub fn values_for(profile: &crate::profile::Profile) -> Value {
    let mut values = values(profile.mesh());
    if profile.mesh() == Mesh::Linkerd {
        // Linkerd's proxies name their spans after the pod's `app.kubernetes.io/instance` label,
        // the release name (`kong`), which is also the name Kong's own spans carry. The
        // annotation names them as Istio names a sidecar's, `<app label>.<namespace>`, the
        // gateway pods' `app` label being `<release>-gateway` (linkerd2 edge-26.8.3
        // pkg/inject/inject.go: `resource.opentelemetry.io/` annotations override the labels).
        let kong = &profile.versions.kong;
        values["gateway"]["podAnnotations"]["resource.opentelemetry.io/service.name"] =
            json!(format!("{}-gateway.{}", kong.release, kong.namespace));
    }
    let pinned = [
        (&profile.pins.kong_gateway_image, &["gateway", "image"][..]),
        (&profile.pins.kic_image, &["controller", "ingressController", "image"][..]),
    ];
    for (image, path) in pinned {
        let Some((repository, tag)) = image.as_deref().and_then(|i| i.rsplit_once(':')) else { continue };
        let mut at = &mut values;
        for key in path {
            at = &mut at[*key];
        }
        *at = json!({"repository": repository, "tag": tag});
    }
    values
}

/// The values the harness installs Kong with on `mesh`.
pub fn values(mesh: Mesh) -> Value {
    let mut gateway = json!({
        "proxy": {
            "type": "NodePort",
            "http": {"nodePort": PROXY_HTTP_NODE_PORT},
            "tls": {"nodePort": PROXY_TLS_NODE_PORT},
        },
        // The chart's Kong Manager Service is a NodePort Service with random ports (charts/kong
        // values.yaml `manager.enabled: true`, `type: NodePort`); the harness does not use it.
        "manager": {"enabled": false},
        // Kong's opentelemetry plugin exports nothing while `tracing_instrumentations` is `off`,
        // the default (Kong/kong 3.9.3 kong/plugins/opentelemetry/traces.lua,
        // kong/templates/kong_defaults.lua); `request` gives the request's root span, the one
        // the mesh's spans hang under. The sampling rate defaults to 0.01.
        "env": {"tracing_instrumentations": "request", "tracing_sampling_rate": "1.0"},
    });
    let mut values = json!({});
    match mesh {
        // The injector selects pods by this *label* when the namespace carries no injection
        // label (istio/istio manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml).
        // The chart's default pod annotation `traffic.sidecar.istio.io/includeInboundPorts: ""`
        // keeps inbound traffic out of the sidecar (charts/kong/values.yaml `podAnnotations`).
        Mesh::Istio => {
            gateway["podLabels"] = json!({"sidecar.istio.io/inject": "true"});
            // The controller stays out of the mesh whatever its namespace says: an Istio canary
            // labels Kong's namespace `istio.io/rev`, whose webhook injects every pod there that
            // does not opt out (`rev.namespace.` selects `sidecar.istio.io/inject NotIn [false]`).
            values["controller"] = json!({"podLabels": {"sidecar.istio.io/inject": "false"}});
        }
        // Kong "should be meshed with linkerd.io/inject: ingress" (linkerd/website 2-edge
        // tasks/using-ingress.md); an annotation, read from the pod.
        Mesh::Linkerd => gateway["podAnnotations"] = json!({"linkerd.io/inject": "ingress"}),
        // Ambient: Kong's namespace is enrolled (`stack::environment`), nothing asks for a
        // sidecar; a pod label would only restate the namespace's choice.
        Mesh::IstioAmbient | Mesh::None => {}
    }
    values["gateway"] = gateway;
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every key set here is checked against the pinned chart in `stack::tests`.

    #[test]
    fn only_subchart_sections_are_configured() {
        for mesh in Mesh::ALL {
            let values = values(mesh);
            let top: Vec<&String> = values.as_object().unwrap().keys().collect();
            // Anything else at the top of kong/ingress is ignored without a word; the controller
            // is configured only to keep it out of Istio's mesh.
            let expected: &[&str] = if mesh == Mesh::Istio { &["controller", "gateway"] } else { &["gateway"] };
            assert_eq!(top, expected, "only subchart sections at the top level");
        }
    }

    /// No Service of Kong's chart takes random NodePorts: the manager is off and the proxy's
    /// ports are fixed in the static band.
    #[test]
    fn no_random_node_ports() {
        for mesh in Mesh::ALL {
            assert_eq!(values(mesh)["gateway"]["manager"]["enabled"], false);
        }
        for port in [PROXY_HTTP_NODE_PORT, PROXY_TLS_NODE_PORT] {
            assert!((30000..=30085).contains(&port), "{port} is in the static band");
        }
    }

    /// The versions a run names are the images that run: the chart's defaults, or the values'.
    #[test]
    fn the_kong_images_that_run() {
        let (gateway, kic) = images_in(&values(Mesh::Istio));
        assert_eq!((gateway.as_str(), kic.as_str()), ("kong:3.9", "kong/kubernetes-ingress-controller:3.5"));
        let pinned = json!({"gateway": {"image": {"repository": "kong/kong-gateway", "tag": "3.10"}}, "controller": {"ingressController": {"image": {"tag": "3.5.2"}}}});
        let (gateway, kic) = images_in(&pinned);
        assert_eq!(
            (gateway.as_str(), kic.as_str()),
            ("kong/kong-gateway:3.10", "kong/kubernetes-ingress-controller:3.5.2")
        );
    }

    #[test]
    fn each_mesh_meshes_kong_its_own_way() {
        assert_eq!(values(Mesh::Istio)["gateway"]["podLabels"]["sidecar.istio.io/inject"], "true");
        assert_eq!(values(Mesh::Linkerd)["gateway"]["podAnnotations"]["linkerd.io/inject"], "ingress");
        for mesh in [Mesh::None, Mesh::IstioAmbient] {
            assert!(values(mesh)["gateway"].get("podLabels").is_none(), "{mesh}");
            assert!(values(mesh)["gateway"].get("podAnnotations").is_none(), "{mesh}");
        }
    }
}
