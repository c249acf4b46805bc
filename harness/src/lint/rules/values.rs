//! Rules on Kong's Helm values as the user writes them: keys the chart does not read, pod
//! labels of the wrong type, mesh annotations on the proxy Service, and KIC env keys that name
//! no flag. They change with the Kong charts and KIC's flags.

use super::*;

pub(super) fn kong_values_ignored_key(index: &Index, f: &mut Findings) {
    let Some((values, chart)) = index.kong_values() else { return };
    for (key, _) in map_at(&values.value, &[]) {
        if chart.top_level_keys().contains(&key.as_str()) || anchor_holder(&values.text, key) {
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

/// A top-level key that only holds an anchor the file uses elsewhere (`x-common-labels:
/// &labels`, then `*labels` or `<<: *labels`): a YAML device of the author's, which the chart
/// ignoring is the point, not a misplaced chart key.
fn anchor_holder(text: &str, key: &str) -> bool {
    let quoted = format!("\"{key}\"");
    text.lines()
        .filter(|line| !line.starts_with([' ', '\t']))
        .filter_map(|line| line.strip_prefix(key).or_else(|| line.strip_prefix(quoted.as_str())))
        .filter_map(|rest| rest.strip_prefix(':')?.trim_start().strip_prefix('&'))
        .map(|rest| rest.split(|c: char| c.is_whitespace() || c == '#').next().unwrap_or_default())
        .any(|anchor| !anchor.is_empty() && text.contains(&format!("*{anchor}")))
}

pub(super) fn mesh_annotation_on_service(index: &Index, f: &mut Findings) {
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
pub(super) fn kong_values_label_type(index: &Index, f: &mut Findings) {
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

pub(super) fn kic_env_unknown(index: &Index, f: &mut Findings) {
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
