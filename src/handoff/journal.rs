//! The coordinator's journal: one record, replaced atomically at every
//! phase (write a temp file, fsync it, rename it over the journal, fsync
//! the directory), so that after any crash the file holds either the old
//! record or the new one. The record is checksummed: a torn or partial
//! record (or any other damage) is rejected, never half-read.
//!
//! It is also the lease: a record in any phase but `Idle` means a handoff
//! is in progress, and a restarted coordinator finishes it before it
//! accepts another.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::id::{HandoffId, Token};
use crate::env::{DiskEnv, OpenOptions, Pid};

/// File name of the journal in the state directory.
pub const FILE: &str = "handoff.journal";
const TMP: &str = "handoff.journal.tmp";
const MAGIC: &[u8; 4] = b"WHJ1";
const HEADER: usize = 4 + 4 + 8;
/// Largest record accepted (a record is a few hundred bytes).
pub const RECORD_MAX: usize = 64 * 1024;

/// How to start a generation, and who it is once started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenRecord {
    /// Its token (names its handoff socket too).
    pub token: Token,
    /// Its pid, once known.
    pub pid: Option<Pid>,
    /// The program it runs.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

/// The journaled phase, written before the step it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JournalPhase {
    /// No handoff: the record names the committed incumbent.
    Idle,
    /// A handoff took the lease; N may have been spawned.
    Started,
    /// Both sessions are up; PrepareHandoff is about to be sent.
    Prepared,
    /// O sealed; Begin is about to be sent.
    Sealed,
    /// Decided: N wins.
    Committing,
    /// Decided: O stays (or its program restarts).
    Aborting,
}

impl JournalPhase {
    const ALL: [JournalPhase; 6] = [
        JournalPhase::Idle,
        JournalPhase::Started,
        JournalPhase::Prepared,
        JournalPhase::Sealed,
        JournalPhase::Committing,
        JournalPhase::Aborting,
    ];

    fn code(self) -> u8 {
        match self {
            JournalPhase::Idle => 1,
            JournalPhase::Started => 2,
            JournalPhase::Prepared => 3,
            JournalPhase::Sealed => 4,
            JournalPhase::Committing => 5,
            JournalPhase::Aborting => 6,
        }
    }

    /// Lower-case name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            JournalPhase::Idle => "idle",
            JournalPhase::Started => "started",
            JournalPhase::Prepared => "prepared",
            JournalPhase::Sealed => "sealed",
            JournalPhase::Committing => "committing",
            JournalPhase::Aborting => "aborting",
        }
    }
}

impl fmt::Display for JournalPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The one record of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The phase.
    pub phase: JournalPhase,
    /// The handoff ([`HandoffId::NONE`] when idle).
    pub id: HandoffId,
    /// O: the serving generation (when idle, the committed one).
    pub incumbent: GenRecord,
    /// N, during a handoff.
    pub successor: Option<GenRecord>,
    /// Why the handoff is aborted (`Aborting` only).
    pub reason: String,
}

impl Record {
    /// Whether this record holds the lease (a handoff is in progress).
    pub fn in_progress(&self) -> bool {
        self.phase != JournalPhase::Idle
    }
}

/// Why the journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The disk failed.
    #[error("journal I/O: {0}")]
    Io(#[from] io::Error),
    /// The record is torn, partial or damaged: it is rejected whole.
    #[error("journal record rejected: {0}")]
    Corrupt(&'static str),
}

fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| (h ^ u64::from(*x)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_gen(out: &mut Vec<u8>, g: &GenRecord) {
    out.extend_from_slice(&g.token.0.to_be_bytes());
    out.extend_from_slice(&g.pid.unwrap_or(0).to_be_bytes());
    put_str(out, &g.program);
    out.extend_from_slice(&(g.args.len() as u32).to_be_bytes());
    for a in &g.args {
        put_str(out, a);
    }
}

/// The bytes of `rec` as stored: magic, length, checksum, payload.
pub fn encode(rec: &Record) -> Vec<u8> {
    let mut p = vec![rec.phase.code()];
    p.extend_from_slice(&rec.id.0.to_be_bytes());
    put_gen(&mut p, &rec.incumbent);
    match &rec.successor {
        Some(g) => {
            p.push(1);
            put_gen(&mut p, g);
        }
        None => p.push(0),
    }
    put_str(&mut p, &rec.reason);
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(p.len() as u32).to_be_bytes());
    out.extend_from_slice(&fnv64(&p).to_be_bytes());
    out.extend_from_slice(&p);
    out
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JournalError> {
        if self.0.len() < n {
            return Err(JournalError::Corrupt("field runs past the record"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, JournalError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, JournalError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, JournalError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, JournalError> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| JournalError::Corrupt("string is not UTF-8"))
    }
    fn gen_record(&mut self) -> Result<GenRecord, JournalError> {
        let token = Token(self.u64()?);
        let pid = Some(self.u32()?).filter(|p| *p != 0);
        let program = self.string()?;
        let n = self.u32()? as usize;
        if n > self.0.len() / 4 {
            return Err(JournalError::Corrupt("argument count runs past the record"));
        }
        let args = (0..n).map(|_| self.string()).collect::<Result<_, _>>()?;
        Ok(GenRecord { token, pid, program, args })
    }
}

/// Parses a stored record; anything but one whole, intact record is
/// [`JournalError::Corrupt`].
pub fn decode(bytes: &[u8]) -> Result<Record, JournalError> {
    if bytes.len() < HEADER {
        return Err(JournalError::Corrupt("shorter than a record header (torn)"));
    }
    if &bytes[..4] != MAGIC {
        return Err(JournalError::Corrupt("bad magic"));
    }
    let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if len > RECORD_MAX {
        return Err(JournalError::Corrupt("length above the record limit"));
    }
    let payload = &bytes[HEADER..];
    if payload.len() < len {
        return Err(JournalError::Corrupt("partial record (torn)"));
    }
    if payload.len() > len {
        return Err(JournalError::Corrupt("bytes after the record"));
    }
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&bytes[8..16]);
    if fnv64(payload) != u64::from_be_bytes(sum) {
        return Err(JournalError::Corrupt("checksum mismatch"));
    }
    let mut c = Cursor(payload);
    let code = c.u8()?;
    let phase =
        JournalPhase::ALL.into_iter().find(|p| p.code() == code).ok_or(JournalError::Corrupt("unknown phase"))?;
    let id = HandoffId(c.u64()?);
    let incumbent = c.gen_record()?;
    let successor = match c.u8()? {
        0 => None,
        1 => Some(c.gen_record()?),
        _ => return Err(JournalError::Corrupt("bad successor flag")),
    };
    let reason = c.string()?;
    if !c.0.is_empty() {
        return Err(JournalError::Corrupt("bytes after the last field"));
    }
    Ok(Record { phase, id, incumbent, successor, reason })
}

/// The journal in a state directory.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// The journal kept in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Journal { dir: dir.into() }
    }

    /// Its state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Replaces the record atomically and durably: temp file, fsync,
    /// rename, fsync of the directory. On an error the journal holds the
    /// old record or (if only the directory fsync failed) possibly the new
    /// one; either is whole.
    pub async fn write<E: DiskEnv>(&self, env: &E, rec: &Record) -> io::Result<()> {
        let tmp = self.dir.join(TMP);
        env.create_dir_all(&self.dir).await?;
        {
            let f = env.open(&tmp, OpenOptions { create: true, truncate: true }).await?;
            env.append(&f, &encode(rec)).await?;
            env.sync_file(&f).await?;
        }
        env.rename(&tmp, &self.path()).await?;
        env.sync_dir(&self.dir).await
    }

    /// The record, `None` when there is no journal yet.
    pub async fn read<E: DiskEnv>(&self, env: &E) -> Result<Option<Record>, JournalError> {
        let f = match env.open(&self.path(), OpenOptions::default()).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bytes = env.read_all(&f).await?;
        decode(&bytes).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen_record(t: u64, pid: Option<Pid>) -> GenRecord {
        GenRecord { token: Token(t), pid, program: "svc".into(), args: vec!["--v".into(), format!("{t}")] }
    }

    fn sample() -> Record {
        Record {
            phase: JournalPhase::Aborting,
            id: HandoffId(99),
            incumbent: gen_record(1, Some(10)),
            successor: Some(gen_record(2, None)),
            reason: "seal timed out".into(),
        }
    }

    #[test]
    fn records_round_trip() {
        let r = sample();
        assert_eq!(decode(&encode(&r)).unwrap(), r);
        let idle = Record { phase: JournalPhase::Idle, successor: None, reason: String::new(), ..sample() };
        assert_eq!(decode(&encode(&idle)).unwrap(), idle);
        assert!(!idle.in_progress() && r.in_progress());
    }

    #[test]
    fn every_torn_prefix_is_rejected() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() {
            assert!(matches!(decode(&bytes[..n]), Err(JournalError::Corrupt(_))), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn every_flipped_bit_and_appended_byte_is_rejected() {
        let bytes = encode(&sample());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(decode(&b).is_err(), "flip of bit {bit} of byte {i} accepted");
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn huge_lengths_are_rejected_before_reading() {
        let mut b = encode(&sample());
        b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&b), Err(JournalError::Corrupt("length above the record limit"))));
    }
}
