//! Errors in the files and flags a user hands the simulator: every one
//! names the file and, where the text has one, the line and column.

use std::fmt;
use std::ops::Range;
use std::path::Path;

/// A file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InputError {
    /// The file.
    pub path: String,
    /// 1-based line and column, when the error is at a place in the text.
    pub at: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl InputError {
    /// An error at byte range `span` of `text`, read from `path`.
    pub fn at(path: &Path, text: &str, span: Range<usize>, message: impl Into<String>) -> InputError {
        InputError { path: path.display().to_string(), at: Some(line_col(text, span.start)), message: message.into() }
    }

    /// An error about the file as a whole.
    pub fn file(path: &Path, message: impl Into<String>) -> InputError {
        InputError { path: path.display().to_string(), at: None, message: message.into() }
    }

    /// A TOML syntax or type error, placed where the parser says.
    pub fn toml(path: &Path, text: &str, e: &toml::de::Error) -> InputError {
        match e.span() {
            Some(span) => InputError::at(path, text, span, e.message().trim()),
            None => InputError::file(path, e.message().trim()),
        }
    }
}

/// Reads a user's file; a missing or unreadable one is an error naming it.
pub fn read(path: &Path) -> Result<String, InputError> {
    #[allow(clippy::disallowed_methods)] // the CLI's own input, not simulated I/O
    std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_one_based_and_files_without_place_have_none() {
        let e = InputError::at(Path::new("f.toml"), "a = 1\nbb = 2\n", 8..9, "bad");
        assert_eq!(e.to_string(), "f.toml:2:3: bad");
        assert_eq!(InputError::file(Path::new("f.toml"), "cannot read").to_string(), "f.toml: cannot read");
    }
}
