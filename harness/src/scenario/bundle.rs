//! Repro bundles: one YAML file that reproduces a scenario on a mesh anywhere: the versions
//! file, the scenario and every fixture it applies, inline and as written. A bundle unpacks into
//! a project layout, so everything that works on the project (lint, plan, e2e) works on it.

use crate::model::FailureKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Catalog, CheckError, Mesh};
use crate::diagnostic::{Diagnostic, Position};
use crate::names;
use crate::profile::Versions;
use crate::project::Project;
use crate::yaml;

/// The format identifier written into every bundle.
pub const FORMAT: &str = "kong-mesh-e2e/repro/v2";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Bundle {
    pub bundle: String,
    /// The harness that wrote it; `repro run` warns when it is another.
    pub harness: crate::Provenance,
    pub scenario: String,
    pub mesh: Mesh,
    /// The profile of the bundle's `versions.toml` the run used (default: the one named after
    /// the mesh).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    /// What reproducing means, checked by `repro run`: every step passes, or one step fails.
    pub expected: Expected,
    /// `versions.toml` as the run used it: every pinned version and the profiles.
    pub versions_toml: String,
    /// The Helm values in force for each release, by chart as `--values` names them
    /// (`kong/ingress`, `istiod`, `linkerd-control-plane`), secrets redacted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, serde_json::Value>,
    /// The scenario file as written.
    pub scenario_yaml: String,
    /// Every fixture file the scenario (and the mesh's stack) applies, by path under fixtures/.
    pub fixtures: BTreeMap<String, String>,
    /// Where the harness redacted a credential when it wrote the bundle ([`Bundle::redact`]):
    /// `values.<chart>:<key>` and `fixtures/<file>:<Kind>/<name>.<field>`, never the values.
    /// Bundles written before the field existed load without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    #[error("no scenario `{name}` in {dir}")]
    UnknownScenario { name: String, dir: PathBuf },
    #[error("scenario `{name}` does not run on {mesh}; it runs on {runs_on}")]
    WrongMesh { name: String, mesh: Mesh, runs_on: String },
    #[error(transparent)]
    Check(#[from] CheckError),
    // The I/O error is part of the message, not a `source`: a chain printed with `{:#}` would
    // say it twice ("Not a directory (os error 20): Not a directory (os error 20)").
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("cannot write {path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    /// Several located problems, all reported at once (`repro new` on the user's files).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Problems(Vec<Diagnostic>),
    #[error(
        "the bundle's pins or Helm values differ from this checkout's:\n{}\n\
         A bundle chooses versions only among this checkout's profiles; its tools, URLs, sums, images, \
         chart repositories and Helm values are never used unless you pass --trust-bundle-pins, which downloads \
         and runs them",
        render_differences(.0)
    )]
    ForeignPins(Vec<PinDifference>),
}

/// What a bundle's run must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expected {
    pub outcome: ExpectedOutcome,
    /// With `fails`: the step that must fail, numbered as `plan` numbers them (from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// With `fails`: text the failure's detail must contain (e.g. `503`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For people: what the bug is, in the reporter's words. Never checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedOutcome {
    /// Every step passes.
    Passes,
    /// Step `step` fails (the bug reproduces); the steps before it pass.
    Fails,
}

impl Expected {
    pub fn passes() -> Expected {
        Expected { outcome: ExpectedOutcome::Passes, step: None, detail: None, note: String::new() }
    }

    /// The fields that go together: `fails` names its step, `passes` names none.
    fn check(&self, steps: usize) -> Result<(), (&'static str, String)> {
        match (self.outcome, self.step) {
            (ExpectedOutcome::Passes, Some(_)) => {
                Err(("expected.step", "`passes` means every step passes: it names no step".into()))
            }
            (ExpectedOutcome::Passes, None) if self.detail.is_some() => {
                Err(("expected.detail", "`passes` has no failure detail to match".into()))
            }
            (ExpectedOutcome::Fails, None) => {
                Err(("expected", "`fails` needs `step`: the step (from 1) that must fail".into()))
            }
            (ExpectedOutcome::Fails, Some(n)) if n == 0 || n > steps => {
                Err(("expected.step", format!("step {n} does not exist: the scenario has {steps} step(s)")))
            }
            _ => Ok(()),
        }
    }

    /// The verdict of a run whose first failed step is `failed` (its number, 0 for the namespace
    /// and fixtures, its detail and why it failed), or `None` when every step passed: `Ok` with
    /// what was seen when it matches, `Err` with what differs. Only a check's verdict reproduces
    /// a bug: the harness failing at the expected step (an API error) is not the bug showing.
    pub fn judge(&self, failed: Option<(usize, &str, FailureKind)>) -> Result<String, String> {
        let named = |n: usize| if n == 0 { "the namespace and fixtures".to_owned() } else { format!("step {n}") };
        match (self.outcome, self.step, failed) {
            (ExpectedOutcome::Passes, _, None) => Ok("every step passed, as the bundle expects".into()),
            (ExpectedOutcome::Passes, _, Some((n, detail, _))) => {
                Err(format!("the bundle expects every step to pass; {} failed: {detail}", named(n)))
            }
            (ExpectedOutcome::Fails, Some(want), None) => {
                Err(format!("the bundle expects step {want} to fail; every step passed: not reproduced"))
            }
            (ExpectedOutcome::Fails, Some(want), Some((n, detail, kind)))
                if n == want && kind != FailureKind::Verdict =>
            {
                Err(format!("step {want} {kind}, which is not the bug reproducing: {detail}"))
            }
            (ExpectedOutcome::Fails, Some(want), Some((n, detail, _))) if n == want => match &self.detail {
                // As written by a person (`503`), or as a signature this run's failure shares.
                Some(text)
                    if !detail.contains(text.as_str())
                        && !failure_signature(detail).is_some_and(|own| own.contains(text.as_str())) =>
                {
                    Err(format!("step {want} failed as the bundle expects, but not with `{text}`: {detail}"))
                }
                _ => Ok(format!("step {want} failed, as the bundle expects (reproduced): {detail}")),
            },
            (ExpectedOutcome::Fails, Some(want), Some((n, detail, _))) => {
                Err(format!("the bundle expects step {want} to fail; {} failed instead: {detail}", named(n)))
            }
            (ExpectedOutcome::Fails, None, _) => Err("the bundle's `expected` names no step".into()),
        }
    }
}

/// What a failure's detail says went wrong, stable from run to run, for `expected.detail` of a
/// bundle written after that failure: the last observation (`last seen: ...`, else the first
/// line), its first failure when a check spelled them out (`fail: a; b`), without a split's
/// settle preamble, with what differs between runs replaced by `*` ([`normalise`]). At most 16
/// words; `None` when fewer than two stable words are left.
pub fn failure_signature(detail: &str) -> Option<String> {
    let last_seen = detail.lines().find_map(|l| l.trim_start().strip_prefix("last seen:"));
    let mut phrase = last_seen.unwrap_or_else(|| detail.lines().next().unwrap_or_default()).trim();
    if let Some((preamble, rest)) = phrase.split_once("; ")
        && preamble.starts_with("route in effect after ")
    {
        phrase = rest;
    }
    if let Some(i) = phrase.find("fail: ") {
        phrase = &phrase[i + "fail: ".len()..];
    }
    let phrase = phrase.split("; ").next().unwrap_or_default();
    let words: Vec<String> = normalise(phrase).split(" ").take(16).map(str::to_owned).collect();
    let stable = words.iter().filter(|w| !w.is_empty() && !w.starts_with('*')).count();
    let signature = words.join(" ").trim_end_matches([',', ':', ';', ' ']).to_owned();
    (stable >= 2).then_some(signature)
}

/// `text` with what differs between runs of the same failure replaced by `*`, words joined by
/// one space: quoted text and bracketed groups (`(pod ...)`, `{...}` evidence, `[...]` lists),
/// tokens mixing letters and digits longer than 3 (`echo-v1-6d8f9-abcde`, `t-r1abc23-1`; `v1`
/// and `h2` stay), hex runs of 8 or more, and numbers other than HTTP statuses (100-599), which
/// are what a failure is about.
pub fn normalise(text: &str) -> String {
    let mut unquoted = String::with_capacity(text.len());
    let (mut in_quotes, mut depth) = (false, 0usize);
    for c in text.chars() {
        // Neither a quote nor a bracket spans lines: an unbalanced one hides nothing after it.
        if c == '\n' {
            (in_quotes, depth) = (false, 0);
        }
        match (c, in_quotes, depth) {
            ('"', false, 0) => {
                in_quotes = true;
                unquoted.push('*');
            }
            ('"', true, _) => in_quotes = false,
            (_, true, _) => {}
            ('(' | '{' | '[', false, d) => {
                if d == 0 {
                    unquoted.push('*');
                }
                depth += 1;
            }
            (')' | '}' | ']', false, d) => depth = d.saturating_sub(1),
            (_, false, 0) => unquoted.push(c),
            _ => {}
        }
    }
    unquoted
        .split_whitespace()
        .map(|token| {
            let core = token.trim_end_matches([',', ';', ':', '.']);
            let tail = &token[core.len()..];
            let letters = core.bytes().any(|b| b.is_ascii_alphabetic());
            let digits = core.bytes().any(|b| b.is_ascii_digit());
            let hex_id = core.len() >= 8 && core.bytes().all(|b| b.is_ascii_hexdigit());
            let number = digits && core.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'/');
            let status = core.len() == 3 && core.parse::<u16>().is_ok_and(|n| (100..=599).contains(&n));
            if (letters && digits && core.len() > 3) || hex_id || (number && !status) {
                format!("*{tail}")
            } else {
                token.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.outcome, self.step) {
            (ExpectedOutcome::Fails, Some(n)) => write!(f, "step {n} fails")?,
            _ => write!(f, "every step passes")?,
        }
        if let Some(text) = &self.detail {
            write!(f, " with `{text}`")?;
        }
        Ok(())
    }
}

/// One pin where a bundle's `versions.toml` and the checkout's disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinDifference {
    /// Dotted key, e.g. `tools.kind.url`.
    pub key: String,
    pub bundle: Option<String>,
    pub checkout: Option<String>,
}

fn render_differences(differences: &[PinDifference]) -> String {
    let shown =
        |v: &Option<String>| v.as_deref().map_or("(absent)".to_owned(), |v| format!("`{}`", names::printable(v)));
    differences
        .iter()
        .map(|d| {
            format!("  {}: bundle {}, checkout {}", names::printable(&d.key), shown(&d.bundle), shown(&d.checkout))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How far a bundle's own pins are trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinTrust {
    /// The checkout's `versions.toml` is used; the bundle picks one of its profiles (default).
    Checkout,
    /// The bundle's `versions.toml` is used as it is (`--trust-bundle-pins`).
    Bundle,
}

/// A bundle unpacked for a run: a fresh directory of its own, the profile to run and what its
/// pins would have changed.
#[derive(Debug)]
pub struct Admitted {
    /// Removed when dropped, unless kept (`TempDir::keep`) for a live run's evidence.
    pub dir: tempfile::TempDir,
    pub project: Project,
    pub profile: String,
    pub differences: Vec<PinDifference>,
    /// The bundle's Helm values where they differ from the harness's own (trusted only), as
    /// `--values CHART=FILE` pairs written into `dir`.
    pub values: Vec<(String, PathBuf)>,
}

/// The `[images]` the harness itself runs whatever the scenario: the from-pod client and the
/// trace collector (the echo backend is a fixture's, found where a fixture names it).
pub const HARNESS_IMAGES: &[&str] = &["client", "jaeger"];

/// Read a file of the project for a bundle: a regular file, never through a link (a link in a
/// project could carry any file of the user's into a bundle that is then shared), bounded.
pub(crate) fn read(path: &Path) -> Result<String, ReproError> {
    names::read_regular_text(path, yaml::MAX_FILE_BYTES)
        .map_err(|error| ReproError::Read { path: path.to_owned(), error })
}

/// Read fixture `rel` of the project under `fixtures_dir` for a bundle: a checked path inside
/// fixtures/, no link on the way from `fixtures_dir` or at the end
/// ([`super::fixture::link_problem_in`]).
/// Stack manifest `rel` for a bundle: the project's copy, else the built-in one.
pub(crate) fn read_stack_manifest(fixtures_dir: &Path, rel: &str) -> Result<String, ReproError> {
    match (crate::stack::kong::stack_manifest(fixtures_dir, rel), crate::stack::kong::built_in_stack_manifest(rel)) {
        (None, Some(text)) => Ok(text.to_owned()),
        _ => read_fixture(fixtures_dir, rel),
    }
}

pub(crate) fn read_fixture(fixtures_dir: &Path, rel: &str) -> Result<String, ReproError> {
    let path = names::join_under(fixtures_dir, rel).map_err(|e| {
        ReproError::Invalid(Box::new(Diagnostic::error(
            "read",
            fixtures_dir,
            Position::WHOLE_FILE,
            format!("fixture {e}"),
        )))
    })?;
    if let Some(problem) = super::fixture::link_problem_in(fixtures_dir, &path) {
        return Err(ReproError::Read { path, error: std::io::Error::other(problem) });
    }
    read(&path)
}

/// Scenario names are kebab-case (as `scenario::load` requires of files): a name is checked
/// before it becomes a path, wherever it comes from.
fn scenario_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok { Ok(()) } else { Err(format!("scenario name `{}` is not kebab-case", names::printable(name))) }
}

/// Bundle scenario `name` for `mesh` from the catalog's project, with the Helm values in force
/// (`values`: by chart, as [`crate::stack::values::in_force`] gives them).
pub fn export(
    catalog: &Catalog,
    name: &str,
    profile: &crate::profile::Profile,
    values: BTreeMap<String, serde_json::Value>,
) -> Result<Bundle, ReproError> {
    let mesh = profile.mesh();
    if scenario_name(name).is_err() {
        return Err(ReproError::UnknownScenario { name: names::printable(name), dir: catalog.project.scenarios_dir() });
    }
    let file = catalog.project.scenarios_dir().join(format!("{name}.yaml"));
    if !file.is_file() {
        return Err(ReproError::UnknownScenario { name: name.to_owned(), dir: catalog.project.scenarios_dir() });
    }
    let meshes = catalog.meshes_of(&file)?;
    if !meshes.contains(&mesh) {
        let runs_on = meshes.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
        return Err(ReproError::WrongMesh { name: name.to_owned(), mesh, runs_on });
    }
    let checked = catalog.check_mesh(&file, mesh, "offline")?;
    let fixtures_dir = catalog.project.fixtures_dir();
    let mut fixtures = BTreeMap::new();
    let referenced = checked.scenario.fixture_refs().map(|f| f.value.clone());
    for rel in referenced {
        let text = read_fixture(&fixtures_dir, &rel)?;
        fixtures.insert(rel, text);
    }
    for rel in crate::stack::kong::stack_manifests(mesh) {
        fixtures.insert((*rel).to_owned(), read_stack_manifest(&fixtures_dir, rel)?);
    }
    let mut bundle = Bundle {
        bundle: FORMAT.to_owned(),
        harness: crate::Provenance::this_build(),
        scenario: name.to_owned(),
        mesh,
        profile: profile.name.clone(),
        expected: Expected::passes(),
        versions_toml: read(&catalog.project.versions_file())?,
        values,
        scenario_yaml: read(&file)?,
        fixtures,
        redacted: Vec::new(),
    };
    bundle.redact();
    Ok(bundle)
}

/// Kong credential fields that name or describe rather than hold a secret: kept, so a
/// credential Secret still applies (Kong/kubernetes-ingress-controller credential types).
const CREDENTIAL_DESCRIPTORS: &[&str] = &["kongCredType", "algorithm"];

/// A template placeholder (`{{ jwt.secret }}`): the harness fills it per run, it holds nothing.
fn placeholder(text: &str) -> bool {
    crate::stack::values::placeholder(text)
}

/// kubectl's copy of the whole object as last applied: a Secret's `data` sits in it.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A manifest's text with its credentials redacted, and where (`<Kind>/<name>.<field>`): every
/// value of a Secret's `data` and `stringData` (but placeholders and
/// [`CREDENTIAL_DESCRIPTORS`]; `data` becomes base64 of `[redacted]`, so the Secret still
/// applies), and anywhere but `metadata`, credentials by shape and secret-named `{name, value}`
/// pairs ([`crate::stack::values::redact_manifest_value`]). Only documents holding one change
/// (rendered again, with a comment saying so); the others stay as written.
pub fn redact_manifest(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut copied = 0usize;
    for doc in super::fixture::split_documents(text) {
        let start = doc.text.as_ptr() as usize - text.as_ptr() as usize;
        let Some((replacement, paths)) = redact_document(doc.text) else { continue };
        out.push_str(&text[copied..start]);
        out.push_str(&replacement);
        copied = start + doc.text.len();
        found.extend(paths);
    }
    out.push_str(&text[copied..]);
    (out, found)
}

/// One document of [`redact_manifest`], when it holds something to redact.
fn redact_document(doc: &str) -> Option<(String, Vec<String>)> {
    const COMMENT: &str = "# credentials redacted by the harness (listed in the bundle's `redacted`)\n";
    let Ok(mut value) = yaml::from_str::<serde_json::Value>(doc) else {
        return redact_unparsed_secret(doc).map(|text| (format!("{COMMENT}{text}"), vec!["Secret.data".to_owned()]));
    };
    let mut found = Vec::new();
    redact_object(&mut value, "", &mut found);
    if found.is_empty() {
        return None;
    }
    // Rendered again: lint, plan and runs of the bundle all read this text, so its own lines are
    // the ones findings point at.
    let mut text = format!("{COMMENT}{}", serde_saphyr::to_string(&value).ok()?);
    if !doc.ends_with('\n') {
        text.truncate(text.trim_end_matches('\n').len());
    }
    Some((text, found))
}

/// The credentials of one object (a `List`'s items each), pushed as `<Kind>/<name>.<field>`.
fn redact_object(value: &mut serde_json::Value, prefix: &str, found: &mut Vec<String>) {
    let kind = value.get("kind").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    if kind == "List" {
        if let Some(items) = value.get_mut("items").and_then(serde_json::Value::as_array_mut) {
            for (i, item) in items.iter_mut().enumerate() {
                redact_object(item, &format!("{prefix}items[{i}]."), found);
            }
        }
        return;
    }
    let name = value.pointer("/metadata/name").and_then(serde_json::Value::as_str).unwrap_or("?");
    let label = format!("{prefix}{}/{}", names::printable(&kind), names::printable(name));
    let mut paths = Vec::new();
    if kind == "Secret" {
        for field in ["data", "stringData"] {
            let Some(map) = value.get_mut(field).and_then(serde_json::Value::as_object_mut) else { continue };
            for (k, v) in map.iter_mut() {
                if CREDENTIAL_DESCRIPTORS.contains(&k.as_str()) || v.as_str().is_some_and(placeholder) {
                    continue;
                }
                // `data` holds base64: the placeholder is base64 too, so the object still applies.
                *v = serde_json::Value::from(if field == "data" { "W3JlZGFjdGVkXQ==" } else { "[redacted]" });
                paths.push(format!("{field}.{}", names::printable(k)));
            }
        }
    }
    // `metadata` holds names the object needs, but kubectl's last-applied annotation is the whole
    // object again: redacted as the object is (dropped when it is not JSON).
    if let Some(annotations) = value.pointer_mut("/metadata/annotations").and_then(serde_json::Value::as_object_mut)
        && let Some(applied) = annotations.get(LAST_APPLIED).cloned()
    {
        let at = format!("metadata.annotations.{LAST_APPLIED}");
        match applied.as_str().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok()) {
            Some(mut inner) if inner.is_object() => {
                let mut inside = Vec::new();
                redact_object(&mut inner, "", &mut inside);
                if !inside.is_empty() {
                    annotations.insert(LAST_APPLIED.to_owned(), serde_json::Value::from(inner.to_string()));
                    paths.extend(inside.into_iter().map(|p| format!("{at}:{p}")));
                }
            }
            _ => {
                annotations.remove(LAST_APPLIED);
                paths.push(at);
            }
        }
    }
    if let Some(map) = value.as_object_mut() {
        let secret = kind == "Secret";
        let skip = |k: &str| k == "metadata" || (secret && matches!(k, "data" | "stringData"));
        for (k, v) in map.iter_mut().filter(|(k, _)| !skip(k)) {
            crate::stack::values::redact_manifest_value(v, k, &mut paths);
        }
    }
    found.extend(paths.into_iter().map(|p| format!("{label}.{p}")));
}

/// The scenario's YAML with its credentials redacted, and where (`steps[0].http.headers.Authorization`):
/// the value of every request or expected header whose name is a credential's (`Authorization`,
/// `Cookie`, `apikey`, [`crate::stack::values::sensitive_key`]) but its `{{ … }}` placeholders and
/// auth scheme (`Bearer {{ jwt.token }}` stays), and credentials by shape in any string (URL
/// passwords, `?token=` query values, JWT-like tokens). Rendered again only when one was found.
pub fn redact_scenario(text: &str) -> (String, Vec<String>) {
    let Ok(mut value) = yaml::from_str::<serde_json::Value>(text) else { return (text.to_owned(), Vec::new()) };
    let mut found = Vec::new();
    redact_scenario_value(&mut value, "", false, &mut found);
    if found.is_empty() {
        return (text.to_owned(), found);
    }
    match serde_saphyr::to_string(&value) {
        Ok(yaml) => {
            (format!("# credentials redacted by the harness (listed in the bundle's `redacted`)\n{yaml}"), found)
        }
        // Not rendered: nothing of it is carried rather than the credentials.
        Err(_) => (String::new(), vec!["(whole scenario)".to_owned()]),
    }
}

fn redact_scenario_value(value: &mut serde_json::Value, path: &str, headers: bool, found: &mut Vec<String>) {
    use crate::stack::values::{REDACTED, redact_inline, sensitive_key};
    let join = |k: &str| if path.is_empty() { k.to_owned() } else { format!("{path}.{}", names::printable(k)) };
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let here = join(k);
                if headers
                    && sensitive_key(k)
                    && let Some(s) = v.as_str()
                {
                    if let Some(clean) = redact_header_value(s) {
                        *v = serde_json::Value::from(clean);
                        found.push(here);
                    } else if s.contains(REDACTED) {
                        found.push(here);
                    }
                    continue;
                }
                redact_scenario_value(v, &here, k == "headers", found);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                redact_scenario_value(item, &format!("{path}[{i}]"), false, found);
            }
        }
        serde_json::Value::String(s) => {
            if let Some(clean) = redact_inline(s) {
                *s = clean;
                found.push(path.to_owned());
            }
        }
        _ => {}
    }
}

/// A credential header's value with what is secret in it replaced, or `None` when it holds only
/// placeholders (`{{ jwt.token }}`), an auth scheme word (`Bearer`, `Basic`) and cookie names
/// (`session=`).
fn redact_header_value(value: &str) -> Option<String> {
    use crate::stack::values::REDACTED;
    let mut rest = value;
    let mut outside = String::new();
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else { break };
        if !placeholder(&rest[start..start + end + 2]) {
            break;
        }
        outside.push_str(&rest[..start]);
        outside.push(' ');
        rest = &rest[start + end + 2..];
    }
    outside.push_str(rest);
    let harmless = outside.split([' ', ';', ',']).filter(|w| !w.is_empty()).all(|w| {
        w == REDACTED
            || ["bearer", "basic", "digest", "token", "negotiate"].contains(&w.to_ascii_lowercase().as_str())
            || w.strip_suffix('=').is_some_and(|n| !n.contains('='))
    });
    if harmless {
        return None;
    }
    // `Bearer abc`: the scheme stays, for a reader of the bundle.
    let scheme = value.split_once(' ').filter(|(s, _)| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic()));
    Some(match scheme {
        Some((scheme, _)) => format!("{scheme} {REDACTED}"),
        None => REDACTED.to_owned(),
    })
}

/// A Secret document that does not parse as written (a template in a place YAML cannot take
/// it): its `data` / `stringData` lines dropped, line count kept. `None` for anything else.
fn redact_unparsed_secret(doc: &str) -> Option<String> {
    let secret = doc.lines().any(|l| {
        let l = l.trim();
        l.strip_prefix("kind:").is_some_and(|k| k.trim().trim_matches(['"', '\'']) == "Secret")
    });
    if !secret {
        return None;
    }
    let (mut inside, mut changed) = (false, false);
    let lines: Vec<String> = doc
        .lines()
        .map(|line| {
            let top = !line.starts_with([' ', '\t', '#']) && !line.trim().is_empty();
            if top {
                inside = false;
                if let Some(field) = ["data:", "stringData:"].into_iter().find(|f| line.starts_with(f)) {
                    (inside, changed) = (true, true);
                    return format!("{field} {{}}");
                }
            }
            if inside { String::new() } else { line.to_owned() }
        })
        .collect();
    if !changed {
        return None;
    }
    let mut text = lines.join("\n");
    if doc.ends_with('\n') {
        text.push('\n');
    }
    Some(text)
}

impl Bundle {
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_default()
    }

    /// Redact the credentials of the values ([`crate::stack::values::redact_at`]), of the
    /// fixtures ([`redact_manifest`]; not the stack's own manifests, which must stay the
    /// checkout's byte for byte) and of the scenario's YAML ([`redact_scenario`]: request
    /// headers, URL tokens), and list where in `redacted`. Bundles are written
    /// automatically on failures and attached to bug reports: nothing secret goes in them.
    pub fn redact(&mut self) {
        let mut found = Vec::new();
        for (chart, value) in &mut self.values {
            let mut paths = Vec::new();
            crate::stack::values::redact_at(value, "", &mut paths);
            found.extend(paths.into_iter().map(|p| format!("values.{chart}:{}", names::printable(&p))));
        }
        let stack = crate::stack::kong::stack_manifests(self.mesh);
        for (rel, text) in &mut self.fixtures {
            if stack.contains(&rel.as_str()) {
                continue;
            }
            let (clean, paths) = redact_manifest(text);
            *text = clean;
            found.extend(paths.into_iter().map(|p| format!("fixtures/{rel}:{p}")));
        }
        let (scenario, paths) = redact_scenario(&self.scenario_yaml);
        self.scenario_yaml = scenario;
        found.extend(paths.into_iter().map(|p| format!("scenario:{p}")));
        found.sort();
        found.dedup();
        self.redacted = found;
    }

    /// Read a bundle file, with located errors.
    pub fn load(path: &Path) -> Result<Bundle, ReproError> {
        let invalid = |e: yaml::Error, text: &str| ReproError::Invalid(Box::new(e.into_diagnostic(path, text)));
        let text = yaml::read_text(path).map_err(|e| invalid(e, ""))?;
        let at = |field: &str, message: String| {
            let position = yaml::locate(&text, &field.split('.').collect::<Vec<_>>());
            ReproError::Invalid(Box::new(
                Diagnostic::error("schema", path, position, message).with_field(field).with_source(&text),
            ))
        };
        // The format first: an older bundle gets a word about its format, not a missing field.
        let head: serde_json::Value = yaml::from_str(&text).map_err(|e| invalid(e, &text))?;
        match head.get("bundle").and_then(serde_json::Value::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(at(
                    "bundle",
                    format!(
                        "unknown bundle format `{}`: this harness reads `{FORMAT}` (re-export the bundle with it)",
                        names::printable(other)
                    ),
                ));
            }
            None => return Err(at("bundle", format!("no `bundle: {FORMAT}` line: is this a repro bundle?"))),
        }
        let bundle: Bundle = yaml::from_str(&text).map_err(|e| invalid(e, &text))?;
        // Steps counted on the YAML as written (templates are rendered later, per run).
        let steps = yaml::from_str::<serde_json::Value>(&bundle.scenario_yaml)
            .ok()
            .and_then(|v| v.get("steps").and_then(|s| s.as_array()).map(Vec::len))
            .unwrap_or(usize::MAX);
        bundle.expected.check(steps).map_err(|(field, message)| at(field, message))?;
        for chart in bundle.values.keys() {
            if !crate::stack::values::CHARTS.iter().any(|(name, _)| name == chart) {
                return Err(at(
                    "values",
                    format!("values for `{}`, a chart the harness does not install", names::printable(chart)),
                ));
            }
        }
        scenario_name(&bundle.scenario).map_err(|e| at("scenario", e))?;
        if !bundle.profile.is_empty() {
            names::dns1123_label(&bundle.profile).map_err(|e| at("profile", format!("profile: {e}")))?;
        }
        // A bundle is input from elsewhere: its fixture paths must stay inside fixtures/.
        for rel in bundle.fixtures.keys() {
            if let Err(e) = names::join_under(Path::new("fixtures"), rel) {
                return Err(at("fixtures", format!("fixture {e}")));
            }
        }
        Ok(bundle)
    }

    /// Write the bundle out as a project under `dir`, a directory this call's caller created for
    /// it (empty), and return it. Every path is checked before anything is written.
    pub fn unpack(&self, dir: &Path) -> Result<Project, ReproError> {
        let invalid = |message: String, field: String| {
            ReproError::Invalid(Box::new(
                Diagnostic::error("schema", dir, Position::WHOLE_FILE, message).with_field(field),
            ))
        };
        scenario_name(&self.scenario).map_err(|e| invalid(e, "scenario".into()))?;
        let mut files = vec![
            (dir.join("versions.toml"), self.versions_toml.as_str()),
            (dir.join("scenarios").join(format!("{}.yaml", self.scenario)), self.scenario_yaml.as_str()),
        ];
        for (rel, text) in &self.fixtures {
            let path = names::join_under(&dir.join("fixtures"), rel)
                .map_err(|e| invalid(format!("fixture {e}"), format!("fixtures.{}", names::printable(rel))))?;
            files.push((path, text.as_str()));
        }
        for (path, text) in files {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|error| ReproError::Write { path: parent.to_owned(), error })?;
            }
            // `create_new`: a bundle never overwrites a file, not even one of its own twice.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|error| ReproError::Write { path: path.clone(), error })?;
            std::io::Write::write_all(&mut file, text.as_bytes())
                .map_err(|error| ReproError::Write { path: path.clone(), error })?;
        }
        Ok(Project::at(dir))
    }

    /// The bundle's own `versions.toml`, parsed and checked like the checkout's.
    pub fn versions(&self, bundle_file: &Path) -> Result<Versions, ReproError> {
        Versions::parse(&self.versions_toml).map_err(|(position, message)| {
            let file = PathBuf::from(format!("{}#versions.toml", bundle_file.display()));
            ReproError::Invalid(Box::new(
                Diagnostic::error("versions", &file, position, message).with_source(&self.versions_toml),
            ))
        })
    }

    /// Where the bundle's pins differ from `checkout`'s, and which checkout profile runs it.
    ///
    /// Everything but the profiles must be identical: tools with their URLs and sums, node and
    /// container images, chart repositories and versions, names. The bundle's profile for its
    /// mesh must be one of the checkout's profiles (same mesh, Kubernetes and mesh versions).
    /// An image under `[images]` that neither the harness runs nor the bundle uses (a team's own
    /// service, pinned in one checkout and not the other) is no difference: the run never
    /// starts it.
    pub fn pins_against(&self, bundle: &Versions, checkout: &Versions) -> (Option<String>, Vec<PinDifference>) {
        let flat = |v: &Versions| {
            let mut value = serde_json::to_value(v).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.remove("profiles");
            }
            let mut out = BTreeMap::new();
            flatten("", &value, &mut out);
            out
        };
        let (ours, theirs) = (flat(checkout), flat(bundle));
        let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
        let mut differences: Vec<PinDifference> = keys
            .into_iter()
            .filter(|k| ours.get(*k) != theirs.get(*k))
            .map(|k| PinDifference { key: k.clone(), bundle: theirs.get(k).cloned(), checkout: ours.get(k).cloned() })
            .filter(|d| !self.unused_image(d))
            .collect();
        let own = if self.profile.is_empty() { self.mesh.as_str() } else { self.profile.as_str() };
        let key = format!("profiles.{own}");
        let describe = |p: &crate::profile::ProfilePins| {
            format!("{} on Kubernetes {} ({})", p.mesh, p.kubernetes, p.mesh_version.as_deref().unwrap_or("no mesh"))
        };
        let wanted = bundle.profiles.get(own).filter(|p| p.mesh == self.mesh);
        let profile = wanted.and_then(|w| {
            let same_name = checkout.profiles.get(own).filter(|p| *p == w).map(|_| own);
            same_name.or_else(|| checkout.profiles.iter().find(|(_, p)| *p == w).map(|(n, _)| n.as_str()))
        });
        if profile.is_none() {
            differences.push(PinDifference {
                key,
                bundle: Some(wanted.map_or("(no profile for its mesh)".to_owned(), describe)),
                checkout: Some(
                    checkout
                        .profiles
                        .iter()
                        .filter(|(_, p)| p.mesh == self.mesh)
                        .map(|(n, p)| format!("{n}: {}", describe(p)))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            });
        }
        (profile.map(str::to_owned), differences)
    }

    /// Whether `difference` is an image of `[images]` the run never starts: not one the harness
    /// itself runs ([`HARNESS_IMAGES`]), and named nowhere in the bundle's scenario or fixtures,
    /// neither as `images.<key>` nor by either side's reference.
    fn unused_image(&self, difference: &PinDifference) -> bool {
        let Some(key) = difference.key.strip_prefix("images.") else { return false };
        if HARNESS_IMAGES.contains(&key) {
            return false;
        }
        let mentions = |text: &str| {
            text.contains(&format!("images.{key}"))
                || [&difference.bundle, &difference.checkout]
                    .into_iter()
                    .flatten()
                    .any(|image| text.contains(image.as_str()))
        };
        !mentions(&self.scenario_yaml) && !self.fixtures.values().any(|text| mentions(text))
    }

    /// The manifests the harness's own stack applies on the bundle's mesh (cluster-wide, as the
    /// harness): the bundle's copies must be the checkout's, byte for byte.
    pub fn stack_differences(&self, checkout_fixtures: &Path) -> Vec<PinDifference> {
        let digest = |text: &str| format!("sha256:{}", crate::tools::sha256_hex(text.as_bytes()));
        crate::stack::kong::stack_manifests(self.mesh)
            .iter()
            .filter_map(|rel| {
                let ours = read_stack_manifest(checkout_fixtures, rel).ok();
                let theirs = self.fixtures.get(*rel);
                (ours.as_ref() != theirs).then(|| PinDifference {
                    key: format!("fixtures/{rel}"),
                    bundle: theirs.map(|t| digest(t)),
                    checkout: ours.map(|t| digest(&t)),
                })
            })
            .collect()
    }

    /// Unpack into a fresh directory of its own under `parent` for a run, with the checkout's
    /// pins and stack manifests unless `trust` says otherwise. Refused (before anything is
    /// written) when they differ and are not trusted.
    pub fn admit(
        &self,
        bundle_file: &Path,
        checkout: &Catalog,
        trust: PinTrust,
        parent: &Path,
    ) -> Result<Admitted, ReproError> {
        let versions_file = checkout.project.versions_file();
        let checkout_versions_toml = &read(&versions_file)?;
        let bundle_versions = self.versions(bundle_file)?;
        let (profile, mut differences) = self.pins_against(&bundle_versions, &checkout.versions);
        differences.extend(self.stack_differences(&checkout.project.fixtures_dir()));
        // Values decide images, containers and commands as much as pins do: the same rule.
        let ours = profile
            .as_deref()
            .and_then(|p| checkout.versions.profile(p, &versions_file).ok())
            .map(|p| crate::stack::values::in_force(&crate::stack::environment(&p)))
            .unwrap_or_default();
        let value_differences = self.values_differences(&ours);
        // Trusted, the bundle's values go to the run whole for every chart where they differ.
        // Untrusted, the run gets a document of the allowed entries alone, each at the exact
        // path it was checked at: nothing else of the bundle's document (a nested map beside
        // a dotted key of the same flattened name, a key equal to the harness's) reaches Helm.
        let mut allowed: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        let mut charts: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for d in value_differences {
            let Some((chart, path)) = d.key.strip_prefix("values.").and_then(|k| k.split_once(':')) else {
                differences.push(d);
                continue;
            };
            charts.insert(chart.to_owned());
            if trust == PinTrust::Bundle {
                differences.push(d);
                continue;
            }
            match self.values.get(chart).and_then(|v| super::bundle_values::allowed_untrusted(chart, v, path)) {
                Some((segments, value)) => insert_at(
                    allowed.entry(chart.to_owned()).or_insert_with(|| serde_json::json!({})),
                    &segments,
                    value,
                ),
                None => differences.push(d),
            }
        }
        let profile = match (trust, profile) {
            (PinTrust::Checkout, Some(profile)) if differences.is_empty() => profile,
            (PinTrust::Checkout, _) => return Err(ReproError::ForeignPins(differences)),
            (PinTrust::Bundle, _) if !self.profile.is_empty() => self.profile.clone(),
            (PinTrust::Bundle, _) => self.mesh.as_str().to_owned(),
        };
        std::fs::create_dir_all(parent).map_err(|error| ReproError::Write { path: parent.to_owned(), error })?;
        // Unique per call: parallel runs of one bundle never share (or delete) a directory.
        let dir = tempfile::Builder::new()
            .prefix(&format!("repro-{}-", self.scenario))
            .tempdir_in(parent)
            .map_err(|error| ReproError::Write { path: parent.to_owned(), error })?;
        let mut unpacked = self.clone();
        if trust == PinTrust::Checkout {
            checkout_versions_toml.clone_into(&mut unpacked.versions_toml);
        }
        let project = unpacked.unpack(&dir.path().join("project"))?;
        let mut values = Vec::new();
        for chart in charts {
            let value = match trust {
                PinTrust::Bundle => self.values.get(&chart),
                PinTrust::Checkout => allowed.get(&chart),
            };
            let Some(value) = value else { continue };
            let file = dir.path().join(format!("values-{}.yaml", chart.replace('/', "-")));
            std::fs::write(&file, serde_saphyr::to_string(value).unwrap_or_default())
                .map_err(|error| ReproError::Write { path: file.clone(), error })?;
            values.push((chart, file));
        }
        Ok(Admitted { dir, project, profile, differences, values })
    }

    /// Where the bundle's values differ from `ours` in what only `--trust-bundle-pins` may use:
    /// every difference but the few a stranger may make ([`super::bundle_values`]: labels and
    /// annotations of plain text outside the meshes' own keys, log levels, a sampling rate,
    /// replicas, resource quantities). A user's own values that only label, size or configure
    /// that way (as `repro new --values` carries them) need no trust.
    pub fn values_needing_trust(&self, ours: &BTreeMap<String, serde_json::Value>) -> Vec<PinDifference> {
        self.values_differences(ours).into_iter().filter(|d| self.needs_trust(d)).collect()
    }

    /// Whether the values difference `d` (`values.<chart>:<path>`) needs trust.
    fn needs_trust(&self, d: &PinDifference) -> bool {
        let Some((chart, path)) = d.key.strip_prefix("values.").and_then(|k| k.split_once(':')) else { return true };
        let Some(values) = self.values.get(chart) else { return true };
        super::bundle_values::allowed_untrusted(chart, values, path).is_none()
    }

    /// Where the bundle's values differ from `ours` (the harness's own for the profile), key by
    /// key as `values.<chart>:<dotted.key>`.
    pub fn values_differences(&self, ours: &BTreeMap<String, serde_json::Value>) -> Vec<PinDifference> {
        let charts: std::collections::BTreeSet<&String> = self.values.keys().collect();
        let mut differences = Vec::new();
        for chart in charts {
            let (mut theirs_flat, mut ours_flat) = (BTreeMap::new(), BTreeMap::new());
            flatten("", &self.values[chart], &mut theirs_flat);
            if let Some(v) = ours.get(chart) {
                flatten("", v, &mut ours_flat);
            }
            let keys: std::collections::BTreeSet<&String> = theirs_flat.keys().chain(ours_flat.keys()).collect();
            for key in keys {
                if theirs_flat.get(key) != ours_flat.get(key) {
                    differences.push(PinDifference {
                        key: format!("values.{chart}:{key}"),
                        bundle: theirs_flat.get(key).cloned(),
                        checkout: ours_flat.get(key).cloned(),
                    });
                }
            }
        }
        differences
    }
}

/// `value` at `segments` (map keys, taken as they are) inside `doc`, making the maps on the way.
fn insert_at(doc: &mut serde_json::Value, segments: &[String], value: serde_json::Value) {
    let Some((last, parents)) = segments.split_last() else { return };
    let mut here = doc;
    for key in parents {
        let Some(map) = here.as_object_mut() else { return };
        here = map.entry(key.clone()).or_insert_with(|| serde_json::json!({}));
    }
    if let Some(map) = here.as_object_mut() {
        map.insert(last.clone(), value);
    }
}

/// Where line `line`, column `column` of a file inside a bundle (`versions.toml`,
/// `scenarios/<name>.yaml` or `fixtures/<path>`) is in the bundle's own text, when that file is
/// written as a literal block (`key: |`), as bundles are. `None` when it is not (a bundle
/// written by hand with quoted strings): the finding then stays inside the unpacked file.
pub fn locate_inside(bundle_text: &str, inner: &Path, line: u32, column: u32) -> Option<Position> {
    let inner = inner.to_str()?;
    let lines: Vec<&str> = bundle_text.lines().collect();
    let is_block = |l: &str, key: &str| {
        l.strip_prefix(key).and_then(|rest| rest.strip_prefix(": ")).is_some_and(|r| r.trim_start().starts_with('|'))
    };
    let header = if inner == "versions.toml" {
        lines.iter().position(|l| is_block(l, "versions-toml"))?
    } else if inner.starts_with("scenarios/") {
        lines.iter().position(|l| is_block(l, "scenario-yaml"))?
    } else {
        let rel = inner.strip_prefix("fixtures/")?;
        let start = lines.iter().position(|l| *l == "fixtures:")?;
        start + 1 + lines[start + 1..].iter().position(|l| is_block(l, &format!("  {rel}")))?
    };
    let first = lines.get(header + 1)?;
    let indent = first.len() - first.trim_start().len();
    let at = header + line as usize;
    // The line must be there, inside the block (indented at least as its first line).
    let text = lines.get(at)?;
    let inside = text.trim().is_empty() || text.len() - text.trim_start().len() >= indent;
    inside.then(|| Position::new(at as u32 + 1, column + indent as u32))
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        // A null in values removes a chart default: a difference like any other.
        serde_json::Value::Null => {
            out.insert(prefix.to_owned(), "null".to_owned());
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;

    fn catalog() -> Catalog {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        Catalog::open(Project::at(root)).expect("the project loads")
    }

    /// [`export`] with the values the harness installs for the mesh's default profile.
    fn export_with_own_values(catalog: &Catalog, name: &str, mesh: Mesh) -> Result<Bundle, ReproError> {
        let profile = catalog.default_profile(mesh).unwrap();
        export(catalog, name, &profile, crate::stack::values::in_force(&crate::stack::environment(&profile)))
    }

    #[test]
    fn export_lint_and_plan_round_trip() {
        let original = catalog();
        for (name, mesh) in
            [("split-canary", Mesh::Linkerd), ("seed-istio-as-written", Mesh::Istio), ("ingress-basic", Mesh::None)]
        {
            let bundle = export_with_own_values(&original, name, mesh).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("bundle.yaml");
            std::fs::write(&file, bundle.to_yaml()).unwrap();
            let loaded = Bundle::load(&file).unwrap();
            assert_eq!(loaded, bundle, "{name}: the YAML form reads back identically");
            let unpacked = Catalog::open(loaded.unpack(&dir.path().join("project")).unwrap()).unwrap();
            let lint = crate::lint::run(&unpacked, &crate::lint::Inputs { mesh: Some(mesh), ..Default::default() });
            assert!(lint.findings.is_empty(), "{name}: {:?}", lint.findings);
            let profile = |c: &Catalog| c.default_profile(mesh).unwrap();
            let ports = crate::cluster::HostPorts { http: 40080, https: 40443 };
            let a = plan::build(&original, &profile(&original), "same", ports).unwrap();
            let b = plan::build(&unpacked, &profile(&unpacked), "same", ports).unwrap();
            let scenario_of = |p: &plan::Plan| {
                p.scenarios.iter().find(|s| s.name == name).map(|s| {
                    (
                        s.objects.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>(),
                        s.steps.clone(),
                        s.namespace.clone(),
                        s.host.clone(),
                    )
                })
            };
            assert_eq!(scenario_of(&a), scenario_of(&b), "{name}: the bundle plans what the original plans");
            assert!(scenario_of(&b).is_some());
        }
    }

    #[test]
    fn bundles_are_checked_like_any_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.yaml");
        let mut bundle = export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        bundle.fixtures.insert("../../etc/evil.yaml".into(), "x".into());
        let err = bundle.unpack(&dir.path().join("p")).unwrap_err().to_string();
        assert!(err.contains("fixture path `../../etc/evil.yaml` leaves its directory"), "{err}");
        assert!(!dir.path().join("p").exists(), "nothing is written before every path is checked");
        let v2 = "bundle: kong-mesh-e2e/repro/v2\nharness: {version: 0.1.0, commit: abc}\nscenario: x\nmesh: istio\n\
                  expected: {outcome: passes}\nversions-toml: ''\nscenario-yaml: ''\nfixtures: {}\n";
        std::fs::write(&file, format!("{v2}extra: 1\n")).unwrap();
        let err = Bundle::load(&file).unwrap_err().to_string();
        assert!(err.contains("unknown field `extra`") && err.contains("b.yaml:9:1"), "{err}");
        // An older format is named as such, not as a missing field.
        std::fs::write(&file, v2.replace("repro/v2", "repro/v1")).unwrap();
        let err = Bundle::load(&file).unwrap_err().to_string();
        assert!(err.contains("unknown bundle format `kong-mesh-e2e/repro/v1`") && err.contains("b.yaml:1:"), "{err}");
        // `expected` is checked: `fails` names an existing step; values only for installed charts.
        let steps = "steps:\n  - http: {request: {path: /}, expect: {status: 200}}\n";
        let with = |expected: &str, extra: &str| {
            v2.replace("expected: {outcome: passes}", expected)
                .replace("scenario-yaml: ''", &format!("scenario-yaml: {steps:?}"))
                + extra
        };
        for (expected, extra, message) in [
            ("expected: {outcome: fails}", "", "`fails` needs `step`"),
            ("expected: {outcome: fails, step: 2}", "", "step 2 does not exist: the scenario has 1 step(s)"),
            ("expected: {outcome: passes, step: 1}", "", "`passes` means every step passes"),
            ("expected: {outcome: flaky}", "", "unknown variant `flaky`"),
            (
                "expected: {outcome: passes}",
                "values: {kong/kong: {}}\n",
                "values for `kong/kong`, a chart the harness does not install",
            ),
        ] {
            std::fs::write(&file, with(expected, extra)).unwrap();
            let err = Bundle::load(&file).unwrap_err().to_string();
            assert!(err.contains(message), "{expected}: {err}");
        }
        std::fs::write(&file, with("expected: {outcome: fails, step: 1, detail: '503'}", "")).unwrap();
        Bundle::load(&file).unwrap();
        assert!(matches!(
            export_with_own_values(&catalog(), "header-routing", Mesh::None),
            Err(ReproError::WrongMesh { .. })
        ));
        // `repro export ../../x` names no scenario: no path outside scenarios/ is read.
        assert!(matches!(
            export_with_own_values(&catalog(), "../../Cargo", Mesh::None),
            Err(ReproError::UnknownScenario { .. })
        ));
    }

    fn write_bundle(dir: &Path, bundle: &Bundle) -> PathBuf {
        let file = dir.join(format!("bundle-{}.yaml", bundle.scenario));
        std::fs::write(&file, bundle.to_yaml()).unwrap();
        file
    }

    fn checkout_versions_toml() -> String {
        std::fs::read_to_string(catalog().project.versions_file()).unwrap()
    }

    /// The credentials the attack found copied verbatim: a `konghq.com/credential` Secret's
    /// `stringData`, another Secret's `data`, an env pair, a PEM key in a ConfigMap, and the
    /// values' private keys, session secret, license and URL password. Each is gone from the
    /// bundle and listed in `redacted`; what holds none stays as written; the bundle loads back,
    /// and its fixtures still parse.
    #[test]
    fn bundles_carry_no_credentials_and_say_where_they_were() {
        let service =
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: shop # the shop\nspec:\n  ports: [{port: 80}]\n";
        let creds = format!(
            "{service}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: shop-key\n  labels:\n    konghq.com/credential: key-auth\n\
             stringData:\n  kongCredType: key-auth\n  key: my-api-key-0123\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\n\
             data:\n  password: aHVudGVyMg==\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: shop}}\nspec:\n  template:\n    \
             spec:\n      containers:\n      - name: shop\n        image: shop:1\n        env:\n        - {{name: DD_API_KEY, value: dd-0123456789}}\n        \
             - {{name: TZ, value: UTC}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: tls}}\ndata:\n  key.pem: |\n    \
             -----BEGIN EC PRIVATE KEY-----\n    MHcCAQEEIBkg\n    -----END EC PRIVATE KEY-----\n"
        );
        let jwt = std::fs::read_to_string(catalog().project.fixtures_dir().join("kong/jwt.yaml")).unwrap();
        let mut bundle = export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        bundle.fixtures.insert("user/creds.yaml".into(), creds.clone());
        bundle.fixtures.insert("kong/jwt.yaml".into(), jwt.clone());
        let env = bundle.values.entry("kong/ingress".into()).or_default();
        env["gateway"]["env"]["ssl_cert_key"] = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n".into();
        env["gateway"]["env"]["admin_gui_session_conf"] = r#"{"secret":"s3ss10n"}"#.into();
        env["gateway"]["env"]["license_data"] = r#"{"license":{"signature":"L1C"}}"#.into();
        env["gateway"]["env"]["pg_uri"] = "postgres://kong:hunter2@db:5432/kong".into();
        bundle.redact();
        let text = bundle.to_yaml();
        for secret in
            ["my-api-key-0123", "aHVudGVyMg", "dd-0123456789", "MHcCAQEEIBkg", "MIIE", "s3ss10n", "L1C", "hunter2"]
        {
            assert!(!text.contains(secret), "{secret} is in the bundle");
        }
        for path in [
            "fixtures/user/creds.yaml:Secret/shop-key.stringData.key",
            "fixtures/user/creds.yaml:Secret/db.data.password",
            "fixtures/user/creds.yaml:Deployment/shop.spec.template.spec.containers[0].env[0].value",
            "fixtures/user/creds.yaml:ConfigMap/tls.data.key.pem",
            "values.kong/ingress:gateway.env.ssl_cert_key",
            "values.kong/ingress:gateway.env.admin_gui_session_conf",
            "values.kong/ingress:gateway.env.license_data",
            "values.kong/ingress:gateway.env.pg_uri",
        ] {
            assert!(bundle.redacted.iter().any(|r| r == path), "{path} not listed: {:#?}", bundle.redacted);
        }
        let user = &bundle.fixtures["user/creds.yaml"];
        assert!(user.starts_with(service), "a document without credentials stays as written:\n{user}");
        assert!(user.contains("kongCredType: key-auth") && user.contains("UTC"), "{user}");
        assert_eq!(bundle.fixtures["kong/jwt.yaml"], jwt, "placeholders are no secrets");
        // The redacted manifests are still objects that apply, `data` still base64.
        let objects: Vec<serde_json::Value> =
            super::super::fixture::split_documents(user).iter().map(|d| yaml::from_str(d.text).unwrap()).collect();
        assert_eq!(objects.len(), 5);
        assert_eq!(objects[2]["data"]["password"], "W3JlZGFjdGVkXQ==");
        // The bundle loads back with its list, and a bundle without the field still loads.
        let dir = tempfile::tempdir().unwrap();
        let loaded = Bundle::load(&write_bundle(dir.path(), &bundle)).unwrap();
        assert_eq!(loaded.redacted, bundle.redacted);
        assert!(
            !export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap().to_yaml().contains("redacted:")
        );
    }

    /// Gaps of the first redaction: kubectl's last-applied annotation (a Secret's data again),
    /// credentials by key in manifests (KongPlugin config, ConfigMap env), credential headers of
    /// the scenario's requests, and tokens in URL query strings. Each is gone and listed; what
    /// the scenario needs (descriptors, placeholders, references) stays.
    #[test]
    fn annotations_manifest_keys_scenario_headers_and_url_tokens_are_redacted() {
        let applied = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"},"stringData":{"password":"LAST-APPLIED-PW"}}"#;
        let manifests = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{applied}'\n\
             stringData: {{password: x}}\n---\napiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata: {{name: rl}}\nplugin: rate-limiting\n\
             config:\n  redis_password: REDIS-PW\n  client_secret: OIDC-SECRET\n  algorithm: HS256\n  url: https://idp/cb?access_token=URL-TOKEN&x=1\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: env}}\ndata:\n  KONG_PG_PASSWORD: PG-PW\n  KONG_LOG_LEVEL: debug\n---\n\
             apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {{name: c}}\nusername: c\ncredentials: [c-key]\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: jwt}}\nstringData: {{kongCredType: jwt, secret: '{{{{ jwt.secret }}}}'}}\n"
        );
        let (clean, paths) = redact_manifest(&manifests);
        for secret in ["LAST-APPLIED-PW", "REDIS-PW", "OIDC-SECRET", "URL-TOKEN", "PG-PW"] {
            assert!(!clean.contains(secret), "{secret} stayed:\n{clean}");
        }
        for kept in ["HS256", "debug", "c-key", "kongCredType: jwt", "{{ jwt.secret }}", "x=1"] {
            assert!(clean.contains(kept), "{kept} was redacted:\n{clean}");
        }
        for path in [
            "Secret/db.metadata.annotations.kubectl.kubernetes.io/last-applied-configuration:Secret/db.stringData.password",
            "KongPlugin/rl.config.redis_password",
            "KongPlugin/rl.config.client_secret",
            "KongPlugin/rl.config.url",
            "ConfigMap/env.data.KONG_PG_PASSWORD",
        ] {
            assert!(paths.iter().any(|p| p == path), "{path} not listed: {paths:#?}");
        }
        // An annotation that is not JSON is dropped.
        let (clean, paths) = redact_manifest(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: 'not json SECRET'\n",
        );
        assert!(!clean.contains("SECRET") && paths.len() == 1, "{clean}");
        // The scenario's request headers and URLs.
        let scenario = "name: s\nsteps:\n- http:\n    path: /a?token=Q-TOKEN&sig=Q-SIG&page=2\n    headers:\n      Authorization: Bearer AUTH-SECRET\n      Cookie: session=COOKIE-SECRET\n      apikey: KEY-SECRET\n      X-Jwt: 'Bearer {{ jwt.token }}'\n      x-version: v2\n    expect: {status: 200}\n";
        let (clean, mut paths) = redact_scenario(scenario);
        for secret in ["Q-TOKEN", "Q-SIG", "AUTH-SECRET", "COOKIE-SECRET", "KEY-SECRET"] {
            assert!(!clean.contains(secret), "{secret} stayed:\n{clean}");
        }
        for kept in ["Bearer {{ jwt.token }}", "x-version: v2", "page=2", "Bearer [redacted]"] {
            assert!(clean.contains(kept), "{kept} was redacted:\n{clean}");
        }
        paths.sort();
        assert_eq!(
            paths,
            [
                "steps[0].http.headers.Authorization",
                "steps[0].http.headers.Cookie",
                "steps[0].http.headers.apikey",
                "steps[0].http.path"
            ]
        );
        let mut bundle = export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        bundle.scenario_yaml = scenario.to_owned();
        bundle.redact();
        assert!(
            bundle.redacted.iter().any(|r| r == "scenario:steps[0].http.headers.Authorization"),
            "{:?}",
            bundle.redacted
        );
        assert!(!bundle.to_yaml().contains("AUTH-SECRET"));
    }

    /// A Secret that does not parse as written keeps no value either.
    #[test]
    fn an_unparsed_secret_loses_its_data() {
        let text =
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  token: {{ oops\n  other: x\nuser: y\n";
        let (clean, paths) = redact_manifest(text);
        assert!(!clean.contains("oops") && !clean.contains("other") && clean.contains("stringData: {}"), "{clean}");
        assert_eq!(paths, ["Secret.data"]);
        assert_eq!(clean.lines().count(), text.lines().count() + 1, "a comment line, nothing else moves");
    }

    /// A fixture that is a link out of fixtures/ (to a file holding a token) is neither
    /// checked clean nor exported: the scenario fails to load at the fixture, and the token is
    /// in no message and no bundle.
    #[test]
    fn a_fixture_linked_out_of_fixtures_is_never_exported() {
        let root = catalog().project.root().to_owned();
        let outside = tempfile::tempdir().unwrap();
        let token = outside.path().join("token.yaml");
        std::fs::write(&token, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\ndata: {t: ghp_T0KEN}\n")
            .unwrap();
        let project = tempfile::tempdir().unwrap();
        let p = project.path();
        for dir in ["scenarios", "fixtures/base", "fixtures/kong"] {
            std::fs::create_dir_all(p.join(dir)).unwrap();
        }
        for file in ["versions.toml", "scenarios/ingress-basic.yaml", "fixtures/base/echo.yaml"] {
            std::fs::copy(root.join(file), p.join(file)).unwrap();
        }
        std::os::unix::fs::symlink(&token, p.join("fixtures/kong/ingress-echo.yaml")).unwrap();
        let linked = Catalog::open(Project::at(p)).unwrap();
        let err = export_with_own_values(&linked, "ingress-basic", Mesh::Istio).unwrap_err().to_string();
        assert!(err.contains("symbolic link") && !err.contains("ghp_T0KEN"), "{err}");
        let file = linked.project.scenarios_dir().join("ingress-basic.yaml");
        let checked = linked.check(&file, "lint").map(|_| ()).unwrap_err().to_string();
        assert!(checked.contains("symbolic link") && !checked.contains("ghp_T0KEN"), "{checked}");
        let err = read_fixture(&linked.project.fixtures_dir(), "kong/ingress-echo.yaml").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(read_fixture(&linked.project.fixtures_dir(), "../token.yaml").is_err());
    }

    /// A scenario name is a path segment: one that climbs out is refused where it is written,
    /// before any directory exists, and `repro run` never deletes anything.
    #[test]
    fn scenario_names_cannot_climb_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut bundle = export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        bundle.scenario = "ingress-basic/../../../../tmp/victim".into();
        let file = write_bundle(dir.path(), &Bundle { scenario: "x".into(), ..bundle.clone() });
        let text =
            std::fs::read_to_string(&file).unwrap().replace("scenario: x", &format!("scenario: {}", bundle.scenario));
        std::fs::write(&file, text).unwrap();
        let ReproError::Invalid(d) = Bundle::load(&file).unwrap_err() else { panic!("a located error") };
        assert_eq!(d.field.as_deref(), Some("scenario"));
        assert!(d.message.contains("is not kebab-case") && d.position.line > 0, "{d}");
        assert!(bundle.unpack(&dir.path().join("p")).is_err());
        assert!(!dir.path().join("p").exists());
    }

    /// A bundle's tools, URLs, sums, images and repositories are never used unless trusted by
    /// name: the differences are listed and nothing is unpacked.
    #[test]
    fn a_bundle_cannot_choose_the_binaries_that_run() {
        let text = checkout_versions_toml();
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let mut bundle = export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        // Plain HTTP is refused outright, trusted or not.
        bundle.versions_toml = text.replace(
            "https://github.com/kubernetes-sigs/kind/releases/download/{version}/kind-{os}-{arch}",
            "http://evil.test/kind",
        );
        let file = write_bundle(dir.path(), &bundle);
        for trust in [PinTrust::Checkout, PinTrust::Bundle] {
            let err = bundle.admit(&file, &catalog(), trust, &runs).unwrap_err();
            assert!(
                err.to_string().contains("tools.kind.url: `http://evil.test/kind` is not an https:// URL"),
                "{err}"
            );
        }
        // Another host over https, another sum: refused unless trusted, and the list says what.
        bundle.versions_toml = text
            .replace("https://github.com/kubernetes-sigs/kind/releases/download/", "https://evil.test/")
            .replace("aee6151561422756b764a4ae28e7f44cda5af5a9eead3cc9985112b1de8d8e0d", &"a".repeat(64));
        let err = bundle.admit(&file, &catalog(), PinTrust::Checkout, &runs).unwrap_err();
        let ReproError::ForeignPins(differences) = &err else { panic!("{err}") };
        let keys: Vec<&str> = differences.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["tools.kind.sha256.linux/amd64", "tools.kind.url"]);
        assert!(err.to_string().contains("--trust-bundle-pins"), "{err}");
        assert!(!runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none(), "nothing unpacked");
        // Trusted by name: the bundle's own file is used, and the differences are reported.
        let admitted = bundle.admit(&file, &catalog(), PinTrust::Bundle, &runs).unwrap();
        assert_eq!(admitted.differences.len(), 2);
        let used = std::fs::read_to_string(admitted.project.versions_file()).unwrap();
        assert!(used.contains("https://evil.test/"));
    }

    /// A bundle chooses a version among the checkout's profiles: its istio profile on Kubernetes
    /// v1.34.11 runs as the checkout's `istio-k8s-1-34`, with the checkout's versions file.
    #[test]
    fn a_bundle_picks_among_the_checkouts_profiles() {
        let text = checkout_versions_toml();
        let dir = tempfile::tempdir().unwrap();
        let mut bundle = export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        bundle.versions_toml = text.replacen(
            "[profiles.istio]\nmesh = \"istio\"\nkubernetes = \"v1.35.8\"",
            "[profiles.istio]\nmesh = \"istio\"\nkubernetes = \"v1.34.11\"",
            1,
        );
        assert_ne!(bundle.versions_toml, text);
        let file = write_bundle(dir.path(), &bundle);
        let admitted = bundle.admit(&file, &catalog(), PinTrust::Checkout, dir.path()).unwrap();
        assert_eq!(admitted.profile, "istio-k8s-1-34");
        assert!(admitted.differences.is_empty());
        assert_eq!(std::fs::read_to_string(admitted.project.versions_file()).unwrap(), text);
        // A version the checkout does not pin is a difference.
        bundle.versions_toml = text.replace("mesh_version = \"1.30.5\"", "mesh_version = \"1.29.0\"");
        let err = bundle.admit(&file, &catalog(), PinTrust::Checkout, dir.path()).unwrap_err();
        assert!(err.to_string().contains("profiles.istio: bundle `istio on Kubernetes v1.35.8 (1.29.0)`"), "{err}");
    }

    /// The stack's own manifests (applied cluster-wide by the harness) come from the checkout:
    /// a bundle whose copy differs is refused like a foreign pin.
    #[test]
    fn a_bundle_cannot_change_what_the_stack_applies() {
        let dir = tempfile::tempdir().unwrap();
        let mut bundle = export_with_own_values(&catalog(), "split-canary", Mesh::Linkerd).unwrap();
        let guard = "linkerd/kong-ingress-guard.yaml";
        assert!(bundle.fixtures.contains_key(guard));
        bundle.fixtures.insert(
            guard.into(),
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwn}\n".into(),
        );
        let file = write_bundle(dir.path(), &bundle);
        let err = bundle.admit(&file, &catalog(), PinTrust::Checkout, dir.path()).unwrap_err();
        let ReproError::ForeignPins(differences) = &err else { panic!("{err}") };
        assert_eq!(differences.len(), 1, "{err}");
        assert_eq!(differences[0].key, "fixtures/linkerd/kong-ingress-guard.yaml");
    }

    /// A bundle written after a failure names what failed, stable across runs, so a later
    /// failure of another kind at the same step does not count as the bug reproducing.
    #[test]
    fn failure_signatures_are_stable_and_specific() {
        // Details as the executor writes them, per step kind (converge's and eventually's
        // `NotConverged`, a split's and a trace's own text), each seen in two runs.
        let http = "did not converge within 90s: needed 5 consecutive passes, best run was 0 (31 attempts)\n  \
                    expected:  GET /echo -> {\"status\":200}\n  \
                    last seen: HTTP 503 (fail: status 503 is not 200; the answer (status 503) is not from the echo backend)";
        let version = "did not converge within 90s: needed 10 consecutive passes, best run was 3 (40 attempts)\n  \
                       expected:  GET /route -> {}\n  \
                       last seen: HTTP 200 from echo-v1-[hash] (fail: answered by version v1 (pod echo-v1-6d8f9-abcde), expected v2)";
        let refused = "did not converge within 90s: needed 5 consecutive passes, best run was 0 (12 attempts)\n  \
                       expected:  GET /api -> {}\n  \
                       last seen: HTTP 200 from echo-v1-[hash] (fail: expected istio to refuse the request, but backend \
                       pod echo-v1-6d8f9-abcde answered 200: the request was not refused)";
        let wait = "not reached within 3m (90 attempts)\n  expected:  Deployment/echo-v1 available\n  \
                    last seen: Available=False 0/1 ready";
        let split = "route in effect after 3 pre-window(s); split not as declared (Fail { version: \"v2\", direction: \
                     Above }): {\"requests\":212}";
        let settle =
            "the route was not in effect within 90s: the last pre-window (±0.25) was Fail { version: \"v1\" }: {}";
        let trace = "trace 463ac35c9f6413ad48485a3953bb6124 asked again after 20s: fail: no span from service \
                     \"echo.t-r1abc-1\" (seen: [\"kong\"])";
        let metrics = "not reached within 1m (30 attempts)\n  expected:  request_total\n  last seen: fail: \
                       request_total{direction=inbound}: 3 (over 2 series), expected at least 5; series of that name: []";
        let api = "cannot apply Deployment/echo in t-r1abc23-1: the API server answered 403";
        let cases = [
            (http, "status 503 is not 200"),
            (version, "answered by version v1 *, expected v2"),
            (refused, "expected istio to refuse the request, but backend pod * answered 200: the request was not"),
            (wait, "Available=False * ready"),
            (split, "split not as declared *: *"),
            (settle, "the route was not in effect within 90s: the last pre-window * was Fail *: *"),
            (trace, "no span from service * *"),
            (metrics, "request_total*: * *, expected at least *"),
            (api, "cannot apply Deployment/echo in *: the API server answered 403"),
        ];
        for (detail, want) in cases {
            let signature = failure_signature(detail);
            assert_eq!(signature.as_deref(), Some(want), "{detail}");
            // Another run of the same failure: other pods, namespaces, counts, ids, windows.
            let again = detail
                .replace("echo-v1-6d8f9-abcde", "echo-v1-77aa1-zzzzz")
                .replace("t-r1abc23-1", "t-r9xyz77-1")
                .replace("t-r1abc-1", "t-r9xyz-1")
                .replace("463ac35c9f6413ad48485a3953bb6124", "0af7651916cd43dd8448eb211c80319c")
                .replace("after 3 pre-window", "after 7 pre-window")
                .replace("(31 attempts)", "(29 attempts)")
                .replace(": 3 (over", ": 2 (over");
            assert_eq!(failure_signature(&again), signature, "{again}");
            let expected =
                Expected { outcome: ExpectedOutcome::Fails, step: Some(2), detail: signature, note: String::new() };
            assert!(expected.judge(Some((2, &again, FailureKind::Verdict))).is_ok(), "{again}");
            // The same step failing as the harness's error is not the bug reproducing.
            assert!(expected.judge(Some((2, &again, FailureKind::Error))).is_err());
        }
        // Another failure at the same step is not this one.
        let expected = Expected {
            outcome: ExpectedOutcome::Fails,
            step: Some(2),
            detail: failure_signature(http),
            note: String::new(),
        };
        let another = http.replace("status 503 is not 200", "status 404 is not 200");
        assert!(expected.judge(Some((2, &another, FailureKind::Verdict))).is_err());
        assert_eq!(failure_signature("(nothing)"), None);
    }

    /// `expected` is a verdict, not a comment: each mismatch fails, with what was seen.
    #[test]
    fn expected_outcomes_are_judged_both_ways() {
        let passes = Expected::passes();
        assert!(passes.judge(None).is_ok());
        assert_eq!(
            passes.judge(Some((2, "HTTP 503", FailureKind::Verdict))).unwrap_err(),
            "the bundle expects every step to pass; step 2 failed: HTTP 503"
        );
        let fails =
            Expected { outcome: ExpectedOutcome::Fails, step: Some(2), detail: Some("503".into()), note: "".into() };
        assert_eq!(
            fails.judge(Some((2, "expected status 200, got 503", FailureKind::Verdict))).unwrap(),
            "step 2 failed, as the bundle expects (reproduced): expected status 200, got 503"
        );
        assert_eq!(
            fails.judge(None).unwrap_err(),
            "the bundle expects step 2 to fail; every step passed: not reproduced"
        );
        assert!(
            fails
                .judge(Some((1, "timeout", FailureKind::Verdict)))
                .unwrap_err()
                .contains("step 1 failed instead: timeout")
        );
        assert!(
            fails
                .judge(Some((0, "forbidden", FailureKind::Verdict)))
                .unwrap_err()
                .contains("the namespace and fixtures failed instead")
        );
        assert!(
            fails.judge(Some((2, "got 404", FailureKind::Verdict))).unwrap_err().contains("not with `503`: got 404")
        );
        assert_eq!(fails.to_string(), "step 2 fails with `503`");
    }

    /// Helm values decide images and commands: a bundle's values that differ from the harness's
    /// own are differences like foreign pins, refused unless trusted; trusted, they are handed
    /// to the run as `--values` files. Values equal to the harness's own change nothing.
    #[test]
    fn bundle_values_are_pins_too() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let mut bundle = export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        assert!(bundle.values.contains_key("kong/ingress") && bundle.values.contains_key("istiod"));
        let file = write_bundle(dir.path(), &bundle);
        let admitted = bundle.admit(&file, &catalog(), PinTrust::Checkout, &runs).unwrap();
        assert!(admitted.differences.is_empty() && admitted.values.is_empty(), "{:?}", admitted.differences);
        // Kong's log level only configures: admitted untrusted, the values handed to the run.
        bundle.values.get_mut("kong/ingress").unwrap()["gateway"]["env"]["log_level"] = serde_json::json!("debug");
        let file = write_bundle(dir.path(), &bundle);
        let admitted = bundle.admit(&file, &catalog(), PinTrust::Checkout, &runs).unwrap();
        assert!(admitted.differences.is_empty(), "{:?}", admitted.differences);
        assert_eq!(admitted.values.len(), 1);
        assert!(std::fs::read_to_string(&admitted.values[0].1).unwrap().contains("log_level: debug"));
        bundle.values.get_mut("kong/ingress").unwrap()["gateway"]["image"] =
            serde_json::json!({"repository": "evil/kong", "tag": "latest"});
        let file = write_bundle(dir.path(), &bundle);
        let err = bundle.admit(&file, &catalog(), PinTrust::Checkout, &runs).unwrap_err();
        let ReproError::ForeignPins(differences) = &err else { panic!("{err}") };
        let keys: Vec<&str> = differences.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["values.kong/ingress:gateway.image.repository", "values.kong/ingress:gateway.image.tag"]);
        assert!(err.to_string().contains("Helm values"), "{err}");
        let admitted = bundle.admit(&file, &catalog(), PinTrust::Bundle, &runs).unwrap();
        assert_eq!(admitted.values.len(), 1);
        let (chart, path) = &admitted.values[0];
        assert_eq!(chart, "kong/ingress");
        assert!(std::fs::read_to_string(path).unwrap().contains("evil/kong"));
    }

    /// The second review's bypass: a nested map beside a dotted key of the same flattened name
    /// (`podLabels: {zz: {x: <template>}, zz.x: ok}`) passes the check by the dotted key; the
    /// run must get the checked entry alone, never the bundle's document with the nested map.
    #[test]
    fn an_untrusted_run_gets_only_the_checked_entries_of_the_bundles_values() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let mut bundle = export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        let gateway = &mut bundle.values.get_mut("kong/ingress").unwrap()["gateway"];
        gateway["podLabels"]["zz"] = serde_json::json!({"x": "{{ lookup \"v1\" \"Secret\" \"\" \"\" }}"});
        gateway["podLabels"]["zz.x"] = serde_json::json!("ok");
        gateway["podAnnotations"]["note"] = serde_json::json!({"x": "{{ .Release.Name }}"});
        gateway["podAnnotations"]["note.x"] = serde_json::json!("ok");
        let file = write_bundle(dir.path(), &bundle);
        let admitted = bundle.admit(&file, &catalog(), PinTrust::Checkout, &runs).unwrap();
        assert!(admitted.differences.is_empty(), "{:?}", admitted.differences);
        let given = std::fs::read_to_string(&admitted.values[0].1).unwrap();
        let given: serde_json::Value = crate::yaml::from_str(&given).unwrap();
        assert_eq!(
            given,
            serde_json::json!({"gateway": {"podLabels": {"zz.x": "ok"}, "podAnnotations": {"note.x": "ok"}}}),
            "only what was checked reaches Helm"
        );
    }

    /// Every line of every file inside a bundle maps to the bundle's own line holding it, so
    /// findings point where a reader of the bundle looks.
    #[test]
    fn lines_inside_a_bundle_map_to_the_bundles_own_lines() {
        let bundle = export_with_own_values(&catalog(), "jwt-auth", Mesh::Istio).unwrap();
        let text = bundle.to_yaml();
        let lines: Vec<&str> = text.lines().collect();
        let mut files: Vec<(String, &str)> =
            bundle.fixtures.iter().map(|(k, v)| (format!("fixtures/{k}"), v.as_str())).collect();
        files.push(("scenarios/jwt-auth.yaml".into(), &bundle.scenario_yaml));
        files.push(("versions.toml".into(), &bundle.versions_toml));
        for (inner, content) in files {
            for (n, line) in content.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let at = locate_inside(&text, Path::new(&inner), n as u32 + 1, 1).unwrap();
                let shown = lines[at.line as usize - 1];
                assert_eq!(&shown[at.column as usize - 1..], line, "{inner}:{}", n + 1);
            }
        }
        assert_eq!(locate_inside(&text, Path::new("fixtures/none.yaml"), 1, 1), None);
    }

    /// Two runs of one bundle at once get directories of their own; dropping one leaves the other.
    #[test]
    fn parallel_runs_of_one_bundle_do_not_share_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = export_with_own_values(&catalog(), "ingress-basic", Mesh::Istio).unwrap();
        let file = write_bundle(dir.path(), &bundle);
        let runs = dir.path().join("runs");
        let a = bundle.admit(&file, &catalog(), PinTrust::Checkout, &runs).unwrap();
        let b = bundle.admit(&file, &catalog(), PinTrust::Checkout, &runs).unwrap();
        assert_ne!(a.dir.path(), b.dir.path());
        let kept = b.project.scenarios_dir();
        drop(a);
        assert!(kept.is_dir());
    }

    /// A team's own image pinned in one checkout only is no difference for a bundle that does
    /// not use it; one the bundle's fixtures name, or one the harness runs, still is.
    #[test]
    fn bundles_are_compared_on_the_images_they_use() {
        let checkout = catalog();
        let bundle = export_with_own_values(&checkout, "ingress-basic", Mesh::Istio).unwrap();
        let theirs = Versions::parse(&bundle.versions_toml).unwrap();
        let mut ours = checkout.versions.clone();
        ours.images.insert("orders".into(), "ghcr.io/acme/orders:1.4.2".into());
        let keys = |b: &Bundle, v: &Versions| -> Vec<String> {
            b.pins_against(&theirs, v).1.into_iter().map(|d| d.key).collect()
        };
        assert_eq!(keys(&bundle, &ours), Vec::<String>::new());
        // Named by a fixture (by key or by reference): compared.
        for naming in ["{{ images.orders }}", "ghcr.io/acme/orders:1.4.2"] {
            let mut uses = bundle.clone();
            uses.fixtures.insert("orders.yaml".into(), format!("image: {naming}\n"));
            assert_eq!(keys(&uses, &ours), ["images.orders"], "{naming}");
        }
        // The harness's own images are always compared.
        let mut client = checkout.versions.clone();
        client.images.insert("client".into(), "curlimages/curl:0.0.1".into());
        assert_eq!(keys(&bundle, &client), ["images.client"]);
    }
}
