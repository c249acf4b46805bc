//! Everything a lint run looks at, in one place: the Kubernetes objects of all inputs and the
//! Helm values files, with what is needed to point at a field.

use serde_json::Value;

use super::kong::{KongChart, KongSetup, Meshing};
pub use super::values_file::ValuesFile;
use crate::scenario::Mesh;
use crate::scenario::fixture::Manifest;

/// The chart of the harness's own Kong values (and the default for `--values`).
pub const KONG_CHART: &str = "kong/ingress";

/// The charts whose values lint reads (`--values CHART=FILE`); any other name is refused rather
/// than silently ignored.
pub const KNOWN_CHARTS: [&str; 2] = KongChart::NAMES;

/// All objects and values of one lint run, for one mesh (or none known).
#[derive(Debug, Clone)]
pub struct Index {
    pub objects: Vec<Manifest>,
    pub values: Vec<ValuesFile>,
    pub mesh: Option<Mesh>,
    pub kong: KongSetup,
    /// The Kubernetes minor version core kinds are checked against (`1.35`).
    pub kubernetes: String,
}

impl Index {
    /// The Kong values given (either chart), with the chart they are for.
    pub fn kong_values(&self) -> Option<(&ValuesFile, KongChart)> {
        self.values.iter().find_map(|v| KongChart::from_name(&v.chart).map(|c| (v, c)))
    }

    /// Whether Kong's gateway joins `mesh`, as far as the inputs say.
    pub fn kong_meshing(&self, mesh: Mesh) -> Meshing {
        self.kong.meshing(mesh, self.kong_values().map(|(v, _)| v), &self.objects)
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Manifest> {
        self.objects.iter().filter(move |o| o.kind == kind)
    }

    pub fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<&Manifest> {
        self.objects.iter().find(|o| o.kind == kind && o.name == name && o.namespace_or_default() == namespace)
    }

    /// Ingresses Kong serves: class `kong` by field or by the legacy annotation.
    /// Ingresses Kong serves: its class (`ingressController.ingressClass` in the values,
    /// default `kong`) by field or by the legacy annotation, and class-less ones when Kong's
    /// IngressClass is the cluster default.
    pub fn kong_ingresses(&self) -> impl Iterator<Item = &Manifest> {
        let class =
            self.kong.chart.unwrap_or(KongChart::Ingress).ingress_class(self.kong_values().map(|(v, _)| &v.value));
        let default_class = self
            .of_kind("IngressClass")
            .any(|c| c.name == class && c.annotation("ingressclass.kubernetes.io/is-default-class") == Some("true"));
        self.of_kind("Ingress").filter(move |i| {
            let named = i.object.pointer("/spec/ingressClassName").and_then(Value::as_str);
            let annotated = i.annotation("kubernetes.io/ingress.class");
            named == Some(class.as_str())
                || annotated == Some(class.as_str())
                || (default_class && named.is_none() && annotated.is_none())
        })
    }

    /// The routes Kong serves: its Ingresses, and the Gateway API HTTPRoutes attached to one of
    /// its Gateways ([`Index::kong_gateway`]). An HTTPRoute attached to a Service (GAMMA) or to
    /// another class's Gateway is the mesh's or another controller's, not Kong's.
    pub fn kong_routes(&self) -> impl Iterator<Item = &Manifest> {
        let routes = self.of_kind("HTTPRoute").filter(|r| {
            let ns = r.namespace_or_default();
            r.object.pointer("/spec/parentRefs").and_then(Value::as_array).into_iter().flatten().any(|p| {
                let group = p.get("group").and_then(Value::as_str).unwrap_or(GATEWAY_API_GROUP);
                let kind = p.get("kind").and_then(Value::as_str).unwrap_or("Gateway");
                let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                let parent_ns = p.get("namespace").and_then(Value::as_str).unwrap_or(ns);
                let section = p.get("sectionName").and_then(Value::as_str);
                group == GATEWAY_API_GROUP
                    && kind == "Gateway"
                    && self.kong_gateway(parent_ns, name)
                    && self.gateway_admits(parent_ns, name, section, ns)
            })
        });
        self.kong_ingresses().chain(routes)
    }

    /// The Gateway API Gateway `namespace/name` among the inputs (not Istio's own `Gateway`).
    fn gateway(&self, namespace: &str, name: &str) -> Option<&Manifest> {
        self.objects.iter().find(|o| {
            o.kind == "Gateway"
                && o.api_version.starts_with(&format!("{GATEWAY_API_GROUP}/"))
                && o.name == name
                && o.namespace_or_default() == namespace
        })
    }

    /// Whether Gateway `namespace/name` lets a route of `route_ns` attach (to listener `section`
    /// when named): a listener of that name whose `allowedRoutes.namespaces.from` is `All`,
    /// `Same` (the default) with the route beside the Gateway, or `Selector` (taken to admit:
    /// lint does not judge selectors). A Gateway not among the inputs is taken to admit.
    fn gateway_admits(&self, namespace: &str, name: &str, section: Option<&str>, route_ns: &str) -> bool {
        let Some(gateway) = self.gateway(namespace, name) else { return true };
        let listeners = gateway.object.pointer("/spec/listeners").and_then(Value::as_array).into_iter().flatten();
        listeners.filter(|l| section.is_none_or(|s| l.get("name").and_then(Value::as_str) == Some(s))).any(|l| match l
            .pointer("/allowedRoutes/namespaces/from")
            .and_then(Value::as_str)
            .unwrap_or("Same")
        {
            "All" | "Selector" => true,
            _ => route_ns == namespace,
        })
    }

    /// Whether Gateway `namespace/name` is Kong's: among the inputs, its class is one whose
    /// controller is KIC's (`konghq.com/kic-gateway-controller`, KIC v3.5
    /// internal/controllers/gateway/gatewayclass_controller.go), or is named `kong` when no
    /// GatewayClass of that name is among the inputs; not among the inputs, when it is in Kong's
    /// namespace (the harness installs Kong's Gateway there).
    pub fn kong_gateway(&self, namespace: &str, name: &str) -> bool {
        match self.gateway(namespace, name) {
            Some(gateway) => {
                let class =
                    gateway.object.pointer("/spec/gatewayClassName").and_then(Value::as_str).unwrap_or_default();
                match self.of_kind("GatewayClass").find(|c| c.name == class) {
                    Some(c) => {
                        c.object.pointer("/spec/controllerName").and_then(Value::as_str) == Some(KIC_GATEWAY_CONTROLLER)
                    }
                    None => class == "kong",
                }
            }
            None => namespace == self.kong.namespace,
        }
    }

    /// Labels of a Namespace object in the inputs (none when it is not among them).
    pub fn namespace_labels<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.of_kind("Namespace").filter(move |n| n.name == namespace).flat_map(|n| n.labels())
    }
}

/// The Gateway API's API group.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// The controller name KIC reconciles GatewayClasses of (KIC v3.5.13
/// internal/controllers/gateway/gatewayclass_controller.go).
pub const KIC_GATEWAY_CONTROLLER: &str = "konghq.com/kic-gateway-controller";

/// Backend Services of a route Kong serves (an Ingress or an HTTPRoute): `(service name, path
/// into the object)` for each reference in the route's own namespace. An HTTPRoute's
/// `backendRefs` are Services unless they say otherwise; one in another namespace (which needs
/// a ReferenceGrant) is not followed.
pub fn route_backends(route: &Manifest) -> Vec<(String, Vec<String>)> {
    if route.kind != "HTTPRoute" {
        return ingress_backends(route);
    }
    let ns = route.namespace_or_default();
    let mut out = Vec::new();
    let rules = route.object.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten();
    for (r, rule) in rules.enumerate() {
        let refs = rule.get("backendRefs").and_then(Value::as_array).into_iter().flatten();
        for (b, backend) in refs.enumerate() {
            let group = backend.get("group").and_then(Value::as_str).unwrap_or("");
            let kind = backend.get("kind").and_then(Value::as_str).unwrap_or("Service");
            let same_ns = backend.get("namespace").and_then(Value::as_str).is_none_or(|n| n == ns);
            if let (true, "Service", true, Some(name)) =
                (group.is_empty(), kind, same_ns, backend.get("name").and_then(Value::as_str))
            {
                let at = ["spec", "rules", &r.to_string(), "backendRefs", &b.to_string(), "name"];
                out.push((name.to_owned(), at.iter().map(|s| s.to_string()).collect()));
            }
        }
    }
    out
}

/// Backend Services of an Ingress: `(service name, path into the object)` for each reference.
pub fn ingress_backends(ingress: &Manifest) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    if let Some(name) = ingress.object.pointer("/spec/defaultBackend/service/name").and_then(Value::as_str) {
        out.push((name.to_owned(), vec!["spec".into(), "defaultBackend".into()]));
    }
    let rules = ingress.object.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten();
    for (r, rule) in rules.enumerate() {
        let paths = rule.pointer("/http/paths").and_then(Value::as_array).into_iter().flatten();
        for (p, path) in paths.enumerate() {
            if let Some(name) = path.pointer("/backend/service/name").and_then(Value::as_str) {
                let at =
                    ["spec", "rules", &r.to_string(), "http", "paths", &p.to_string(), "backend", "service", "name"];
                out.push((name.to_owned(), at.iter().map(|s| s.to_string()).collect()));
            }
        }
    }
    out
}

/// `(host, path)` pairs an Ingress routes, with the location of each path entry.
pub fn ingress_routes(ingress: &Manifest) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    let rules = ingress.object.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten();
    for (r, rule) in rules.enumerate() {
        let host = rule.get("host").and_then(Value::as_str).unwrap_or("*").to_owned();
        let paths = rule.pointer("/http/paths").and_then(Value::as_array).into_iter().flatten();
        for (p, path) in paths.enumerate() {
            let route = path.get("path").and_then(Value::as_str).unwrap_or("/").to_owned();
            let at = ["spec", "rules", &r.to_string(), "http", "paths", &p.to_string(), "path"];
            out.push((host.clone(), route, at.iter().map(|s| s.to_string()).collect()));
        }
    }
    out
}
