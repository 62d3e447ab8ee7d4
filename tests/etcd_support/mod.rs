//! Real etcd servers for the etcd tests: each member on free loopback
//! ports with its data in a temp dir, started as a child that dies with
//! the test (PR_SET_PDEATHSIG) and is killed on drop, whatever the exit
//! path. No etcd on PATH is a failure with what to install, never a skip.
//! Also a checking client that reads a prefix's whole history, and the
//! fleet the gate's tests drive ([`fleet`]).
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

pub mod fleet;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, WatchOptions};

/// The etcd binary: `etcd` on PATH, or a failure saying what to install.
pub fn etcd_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("etcd")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "etcd is not installed: these tests run a real etcd server. Install Debian's `etcd-server` \
             (ci/setup.sh does: apt-get install etcd-server) so that `etcd` is on PATH."
        )
    })
}

#[allow(unused_imports)]
pub use crate::common::{TempDir, die_with_test, free_port, wait_for};

/// One etcd member.
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Member {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /health` answers `"health":"true"`.
    pub fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], self.client_port).into(), Duration::from_secs(1))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// Sends `signal` to the member's process.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(pid as i32, signal) };
        }
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An etcd cluster of one or more members, on loopback, in a temp dir.
pub struct Cluster {
    pub members: Vec<Member>,
    token: String,
    pub dir: TempDir,
}

impl Cluster {
    /// Starts `n` members and waits until every one is healthy.
    pub fn start(tag: &str, n: usize) -> Cluster {
        let bin = etcd_bin();
        let dir = TempDir::new(tag);
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.0.join(format!("m{i}.etcd")),
                log: dir.0.join(format!("m{i}.log")),
                child: None,
            })
            .collect();
        let token = format!("warden-{tag}-{}", std::process::id());
        let mut c = Cluster { members, token, dir };
        for i in 0..n {
            c.spawn(&bin, i);
        }
        c.wait_healthy(Duration::from_secs(30));
        c
    }

    fn initial_cluster(&self) -> String {
        self.members.iter().map(|m| format!("{}={}", m.name, m.peer_url())).collect::<Vec<_>>().join(",")
    }

    fn spawn(&mut self, bin: &PathBuf, i: usize) {
        let initial = self.initial_cluster();
        let m = &mut self.members[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&m.log).expect("cannot open the etcd log");
        let mut cmd = Command::new(bin);
        cmd.args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.endpoint(), "--advertise-client-urls", &m.endpoint()])
            .args(["--listen-peer-urls", &m.peer_url(), "--initial-advertise-peer-urls", &m.peer_url()])
            .args(["--initial-cluster", &initial, "--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        die_with_test(&mut cmd);
        m.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display())));
    }

    /// Waits until every running member answers healthy.
    pub fn wait_healthy(&self, timeout: Duration) {
        let ok =
            wait_for(timeout, || self.members.iter().filter(|m| m.child.is_some()).all(Member::healthy).then_some(()));
        if ok.is_none() {
            let logs: Vec<String> =
                self.members.iter().map(|m| format!("--- {}:\n{}", m.name, tail(&m.log_text()))).collect();
            panic!("etcd not healthy within {timeout:?}:\n{}", logs.join("\n"));
        }
    }

    /// Starts member `i` again on its data dir and ports.
    pub fn restart(&mut self, i: usize) {
        self.members[i].kill();
        self.spawn(&etcd_bin(), i);
    }

    /// Client URLs of the running members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().filter(|m| m.child.is_some()).map(Member::endpoint).collect()
    }

    /// Client URLs of every member, running or not.
    pub fn all_endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }
}

/// The last 40 lines of `text`.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// What happened to one etcd key, in revision order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Put(i64),
    Delete(i64),
}

/// Every put and delete under `prefix` since revision 1, by key, and the
/// current revision; with the keys present now (key -> mod_revision).
pub async fn history(endpoints: &[String], prefix: &str) -> (BTreeMap<String, Vec<Change>>, BTreeMap<String, i64>) {
    let mut client = Client::connect(endpoints, None).await.expect("checking client connects");
    let now = client.get(prefix, Some(GetOptions::new().with_prefix())).await.expect("read the prefix");
    let head = now.header().map_or(0, |h| h.revision());
    let present = now.kvs().iter().map(|kv| (kv.key_str().unwrap_or_default().to_owned(), kv.mod_revision())).collect();
    let mut changes: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    let mut stream = client
        .watch(prefix, Some(WatchOptions::new().with_prefix().with_start_revision(1)))
        .await
        .expect("watch the history");
    let mut last = 0;
    while last < head {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
        let Ok(Ok(Some(r))) = message else { panic!("history ends at revision {last} of {head}") };
        for e in r.events() {
            let Some(kv) = e.kv() else { continue };
            let rev = kv.mod_revision();
            last = last.max(rev);
            if rev > head {
                // After the read of what is present: not part of this picture.
                continue;
            }
            let key = kv.key_str().unwrap_or_default().to_owned();
            let change = if e.event_type() == EventType::Delete { Change::Delete(rev) } else { Change::Put(rev) };
            changes.entry(key).or_default().push(change);
        }
    }
    (changes, present)
}

/// One registration per deletion, every deletion recovered: each key's
/// history is put, (delete, put)*, and the key is present now. Returns the
/// number of deletions.
pub fn check_one_per_deletion(
    changes: &BTreeMap<String, Vec<Change>>,
    present: &BTreeMap<String, i64>,
    keys: &[String],
) -> usize {
    let mut deletions = 0;
    for key in keys {
        let h = changes.get(key).unwrap_or_else(|| panic!("{key} was never registered"));
        for (i, c) in h.iter().enumerate() {
            let want_put = i % 2 == 0;
            match (want_put, c) {
                (true, Change::Put(_)) => {}
                (false, Change::Delete(_)) => deletions += 1,
                (true, Change::Delete(r)) => {
                    panic!("{key}: deleted twice with no registration between (at {r}): {h:?}")
                }
                (false, Change::Put(r)) => panic!("{key}: registered twice with no deletion between (at {r}): {h:?}"),
            }
        }
        match h.last() {
            Some(Change::Put(r)) => assert_eq!(
                present.get(key),
                Some(r),
                "{key}: the last registration is not the one present: {h:?}; present: {present:?}"
            ),
            _ => panic!("{key}: a deletion was never recovered: {h:?}"),
        }
    }
    deletions
}
