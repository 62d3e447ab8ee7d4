//! The tree's restart semantics, driven directly: group restarts are
//! charged once, cancelled siblings restart at once, only the member that
//! failed waits out its backoff.

use std::time::Duration;

use super::*;

fn at(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

/// Drains the actions: the instances started, by name.
fn started(t: &mut Tree) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    while let Some(a) = t.poll_action() {
        assert!(!matches!(a, Action::Finished(_)), "the tree finished: {a:?}");
        if let Action::Start { dn, instance } = a {
            out.insert(dn, instance);
        }
    }
    out
}

/// A root running a group of `n` members, all healthy.
fn group_of(n: usize) -> (Tree, Vec<String>) {
    let mut t = Tree::new(TreeConfig::default(), 7);
    let root = t.instance_of(ROOT).unwrap();
    t.handle_signal(at(0), ROOT, root, false).unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    t.handle_run(ROOT, root, &refs, true).unwrap();
    let dns: Vec<String> = names.iter().map(|n| format!("root.{n}")).collect();
    for dn in &dns {
        let i = t.instance_of(dn).unwrap();
        t.handle_signal(at(0), dn, i, false).unwrap();
    }
    started(&mut t);
    (t, dns)
}

/// Member `dn` fails at `now`; its siblings return cancelled right after.
/// Returns what started at that instant.
fn crash(t: &mut Tree, dns: &[String], dn: &str, now: Instant) -> BTreeMap<String, u64> {
    let i = t.instance_of(dn).unwrap();
    t.handle_exit(now, dn, i, Some("crash"), false, false).unwrap();
    for s in dns.iter().filter(|s| *s != dn) {
        if t.state_of(s) == Some(NodeState::Healthy) {
            let i = t.instance_of(s).unwrap();
            t.handle_exit(now, s, i, None, false, true).unwrap();
        }
    }
    started(t)
}

fn heal(t: &mut Tree, dns: &[String], now: Instant) {
    for dn in dns {
        if t.state_of(dn) == Some(NodeState::New) {
            let i = t.instance_of(dn).unwrap();
            t.handle_signal(now, dn, i, false).unwrap();
        }
    }
}

#[test]
fn one_crash_in_a_group_of_eleven_is_one_restart() {
    let (mut t, dns) = group_of(11);
    let now = at(1_000);
    let restarted = crash(&mut t, &dns, &dns[3], now);
    assert!(!t.is_finished(), "one crash in a group of 11 must not exceed the default intensity");
    let innocents: Vec<&String> = dns.iter().filter(|d| *d != &dns[3]).collect();
    assert_eq!(restarted.len(), 10, "the 10 cancelled siblings restart at once: {restarted:?}");
    assert!(innocents.iter().all(|d| restarted.contains_key(*d)));
    assert!(!restarted.contains_key(&dns[3]), "the member that failed waits out its backoff");
    let pending = t.pending_restarts();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].dn, dns[3]);
    let when = pending[0].at.expect("scheduled");
    assert!(when > now && when <= now + BackoffConfig::TREE.initial, "backoff of the failed member: {when:?}");
    assert_eq!(t.nodes[ROOT].child_restarts.len(), 1, "charged once");
    t.handle_timeout(when);
    assert_eq!(started(&mut t).keys().collect::<Vec<_>>(), [&dns[3]]);
    heal(&mut t, &dns, when);
    assert!(t.is_settled());
    assert!(!t.nodes[ROOT].groups[0].restarting, "the group restart is over");
}

#[test]
fn a_member_failing_three_times_in_twenty_seconds_keeps_the_tree_running() {
    let (mut t, dns) = group_of(11);
    let mut now = at(1_000);
    for round in 0..3 {
        crash(&mut t, &dns, &dns[0], now);
        let when = t.pending_restarts()[0].at.expect("scheduled");
        t.handle_timeout(when);
        started(&mut t);
        heal(&mut t, &dns, when);
        assert!(!t.is_finished(), "round {round}");
        now = when + Duration::from_secs(5);
    }
    assert!(now < at(21_000));
    assert_eq!(t.nodes[ROOT].child_restarts.len(), 3, "three group restarts, three charges");
    assert!(t.is_settled());
}

#[test]
fn a_second_failure_during_the_group_restart_is_not_charged_again() {
    let (mut t, dns) = group_of(3);
    let now = at(1_000);
    let (a, b) = (dns[0].clone(), dns[1].clone());
    let ia = t.instance_of(&a).unwrap();
    let ib = t.instance_of(&b).unwrap();
    // Both fail on their own before the tree saw either.
    t.handle_exit(now, &a, ia, Some("a"), false, false).unwrap();
    t.handle_exit(now, &b, ib, Some("b"), false, false).unwrap();
    let ic = t.instance_of(&dns[2]).unwrap();
    t.handle_exit(now, &dns[2], ic, None, false, true).unwrap();
    let restarted = started(&mut t);
    assert_eq!(restarted.keys().collect::<Vec<_>>(), [&dns[2]], "only the cancelled sibling restarts at once");
    assert_eq!(t.nodes[ROOT].child_restarts.len(), 1, "one group restart, one charge");
    assert_eq!(t.pending_restarts().iter().filter(|p| p.at.is_some()).count(), 2, "both failed members back off");
}

#[test]
fn cancelled_siblings_wait_for_the_whole_group_then_restart_without_delay() {
    let (mut t, dns) = group_of(3);
    let now = at(1_000);
    let i0 = t.instance_of(&dns[0]).unwrap();
    t.handle_exit(now, &dns[0], i0, Some("crash"), false, false).unwrap();
    let i1 = t.instance_of(&dns[1]).unwrap();
    t.handle_exit(now, &dns[1], i1, None, false, true).unwrap();
    assert!(started(&mut t).is_empty(), "m2 has not returned yet: nothing restarts beside it");
    let later = now + Duration::from_millis(70);
    let i2 = t.instance_of(&dns[2]).unwrap();
    t.handle_exit(later, &dns[2], i2, None, false, true).unwrap();
    let restarted = started(&mut t);
    assert_eq!(restarted.keys().collect::<Vec<_>>(), [&dns[1], &dns[2]]);
    let backoff_before = t.nodes[&dns[1]].backoff.peek();
    assert_eq!(backoff_before, BackoffConfig::TREE.initial, "an innocent restart does not advance its backoff");
}

#[test]
fn a_signal_through_a_stale_context_is_a_programming_error() {
    let (mut t, dns) = group_of(2);
    let old = t.instance_of(&dns[0]).unwrap();
    crash(&mut t, &dns, &dns[1], at(5));
    let e = t.handle_signal(at(6), &dns[0], old, false).unwrap_err();
    assert!(matches!(e, TreeError::StaleContext { .. }), "{e:?}");
    assert_eq!((t.metrics.programming_errors, t.metrics.internal_errors), (1, 0));
}

#[test]
fn state_changes_are_observable_per_node() {
    let (mut t, dns) = group_of(1);
    let changes: Vec<StateChange> = std::iter::from_fn(|| t.poll_state_change()).collect();
    assert!(changes.contains(&StateChange {
        dn: dns[0].clone(),
        instance: t.instance_of(&dns[0]).unwrap(),
        from: Some(NodeState::New),
        to: Some(NodeState::Healthy)
    }));
    assert_eq!(t.node_states()[&dns[0]], NodeState::Healthy);
}
