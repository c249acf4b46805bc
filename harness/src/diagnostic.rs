//! One located message about an input file, rendered in the manner of rustc.
//!
//! Scenario load errors and (later) lint findings both end up here so a user
//! sees one format: what is wrong, where (file:line:column), which field, and
//! what to do about it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// What lint did not check or assumed (never changes the exit code).
    Note,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A 1-based position in a text file. Line 0 means "the file as a whole".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    pub const WHOLE_FILE: Position = Position { line: 0, column: 0 };

    pub fn new(line: u32, column: u32) -> Self {
        Position { line, column }
    }

    /// The position of a byte offset in `text`, columns counted in characters.
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text.as_bytes()[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() as u32 + 1;
        let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() as u32 + 1;
        Position { line, column }
    }
}

/// A located message. `Display` renders it for a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable identifier (a lint rule id, or a load error class).
    #[serde(rename = "rule")]
    pub code: String,
    pub message: String,
    pub file: PathBuf,
    #[serde(flatten)]
    pub position: Position,
    /// The field path inside the document, e.g. `steps[2].http.expect.status`; `null` in JSON
    /// when the finding is about the whole file.
    pub field: Option<String>,
    /// What to do about it.
    #[serde(rename = "fix")]
    pub help: Option<String>,
    /// A link to the upstream source that shows why this is a problem.
    pub evidence: Option<String>,
    /// The offending source line, for the rendered snippet. Never contains a newline.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &str, file: &Path, position: Position, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code: code.to_owned(),
            message: message.into(),
            file: file.to_owned(),
            position,
            field: None,
            help: None,
            evidence: None,
            source_line: None,
        }
    }

    /// A note: something lint skipped or assumed, said once.
    pub fn note(code: &str, file: &Path, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Note, ..Diagnostic::error(code, file, Position::WHOLE_FILE, message) }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Attach the source line the position points at, so the rendering can show it.
    pub fn with_source(mut self, text: &str) -> Self {
        if self.position.line > 0 {
            self.source_line = text
                .lines()
                .nth(self.position.line as usize - 1)
                .map(|l| truncate_chars(l.trim_end_matches('\r'), 200));
        }
        self
    }

    /// `file:line:column`, or just the file when the position is unknown.
    pub fn location(&self) -> String {
        if self.position.line == 0 {
            self.file.display().to_string()
        } else {
            format!("{}:{}:{}", self.file.display(), self.position.line, self.position.column)
        }
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// `text` with every control character written as an escape (`\u{1b}`, `\n`), so quoted input
/// can neither drive a terminal nor start a line of its own: a line beginning `::error` is a
/// GitHub Actions workflow command, and input text must never be able to write one.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// Multi-line text for a terminal or CI log: control characters other than newlines escaped,
/// and a line that would read as a GitHub Actions workflow command (`::error ...`, which the
/// runner recognises after leading whitespace too) shown behind `| `.
pub fn escape_for_log(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            let line = escape_controls(line);
            if line.trim_start().starts_with("::") { format!("| {line}") } else { line }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every part may quote input: each is escaped, so the rendering's own line structure is
        // the only one there is.
        let safe = escape_controls;
        writeln!(f, "{}[{}]: {}", self.severity, safe(&self.code), safe(&self.message))?;
        write!(f, "  --> {}", safe(&self.location()))?;
        if let Some(line) = &self.source_line {
            let number = self.position.line.to_string();
            let pad = " ".repeat(number.len());
            // Printable form: control characters would garble a terminal.
            let shown: String =
                line.chars().map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c }).collect();
            let caret_at = (self.position.column as usize).saturating_sub(1).min(shown.chars().count());
            let lead: String = shown.chars().take(caret_at).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            write!(f, "\n{pad} |\n{number} | {shown}\n{pad} | {lead}^")?;
        }
        if let Some(field) = &self.field {
            write!(f, "\n  = field: {}", safe(field))?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {}", safe(help))?;
        }
        if let Some(evidence) = &self.evidence {
            write!(f, "\n  = evidence: {}", safe(evidence))?;
        }
        Ok(())
    }
}

/// The closest candidate to a misspelt `word`, if one is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= (c.chars().count().max(3) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_character_columns() {
        let text = "a: 1\nbé: x\n";
        assert_eq!(Position::of_offset(text, 0), Position::new(1, 1));
        assert_eq!(Position::of_offset(text, 5), Position::new(2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(Position::of_offset(text, 9), Position::new(2, 4));
    }

    #[test]
    fn closest_suggests_typos_but_not_unrelated_words() {
        let keys = ["name", "summary", "steps", "fixtures"];
        assert_eq!(closest("stpes", keys), Some("steps"));
        assert_eq!(closest("fixture", keys), Some("fixtures"));
        assert_eq!(closest("colour", keys), None);
    }

    #[test]
    fn quoted_input_cannot_drive_a_terminal_or_write_a_workflow_command() {
        let hostile = "x\n::error file=a::pwned\u{1b}[2J";
        let d = Diagnostic::error("schema", Path::new("evil\n::warning::x.yaml"), Position::new(1, 1), hostile)
            .with_field(hostile)
            .with_help(hostile)
            .with_source("a: \u{1b}[31mred");
        let text = d.to_string();
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.lines().all(|l| !l.trim_start().starts_with("::")), "{text}");
        assert!(text.contains("x\\n::error file=a::pwned\\u{1b}[2J"), "{text}");
        let log = escape_for_log("no scenario `x`\n  ::error::pwned\u{7}\nok");
        assert_eq!(log, "no scenario `x`\n|   ::error::pwned\\u{7}\nok");
    }

    #[test]
    fn rendering_points_at_the_column() {
        let d = Diagnostic::error("schema", Path::new("s.yaml"), Position::new(2, 3), "unknown field `stpes`")
            .with_source("name: x\n  stpes: []\n")
            .with_field("stpes")
            .with_help("did you mean `steps`?");
        assert_eq!(
            d.to_string(),
            "error[schema]: unknown field `stpes`\n  --> s.yaml:2:3\n  |\n2 |   stpes: []\n  |   ^\n  = field: stpes\n  = help: did you mean `steps`?"
        );
    }
}
