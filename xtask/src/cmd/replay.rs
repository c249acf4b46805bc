//! `replay`: recorded answers judged again, offline, with the current checks.

use std::path::PathBuf;

use crate::{emit, say};

/// Write to stdout; a closed pipe (`| head`) ends the program quietly instead of panicking.
/// `replay`: each file's verdict next to the expected one.
pub fn replay(paths: &[PathBuf]) -> u8 {
    use harness::replay::{FileOutcome, files, replay_file};
    let files = match files(paths) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            say(&format!(
                "error: no transcript files under {}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ));
            return 2;
        }
        Err(e) => {
            say(&format!("error: cannot list transcripts: {e}"));
            return 2;
        }
    };
    let (mut differ, mut unreadable) = (0, 0);
    let mut out = String::new();
    for file in &files {
        match replay_file(file) {
            FileOutcome::Matches { expected, detail } => {
                out.push_str(&format!("ok       {expected:<4} {}  ({detail})\n", file.display()));
            }
            FileOutcome::Differs { expected, got, detail } => {
                differ += 1;
                out.push_str(&format!("DIFFERS  {got:<4} {}  expected {expected}: {detail}\n", file.display()));
            }
            FileOutcome::Unreadable(e) => {
                unreadable += 1;
                out.push_str(&format!("ERROR    {e}\n"));
            }
        }
    }
    out.push_str(&format!(
        "{} transcript(s): {} as expected, {differ} differ, {unreadable} unreadable\n",
        files.len(),
        files.len() - differ - unreadable
    ));
    // Details quote recorded answers and file contents.
    emit(&harness::diagnostic::escape_for_log(&out));
    if unreadable > 0 {
        2
    } else if differ > 0 {
        1
    } else {
        0
    }
}
