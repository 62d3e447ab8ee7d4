use std::time::Duration;

use super::at;
use crate::handoff::id::{HandoffId, PeerState, Token};
use crate::handoff::incumbent::{
    Incumbent, IncumbentAction as A, IncumbentConfig, IncumbentEvent as E, IncumbentPhase as P,
};
use crate::handoff::session::AppEvent;
use crate::handoff::wire::Frame;

const ID: HandoffId = HandoffId(9);

fn drain(o: &mut Incumbent) -> Vec<A> {
    std::iter::from_fn(|| o.poll_action()).collect()
}

/// O attached on session 1 (Hello sent, HelloAck received).
fn attached(stale: bool) -> Incumbent {
    let mut o = Incumbent::new(IncumbentConfig::default(), (10, Token(1)), vec!["http".into()], false, stale);
    assert_eq!(drain(&mut o), vec![A::StartAccepting]);
    o.handle_event(at(0), E::SessionOpened(1));
    let a = drain(&mut o);
    assert!(matches!(&a[..], [A::Send(1, Frame::Hello(h))] if h.state == PeerState::Serving));
    o.handle_event(at(0), E::Frame(1, Frame::HelloAck { id: HandoffId::NONE, version: 1 }));
    assert_eq!(drain(&mut o), vec![A::Send(1, Frame::Heartbeat { id: HandoffId::NONE })]);
    o
}

fn prepared_and_sealed(o: &mut Incumbent) {
    o.handle_event(at(1), E::Frame(1, Frame::PrepareHandoff { id: ID, deadline_ms: 1000, drain_grace_ms: 200 }));
    assert_eq!(
        drain(o),
        vec![
            A::CrashPoint("handoff.o.after_prepare_recv"),
            A::StopAccepting,
            A::Drain { id: ID, grace: Duration::from_millis(200) }
        ]
    );
    o.handle_event(at(2), E::DrainDone { id: ID, open_conns: 0 });
    assert_eq!(
        drain(o),
        vec![
            A::Send(1, Frame::Drained { id: ID, open_conns: 0, accept_closed: true }),
            A::CrashPoint("handoff.o.after_drained_sent")
        ]
    );
    o.handle_event(at(3), E::Frame(1, Frame::SealRequest { id: ID }));
    assert_eq!(drain(o), vec![A::CrashPoint("handoff.o.after_seal_request_recv"), A::Seal { id: ID }]);
    o.handle_event(at(4), E::SealDone { id: ID, result: Ok(()) });
    assert_eq!(
        drain(o),
        vec![A::Send(1, Frame::SealComplete { id: ID }), A::CrashPoint("handoff.o.after_seal_complete_sent")]
    );
    assert_eq!(o.phase(), P::Sealed);
}

#[test]
fn drains_seals_and_exits_on_commit() {
    let mut o = attached(false);
    prepared_and_sealed(&mut o);
    o.handle_event(at(5), E::Frame(1, Frame::Commit { id: ID }));
    let a = drain(&mut o);
    assert_eq!(a[0], A::CrashPoint("handoff.o.after_commit_recv"));
    assert!(matches!(a.last(), Some(A::Exit { code: 0, .. })));
}

#[test]
fn resumes_after_abort_and_serves_again() {
    let mut o = attached(false);
    prepared_and_sealed(&mut o);
    o.handle_event(at(5), E::Frame(1, Frame::ResumeAfterAbort { id: ID }));
    assert_eq!(drain(&mut o), vec![A::Resume { sealed: true }]);
    o.handle_event(at(6), E::ResumeDone(Ok(())));
    let a = drain(&mut o);
    assert_eq!(a[0], A::StartAccepting);
    assert_eq!(o.phase(), P::Serving);
    assert_eq!(o.handoff(), HandoffId::NONE);
}

#[test]
fn a_seal_that_completes_after_the_abort_is_reported_late_then_resumed() {
    let mut o = attached(false);
    o.handle_event(at(1), E::Frame(1, Frame::PrepareHandoff { id: ID, deadline_ms: 1000, drain_grace_ms: 0 }));
    o.handle_event(at(2), E::DrainDone { id: ID, open_conns: 0 });
    o.handle_event(at(3), E::Frame(1, Frame::SealRequest { id: ID }));
    drain(&mut o);
    o.handle_event(at(4), E::Frame(1, Frame::ResumeAfterAbort { id: ID }));
    assert_eq!(drain(&mut o), vec![], "the seal still runs");
    o.handle_event(at(9), E::SealDone { id: ID, result: Ok(()) });
    let a = drain(&mut o);
    assert_eq!(a[0], A::Send(1, Frame::SealComplete { id: ID }));
    assert!(a.contains(&A::Notify(AppEvent::SealCompletedAfterAbort(ID))));
    assert!(a.contains(&A::Resume { sealed: true }));
}

#[test]
fn frames_of_another_handoff_are_ignored_unless_the_mutant_is_on() {
    for stale in [false, true] {
        let mut o = attached(stale);
        prepared_and_sealed(&mut o);
        o.handle_event(at(5), E::Frame(1, Frame::ResumeAfterAbort { id: HandoffId(1) }));
        let a = drain(&mut o);
        if stale {
            assert_eq!(a, vec![A::Resume { sealed: true }], "the planted bug resumes a sealed O");
        } else {
            assert!(matches!(&a[..], [A::Notify(AppEvent::StaleFrame { frame: "ResumeAfterAbort", .. })]), "{a:?}");
            assert_eq!(o.phase(), P::Sealed);
        }
    }
}

#[test]
fn a_second_prepare_is_refused_and_frames_before_hello_ack_are_dropped() {
    let mut o = attached(false);
    prepared_and_sealed(&mut o);
    o.handle_event(at(5), E::Frame(1, Frame::PrepareHandoff { id: HandoffId(2), deadline_ms: 1, drain_grace_ms: 1 }));
    assert!(matches!(&drain(&mut o)[..], [A::Send(1, Frame::Abort { id: HandoffId(2), .. })]));
    o.handle_event(at(6), E::SessionOpened(2));
    assert!(
        matches!(&drain(&mut o)[..], [A::CloseSession(1), A::Send(2, Frame::Hello(h))] if h.state == PeerState::Sealed && h.handoff == ID)
    );
    o.handle_event(at(6), E::Frame(2, Frame::Commit { id: ID }));
    assert_eq!(drain(&mut o), vec![], "no HelloAck yet");
    assert_eq!(o.phase(), P::Sealed);
}

#[test]
fn orphaned_before_the_seal_it_serves_again_after_the_grace() {
    let mut o = attached(false);
    o.handle_event(at(1), E::Frame(1, Frame::PrepareHandoff { id: ID, deadline_ms: 1000, drain_grace_ms: 0 }));
    drain(&mut o);
    o.handle_event(at(2), E::SessionClosed(1));
    let t = o.poll_timeout().expect("orphan timer");
    assert_eq!(t, at(2) + IncumbentConfig::default().orphan_grace);
    o.handle_timeout(t);
    assert_eq!(drain(&mut o), vec![A::Resume { sealed: false }]);
}
