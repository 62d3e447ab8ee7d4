//! The handoff decoder on random and mutated frames: it never panics, never
//! holds more than one frame, and decodes every intact frame exactly.
//! CI runs 20,000 inputs; `HANDOFF_FUZZ_FRAMES=1000000 cargo test --release
//! --test handoff_wire_fuzz` runs a million.

use warden::handoff::id::{HandoffId, PeerState, Role, Token};
use warden::handoff::wire::{FRAME_MAX, Frame, FrameReader, HEADER, Hello, encode};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        warden::env::splitmix64(&mut self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn text(&mut self) -> String {
        (0..self.below(40)).map(|_| char::from(b'a' + self.below(26) as u8)).collect()
    }
}

fn frame(r: &mut Rng) -> Frame {
    let id = HandoffId(r.next());
    match r.below(14) {
        0 => Frame::Hello(Hello {
            role: if r.below(2) == 0 { Role::Incumbent } else { Role::Successor },
            pid: r.next() as u32,
            token: Token(r.next()),
            proto_min: r.below(3) as u16,
            proto_max: r.below(5) as u16,
            state: PeerState::ALL[r.below(11) as usize],
            handoff: id,
            listeners: (0..r.below(4)).map(|_| r.text()).collect(),
        }),
        1 => Frame::HelloAck { id, version: 1 },
        2 => Frame::PrepareHandoff { id, deadline_ms: r.next(), drain_grace_ms: r.next() },
        3 => Frame::Drained { id, open_conns: r.next() as u32, accept_closed: r.below(2) == 0 },
        4 => Frame::SealRequest { id },
        5 => Frame::SealProgress { id, done: r.next() as u32, total: r.next() as u32 },
        6 => Frame::Heartbeat { id },
        7 => Frame::SealComplete { id },
        8 => Frame::SealFailed { id, error: r.text() },
        9 => Frame::Begin { id },
        10 => Frame::Ready {
            id,
            listening_on: (0..r.below(4)).map(|_| r.text()).collect(),
            healthz_ok: r.below(2) == 0,
            revisions: (0..r.below(8)).map(|_| r.next()).collect(),
        },
        11 => Frame::Commit { id },
        12 => Frame::Abort { id, reason: r.text() },
        _ => Frame::ResumeAfterAbort { id },
    }
}

fn mutate(r: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + r.below(4) {
        if b.is_empty() {
            break;
        }
        let i = r.below(b.len() as u64) as usize;
        match r.below(6) {
            0 => b[i] ^= 1 << r.below(8),
            1 => b[i] = r.next() as u8,
            2 => b.truncate(i),
            3 => b.insert(i, r.next() as u8),
            4 => {
                let len = if r.below(2) == 0 { r.next() as u32 } else { r.below(FRAME_MAX as u64 + 64) as u32 };
                if b.len() >= 4 {
                    b[..4].copy_from_slice(&len.to_be_bytes());
                }
            }
            _ => b.extend((0..r.below(16)).map(|_| r.next() as u8)),
        }
    }
    b
}

/// Feeds `bytes` in random pieces; returns the frames decoded before an error.
fn feed(r: &mut Rng, reader: &mut FrameReader, bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = (1 + r.below(64) as usize).min(rest.len());
        let mut piece = &rest[..n];
        rest = &rest[n..];
        while !piece.is_empty() {
            match reader.feed(&mut piece) {
                Ok(Some((_, f))) => out.push(f),
                Ok(None) => {}
                Err(_) => return out,
            }
            assert!(reader.capacity() <= HEADER + FRAME_MAX, "reader holds {} bytes", reader.capacity());
        }
    }
    out
}

#[test]
fn decoder_survives_random_and_mutated_frames() {
    #[allow(clippy::disallowed_methods)] // the test's own size knob
    let n: u64 = std::env::var("HANDOFF_FUZZ_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let mut r = Rng(0x5eed);
    let (mut intact, mut mutated, mut random) = (0u64, 0u64, 0u64);
    for _ in 0..n {
        let mut reader = FrameReader::new();
        match r.below(4) {
            0 => {
                let f = frame(&mut r);
                let Ok(bytes) = encode(1, &f) else { continue };
                assert_eq!(feed(&mut r, &mut reader, &bytes), vec![f]);
                intact += 1;
            }
            1 | 2 => {
                let Ok(bytes) = encode(1, &frame(&mut r)) else { continue };
                let bytes = mutate(&mut r, bytes);
                feed(&mut r, &mut reader, &bytes);
                mutated += 1;
            }
            _ => {
                let len = r.below(256) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
                feed(&mut r, &mut reader, &bytes);
                random += 1;
            }
        }
    }
    println!("handoff decoder fuzz: {n} inputs ({intact} intact, {mutated} mutated, {random} random)");
}
