//! `warden check` and `warden run` reject every invalid config with
//! `FILE:LINE:COL:` and start nothing; the shipped example is valid.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod binary_support;
mod common;

use std::process::Command;

use binary_support::{TempDir, warden_bin};

const HEAD: &str = "[warden]\ncontrol = \"w.sock\"\n[[service]]\nname = \"a\"\ncommand = [\"true\"]\n";

/// (file name, content, the line the error must name).
fn corpus() -> Vec<(&'static str, String, usize)> {
    vec![
        ("unknown-key", format!("{HEAD}restrat = \"always\""), 6),
        ("unknown-warden-key", "[warden]\ncontrl = \"w.sock\"".into(), 2),
        ("wrong-type", "[warden]\ncontrol = \"w.sock\"\n[[service]]\nname = 5\ncommand = [\"true\"]".into(), 4),
        ("unknown-after", format!("{HEAD}after = [\"nope\"]"), 6),
        (
            "cycle",
            format!("{HEAD}after = [\"b\"]\n[[service]]\nname = \"b\"\ncommand = [\"true\"]\nafter = [\"a\"]"),
            6,
        ),
        ("self-cycle", format!("{HEAD}after = [\"a\"]"), 6),
        ("duplicate", format!("{HEAD}[[service]]\nname = \"a\"\ncommand = [\"true\"]"), 7),
        ("empty-command", "[warden]\ncontrol = \"w.sock\"\n[[service]]\nname = \"a\"\ncommand = []".into(), 5),
        ("empty-program", "[[service]]\nname = \"a\"\ncommand = [\"\"]".into(), 3),
        ("bad-duration", format!("{HEAD}stop_timeout = \"soon\""), 6),
        ("bad-backoff", format!("{HEAD}backoff = {{ initial = \"1x\" }}"), 6),
        ("bad-restart", format!("{HEAD}restart = \"sometimes\""), 6),
        ("bad-signal", format!("{HEAD}stop_signal = \"SIGFOO\""), 6),
        ("bad-admin", "[warden]\nadmin = \"nowhere\"".into(), 2),
        ("bad-listen", format!("{HEAD}listen = [{{ name = \"h\", addr = \"127.0.0.1\" }}]"), 6),
        ("bad-url", format!("{HEAD}ready = {{ http = \"ftp://x/\" }}"), 6),
        ("two-checks", format!("{HEAD}ready = {{ notify = true, exec = [\"true\"] }}"), 6),
        ("bad-name", "[[service]]\nname = \"a b\"\ncommand = [\"true\"]".into(), 2),
        ("not-toml", "[warden\n".into(), 1),
    ]
}

#[test]
fn check_rejects_the_invalid_corpus_with_line_and_column() {
    let dir = TempDir::new("config");
    for (name, text, line) in corpus() {
        let file = dir.0.join(format!("{name}.toml"));
        std::fs::write(&file, &text).unwrap();
        let out = Command::new(warden_bin()).args(["check", "-c"]).arg(&file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: check exits {:?}: {err}", out.status.code());
        let want = format!("{}:{line}:", file.display());
        assert!(err.contains(&want), "{name}: error does not name {want}COL: {err}");
    }
}

#[test]
fn run_refuses_an_invalid_config_with_status_1_and_starts_nothing() {
    let dir = TempDir::new("config-run");
    let file = dir.0.join("bad.toml");
    let marker = dir.0.join("started");
    let text = format!(
        "[[service]]\nname = \"a\"\ncommand = [\"touch\", \"{}\"]\n[[service]]\nname = \"b\"\ncommand = [\"true\"]\nafter = [\"zz\"]",
        marker.display()
    );
    std::fs::write(&file, text).unwrap();
    let out = Command::new(warden_bin()).args(["run", "-c"]).arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "run exits {:?}: {err}", out.status.code());
    assert!(err.contains(&format!("{}:7:", file.display())), "no FILE:LINE:COL in: {err}");
    assert!(!marker.exists(), "a service was started from an invalid config");
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/warden.toml");
    let out = Command::new(warden_bin()).args(["check", "-c", example]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn help_explains_every_command() {
    let out = Command::new(warden_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check", "status", "start", "stop", "restart", "upgrade", "check-env"] {
        assert!(help.contains(&format!("  {cmd} ")), "--help does not list {cmd}:\n{help}");
    }
}
