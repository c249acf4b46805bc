//! The harness's hands on the API server (kube-rs): server-side apply with strict field
//! validation, run labels on everything it creates, and the readiness questions the stack and
//! the scenarios ask. Each question is one call that answers "ready" or "not yet: <what was
//! seen>"; the waiting (deadline, last observation) is `check::converge::eventually`.

use std::fmt;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde_json::Value;

use crate::attempt::Attempt;

/// The field manager of every apply, and the label prefix of everything the harness creates.
pub const FIELD_MANAGER: &str = "kme2e";
/// Every object the harness applies carries the run it belongs to; cleanup deletes only these.
pub const RUN_LABEL: &str = "kme2e.dev/run";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{what} has no {field}")]
    Malformed { what: String, field: &'static str },
    #[error("the API server does not know {api_version} {kind} (is its CRD installed?): {reason}")]
    UnknownKind { api_version: String, kind: String, reason: String },
    #[error("applying {kind}/{name}: {reason}")]
    Apply {
        kind: String,
        name: String,
        reason: String,
        /// The API server's own `Status.message`, when it answered with one.
        server_message: Option<String>,
    },
    #[error("{doing}: {reason}")]
    Api { doing: String, reason: String },
    #[error("refused: {0}")]
    OutOfScope(String),
}

/// Decides whether an object may be written, given whether discovery says its kind is
/// cluster-scoped (`scenario::scope::guard` for scenarios).
pub type ScopeGuard<'a> = &'a (dyn Fn(&Value, bool) -> Result<(), String> + Sync);

/// What a readiness question saw, printed as is in "last seen".
#[derive(Clone, PartialEq, Eq)]
pub struct Seen(pub String);

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn api_error(doing: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
    let doing = doing.into();
    move |e| KubeError::Api { doing, reason: e.to_string() }
}

/// `object` with the run label added.
pub fn labelled(mut object: Value, run: &str) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| Value::Object(Default::default()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(RUN_LABEL.to_owned(), Value::String(run.to_owned()));
        }
    }
    object
}

/// The dynamic API of `api_version`/`kind`, namespaced to `namespace` when the kind is.
pub async fn dynamic_api(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Result<Api<DynamicObject>, KubeError> {
    let (api, _) = scoped_api(client, api_version, kind, namespace).await?;
    Ok(api)
}

/// [`dynamic_api`], and whether discovery says the kind is cluster-scoped.
async fn scoped_api(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Result<(Api<DynamicObject>, bool), KubeError> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await.map_err(|e| match e {
        // Only the API server saying it serves no such group/version or kind is "unknown": a
        // connection, auth or aggregation failure is not (kube-client discovery/apigroup.rs
        // query_gvk: a 404 for the group version, MissingKind for the kind).
        kube::Error::Api(ref status) if status.code == 404 => {
            KubeError::UnknownKind { api_version: api_version.to_owned(), kind: kind.to_owned(), reason: e.to_string() }
        }
        kube::Error::Discovery(
            kube::error::DiscoveryError::MissingKind(_) | kube::error::DiscoveryError::MissingApiGroup(_),
        ) => {
            KubeError::UnknownKind { api_version: api_version.to_owned(), kind: kind.to_owned(), reason: e.to_string() }
        }
        other => KubeError::Api { doing: format!("discovering {api_version} {kind}"), reason: other.to_string() },
    })?;
    Ok(match caps.scope {
        Scope::Namespaced => (Api::namespaced_with(client.clone(), namespace.unwrap_or("default"), &resource), false),
        Scope::Cluster => (Api::all_with(client.clone(), &resource), true),
    })
}

/// An object as the API server has it now, as JSON (`None`: it does not exist).
pub async fn get(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
) -> Result<Option<Value>, KubeError> {
    let api = dynamic_api(client, api_version, kind, namespace).await?;
    let found = api.get_opt(name).await.map_err(api_error(format!("reading {kind}/{name}")))?;
    Ok(found.map(|o| serde_json::to_value(o).unwrap_or_default()))
}

/// Which object a write reaches, as a guard judges it: the namespace is the one the request
/// goes to (`default` when a namespaced object names none), none for cluster-scoped kinds.
fn identity(api_version: &str, kind: &str, name: &str, namespace: Option<&str>, cluster_scoped: bool) -> Value {
    let namespace = (!cluster_scoped).then(|| namespace.unwrap_or("default"));
    serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}})
}

/// Delete an object; one that is already gone is fine.
pub async fn delete(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
) -> Result<(), KubeError> {
    delete_guarded(client, api_version, kind, name, namespace, &|_, _| Ok(())).await
}

/// [`delete`], after `guard` accepted the object (as `{apiVersion, kind, metadata: {name,
/// namespace}}`) with the scope discovery reports.
pub async fn delete_guarded(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    guard: ScopeGuard<'_>,
) -> Result<(), KubeError> {
    delete_guarded_with(client, api_version, kind, name, namespace, guard, &DeleteParams::default()).await
}

/// [`delete_guarded`] with foreground propagation: the API server keeps the object, with the
/// `foregroundDeletion` finalizer, until the garbage collector has deleted every dependent
/// that blocks its owner (a Deployment's ReplicaSets, and their pods), so "gone" means its
/// pods are gone too (kubernetes/website content/en/docs/concepts/architecture/
/// garbage-collection.md, "Foreground cascading deletion"; the default, background, removes the
/// owner at once and leaves its pods terminating).
pub async fn delete_guarded_foreground(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    guard: ScopeGuard<'_>,
) -> Result<(), KubeError> {
    delete_guarded_with(client, api_version, kind, name, namespace, guard, &DeleteParams::foreground()).await
}

async fn delete_guarded_with(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    guard: ScopeGuard<'_>,
    params: &DeleteParams,
) -> Result<(), KubeError> {
    let (api, cluster_scoped) = scoped_api(client, api_version, kind, namespace).await?;
    guard(&identity(api_version, kind, name, namespace, cluster_scoped), cluster_scoped)
        .map_err(KubeError::OutOfScope)?;
    match api.delete(name, params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(api_error(format!("deleting {kind}/{name}"))(e)),
    }
}

/// Delete every `api_version`/`kind` object (cluster-scoped) carrying run label `run`: what a
/// scenario created outside its namespace. Returns how many were deleted.
pub async fn delete_labelled(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    run: &str,
    owned: impl Fn(&str) -> bool,
) -> Result<usize, KubeError> {
    let api = match dynamic_api(client, api_version, kind, None).await {
        Ok(api) => api,
        // The kind is not served (its CRD is not installed): nothing of it can exist.
        Err(KubeError::UnknownKind { .. }) => return Ok(0),
        Err(e) => return Err(e),
    };
    let params = kube::api::ListParams::default().labels(&format!("{RUN_LABEL}={run}"));
    let found = api.list(&params).await.map_err(api_error(format!("listing {kind} of run {run}")))?;
    let mut deleted = 0;
    for object in found.items {
        let Some(name) = object.metadata.name.as_deref() else { continue };
        // One scenario's objects only, when scenarios of the run share the cluster.
        if !owned(name) {
            continue;
        }
        match api.delete(name, &Default::default()).await {
            Ok(_) => deleted += 1,
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(api_error(format!("deleting {kind}/{name}"))(e)),
        }
    }
    Ok(deleted)
}

/// Delete namespace `name` only when it carries this run's label: never what the harness did
/// not create. Returns whether it was deleted.
pub async fn delete_run_namespace(client: &kube::Client, name: &str, run: &str) -> Result<bool, KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = api.get_opt(name).await.map_err(api_error(format!("reading namespace {name}")))? else {
        return Ok(false);
    };
    let ours = ns.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)).is_some_and(|v| v == run);
    if !ours {
        return Ok(false);
    }
    api.delete(name, &Default::default()).await.map_err(api_error(format!("deleting namespace {name}")))?;
    Ok(true)
}

/// Server-side apply `object` (strict field validation: an unknown field is an error, as in lint).
pub async fn apply(client: &kube::Client, object: &Value, default_namespace: Option<&str>) -> Result<(), KubeError> {
    apply_guarded(client, object, default_namespace, &|_, _| Ok(())).await
}

/// [`apply`], after `guard` accepted the object with the scope discovery reports: the last
/// check before a scenario's write reaches the API server.
pub async fn apply_guarded(
    client: &kube::Client,
    object: &Value,
    default_namespace: Option<&str>,
    guard: ScopeGuard<'_>,
) -> Result<(), KubeError> {
    let text = |field: &'static str, v: Option<&Value>| {
        v.and_then(Value::as_str).map(str::to_owned).ok_or_else(|| KubeError::Malformed {
            what: format!("an object ({})", object.get("kind").and_then(Value::as_str).unwrap_or("no kind")),
            field,
        })
    };
    let api_version = text("apiVersion", object.get("apiVersion"))?;
    let kind = text("kind", object.get("kind"))?;
    let name = text("metadata.name", object.pointer("/metadata/name"))?;
    let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).or(default_namespace);
    let (api, cluster_scoped) = scoped_api(client, &api_version, &kind, namespace).await?;
    // The guard sees the whole object as it will be sent (content rules, e.g. the untrusted
    // bundle's sandbox), with the identity the API server will give it.
    let mut checked = object.clone();
    if let Some(metadata) = checked.get_mut("metadata").and_then(Value::as_object_mut) {
        let identity = identity(&api_version, &kind, &name, namespace, cluster_scoped);
        metadata.insert("namespace".into(), identity["metadata"]["namespace"].clone());
    }
    guard(&checked, cluster_scoped).map_err(KubeError::OutOfScope)?;
    let params = PatchParams::apply(FIELD_MANAGER).force().validation_strict();
    api.patch(&name, &params, &Patch::Apply(object)).await.map_err(|e| KubeError::Apply {
        kind,
        name,
        server_message: match &e {
            kube::Error::Api(status) => Some(status.message.clone()),
            _ => None,
        },
        reason: e.to_string(),
    })?;
    Ok(())
}

/// Create (or label) a namespace for a run, with extra labels such as the mesh's injection label.
pub async fn ensure_namespace(
    client: &kube::Client,
    name: &str,
    run: &str,
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
) -> Result<(), KubeError> {
    let mut object = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    for (k, v) in labels {
        object["metadata"]["labels"][*k] = Value::String((*v).to_owned());
    }
    for (k, v) in annotations {
        object["metadata"]["annotations"][*k] = Value::String((*v).to_owned());
    }
    let api: Api<Namespace> = Api::all(client.clone());
    // A namespace that exists and is not this run's is someone else's: applying would adopt it
    // (and the run's clean-up would then delete it).
    if let Some(existing) = api.get_opt(name).await.map_err(api_error(format!("reading namespace {name}")))? {
        let ours = existing.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)).is_some_and(|v| v == run);
        if !ours {
            return Err(KubeError::OutOfScope(format!(
                "namespace {name} exists and was not created by run {run}; the harness does not adopt it"
            )));
        }
    }
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(labelled(object, run)))
        .await
        .map_err(api_error(format!("creating namespace {name}")))?;
    Ok(())
}

/// The annotations of CRD `name`, or `None` when the cluster has no such CRD.
pub async fn crd_annotations(
    client: &kube::Client,
    name: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>, KubeError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = api.get_opt(name).await.map_err(api_error(format!("reading CRD {name}")))?;
    Ok(crd.map(|c| c.metadata.annotations.unwrap_or_default()))
}

/// Is the CRD `name` Established?
pub async fn crd_established(client: &kube::Client, name: &str) -> Result<Attempt<Seen>, KubeError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let Some(crd) = api.get_opt(name).await.map_err(api_error(format!("reading CRD {name}")))? else {
        return Ok(Attempt::Fail(Seen(format!("CRD {name} does not exist yet"))));
    };
    let established = crd
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    Ok(if established {
        Attempt::Pass(Seen(format!("CRD {name} Established")))
    } else {
        Attempt::Fail(Seen(format!("CRD {name} exists but is not Established")))
    })
}

/// Whether Gateway `namespace/name` is Programmed, as the API server has it now.
pub async fn gateway_programmed(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Attempt<Seen>, KubeError> {
    match get(client, "gateway.networking.k8s.io/v1", "Gateway", name, Some(namespace)).await? {
        None => Ok(Attempt::Fail(Seen(format!("Gateway {namespace}/{name} does not exist yet")))),
        Some(gateway) => Ok(gateway_is_programmed(&gateway)),
    }
}

/// Whether a Gateway (JSON) is Programmed: its `Programmed` condition True for the current
/// generation (Gateway API v1.3.0 apis/v1/gateway_types.go, `GatewayConditionProgrammed`; KIC
/// sets it once Kong's listeners are configured, after `Accepted` with `Programmed=False/Pending`:
/// KIC v3.5.13 internal/controllers/gateway/gateway_controller.go). Otherwise what it shows.
pub fn gateway_is_programmed(gateway: &Value) -> Attempt<Seen> {
    let generation = gateway.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let conditions = gateway.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let programmed = conditions.iter().find(|c| c["type"] == "Programmed");
    let name = gateway.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    // KIC sets the Gateway's own Programmed without looking at its listeners; a listener on a
    // port Kong does not listen on shows only in `status.listeners` (PortUnavailable, Invalid:
    // KIC v3.5.13 internal/controllers/gateway/gateway_utils.go). Every listener must be
    // programmed too.
    let listeners = gateway.pointer("/spec/listeners").and_then(Value::as_array).cloned().unwrap_or_default();
    let statuses = gateway.pointer("/status/listeners").and_then(Value::as_array).cloned().unwrap_or_default();
    let unprogrammed: Vec<String> = listeners
        .iter()
        .filter_map(|l| l["name"].as_str())
        .filter_map(|listener| {
            let status = statuses.iter().find(|s| s["name"] == listener);
            let condition = status.and_then(|s| {
                s["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Programmed")).cloned()
            });
            match condition {
                Some(c) if c["status"] == "True" => None,
                Some(c) => Some(format!(
                    "listener {} Programmed={} ({})",
                    crate::names::printable(listener),
                    crate::names::printable(c["status"].as_str().unwrap_or("?")),
                    crate::names::printable(c["reason"].as_str().unwrap_or("no reason"))
                )),
                None => Some(format!("listener {} has no Programmed condition yet", crate::names::printable(listener))),
            }
        })
        .collect();
    match programmed {
        Some(c)
            if c["status"] == "True"
                && c["observedGeneration"].as_i64().unwrap_or(generation) >= generation
                && !unprogrammed.is_empty() =>
        {
            Attempt::Fail(Seen(format!("Gateway {name} Programmed, but {}", unprogrammed.join(", "))))
        }
        Some(c) if c["status"] == "True" && c["observedGeneration"].as_i64().unwrap_or(generation) >= generation => {
            Attempt::Pass(Seen(format!("Gateway {name} Programmed")))
        }
        Some(c) => Attempt::Fail(Seen(format!(
            "Gateway {name} Programmed={} ({}: {})",
            crate::names::printable(c["status"].as_str().unwrap_or("?")),
            crate::names::printable(c["reason"].as_str().unwrap_or("no reason")),
            crate::names::printable(c["message"].as_str().unwrap_or(""))
        ))),
        None => Attempt::Fail(Seen(format!("Gateway {name} has no Programmed condition yet"))),
    }
}

/// Whether a Deployment, as the API server answers for it (JSON), is available: the one meaning
/// of "available" for the `wait` step and the stack's `Gate::Deployments`.
///
/// The controller has seen the current spec (`status.observedGeneration >= metadata.generation`),
/// every desired replica runs the current template and no old one is left (`updatedReplicas`
/// and `replicas` equal `spec.replicas`), every one is available (`availableReplicas`), and the
/// `Available` condition is True. This is `kubectl rollout status`'s judgement
/// (kubernetes/kubectl pkg/polymorphichelpers/rollout_status.go, `DeploymentStatusViewer.Status`)
/// plus the condition. The condition alone is not enough: it is True mid-rollout (it only says
/// `maxUnavailable` is respected, old pods included) and stays as it was until the controller has
/// observed a new generation.
pub fn deployment_available(deployment: &Value) -> Attempt<Seen> {
    let number = |pointer: &str| deployment.pointer(pointer).and_then(Value::as_i64);
    let generation = number("/metadata/generation").unwrap_or(0);
    let observed = number("/status/observedGeneration").unwrap_or(0);
    if observed < generation {
        return Attempt::Fail(Seen(format!(
            "generation {generation} not observed by the controller yet (its status is of generation {observed})"
        )));
    }
    // The API server defaults `spec.replicas` to 1 (k8s.io/api apps/v1 `DeploymentSpec.Replicas`).
    let want = number("/spec/replicas").unwrap_or(1);
    let total = number("/status/replicas").unwrap_or(0);
    let updated = number("/status/updatedReplicas").unwrap_or(0);
    let available = number("/status/availableReplicas").unwrap_or(0);
    let conditions = deployment.pointer("/status/conditions").and_then(Value::as_array);
    let condition = conditions
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("missing");
    let old = (total - updated).max(0);
    let seen =
        Seen(format!("{want} desired: {updated} updated, {available} available, {old} old, Available={condition}"));
    if updated == want && total == want && available == want && condition == "True" {
        Attempt::Pass(seen)
    } else {
        Attempt::Fail(seen)
    }
}

/// The workload kinds a rolling restart applies to (apps/v1).
pub const RESTARTABLE: &[&str] = &["Deployment", "DaemonSet", "StatefulSet"];

/// The pod-template annotation `kubectl rollout restart` sets to the time of the restart
/// (kubernetes/kubectl pkg/polymorphichelpers/objectrestarter.go, RFC 3339); a changed template
/// makes the controller roll every pod.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Start a rolling restart of apps/v1 `kind` `namespace/name` as `kubectl rollout restart`
/// does: a strategic merge patch of the template's [`RESTARTED_AT`] to `at`. Returns the
/// generation the patched object has, which the rollout must then reach.
pub async fn restart_workload(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
    at: &str,
) -> Result<i64, KubeError> {
    if !RESTARTABLE.contains(&kind) {
        return Err(KubeError::OutOfScope(format!("{kind} is not a workload a rolling restart applies to")));
    }
    let api = dynamic_api(client, "apps/v1", kind, Some(namespace)).await?;
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}});
    let patched = api
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map_err(api_error(format!("restarting {kind} {namespace}/{name}")))?;
    Ok(patched.metadata.generation.unwrap_or(0))
}

/// `seconds` since the Unix epoch as RFC 3339 UTC (`2026-12-07T18:12:22Z`), the format
/// `kubectl rollout restart` writes (Go's `time.RFC3339`). Civil date from days by Howard
/// Hinnant's `civil_from_days` algorithm.
pub fn rfc3339_utc(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Whether apps/v1 `kind` `namespace/name` has rolled out (at least) `generation`, or whatever
/// generation it is at with `0` (the stack's DaemonSet gates): the
/// Deployment available as the stack's gates judge it ([`deployment_available`]), the DaemonSet
/// on every node ([`daemonset_is_rolled_out`]), the StatefulSet's pods all updated and ready.
pub async fn rolled_out(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
    generation: i64,
) -> Result<Attempt<Seen>, KubeError> {
    let Some(object) = get(client, "apps/v1", kind, name, Some(namespace)).await? else {
        return Ok(Attempt::Fail(Seen(format!("{kind} {namespace}/{name} does not exist yet"))));
    };
    let observed = object.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
    if observed < generation {
        return Ok(Attempt::Fail(Seen(format!(
            "the controller has not seen the restart yet (status of generation {observed}, the restart is {generation})"
        ))));
    }
    Ok(match kind {
        "Deployment" => deployment_available(&object),
        "DaemonSet" => daemonset_is_rolled_out(&object),
        _ => statefulset_rolled_out(&object),
    })
}

/// The Deployments of `namespace` whose pod template carries every label of `selector`
/// (`a=b,c=d`), with their `metadata.generation`: Kong's gateway by its pods' labels, which is
/// what the harness knows of it (a user's Deployment may select by more).
pub async fn deployments_running(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<(String, i64)>, KubeError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let list =
        api.list(&ListParams::default()).await.map_err(api_error(format!("listing Deployments in {namespace}")))?;
    let wanted: Vec<(&str, &str)> = selector.split(',').filter_map(|kv| kv.split_once('=')).collect();
    Ok(list
        .items
        .into_iter()
        .filter(|d| {
            let labels = d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.as_ref());
            labels.is_some_and(|l| wanted.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        })
        .filter_map(|d| Some((d.metadata.name?, d.metadata.generation.unwrap_or(0))))
        .collect())
}

/// Set (`Some`) or remove (`None`) labels of namespace `name` with a JSON merge patch, which
/// touches no other label.
pub async fn relabel_namespace(
    client: &kube::Client,
    name: &str,
    labels: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<(), KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let patch = serde_json::json!({"metadata": {"labels": labels}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(api_error(format!("labelling namespace {name}")))?;
    Ok(())
}

/// The running pods of apps/v1 `kind` `namespace/name`: those its `spec.selector.matchLabels`
/// selects, without the ones being deleted (a rollout's old pods while they drain) or finished.
/// A selector by expressions is refused rather than read wrong. Another workload whose pods the
/// same labels select would be counted too (the harness's fixtures select by app and version).
pub async fn workload_pods(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Vec<Pod>, KubeError> {
    let Some(object) = get(client, "apps/v1", kind, name, Some(namespace)).await? else {
        return Err(KubeError::Malformed { what: format!("{kind} {namespace}/{name} (not found)"), field: "pods" });
    };
    let selector = match_labels_selector(&object).ok_or_else(|| KubeError::Malformed {
        what: format!("{kind} {namespace}/{name}"),
        field: "spec.selector.matchLabels alone (it selects by expressions, or by nothing)",
    })?;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error(format!("listing pods {selector} in {namespace}")))?;
    // Neither pods being deleted nor finished ones (evicted, completed) run the workload now.
    let finished = |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()).is_some_and(|ph| matches!(ph, "Failed" | "Succeeded"))
    };
    Ok(list.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none() && !finished(p)).collect())
}

/// `spec.selector.matchLabels` of a workload (JSON) as a label selector (`a=b,c=d`); none when
/// it has no labels there or also selects by expressions.
fn match_labels_selector(workload: &Value) -> Option<String> {
    let selector = workload.pointer("/spec/selector")?;
    if selector.get("matchExpressions").and_then(Value::as_array).is_some_and(|e| !e.is_empty()) {
        return None;
    }
    let labels = selector.get("matchLabels")?.as_object()?;
    let pairs: Option<Vec<String>> = labels.iter().map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect();
    pairs.filter(|p| !p.is_empty()).map(|p| p.join(","))
}

/// A StatefulSet's rolling update is done when every replica runs the update revision and is
/// ready (apps/v1 `StatefulSetStatus`, as `kubectl rollout status` reads it).
fn statefulset_rolled_out(object: &Value) -> Attempt<Seen> {
    let number = |p: &str| object.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let want = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let (updated, ready) = (number("/status/updatedReplicas"), number("/status/readyReplicas"));
    let seen = Seen(format!("{want} desired: {updated} updated, {ready} ready"));
    let same_revision = text("/status/currentRevision") == text("/status/updateRevision");
    if updated == want && ready == want && same_revision { Attempt::Pass(seen) } else { Attempt::Fail(seen) }
}

/// Whether a DaemonSet (JSON) is rolled out as `kubectl rollout status` judges one
/// (kubernetes/kubectl pkg/polymorphichelpers/rollout_status.go `DaemonSetStatusViewer`): the
/// controller has observed the current generation, and every node it schedules to runs an
/// updated, available pod. A DaemonSet scheduled to no node is not ready: the mesh would then
/// carry nobody's traffic.
pub fn daemonset_is_rolled_out(daemonset: &Value) -> Attempt<Seen> {
    let number = |pointer: &str| daemonset.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let generation = number("/metadata/generation");
    let observed = number("/status/observedGeneration");
    if observed < generation {
        return Attempt::Fail(Seen(format!(
            "generation {generation} not observed by the controller yet (its status is of generation {observed})"
        )));
    }
    let desired = number("/status/desiredNumberScheduled");
    let updated = number("/status/updatedNumberScheduled");
    let available = number("/status/numberAvailable");
    let seen = Seen(format!("{desired} node(s) scheduled: {updated} updated, {available} available"));
    if desired > 0 && updated == desired && available == desired { Attempt::Pass(seen) } else { Attempt::Fail(seen) }
}

/// Is every Deployment of `namespace` available ([`deployment_available`])?
pub async fn deployments_available(client: &kube::Client, namespace: &str) -> Result<Attempt<Seen>, KubeError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let list =
        api.list(&ListParams::default()).await.map_err(api_error(format!("listing Deployments in {namespace}")))?;
    if list.items.is_empty() {
        return Ok(Attempt::Fail(Seen(format!("no Deployments in {namespace} yet"))));
    }
    let waiting: Vec<String> = list
        .items
        .iter()
        .filter_map(|d| {
            let name = d.metadata.name.clone().unwrap_or_default();
            // The typed object as JSON, the shape the `wait` step judges.
            let json = serde_json::to_value(d).unwrap_or_default();
            match deployment_available(&json) {
                Attempt::Pass(_) => None,
                Attempt::Fail(seen) => Some(format!("{name} ({})", seen.0)),
            }
        })
        .collect();
    Ok(if waiting.is_empty() {
        Attempt::Pass(Seen(format!("{} Deployment(s) in {namespace} available", list.items.len())))
    } else {
        Attempt::Fail(Seen(format!("waiting for {}", waiting.join(", "))))
    })
}

/// Does the mutating webhook configuration `name` exist, and does every Service it calls have a
/// ready endpoint? (A webhook that exists but cannot answer makes pods start without a sidecar
/// or fail admission, depending on its failure policy.)
pub async fn webhook_serving(client: &kube::Client, name: &str) -> Result<Attempt<Seen>, KubeError> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let Some(config) = api.get_opt(name).await.map_err(api_error(format!("reading webhook configuration {name}")))?
    else {
        return Ok(Attempt::Fail(Seen(format!("MutatingWebhookConfiguration {name} does not exist yet"))));
    };
    let services: Vec<(String, String)> = config
        .webhooks
        .unwrap_or_default()
        .iter()
        .filter_map(|w| w.client_config.service.as_ref().map(|s| (s.namespace.clone(), s.name.clone())))
        .collect();
    if services.is_empty() {
        return Ok(Attempt::Fail(Seen(format!("{name} names no Service to call"))));
    }
    for (namespace, service) in services {
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &namespace);
        let list = slices
            .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
            .await
            .map_err(api_error(format!("listing endpoints of {namespace}/{service}")))?;
        let ready = list
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .any(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false));
        if !ready {
            return Ok(Attempt::Fail(Seen(format!("{name} calls {namespace}/{service}, which has no ready endpoint"))));
        }
    }
    Ok(Attempt::Pass(Seen(format!("{name} exists and its service answers"))))
}

/// Where a pod's mesh proxy was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyPlacement {
    Container,
    /// A native sidecar: an init container with `restartPolicy: Always` (Kubernetes >= 1.29).
    NativeSidecar,
}

/// The mesh proxy `container` in `pod`, if any.
pub fn proxy_placement(pod: &Pod, container: &str) -> Option<ProxyPlacement> {
    let spec = pod.spec.as_ref()?;
    if spec.containers.iter().any(|c| c.name == container) {
        return Some(ProxyPlacement::Container);
    }
    spec.init_containers
        .iter()
        .flatten()
        .any(|c| c.name == container && c.restart_policy.as_deref() == Some("Always"))
        .then_some(ProxyPlacement::NativeSidecar)
}

/// The annotation istio-cni's node agent sets on a pod once its traffic is redirected to the
/// node's ztunnel (istio/api annotation/annotations.yaml `ambient.istio.io/redirection`;
/// istio/istio cni/pkg/nodeagent sets `enabled`, ztunnel's informer reads the same value). A pod
/// of an ambient namespace without it is not in the mesh yet: its traffic leaves in plaintext.
pub const AMBIENT_REDIRECTION: &str = "ambient.istio.io/redirection";

/// Whether `pod` is inside `mesh`: it carries the mesh's proxy (as a container or a native
/// sidecar), or in ambient mode its traffic is redirected to ztunnel.
pub fn in_mesh(pod: &Pod, mesh: crate::model::Mesh) -> bool {
    match mesh {
        crate::model::Mesh::IstioAmbient => {
            pod.metadata.annotations.as_ref().and_then(|a| a.get(AMBIENT_REDIRECTION)).is_some_and(|v| v == "enabled")
        }
        _ => mesh.proxy_container().is_some_and(|c| proxy_placement(pod, c).is_some()),
    }
}

/// Are the pods of `selector` in `namespace` all inside `mesh` ([`in_mesh`])?
pub async fn pods_meshed(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    mesh: crate::model::Mesh,
) -> Result<Attempt<Seen>, KubeError> {
    let mark = mesh.member_mark().unwrap_or("no mesh");
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(api_error(format!("listing pods {selector} in {namespace}")))?;
    if pods.items.is_empty() {
        return Ok(Attempt::Fail(Seen(format!("no pods match {selector} in {namespace}"))));
    }
    let bare: Vec<String> =
        pods.items.iter().filter(|p| !in_mesh(p, mesh)).map(|p| p.metadata.name.clone().unwrap_or_default()).collect();
    Ok(if bare.is_empty() {
        Attempt::Pass(Seen(format!("{} pod(s) carry {mark}", pods.items.len())))
    } else {
        Attempt::Fail(Seen(format!("pod(s) without {mark}: {}", bare.join(", "))))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{kube_mock, kube_status};

    /// The Gateway gate passes only on `Programmed=True` for the current generation; the shapes
    /// KIC leaves on the way (Accepted with Programmed=False/Pending, an unprogrammed listener's
    /// Invalid) and a stale generation fail, saying what they show.
    #[test]
    fn a_gateway_is_ready_only_when_programmed_for_its_generation() {
        let listener = |status: &str, reason: &str| json!([{"name": "http", "conditions": [{"type": "Programmed", "status": status, "reason": reason}]}]);
        let gateway = |generation: i64, programmed: Value| {
            json!({"metadata": {"name": "kong", "generation": generation},
                   "spec": {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
                   "status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": generation}, programmed],
                              "listeners": listener("True", "Programmed")}})
        };
        // KIC's Gateway-level Programmed with a listener on a port Kong does not listen on.
        let mut port_unavailable = gateway(
            1,
            json!({"type": "Programmed", "status": "True", "reason": "Programmed", "observedGeneration": 1}),
        );
        port_unavailable["status"]["listeners"] = listener("False", "Invalid");
        match gateway_is_programmed(&port_unavailable) {
            Attempt::Fail(Seen(seen)) => assert!(seen.contains("listener http Programmed=False (Invalid)"), "{seen}"),
            Attempt::Pass(seen) => panic!("passed with an unprogrammed listener: {seen:?}"),
        }
        let ready = gateway(
            2,
            json!({"type": "Programmed", "status": "True", "reason": "Programmed", "observedGeneration": 2}),
        );
        assert!(matches!(gateway_is_programmed(&ready), Attempt::Pass(_)));
        for (gw, shows) in [
            (
                gateway(
                    1,
                    json!({"type": "Programmed", "status": "False", "reason": "Pending", "message": "Waiting for controller", "observedGeneration": 1}),
                ),
                "Programmed=False (Pending",
            ),
            (
                gateway(
                    1,
                    json!({"type": "Programmed", "status": "False", "reason": "Invalid", "observedGeneration": 1}),
                ),
                "Invalid",
            ),
            (
                gateway(
                    3,
                    json!({"type": "Programmed", "status": "True", "reason": "Programmed", "observedGeneration": 2}),
                ),
                "Programmed=True",
            ),
            (json!({"metadata": {"name": "kong", "generation": 1}}), "no Programmed condition"),
        ] {
            match gateway_is_programmed(&gw) {
                Attempt::Fail(Seen(seen)) => assert!(seen.contains(shows), "{seen}"),
                Attempt::Pass(seen) => panic!("passed on {gw}: {seen:?}"),
            }
        }
    }

    #[test]
    fn objects_get_the_run_label_and_keep_theirs() {
        let o = labelled(json!({"kind": "Service", "metadata": {"name": "a", "labels": {"app": "echo"}}}), "r1");
        assert_eq!(o["metadata"]["labels"], json!({"app": "echo", RUN_LABEL: "r1"}));
        let bare = labelled(json!({"kind": "Service", "metadata": {"name": "a"}}), "r1");
        assert_eq!(bare["metadata"]["labels"][RUN_LABEL], "r1");
    }

    fn discovery(req: &crate::testing::KubeRequest) -> Option<(u16, Value)> {
        match req.path.as_str() {
            "/apis/networking.istio.io/v1" => Some((
                200,
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "networking.istio.io/v1",
                       "resources": [{"name": "virtualservices", "singularName": "virtualservice", "namespaced": true,
                                      "kind": "VirtualService", "verbs": ["get", "patch"]}]}),
            )),
            "/apis/telemetry.istio.io/v1" => Some(kube_status(404, "NotFound")),
            _ => None,
        }
    }

    #[tokio::test]
    async fn apply_is_server_side_strict_and_namespaced() {
        let (client, asked) = kube_mock(|req| {
            discovery(req).unwrap_or_else(|| (200, json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "echo"}})))
        });
        let vs = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "echo"}, "spec": {"hosts": ["echo"]}});
        apply(&client, &vs, Some("shop")).await.unwrap();
        let asked = asked.lock().unwrap();
        let patch = asked.iter().find(|r| r.method == "PATCH").unwrap();
        assert_eq!(patch.path, "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/echo");
        assert!(patch.query.contains("fieldManager=kme2e") && patch.query.contains("force=true"), "{}", patch.query);
        assert!(patch.query.contains("fieldValidation=Strict"), "{}", patch.query);
        assert_eq!(serde_json::from_str::<Value>(&patch.body).unwrap()["spec"]["hosts"][0], "echo");
    }

    /// Discovery failing for another reason (the API server erroring) is no "unknown kind": a
    /// `rejected: unknown-kind` step must not pass on it.
    #[tokio::test]
    async fn a_failing_discovery_is_not_an_unknown_kind() {
        let (client, _) = kube_mock(|_| kube_status(503, "ServiceUnavailable"));
        let ts = json!({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": {"name": "x"}});
        let e = apply(&client, &ts, Some("shop")).await.unwrap_err();
        assert!(matches!(e, KubeError::Api { .. }), "{e:?}");
        let (client, _) = kube_mock(|req| {
            if req.path == "/apis/split.smi-spec.io/v1alpha2" {
                (
                    200,
                    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "split.smi-spec.io/v1alpha2", "resources": []}),
                )
            } else {
                kube_status(404, "NotFound")
            }
        });
        let e = apply(&client, &ts, Some("shop")).await.unwrap_err();
        assert!(matches!(e, KubeError::UnknownKind { .. }), "a group without the kind: {e:?}");
    }

    #[tokio::test]
    async fn an_unknown_kind_says_which() {
        let (client, _) = kube_mock(|req| discovery(req).unwrap_or_else(|| kube_status(404, "NotFound")));
        let telemetry =
            json!({"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry", "metadata": {"name": "mesh-default"}});
        let err = apply(&client, &telemetry, None).await.unwrap_err().to_string();
        assert!(err.starts_with("the API server does not know telemetry.istio.io/v1 Telemetry"), "{err}");
        let err = apply(&client, &json!({"kind": "X"}), None).await.unwrap_err().to_string();
        assert_eq!(err, "an object (X) has no apiVersion");
    }

    /// A Deployment is available only once rolled out: not while an old pod still runs (though
    /// its `Available` condition is True and every desired replica is updated), not before the
    /// controller observed the latest generation. The gate over a namespace says the same.
    #[tokio::test]
    async fn a_deployment_is_available_only_when_rolled_out() {
        use crate::testing::{Rollout, deployment, object_server};
        let cases = [
            (Rollout::Done, "pass: 2 desired: 2 updated, 2 available, 0 old, Available=True"),
            (Rollout::OldPodLeft, "fail: 2 desired: 2 updated, 3 available, 1 old, Available=True"),
            (
                Rollout::NotObserved,
                "fail: generation 4 not observed by the controller yet (its status is of generation 3)",
            ),
        ];
        let seen = |a: Attempt<Seen>| match a {
            Attempt::Pass(s) => format!("pass: {}", s.0),
            Attempt::Fail(s) => format!("fail: {}", s.0),
        };
        for (rollout, expected) in cases {
            let object = deployment("echo-v1", "shop", rollout);
            assert_eq!(seen(deployment_available(&object)), expected, "{rollout:?}");
            let (client, _) = kube_mock(object_server(vec![object]));
            let gate = seen(deployments_available(&client, "shop").await.unwrap());
            match rollout {
                Rollout::Done => assert_eq!(gate, "pass: 1 Deployment(s) in shop available"),
                _ => assert_eq!(gate, format!("fail: waiting for echo-v1 ({})", &expected["fail: ".len()..])),
            }
        }
    }

    #[tokio::test]
    async fn readiness_questions_say_what_they_wait_for() {
        let (client, _) = kube_mock(|req| match req.path.as_str() {
            "/apis/apps/v1/namespaces/istio-system/deployments" => (
                200,
                json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": [
                {"metadata": {"name": "istiod", "generation": 1}, "spec": {"replicas": 1, "selector": {}, "template": {}},
                 "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1,
                            "conditions": [{"type": "Available", "status": "False"}]}}]}),
            ),
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-sidecar-injector" => (
                200,
                json!({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "istio-sidecar-injector"},
                "webhooks": [{"name": "x.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                              "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system"}}}]}),
            ),
            "/apis/discovery.k8s.io/v1/namespaces/istio-system/endpointslices" => (
                200,
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList", "metadata": {}, "items": [
                {"metadata": {"name": "istiod-x"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": false}}]}]}),
            ),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/httproutes.gateway.networking.k8s.io" => {
                kube_status(404, "NotFound")
            }
            "/api/v1/namespaces/kong/pods" => (
                200,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": "kong-gateway-1"}, "spec": {"containers": [{"name": "proxy"}]}},
                {"metadata": {"name": "kong-gateway-2"}, "spec": {"containers": [{"name": "proxy"}],
                  "initContainers": [{"name": "istio-proxy", "restartPolicy": "Always"}]}}]}),
            ),
            _ => kube_status(404, "NotFound"),
        });
        let seen = |a: Attempt<Seen>| match a {
            Attempt::Pass(s) => format!("pass: {}", s.0),
            Attempt::Fail(s) => format!("fail: {}", s.0),
        };
        assert_eq!(
            seen(deployments_available(&client, "istio-system").await.unwrap()),
            "fail: waiting for istiod (1 desired: 1 updated, 0 available, 0 old, Available=False)"
        );
        assert_eq!(
            seen(webhook_serving(&client, "istio-sidecar-injector").await.unwrap()),
            "fail: istio-sidecar-injector calls istio-system/istiod, which has no ready endpoint"
        );
        assert_eq!(
            seen(crd_established(&client, "httproutes.gateway.networking.k8s.io").await.unwrap()),
            "fail: CRD httproutes.gateway.networking.k8s.io does not exist yet"
        );
        assert_eq!(
            seen(
                pods_meshed(&client, "kong", "app.kubernetes.io/instance=kong", crate::model::Mesh::Istio)
                    .await
                    .unwrap()
            ),
            "fail: pod(s) without istio-proxy: kong-gateway-1"
        );
    }

    #[test]
    fn restart_times_are_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        // `date -u -d @1796667142 +%Y-%m-%dT%H:%M:%SZ`
        assert_eq!(rfc3339_utc(1_796_667_142), "2026-12-07T18:12:22Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z", "a leap day");
    }

    /// A DaemonSet is rolled out only when the controller saw its generation and every node it
    /// schedules to runs an updated, available pod (apps/v1 `DaemonSetStatus` fields, as
    /// `kubectl rollout status` reads them); an unscheduled one is not ready.
    #[test]
    fn a_daemonset_is_rolled_out_only_on_every_node() {
        let ds = |generation: i64, observed: i64, desired: i64, updated: i64, available: i64| {
            json!({"metadata": {"name": "ztunnel", "generation": generation},
                   "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                              "currentNumberScheduled": desired, "numberReady": available,
                              "updatedNumberScheduled": updated, "numberAvailable": available}})
        };
        assert!(matches!(daemonset_is_rolled_out(&ds(1, 1, 3, 3, 3)), Attempt::Pass(_)));
        for (case, d) in [
            ("a node without an available pod", ds(1, 1, 3, 3, 2)),
            ("an old pod left", ds(2, 2, 3, 2, 3)),
            ("a generation not observed yet", ds(2, 1, 3, 3, 3)),
            ("scheduled nowhere", ds(1, 1, 0, 0, 0)),
            ("no status yet", json!({"metadata": {"name": "ztunnel", "generation": 1}})),
        ] {
            match daemonset_is_rolled_out(&d) {
                Attempt::Fail(Seen(seen)) => assert!(!seen.is_empty(), "{case}"),
                Attempt::Pass(seen) => panic!("{case} passed: {seen:?}"),
            }
        }
    }

    /// A StatefulSet is rolled out only with every replica on the update revision and ready
    /// (apps/v1 `StatefulSetStatus`); a restart not yet seen by the controller is not done.
    #[tokio::test]
    async fn a_restart_is_rolled_out_only_at_its_generation() {
        let sts = |updated: i64, ready: i64, current: &str| {
            json!({"spec": {"replicas": 2}, "status": {"updatedReplicas": updated, "readyReplicas": ready,
                   "currentRevision": current, "updateRevision": "web-7c4b8"}})
        };
        assert!(matches!(statefulset_rolled_out(&sts(2, 2, "web-7c4b8")), Attempt::Pass(_)));
        for (case, s) in [
            ("a replica on the old revision", sts(1, 2, "web-6d8f9")),
            ("a replica not ready", sts(2, 1, "web-7c4b8")),
            ("the revisions not swapped yet", sts(2, 2, "web-6d8f9")),
        ] {
            assert!(matches!(statefulset_rolled_out(&s), Attempt::Fail(_)), "{case}");
        }
        // The Deployment is rolled out, but at generation 2: a restart that made generation 3
        // is not seen yet.
        let (client, _) = kube_mock(|req| match req.path.as_str() {
            "/apis/apps/v1" => (200, crate::testing::resources("apps/v1", &[("deployments", "Deployment", true)])),
            p if p.ends_with("/deployments/echo-v1") => {
                (200, crate::testing::deployment("echo-v1", "shop", crate::testing::Rollout::Done))
            }
            _ => kube_status(404, "NotFound"),
        });
        match rolled_out(&client, "Deployment", "shop", "echo-v1", 3).await.unwrap() {
            Attempt::Fail(Seen(seen)) => assert!(seen.contains("has not seen the restart yet"), "{seen}"),
            Attempt::Pass(seen) => panic!("passed before the restart was seen: {seen:?}"),
        }
        assert!(matches!(rolled_out(&client, "Deployment", "shop", "echo-v1", 2).await.unwrap(), Attempt::Pass(_)));
        match rolled_out(&client, "Deployment", "shop", "gone", 1).await.unwrap() {
            Attempt::Fail(Seen(seen)) => assert!(seen.contains("does not exist yet"), "{seen}"),
            Attempt::Pass(seen) => panic!("{seen:?}"),
        }
    }

    /// In ambient mode a pod is in the mesh by istio-cni's annotation, and only with `enabled`;
    /// a sidecar mesh's proxy container does not count for ambient, nor the annotation for Istio.
    #[test]
    fn ambient_membership_is_the_redirection_annotation() {
        let pod = |annotation: Option<&str>, container: &str| -> Pod {
            let annotations = annotation.map(|v| json!({AMBIENT_REDIRECTION: v})).unwrap_or(json!({}));
            serde_json::from_value(json!({"metadata": {"name": "p", "annotations": annotations},
                                          "spec": {"containers": [{"name": container}]}}))
            .unwrap()
        };
        use crate::model::Mesh;
        assert!(in_mesh(&pod(Some("enabled"), "app"), Mesh::IstioAmbient));
        assert!(!in_mesh(&pod(Some("pending"), "app"), Mesh::IstioAmbient));
        assert!(!in_mesh(&pod(None, "istio-proxy"), Mesh::IstioAmbient));
        assert!(!in_mesh(&pod(Some("enabled"), "app"), Mesh::Istio));
        assert!(in_mesh(&pod(None, "istio-proxy"), Mesh::Istio));
        assert!(!in_mesh(&pod(Some("enabled"), "app"), Mesh::None));
    }
}
