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

/// A character quoted input must not print as itself: control characters (C0, DEL, C1: ESC
/// starts terminal sequences, CR and NEL end lines), the bidirectional controls (U+061C,
/// U+200E/U+200F, U+202A–U+202E, U+2066–U+2069: text that reads otherwise than it is), the other
/// invisible format characters and Unicode's default-ignorable code points (zero-width spaces,
/// joiners, soft hyphen, BOM, variation selectors, tags), the line and paragraph separators, and
/// the noncharacters U+FFFE/U+FFFF (not XML). The runner compares workflow-command prefixes
/// culture-sensitively under ICU, which skips ignorable characters, so an invisible character
/// between the two `#` of `##[` must be shown, not kept.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(u32::from(c),
            0x00AD | 0x034F | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
            | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F | 0x200B..=0x200F | 0x2028..=0x202E
            | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB
            | 0xFFFE..=0xFFFF | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// How the character at `i` of `chars` is shown: itself, or its escape (`\u{1b}`, `\n`,
/// `\u{202e}`). The second `#` of `##[` is shown as `\u{23}`: the Actions runner reads a legacy
/// command `##[name ...]data` anywhere in a line (actions/runner
/// src/Runner.Common/ActionCommand.cs `TryParse`: `message.IndexOf("##[")`, tried by
/// src/Runner.Worker/ActionCommandManager.cs `TryProcessCommand` on every output line after
/// `TryParseV2`, the `::name::` form at the start of a trimmed line), e.g. `##[error]` or
/// `##[stop-commands]token`, which mutes the step's commands until the token comes back.
fn push_shown(out: &mut String, chars: &[char], i: usize) {
    let c = chars[i];
    if is_hidden(c) {
        out.extend(c.escape_default());
    } else if c == '#' && i > 0 && chars[i - 1] == '#' && chars.get(i + 1) == Some(&'[') {
        out.push_str("\\u{23}");
    } else {
        out.push(c);
    }
}

/// `text` with every hidden character written as an escape (`\u{1b}`, `\n`, `\u{202e}`, see
/// [`is_hidden`]) and `##[` broken, so quoted input can neither drive a terminal, reorder what
/// a reader sees, start a line of its own nor write a workflow command: a line beginning
/// `::error` or holding `##[error]` is a GitHub Actions workflow command, and input text must
/// never be able to write one. The one escape for untrusted text within a line of a terminal or
/// log, after the caller's own text; [`escape_for_log`] is the same for whole lines (it also
/// guards a line's start against `::`).
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(|c| is_hidden(c) || c == '#') {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for i in 0..chars.len() {
        push_shown(&mut out, &chars, i);
    }
    out
}

/// Multi-line text for a terminal or CI log: each line through [`escape_controls`] (newlines
/// kept, every other hidden character escaped, `##[` broken), and a line that would read as a
/// GitHub Actions workflow command (`::error ...`, which the runner recognises after leading
/// whitespace too) shown behind `| `.
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
            // Printable form, as every quoted part (tabs kept): hidden characters would garble a
            // terminal or reorder the line. The caret's lead is as wide as what precedes it.
            let chars: Vec<char> = line.chars().collect();
            let caret_at = (self.position.column as usize).saturating_sub(1).min(chars.len());
            let (mut shown, mut lead) = (String::new(), String::new());
            for i in 0..chars.len() {
                let mut piece = String::new();
                if chars[i] == '\t' {
                    piece.push('\t')
                } else {
                    push_shown(&mut piece, &chars, i)
                }
                if i < caret_at {
                    lead.extend(piece.chars().map(|c| if c == '\t' { '\t' } else { ' ' }));
                }
                shown.push_str(&piece);
            }
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

    /// What a line of log output must never hold after escaping: a hidden character, a legacy
    /// `##[` command anywhere, a `::` command at the start of a (trimmed) line.
    fn assert_inert(shown: &str) {
        assert!(!shown.chars().any(|c| is_hidden(c) && c != '\n'), "{shown:?}");
        assert!(!shown.contains("##["), "{shown:?}");
        assert!(shown.lines().all(|l| !l.trim_start().starts_with("::")), "{shown:?}");
    }

    /// Issue 25 items 9, 10 and 13: a bundle's `expected.detail`, keys and file names with
    /// terminal sequences (OSC window title, screen clear), bidi controls, `::error::` lines and
    /// the runner's legacy `##[...]` commands anywhere in a line.
    #[test]
    fn terminal_sequences_bidi_and_both_workflow_command_forms_are_inert() {
        let crafted = [
            "503\u{1b}]0;all green\u{7}\u{1b}[2J\u{1b}[H",
            "ok\n::error file=a.yaml::pwned\n  ::stop-commands::tok",
            "key ##[error file=x.yaml;line=1]forged annotation",
            "fixtures/##[stop-commands]token.yaml",
            "###[warning]x ##[##[debug]y",
            "#\u{200b}#[error]zero width between",
            "#\u{ad}#[error]soft hyphen between",
            "\u{200b}::error::behind a zero-width space",
            "\u{a0}::error::behind a no-break space",
            "admin\u{202e}lmth.exe\u{202c} \u{2066}a\u{2069}\u{2067}b\u{2068}c\u{200e}\u{200f}\u{61c}",
            "line\u{2028}separator\u{85}next\rcarriage",
            "not xml \u{fffe}\u{ffff}",
        ];
        for text in crafted {
            assert_inert(&escape_for_log(text));
            // One line, shown after the caller's own prefix (`error: `, `  --> `).
            let one = escape_controls(text);
            assert!(!one.contains('\n') && !one.contains("##["), "{one:?}");
            assert_inert(&format!("x {one}"));
        }
        assert_eq!(escape_controls("a\u{202e}b\u{2066}c"), "a\\u{202e}b\\u{2066}c");
        assert_eq!(escape_controls("x ##[error]y ###[z"), "x #\\u{23}[error]y ##\\u{23}[z");
        assert_eq!(escape_controls("# heading, #1 and [x]"), "# heading, #1 and [x]", "only `##[` changes");
        assert_eq!(escape_for_log("a\n\u{200b}::error::x"), "a\n\\u{200b}::error::x", "shown, not a command");
        // The rendered diagnostic: every part, the source line too, with the caret still under
        // the column it points at.
        let d = Diagnostic::error("schema", Path::new("a\u{202e}lmth.yaml"), Position::new(1, 4), "key `##[error]x`")
            .with_source("a\u{202e}b: ##[stop-commands]t");
        let text = d.to_string();
        assert_inert(&text);
        assert!(text.contains("a\\u{202e}lmth.yaml:1:4"), "{text}");
        assert!(text.contains("1 | a\\u{202e}b: #\\u{23}[stop-commands]t\n  |           ^"), "{text}");
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
