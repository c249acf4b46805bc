//! Which pods carry the mesh's proxy, and which should: the decisions behind the
//! `mesh-membership` step and the injection check after a scenario's fixtures are applied.
//!
//! Linkerd's injector reads namespaces from an informer cache and its webhook fails open
//! (`failurePolicy: Ignore`), so a pod created right after its namespace can start without a
//! proxy; Istio's webhook can also miss pods while istiod restarts. A scenario that silently ran
//! such a pod would judge an unmeshed backend. The runner restarts each such pod once, then
//! fails naming it.

use std::collections::BTreeMap;

use crate::check::converge::Attempt;
use crate::k8s::Seen;
use crate::model::Mesh;

/// What the checks need to know about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// It carries the mesh's proxy, or (ambient) istio-cni has redirected it to ztunnel.
    pub in_mesh: bool,
    /// Whether a controller (ReplicaSet, Job, ...) recreates the pod when it is deleted.
    pub owned: bool,
}

/// Whether `pod` should carry `mesh`'s proxy in a namespace that injects (`namespace_injects`)
/// or not. Istio: the pod's `sidecar.istio.io/inject` label (the injector's objectSelector) or
/// annotation decides over the namespace; Linkerd: the pod's `linkerd.io/inject` annotation
/// (`enabled`/`ingress` opt in, `disabled` opts out).
pub fn should_carry_proxy(mesh: Mesh, namespace_injects: bool, pod: &PodFacts) -> bool {
    match mesh {
        Mesh::None => false,
        Mesh::Istio => {
            let key = "sidecar.istio.io/inject";
            match pod.labels.get(key).or_else(|| pod.annotations.get(key)).map(String::as_str) {
                Some("false") => false,
                Some("true") => true,
                _ => namespace_injects,
            }
        }
        // A pod's own `istio.io/dataplane-mode` (ambient or none) decides over its namespace's
        // (istio.io docs/ambient/usage/add-workloads).
        Mesh::IstioAmbient => match pod.labels.get(crate::model::AMBIENT_LABEL).map(String::as_str) {
            Some("none") => false,
            Some("ambient") => true,
            _ => namespace_injects,
        },
        Mesh::Linkerd => match pod.annotations.get("linkerd.io/inject").map(String::as_str) {
            Some("disabled") => false,
            Some("enabled" | "ingress") => true,
            _ => namespace_injects,
        },
    }
}

/// The pods that should carry the proxy and do not.
pub fn missing_proxy(mesh: Mesh, namespace_injects: bool, pods: &[PodFacts]) -> Vec<&PodFacts> {
    pods.iter().filter(|p| !p.in_mesh && should_carry_proxy(mesh, namespace_injects, p)).collect()
}

/// A client pod is what its step asks for: a "meshed" client that raced the injector would be
/// denied for having no identity, which proves nothing about the policy under test.
pub fn client_as_asked(mesh: Mesh, pod: &str, in_mesh: bool, meshed: bool) -> Result<(), String> {
    let Some(container) = mesh.member_mark() else { return Ok(()) };
    if in_mesh == meshed {
        return Ok(());
    }
    Err(format!(
        "client pod {pod} {} {container}, but the step asks for a {} client",
        if in_mesh { "carries" } else { "lacks" },
        if meshed { "meshed" } else { "unmeshed" }
    ))
}

/// The `mesh-membership` step: every selected pod carries the proxy (`meshed`) or none does.
pub fn membership(mesh: Mesh, pods: &[PodFacts], meshed: bool, selector: &str) -> Attempt<Seen> {
    let Some(container) = mesh.member_mark() else {
        return Attempt::Fail(Seen("mesh none has no proxy to look for".into()));
    };
    if pods.is_empty() {
        return Attempt::Fail(Seen(format!("no pods match {selector} yet")));
    }
    let wrong: Vec<&str> = pods.iter().filter(|p| p.in_mesh != meshed).map(|p| p.name.as_str()).collect();
    if wrong.is_empty() {
        let how = if meshed { "carry" } else { "do not carry" };
        Attempt::Pass(Seen(format!("{} pod(s) {selector} {how} {container}", pods.len())))
    } else {
        let how = if meshed { "lack" } else { "carry" };
        Attempt::Fail(Seen(format!("{} {how} {container}", wrong.join(", "))))
    }
}

/// The mesh proxy a pod must run once its workload restarted after an upgrade: the proxy
/// image's tag is the mesh's release (Istio's proxyv2 `1.31.1`, or `1.31.1-distroless`;
/// Linkerd's proxy `edge-26.9.1`, its `proxy.image.version` defaulting to the release), and
/// under an Istio canary the injector's `istio.io/rev` annotation names the revision (istio/istio
/// 1.30.3 manifests/charts/istio-control/istio-discovery/files/injection-template.yaml: the
/// revision is an annotation, not a label; pkg/kube/inject/webhook.go leaves labels alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAt {
    pub version: String,
    pub revision: Option<String>,
}

/// Whether `pod` runs `mesh`'s proxy at `want`; why not otherwise. The proxy is a container,
/// or with native sidecars an init container, named as the mesh names it.
pub fn runs_proxy(pod: &k8s_openapi::api::core::v1::Pod, mesh: Mesh, want: &ProxyAt) -> Result<(), String> {
    let Some(container) = mesh.proxy_container() else {
        return Err(format!("{mesh} runs no proxy in pods"));
    };
    let spec = pod.spec.as_ref();
    let proxy = spec
        .into_iter()
        .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
        .find(|c| c.name == container);
    let Some(image) = proxy.and_then(|c| c.image.as_deref()) else {
        return Err(format!("carries no {container}"));
    };
    let tag = crate::cluster::discover::tag_of(image);
    if !tag
        .is_some_and(|t| t == want.version || t.strip_prefix(want.version.as_str()).is_some_and(|r| r.starts_with('-')))
    {
        // The image and the annotation are the API server's answer, shown escaped.
        return Err(format!("runs {container} {}, not release {}", crate::names::printable(image), want.version));
    }
    if let Some(revision) = &want.revision {
        let annotations = pod.metadata.annotations.as_ref();
        let found = annotations.and_then(|a| a.get("istio.io/rev")).map(String::as_str);
        if found != Some(revision.as_str()) {
            return Err(format!(
                "was injected by revision {}, not {revision}",
                found
                    .map(|f| format!("`{}`", crate::names::printable(f)))
                    .unwrap_or_else(|| "(no istio.io/rev annotation)".into())
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injected(mesh: Mesh, version: &str, revision: &str) -> k8s_openapi::api::core::v1::Pod {
        let json = crate::testing::injected_pod(
            "echo-v1-abc",
            serde_json::json!({"app": "echo"}),
            "echo",
            mesh,
            version,
            revision,
        );
        serde_json::from_value(json).unwrap()
    }

    /// After an upgrade a restarted pod must run the new release's proxy (Istio's and Linkerd's,
    /// as their injectors leave a pod) and, under a canary, be injected by the new revision;
    /// anything else fails, saying what the pod runs.
    #[test]
    fn a_restarted_pod_runs_the_new_proxy_or_fails_saying_what_it_runs() {
        let istio =
            |revision: Option<&str>| ProxyAt { version: "1.31.1".into(), revision: revision.map(str::to_owned) };
        assert_eq!(runs_proxy(&injected(Mesh::Istio, "1.31.1", "default"), Mesh::Istio, &istio(None)), Ok(()));
        assert_eq!(
            runs_proxy(&injected(Mesh::Istio, "1.31.1-distroless", "default"), Mesh::Istio, &istio(None)),
            Ok(())
        );
        assert_eq!(runs_proxy(&injected(Mesh::Istio, "1.31.1", "1-31-1"), Mesh::Istio, &istio(Some("1-31-1"))), Ok(()));
        let old = runs_proxy(&injected(Mesh::Istio, "1.30.5", "default"), Mesh::Istio, &istio(None)).unwrap_err();
        assert_eq!(old, "runs istio-proxy docker.io/istio/proxyv2:1.30.5, not release 1.31.1");
        let longer = runs_proxy(&injected(Mesh::Istio, "1.31.10", "default"), Mesh::Istio, &istio(None)).unwrap_err();
        assert!(longer.contains("not release 1.31.1"), "{longer}");
        let revision = runs_proxy(&injected(Mesh::Istio, "1.31.1", "default"), Mesh::Istio, &istio(Some("1-31-1")));
        assert_eq!(revision.unwrap_err(), "was injected by revision `default`, not 1-31-1");
        let odd = runs_proxy(&injected(Mesh::Istio, "1.31.1", "x\u{1b}[2J"), Mesh::Istio, &istio(Some("1-31-1")));
        assert!(!odd.unwrap_err().contains('\u{1b}'), "an annotation's control characters are escaped");
        let bare = runs_proxy(&injected(Mesh::None, "", ""), Mesh::Istio, &istio(None)).unwrap_err();
        assert_eq!(bare, "carries no istio-proxy");
        let linkerd = ProxyAt { version: "edge-26.9.1".into(), revision: None };
        assert_eq!(runs_proxy(&injected(Mesh::Linkerd, "edge-26.9.1", ""), Mesh::Linkerd, &linkerd), Ok(()));
        let old = runs_proxy(&injected(Mesh::Linkerd, "edge-26.8.3", ""), Mesh::Linkerd, &linkerd).unwrap_err();
        assert_eq!(old, "runs linkerd-proxy cr.l5d.io/linkerd/proxy:edge-26.8.3, not release edge-26.9.1");
        assert!(runs_proxy(&injected(Mesh::Istio, "1.31.1", "default"), Mesh::Linkerd, &linkerd).is_err());
        assert!(runs_proxy(&injected(Mesh::Istio, "1.31.1", "default"), Mesh::IstioAmbient, &istio(None)).is_err());
    }

    fn pod(name: &str, in_mesh: bool, label: Option<(&str, &str)>, annotation: Option<(&str, &str)>) -> PodFacts {
        let pair = |kv: Option<(&str, &str)>| kv.map(|(k, v)| (k.to_owned(), v.to_owned())).into_iter().collect();
        PodFacts { name: name.into(), labels: pair(label), annotations: pair(annotation), in_mesh, owned: true }
    }

    #[test]
    fn opt_outs_and_opt_ins_decide_over_the_namespace() {
        let plain = pod("echo", false, None, None);
        assert!(should_carry_proxy(Mesh::Istio, true, &plain));
        assert!(!should_carry_proxy(Mesh::Istio, false, &plain));
        assert!(!should_carry_proxy(
            Mesh::Istio,
            true,
            &pod("c", false, Some(("sidecar.istio.io/inject", "false")), None)
        ));
        assert!(should_carry_proxy(
            Mesh::Istio,
            false,
            &pod("c", false, Some(("sidecar.istio.io/inject", "true")), None)
        ));
        assert!(!should_carry_proxy(
            Mesh::Linkerd,
            true,
            &pod("c", false, None, Some(("linkerd.io/inject", "disabled")))
        ));
        assert!(should_carry_proxy(
            Mesh::Linkerd,
            false,
            &pod("c", false, None, Some(("linkerd.io/inject", "enabled")))
        ));
        // A Linkerd annotation means nothing to Istio, and the other way round.
        assert!(should_carry_proxy(Mesh::Istio, true, &pod("c", false, None, Some(("linkerd.io/inject", "disabled")))));
        assert!(!should_carry_proxy(Mesh::None, true, &plain));
    }

    /// Ambient: the pod's own `istio.io/dataplane-mode` decides over its namespace's; a sidecar
    /// opt-out means nothing to ambient; a pod not redirected yet is named by the mark it lacks.
    #[test]
    fn ambient_membership_follows_the_dataplane_mode_label() {
        let ambient = Mesh::IstioAmbient;
        let plain = pod("echo", false, None, None);
        assert!(should_carry_proxy(ambient, true, &plain));
        assert!(!should_carry_proxy(ambient, false, &plain));
        // istiod's waypoints are labelled `none` (their template in the injector ConfigMap).
        assert!(!should_carry_proxy(
            ambient,
            true,
            &pod("waypoint", false, Some(("istio.io/dataplane-mode", "none")), None)
        ));
        assert!(should_carry_proxy(
            ambient,
            false,
            &pod("c", false, Some(("istio.io/dataplane-mode", "ambient")), None)
        ));
        assert!(should_carry_proxy(ambient, true, &pod("c", false, Some(("sidecar.istio.io/inject", "false")), None)));
        let e = client_as_asked(ambient, "ns/client-meshed", false, true).unwrap_err();
        assert_eq!(
            e,
            "client pod ns/client-meshed lacks ambient.istio.io/redirection=enabled, but the step asks for a meshed client"
        );
        let pods = [pod("echo-v1-a", true, None, None), pod("echo-v1-b", false, None, None)];
        assert!(matches!(membership(ambient, &pods, true, "app=echo"), Attempt::Fail(_)));
        assert!(matches!(membership(ambient, &pods[..1], true, "app=echo"), Attempt::Pass(_)));
    }

    #[test]
    fn a_pod_that_raced_the_injector_is_named() {
        let pods = [
            pod("echo-v1-a", true, None, None),
            pod("echo-v1-b", false, None, None),
            pod("client-plain", false, Some(("sidecar.istio.io/inject", "false")), None),
        ];
        let missing: Vec<&str> = missing_proxy(Mesh::Istio, true, &pods).iter().map(|p| p.name.as_str()).collect();
        assert_eq!(missing, ["echo-v1-b"]);
        assert!(missing_proxy(Mesh::Istio, false, &pods).is_empty());
    }

    #[test]
    fn a_client_must_be_what_the_step_asks_for() {
        assert!(client_as_asked(Mesh::Istio, "ns/client-meshed", true, true).is_ok());
        let e = client_as_asked(Mesh::Istio, "ns/client-meshed", false, true).unwrap_err();
        assert_eq!(e, "client pod ns/client-meshed lacks istio-proxy, but the step asks for a meshed client");
        assert!(client_as_asked(Mesh::Linkerd, "ns/client-plain", true, false).is_err());
        assert!(client_as_asked(Mesh::None, "ns/client-plain", false, true).is_ok());
    }

    #[test]
    fn membership_must_hold_for_every_selected_pod() {
        let bare = [pod("backend-1", false, None, None), pod("backend-2", false, None, None)];
        assert!(matches!(membership(Mesh::Linkerd, &bare, false, "app=backend"), Attempt::Pass(_)));
        let Attempt::Fail(Seen(why)) = membership(Mesh::Linkerd, &bare, true, "app=backend") else { panic!() };
        assert_eq!(why, "backend-1, backend-2 lack linkerd-proxy");
        let mixed = [pod("backend-1", true, None, None), pod("backend-2", false, None, None)];
        let Attempt::Fail(Seen(why)) = membership(Mesh::Linkerd, &mixed, false, "app=backend") else { panic!() };
        assert_eq!(why, "backend-1 carry linkerd-proxy");
        assert!(matches!(membership(Mesh::Linkerd, &[], false, "app=backend"), Attempt::Fail(_)));
        assert!(matches!(membership(Mesh::None, &bare, false, "app=backend"), Attempt::Fail(_)));
    }
}
