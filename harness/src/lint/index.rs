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

    /// Labels of a Namespace object in the inputs (none when it is not among them).
    pub fn namespace_labels<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.of_kind("Namespace").filter(move |n| n.name == namespace).flat_map(|n| n.labels())
    }
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
