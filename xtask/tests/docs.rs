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
    assert_eq!(yaml.len(), 3, "a new example on the page needs its place in this test");
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

    let step = format!("  - http:\n{}", indent(reference, 6));
    let with_step = scenario.replacen("snapshot:", &format!("{step}snapshot:"), 1);
    assert_ne!(&with_step, scenario, "the scenario ends its steps with `snapshot:`");
    lint_clean(&with_step, "the request and expectation reference");

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
