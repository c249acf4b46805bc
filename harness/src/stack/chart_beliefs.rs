//! What the harness believes about the objects the pinned charts create, checked against what
//! they really render: the goldens under `harness/testdata/renders/<mesh>/<release>.yaml`,
//! made by a real `helm template` of the vendored charts with exactly the values
//! [`environment`] installs (`harness/tests/charts.rs` re-renders them and fails when a golden
//! is stale). A belief written here and in the code alike cannot agree with itself: each one
//! is read off the render.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::kong::{PROXY_HTTP_NODE_PORT, PROXY_TLS_NODE_PORT, images_in};
use super::*;
use crate::testing::rendered;

fn profile(name: &str) -> Profile {
    let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
    versions.profile(name, Path::new("versions.toml")).unwrap()
}

fn release(profile: &Profile, chart: &str) -> Release {
    environment(profile)
        .into_iter()
        .find_map(|a| match a {
            Action::Helm(r) if r.chart == chart => Some(r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{}: no {chart} release", profile.name))
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    of_kind(objects, kind)
        .into_iter()
        .find(|o| o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the render has no {kind} {name}"))
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

/// `k=v,...` selects `labels`.
fn selects(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector.split(',').all(|kv| kv.split_once('=').is_some_and(|(k, v)| labels.get(k).map(String::as_str) == Some(v)))
}

fn container<'a>(pod_spec: &'a Value, name: &str) -> &'a Value {
    pod_spec["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"].as_array()?.iter().find(|e| e["name"] == name)?["value"].as_str()
}

#[test]
fn kongs_proxy_service_gateway_pods_and_identity_are_what_the_harness_believes() {
    for mesh in Mesh::ALL {
        let profile = profile(&mesh.to_string());
        let kong = release(&profile, "ingress");
        let objects = rendered(&mesh.to_string(), &kong.name);
        let ns = &profile.versions.kong.namespace;
        let rel = &profile.versions.kong.release;

        // Discovery finds the proxy by its port name: exactly one Service has it, the
        // gateway's, with the NodePorts the kind config maps host ports to.
        let proxies: Vec<&Value> = of_kind(&objects, "Service")
            .into_iter()
            .filter(|s| {
                s["spec"]["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == crate::cluster::discover::KONG_PROXY_PORT))
            })
            .collect();
        assert_eq!(proxies.len(), 1, "{mesh}: one Service with a kong-proxy port");
        let proxy = proxies[0];
        assert_eq!(proxy["metadata"]["name"], format!("{rel}-gateway-proxy"), "{mesh}");
        assert_eq!(proxy["metadata"]["labels"]["app.kubernetes.io/instance"], rel.as_str(), "{mesh}");
        // The alias, not `kong-`: the belief the old discovery got wrong.
        assert_eq!(proxy["metadata"]["labels"]["helm.sh/chart"], "gateway-3.2.0", "{mesh}");
        assert_eq!(proxy["spec"]["type"], "NodePort");
        let node_port = |name: &str| {
            proxy["spec"]["ports"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["nodePort"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(node_port("kong-proxy"), u64::from(PROXY_HTTP_NODE_PORT), "{mesh}");
        assert_eq!(node_port("kong-proxy-tls"), u64::from(PROXY_TLS_NODE_PORT), "{mesh}");

        // The gateway Deployment: the gates' selector picks its pods and not the controller's.
        let gateway = named(&objects, "Deployment", &format!("{rel}-gateway"));
        let controller = named(&objects, "Deployment", &format!("{rel}-controller"));
        let gateway_labels = labels(&gateway["spec"]["template"]["metadata"]["labels"]);
        let controller_labels = labels(&controller["spec"]["template"]["metadata"]["labels"]);
        let selector = kong_gateway_selector(rel);
        assert!(selects(&selector, &gateway_labels), "{mesh}: {selector} selects the gateway pods");
        assert!(!selects(&selector, &controller_labels), "{mesh}: {selector} selects no controller pod");
        let service_selector = labels(&proxy["spec"]["selector"]);
        assert!(service_selector.iter().all(|(k, v)| gateway_labels.get(k) == Some(v)), "{mesh}");
        for d in of_kind(&objects, "Deployment") {
            assert_eq!(d["metadata"]["namespace"], ns.as_str(), "{mesh}: the Deployments gate waits in {ns}");
        }

        // The identity every authz fixture names.
        let pod = &gateway["spec"]["template"];
        assert_eq!(pod["spec"]["serviceAccountName"], profile.versions.kong.gateway_service_account.as_str());

        // Meshed as each mesh's injector reads it, and nothing else asks for a proxy.
        let pod_labels = labels(&pod["metadata"]["labels"]);
        let annotations = labels(&pod["metadata"]["annotations"]);
        match mesh {
            Mesh::Istio => assert_eq!(pod_labels.get("sidecar.istio.io/inject").map(String::as_str), Some("true")),
            Mesh::Linkerd => {
                assert_eq!(annotations.get("linkerd.io/inject").map(String::as_str), Some("ingress"));
                assert_eq!(
                    annotations.get("resource.opentelemetry.io/service.name").map(String::as_str),
                    Some(format!("{rel}-gateway.{ns}").as_str())
                );
            }
            Mesh::None => {}
        }
        if mesh != Mesh::Istio {
            assert!(!pod_labels.contains_key("sidecar.istio.io/inject"), "{mesh}");
        }
        if mesh != Mesh::Linkerd {
            assert!(!annotations.contains_key("linkerd.io/inject"), "{mesh}");
        }

        // Kong's tracing reaches the proxy container as Kong reads it (KONG_<KEY>).
        let proxy_container = container(&pod["spec"], "proxy");
        assert_eq!(env(proxy_container, "KONG_TRACING_INSTRUMENTATIONS"), Some("request"), "{mesh}");
        assert_eq!(env(proxy_container, "KONG_TRACING_SAMPLING_RATE"), Some("1.0"), "{mesh}");

        // The images the plan preloads are the images that run.
        let (gateway_image, kic_image) = images_in(&kong.values);
        assert_eq!(proxy_container["image"], gateway_image.as_str(), "{mesh}");
        let kic = container(&controller["spec"]["template"]["spec"], "ingress-controller");
        assert_eq!(kic["image"], kic_image.as_str(), "{mesh}");
        let preload = preload_images(&profile);
        assert!(preload.contains(&gateway_image) && preload.contains(&kic_image), "{mesh}: {preload:?}");
        // KIC publishes the Service discovery finds.
        assert_eq!(env(kic, "CONTROLLER_PUBLISH_SERVICE"), Some(format!("{ns}/{rel}-gateway-proxy").as_str()));
    }
}

#[test]
fn istiod_is_what_discovery_and_the_gates_look_for() {
    let profile = profile("istio");
    let objects = rendered("istio", "istiod");
    let istiod = named(&objects, "Deployment", "istiod");
    // discover.rs: `app=istiod`, container `discovery`.
    assert_eq!(istiod["metadata"]["labels"]["app"], "istiod");
    let discovery = container(&istiod["spec"]["template"]["spec"], "discovery");
    let image = discovery["image"].as_str().unwrap();
    // The hub the harness sets; the tag is the vendored chart's (1.30.3, PROVENANCE.md), the
    // pin's on a real install.
    assert_eq!(image, "docker.io/istio/pilot:1.30.3");
    let preload = preload_images(&profile);
    assert!(preload.iter().any(|p| p.starts_with("docker.io/istio/pilot:")), "{preload:?}");
    // The webhook gate's name.
    let webhook = named(&objects, "MutatingWebhookConfiguration", "istio-sidecar-injector");
    assert!(webhook["webhooks"].as_array().is_some_and(|w| !w.is_empty()));
    // The sidecars' image, from the injector's values.
    let injector = named(&objects, "ConfigMap", "istio-sidecar-injector");
    let values = injector["data"]["values"].as_str().unwrap();
    assert!(values.contains("\"hub\": \"docker.io/istio\""), "the sidecars come from the hub the harness sets");
    // The extension provider the Telemetry resource selects, pointing at the collector.
    let mesh_config = named(&objects, "ConfigMap", "istio")["data"]["mesh"].as_str().unwrap();
    let t = &profile.versions.tracing;
    assert!(mesh_config.contains(&format!("name: {ISTIO_TRACE_PROVIDER}")), "{mesh_config}");
    assert!(mesh_config.contains(&format!("service: {}", t.host())), "{mesh_config}");
    assert!(mesh_config.contains(&format!("port: {}", t.otlp_grpc_port)), "{mesh_config}");
    for d in of_kind(&objects, "Deployment") {
        assert_eq!(d["metadata"]["namespace"], "istio-system");
    }
}

#[test]
fn linkerd_is_what_discovery_and_the_gates_look_for() {
    let profile = profile("linkerd");
    let objects = rendered("linkerd", "linkerd-control-plane");
    let destination = of_kind(&objects, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["labels"]["linkerd.io/control-plane-component"] == "destination")
        .expect("discovery's label selects the destination Deployment");
    // discover.rs reads the version from this label.
    let version = profile.pins.mesh_version.clone().unwrap();
    assert_eq!(destination["metadata"]["labels"]["app.kubernetes.io/version"], version.as_str());
    named(&objects, "MutatingWebhookConfiguration", "linkerd-proxy-injector-webhook-config");
    // The images the plan preloads.
    let images: Vec<String> = of_kind(&objects, "Deployment")
        .iter()
        .flat_map(|d| d["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect();
    for image in preload_images(&profile).iter().filter(|i| i.starts_with("cr.l5d.io/")) {
        assert!(images.contains(image), "{image} runs: {images:?}");
    }
    // Proxy tracing as the harness configures it, with the collector's identity.
    let t = &profile.versions.tracing;
    let text = serde_json::to_string(&objects).unwrap();
    assert!(text.contains(&t.otlp_grpc_endpoint()), "the proxies export to the collector");
    assert!(
        text.contains(&format!("{}.{}.serviceaccount.identity.linkerd.cluster.local", t.service_account, t.namespace))
    );
    for d in of_kind(&objects, "Deployment") {
        assert_eq!(d["metadata"]["namespace"], "linkerd");
    }
}
