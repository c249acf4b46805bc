//! What a run's report says beyond its results: the versions that ran and the command that
//! reruns it.

use crate::cluster::{self};
use crate::plan::Plan;
use crate::profile::Profile;

use super::{Options, ProviderChoice};

/// The report of `plan`'s run with `results`: versions and the command that reruns it.
pub(super) fn report_of(
    plan: &Plan,
    profile: &Profile,
    results: Vec<crate::report::ScenarioResult>,
) -> crate::report::RunReport {
    let mesh = profile.mesh();
    crate::report::RunReport {
        run: plan.run.clone(),
        profile: profile.name.clone(),
        mesh: mesh.to_string(),
        versions: versions_of_plan(plan, profile),
        rerun: format!("{} e2e {mesh} --profile {}", crate::command_name(), profile.name),
        results,
    }
}

/// The report as the run really happened, for every way a run ends (scenarios run, or the
/// environment or discovery failed): the versions that ran, and a rerun command with the
/// provider flags the run was given. [`report_of`] starts from the plan's pins; a provider that
/// never ran kind, or `--no-install` (no tool, chart or collector of the harness's; the cluster's
/// own Kubernetes), did not run them, so they are not listed, and what discovery found is.
pub fn as_run(
    report: &mut crate::report::RunReport,
    options: &Options,
    discovered: Option<&cluster::discover::Discovered>,
) {
    let versions = &mut report.versions;
    if options.provider != ProviderChoice::Kind {
        versions.remove("kind");
    }
    if options.provider == ProviderChoice::Existing {
        // The cluster's own Kubernetes, not the profile's pin (not read from the cluster).
        versions.remove("kubernetes");
    }
    if options.no_install {
        // Only the harness itself and the scenarios' own images (echo, client) run; the
        // collector's image is the stack's (stack::collector).
        let installed_only = |k: &str| {
            matches!(k, "helm" | "gateway-api" | "kong-gateway" | "kong-ingress-controller" | "image/jaeger")
                || k.starts_with("kong/")
                || crate::model::Mesh::ALL.iter().any(|m| m.as_str() == k)
        };
        versions.retain(|k, _| !installed_only(k));
    }
    if let Some(found) = discovered {
        found.report_versions(versions);
    }
    report.rerun.push_str(&provider_flags(options));
}

/// The command-line flags that choose `options`' cluster, for a rerun line: values quoted for a
/// POSIX shell, and a password in the proxy URL replaced (reports are shared).
pub(super) fn provider_flags(options: &Options) -> String {
    let mut flags = String::new();
    match options.provider {
        ProviderChoice::Kind => return flags,
        ProviderChoice::K3s => return " --provider k3s".into(),
        ProviderChoice::Existing => flags.push_str(" --provider existing"),
    }
    if let Some(context) = &options.context {
        flags.push_str(&format!(" --context {}", shell_word(context)));
    }
    if let Some(proxy) = &options.proxy {
        flags.push_str(&format!(" --proxy {}", shell_word(&without_password(proxy))));
    }
    if options.no_install {
        flags.push_str(" --no-install");
    }
    if let Some(namespace) = &options.kong_namespace {
        flags.push_str(&format!(" --kong-namespace {}", shell_word(namespace)));
    }
    flags
}

/// `word` as one POSIX shell word: as is when it holds only characters no shell treats
/// specially, else single-quoted (a `'` inside as `'\''`).
pub(super) fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A URL with the password of its user info (`scheme://user:password@host`) replaced.
pub(super) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            let hidden = if user_info.contains(':') { format!("{user}:[redacted]") } else { user.to_owned() };
            format!("{scheme}://{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}
/// [`versions_of`], with the Kong Gateway and KIC images the plan's Kong release runs (the
/// chart's defaults, or the user's values).
pub fn versions_of_plan(plan: &Plan, profile: &Profile) -> std::collections::BTreeMap<String, String> {
    let mut out = versions_of(profile);
    let kong = plan.environment.iter().find_map(|a| match a {
        crate::stack::Action::Helm(r) if r.name == profile.versions.kong.release => Some(&r.values),
        _ => None,
    });
    if let Some(values) = kong {
        let (gateway, kic) = crate::stack::kong::images_in(values);
        out.insert("kong-gateway".into(), gateway);
        out.insert("kong-ingress-controller".into(), kic);
    }
    out
}

/// Everything installed, by component, for reports.
pub fn versions_of(profile: &Profile) -> std::collections::BTreeMap<String, String> {
    let v = &profile.versions;
    let mut out = std::collections::BTreeMap::new();
    out.insert("kubernetes".into(), profile.pins.kubernetes.clone());
    let chart_version = profile.pins.kong_chart_version.as_ref().unwrap_or(&v.kong.version);
    out.insert(format!("{}/{}", "kong", v.kong.chart), chart_version.clone());
    out.insert("harness".into(), crate::Provenance::this_build().to_string());
    out.insert("gateway-api".into(), v.gateway_api.version.clone());
    if let Some(mesh) = &profile.pins.mesh_version {
        out.insert(profile.mesh().to_string(), mesh.clone());
    }
    for (name, tool) in &v.tools {
        out.insert(name.clone(), tool.version.clone());
    }
    for (name, image) in &v.images {
        out.insert(format!("image/{name}"), image.clone());
    }
    out
}
