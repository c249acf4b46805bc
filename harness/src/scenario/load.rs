//! Loading a scenario file: read (bounded), template, parse (strict), validate, all with
//! errors located in the file the user wrote.

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

pub use super::error::LoadError;
use super::fixture::{self, Manifest};
use super::model::{Mesh, Scenario};
use super::template::{self, Rendered, Vars};
use crate::diagnostic::{Diagnostic, Position};
use crate::profile::Profile;
use crate::yaml;

/// Who a scenario is rendered for: the run and the mesh. Offline checks use [`RunContext::offline`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    pub run: String,
    pub mesh: Mesh,
    /// A secret made per run (e.g. the JWT credential's signing key); never reused across runs.
    pub secret: String,
}

impl RunContext {
    pub fn new(run: impl Into<String>, mesh: Mesh) -> Self {
        RunContext { run: run.into(), mesh, secret: random_secret() }
    }

    /// A stable context for checks without a cluster: same inputs, same rendering.
    pub fn offline(mesh: Mesh) -> Self {
        RunContext { run: "offline".into(), mesh, secret: "offline-not-a-secret".into() }
    }
}

/// A throwaway credential for one run, from the OS's CSPRNG.
fn random_secret() -> String {
    crate::names::random_base36(32)
}

/// The most objects one scenario's fixtures may hold.
pub const MAX_OBJECTS: usize = 500;

/// The template variables of scenario `name` in `ctx` under `profile`.
pub fn vars_for(name: &str, ctx: &RunContext, profile: &Profile) -> Vars {
    let mut vars = Vars::new();
    let kong = &profile.versions.kong;
    vars.set("scenario", name)
        .set("run", &ctx.run)
        .set("mesh", ctx.mesh.as_str())
        .set("namespace", namespace_for(name, &ctx.run))
        .set("host", format!("{name}.{}.test", ctx.run))
        .set("kong.namespace", &kong.namespace)
        .set("kong.service_account", &kong.gateway_service_account)
        .set("zipkin.spans_url", profile.versions.tracing.spans_url())
        .set("tracing.otlp_traces_url", profile.versions.tracing.otlp_traces_url())
        .set("jwt.key", format!("e2e-{}", ctx.run))
        .set("jwt.secret", &ctx.secret)
        .set("profile.name", &profile.name)
        .set("profile.kubernetes", &profile.pins.kubernetes)
        .set("profile.mesh_version", profile.pins.mesh_version.as_deref().unwrap_or("none"));
    for (image, reference) in &profile.versions.images {
        vars.set(format!("images.{image}"), reference);
    }
    vars
}

/// `<scenario>-<run>` as a valid DNS label (63 characters): a long scenario name is cut, never
/// the run id, so two runs never share a namespace.
pub fn namespace_for(name: &str, run: &str) -> String {
    let room = 63usize.saturating_sub(run.len() + 1).max(1);
    let mut short: String = name.chars().take(room).collect();
    while short.ends_with('-') {
        short.pop();
    }
    format!("{short}-{run}")
}

/// A scenario as loaded for one mesh and run: the model, its rendered fixtures and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub path: PathBuf,
    /// The file as written, for locating later errors.
    pub source: String,
    pub rendered: Rendered,
    pub scenario: Scenario,
    pub vars: Vars,
}

impl LoadedScenario {
    /// The meshes this scenario runs on.
    pub fn meshes(&self) -> Vec<Mesh> {
        self.scenario.meshes()
    }

    /// Every fixture the scenario applies, in order: the top-level list, then the steps'.
    pub fn fixture_refs(&self) -> impl Iterator<Item = &Spanned<String>> {
        self.scenario.fixtures.iter().chain(self.scenario.steps.iter().flat_map(|s| s.fixtures()))
    }

    /// Every fixture named must be a relative .yaml path to an existing file under `fixtures_dir`.
    pub fn check_fixture_files(&self, fixtures_dir: &Path) -> Result<(), LoadError> {
        let steps = self.scenario.steps.iter().enumerate().flat_map(|(i, s)| {
            s.fixtures().iter().enumerate().map(move |(j, f)| (format!("steps[{i}].{}.fixtures[{j}]", s.kind()), f))
        });
        let all = self.scenario.fixtures.iter().enumerate().map(|(i, f)| (format!("fixtures[{i}]"), f)).chain(steps);
        // One list naming a file twice is a mistake, and repetition must not multiply the work.
        let mut seen = std::collections::BTreeSet::new();
        for (field, reference) in all {
            let list = field.rsplit_once('[').map_or(field.as_str(), |(l, _)| l).to_owned();
            let repeated = !seen.insert((list, reference.value.clone()));
            let problem = repeated
                .then(|| format!("fixture `{}` is named twice in this list", reference.value))
                .or_else(|| fixture_path_problem(&reference.value))
                .or_else(|| {
                    (!fixtures_dir.join(&reference.value).is_file())
                        .then(|| format!("fixture `{}` does not exist under fixtures/", reference.value))
                });
            if let Some(message) = problem {
                let d = Diagnostic::error("fixture", &self.path, self.position_of(reference), message)
                    .with_field(field)
                    .with_source(&self.source)
                    .with_help(suggest_fixture(fixtures_dir, &reference.value));
                return Err(LoadError(Box::new(d)));
            }
        }
        Ok(())
    }

    /// Where a spanned value was written in the source file.
    pub fn position_of<T>(&self, spanned: &Spanned<T>) -> Position {
        let p = Position::new(spanned.referenced.line() as u32, spanned.referenced.column() as u32);
        self.rendered.source_position(p)
    }

    /// Render every fixture file the scenario names (each once), with the scenario's variables.
    /// At most [`MAX_OBJECTS`] objects in all: a scenario is a test, not a cluster's worth of
    /// configuration, and a small input must not expand into unbounded work.
    pub fn render_fixtures(&self, fixtures_dir: &Path) -> Result<Vec<Manifest>, LoadError> {
        let mut out = Vec::new();
        let mut loaded = std::collections::BTreeSet::new();
        for reference in self.fixture_refs() {
            if !loaded.insert(reference.value.as_str()) {
                continue;
            }
            out.extend(fixture::load(&fixtures_dir.join(&reference.value), &self.vars)?);
            if out.len() > MAX_OBJECTS {
                let d = Diagnostic::error(
                    "limit",
                    &self.path,
                    self.position_of(reference),
                    format!("the scenario's fixtures hold more than {MAX_OBJECTS} objects"),
                )
                .with_source(&self.source);
                return Err(LoadError(Box::new(d)));
            }
        }
        Ok(out)
    }
}

impl Scenario {
    pub fn meshes(&self) -> Vec<Mesh> {
        let mut meshes: Vec<Mesh> =
            Mesh::ALL.into_iter().filter(|m| self.meshes.iter().any(|s| s.selects(*m))).collect();
        meshes.dedup();
        meshes
    }
}

/// Load a scenario file for `ctx`: the file's stem names the scenario before it is parsed, so its
/// variables (namespace, host) can be rendered into it.
pub fn load(
    path: &Path,
    fixtures_dir: &Path,
    ctx: &RunContext,
    profile: &Profile,
) -> Result<LoadedScenario, LoadError> {
    let bytes = yaml::read_bytes(path).map_err(|e| LoadError::from_yaml(path, "", None, e))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let scenario = parse_bytes(path, bytes, &vars_for(stem, ctx, profile))?;
    scenario.check_fixture_files(fixtures_dir)?;
    Ok(scenario)
}

/// Parse scenario bytes already in memory; `path` names them in errors and gives the scenario's name.
/// Fixture files are not looked at (see [`LoadedScenario::check_fixture_files`]).
pub fn parse_bytes(path: &Path, bytes: Vec<u8>, vars: &Vars) -> Result<LoadedScenario, LoadError> {
    let source = yaml::text_from_bytes(bytes).map_err(|e| LoadError::from_yaml(path, "", None, e))?;
    parse(path, &source, vars)
}

/// Parse scenario text already in memory (see [`parse_bytes`]).
pub fn parse(path: &Path, source: &str, vars: &Vars) -> Result<LoadedScenario, LoadError> {
    let rendered = template::render(source, vars).map_err(|e| LoadError::from_template(path, source, e))?;
    let scenario: Scenario =
        yaml::from_str(&rendered.text).map_err(|e| LoadError::from_yaml(path, source, Some(&rendered), e))?;
    let located = |s: &Spanned<String>| {
        rendered.source_position(Position::new(s.referenced.line() as u32, s.referenced.column() as u32))
    };

    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let name = &scenario.name.value;
    let kebab = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !kebab || name != stem {
        let mut e = Diagnostic::error(
            "schema",
            path,
            located(&scenario.name),
            format!("scenario name `{name}` does not match its file name `{stem}`"),
        )
        .with_field("name")
        .with_source(source)
        .with_help(format!("name the scenario `{stem}`, or rename the file; names are kebab-case"));
        if !kebab {
            e.message = format!("scenario name `{name}` is not kebab-case (lowercase letters, digits and dashes)");
        }
        return Err(LoadError(Box::new(e)));
    }

    Ok(LoadedScenario { path: path.to_owned(), source: source.to_owned(), rendered, scenario, vars: vars.clone() })
}

/// Fixture paths are relative, inside fixtures/, and YAML.
fn fixture_path_problem(p: &str) -> Option<String> {
    let path = Path::new(p);
    if path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Some(format!("fixture path `{p}` must be relative to fixtures/ and stay inside it"));
    }
    if !(p.ends_with(".yaml") || p.ends_with(".yml")) {
        return Some(format!("fixture `{p}` is not a .yaml file"));
    }
    None
}

fn suggest_fixture(fixtures_dir: &Path, wanted: &str) -> String {
    let mut known = Vec::new();
    collect_yaml(fixtures_dir, fixtures_dir, &mut known);
    match crate::diagnostic::closest(wanted, known.iter().map(String::as_str)) {
        Some(near) => format!("did you mean `{near}`?"),
        None => "fixture paths are relative to the project's fixtures/ directory".to_owned(),
    }
}

fn collect_yaml(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        // Real directories only: a link can loop, or lead out of fixtures/.
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            collect_yaml(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Versions;

    const GOOD: &str = "name: case
summary: A scenario that loads.
meshes: [istio]
covers: [ingress]
fixtures: [base/echo.yaml]
steps:
  - http:
      request: {path: /}
      expect: {status: 200}
";

    fn vars() -> Vars {
        let versions = Versions::parse(crate::profile::tests::MINIMAL).unwrap();
        let profile = versions.profile("istio", Path::new("versions.toml")).unwrap();
        vars_for("case", &RunContext::offline(Mesh::Istio), &profile)
    }

    fn fixtures() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("base")).unwrap();
        std::fs::write(dir.path().join("base/echo.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
            .unwrap();
        dir
    }

    /// The rendered error for `bytes` loaded as `scenarios/case.yaml`.
    fn error_for(bytes: impl Into<Vec<u8>>) -> String {
        let dir = fixtures();
        let path = Path::new("scenarios/case.yaml");
        let result = parse_bytes(path, bytes.into(), &vars()).and_then(|s| s.check_fixture_files(dir.path()));
        match result {
            Ok(()) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    /// A load's budget and shape are checked where written: a budget that lets every request
    /// fail, a rate out of range, a load inside a load, an unknown restart target.
    #[test]
    fn load_steps_that_cannot_fail_or_run_are_refused() {
        let load = |body: &str| {
            GOOD.replace(
                "  - http:\n      request: {path: /}\n      expect: {status: 200}\n",
                &format!("  - load:\n      request: {{path: /}}\n{body}"),
            )
        };
        let ok =
            "      rate: 20\n      budget: {errors: 0.01, outage: 2s}\n      during: [{restart: {target: kong}}]\n";
        let path = Path::new("scenarios/case.yaml");
        parse_bytes(path, load(ok).into_bytes(), &vars()).unwrap();
        let err = error_for(load(&ok.replace("errors: 0.01", "errors: 1")));
        assert!(err.contains("1 allows every request to fail"), "{err}");
        assert!(err.contains("case.yaml:10:"), "located: {err}");
        assert!(error_for(load(&ok.replace("rate: 20", "rate: 0"))).contains("rate"));
        let nested = ok.replace(
            "[{restart: {target: kong}}]",
            "[{load: {request: {path: /}, rate: 1, budget: {errors: 0, outage: 1s}}}]",
        );
        assert!(error_for(load(&nested)).contains("not `load`"));
        // Only disruptions: a step checked offline where a scenario lists it is not hidden here.
        let hidden = ok.replace(
            "[{restart: {target: kong}}]",
            "[{wait: {resource: {apiVersion: v1, kind: Secret, name: s, namespace: kong}, condition: exists}}]",
        );
        assert!(error_for(load(&hidden)).contains("not `wait`: put other steps before or after the load"));
        let err = error_for(load(&ok.replace("target: kong", "target: {workload: {kind: Pod, name: x}}")));
        assert!(err.contains("unknown variant `Pod`"), "{err}");
    }

    /// The run id survives any scenario name: parallel runs never share a namespace.
    #[test]
    fn namespaces_keep_the_whole_run_id() {
        let run = "rabc123xyz789q";
        let long = "a-very-long-scenario-name-that-goes-on-and-on-past-sixty-three-x";
        let ns = namespace_for(long, run);
        assert!(ns.len() <= 63 && ns.ends_with(&format!("-{run}")), "{ns}");
        assert_eq!(crate::names::dns1123_label(&ns), Ok(()));
        assert_ne!(namespace_for(long, "r1"), namespace_for(long, "r2"));
        assert_eq!(namespace_for("ingress-basic", "r1"), "ingress-basic-r1");
    }

    #[test]
    fn a_good_scenario_loads() {
        let dir = fixtures();
        let s = parse(Path::new("scenarios/case.yaml"), GOOD, &vars()).unwrap();
        s.check_fixture_files(dir.path()).unwrap();
        assert_eq!(s.meshes(), [Mesh::Istio]);
        assert_eq!(s.render_fixtures(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn templates_resolve_inside_the_scenario() {
        let text = GOOD.replace("request: {path: /}", "request: {path: /, host: \"{{ host }}\"}");
        let s = parse(Path::new("scenarios/case.yaml"), &text, &vars()).unwrap();
        let super::super::model::Step::Http(http) = &s.scenario.steps[0] else { panic!("an http step") };
        assert_eq!(http.request.host.as_deref(), Some("case.offline.test"));
    }

    /// GOOD with an expect-resource step whose free-form `match` holds `body` (indented by 8).
    fn expect_resource_matching(body: &str) -> String {
        let step = format!(
            "  - expect-resource:\n      resource: {{apiVersion: v1, kind: Service, name: echo}}\n      match:\n{body}"
        );
        GOOD.replace("  - http:\n      request: {path: /}\n      expect: {status: 200}\n", &step)
    }

    /// Mutations of a valid file (bytes flipped, cut, duplicated) must give a value or an error, never a panic.
    #[test]
    fn mutated_input_never_panics() {
        let base = GOOD.as_bytes();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let mut bytes = base.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % bytes.len();
                match next() % 4 {
                    0 => bytes[i] = next() as u8,
                    1 => bytes.truncate(i.max(1)),
                    2 => bytes.insert(i, b"{}[]:&*!|>-#\"\n "[(next() % 14) as usize]),
                    _ => {
                        let tail = bytes[i..].to_vec();
                        bytes.extend_from_slice(&tail);
                    }
                }
            }
            let _outcome = parse_bytes(Path::new("scenarios/case.yaml"), bytes, &vars());
        }
    }

    macro_rules! malformed {
        ($($name:ident: $input:expr;)*) => {$(
            #[test]
            fn $name() {
                insta::assert_snapshot!(stringify!($name), error_for($input));
            }
        )*};
    }

    malformed! {
        syntax_error: GOOD.replace("meshes: [istio]", "meshes: [istio");
        wrong_type: GOOD.replace("expect: {status: 200}", "expect: {status: 200}\n      converge: {passes: three}");
        unknown_key_with_suggestion: GOOD.replace("steps:", "stpes:");
        unknown_step_kind: GOOD.replace("  - http:", "  - htp:");
        unknown_key_in_a_step: GOOD.replace("expect: {status: 200}", "expect: {stauts: 200}");
        missing_required_field: GOOD.replace("summary: A scenario that loads.\n", "");
        bad_template_variable: GOOD.replace("path: /}", "path: \"/{{ namepsace }}\"}");
        unterminated_template: GOOD.replace("path: /}", "path: \"/{{ host\"}");
        column_after_a_placeholder: GOOD.replace("request: {path: /}", "request: {host: \"{{ host }}\", pth: /}");
        missing_fixture_file: GOOD.replace("base/echo.yaml", "base/ecoh.yaml");
        fixture_outside_fixtures: GOOD.replace("base/echo.yaml", "../secrets.yaml");
        alias_bomb: {
            let mut bomb = String::from("        a: &a [x,x,x,x,x,x,x,x,x]\n");
            for (n, p) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"]) {
                bomb.push_str(&format!("        {n}: &{n} [{}]\n", vec![format!("*{p}"); 9].join(",")));
            }
            expect_resource_matching(&bomb)
        };
        deep_nesting: expect_resource_matching(&(0..100).map(|i| format!("{}k:\n", "  ".repeat(i + 4))).collect::<String>());
        deep_flow_nesting: expect_resource_matching(&format!("        k: {}", "[".repeat(100_000)));
        empty_file: "\n# nothing here\n";
        non_utf8: b"name: case\nsummary: caf\xe9\n".to_vec();
        binary_garbage: (0u8..=255).cycle().take(4096).collect::<Vec<u8>>();
        huge_file: "# padding\n".repeat(120_000);
        duplicate_key: GOOD.replace("covers: [ingress]", "covers: [ingress]\ncovers: [mtls]");
        name_mismatch: GOOD.replace("name: case", "name: other-case");
        name_not_kebab_case: GOOD.replace("name: case", "name: Case_One");
        unknown_mesh: GOOD.replace("meshes: [istio]", "meshes: [isito]");
        empty_step_list: GOOD.split("steps:").next().unwrap().to_owned() + "steps: []\n";
        split_weights_do_not_sum: GOOD.replace("  - http:\n      request: {path: /}\n      expect: {status: 200}", "  - split:\n      request: {path: /}\n      weights: {v1: 90, v2: 20}");
        bad_mtls_identity: GOOD.replace("expect: {status: 200}", "expect: {mtls: {client: kong-gateway}}");
        bad_duration: GOOD.replace("expect: {status: 200}", "expect: {status: 200}\n      converge: {within: 30}");
        delete_both_targets: GOOD.replace("  - http:\n      request: {path: /}\n      expect: {status: 200}", "  - delete:\n      fixtures: [base/echo.yaml]\n      resource: {apiVersion: v1, kind: Service, name: echo}");
        header_match_form: GOOD.replace("expect: {status: 200}", "expect: {headers: {x-a: {startswith: b}}}");
    }
}
