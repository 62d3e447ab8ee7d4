use std::path::Path;

use super::*;

fn config(text: &str) -> Config {
    Config::parse(Path::new("/w/warden.toml"), text).expect("valid config")
}

fn t(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

fn drain(m: &mut Manager) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

/// Answers every spawn with pid 100 + svc * 10 + instance.
fn run(m: &mut Manager, now: Instant) -> Vec<Action> {
    let mut all = Vec::new();
    loop {
        let actions = drain(m);
        if actions.is_empty() {
            return all;
        }
        for a in &actions {
            if let Action::Spawn { svc, instance } = *a {
                m.handle_spawned(now, svc, instance, Ok(100 + svc as u32 * 10 + instance as u32));
            }
        }
        all.extend(actions);
    }
}

const CHAIN: &str = r#"
[warden]
stop_timeout = "30s"
[[service]]
name = "db"
command = ["db"]
ready = { notify = true }
stop_timeout = "2s"
[[service]]
name = "web"
command = ["web"]
after = ["db"]
restart = "on-failure"
backoff = { initial = "1s", max = "4s" }
intensity = { restarts = 2, within = "60s" }
"#;

#[test]
fn dependents_start_after_ready_and_stop_first() {
    let mut m = Manager::new(&config(CHAIN), Mutants::default());
    m.handle_start(t(0));
    assert_eq!(run(&mut m, t(0)), vec![Action::Spawn { svc: 0, instance: 1 }], "web waits for db's READY=1");
    m.handle_ready(t(10), 0, 1);
    assert_eq!(run(&mut m, t(10)), vec![Action::Spawn { svc: 1, instance: 1 }]);
    m.handle_signal(t(20), Signal::Term);
    assert_eq!(run(&mut m, t(20)), vec![Action::Signal { svc: 1, instance: 1, signal: Signal::Term }]);
    m.handle_exited(t(30), 1, 1, ExitStatus::Signaled(Signal::Term), 0);
    assert_eq!(run(&mut m, t(30)), vec![Action::Signal { svc: 0, instance: 1, signal: Signal::Term }]);
    assert_eq!(m.poll_timeout(), Some(t(2030)), "db's SIGKILL deadline");
    m.handle_timeout(t(2030));
    assert_eq!(run(&mut m, t(2030)), vec![Action::Signal { svc: 0, instance: 1, signal: Signal::Kill }]);
    m.handle_exited(t(2031), 0, 1, ExitStatus::Signaled(Signal::Kill), 0);
    assert_eq!(run(&mut m, t(2031)), vec![Action::Finished { code: 0 }]);
}

#[test]
fn on_failure_restarts_failures_only_and_intensity_fails_the_service() {
    let mut m = Manager::new(&config(CHAIN), Mutants::default());
    m.handle_start(t(0));
    run(&mut m, t(0));
    m.handle_ready(t(0), 0, 1);
    run(&mut m, t(0));
    for (i, at) in [(1u64, 100u64), (2, 2000), (3, 5000)] {
        m.handle_exited(t(at), 1, i, ExitStatus::Code(1), 0);
        run(&mut m, t(at));
        if i < 3 {
            let until = m.poll_timeout().expect("a restart is due");
            m.handle_timeout(until);
            assert_eq!(run(&mut m, until), vec![Action::Spawn { svc: 1, instance: i + 1 }]);
        }
    }
    assert_eq!(m.status()[1].state, "failed", "a third restart within 60 s exceeds 2");
    assert_eq!(m.status()[1].restarts, 2);
    m.handle_command(t(6000), "web", Command::Start).unwrap();
    assert_eq!(run(&mut m, t(6000)), vec![Action::Spawn { svc: 1, instance: 4 }]);
    m.handle_exited(t(7000), 1, 4, ExitStatus::Code(0), 0);
    assert!(run(&mut m, t(7000)).is_empty());
    assert_eq!(m.status()[1].state, "exited", "on-failure does not restart a clean exit");
}

#[test]
fn a_second_signal_kills_everything_and_exits_128_plus_n() {
    let mut m = Manager::new(&config(CHAIN), Mutants::default());
    m.handle_start(t(0));
    run(&mut m, t(0));
    m.handle_ready(t(0), 0, 1);
    run(&mut m, t(0));
    m.handle_signal(t(1), Signal::Term);
    run(&mut m, t(1));
    m.handle_signal(t(2), Signal::Int);
    let a = run(&mut m, t(2));
    assert!(a.contains(&Action::Signal { svc: 0, instance: 1, signal: Signal::Kill }));
    assert!(a.contains(&Action::Signal { svc: 1, instance: 1, signal: Signal::Kill }));
    assert_eq!(a.last(), Some(&Action::Finished { code: 130 }));
}

#[test]
fn a_critical_failure_stops_warden_with_status_1() {
    let text = "[[service]]\nname = \"a\"\ncommand = [\"a\"]\nrestart = \"never\"\ncritical = true\n\
                [[service]]\nname = \"b\"\ncommand = [\"b\"]";
    let mut m = Manager::new(&config(text), Mutants::default());
    m.handle_start(t(0));
    run(&mut m, t(0));
    m.handle_exited(t(5), 0, 1, ExitStatus::Code(2), 0);
    assert_eq!(run(&mut m, t(5)), vec![Action::Signal { svc: 1, instance: 1, signal: Signal::Term }]);
    m.handle_exited(t(6), 1, 1, ExitStatus::Signaled(Signal::Term), 0);
    assert_eq!(run(&mut m, t(6)), vec![Action::Finished { code: 1 }]);
}

#[test]
fn mutants_change_what_they_say() {
    let mut m = Manager::new(&config(CHAIN), Mutants { stop_unordered: true, ..Mutants::default() });
    m.handle_start(t(0));
    run(&mut m, t(0));
    m.handle_ready(t(0), 0, 1);
    run(&mut m, t(0));
    m.handle_signal(t(1), Signal::Term);
    assert_eq!(run(&mut m, t(1)).len(), 2, "both stopped at once");
    let mut m = Manager::new(&config(CHAIN), Mutants { on_failure_restarts_clean_exit: true, ..Mutants::default() });
    m.handle_start(t(0));
    run(&mut m, t(0));
    m.handle_ready(t(0), 0, 1);
    run(&mut m, t(0));
    m.handle_exited(t(1), 1, 1, ExitStatus::Code(0), 0);
    run(&mut m, t(1));
    assert_eq!(m.status()[1].state, "backoff");
}

#[test]
fn upgrade_needs_a_running_handoff_service() {
    let m = Manager::new(&config(CHAIN), Mutants::default());
    assert_eq!(m.handle_upgrade("web"), Err(CommandError::NoHandoff("web".into())));
    assert_eq!(m.handle_upgrade("nope"), Err(CommandError::UnknownService("nope".into())));
    let text = "[[service]]\nname = \"a\"\ncommand = [\"a\"]\nhandoff = true";
    let mut m = Manager::new(&config(text), Mutants::default());
    assert_eq!(m.handle_upgrade("a"), Err(CommandError::NotRunning("a".into())));
    m.handle_start(t(0));
    run(&mut m, t(0));
    assert_eq!(m.handle_upgrade("a"), Ok(0));
    m.handle_command(t(1), "a", Command::Stop).expect("stop");
    assert_eq!(m.handle_upgrade("a"), Err(CommandError::NotRunning("a".into())));
    m.handle_signal(t(2), Signal::Term);
    assert_eq!(m.handle_upgrade("a"), Err(CommandError::Stopping));
}

proptest::proptest! {
    /// Whatever exits, readiness and signals arrive, a service is never
    /// sent its stop signal while a dependent still has a process, nothing
    /// is spawned once the manager finished, and it finishes after a
    /// signal once every process exited.
    #[test]
    fn stop_order_and_no_spawn_after_finish(events in proptest::collection::vec((0u8..5, 0usize..3, 0u64..3), 1..60)) {
        let text = "[[service]]\nname = \"a\"\ncommand = [\"a\"]\n\
                    [[service]]\nname = \"b\"\ncommand = [\"b\"]\nafter = [\"a\"]\nrestart = \"on-failure\"\n\
                    [[service]]\nname = \"c\"\ncommand = [\"c\"]\nafter = [\"b\"]\nready = { notify = true }\nrestart = \"never\"";
        let mut m = Manager::new(&config(text), Mutants::default());
        let mut now = 0u64;
        let mut alive = [false; 3];
        let mut instance = [0u64; 3];
        let mut finished = false;
        m.handle_start(t(0));
        for (kind, svc, arg) in events {
            now += 100 + arg * 700;
            match kind {
                0 if alive[svc] => {
                    alive[svc] = false;
                    m.handle_exited(t(now), svc, instance[svc], ExitStatus::Code(arg as i32), arg);
                }
                1 => m.handle_ready(t(now), svc, instance[svc]),
                2 => m.handle_signal(t(now), Signal::Term),
                3 => m.handle_timeout(t(now)),
                _ => { let _ = m.handle_command(t(now), ["a", "b", "c"][svc], Command::Restart); }
            }
            while let Some(a) = m.poll_action() {
                match a {
                    Action::Spawn { svc, instance: i } => {
                        proptest::prop_assert!(!finished, "spawn after finish");
                        instance[svc] = i;
                        alive[svc] = true;
                        m.handle_spawned(t(now), svc, i, Ok(10 + svc as u32));
                    }
                    Action::Signal { svc, signal, .. } if signal != Signal::Kill && m.is_stopping() => {
                        for (d, up) in alive.iter().enumerate().skip(svc + 1) {
                            proptest::prop_assert!(!up, "{svc} stopped while dependent {d} runs");
                        }
                    }
                    Action::Signal { .. } | Action::Forget { .. } => {}
                    Action::Finished { .. } => finished = true,
                }
            }
        }
    }
}
