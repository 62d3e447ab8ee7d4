//! The handoff on real processes: a test bed that runs the coordinator S
//! (`warden handoff-coordinator`, the binary's own) over the demo service
//! `handoff-echo` on a free loopback port in a temp dir, asks for
//! handoffs on S's admin socket, reads S's journal and `/proc`, and kills
//! every process it started (S's process groups) on every exit path.
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

pub mod load;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use warden::handoff::coordinator::{GenSpec, Outcome, parse_reply, request_line};
use warden::handoff::journal::{FILE, Record};

/// The demo service.
pub fn echo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_handoff-echo")
}

#[allow(unused_imports)]
pub use crate::common::{TempDir, alive, die_with_test, free_port, serial, wait_for, warden_bin};

/// The open fds of `pid`, with what they name (`socket:[123]`, ...).
pub fn fds_of(pid: u32) -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    let mut out: Vec<(i32, String)> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((n, target.display().to_string()))
        })
        .collect();
    out.sort();
    out
}

/// Whether fd `n` of `pid` is close-on-exec (from `/proc/PID/fdinfo`).
pub fn cloexec(pid: u32, n: i32) -> Option<bool> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{n}")).ok()?;
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?.trim();
    let flags = u32::from_str_radix(flags, 8).ok()?;
    Some(flags & 0o2_000_000 != 0)
}

/// The children of `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// The inode of the TCP socket listening on `port` (from /proc/net/tcp).
pub fn listener_inode(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let local_port = f.get(1)?.rsplit_once(':')?.1;
        (u16::from_str_radix(local_port, 16).ok()? == port && *f.get(3)? == "0A")
            .then(|| f.get(9).map(|s| (*s).to_owned()))?
    })
}

fn killpg(pgid: u32, sig: i32) {
    // SAFETY: killpg with a positive group id of a group this bed started.
    unsafe { libc::killpg(pgid as i32, sig) };
}

/// Sends `sig` to process `pid`.
pub fn kill(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a positive pid.
    unsafe { libc::kill(pid as i32, sig) };
}

/// S and the service on one port, in one temp dir.
pub struct Bed {
    pub dir: TempDir,
    pub port: u16,
    /// The running S, if any.
    pub s: Option<Child>,
    /// Extra arguments of S (timings).
    pub s_args: Vec<String>,
    /// The first generation's arguments.
    pub first: Vec<String>,
    /// Generations die with S (`warden run`'s mode); off for S crash tests.
    pub gens_die_with_s: bool,
    /// Every process group S ran in (S and its generations).
    pgids: Vec<u32>,
    tag: String,
    started: Instant,
}

impl Bed {
    /// A bed whose first generation runs `handoff-echo FIRST..`.
    pub fn new(tag: &str, first: &[&str], s_args: &[&str]) -> Bed {
        Bed {
            dir: TempDir::new(tag),
            port: free_port(),
            s: None,
            s_args: s_args.iter().map(|s| (*s).to_owned()).collect(),
            first: first.iter().map(|s| (*s).to_owned()).collect(),
            gens_die_with_s: true,
            pgids: Vec::new(),
            tag: tag.to_owned(),
            started: Instant::now(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.0.join("state")
    }

    pub fn admin(&self) -> PathBuf {
        self.state_dir().join("admin.sock")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.0.join("s.log")
    }

    /// The last lines of S's (and its generations') log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Starts S (with `WARDEN_CRASH_AT=crash_at` if given).
    pub fn start_s(&mut self, crash_at: Option<&str>) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).expect("log file");
        let mut cmd = Command::new(warden_bin());
        cmd.arg("handoff-coordinator")
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--listen")
            .arg(format!("http=127.0.0.1:{}", self.port))
            .args(&self.s_args);
        if self.gens_die_with_s {
            cmd.arg("--generations-die-with-coordinator");
        }
        cmd.arg("--").arg(echo_bin()).args(&self.first);
        cmd.env("RUST_LOG", "info").env_remove("WARDEN_CRASH_AT").stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(log);
        if let Some(p) = crash_at {
            cmd.env("WARDEN_CRASH_AT", p);
        }
        // Its own process group (so the bed can kill it and its
        // generations at once); SIGKILL when the test process dies.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        die_with_test(&mut cmd);
        // SAFETY: close_range in the forked child only sets flags. Like any
        // supervisor, S starts with no fd but 0-2: whatever the test runner
        // inherited (a build lock, say) closes at exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("cannot start warden handoff-coordinator");
        self.pgids.push(child.id());
        self.s = Some(child);
    }

    pub fn s_pid(&self) -> u32 {
        self.s.as_ref().map(Child::id).expect("S is not running")
    }

    /// Waits for S to exit; its status.
    pub fn wait_s_exit(&mut self, timeout: Duration) -> ExitStatus {
        let s = self.s.as_mut().expect("S is not running");
        let st = wait_for(timeout, || s.try_wait().ok().flatten());
        let st = st.unwrap_or_else(|| panic!("S still runs after {timeout:?}; log:\n{}", self.log_tail()));
        self.s = None;
        st
    }

    /// One GET on a new connection: the answering (generation, pid).
    pub fn get(&self, path: &str, timeout: Duration) -> Result<(String, u32), String> {
        let mut s = std::net::TcpStream::connect_timeout(&self.addr(), timeout).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").map_err(|e| format!("write: {e}"))?;
        let mut text = String::new();
        s.read_to_string(&mut text).map_err(|e| format!("read: {e}"))?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).ok_or(format!("answer {text:?}"))?;
        load::parse_body(body).ok_or(format!("answer {text:?}"))
    }

    /// Waits until the service answers; who answered.
    pub fn wait_serving(&self, timeout: Duration) -> (String, u32) {
        wait_for(timeout, || self.get("/", Duration::from_secs(2)).ok())
            .unwrap_or_else(|| panic!("the service did not answer within {timeout:?}; log:\n{}", self.log_tail()))
    }

    /// Asks S for a handoff to `handoff-echo ARGS..` and waits for the outcome.
    pub fn upgrade(&self, args: &[&str], timeout: Duration) -> Result<Outcome, String> {
        let spec = GenSpec { program: echo_bin().to_owned(), args: args.iter().map(|a| (*a).to_owned()).collect() };
        request(&self.admin(), &spec, timeout)
    }

    /// S's journal record, if it has one.
    pub fn journal(&self) -> Option<Record> {
        let bytes = std::fs::read(self.state_dir().join(FILE)).ok()?;
        warden::handoff::journal::decode(&bytes).ok()
    }

    /// The live generations (`handoff-echo` processes) in the process
    /// groups of every S this bed ran, whoever their parent is now.
    pub fn generations(&self) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
        let mut out: Vec<u32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let Some((comm, rest)) = stat.rsplit_once(')') else { return false };
                let f: Vec<&str> = rest.split_whitespace().collect();
                let pgrp = f.get(2).and_then(|g| g.parse::<u32>().ok());
                comm.ends_with("(handoff-echo")
                    && f.first() != Some(&"Z")
                    && pgrp.is_some_and(|g| self.pgids.contains(&g))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Kills every process the bed started: S and its generations.
    pub fn kill_all(&mut self) {
        for pgid in &self.pgids {
            killpg(*pgid, libc::SIGKILL);
        }
        if let Some(mut s) = self.s.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }

    /// Fails unless the test stayed within `budget`.
    pub fn within(&self, budget: Duration) {
        let took = self.started.elapsed();
        assert!(took <= budget, "{}: took {took:?}, over its budget of {budget:?}", self.tag);
        eprintln!("{}: took {:.1} s (budget {} s)", self.tag, took.as_secs_f64(), budget.as_secs());
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// One request on S's admin socket (the line protocol of
/// `coordinator::request_handoff`).
pub fn request(admin: &Path, spec: &GenSpec, timeout: Duration) -> Result<Outcome, String> {
    let line = request_line(spec).ok_or("bad spec")?;
    let mut s = UnixStream::connect(admin).map_err(|e| format!("admin socket: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(line.as_bytes()).map_err(|e| format!("admin write: {e}"))?;
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).map_err(|e| format!("admin read: {e}"))?;
    if reply.is_empty() {
        return Err("admin socket closed without a reply".into());
    }
    parse_reply(reply.trim_end()).map_err(|e| e.to_string())
}
