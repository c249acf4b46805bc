//! The plan of a run: what `e2e` would do, rendered without a cluster.
//!
//! The plan lists, per scenario of the mesh, its namespace and host, the objects its fixtures
//! render to and its steps, after the cluster and the environment: what the stack installs,
//! in order, readiness gates included. `e2e` executes this plan, not a description of it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::profile::Profile;
use crate::scenario::fixture::Manifest;
use crate::scenario::{Catalog, CheckError, NamespaceMetadata, RunContext, Step, load};

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub mesh: String,
    pub profile: String,
    pub kubernetes: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh_version: Option<String>,
    pub run: String,
    /// The kind cluster of the run (the default provider; `e2e --provider` may choose another).
    pub cluster: ClusterPlan,
    /// Images loaded into the kind node before the installs (best effort).
    pub preload: Vec<String>,
    /// What gets installed, in order.
    pub environment: Vec<crate::stack::Action>,
    /// The environment as commands: tool, arguments, input files (relative to the run directory).
    pub steps: Vec<PlanStep>,
    pub scenarios: Vec<ScenarioPlan>,
    /// Selected scenarios that do not load: each fails alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broken: Vec<crate::scenario::Broken>,
    /// `--no-install`: what is discovered instead of installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    pub provider: String,
    pub name: String,
    pub node_image: String,
    /// Host ports mapped to Kong's proxy NodePorts (http, https).
    pub ports: [u16; 2],
    /// The kind config, as written to `kind-config.yaml`.
    pub config: String,
    /// For `existing`: the kubeconfig context used, read only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// For `existing`: where Kong's proxy answers from this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

impl Plan {
    /// Merge the user's values into the releases of their charts: the harness's keys win, and
    /// each key it set over the user's value is recorded on the release for the plan to show.
    pub fn with_user_values(&mut self, user: &[crate::stack::values::UserValues]) {
        for action in &mut self.environment {
            let crate::stack::Action::Helm(release) = action else { continue };
            // Every file given for the chart, in order, layered as `helm -f a -f b` layers them;
            // the harness's keys then go over the result.
            let files: Vec<&crate::stack::values::UserValues> =
                user.iter().filter(|u| u.chart == release.chart).collect();
            let Some(layered) =
                files.iter().map(|u| u.value.clone()).reduce(|a, b| crate::stack::values::layer(&a, &b))
            else {
                continue;
            };
            let (merged, overrides) = crate::stack::values::merge(&release.chart, &layered, &release.values);
            // A mirror of the user's own serves istiod's images: preload them from there.
            if let (Some(hub), Some(version)) = (merged["global"]["hub"].as_str(), self.mesh_version.as_deref())
                && release.chart == "istiod"
            {
                // The chart's image is `<hub>/<name>:<tag>[-<variant>]`, the tag defaulting to the
                // release's version (istio manifests/charts/istio-control/istio-discovery
                // templates/deployment.yaml, values.yaml `global.tag`, `global.variant`).
                let tag = merged["global"]["tag"].as_str().filter(|t| !t.is_empty()).unwrap_or(version);
                let tag = match merged["global"]["variant"].as_str().filter(|v| !v.is_empty()) {
                    Some(variant) => format!("{tag}-{variant}"),
                    None => tag.to_owned(),
                };
                let ours = crate::stack::istio_images(crate::stack::ISTIO_HUB, version);
                let theirs = crate::stack::istio_images(hub, &tag);
                let hub_prefix = format!("{}/", crate::stack::ISTIO_HUB);
                for image in &mut self.preload {
                    if let Some(i) = ours.iter().position(|o| o == image) {
                        image.clone_from(&theirs[i]);
                    } else if let Some(rest) = image.strip_prefix(&hub_prefix) {
                        // The next pin's images, for an upgrade: from the mirror too.
                        *image = format!("{}/{rest}", hub.trim_end_matches('/'));
                    }
                }
            }
            release.values = merged;
            release.overrides = overrides;
            release.user_values = files.iter().map(|u| u.file.clone()).collect();
        }
    }

    /// `--no-install`: the cluster's own Kong and mesh are used as they are, discovered when the
    /// run starts (in `kong_namespace` when given); nothing is installed or preloaded.
    pub fn install_nothing(&mut self, kong_namespace: Option<&str>) {
        self.environment.clear();
        self.steps.clear();
        self.preload.clear();
        self.discover = Some(match kong_namespace {
            Some(ns) => format!("Kong in namespace {ns}"),
            None => "Kong in any namespace".into(),
        });
    }
}

impl ClusterPlan {
    /// The plan of a run on a k3s container (`image`) instead of kind.
    pub fn use_k3s(&mut self, image: &str) {
        self.provider = "k3s".into();
        self.node_image = image.to_owned();
        self.config.clear();
    }

    /// The plan of a run on an existing cluster: nothing is created or deleted.
    pub fn use_existing(&mut self, context: &str, proxy: &str) {
        self.provider = "existing".into();
        self.name.clear();
        self.node_image.clear();
        self.config.clear();
        self.context = Some(context.to_owned());
        self.proxy = Some(proxy.to_owned());
    }
}

/// One command of the environment, as the run executes it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStep {
    pub tool: String,
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioPlan {
    pub name: String,
    /// Runs alone (`exclusive: true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclusive: bool,
    /// Upgrades the mesh (an `upgrade` step): the cluster is not the profile's afterwards.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upgrades: bool,
    /// Of those, an upgrade of the mesh (its next pin's images are then worth preloading).
    #[serde(skip)]
    pub upgrades_mesh: bool,
    pub file: PathBuf,
    pub namespace: String,
    /// What the namespace carries on this mesh: the injection setting and the scenario's own.
    pub namespace_metadata: NamespaceMetadata,
    pub host: String,
    pub objects: Vec<PlannedObject>,
    pub steps: Vec<String>,
    /// The scenario's mutants on this mesh (run with `e2e --mutants`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mutants: Vec<String>,
    #[serde(skip)]
    pub manifests: Vec<Manifest>,
}

/// An object a scenario applies, and the fixture file it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedObject {
    pub fixture: PathBuf,
    #[serde(flatten)]
    pub object: crate::model::ObjectRef,
}

/// Plan run `run` of `profile` over every scenario of the catalog that runs on its mesh, with
/// Kong's proxy on host `ports`.
pub fn build(
    catalog: &Catalog,
    profile: &Profile,
    run: &str,
    ports: crate::cluster::HostPorts,
) -> Result<Plan, CheckError> {
    build_selected(catalog, profile, run, ports, &[])
}

/// [`build`] over the scenarios named in `only` (every one when empty). Files of other scenarios
/// are not read, so a broken one elsewhere is no obstacle; a selected scenario that does not load
/// is listed in `broken` and the others are planned.
pub fn build_selected(
    catalog: &Catalog,
    profile: &Profile,
    run: &str,
    ports: crate::cluster::HostPorts,
    only: &[String],
) -> Result<Plan, CheckError> {
    let mesh = profile.mesh();
    let ctx = RunContext::new(run, mesh);
    let fixtures_dir = catalog.project.fixtures_dir();
    let mut scenarios = Vec::new();
    let mut broken = Vec::new();
    for file in catalog.files()? {
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        if !only.is_empty() && !only.contains(&stem) {
            continue;
        }
        match plan_scenario(catalog, profile, &ctx, &file) {
            Ok(Some(scenario)) => scenarios.push(scenario),
            Ok(None) => {}
            Err(e) => broken.push(crate::scenario::Broken {
                name: stem,
                file: catalog.project.display_path(&file).to_owned(),
                error: e.to_string(),
            }),
        }
    }
    let kind = crate::cluster::KindCluster {
        name: crate::cluster::KindCluster::name_for(&profile.versions.kind.cluster_prefix, mesh.as_str(), run),
        node_image: profile.versions.kind.node_images.get(&profile.pins.kubernetes).cloned().unwrap_or_default(),
        ports,
    };
    let environment = environment_with_stack_manifests(profile, &fixtures_dir)?;
    let mut steps = vec![PlanStep {
        tool: "kind".into(),
        args: kind
            .create(Path::new("kind"), &crate::cluster::RunDir { run: run.to_owned(), path: PathBuf::new() })
            .args,
        inputs: vec!["kind-config.yaml".into()],
    }];
    steps.extend(environment.iter().map(step_of));
    // A run that upgrades the mesh also loads the next pin's images, so the upgrade's window
    // does not wait on the node pulling them. Only a run of that scenario alone upgrades
    // (session::scenarios skips it beside others), so only such a run loads them.
    let mut preload = crate::stack::preload_images(profile);
    if let [only] = scenarios.as_slice()
        && only.upgrades_mesh
        && let Some(next) = profile.next_mesh_pin()
    {
        for image in crate::stack::preload_images(&next) {
            if !preload.contains(&image) {
                preload.push(image);
            }
        }
    }
    Ok(Plan {
        mesh: mesh.to_string(),
        profile: profile.name.clone(),
        kubernetes: profile.pins.kubernetes.clone(),
        mesh_version: profile.pins.mesh_version.clone(),
        run: run.to_owned(),
        preload,
        cluster: ClusterPlan {
            provider: "kind".into(),
            name: kind.name.clone(),
            node_image: kind.node_image.clone(),
            ports: [ports.http, ports.https],
            config: kind.config(),
            context: None,
            proxy: None,
        },
        environment,
        steps,
        scenarios,
        broken,
        discover: None,
    })
}

/// One scenario's plan: `None` when it does not run on the profile's mesh.
fn plan_scenario(
    catalog: &Catalog,
    profile: &Profile,
    ctx: &RunContext,
    file: &Path,
) -> Result<Option<ScenarioPlan>, CheckError> {
    let mesh = profile.mesh();
    let fixtures_dir = catalog.project.fixtures_dir();
    if !catalog.meshes_of(file)?.contains(&mesh) {
        return Ok(None);
    }
    let loaded = load(file, &fixtures_dir, ctx, profile)?;
    let manifests = loaded.render_fixtures(&fixtures_dir)?;
    crate::scenario::mutant::check(&loaded, mesh, &manifests)?;
    crate::scenario::scope::check(&loaded, &manifests)?;
    crate::scenario::feasible::check(&loaded, &manifests)?;
    let var = |name: &str| loaded.vars.get(name).unwrap_or_default().to_owned();
    Ok(Some(ScenarioPlan {
        name: loaded.scenario.name.value.clone(),
        exclusive: loaded.scenario.exclusive,
        upgrades: loaded.scenario.steps.iter().any(Step::upgrades),
        upgrades_mesh: loaded
            .scenario
            .steps
            .iter()
            .flat_map(Step::upgrade_parts)
            .any(|p| matches!(p, crate::scenario::UpgradePart::Mesh(_))),
        file: catalog.project.display_path(file).to_owned(),
        namespace: var("namespace"),
        namespace_metadata: loaded.scenario.namespace.metadata(mesh),
        host: var("host"),
        objects: manifests
            .iter()
            .map(|m| PlannedObject {
                fixture: m.file.strip_prefix(&fixtures_dir).unwrap_or(&m.file).to_owned(),
                object: crate::model::ObjectRef {
                    api_version: m.api_version.clone(),
                    kind: m.kind.clone(),
                    name: m.name.clone(),
                    namespace: m.namespace.clone(),
                },
            })
            .collect(),
        steps: loaded.scenario.steps.iter().map(describe).collect(),
        mutants: loaded.scenario.mutants.iter().filter(|m| m.applies_to(mesh)).map(|m| m.describe()).collect(),
        manifests,
    }))
}

/// The profile's environment, with the manifests the stack applies from fixtures/ added right
/// after Kong's release: they are Kong resources (e.g. Linkerd's header guard, a
/// KongClusterPlugin), so Kong's CRDs must exist, and they must be in place before any scenario
/// gives Kong a route.
fn environment_with_stack_manifests(
    profile: &Profile,
    fixtures_dir: &Path,
) -> Result<Vec<crate::stack::Action>, CheckError> {
    let mut actions = crate::stack::environment(profile);
    let vars = crate::scenario::vars_for("stack", &RunContext::offline(profile.mesh()), profile);
    let kong_at = actions
        .iter()
        .position(|a| matches!(a, crate::stack::Action::Helm(r) if r.name == profile.versions.kong.release));
    let mut stack = Vec::new();
    let mut gates = Vec::new();
    for file in crate::stack::kong::stack_manifests(profile.mesh()) {
        let objects: Vec<serde_json::Value> =
            crate::stack::kong::load_stack_manifest(fixtures_dir, file, &vars)?.into_iter().map(|m| m.object).collect();
        // A Gateway is ready when KIC has programmed it.
        for o in objects.iter().filter(|o| o["kind"] == "Gateway") {
            gates.push(crate::stack::Action::Ready(crate::stack::Gate::GatewayProgrammed {
                // Applied where it names, else in `default` (as the API server places it).
                namespace: o["metadata"]["namespace"].as_str().unwrap_or("default").to_owned(),
                name: o["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            }));
        }
        let name = Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("stack").to_owned();
        stack.push(crate::stack::Action::Apply { name, objects });
    }
    stack.extend(gates);
    let at = kong_at.map_or(actions.len(), |i| i + 1);
    actions.splice(at..at, stack);
    Ok(actions)
}

/// The command behind one action (kube-rs actions are named `kube-apply` and `wait`).
fn step_of(action: &crate::stack::Action) -> PlanStep {
    use crate::stack::Action;
    match action {
        Action::Helm(r) => PlanStep {
            tool: "helm".into(),
            args: r.helm_args(Path::new("")),
            inputs: std::iter::once(r.values_file(Path::new("")).display().to_string())
                .chain(r.set_files.iter().map(|(_, f)| f.clone()))
                .collect(),
        },
        Action::Apply { name, .. } => PlanStep {
            tool: "kube-apply".into(),
            args: vec!["--server-side".into(), "--field-validation=Strict".into()],
            inputs: vec![format!("manifests/{name}.yaml")],
        },
        Action::Crds { name, version, files } => PlanStep {
            tool: "kube-apply".into(),
            args: vec!["--server-side".into(), "--field-validation=Strict".into()],
            inputs: files
                .iter()
                .map(|f| format!("tools/{name}-{version}/{} (sha256-verified download)", f.file))
                .collect(),
        },
        Action::LinkerdIdentity => PlanStep {
            tool: "generate".into(),
            args: vec!["ecdsa-p256-trust-anchor-and-issuer".into()],
            inputs: vec![],
        },
        Action::ChartCrds(r) => PlanStep { tool: "helm".into(), args: r.show_crds_args(), inputs: vec![] },
        Action::Relabel { .. } => {
            PlanStep { tool: "kube-patch".into(), args: vec![crate::stack::install::describe(action)], inputs: vec![] }
        }
        Action::Ready(gate) => PlanStep { tool: "wait".into(), args: vec![gate.to_string()], inputs: vec![] },
    }
}

/// One line per step, for people.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Apply(s) => {
            format!("apply {} (eventually, {})", list(s.fixtures.iter().map(|f| f.value.as_str())), s.timeout)
        }
        Step::Delete(s) => match &s.resource {
            Some(r) => format!("delete {}/{} (eventually, {})", r.kind, r.name, s.timeout),
            None => format!("delete {} (eventually, {})", list(s.fixtures.iter().map(|f| f.value.as_str())), s.timeout),
        },
        Step::Wait(s) => {
            format!("wait {}/{} {} (eventually, {})", s.resource.kind, s.resource.name, s.condition, s.timeout)
        }
        Step::Http(s) => format!(
            "http {} {} (converge {}x within {})",
            s.request.method, s.request.path, s.converge.passes, s.converge.within
        ),
        Step::Split(s) => format!(
            "split {} over {:?} ±{} (sequential, ≤{} requests, {})",
            s.request.path, s.weights, s.tolerance, s.max_requests, s.timeout
        ),
        Step::Trace(s) => {
            let e = &s.expect;
            let mut out = format!("trace {} with {} context expecting {:?}", s.request.path, s.context, e.services);
            if !e.absent.is_empty() {
                out += &format!(", none from {:?}", e.absent);
            }
            if !e.backend.is_empty() {
                let carried: Vec<String> = e.backend.iter().map(|(f, c)| format!("{f}: {c}")).collect();
                out += &format!(", backend receives {}", carried.join(", "));
            }
            out + &format!(" ({}, then asked again after {})", s.timeout, e.quiet)
        }
        Step::RateLimit(s) => {
            format!("rate-limit {} at {} per {} (fresh window, {})", s.request.path, s.limit, s.window, s.timeout)
        }
        Step::FromPod(s) => format!(
            "from-pod ({}) {} {} (converge {}x within {})",
            if s.client.meshed { "meshed" } else { "unmeshed" },
            s.method,
            s.url,
            s.converge.passes,
            s.converge.within
        ),
        Step::ExpectResource(s) => {
            format!("expect-resource {}/{} (eventually, {})", s.resource.kind, s.resource.name, s.timeout)
        }
        Step::MeshMembership(s) => format!(
            "mesh-membership: pods {} {} the mesh proxy (eventually, {})",
            s.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            if s.meshed { "carry" } else { "do not carry" },
            s.timeout
        ),
        Step::Load(s) => {
            let latency = s.budget.latency.map(|l| format!(", p{} under {}", l.percentile, l.max)).unwrap_or_default();
            let during: Vec<String> = s.during.iter().map(|d| format!("[{}]", describe(d))).collect();
            format!(
                "load {} {} at {}/s from {} before to {} after, budget: at most {}% failed, outages up to {}{latency}; during: {}",
                s.request.method,
                s.request.path,
                s.rate,
                s.warmup,
                s.cooldown,
                s.budget.errors * 100.0,
                s.budget.outage,
                during.join(", ")
            )
        }
        Step::Restart(s) => format!("restart {} (rolling, until rolled out, {})", s.target, s.timeout),
        Step::Upgrade(s) => {
            let how = match s.part {
                crate::scenario::UpgradePart::Mesh(crate::scenario::MeshStrategy::InPlace) => {
                    "the mesh to its next pin in versions.toml (its charts in place, then its gates"
                }
                crate::scenario::UpgradePart::Mesh(crate::scenario::MeshStrategy::Canary) => {
                    "the mesh to its next pin in versions.toml as a canary revision (base in place, the new istiod \
                     beside the old, its gates, Kong's and the scenario's namespaces relabelled to the revision"
                }
                crate::scenario::UpgradePart::Kong => {
                    "Kong's chart to its next pin in versions.toml (its custom resource definitions, the release in place, Kong's gates"
                }
            };
            format!("upgrade {how}, {})", s.timeout)
        }
        Step::Metrics(s) => {
            let target = match &s.target {
                crate::scenario::MetricsTarget::Kong => "kong".to_owned(),
                crate::scenario::MetricsTarget::MeshProxy { selector } => format!("the mesh proxy of {selector:?}"),
                crate::scenario::MetricsTarget::Ztunnel => "ztunnel".to_owned(),
            };
            let names = list(s.expect.iter().map(|e| e.name.as_str()));
            format!("metrics from {target} expecting {names} (eventually, {})", s.timeout)
        }
    }
}

/// ` (labels a=b; annotations c=d)`, or nothing.
fn metadata(m: &NamespaceMetadata) -> String {
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    };
    let mut parts = Vec::new();
    if !m.labels.is_empty() {
        parts.push(format!("labels {}", pairs(&m.labels)));
    }
    if !m.annotations.is_empty() {
        parts.push(format!("annotations {}", pairs(&m.annotations)));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join("; ")) }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plan for mesh {} (profile {}, Kubernetes {}), run {}",
            self.mesh, self.profile, self.kubernetes, self.run
        )?;
        if let Some(v) = &self.mesh_version {
            writeln!(f, "  mesh version {v}")?;
        }
        let c = &self.cluster;
        match c.provider.as_str() {
            "existing" => writeln!(
                f,
                "cluster: the existing context `{}` (read only: no cluster is created or deleted), Kong proxy at {}",
                c.context.as_deref().unwrap_or("?"),
                c.proxy.as_deref().unwrap_or("?")
            )?,
            "k3s" => writeln!(
                f,
                "cluster: k3s in a container ({}), Kong proxy on 127.0.0.1:{} (http) and :{} (https)",
                c.node_image, c.ports[0], c.ports[1]
            )?,
            _ if c.ports == [0, 0] => writeln!(
                f,
                "cluster: kind {} ({}), Kong proxy on two free 127.0.0.1 ports chosen when the run starts",
                c.name, c.node_image
            )?,
            _ => writeln!(
                f,
                "cluster: kind {} ({}), Kong proxy on 127.0.0.1:{} (http) and :{} (https)",
                c.name, c.node_image, c.ports[0], c.ports[1]
            )?,
        }
        let kong = self.environment.iter().find_map(|a| match a {
            crate::stack::Action::Helm(r) if r.chart == "ingress" => Some(&r.values),
            _ => None,
        });
        if let Some(values) = kong {
            let (gateway, kic) = crate::stack::kong::images_in(values);
            writeln!(f, "Kong Gateway {gateway}, Kong Ingress Controller {kic}")?;
        }
        if c.provider == "kind" && !self.preload.is_empty() {
            writeln!(f, "images loaded into the node first: {}", self.preload.join(", "))?;
        }
        if let Some(what) = &self.discover {
            writeln!(
                f,
                "environment: nothing is installed; {what} and the mesh are discovered when the run starts, and \
                 the scenarios run in namespaces of their own"
            )?;
        } else {
            writeln!(f, "environment:")?;
        }
        for action in &self.environment {
            match action {
                crate::stack::Action::Helm(r) => {
                    writeln!(f, "  helm {}", r.helm_args(Path::new("")).join(" "))?;
                    match r.user_values.as_slice() {
                        [] => {}
                        [one] => {
                            writeln!(f, "    values: {} (yours); the harness adds its own over them", one.display())?
                        }
                        many => {
                            let files: Vec<String> = many.iter().map(|p| p.display().to_string()).collect();
                            writeln!(
                                f,
                                "    values: {} (yours, layered in this order: later wins); the harness adds its own over them",
                                files.join(" < ")
                            )?;
                        }
                    }
                    for o in &r.overrides {
                        writeln!(f, "    the harness sets {} = {} (yours: {}): {}", o.key, o.harness, o.user, o.why)?;
                    }
                }
                crate::stack::Action::Apply { name, objects } => {
                    let what: Vec<String> = objects
                        .iter()
                        .map(|o| {
                            format!(
                                "{}/{}",
                                o["kind"].as_str().unwrap_or("?"),
                                o["metadata"]["name"].as_str().unwrap_or("?")
                            )
                        })
                        .collect();
                    writeln!(f, "  apply manifests/{name}.yaml ({})", what.join(", "))?
                }
                other => writeln!(f, "  {}", crate::stack::install::describe(other))?,
            }
        }
        for s in &self.scenarios {
            writeln!(
                f,
                "scenario {} ({})\n  namespace {}{}\n  host {}",
                s.name,
                s.file.display(),
                s.namespace,
                metadata(&s.namespace_metadata),
                s.host
            )?;
            for PlannedObject { fixture, object: o } in &s.objects {
                writeln!(f, "  apply {} {}/{} from {}", o.api_version, o.kind, o.name, fixture.display())?;
            }
            for (i, step) in s.steps.iter().enumerate() {
                writeln!(f, "  step {}: {step}", i + 1)?;
            }
            for mutant in &s.mutants {
                writeln!(f, "  {mutant} [with --mutants]")?;
            }
        }
        for b in &self.broken {
            writeln!(f, "scenario {} ({}) DOES NOT LOAD; it fails alone:", b.name, b.file.display())?;
            for line in b.error.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}

/// Why a plan could not be written to disk.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot serialise the plan: {0}")]
    Serialise(String),
    #[error(
        "{dir} holds {entry}, which `plan --out` did not write; choose an empty or new directory \
         (a directory with an earlier plan in it is replaced as a whole)"
    )]
    NotAPlan { dir: PathBuf, entry: PathBuf },
}

/// The file `write` marks its directory with: only a directory holding it (and nothing `write`
/// does not make) is an earlier plan that may be replaced.
const PLAN_MARKER: &str = ".kme2e-plan";

/// What `write` puts at the top of its directory.
const PLAN_ENTRIES: [&str; 8] =
    [PLAN_MARKER, "plan.json", "kind-config.yaml", "replay.sh", "helm", "manifests", "scenarios", "linkerd"];

/// Directories of a plan, and the placeholder files `linkerd/` holds.
const PLAN_DIRS: [&str; 4] = ["helm", "manifests", "scenarios", "linkerd"];
const LINKERD_FILES: [&str; 4] = ["README.txt", "ca.crt", "issuer.crt", "issuer.key"];

/// The first entry under `dir` that an earlier `write` cannot have made (symlinks included);
/// `under` is the plan's top-level directory `dir` is in (`None`: the plan's own directory).
fn foreign_entry(dir: &Path, under: Option<&str>) -> Result<Option<PathBuf>, std::io::Error> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = match under {
            None => PLAN_ENTRIES.contains(&name.as_ref()) && (kind.is_dir() == PLAN_DIRS.contains(&name.as_ref())),
            Some("linkerd") => kind.is_file() && LINKERD_FILES.contains(&name.as_ref()),
            Some(_) => kind.is_dir() || (kind.is_file() && name.ends_with(".yaml")),
        };
        if !ours || kind.is_symlink() {
            return Ok(Some(path));
        }
        if kind.is_dir()
            && let Some(found) = foreign_entry(&path, Some(under.unwrap_or(&name)))?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// A file name of `[A-Za-z0-9._-]` only: other characters become `_`.
fn safe_file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect()
}

/// Write `plan.json` and `scenarios/<name>/<nn>-<kind>-<name>.yaml` (the objects as they would be
/// applied) into `dir`, which must be new, empty or an earlier plan: the plan is written beside
/// it first and then takes its place, so no file of an earlier plan stays behind and nothing
/// else is ever deleted.
pub fn write(plan: &Plan, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Io { path, source }
    };
    let existing = match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => true,
        Ok(_) => return Err(WriteError::NotAPlan { dir: dir.to_owned(), entry: dir.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io(dir)(e)),
    };
    if existing {
        let empty = std::fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        let marked = std::fs::symlink_metadata(dir.join(PLAN_MARKER)).is_ok_and(|m| m.is_file());
        if !empty && !marked {
            return Err(WriteError::NotAPlan { dir: dir.to_owned(), entry: dir.join("(no plan marker)") });
        }
        if let Some(entry) = foreign_entry(dir, None).map_err(io(dir))? {
            return Err(WriteError::NotAPlan { dir: dir.to_owned(), entry });
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staging = tempfile::Builder::new().prefix(".plan-").tempdir_in(&parent).map_err(io(&parent))?;
    let written = write_into(plan, staging.path())?;
    std::fs::write(staging.path().join(PLAN_MARKER), "written by `cargo xtask plan --out`; replaced as a whole\n")
        .map_err(io(staging.path()))?;
    // The earlier plan is moved aside (not deleted in place) and removed only once the new one
    // stands where it was.
    let aside = if existing {
        let aside = tempfile::Builder::new().prefix(".plan-old-").tempdir_in(&parent).map_err(io(&parent))?.keep();
        std::fs::rename(dir, aside.join("plan")).map_err(io(dir))?;
        Some(aside)
    } else {
        None
    };
    let staged = staging.keep();
    let moved = std::fs::rename(&staged, dir);
    if let Err(e) = moved {
        let _ = std::fs::remove_dir_all(&staged);
        if let Some(aside) = &aside {
            let _ = std::fs::rename(aside.join("plan"), dir);
            let _ = std::fs::remove_dir(aside);
        }
        return Err(io(dir)(e));
    }
    if let Some(aside) = aside {
        std::fs::remove_dir_all(&aside).map_err(io(&aside))?;
    }
    Ok(written)
}

/// The commands of `plan`'s environment as a shell script to run by hand from the plan's
/// directory: the kind cluster of `kind-config.yaml` (unless a `kubeconfig` is already there),
/// the pinned CRDs downloaded and checked against their sha256, every Helm and apply command as
/// the run issues it, and each readiness gate as a command that waits (with a deadline) for
/// what the run waits for. Where the run generates a file (Linkerd's identity), what to put there.
fn replay_script(plan: &Plan) -> String {
    use crate::stack::{Action, Gate};
    let quote = |arg: &str| {
        if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@".contains(&b)) {
            arg.to_owned()
        } else {
            format!("'{}'", arg.replace('\'', "'\\''"))
        }
    };
    let mut out = format!(
        "#!/bin/sh\n\
         # The environment of this plan, installed by hand as the run installs it: run from this\n\
         # directory. Needs kind, kubectl, curl, sha256sum, docker and Helm 4 (the Helm commands pass\n\
         # --wait=legacy, which Helm 3 does not know). Without ./kubeconfig it creates the kind cluster\n\
         # of kind-config.yaml, writing ./kubeconfig (never ~/.kube/config); with one, it installs\n\
         # into that cluster (set KONG_PROXY=host:port where Kong's proxy answers from here). The run\n\
         # also preloads images into the node; here the node pulls them. Generated by `plan --out`.\n\
         set -eu\n\
         helm version --short | grep -q '^v4\\.' || {{ echo 'replay.sh needs Helm 4 (--wait=legacy)' >&2; exit 1; }}\n\
         # wait_until SECONDS WHAT COMMAND...: COMMAND again every 2 s until it succeeds; past the\n\
         # deadline, stop saying what did not happen.\n\
         wait_until() {{\n\
         \x20 deadline=$(( $(date +%s) + $1 )); what=$2; shift 2\n\
         \x20 until \"$@\" >/dev/null 2>&1; do\n\
         \x20   [ \"$(date +%s)\" -lt \"$deadline\" ] || {{ echo \"timed out waiting: $what\" >&2; exit 1; }}\n\
         \x20   sleep 2\n\
         \x20 done\n\
         }}\n\
         # meshed NAMESPACE SELECTOR CONTAINER: there are such pods, and each lists CONTAINER among its\n\
         # containers or native sidecars (init containers).\n\
         meshed() {{\n\
         \x20 pods=$(kubectl get pods -n \"$1\" -l \"$2\" --kubeconfig kubeconfig \\\n\
         \x20   -o jsonpath='{{range .items[*]}}{{.spec.containers[*].name}} {{.spec.initContainers[*].name}};{{end}}')\n\
         \x20 [ -n \"$pods\" ] || return 1\n\
         \x20 printf '%s' \"$pods\" | tr ';' '\\n' | while read -r names; do\n\
         \x20   [ -n \"$names\" ] || continue\n\
         \x20   found=no\n\
         \x20   for name in $names; do [ \"$name\" = \"$3\" ] && found=yes; done\n\
         \x20   [ \"$found\" = yes ] || exit 1\n\
         \x20 done\n\
         }}\n\
         # redirected NAMESPACE SELECTOR: every selected pod is redirected to ztunnel (ambient:\n\
         # istio-cni's annotation ambient.istio.io/redirection=enabled).\n\
         redirected() {{\n\
         \x20 marks=$(kubectl get pods -n \"$1\" -l \"$2\" --kubeconfig kubeconfig \\\n\
         \x20   -o jsonpath='{{range .items[*]}}{{.metadata.annotations.ambient\\.istio\\.io/redirection}};{{end}}')\n\
         \x20 [ -n \"$marks\" ] || return 1\n\
         \x20 printf '%s' \"$marks\" | tr ';' '\\n' | while read -r mark; do [ \"$mark\" = enabled ] || exit 1; done\n\
         }}\n\
         # webhook_serving NAME: the mutating webhook's Service has a ready endpoint.\n\
         webhook_serving() {{\n\
         \x20 svc=$(kubectl get mutatingwebhookconfiguration \"$1\" --kubeconfig kubeconfig \\\n\
         \x20   -o jsonpath='{{.webhooks[0].clientConfig.service.namespace}} {{.webhooks[0].clientConfig.service.name}}')\n\
         \x20 [ -n \"$svc\" ] || return 1\n\
         \x20 set -- $svc\n\
         \x20 [ -n \"$(kubectl get endpointslices -n \"$1\" -l kubernetes.io/service-name=\"$2\" --kubeconfig kubeconfig \\\n\
         \x20   -o jsonpath='{{.items[*].endpoints[?(@.conditions.ready==true)].addresses[0]}}')\" ]\n\
         }}\n\
         # proxy_answers: Kong's proxy gives any HTTP answer (its own 404 included) from this machine.\n\
         proxy_answers() {{\n\
         \x20 addr=${{KONG_PROXY:-$(docker port {node} {http}/tcp | head -n 1)}}\n\
         \x20 curl -sS -o /dev/null --max-time 5 \"http://$addr/\"\n\
         }}\n\
         {identity}\
         if [ ! -f kubeconfig ]; then\n\
         \x20 kind create cluster --config kind-config.yaml --kubeconfig kubeconfig\n\
         fi\n",
        node = quote(&format!("{}-control-plane", plan.cluster.name)),
        http = crate::cluster::PROXY_HTTP_NODE_PORT,
        // Before anything is created: the run generates Linkerd's identity; here it is yours.
        identity = if plan.environment.contains(&Action::LinkerdIdentity) {
            format!(
                "for f in linkerd/ca.crt linkerd/issuer.crt linkerd/issuer.key; do\n\
                 \x20 if [ ! -s \"$f\" ] || grep -q '^{LINKERD_PLACEHOLDER_MARK}' \"$f\"; then\n\
                 \x20   echo \"replace the placeholders in linkerd/ first (linkerd/README.txt): $f\" >&2; exit 1\n\
                 \x20 fi\n\
                 done\n"
            )
        } else {
            String::new()
        },
    );
    for action in &plan.environment {
        match action {
            Action::Helm(r) => {
                let args: Vec<String> = r.helm_args(Path::new("")).iter().map(|a| quote(a)).collect();
                out += &format!("helm {}\n", args.join(" "));
            }
            Action::Apply { name, .. } => {
                out += &format!(
                    "kubectl apply --server-side --field-validation=Strict -f manifests/{} --kubeconfig kubeconfig\n",
                    quote(&format!("{name}.yaml"))
                );
            }
            Action::Crds { name, version, files } => {
                out +=
                    &format!("# {name} {version} CRDs, as pinned in versions.toml, each checked against its sha256\n");
                out += "mkdir -p crds\n";
                for f in files {
                    let local = quote(&format!("crds/{}", f.file));
                    out += &format!("curl -fsSL -o {local} {}\n", quote(&f.url));
                    out += &format!("echo {} | sha256sum -c -\n", quote(&format!("{}  crds/{}", f.sha256, f.file)));
                    out += &format!("kubectl apply --server-side -f {local} --kubeconfig kubeconfig\n");
                }
            }
            Action::LinkerdIdentity => {
                out += "# Linkerd's trust anchor and issuer: the run generates them; here, the files in linkerd/\n";
            }
            Action::ChartCrds(r) => {
                let args: Vec<String> = r.show_crds_args().iter().map(|a| quote(a)).collect();
                // Helm created these CRDs: taking their fields over needs the conflicts forced,
                // as the harness's own server-side apply does.
                out += &format!(
                    "helm {} | kubectl apply --server-side --force-conflicts -f - --kubeconfig kubeconfig\n",
                    args.join(" ")
                );
            }
            Action::Relabel { namespace, labels } => {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| quote(&v.as_ref().map_or_else(|| format!("{k}-"), |v| format!("{k}={v}"))))
                    .collect();
                out += &format!(
                    "kubectl label namespace {} {} --overwrite --kubeconfig kubeconfig\n",
                    quote(namespace),
                    labels.join(" ")
                );
            }
            Action::Ready(gate) => {
                out += &format!("# wait: {gate}\n");
                out += &match gate {
                    Gate::Crds { names } => {
                        let crds: Vec<String> = names.iter().map(|n| quote(&format!("crd/{n}"))).collect();
                        format!(
                            "kubectl wait --for=condition=Established --timeout=2m {} --kubeconfig kubeconfig\n",
                            crds.join(" ")
                        )
                    }
                    Gate::Deployments { namespace } => format!(
                        "kubectl wait --for=condition=Available --timeout=10m deployment --all -n {} --kubeconfig kubeconfig\n",
                        quote(namespace)
                    ),
                    Gate::Webhook { configuration } => format!(
                        "wait_until 300 {} webhook_serving {}\n",
                        quote(&gate.to_string()),
                        quote(configuration)
                    ),
                    Gate::Meshed { namespace, selector, mesh } => match mesh.proxy_container() {
                        Some(container) => format!(
                            "wait_until 300 {} meshed {} {} {}\n",
                            quote(&gate.to_string()),
                            quote(namespace),
                            quote(selector),
                            quote(container)
                        ),
                        None => format!(
                            "wait_until 300 {} redirected {} {}\n",
                            quote(&gate.to_string()),
                            quote(namespace),
                            quote(selector)
                        ),
                    },
                    Gate::ProxyReachable => format!("wait_until 120 {} proxy_answers\n", quote(&gate.to_string())),
                    Gate::GatewayProgrammed { namespace, name } => format!(
                        "kubectl wait --for=condition=Programmed --timeout=5m gateway/{} -n {} --kubeconfig kubeconfig\n",
                        quote(name),
                        quote(namespace)
                    ),
                    Gate::DaemonSet { namespace, name } => format!(
                        "kubectl rollout status --timeout=10m daemonset/{} -n {} --kubeconfig kubeconfig\n",
                        quote(name),
                        quote(namespace)
                    ),
                };
            }
        }
    }
    out
}

/// How each placeholder identity file begins (replay.sh refuses to install with one).
const LINKERD_PLACEHOLDER_MARK: &str = "placeholder for";

/// What to put in place of the identity files a run generates, for replaying by hand.
const LINKERD_PLACEHOLDER: &str = "Placeholder: a run generates Linkerd's trust anchor (ca.crt) and issuer \
(issuer.crt, issuer.key), ECDSA P-256, fresh per run, into its run directory. To replay the Helm \
commands by hand, make your own as Linkerd's docs show (https://linkerd.io/2/tasks/generate-certificates/),\n\
e.g. with step:\n  step certificate create root.linkerd.cluster.local ca.crt ca.key --profile root-ca \
--no-password --insecure\n  step certificate create identity.linkerd.cluster.local issuer.crt issuer.key \
--profile intermediate-ca --not-after 8760h --no-password --insecure --ca ca.crt --ca-key ca.key\n";

fn write_into(plan: &Plan, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    let written = std::cell::RefCell::new(Vec::new());
    let put = |path: PathBuf, text: String| -> Result<(), WriteError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| WriteError::Io { path: parent.to_owned(), source })?;
        }
        written.borrow_mut().push(path.strip_prefix(dir).unwrap_or(&path).to_owned());
        std::fs::write(&path, text).map_err(|source| WriteError::Io { path, source })
    };
    if !plan.environment.is_empty() {
        put(dir.join("replay.sh"), replay_script(plan))?;
    }
    let json = serde_json::to_string_pretty(plan).map_err(|e| WriteError::Serialise(e.to_string()))?;
    put(dir.join("plan.json"), json + "\n")?;
    put(dir.join("kind-config.yaml"), plan.cluster.config.clone())?;
    for action in &plan.environment {
        match action {
            crate::stack::Action::Helm(r) => {
                let yaml = serde_saphyr::to_string(&r.values).map_err(|e| WriteError::Serialise(e.to_string()))?;
                put(dir.join("helm").join(format!("{}.values.yaml", r.name)), yaml)?;
            }
            crate::stack::Action::Apply { name, objects } => {
                let docs: Result<Vec<String>, _> = objects.iter().map(serde_saphyr::to_string).collect();
                let docs = docs.map_err(|e| WriteError::Serialise(e.to_string()))?;
                put(dir.join("manifests").join(format!("{name}.yaml")), docs.join("---\n"))?;
            }
            crate::stack::Action::LinkerdIdentity => {
                put(dir.join("linkerd").join("README.txt"), LINKERD_PLACEHOLDER.to_owned())?;
                for file in [
                    crate::stack::LINKERD_TRUST_ANCHOR,
                    crate::stack::LINKERD_ISSUER_CERT,
                    crate::stack::LINKERD_ISSUER_KEY,
                ] {
                    put(dir.join(file), format!("{LINKERD_PLACEHOLDER_MARK} {file}: see linkerd/README.txt\n"))?;
                }
            }
            crate::stack::Action::Crds { .. }
            | crate::stack::Action::ChartCrds(_)
            | crate::stack::Action::Relabel { .. }
            | crate::stack::Action::Ready(_) => {}
        }
    }
    for s in &plan.scenarios {
        for (i, m) in s.manifests.iter().enumerate() {
            let yaml = serde_saphyr::to_string(&m.object).map_err(|e| WriteError::Serialise(e.to_string()))?;
            // Kinds and names are checked at load; the file name is still made of safe characters
            // only (RBAC names may hold `:`), so no object can name a path.
            let file = safe_file_name(&format!("{:02}-{}-{}.yaml", i + 1, m.kind.to_lowercase(), m.name));
            put(dir.join("scenarios").join(&s.name).join(file), yaml)?;
        }
    }
    let mut written = written.into_inner();
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linkerd_plan() -> Plan {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = Catalog::open(crate::project::Project::at(&root)).unwrap();
        let profile = catalog.versions.profile("linkerd", Path::new("versions.toml")).unwrap();
        build(&catalog, &profile, "r1", crate::cluster::HostPorts { http: 1, https: 2 }).unwrap()
    }

    /// A mirror in the user's istiod values is where the run's Istio images come from: the
    /// values keep it, and the images preloaded into the node are the mirror's.
    #[test]
    fn a_users_istio_mirror_is_what_the_node_preloads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = Catalog::open(crate::project::Project::at(&root)).unwrap();
        let profile = catalog.versions.profile("istio", Path::new("versions.toml")).unwrap();
        let mut plan = build(&catalog, &profile, "r1", crate::cluster::HostPorts::AT_RUN_TIME).unwrap();
        let version = plan.mesh_version.clone().unwrap();
        let user = crate::stack::values::UserValues {
            chart: "istiod".into(),
            file: "istiod.yaml".into(),
            value: serde_json::json!({"global": {"hub": "mirror.acme.internal/istio"}}),
        };
        plan.with_user_values(std::slice::from_ref(&user));
        let mirrored = crate::stack::istio_images("mirror.acme.internal/istio", &version);
        assert!(mirrored.iter().all(|i| plan.preload.contains(i)), "{:?}", plan.preload);
        // A tag and variant of the user's are the images' too.
        let mut tagged = build(&catalog, &profile, "r1", crate::cluster::HostPorts::AT_RUN_TIME).unwrap();
        let user = crate::stack::values::UserValues {
            value: serde_json::json!({"global": {"hub": "mirror.acme.internal/istio", "tag": "1.30.5-patched", "variant": "distroless"}}),
            ..user
        };
        tagged.with_user_values(&[user]);
        let expected = crate::stack::istio_images("mirror.acme.internal/istio", "1.30.5-patched-distroless");
        assert!(expected.iter().all(|i| tagged.preload.contains(i)), "{:?}", tagged.preload);
        assert!(!plan.preload.iter().any(|i| i.starts_with(crate::stack::ISTIO_HUB)), "{:?}", plan.preload);
        let text = plan.to_string();
        assert!(!text.contains("the harness sets global.hub"), "{text}");
    }

    /// A plan with a mesh upgrade loads the next pin's images too (the upgrade's window does not
    /// wait on pulls); one without loads only its own.
    #[test]
    fn an_upgrade_preloads_the_next_pins_images() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = Catalog::open(crate::project::Project::at(&root)).unwrap();
        let profile = catalog.versions.profile("istio", Path::new("versions.toml")).unwrap();
        let ports = crate::cluster::HostPorts::AT_RUN_TIME;
        let upgrade =
            build_selected(&catalog, &profile, "r1", ports, &["upgrade-istio-canary-under-load".into()]).unwrap();
        let next = crate::stack::istio_images(crate::stack::ISTIO_HUB, "1.31.1");
        assert!(next.iter().all(|i| upgrade.preload.contains(i)), "{:?}", upgrade.preload);
        let plain = build_selected(&catalog, &profile, "r1", ports, &["ingress-basic".into()]).unwrap();
        assert!(!next.iter().any(|i| plain.preload.contains(i)), "{:?}", plain.preload);
        // Kong's upgrade moves no mesh: nothing more to load.
        let kong = build_selected(&catalog, &profile, "r1", ports, &["upgrade-kong-under-load".into()]).unwrap();
        assert!(!next.iter().any(|i| kong.preload.contains(i)), "{:?}", kong.preload);
    }

    /// The same inputs give the same plan: ports are placeholders until a run picks them.
    #[test]
    fn plans_are_deterministic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = Catalog::open(crate::project::Project::at(&root)).unwrap();
        let profile = catalog.versions.profile("istio", Path::new("versions.toml")).unwrap();
        let ports = crate::cluster::HostPorts::AT_RUN_TIME;
        let a = build(&catalog, &profile, "plan", ports).unwrap();
        let b = build(&catalog, &profile, "plan", ports).unwrap();
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        assert!(a.to_string().contains("two free 127.0.0.1 ports chosen when the run starts"));
    }

    /// A dry run describes the provider it would use, never a kind cluster it will not create.
    #[test]
    fn plans_describe_their_provider() {
        let mut plan = linkerd_plan();
        assert!(plan.to_string().contains("cluster: kind kme2e-linkerd-r1"));
        plan.cluster.use_existing("staging", "http://127.0.0.1:8080");
        let text = plan.to_string();
        assert!(text.contains("cluster: the existing context `staging` (read only"), "{text}");
        assert!(!text.contains("kind kme2e"), "{text}");
        plan.cluster.use_k3s("rancher/k3s:v1.35.1-k3s1@sha256:ab");
        assert!(plan.to_string().contains("cluster: k3s in a container (rancher/k3s:v1.35.1-k3s1@sha256:ab)"));
    }

    /// `--out` lists every file it wrote, and its replay script holds every Helm command of the
    /// plan as the run issues it, with placeholders (and how to make the real ones) for the
    /// identity a run generates.
    #[test]
    fn written_plans_list_their_files_and_replay_by_hand() {
        let plan = linkerd_plan();
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let written = write(&plan, &out).unwrap();
        for file in &written {
            assert!(out.join(file).is_file(), "{}", file.display());
        }
        for expected in ["replay.sh", "plan.json", "helm/kong.values.yaml", "linkerd/ca.crt", "linkerd/README.txt"] {
            assert!(written.contains(&PathBuf::from(expected)), "{expected} in {written:?}");
        }
        let script = std::fs::read_to_string(out.join("replay.sh")).unwrap();
        for step in &plan.steps {
            if step.tool == "helm" {
                assert!(script.contains(&format!("helm {}\n", step.args.join(" "))), "{script}");
            }
        }
        assert!(script.contains("-f manifests/kong-ingress-guard.yaml --kubeconfig kubeconfig"), "{script}");
        let readme = std::fs::read_to_string(out.join("linkerd/README.txt")).unwrap();
        assert!(readme.contains("step certificate create root.linkerd.cluster.local"), "{readme}");
    }

    #[test]
    fn replay_arguments_are_quoted_for_the_shell() {
        let mut plan = linkerd_plan();
        for action in &mut plan.environment {
            if let crate::stack::Action::Helm(r) = action {
                r.namespace = "it's; rm -rf /".into();
            }
        }
        let script = replay_script(&plan);
        assert!(script.contains("--namespace 'it'\\''s; rm -rf /'"), "{script}");
    }

    /// Stand-ins for the tools replay.sh calls, each logging its argv to `$LOG`; what they answer
    /// is set by `$HELM_VERSION`, `$PODS` (the containers of Kong's pods, as the jsonpath
    /// prints them) and `$READY` (a webhook endpoint's address, or nothing).
    fn replay_tools(dir: &Path) -> PathBuf {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let tools = [
            ("kind", "touch kubeconfig"),
            ("helm", r#"[ "$1" = version ] && echo "$HELM_VERSION""#),
            (
                "kubectl",
                r#"case "$*" in
  "get pods"*) printf '%s' "$PODS" ;;
  "get mutatingwebhookconfiguration"*) printf 'linkerd linkerd-proxy-injector' ;;
  "get endpointslices"*) printf '%s' "$READY" ;;
esac"#,
            ),
            ("curl", r#"while [ $# -gt 0 ]; do [ "$1" = -o ] && [ "$2" != /dev/null ] && touch "$2"; shift; done"#),
            ("sha256sum", "cat >>\"$LOG\""),
            ("docker", "echo 127.0.0.1:40000"),
        ];
        for (name, body) in tools {
            let file = bin.join(name);
            std::fs::write(&file, format!("#!/bin/sh\necho \"{name} $*\" >>\"$LOG\"\n{body}\nexit 0\n")).unwrap();
            let mut perms = std::fs::metadata(&file).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            std::fs::set_permissions(&file, perms).unwrap();
        }
        bin
    }

    fn run_replay(dir: &Path, script: &str, env: &[(&str, &str)]) -> (std::process::Output, String) {
        let bin = replay_tools(dir);
        let log = dir.join("log");
        let _ = std::fs::remove_file(&log);
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(script).current_dir(dir).env("PATH", path).env("LOG", &log);
        cmd.env("HELM_VERSION", "v4.1.4+g05fa379").env("PODS", "gateway linkerd-proxy;").env("READY", "10.244.0.7");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out, std::fs::read_to_string(&log).unwrap_or_default())
    }

    /// replay.sh replays the whole install as commands, in the plan's order: the kind cluster
    /// of kind-config.yaml, each pinned CRD downloaded and checked against its sum, the Helm
    /// and apply commands, and every gate as a command that waits, ending at Kong's proxy.
    #[test]
    fn replay_script_runs_the_whole_install_in_order() {
        let plan = linkerd_plan();
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        write(&plan, &out).unwrap();
        let script = std::fs::read_to_string(out.join("replay.sh")).unwrap();
        assert!(!script.contains("# then wait"), "no wait is left as a comment");
        // The identity placeholders stop it before anything is installed.
        let (run, log) = run_replay(&out, &script, &[]);
        assert_eq!(run.status.code(), Some(1), "{log}");
        assert!(String::from_utf8_lossy(&run.stderr).contains("replace the placeholders in linkerd/"));
        assert!(!log.contains("kind create"), "nothing is created first: {log}");
        for file in ["ca.crt", "issuer.crt", "issuer.key"] {
            std::fs::write(out.join("linkerd").join(file), "-----BEGIN CERTIFICATE-----\n").unwrap();
        }
        // A missing identity file stops it too (not only a placeholder).
        std::fs::remove_file(out.join("linkerd").join("issuer.key")).unwrap();
        let (run, log) = run_replay(&out, &script, &[]);
        assert_eq!(run.status.code(), Some(1), "{log}");
        assert!(String::from_utf8_lossy(&run.stderr).contains("linkerd/issuer.key"));
        std::fs::write(out.join("linkerd").join("issuer.key"), "-----BEGIN EC PRIVATE KEY-----\n").unwrap();
        let (run, log) = run_replay(&out, &script, &[]);
        assert_eq!(run.status.code(), Some(0), "{}{log}", String::from_utf8_lossy(&run.stderr));
        let commands: Vec<&str> = log.lines().collect();
        let first = |prefix: &str| {
            commands.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}` in {log}"))
        };
        assert_eq!(commands[1], "kind create cluster --config kind-config.yaml --kubeconfig kubeconfig", "{log}");
        let crds = plan
            .environment
            .iter()
            .find_map(|a| match a {
                crate::stack::Action::Crds { files, .. } => Some(files.clone()),
                _ => None,
            })
            .unwrap();
        for f in &crds {
            assert!(log.contains(&format!("curl -fsSL -o crds/{} {}", f.file, f.url)), "{log}");
            assert!(log.contains(&format!("{}  crds/{}", f.sha256, f.file)), "checked against its sum: {log}");
        }
        let established = first("kubectl wait --for=condition=Established");
        let control_plane = first("helm upgrade --install linkerd-control-plane");
        let injector = commands.iter().rposition(|c| c.starts_with("kubectl get endpointslices")).unwrap();
        let kong = first("helm upgrade --install kong");
        let meshed = commands.iter().rposition(|c| c.starts_with("kubectl get pods -n kong")).unwrap();
        let proxy = first("curl -sS -o /dev/null --max-time 5 http://127.0.0.1:40000/");
        assert!(established < control_plane && control_plane < injector && injector < kong, "{log}");
        assert!(kong < meshed && meshed < proxy, "{log}");
        // Helm 3 is refused before anything is done.
        let (run, log) = run_replay(&out, &script, &[("HELM_VERSION", "v3.18.4+gd80839c")]);
        assert_eq!(run.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&run.stderr).contains("needs Helm 4"));
        assert!(!log.contains("kind create"), "{log}");
    }

    /// The gates' shell functions fail on what the run's gates fail on: pods without the proxy
    /// (one of several is enough), no pods at all, a webhook without a ready endpoint.
    #[test]
    fn replay_gates_fail_where_the_runs_gates_fail() {
        let script = replay_script(&linkerd_plan());
        let functions = &script[..script.find("for f in linkerd/").unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let gate = |call: &str, env: &[(&str, &str)]| {
            run_replay(dir.path(), &format!("{functions}\n{call}"), env).0.status.code()
        };
        let meshed = "meshed kong app=gateway linkerd-proxy";
        assert_eq!(gate(meshed, &[("PODS", "gateway linkerd-proxy;gateway linkerd-proxy;")]), Some(0));
        assert_eq!(gate(meshed, &[("PODS", "gateway linkerd-proxy;gateway ;")]), Some(1));
        assert_eq!(gate(meshed, &[("PODS", "gateway ;")]), Some(1));
        assert_eq!(gate(meshed, &[("PODS", "")]), Some(1));
        // A native sidecar (an init container) counts, as in the run's gate.
        assert_eq!(gate(meshed, &[("PODS", "gateway istio-init linkerd-proxy;")]), Some(0));
        // A container whose name only contains the proxy's is not it.
        assert_eq!(gate(meshed, &[("PODS", "gateway linkerd-proxy-shadow;")]), Some(1));
        // Ambient: every pod carries istio-cni's `enabled` (the stand-in prints the annotation's
        // value per pod, as the jsonpath does).
        let redirected = "redirected kong app=gateway";
        assert_eq!(gate(redirected, &[("PODS", "enabled;enabled;")]), Some(0));
        assert_eq!(gate(redirected, &[("PODS", "enabled;;")]), Some(1), "one pod not redirected");
        assert_eq!(gate(redirected, &[("PODS", "pending;")]), Some(1));
        assert_eq!(gate(redirected, &[("PODS", "")]), Some(1), "no pods");
        assert_eq!(gate("webhook_serving linkerd-proxy-injector-webhook-config", &[]), Some(0));
        assert_eq!(gate("webhook_serving linkerd-proxy-injector-webhook-config", &[("READY", "")]), Some(1));
    }

    /// `--out` replaces an earlier plan as a whole (no stale file survives) and refuses a
    /// directory holding anything it did not write.
    #[test]
    fn writing_replaces_an_earlier_plan_and_nothing_else() {
        let plan = linkerd_plan();
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        write(&plan, &out).unwrap();
        assert!(out.join("plan.json").is_file() && out.join("helm").is_dir());
        let stale = out.join("scenarios").join("gone").join("01-x.yaml");
        std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
        std::fs::write(&stale, "old").unwrap();
        write(&plan, &out).unwrap();
        assert!(!stale.exists(), "an earlier plan's files do not survive");
        assert!(out.join("plan.json").is_file());
        // A directory of the user's that looks like parts of a plan is not one.
        let user = root.path().join("user");
        std::fs::create_dir_all(user.join("manifests")).unwrap();
        std::fs::write(user.join("manifests").join("app.yaml"), "mine").unwrap();
        let err = write(&plan, &user).unwrap_err().to_string();
        assert!(err.contains("no plan marker"), "{err}");
        assert!(user.join("manifests").join("app.yaml").is_file());
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let err = write(&plan, &out).unwrap_err().to_string();
        assert!(err.contains("notes.txt") && err.contains("did not write"), "{err}");
        assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
        let mut leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        leftovers.sort();
        assert_eq!(leftovers, ["out", "user"], "no staging directory stays behind");
        #[cfg(unix)]
        {
            let linked = root.path().join("linked");
            std::fs::create_dir(&linked).unwrap();
            std::os::unix::fs::symlink("/etc", linked.join("helm")).unwrap();
            assert!(write(&plan, &linked).unwrap_err().to_string().contains("did not write"));
        }
        assert_eq!(safe_file_name("01-clusterrole-system:x/../y.yaml"), "01-clusterrole-system_x_.._y.yaml");
    }

    /// The guide's Linkerd control runs in a namespace without the injection annotation; every
    /// other Linkerd scenario's namespace carries it, and plan.json says so.
    #[test]
    fn plan_json_shows_each_namespaces_injection() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = Catalog::open(crate::project::Project::at(&root)).unwrap();
        let profile = catalog.versions.profile("linkerd", Path::new("versions.toml")).unwrap();
        let plan = build(&catalog, &profile, "r1", crate::cluster::HostPorts { http: 1, https: 2 }).unwrap();
        let json = serde_json::to_value(&plan).unwrap();
        let scenarios = json["scenarios"].as_array().unwrap();
        assert!(scenarios.len() > 2);
        for s in scenarios {
            let inject = &s["namespace_metadata"]["annotations"]["linkerd.io/inject"];
            if s["name"] == "seed-linkerd-as-written" {
                assert!(inject.is_null(), "{s}");
            } else {
                assert_eq!(inject, "enabled", "{}", s["name"]);
            }
        }
    }
}
