//! Self-test for the disk model: a writer replaces a file atomically
//! (write temp, fsync, rename, fsync the directory) and acknowledges each
//! value as durable; host crashes are injected, and after every boot the
//! writer checks that the last acknowledged value survived. Mutant
//! `rename-no-dirsync`: the directory is never fsynced, so a crash undoes
//! the rename and an acknowledged value is lost.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{DiskEnv, Env, OpenOptions};

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use crate::env::SimEnv;

/// The durable-write model.
pub(super) struct DurableWrite;

static SPEC: ModelSpec = ModelSpec {
    name: "selftest.durable-write",
    about: "atomic file replacement acknowledged as durable, under host crashes",
    invariants: &["acknowledged-write-survives", "writer-makes-progress"],
    coverage: &[("crash-after-ack", "a boot after a crash that followed at least one acknowledged write")],
    params: &[Param { name: "pause_ms_max", default: 50, min: 0, max: 60_000, about: "longest pause between writes" }],
};

struct Shared {
    acked: Cell<Option<u64>>,
    writes: Cell<u64>,
}

async fn read_value(env: &SimEnv, path: &Path) -> std::io::Result<Option<u64>> {
    match env.open(path, OpenOptions::default()).await {
        Ok(f) => {
            let bytes = env.read_all(&f).await?;
            Ok(std::str::from_utf8(&bytes).ok().and_then(|s| s.parse().ok()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn write_durably(env: &SimEnv, value: u64) -> std::io::Result<()> {
    let (dir, tmp, cur) = (Path::new("/data"), Path::new("/data/tmp"), Path::new("/data/current"));
    let f = env.open(tmp, OpenOptions { create: true, truncate: true }).await?;
    env.append(&f, value.to_string().as_bytes()).await?;
    env.sync_file(&f).await?;
    env.rename(tmp, cur).await?;
    if !env.mutant("rename-no-dirsync") {
        env.sync_dir(dir).await?;
    }
    Ok(())
}

impl Model for DurableWrite {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let shared = Rc::new(Shared { acked: Cell::new(None), writes: Cell::new(0) });
        let pause_max = Duration::from_millis(params.count("pause_ms_max"));
        let h1 = world.add_host("h1");
        let (s, checks) = (shared.clone(), world.checks());
        world.register("writer", move |env: SimEnv, _args| {
            let (s, checks) = (s.clone(), checks.clone());
            async move {
                // Retry through injected disk errors.
                while env.create_dir_all(Path::new("/data")).await.is_err() {
                    env.sleep(Duration::from_millis(5)).await;
                }
                let found = loop {
                    match read_value(&env, Path::new("/data/current")).await {
                        Ok(v) => break v,
                        Err(_) => env.sleep(Duration::from_millis(5)).await,
                    }
                };
                let booted_after_crash = s.writes.get() > 0;
                if booted_after_crash {
                    checks.cover("crash-after-ack", s.acked.get().is_some());
                }
                if let Some(acked) = s.acked.get()
                    && found.is_none_or(|v| v < acked)
                {
                    checks.fail(
                        "acknowledged-write-survives",
                        format!("value {acked} was acknowledged as durable, after the crash the file holds {found:?}"),
                    );
                }
                let mut next = found.unwrap_or(0).max(s.acked.get().unwrap_or(0)) + 1;
                loop {
                    s.writes.set(s.writes.get() + 1);
                    if write_durably(&env, next).await.is_ok() {
                        s.acked.set(Some(next));
                        tracing::debug!(value = next, "acknowledged");
                        next += 1;
                    }
                    env.sleep(env.random_duration(pause_max)).await;
                }
            }
        });
        if let Err(e) = world.add_init(h1, "writer", Vec::new(), true) {
            world.checks().fail("writer-makes-progress", format!("cannot start the writer: {e}"));
        }
        Box::new(move |checks| {
            if shared.acked.get().is_none() {
                checks.pending("writer-makes-progress", "no write was ever acknowledged");
            }
        })
    }
}
