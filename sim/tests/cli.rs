//! The command-line contract of `warden-sim`, exercised on the built binary.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // tests drive a real child process

use std::path::Path;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Command::new(env!("CARGO_BIN_EXE_warden-sim")).current_dir(root).args(args).output().expect("warden-sim runs")
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or_default().to_owned()
}

fn hash(o: &Output) -> String {
    let l = last_line(o);
    assert!(
        l.starts_with("seed=") && l.contains(" hash=") && l.contains(" result="),
        "not the contract's last line: {l:?}"
    );
    l.split_whitespace().find_map(|w| w.strip_prefix("hash=")).unwrap_or_default().to_owned()
}

const LOST: &str = "scenarios/selftest-lost-update.toml";

#[test]
fn run_is_reproducible_and_seeds_differ() {
    let a = sim(&["run", LOST, "--seed", "42"]);
    let b = sim(&["run", LOST, "--seed", "42"]);
    let c = sim(&["run", LOST, "--seed", "43"]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(hash(&a), hash(&b));
    assert_ne!(hash(&a), hash(&c));
    let out = String::from_utf8_lossy(&a.stdout);
    assert!(out.lines().next().unwrap_or_default().starts_with("seed: 42"), "the seed comes first:\n{out}");
    assert!(out.contains("derived: poll_cost_ns_max="), "derived parameters are printed:\n{out}");
}

#[test]
fn replay_follows_the_record_not_the_seed() {
    let dir = std::env::temp_dir().join(format!("warden-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rec = dir.join("rec.txt");
    let rec_s = rec.to_str().unwrap();
    let a = sim(&["run", LOST, "--seed", "42", "--record", rec_s]);
    let r = sim(&["run", LOST, "--seed", "7", "--replay", rec_s]);
    assert_eq!(hash(&a), hash(&r));
    assert!(last_line(&r).starts_with("seed=42 "), "{}", last_line(&r));
    // An edited record replays the edited decisions: a different run.
    let text = std::fs::read_to_string(&rec).unwrap();
    let edited: String = text
        .lines()
        .map(|l| if l.starts_with("poll-cost ") { "poll-cost 1 2 3".to_owned() } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&rec, edited).unwrap();
    let e = sim(&["run", LOST, "--replay", rec_s]);
    assert_ne!(hash(&e), hash(&a));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_saved_fault_plan_replays_the_same_run() {
    let dir = std::env::temp_dir().join(format!("warden-sim-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.toml");
    let p = plan.to_str().unwrap();
    let sc = "scenarios/torn-record-accepted.toml";
    let a = sim(&["run", sc, "--seed", "5", "--save-plan", p]);
    assert!(std::fs::read_to_string(&plan).unwrap().contains("[[host_crashes]]"), "the plan holds the crashes");
    let b = sim(&["run", sc, "--seed", "5", "--plan", p]);
    assert_eq!(hash(&a), hash(&b));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn shrink_prints_a_replay_line_that_keeps_the_scheduler() {
    let dir = std::env::temp_dir().join(format!("warden-sim-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.toml");
    let p = plan.to_str().unwrap();
    let (sc, mutant) = ("scenarios/supervisor-lifecycle.toml", "start-not-idempotent");
    let o = sim(&["shrink", sc, "--seed", "0", "--mutant", mutant, "--sched", "pct", "--output", p]);
    let out = String::from_utf8_lossy(&o.stdout);
    let want = format!("replay: warden-sim run {sc} --seed 0 --mutant {mutant} --sched pct --plan {p}");
    assert!(out.lines().any(|l| l == want), "no {want:?} in:\n{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn failures_exit_with_their_class_and_print_the_replay() {
    let o = sim(&["run", LOST, "--seed", "0", "--mutant", "selftest-lost-update"]);
    assert_eq!(o.status.code(), Some(10), "{}", String::from_utf8_lossy(&o.stdout));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("safety failure: invariant no-lost-update failed"), "{out}");
    assert!(
        out.contains(
            "replay: warden-sim run scenarios/selftest-lost-update.toml --seed 0 --mutant selftest-lost-update"
        ),
        "{out}"
    );
    assert!(out.contains("trace tail"), "{out}");
    assert!(last_line(&o).ends_with("result=fail"));
    let o = sim(&["run", "scenarios/selftest-busy-loop.toml", "--seed", "3", "--mutant", "selftest-busy-loop"]);
    assert_eq!(o.status.code(), Some(12), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn watchdog_catches_a_poll_that_never_returns() {
    let o = sim(&[
        "run",
        "sim/tests/fixtures/busy-loop-hard-spin.toml",
        "--seed",
        "5",
        "--mutant",
        "selftest-busy-loop",
        "--watchdog-secs",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(12));
    assert!(last_line(&o).starts_with("seed=5 hash=") && last_line(&o).ends_with("result=fail"), "{}", last_line(&o));
}

#[test]
fn usage_errors_exit_2_and_name_the_place() {
    let o = sim(&["run", LOST, "--mutant", "no-such-mutant"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown mutant"));
    let o = sim(&["explore", LOST, "--mutant", "selftest-busy-loop"]);
    assert_eq!(o.status.code(), Some(2), "a mutant the scenario does not list");
    let o = sim(&["run", "sim/tests/fixtures/bad-invariant.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad-invariant.toml:6:33: unknown invariant \"no-such-invariant\""), "{err}");
}

#[test]
fn explore_prints_the_contract_line_and_judges_coverage() {
    let o = sim(&["explore", LOST, "--seeds", "300", "--shard", "1/1"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let l = last_line(&o);
    assert!(
        l.starts_with("explored 300 seeds: 0 failed, ") && l.contains(" seeds/s, coverage overlapping-increments="),
        "{l}"
    );
    let o = sim(&["explore", LOST, "--seeds", "300", "--mutant", "selftest-lost-update"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let o = sim(&["explore", "scenarios", "--seeds", "20", "--shard", "2/2"]);
    assert!(last_line(&o).starts_with("explored "), "{}", last_line(&o));
}

#[test]
fn check_determinism_names_the_first_divergence() {
    let nd = "scenarios/selftest-nondeterministic.toml";
    let o = sim(&["check-determinism", nd, "--seeds", "3", "--mutant", "selftest-nondeterministic"]);
    assert_eq!(o.status.code(), Some(13));
    assert!(String::from_utf8_lossy(&o.stdout).contains("first divergence:"));
    let o = sim(&["check-determinism", nd, "--seeds", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
}
