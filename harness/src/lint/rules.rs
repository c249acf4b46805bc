//! The preflight rules. Each says what breaks at run time, how to fix it, and where upstream
//! shows it (`shared` research Table 2 is where they were collected).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::index::{Index, ValuesFile, ingress_backends, ingress_routes};
use super::kong::{KongChart, Meshing};
use crate::diagnostic::{Diagnostic, Position, Severity};
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
const KONG_MTLS_AUTH: &str = "https://developer.konghq.com/plugins/mtls-auth/";
const ISTIO_V1_APIS: &str = "https://istio.io/latest/blog/2024/v1-apis/";
const LINKERD_INJECTION: &str = "https://linkerd.io/2-edge/features/proxy-injection/";
const LINKERD_INGRESS: &str = "https://linkerd.io/2-edge/tasks/using-ingress/";
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
const KONG_SA: &str = "https://github.com/Kong/charts/blob/main/charts/ingress/ci/__snapshots__/kic-3.4-values.snap";

pub const RULES: &[Rule] = &[
    Rule {
        id: "kong-values-ignored-key",
        summary: "a top-level key the Kong chart does not read (kong/ingress: anything but controller, gateway, deployment, global): ignored without a word",
        severity: Severity::Error,
        evidence: KONG_CHARTS_README,
        check: kong_values_ignored_key,
    },
    Rule {
        id: "kong-values-label-type",
        summary: "a non-string pod label in Kong's values (`sidecar.istio.io/inject: true`): the chart writes it unquoted and the API server rejects the Deployment",
        severity: Severity::Error,
        evidence: KONG_CHART_DEPLOYMENT,
        check: kong_values_label_type,
    },
    Rule {
        id: "mesh-annotation-on-service",
        summary: "`sidecar.istio.io/*` or `linkerd.io/inject` under `proxy.annotations`: they land on Kong's proxy Service, not its pods",
        severity: Severity::Error,
        evidence: KONG_CHART_VALUES,
        check: mesh_annotation_on_service,
    },
    Rule {
        id: "istio-inject-annotation-not-label",
        summary: "`sidecar.istio.io/inject` as a pod annotation: Istio's injector matches the label",
        severity: Severity::Error,
        evidence: ISTIO_WEBHOOK,
        check: istio_inject_annotation_not_label,
    },
    Rule {
        id: "kic-env-unknown",
        summary: "controller env keys that name no KIC flag, including a doubled `CONTROLLER_` prefix",
        severity: Severity::Error,
        evidence: KIC_ENV,
        check: kic_env_unknown,
    },
    Rule {
        id: "kong-annotation-wrong-object",
        summary: "a Service-only `konghq.com/*` annotation on an Ingress, or an Ingress-only one on a Service",
        severity: Severity::Error,
        evidence: KIC_ANNOTATIONS_DOC,
        check: kong_annotation_wrong_object,
    },
    Rule {
        id: "kong-annotation-unknown",
        summary: "a `konghq.com/*` annotation KIC does not read (e.g. `konghq.com/service-upstream`)",
        severity: Severity::Error,
        evidence: KIC_ANNOTATIONS,
        check: kong_annotation_unknown,
    },
    Rule {
        id: "istio-strict-kong-unmeshed",
        summary: "a Kong backend in a STRICT namespace while Kong is not in the mesh, or targets pod IPs",
        severity: Severity::Error,
        evidence: ISTIO_STRICT,
        check: istio_strict_kong_unmeshed,
    },
    Rule {
        id: "kong-upstream-bypasses-mesh-routing",
        summary: "a mesh route (VirtualService, HTTPRoute) on a Kong backend without service-upstream: Kong targets pod IPs and the route never applies",
        severity: Severity::Error,
        evidence: KIC_ANNOTATIONS_DOC,
        check: kong_upstream_bypasses_mesh_routing,
    },
    Rule {
        id: "istio-host-header-mismatch",
        summary: "a VirtualService on Kong's backend while Kong sends the client's Host",
        severity: Severity::Warning,
        evidence: KIC_ANNOTATIONS_DOC,
        check: istio_host_header_mismatch,
    },
    Rule {
        id: "istio-subset-undefined",
        summary: "a VirtualService subset no DestinationRule defines (IST0101)",
        severity: Severity::Error,
        evidence: ISTIO_IST0101,
        check: istio_subset_undefined,
    },
    Rule {
        id: "istio-subset-selects-nothing",
        summary: "a DestinationRule subset whose labels match no workload",
        severity: Severity::Warning,
        evidence: ISTIO_DR,
        check: istio_subset_selects_nothing,
    },
    Rule {
        id: "kong-plugin-unresolved",
        summary: "a `konghq.com/plugins` name with no KongPlugin in that namespace and no KongClusterPlugin",
        severity: Severity::Error,
        evidence: KIC_PLUGINS,
        check: kong_plugin_unresolved,
    },
    Rule {
        id: "kong-cluster-plugin-no-class",
        summary: "a KongClusterPlugin without `kubernetes.io/ingress.class`",
        severity: Severity::Warning,
        evidence: KIC_STORE,
        check: kong_cluster_plugin_no_class,
    },
    Rule {
        id: "kong-plugin-deprecated-field",
        summary: "zipkin/opentelemetry `header_type`, `default_header_type`, opentelemetry `endpoint`",
        severity: Severity::Warning,
        evidence: KONG_ZIPKIN_SCHEMA,
        check: kong_plugin_deprecated_field,
    },
    Rule {
        id: "kong-enterprise-plugin",
        summary: "an Enterprise-only plugin (e.g. `mtls-auth`) on the OSS image",
        severity: Severity::Error,
        evidence: KONG_MTLS_AUTH,
        check: kong_enterprise_plugin,
    },
    Rule {
        id: "kong-plugin-unknown",
        summary: "a plugin name Kong 3.9 does not bundle (e.g. `rate-limting`), with the closest one",
        severity: Severity::Error,
        evidence: KONG_CONSTANTS,
        check: kong_plugin_unknown,
    },
    Rule {
        id: "kong-zipkin-sampled-rarely",
        summary: "Kong's zipkin plugin without `sample_ratio`: it samples 1 request in 1000, so most traces are missing",
        severity: Severity::Warning,
        evidence: KONG_ZIPKIN_SCHEMA,
        check: kong_zipkin_sampled_rarely,
    },
    Rule {
        id: "kong-otel-not-instrumented",
        summary: "Kong's opentelemetry plugin while Kong's tracing instrumentation is off (its default): no span is exported",
        severity: Severity::Warning,
        evidence: KONG_OTEL_TRACES,
        check: kong_otel_not_instrumented,
    },
    Rule {
        id: "ingress-no-class",
        summary: "an Ingress or KongConsumer naming no class: KIC ignores it unless Kong's IngressClass is the default",
        severity: Severity::Warning,
        evidence: KIC_STORE,
        check: ingress_no_class,
    },
    Rule {
        id: "kong-credential-unlabelled",
        summary: "a credential Secret without the `konghq.com/credential` label (KIC 3.x ignores it; `kongCredType` is gone)",
        severity: Severity::Error,
        evidence: KIC_CREDENTIAL,
        check: kong_credential_unlabelled,
    },
    Rule {
        id: "kong-ingress-deprecated",
        summary: "KongIngress and `konghq.com/override`, deprecated since KIC 3.0",
        severity: Severity::Warning,
        evidence: KIC_CHANGELOG,
        check: kong_ingress_deprecated,
    },
    Rule {
        id: "api-version-deprecated",
        summary: "Istio v1beta1/v1alpha3/v1alpha1 API versions where the pinned CRDs serve v1",
        severity: Severity::Warning,
        evidence: ISTIO_V1_APIS,
        check: api_version_deprecated,
    },
    Rule {
        id: "linkerd-inject-on-workload-metadata",
        summary: "`linkerd.io/inject` on a workload's own metadata (an error only when nothing else injects the pods)",
        severity: Severity::Error,
        evidence: LINKERD_INJECTION,
        check: linkerd_inject_on_workload_metadata,
    },
    Rule {
        id: "linkerd-ingress-open-relay",
        summary: "Kong in Linkerd's ingress mode with an Ingress no `l5d-dst-override`-stripping plugin covers",
        severity: Severity::Error,
        evidence: LINKERD_INGRESS,
        check: linkerd_ingress_open_relay,
    },
    Rule {
        id: "smi-trafficsplit",
        summary: "an SMI TrafficSplit: it needs the retired linkerd-smi extension",
        severity: Severity::Warning,
        evidence: LINKERD_SHIFTING,
        check: smi_trafficsplit,
    },
    Rule {
        id: "serviceprofile-overrides-httproute",
        summary: "a ServiceProfile and an HTTPRoute on one Service: the ServiceProfile wins",
        severity: Severity::Warning,
        evidence: LINKERD_SHIFTING,
        check: serviceprofile_overrides_httproute,
    },
    Rule {
        id: "ingress-route-duplicate",
        summary: "the same host and path on two Ingresses",
        severity: Severity::Warning,
        evidence: KIC_INGRESS,
        check: ingress_route_duplicate,
    },
    Rule {
        id: "authz-principal-unknown",
        summary: "an AuthorizationPolicy principal naming a Kong service account the chart does not create",
        severity: Severity::Warning,
        evidence: KONG_SA,
        check: authz_principal_unknown,
    },
    Rule {
        id: "k8s-unknown-field",
        summary: "a field of a core kind that Kubernetes 1.35 does not have, or a value of the wrong type; each at its line",
        severity: Severity::Error,
        evidence: K8S_FIELD_VALIDATION,
        check: k8s_schema,
    },
    Rule {
        id: "crd-schema",
        summary: "a Kong, Istio, Gateway API or Linkerd resource that does not fit its CRD at the pinned version",
        severity: Severity::Error,
        evidence: K8S_CRD_VALIDATION,
        check: crd_schema,
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
        let ignored =
            object.annotation(IGNORE_ANNOTATION).is_some_and(|list| list.split(',').any(|r| r.trim() == self.rule.id));
        if ignored {
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

    /// The note that a rule relied on the assumed Kong namespace and release, once.
    fn assumed(&mut self, index: &Index, file: &std::path::Path) {
        if let super::kong::Source::Assumed(what) = &index.kong.source {
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

    fn on_values(&mut self, values: &ValuesFile, path: &[&str], message: String, fix: String) {
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
    (out, suppressed)
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

// --- Helm values -------------------------------------------------------------------------

fn kong_values_ignored_key(index: &Index, f: &mut Findings) {
    let Some((values, chart)) = index.kong_values() else { return };
    for (key, _) in map_at(&values.value, &[]) {
        if chart.top_level_keys().contains(&key.as_str()) {
            continue;
        }
        let (message, fix) = match chart {
            KongChart::Ingress => (
                format!(
                    "`{key}` at the top level of kong/ingress values is ignored: the umbrella chart only passes `controller.*` and `gateway.*` to its two kong subcharts, and has no schema to reject the rest"
                ),
                format!("move it under `gateway.{key}` (the proxy) or `controller.{key}` (the ingress controller)"),
            ),
            KongChart::Kong => (
                format!(
                    "kong/kong reads no top-level value `{key}`; it is ignored (the chart has no schema to reject it)"
                ),
                match crate::diagnostic::closest(key, chart.top_level_keys().iter().copied()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => "remove it, or check the chart's values.yaml at the version you install".into(),
                },
            ),
        };
        f.on_values(values, &[key], message, fix);
    }
}

fn mesh_annotation_on_service(index: &Index, f: &mut Findings) {
    let Some((values, chart)) = index.kong_values() else { return };
    let sections = chart.written_sections();
    let pods = match chart {
        KongChart::Ingress => {
            "`gateway.podLabels` (Istio: sidecar.istio.io/inject: \"true\") or `gateway.podAnnotations` (Linkerd: linkerd.io/inject: ingress)"
        }
        KongChart::Kong => {
            "`podLabels` (Istio: sidecar.istio.io/inject: \"true\") or `podAnnotations` (Linkerd: linkerd.io/inject: ingress)"
        }
    };
    for section in sections {
        let path: Vec<&str> = section.iter().copied().chain(["proxy", "annotations"]).collect();
        for (key, _) in map_at(&values.value, &path) {
            if key.starts_with("sidecar.istio.io/") || key == "linkerd.io/inject" {
                let at: Vec<&str> = path.iter().copied().chain([key.as_str()]).collect();
                f.on_values(
                    values,
                    &at,
                    format!(
                        "`{key}` under `{}` annotates Kong's proxy *Service*, not its pods: the mesh never sees it",
                        path.join(".")
                    ),
                    format!("set mesh opt-in on the pods: {pods}"),
                );
            }
        }
    }
}

/// Labels are strings: the kong chart renders `podLabels` with `toYaml` (charts/kong/templates/
/// deployment.yaml, `kong.renderTpl`), so a YAML bool or number stays unquoted in the Deployment,
/// which the API server rejects (a label value must be a string). Annotations are quoted by the
/// chart and are fine.
fn kong_values_label_type(index: &Index, f: &mut Findings) {
    let Some((values, chart)) = index.kong_values() else { return };
    for section in chart.pod_sections() {
        let path: Vec<&str> = section.iter().copied().chain(["podLabels"]).collect();
        for (key, value) in map_at(&values.value, &path) {
            if value.is_string() {
                continue;
            }
            let at: Vec<&str> = path.iter().copied().chain([key.as_str()]).collect();
            f.on_values(
                values,
                &at,
                format!("pod label `{key}: {value}` is not a string: the chart writes it unquoted and the API server rejects Kong's Deployment (label values are strings)"),
                format!("quote it: `{key}: \"{}\"`", value.to_string().trim_matches('"')),
            );
        }
    }
}

fn istio_inject_annotation_not_label(index: &Index, f: &mut Findings) {
    if let Some((values, chart)) = index.kong_values() {
        let sections = chart.written_sections();
        for section in sections {
            let path: Vec<&str> =
                section.iter().copied().chain(["podAnnotations", "sidecar.istio.io/inject"]).collect();
            // `"false"` is honoured by the injector as an opt-out; only an opt-in by annotation
            // is the mistake.
            if values.get(&path).and_then(Value::as_str) == Some("true") {
                let labels: Vec<&str> = chart.gateway().iter().copied().chain(["podLabels"]).collect();
                f.on_values(
                    values,
                    &path,
                    "`sidecar.istio.io/inject` as a pod *annotation* does not opt a pod in: Istio's injector selects pods by the label in namespaces without `istio-injection`".into(),
                    format!("use `{}: {{sidecar.istio.io/inject: \"true\"}}`", labels.join(".")),
                );
            }
        }
    }
    for w in workloads(index) {
        let path = ["spec", "template", "metadata", "annotations", "sidecar.istio.io/inject"];
        let injected_ns =
            index.namespace_labels(w.namespace_or_default()).any(|(k, v)| k == "istio-injection" && v == "enabled");
        if str_at(&w.object, &path) == Some("true") && !injected_ns {
            f.on_object(
                w,
                &path,
                format!("{} {} asks for a sidecar with an annotation; Istio's injector matches the *label* `sidecar.istio.io/inject`, so no sidecar is added", w.kind, w.name),
                "move it to `spec.template.metadata.labels`".into(),
            );
        }
    }
}

/// KIC's flags as env keys (`-` written `_`), from KIC internal/cmd/rootcmd/config/cli.go
/// (`bindFlagSet`, KIC 3.x); env vars bind only to these (internal/cmd/rootcmd/env.go).
const KIC_FLAGS: &[&str] = &[
    "admission_webhook_cert",
    "admission_webhook_cert_file",
    "admission_webhook_key",
    "admission_webhook_key_file",
    "admission_webhook_listen",
    "anonymous_reports",
    "apiserver_burst",
    "apiserver_host",
    "apiserver_qps",
    "cache_sync_timeout",
    "cluster_domain",
    "configmap_label_selector",
    "diagnostic_server_port",
    "dump_config",
    "dump_sensitive_config",
    "election_id",
    "election_namespace",
    "emit_kubernetes_events",
    "enable_controller_gwapi_gateway",
    "enable_controller_gwapi_grpcroute",
    "enable_controller_gwapi_httproute",
    "enable_controller_gwapi_reference_grant",
    "enable_controller_ingress_class_networkingv1",
    "enable_controller_ingress_class_parameters",
    "enable_controller_ingress_networkingv1",
    "enable_controller_kong_custom_entity",
    "enable_controller_kong_license",
    "enable_controller_kong_service_facade",
    "enable_controller_kong_upstream_policy",
    "enable_controller_kong_vault",
    "enable_controller_kongclusterplugin",
    "enable_controller_kongconsumer",
    "enable_controller_kongingress",
    "enable_controller_kongplugin",
    "enable_controller_service",
    "enable_controller_tcpingress",
    "enable_controller_udpingress",
    "enable_reverse_sync",
    "feature_gates",
    "force_leader_election",
    "gateway_api_controller_name",
    "gateway_discovery_dns_strategy",
    "gateway_discovery_readiness_check_interval",
    "gateway_discovery_readiness_check_timeout",
    "gateway_to_reconcile",
    "health_probe_bind_address",
    "ingress_class",
    "init_cache_sync_duration",
    "kong_admin_ca_cert",
    "kong_admin_ca_cert_file",
    "kong_admin_concurrency",
    "kong_admin_filter_tag",
    "kong_admin_header",
    "kong_admin_init_retries",
    "kong_admin_init_retry_delay",
    "kong_admin_svc",
    "kong_admin_svc_port_names",
    "kong_admin_tls_client_cert",
    "kong_admin_tls_client_cert_file",
    "kong_admin_tls_client_key",
    "kong_admin_tls_client_key_file",
    "kong_admin_tls_server_name",
    "kong_admin_tls_skip_verify",
    "kong_admin_token",
    "kong_admin_token_file",
    "kong_admin_url",
    "kong_workspace",
    "konnect_address",
    "konnect_control_plane_id",
    "konnect_disable_consumers_sync",
    "konnect_initial_license_polling_period",
    "konnect_license_polling_period",
    "konnect_licensing_enabled",
    "konnect_refresh_node_period",
    "konnect_runtime_group_id",
    "konnect_sync_enabled",
    "konnect_tls_client_cert",
    "konnect_tls_client_cert_file",
    "konnect_tls_client_key",
    "konnect_tls_client_key_file",
    "konnect_upload_config_period",
    "kubeconfig",
    "log_format",
    "log_level",
    "metrics_access_filter",
    "metrics_bind_address",
    "profiling",
    "proxy_sync_seconds",
    "proxy_timeout_seconds",
    "publish_service",
    "publish_service_udp",
    "publish_status_address",
    "publish_status_address_udp",
    "secret_label_selector",
    "skip_ca_certificates",
    "sync_period",
    "term_delay",
    "update_status",
    "update_status_queue_buffer_size",
    "use_last_valid_config_for_fallback",
    "watch_namespace",
];

fn kic_env_unknown(index: &Index, f: &mut Findings) {
    let Some((values, chart)) = index.kong_values() else { return };
    for section in chart.controller_env().iter().copied() {
        for (key, _) in map_at(&values.value, section) {
            let doubled = key.to_ascii_uppercase().starts_with("CONTROLLER_");
            let unknown = !KIC_FLAGS.contains(&key.to_ascii_lowercase().as_str());
            if doubled || unknown {
                let at: Vec<&str> = section.iter().copied().chain([key.as_str()]).collect();
                let message = if doubled {
                    format!(
                        "the chart prefixes controller env keys with CONTROLLER_, so `{key}` becomes `CONTROLLER_{}`, which binds to no KIC flag and is ignored",
                        key.to_ascii_uppercase()
                    )
                } else {
                    format!("`{key}` names no KIC flag (as CONTROLLER_{}); KIC ignores it", key.to_ascii_uppercase())
                };
                let lower = key.to_ascii_lowercase();
                let bare = lower.strip_prefix("controller_").unwrap_or(&lower);
                let fix = match crate::diagnostic::closest(bare, KIC_FLAGS.iter().copied()) {
                    Some(near) if doubled && near == bare => {
                        format!("write `{near}`: the chart adds the CONTROLLER_ prefix")
                    }
                    Some(near) => format!("did you mean `{near}`?"),
                    None => "remove it: KIC has no such flag".to_owned(),
                };
                f.on_values(values, &at, message, fix);
            }
        }
    }
}

// --- Kong annotations ------------------------------------------------------------------

/// `konghq.com/*` annotations KIC reads, and where (KIC internal/annotations/annotations.go).
/// Annotations KIC reads only from a Service (Kubernetes-ingress-controller v3.5.13:
/// internal/dataplane/kongstate/service.go `overrideByAnnotation`, kongstate/upstream.go,
/// translator/ingressrules.go for client-cert and the CA references).
const SERVICE_ONLY: &[&str] = &[
    "connect-timeout",
    "read-timeout",
    "write-timeout",
    "retries",
    "protocol",
    "path",
    "host-header",
    "client-cert",
    "tls-verify",
    "tls-verify-depth",
    "ca-certificates-secrets",
    "ca-certificates-configmaps",
    "upstream-policy",
];
/// Annotations KIC reads only from an Ingress (v3.5.13: kongstate/route.go `overrideByAnnotation`,
/// translator/subtranslator/ingress.go for regex-prefix and rewrite).
const ROUTE_ONLY: &[&str] = &[
    "protocols",
    "preserve-host",
    "strip-path",
    "https-redirect-status-code",
    "request-buffering",
    "response-buffering",
    "regex-priority",
    "methods",
    "snis",
    "host-aliases",
    "headers-separator",
    "path-handling",
    "regex-prefix",
    "rewrite",
];
const KNOWN: &[&str] = &[
    "override",
    "plugins",
    "protocol",
    "protocols",
    "client-cert",
    "strip-path",
    "path",
    "https-redirect-status-code",
    "preserve-host",
    "regex-priority",
    "host-header",
    "methods",
    "snis",
    "request-buffering",
    "response-buffering",
    "host-aliases",
    "regex-prefix",
    "connect-timeout",
    "write-timeout",
    "read-timeout",
    "retries",
    "headers-separator",
    "path-handling",
    "tags",
    "rewrite",
    "gatewayclass-unmanaged",
    "publish-service",
    "upstream-policy",
    // Read by newer KIC versions for upstream TLS; tolerated so the rule never flags a real key.
    "tls-verify",
    "tls-verify-depth",
    "ca-certificates-secrets",
    "ca-certificates-configmaps",
];

fn kong_annotation_wrong_object(index: &Index, f: &mut Findings) {
    for o in index.objects.iter().filter(|o| o.kind == "Ingress" || o.kind == "Service") {
        for (key, _) in o.annotations() {
            let Some(name) = key.strip_prefix("konghq.com/") else { continue };
            let (wrong, belongs) = match o.kind.as_str() {
                "Ingress" if SERVICE_ONLY.contains(&name) => (true, "Service"),
                "Service" if ROUTE_ONLY.contains(&name) => (true, "Ingress"),
                _ => (false, ""),
            };
            if wrong {
                f.on_object(
                    o,
                    &["metadata", "annotations", key],
                    format!("KIC reads `{key}` only from the {belongs}; on this {} it is ignored", o.kind),
                    format!("move it to the {belongs}"),
                );
            }
        }
    }
}

fn kong_annotation_unknown(index: &Index, f: &mut Findings) {
    for o in &index.objects {
        for (key, _) in o.annotations() {
            let Some(name) = key.strip_prefix("konghq.com/") else { continue };
            if KNOWN.contains(&name) || name.starts_with("headers.") {
                continue;
            }
            let fix = if name == "service-upstream" {
                "use `ingress.kubernetes.io/service-upstream: \"true\"` on the Service".to_owned()
            } else {
                match crate::diagnostic::closest(name, KNOWN.iter().copied()) {
                    Some(near) => format!("did you mean `konghq.com/{near}`?"),
                    None => "remove it: KIC reads no such annotation".to_owned(),
                }
            };
            f.on_object(
                o,
                &["metadata", "annotations", key],
                format!("KIC reads no annotation `{key}`; it has no effect"),
                fix,
            );
        }
    }
}

// --- Istio -------------------------------------------------------------------------------

/// Whether a namespace is under STRICT mTLS: a selector-less PeerAuthentication there, or a
/// mesh-wide one in istio-system.
/// Whether a namespace is under STRICT mTLS: its own selector-less PeerAuthentication decides
/// when there is one, else the mesh-wide one in the root namespace (`istio-system`, Istio's
/// default `rootNamespace`) — a namespace policy overrides the mesh's
/// (istio.io/latest/docs/concepts/security/#peer-authentication).
fn strict_namespace(index: &Index, namespace: &str) -> bool {
    let mode_in = |ns: &str| {
        index
            .of_kind("PeerAuthentication")
            .filter(|pa| pa.namespace_or_default() == ns && pa.object.pointer("/spec/selector").is_none())
            .find_map(|pa| str_at(&pa.object, &["spec", "mtls", "mode"]))
    };
    match mode_in(namespace) {
        Some(mode) => mode == "STRICT",
        None => mode_in("istio-system") == Some("STRICT"),
    }
}

fn istio_strict_kong_unmeshed(index: &Index, f: &mut Findings) {
    if index.mesh.is_some_and(|m| m != Mesh::Istio) {
        return;
    }
    let meshing = index.kong_meshing(Mesh::Istio);
    for ingress in index.kong_ingresses() {
        let ns = ingress.namespace_or_default();
        if !strict_namespace(index, ns) {
            continue;
        }
        for (service, path) in ingress_backends(ingress) {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let svc = index.find("Service", ns, &service);
            let upstream = svc.and_then(|s| s.annotation("ingress.kubernetes.io/service-upstream")) == Some("true");
            f.assumed(index, &ingress.file);
            if let Meshing::Unknown(missing) = &meshing {
                f.note(
                    &ingress.file,
                    format!("not checked whether Kong can reach the STRICT namespaces of its backends: lint does not know whether Kong's gateway is in the mesh ({missing})"),
                );
            } else if let Meshing::NotMeshed(why) = &meshing {
                let labels = index.kong_values().map_or("podLabels", |(_, c)| {
                    if c == KongChart::Ingress { "gateway.podLabels" } else { "podLabels" }
                });
                f.on_object(
                    ingress,
                    &path,
                    format!("Service {service} is in STRICT namespace {ns}, but Kong's gateway is not in the mesh ({why}): it sends plaintext, which the backend's sidecar refuses"),
                    format!("mesh Kong: `{labels}: {{sidecar.istio.io/inject: \"true\"}}` in its values, or label its namespace istio-injection=enabled"),
                );
            } else if !upstream {
                f.on_object(
                    ingress,
                    &path,
                    format!("Kong sends to pod IPs of {service} (no service-upstream): Istio's passthrough cluster has no mTLS settings, so STRICT refuses the traffic"),
                    format!("annotate Service {service} with `ingress.kubernetes.io/service-upstream: \"true\"`"),
                );
            }
        }
    }
}

/// VirtualService hosts name Services by short name or FQDN; return the Service name.
fn service_of_host<'a>(host: &'a str, namespace: &str) -> &'a str {
    let short = host.split('.').next().unwrap_or(host);
    let rest = host.strip_prefix(short).unwrap_or("").trim_start_matches('.');
    if rest.is_empty() || rest.starts_with(namespace) { short } else { host }
}

fn istio_host_header_mismatch(index: &Index, f: &mut Findings) {
    let routed: BTreeSet<(String, String)> = index
        .of_kind("VirtualService")
        .flat_map(|vs| {
            let ns = vs.namespace_or_default().to_owned();
            strings_at(&vs.object, "/spec/hosts")
                .map(move |h| (ns.clone(), service_of_host(h, &ns).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    for ingress in index.kong_ingresses() {
        let ns = ingress.namespace_or_default();
        let preserve = ingress.annotation("konghq.com/preserve-host").unwrap_or("true");
        for (service, path) in ingress_backends(ingress) {
            if !routed.contains(&(ns.to_owned(), service.clone())) {
                continue;
            }
            let host_header = index.find("Service", ns, &service).and_then(|s| s.annotation("konghq.com/host-header"));
            if preserve != "false" || host_header.is_none() {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                f.on_object(
                    ingress,
                    &path,
                    format!("Service {service} has a VirtualService, but Kong sends the client's Host: the sidecar matches routes by Host, so the VirtualService's rules do not apply"),
                    format!("set `konghq.com/preserve-host: \"false\"` on the Ingress and `konghq.com/host-header: {service}.{ns}.svc.cluster.local` on the Service"),
                );
            }
        }
    }
}

/// A DestinationRule subset: the rule, the subset's index in it, its name.
type Subset<'a> = (&'a Manifest, usize, String);

/// Subsets by (namespace, Service name).
fn destination_rule_subsets(index: &Index) -> BTreeMap<(String, String), Vec<Subset<'_>>> {
    let mut out: BTreeMap<(String, String), Vec<Subset<'_>>> = BTreeMap::new();
    for dr in index.of_kind("DestinationRule") {
        let ns = dr.namespace_or_default().to_owned();
        let Some(host) = str_at(&dr.object, &["spec", "host"]) else { continue };
        let service = service_of_host(host, &ns).to_owned();
        let subsets = dr.object.pointer("/spec/subsets").and_then(Value::as_array).into_iter().flatten();
        for (i, s) in subsets.enumerate() {
            if let Some(name) = s.get("name").and_then(Value::as_str) {
                out.entry((ns.clone(), service.clone())).or_default().push((dr, i, name.to_owned()));
            }
        }
    }
    out
}

fn istio_subset_undefined(index: &Index, f: &mut Findings) {
    let defined = destination_rule_subsets(index);
    for vs in index.of_kind("VirtualService") {
        let ns = vs.namespace_or_default();
        let routes = vs.object.pointer("/spec/http").and_then(Value::as_array).into_iter().flatten();
        for (h, http) in routes.enumerate() {
            let dests = http.get("route").and_then(Value::as_array).into_iter().flatten();
            for (r, route) in dests.enumerate() {
                let (Some(host), Some(subset)) =
                    (str_at(route, &["destination", "host"]), str_at(route, &["destination", "subset"]))
                else {
                    continue;
                };
                let service = service_of_host(host, ns);
                let known = defined
                    .get(&(ns.to_owned(), service.to_owned()))
                    .is_some_and(|s| s.iter().any(|(_, _, n)| n == subset));
                if !known {
                    let (h, r) = (h.to_string(), r.to_string());
                    f.on_object(
                        vs,
                        &["spec", "http", &h, "route", &r, "destination", "subset"],
                        format!("subset `{subset}` of {host} is defined by no DestinationRule: Istio rejects the route (IST0101) and requests get 503"),
                        format!("add a DestinationRule for {host} with a subset `{subset}` selecting its pods by label (e.g. `version: {subset}`)"),
                    );
                }
            }
        }
    }
}

fn istio_subset_selects_nothing(index: &Index, f: &mut Findings) {
    for ((ns, _service), subsets) in destination_rule_subsets(index) {
        for (dr, i, name) in subsets {
            let labels: BTreeMap<&str, &str> = dr
                .object
                .pointer(&format!("/spec/subsets/{i}/labels"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect();
            if labels.is_empty() {
                continue;
            }
            let matched = workloads(index).filter(|w| w.namespace_or_default() == ns).any(|w| {
                let pod: BTreeMap<&str, &str> =
                    crate::scenario::fixture::string_map(&w.object, "/spec/template/metadata/labels").collect();
                labels.iter().all(|(k, v)| pod.get(k) == Some(v))
            });
            // Only judge when the inputs hold workloads of that namespace at all.
            let any_workload = workloads(index).any(|w| w.namespace_or_default() == ns);
            if any_workload && !matched {
                let i = i.to_string();
                f.on_object(
                    dr,
                    &["spec", "subsets", &i, "labels"],
                    format!("subset `{name}` selects pods labelled {labels:?}, and no workload in {ns} has them: traffic routed to it fails"),
                    "add the labels to the pod template of the workload, or fix the subset's labels".into(),
                );
            }
        }
    }
}

// --- Kong plugins --------------------------------------------------------------------------

fn kong_plugin_unresolved(index: &Index, f: &mut Findings) {
    let cluster: BTreeSet<&str> = index.of_kind("KongClusterPlugin").map(|p| p.name.as_str()).collect();
    let grants = index.of_kind("ReferenceGrant").count() > 0;
    for o in index.objects.iter().filter(|o| o.annotation("konghq.com/plugins").is_some()) {
        let ns = o.namespace_or_default();
        for name in
            o.annotation("konghq.com/plugins").unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty())
        {
            let found = match name.split_once(':') {
                Some((other_ns, n)) => grants && index.find("KongPlugin", other_ns, n).is_some(),
                None => index.find("KongPlugin", ns, name).is_some() || cluster.contains(name),
            };
            if !found {
                let elsewhere: Vec<String> = index
                    .of_kind("KongPlugin")
                    .filter(|p| p.name == name)
                    .map(|p| p.namespace_or_default().to_owned())
                    .collect();
                let fix = if elsewhere.is_empty() {
                    format!("create KongPlugin {name} in namespace {ns}, or a KongClusterPlugin {name}")
                } else {
                    format!(
                        "KongPlugin {name} exists in {}: plugins are looked up in the {} {} own namespace; move it to {ns} or make it a KongClusterPlugin",
                        elsewhere.join(", "),
                        o.kind,
                        o.name
                    )
                };
                f.on_object(
                    o,
                    &["metadata", "annotations", "konghq.com/plugins"],
                    format!("plugin `{name}` resolves to no KongPlugin in {ns} and no KongClusterPlugin: KIC drops it silently and the route runs without it"),
                    fix,
                );
            }
        }
    }
}

fn kong_cluster_plugin_no_class(index: &Index, f: &mut Findings) {
    for p in index.of_kind("KongClusterPlugin") {
        if p.annotation("kubernetes.io/ingress.class").is_none() {
            f.on_object(
                p,
                &["metadata"],
                format!(
                    "KongClusterPlugin {} has no `kubernetes.io/ingress.class` annotation; KIC may not pick it up",
                    p.name
                ),
                "add `kubernetes.io/ingress.class: kong`".into(),
            );
        }
    }
}

fn plugin_objects(index: &Index) -> impl Iterator<Item = &Manifest> {
    index.objects.iter().filter(|o| o.kind == "KongPlugin" || o.kind == "KongClusterPlugin")
}

fn kong_plugin_deprecated_field(index: &Index, f: &mut Findings) {
    for p in plugin_objects(index) {
        let plugin = p.object.get("plugin").and_then(Value::as_str).unwrap_or_default();
        let deprecated: &[&str] = match plugin {
            "zipkin" => &["header_type", "default_header_type"],
            "opentelemetry" => &["header_type", "endpoint"],
            _ => &[],
        };
        for field in deprecated {
            if p.object.pointer(&format!("/config/{field}")).is_some() {
                f.on_object(
                    p,
                    &["config", field],
                    format!("`{field}` of the {plugin} plugin is deprecated (removed in Kong 4.0)"),
                    if *field == "endpoint" {
                        "use `traces_endpoint`".into()
                    } else {
                        "use `propagation: {extract: [...], inject: [...], default_format: b3}`".into()
                    },
                );
            }
        }
    }
}

/// Plugins only Kong Enterprise ships (absent from Kong OSS `kong/plugins/`).
const ENTERPRISE_PLUGINS: &[&str] = &[
    "mtls-auth",
    "openid-connect",
    "rate-limiting-advanced",
    "request-validator",
    "opa",
    "canary",
    "jwt-signer",
    "oauth2-introspection",
];

fn kong_enterprise_plugin(index: &Index, f: &mut Findings) {
    // Kong Enterprise runs them: `image.repository: kong/kong-gateway` or `enterprise.enabled`.
    if let Some((values, chart)) = index.kong_values() {
        let at = |path: &[&str]| {
            let full: Vec<&str> = chart.gateway().iter().chain(path).copied().collect();
            values.get(&full).cloned()
        };
        let enterprise_image =
            at(&["image", "repository"]).and_then(|v| v.as_str().map(|s| s.contains("kong-gateway"))).unwrap_or(false);
        if enterprise_image || at(&["enterprise", "enabled"]).and_then(|v| v.as_bool()) == Some(true) {
            return;
        }
    }
    for p in plugin_objects(index) {
        let plugin = p.object.get("plugin").and_then(Value::as_str).unwrap_or_default();
        if ENTERPRISE_PLUGINS.contains(&plugin) {
            f.on_object(
                p,
                &["plugin"],
                format!("`{plugin}` is a Kong Enterprise plugin; the OSS image (the chart's default, and the harness's) has no such plugin and KIC fails to configure it"),
                if plugin == "mtls-auth" {
                    "mtls-auth authenticates *clients to Kong*, not Kong to the mesh; the mesh's own mTLS covers Kong -> backend".into()
                } else {
                    "remove it, or install Kong Enterprise with a licence".into()
                },
            );
        }
    }
}

/// The plugins bundled with Kong Gateway OSS 3.9 (Kong/kong 3.9.1 kong/constants.lua, `plugins`).
const KONG_39_PLUGINS: &[&str] = &[
    "jwt",
    "acl",
    "correlation-id",
    "cors",
    "oauth2",
    "tcp-log",
    "udp-log",
    "file-log",
    "http-log",
    "key-auth",
    "hmac-auth",
    "basic-auth",
    "ip-restriction",
    "request-transformer",
    "response-transformer",
    "request-size-limiting",
    "rate-limiting",
    "response-ratelimiting",
    "syslog",
    "loggly",
    "datadog",
    "ldap-auth",
    "statsd",
    "bot-detection",
    "aws-lambda",
    "request-termination",
    "prometheus",
    "proxy-cache",
    "session",
    "acme",
    "grpc-gateway",
    "grpc-web",
    "pre-function",
    "post-function",
    "azure-functions",
    "zipkin",
    "opentelemetry",
    "ai-proxy",
    "ai-prompt-decorator",
    "ai-prompt-template",
    "ai-prompt-guard",
    "ai-request-transformer",
    "ai-response-transformer",
    "standard-webhooks",
    "redirect",
];

fn kong_plugin_unknown(index: &Index, f: &mut Findings) {
    for p in plugin_objects(index) {
        let Some(plugin) = p.object.get("plugin").and_then(Value::as_str) else { continue };
        // Enterprise plugins have their own rule; custom plugins are named in KONG_PLUGINS by the
        // user and cannot be known here, so the finding names the closest bundled one.
        if KONG_39_PLUGINS.contains(&plugin) || ENTERPRISE_PLUGINS.contains(&plugin) {
            continue;
        }
        let fix = match crate::diagnostic::closest(plugin, KONG_39_PLUGINS.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => {
                "use a plugin Kong bundles, or install the custom plugin (KONG_PLUGINS) and ignore this finding".into()
            }
        };
        f.on_object(
            p,
            &["plugin"],
            format!(
                "Kong 3.9 bundles no plugin `{plugin}`: KIC cannot configure it and Kong rejects the configuration"
            ),
            fix,
        );
    }
}

/// A zipkin plugin that does not set `sample_ratio` keeps its default, 0.001: tests and
/// debugging see almost no trace.
fn kong_zipkin_sampled_rarely(index: &Index, f: &mut Findings) {
    for p in plugin_objects(index) {
        if p.object.get("plugin").and_then(Value::as_str) == Some("zipkin")
            && p.object.pointer("/config/sample_ratio").is_none()
        {
            f.on_object(
                p,
                &["plugin"],
                "the zipkin plugin samples 0.001 of requests unless `config.sample_ratio` says otherwise".into(),
                "set `config.sample_ratio: 1` where every request should be traced (tests, debugging)".into(),
            );
        }
    }
}

/// An opentelemetry plugin exports spans only when Kong's tracing instrumentation is on
/// (`tracing_instrumentations`, `KONG_TRACING_INSTRUMENTATIONS`, default `off`). Known from
/// Kong's values (`env.tracing_instrumentations`, under `gateway.` for kong/ingress); without
/// them, a note says it was not checked.
fn kong_otel_not_instrumented(index: &Index, f: &mut Findings) {
    let instrumented = index.kong_values().map(|(values, chart)| {
        let mut path: Vec<&str> = chart.gateway().to_vec();
        path.extend(["env", "tracing_instrumentations"]);
        let setting = path.iter().try_fold(&values.value, |v, k| v.get(*k)).and_then(Value::as_str);
        setting.is_some_and(|s| !s.trim().eq_ignore_ascii_case("off"))
    });
    for p in plugin_objects(index) {
        if p.object.get("plugin").and_then(Value::as_str) != Some("opentelemetry") {
            continue;
        }
        match instrumented {
            Some(true) => {}
            Some(false) => f.on_object(
                p,
                &["plugin"],
                "Kong's tracing instrumentation is off (`tracing_instrumentations` unset or `off`): the opentelemetry \
                 plugin only propagates headers and exports no span"
                    .into(),
                "set `env.tracing_instrumentations: all` (kong/ingress: `gateway.env`) and a sampling rate \
                 (`env.tracing_sampling_rate: 1` or the plugin's `config.sampling_rate: 1`)"
                    .into(),
            ),
            None => f.on_object_at(
                Severity::Note,
                p,
                &["plugin"],
                "not checked whether Kong's tracing instrumentation is on (the opentelemetry plugin exports nothing \
                 without it): no Kong values given"
                    .into(),
                "pass Kong's values (--values kong/ingress=FILE) to check".into(),
            ),
        }
    }
}

/// KIC matches Ingresses (and KongConsumers) to its class; one without a class is served only
/// when Kong's IngressClass is the cluster default (KIC v3.5.13 internal/store/store.go
/// `ListIngressesV1`, internal/controllers/utils/utils.go `MatchesIngressClass`).
fn ingress_no_class(index: &Index, f: &mut Findings) {
    let default_class = index.of_kind("IngressClass").any(|c| {
        c.annotation("ingressclass.kubernetes.io/is-default-class") == Some("true")
            && str_at(&c.object, &["spec", "controller"]) == Some("ingress-controllers.konghq.com/kong")
    });
    if default_class {
        return;
    }
    for o in index.objects.iter().filter(|o| o.kind == "Ingress" || o.kind == "KongConsumer") {
        let class = str_at(&o.object, &["spec", "ingressClassName"]).or(o.annotation("kubernetes.io/ingress.class"));
        if class.is_none() {
            f.on_object(
                o,
                &["metadata", "name"],
                format!(
                    "{} {} names no ingress class: KIC ignores it unless Kong's IngressClass is the cluster default",
                    o.kind, o.name
                ),
                if o.kind == "Ingress" {
                    "set `spec.ingressClassName: kong`".into()
                } else {
                    "annotate it `kubernetes.io/ingress.class: kong`".into()
                },
            );
        }
    }
}

/// KIC 3.x takes a credential's type only from the Secret's `konghq.com/credential` label; the
/// `kongCredType` field was removed in 3.2.0 (KIC CHANGELOG; internal/util/credential.go).
fn kong_credential_unlabelled(index: &Index, f: &mut Findings) {
    let referenced: BTreeSet<(String, String)> = index
        .of_kind("KongConsumer")
        .flat_map(|c| {
            let ns = c.namespace_or_default().to_owned();
            strings_at(&c.object, "/credentials").map(move |s| (ns.clone(), s.to_owned())).collect::<Vec<_>>()
        })
        .collect();
    for secret in index.of_kind("Secret") {
        let key = (secret.namespace_or_default().to_owned(), secret.name.clone());
        let labelled = secret.labels().any(|(k, _)| k == "konghq.com/credential");
        let legacy = secret.object.pointer("/stringData/kongCredType").is_some()
            || secret.object.pointer("/data/kongCredType").is_some();
        if (referenced.contains(&key) || legacy) && !labelled {
            f.on_object(
                secret,
                &["metadata", "name"],
                format!("Secret {} is used as a Kong credential but has no `konghq.com/credential` label: KIC 3.x ignores it{}", secret.name, if legacy { " (`kongCredType` was removed in KIC 3.2)" } else { "" }),
                "label it `konghq.com/credential: <type>` (jwt, key-auth, basic-auth, hmac-auth, oauth2, acl, mtls-auth)".into(),
            );
        }
    }
}

/// `KongIngress` and `konghq.com/override` are deprecated since KIC 3.0 (KIC CHANGELOG 3.0.0:
/// "KongIngress is now entirely deprecated"); KongUpstreamPolicy replaces what is left.
fn kong_ingress_deprecated(index: &Index, f: &mut Findings) {
    for o in &index.objects {
        if o.kind == "KongIngress" {
            f.on_object(
                o,
                &["kind"],
                "KongIngress is deprecated (KIC 3.0) and will be removed".into(),
                "use a KongUpstreamPolicy (`konghq.com/upstream-policy` on the Service)".into(),
            );
        } else if o.annotation("konghq.com/override").is_some() {
            f.on_object(
                o,
                &["metadata", "annotations", "konghq.com/override"],
                "`konghq.com/override` (KongIngress) is deprecated (KIC 3.0) and will be removed".into(),
                "use `konghq.com/upstream-policy` with a KongUpstreamPolicy".into(),
            );
        }
    }
}

fn api_version_deprecated(index: &Index, f: &mut Findings) {
    const OLD: &[(&str, &str)] = &[
        ("security.istio.io/v1beta1", "security.istio.io/v1"),
        ("networking.istio.io/v1beta1", "networking.istio.io/v1"),
        ("networking.istio.io/v1alpha3", "networking.istio.io/v1"),
        ("telemetry.istio.io/v1alpha1", "telemetry.istio.io/v1"),
    ];
    let schemas = super::crd::Schemas::built_in();
    for o in &index.objects {
        // Only where the newer version serves this kind: EnvoyFilter, for one, exists only as
        // v1alpha3 in the pinned CRDs, so there is nothing to move to.
        if let Some((_, new)) =
            OLD.iter().find(|(old, new)| *old == o.api_version && schemas.shape(new, &o.kind).is_some())
        {
            f.on_object(
                o,
                &["apiVersion"],
                format!("{} is deprecated for {}", o.api_version, o.kind),
                format!("use `apiVersion: {new}`"),
            );
        }
    }
}

// --- Linkerd -------------------------------------------------------------------------------

/// An error only when nothing else injects the pod: when its namespace (among the inputs)
/// injects, the misplaced annotation is only dead weight (a warning); when the namespace is not
/// among the inputs, lint cannot tell (a warning that says so).
fn linkerd_inject_on_workload_metadata(index: &Index, f: &mut Findings) {
    for w in workloads(index) {
        if w.annotation("linkerd.io/inject").is_some()
            && str_at(&w.object, &["spec", "template", "metadata", "annotations", "linkerd.io/inject"]).is_none()
        {
            let ns = w.namespace_or_default();
            let namespace = index.of_kind("Namespace").find(|n| n.name == ns);
            let ns_injects = namespace
                .and_then(|n| n.annotation("linkerd.io/inject"))
                .is_some_and(|v| v == "enabled" || v == "ingress");
            let (severity, consequence) = match (namespace, ns_injects) {
                (Some(_), true) => (Severity::Warning, format!("namespace {ns} injects the pods anyway")),
                (Some(_), false) => (Severity::Error, "so its pods are not injected".to_owned()),
                (None, _) => (
                    Severity::Warning,
                    format!("its pods are injected only if namespace {ns} (not among the inputs) is annotated"),
                ),
            };
            f.on_object_at(
                severity,
                w,
                &["metadata", "annotations", "linkerd.io/inject"],
                format!("`linkerd.io/inject` on the {}'s own metadata is ignored: Linkerd's injector reads pod and namespace annotations only; {consequence}", w.kind),
                "move it to `spec.template.metadata.annotations` (or annotate the namespace)".into(),
            );
        }
    }
}

/// Whether `plugin` (a KongPlugin or KongClusterPlugin) strips `l5d-dst-override`.
fn strips_dst_override(plugin: &Manifest) -> bool {
    plugin.object.get("plugin").and_then(Value::as_str) == Some("request-transformer")
        && plugin
            .object
            .pointer("/config/remove/headers")
            .and_then(Value::as_array)
            .is_some_and(|h| h.iter().filter_map(Value::as_str).any(|h| h.eq_ignore_ascii_case("l5d-dst-override")))
}

/// Plugin names attached to an object by `konghq.com/plugins`.
fn attached_plugins(o: &Manifest) -> impl Iterator<Item = &str> {
    o.annotation("konghq.com/plugins").unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// In ingress mode Linkerd's proxy routes by the `l5d-dst-override` header, so Kong must strip
/// a client's copy on every route it serves: a guard attached to nothing protects nothing.
/// A guard counts when it is a global KongClusterPlugin (label `global: "true"`), or attached
/// to the Ingress or to its backend Service (KIC merges plugins of both).
fn linkerd_ingress_open_relay(index: &Index, f: &mut Findings) {
    let values = index.kong_values();
    if index.kong.linkerd_inject(values.map(|(v, _)| v), &index.objects).as_deref() != Some("ingress") {
        return;
    }
    // A global plugin KIC does not pick up (no class) guards nothing.
    let global = index.of_kind("KongClusterPlugin").any(|p| {
        p.labels().any(|(k, v)| k == "global" && v == "true")
            && p.annotation("kubernetes.io/ingress.class").is_some()
            && strips_dst_override(p)
    });
    if global {
        return;
    }
    let guards = |o: &Manifest| {
        let ns = o.namespace_or_default();
        attached_plugins(o).any(|name| {
            index.find("KongPlugin", ns, name).is_some_and(strips_dst_override)
                || index.of_kind("KongClusterPlugin").any(|p| p.name == name && strips_dst_override(p))
        })
    };
    let mut ingresses = 0;
    for ingress in index.kong_ingresses() {
        ingresses += 1;
        let ns = ingress.namespace_or_default();
        let backends_guarded = ingress_backends(ingress)
            .iter()
            .all(|(service, _)| index.find("Service", ns, service).is_some_and(&guards));
        if !guards(ingress) && !backends_guarded {
            f.on_object(
                ingress,
                &["metadata", "name"],
                format!("Kong runs Linkerd's proxy in ingress mode, and nothing strips a client's `l5d-dst-override` on Ingress {}: any client can steer this route's requests to any service in the cluster", ingress.name),
                "attach a request-transformer KongPlugin with `config.remove.headers: [l5d-dst-override]` to it (`konghq.com/plugins`), or make it a KongClusterPlugin labelled `global: \"true\"`".into(),
            );
        }
    }
    if ingresses == 0
        && !plugin_objects(index).any(strips_dst_override)
        && let Some((values, chart)) = values
    {
        let path: Vec<&str> = chart.gateway().iter().copied().chain(["podAnnotations", "linkerd.io/inject"]).collect();
        f.on_values(
            values,
            &path,
            "Kong runs Linkerd's proxy in ingress mode but nothing strips a client's `l5d-dst-override` header: any client can steer Kong's requests to any service in the cluster".into(),
            "add a request-transformer KongClusterPlugin labelled `global: \"true\"` with `config.remove.headers: [l5d-dst-override]`".into(),
        );
    }
}

fn smi_trafficsplit(index: &Index, f: &mut Findings) {
    for t in
        index.objects.iter().filter(|o| o.kind == "TrafficSplit" && o.api_version.starts_with("split.smi-spec.io/"))
    {
        f.on_object(
            t,
            &["apiVersion"],
            "TrafficSplit needs the linkerd-smi extension, retired since 2024 (last release v0.2.7); without it the kind is unknown".into(),
            "use a gateway.networking.k8s.io/v1 HTTPRoute with the Service as parentRef and weighted backendRefs".into(),
        );
    }
}

/// Without `ingress.kubernetes.io/service-upstream`, KIC balances over the Service's endpoints
/// (pod IPs) itself: a mesh's per-Service routing (an Istio VirtualService, a Linkerd or Gateway
/// API HTTPRoute attached to the Service) never sees Kong's requests, whatever the mTLS mode.
fn kong_upstream_bypasses_mesh_routing(index: &Index, f: &mut Findings) {
    let mut routed: BTreeMap<(String, String), String> = BTreeMap::new();
    for vs in index.of_kind("VirtualService") {
        let ns = vs.namespace_or_default().to_owned();
        for host in strings_at(&vs.object, "/spec/hosts") {
            routed.insert((ns.clone(), service_of_host(host, &ns).to_owned()), format!("VirtualService {}", vs.name));
        }
    }
    for route in index.of_kind("HTTPRoute") {
        let ns = route.namespace_or_default().to_owned();
        for parent in route.object.pointer("/spec/parentRefs").and_then(Value::as_array).into_iter().flatten() {
            if parent.get("kind").and_then(Value::as_str) == Some("Service")
                && let Some(name) = parent.get("name").and_then(Value::as_str)
            {
                routed.insert((ns.clone(), name.to_owned()), format!("HTTPRoute {}", route.name));
            }
        }
    }
    for ingress in index.kong_ingresses() {
        let ns = ingress.namespace_or_default();
        for (service, path) in ingress_backends(ingress) {
            let Some(by) = routed.get(&(ns.to_owned(), service.clone())) else { continue };
            let svc = index.find("Service", ns, &service);
            if svc.and_then(|s| s.annotation("ingress.kubernetes.io/service-upstream")) == Some("true") {
                continue;
            }
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            f.on_object(
                ingress,
                &path,
                format!("{by} routes Service {service}, but Kong sends to its pod IPs (no service-upstream): the mesh's route never applies to Kong's requests"),
                format!("annotate Service {service} with `ingress.kubernetes.io/service-upstream: \"true\"`"),
            );
        }
    }
}

fn serviceprofile_overrides_httproute(index: &Index, f: &mut Findings) {
    for sp in index.of_kind("ServiceProfile") {
        let service = sp.name.split('.').next().unwrap_or_default();
        let ns = sp.namespace_or_default();
        let routed = index.of_kind("HTTPRoute").filter(|r| r.namespace_or_default() == ns).any(|r| {
            r.object.pointer("/spec/parentRefs").and_then(Value::as_array).into_iter().flatten().any(|p| {
                p.get("kind").and_then(Value::as_str) == Some("Service")
                    && p.get("name").and_then(Value::as_str) == Some(service)
            })
        });
        if routed {
            f.on_object(
                sp,
                &["metadata", "name"],
                format!("ServiceProfile {} and an HTTPRoute both apply to Service {service}; the ServiceProfile wins and the HTTPRoute (e.g. its weights) is ignored", sp.name),
                "remove the ServiceProfile, or move its settings into the HTTPRoute".into(),
            );
        }
    }
}

fn ingress_route_duplicate(index: &Index, f: &mut Findings) {
    let mut seen: BTreeMap<(String, String), &Manifest> = BTreeMap::new();
    for ingress in index.kong_ingresses() {
        for (host, path, at) in ingress_routes(ingress) {
            match seen.get(&(host.clone(), path.clone())) {
                Some(first) if first.name != ingress.name || first.namespace != ingress.namespace => {
                    let at: Vec<&str> = at.iter().map(String::as_str).collect();
                    f.on_object(
                        ingress,
                        &at,
                        format!(
                            "{host}{path} is also routed by Ingress {}/{}: which one Kong uses is not defined",
                            first.namespace_or_default(),
                            first.name
                        ),
                        "give each Ingress its own host or path".into(),
                    );
                }
                Some(_) => {}
                None => {
                    seen.insert((host, path), ingress);
                }
            }
        }
    }
}

fn authz_principal_unknown(index: &Index, f: &mut Findings) {
    let kong_ns = &index.kong.namespace;
    let values = index.kong_values();
    let chart = values.map_or(KongChart::Ingress, |(_, c)| c);
    let account = chart.service_account(&index.kong.release, values.map(|(v, _)| &v.value));
    let expected = format!("cluster.local/ns/{kong_ns}/sa/{account}");
    let mut assumed = match &index.kong.source {
        super::kong::Source::Assumed(what) => Some(what.clone()),
        super::kong::Source::Given => None,
    };
    for ap in index.of_kind("AuthorizationPolicy") {
        let rules = ap.object.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten();
        for (r, rule) in rules.enumerate() {
            let froms = rule.get("from").and_then(Value::as_array).into_iter().flatten();
            for (s, from) in froms.enumerate() {
                let principals = from.pointer("/source/principals").and_then(Value::as_array).into_iter().flatten();
                for p in principals.filter_map(Value::as_str) {
                    if p.starts_with(&format!("cluster.local/ns/{kong_ns}/sa/")) && p != expected {
                        if let Some(what) = assumed.take() {
                            f.note(&ap.file, format!("Kong's identity is judged by an assumption: {what}"));
                        }
                        let (r, s) = (r.to_string(), s.to_string());
                        f.on_object(
                            ap,
                            &["spec", "rules", &r, "from", &s, "source", "principals"],
                            format!("principal `{p}` names a service account the {} chart does not create; Kong's gateway runs as `{expected}`, so its requests are denied", chart.name()),
                            format!("use `{expected}`"),
                        );
                    }
                }
            }
        }
    }
}

// --- CRD schemas ---------------------------------------------------------------------------

/// Custom resources of the groups the harness knows (Kong, Istio, Gateway API, Linkerd) against
/// their pinned CRD schemas (`lint::crd`): unknown fields, wrong types, enum values, missing
/// required fields, and versions the pinned CRDs do not serve.
fn crd_schema(index: &Index, f: &mut Findings) {
    let schemas = super::crd::Schemas::built_in();
    for o in &index.objects {
        let Some((group, _)) = o.api_version.split_once('/') else { continue };
        match schemas.shape(&o.api_version, &o.kind) {
            Some(shape) => {
                for problem in super::crd::validate(shape, &o.object) {
                    let at: Vec<&str> = problem.path.iter().map(String::as_str).collect();
                    f.on_object(
                        o,
                        &at,
                        format!(
                            "{} {}: {} (schema of {}: {})",
                            o.kind, o.name, problem.message, o.api_version, shape.source
                        ),
                        "fix the field to match the CRD; the API server rejects the object as written".into(),
                    );
                }
            }
            // Gateway API kinds of the experimental channel (TCPRoute, TLSRoute, ...): the
            // pinned CRDs are the standard channel, so lint has no schema to say anything.
            None if group == "gateway.networking.k8s.io" && schemas.versions_of(group, &o.kind).is_empty() => {
                f.note(
                    &o.file,
                    format!(
                        "{} {} not checked: the pinned Gateway API CRDs are the standard channel, which has no {}",
                        o.kind, o.name, o.kind
                    ),
                );
            }
            None if schemas.knows_group(group) => {
                let versions = schemas.versions_of(group, &o.kind);
                let known = if versions.is_empty() {
                    format!("the pinned CRDs of {group} define no kind {}", o.kind)
                } else {
                    format!("{} is served as {}", o.kind, versions.join(", "))
                };
                f.on_object(
                    o,
                    &["apiVersion"],
                    format!("`{} {}` is not served by the pinned CRDs: {known}", o.api_version, o.kind),
                    "use a served apiVersion (the newest stable one)".into(),
                );
            }
            None => {}
        }
    }
}

// --- Kubernetes schema ---------------------------------------------------------------------

/// Fields present in `original` and absent from `typed` (the same object after a trip through
/// the Kubernetes 1.35 types): fields the API server does not know. Paths as key lists.
fn dropped_fields(original: &Value, typed: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                path.push(k.clone());
                match b.get(k) {
                    Some(w) => dropped_fields(v, w, path, out),
                    // An explicit null or empty value may be dropped by the types without meaning anything.
                    None if !(v.is_null()
                        || v.as_object().is_some_and(|m| m.is_empty())
                        || v.as_array().is_some_and(|l| l.is_empty())) =>
                    {
                        out.push(path.clone())
                    }
                    None => {}
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                path.push(i.to_string());
                dropped_fields(v, w, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A type problem: where (as keys) and what.
type TypeError = (Vec<String>, String);

/// `v` through the Kubernetes type `T`: every type problem with its path (each offending value
/// is removed and the rest tried again, up to a bound), then the object as the type keeps it
/// (compared with the cleaned input to find unknown fields).
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
    v: &Value,
) -> (Vec<TypeError>, Option<(Value, Value)>) {
    let mut cleaned = v.clone();
    let mut errors: Vec<TypeError> = Vec::new();
    for _ in 0..32 {
        match serde_path_to_error::deserialize::<_, T>(&cleaned) {
            Ok(typed) => return (errors, serde_json::to_value(&typed).ok().map(|t| (cleaned, t))),
            Err(e) => {
                let path: Vec<String> = e
                    .path()
                    .iter()
                    .filter_map(|segment| match segment {
                        serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                        _ => None,
                    })
                    .collect();
                let repeated = errors.last().is_some_and(|(p, _)| *p == path);
                errors.push((path.clone(), e.inner().to_string()));
                if path.is_empty() || repeated || !remove_at(&mut cleaned, &path) {
                    return (errors, None);
                }
            }
        }
    }
    (errors, None)
}

/// Remove the value at `path` (map key or array element); false when there is none.
fn remove_at(v: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let Some(parent) = parents.iter().try_fold(v, |v, k| match v {
        Value::Object(m) => m.get_mut(k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    }) else {
        return false;
    };
    match parent {
        Value::Object(m) => m.remove(last).is_some(),
        // Replaced, not removed, so later indexes keep their meaning.
        Value::Array(a) => last.parse::<usize>().ok().and_then(|i| a.get_mut(i)).map(|e| *e = Value::Null).is_some(),
        _ => false,
    }
}

/// Core kinds checked against the Kubernetes 1.35 API types (k8s-openapi); CRD kinds are not.
fn k8s_schema(index: &Index, f: &mut Findings) {
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, networking::v1 as net};
    for o in &index.objects {
        let typed = match (o.api_version.as_str(), o.kind.as_str()) {
            ("apps/v1", "Deployment") => round_trip::<apps::Deployment>(&o.object),
            ("apps/v1", "StatefulSet") => round_trip::<apps::StatefulSet>(&o.object),
            ("apps/v1", "DaemonSet") => round_trip::<apps::DaemonSet>(&o.object),
            ("v1", "Service") => round_trip::<core::Service>(&o.object),
            ("v1", "Pod") => round_trip::<core::Pod>(&o.object),
            ("v1", "Secret") => round_trip::<core::Secret>(&o.object),
            ("v1", "ConfigMap") => round_trip::<core::ConfigMap>(&o.object),
            ("v1", "Namespace") => round_trip::<core::Namespace>(&o.object),
            ("v1", "ServiceAccount") => round_trip::<core::ServiceAccount>(&o.object),
            ("networking.k8s.io/v1", "Ingress") => round_trip::<net::Ingress>(&o.object),
            _ => continue,
        };
        let (errors, typed) = typed;
        // Every type problem of the object, each at its own field.
        for (path, message) in errors {
            let at: Vec<&str> = path.iter().map(String::as_str).collect();
            let field = if path.is_empty() { "the object".to_owned() } else { format!("`{}`", path.join(".")) };
            f.on_object(
                o,
                &at,
                format!("{} {}: {field} does not fit the Kubernetes 1.35 schema: {message}", o.kind, o.name),
                "fix the field's type or shape".into(),
            );
        }
        match typed {
            None => {}
            Some((cleaned, typed)) => {
                let mut dropped = Vec::new();
                dropped_fields(&cleaned, &typed, &mut Vec::new(), &mut dropped);
                for path in dropped {
                    let at: Vec<&str> = path.iter().map(String::as_str).collect();
                    f.on_object(
                        o,
                        &at,
                        format!(
                            "`{}` is not a field of {} in Kubernetes 1.35: strict field validation rejects the object",
                            path.join("."),
                            o.kind
                        ),
                        "remove it or fix its spelling".into(),
                    );
                }
            }
        }
    }
}
