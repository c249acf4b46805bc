//! What the harness believes about the objects the pinned charts create, checked against what
//! they really render: the goldens under `harness/testdata/renders/<mesh>/<release>.yaml`,
//! made by a real `helm template` of the vendored charts with exactly the values
//! [`environment`] installs (`harness/tests/charts.rs` re-renders them and fails when a golden
//! is stale). A belief written here and in the code alike cannot agree with itself: each one
//! is read off the render.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::kong::images_in;
use super::*;
use crate::cluster::discover::{ISTIOD_CONTAINER, ISTIOD_SELECTOR, LINKERD_DESTINATION_SELECTOR};
use crate::cluster::{PROXY_HTTP_NODE_PORT, PROXY_TLS_NODE_PORT};
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
            // Enrolled by its namespace, which the stack applies before the chart runs.
            Mesh::IstioAmbient => {
                let enrolled = environment_objects(&profile).into_iter().any(|o| {
                    o["kind"] == "Namespace"
                        && o["metadata"]["name"] == ns.as_str()
                        && o["metadata"]["labels"][crate::model::AMBIENT_LABEL] == "ambient"
                });
                assert!(enrolled, "{mesh}: Kong's namespace {ns} is enrolled in ambient");
                assert!(!pod_labels.contains_key(crate::model::AMBIENT_LABEL), "{mesh}: no opt-out on the pod");
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
    // Discovery's selector (a list of Deployments by their own labels) finds istiod, and only it.
    let found: Vec<&Value> = of_kind(&objects, "Deployment")
        .into_iter()
        .filter(|d| selects(ISTIOD_SELECTOR, &labels(&d["metadata"]["labels"])))
        .collect();
    assert_eq!(found.len(), 1, "{ISTIOD_SELECTOR} selects istiod's Deployment");
    let discovery = container(&found[0]["spec"]["template"]["spec"], ISTIOD_CONTAINER);
    let image = discovery["image"].as_str().unwrap();
    // The hub the harness sets; the tag is the vendored chart's (1.30.3, PROVENANCE.md), the
    // pin's on a real install. Discovery reports the tag as Istio's version.
    assert_eq!(image, "docker.io/istio/pilot:1.30.3");
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
}

/// istiod's waypoints are labelled out of ambient redirection (they speak HBONE themselves), so
/// the check after a scenario's fixtures does not wait for them to be redirected.
#[test]
fn waypoints_are_not_redirected_pods() {
    let objects = rendered("istio-ambient", "istiod");
    let injector = named(&objects, "ConfigMap", "istio-sidecar-injector");
    let templates = injector["data"]["config"].as_str().unwrap();
    let waypoint = templates.split("\n  waypoint: |").nth(1).expect("the injector's waypoint template");
    let waypoint = waypoint.split("\n  kube-gateway: |").next().unwrap();
    assert!(waypoint.contains(r#""istio.io/dataplane-mode" "none""#), "the waypoint pods opt out");
    let pod = crate::check::injection::PodFacts {
        name: "waypoint-abc".into(),
        labels: [(crate::model::AMBIENT_LABEL.to_owned(), "none".to_owned())].into(),
        annotations: BTreeMap::new(),
        in_mesh: false,
        owned: true,
    };
    assert!(!crate::check::injection::should_carry_proxy(Mesh::IstioAmbient, true, &pod));
}

#[test]
fn linkerd_is_what_discovery_and_the_gates_look_for() {
    let profile = profile("linkerd");
    let objects = rendered("linkerd", "linkerd-control-plane");
    // Discovery's selector (a list of Deployments by their own labels) finds the destination,
    // and only it.
    let found: Vec<&Value> = of_kind(&objects, "Deployment")
        .into_iter()
        .filter(|d| selects(LINKERD_DESTINATION_SELECTOR, &labels(&d["metadata"]["labels"])))
        .collect();
    assert_eq!(found.len(), 1, "{LINKERD_DESTINATION_SELECTOR} selects the destination Deployment");
    // discover.rs reads the version from this label.
    let version = profile.pins.mesh_version.clone().unwrap();
    assert_eq!(found[0]["metadata"]["labels"]["app.kubernetes.io/version"], version.as_str());
    // Proxy tracing as the harness configures it, with the collector's identity.
    let t = &profile.versions.tracing;
    let text = serde_json::to_string(&objects).unwrap();
    assert!(text.contains(&t.otlp_grpc_endpoint()), "the proxies export to the collector");
    assert!(
        text.contains(&format!("{}.{}.serviceaccount.identity.linkerd.cluster.local", t.service_account, t.namespace))
    );
}

/// Everything `profile`'s environment creates, as far as the tests can know it: the golden
/// render of each Helm release (the CRD-only charts, istio `base` and `linkerd-crds`, have
/// none: tests/charts.rs `has_golden`) and the objects the stack applies itself.
fn environment_objects(profile: &Profile) -> Vec<Value> {
    environment_parts(profile).into_iter().flat_map(|(_, objects)| objects).collect()
}

/// [`environment_objects`] by where they come from: the Helm release's chart, or `None` for
/// the objects the stack applies.
fn environment_parts(profile: &Profile) -> Vec<(Option<String>, Vec<Value>)> {
    let mut parts = Vec::new();
    for action in environment(profile) {
        match action {
            Action::Helm(r) => {
                let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("testdata/renders")
                    .join(&profile.name)
                    .join(format!("{}.yaml", r.name));
                if golden.exists() {
                    parts.push((Some(r.chart.clone()), rendered(&profile.name, &r.name)));
                } else {
                    let crds_only = matches!(r.chart.as_str(), "base" | "linkerd-crds");
                    assert!(crds_only, "{}: no golden {}", profile.name, r.name);
                }
            }
            Action::Apply { objects, .. } => parts.push((None, objects)),
            _ => {}
        }
    }
    parts
}

/// The pod templates of the workloads among `objects`: (namespace, template).
fn pod_templates(objects: &[Value]) -> Vec<(&str, &Value)> {
    objects
        .iter()
        .filter_map(|o| {
            let template = match o["kind"].as_str()? {
                "Deployment" | "DaemonSet" | "StatefulSet" | "Job" => &o["spec"]["template"],
                "CronJob" => &o["spec"]["jobTemplate"]["spec"]["template"],
                _ => return None,
            };
            Some((o["metadata"]["namespace"].as_str().unwrap_or_default(), template))
        })
        .collect()
}

fn gates(profile: &Profile) -> Vec<Gate> {
    environment(profile)
        .into_iter()
        .filter_map(|a| match a {
            Action::Ready(g) => Some(g),
            _ => None,
        })
        .collect()
}

/// Every readiness gate of each environment names what the environment creates, and what the
/// render creates is waited for: the webhook gates name its MutatingWebhookConfigurations (and
/// no other has none), the Deployments gates the namespaces of its Deployments (and every
/// namespace with one is gated), the Meshed gates select its pods in their namespace and name
/// the proxy container the mesh's injector adds.
#[test]
fn every_gate_names_what_the_render_creates() {
    for mesh in Mesh::ALL {
        let profile = profile(&mesh.to_string());
        let objects = environment_objects(&profile);
        let gates = gates(&profile);
        let webhook_gates: Vec<&str> = gates
            .iter()
            .filter_map(|g| match g {
                Gate::Webhook { configuration } => Some(configuration.as_str()),
                _ => None,
            })
            .collect();
        let rendered_webhooks: Vec<&str> = of_kind(&objects, "MutatingWebhookConfiguration")
            .iter()
            .filter_map(|w| w["metadata"]["name"].as_str())
            .collect();
        for name in &webhook_gates {
            let webhook = named(&objects, "MutatingWebhookConfiguration", name);
            assert!(webhook["webhooks"].as_array().is_some_and(|w| !w.is_empty()), "{mesh}: {name} has webhooks");
        }
        for name in &rendered_webhooks {
            assert!(webhook_gates.contains(name), "{mesh}: the injector {name} is rendered but no gate waits for it");
        }
        assert_eq!(webhook_gates.is_empty(), mesh == Mesh::None, "{mesh}: {webhook_gates:?}");

        let deployment_gates: Vec<&str> = gates
            .iter()
            .filter_map(|g| match g {
                Gate::Deployments { namespace } => Some(namespace.as_str()),
                _ => None,
            })
            .collect();
        let deployment_namespaces: Vec<&str> =
            of_kind(&objects, "Deployment").iter().filter_map(|d| d["metadata"]["namespace"].as_str()).collect();
        for ns in &deployment_gates {
            assert!(deployment_namespaces.contains(ns), "{mesh}: the gate waits in {ns}, where nothing is rendered");
        }
        for ns in &deployment_namespaces {
            assert!(deployment_gates.contains(ns), "{mesh}: Deployments in {ns} that no gate waits for");
        }

        // Every DaemonSet gate names a rendered DaemonSet, and every rendered one is gated.
        let daemonset_gates: Vec<(&str, &str)> = gates
            .iter()
            .filter_map(|g| match g {
                Gate::DaemonSet { namespace, name } => Some((namespace.as_str(), name.as_str())),
                _ => None,
            })
            .collect();
        let rendered_daemonsets: Vec<(&str, &str)> = of_kind(&objects, "DaemonSet")
            .iter()
            .filter_map(|d| Some((d["metadata"]["namespace"].as_str()?, d["metadata"]["name"].as_str()?)))
            .collect();
        assert_eq!(daemonset_gates, rendered_daemonsets, "{mesh}: DaemonSet gates and the render's DaemonSets");
        assert_eq!(daemonset_gates.is_empty(), mesh != Mesh::IstioAmbient, "{mesh}: {daemonset_gates:?}");

        let templates = pod_templates(&objects);
        let meshed: Vec<(&str, &str, Mesh)> = gates
            .iter()
            .filter_map(|g| match g {
                Gate::Meshed { namespace, selector, mesh } => Some((namespace.as_str(), selector.as_str(), *mesh)),
                _ => None,
            })
            .collect();
        assert_eq!(meshed.is_empty(), mesh == Mesh::None, "{mesh}: {meshed:?}");
        let text = serde_json::to_string(&objects).unwrap();
        for (ns, selector, gate_mesh) in meshed {
            let selected = templates
                .iter()
                .filter(|(at, t)| *at == ns && selects(selector, &labels(&t["metadata"]["labels"])))
                .count();
            assert!(selected > 0, "{mesh}: {selector} selects no pod of the render in {ns}");
            match gate_mesh.proxy_container() {
                // The container the injector adds: named in Istio's injection templates (the
                // injector ConfigMap) or, for Linkerd, on the control plane's own pods (rendered
                // from the same partials the injector uses, charts/partials/templates/_proxy.tpl).
                Some(container) => assert!(
                    text.contains(&format!("name: {container}")) || text.contains(&format!("\"name\":\"{container}\"")),
                    "{mesh}: the injector adds no container {container}"
                ),
                // Ambient: the redirection annotation comes from istio-cni's node agent, which
                // handles ambient pods only in ambient mode; istiod serves them only with
                // ambient on (the ConfigMap and env the charts render for `profile=ambient`).
                None => {
                    assert_eq!(gate_mesh, Mesh::IstioAmbient);
                    let cni = named(&objects, "ConfigMap", "istio-cni-config");
                    assert_eq!(cni["data"]["AMBIENT_ENABLED"], "true", "{mesh}: istio-cni in ambient mode");
                    let istiod = named(&objects, "Deployment", "istiod");
                    let discovery = container(&istiod["spec"]["template"]["spec"], ISTIOD_CONTAINER);
                    let ambient_on = discovery["env"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|v| v["name"] == "PILOT_ENABLE_AMBIENT" && v["value"] == "true"));
                    assert!(ambient_on, "{mesh}: istiod with PILOT_ENABLE_AMBIENT=true");
                }
            }
        }
    }
}

/// The release of the vendored Istio charts (harness/testdata/charts/PROVENANCE.md): the tag
/// their renders run, where a real install runs the pin's.
const VENDORED_ISTIO: &str = "1.30.3";

/// The proxy (and proxy-init) images the mesh's injector adds to meshed pods, as its
/// configuration in the render names them.
fn injected_images(mesh: Mesh, objects: &[Value]) -> Vec<String> {
    match mesh {
        Mesh::Istio | Mesh::IstioAmbient => {
            // istiod's injector computes the image from these values: `<hub>/<image>:<tag>`,
            // with a `-<variant>` suffix only when a variant is set (istio/istio 1.30.3
            // pkg/kube/inject/inject.go `ProxyImage`, `imageURL`). In ambient mode the proxy
            // image is the waypoints' (the gateway template of the same ConfigMap), with the
            // ambient profile's `distroless` variant; no pod gets proxy_init.
            let config = named(objects, "ConfigMap", "istio-sidecar-injector");
            let values: Value = serde_json::from_str(config["data"]["values"].as_str().unwrap()).unwrap();
            let global = &values["global"];
            let variant = global["variant"].as_str().unwrap_or_default();
            let expected_variant = if mesh == Mesh::IstioAmbient { "distroless" } else { "" };
            assert_eq!(variant, expected_variant, "{mesh}: the image variant");
            let suffix = if variant.is_empty() { String::new() } else { format!("-{variant}") };
            let (hub, tag) = (global["hub"].as_str().unwrap(), global["tag"].as_str().unwrap());
            let injected: &[&str] = if mesh == Mesh::Istio { &["proxy", "proxy_init"] } else { &["proxy"] };
            injected.iter().map(|p| format!("{hub}/{}:{tag}{suffix}", global[p]["image"].as_str().unwrap())).collect()
        }
        Mesh::Linkerd => {
            // The proxy injector renders the proxy from linkerd-config's values:
            // `proxy.image.name:(proxy.image.version | default linkerdVersion)` (linkerd/linkerd2
            // edge-26.8.3 charts/partials/templates/_proxy.tpl); linkerd-init runs the same image.
            let config = named(objects, "ConfigMap", "linkerd-config");
            let values: Vec<Value> = crate::yaml::documents(config["data"]["values"].as_str().unwrap()).unwrap();
            let values = &values[0];
            let version = Some(&values["proxy"]["image"]["version"])
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .or(values["linkerdVersion"].as_str())
                .unwrap();
            vec![format!("{}:{version}", values["proxy"]["image"]["name"].as_str().unwrap())]
        }
        Mesh::None => vec![],
    }
}

/// The images the plan preloads are the images that run, both ways: every image of every
/// workload the environment renders (containers and init containers) and every proxy image
/// the mesh's injector adds is preloaded, and every mesh or Kong image the plan preloads runs.
/// By reference, except for images of the vendored Istio charts: those are 1.30.3
/// (PROVENANCE.md) while the profile pins 1.30.5, so the preloaded image must be the running one
/// with the pin for the vendored release in its tag (what the pinned chart's release sets
/// `global.tag` to; a variant suffix such as ambient's `-distroless` kept).
#[test]
fn the_preloaded_images_are_the_images_that_run() {
    for mesh in Mesh::ALL {
        let profile = profile(&mesh.to_string());
        // (image, whether it comes from the vendored Istio charts, whose tag is theirs).
        let mut running: Vec<(String, bool)> = Vec::new();
        for (chart, objects) in environment_parts(&profile) {
            let vendored_istio =
                mesh.is_istio() && matches!(chart.as_deref(), Some("base" | "istiod" | "cni" | "ztunnel"));
            for (_, template) in pod_templates(&objects) {
                for list in ["containers", "initContainers"] {
                    for c in template["spec"][list].as_array().into_iter().flatten() {
                        running.push((c["image"].as_str().unwrap().to_owned(), vendored_istio));
                    }
                }
            }
        }
        let objects = environment_objects(&profile);
        running.extend(injected_images(mesh, &objects).into_iter().map(|i| (i, mesh.is_istio())));
        running.sort();
        running.dedup();
        assert!(!running.is_empty());

        let preload = preload_images(&profile);
        let pin = profile.pins.mesh_version.clone().unwrap_or_default();
        // The same image, or (vendored Istio) the same repository at the pinned tag.
        let same = |running: &(String, bool), preloaded: &str| match running {
            (image, false) => image == preloaded,
            (image, true) => *preloaded == image.replacen(&format!(":{VENDORED_ISTIO}"), &format!(":{pin}"), 1),
        };
        for r in &running {
            assert!(preload.iter().any(|p| same(r, p)), "{mesh}: {} runs and is not preloaded: {preload:?}", r.0);
        }
        // The pinned images are the scenarios' workloads and the collector's, not the charts'.
        let pinned: Vec<&String> = profile.versions.images.values().collect();
        for image in preload.iter().filter(|p| !pinned.contains(p)) {
            let runs = running.iter().any(|r| same(r, image));
            assert!(runs, "{mesh}: {image} is preloaded and runs nowhere: {running:?}");
        }
    }
}

/// Whether a Kubernetes label selector (JSON: `matchLabels`, `matchExpressions` with In, NotIn,
/// Exists, DoesNotExist) selects `labels`; an absent selector selects everything.
fn selector_selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector["matchLabels"].as_object().into_iter().flatten();
    let expressions = selector["matchExpressions"].as_array().into_iter().flatten();
    match_labels.clone().all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
        && expressions.clone().all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let found = labels.get(key).map(String::as_str);
            match e["operator"].as_str().unwrap_or_default() {
                "In" => found.is_some_and(|f| values.contains(&f)),
                "NotIn" => found.is_none_or(|f| !values.contains(&f)),
                "Exists" => found.is_some(),
                "DoesNotExist" => found.is_none(),
                other => panic!("operator {other}"),
            }
        })
}

/// The webhooks of `configuration` (in `objects`) that would inject a pod labelled `pod` in a
/// namespace labelled `namespace`.
fn injecting<'a>(
    objects: &'a [Value],
    configuration: &str,
    namespace: &BTreeMap<String, String>,
    pod: &BTreeMap<String, String>,
) -> Vec<&'a str> {
    named(objects, "MutatingWebhookConfiguration", configuration)["webhooks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| selector_selects(&w["namespaceSelector"], namespace) && selector_selects(&w["objectSelector"], pod))
        .filter_map(|w| w["name"].as_str())
        .collect()
}

/// Istio's canary (stack::mesh_canary) against the real templates: the canary istiod's render
/// (a canary of the vendored release, `istiod-1-30-5`) names the Deployment and webhook its
/// gates wait for, and once the harness relabels Kong's namespace and a scenario's namespace
/// as it does, only the canary's webhook injects Kong's gateway pods and the scenario's pods;
/// before, only the old control plane's. The injection template records the revision in the
/// `istio.io/rev` annotation, which the data-plane check after a restart reads.
#[test]
fn a_canary_revision_takes_over_injection_once_the_namespaces_are_relabelled() {
    let istio = profile("istio");
    let (actions, revision) = mesh_canary(&environment(&istio), &istio, &istio.versions.kong.namespace).unwrap();
    assert_eq!(revision, "1-30-5");
    let canary = rendered("istio", &format!("istiod-{revision}"));
    let old = rendered("istio", "istiod");
    // The gates name what the canary's render creates.
    for action in &actions {
        match action {
            Action::Ready(Gate::Webhook { configuration }) => {
                named(&canary, "MutatingWebhookConfiguration", configuration);
            }
            Action::Ready(Gate::Deployments { namespace }) => {
                let deployment = named(&canary, "Deployment", &format!("istiod-{revision}"));
                assert_eq!(deployment["metadata"]["namespace"], namespace.as_str());
            }
            _ => {}
        }
    }
    let canary_hook = format!("istio-sidecar-injector-{revision}");
    // Kong's gateway pods, labelled as Kong's render has them, in Kong's unlabelled namespace;
    // a scenario's pods in its namespace as the harness labels it on Istio.
    let kong_objects = rendered("istio", &release(&istio, "ingress").name);
    let gateway = labels(&named(&kong_objects, "Deployment", "kong-gateway")["spec"]["template"]["metadata"]["labels"]);
    let scenario_ns =
        crate::model::NamespaceSettings { inject: true, ..Default::default() }.metadata(Mesh::Istio).labels;
    let cases = [("Kong's gateway", BTreeMap::new(), gateway), ("a scenario's pod", scenario_ns, BTreeMap::new())];
    for (who, namespace, pod) in cases {
        assert!(!injecting(&old, "istio-sidecar-injector", &namespace, &pod).is_empty(), "{who}: old injects before");
        assert!(injecting(&canary, &canary_hook, &namespace, &pod).is_empty(), "{who}: canary does not yet");
        // The relabel the canary makes (Kong's namespace in its actions, the scenario's when the
        // step runs): the same merge of labels.
        let mut moved = namespace.clone();
        for action in canary_relabel(&["ns".to_owned()], &revision) {
            let Action::Relabel { labels, .. } = action else { panic!("a relabel") };
            for (k, v) in labels {
                match v {
                    Some(v) => moved.insert(k, v),
                    None => moved.remove(&k),
                };
            }
        }
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Relabel { namespace, .. } if *namespace == istio.versions.kong.namespace)),
            "Kong's namespace is relabelled by the canary itself"
        );
        assert_eq!(
            injecting(&canary, &canary_hook, &moved, &pod),
            ["rev.namespace.sidecar-injector.istio.io"],
            "{who}"
        );
        assert!(injecting(&old, "istio-sidecar-injector", &moved, &pod).is_empty(), "{who}: the old one lets go");
    }
    // Kong's controller is in the same namespace and opts out: no webhook injects it, before
    // the relabel or after.
    let controller =
        labels(&named(&kong_objects, "Deployment", "kong-controller")["spec"]["template"]["metadata"]["labels"]);
    let kong_moved: BTreeMap<String, String> = [("istio.io/rev".to_owned(), revision.clone())].into_iter().collect();
    for namespace in [BTreeMap::new(), kong_moved] {
        assert!(injecting(&old, "istio-sidecar-injector", &namespace, &controller).is_empty(), "{namespace:?}");
        assert!(injecting(&canary, &canary_hook, &namespace, &controller).is_empty(), "{namespace:?}");
    }
    // The revision a pod was injected by, where the data-plane check reads it.
    let template = named(&canary, "ConfigMap", &format!("istio-sidecar-injector-{revision}"))["data"]["config"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(template.contains("istio.io/rev: {{ .Revision | default \"default\" | quote }}"), "the injection template");
    let values = named(&canary, "ConfigMap", &format!("istio-sidecar-injector-{revision}"))["data"]["values"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(values.contains(&format!("\"revision\": \"{revision}\"")), "{values}");
}
