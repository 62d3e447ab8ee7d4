//! Self-test for torn writes: a writer appends checksummed records
//! (`len u32 | fnv32 u32 | payload`) to a journal, fsyncs every batch and
//! acknowledges it; host crashes tear the last unsynced append. On boot
//! the reader keeps the valid prefix and cuts the rest. Mutant
//! `torn-record-accepted`: the reader trusts the length prefix and accepts
//! a short final record without checking its checksum.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use warden::crash_point;
use warden::env::{DiskEnv, Env, OpenOptions};

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use crate::env::SimEnv;

/// The journal model.
pub(super) struct Journal;

static SPEC: ModelSpec = ModelSpec {
    name: "selftest.journal",
    about: "a checksummed append-only journal under host crashes and crash points",
    invariants: &["no-torn-record-accepted", "acknowledged-records-survive", "journal-makes-progress"],
    coverage: &[("torn-tail-seen", "a boot that found a partial record at the journal's tail")],
    params: &[Param { name: "batch_max", default: 3, min: 1, max: 1000, about: "most records per fsync" }],
};

fn fnv32(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, x| (h ^ u32::from(*x)).wrapping_mul(0x0100_0193))
}

fn encode(payload: &[u8]) -> Vec<u8> {
    let mut r = (payload.len() as u32).to_le_bytes().to_vec();
    r.extend_from_slice(&fnv32(payload).to_le_bytes());
    r.extend_from_slice(payload);
    r
}

/// Parses records; returns them and the length of the valid prefix, and
/// whether bytes past it were found.
fn decode(bytes: &[u8], trust_length: bool) -> (Vec<Vec<u8>>, usize, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= 8 {
        let len = u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        let sum = u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]);
        let end = pos + 8 + len;
        if end > bytes.len() {
            if trust_length {
                // The planted bug: a short final record is taken as is.
                out.push(bytes[pos + 8..].to_vec());
                return (out, bytes.len(), false);
            }
            break;
        }
        let payload = &bytes[pos + 8..end];
        if fnv32(payload) != sum {
            break;
        }
        out.push(payload.to_vec());
        pos = end;
    }
    (out, pos, pos < bytes.len())
}

struct Shared {
    /// Payloads in journal order that may be on disk.
    written: RefCell<Vec<Vec<u8>>>,
    acked: RefCell<usize>,
    boots: RefCell<u64>,
}

async fn recover(env: &SimEnv, s: &Shared, checks: &crate::check::Checks) -> std::io::Result<warden_file::File> {
    env.create_dir_all(Path::new("/j")).await?;
    let f = env.open(Path::new("/j/log"), OpenOptions { create: true, truncate: false }).await?;
    env.sync_dir(Path::new("/j")).await?;
    let bytes = env.read_all(&f).await?;
    let (records, valid, torn) = decode(&bytes, env.mutant("torn-record-accepted"));
    *s.boots.borrow_mut() += 1;
    if *s.boots.borrow() > 1 {
        checks.cover("torn-tail-seen", torn);
    }
    let written = s.written.borrow().clone();
    for (i, r) in records.iter().enumerate() {
        if written.get(i) != Some(r) {
            checks.fail(
                "no-torn-record-accepted",
                format!("record {i} read back as {} bytes that were never written there", r.len()),
            );
        }
    }
    let acked = *s.acked.borrow();
    if records.len() < acked {
        checks.fail("acknowledged-records-survive", format!("{acked} records acknowledged, {} found", records.len()));
    }
    if valid < bytes.len() {
        env.truncate(&f, valid as u64).await?;
    }
    // What a killed process appended is in the page cache but not durable:
    // only after this fsync may recovery call it acknowledged.
    env.sync_file(&f).await?;
    s.written.borrow_mut().truncate(records.len());
    *s.acked.borrow_mut() = records.len();
    Ok(f)
}

/// Keeps the file type name short in signatures.
mod warden_file {
    pub(super) type File = crate::world::SimFd;
}

impl Model for Journal {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let shared = Rc::new(Shared { written: RefCell::default(), acked: RefCell::new(0), boots: RefCell::new(0) });
        let batch_max = params.count("batch_max").max(1);
        let h1 = world.add_host("h1");
        let (s, checks) = (shared.clone(), world.checks());
        world.register("journal", move |env: SimEnv, _args| {
            let (s, checks) = (s.clone(), checks.clone());
            async move {
                let f = loop {
                    match recover(&env, &s, &checks).await {
                        Ok(f) => break f,
                        Err(_) => env.sleep(Duration::from_millis(5)).await,
                    }
                };
                loop {
                    let batch = 1 + env.random_below(batch_max);
                    let mut ok = true;
                    for _ in 0..batch {
                        let n = s.written.borrow().len();
                        let pad = env.random_below(120) as usize;
                        let payload = format!("record-{n}-{}", "x".repeat(pad)).into_bytes();
                        s.written.borrow_mut().push(payload.clone());
                        if env.append(&f, &encode(&payload)).await.is_err() {
                            ok = false;
                            break;
                        }
                        crash_point!(env, "selftest.journal.after_append").await;
                        // Batching: more appends may follow before the fsync.
                        env.sleep(env.random_duration(Duration::from_millis(3))).await;
                    }
                    if ok && env.sync_file(&f).await.is_ok() {
                        crash_point!(env, "selftest.journal.after_sync").await;
                        *s.acked.borrow_mut() = s.written.borrow().len();
                    } else {
                        // An append or fsync failed: the file's state is unknown,
                        // so start over from what recovery finds.
                        return 1;
                    }
                    env.sleep(env.random_duration(Duration::from_millis(30))).await;
                }
            }
        });
        if let Err(e) = world.add_init(h1, "journal", Vec::new(), true) {
            world.checks().fail("journal-makes-progress", format!("cannot start the journal: {e}"));
        }
        Box::new(move |checks| {
            if *shared.acked.borrow() == 0 {
                checks.pending("journal-makes-progress", "no record was ever acknowledged");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_keeps_the_valid_prefix_only() {
        let mut bytes = encode(b"one");
        bytes.extend(encode(b"two"));
        let full = bytes.len();
        bytes.extend(&encode(b"three")[..6]);
        let (r, valid, torn) = decode(&bytes, false);
        assert_eq!(r, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(valid, full);
        assert!(torn);
        let mut bad = encode(b"abc");
        bad[9] ^= 1;
        assert_eq!(decode(&bad, false).0.len(), 0);
        let (r, _, _) = decode(&encode(b"abcdef")[..10], true);
        assert_eq!(r, vec![b"ab".to_vec()], "the planted bug accepts a short record");
    }
}
