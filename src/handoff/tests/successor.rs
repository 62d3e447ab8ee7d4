use super::at;
use crate::handoff::id::{HandoffId, PeerState, Token};
use crate::handoff::session::AppEvent;
use crate::handoff::successor::{
    Successor, SuccessorAction as A, SuccessorConfig, SuccessorEvent as E, SuccessorPhase as P,
};
use crate::handoff::wire::Frame;

const ID: HandoffId = HandoffId(9);

fn drain(n: &mut Successor) -> Vec<A> {
    std::iter::from_fn(|| n.poll_action()).collect()
}

fn attached() -> Successor {
    let mut n = Successor::new(at(0), SuccessorConfig::default(), ID, (20, Token(2)), vec!["http".into()], false);
    assert_eq!(drain(&mut n), vec![A::CrashPoint("handoff.n.after_listeners_adopted")]);
    n.handle_event(at(0), E::SessionOpened(1));
    assert!(
        matches!(&drain(&mut n)[..], [A::Send(1, Frame::Hello(h))] if h.state == PeerState::Waiting && h.handoff == ID)
    );
    n.handle_event(at(0), E::Frame(1, Frame::HelloAck { id: ID, version: 1 }));
    assert_eq!(drain(&mut n), vec![A::Send(1, Frame::Heartbeat { id: ID }), A::CrashPoint("handoff.n.after_hello")]);
    n
}

#[test]
fn begins_reports_ready_and_is_committed() {
    let mut n = attached();
    n.handle_event(at(1), E::Frame(1, Frame::Begin { id: ID }));
    assert_eq!(
        drain(&mut n),
        vec![
            A::CrashPoint("handoff.n.after_begin_recv"),
            A::StartAccepting,
            A::Notify(AppEvent::Begun(ID)),
            A::CheckHealth
        ]
    );
    n.handle_event(at(2), E::Health { healthz_ok: false, revisions: vec![3] });
    let a = drain(&mut n);
    assert_eq!(
        a[0],
        A::Send(1, Frame::Ready { id: ID, listening_on: vec!["http".into()], healthz_ok: false, revisions: vec![3] })
    );
    n.handle_event(at(3), E::Frame(1, Frame::Commit { id: ID }));
    let a = drain(&mut n);
    assert!(matches!(a.last(), Some(A::BecomeIncumbent(_))), "{a:?}");
    assert_eq!(n.phase(), P::Committed);
}

#[test]
fn abort_stops_accepting_and_exits() {
    let mut n = attached();
    n.handle_event(at(1), E::Frame(1, Frame::Begin { id: ID }));
    drain(&mut n);
    n.handle_event(at(2), E::Frame(1, Frame::Abort { id: ID, reason: "unhealthy".into() }));
    let a = drain(&mut n);
    assert!(a.contains(&A::StopAccepting) && a.contains(&A::CancelHealth));
    assert!(matches!(a.last(), Some(A::Exit { code: 0, .. })));
}

#[test]
fn stale_frames_and_a_missing_begin() {
    let mut n = attached();
    n.handle_event(at(1), E::Frame(1, Frame::Begin { id: HandoffId(1) }));
    assert!(matches!(&drain(&mut n)[..], [A::Notify(AppEvent::StaleFrame { .. })]));
    assert_eq!(n.phase(), P::Waiting);
    let t = n.poll_timeout().expect("begin deadline");
    n.handle_timeout(t);
    assert!(matches!(drain(&mut n).last(), Some(A::Exit { code: 75, .. })));
}

#[test]
fn a_new_session_gets_ready_again() {
    let mut n = attached();
    n.handle_event(at(1), E::Frame(1, Frame::Begin { id: ID }));
    n.handle_event(at(2), E::Health { healthz_ok: true, revisions: vec![] });
    drain(&mut n);
    n.handle_event(at(3), E::SessionClosed(1));
    n.handle_event(at(4), E::SessionOpened(2));
    assert!(matches!(&drain(&mut n)[..], [A::Send(2, Frame::Hello(h))] if h.state == PeerState::Ready));
    n.handle_event(at(4), E::Frame(2, Frame::HelloAck { id: ID, version: 1 }));
    let a = drain(&mut n);
    assert!(matches!(a.last(), Some(A::Send(2, Frame::Ready { healthz_ok: true, .. }))), "{a:?}");
}
