//! The preflight rules. Each says what breaks at run time, how to fix it, and where upstream
//! shows it (`shared` research Table 2 is where they were collected).
//!
//! This module owns the registry ([`RULES`], every rule's id, severity, summary and evidence),
//! how a rule reports ([`Findings`], the ignore annotation) and the helpers rules share; the
//! checks live in one module per family, each changing with the component it knows:
//! [`values`] (Kong's Helm values), [`annotations`] (Kong's objects and annotations),
//! [`plugins`] (Kong plugins), [`routing`] (how Kong reaches its upstreams), [`istio`],
//! [`ambient`] (Istio's ambient mode), [`linkerd`], and [`schema`] (Kubernetes and CRD schemas).

mod ambient;
mod annotations;
mod istio;
mod linkerd;
mod plugins;
mod routing;
mod schema;
mod values;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::index::{Index, ValuesFile, ingress_routes, route_backends};
use crate::diagnostic::{Diagnostic, Position, Severity};
use crate::lint::kong::{KongChart, Meshing};
use crate::scenario::Mesh;
use crate::scenario::fixture::Manifest;

/// A rule's fixed facts.
pub struct Rule {
    pub id: &'static str,
    /// What it catches, in one line (`lint --list-rules`, `--explain`, the README's table).
    pub summary: &'static str,
    pub severity: Severity,
    pub evidence: &'static str,
    pub check: fn(&Index, &mut Findings),
}

const KONG_CHARTS_README: &str = "https://github.com/Kong/charts/blob/main/charts/ingress/README.md";
const KONG_CHART_VALUES: &str = "https://github.com/Kong/charts/blob/main/charts/kong/values.yaml";
const KONG_CHART_DEPLOYMENT: &str =
    "https://github.com/Kong/charts/blob/kong-3.2.0/charts/kong/templates/deployment.yaml";
const ISTIO_WEBHOOK: &str = "https://github.com/istio/istio/blob/master/manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml";
const KIC_ENV: &str = "https://github.com/Kong/kubernetes-ingress-controller/blob/main/internal/cmd/rootcmd/env.go";
const KIC_ANNOTATIONS: &str =
    "https://github.com/Kong/kubernetes-ingress-controller/blob/main/internal/annotations/annotations.go";
const KIC_ANNOTATIONS_DOC: &str = "https://developer.konghq.com/kubernetes-ingress-controller/reference/annotations/";
const ISTIO_STRICT: &str = "https://github.com/istio/istio/issues/37431";
const ISTIO_IST0101: &str = "https://istio.io/latest/docs/reference/config/analysis/ist0101/";
const ISTIO_DR: &str = "https://istio.io/latest/docs/reference/config/networking/destination-rule/";
const KIC_PLUGINS: &str =
    "https://github.com/Kong/kubernetes-ingress-controller/blob/main/internal/dataplane/kongstate/kongstate.go";
const KIC_STORE: &str = "https://github.com/Kong/kubernetes-ingress-controller/blob/main/internal/store/store.go";
const KONG_ZIPKIN_SCHEMA: &str = "https://github.com/Kong/kong/blob/master/kong/plugins/zipkin/schema.lua";
/// OpenTelemetry's `endpoint` is a deprecated shorthand for `traces_endpoint` (its
/// `shorthand_fields`, "removal_in_version 4.0").
const KONG_OTEL_SCHEMA: &str = "https://github.com/Kong/kong/blob/3.9.1/kong/plugins/opentelemetry/schema.lua";
const ISTIO_V1_APIS: &str = "https://istio.io/latest/blog/2024/v1-apis/";
const LINKERD_INJECTION: &str = "https://linkerd.io/2-edge/features/proxy-injection/";
const LINKERD_INGRESS: &str = "https://linkerd.io/2-edge/tasks/using-ingress/";
const LINKERD_AUTH_POLICY: &str = "https://linkerd.io/2-edge/reference/authorization-policy/";
const LINKERD_PROXY_CONFIG: &str = "https://linkerd.io/2-edge/reference/proxy-configuration/";
const ISTIO_ANNOTATIONS: &str = "https://istio.io/latest/docs/reference/config/annotations/";
const GATEWAY_REFERENCE_GRANT: &str = "https://gateway-api.sigs.k8s.io/api-types/referencegrant/";
const LINKERD_SHIFTING: &str = "https://linkerd.io/2-edge/tasks/traffic-shifting/";
const KIC_INGRESS: &str = "https://github.com/Kong/kubernetes-ingress-controller/blob/main/internal/dataplane/translator/subtranslator/ingress.go";
const K8S_FIELD_VALIDATION: &str = "https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation";
const K8S_CRD_VALIDATION: &str =
    "https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation";
const KONG_CONSTANTS: &str = "https://github.com/Kong/kong/blob/3.9.1/kong/constants.lua";
/// With `tracing_instrumentations = off` (kong/templates/kong_defaults.lua) the plugin only
/// propagates: it samples nothing and exports no span.
const KONG_OTEL_TRACES: &str = "https://github.com/Kong/kong/blob/3.9.3/kong/plugins/opentelemetry/traces.lua";
const KIC_CREDENTIAL: &str =
    "https://github.com/Kong/kubernetes-ingress-controller/blob/v3.5.13/internal/util/credential.go";
const KIC_CHANGELOG: &str = "https://github.com/Kong/kubernetes-ingress-controller/blob/v3.5.13/CHANGELOG.md";
const ISTIO_WAYPOINT: &str = "https://istio.io/latest/docs/ambient/usage/waypoint/";
const ISTIO_AMBIENT_ENROLL: &str = "https://istio.io/latest/docs/ambient/usage/add-workloads/";
const ISTIO_AMBIENT_AUTHZ: &str =
    "https://github.com/istio/istio/blob/1.30.3/pilot/pkg/serviceregistry/ambient/authorization.go";
const KONG_SA: &str = "https://github.com/Kong/charts/blob/main/charts/ingress/ci/__snapshots__/kic-3.4-values.snap";

pub const RULES: &[Rule] = &[
    Rule {
        id: "kong-values-ignored-key",
        summary: "a top-level key the Kong chart does not read (kong/ingress: anything but controller, gateway, deployment, global): ignored without a word",
        severity: Severity::Error,
        evidence: KONG_CHARTS_README,
        check: values::kong_values_ignored_key,
    },
    Rule {
        id: "kong-values-label-type",
        summary: "a non-string pod label in Kong's values (`sidecar.istio.io/inject: true`): the chart writes it unquoted and the API server rejects the Deployment",
        severity: Severity::Error,
        evidence: KONG_CHART_DEPLOYMENT,
        check: values::kong_values_label_type,
    },
    Rule {
        id: "mesh-annotation-on-service",
        summary: "`sidecar.istio.io/*` or `linkerd.io/inject` under `proxy.annotations`: they land on Kong's proxy Service, not its pods",
        severity: Severity::Error,
        evidence: KONG_CHART_VALUES,
        check: values::mesh_annotation_on_service,
    },
    Rule {
        id: "istio-inject-annotation-not-label",
        summary: "`sidecar.istio.io/inject` as a pod annotation: Istio's injector matches the label",
        severity: Severity::Error,
        evidence: ISTIO_WEBHOOK,
        check: istio::istio_inject_annotation_not_label,
    },
    Rule {
        id: "kic-env-unknown",
        summary: "controller env keys that name no KIC flag, including a doubled `CONTROLLER_` prefix",
        severity: Severity::Error,
        evidence: KIC_ENV,
        check: values::kic_env_unknown,
    },
    Rule {
        id: "kong-annotation-wrong-object",
        summary: "a Service-only `konghq.com/*` annotation on an Ingress, or an Ingress-only one on a Service",
        severity: Severity::Error,
        evidence: KIC_ANNOTATIONS_DOC,
        check: annotations::kong_annotation_wrong_object,
    },
    Rule {
        id: "kong-annotation-unknown",
        summary: "a `konghq.com/*` annotation KIC does not read (e.g. `konghq.com/service-upstream`)",
        severity: Severity::Error,
        evidence: KIC_ANNOTATIONS,
        check: annotations::kong_annotation_unknown,
    },
    Rule {
        id: "istio-strict-kong-unmeshed",
        summary: "a Kong backend in a STRICT namespace while Kong is not in the mesh, or targets pod IPs",
        severity: Severity::Error,
        evidence: ISTIO_STRICT,
        check: istio::istio_strict_kong_unmeshed,
    },
    Rule {
        id: "kong-upstream-bypasses-mesh-routing",
        summary: "a mesh route (VirtualService, HTTPRoute) on a Kong backend without service-upstream: Kong targets pod IPs and the route never applies",
        severity: Severity::Error,
        evidence: KIC_ANNOTATIONS_DOC,
        check: routing::kong_upstream_bypasses_mesh_routing,
    },
    Rule {
        id: "kong-upstream-bypasses-waypoint",
        summary: "a Kong backend that uses a service waypoint without service-upstream: Kong targets pod IPs and the waypoint's L7 policy and routes never apply",
        severity: Severity::Error,
        evidence: ISTIO_WAYPOINT,
        check: ambient::kong_upstream_bypasses_waypoint,
    },
    Rule {
        id: "ambient-policy-http-rules",
        summary: "an AuthorizationPolicy ztunnel enforces (ambient, no targetRefs) matching HTTP attributes: the rules are dropped (ALLOW) or widened (DENY)",
        severity: Severity::Error,
        evidence: ISTIO_AMBIENT_AUTHZ,
        check: ambient::ambient_policy_http_rules,
    },
    Rule {
        id: "ambient-and-sidecar-injection",
        summary: "a namespace labelled for ambient and for sidecar injection: its pods get sidecars and leave the ambient data plane",
        severity: Severity::Warning,
        evidence: ISTIO_AMBIENT_ENROLL,
        check: ambient::ambient_and_sidecar_injection,
    },
    Rule {
        id: "waypoint-unused",
        summary: "a waypoint no namespace, Service or workload points at with istio.io/use-waypoint: it proxies nothing",
        severity: Severity::Warning,
        evidence: ISTIO_WAYPOINT,
        check: ambient::waypoint_unused,
    },
    Rule {
        id: "istio-host-header-mismatch",
        summary: "a VirtualService on Kong's backend while Kong sends the client's Host",
        severity: Severity::Warning,
        evidence: KIC_ANNOTATIONS_DOC,
        check: istio::istio_host_header_mismatch,
    },
    Rule {
        id: "istio-subset-undefined",
        summary: "a VirtualService subset no DestinationRule defines (IST0101)",
        severity: Severity::Error,
        evidence: ISTIO_IST0101,
        check: istio::istio_subset_undefined,
    },
    Rule {
        id: "istio-subset-selects-nothing",
        summary: "a DestinationRule subset whose labels match no workload",
        severity: Severity::Warning,
        evidence: ISTIO_DR,
        check: istio::istio_subset_selects_nothing,
    },
    Rule {
        id: "kong-plugin-unresolved",
        summary: "a `konghq.com/plugins` name with no KongPlugin in that namespace and no KongClusterPlugin",
        severity: Severity::Error,
        evidence: KIC_PLUGINS,
        check: plugins::kong_plugin_unresolved,
    },
    Rule {
        id: "kong-cluster-plugin-no-class",
        summary: "a KongClusterPlugin without `kubernetes.io/ingress.class`",
        severity: Severity::Warning,
        evidence: KIC_STORE,
        check: plugins::kong_cluster_plugin_no_class,
    },
    Rule {
        id: "kong-plugin-deprecated-field",
        summary: "zipkin/opentelemetry `header_type`, `default_header_type`, opentelemetry `endpoint`",
        severity: Severity::Warning,
        evidence: KONG_ZIPKIN_SCHEMA,
        check: plugins::kong_plugin_deprecated_field,
    },
    Rule {
        id: "kong-enterprise-plugin",
        summary: "an Enterprise-only plugin (e.g. `mtls-auth`) on the OSS image",
        severity: Severity::Error,
        // The plugins OSS Kong bundles: the Enterprise ones are not among them.
        evidence: KONG_CONSTANTS,
        check: plugins::kong_enterprise_plugin,
    },
    Rule {
        id: "kong-plugin-unknown",
        summary: "a plugin name Kong 3.9 does not bundle (e.g. `rate-limting`), with the closest one",
        severity: Severity::Error,
        evidence: KONG_CONSTANTS,
        check: plugins::kong_plugin_unknown,
    },
    Rule {
        id: "kong-zipkin-sampled-rarely",
        summary: "Kong's zipkin plugin without `sample_ratio`: it samples 1 request in 1000, so most traces are missing",
        severity: Severity::Warning,
        evidence: KONG_ZIPKIN_SCHEMA,
        check: plugins::kong_zipkin_sampled_rarely,
    },
    Rule {
        id: "kong-otel-not-instrumented",
        summary: "Kong's opentelemetry plugin while Kong's tracing instrumentation is off (its default): no span is exported",
        severity: Severity::Warning,
        evidence: KONG_OTEL_TRACES,
        check: plugins::kong_otel_not_instrumented,
    },
    Rule {
        id: "ingress-no-class",
        summary: "an Ingress or KongConsumer naming no class: KIC ignores it unless Kong's IngressClass is the default",
        severity: Severity::Warning,
        evidence: KIC_STORE,
        check: routing::ingress_no_class,
    },
    Rule {
        id: "kong-credential-unlabelled",
        summary: "a credential Secret without the `konghq.com/credential` label (KIC 3.x ignores it; `kongCredType` is gone)",
        severity: Severity::Error,
        evidence: KIC_CREDENTIAL,
        check: annotations::kong_credential_unlabelled,
    },
    Rule {
        id: "kong-ingress-deprecated",
        summary: "KongIngress and `konghq.com/override`, deprecated since KIC 3.0",
        severity: Severity::Warning,
        evidence: KIC_CHANGELOG,
        check: annotations::kong_ingress_deprecated,
    },
    Rule {
        id: "api-version-deprecated",
        summary: "Istio v1beta1/v1alpha3/v1alpha1 API versions where the pinned CRDs serve v1",
        severity: Severity::Warning,
        evidence: ISTIO_V1_APIS,
        check: istio::api_version_deprecated,
    },
    Rule {
        id: "linkerd-inject-on-workload-metadata",
        summary: "`linkerd.io/inject` on a workload's own metadata (an error only when nothing else injects the pods)",
        severity: Severity::Error,
        evidence: LINKERD_INJECTION,
        check: linkerd::linkerd_inject_on_workload_metadata,
    },
    Rule {
        id: "linkerd-ingress-open-relay",
        summary: "Kong in Linkerd's ingress mode with an Ingress no `l5d-dst-override`-stripping plugin covers",
        severity: Severity::Error,
        evidence: LINKERD_INGRESS,
        check: linkerd::linkerd_ingress_open_relay,
    },
    Rule {
        id: "smi-trafficsplit",
        summary: "an SMI TrafficSplit: it needs the retired linkerd-smi extension",
        severity: Severity::Warning,
        evidence: LINKERD_SHIFTING,
        check: linkerd::smi_trafficsplit,
    },
    Rule {
        id: "serviceprofile-overrides-httproute",
        summary: "a ServiceProfile and an HTTPRoute on one Service: the ServiceProfile wins",
        severity: Severity::Warning,
        evidence: LINKERD_SHIFTING,
        check: linkerd::serviceprofile_overrides_httproute,
    },
    Rule {
        id: "ingress-route-duplicate",
        summary: "the same host and path on two Ingresses",
        severity: Severity::Warning,
        evidence: KIC_INGRESS,
        check: routing::ingress_route_duplicate,
    },
    Rule {
        id: "authz-principal-unknown",
        summary: "an Istio AuthorizationPolicy principal or a Linkerd MeshTLSAuthentication identity naming a Kong service account the chart does not create",
        severity: Severity::Warning,
        evidence: KONG_SA,
        check: istio::authz_principal_unknown,
    },
    Rule {
        id: "kong-httproute-backend-not-granted",
        summary: "a backend of Kong's HTTPRoute in another namespace that no ReferenceGrant there admits: KIC drops it",
        severity: Severity::Error,
        evidence: GATEWAY_REFERENCE_GRANT,
        check: routing::kong_httproute_backend_not_granted,
    },
    Rule {
        id: "linkerd-authz-kong-unmeshed",
        summary: "a Kong backend behind a Linkerd Server that admits only mesh-authenticated clients while Kong is not in the mesh",
        severity: Severity::Error,
        evidence: LINKERD_AUTH_POLICY,
        check: linkerd::linkerd_authz_kong_unmeshed,
    },
    Rule {
        id: "mesh-proxy-skips-kong-hop",
        summary: "a skip-ports annotation (Linkerd `config.linkerd.io/skip-*-ports`, Istio `traffic.sidecar.istio.io/exclude*Ports`) that takes Kong's hop to a backend around the mesh proxy",
        severity: Severity::Error,
        evidence: LINKERD_PROXY_CONFIG,
        check: routing::mesh_proxy_skips_kong_hop,
    },
    Rule {
        id: "k8s-unknown-field",
        summary: "a field of a core kind that the Kubernetes version checked (1.34, 1.35 or 1.36) does not have, or a value of the wrong type; each at its line",
        severity: Severity::Error,
        evidence: K8S_FIELD_VALIDATION,
        check: schema::k8s_schema,
    },
    Rule {
        id: "crd-schema",
        summary: "a Kong, Istio, Gateway API or Linkerd resource that does not fit its CRD at the pinned version",
        severity: Severity::Error,
        evidence: K8S_CRD_VALIDATION,
        check: schema::crd_schema,
    },
];

/// The annotation that silences rules on one object: `lint.kme2e.dev/ignore: "rule-a,rule-b"`.
pub const IGNORE_ANNOTATION: &str = "lint.kme2e.dev/ignore";

/// Findings of one rule as it runs.
pub struct Findings<'r> {
    rule: &'r Rule,
    pub out: Vec<Diagnostic>,
    /// Findings silenced by the object's own ignore annotation.
    pub suppressed: usize,
}

impl<'r> Findings<'r> {
    pub fn new(rule: &'r Rule) -> Self {
        Findings { rule, out: Vec::new(), suppressed: 0 }
    }

    fn on_object(&mut self, object: &Manifest, path: &[&str], message: String, fix: String) {
        self.on_object_about(object, &[], path, message, fix);
    }

    /// Whether `object` silences this rule with its ignore annotation.
    fn ignored_by(&self, object: &Manifest) -> bool {
        object.annotation(IGNORE_ANNOTATION).is_some_and(|list| list.split(',').any(|r| r.trim() == self.rule.id))
    }

    /// A finding at `path` of `object` whose message is about the objects `about` too (the
    /// Service behind an Ingress, the policy that refuses it): the ignore annotation on any of
    /// them silences it, not only on the object it is reported at.
    fn on_object_about(&mut self, object: &Manifest, about: &[&Manifest], path: &[&str], message: String, fix: String) {
        if self.ignored_by(object) || about.iter().any(|o| self.ignored_by(o)) {
            self.suppressed += 1;
            return;
        }
        let position = object.position_of(path);
        self.push(&object.file, position, &object.source, &path.join("."), message, fix);
    }

    /// As [`Findings::on_object`], at another severity than the rule's: when what the inputs say
    /// makes the mistake less (or more) harmful.
    fn on_object_at(&mut self, severity: Severity, object: &Manifest, path: &[&str], message: String, fix: String) {
        let before = self.out.len();
        self.on_object(object, path, message, fix);
        // Only a finding this call pushed (a suppressed one pushes nothing).
        if self.out.len() > before
            && let Some(d) = self.out.last_mut()
        {
            d.severity = severity;
        }
    }

    /// As [`Findings::on_object`], citing `evidence` instead of the rule's own (a rule whose
    /// findings come from several upstream sources).
    fn on_object_citing(
        &mut self,
        evidence: &'static str,
        object: &Manifest,
        path: &[&str],
        message: String,
        fix: String,
    ) {
        let before = self.out.len();
        self.on_object(object, path, message, fix);
        self.cite_since(before, evidence);
    }

    /// Cite `evidence` on the findings pushed since `before` (a rule with several sources).
    fn cite_since(&mut self, before: usize, evidence: &'static str) {
        for d in self.out.iter_mut().skip(before) {
            d.evidence = Some(evidence.to_owned());
        }
    }

    /// The note that a rule relied on the assumed Kong namespace and release, once.
    fn assumed(&mut self, index: &Index, file: &std::path::Path) {
        if let crate::lint::kong::Source::Assumed(what) = &index.kong.source {
            self.note(file, format!("Kong's install is judged by an assumption: {what}"));
        }
    }

    /// A note: what this rule could not check and why (never changes the exit code).
    fn note(&mut self, file: &std::path::Path, message: String) {
        // Said once per run, however many objects led to it.
        if self.out.iter().any(|d| d.severity == Severity::Note && d.message == message) {
            return;
        }
        let mut d = Diagnostic::note(self.rule.id, file, message);
        d.evidence = Some(self.rule.evidence.to_owned());
        self.out.push(d);
    }

    /// As [`Findings::on_values`], at another severity than the rule's.
    fn on_values_at(&mut self, severity: Severity, values: &ValuesFile, path: &[&str], message: String, fix: String) {
        let before = self.out.len();
        self.on_values(values, path, message, fix);
        if self.out.len() > before
            && let Some(d) = self.out.last_mut()
        {
            d.severity = severity;
        }
    }

    fn on_values(&mut self, values: &ValuesFile, path: &[&str], message: String, fix: String) {
        if values.ignored_rules().iter().any(|(_, id)| *id == self.rule.id) {
            self.suppressed += 1;
            return;
        }
        let position = values.position_of(path);
        self.push(&values.file, position, &values.text, &path.join("."), message, fix);
    }

    fn push(
        &mut self,
        file: &std::path::Path,
        position: Position,
        source: &str,
        field: &str,
        message: String,
        fix: String,
    ) {
        let mut d = Diagnostic::error(self.rule.id, file, position, message)
            .with_source(source)
            .with_field(field)
            .with_help(fix);
        d.severity = self.rule.severity;
        d.evidence = Some(self.rule.evidence.to_owned());
        self.out.push(d);
    }
}

/// Run every rule over the index: the findings, and how many each rule had silenced by an
/// object's ignore annotation.
pub fn run_all(index: &Index) -> (Vec<Diagnostic>, BTreeMap<&'static str, usize>) {
    let mut out = Vec::new();
    let mut suppressed = BTreeMap::new();
    for rule in RULES {
        let mut findings = Findings::new(rule);
        (rule.check)(index, &mut findings);
        out.extend(findings.out);
        if findings.suppressed > 0 {
            *suppressed.entry(rule.id).or_default() += findings.suppressed;
        }
    }
    out.extend(unknown_ignored_rules(index));
    (out, suppressed)
}

/// A rule named in an object's ignore annotation that does not exist silences nothing: said,
/// with the closest rule, as `--allow` refuses one (a warning: the object itself is fine).
fn unknown_ignored_rules(index: &Index) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let help = |id: &str| match crate::diagnostic::closest(id, RULES.iter().map(|r| r.id)) {
        Some(near) => format!("did you mean `{near}`? (`lint --list-rules` lists them)"),
        None => "`lint --list-rules` lists the rules".into(),
    };
    for values in &index.values {
        for (line, id) in values.ignored_rules().into_iter().filter(|(_, id)| rule(id).is_none()) {
            let mut d = Diagnostic::error(
                "ignore-unknown-rule",
                &values.file,
                Position::new(line, 1),
                format!(
                    "the `# {IGNORE_ANNOTATION}:` comment names no lint rule `{}`: it silences nothing",
                    crate::diagnostic::escape_controls(id)
                ),
            )
            .with_source(&values.text)
            .with_help(help(id));
            d.severity = Severity::Warning;
            out.push(d);
        }
    }
    for o in &index.objects {
        let Some(list) = o.annotation(IGNORE_ANNOTATION) else { continue };
        for id in list.split(',').map(str::trim).filter(|id| !id.is_empty() && rule(id).is_none()) {
            let path = ["metadata", "annotations", IGNORE_ANNOTATION];
            let help = match crate::diagnostic::closest(id, RULES.iter().map(|r| r.id)) {
                Some(near) => format!("did you mean `{near}`? (`lint --list-rules` lists them)"),
                None => "`lint --list-rules` lists the rules".into(),
            };
            let mut d = Diagnostic::error(
                "ignore-unknown-rule",
                &o.file,
                o.position_of(&path),
                format!(
                    "`{IGNORE_ANNOTATION}` on {} {} names no lint rule `{}`: it silences nothing",
                    o.kind,
                    o.name,
                    crate::diagnostic::escape_controls(id)
                ),
            )
            .with_source(&o.source)
            .with_field(path.join("."))
            .with_help(help);
            d.severity = Severity::Warning;
            out.push(d);
        }
    }
    out
}

/// The rule named `id`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

/// The strings of the array at `pointer` (e.g. `/spec/hosts`).
fn strings_at<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a str> {
    v.pointer(pointer).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

fn map_at<'a>(v: &'a Value, path: &[&str]) -> impl Iterator<Item = (&'a String, &'a Value)> {
    path.iter().try_fold(v, |v, k| v.get(*k)).and_then(Value::as_object).into_iter().flatten()
}

const WORKLOADS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"];

fn workloads(index: &Index) -> impl Iterator<Item = &Manifest> {
    index.objects.iter().filter(|o| WORKLOADS.contains(&o.kind.as_str()))
}

/// Kong's hop to one backend of an Ingress, as far as the inputs say: the Service, its port the
/// reference names, whether Kong dials the Service (`service-upstream`) or its pods, and the
/// workloads behind it.
struct KongHop<'a> {
    service: &'a Manifest,
    /// The Service port (what Kong dials with service-upstream).
    port: Option<u16>,
    /// The pods' port: `targetPort` (a number, or a container port's name).
    target: Option<Value>,
    service_upstream: bool,
    /// Workloads in the namespace whose pod labels the Service selects.
    pods: Vec<&'a Manifest>,
}

impl KongHop<'_> {
    /// The port Kong's connection is addressed to: the Service port with service-upstream,
    /// else the pods' port, resolved through the workloads' container ports when named.
    fn dialled_port(&self) -> Option<u16> {
        if self.service_upstream { self.port } else { self.pod_port().map(|(n, _)| n) }
    }

    /// The pods' port as `(number, name)`, when the inputs say.
    fn pod_port(&self) -> Option<(u16, Option<String>)> {
        let containers = |w: &&Manifest| {
            w.object.pointer("/spec/template/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default()
        };
        let ports: Vec<Value> = self
            .pods
            .iter()
            .flat_map(containers)
            .flat_map(|c| c.get("ports").and_then(Value::as_array).cloned().unwrap_or_default())
            .collect();
        match self.target.as_ref()? {
            Value::Number(n) => {
                let n = u16::try_from(n.as_u64()?).ok()?;
                let name = ports
                    .iter()
                    .find(|p| p.get("containerPort").and_then(Value::as_u64) == Some(u64::from(n)))
                    .and_then(|p| p.get("name").and_then(Value::as_str))
                    .map(str::to_owned);
                Some((n, name))
            }
            Value::String(name) => {
                let port = ports.iter().find(|p| p.get("name").and_then(Value::as_str) == Some(name.as_str()))?;
                Some((u16::try_from(port.get("containerPort")?.as_u64()?).ok()?, Some(name.clone())))
            }
            _ => None,
        }
    }
}

/// Whether every label of `selector` is among `labels`.
fn selects(selector: &serde_json::Map<String, Value>, labels: &serde_json::Map<String, Value>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Kong's hop to the backend `service` that the Ingress reference at `path` names.
fn kong_hop<'a>(index: &'a Index, ingress: &Manifest, service: &str, path: &[String]) -> Option<KongHop<'a>> {
    let ns = ingress.namespace_or_default();
    let svc = index.find("Service", ns, service)?;
    // The reference's `port` beside its `name` (rules), or under `service` (defaultBackend).
    let reference = match path.last().map(String::as_str) {
        Some("name") => path[..path.len() - 1].iter().try_fold(&ingress.object, |v, k| v.get(k.as_str())),
        _ => path.iter().try_fold(&ingress.object, |v, k| v.get(k.as_str())).and_then(|b| b.get("service")),
    };
    let wanted = reference.and_then(|r| r.get("port"));
    let ports = svc.object.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    let port = match wanted {
        // An HTTPRoute's backendRef names the port by number (`port: 80`); an Ingress's by
        // `{number}` or `{name}`.
        Some(n @ Value::Number(_)) => ports.iter().find(|p| p.get("port") == Some(n)),
        Some(w) => ports.iter().find(|p| {
            w.get("number").is_some_and(|n| p.get("port") == Some(n))
                || w.get("name").is_some_and(|n| p.get("name") == Some(n))
        }),
        None if ports.len() == 1 => ports.first(),
        None => None,
    };
    let number = port.and_then(|p| p.get("port")).and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok());
    let target =
        port.map(|p| p.get("targetPort").cloned().unwrap_or_else(|| p.get("port").cloned().unwrap_or_default()));
    let selector = svc.object.pointer("/spec/selector").and_then(Value::as_object);
    let pods = workloads(index)
        .filter(|w| w.namespace_or_default() == ns)
        .filter(|w| {
            let labels = w.object.pointer("/spec/template/metadata/labels").and_then(Value::as_object);
            selector.zip(labels).is_some_and(|(s, l)| selects(s, l))
        })
        .collect();
    Some(KongHop {
        service: svc,
        port: number,
        target,
        service_upstream: svc.annotation("ingress.kubernetes.io/service-upstream") == Some("true"),
        pods,
    })
}

/// Whether a port list of a skip/exclude annotation (`8080,9000-9100`) holds `port`; ranges
/// count only where the mesh reads them (`ranges`).
fn port_list_holds(list: &str, port: u16, ranges: bool) -> bool {
    list.split(',').map(str::trim).filter(|p| !p.is_empty()).any(|p| match p.split_once('-') {
        Some((from, to)) if ranges => {
            matches!((from.trim().parse::<u16>(), to.trim().parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&port))
        }
        Some(_) => false,
        None => p.parse::<u16>() == Ok(port),
    })
}

/// VirtualService hosts name Services by short name or FQDN; return the Service name.
fn service_of_host<'a>(host: &'a str, namespace: &str) -> &'a str {
    let short = host.split('.').next().unwrap_or(host);
    let rest = host.strip_prefix(short).unwrap_or("").trim_start_matches('.');
    if rest.is_empty() || rest.starts_with(namespace) { short } else { host }
}

fn plugin_objects(index: &Index) -> impl Iterator<Item = &Manifest> {
    index.objects.iter().filter(|o| o.kind == "KongPlugin" || o.kind == "KongClusterPlugin")
}
