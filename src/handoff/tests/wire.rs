//! The codec: round trips, splits, limits, errors.

use crate::handoff::id::{HandoffId, PeerState, Role, Token};
use crate::handoff::wire::*;

fn samples() -> Vec<Frame> {
    let id = HandoffId(0x0102_0304_0506_0708);
    vec![
        Frame::Hello(Hello {
            role: Role::Successor,
            pid: 4242,
            token: Token(7),
            proto_min: 1,
            proto_max: 3,
            state: PeerState::Ready,
            handoff: id,
            listeners: vec!["http".into(), "admin".into()],
        }),
        Frame::HelloAck { id, version: 1 },
        Frame::PrepareHandoff { id, deadline_ms: 300_000, drain_grace_ms: 60_000 },
        Frame::Drained { id, open_conns: 3, accept_closed: true },
        Frame::SealRequest { id },
        Frame::SealProgress { id, done: 1, total: 4 },
        Frame::Heartbeat { id },
        Frame::SealComplete { id },
        Frame::SealFailed { id, error: "disk full".into() },
        Frame::Begin { id },
        Frame::Ready { id, listening_on: vec!["http".into()], healthz_ok: false, revisions: vec![1, 2, u64::MAX] },
        Frame::Commit { id },
        Frame::Abort { id, reason: "ready timed out".into() },
        Frame::ResumeAfterAbort { id },
    ]
}

#[test]
fn every_frame_round_trips_through_any_split() {
    for f in samples() {
        let bytes = encode(1, &f).unwrap();
        for split in 0..bytes.len() {
            let mut r = FrameReader::new();
            let (a, b) = bytes.split_at(split);
            let mut a = a;
            assert_eq!(r.feed(&mut a).unwrap(), None, "{f:?} complete after {split} bytes");
            let mut b = b;
            assert_eq!(r.feed(&mut b).unwrap(), Some((1, f.clone())));
            assert!(b.is_empty());
        }
    }
}

#[test]
fn a_piece_is_consumed_only_up_to_the_frame_it_completes() {
    let mut bytes = encode(1, &Frame::Begin { id: HandoffId(1) }).unwrap();
    bytes.extend(encode(1, &Frame::Commit { id: HandoffId(1) }).unwrap());
    let mut r = FrameReader::new();
    let mut input = &bytes[..];
    assert_eq!(r.feed(&mut input).unwrap(), Some((1, Frame::Begin { id: HandoffId(1) })));
    assert_eq!(r.feed(&mut input).unwrap(), Some((1, Frame::Commit { id: HandoffId(1) })));
    assert!(input.is_empty());
}

#[test]
fn bad_frames_are_errors_and_poison_the_reader() {
    let mut r = FrameReader::new();
    let mut big = &[0xff, 0xff, 0xff, 0xff, 0][..];
    assert_eq!(r.feed(&mut big), Err(WireError::BadLength(u32::MAX)));
    assert!(r.capacity() <= HEADER, "nothing reserved for the announced body");
    let mut ok = &encode(1, &Frame::Begin { id: HandoffId(1) }).unwrap()[..];
    assert!(r.feed(&mut ok).is_err(), "a failed stream stays failed");
    let mut v9 = encode(1, &Frame::Begin { id: HandoffId(1) }).unwrap();
    v9[6] = 9;
    assert_eq!(FrameReader::new().feed(&mut &v9[..]), Err(WireError::Version(9)));
    let mut hello9 = encode(9, &samples()[0]).unwrap();
    assert!(FrameReader::new().feed(&mut &hello9[..]).unwrap().is_some(), "Hello parses in any version");
    hello9[8] = 3;
    assert_eq!(FrameReader::new().feed(&mut &hello9[..]), Err(WireError::Invalid("role")));
    let mut trailing = encode(1, &Frame::Begin { id: HandoffId(1) }).unwrap();
    trailing[3] += 1;
    trailing.push(0);
    assert_eq!(FrameReader::new().feed(&mut &trailing[..]), Err(WireError::Trailing(1)));
}

#[test]
fn versions_negotiate_to_the_highest_common_one() {
    assert_eq!(negotiate(1, 5), Ok(PROTO_MAX));
    assert_eq!(negotiate(0, 1), Ok(1));
    assert!(negotiate(PROTO_MAX + 1, PROTO_MAX + 3).is_err());
    assert!(negotiate(3, 2).is_err());
    assert!(negotiate(0, 0).is_err());
}

#[test]
fn encoders_respect_the_limits() {
    let long = "x".repeat(STRING_MAX + 10);
    let bytes = encode(1, &Frame::Abort { id: HandoffId(1), reason: long.clone() }).unwrap();
    let Some((_, Frame::Abort { reason, .. })) = FrameReader::new().feed(&mut &bytes[..]).unwrap() else {
        panic!("not an Abort");
    };
    assert_eq!(reason.len(), STRING_MAX, "free text is cut");
    let names = vec![long; 1];
    assert!(
        encode(1, &Frame::Ready { id: HandoffId(1), listening_on: names, healthz_ok: true, revisions: vec![] })
            .is_err()
    );
    let many = vec![0u64; LIST_MAX + 1];
    assert!(
        encode(1, &Frame::Ready { id: HandoffId(1), listening_on: vec![], healthz_ok: true, revisions: many }).is_err()
    );
}
