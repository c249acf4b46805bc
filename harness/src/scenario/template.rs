//! `{{ name }}` substitution in scenario files and fixtures.
//!
//! Substitution runs on the raw text, before YAML parsing, so a placeholder may
//! sit anywhere a value can (including unquoted). Values never contain a newline,
//! which keeps line numbers of the rendered text equal to those of the source;
//! [`Rendered::source_column`] maps a column on a rendered line back to the
//! source, so parse errors still point at what the user wrote.

use std::collections::BTreeMap;

use crate::diagnostic::{Position, closest};

/// The values a template may use. Names are dotted lowercase words (`namespace`, `images.echo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    pub fn new() -> Self {
        Vars::default()
    }

    /// Set a value. Newlines are replaced by spaces: a value must not shift the lines after it.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let value: String = value.into();
        self.0.insert(name.into(), value.replace(['\n', '\r'], " "));
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// A placeholder that could not be resolved or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub position: Position,
    pub message: String,
    pub help: Option<String>,
}

/// Rendered text plus what is needed to map positions back to the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Per line (0-based) that changed: (rendered column where a substitution ends, column delta).
    shifts: BTreeMap<u32, Vec<(u32, i64)>>,
}

impl Rendered {
    /// Text taken as it is, with no substitution (a user's manifests: `{{ }}` is theirs).
    pub fn verbatim(text: &str) -> Self {
        Rendered { text: text.to_owned(), shifts: BTreeMap::new() }
    }

    /// Map a 1-based column on a rendered line back to the source column.
    pub fn source_column(&self, line: u32, column: u32) -> u32 {
        let Some(shifts) = self.shifts.get(&line) else { return column };
        let delta: i64 = shifts.iter().filter(|(end, _)| *end <= column).map(|(_, d)| d).sum();
        (i64::from(column) - delta).max(1) as u32
    }

    pub fn source_position(&self, rendered: Position) -> Position {
        Position::new(rendered.line, self.source_column(rendered.line, rendered.column))
    }
}

/// Every placeholder name used in `text`, in order, with its position. Stops at the first malformed one.
pub fn placeholders(text: &str) -> Result<Vec<(String, Position)>, TemplateError> {
    find_placeholders(text).map(|p| p.map(|p| (p.name.to_owned(), p.position))).collect()
}

/// The largest rendered text: the size cap of YAML inputs applies after substitution too, so a
/// small file of many placeholders cannot grow into gigabytes.
pub const MAX_RENDERED_BYTES: usize = crate::yaml::MAX_FILE_BYTES as usize;

/// Substitute every `{{ name }}` in `text`. Unknown names are errors naming the closest known one.
/// Linear in the size of the text and of the output; the output is bounded by [`MAX_RENDERED_BYTES`].
pub fn render(text: &str, vars: &Vars) -> Result<Rendered, TemplateError> {
    let mut shifts: BTreeMap<u32, Vec<(u32, i64)>> = BTreeMap::new();
    let mut out = String::with_capacity(text.len().min(MAX_RENDERED_BYTES));
    let mut last = 0usize;
    // Columns of the current line shift as earlier placeholders on it are replaced.
    let mut line_delta: (u32, i64) = (0, 0);
    for placeholder in find_placeholders(text) {
        let Placeholder { start, end, name, position } = placeholder?;
        let value = vars.get(name).ok_or_else(|| unknown(name, position, vars))?;
        if out.len() + (start - last) + value.len() > MAX_RENDERED_BYTES {
            return Err(too_large(position));
        }
        out.push_str(&text[last..start]);
        out.push_str(value);
        last = end;
        if line_delta.0 != position.line {
            line_delta = (position.line, 0);
        }
        let source_width = text[start..end].chars().count() as i64;
        let rendered_width = value.chars().count() as i64;
        let rendered_end = (i64::from(position.column) + line_delta.1 + rendered_width) as u32;
        let delta = rendered_width - source_width;
        line_delta.1 += delta;
        shifts.entry(position.line).or_default().push((rendered_end, delta));
    }
    if out.len() + (text.len() - last) > MAX_RENDERED_BYTES {
        return Err(too_large(Position::of_offset(text, last)));
    }
    out.push_str(&text[last..]);
    Ok(Rendered { text: out, shifts })
}

fn too_large(position: Position) -> TemplateError {
    TemplateError {
        position,
        message: format!(
            "the rendered text is larger than the {} KiB limit for YAML inputs",
            MAX_RENDERED_BYTES / 1024
        ),
        help: Some("placeholders here expand past the size limit; split the file or use fewer placeholders".into()),
    }
}

fn unknown(name: &str, position: Position, vars: &Vars) -> TemplateError {
    let known: Vec<&str> = vars.names().collect();
    let help = match closest(name, known.iter().copied()) {
        Some(near) => format!("did you mean `{{{{ {near} }}}}`? known variables: {}", known.join(", ")),
        None => format!("known variables: {}", known.join(", ")),
    };
    TemplateError { position, message: format!("unknown template variable `{name}`"), help: Some(help) }
}

struct Placeholder<'a> {
    start: usize,
    end: usize,
    name: &'a str,
    position: Position,
}

fn find_placeholders(text: &str) -> impl Iterator<Item = Result<Placeholder<'_>, TemplateError>> {
    let mut from = 0usize;
    let mut failed = false;
    // Where `from` is, kept up to date incrementally: recomputing a position from the start of
    // the text for every placeholder would make rendering quadratic.
    let mut cursor = Cursor { offset: 0, position: Position::new(1, 1) };
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let start = from + text[from..].find("{{")?;
        let position = cursor.advance(text, start);
        let result = parse_one(text, start, position);
        match &result {
            Ok(p) => from = p.end,
            Err(_) => failed = true,
        }
        Some(result)
    })
}

/// A byte offset into a text and its line and column, moved forward only.
struct Cursor {
    offset: usize,
    position: Position,
}

impl Cursor {
    fn advance(&mut self, text: &str, to: usize) -> Position {
        let passed = &text[self.offset..to];
        match passed.rfind('\n') {
            Some(newline) => {
                self.position.line += passed.matches('\n').count() as u32;
                self.position.column = passed[newline + 1..].chars().count() as u32 + 1;
            }
            None => self.position.column += passed.chars().count() as u32,
        }
        self.offset = to;
        self.position
    }
}

fn parse_one(text: &str, start: usize, position: Position) -> Result<Placeholder<'_>, TemplateError> {
    let body_start = start + 2;
    let line_end = text[body_start..].find('\n').map_or(text.len(), |i| body_start + i);
    let Some(close) = text[body_start..line_end].find("}}") else {
        return Err(TemplateError {
            position,
            message: "unterminated template placeholder: `{{` without `}}` on the same line".into(),
            help: Some("write placeholders as `{{ name }}` on one line".into()),
        });
    };
    let name = text[body_start..body_start + close].trim();
    let valid = !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        });
    if !valid {
        return Err(TemplateError {
            position,
            message: format!("malformed template placeholder `{{{{{}}}}}`", &text[body_start..body_start + close]),
            help: Some(
                "a placeholder holds one variable name: lowercase words joined by dots, e.g. `{{ images.echo }}`"
                    .into(),
            ),
        });
    }
    Ok(Placeholder { start, end: body_start + close + 2, name, position })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.set("namespace", "ingress-basic-r1").set("host", "h.test").set("images.echo", "echo:1");
        v
    }

    #[test]
    fn substitutes_quoted_and_unquoted_placeholders() {
        let r = render("ns: {{ namespace }}\nimage: \"{{images.echo}}\"\n", &vars()).unwrap();
        assert_eq!(r.text, "ns: ingress-basic-r1\nimage: \"echo:1\"\n");
    }

    #[test]
    fn columns_after_a_placeholder_map_back_to_the_source() {
        // source:   `a: {{ host }} x: !`  (`!` at column 18)
        // rendered: `a: h.test x: !`      ('!' at column 14)
        let r = render("a: {{ host }} x: !", &vars()).unwrap();
        assert_eq!(r.text.find('!').unwrap() + 1, 14);
        assert_eq!(r.source_column(1, 14), 18);
        // Before the placeholder, nothing moves.
        assert_eq!(r.source_column(1, 2), 2);
        // Two placeholders on one line accumulate.
        let r = render("{{ host }}{{ host }}!", &vars()).unwrap();
        assert_eq!(r.text, "h.testh.test!");
        assert_eq!(r.source_column(1, 13), 21);
    }

    #[test]
    fn unknown_names_are_located_and_suggest_the_closest() {
        let err = render("a: 1\nb: {{ namepsace }}\n", &vars()).unwrap_err();
        assert_eq!(err.position, Position::new(2, 4));
        assert_eq!(err.message, "unknown template variable `namepsace`");
        assert!(err.help.unwrap().starts_with("did you mean `{{ namespace }}`?"));
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        assert!(render("a: {{ host", &vars()).unwrap_err().message.contains("unterminated"));
        assert!(render("a: {{ }}", &vars()).unwrap_err().message.contains("malformed"));
        assert!(render("a: {{ Host Name }}", &vars()).unwrap_err().message.contains("malformed"));
    }

    #[test]
    fn values_cannot_shift_lines() {
        let mut v = Vars::new();
        v.set("x", "a\nb");
        assert_eq!(render("{{ x }}", &v).unwrap().text, "a b");
    }

    /// Placeholders cost time linear in their number, and output is bounded: a small file cannot
    /// render into gigabytes.
    #[test]
    fn rendering_is_linear_and_bounded() {
        let mut v = vars();
        v.set("big", "x".repeat(200));
        let many = "a: {{ host }}\n".repeat(40_000);
        let started = std::time::Instant::now();
        let r = render(&many, &v).unwrap();
        assert_eq!(r.text.len(), "a: h.test\n".len() * 40_000);
        // One line of many placeholders too.
        let one_line = "{{ host }}".repeat(40_000);
        assert_eq!(render(&one_line, &v).unwrap().text.len(), 6 * 40_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        let bomb = "b: {{ big }}\n".repeat(10_000);
        let err = render(&bomb, &v).unwrap_err();
        assert!(err.message.contains("rendered text is larger than the 1024 KiB limit"), "{}", err.message);
        assert!(err.position.line > 5_000, "{:?}", err.position);
        // Positions are still exact after many placeholders.
        let err = render(&format!("{}z: {{{{ nope }}}}", "a: {{ host }} {{ host }}\n".repeat(3)), &v).unwrap_err();
        assert_eq!(err.position, Position::new(4, 4));
    }

    #[test]
    fn placeholders_lists_names_in_order() {
        let names: Vec<String> =
            placeholders("{{ a }} {{ b.c }}\n{{ a }}").unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b.c", "a"]);
    }
}
