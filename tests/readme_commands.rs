//! Every `warden` command the README shows exists: its subcommand's
//! `--help` succeeds and names every flag the README passes it; every
//! script the README names is there and executable.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // runs the built binary, reads the README

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[path = "readme/lines.rs"]
mod lines;

/// The subcommand and flags of a `warden` command line, if it is one
/// (`warden ...`, `target/release/warden ...`, `cargo run --release -- ...`).
fn warden_command(line: &str) -> Option<(String, Vec<String>)> {
    // The command word comes first, after any VAR=value.
    let words: Vec<&str> = line.split_whitespace().collect();
    let first = words.iter().position(|w| !w.contains('='))?;
    let at = if words[first] == "warden" || words[first].ends_with("/warden") {
        first
    } else if line.starts_with("cargo run --release -- ") {
        words.iter().position(|w| *w == "--")?
    } else {
        return None;
    };
    let sub = words.get(at + 1)?.to_string();
    let flags = words[at + 2..]
        .iter()
        .filter(|w| w.starts_with("--") || (w.starts_with('-') && w.len() == 2))
        .map(|w| w.split('=').next().unwrap_or(w).to_owned())
        .collect();
    Some((sub, flags))
}

#[test]
fn every_warden_command_and_script_in_the_readme_exists() {
    let lines = lines::readme_lines(&Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let mut seen = 0;
    for (sub, flags) in lines.iter().filter_map(|l| warden_command(l)) {
        seen += 1;
        let out = Command::new(env!("CARGO_BIN_EXE_warden")).args([sub.as_str(), "--help"]).output().expect("runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "warden {sub} --help fails: {}", String::from_utf8_lossy(&out.stderr));
        for f in flags {
            assert!(help.contains(&f), "warden {sub} has no flag {f} (README): {help}");
        }
    }
    assert!(seen >= 2, "the README shows warden commands: {lines:?}");
    for line in &lines {
        for word in line.split_whitespace().filter(|w| w.starts_with("ci/") && w.ends_with(".sh")) {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(word);
            let mode = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{word} (README): {e}")).permissions().mode();
            assert!(mode & 0o111 != 0, "{word} is not executable");
        }
    }
}
