use super::at;
use crate::handoff::coordinator::{
    Coordinator, CoordinatorAction as A, CoordinatorBugs, CoordinatorConfig, CoordinatorEvent as E,
    CoordinatorPhase as P, GenSpec, HandoffError, Outcome,
};
use crate::handoff::id::{HandoffId, PeerState, Role, Token};
use crate::handoff::journal::{GenRecord, JournalPhase, Record};
use crate::handoff::wire::{Frame, Hello};

fn spec(v: &str) -> GenSpec {
    GenSpec { program: "svc".into(), args: vec![v.into()] }
}

fn drain(c: &mut Coordinator) -> Vec<A> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

fn hello(role: Role, pid: u32, token: Token, state: PeerState, handoff: HandoffId) -> Frame {
    Frame::Hello(Hello { role, pid, token, proto_min: 1, proto_max: 1, state, handoff, listeners: vec!["http".into()] })
}

fn journaled(c: &mut Coordinator, a: &[A], phase: JournalPhase) -> Vec<A> {
    assert!(matches!(a.last(), Some(A::WriteJournal(r)) if r.phase == phase), "expected a {phase} record: {a:?}");
    c.handle_event(at(0), E::JournalWritten(Ok(())));
    drain(c)
}

/// S with its first incumbent (pid 100) attached on session 1; returns O's token.
fn idle(bugs: CoordinatorBugs) -> (Coordinator, Token) {
    let mut c = Coordinator::new(CoordinatorConfig::default(), bugs, spec("v1"), 7);
    assert_eq!(drain(&mut c), vec![A::ReadJournal]);
    c.handle_event(at(0), E::JournalLoaded(Ok(None)));
    let a = drain(&mut c);
    let a = journaled(&mut c, &a, JournalPhase::Idle);
    let [A::Spawn { token: o, role: Role::Incumbent, .. }] = a[..] else { panic!("{a:?}") };
    c.handle_event(at(0), E::Spawned(o, Ok(100)));
    assert_eq!(drain(&mut c), vec![A::Connect(o)]);
    c.handle_event(at(0), E::SessionOpened(o, 1));
    c.handle_event(at(0), E::Frame(o, 1, hello(Role::Incumbent, 100, o, PeerState::Serving, HandoffId::NONE)));
    assert_eq!(drain(&mut c), vec![A::Send(o, Frame::HelloAck { id: HandoffId::NONE, version: 1 })]);
    c.handle_event(at(0), E::Frame(o, 1, Frame::Heartbeat { id: HandoffId::NONE }));
    let a = drain(&mut c);
    assert!(journaled(&mut c, &a, JournalPhase::Idle).is_empty());
    assert_eq!(c.phase(), P::Idle);
    (c, o)
}

/// From idle to Beginning (Begin sent); returns (id, N's token).
fn to_begin(c: &mut Coordinator, o: Token) -> (HandoffId, Token) {
    c.handle_event(at(1), E::Request(1, spec("v2")));
    let a = drain(c);
    let a = journaled(c, &a, JournalPhase::Started);
    let id = c.handoff_id().expect("a handoff");
    assert_eq!(a, vec![A::CrashPoint("handoff.s.after_lease"), A::Send(o, Frame::Heartbeat { id })]);
    c.handle_event(at(1), E::Frame(o, 1, Frame::Heartbeat { id }));
    let a = drain(c);
    let [A::CrashPoint("handoff.s.after_o_hello"), A::Spawn { token: n, role: Role::Successor, id: sid, .. }] = a[..]
    else {
        panic!("{a:?}")
    };
    assert_eq!(sid, id);
    c.handle_event(at(1), E::Spawned(n, Ok(200)));
    assert_eq!(drain(c), vec![A::CrashPoint("handoff.s.after_spawn_successor"), A::Connect(n)]);
    c.handle_event(at(1), E::SessionOpened(n, 2));
    c.handle_event(at(1), E::Frame(n, 2, hello(Role::Successor, 200, n, PeerState::Waiting, id)));
    assert_eq!(drain(c), vec![A::Send(n, Frame::HelloAck { id, version: 1 })]);
    c.handle_event(at(1), E::Frame(n, 2, Frame::Heartbeat { id }));
    let a = drain(c);
    assert_eq!(a[0], A::CrashPoint("handoff.s.after_n_hello"));
    let a = journaled(c, &a, JournalPhase::Prepared);
    assert!(matches!(
        &a[..],
        [A::Send(_, Frame::PrepareHandoff { .. }), A::CrashPoint("handoff.s.after_prepare_sent")]
    ));
    c.handle_event(at(2), E::Frame(o, 1, Frame::Drained { id, open_conns: 0, accept_closed: true }));
    assert_eq!(
        drain(c),
        vec![
            A::CrashPoint("handoff.s.after_drained_recv"),
            A::Send(o, Frame::SealRequest { id }),
            A::CrashPoint("handoff.s.after_seal_request_sent")
        ]
    );
    // A SealComplete of another handoff is ignored.
    c.handle_event(at(2), E::Frame(o, 1, Frame::SealComplete { id: HandoffId(12345) }));
    assert_eq!(drain(c), vec![]);
    assert_eq!(c.phase(), P::Sealing);
    c.handle_event(at(3), E::Frame(o, 1, Frame::SealComplete { id }));
    let a = drain(c);
    assert_eq!(a[0], A::CrashPoint("handoff.s.after_seal_complete_recv"));
    let a = journaled(c, &a, JournalPhase::Sealed);
    assert_eq!(a, vec![A::Send(n, Frame::Begin { id }), A::CrashPoint("handoff.s.after_begin_sent")]);
    (id, n)
}

fn ready(healthz_ok: bool, id: HandoffId) -> Frame {
    Frame::Ready { id, listening_on: vec!["http".into()], healthz_ok, revisions: vec![] }
}

#[test]
fn happy_path_commits_and_n_becomes_the_incumbent() {
    let (mut c, o) = idle(CoordinatorBugs::default());
    let (id, n) = to_begin(&mut c, o);
    c.handle_event(at(4), E::Request(2, spec("v3")));
    assert_eq!(drain(&mut c), vec![A::Reply(2, Err(HandoffError::InProgress { id, phase: "beginning" }))]);
    c.handle_event(at(4), E::Frame(n, 2, ready(true, id)));
    let a = drain(&mut c);
    let a = journaled(&mut c, &a[1..], JournalPhase::Committing);
    assert_eq!(
        a[..3],
        [
            A::Send(n, Frame::Commit { id }),
            A::Send(o, Frame::Commit { id }),
            A::CrashPoint("handoff.s.after_commit_sent")
        ]
    );
    let a = journaled(&mut c, &a, JournalPhase::Idle);
    assert_eq!(
        a,
        vec![A::CrashPoint("handoff.s.after_journal_clear"), A::Reply(1, Ok(Outcome::Committed { id, pid: 200 }))]
    );
    assert_eq!(c.incumbent(), Some((n, Some(200))));
    assert_eq!(c.journal().map(|r| r.incumbent.token), Some(n));
    // The retired O is killed if it does not exit.
    let t = c.poll_timeout().expect("retire deadline");
    c.handle_timeout(t);
    assert_eq!(drain(&mut c), vec![A::Kill(o)]);
    c.handle_event(t, E::Exited(o));
    assert_eq!(drain(&mut c), vec![A::Forget(o)]);
}

#[test]
fn unhealthy_successor_is_aborted_then_o_resumes_unless_the_mutant_commits_it() {
    for bug in [false, true] {
        let (mut c, o) = idle(CoordinatorBugs { commit_unhealthy: bug, ..Default::default() });
        let (id, n) = to_begin(&mut c, o);
        c.handle_event(at(4), E::Frame(n, 2, ready(false, id)));
        let a = drain(&mut c);
        if bug {
            assert!(matches!(a.last(), Some(A::WriteJournal(r)) if r.phase == JournalPhase::Committing));
            continue;
        }
        let a = journaled(&mut c, &a[1..], JournalPhase::Aborting);
        assert!(
            matches!(&a[..], [A::Send(t, Frame::Abort { .. }), A::CrashPoint("handoff.s.after_abort_sent")] if *t == n)
        );
        c.handle_event(at(5), E::Exited(n));
        let a = drain(&mut c);
        assert_eq!(
            a[..3],
            [A::Forget(n), A::Send(o, Frame::ResumeAfterAbort { id }), A::CrashPoint("handoff.s.after_resume_sent")]
        );
        let a = journaled(&mut c, &a, JournalPhase::Idle);
        assert!(matches!(&a[..], [A::Reply(1, Ok(Outcome::Aborted { .. }))]));
        assert_eq!(c.incumbent().map(|i| i.0), Some(o));
    }
}

#[test]
fn seal_timeout_resumes_o_unless_the_mutant_is_on() {
    for bug in [false, true] {
        let (mut c, o) = idle(CoordinatorBugs { seal_timeout_no_resume: bug, ..Default::default() });
        c.handle_event(at(1), E::Request(1, spec("v2")));
        let a = drain(&mut c);
        journaled(&mut c, &a, JournalPhase::Started);
        let id = c.handoff_id().unwrap();
        c.handle_event(at(1), E::Frame(o, 1, Frame::Heartbeat { id }));
        let a = drain(&mut c);
        let A::Spawn { token: n, .. } = a[1] else { panic!() };
        c.handle_event(at(1), E::Spawned(n, Ok(200)));
        c.handle_event(at(1), E::SessionOpened(n, 2));
        c.handle_event(at(1), E::Frame(n, 2, hello(Role::Successor, 200, n, PeerState::Waiting, id)));
        c.handle_event(at(1), E::Frame(n, 2, Frame::Heartbeat { id }));
        let a = drain(&mut c);
        journaled(&mut c, &a[4..], JournalPhase::Prepared);
        c.handle_event(at(2), E::Frame(o, 1, Frame::Drained { id, open_conns: 0, accept_closed: true }));
        drain(&mut c);
        let t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
        let a = drain(&mut c);
        journaled(&mut c, &a, JournalPhase::Aborting);
        c.handle_event(t, E::Exited(n));
        let a = drain(&mut c);
        assert_eq!(a.contains(&A::Send(o, Frame::ResumeAfterAbort { id })), !bug, "{a:?}");
    }
}

#[test]
fn incumbent_death_before_the_seal_restarts_its_program() {
    let (mut c, o) = idle(CoordinatorBugs::default());
    c.handle_event(at(1), E::Request(1, spec("v2")));
    let a = drain(&mut c);
    journaled(&mut c, &a, JournalPhase::Started);
    let id = c.handoff_id().unwrap();
    c.handle_event(at(1), E::Frame(o, 1, Frame::Heartbeat { id }));
    let a = drain(&mut c);
    let A::Spawn { token: n, .. } = a[1] else { panic!() };
    c.handle_event(at(2), E::Exited(o));
    let a = drain(&mut c);
    let a = journaled(&mut c, &a, JournalPhase::Aborting);
    assert_eq!(a, vec![A::Kill(n)], "N never said Hello: killed through its handle");
    c.handle_event(at(3), E::Exited(n));
    let a = drain(&mut c);
    assert!(a.contains(&A::Reply(1, Ok(Outcome::Aborted { id, reason: "incumbent exited before it sealed".into() }))));
    assert_eq!(c.phase(), P::Starting, "O's program starts again after a pause");
    let t = c.poll_timeout().expect("restart timer");
    c.handle_timeout(t);
    let a = drain(&mut c);
    let a = journaled(&mut c, &a[a.len() - 1..], JournalPhase::Idle);
    assert!(matches!(&a[..], [A::Spawn { role: Role::Incumbent, .. }]), "a fresh O: {a:?}");
}

#[test]
fn recovery_refuses_a_pid_that_is_not_the_journaled_one() {
    let mk = |t: u64, pid: u32| GenRecord { token: Token(t), pid: Some(pid), program: "svc".into(), args: vec![] };
    let rec = Record {
        phase: JournalPhase::Sealed,
        id: HandoffId(5),
        incumbent: mk(1, 100),
        successor: Some(mk(2, 200)),
        reason: String::new(),
    };
    let mut c = Coordinator::new(CoordinatorConfig::default(), CoordinatorBugs::default(), spec("v1"), 7);
    drain(&mut c);
    c.handle_event(at(0), E::JournalLoaded(Ok(Some(rec.clone()))));
    c.handle_event(at(0), E::Request(9, spec("v9")));
    assert_eq!(
        drain(&mut c),
        vec![
            A::CrashPoint("handoff.s.recover.after_journal_read"),
            A::Connect(Token(1)),
            A::Connect(Token(2)),
            A::Reply(9, Err(HandoffError::InProgress { id: HandoffId(5), phase: "sealed" }))
        ]
    );
    c.handle_event(at(0), E::ConnectFailed(Token(1), "refused".into()));
    c.handle_event(at(0), E::SessionOpened(Token(2), 1));
    c.handle_event(
        at(0),
        E::Frame(Token(2), 1, hello(Role::Successor, 201, Token(2), PeerState::Waiting, HandoffId(5))),
    );
    // pid 201 is not the journaled 200: N counts as gone, O is gone: abort.
    let a = drain(&mut c);
    assert_eq!(a[0], A::CrashPoint("handoff.s.recover.after_reidentify"));
    assert!(matches!(&a[1..], [A::WriteJournal(r)] if r.phase == JournalPhase::Aborting), "{a:?}");
    c.handle_event(at(0), E::JournalWritten(Ok(())));
    let a = drain(&mut c);
    assert_eq!(a[0], A::CrashPoint("handoff.s.recover.after_decision"));
    assert_eq!(c.phase(), P::Starting, "O's program starts again after a pause");
    let t = c.poll_timeout().expect("restart timer");
    c.handle_timeout(t);
    let a = drain(&mut c);
    assert!(
        matches!(a.last(), Some(A::WriteJournal(r)) if r.phase == JournalPhase::Idle && r.incumbent.token != Token(1)),
        "O's program starts again: {a:?}"
    );
    let _ = rec;
}

#[test]
fn recovery_adopts_by_token_and_pid_then_decides() {
    let mk = |t: u64, pid: u32| GenRecord { token: Token(t), pid: Some(pid), program: "svc".into(), args: vec![] };
    let rec = Record {
        phase: JournalPhase::Sealed,
        id: HandoffId(5),
        incumbent: mk(1, 100),
        successor: Some(mk(2, 200)),
        reason: String::new(),
    };
    let mut c = Coordinator::new(CoordinatorConfig::default(), CoordinatorBugs::default(), spec("v1"), 7);
    drain(&mut c);
    c.handle_event(at(0), E::JournalLoaded(Ok(Some(rec))));
    drain(&mut c);
    c.handle_event(at(0), E::ConnectFailed(Token(1), "refused".into()));
    c.handle_event(at(0), E::SessionOpened(Token(2), 1));
    c.handle_event(
        at(0),
        E::Frame(Token(2), 1, hello(Role::Successor, 200, Token(2), PeerState::Waiting, HandoffId(5))),
    );
    assert_eq!(drain(&mut c), vec![A::Adopt { token: Token(2), pid: 200 }]);
    c.handle_event(at(0), E::Adopted(Token(2), Ok(())));
    assert_eq!(drain(&mut c), vec![A::Send(Token(2), Frame::HelloAck { id: HandoffId(5), version: 1 })]);
    c.handle_event(at(0), E::Frame(Token(2), 1, Frame::Heartbeat { id: HandoffId(5) }));
    let a = drain(&mut c);
    assert_eq!(
        a,
        vec![
            A::CrashPoint("handoff.s.recover.after_reidentify"),
            A::Send(Token(2), Frame::Begin { id: HandoffId(5) }),
            A::CrashPoint("handoff.s.after_begin_sent"),
            A::CrashPoint("handoff.s.recover.after_decision"),
        ]
    );
    assert_eq!(c.phase(), P::Beginning);
}

#[test]
fn the_journal_ignored_mutant_starts_afresh() {
    let rec = Record {
        phase: JournalPhase::Idle,
        id: HandoffId::NONE,
        incumbent: GenRecord { token: Token(1), pid: Some(100), program: "svc".into(), args: vec![] },
        successor: None,
        reason: String::new(),
    };
    let bugs = CoordinatorBugs { journal_ignored: true, ..Default::default() };
    let mut c = Coordinator::new(CoordinatorConfig::default(), bugs, spec("v1"), 7);
    drain(&mut c);
    c.handle_event(at(0), E::JournalLoaded(Ok(Some(rec))));
    assert!(matches!(&drain(&mut c)[..], [A::WriteJournal(r)] if r.incumbent.token != Token(1)));
    assert_eq!(c.phase(), P::Starting);
}
