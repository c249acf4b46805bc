//! What gets installed, in order: the actions of a profile's environment, readiness gates
//! included. The plan shows them and the installer (`install.rs`) executes the same list.

pub mod kong;
pub mod linkerd;

pub mod install;
pub mod values;

#[cfg(test)]
mod chart_beliefs;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use crate::model::Mesh;
use crate::profile::Profile;

/// A Helm release as the harness installs it (`helm upgrade --install`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub name: String,
    pub chart: String,
    pub repo: String,
    pub version: String,
    pub namespace: String,
    pub values: Value,
    /// Values read from files the run generates (`--set-file key=<run dir>/<file>`), for
    /// material that must not appear in plans or logs (Linkerd's issuer key).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_files: Vec<(String, String)>,
    /// Where the user's values (`--values`) came from, layered in this order as `helm -f a -f b`
    /// layers them, and the keys the harness set over them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_values: Vec<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<values::Override>,
}

/// How long helm may wait for a release's resources (`--wait --timeout`).
pub const HELM_TIMEOUT: &str = "10m";

impl Release {
    /// The values file of this release inside the run directory `dir`.
    pub fn values_file(&self, dir: &Path) -> PathBuf {
        dir.join("helm").join(format!("{}.values.yaml", self.name))
    }

    /// The helm argv, with every file under `dir` (the run directory; empty for plans).
    pub fn helm_args(&self, dir: &Path) -> Vec<String> {
        let mut args: Vec<String> = [
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
            &self.values_file(dir).display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (key, file) in &self.set_files {
            args.push("--set-file".into());
            args.push(format!("{key}={}", dir.join(file).display()));
        }
        // The label marks the release as the harness's own (stored on Helm's release Secret;
        // `helm upgrade --labels`, Helm >= 3.13), so `existing` clusters can tell ours apart.
        args.extend(["--labels".into(), format!("{}=true", crate::cluster::existing::RELEASE_LABEL)]);
        // Helm 4's `--wait` is a strategy (helm/helm pkg/cmd/flags.go at v4.2.4): bare
        // `--wait` means the kstatus watcher, which also waits on every custom resource with a
        // status and needs watch permission (an issue on `--provider existing`); the harness
        // gates each release's readiness itself. `legacy` is Helm 3's polling of Deployments,
        // StatefulSets, Services and PVCs, the semantics the charts' install guides assume.
        // One word with `=`: a separate `legacy` would be read as the chart argument.
        args.extend(["--wait=legacy".into(), "--timeout".into(), HELM_TIMEOUT.into()]);
        args.extend(["--kubeconfig".into(), dir.join("kubeconfig").display().to_string()]);
        args
    }
}

impl Release {
    /// `helm show crds` of this release's chart at its version.
    pub fn show_crds_args(&self) -> Vec<String> {
        ["show", "crds", &self.chart, "--repo", &self.repo, "--version", &self.version].map(str::to_owned).to_vec()
    }
}

/// Something the installer waits for before going on, with a deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "gate", rename_all = "kebab-case")]
pub enum Gate {
    /// The CRDs exist and are Established.
    Crds { names: Vec<String> },
    /// Every Deployment of the namespace is Available.
    Deployments { namespace: String },
    /// The mutating webhook exists and its Service has a ready endpoint.
    Webhook { configuration: String },
    /// The selected pods are inside the mesh: they carry its proxy (as a container or a native
    /// sidecar), or in ambient mode istio-cni has redirected them to ztunnel.
    Meshed { namespace: String, selector: String, mesh: Mesh },
    /// Kong's proxy answers from the host (any HTTP answer, Kong's own 404 included).
    ProxyReachable,
    /// A Gateway API Gateway is Programmed (KIC sets it once its listeners are configured).
    GatewayProgrammed { namespace: String, name: String },
    /// A DaemonSet is rolled out: a ready, updated pod on every node it schedules to.
    DaemonSet { namespace: String, name: String },
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gate::Crds { names } => write!(f, "CRDs established: {}", names.join(", ")),
            Gate::Deployments { namespace } => write!(f, "Deployments available in {namespace}"),
            Gate::Webhook { configuration } => write!(f, "webhook {configuration} serving"),
            Gate::Meshed { namespace, selector, mesh } => {
                write!(f, "pods {selector} in {namespace} carry {}", mesh.member_mark().unwrap_or("no mesh"))
            }
            Gate::ProxyReachable => write!(f, "Kong's proxy answers from the host"),
            Gate::GatewayProgrammed { namespace, name } => write!(f, "Gateway {namespace}/{name} Programmed"),
            Gate::DaemonSet { namespace, name } => write!(f, "DaemonSet {namespace}/{name} rolled out"),
        }
    }
}

/// A file the run downloads and checks before use: where from, and its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedFile {
    pub file: String,
    pub url: String,
    pub sha256: String,
}

/// One step of building the environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Pinned CRD files: downloaded, verified (sha256), applied, then waited for.
    Crds {
        name: String,
        version: String,
        files: Vec<PinnedFile>,
    },
    /// Linkerd's trust anchor and issuer, generated into the run directory (`linkerd/`).
    LinkerdIdentity,
    Helm(Release),
    /// Objects applied with kube-rs (server-side apply), named for the plan's files.
    Apply {
        name: String,
        objects: Vec<Value>,
    },
    /// The CRDs a chart ships (`helm show crds`), applied server-side before its release is
    /// upgraded: Helm installs a chart's `crds/` once and never upgrades them (helm.sh docs
    /// chart_best_practices/custom_resource_definitions; Kong's KIC upgrade guide applies them
    /// first).
    ChartCrds(Release),
    /// Labels set (`Some`) or removed (`None`) on a namespace, with a merge patch.
    Relabel {
        namespace: String,
        labels: std::collections::BTreeMap<String, Option<String>>,
    },
    Ready(Gate),
}

/// Kong's gateway pods: the kong chart's `kong.selectorLabels` (app.kubernetes.io/name is the
/// subchart alias `gateway`, app.kubernetes.io/instance the release).
pub fn kong_gateway_selector(release: &str) -> String {
    format!("app.kubernetes.io/name=gateway,app.kubernetes.io/instance={release}")
}

/// Files of the identity Linkerd's chart reads with `--set-file` (relative to the run directory).
pub const LINKERD_TRUST_ANCHOR: &str = "linkerd/ca.crt";
pub const LINKERD_ISSUER_CERT: &str = "linkerd/issuer.crt";
pub const LINKERD_ISSUER_KEY: &str = "linkerd/issuer.key";

/// The environment of `profile`, in install order.
pub fn environment(profile: &Profile) -> Vec<Action> {
    let v = &profile.versions;
    let crds: Vec<PinnedFile> = v
        .gateway_api
        .artifacts()
        .into_iter()
        .map(|a| PinnedFile { file: a.file, url: a.url, sha256: a.sha256 })
        .collect();
    let crd_names = crds
        .iter()
        .map(|PinnedFile { file: f, .. }| {
            // gateway.networking.k8s.io_httproutes.yaml -> httproutes.gateway.networking.k8s.io
            let stem = f.trim_end_matches(".yaml");
            match stem.split_once('_') {
                Some((group, plural)) => format!("{plural}.{group}"),
                None => stem.to_owned(),
            }
        })
        .collect();
    let mut actions = vec![
        Action::Crds { name: "gateway-api".into(), version: v.gateway_api.version.clone(), files: crds },
        Action::Ready(Gate::Crds { names: crd_names }),
    ];
    let mesh_version = profile.pins.mesh_version.clone().unwrap_or_default();
    let meshes_kong = match profile.mesh() {
        Mesh::Istio | Mesh::IstioAmbient => {
            let ambient = profile.mesh() == Mesh::IstioAmbient;
            // Release names as in Istio's Helm install guide: istio-base, istiod.
            let release = |name: &str, chart: &str, values: Value| Release {
                name: name.to_owned(),
                chart: chart.to_owned(),
                repo: v.istio.repo.clone(),
                version: mesh_version.clone(),
                namespace: "istio-system".into(),
                values,
                set_files: vec![],
                user_values: vec![],
                overrides: vec![],
            };
            actions.push(Action::Helm(release("istio-base", "base", json!({}))));
            actions.push(Action::Helm(release("istiod", "istiod", istiod_values(profile))));
            actions.push(Action::Ready(Gate::Deployments { namespace: "istio-system".into() }));
            // The istiod chart's injector configuration, without a revision suffix (rendered in
            // ambient mode too: a namespace may still ask for sidecars).
            actions.push(Action::Ready(Gate::Webhook { configuration: "istio-sidecar-injector".into() }));
            if ambient {
                // Istio's Helm install for ambient, in its order: base, istiod, cni, ztunnel,
                // istiod and cni with `profile=ambient` (istio.io docs/ambient/install/helm; base
                // and ztunnel take none there). The DaemonSets are the charts' own names
                // (manifests/charts/istio-cni templates/daemonset.yaml, ztunnel
                // templates/daemonset.yaml at 1.30.3). kind's default CNI (kindnet) needs no
                // platform profile: the cni chart's default paths are where kindnet writes
                // (values.yaml `cniConfDir: /etc/cni/net.d`, `cniBinDir: /opt/cni/bin`), and
                // istio.io's platform prerequisites list nothing for kind.
                actions.push(Action::Helm(release("istio-cni", "cni", istio_cni_values())));
                actions.push(Action::Ready(Gate::DaemonSet {
                    namespace: "istio-system".into(),
                    name: "istio-cni-node".into(),
                }));
                actions.push(Action::Helm(release("ztunnel", "ztunnel", ztunnel_values())));
                actions
                    .push(Action::Ready(Gate::DaemonSet { namespace: "istio-system".into(), name: "ztunnel".into() }));
                // Kong joins the mesh by its namespace, before its chart creates any pod.
                actions.push(Action::Apply { name: "kong-namespace".into(), objects: generated_objects(profile) });
            }
            true
        }
        Mesh::Linkerd => {
            let chart_version = v.linkerd.charts.get(&mesh_version).cloned().unwrap_or_default();
            let release = |name: &str, values: Value, set_files: Vec<(String, String)>| Release {
                name: name.to_owned(),
                chart: name.to_owned(),
                repo: v.linkerd.repo.clone(),
                version: chart_version.clone(),
                namespace: "linkerd".into(),
                values,
                set_files,
                user_values: vec![],
                overrides: vec![],
            };
            actions.push(Action::LinkerdIdentity);
            // The Gateway API CRDs are ours (installed above); the chart must not own them.
            actions.push(Action::Helm(release("linkerd-crds", json!({"installGatewayAPI": false}), vec![])));
            let identity = vec![
                ("identityTrustAnchorsPEM".to_owned(), LINKERD_TRUST_ANCHOR.to_owned()),
                ("identity.issuer.tls.crtPEM".to_owned(), LINKERD_ISSUER_CERT.to_owned()),
                ("identity.issuer.tls.keyPEM".to_owned(), LINKERD_ISSUER_KEY.to_owned()),
            ];
            actions.push(Action::Helm(release(
                "linkerd-control-plane",
                linkerd_control_plane_values(profile),
                identity,
            )));
            actions.push(Action::Ready(Gate::Deployments { namespace: "linkerd".into() }));
            // templates/proxy-injector-rbac.yaml of linkerd-control-plane.
            actions
                .push(Action::Ready(Gate::Webhook { configuration: "linkerd-proxy-injector-webhook-config".into() }));
            true
        }
        Mesh::None => false,
    };
    actions.push(Action::Apply { name: "tracing".into(), objects: collector(profile) });
    if profile.mesh().is_istio() {
        actions.push(Action::Apply { name: "istio-telemetry".into(), objects: vec![telemetry()] });
    }
    actions.push(Action::Helm(Release {
        name: v.kong.release.clone(),
        chart: v.kong.chart.clone(),
        repo: v.kong.repo.clone(),
        version: profile.pins.kong_chart_version.clone().unwrap_or_else(|| v.kong.version.clone()),
        namespace: v.kong.namespace.clone(),
        values: kong::values_for(profile),
        set_files: vec![],
        user_values: vec![],
        overrides: vec![],
    }));
    actions.push(Action::Ready(Gate::Deployments { namespace: v.kong.namespace.clone() }));
    actions.push(Action::Ready(Gate::Deployments { namespace: v.tracing.namespace.clone() }));
    if meshes_kong {
        actions.push(Action::Ready(Gate::Meshed {
            namespace: v.kong.namespace.clone(),
            selector: kong_gateway_selector(&v.kong.release),
            mesh: profile.mesh(),
        }));
    }
    if profile.mesh() == Mesh::Linkerd {
        // Linkerd's proxies export spans only over mTLS to the collector's identity, so a
        // collector pod without its own proxy receives nothing. Its pod can lack one although it
        // was applied after the injector's gate: the injector's `failurePolicy` is `Ignore`
        // (linkerd/linkerd2 edge-26.8.3 charts/linkerd-control-plane
        // templates/proxy-injector-rbac.yaml), so a pod admitted while it does not answer starts
        // bare. Checked here, before any trace scenario runs.
        actions.push(Action::Ready(Gate::Meshed {
            namespace: v.tracing.namespace.clone(),
            selector: collector_selector(&v.tracing),
            mesh: Mesh::Linkerd,
        }));
    }
    actions.push(Action::Ready(Gate::ProxyReachable));
    actions
}

/// A mesh upgrade in place to `to` (a profile of the same mesh, [`Profile::next_mesh_pin`]):
/// the mesh's Helm releases as `installed` has them (the plan's, the user's values layered in)
/// at `to`'s chart versions, in install order, then the mesh's readiness gates, as
/// Istio's in-place Helm upgrade (istio.io docs/setup/upgrade/helm: base, then istiod) and
/// Linkerd's (linkerd.io 2-edge tasks/upgrade: the CRDs, then the control plane) do it. The data
/// plane moves when its workloads restart, which a scenario says with `restart` steps. Kong,
/// the collector and the CRDs stay as they are.
pub fn mesh_upgrade(installed: &[Action], to: &Profile) -> Vec<Action> {
    let mesh_charts = ["base", "istiod", "linkerd-crds", "linkerd-control-plane"];
    let target = environment(to);
    let version_at_target = |name: &str| {
        target.iter().find_map(|a| match a {
            Action::Helm(r) if r.name == name => Some(r.version.clone()),
            _ => None,
        })
    };
    let mut out: Vec<Action> = Vec::new();
    let mut in_mesh = false;
    for action in installed {
        match action {
            Action::Helm(r) => {
                in_mesh = mesh_charts.contains(&r.chart.as_str());
                if let (true, Some(version)) = (in_mesh, version_at_target(&r.name)) {
                    out.push(Action::Helm(Release { version, ..r.clone() }));
                }
            }
            // The gates right after the mesh's releases (its Deployments, its injector).
            Action::Ready(Gate::Deployments { .. } | Gate::Webhook { .. }) if in_mesh => out.push(action.clone()),
            _ => in_mesh = false,
        }
    }
    out
}

/// Istio's revision for release `version`: `1.31.1` -> `1-31-1`. A revision names the canary's
/// Deployment, Service and webhooks and so must be a DNS-1123 label; dots are not allowed
/// (istio.io docs/setup/upgrade/canary; istioctl checks `labels.IsDNS1123Label`). The release
/// `istiod-<revision>` keeps it to 46 characters (Helm allows 53 for a release name).
pub fn istio_revision(version: &str) -> Option<String> {
    let revision = version.replace('.', "-").to_ascii_lowercase();
    // Helm's release names are at most 53 characters, and the canary's is `istiod-<revision>`.
    let label = !revision.is_empty()
        && revision.len() <= 46
        && revision.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !revision.starts_with('-')
        && !revision.ends_with('-');
    label.then_some(revision)
}

/// Istio's revision-based canary upgrade to `to` (a profile of the same mesh,
/// [`Profile::next_mesh_pin`]), as istio.io docs/setup/upgrade/helm "Canary upgrade" orders
/// it: the base chart upgraded in place (its CRDs and cluster-wide objects serve both control
/// planes), then istiod of the new release installed beside the old one as release
/// `istiod-<revision>` with `revision` set (every object it makes carries the revision, so
/// the two do not collide: istio/istio manifests/charts/istio-control/istio-discovery/templates),
/// then its Deployment and its injector `istio-sidecar-injector-<revision>`, then Kong's
/// namespace labelled `istio.io/rev=<revision>`. Kong's pods carry
/// `sidecar.istio.io/inject=true` in that namespace, which then only the canary's
/// `rev.namespace.` webhook matches (templates/mutatingwebhook.yaml). The scenario's own
/// namespaces are moved by [`canary_relabel`] when the step runs. The old control plane stays
/// (the doc removes it once every workload has moved; the cluster is the run's own). `None` when
/// the profile is not Istio's sidecar mode or the release makes no revision name.
pub fn mesh_canary(installed: &[Action], to: &Profile, kong_namespace: &str) -> Option<(Vec<Action>, String)> {
    if to.mesh() != Mesh::Istio {
        return None;
    }
    let revision = istio_revision(to.pins.mesh_version.as_deref()?)?;
    let in_place = mesh_upgrade(installed, to);
    let mut actions = Vec::new();
    for action in &in_place {
        match action {
            Action::Helm(r) if r.chart == "base" => actions.push(action.clone()),
            Action::Helm(r) if r.chart == "istiod" => {
                let mut values = r.values.clone();
                if let Some(map) = values.as_object_mut() {
                    map.insert("revision".into(), Value::String(revision.clone()));
                }
                actions.push(Action::Helm(Release { name: format!("istiod-{revision}"), values, ..r.clone() }));
                actions.push(Action::Ready(Gate::Deployments { namespace: r.namespace.clone() }));
                actions
                    .push(Action::Ready(Gate::Webhook { configuration: format!("istio-sidecar-injector-{revision}") }));
            }
            _ => {}
        }
    }
    if !actions.iter().any(|a| matches!(a, Action::Helm(r) if r.chart == "istiod")) {
        return None;
    }
    actions.extend(canary_relabel(&[kong_namespace.to_owned()], &revision));
    Some((actions, revision))
}

/// Namespaces moved to Istio revision `revision`: `istio.io/rev=<revision>` set and
/// `istio-injection` removed, since it takes precedence over `istio.io/rev` (istio.io
/// docs/setup/upgrade/canary, "Data plane": `kubectl label namespace … istio-injection-
/// istio.io/rev=…`). Pods move when they are next created.
pub fn canary_relabel(namespaces: &[String], revision: &str) -> Vec<Action> {
    namespaces
        .iter()
        .map(|namespace| Action::Relabel {
            namespace: namespace.clone(),
            labels: [("istio-injection".to_owned(), None), ("istio.io/rev".to_owned(), Some(revision.to_owned()))]
                .into_iter()
                .collect(),
        })
        .collect()
}

/// Kong's chart upgraded in place to `to`'s pin ([`Profile::next_kong_pin`]), as Kong's upgrade
/// guide orders it (developer.konghq.com kubernetes-ingress-controller/faq/
/// upgrading-ingress-controller): the new chart's CRDs, then `helm upgrade` with the values it
/// was installed with (the user's layered in), then Kong's gates as the install has them (its
/// Deployments, its pods in the mesh). `None` when `installed` has no Kong release.
pub fn kong_upgrade(installed: &[Action], to: &Profile) -> Option<Vec<Action>> {
    let kong = &to.versions.kong;
    let version = to.pins.kong_chart_version.clone().unwrap_or_else(|| kong.version.clone());
    let release = installed.iter().find_map(|a| match a {
        Action::Helm(r) if r.name == kong.release && r.chart == kong.chart => {
            Some(Release { version: version.clone(), ..r.clone() })
        }
        _ => None,
    })?;
    let mut actions = vec![Action::ChartCrds(release.clone()), Action::Helm(release)];
    actions.extend(installed.iter().filter(|a| {
        matches!(a, Action::Ready(Gate::Deployments { namespace } | Gate::Meshed { namespace, .. }) if *namespace == kong.namespace)
    }).cloned());
    Some(actions)
}

/// The images a run loads into the kind node before installing: the pinned ones (echo backend,
/// client, collector), Kong's chart defaults, and the mesh's big ones at its pinned version
/// (Istio's pilot and proxyv2 from the hub the harness sets; Linkerd's proxy and controller,
/// `cr.l5d.io/linkerd/*:<edge>`, charts/linkerd-control-plane values.yaml `proxy.image.name`,
/// `controllerImage`). Preloading is best effort: the node pulls whatever is missing.
pub fn preload_images(profile: &Profile) -> Vec<String> {
    let mut images: Vec<String> = profile.versions.images.values().cloned().collect();
    let (gateway, kic) = kong::images_in(&kong::values_for(profile));
    images.extend([gateway, kic]);
    match (profile.mesh(), profile.pins.mesh_version.as_deref()) {
        (Mesh::Istio, Some(v)) => {
            images.extend(istio_images(ISTIO_HUB, v));
        }
        // The ambient profile's distroless variant for istiod, the waypoints (proxyv2) and
        // install-cni; ztunnel, installed without the profile, runs the plain tag.
        (Mesh::IstioAmbient, Some(v)) => {
            images.extend(istio_images(ISTIO_HUB, &format!("{v}-distroless")));
            images.push(format!("{ISTIO_HUB}/install-cni:{v}-distroless"));
            images.push(format!("{ISTIO_HUB}/ztunnel:{v}"));
        }
        (Mesh::Linkerd, Some(v)) => {
            images.extend(["proxy", "controller"].map(|i| format!("cr.l5d.io/linkerd/{i}:{v}")));
        }
        _ => {}
    }
    images
}

/// Istio's images at `version` from `hub`: pilot (istiod) and proxyv2 (the sidecar), as the
/// istiod chart names them (`<global.hub>/<image>:<global.tag>`).
pub fn istio_images(hub: &str, version: &str) -> [String; 2] {
    ["pilot", "proxyv2"].map(|i| format!("{}/{i}:{version}", hub.trim_end_matches('/')))
}

/// The hub the harness gives istiod unless the user's values name a mirror of their own.
pub const ISTIO_HUB: &str = "docker.io/istio";

/// The name istiod's extension provider for the collector goes by.
const ISTIO_TRACE_PROVIDER: &str = "otel";

/// istiod: tracing on, with an opentelemetry provider pointing at our collector. Without an
/// `http` block the sidecars export OTLP over gRPC to `service:port` (istio/api v1.30.3
/// mesh/v1alpha1/config.proto; istio/istio pilot/pkg/networking/core/tracing.go). OpenTelemetry
/// rather than the guide's zipkin provider: Envoy's OpenTelemetry tracer reads and writes W3C
/// `traceparent` (envoy source/extensions/tracers/opentelemetry/span_context_extractor.cc), the
/// format Kong's opentelemetry plugin and Linkerd's proxies use, so one trace context and one
/// wire protocol cover Kong and both meshes. Sidecars trace nothing until a Telemetry resource
/// selects the provider.
fn istiod_values(profile: &Profile) -> Value {
    let t = &profile.versions.tracing;
    let mut values = json!({
        // Released 1.30.x charts point their images at registry.istio.io/release, which is shut
        // down in December 2026 (istio.io blog 2026/retirement-of-gcp); the same images are on
        // Docker Hub under `istio` (the chart's own documented default hub, values.yaml
        // `global.hub`). The tag stays the chart's, i.e. the release's own version.
        "global": {"hub": ISTIO_HUB},
        "meshConfig": {
            "enableTracing": true,
            "extensionProviders": [{
                "name": ISTIO_TRACE_PROVIDER,
                "opentelemetry": {"service": t.host(), "port": t.otlp_grpc_port},
            }],
        },
    });
    if profile.mesh() == Mesh::IstioAmbient {
        // The chart's ambient profile (files/profile-ambient.yaml): PILOT_ENABLE_AMBIENT, HBONE
        // for the proxies istiod configures (waypoints), and the distroless image variant.
        values["profile"] = json!(AMBIENT_PROFILE);
    }
    values
}

/// The Helm profile each ambient chart but ztunnel's is installed with.
const AMBIENT_PROFILE: &str = "ambient";

/// istio-cni in ambient mode (profile-ambient.yaml: `cni.ambient.enabled`), its images from
/// the hub istiod's come from (`global.hub`, values.yaml).
fn istio_cni_values() -> Value {
    json!({"profile": AMBIENT_PROFILE, "global": {"hub": ISTIO_HUB}})
}

/// ztunnel as Istio's install guide installs it (no profile); its image is `<hub>/ztunnel:<tag>`
/// from its own top-level `hub` (manifests/charts/ztunnel values.yaml, templates/daemonset.yaml).
fn ztunnel_values() -> Value {
    json!({"hub": ISTIO_HUB})
}

/// What the stack makes of its own for Kong besides the charts and the stack manifests: in
/// ambient mode, Kong's namespace enrolled, so that ztunnel carries its pods' traffic
/// (`istio.io/dataplane-mode: ambient`, istio.io docs/ambient/usage/add-workloads). Lint reads
/// the same objects when it judges the harness's own install.
pub fn generated_objects(profile: &Profile) -> Vec<Value> {
    match profile.mesh() {
        Mesh::IstioAmbient => vec![json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": profile.versions.kong.namespace, "labels": {crate::model::AMBIENT_LABEL: "ambient"}},
        })],
        Mesh::Istio | Mesh::Linkerd | Mesh::None => vec![],
    }
}

/// linkerd-control-plane: the proxies export their spans (OTLP over gRPC, the only exporter of
/// linkerd2-proxy at edge-26.8) to the collector, verified as the collector's mesh identity. The
/// chart refuses to render tracing without the endpoint and both identity fields
/// (charts/partials/templates/_proxy.tpl at edge-26.8.3, `fail`).
fn linkerd_control_plane_values(profile: &Profile) -> Value {
    let t = &profile.versions.tracing;
    json!({
        // The harness gives the run's own trust anchor and issuer as PEM (`--set-file`), which
        // the chart turns into the issuer Secret and trust roots only with these two
        // (charts/linkerd-control-plane templates/identity.yaml at edge-26.8.3).
        "identity": {"externalCA": false, "issuer": {"scheme": "linkerd.io/tls"}},
        "proxy": {"tracing": {
            "enabled": true,
            "collector": {
                "endpoint": t.otlp_grpc_endpoint(),
                "meshIdentity": {"serviceAccountName": t.service_account, "namespace": t.namespace},
            },
        }},
    })
}

/// Mesh-wide tracing at 100% with the collector's provider (telemetry.istio.io/v1 `spec.tracing`;
/// one provider per rule, istio/api telemetry/v1alpha1/telemetry.proto).
fn telemetry() -> Value {
    json!({
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "mesh-default", "namespace": "istio-system"},
        "spec": {"tracing": [{"providers": [{"name": ISTIO_TRACE_PROVIDER}], "randomSamplingPercentage": 100}]},
    })
}

/// What the collector's readiness probe asks on the query port.
pub const COLLECTOR_READINESS_PATH: &str = "/api/v3/services";

/// The collector's pods: the `app` label its Deployment and Service select on.
pub fn collector_selector(tracing: &crate::profile::TracingPins) -> String {
    format!("app={}", tracing.service)
}

/// The trace collector: Jaeger v2 all-in-one with in-memory storage, its ServiceAccount (the
/// identity Linkerd's proxies export to) and the Service Kong and the meshes report to. On
/// Linkerd it is meshed: proxies export only to a collector inside the mesh (linkerd/website
/// 2-edge tasks/distributed-tracing.md). On Istio it stays outside the mesh: the sidecars
/// export over plaintext gRPC, and nothing in the tracing namespace is injected.
fn collector(profile: &Profile) -> Vec<Value> {
    let t = &profile.versions.tracing;
    let image = profile.versions.images.get("jaeger").cloned().unwrap_or_default();
    let labels = json!({"app": t.service});
    let annotations = match profile.mesh() {
        Mesh::Linkerd => json!({"linkerd.io/inject": "enabled"}),
        Mesh::Istio | Mesh::IstioAmbient | Mesh::None => json!({}),
    };
    // Port names carry the protocol, which Istio's sidecars (Kong's, sending OTLP/HTTP and
    // Zipkin JSON) use to choose HTTP handling.
    let ports = [
        ("grpc-otlp", t.otlp_grpc_port),
        ("http-otlp", t.otlp_http_port),
        ("http-zipkin", t.zipkin_port),
        ("http-query", t.query_port),
    ];
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": t.namespace}}),
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": t.service_account, "namespace": t.namespace, "labels": labels},
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": t.service, "namespace": t.namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": {
                        "serviceAccountName": t.service_account,
                        // No --config: the image's embedded all-in-one configuration (receivers
                        // otlp, jaeger, zipkin; memory storage; query on 16686), listening on
                        // 0.0.0.0 as the image's JAEGER_LISTEN_HOST sets (jaegertracing/jaeger
                        // cmd/jaeger/internal/all-in-one.yaml, cmd/jaeger/Dockerfile).
                        "containers": [{
                            "name": "jaeger",
                            "image": image,
                            "ports": ports.iter().map(|(name, port)| json!({"name": name, "containerPort": port})).collect::<Vec<_>>(),
                            // Ready once storage and query answer: the api_v3 `GetServices` route
                            // (jaegertracing/jaeger v2.20.0 cmd/jaeger/internal/extension/jaegerquery
                            // /internal/apiv3/http_gateway.go, `/api/v3/services`). Not the v1
                            // `/api/services`, which Jaeger removes after v2.20.0
                            // (jaegertracing/jaeger#9260); `/api/traces/{id}` stays.
                            "readinessProbe": {"httpGet": {"path": COLLECTOR_READINESS_PATH, "port": t.query_port}},
                            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
                        }],
                    },
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": t.service, "namespace": t.namespace, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": ports.iter().map(|(name, port)| json!({"name": name, "port": port, "targetPort": port})).collect::<Vec<_>>(),
            },
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every values key (and `--set-file` key) the harness sets, per chart, checked by hand
    /// against the pinned charts' values.yaml: kong 3.2.0 (under `gateway.` of kong/ingress
    /// 0.24.0), istiod 1.30.3 (`meshConfig` is passed through as Istio's MeshConfig, whose
    /// fields `enableTracing` and `extensionProviders` are), linkerd-crds and
    /// linkerd-control-plane edge-26.8.3. A key outside these lists is silently ignored by Helm.
    fn chart_keys(chart: &str) -> &'static [&'static str] {
        match chart {
            "ingress" => &[
                "gateway.proxy.type",
                "gateway.proxy.http.nodePort",
                "gateway.proxy.tls.nodePort",
                "gateway.podLabels",
                "gateway.podAnnotations",
                // charts/kong/values.yaml `podLabels` under the controller's alias (Istio: its
                // opt-out; the render shows it on the kong-controller pods).
                "controller.podLabels",
                // charts/kong/values.yaml (kong-3.2.0) `manager.enabled`.
                "gateway.manager.enabled",
                // charts/kong/values.yaml `image.repository`/`image.tag` (Kong Gateway) and
                // `ingressController.image.*` (KIC), under the subcharts' aliases: profile pins.
                "gateway.image.repository",
                "gateway.image.tag",
                "controller.ingressController.image.repository",
                "controller.ingressController.image.tag",
                // charts/kong/values.yaml `env` (each key becomes KONG_<KEY>): Kong's tracing.
                "gateway.env.tracing_instrumentations",
                "gateway.env.tracing_sampling_rate",
            ],
            "base" => &[],
            // `profile` selects files/profile-<name>.yaml in every Istio chart (templates/
            // zzz_profile.yaml); `hub` is ztunnel's own top-level image hub (values.yaml).
            "istiod" => &["global.hub", "meshConfig.enableTracing", "meshConfig.extensionProviders", "profile"],
            "cni" => &["global.hub", "profile"],
            "ztunnel" => &["hub"],
            "linkerd-crds" => &["installGatewayAPI"],
            "linkerd-control-plane" => &[
                "identityTrustAnchorsPEM",
                "identity.externalCA",
                "identity.issuer.scheme",
                "identity.issuer.tls.crtPEM",
                "identity.issuer.tls.keyPEM",
                // values.yaml `proxy.tracing` at edge-26.8.3.
                "proxy.tracing.enabled",
                "proxy.tracing.collector.endpoint",
                "proxy.tracing.collector.meshIdentity.serviceAccountName",
                "proxy.tracing.collector.meshIdentity.namespace",
            ],
            _ => &[],
        }
    }

    /// Leaf key paths of `v`; label and annotation maps and lists count as leaves.
    fn leaf_paths(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v.as_object() {
            Some(map) if !prefix.ends_with("podLabels") && !prefix.ends_with("podAnnotations") => {
                for (k, child) in map {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    leaf_paths(&path, child, out);
                }
            }
            _ if !prefix.is_empty() => out.push(prefix.to_owned()),
            _ => {}
        }
    }

    /// A revision is a DNS label short enough for the release `istiod-<revision>`; a version
    /// that makes none (from an edited versions.toml) gives no canary rather than a bad name.
    #[test]
    fn istio_revisions_are_dns_labels_from_the_release() {
        assert_eq!(istio_revision("1.31.1").as_deref(), Some("1-31-1"));
        assert_eq!(istio_revision("1.31.1-distroless").as_deref(), Some("1-31-1-distroless"));
        for bad in ["1.31.1/../x", "1.31.1_a", ".1.31", "1.31.", "", &"1".repeat(47)] {
            assert_eq!(istio_revision(bad), None, "{bad}");
        }
        assert!(istio_revision(&"1".repeat(46)).is_some());
    }

    /// A mesh upgrade is the mesh's releases at the new pin and the mesh's gates, nothing of
    /// Kong's, the collector's or the CRDs'.
    #[test]
    fn a_mesh_upgrade_is_the_meshs_releases_and_gates_at_the_new_pin() {
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        let steps = |from: &str, name: &str| -> Vec<String> {
            let installed = environment(&versions.profile(from, std::path::Path::new("versions.toml")).unwrap());
            let to = versions.profile(name, std::path::Path::new("versions.toml")).unwrap();
            mesh_upgrade(&installed, &to)
                .iter()
                .map(|a| match a {
                    Action::Helm(r) => format!("helm {} {}", r.name, r.version),
                    Action::Ready(g) => format!("wait {g}"),
                    other => format!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(
            steps("istio", "istio-1-31"),
            [
                "helm istio-base 1.31.1",
                "helm istiod 1.31.1",
                "wait Deployments available in istio-system",
                "wait webhook istio-sidecar-injector serving"
            ]
        );
        assert_eq!(
            steps("linkerd", "linkerd-edge-26-9-1"),
            [
                "helm linkerd-crds 2026.9.1",
                "helm linkerd-control-plane 2026.9.1",
                "wait Deployments available in linkerd",
                "wait webhook linkerd-proxy-injector-webhook-config serving"
            ]
        );
    }

    /// The upgrade keeps what the run installed with (the user's values layered in, the
    /// identity files) and changes only the chart version.
    #[test]
    fn a_mesh_upgrade_keeps_the_installs_values() {
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        let profile = |name: &str| versions.profile(name, std::path::Path::new("versions.toml")).unwrap();
        let mut installed = environment(&profile("linkerd"));
        for action in &mut installed {
            if let Action::Helm(r) = action
                && r.name == "linkerd-control-plane"
            {
                r.values["proxy"]["resources"] = json!({"cpu": {"request": "20m"}});
                r.user_values = vec![std::path::PathBuf::from("values/linkerd.yaml")];
            }
        }
        let upgrade = mesh_upgrade(&installed, &profile("linkerd-edge-26-9-1"));
        let Some(Action::Helm(cp)) =
            upgrade.iter().find(|a| matches!(a, Action::Helm(r) if r.name == "linkerd-control-plane"))
        else {
            panic!("the control plane is upgraded: {upgrade:?}")
        };
        assert_eq!(cp.version, "2026.9.1");
        assert_eq!(cp.values["proxy"]["resources"]["cpu"]["request"], "20m", "the user's values stay");
        assert_eq!(cp.user_values, [std::path::PathBuf::from("values/linkerd.yaml")]);
        assert_eq!(cp.set_files.len(), 3, "the run's own identity, not a new one");
        assert!(
            !upgrade.iter().any(|a| matches!(a, Action::LinkerdIdentity | Action::Crds { .. } | Action::Apply { .. }))
        );
    }

    #[test]
    fn every_key_the_harness_sets_exists_in_its_chart() {
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        let mut releases = 0;
        for name in versions.profiles.keys() {
            let profile = versions.profile(name, std::path::Path::new("versions.toml")).unwrap();
            for action in environment(&profile) {
                let Action::Helm(release) = action else { continue };
                releases += 1;
                let mut paths = Vec::new();
                leaf_paths("", &release.values, &mut paths);
                paths.extend(release.set_files.iter().map(|(key, _)| key.clone()));
                for p in paths {
                    assert!(
                        chart_keys(&release.chart).contains(&p.as_str()),
                        "{name}: `{p}` is not a key of chart {}",
                        release.chart
                    );
                }
            }
        }
        assert!(releases >= 12, "kong on four profiles plus the meshes' charts: {releases}");
    }

    /// A profile may pin Kong's chart version and the Kong Gateway and KIC images: the release,
    /// the values (at the chart's own keys, checked above) and the preload list follow it, and
    /// an image without a tag is refused where it is written.
    #[test]
    fn profiles_pin_kongs_chart_and_images() {
        let text = include_str!("../../../versions.toml").replacen(
            "[profiles.istio]\nmesh = \"istio\"\n",
            "[profiles.istio]\nmesh = \"istio\"\nkong_chart_version = \"0.23.1\"\n\
             kong_gateway_image = \"kong:3.9.1\"\nkic_image = \"kong/kubernetes-ingress-controller:3.5.13\"\n",
            1,
        );
        let versions = crate::profile::Versions::parse(&text).unwrap();
        let profile = versions.profile("istio", std::path::Path::new("versions.toml")).unwrap();
        let kong = environment(&profile)
            .into_iter()
            .find_map(|a| match a {
                Action::Helm(r) if r.chart == "ingress" => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(kong.version, "0.23.1");
        let mut paths = Vec::new();
        leaf_paths("", &kong.values, &mut paths);
        assert!(paths.iter().all(|p| chart_keys("ingress").contains(&p.as_str())), "{paths:?}");
        assert_eq!(
            kong::images_in(&kong.values),
            ("kong:3.9.1".to_owned(), "kong/kubernetes-ingress-controller:3.5.13".to_owned())
        );
        let preload = preload_images(&profile);
        assert!(preload.contains(&"kong:3.9.1".to_owned()) && !preload.contains(&"kong:3.9".to_owned()), "{preload:?}");
        let untagged =
            text.replace("kic_image = \"kong/kubernetes-ingress-controller:3.5.13\"", "kic_image = \"kong/kic\"");
        let err = crate::profile::Versions::parse(&untagged).unwrap_err().1;
        assert!(err.contains("profiles.istio.kic_image") && err.contains("names no tag"), "{err}");
    }

    #[test]
    fn the_stacks_own_custom_resources_fit_the_pinned_crds() {
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        let schemas = crate::lint::crd::Schemas::built_in();
        let mut checked = 0;
        for name in versions.profiles.keys() {
            let profile = versions.profile(name, std::path::Path::new("versions.toml")).unwrap();
            for action in environment(&profile) {
                let Action::Apply { objects, .. } = action else { continue };
                for o in objects {
                    let (api_version, kind) = (o["apiVersion"].as_str().unwrap(), o["kind"].as_str().unwrap());
                    if let Some(shape) = schemas.shape(api_version, kind) {
                        assert_eq!(crate::lint::crd::validate(shape, &o), [], "{api_version} {kind}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 0, "the Telemetry of the istio profiles is checked");
    }

    #[test]
    fn the_collector_fits_the_kubernetes_schema() {
        use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service, core::v1::ServiceAccount};
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        for mesh in ["istio", "linkerd"] {
            let profile = versions.profile(mesh, std::path::Path::new("versions.toml")).unwrap();
            let objects = collector(&profile);
            let account: ServiceAccount = serde_json::from_value(objects[1].clone()).unwrap();
            let deployment: Deployment = serde_json::from_value(objects[2].clone()).unwrap();
            let service: Service = serde_json::from_value(objects[3].clone()).unwrap();
            let pod = deployment.spec.unwrap().template;
            // The pod runs as the account Linkerd's proxies are told is the collector.
            assert_eq!(pod.spec.as_ref().unwrap().service_account_name, account.metadata.name);
            let meshed = pod.metadata.unwrap().annotations.unwrap_or_default().get("linkerd.io/inject").cloned();
            assert_eq!(meshed.as_deref(), (mesh == "linkerd").then_some("enabled"), "{mesh}");
            let ports: Vec<i32> = service.spec.unwrap().ports.unwrap().iter().map(|p| p.port).collect();
            assert_eq!(ports, [4317, 4318, 9411, 16686]);
        }
        let istio = versions.profile("istio", std::path::Path::new("versions.toml")).unwrap();
        assert_eq!(
            istiod_values(&istio)["meshConfig"]["extensionProviders"][0],
            json!({"name": "otel", "opentelemetry": {"service": "jaeger.tracing.svc.cluster.local", "port": 4317}})
        );
        assert_eq!(telemetry()["spec"]["tracing"][0]["providers"][0]["name"], "otel");
    }

    /// A Jaeger bump must keep the query API the harness uses: after v2.20.0
    /// (jaegertracing/jaeger#9260) the v1 `/api/services`, `/api/operations` and `/api/traces`
    /// search are removed and `/api/traces/{id}` stays. The readiness probe asks the api_v3
    /// services route (there at v2.20.0), the trace probe the v1 trace by id.
    #[test]
    fn the_collector_is_probed_on_the_query_api_jaeger_keeps() {
        const REMOVED_AFTER_2_20: [&str; 3] = ["/api/services", "/api/operations", "/api/traces"];
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        assert!(versions.images["jaeger"].starts_with("jaegertracing/jaeger:2.20.0@"), "re-check the paths below");
        for mesh in ["istio", "linkerd", "none"] {
            let profile = versions.profile(mesh, std::path::Path::new("versions.toml")).unwrap();
            let objects = collector(&profile);
            let probe = &objects[2]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"];
            assert_eq!(probe["path"], "/api/v3/services", "{mesh}");
            assert_eq!(probe["port"], profile.versions.tracing.query_port, "{mesh}");
            assert!(!REMOVED_AFTER_2_20.contains(&probe["path"].as_str().unwrap_or_default()));
        }
        let query = crate::probe::trace::query_path("tracing", "jaeger", 16686, "abc");
        assert!(query.ends_with("/proxy/api/traces/abc"), "{query}");
    }

    /// On Linkerd the collector's pods must carry the proxy (the proxies export only to a meshed
    /// collector, and the injector lets pods through bare when it does not answer): a gate after
    /// the collector is applied and before Kong's proxy is checked, i.e. before any scenario.
    /// Istio's collector stays outside the mesh and gets no such gate.
    #[test]
    fn on_linkerd_the_collector_must_carry_its_proxy_before_scenarios() {
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        let collector_gate = |actions: &[Action]| {
            actions
                .iter()
                .position(|a| matches!(a, Action::Ready(Gate::Meshed { namespace, .. }) if namespace == "tracing"))
        };
        let profile = versions.profile("linkerd", std::path::Path::new("versions.toml")).unwrap();
        let actions = environment(&profile);
        let gate = collector_gate(&actions).expect("a gate on the collector's proxy");
        assert_eq!(
            actions[gate],
            Action::Ready(Gate::Meshed {
                namespace: "tracing".into(),
                selector: "app=jaeger".into(),
                mesh: Mesh::Linkerd,
            })
        );
        let applied =
            actions.iter().position(|a| matches!(a, Action::Apply { name, .. } if name == "tracing")).unwrap();
        assert!(applied < gate && gate < actions.len() - 1, "after the collector, before the last gate");
        assert_eq!(actions.last(), Some(&Action::Ready(Gate::ProxyReachable)));
        // The selector finds the collector's own pods.
        let labels = &collector(&profile)[2]["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["app"], "jaeger");
        for mesh in ["istio", "none"] {
            let profile = versions.profile(mesh, std::path::Path::new("versions.toml")).unwrap();
            assert_eq!(collector_gate(&environment(&profile)), None, "{mesh}");
        }
    }

    /// Linkerd's proxies are pointed at the collector's OTLP port and its ServiceAccount's
    /// identity; the three values the chart fails without are all set.
    #[test]
    fn linkerd_proxies_export_to_the_meshed_collector() {
        let versions = crate::profile::Versions::parse(include_str!("../../../versions.toml")).unwrap();
        let profile = versions.profile("linkerd", std::path::Path::new("versions.toml")).unwrap();
        let control_plane = environment(&profile)
            .into_iter()
            .find_map(|a| match a {
                Action::Helm(r) if r.chart == "linkerd-control-plane" => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            control_plane.values["proxy"]["tracing"],
            json!({"enabled": true, "collector": {
                "endpoint": "jaeger.tracing.svc.cluster.local:4317",
                "meshIdentity": {"serviceAccountName": "jaeger", "namespace": "tracing"},
            }})
        );
        // The collector is applied after the injector's webhook is ready, or it would not be meshed.
        let actions = environment(&profile);
        let webhook = actions.iter().position(|a| matches!(a, Action::Ready(Gate::Webhook { .. }))).unwrap();
        let tracing =
            actions.iter().position(|a| matches!(a, Action::Apply { name, .. } if name == "tracing")).unwrap();
        assert!(webhook < tracing);
    }
}
