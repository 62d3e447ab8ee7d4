//! Properties of the handoff machines under random event sequences: no
//! panic, and the safety rules hold whatever the peers do.

use std::time::Duration;

use proptest::prelude::*;
use warden::env::Instant;
use warden::handoff::coordinator::{
    Coordinator, CoordinatorAction as SA, CoordinatorBugs, CoordinatorConfig, CoordinatorEvent as SE, GenSpec,
};
use warden::handoff::id::{HandoffId, PeerState, Role, Token};
use warden::handoff::incumbent::{Incumbent, IncumbentAction as OA, IncumbentConfig, IncumbentEvent as OE};
use warden::handoff::successor::{Successor, SuccessorAction as NA, SuccessorConfig, SuccessorEvent as NE};
use warden::handoff::wire::{Frame, Hello};

fn frames(id: HandoffId) -> Vec<Frame> {
    let other = HandoffId(id.0 ^ 1);
    vec![
        Frame::HelloAck { id, version: 1 },
        Frame::PrepareHandoff { id, deadline_ms: 100, drain_grace_ms: 10 },
        Frame::PrepareHandoff { id: other, deadline_ms: 100, drain_grace_ms: 10 },
        Frame::SealRequest { id },
        Frame::Commit { id },
        Frame::Commit { id: other },
        Frame::ResumeAfterAbort { id },
        Frame::ResumeAfterAbort { id: other },
        Frame::Begin { id },
        Frame::Begin { id: other },
        Frame::Abort { id, reason: "x".into() },
        Frame::Heartbeat { id },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// O accepts again only after ResumeAfterAbort of its own handoff, and
    /// never after it took a Commit.
    #[test]
    fn incumbent_resumes_only_on_its_own_resume(events in prop::collection::vec((0u8..6, 0usize..12), 1..60)) {
        let id = HandoffId(8);
        let mut o = Incumbent::new(IncumbentConfig::default(), (1, Token(1)), vec!["l".into()], true, false);
        let mut t = Instant::BOOT;
        let (mut resume_seen, mut committed) = (false, false);
        for (kind, i) in events {
            t += Duration::from_millis(7);
            let ev = match kind {
                0 => OE::SessionOpened(1),
                1 | 2 => OE::Frame(1, frames(id)[i].clone()),
                3 => OE::DrainDone { id, open_conns: 0 },
                4 => OE::SealDone { id, result: if i % 3 == 0 { Err("e".into()) } else { Ok(()) } },
                _ => OE::ResumeDone(Ok(())),
            };
            if let OE::Frame(_, Frame::ResumeAfterAbort { id: rid }) = &ev { resume_seen |= *rid == o.handoff() && !o.handoff().is_none(); }
            o.handle_event(t, ev);
            if o.poll_timeout().is_some_and(|d| d <= t) { o.handle_timeout(t); }
            while let Some(a) = o.poll_action() {
                match a {
                    OA::StartAccepting => {
                        prop_assert!(resume_seen, "accepting again without a resume of its own handoff");
                        prop_assert!(!committed, "accepting after Commit");
                        resume_seen = false;
                    }
                    // O took the Commit: it retires.
                    OA::Notify(warden::handoff::session::AppEvent::Committed(_)) => committed = true,
                    _ => {}
                }
            }
        }
    }

    /// N accepts only after Begin of its own handoff.
    #[test]
    fn successor_accepts_only_after_its_begin(events in prop::collection::vec((0u8..4, 0usize..12), 1..60)) {
        let id = HandoffId(8);
        let mut n = Successor::new(Instant::BOOT, SuccessorConfig::default(), id, (2, Token(2)), vec!["l".into()], false);
        let mut t = Instant::BOOT;
        let mut begun = false;
        for (kind, i) in events {
            t += Duration::from_millis(7);
            let ev = match kind {
                0 => NE::SessionOpened(1),
                1 | 2 => NE::Frame(1, frames(id)[i].clone()),
                _ => NE::Health { healthz_ok: i % 2 == 0, revisions: vec![] },
            };
            if matches!(&ev, NE::Frame(_, Frame::Begin { id: b }) if *b == id) { begun = true; }
            n.handle_event(t, ev);
            while let Some(a) = n.poll_action() {
                if a == NA::StartAccepting { prop_assert!(begun, "accepting before Begin"); }
            }
        }
    }

    /// S sends Begin only after SealComplete, and Commit only after a
    /// healthy Ready, of the running handoff; it never panics.
    #[test]
    fn coordinator_begins_after_seal_and_commits_only_healthy(events in prop::collection::vec((0u8..12, 0u8..8), 1..120)) {
        let spec = GenSpec { program: "svc".into(), args: vec![] };
        let mut c = Coordinator::new(CoordinatorConfig::default(), CoordinatorBugs::default(), spec.clone(), 3);
        let mut t = Instant::BOOT;
        let mut tokens: Vec<Token> = Vec::new();
        let (mut sealed, mut healthy): (Vec<HandoffId>, Vec<HandoffId>) = (Vec::new(), Vec::new());
        let mut pending_write = false;
        for (kind, x) in events {
            t += Duration::from_millis(50);
            while let Some(a) = c.poll_action() {
                match &a {
                    SA::Spawn { token, .. } | SA::Connect(token) if !tokens.contains(token) => tokens.push(*token),
                    SA::WriteJournal(_) => pending_write = true,
                    SA::Send(_, Frame::Begin { id }) => prop_assert!(sealed.contains(id), "Begin before SealComplete"),
                    SA::Send(_, Frame::Commit { id }) => prop_assert!(healthy.contains(id), "Commit without a healthy Ready"),
                    _ => {}
                }
            }
            if pending_write {
                pending_write = false;
                c.handle_event(t, SE::JournalWritten(if x == 7 { Err("EIO".into()) } else { Ok(()) }));
                continue;
            }
            let tok = tokens.get(x as usize % tokens.len().max(1)).copied().unwrap_or(Token(0));
            let id = c.handoff_id().unwrap_or(HandoffId::NONE);
            let role = if x % 2 == 0 { Role::Incumbent } else { Role::Successor };
            let ev = match kind {
                0 => SE::JournalLoaded(Ok(None)),
                1 => SE::Request(u64::from(x), spec.clone()),
                2 => SE::Spawned(tok, Ok(100 + u32::from(x))),
                3 => SE::SessionOpened(tok, u64::from(x % 3)),
                4 => SE::Frame(tok, u64::from(x % 3), Frame::Hello(Hello {
                    role, pid: 100 + u32::from(x), token: tok, proto_min: 1, proto_max: 1,
                    state: PeerState::Waiting, handoff: id, listeners: vec![],
                })),
                5 => SE::Frame(tok, u64::from(x % 3), Frame::Heartbeat { id }),
                6 => SE::Frame(tok, u64::from(x % 3), Frame::Drained { id, open_conns: 0, accept_closed: true }),
                7 => { sealed.push(id); SE::Frame(tok, u64::from(x % 3), Frame::SealComplete { id }) }
                8 => {
                    let ok = x % 2 == 0;
                    if ok { healthy.push(id) }
                    SE::Frame(tok, u64::from(x % 3), Frame::Ready { id, listening_on: vec![], healthz_ok: ok, revisions: vec![] })
                }
                9 => SE::Exited(tok),
                10 => SE::SessionClosed(tok, u64::from(x % 3)),
                _ => { if let Some(d) = c.poll_timeout() { t = t.max(d); c.handle_timeout(t); } continue; }
            };
            c.handle_event(t, ev);
        }
    }
}
