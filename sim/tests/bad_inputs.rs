//! What a hostile or careless user hands `warden-sim` is refused at once
//! with exit 2 and the place of the mistake, never run, hung on or
//! passed silently. One test per kind of input.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // tests drive a real child process and write files

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden-sim")).current_dir(root()).args(args).output().expect("warden-sim runs")
}

/// Asserts exit 2 and that stderr contains `want`; returns stderr.
fn refused(args: &[&str], want: &str) -> String {
    let o = sim(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?} exits 2\nstdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(err.contains(want), "{args:?}: stderr lacks {want:?}:\n{err}");
    err
}

const STAMPEDE: &str = "scenarios/stampede-double-register.toml";
const LOST: &str = "scenarios/selftest-lost-update.toml";

/// A copy of the stampede scenario with `edit` applied, in a temp dir.
fn edited(dir: &tempfile::TempDir, name: &str, edit: impl Fn(&str) -> String) -> String {
    let text = std::fs::read_to_string(root().join(STAMPEDE)).unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, edit(&text)).unwrap();
    path.to_string_lossy().into_owned()
}

fn replace_line(text: &str, key: &str, with: &str) -> String {
    text.lines().map(|l| if l.starts_with(key) { with } else { l }).collect::<Vec<_>>().join("\n")
}

#[test]
fn scenario_bounds_are_refused_at_their_place() {
    let d = tempfile::tempdir().unwrap();
    let f =
        edited(&d, "deep.toml", |t| replace_line(t, "scheduler", "scheduler = { kind = \"pct\", depth = 4000000000 }"));
    refused(&["run", &f, "--seed", "1"], "depth must be an integer from 1 to 64");
    let f = edited(&d, "long.toml", |t| replace_line(t, "duration", "duration = \"100000000years\""));
    refused(&["run", &f, "--seed", "1"], "at most 1day");
    let f = edited(&d, "zero.toml", |t| replace_line(t, "duration", "duration = \"0s\""));
    refused(&["run", &f, "--seed", "1"], "longer than 0s");
    let f = edited(&d, "steps.toml", |t| replace_line(t, "scheduler", "scheduler = { kind = \"random\", steps = 10 }"));
    refused(&["run", &f, "--seed", "1"], "steps applies only");
    let f = edited(&d, "keys.toml", |t| replace_line(t, "keys", "keys = 100000"));
    let e = refused(&["run", &f, "--seed", "1"], "keys = 100000 is outside 1..=64");
    assert!(e.contains("keys.toml:") && e.contains(":8:"), "names file and column: {e}");
    let f = edited(&d, "fail.toml", |t| format!("{t}\nfail_percent = 200\n"));
    refused(&["run", &f, "--seed", "1"], "fail_percent = 200 is outside 0..=100");
}

#[test]
fn seed_counts_and_ranges_that_run_nothing_are_refused() {
    refused(&["explore", LOST, "--seeds", "0"], "--seeds");
    refused(&["check-determinism", LOST, "--seeds", "0"], "--seeds");
    refused(&["check-determinism", LOST, "--start-seed", "18446744073709551615", "--seeds", "2"], "largest seed");
    refused(&["explore", LOST, "--start-seed", "18446744073709551615", "--seeds", "2"], "largest seed");
    refused(&["explore", LOST, "--budget-secs", "nan"], "finite number of seconds");
}

#[test]
fn bad_fault_plans_are_refused_with_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let plan = |name: &str, text: &str| {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let p = plan("h0.toml", "[[host_crashes]]\nat_ms = 100\nhost = 0\nrestart_after_ms = 1000\n");
    refused(&["run", STAMPEDE, "--seed", "1", "--plan", &p], "h0.toml:3:8: host 0");
    let p = plan("late.toml", "[[host_crashes]]\nat_ms = 18446744073709551615\nhost = 1\nrestart_after_ms = 1\n");
    refused(&["run", STAMPEDE, "--seed", "1", "--plan", &p], "late.toml:2:9:");
    let p = plan("point.toml", "[[crash_points]]\nname = \"no.such.point\"\nhit = 1\n");
    refused(&["run", STAMPEDE, "--seed", "1", "--plan", &p], "point.toml:2:8: no crash point");
    let p = plan("site.toml", "[buggify]\n\"no.such.site\" = true\n");
    refused(&["run", STAMPEDE, "--seed", "1", "--plan", &p], "site.toml:2:1: unknown buggify site");
    let missing = d.path().join("missing.toml");
    let e = refused(&["run", STAMPEDE, "--seed", "1", "--plan", missing.to_str().unwrap()], "cannot read");
    assert!(!e.contains(":0:0"), "a missing file has no line: {e}");
}

#[test]
fn a_record_of_another_scenario_or_cut_short_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let rec = d.path().join("rec.txt");
    let rec_s = rec.to_str().unwrap();
    assert_eq!(sim(&["run", LOST, "--seed", "3", "--record", rec_s]).status.code(), Some(0));
    refused(&["run", STAMPEDE, "--replay", rec_s], "a record of scenario \"selftest-lost-update\"");
    let text = std::fs::read_to_string(&rec).unwrap();
    std::fs::write(&rec, &text[..text.len() / 2]).unwrap();
    refused(&["run", LOST, "--replay", rec_s], "cut short");
}

#[test]
fn a_missing_scenario_names_the_file_only() {
    let e = refused(&["run", "scenarios/no-such-file.toml", "--seed", "1"], "no-such-file.toml: cannot read");
    assert!(!e.contains(":0:0"), "{e}");
}
