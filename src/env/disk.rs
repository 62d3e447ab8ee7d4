//! The disk facet: files, renames, directory syncs and an exclusive
//! directory lock, with the durability rules of a real filesystem: data is
//! durable after `sync_file`, a create or rename after `sync_dir` of its
//! directory; a process kill loses nothing written, a host crash loses what
//! was not made durable (and may tear the last unsynced write).

use std::future::Future;
use std::io;
use std::path::Path;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOptions {
    /// Create it if missing.
    pub create: bool,
    /// Empty it.
    pub truncate: bool,
}

/// Files of the calling process's host.
pub trait DiskEnv: super::ProcessEnv {
    /// An open file.
    type File: 'static;
    /// An exclusive lock on a directory, released on drop or when the
    /// holding process dies.
    type DirLock: 'static;

    /// Opens `path` for reading and writing.
    fn open(&self, path: &Path, opts: OpenOptions) -> impl Future<Output = io::Result<Self::File>> + 'static;
    /// Writes `buf` at the end of the file.
    fn append<'a>(&self, f: &'a Self::File, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a;
    /// Reads the whole file.
    fn read_all<'a>(&self, f: &'a Self::File) -> impl Future<Output = io::Result<Vec<u8>>> + 'a;
    /// Cuts the file to `len` bytes.
    fn truncate<'a>(&self, f: &'a Self::File, len: u64) -> impl Future<Output = io::Result<()>> + 'a;
    /// Makes the file's data durable (fsync).
    fn sync_file<'a>(&self, f: &'a Self::File) -> impl Future<Output = io::Result<()>> + 'a;
    /// Renames `from` to `to`, replacing `to` atomically.
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + 'static;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>> + 'static;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> + 'static;
    /// Makes creates, renames and removes in `dir` durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> impl Future<Output = io::Result<()>> + 'static;
    /// Names in a directory, sorted.
    fn read_dir(&self, dir: &Path) -> impl Future<Output = io::Result<Vec<String>>> + 'static;
    /// Takes the exclusive lock on `dir`; `WouldBlock` while another holds it.
    fn lock_dir(&self, dir: &Path) -> io::Result<Self::DirLock>;
}
