//! Profiles: a mesh plus pinned versions, read from `versions.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Position};
use crate::model::Mesh;

/// The parsed `versions.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    pub kong: KongPins,
    pub tracing: TracingPins,
    pub istio: IstioPins,
    pub linkerd: LinkerdPins,
    pub gateway_api: GatewayApiPins,
    /// CLIs by name (`kind`, `helm`), downloaded and verified by `tools`.
    pub tools: BTreeMap<String, ToolPin>,
    pub kind: KindPins,
    pub k3s: K3sPins,
    /// Container images by short name; each is a template variable `images.<name>`.
    pub images: BTreeMap<String, String>,
    pub profiles: BTreeMap<String, ProfilePins>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KongPins {
    pub repo: String,
    pub chart: String,
    pub version: String,
    pub release: String,
    pub namespace: String,
    pub gateway_service_account: String,
}

/// Where Istio's charts come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IstioPins {
    pub repo: String,
}

/// Where Linkerd's charts come from and which chart version each edge release has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkerdPins {
    pub repo: String,
    /// Mesh release (`edge-26.8.3`) -> chart version (`2026.8.3`).
    pub charts: BTreeMap<String, String>,
}

/// The Gateway API CRD files, each pinned by sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayApiPins {
    pub version: String,
    /// With `{version}` and `{file}`.
    pub url: String,
    /// File name -> sha256 (lowercase hex).
    pub sha256: BTreeMap<String, String>,
}

/// A CLI pinned per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPin {
    pub version: String,
    /// With `{version}`, `{os}`, `{arch}`.
    pub url: String,
    /// For archives (`.tar.gz`): where the binary sits inside, same placeholders.
    #[serde(default)]
    pub archive_path: Option<String>,
    /// `os/arch` -> sha256 of the download.
    pub sha256: BTreeMap<String, String>,
}

/// kind clusters: the name prefix and node images pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindPins {
    pub cluster_prefix: String,
    /// Kubernetes version (`v1.35.1`) -> `kindest/node:<tag>@sha256:<digest>`.
    pub node_images: BTreeMap<String, String>,
}

/// k3s in a container: images by Kubernetes version, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K3sPins {
    pub images: BTreeMap<String, String>,
}

/// Where the trace collector (Jaeger v2 all-in-one) runs, under which identity, on which ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingPins {
    pub namespace: String,
    /// The collector's Service and Deployment.
    pub service: String,
    /// Its ServiceAccount: on Linkerd, the identity the proxies' exporter verifies.
    pub service_account: String,
    /// OTLP over gRPC: Linkerd's proxies and Istio's opentelemetry provider.
    pub otlp_grpc_port: u16,
    /// OTLP over HTTP (`/v1/traces`): Kong's opentelemetry plugin.
    pub otlp_http_port: u16,
    /// Zipkin v2 (`/api/v2/spans`): Kong's zipkin plugin.
    pub zipkin_port: u16,
    /// Jaeger's query API (`/api/traces/{id}`), reached through the API server's service proxy.
    pub query_port: u16,
}

impl TracingPins {
    /// The collector's in-cluster host name.
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.service, self.namespace)
    }

    /// The Zipkin v2 span intake, as Kong's zipkin plugin addresses it.
    pub fn spans_url(&self) -> String {
        format!("http://{}:{}/api/v2/spans", self.host(), self.zipkin_port)
    }

    /// The OTLP/HTTP trace intake, as Kong's opentelemetry plugin's `traces_endpoint`.
    pub fn otlp_traces_url(&self) -> String {
        format!("http://{}:{}/v1/traces", self.host(), self.otlp_http_port)
    }

    /// The OTLP/gRPC endpoint as `host:port`, as Linkerd's `proxy.tracing.collector.endpoint`.
    pub fn otlp_grpc_endpoint(&self) -> String {
        format!("{}:{}", self.host(), self.otlp_grpc_port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePins {
    pub mesh: Mesh,
    /// kindest/node tag, e.g. `v1.35.1`.
    pub kubernetes: String,
    /// The mesh's release (absent for `none`).
    #[serde(default)]
    pub mesh_version: Option<String>,
    /// The kong/ingress chart version of this profile (default: `[kong] version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kong_chart_version: Option<String>,
    /// The Kong Gateway image (`repository:tag`) over the chart's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kong_gateway_image: Option<String>,
    /// The Kong Ingress Controller image (`repository:tag`) over the chart's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kic_image: Option<String>,
}

/// A named profile resolved against the rest of the versions file.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub pins: ProfilePins,
    pub versions: Versions,
    /// Kong's gateway pods as a label selector, when they are not the harness's own install's
    /// (`--no-install` sets the selector of the proxy Service it found).
    pub kong_selector: Option<String>,
}

/// The largest `versions.toml` read: the 1 MiB bound of every input file (README, "Bounded work").
pub const MAX_VERSIONS_BYTES: u64 = crate::yaml::MAX_FILE_BYTES;

/// `versions.toml` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    #[error("no profile named `{name}` in {file}; known profiles: {known}")]
    Unknown { name: String, file: PathBuf, known: String },
}

impl Versions {
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let invalid = |position, message: String| {
            ProfileError::Invalid(Box::new(Diagnostic::error("versions", path, position, message)))
        };
        // Like every input: a regular file of at most 1 MiB (the checkout's is ~10 KiB), so a
        // huge or endless one costs neither memory nor time; refused before it is parsed.
        let bytes = crate::yaml::read_bounded(path, MAX_VERSIONS_BYTES, "versions.toml")
            .map_err(|e| invalid(Position::WHOLE_FILE, format!("cannot read versions file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| invalid(Position::WHOLE_FILE, format!("versions file is not UTF-8 text: {e}")))?;
        Self::parse(&text).map_err(|(position, message)| {
            ProfileError::Invalid(Box::new(Diagnostic::error("versions", path, position, message).with_source(&text)))
        })
    }

    /// The harness's own `versions.toml`, as it was when this binary was built: the pins a
    /// command run outside any project assumes (and says it assumed).
    pub fn built_in() -> Self {
        // Checked by `the_built_in_versions_parse`; a build whose file did not parse fails it.
        Versions::parse(BUILT_IN_VERSIONS).unwrap_or_else(|(at, why)| {
            unreachable!("the versions.toml built into the binary does not parse at {at:?}: {why}")
        })
    }

    pub fn parse(text: &str) -> Result<Self, (Position, String)> {
        // A text from elsewhere (a bundle's) is bounded like the file.
        if text.len() as u64 > MAX_VERSIONS_BYTES {
            return Err((
                Position::WHOLE_FILE,
                format!("versions.toml is larger than the {} KiB limit", MAX_VERSIONS_BYTES / 1024),
            ));
        }
        let versions: Versions = toml::from_str(text).map_err(|e| {
            let position = e.span().map_or(Position::WHOLE_FILE, |s| Position::of_offset(text, s.start));
            (position, e.message().to_owned())
        })?;
        versions.validate().map_err(|message| {
            // Point at the offending key when it is written in the file.
            let position = message
                .split('`')
                .nth(1)
                .and_then(|key| text.find(&format!("\"{key}\"")).or_else(|| text.find(key)))
                .map_or(Position::WHOLE_FILE, |offset| Position::of_offset(text, offset));
            (position, message)
        })?;
        Ok(versions)
    }

    /// Cross-checks serde cannot express: every profile resolvable, every sum well-formed.
    fn validate(&self) -> Result<(), String> {
        let is_sha256 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        for (name, p) in &self.profiles {
            if p.mesh != Mesh::None && p.mesh_version.is_none() {
                return Err(format!("profile `{name}` (mesh {}) has no mesh_version", p.mesh));
            }
            if !self.kind.node_images.contains_key(&p.kubernetes) {
                return Err(format!(
                    "profile `{name}` wants Kubernetes `{}`, which has no entry in [kind.node_images]",
                    p.kubernetes
                ));
            }
            if let (Mesh::Linkerd, Some(release)) = (p.mesh, &p.mesh_version)
                && !self.linkerd.charts.contains_key(release)
            {
                return Err(format!(
                    "profile `{name}` wants Linkerd `{release}`, which has no entry in [linkerd.charts]"
                ));
            }
        }
        for (version, image) in self.kind.node_images.iter().chain(&self.k3s.images) {
            if !image.contains("@sha256:") {
                return Err(format!(
                    "node image `{version}` is not pinned by digest (want `kindest/node:<tag>@sha256:<digest>`)"
                ));
            }
        }
        self.validate_names()?;
        let sums = self.tools.values().flat_map(|t| t.sha256.iter()).chain(self.gateway_api.sha256.iter());
        for (key, sum) in sums {
            if !is_sha256(sum) {
                return Err(format!("`{key}` is not a sha256 (64 lowercase hex digits): {sum:?}"));
            }
        }
        Ok(())
    }

    /// Every value that becomes a path, a Kubernetes name, a URL or a template value is checked:
    /// a versions file may come from a stranger (a repro bundle carries one).
    fn validate_names(&self) -> Result<(), String> {
        use crate::names::{dns1123_label, dns1123_subdomain, file_segment, https_url, join_under};
        let at = |field: String, checked: Result<(), String>| checked.map_err(|e| format!("{field}: {e}"));
        let k = &self.kong;
        at("kong.repo".into(), https_url(&k.repo))?;
        at("istio.repo".into(), https_url(&self.istio.repo))?;
        at("linkerd.repo".into(), https_url(&self.linkerd.repo))?;
        at("kong.chart".into(), dns1123_label(&k.chart))?;
        at("kong.version".into(), file_segment(&k.version))?;
        // Helm release names are DNS-1123 labels of at most 53 characters (helm/helm
        // pkg/chartutil/validate_name.go, maxReleaseNameLen).
        at("kong.release".into(), dns1123_label(&k.release))?;
        if k.release.len() > 53 {
            return Err(format!("kong.release: `{}` is longer than Helm's 53 characters", k.release));
        }
        at("kong.namespace".into(), dns1123_label(&k.namespace))?;
        at("kong.gateway_service_account".into(), dns1123_subdomain(&k.gateway_service_account))?;
        at("tracing.namespace".into(), dns1123_label(&self.tracing.namespace))?;
        at("tracing.service".into(), dns1123_label(&self.tracing.service))?;
        at("tracing.service_account".into(), dns1123_label(&self.tracing.service_account))?;
        let t = &self.tracing;
        for (name, port) in [
            ("otlp_grpc_port", t.otlp_grpc_port),
            ("otlp_http_port", t.otlp_http_port),
            ("zipkin_port", t.zipkin_port),
            ("query_port", t.query_port),
        ] {
            if port == 0 {
                return Err(format!("tracing.{name}: 0 is not a port"));
            }
        }
        at("kind.cluster_prefix".into(), dns1123_label(&self.kind.cluster_prefix))?;
        if self.kind.cluster_prefix.len() > 20 {
            return Err(format!(
                "kind.cluster_prefix: `{}` is longer than 20 characters (cluster names add the mesh and run id)",
                self.kind.cluster_prefix
            ));
        }
        for (name, tool) in &self.tools {
            at(format!("tools.{name}"), dns1123_label(name))?;
            at(format!("tools.{name}.version"), file_segment(&tool.version))?;
            at(format!("tools.{name}.url"), https_url(&tool.url))?;
            if let Some(member) = &tool.archive_path {
                let filled = member.replace(['{', '}'], "");
                at(format!("tools.{name}.archive_path"), join_under(Path::new(""), &filled).map(drop))?;
            }
        }
        at("gateway_api.version".into(), file_segment(&self.gateway_api.version))?;
        at("gateway_api.url".into(), https_url(&self.gateway_api.url))?;
        for file in self.gateway_api.sha256.keys() {
            at(format!("gateway_api.sha256.{file}"), file_segment(file))?;
        }
        for (release, chart) in &self.linkerd.charts {
            at("linkerd.charts".into(), file_segment(release).and_then(|()| file_segment(chart)))?;
        }
        for (version, image) in self.kind.node_images.iter().chain(&self.k3s.images) {
            at("node image".into(), file_segment(version).and_then(|()| image_reference(image)))?;
        }
        for (name, image) in &self.images {
            at(format!("images.{name}"), dns1123_label(name).and_then(|()| image_reference(image)))?;
        }
        for (name, p) in &self.profiles {
            at(format!("profiles.{name}"), dns1123_label(name))?;
            at(format!("profiles.{name}.kubernetes"), file_segment(&p.kubernetes))?;
            if let Some(version) = &p.mesh_version {
                at(format!("profiles.{name}.mesh_version"), file_segment(version))?;
            }
            if let Some(version) = &p.kong_chart_version {
                at(format!("profiles.{name}.kong_chart_version"), file_segment(version))?;
            }
            for (key, image) in [("kong_gateway_image", &p.kong_gateway_image), ("kic_image", &p.kic_image)] {
                if let Some(image) = image {
                    let tagged = match image.rsplit_once(':') {
                        Some((_, tag)) if !tag.contains('/') => Ok(()),
                        _ => Err(format!("`{image}` names no tag: write repository:tag")),
                    };
                    at(format!("profiles.{name}.{key}"), image_reference(image).and(tagged))?;
                }
            }
        }
        Ok(())
    }

    /// The profile named `name`, or the default one of `mesh` (the profile named after it).
    pub fn profile(&self, name: &str, file: &Path) -> Result<Profile, ProfileError> {
        let pins = self.profiles.get(name).ok_or_else(|| ProfileError::Unknown {
            name: name.to_owned(),
            file: file.to_owned(),
            known: self.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        Ok(Profile { name: name.to_owned(), pins: pins.clone(), versions: self.clone(), kong_selector: None })
    }
}

/// A container image reference: registry, path, tag and digest characters only, bounded, so it
/// cannot carry a second argument, a newline or a template that grows without end.
fn image_reference(image: &str) -> Result<(), String> {
    let ok = !image.is_empty()
        && image.len() <= 255
        && !image.starts_with('-')
        && image.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a container image reference (registry/name:tag@sha256:digest, at most 255 characters)",
            crate::names::printable(image)
        ))
    }
}

impl Profile {
    pub fn mesh(&self) -> Mesh {
        self.pins.mesh
    }

    /// The k3s image for this profile's Kubernetes: pinned for the same version, else for the
    /// same minor (k3s images are released per patch on their own schedule).
    pub fn k3s_image(&self) -> Option<&str> {
        let parts = version_parts;
        let wanted = &self.pins.kubernetes;
        let same_minor = |v: &str| parts(v).get(..2) == parts(wanted).get(..2);
        self.versions
            .k3s
            .images
            .get(wanted)
            .or_else(|| {
                self.versions
                    .k3s
                    .images
                    .iter()
                    .filter(|(v, _)| same_minor(v))
                    .max_by_key(|(v, _)| parts(v))
                    .map(|(_, i)| i)
            })
            .map(String::as_str)
    }
}

impl Profile {
    /// The profile a mesh upgrade of this one moves to: the same mesh, Kubernetes and Kong, at
    /// the next newer mesh release pinned in versions.toml (`istio` 1.30.5 -> `istio-1-31`
    /// 1.31.1). None for ambient (upgrading ztunnel in place moves every pod's traffic at once;
    /// Istio documents it as disruptive) and when nothing newer is pinned.
    pub fn next_mesh_pin(&self) -> Option<Profile> {
        if !matches!(self.mesh(), Mesh::Istio | Mesh::Linkerd) {
            return None;
        }
        let mine = self.pins.mesh_version.as_deref().map(mesh_version_parts)?;
        self.next_pin(
            |p| {
                p.kubernetes == self.pins.kubernetes
                    && p.kong_chart_version.as_deref().unwrap_or(&self.versions.kong.version)
                        == self.kong_chart_version()
            },
            |p| p.mesh_version.as_deref().map(mesh_version_parts),
            mine,
        )
    }
}

impl Profile {
    /// The Kong chart this profile installs (`kong_chart_version`, else `[kong] version`).
    pub fn kong_chart_version(&self) -> &str {
        self.pins.kong_chart_version.as_deref().unwrap_or(&self.versions.kong.version)
    }

    /// The profile with the next newer Kong chart for the same mesh release, Kubernetes and
    /// Kong images: where `upgrade: {kong: next}` goes. Kong's images must match, or the upgrade
    /// would also move what the profile pins over the chart.
    pub fn next_kong_pin(&self) -> Option<Profile> {
        let mine = version_parts(self.kong_chart_version());
        self.next_pin(
            |p| p.mesh_version == self.pins.mesh_version && p.kubernetes == self.pins.kubernetes,
            |p| Some(version_parts(p.kong_chart_version.as_deref().unwrap_or(&self.versions.kong.version))),
            mine,
        )
    }

    /// The profile of the same mesh and Kong images that `same` accepts, whose version (`parts`)
    /// is the smallest one above `mine`; by name among equals.
    fn next_pin(
        &self,
        same: impl Fn(&ProfilePins) -> bool,
        parts: impl Fn(&ProfilePins) -> Option<Vec<u64>>,
        mine: Vec<u64>,
    ) -> Option<Profile> {
        self.versions
            .profiles
            .iter()
            .filter(|(_, p)| {
                p.mesh == self.pins.mesh
                    && p.kong_gateway_image == self.pins.kong_gateway_image
                    && p.kic_image == self.pins.kic_image
                    && same(p)
            })
            .filter_map(|(name, p)| Some((name, p, parts(p)?)))
            .filter(|(_, _, parts)| *parts > mine)
            .min_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(b.0)))
            .map(|(name, p, _)| Profile {
                name: name.clone(),
                pins: p.clone(),
                versions: self.versions.clone(),
                kong_selector: self.kong_selector.clone(),
            })
    }
}

/// A mesh release's numbers for ordering: Istio's `1.30.5`, Linkerd's `edge-26.8.3` (its
/// numbers after the channel).
fn mesh_version_parts(version: &str) -> Vec<u64> {
    version_parts(version.trim_start_matches("edge-"))
}

/// A version's numbers, for ordering: `v1.35.10` is newer than `v1.35.9` (a part that is not a
/// number counts as 0).
pub fn version_parts(version: &str) -> Vec<u64> {
    version.trim_start_matches('v').split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The harness's `versions.toml`, built into the binary ([`Versions::built_in`]).
pub const BUILT_IN_VERSIONS: &str = include_str!("../../versions.toml");

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The next pin of each mesh among the checkout's profiles: same Kubernetes and Kong, the
    /// nearest newer mesh release; none for the newest, for ambient and for no mesh.
    #[test]
    fn a_mesh_upgrade_moves_to_the_next_pin() {
        let versions = Versions::parse(BUILT_IN_VERSIONS).unwrap();
        let next =
            |name: &str| versions.profile(name, Path::new("versions.toml")).unwrap().next_mesh_pin().map(|p| p.name);
        assert_eq!(next("istio").as_deref(), Some("istio-1-31"));
        assert_eq!(next("linkerd").as_deref(), Some("linkerd-edge-26-9-1"));
        assert_eq!(next("istio-1-31"), None, "the newest pin");
        assert_eq!(next("istio-k8s-1-34"), None, "no newer Istio on Kubernetes 1.34");
        assert_eq!(next("istio-ambient"), None);
        assert_eq!(next("none"), None);
        assert!(mesh_version_parts("edge-27.1.1") > mesh_version_parts("edge-26.12.3"));
    }

    /// The smallest valid versions file; other modules' tests build their profile from it.
    pub(crate) const MINIMAL: &str = r#"
[kong]
repo = "https://charts.konghq.com"
chart = "ingress"
version = "0.24.0"
release = "kong"
namespace = "kong"
gateway_service_account = "kong-gateway"
[tracing]
namespace = "tracing"
service = "jaeger"
service_account = "jaeger"
otlp_grpc_port = 4317
otlp_http_port = 4318
zipkin_port = 9411
query_port = 16686
[istio]
repo = "https://istio-release.storage.googleapis.com/charts"
[linkerd]
repo = "https://helm.linkerd.io/edge"
[linkerd.charts]
"edge-26.8.3" = "2026.8.3"
[gateway_api]
version = "v1.3.0"
url = "https://example.invalid/{version}/{file}"
[gateway_api.sha256]
"a.yaml" = "7c8ee2c1878d9dcc6ba106181e3d14d7eaa520ec070233d62f3aa0d674d19450"
[tools.kind]
version = "v0.32.0"
url = "https://example.invalid/{version}/kind-{os}-{arch}"
[tools.kind.sha256]
"linux/amd64" = "50030de23cf40a18505f20426f6a8506bedf13c6e509244bd1fa9463721b0f54"
[kind]
cluster_prefix = "kme2e"
[kind.node_images]
"v1.35.1" = "kindest/node:v1.35.1@sha256:05d7bcdefbda08b4e038f644c4df690cdac3fba8b06f8289f30e10026720a1ab"
[k3s.images]
[images]
echo = "echo:1"
[profiles.istio]
mesh = "istio"
kubernetes = "v1.35.1"
mesh_version = "1.30.3"
"#;

    #[test]
    fn parses_profiles() {
        let v = Versions::parse(MINIMAL).unwrap();
        let p = v.profile("istio", Path::new("versions.toml")).unwrap();
        assert_eq!(p.mesh(), Mesh::Istio);
        let err = v.profile("consul", Path::new("versions.toml")).unwrap_err().to_string();
        assert_eq!(err, "no profile named `consul` in versions.toml; known profiles: istio");
    }

    #[test]
    fn unknown_keys_are_located() {
        let text = MINIMAL.replace("kubernetes = ", "kubernets = ");
        let (position, message) = Versions::parse(&text).unwrap_err();
        assert_eq!(position.line, 42);
        assert!(message.contains("unknown field `kubernets`"), "{message}");
    }

    #[test]
    fn pins_are_cross_checked_and_located() {
        let bad_sum = MINIMAL.replace("\"50030de2", "\"50030DE2");
        let (position, message) = Versions::parse(&bad_sum).unwrap_err();
        assert!(message.starts_with("`linux/amd64` is not a sha256"), "{message}");
        assert_eq!(position.line, 32);
        let no_image = MINIMAL.replace("kubernetes = \"v1.35.1\"", "kubernetes = \"v1.99.0\"");
        assert!(
            Versions::parse(&no_image).unwrap_err().1.contains("`v1.99.0`, which has no entry in [kind.node_images]")
        );
        let tag_only = MINIMAL.replace("@sha256:05d7bcdefbda08b4e038f644c4df690cdac3fba8b06f8289f30e10026720a1ab", "");
        assert!(Versions::parse(&tag_only).unwrap_err().1.contains("not pinned by digest"));
        let linkerd = format!(
            "{MINIMAL}[profiles.linkerd]\nmesh = \"linkerd\"\nkubernetes = \"v1.35.1\"\nmesh_version = \"edge-1.1.1\"\n"
        );
        assert!(
            Versions::parse(&linkerd).unwrap_err().1.contains("`edge-1.1.1`, which has no entry in [linkerd.charts]")
        );
    }

    /// A versions file may come from a repro bundle: nothing in it may point a download, a
    /// cache directory, a values file or a Kubernetes name anywhere else.
    #[test]
    fn values_that_become_paths_names_or_urls_are_refused() {
        let cases = [
            (
                "version = \"v0.32.0\"",
                "version = \"../../../tmp/x\"",
                "tools.kind.version: `../../../tmp/x` cannot name a file",
            ),
            (
                "https://example.invalid/{version}/kind",
                "http://evil.test/{version}/kind",
                "tools.kind.url: `http://evil.test/",
            ),
            ("release = \"kong\"", "release = \"../kong\"", "kong.release: `../kong` is not a DNS-1123 label"),
            ("namespace = \"kong\"", "namespace = \"kube-system/x\"", "kong.namespace:"),
            ("\"a.yaml\" = ", "\"../a.yaml\" = ", "gateway_api.sha256.../a.yaml: `../a.yaml` cannot name a file"),
            ("repo = \"https://charts.konghq.com\"", "repo = \"http://charts.konghq.com\"", "kong.repo:"),
            (
                "echo = \"echo:1\"",
                "echo = \"echo:1 --privileged\"",
                "images.echo: `echo:1 --privileged` is not a container image",
            ),
            ("cluster_prefix = \"kme2e\"", "cluster_prefix = \"KME2E\"", "kind.cluster_prefix:"),
            ("[profiles.istio]", "[profiles.\"../istio\"]", "profiles.../istio:"),
        ];
        for (from, to, expected) in cases {
            assert!(MINIMAL.contains(from), "{from}");
            let (position, message) = Versions::parse(&MINIMAL.replacen(from, to, 1)).unwrap_err();
            assert!(message.starts_with(expected), "{to}: {message}");
            assert_ne!(position, Position::WHOLE_FILE, "{to}: located");
        }
        let long = format!("echo = \"{}\"", "a".repeat(300));
        assert!(
            Versions::parse(&MINIMAL.replacen("echo = \"echo:1\"", &long, 1)).unwrap_err().1.contains("at most 255")
        );
    }

    /// renovate.json's regex managers still find every pin they are meant to bump: a pin that
    /// moved in versions.toml would otherwise silently stop being proposed.
    #[test]
    fn renovate_finds_every_pin_it_bumps() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let versions = std::fs::read_to_string(root.join("versions.toml")).unwrap();
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("renovate.json")).unwrap()).unwrap();
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for manager in config["customManagers"].as_array().unwrap() {
            assert_eq!(manager["managerFilePatterns"][0], "/^versions\\.toml$/");
            let pattern = manager["matchStrings"][0].as_str().unwrap();
            let regex = regex::Regex::new(pattern).unwrap();
            let name = manager["depNameTemplate"].as_str().unwrap_or("images").to_owned();
            for captures in regex.captures_iter(&versions) {
                found.entry(name.clone()).or_default().push(captures["currentValue"].to_owned());
            }
        }
        let parsed = Versions::parse(&versions).unwrap();
        let mut istio: Vec<String> =
            parsed.profiles.values().filter(|p| p.mesh.is_istio()).filter_map(|p| p.mesh_version.clone()).collect();
        assert_eq!(found["kubernetes-sigs/kind"], [parsed.tools["kind"].version.clone()]);
        assert_eq!(found["helm/helm"], [parsed.tools["helm"].version.clone()]);
        assert_eq!(found["kubernetes-sigs/gateway-api"], std::slice::from_ref(&parsed.gateway_api.version));
        assert_eq!(found["ingress"], std::slice::from_ref(&parsed.kong.version));
        istio.sort();
        let mut seen = found["istiod"].clone();
        seen.sort();
        assert_eq!(seen, istio, "every Istio profile");
        assert_eq!(found["images"].len(), parsed.images.len(), "every image: {:?}", found["images"]);
    }

    /// A 12 MB versions.toml once cost 2.8 GB and 5 s to parse: now anything over 1 MiB is
    /// refused unparsed, at once, with an error located at the file; so are devices and FIFOs.
    #[test]
    fn oversized_or_special_versions_files_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("versions.toml");
        // A valid file padded with comments to just over the bound.
        let mut text = MINIMAL.to_owned();
        text.push_str(&"# padding\n".repeat(MAX_VERSIONS_BYTES as usize / 10 + 1));
        std::fs::write(&file, &text).unwrap();
        let started = std::time::Instant::now();
        let ProfileError::Invalid(d) = Versions::load(&file).unwrap_err() else { panic!() };
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!((d.file.as_path(), d.position), (file.as_path(), Position::WHOLE_FILE));
        assert!(d.message.contains("larger than the 1024 KiB limit for versions.toml"), "{}", d.message);
        assert!(Versions::parse(&text).unwrap_err().1.contains("larger than the 1024 KiB limit"));
        // Endless and blocking inputs are never opened.
        let ProfileError::Invalid(d) = Versions::load(Path::new("/dev/zero")).unwrap_err() else { panic!() };
        assert!(d.message.contains("not a regular file"), "{}", d.message);
        // Within the bound, the same text loads.
        std::fs::write(&file, MINIMAL).unwrap();
        assert!(Versions::load(&file).is_ok());
    }

    #[test]
    fn meshes_need_a_version() {
        let text = MINIMAL.replace("mesh_version = \"1.30.3\"\n", "");
        assert!(Versions::parse(&text).unwrap_err().1.contains("has no mesh_version"));
    }

    #[test]
    fn the_built_in_versions_parse() {
        assert!(Versions::parse(BUILT_IN_VERSIONS).is_ok());
        assert!(!Versions::built_in().profiles.is_empty());
    }
}
