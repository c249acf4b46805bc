//! Static checks before any cluster exists: scenario files load and render, and the manifests
//! and Helm values they (or the user) provide pass the rules in [`rules`].

pub mod crd;
pub mod index;
pub mod kong;
pub mod kustomize;
pub mod output;
pub mod rules;
pub mod values_file;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Position, Severity};
use crate::scenario::bundle;
use crate::scenario::fixture::{self, Manifest};
use crate::scenario::{Catalog, CheckError, Mesh, RunContext, vars_for};
use crate::yaml;
use index::{Index, KONG_CHART, ValuesFile};
use kong::KongSetup;

/// What to lint.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Scenario files, manifest files, or directories of them (recursively). Empty: every scenario.
    pub paths: Vec<PathBuf>,
    /// The mesh manifests are meant for; scenarios use each mesh they declare.
    pub mesh: Option<Mesh>,
    /// `(chart, file)` Helm values (`kong/ingress` or `kong/kong`). Scenarios without them are
    /// checked with the harness's own Kong values (what runs them); other manifests are checked
    /// with what the inputs say, and a rule missing a fact says so in a note.
    pub values: Vec<(String, PathBuf)>,
    /// Where Kong runs (default: assumed `kong`, said in a note when a rule relies on it).
    pub kong_namespace: Option<String>,
    /// Kong's Helm release (default: assumed `kong`).
    pub kong_release: Option<String>,
    /// Rules whose findings are dropped (`--allow RULE`), counted in the outcome.
    pub allow: Vec<String>,
    /// Warnings count like errors for the exit code (`--deny-warnings`).
    pub deny_warnings: bool,
    /// The Kubernetes version whose schema core kinds are checked against; one lint carries.
    pub kubernetes_version: Option<String>,
}

/// The Kubernetes minor versions whose core schemas lint carries: k8s-openapi's `v1_35` types,
/// and for the others the fields that differ from them (`schemas/k8s-versions.txt`).
pub const KUBERNETES_SCHEMAS: &[&str] = &["1.34", "1.35", "1.36"];

/// The version of the types (without `--kubernetes-version`).
pub const DEFAULT_KUBERNETES_SCHEMA: &str = "1.35";

/// `v1.35.8`, `1.35` -> `1.35`.
fn minor_of(version: &str) -> String {
    let v = version.trim_start_matches('v');
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The findings of one lint run.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Diagnostic>,
    /// Some input could not be read at all (exit code 2).
    pub unreadable: bool,
    /// Findings silenced, by rule: by an object's `lint.kme2e.dev/ignore` or by `--allow`.
    pub suppressed: std::collections::BTreeMap<String, usize>,
    /// Warnings fail the run too.
    pub deny_warnings: bool,
    /// Every YAML file found was skipped, each with a note saying what to lint instead (a
    /// kustomize directory, a chart): nothing was checked, and that is said, not an error.
    pub read_nothing: bool,
}

impl Outcome {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|d| d.severity == Severity::Error).count()
    }

    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|d| d.severity == Severity::Warning).count()
    }

    /// 0 clean (warnings allowed unless denied), 1 errors, 2 unreadable input.
    pub fn exit_code(&self) -> u8 {
        if self.unreadable {
            2
        } else if self.errors() > 0 || (self.deny_warnings && self.warnings() > 0) {
            1
        } else {
            0
        }
    }

    fn count_suppressed(&mut self, by_rule: std::collections::BTreeMap<&str, usize>) {
        for (rule, n) in by_rule {
            *self.suppressed.entry(rule.to_owned()).or_default() += n;
        }
    }

    fn add(&mut self, d: Diagnostic) {
        // An input that could not be read as text at all (missing, not a regular file, over the
        // size cap, not UTF-8) is exit 2, as is an input lint cannot use (an unknown chart).
        self.unreadable |= matches!(d.code.as_str(), "read" | "too-large" | "not-utf8" | "usage");
        self.findings.push(d);
    }

    pub fn notes(&self) -> usize {
        self.findings.iter().filter(|d| d.severity == Severity::Note).count()
    }
}

/// Lint `inputs` against the catalog's project.
pub fn run(catalog: &Catalog, inputs: &Inputs) -> Outcome {
    let mut outcome = Outcome { deny_warnings: inputs.deny_warnings, ..Outcome::default() };
    if let Some(version) = &inputs.kubernetes_version
        && !KUBERNETES_SCHEMAS.contains(&minor_of(version).as_str())
    {
        outcome.add(
            Diagnostic::error(
                "usage",
                Path::new("--kubernetes-version"),
                Position::WHOLE_FILE,
                format!("lint carries no Kubernetes {version} schema"),
            )
            .with_help(format!("carried: {}", KUBERNETES_SCHEMAS.join(", "))),
        );
        return outcome;
    }
    let kubernetes = inputs.kubernetes_version.as_deref().map_or(DEFAULT_KUBERNETES_SCHEMA.to_owned(), minor_of);
    for id in &inputs.allow {
        if rules::rule(id).is_none() {
            let known: Vec<&str> = rules::RULES.iter().map(|r| r.id).collect();
            let help = match crate::diagnostic::closest(id, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`? (`lint --list-rules` lists them)"),
                None => "`lint --list-rules` lists the rules".into(),
            };
            outcome.add(
                Diagnostic::error("usage", Path::new("--allow"), Position::WHOLE_FILE, format!("no lint rule `{id}`"))
                    .with_help(help),
            );
            return outcome;
        }
    }
    // Kustomize builds are read from files of their own in here; their findings are reported at
    // the kustomization file, with the build's line in the message (`at_kustomization`).
    let built_dir = tempfile::tempdir().ok();
    let mut built: Vec<(PathBuf, PathBuf)> = Vec::new();
    let files = match expand(catalog, &inputs.paths) {
        Ok(mut walk) => {
            for (n, dir) in walk.kustomizations.iter().enumerate() {
                let note_at = kustomize::kustomization_in(dir).unwrap_or_else(|| dir.clone());
                let search_path = std::env::var_os("PATH");
                let text = kustomize::build(dir, search_path.as_deref()).and_then(|text| {
                    let tmp = built_dir.as_ref().ok_or("no temporary directory for the build")?;
                    let file = tmp.path().join(format!("kustomize-{n}.yaml"));
                    std::fs::write(&file, text).map_err(|e| format!("cannot keep the build: {e}"))?;
                    Ok(file)
                });
                match text {
                    Ok(file) => {
                        walk.files.push(file.clone());
                        built.push((file, note_at));
                    }
                    // Not a note: an overlay lint could not read is a hole in the check, which
                    // `--deny-warnings` makes fail.
                    Err(why) => {
                        let mut d = Diagnostic::note("kustomize", &note_at, why);
                        d.severity = Severity::Warning;
                        walk.skipped.push(d);
                    }
                }
            }
            if walk.files.is_empty() && !walk.skipped.is_empty() {
                outcome.findings.extend(walk.skipped);
                outcome.read_nothing = true;
                return outcome;
            }
            outcome.findings.extend(walk.skipped);
            walk.files
        }
        Err(d) => {
            outcome.add(*d);
            return outcome;
        }
    };
    if files.is_empty() && inputs.paths.is_empty() && catalog.project.is_standalone() {
        outcome.add(
            Diagnostic::error("usage", catalog.project.root(), Position::WHOLE_FILE, "nothing to lint")
                .with_help("outside a kme2e project, name the files or directories to lint (`lint deploy/`)"),
        );
        return outcome;
    }
    if files.is_empty() {
        let searched = inputs.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        outcome.add(
            Diagnostic::error("read", Path::new(&searched), Position::WHOLE_FILE, "no YAML file to check")
                .with_help("lint reads *.yaml and *.yml files; an empty check is not a clean one"),
        );
        return outcome;
    }
    let mut user_values: Vec<ValuesFile> = Vec::new();
    let kong_files = inputs.values.iter().filter(|(chart, _)| kong::KongChart::from_name(chart).is_some()).count();
    if kong_files > 1 {
        outcome.add(
            Diagnostic::error("usage", Path::new("--values"), Position::WHOLE_FILE, "more than one Kong values file")
                .with_help("lint reads one values file for Kong (as written, with its lines); merge layered files first (`yq ea '. as $i ireduce ({}; . * $i)' a.yaml b.yaml`)"),
        );
        return outcome;
    }
    for (chart, file) in &inputs.values {
        if !index::KNOWN_CHARTS.contains(&chart.as_str()) {
            outcome.add(
                Diagnostic::error("usage", file, Position::WHOLE_FILE, format!("lint knows no chart `{chart}`"))
                    .with_help(format!("charts whose values lint reads: {}", index::KNOWN_CHARTS.join(", "))),
            );
            continue;
        }
        match read_values(chart, file) {
            Ok(v) => user_values.push(v),
            Err(d) => outcome.add(*d),
        }
    }
    // Outside a kme2e project no directory holds scenarios: a `scenarios/` there is the user's.
    let scenarios_dir = (!catalog.project.is_standalone()).then(|| catalog.project.scenarios_dir());
    let (mut scenarios, mut manifests) = (Vec::new(), Vec::new());
    for file in files {
        match classify(&file, scenarios_dir.as_deref()) {
            Input::Bundle => lint_bundle(catalog, &file, inputs, &mut outcome),
            Input::Scenario => scenarios.push(file),
            Input::Manifests => manifests.push(file),
        }
    }

    for file in scenarios {
        let checked = match inputs.mesh {
            Some(mesh) => catalog.meshes_of(&file).and_then(|declared| {
                declared
                    .contains(&mesh)
                    .then(|| catalog.check_mesh(&file, mesh, "offline"))
                    .transpose()
                    .map(|c| c.into_iter().collect())
            }),
            None => catalog.check(&file, "offline"),
        };
        match checked {
            Ok(checked) => {
                for c in checked {
                    let expected = c.scenario.scenario.lint.expect.clone();
                    let mut objects = c.manifests;
                    match scenario_namespace(&file, &c.scenario, c.mesh) {
                        Ok(ns) => objects.extend(ns),
                        Err(e) => outcome.add(*e.0),
                    }
                    match index_for(catalog, objects, &user_values, Some(c.mesh), &harness_kong(catalog)) {
                        Ok(mut index) => {
                            index.kubernetes.clone_from(&kubernetes);
                            let (found, suppressed) = rules::run_all(&index);
                            outcome.count_suppressed(suppressed);
                            outcome.findings.extend(expected_findings(&file, c.mesh, &expected, found));
                        }
                        Err(d) => outcome.add(*d),
                    }
                }
            }
            Err(CheckError::Load(e)) => outcome.add(*e.0),
            Err(other) => outcome.add(Diagnostic::error("config", &file, Position::WHOLE_FILE, other.to_string())),
        }
    }

    if !manifests.is_empty() {
        let mesh = inputs.mesh.unwrap_or(Mesh::None);
        let vars = match catalog.default_profile(mesh) {
            Ok(profile) => vars_for("lint", &RunContext::offline(mesh), &profile),
            Err(e) => {
                outcome.add(Diagnostic::error(
                    "config",
                    &catalog.project.versions_file(),
                    Position::WHOLE_FILE,
                    e.to_string(),
                ));
                return finish(catalog, outcome, &inputs.allow);
            }
        };
        // The project's own fixtures are templated by the harness; anything else (and the
        // pitfall cases, written as users write) is the user's and read as written.
        let fixtures_dir = catalog.project.fixtures_dir().canonicalize().ok();
        let pitfalls = fixtures_dir.as_ref().map(|d| d.join("pitfalls"));
        let mut objects = Vec::new();
        for file in manifests {
            if let Some(why) = not_a_manifest(&file) {
                outcome.add(Diagnostic::note("skipped", &file, why));
                continue;
            }
            let canonical = file.canonicalize().ok();
            let under =
                |dir: &Option<PathBuf>| dir.as_ref().zip(canonical.as_ref()).is_some_and(|(d, f)| f.starts_with(d));
            let ours = under(&fixtures_dir) && !under(&pitfalls);
            let reading = if ours { fixture::Reading::Fixture(&vars) } else { fixture::Reading::UserManifest };
            let (found, errors) = fixture::read_all(&file, reading);
            objects.extend(found);
            for e in errors {
                outcome.add(*e.0);
            }
        }
        match index_for(catalog, objects, &user_values, inputs.mesh, &user_kong(inputs, &user_values)) {
            Ok(mut index) => {
                index.kubernetes.clone_from(&kubernetes);
                let (found, suppressed) = rules::run_all(&index);
                outcome.count_suppressed(suppressed);
                outcome.findings.extend(found);
            }
            Err(d) => outcome.add(*d),
        }
        for d in &mut outcome.findings {
            if let Some((_, kustomization)) = built.iter().find(|(tmp, _)| *tmp == d.file) {
                at_kustomization(d, kustomization);
            }
        }
    }
    finish(catalog, outcome, &inputs.allow)
}

/// The scenario's namespace as the run creates it on `mesh` (the mesh's enrollment and the
/// scenario's own labels and annotations, `NamespaceSettings::metadata`): rules that read a
/// namespace's labels (injection, ambient, waypoints) see what the run will apply.
fn scenario_namespace(
    file: &Path,
    loaded: &crate::scenario::LoadedScenario,
    mesh: Mesh,
) -> Result<Vec<Manifest>, crate::scenario::LoadError> {
    let metadata = loaded.scenario.namespace.metadata(mesh);
    let name = loaded.vars.get("namespace").unwrap_or_default();
    let object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": metadata.labels, "annotations": metadata.annotations},
    });
    let text = serde_saphyr::to_string(&object).unwrap_or_default();
    let source = PathBuf::from(format!("{} (the scenario's namespace)", file.display()));
    fixture::load_text(&source, &text, &loaded.vars)
}

/// A repro bundle is linted as the project it unpacks to, on its own mesh; findings name the
/// bundle and the file inside it (`bundle.yaml#fixtures/base/echo.yaml`). Its pins are compared
/// with the checkout's: each difference is an error, since `repro run` refuses it untrusted.
fn lint_bundle(checkout: &Catalog, file: &Path, inputs: &Inputs, outcome: &mut Outcome) {
    let unpacked = bundle::Bundle::load(file).and_then(|b| {
        let versions = b.versions(file)?;
        let dir =
            tempfile::tempdir().map_err(|error| bundle::ReproError::Write { path: std::env::temp_dir(), error })?;
        let project = b.unpack(&dir.path().join("project"))?;
        Ok((b, versions, dir, project))
    });
    let (b, versions, dir, project) = match unpacked {
        Ok(x) => x,
        Err(bundle::ReproError::Invalid(d)) => return outcome.add(*d),
        Err(e) => return outcome.add(Diagnostic::error("read", file, Position::WHOLE_FILE, e.to_string())),
    };
    let versions_file = PathBuf::from(format!("{}#versions.toml", file.display()));
    let (profile, mut differences) = b.pins_against(&versions, &checkout.versions);
    differences.extend(b.stack_differences(&checkout.project.fixtures_dir()));
    // Values outside what a stranger may set (`bundle_values`) are held to the rule of pins
    // (`repro run` refuses them untrusted alike).
    if let Some(p) = profile.and_then(|p| checkout.versions.profile(&p, &checkout.project.versions_file()).ok()) {
        differences.extend(b.values_needing_trust(&crate::stack::values::in_force(&crate::stack::environment(&p))));
    }
    // Bounded, never through a link: the reader the bundle itself was loaded with.
    let bundle_text = crate::yaml::read_text(file).unwrap_or_default();
    for d in differences {
        if let Some(key) = d.key.strip_prefix("values.") {
            let (chart, path) = key.split_once(':').unwrap_or((key, ""));
            let mut field = vec!["values", chart];
            field.extend(path.split('.'));
            let position = crate::yaml::locate(&bundle_text, &field);
            let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
            outcome.add(
                Diagnostic::error(
                    "bundle-pins",
                    file,
                    position,
                    format!(
                        "the bundle's {chart} values set `{path}` = `{}`; the harness's own: `{}`",
                        shown(&d.bundle),
                        shown(&d.checkout)
                    ),
                )
                .with_field(d.key.clone())
                .with_source(&bundle_text)
                .with_help(
                    "a stranger's bundle may set only plain labels and annotations, log levels, a sampling rate, \
                     1-3 replicas and resource quantities (README, \"Security\"); `repro run` uses this value only \
                     with --trust-bundle-pins (for bundles you made yourself, or from people you trust)",
                ),
            );
            continue;
        }
        let last = d.key.rsplit('.').next().unwrap_or(&d.key);
        let position = b
            .versions_toml
            .find(&format!("\"{last}\""))
            .or_else(|| b.versions_toml.find(last))
            .map_or(Position::WHOLE_FILE, |offset| Position::of_offset(&b.versions_toml, offset));
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
        outcome.add(
            Diagnostic::error(
                "bundle-pins",
                &versions_file,
                position,
                format!(
                    "the bundle pins `{}` = `{}`; this checkout pins `{}`",
                    d.key,
                    shown(&d.bundle),
                    shown(&d.checkout)
                ),
            )
            .with_field(d.key.clone())
            .with_source(&b.versions_toml)
            .with_help(
                "`repro run` refuses a bundle whose tools, URLs, sums, images or repositories differ from the \
                 checkout's, or whose profile is not one of the checkout's (--trust-bundle-pins uses them as they are)",
            ),
        );
    }
    let dir_path = dir.path().join("project");
    let catalog = match Catalog::open(project) {
        Ok(c) => c,
        Err(e) => return outcome.add(Diagnostic::error("config", file, Position::WHOLE_FILE, e.to_string())),
    };
    let inner = run(&catalog, &Inputs { paths: Vec::new(), mesh: Some(b.mesh), ..inputs.clone() });
    let mut findings = inner.findings;
    // A bundle is a stranger's until its reader says otherwise (`repro run --trust-bundle`).
    let scenario_file = catalog.project.scenarios_dir().join(format!("{}.yaml", b.scenario));
    for checked in catalog.check(&scenario_file, "lint").into_iter().flatten() {
        if let Some(d) = crate::scenario::scope::untrusted_problem(&checked.scenario, &checked.manifests) {
            findings.push(*d);
            break;
        }
    }
    for mut d in findings {
        let rel = d.file.strip_prefix(&dir_path).unwrap_or(&d.file).to_owned();
        // At the bundle's own line where the file is inline as a block; else inside the file.
        match bundle::locate_inside(&bundle_text, &rel, d.position.line, d.position.column)
            .filter(|_| d.position.line > 0)
        {
            Some(position) => {
                d.file = file.to_owned();
                d.position = position;
                d = d.with_source(&bundle_text);
            }
            None => d.file = PathBuf::from(format!("{}#{}", file.display(), rel.display())),
        }
        outcome.add(d);
    }
    outcome.unreadable |= inner.unreadable;
}

/// `lint --explain RULE`: what the rule catches, its severity, its upstream evidence and the
/// first case under `fixtures/pitfalls/` that shows it (with the offending line).
pub fn explain(project: &crate::project::Project, id: &str) -> Option<String> {
    let rule = rules::rule(id)?;
    let mut text = format!("{id} ({})\n\n{}.\n\nevidence: {}\n", rule.severity, rule.summary, rule.evidence);
    if project.is_standalone() {
        // The examples are the project's pitfall cases; outside a project there are none.
        return Some(text);
    }
    let pitfalls = project.fixtures_dir().join("pitfalls");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&pitfalls).into_iter().flatten().filter_map(|e| e.ok().map(|e| e.path())).collect();
    cases.sort();
    let example = cases.iter().find_map(|case| {
        let expected = std::fs::read_to_string(case.join("expected.txt")).ok()?;
        let line = expected.lines().find(|l| l.split_whitespace().next() == Some(id))?;
        let location = line.split_whitespace().nth(1)?;
        let mut parts = location.split(':');
        let (file, number) = (parts.next()?, parts.next()?.parse::<usize>().ok()?);
        let source = std::fs::read_to_string(case.join(file)).ok()?;
        let shown = source.lines().nth(number.checked_sub(1)?)?.trim_end().to_owned();
        Some(format!(
            "example: {}:{number}\n  {}\n",
            project.display_path(&case.join(file)).display(),
            crate::diagnostic::escape_controls(&shown)
        ))
    });
    if let Some(example) = example {
        text.push('\n');
        text.push_str(&example);
    }
    Some(text)
}

/// Drop the findings a scenario expects (its `lint.expect`), and report each expected rule that
/// did not fire: a seed-as-written scenario whose mistake is gone no longer shows anything.
fn expected_findings(scenario: &Path, mesh: Mesh, expected: &[String], found: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = found.iter().filter(|d| !expected.contains(&d.code)).cloned().collect();
    for rule in expected {
        let known = rules::RULES.iter().any(|r| r.id == rule);
        if !known {
            out.push(
                Diagnostic::error(
                    "lint-expect",
                    scenario,
                    Position::WHOLE_FILE,
                    format!("`lint.expect` names no lint rule `{rule}`"),
                )
                .with_help("rule ids are listed in the README's lint section"),
            );
        } else if !found.iter().any(|d| &d.code == rule) {
            out.push(
                Diagnostic::error(
                    "lint-expect",
                    scenario,
                    Position::WHOLE_FILE,
                    format!(
                        "the scenario expects a `{rule}` finding on {mesh}, and its fixtures no longer produce one"
                    ),
                )
                .with_help(
                    "the configuration this scenario documents has changed: update the fixtures or `lint.expect`",
                ),
            );
        }
    }
    out
}

fn finish(catalog: &Catalog, mut outcome: Outcome, allow: &[String]) -> Outcome {
    for d in &mut outcome.findings {
        d.file = catalog.project.display_path(&d.file).to_owned();
    }
    // A fixture shared by scenarios (or meshes) reports its problem once.
    outcome
        .findings
        .sort_by(|a, b| (&a.file, a.position, &a.code, &a.message).cmp(&(&b.file, b.position, &b.code, &b.message)));
    outcome
        .findings
        .dedup_by(|a, b| a.file == b.file && a.position == b.position && a.code == b.code && a.message == b.message);
    // `--allow RULE`: dropped, and counted so the summary says what was not shown.
    let shown = std::mem::take(&mut outcome.findings);
    for d in shown {
        if allow.contains(&d.code) && d.severity != Severity::Note {
            *outcome.suppressed.entry(d.code.clone()).or_default() += 1;
        } else {
            outcome.findings.push(d);
        }
    }
    outcome
}

enum Input {
    Bundle,
    Scenario,
    Manifests,
}

/// What a file is, from where it lives and its top-level keys: scenarios live in scenarios/ or
/// have scenario keys and no `apiVersion`; bundles start with `bundle:`. Unreadable files go to
/// the manifest reader, which reports them.
fn classify(file: &Path, scenarios_dir: Option<&Path>) -> Input {
    let Ok(text) = yaml::read_text(file) else { return Input::Manifests };
    let top = |key: &str| text.lines().any(|l| l.starts_with(key));
    if top("bundle:") {
        Input::Bundle
    } else if file.parent().zip(scenarios_dir).is_some_and(|(p, dir)| same_dir(p, dir))
        || (!top("apiVersion:") && (top("steps:") || top("summary:") || top("covers:")))
    {
        Input::Scenario
    } else {
        Input::Manifests
    }
}

/// Files in a linted directory that are not manifests, and what to do with them instead.
fn not_a_manifest(file: &Path) -> Option<String> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if matches!(name, "kustomization.yaml" | "kustomization.yml" | "Kustomization") {
        return Some("not read: a kustomization file; lint its directory (`lint DIR`), which reads its build".into());
    }
    if name == "Chart.yaml" {
        return Some("not read: a Helm chart; lint the output of `helm template`".into());
    }
    // A chart's templates (beside its Chart.yaml): not manifests until rendered.
    if let Some(chart) = file.parent().filter(|d| d.ends_with("templates")).and_then(Path::parent)
        && chart.join("Chart.yaml").is_file()
    {
        return Some(format!(
            "not read: a template of the Helm chart in {}; lint the output of `helm template`",
            chart.display()
        ));
    }
    let text = yaml::read_text(file).ok()?;
    let first = fixture::split_documents(&text).into_iter().next()?;
    let value: Value = yaml::from_str(first.text).ok()?;
    let map = value.as_object()?;
    // kind's cluster config (`kind.x-k8s.io/v1alpha4`, `kind: Cluster`), as `plan --out` writes
    // one: a file for kind, not for the API server.
    if map.get("apiVersion").and_then(Value::as_str).is_some_and(|v| v.starts_with("kind.x-k8s.io/")) {
        return Some("not read: a kind cluster config, not a Kubernetes manifest".into());
    }
    if map.contains_key("apiVersion") || map.contains_key("kind") {
        return None;
    }
    let chart_keys = [
        "image",
        "replicaCount",
        "podLabels",
        "podAnnotations",
        "env",
        "ingressController",
        "proxy",
        "gateway",
        "controller",
        "global",
        "resources",
        "service",
    ];
    map.keys().any(|k| chart_keys.contains(&k.as_str())).then(|| {
        "not read: this looks like Helm values, not a manifest; pass it with --values CHART=FILE (kong/kong or kong/ingress)".into()
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Who installs Kong for the objects being linted.
enum KongOwner {
    /// The harness (its scenarios): its values and stack objects stand in when none are given.
    Harness(KongSetup),
    /// The user: only what the inputs and flags say.
    User(KongSetup),
}

/// The rules that judge a Kong values file on its own (keys the chart reads, label types, mesh
/// annotations on the Service, KIC env keys): true of it whatever it is merged with.
pub const VALUES_RULES: &[&str] =
    &["kong-values-ignored-key", "kong-values-label-type", "mesh-annotation-on-service", "kic-env-unknown"];

/// A user's Kong values file for `chart` (kong/ingress or kong/kong) checked on its own by
/// [`VALUES_RULES`], as `e2e` checks what it is about to install under the harness's values;
/// findings located in the file. A chart lint does not read gives no finding.
pub fn values_file(catalog: &Catalog, chart: &str, file: &Path, mesh: Mesh) -> Outcome {
    let mut outcome = Outcome::default();
    let Some(kong_chart) = kong::KongChart::from_name(chart) else { return outcome };
    let values = match read_values(chart, file) {
        Ok(v) => v,
        Err(d) => {
            outcome.add(*d);
            return outcome;
        }
    };
    let KongOwner::Harness(mut kong) = harness_kong(catalog) else { return outcome };
    kong.chart = Some(kong_chart);
    let index = Index {
        objects: Vec::new(),
        values: vec![values],
        mesh: Some(mesh),
        kong,
        kubernetes: DEFAULT_KUBERNETES_SCHEMA.to_owned(),
    };
    for rule in rules::RULES.iter().filter(|r| VALUES_RULES.contains(&r.id)) {
        let mut findings = rules::Findings::new(rule);
        (rule.check)(&index, &mut findings);
        outcome.findings.extend(findings.out);
    }
    outcome
}

fn harness_kong(catalog: &Catalog) -> KongOwner {
    let pins = &catalog.versions.kong;
    KongOwner::Harness(KongSetup {
        namespace: pins.namespace.clone(),
        release: pins.release.clone(),
        source: kong::Source::Given,
        chart: Some(kong::KongChart::Ingress),
    })
}

fn user_kong(inputs: &Inputs, values: &[ValuesFile]) -> KongOwner {
    // kong/kong's `namespace` value overrides the release namespace.
    let from_values =
        values.iter().find_map(|v| kong::KongChart::from_name(&v.chart).and_then(|c| c.namespace(Some(&v.value))));
    let inputs = &Inputs { kong_namespace: inputs.kong_namespace.clone().or(from_values), ..inputs.clone() };
    let assumed = match (&inputs.kong_namespace, &inputs.kong_release) {
        (Some(_), Some(_)) => None,
        (ns, release) => Some(format!(
            "Kong's namespace `{}` and release `{}`{} (pass --kong-namespace and --kong-release)",
            ns.as_deref().unwrap_or("kong"),
            release.as_deref().unwrap_or("kong"),
            if ns.is_none() && release.is_none() {
                ", the charts' documented defaults, are assumed"
            } else {
                ": one of them assumed"
            }
        )),
    };
    KongOwner::User(KongSetup {
        namespace: inputs.kong_namespace.clone().unwrap_or_else(|| "kong".into()),
        release: inputs.kong_release.clone().unwrap_or_else(|| "kong".into()),
        source: assumed.map_or(kong::Source::Given, kong::Source::Assumed),
        chart: None,
    })
}

/// One index: the objects and the user's values. For the harness's own scenarios without user
/// Kong values, the harness's Kong install stands in: its values and what its stack applies
/// besides (e.g. Linkerd's header guard). A user's manifests get no stand-in.
fn index_for(
    catalog: &Catalog,
    mut objects: Vec<Manifest>,
    user_values: &[ValuesFile],
    mesh: Option<Mesh>,
    owner: &KongOwner,
) -> Result<Index, Box<Diagnostic>> {
    let mut values = user_values.to_vec();
    let user_kong_values = values.iter().find_map(|v| kong::KongChart::from_name(&v.chart));
    let mut kong = match owner {
        KongOwner::Harness(setup) | KongOwner::User(setup) => setup.clone(),
    };
    // The user's setup has no chart until values say which; the harness's is kong/ingress.
    kong.chart = user_kong_values.or(kong.chart);
    if let (KongOwner::Harness(_), Some(mesh), None) = (owner, mesh, user_kong_values) {
        values.push(harness_kong_values(mesh));
        add_stack_objects(catalog, mesh, &mut objects)?;
    }
    Ok(Index { objects, values, mesh, kong, kubernetes: DEFAULT_KUBERNETES_SCHEMA.to_owned() })
}

fn add_stack_objects(catalog: &Catalog, mesh: Mesh, objects: &mut Vec<Manifest>) -> Result<(), Box<Diagnostic>> {
    let profile = catalog.default_profile(mesh).map_err(|e| {
        Box::new(Diagnostic::error("config", &catalog.project.versions_file(), Position::WHOLE_FILE, e.to_string()))
    })?;
    let vars = vars_for("stack", &RunContext::offline(mesh), &profile);
    for file in crate::stack::kong::stack_manifests(mesh) {
        objects.extend(
            crate::stack::kong::load_stack_manifest(&catalog.project.fixtures_dir(), file, &vars).map_err(|e| e.0)?,
        );
    }
    // The objects the stack creates besides its manifests: Kong's namespace, enrolled in ambient.
    for object in crate::stack::generated_objects(&profile) {
        let text = serde_saphyr::to_string(&object).unwrap_or_default();
        let file = PathBuf::from(format!("(the harness's install for {mesh})"));
        objects.extend(crate::scenario::fixture::load_text(&file, &text, &vars).map_err(|e| e.0)?);
    }
    Ok(())
}

fn harness_kong_values(mesh: Mesh) -> ValuesFile {
    let value = crate::stack::kong::values(mesh);
    let text = serde_saphyr::to_string(&value).unwrap_or_default();
    ValuesFile {
        chart: KONG_CHART.into(),
        file: PathBuf::from(format!("<harness kong/ingress values for {mesh}>")),
        text,
        value,
    }
}

fn read_values(chart: &str, file: &Path) -> Result<ValuesFile, Box<Diagnostic>> {
    let (text, value) = crate::stack::values::read_file(file)?;
    Ok(ValuesFile { chart: chart.to_owned(), file: file.to_owned(), text, value })
}

/// The files to lint, and notes on what the walk did not enter.
#[derive(Debug, Default)]
struct Walk {
    files: Vec<PathBuf>,
    /// Kustomize directories found: read through their build (`kustomize`), never file by file.
    kustomizations: Vec<PathBuf>,
    skipped: Vec<Diagnostic>,
}

/// How deep a directory walk goes: deeper trees are skipped with a note.
const MAX_WALK_DEPTH: usize = 32;

fn expand(catalog: &Catalog, paths: &[PathBuf]) -> Result<Walk, Box<Diagnostic>> {
    if paths.is_empty() {
        let files = catalog.files().map_err(|e| {
            Box::new(Diagnostic::error("read", &catalog.project.scenarios_dir(), Position::WHOLE_FILE, e.to_string()))
        })?;
        return Ok(Walk { files, ..Walk::default() });
    }
    let mut walk = Walk::default();
    for path in paths {
        if path.is_dir() {
            let root = path.canonicalize().map_err(|e| unreadable(path, &e))?;
            let mut visited = std::collections::BTreeSet::from([root.clone()]);
            collect(path, &root, 0, &mut visited, &mut walk).map_err(|e| unreadable(path, &e))?;
        } else if path.exists() {
            walk.files.push(path.clone());
        } else {
            return Err(unreadable(path, &std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
    }
    // A file named twice (or by itself and through its directory) is read once.
    let mut seen = std::collections::BTreeSet::new();
    walk.files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    Ok(walk)
}

/// Walk `dir` (under the canonical `root` the user named): real directories are entered; links
/// are followed only to a file or directory inside `root`, and a directory only once, so a link
/// to `.` or out of the tree is skipped with a note instead of looping or reading a file
/// elsewhere. Only regular files are read.
fn collect(
    dir: &Path,
    root: &Path,
    depth: usize,
    visited: &mut std::collections::BTreeSet<PathBuf>,
    walk: &mut Walk,
) -> std::io::Result<()> {
    // A kustomize directory holds bases and patches, not objects as applied: its files are read
    // only through its build.
    if kustomize::kustomization_in(dir).is_some() {
        walk.kustomizations.push(dir.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    let yaml = |p: &Path| p.extension().is_some_and(|x| x == "yaml" || x == "yml");
    let skip = |walk: &mut Walk, path: &Path, why: &str| {
        walk.skipped.push(Diagnostic::note("skipped", path, format!("not read: {why}")));
    };
    for path in entries {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        let (target, meta) = if meta.file_type().is_symlink() {
            let Ok(target) = path.canonicalize() else {
                skip(walk, &path, "a link to nothing");
                continue;
            };
            if !target.starts_with(root) {
                skip(walk, &path, "a link out of the directory being checked");
                continue;
            }
            let Ok(meta) = std::fs::metadata(&target) else { continue };
            (target, meta)
        } else {
            (path.clone(), meta)
        };
        if meta.is_dir() {
            let canonical = target.canonicalize().unwrap_or(target);
            if depth + 1 > MAX_WALK_DEPTH {
                skip(walk, &path, &format!("deeper than {MAX_WALK_DEPTH} directories"));
            } else if !visited.insert(canonical) {
                skip(walk, &path, "a directory already checked (a link loop or a second way in)");
            } else {
                collect(&path, root, depth + 1, visited, walk)?;
            }
        } else if yaml(&path) {
            if meta.is_file() {
                // A link inside the tree is read as the file it names: inputs are never read
                // through a link (`yaml::read_bounded` refuses one).
                walk.files.push(target);
            } else {
                skip(walk, &path, "not a regular file (a FIFO, socket or device)");
            }
        }
    }
    Ok(())
}

/// A finding in a kustomize build, reported at the kustomization file (which exists, so CI
/// annotations land on it) with where in the build it is: the build has no file of its own.
fn at_kustomization(d: &mut Diagnostic, kustomization: &Path) {
    let dir = kustomization.parent().unwrap_or(kustomization).display().to_string();
    if d.position.line > 0 {
        d.message = format!("{} (in `kubectl kustomize {dir}`, line {})", d.message, d.position.line);
        if let Some(line) = d.source_line.take() {
            d.message = format!("{}: `{}`", d.message, line.trim());
        }
    } else {
        d.message = format!("{} (in `kubectl kustomize {dir}`)", d.message);
    }
    d.file = kustomization.to_owned();
    d.position = Position::WHOLE_FILE;
    d.source_line = None;
}

fn unreadable(path: &Path, e: &std::io::Error) -> Box<Diagnostic> {
    Box::new(Diagnostic::error("read", path, Position::WHOLE_FILE, format!("cannot read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;

    fn catalog() -> Catalog {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        Catalog::open(Project::at(root)).expect("the project's versions.toml loads")
    }

    /// A rendered manifest stream of several MiB (`helm template` with CRDs) is read, a document
    /// at a time, and its findings located; a scenario file that size is still refused.
    #[test]
    fn large_manifest_streams_are_read_and_scenarios_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let filler = "x".repeat(1000);
        let mut text = String::new();
        for i in 0..3000 {
            text += &format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  v: {filler}\n");
        }
        let name_line = text.lines().count() + 5; // ---, apiVersion, kind, metadata, name
        text += "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: orders\nspec:\n  rules:\n  \
                 - host: shop.example.com\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        \
                 backend:\n          service: {name: orders, port: {number: 80}}\n";
        assert!(text.len() > 3 << 20);
        let file = dir.path().join("rendered.yaml");
        std::fs::write(&file, &text).unwrap();
        let outcome = run(&catalog(), &Inputs { paths: vec![file], ..Inputs::default() });
        assert!(
            !outcome.unreadable && !outcome.findings.iter().any(|d| d.code == "too-large"),
            "{:?}",
            outcome.findings
        );
        let no_class = outcome.findings.iter().find(|d| d.code == "ingress-no-class").expect("the last object is read");
        assert_eq!(no_class.position.line as usize, name_line, "{no_class}");

        // Helm values keep the 1 MiB bound of inputs that are not rendered streams.
        let values = dir.path().join("values.yaml");
        std::fs::write(&values, format!("gateway:\n  podLabels: {{team: shop}}\n# {}\n", "y".repeat(2 << 20))).unwrap();
        let small = dir.path().join("small.yaml");
        std::fs::write(&small, CONFIGMAP).unwrap();
        let inputs = Inputs { paths: vec![small], values: vec![("kong/ingress".into(), values)], ..Inputs::default() };
        let outcome = run(&catalog(), &inputs);
        assert!(outcome.findings.iter().any(|d| d.code == "too-large"), "{:?}", outcome.findings);
    }

    /// Lint one pitfall case; findings as `rule file:line:column`, files relative to the case.
    fn lint_case(catalog: &Catalog, dir: &Path) -> (String, Vec<String>) {
        let expected = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
        let mut lines = expected.lines();
        let mesh_line = lines.next().unwrap_or_default();
        let mesh: Mesh = mesh_line.strip_prefix("mesh: ").expect("first line `mesh: …`").parse().expect("a mesh");
        // The case's entries as a user would pass them (directories walked by lint itself),
        // minus expected.txt and the values files: `kong-values.yaml` (kong/ingress values) and
        // `kong-chart-values.yaml` (kong/kong values) are given with --values.
        let values_files = [("kong-values.yaml", KONG_CHART), ("kong-chart-values.yaml", "kong/kong")];
        let mut paths: Vec<PathBuf> =
            std::fs::read_dir(dir).expect("case dir").filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        paths.retain(|p| {
            p.file_name().is_some_and(|n| n != "expected.txt" && values_files.iter().all(|(f, _)| n != *f))
        });
        let values: Vec<(String, PathBuf)> = values_files
            .iter()
            .map(|(file, chart)| ((*chart).to_owned(), dir.join(file)))
            .filter(|(_, file)| file.exists())
            .collect();
        let outcome = run(
            catalog,
            &Inputs {
                paths,
                mesh: (mesh != Mesh::None).then_some(mesh),
                values,
                // The guide's `helm install kong kong/ingress --namespace kong`.
                kong_namespace: Some("kong".into()),
                kong_release: Some("kong".into()),
                ..Inputs::default()
            },
        );
        let case = catalog.project.display_path(dir).to_owned();
        let found = outcome
            .findings
            .iter()
            .map(|d| {
                let file = d.file.strip_prefix(&case).unwrap_or(&d.file).display().to_string();
                // A severity other than the finding's usual one is part of what is expected:
                // a rule's own default, error for load problems, note for `skipped`.
                let usual = match rules::rule(&d.code) {
                    Some(r) => r.severity,
                    None if d.code == "skipped" => Severity::Note,
                    None => Severity::Error,
                };
                let severity = if d.severity == usual { String::new() } else { format!(" [{}]", d.severity) };
                format!("{} {file}:{}:{}{severity}", d.code, d.position.line, d.position.column)
            })
            .collect();
        (mesh_line.to_owned(), found)
    }

    const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

    /// Links to `.` do not loop, a link out of the tree is not read (its content never printed),
    /// a FIFO is not opened; each is named in a note, and the real file is still checked.
    #[cfg(unix)]
    #[test]
    fn the_walk_stays_in_its_tree_and_says_what_it_skipped() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("credentials.yaml");
        std::fs::write(&secret, "aws_secret_access_key: hunter2-SECRET\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("cm.yaml"), CONFIGMAP).unwrap();
        symlink(".", tree.join("loop-a")).unwrap();
        symlink("..", tree.join("loop-b")).unwrap();
        symlink(&secret, tree.join("leak.yaml")).unwrap();
        symlink("cm.yaml", tree.join("inside.yaml")).unwrap();
        let fifo = tree.join("pipe.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
        assert!(made.success());
        let outcome =
            run(&catalog(), &Inputs { paths: vec![tree.clone()], mesh: None, values: vec![], ..Inputs::default() });
        let all: Vec<String> = outcome.findings.iter().map(ToString::to_string).collect();
        let text = all.join("\n");
        assert!(!text.contains("hunter2"), "{text}");
        let notes: Vec<String> = outcome
            .findings
            .iter()
            .filter(|d| d.severity == Severity::Note)
            .map(|d| format!("{} {}", d.file.file_name().unwrap().to_string_lossy(), d.message))
            .collect();
        assert_eq!(
            notes,
            [
                "leak.yaml not read: a link out of the directory being checked",
                "loop-a not read: a directory already checked (a link loop or a second way in)",
                "loop-b not read: a link out of the directory being checked",
                "pipe.yaml not read: not a regular file (a FIFO, socket or device)",
            ],
            "{text}"
        );
        assert_eq!(outcome.exit_code(), 0, "{text}");
        // Named explicitly, a FIFO is refused without being opened: exit 2.
        let outcome = run(&catalog(), &Inputs { paths: vec![fifo], mesh: None, values: vec![], ..Inputs::default() });
        assert_eq!(outcome.exit_code(), 2);
        assert!(outcome.findings[0].message.contains("not a regular file"), "{:?}", outcome.findings);
    }

    /// Nothing checked is not "clean"; an unknown chart is not silently skipped; a file that is
    /// not readable text is exit 2.
    #[test]
    fn lint_never_calls_an_empty_or_unread_check_clean() {
        let dir = tempfile::tempdir().unwrap();
        let empty = run(
            &catalog(),
            &Inputs { paths: vec![dir.path().to_owned()], mesh: None, values: vec![], ..Inputs::default() },
        );
        assert_eq!(empty.exit_code(), 2);
        assert_eq!(empty.findings[0].message, "no YAML file to check");
        let cm = dir.path().join("cm.yaml");
        std::fs::write(&cm, CONFIGMAP).unwrap();
        let values = vec![("kong/kongg".to_owned(), cm.clone())];
        let unknown = run(&catalog(), &Inputs { paths: vec![cm.clone()], mesh: None, values, ..Inputs::default() });
        assert_eq!(unknown.exit_code(), 2);
        assert!(unknown.findings[0].message.contains("lint knows no chart `kong/kongg`"), "{:?}", unknown.findings);
        let too_big = (crate::yaml::MAX_MANIFEST_BYTES + 1) as usize;
        for (name, bytes) in [("big.yaml", vec![b'a'; too_big]), ("latin1.yaml", b"a: caf\xe9\n".to_vec())] {
            let file = dir.path().join(name);
            std::fs::write(&file, bytes).unwrap();
            let outcome =
                run(&catalog(), &Inputs { paths: vec![file], mesh: None, values: vec![], ..Inputs::default() });
            assert_eq!(outcome.exit_code(), 2, "{name}: {:?}", outcome.findings);
        }
        // JSON keeps `field: null` for findings about a whole file.
        let json = serde_json::to_value(&empty.findings).unwrap();
        assert!(json[0].as_object().unwrap().contains_key("field"), "{json}");
        assert!(json[0]["field"].is_null());
    }

    /// `linkerd.io/inject` on a Deployment's own metadata: an error only when nothing else
    /// injects the pod; when its namespace does, or lint cannot see the namespace, a warning.
    #[test]
    fn misplaced_linkerd_annotation_is_an_error_only_when_nothing_injects() {
        let dir = tempfile::tempdir().unwrap();
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n  annotations: {linkerd.io/inject: enabled}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: web:1}]}\n";
        let severity_with = |namespace: Option<&str>| {
            let file = dir.path().join("objects.yaml");
            let text = match namespace {
                Some(ns) => format!("{deployment}---\n{ns}"),
                None => deployment.to_owned(),
            };
            std::fs::write(&file, text).unwrap();
            let outcome =
                run(&catalog(), &Inputs { paths: vec![file], mesh: Some(Mesh::Linkerd), ..Inputs::default() });
            let found: Vec<_> =
                outcome.findings.iter().filter(|d| d.code == "linkerd-inject-on-workload-metadata").collect();
            assert_eq!(found.len(), 1, "{:?}", outcome.findings);
            found[0].severity
        };
        let injecting =
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  annotations: {linkerd.io/inject: enabled}\n";
        let plain = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
        assert_eq!(severity_with(Some(injecting)), Severity::Warning);
        assert_eq!(severity_with(Some(plain)), Severity::Error);
        assert_eq!(severity_with(None), Severity::Warning);
    }

    /// A suppressed finding leaves the others as they are; two Kong values files are refused
    /// (lint cannot merge them and keep their lines); a file named twice is read once.
    #[test]
    fn suppression_layered_values_and_repeated_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let deployment = |name: &str, extra: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\n  annotations: {{linkerd.io/inject: enabled{extra}}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: c, image: c:1}}]}}\n"
            )
        };
        let file = dir.path().join("objs.yaml");
        let namespace =
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  annotations: {linkerd.io/inject: enabled}\n";
        let ignore = ", lint.kme2e.dev/ignore: linkerd-inject-on-workload-metadata";
        std::fs::write(&file, format!("{namespace}---\n{}---\n{}", deployment("a", ""), deployment("b", ignore)))
            .unwrap();
        let inputs = Inputs {
            paths: vec![file.clone(), file.clone(), dir.path().to_owned()],
            mesh: Some(Mesh::Linkerd),
            ..Inputs::default()
        };
        let outcome = run(&catalog(), &inputs);
        let found: Vec<_> =
            outcome.findings.iter().filter(|d| d.code == "linkerd-inject-on-workload-metadata").collect();
        assert_eq!(found.len(), 1, "{:?}", outcome.findings);
        assert_eq!(found[0].severity, Severity::Warning, "a's severity is its own");
        assert_eq!(outcome.suppressed.get("linkerd-inject-on-workload-metadata"), Some(&1), "counted once");
        let values = vec![("kong/ingress".to_owned(), file.clone()), ("kong/ingress".to_owned(), file.clone())];
        let layered = run(&catalog(), &Inputs { paths: vec![file], values, ..Inputs::default() });
        assert_eq!(layered.exit_code(), 2);
        assert!(layered.findings[0].message.contains("more than one Kong values file"));
    }

    /// With no Kong values and no flags, lint assumes nothing silently: a rule that needs the
    /// Kong install says what it assumed or could not check, once.
    #[test]
    fn assumptions_about_kong_are_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.yaml");
        std::fs::write(&file, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: shop}\nspec:\n  rules:\n  - from:\n    - source: {principals: [cluster.local/ns/kong/sa/kong]}\n  - from:\n    - source: {principals: [cluster.local/ns/kong/sa/other]}\n").unwrap();
        let outcome =
            run(&catalog(), &Inputs { paths: vec![file.clone()], mesh: Some(Mesh::Istio), ..Inputs::default() });
        let notes: Vec<&str> =
            outcome.findings.iter().filter(|d| d.severity == Severity::Note).map(|d| d.message.as_str()).collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("namespace `kong` and release `kong`") && notes[0].contains("--kong-namespace"),
            "{}",
            notes[0]
        );
        // Told, lint states nothing it assumed.
        let told = Inputs {
            paths: vec![file],
            mesh: Some(Mesh::Istio),
            kong_namespace: Some("kong".into()),
            kong_release: Some("kong".into()),
            ..Inputs::default()
        };
        let outcome = run(&catalog(), &told);
        assert!(outcome.findings.iter().all(|d| d.severity != Severity::Note), "{:?}", outcome.findings);
        assert_eq!(outcome.findings.iter().filter(|d| d.code == "authz-principal-unknown").count(), 2);
    }

    /// The README's rule table is the rules as they are: id, severity and summary.
    #[test]
    fn the_readme_lists_every_rule_as_it_is() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let table: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| rule | severity | what it catches |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let expected: Vec<String> =
            rules::RULES.iter().map(|r| format!("| `{}` | {} | {} |", r.id, r.severity, r.summary)).collect();
        assert_eq!(table, expected, "regenerate the README table from `cargo xtask lint --list-rules`");
    }

    /// The opentelemetry rule's other side: with Kong's instrumentation on in its values, the
    /// pitfall's plugin draws no finding (the case itself shows it off).
    #[test]
    fn opentelemetry_with_instrumentation_on_is_fine() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let case = root.join("fixtures/pitfalls/otel-without-instrumentation");
        let dir = tempfile::tempdir().unwrap();
        let values = dir.path().join("kong-values.yaml");
        std::fs::write(&values, "gateway:\n  env:\n    tracing_instrumentations: all\n    tracing_sampling_rate: 1\n")
            .unwrap();
        let catalog = Catalog::open(crate::project::Project::at(root)).unwrap();
        let inputs = Inputs {
            paths: vec![case.join("otel.yaml")],
            mesh: Some(Mesh::None),
            values: vec![("kong/ingress".into(), values)],
            ..Default::default()
        };
        let outcome = run(&catalog, &inputs);
        assert!(!outcome.findings.iter().any(|d| d.code == "kong-otel-not-instrumented"), "{:?}", outcome.findings);
    }

    /// A misspelt rule in the ignore annotation is said, with the closest rule (as a misspelt
    /// `--allow` is refused), and the finding it meant to silence still shows.
    #[test]
    fn a_misspelt_rule_in_the_ignore_annotation_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ingress.yaml");
        let ingress = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: orders\n  annotations:\n    lint.kme2e.dev/ignore: ingress-no-clas\nspec:\n  rules:\n    - host: a.example.com\n";
        std::fs::write(&file, ingress).unwrap();
        let outcome = run(&catalog(), &Inputs { paths: vec![file], ..Inputs::default() });
        let codes: Vec<(&str, Severity)> = outcome.findings.iter().map(|d| (d.code.as_str(), d.severity)).collect();
        assert!(codes.contains(&("ignore-unknown-rule", Severity::Warning)), "{codes:?}");
        assert!(codes.contains(&("ingress-no-class", Severity::Warning)), "not silenced: {codes:?}");
        let said = outcome.findings.iter().find(|d| d.code == "ignore-unknown-rule").unwrap();
        assert_eq!(said.position.line, 6);
        assert!(said.help.as_deref().unwrap_or_default().contains("did you mean `ingress-no-class`"), "{said}");
    }

    /// The supported window of Kubernetes versions: a field 1.35 introduced (`workloadRef`) is
    /// unknown to 1.34 and gone again in 1.36, one 1.36 introduced (`schedulingGroup`) is known
    /// there only; both directions, at the field's line; a version outside the window is refused.
    #[test]
    fn core_kinds_are_checked_against_the_chosen_kubernetes_version() {
        let dir = tempfile::tempdir().unwrap();
        let pod = |field: &str| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  {field}\n  containers:\n  - name: c\n    image: c:1\n"
            )
        };
        let unknown = |field: &str, version: &str| {
            let file = dir.path().join("pod.yaml");
            std::fs::write(&file, pod(field)).unwrap();
            let inputs = Inputs { paths: vec![file], kubernetes_version: Some(version.into()), ..Inputs::default() };
            let outcome = run(&catalog(), &inputs);
            let found: Vec<&Diagnostic> = outcome.findings.iter().filter(|d| d.code == "k8s-unknown-field").collect();
            found.first().map(|d| (d.position.line, d.message.clone()))
        };
        let workload_ref = "workloadRef: {name: w, podGroup: g}";
        let scheduling_group = "schedulingGroup: {podGroupName: g}";
        assert_eq!(unknown(workload_ref, "1.35"), None);
        let (line, message) = unknown(workload_ref, "v1.34.11").expect("1.34 has no workloadRef");
        assert_eq!(line, 6);
        assert!(message.contains("`spec.workloadRef` is not a field of Pod in Kubernetes 1.34"), "{message}");
        assert!(unknown(workload_ref, "1.36").is_some_and(|(_, m)| m.contains("Kubernetes 1.36")));
        assert_eq!(unknown(scheduling_group, "1.36"), None);
        assert!(unknown(scheduling_group, "1.35").is_some());
        assert!(unknown(scheduling_group, "1.34").is_some());
        // A typo is one in every version.
        assert!(unknown("workloadRefs: {name: w}", "1.36").is_some());
        let refused = run(&catalog(), &Inputs { kubernetes_version: Some("1.33".into()), ..Inputs::default() });
        assert_eq!(refused.exit_code(), 2);
        assert!(refused.findings[0].help.as_deref().unwrap_or_default().contains("1.34, 1.35, 1.36"));
    }

    /// The ignore annotation silences a finding on any object its message is about: the Service
    /// a finding at an Ingress names, the Server that refuses Kong's requests.
    #[test]
    fn the_ignore_annotation_works_on_the_object_the_message_names() {
        let catalog = catalog();
        let case = catalog.project.fixtures_dir().join("pitfalls").join("linkerd-kong-opted-out-server");
        let dir = tempfile::tempdir().unwrap();
        let app = std::fs::read_to_string(case.join("app.yaml")).unwrap();
        let values = case.join("kong-values.yaml");
        let lint = |app: &str| {
            std::fs::write(dir.path().join("app.yaml"), app).unwrap();
            let inputs = Inputs {
                paths: vec![dir.path().join("app.yaml")],
                mesh: Some(Mesh::Linkerd),
                values: vec![("kong/ingress".into(), values.clone())],
                ..Inputs::default()
            };
            run(&catalog, &inputs)
        };
        let rule = "linkerd-authz-kong-unmeshed";
        let reported = |o: &Outcome| o.findings.iter().any(|d| d.code == rule && d.severity == Severity::Error);
        assert!(reported(&lint(&app)));
        let on_service = app.replace(
            "  annotations: {ingress.kubernetes.io/service-upstream: \"true\"}",
            &format!(
                "  annotations: {{ingress.kubernetes.io/service-upstream: \"true\", lint.kme2e.dev/ignore: {rule}}}"
            ),
        );
        let on_server = app.replace(
            "  name: orders-http\n  namespace: shop\n",
            &format!("  name: orders-http\n  namespace: shop\n  annotations: {{lint.kme2e.dev/ignore: {rule}}}\n"),
        );
        for (what, text) in [("Service", on_service), ("Server", on_server)] {
            assert_ne!(text, app, "{what}: the annotation was placed");
            let outcome = lint(&text);
            assert!(!reported(&outcome), "{what}: {:?}", outcome.findings);
            assert_eq!(outcome.suppressed.get(rule), Some(&1), "{what}");
        }
    }

    /// Which HTTPRoutes are Kong's, as KIC attaches them: to a listener that exists and admits
    /// the route's namespace, on a Gateway API Gateway (not Istio's kind of the same name); and
    /// Linkerd's relay guard on an HTTPRoute, by filter or not followed across namespaces.
    #[test]
    fn kong_routes_are_the_ones_kic_attaches() {
        let catalog = catalog();
        let case = catalog.project.fixtures_dir().join("pitfalls").join("gateway-api-kong-httproute");
        let gateway = std::fs::read_to_string(case.join("gateway.yaml")).unwrap();
        let app = std::fs::read_to_string(case.join("app.yaml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let lint = |gateway: &str, app: &str, values: &str, mesh: Mesh| {
            std::fs::write(dir.path().join("gateway.yaml"), gateway).unwrap();
            std::fs::write(dir.path().join("app.yaml"), app).unwrap();
            std::fs::write(dir.path().join("values.yaml"), values).unwrap();
            let inputs = Inputs {
                paths: vec![dir.path().join("gateway.yaml"), dir.path().join("app.yaml")],
                mesh: Some(mesh),
                values: vec![("kong/ingress".into(), dir.path().join("values.yaml"))],
                ..Inputs::default()
            };
            run(&catalog, &inputs)
                .findings
                .into_iter()
                .filter(|d| d.severity != Severity::Note)
                .map(|d| d.code)
                .collect::<Vec<_>>()
        };
        let out = std::fs::read_to_string(case.join("kong-values.yaml")).unwrap();
        assert!(lint(&gateway, &app, &out, Mesh::Istio).contains(&"istio-strict-kong-unmeshed".to_owned()));
        // A listener the route names that the Gateway does not have: KIC does not attach it.
        let https =
            app.replace("  - {name: kong, namespace: kong}", "  - {name: kong, namespace: kong, sectionName: https}");
        assert!(lint(&gateway, &https, &out, Mesh::Istio).is_empty(), "no such listener");
        // allowedRoutes left at its default (Same): a route of another namespace does not attach.
        let same = gateway.replace("    allowedRoutes:\n      namespaces: {from: All}\n", "");
        assert_ne!(same, gateway);
        assert!(lint(&same, &app, &out, Mesh::Istio).is_empty(), "Same admits only kong's namespace");
        // Istio's own Gateway kind of the same name is no parent of an HTTPRoute.
        let istio_kind = same.replace(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: kong",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: kong",
        );
        assert_ne!(istio_kind, same);
        assert!(
            lint(&istio_kind, &app, &out, Mesh::Istio).contains(&"istio-strict-kong-unmeshed".to_owned()),
            "parent not among the inputs: Kong's namespace counts"
        );

        // Linkerd in ingress mode: an HTTPRoute filter removing l5d-dst-override guards it; a
        // route whose only backend is in another namespace is not guarded by it.
        let linkerd = "gateway:\n  podAnnotations:\n    linkerd.io/inject: ingress\n";
        let relay = "linkerd-ingress-open-relay".to_owned();
        let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec:\n  \
                     parentRefs: [{name: kong, namespace: kong}]\n  rules:\n  - backendRefs: [{name: orders, port: 80}]\n";
        assert!(lint(&gateway, route, linkerd, Mesh::Linkerd).contains(&relay));
        let filtered = route.replace(
            "  - backendRefs:",
            "  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [L5d-Dst-Override]}}]\n    backendRefs:",
        );
        assert!(!lint(&gateway, &filtered, linkerd, Mesh::Linkerd).contains(&relay), "the filter guards it");
        let other_ns = route.replace("[{name: orders, port: 80}]", "[{name: orders, namespace: payments, port: 80}]");
        assert!(
            lint(&gateway, &other_ns, linkerd, Mesh::Linkerd).contains(&relay),
            "an unfollowed backend guards nothing"
        );
    }

    /// A cross-namespace backend of Kong's HTTPRoute: an error only where that namespace's
    /// objects are among the inputs (a grant kept elsewhere is unseen, a note); the grant's
    /// group compares exactly.
    #[test]
    fn cross_namespace_backends_need_a_grant_where_lint_can_see_it() {
        let catalog = catalog();
        let case = catalog.project.fixtures_dir().join("pitfalls").join("gateway-api-cross-namespace");
        let gateway = case.join("gateway.yaml");
        let dir = tempfile::tempdir().unwrap();
        let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec:\n  \
                     parentRefs: [{name: kong, namespace: kong}]\n  rules:\n  - backendRefs: [{name: legacy, namespace: default, port: 80}]\n";
        std::fs::write(dir.path().join("route.yaml"), route).unwrap();
        let severities = |outcome: &Outcome| -> Vec<Severity> {
            let rule = "kong-httproute-backend-not-granted";
            outcome.findings.iter().filter(|d| d.code == rule).map(|d| d.severity).collect()
        };
        let outcome =
            run(&catalog, &Inputs { paths: vec![gateway.clone(), dir.path().join("route.yaml")], ..Inputs::default() });
        assert_eq!(
            severities(&outcome),
            [Severity::Note],
            "only cluster-scoped objects besides: {:?}",
            outcome.findings
        );
        let grant = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: default}\nspec:\n  \
                     from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]\n  to: [{group: core, kind: Service}]\n";
        std::fs::write(dir.path().join("grant.yaml"), grant).unwrap();
        let inputs = Inputs {
            paths: vec![gateway, dir.path().join("route.yaml"), dir.path().join("grant.yaml")],
            ..Inputs::default()
        };
        let outcome = run(&catalog, &inputs);
        assert_eq!(
            severities(&outcome),
            [Severity::Error],
            "`core` is not the core group \"\": {:?}",
            outcome.findings
        );
    }

    /// Content on a `---` line belongs to no document: an error at its line, never dropped.
    #[test]
    fn content_on_a_separator_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sep.yaml");
        std::fs::write(
            &file,
            format!("{CONFIGMAP}--- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: b}}}}\n--- # fine\n"),
        )
        .unwrap();
        let outcome = run(&catalog(), &Inputs { paths: vec![file], ..Inputs::default() });
        let syntax: Vec<u32> =
            outcome.findings.iter().filter(|d| d.code == "syntax").map(|d| d.position.line).collect();
        assert_eq!(syntax, [5], "{:?}", outcome.findings);
    }

    /// The Linkerd rules' other side, as the second review set it out: what admits Kong by
    /// network alone, a backend Linkerd does not enforce policy on, wildcard and controller
    /// identities, the user's trust domain, pod annotations over namespace ones, a skip
    /// annotation left on a side without a proxy, and Istio's single ports.
    #[test]
    fn linkerd_rules_stay_quiet_on_what_admits_kong() {
        let catalog = catalog();
        let case = catalog.project.fixtures_dir().join("pitfalls").join("linkerd-kong-opted-out-server");
        let app = std::fs::read_to_string(case.join("app.yaml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let lint = |app: &str, values: &str, mesh: Mesh| {
            std::fs::write(dir.path().join("app.yaml"), app).unwrap();
            std::fs::write(dir.path().join("values.yaml"), values).unwrap();
            let inputs = Inputs {
                paths: vec![dir.path().join("app.yaml")],
                mesh: Some(mesh),
                values: vec![("kong/ingress".into(), dir.path().join("values.yaml"))],
                ..Inputs::default()
            };
            run(&catalog, &inputs)
        };
        let opted_out = "gateway:\n  podAnnotations:\n    linkerd.io/inject: disabled\n";
        let found = |o: &Outcome, rule: &str| {
            o.findings.iter().filter(|d| d.code == rule && d.severity != Severity::Note).cloned().collect::<Vec<_>>()
        };
        let unmeshed = "linkerd-authz-kong-unmeshed";
        assert_eq!(found(&lint(&app, opted_out, Mesh::Linkerd), unmeshed).len(), 1);
        let network = |target: &str| {
            format!(
                "{app}---\napiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {{name: all, namespace: shop}}\n\
                 spec: {{networks: [{{cidr: 0.0.0.0/0}}]}}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\n\
                 metadata: {{name: by-network, namespace: shop}}\nspec:\n  targetRef: {target}\n  requiredAuthenticationRefs:\n  \
                 - {{group: policy.linkerd.io, kind: NetworkAuthentication, name: all}}\n"
            )
        };
        for (what, text) in [
            ("a network policy on an HTTPRoute", network("{group: policy.linkerd.io, kind: HTTPRoute, name: orders}")),
            ("a network policy on the namespace", network("{kind: Namespace, name: shop}")),
            (
                "all-authenticated with a network policy on the Server",
                network("{group: policy.linkerd.io, kind: Server, name: orders-http}")
                    .replace("accessPolicy: deny", "accessPolicy: all-authenticated"),
            ),
            (
                "a legacy ServerAuthorization of unauthenticated clients",
                format!(
                    "{app}---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {{name: any, namespace: shop}}\n\
                     spec:\n  server: {{name: orders-http}}\n  client: {{unauthenticated: true}}\n"
                ),
            ),
            ("a backend Linkerd does not mesh", app.replace("  annotations: {linkerd.io/inject: enabled}\n", "")),
        ] {
            assert!(found(&lint(&text, opted_out, Mesh::Linkerd), unmeshed).is_empty(), "{what}");
        }
        // Identities: a wildcard and the controller's account are fine; the fix keeps the domain.
        let identities = |list: &str| app.replace("  - kong.kong.serviceaccount.identity.linkerd.cluster.local", list);
        let quiet = identities(
            "  - \"*.kong.serviceaccount.identity.linkerd.cluster.local\"\n  - kong-controller.kong.serviceaccount.identity.linkerd.cluster.local",
        );
        let principal = found(&lint(&quiet, opted_out, Mesh::Linkerd), "authz-principal-unknown");
        assert_eq!(principal.len(), 1, "only the identityRef to `kong`: {principal:?}");
        let domain = identities("  - kong.kong.serviceaccount.identity.linkerd.acme.internal");
        let principal = found(&lint(&domain, opted_out, Mesh::Linkerd), "authz-principal-unknown");
        assert!(
            principal
                .iter()
                .any(|d| d.help.as_deref()
                    == Some("use `kong-gateway.kong.serviceaccount.identity.linkerd.acme.internal`")),
            "{principal:?}"
        );

        // Skip ports: the pod's own annotation wins over its namespace's; a side without the
        // proxy has nothing to skip; Istio reads single ports only.
        let skip = "mesh-proxy-skips-kong-hop";
        let meshed = "gateway:\n  podAnnotations:\n    linkerd.io/inject: ingress\n    config.linkerd.io/skip-outbound-ports: \"443\"\n";
        let kong_ns_skips = app.replace(
            "  name: kong\n---",
            "  name: kong\n  annotations: {config.linkerd.io/skip-outbound-ports: \"80\"}\n---",
        );
        assert_ne!(kong_ns_skips, app);
        assert!(found(&lint(&kong_ns_skips, meshed, Mesh::Linkerd), skip).is_empty(), "Kong's own value wins");
        let no_own = "gateway:\n  podAnnotations:\n    linkerd.io/inject: ingress\n";
        assert_eq!(found(&lint(&kong_ns_skips, no_own, Mesh::Linkerd), skip).len(), 1, "the namespace's applies");
        let leftover = "gateway:\n  podAnnotations:\n    linkerd.io/inject: disabled\n    config.linkerd.io/skip-outbound-ports: \"80\"\n";
        assert!(found(&lint(&app, leftover, Mesh::Linkerd), skip).is_empty(), "no proxy, nothing skipped");
        let istio = "gateway:\n  podLabels:\n    sidecar.istio.io/inject: \"true\"\n  podAnnotations:\n    traffic.sidecar.istio.io/excludeOutboundPorts: \"70-90\"\n";
        assert!(found(&lint(&app, istio, Mesh::Istio), skip).is_empty(), "Istio takes no ranges");
        let number = "gateway:\n  podAnnotations:\n    linkerd.io/inject: ingress\n    config.linkerd.io/skip-outbound-ports: 80\n";
        assert_eq!(found(&lint(&app, number, Mesh::Linkerd), skip).len(), 1, "an unquoted port counts");
    }

    /// A values file silences a rule for itself with a comment line (values carry no
    /// annotations); a misspelt rule in that comment is said, as in the annotation.
    #[test]
    fn a_values_file_silences_rules_for_itself_by_comment() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("cm.yaml");
        std::fs::write(&manifest, CONFIGMAP).unwrap();
        let values = dir.path().join("kong.yaml");
        let lint = |text: &str| {
            std::fs::write(&values, text).unwrap();
            let inputs = Inputs {
                paths: vec![manifest.clone()],
                values: vec![("kong/ingress".into(), values.clone())],
                ..Inputs::default()
            };
            run(&catalog(), &inputs)
        };
        let label = "gateway:\n  podLabels:\n    sidecar.istio.io/inject: true\n";
        let codes = |o: &Outcome| o.findings.iter().map(|d| d.code.clone()).collect::<Vec<_>>();
        assert!(codes(&lint(label)).contains(&"kong-values-label-type".to_owned()));
        let silenced = lint(&format!("# lint.kme2e.dev/ignore: kong-values-label-type\n{label}"));
        assert!(!codes(&silenced).contains(&"kong-values-label-type".to_owned()), "{:?}", silenced.findings);
        assert_eq!(silenced.suppressed.get("kong-values-label-type"), Some(&1));
        let reasoned = lint(&format!("# lint.kme2e.dev/ignore: kong-values-label-type # quoted by our CD\n{label}"));
        assert!(!codes(&reasoned).contains(&"kong-values-label-type".to_owned()), "a reason may follow");
        let misspelt = lint(&format!("# lint.kme2e.dev/ignore: kong-values-label-typo\n{label}"));
        let said = misspelt.findings.iter().find(|d| d.code == "ignore-unknown-rule").expect("said");
        assert_eq!((said.position.line, said.severity), (1, Severity::Warning));
        assert!(said.help.as_deref().unwrap_or_default().contains("did you mean `kong-values-label-type`"));
        assert!(codes(&misspelt).contains(&"kong-values-label-type".to_owned()), "not silenced");
    }

    /// The same annotation is an error where it is the only opt-in (`istio-annotation-opt-in`)
    /// and a warning where the namespace label injects anyway.
    #[test]
    fn a_leftover_injection_annotation_in_an_injected_namespace_is_a_warning() {
        let catalog = catalog();
        let severity_in = |case: &str| {
            let dir = catalog.project.fixtures_dir().join("pitfalls").join(case);
            let outcome = run(&catalog, &Inputs { paths: vec![dir], mesh: Some(Mesh::Istio), ..Inputs::default() });
            let found: Vec<Severity> = outcome
                .findings
                .iter()
                .filter(|d| d.code == "istio-inject-annotation-not-label" && d.file.ends_with("workload.yaml"))
                .map(|d| d.severity)
                .collect();
            found
        };
        assert_eq!(severity_in("istio-annotation-leftover"), [Severity::Warning]);
        assert_eq!(severity_in("istio-annotation-opt-in"), [Severity::Error]);
    }

    #[test]
    fn pitfall_cases_yield_exactly_their_expected_findings() {
        let catalog = catalog();
        let root = catalog.project.fixtures_dir().join("pitfalls");
        let mut cases: Vec<PathBuf> =
            std::fs::read_dir(&root).unwrap().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        cases.sort();
        assert!(cases.len() >= 7, "{cases:?}");
        let mut mismatches = Vec::new();
        for dir in cases {
            let (mesh_line, mut found) = lint_case(&catalog, &dir);
            found.sort();
            let expected_text = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
            let mut expected: Vec<String> =
                expected_text.lines().skip(1).filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
            expected.sort();
            if found != expected {
                let actual = std::iter::once(mesh_line).chain(found).collect::<Vec<_>>().join("\n");
                mismatches.push(format!(
                    "{}:\n--- expected\n{}\n--- actual\n{actual}\n",
                    dir.display(),
                    expected.join("\n")
                ));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn the_project_fixtures_lint_clean_for_every_mesh() {
        let catalog = catalog();
        let mut paths = expand(&catalog, &[catalog.project.fixtures_dir()]).unwrap().files;
        // Pitfalls and the guide's seed configuration are broken on purpose.
        paths.retain(|p| !p.components().any(|c| c.as_os_str() == "pitfalls" || c.as_os_str() == "seed"));
        for mesh in Mesh::ALL {
            let outcome =
                run(&catalog, &Inputs { paths: paths.clone(), mesh: Some(mesh), values: vec![], ..Inputs::default() });
            // Linted as plain manifests, without the harness's Kong: notes on what lint could not
            // know are expected, nothing more.
            let all: Vec<String> =
                outcome.findings.iter().filter(|d| d.severity != Severity::Note).map(ToString::to_string).collect();
            assert!(all.is_empty(), "{mesh}:\n{}", all.join("\n\n"));
        }
    }

    #[test]
    fn expected_findings_are_accepted_and_stale_expectations_are_errors() {
        let catalog = catalog();
        let dir = tempfile::tempdir().unwrap();
        let scenario = |name: &str, expect: &str| {
            let file = dir.path().join(format!("{name}.yaml"));
            let text = format!(
                "name: {name}\nsummary: s\nmeshes: [istio]\ncovers: [seed-as-written]\nfixtures: [seed/istio/backend-with-mtls.yaml, seed/istio/kong-to-mesh.yaml]\nlint:\n  expect: [{expect}]\nsteps:\n  - http: {{request: {{path: /}}, expect: {{status: 502}}}}\n"
            );
            std::fs::write(&file, text).unwrap();
            file
        };
        let lint = |file: PathBuf| run(&catalog, &Inputs { paths: vec![file], ..Inputs::default() });
        let all = lint(scenario("seed-all", "istio-strict-kong-unmeshed, api-version-deprecated"));
        assert!(all.findings.is_empty(), "{:?}", all.findings);
        let some = lint(scenario("seed-some", "istio-strict-kong-unmeshed"));
        assert_eq!(some.findings.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["api-version-deprecated"]);
        let stale =
            lint(scenario("seed-stale", "istio-strict-kong-unmeshed, api-version-deprecated, smi-trafficsplit"));
        assert_eq!(stale.exit_code(), 1);
        assert!(stale.findings[0].message.contains("no longer produce one"), "{:?}", stale.findings);
        let unknown =
            lint(scenario("seed-unknown", "istio-strict-kong-unmeshed, api-version-deprecated, no-such-rule"));
        assert!(unknown.findings[0].message.contains("names no lint rule `no-such-rule`"));
    }

    #[test]
    fn findings_render_with_location_fix_and_evidence() {
        let catalog = catalog();
        let dir = catalog.project.fixtures_dir().join("pitfalls/service-upstream-wrong-key");
        let outcome = run(&catalog, &Inputs { paths: vec![dir], mesh: None, values: vec![], ..Inputs::default() });
        let text: Vec<String> = outcome.findings.iter().map(ToString::to_string).collect();
        insta::assert_snapshot!("service_upstream_wrong_key", text.join("\n\n"));
        insta::assert_json_snapshot!("service_upstream_wrong_key_json", outcome.findings);
    }
}
