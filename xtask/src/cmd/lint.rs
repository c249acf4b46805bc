//! `lint`: scenarios, manifests and Helm values checked without a cluster.

use anyhow::{Context, Result};

use crate::args::{LintArgs, LintFormat};
use crate::{catalog, emit, project};

pub fn run(args: LintArgs) -> Result<u8> {
    if args.list_rules {
        return Ok(list_lint_rules());
    }
    if let Some(rule) = args.explain {
        return explain_rule(&rule);
    }
    // `-`: standard input (`helm template ... | kme2e lint -`), read into a file of its own and
    // named `<stdin>` in the findings.
    let mut paths = args.paths;
    let stdin = if paths.iter().any(|p| p.as_os_str() == "-") {
        let dir = tempfile::tempdir().context("cannot create a temporary directory for standard input")?;
        let file = dir.path().join("stdin.yaml");
        let mut text = Vec::new();
        // One byte over the reader's bound, so the reader reports the limit instead of a cut file.
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin(), harness::yaml::MAX_FILE_BYTES + 1),
            &mut text,
        )
        .context("cannot read standard input")?;
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
        for p in paths.iter_mut().filter(|p| p.as_os_str() == "-") {
            p.clone_from(&file);
        }
        Some((dir, file))
    } else {
        None
    };
    let inputs = harness::lint::Inputs {
        paths,
        mesh: args.mesh,
        values: args.values,
        kong_namespace: args.kong_namespace,
        kong_release: args.kong_release,
        allow: args.allow,
        deny_warnings: args.deny_warnings,
        kubernetes_version: args.kubernetes_version,
    };
    lint(&inputs, args.format, stdin.as_ref().map(|(_, file)| file.as_path()))
}

fn list_lint_rules() -> u8 {
    let rules = harness::lint::rules::RULES;
    let width = rules.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in rules {
        out.push_str(&format!("{:<width$}  {:<7}  {}\n", r.id, r.severity.to_string(), r.summary));
    }
    emit(&out);
    0
}

fn explain_rule(rule: &str) -> Result<u8> {
    match harness::lint::explain(&project(), rule) {
        Some(text) => {
            // Quotes the project's pitfall files.
            emit(&harness::diagnostic::escape_for_log(&text));
            Ok(0)
        }
        None => {
            let ids = harness::lint::rules::RULES.iter().map(|r| r.id);
            let near =
                harness::diagnostic::closest(rule, ids).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
            harness::say_err!(
                "error: no lint rule `{}`{near} (`{} lint --list-rules` lists them)",
                harness::names::printable(rule),
                harness::command_name()
            );
            Ok(2)
        }
    }
}

fn lint(inputs: &harness::lint::Inputs, format: LintFormat, stdin: Option<&std::path::Path>) -> Result<u8> {
    let mut outcome = harness::lint::run(&catalog()?, inputs);
    if let Some(file) = stdin {
        // Findings name the file as given or relative to the project.
        for d in outcome.findings.iter_mut().filter(|d| d.file == file || file.ends_with(&d.file)) {
            d.file = std::path::PathBuf::from("<stdin>");
        }
    }
    match format {
        LintFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&outcome.findings)?)),
        LintFormat::Sarif => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&harness::lint::output::sarif(&outcome.findings, &here()))?
        )),
        LintFormat::Github => emit(&harness::lint::output::github(&outcome.findings, &here())),
        // Findings on standard output, as linters print them (`lint deploy > lint.txt`).
        LintFormat::Text => {
            let text: String = outcome.findings.iter().map(|d| format!("{d}\n\n")).collect();
            emit(&text)
        }
    }
    // The summary goes to stderr in every format.
    let notes = match outcome.notes() {
        0 => String::new(),
        n => format!(", {n} note(s)"),
    };
    let suppressed: usize = outcome.suppressed.values().sum();
    let suppressed = if suppressed == 0 {
        String::new()
    } else {
        // Rule ids as the input's comments wrote them.
        let by_rule: Vec<String> = outcome
            .suppressed
            .iter()
            .map(|(r, n)| format!("{} x{n}", harness::diagnostic::escape_controls(r)))
            .collect();
        format!(", {suppressed} suppressed ({})", by_rule.join(", "))
    };
    let (errors, warnings) = (outcome.errors(), outcome.warnings());
    if outcome.read_nothing {
        harness::say_err!(
            "lint: nothing was read: every YAML file found was skipped (the notes above say what to lint instead)"
        );
    } else if outcome.exit_code() == 2 {
        harness::say_err!(
            "lint: some input could not be read or used (see above); nothing is clean{notes}{suppressed}"
        );
    } else if errors + warnings == 0 {
        harness::say_err!("lint: clean{notes}{suppressed}");
    } else {
        let denied = if inputs.deny_warnings && warnings > 0 { " (warnings denied)" } else { "" };
        harness::say_err!("lint: {errors} error(s), {warnings} warning(s){denied}{notes}{suppressed}");
    }
    Ok(outcome.exit_code())
}

/// The working directory, which CI annotations and code scanning resolve paths against.
fn here() -> std::path::PathBuf {
    std::env::current_dir().unwrap_or_default()
}
