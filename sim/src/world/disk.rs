//! A host's disk with the durability rules of a real filesystem.
//!
//! Each file (inode) keeps what was written (the page cache, which a
//! process kill keeps) and what was synced. Each directory keeps its
//! entries and its durable entries (as of its last fsync). A host crash
//! rolls files back to their synced data, possibly with a torn prefix of
//! the last unsynced write, and directories back to their durable entries.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::path::{Component, Path, PathBuf};

use warden::env::{DiskEnv, OpenOptions};

use super::fd::{Desc, DescKind};
use super::handles::{SimDirLock, SimFd};
use crate::env::SimEnv;
use crate::rng::{Stream, below};

/// An open file: its host and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    /// The host whose disk holds it.
    pub host: u32,
    /// The inode.
    pub inode: u64,
    /// The host boot it was opened in (a handle from before a crash is stale).
    pub boot: u32,
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug, Default, Clone)]
struct Dir {
    entries: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
}

/// One host's disk.
#[derive(Debug, Default)]
pub struct Disk {
    inodes: BTreeMap<u64, Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    next_inode: u64,
}

/// `path` made absolute and normal, split into (directory, file name).
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let name = parts.pop().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path names no file"))?;
    let dir: PathBuf = std::iter::once("/".to_owned()).chain(parts).collect();
    Ok((dir, name))
}

fn normal_dir(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        if let Component::Normal(s) = c {
            out.push(s);
        }
    }
    out
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or directory", p.display()))
}

impl Disk {
    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    /// Creates `dir` and its parents (directories are durable at once).
    pub fn create_dir_all(&mut self, dir: &Path) {
        let dir = normal_dir(dir);
        for a in dir.ancestors() {
            self.dirs.entry(a.to_path_buf()).or_default();
        }
    }

    /// Opens (maybe creates) a file; returns its inode.
    pub fn open(&mut self, path: &Path, opts: OpenOptions) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        let next = self.next_inode;
        let d = self.dir_mut(&dir)?;
        let inode = match d.entries.get(&name) {
            Some(i) => *i,
            None if opts.create => {
                d.entries.insert(name, next);
                self.next_inode += 1;
                self.inodes.insert(next, Inode::default());
                next
            }
            None => return Err(not_found(path)),
        };
        if opts.truncate
            && let Some(i) = self.inodes.get_mut(&inode)
        {
            i.data.clear();
        }
        Ok(inode)
    }

    fn inode(&mut self, inode: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&inode).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "stale file handle"))
    }

    /// Renames; `to` is replaced.
    pub fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (fd, fname) = split(from)?;
        let (td, tname) = split(to)?;
        let inode = self.dir_mut(&fd)?.entries.remove(&fname).ok_or_else(|| not_found(from))?;
        match self.dir_mut(&td) {
            Ok(d) => {
                d.entries.insert(tname, inode);
                Ok(())
            }
            Err(e) => {
                self.dir_mut(&fd)?.entries.insert(fname, inode);
                Err(e)
            }
        }
    }

    /// Removes a name.
    pub fn remove(&mut self, path: &Path) -> io::Result<()> {
        let (dir, name) = split(path)?;
        self.dir_mut(&dir)?.entries.remove(&name).map(|_| ()).ok_or_else(|| not_found(path))
    }

    /// fsync of a directory.
    pub fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        let d = self.dir_mut(&normal_dir(dir))?;
        d.durable = d.entries.clone();
        Ok(())
    }

    /// Names in a directory.
    pub fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let dir = normal_dir(dir);
        let d = self.dirs.get(&dir).ok_or_else(|| not_found(&dir))?;
        let mut names: BTreeSet<String> = d.entries.keys().cloned().collect();
        for sub in self.dirs.keys() {
            if sub.parent() == Some(dir.as_path())
                && let Some(n) = sub.file_name()
            {
                names.insert(n.to_string_lossy().into_owned());
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Power loss. `raw` decides how much of an unsynced append survives.
    pub fn crash(&mut self, raw: u64) {
        for inode in self.inodes.values_mut() {
            let unsynced_tail = inode.data.len() > inode.synced.len() && inode.data.starts_with(&inode.synced);
            let kept = if unsynced_tail {
                // The last unsynced write may be torn: a prefix of it lands.
                let extra = (inode.data.len() - inode.synced.len()) as u64;
                below(raw, extra + 1) as usize
            } else {
                0
            };
            let mut data = inode.synced.clone();
            if kept > 0 {
                data.extend_from_slice(&inode.data[inode.synced.len()..inode.synced.len() + kept]);
            }
            inode.data = data;
        }
        for d in self.dirs.values_mut() {
            d.entries = d.durable.clone();
        }
        let live: BTreeSet<u64> = self.dirs.values().flat_map(|d| d.entries.values().copied()).collect();
        self.inodes.retain(|i, _| live.contains(i));
    }
}

impl SimEnv {
    fn with_disk<T>(&self, f: impl FnOnce(&mut Disk) -> io::Result<T>) -> io::Result<T> {
        let fail = {
            let w = self.sim.world.borrow();
            w.disk_error > 0.0 && self.sim.faults_allowed()
        };
        if fail {
            let rate = self.sim.world.borrow().disk_error;
            let raw = self.sim.draw(Stream::Disk);
            if crate::rng::unit(raw) <= rate {
                let enospc = raw & 1 == 0;
                return Err(if enospc {
                    io::Error::new(io::ErrorKind::StorageFull, "no space left on device (injected)")
                } else {
                    io::Error::other("input/output error (injected EIO)")
                });
            }
        }
        let mut w = self.sim.world.borrow_mut();
        let host = w.hosts.get_mut(self.host as usize).ok_or_else(|| io::Error::other("no host"))?;
        f(&mut host.disk)
    }

    fn file_of(&self, f: &SimFd) -> io::Result<FileRef> {
        match f.desc().kind {
            DescKind::File(r) => {
                let boots = self.sim.world.borrow().hosts[r.host as usize].boots;
                if r.boot != boots {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "stale file handle"));
                }
                Ok(r)
            }
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("fd is a {}, not a file", f.kind_name()))),
        }
    }
}

impl DiskEnv for SimEnv {
    type File = SimFd;
    type DirLock = SimDirLock;

    fn open(&self, path: &Path, opts: OpenOptions) -> impl Future<Output = io::Result<SimFd>> + 'static {
        let r = self.with_disk(|d| d.open(path, opts)).map(|inode| {
            let boot = self.sim.world.borrow().hosts[self.host as usize].boots;
            SimFd::register(&self.sim, self.proc, Desc::new(DescKind::File(FileRef { host: self.host, inode, boot })))
        });
        std::future::ready(r)
    }

    fn append<'a>(&self, f: &'a SimFd, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
        let r = self.file_of(f).and_then(|r| {
            self.with_disk(|d| {
                d.inode(r.inode)?.data.extend_from_slice(buf);
                Ok(())
            })
        });
        std::future::ready(r)
    }

    fn read_all<'a>(&self, f: &'a SimFd) -> impl Future<Output = io::Result<Vec<u8>>> + 'a {
        let r = self.file_of(f).and_then(|r| self.with_disk(|d| Ok(d.inode(r.inode)?.data.clone())));
        std::future::ready(r)
    }

    fn truncate<'a>(&self, f: &'a SimFd, len: u64) -> impl Future<Output = io::Result<()>> + 'a {
        let r = self.file_of(f).and_then(|r| {
            self.with_disk(|d| {
                d.inode(r.inode)?.data.truncate(len as usize);
                Ok(())
            })
        });
        std::future::ready(r)
    }

    fn sync_file<'a>(&self, f: &'a SimFd) -> impl Future<Output = io::Result<()>> + 'a {
        let r = self.file_of(f).and_then(|r| {
            self.with_disk(|d| {
                let i = d.inode(r.inode)?;
                i.synced = i.data.clone();
                Ok(())
            })
        });
        std::future::ready(r)
    }

    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + 'static {
        std::future::ready(self.with_disk(|d| d.rename(from, to)))
    }

    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>> + 'static {
        std::future::ready(self.with_disk(|d| d.remove(path)))
    }

    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> + 'static {
        std::future::ready(self.with_disk(|d| {
            d.create_dir_all(path);
            Ok(())
        }))
    }

    fn sync_dir(&self, dir: &Path) -> impl Future<Output = io::Result<()>> + 'static {
        std::future::ready(self.with_disk(|d| d.sync_dir(dir)))
    }

    fn read_dir(&self, dir: &Path) -> impl Future<Output = io::Result<Vec<String>>> + 'static {
        std::future::ready(self.with_disk(|d| d.list(dir)))
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<SimDirLock> {
        let dir = normal_dir(dir);
        let mut w = self.sim.world.borrow_mut();
        if !w.hosts[self.host as usize].disk.dirs.contains_key(&dir) {
            return Err(not_found(&dir));
        }
        let key = (self.host, dir.clone());
        if w.locks.get(&key).is_some_and(|holder| *holder != self.proc) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "directory is locked by another process"));
        }
        w.locks.insert(key, self.proc);
        Ok(SimDirLock { sim: self.sim.clone(), host: self.host, dir, proc: self.proc })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> OpenOptions {
        OpenOptions { create: true, truncate: false }
    }

    #[test]
    fn crash_keeps_synced_data_and_durable_names_only() {
        let mut d = Disk::default();
        d.create_dir_all(Path::new("/data"));
        let a = d.open(Path::new("/data/a"), opts()).unwrap();
        d.inode(a).unwrap().data.extend_from_slice(b"hello");
        d.inode(a).unwrap().synced = b"hello".to_vec();
        d.sync_dir(Path::new("/data")).unwrap();
        d.inode(a).unwrap().data.extend_from_slice(b" world");
        let b = d.open(Path::new("/data/tmp"), opts()).unwrap();
        d.inode(b).unwrap().data.extend_from_slice(b"new");
        d.inode(b).unwrap().synced = b"new".to_vec();
        d.rename(Path::new("/data/tmp"), Path::new("/data/a")).unwrap();
        d.crash(0);
        // The rename was never made durable: "a" is the old file, unsynced tail gone.
        let a2 = d.open(Path::new("/data/a"), OpenOptions::default()).unwrap();
        assert_eq!(d.inode(a2).unwrap().data, b"hello");
        assert!(d.open(Path::new("/data/tmp"), OpenOptions::default()).is_err());
    }

    #[test]
    fn crash_may_tear_the_last_unsynced_append() {
        let mut seen = BTreeSet::new();
        for raw in [0, u64::MAX / 3, u64::MAX / 2, u64::MAX] {
            let mut d = Disk::default();
            d.create_dir_all(Path::new("/j"));
            let f = d.open(Path::new("/j/log"), opts()).unwrap();
            d.sync_dir(Path::new("/j")).unwrap();
            d.inode(f).unwrap().data = b"abcdef".to_vec();
            d.crash(raw);
            seen.insert(d.inode(f).unwrap().data.len());
        }
        assert!(seen.len() > 2, "tears at several lengths: {seen:?}");
    }
}
