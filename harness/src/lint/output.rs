//! Lint findings for machines: SARIF 2.1.0 (code scanning) and GitHub Actions workflow
//! commands (annotations on a pull request's files). Text and JSON are `Diagnostic`'s own.

use std::path::Path;

use serde_json::{Value, json};

use super::rules::RULES;
use crate::diagnostic::{Diagnostic, Severity, escape_controls};

/// A SARIF message's text as code scanning shows it: its lines kept, every hidden character in
/// them (terminal sequences, bidi controls such as U+202E in a key or file name) escaped
/// visibly by `diagnostic::escape_controls`.
fn shown_lines(text: &str) -> String {
    text.split('\n').map(escape_controls).collect::<Vec<_>>().join("\n")
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// SARIF `artifactLocation.uri`: a relative reference for paths relative to the project
/// (code scanning resolves them against the checkout), `file://` for absolute ones; every
/// character outside RFC 3986's unreserved set and `/` percent-encoded (a bundle's
/// `bundle.yaml#fixtures/x.yaml` keeps its `#` as `%23`, not as a fragment).
fn uri(file: &Path) -> String {
    let text = file.to_string_lossy().replace('\\', "/");
    let encoded: String = text
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if text.starts_with('/') { format!("file://{encoded}") } else { encoded }
}

/// `file` as annotations and code scanning want it: relative to `base` (the working directory,
/// where CI checks the repository out) when it lies under it, whether the input was given
/// relative or absolute.
fn shown(file: &Path, base: &Path) -> std::path::PathBuf {
    file.strip_prefix(base).map(Path::to_path_buf).unwrap_or_else(|_| file.to_path_buf())
}

/// What a finding class that is no rule means (input problems: a file not read, an object lint
/// cannot use, an unrendered template, ...), for SARIF's rule descriptors.
fn class_summary(code: &str) -> String {
    match code {
        "skipped" => "a file lint did not read, and what to do with it instead".into(),
        "manifest" => "a document that is no Kubernetes object lint can read".into(),
        "helm-template" => "a Helm chart template: lint the rendered output (`helm template`)".into(),
        "schema" | "syntax" | "limit" | "read" | "usage" => format!("an input lint cannot use ({code})"),
        other => format!("an input problem of class `{other}`"),
    }
}

/// One SARIF 2.1.0 log with one run: every rule as a reporting descriptor (and every other
/// finding class that occurs, such as `skipped` or `schema`), every finding as a result with its
/// file relative to `base` when under it; the tool's version as this build's.
/// Format: <https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>.
pub fn sarif(findings: &[Diagnostic], base: &Path) -> Value {
    let mut rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": {"text": r.summary},
                "helpUri": r.evidence,
                "defaultConfiguration": {"level": level(r.severity)},
            })
        })
        .collect();
    let classes: std::collections::BTreeSet<&str> =
        findings.iter().map(|d| d.code.as_str()).filter(|code| RULES.iter().all(|r| r.id != *code)).collect();
    rules.extend(classes.into_iter().map(|code| {
        json!({"id": escape_controls(code), "shortDescription": {"text": class_summary(&escape_controls(code))}})
    }));
    let results: Vec<Value> = findings
        .iter()
        .map(|d| {
            let mut location = json!({"physicalLocation": {"artifactLocation": {"uri": uri(&shown(&d.file, base))}}});
            if d.position.line > 0 {
                location["physicalLocation"]["region"] =
                    json!({"startLine": d.position.line, "startColumn": d.position.column.max(1)});
            }
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str(&format!(" Fix: {help}"));
            }
            json!({
                "ruleId": escape_controls(&d.code),
                "level": level(d.severity),
                "message": {"text": shown_lines(&text)},
                "locations": [location],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kme2e-lint",
                "version": crate::Provenance::this_build().to_string(),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/kong-mesh-e2e/kong-mesh-e2e",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

/// The workflow-command escapes of the Actions runner: data escapes `%`, CR and LF; property
/// values also `:` and `,` (actions/toolkit packages/core/src/command.ts `escapeData`,
/// `escapeProperty`).
fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// One `::error file=...,line=...,col=...,title=...::message` line per finding, the file
/// relative to `base` when under it.
pub fn github(findings: &[Diagnostic], base: &Path) -> String {
    findings
        .iter()
        .map(|d| {
            let command = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "notice",
            };
            // Hidden characters (bidi controls, terminal sequences) in every part are shown as
            // escapes, `##[` broken (`diagnostic::escape_controls`); a file whose name holds one
            // gets its annotation under the name as shown.
            let path = shown(&d.file, base).to_string_lossy().replace('\\', "/");
            let mut properties = vec![format!("file={}", escape_property(&escape_controls(&path)))];
            if d.position.line > 0 {
                properties.push(format!("line={}", d.position.line));
                properties.push(format!("col={}", d.position.column.max(1)));
            }
            properties.push(format!("title={}", escape_property(&escape_controls(&d.code))));
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str(&format!(" (fix: {help})"));
            }
            // Line breaks become the runner's own escapes; other hidden characters are shown.
            let message = escape_controls(&escape_data(&message));
            format!("::{command} {}::{message}\n", properties.join(","))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Position;

    fn finding() -> Diagnostic {
        let mut d = Diagnostic::error(
            "kong-annotation-unknown",
            Path::new("k8s/svc.yaml"),
            Position::new(8, 5),
            "KIC reads no annotation `konghq.com/service-upstream`, 100%\n::error::x",
        )
        .with_help("use `ingress.kubernetes.io/service-upstream: \"true\"`");
        d.severity = Severity::Error;
        d
    }

    #[test]
    fn sarif_has_rules_and_located_results() {
        let log = sarif(
            &[finding(), Diagnostic::note("skipped", Path::new("kustomization.yaml"), "not read")],
            Path::new("/repo"),
        );
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        // Every rule, and each other class that occurs (code scanning wants a descriptor for
        // every `ruleId` it is given).
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), RULES.len() + 1);
        assert_eq!(rules.last().unwrap()["id"], "skipped");
        let ids: std::collections::BTreeSet<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        for result in run["results"].as_array().unwrap() {
            assert!(ids.contains(result["ruleId"].as_str().unwrap()), "{result}");
        }
        assert_eq!(run["tool"]["driver"]["semanticVersion"], env!("CARGO_PKG_VERSION"));
        assert!(run["tool"]["driver"]["version"].as_str().unwrap().starts_with(env!("CARGO_PKG_VERSION")));
        let first = &run["results"][0];
        assert_eq!(first["ruleId"], "kong-annotation-unknown");
        assert_eq!(first["level"], "error");
        assert_eq!(first["locations"][0]["physicalLocation"]["region"]["startLine"], 8);
        assert_eq!(first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "k8s/svc.yaml");
        let note = &run["results"][1];
        assert_eq!(note["level"], "note");
        assert!(note["locations"][0]["physicalLocation"].get("region").is_none(), "a whole file has no region");
        assert_eq!(
            uri(Path::new("/tmp/my bundle.yaml#fixtures/a.yaml")),
            "file:///tmp/my%20bundle.yaml%23fixtures/a.yaml"
        );
    }

    /// Inputs given as absolute paths under the working directory come out as relative ones, as
    /// those given relative do (code scanning and annotations resolve them against the
    /// checkout); paths elsewhere stay absolute.
    #[test]
    fn paths_are_relative_to_the_working_directory_however_given() {
        let mut inside = finding();
        inside.file = Path::new("/repo/k8s/svc.yaml").to_path_buf();
        let mut outside = finding();
        outside.file = Path::new("/elsewhere/svc.yaml").to_path_buf();
        let log = sarif(&[inside.clone(), outside.clone()], Path::new("/repo"));
        let uri_of = |i: usize| {
            log["runs"][0]["results"][i]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].clone()
        };
        assert_eq!((uri_of(0), uri_of(1)), (json!("k8s/svc.yaml"), json!("file:///elsewhere/svc.yaml")));
        let out = github(&[inside, outside], Path::new("/repo"));
        assert!(out.contains("file=k8s/svc.yaml,") && out.contains("file=/elsewhere/svc.yaml,"), "{out}");
    }

    /// Message text cannot end the command or start another one.
    #[test]
    fn github_annotations_are_escaped() {
        let out = github(&[finding()], Path::new("/repo"));
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("::error file=k8s/svc.yaml,line=8,col=5,title=kong-annotation-unknown::"), "{out}");
        assert!(out.contains("100%25%0A::error::x"), "{out}");
    }

    /// Issue 25 items 10 and 13: keys and file names holding bidi controls or the runner's
    /// legacy `##[...]` commands are shown escaped in annotations and SARIF messages.
    #[test]
    fn bidi_controls_and_legacy_commands_are_shown_escaped() {
        let d = Diagnostic::error(
            "schema",
            Path::new("k8s/##[stop-commands]tok/admin\u{202e}lmth.yaml"),
            Position::new(3, 1),
            "unknown key `\u{2066}plugins\u{2069}\u{200f}` ##[error file=x.yaml]forged\n\u{1b}]0;t\u{7}",
        )
        .with_help("remove `##[warning]\u{61c}`");
        let out = github(std::slice::from_ref(&d), Path::new("/repo"));
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.chars().any(|c| crate::diagnostic::is_hidden(c) && c != '\n'), "{out:?}");
        assert!(!out.contains("##["), "{out}");
        assert!(out.starts_with("::error file=k8s/#\\u{23}[stop-commands]tok/admin\\u{202e}lmth.yaml,line=3"), "{out}");
        assert!(
            out.contains("`\\u{2066}plugins\\u{2069}\\u{200f}` #\\u{23}[error file=x.yaml]forged%0A\\u{1b}]0;t\\u{7}")
        );
        let log = sarif(&[d], Path::new("/repo"));
        let text = log["runs"][0]["results"][0]["message"]["text"].as_str().unwrap();
        assert!(!text.chars().any(|c| crate::diagnostic::is_hidden(c) && c != '\n'), "{text:?}");
        assert!(!text.contains("##["), "{text}");
        assert!(text.contains("`\\u{2066}plugins\\u{2069}\\u{200f}`") && text.contains("\n\\u{1b}]0;t"), "{text}");
        assert!(text.ends_with("Fix: remove `#\\u{23}[warning]\\u{61c}`"), "{text}");
        let uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].clone();
        assert_eq!(uri, "k8s/%23%23%5Bstop-commands%5Dtok/admin%E2%80%AElmth.yaml");
    }
}
