//! Reading YAML we do not trust: bounded size, bounded parser work, located errors.
//!
//! Every YAML file the harness reads (scenarios, fixtures, values, bundles) goes
//! through here, so hostile input (alias bombs, deep nesting, huge or binary
//! files) is rejected the same way everywhere, in bounded time and memory.

use std::cell::RefCell;
use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::diagnostic::{Position, closest};

/// Larger files are refused before they are read. Generous for a manifest, tiny for memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A problem with a YAML text, located in that text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Load-error class: `read`, `too-large`, `not-utf8`, `empty`, `syntax`, `schema`, `limit`.
    pub code: &'static str,
    pub position: Position,
    pub message: String,
    /// Field path (`steps[2].http.expect`), empty at the top level.
    pub field: String,
    pub help: Option<String>,
}

impl Error {
    fn whole_file(code: &'static str, message: String, help: Option<String>) -> Self {
        Error { code, position: Position::WHOLE_FILE, message, field: String::new(), help }
    }

    /// This error as a diagnostic located in `file`, whose text is `source`.
    pub fn into_diagnostic(self, file: &std::path::Path, source: &str) -> crate::diagnostic::Diagnostic {
        let mut d = crate::diagnostic::Diagnostic::error(self.code, file, self.position, self.message)
            .with_field(self.field)
            .with_source(source);
        d.help = self.help;
        d
    }
}

/// Read a text file: refuses oversized, non-UTF-8, binary and empty files.
pub fn read_text(path: &Path) -> Result<String, Error> {
    text_from_bytes(read_bytes(path)?)
}

/// The largest manifest file of the user's that lint reads (`helm template` output with CRDs
/// runs to megabytes); its documents are parsed one at a time, each under the usual budget.
/// Scenario files, fixtures, values and bundles keep the [`MAX_FILE_BYTES`] bound.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// [`read_text`] for a rendered manifest stream of the user's, up to [`MAX_MANIFEST_BYTES`].
pub fn read_manifest_text(path: &Path) -> Result<String, Error> {
    let bytes = read_bounded(path, MAX_MANIFEST_BYTES, "manifest files")?;
    text_within(bytes, MAX_MANIFEST_BYTES)
}

/// Read at most [`MAX_FILE_BYTES`] of a file; a larger file is an error.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    read_bounded(path, MAX_FILE_BYTES, "YAML inputs")
}

/// Read a regular file of at most `limit` bytes (a larger one is a `too-large` error naming
/// `what` the limit is for); symbolic links, directories, FIFOs, sockets and devices are refused
/// unread. The one bounded reader of every input file (YAML, `versions.toml`, an earlier run's
/// `run.json`, bundles).
///
/// Built on [`crate::names::open_regular`]: the final component is never followed (`O_NOFOLLOW`,
/// so a `versions.toml` linked to a secret is never read nor quoted), and the open cannot block
/// on a FIFO swapped in after the type check (`O_NONBLOCK`); what was opened is checked again.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, Error> {
    const SPECIAL: &str = "not a regular file (directories, FIFOs, sockets and devices are never read)";
    const LINK: &str = "a symbolic link: links are never followed for inputs (replace it with the file itself)";
    let refuse = |message: String| Error::whole_file("read", message, None);
    // A clear word for what the path is, before anything is opened.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(refuse(LINK.into()));
        }
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(refuse(SPECIAL.into())),
        Err(e) => return Err(refuse(format!("cannot read file: {e}"))),
    }
    // The open re-checks all of it atomically: whatever was swapped in meanwhile is refused.
    let file = crate::names::open_regular(path).map_err(|e| {
        let text = e.to_string();
        if text.contains("symbolic link") {
            refuse(LINK.into())
        } else if text.contains("not a regular file") || text.contains("a directory") {
            refuse(SPECIAL.into())
        } else {
            refuse(format!("cannot read file: {e}"))
        }
    })?;
    let mut bytes = Vec::new();
    // `take` bounds the read even if the file grows (or is a device) after any size check.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::whole_file("read", format!("cannot read file: {e}"), None))?;
    if bytes.len() as u64 > limit {
        return Err(Error::whole_file(
            "too-large",
            format!("file is larger than the {} KiB limit for {what}", limit / 1024),
            Some("split it into several files".into()),
        ));
    }
    Ok(bytes)
}

/// Validate bytes as a text document.
pub fn text_from_bytes(bytes: Vec<u8>) -> Result<String, Error> {
    text_within(bytes, MAX_FILE_BYTES)
}

fn text_within(bytes: Vec<u8>, limit: u64) -> Result<String, Error> {
    if bytes.len() as u64 > limit {
        return Err(Error::whole_file(
            "too-large",
            format!("input is larger than the {} KiB limit for YAML inputs", limit / 1024),
            Some("split it into several files".into()),
        ));
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..valid]);
            return Err(Error {
                code: "not-utf8",
                position: Position::of_offset(&prefix, valid),
                message: format!("the file is not UTF-8 text (invalid byte 0x{:02x})", bytes[valid]),
                field: String::new(),
                help: Some("save the file as UTF-8".into()),
            });
        }
    };
    if let Some(offset) = text.find('\0') {
        return Err(Error {
            code: "not-utf8",
            position: Position::of_offset(&text, offset),
            message: "the file contains a NUL byte: it looks binary, not YAML".into(),
            field: String::new(),
            help: None,
        });
    }
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(Error::whole_file("empty", "the file is empty".into(), None));
    }
    Ok(text)
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    // Far above anything a scenario or manifest needs, far below what hurts.
    budget.max_events = 200_000;
    budget.max_nodes = 100_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 48;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_total_scalar_bytes = 4 * MAX_FILE_BYTES as usize;
    budget.max_documents = 256;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Deserialize one document, strictly (types reject unknown keys themselves).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    let field = RefCell::new(String::new());
    serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            *field.borrow_mut() = clean_path(&e.path().to_string());
            e.into_inner()
        })
    })
    .map_err(|e| convert(&e, field.into_inner()))
}

/// Deserialize every document of a multi-document stream (empty documents are skipped).
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, Error> {
    let docs: Vec<Option<T>> =
        serde_saphyr::from_str_multiple_with_options(text, options()).map_err(|e| convert(&e, String::new()))?;
    Ok(docs.into_iter().flatten().collect())
}

/// serde_path_to_error writes `.` for the root and `?` for positions it cannot name.
/// `Spanned<T>` fields add a `.value` segment of their own; users never wrote it.
fn clean_path(path: &str) -> String {
    if path == "." || path == "?" {
        return String::new();
    }
    let path = path.trim_end_matches(".?");
    path.strip_suffix(".value").unwrap_or(path).to_owned()
}

fn convert(e: &serde_saphyr::Error, field: String) -> Error {
    let position = e
        .location()
        .filter(|l| l.line() > 0)
        .map_or(Position::WHOLE_FILE, |l| Position::new(l.line() as u32, l.column() as u32));
    let raw = message_of(e);
    if let Some(message) = limit_message(&raw) {
        let help = "scenarios and manifests never need this much; the limits guard against hostile input".to_owned();
        return Error { code: "limit", position, message, field, help: Some(help) };
    }
    let code = if is_schema_error(e) { "schema" } else { "syntax" };
    let help = suggestion(&raw);
    let message = raw.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    Error { code, position, message, field, help }
}

/// The error's own words, without serde-saphyr's snippet or location suffix (we render our own).
fn message_of(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    // Strip a trailing " at line X, column Y" that some variants append.
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_owned(),
        None => first.to_owned(),
    }
}

/// serde-saphyr's budget messages name internal counters; say what the user did instead.
fn limit_message(raw: &str) -> Option<String> {
    let what = if raw.contains("RecordedAnchor") || raw.contains("Aliases") || raw.contains("Anchors") {
        "too many anchor and alias expansions (an alias bomb?)"
    } else if raw.contains("Depth") || raw.contains("recursion limit") || raw.contains("nesting") {
        "nesting too deep"
    } else if raw.contains("budget breached") {
        "too many YAML nodes or too much text"
    } else {
        return None;
    };
    Some(format!("YAML input refused: {what}"))
}

/// Schema errors: the YAML is well-formed but does not fit the expected shape. Everything else the
/// parser reports is syntax.
fn is_schema_error(e: &serde_saphyr::Error) -> bool {
    use serde_saphyr::Error as E;
    let mut e = e;
    while let E::WithSnippet { error, .. } | E::AliasError { error, .. } = e {
        e = error;
    }
    matches!(
        e,
        E::Message { .. }
            | E::Unexpected { .. }
            | E::InvalidScalar { .. }
            | E::NullIntoString { .. }
            | E::SerdeInvalidType { .. }
            | E::SerdeInvalidValue { .. }
            | E::SerdeInvalidLength { .. }
            | E::SerdeUnknownVariant { .. }
            | E::SerdeUnknownField { .. }
            | E::SerdeMissingField { .. }
    )
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and variants), the closest valid name.
fn suggestion(message: &str) -> Option<String> {
    let (what, rest) = ["unknown field `", "unknown variant `"].iter().find_map(|p| {
        let i = message.find(p)?;
        Some((if p.contains("field") { "field" } else { "kind" }, &message[i + p.len()..]))
    })?;
    let (word, rest) = rest.split_once('`')?;
    let list =
        rest.split_once("expected one of ").map(|(_, l)| l).or_else(|| rest.split_once("expected ").map(|(_, l)| l))?;
    let candidates: Vec<&str> =
        list.split([',', ' ']).map(|c| c.trim_matches('`')).filter(|c| !c.is_empty() && *c != "or").collect();
    if candidates.is_empty() {
        return None;
    }
    match closest(word, candidates.iter().copied()) {
        Some(near) => Some(format!("did you mean `{near}`?")),
        None => Some(format!("valid {what}s here: {}", candidates.join(", "))),
    }
}

/// Where the key at `path` is written in a block-style YAML document (1-based line and column),
/// or the deepest ancestor that could be found. Keys in flow style (`{a: 1}`) resolve to the
/// enclosing key. A numeric segment steps into the n-th `- ` item of a sequence.
pub fn locate(text: &str, path: &[&str]) -> Position {
    // Each line as (indent of its content, content), where "- " items also count as a line
    // whose content starts two columns further: `- key: v` holds `key` at indent + 2.
    let lines: Vec<(usize, &str)> = text
        .lines()
        .map(|raw| {
            let trimmed = raw.trim_start();
            (raw.len() - trimmed.len(), trimmed)
        })
        .collect();
    let mut found = Position::new(1, 1);
    // The search window: lines after `start` (and the remainder of line `start` from column
    // `inline`, for a sequence item) indented deeper than `floor`.
    let (mut start, mut floor, mut inline): (usize, i64, Option<usize>) = (0, -1, None);
    for segment in path {
        let index: Option<usize> = segment.parse().ok();
        let mut level: Option<usize> = None;
        let mut seen_items = 0usize;
        let mut hit = None;
        for (i, &(indent, content)) in lines.iter().enumerate().skip(start) {
            let (indent, content) = match inline {
                Some(col) if i == start => (col, content.strip_prefix("- ").unwrap_or(content)),
                _ => (indent, content),
            };
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            // Sequences may sit at their parent key's own indent.
            let is_item = content.starts_with("- ") || content == "-";
            if (indent as i64) < floor || ((indent as i64) == floor && !is_item) {
                break;
            }
            let here = *level.get_or_insert(indent);
            if indent != here {
                continue;
            }
            if let Some(n) = index {
                if is_item {
                    if seen_items == n {
                        hit = Some((i, indent, true));
                        break;
                    }
                    seen_items += 1;
                }
                continue;
            }
            let key = content
                .split_once(':')
                .map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\''))
                .unwrap_or_default();
            if key == *segment {
                hit = Some((i, indent, false));
                break;
            }
        }
        let Some((line, indent, item)) = hit else { break };
        found = Position::new(line as u32 + 1, indent as u32 + 1);
        if item {
            // The item's keys: the rest of this line, then lines indented like it.
            start = line;
            inline = Some(indent + 2);
            floor = indent as i64 + 1;
        } else {
            // A key's children are deeper than the key, but a sequence may sit at its indent.
            start = line + 1;
            inline = None;
            floor = indent as i64;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        port: u16,
    }

    #[test]
    fn unknown_keys_are_located_with_their_path_and_a_suggestion() {
        let e = from_str::<Doc>("name: a\nitems:\n  - port: 1\n  - prot: 2\n").unwrap_err();
        assert_eq!(e.code, "schema");
        assert_eq!(e.field, "items[1].prot");
        assert_eq!(e.position.line, 4);
        assert_eq!(e.help.as_deref(), Some("did you mean `port`?"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = from_str::<Doc>("name: a\nitems:\n  - port: eighty\n").unwrap_err();
        assert_eq!(e.code, "schema", "{e:?}");
        assert_eq!(e.field, "items[0].port", "{e:?}");
        assert_eq!(e.position.column, 11);
        assert_eq!(e.position.line, 3);
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused_quickly() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        for (name, prev) in
            ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            bomb.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(",")));
        }
        let e = from_str::<serde_json::Value>(&bomb).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("limit", "YAML input refused: too many anchor and alias expansions (an alias bomb?)")
        );
        let deep: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i * 2))).collect();
        assert_eq!(from_str::<serde_json::Value>(&deep).unwrap_err().message, "YAML input refused: nesting too deep");
        let flow = format!("a: {}", "[".repeat(100_000));
        assert_eq!(from_str::<serde_json::Value>(&flow).unwrap_err().code, "limit");
    }

    #[test]
    fn keys_are_located_through_maps_and_sequences() {
        let doc = "metadata:\n  name: a\n  annotations:\n    konghq.com/plugins: x\nspec:\n  http:\n  - match:\n    - headers: {}\n    route:\n    - destination:\n        host: svc\n        subset: v2\n  - route:\n    - destination:\n        subset: v1\n";
        assert_eq!(locate(doc, &["metadata", "annotations", "konghq.com/plugins"]), Position::new(4, 5));
        assert_eq!(locate(doc, &["spec", "http", "0", "route", "0", "destination", "subset"]), Position::new(12, 9));
        assert_eq!(locate(doc, &["spec", "http", "1", "route", "0", "destination", "subset"]), Position::new(15, 9));
        assert_eq!(locate(doc, &["spec", "http", "1"]), Position::new(13, 3));
        // Missing keys resolve to the deepest ancestor found.
        assert_eq!(locate(doc, &["metadata", "labels", "x"]), Position::new(1, 1));
        assert_eq!(locate(doc, &["spec", "tcp"]), Position::new(5, 1));
        // Flow style: the enclosing key.
        assert_eq!(locate("metadata: {name: a}\n", &["metadata", "name"]), Position::new(1, 1));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = from_str::<serde_json::Value>("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.message, "duplicate mapping key: a");
        assert_eq!(e.position, Position::new(2, 1));
    }

    #[test]
    fn binary_and_empty_input_are_refused() {
        assert_eq!(text_from_bytes(b"a: \xff\n".to_vec()).unwrap_err().position, Position::new(1, 4));
        assert_eq!(text_from_bytes(b"a: 1\n\0".to_vec()).unwrap_err().code, "not-utf8");
        assert_eq!(text_from_bytes(b"\n# only a comment\n".to_vec()).unwrap_err().code, "empty");
    }

    /// A project's `versions.toml` linked to a secret is refused unread (its text is never
    /// quoted in the diagnostic), and a FIFO is refused at once instead of blocking the open.
    #[test]
    fn links_and_fifos_are_refused_by_the_bounded_reader() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("id_ed25519");
        std::fs::write(&secret, "kong_version = \"SECRET-KEY-MATERIAL\"\n").unwrap();
        let link = dir.path().join("versions.toml");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let e = read_bounded(&link, MAX_FILE_BYTES, "versions.toml").unwrap_err();
        assert_eq!(e.code, "read");
        assert!(e.message.contains("symbolic link"), "{}", e.message);
        let Err(crate::profile::ProfileError::Invalid(d)) = crate::profile::Versions::load(&link) else {
            panic!("a linked versions.toml must be refused")
        };
        assert!(d.message.contains("symbolic link"), "{}", d.message);
        let shown = format!("{d}");
        assert!(!shown.contains("SECRET-KEY-MATERIAL"), "{shown}");
        // A FIFO: refused without waiting for a writer.
        let fifo = dir.path().join("scenario.yaml");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let started = std::time::Instant::now();
        let e = read_bounded(&fifo, MAX_FILE_BYTES, "YAML inputs").unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        assert!(read_text(&fifo).unwrap_err().message.contains("not a regular file"));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // Devices as well; a regular file still reads.
        assert!(read_bounded(Path::new("/dev/zero"), 16, "x").unwrap_err().message.contains("not a regular file"));
        assert!(read_bounded(&secret, MAX_FILE_BYTES, "x").is_ok());
    }

    #[test]
    fn multi_document_streams_skip_empty_documents() {
        let docs: Vec<serde_json::Value> = documents("a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
    }
}
