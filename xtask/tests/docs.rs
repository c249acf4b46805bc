//! The documented examples, run as written: a reader who pastes one gets what the page says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kme2e(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kme2e")).args(args).current_dir(dir).output().expect("kme2e runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The fenced blocks of `lang` in a Markdown file, in order.
fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_end() == fence => current = Some(String::new()),
            Some(block) if line.trim_end() == "```" => {
                out.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

/// A project as `Test your own setup` makes one: the checkout's pins and fixtures, no scenarios.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(checkout().join("versions.toml"), dir.path().join("versions.toml")).unwrap();
    copy_tree(&checkout().join("fixtures"), &dir.path().join("fixtures"));
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Indents every line of `block` by `by` spaces.
fn indent(block: &str, by: usize) -> String {
    block.lines().map(|l| format!("{:by$}{l}\n", "")).collect()
}

/// docs/scenario-format.md: the scenario lints clean as pasted, and so do the request and
/// expectation reference (as one more step of it) and the mutants (as its mutants); the plan
/// of the whole lists the mutant. Each is the page's text, not a copy kept in the test.
#[test]
fn the_scenario_format_examples_lint_as_written() {
    let page = std::fs::read_to_string(checkout().join("docs/scenario-format.md")).unwrap();
    let yaml = blocks(&page, "yaml");
    let find = |first: &str| {
        yaml.iter().find(|b| b.starts_with(first)).unwrap_or_else(|| panic!("a yaml block starting `{first}`"))
    };
    let scenario = find("name: ");
    let reference = find("request:\n");
    let mutants = find("mutants:\n");
    let load = find("- load:\n");
    assert_eq!(yaml.len(), 4, "a new example on the page needs its place in this test");
    let name = scenario.lines().next().unwrap().trim_start_matches("name:").split('#').next().unwrap().trim();

    let project = project();
    let file = project.path().join("scenarios").join(format!("{name}.yaml"));
    let lint_clean = |content: &str, what: &str| {
        std::fs::write(&file, content).unwrap();
        let out = kme2e(project.path(), &["lint"]);
        assert_eq!(out.status.code(), Some(0), "{what} does not lint as written:\n{}", text(&out));
        assert!(out.stdout.is_empty(), "{what}: findings\n{}", text(&out));
    };
    lint_clean(scenario, "the scenario");

    // Its keys given as alternatives in comments (`# jwt: valid   # or expired: ...`, a commented
    // key with an explanation of its own) are keys of the format too.
    let uncommented: String = reference
        .lines()
        .map(|l| {
            let alternative = l
                .trim_start()
                .strip_prefix("# ")
                .filter(|r| r.split_once(':').is_some_and(|(k, v)| !k.contains(' ') && v.contains(" # ")));
            alternative.map_or(l.to_owned(), |rest| format!("{}{rest}", &l[..l.len() - l.trim_start().len()]))
        })
        .map(|l| l + "\n")
        .collect();
    assert!(uncommented.contains("  jwt: valid") && uncommented.contains("  refused: true"), "{uncommented}");
    let step: harness::model::Step = harness::yaml::from_str(&format!("http:\n{}", indent(&uncommented, 2)))
        .unwrap_or_else(|e| panic!("the reference's keys parse as a step: {e}"));
    assert!(matches!(step, harness::model::Step::Http(_)));

    let step = format!("  - http:\n{}", indent(reference, 6));
    let with_step = scenario.replacen("snapshot:", &format!("{step}snapshot:"), 1);
    assert_ne!(&with_step, scenario, "the scenario ends its steps with `snapshot:`");
    lint_clean(&with_step, "the request and expectation reference");

    // The load example as one more step; restarting Kong makes the scenario one that runs alone.
    let with_load = scenario.replacen("snapshot:", &format!("{}snapshot:", indent(load, 2)), 1).replacen(
        "covers:",
        "exclusive: true\ncovers:",
        1,
    );
    lint_clean(&with_load, "the load example");
    let out = kme2e(project.path(), &["plan", "istio"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("load GET /echo/load at 20/s"), "{}", text(&out));

    lint_clean(&format!("{scenario}{mutants}"), "the mutants example");
    let out = kme2e(project.path(), &["plan", "istio"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mutant = mutants.lines().find_map(|l| l.trim().strip_prefix("- name: ")).unwrap();
    let mutant = mutant.split('#').next().unwrap().trim();
    assert!(String::from_utf8_lossy(&out.stdout).contains(mutant), "{}", text(&out));
}

/// docs/transcripts.md: the format's example replays to the verdict it states.
#[test]
fn the_transcript_example_replays_as_written() {
    let page = std::fs::read_to_string(checkout().join("docs/transcripts.md")).unwrap();
    let yaml = blocks(&page, "yaml");
    assert_eq!(yaml.len(), 1, "a new example on the page needs its place in this test");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.yaml"), &yaml[0]).unwrap();
    let out = kme2e(dir.path(), &["replay", "example.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// README, "Test your own setup": every shell block between the walkthrough markers runs as
/// written, in order, in one shell started in this checkout, with `kme2e` on PATH and a home
/// of its own; then the Action's lint step runs with the workflow's inputs on the repository
/// the walkthrough made.
#[test]
fn the_readmes_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(checkout().join("README.md")).unwrap();
    let (_, rest) = readme.split_once("<!-- walkthrough: begin -->").expect("the walkthrough's begin marker");
    let (walkthrough, _) = rest.split_once("<!-- walkthrough: end -->").expect("the walkthrough's end marker");
    let script = blocks(walkthrough, "sh").join("\n");
    assert!(script.contains("kme2e repro new") && script.contains("kme2e plan"), "{script}");

    let home = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_kme2e")).parent().unwrap().to_owned();
    let path =
        std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())))
            .unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(checkout())
        .env("HOME", home.path())
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "the walkthrough stopped:\n{}", text(&out));
    let shop = home.path().join("shop");
    let log = text(&out);
    // Each of the three lints (the repository, the project, the bundle) is clean: no finding.
    assert_eq!(log.matches("lint: clean").count(), 3, "{log}");
    assert!(!log.contains("warning[") && !log.contains("error["), "{log}");
    // The layering is shown, the image pinned, the bundle written and planned.
    assert!(log.contains("(yours, layered in this order: later wins)"), "{log}");
    assert!(log.contains("ghcr.io/acme/orders:1.4.2"), "the pinned image is preloaded: {log}");
    assert!(log.contains("team: shop"), "{log}");
    assert!(shop.join("e2e/bug.yaml").is_file() && shop.join("e2e/plan/replay.sh").is_file());
    assert!(log.contains("scenario my-bug (scenarios/my-bug.yaml)"), "the bundle is planned: {log}");
    assert!(log.contains("expected: step 2 fails with `is not 200`"), "{log}");

    // What step 1 says of the guides' way: the injection switch as a pod annotation stops lint
    // at that line.
    let values = std::fs::read_to_string(shop.join("helm/kong-values.yaml")).unwrap();
    let as_annotation =
        values.replace("  podLabels:\n    team: shop\n", "  podLabels:\n    team: shop\n  podAnnotations:\n");
    assert_ne!(as_annotation, values, "the walkthrough's values keep their shape");
    std::fs::write(shop.join("helm/guide-values.yaml"), &as_annotation).unwrap();
    let guide = Command::new(env!("CARGO_BIN_EXE_kme2e"))
        .args(["lint", "deploy/", "--values", "kong/ingress=helm/guide-values.yaml"])
        .current_dir(&shop)
        .output()
        .unwrap();
    assert_eq!(guide.status.code(), Some(1), "{}", text(&guide));
    assert!(
        String::from_utf8_lossy(&guide.stdout).contains("error[istio-inject-annotation-not-label]"),
        "{}",
        text(&guide)
    );

    // The project holds only versions.toml of the checkout's files: a Linkerd bundle takes the
    // stack's own manifests (Kong's l5d-dst-override guard) built into kme2e.
    let linkerd = Command::new(env!("CARGO_BIN_EXE_kme2e"))
        .args(["repro", "new", "--mesh", "linkerd", "--manifests", "../deploy", "--request", "GET /orders"])
        .args(["--host", "shop.example.com", "--expect-status", "200", "--out", "bug-linkerd.yaml"])
        .current_dir(shop.join("e2e"))
        .output()
        .unwrap();
    assert_eq!(linkerd.status.code(), Some(0), "{}", text(&linkerd));
    let bundle = std::fs::read_to_string(shop.join("e2e/bug-linkerd.yaml")).unwrap();
    assert!(bundle.contains("linkerd/kong-ingress-guard.yaml"), "{bundle}");

    // The workflow's inputs are the Action's, and its lint step passes on this repository.
    let workflow = blocks(&readme, "yaml").into_iter().find(|b| b.contains("uses: OWNER/kong-mesh-e2e@")).unwrap();
    let workflow: serde_json::Value = harness::yaml::from_str(&workflow).unwrap();
    let step = workflow["jobs"]["kme2e"]["steps"].as_array().unwrap().iter().find(|s| s["with"].is_object()).unwrap();
    let action: serde_json::Value =
        harness::yaml::from_str(&std::fs::read_to_string(checkout().join("action.yml")).unwrap()).unwrap();
    let input = |name: &str| step["with"][name].as_str().unwrap_or_default().to_owned();
    for key in step["with"].as_object().unwrap().keys() {
        assert!(action["inputs"][key].is_object(), "the workflow's `{key}` is no input of action.yml");
    }
    let outputs = shop.join("github-output");
    let lint = Command::new("bash")
        .arg(checkout().join("action/lint.sh"))
        .current_dir(&shop)
        .env("KME2E", env!("CARGO_BIN_EXE_kme2e"))
        .env("KME2E_PATHS", input("paths"))
        .env("KME2E_MESH", input("mesh"))
        .env("KME2E_VALUES", input("values"))
        .env("KME2E_SARIF", "kme2e-lint.sarif")
        .env("GITHUB_OUTPUT", &outputs)
        .output()
        .unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", text(&lint));
    assert_eq!(std::fs::read_to_string(&outputs).unwrap().trim(), "exit-code=0", "{}", text(&lint));
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shop.join("kme2e-lint.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["runs"][0]["results"], serde_json::json!([]), "{sarif}");
}
