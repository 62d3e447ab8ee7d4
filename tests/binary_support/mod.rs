//! Drives the built `warden` binary with real processes: a config in a
//! fresh temp dir, `warden run` in the background with its log in a file,
//! `warden status --json` to look inside; everything is killed on drop.
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[allow(unused_imports)]
pub use crate::common::{TempDir, alive, die_with_test, free_port, wait_for, warden_bin};

/// A running `warden run`.
pub struct Warden {
    pub child: Child,
    pub dir: TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Warden {
    /// Writes `toml` as `warden.toml` in a fresh dir and runs warden on it.
    pub fn start(tag: &str, toml: &str) -> Warden {
        let dir = TempDir::new(tag);
        let config = dir.0.join("warden.toml");
        std::fs::write(&config, toml).expect("cannot write the config");
        let log = dir.0.join("warden.log");
        let out = std::fs::File::create(&log).expect("cannot create the log");
        let mut cmd = Command::new(warden_bin());
        cmd.args(["run", "-c"]).arg(&config).env("RUST_LOG", "info").stdout(Stdio::null()).stderr(out);
        die_with_test(&mut cmd);
        let child = cmd.spawn().expect("cannot start warden");
        Warden { child, dir, config, log }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `warden status --json`, or `None` while warden does not answer.
    pub fn status(&self) -> Option<Vec<serde_json::Value>> {
        let out = Command::new(warden_bin()).args(["status", "--json", "-c"]).arg(&self.config).output().ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The status object of service `name`.
    pub fn service(&self, name: &str) -> Option<serde_json::Value> {
        self.status()?.into_iter().find(|s| s["name"] == name)
    }

    /// The pid of service `name`, once it has one.
    pub fn pid_of(&self, name: &str, timeout: Duration) -> u32 {
        wait_for(timeout, || self.service(name)?["pid"].as_u64().map(|p| p as u32))
            .unwrap_or_else(|| panic!("service {name} has no pid within {timeout:?}; log:\n{}", self.log_text()))
    }

    /// Runs a client command (`start`, `stop`, ...) and returns its output.
    pub fn client(&self, args: &[&str]) -> std::process::Output {
        Command::new(warden_bin()).args(args).arg("-c").arg(&self.config).output().expect("cannot run warden")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for warden's exit status (a code, or 128 + signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let st = wait_for(timeout, || self.child.try_wait().ok().flatten())
            .unwrap_or_else(|| panic!("warden still runs after {timeout:?}; log:\n{}", self.log_text()));
        std::os::unix::process::ExitStatusExt::signal(&st).map_or_else(|| st.code().unwrap_or(-1), |s| 128 + s)
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        // Its children die with it (they are spawned with PR_SET_PDEATHSIG).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
