//! The handoff's drivers on the real OS, unchanged: S (`coordinator::run`)
//! and two generations of a service (`app::run`) as real processes (this
//! binary started with `--handoff-program NAME`), real TCP and Unix
//! sockets, fd passing and a real journal. A client keeps sending requests
//! while S hands the service from v1 to v2: none is refused or lost. (The
//! full real-OS test bed, with crash points and load, is a later issue.)
//!
//! It owns `main` (libtest-compatible through libtest-mimic) so that the
//! child programs can be this very binary.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // the harness edge: temp dirs, ports, exit

use std::cell::Cell;
use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use libtest_mimic::{Arguments, Trial};
use warden::env::real::{RealEnv, RealStream};
use warden::env::{Addr, Env, NetEnv, ProcessEnv, ProcessSpec, Signal};
use warden::handoff::app::{self, App, AppConfig};
use warden::handoff::coordinator::{self, CoordinatorConfig, CoordinatorSetup, GenSpec, Outcome};
use warden::handoff::journal::{Journal, JournalPhase};

const FLAG: &str = "--handoff-program";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(FLAG) {
        let code = child(&args[2..]);
        std::process::exit(code);
    }
    let trials = vec![Trial::test("handoff_commits_with_no_lost_request_real", || smoke().map_err(Into::into))];
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

fn launcher_env() -> RealEnv {
    let exe = std::env::current_exe().expect("current_exe");
    RealEnv::with_launcher(exe, vec![FLAG.to_owned()])
}

/// The child programs: `coordinator DIR PORT` and `svc VERSION`.
fn child(args: &[String]) -> i32 {
    let name = args.first().cloned().unwrap_or_default();
    let out = match name.as_str() {
        "coordinator" => {
            let dir = PathBuf::from(&args[1]);
            let port: u16 = args[2].parse().expect("port");
            RealEnv::block_on(coordinator::run(launcher_env(), setup(&dir, port)))
        }
        "svc" => {
            let version = args.get(1).cloned().unwrap_or_default();
            RealEnv::block_on(app::run(RealEnv::new(), Rc::new(Svc { version }), AppConfig::default()))
        }
        _ => Ok(64),
    };
    out.unwrap_or(70)
}

fn setup(dir: &std::path::Path, port: u16) -> CoordinatorSetup {
    CoordinatorSetup {
        config: CoordinatorConfig { drain_grace: Duration::from_secs(2), ..CoordinatorConfig::default() },
        state_dir: dir.join("state"),
        ctl_dir: dir.join("gen"),
        admin: Addr::Unix(dir.join("admin.sock")),
        listeners: vec![("http".into(), Addr::Tcp(([127, 0, 0, 1], port).into()))],
        first: GenSpec { program: "svc".into(), args: vec!["v1".into()] },
        vars: Vec::new(),
    }
}

struct Svc {
    version: String,
}

impl App<RealEnv> for Svc {
    fn serve(&self, env: &RealEnv, conn: RealStream) -> impl Future<Output = ()> + 'static {
        let (env, reply) = (env.clone(), format!("ok {}\n", self.version));
        async move {
            let mut buf = [0u8; 64];
            if let Ok(Ok(n)) = env.timeout(Duration::from_secs(5), env.read(&conn, &mut buf)).await
                && n > 0
            {
                let _ = env.write_all(&conn, reply.as_bytes()).await;
            }
        }
    }
    fn seal(&self, _: &RealEnv) -> impl Future<Output = Result<(), String>> + 'static {
        std::future::ready(Ok(()))
    }
    fn resume(&self, _: &RealEnv, _: bool) -> impl Future<Output = Result<(), String>> + 'static {
        std::future::ready(Ok(()))
    }
    fn health(&self, _: &RealEnv) -> impl Future<Output = (bool, Vec<u64>)> + 'static {
        std::future::ready((true, vec![1]))
    }
}

/// One request; the version that answered it.
async fn request(env: &RealEnv, port: u16) -> Result<String, String> {
    let work = async {
        let s = env.connect(&Addr::Tcp(([127, 0, 0, 1], port).into())).await.map_err(|e| format!("connect: {e}"))?;
        env.write_all(&s, b"req\n").await.map_err(|e| format!("write: {e}"))?;
        let mut buf = [0u8; 64];
        let n = env.read(&s, &mut buf).await.map_err(|e| format!("read: {e}"))?;
        let reply = String::from_utf8_lossy(&buf[..n]).trim().to_owned();
        reply.strip_prefix("ok ").map(str::to_owned).ok_or(format!("reply {reply:?}"))
    };
    env.timeout(Duration::from_secs(10), work).await.unwrap_or_else(|_| Err("no reply in 10 s".into()))
}

fn smoke() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("wh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let d2 = dir.clone();
    let r = RealEnv::block_on(async move {
        let env = launcher_env();
        let s = env
            .spawn_process(ProcessSpec::new("coordinator").arg(d2.display().to_string()).arg(port.to_string()))
            .map_err(|e| format!("spawn the coordinator: {e}"))?;
        let out = env.timeout(Duration::from_secs(60), scenario(&env, &d2, port)).await;
        // Every exit path: the coordinator and whatever generation the journal names.
        if let Ok(Some(rec)) = Journal::new(d2.join("state")).read(&env).await {
            for g in std::iter::once(&rec.incumbent).chain(rec.successor.as_ref()) {
                if let Some(pid) = g.pid {
                    let _ = env.kill(pid, Signal::Kill);
                }
            }
        }
        let _ = env.signal_child(&s, Signal::Kill);
        let _ = env.wait_child(&s).await;
        out.unwrap_or_else(|_| Err("did not finish within 60 s".into()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    r.map_err(|e| format!("runtime: {e}"))?
}

async fn scenario(env: &RealEnv, dir: &std::path::Path, port: u16) -> Result<(), String> {
    // v1 serves once S started it.
    let mut first = Err(String::new());
    for _ in 0..100 {
        first = request(env, port).await;
        if first.is_ok() {
            break;
        }
        env.sleep(Duration::from_millis(100)).await;
    }
    if first.as_deref() != Ok("v1") {
        return Err(format!("v1 never answered: {first:?}"));
    }
    // A client keeps sending requests during the handoff.
    let (stop, sent, failed) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0u32)), Rc::new(Cell::new(0u32)));
    let (env2, stop2, sent2, failed2) = (env.clone(), stop.clone(), sent.clone(), failed.clone());
    let client = env.spawn("client", async move {
        let mut errors = Vec::new();
        while !stop2.get() {
            sent2.set(sent2.get() + 1);
            if let Err(e) = request(&env2, port).await {
                failed2.set(failed2.get() + 1);
                errors.push(e);
            }
            env2.sleep(Duration::from_millis(5)).await;
        }
        errors
    });
    let admin = Addr::Unix(dir.join("admin.sock"));
    let spec = GenSpec { program: "svc".into(), args: vec!["v2".into()] };
    let outcome = coordinator::request_handoff(env, &admin, &spec, Duration::from_secs(30)).await;
    env.sleep(Duration::from_millis(200)).await;
    stop.set(true);
    let errors = client.await.map_err(|e| e.to_string())?;
    let Ok(Outcome::Committed { pid, .. }) = outcome else {
        return Err(format!("handoff not committed: {outcome:?}"));
    };
    if failed.get() > 0 || sent.get() < 5 {
        return Err(format!("{} of {} requests failed: {errors:?}", failed.get(), sent.get()));
    }
    let now = request(env, port).await;
    if now.as_deref() != Ok("v2") {
        return Err(format!("after the commit: {now:?}"));
    }
    let rec = Journal::new(dir.join("state")).read(env).await.map_err(|e| e.to_string())?.ok_or("no journal")?;
    if rec.phase != JournalPhase::Idle || rec.incumbent.pid != Some(pid) {
        return Err(format!("journal does not name the committed generation {pid}: {rec:?}"));
    }
    Ok(())
}
