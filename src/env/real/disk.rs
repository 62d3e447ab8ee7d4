//! Files and the state-directory lock of the real backend.
//!
//! The calls are plain blocking std calls made inside the futures: local
//! disk answers in microseconds, and the real backend drives everything on
//! one thread with no blocking pool (DESIGN.md "The shape of Env"), so a
//! slow disk stalls the process. Files are opened close-on-exec (std).
// The real backend is exempt from the core bans (DESIGN.md rule 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fs::File;
use std::future::Future;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::env::OpenOptions;

/// An open file, read at any offset and written at its end (`O_APPEND`).
#[derive(Debug)]
pub struct RealFile {
    file: File,
}

/// An exclusive `flock` on a directory; dropping it unlocks and closes.
/// The kernel drops it too when the holding process dies.
#[derive(Debug)]
pub struct RealDirLock {
    _lock: Flock<File>,
}

pub(super) fn open(path: &Path, opts: OpenOptions) -> impl Future<Output = io::Result<RealFile>> + 'static {
    let path = path.to_path_buf();
    async move {
        // O_APPEND through custom_flags rather than `.append(true)`: std
        // refuses append together with truncate.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(opts.create)
            .truncate(opts.truncate)
            .custom_flags(libc::O_APPEND)
            .open(&path)?;
        Ok(RealFile { file })
    }
}

pub(super) async fn append(f: &RealFile, buf: &[u8]) -> io::Result<()> {
    (&f.file).write_all(buf)
}

pub(super) async fn read_all(f: &RealFile) -> io::Result<Vec<u8>> {
    // pread from 0: independent of the file position, which O_APPEND
    // writes move.
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match f.file.read_at(&mut chunk, out.len() as u64) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

pub(super) async fn truncate(f: &RealFile, len: u64) -> io::Result<()> {
    f.file.set_len(len)
}

pub(super) async fn sync_file(f: &RealFile) -> io::Result<()> {
    f.file.sync_all()
}

pub(super) fn rename(from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + 'static {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    async move { std::fs::rename(from, to) }
}

pub(super) fn remove_file(path: &Path) -> impl Future<Output = io::Result<()>> + 'static {
    let path = path.to_path_buf();
    async move { std::fs::remove_file(path) }
}

pub(super) fn create_dir_all(path: &Path) -> impl Future<Output = io::Result<()>> + 'static {
    let path = path.to_path_buf();
    async move { std::fs::create_dir_all(path) }
}

fn open_dir(dir: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(dir)
}

pub(super) fn sync_dir(dir: &Path) -> impl Future<Output = io::Result<()>> + 'static {
    let dir = dir.to_path_buf();
    async move { open_dir(&dir)?.sync_all() }
}

pub(super) fn read_dir(dir: &Path) -> impl Future<Output = io::Result<Vec<String>>> + 'static {
    let dir = dir.to_path_buf();
    async move {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name();
            // A lossy name would name a file that does not exist.
            let name = name.into_string().map_err(|n| {
                io::Error::new(io::ErrorKind::InvalidData, format!("file name {n:?} in {} is not UTF-8", dir.display()))
            })?;
            names.push(name);
        }
        names.sort_unstable();
        Ok(names)
    }
}

pub(super) fn lock_dir(dir: &Path) -> io::Result<RealDirLock> {
    let file = open_dir(dir)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(RealDirLock { _lock: lock }),
        Err((_, Errno::EWOULDBLOCK)) => {
            Err(io::Error::new(io::ErrorKind::WouldBlock, format!("{} is locked by another holder", dir.display())))
        }
        Err((_, e)) => Err(e.into()),
    }
}
