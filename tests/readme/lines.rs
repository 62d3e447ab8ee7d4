//! The shell lines of the README's fenced code blocks (shared by the
//! README tests of both crates).

use std::path::Path;

/// Every command line shown in a `sh`, `bash` or unlabelled fenced block
/// of `readme`, comments removed.
pub fn readme_lines(readme: &Path) -> Vec<String> {
    #[allow(clippy::disallowed_methods)] // the test's own input
    let text = std::fs::read_to_string(readme).expect("README.md");
    let mut out = Vec::new();
    let mut inside = None::<String>;
    for line in text.lines() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            inside = if inside.is_some() { None } else { Some(fence.trim().to_owned()) };
            continue;
        }
        if matches!(inside.as_deref(), Some("sh" | "bash" | "")) {
            let code = line.split(" #").next().unwrap_or("").trim();
            if !code.is_empty() && !code.starts_with('#') {
                out.push(code.to_owned());
            }
        }
    }
    out
}
