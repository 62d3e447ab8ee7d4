//! Every `warden-sim` command the README shows exists: its subcommand's
//! `--help` succeeds and names every flag the README passes it.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // runs the built binary, reads the README

use std::path::Path;
use std::process::Command;

#[path = "../../tests/readme/lines.rs"]
mod lines;

/// The subcommand and flags of a `warden-sim` command line, if it is one.
fn sim_command(line: &str) -> Option<(String, Vec<String>)> {
    // The command word comes first, after any VAR=value.
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| !w.contains('='))?;
    if !(words[at] == "warden-sim" || words[at].ends_with("/warden-sim")) {
        return None;
    }
    let sub = words.get(at + 1)?.to_string();
    let flags = words[at + 2..]
        .iter()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.split('=').next().unwrap_or(w).to_owned())
        .collect();
    Some((sub, flags))
}

#[test]
fn every_warden_sim_command_in_the_readme_parses() {
    let lines = lines::readme_lines(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"));
    let commands: Vec<_> = lines.iter().filter_map(|l| sim_command(l)).collect();
    assert!(commands.len() >= 8, "the README shows warden-sim commands: {lines:?}");
    for (sub, flags) in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_warden-sim")).args([sub.as_str(), "--help"]).output().expect("runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "warden-sim {sub} --help fails: {}", String::from_utf8_lossy(&out.stderr));
        for f in flags {
            assert!(help.contains(&f), "warden-sim {sub} has no flag {f} (README): {help}");
        }
    }
}
