//! The programs of the handoff model: the coordinator and the service
//! (production code), the operator asking for handoffs, the journal probe
//! and the clients of the connect storm.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{Addr, Env, NetEnv, ProcessEnv};
use warden::handoff::app::{self, AppConfig};
use warden::handoff::coordinator::{self, CoordinatorConfig, CoordinatorSetup, GenSpec, vars};
use warden::handoff::incumbent::IncumbentConfig;
use warden::handoff::journal::Journal;
use warden::handoff::successor::SuccessorConfig;

use super::super::{Params, World};
use super::service::{Behaviour, Health, Service};
use super::state::Shared;
use crate::env::SimEnv;

const STATE_DIR: &str = "/var/lib/warden";
const PORT: u16 = 8080;
/// A request unanswered this long is lost: far above any wait a correct
/// handoff imposes (drain, seal deadline, abort grace, S's restart).
const REPLY_TIMEOUT: Duration = Duration::from_secs(8);

fn admin() -> Addr {
    Addr::Unix(PathBuf::from("/run/warden/admin.sock"))
}

#[derive(Clone)]
pub(super) struct Programs {
    shared: Rc<Shared>,
    svc_ip: IpAddr,
    handoffs: u64,
    request_gap_ms: u64,
    overlap_pct: u64,
    requests: u64,
    client_gap_ms: u64,
    unhealthy_pct: u64,
    never_ready_pct: u64,
    deadline: Duration,
    behaviour: Behaviour,
}

impl Programs {
    pub(super) fn new(shared: Rc<Shared>, p: &Params, svc_ip: IpAddr) -> Programs {
        Programs {
            shared,
            svc_ip,
            handoffs: p.count("handoffs"),
            request_gap_ms: p.count("request_gap_ms").max(1),
            overlap_pct: p.count("overlap_pct"),
            requests: p.count("requests"),
            client_gap_ms: p.count("client_gap_ms").max(1),
            unhealthy_pct: p.count("unhealthy_pct"),
            never_ready_pct: p.count("never_ready_pct"),
            deadline: Duration::from_millis(p.count("deadline_ms").max(1)),
            behaviour: Behaviour {
                health: Health::Ok,
                seal_ms: (p.count("seal_ms_min"), p.count("seal_ms_max").max(p.count("seal_ms_min"))),
                seal_fail_pct: p.count("seal_fail_pct"),
                die_in_drain_pct: p.count("die_in_drain_pct"),
                serve_ms_max: p.count("serve_ms"),
                drain_grace: Duration::from_millis(200),
            },
        }
    }

    fn setup(&self) -> CoordinatorSetup {
        let ms = Duration::from_millis;
        CoordinatorSetup {
            config: CoordinatorConfig {
                hello_timeout: ms(500),
                drain_grace: self.behaviour.drain_grace,
                deadline: self.deadline,
                ready_timeout: ms(500),
                liveness: ms(300),
                abort_grace: ms(300),
                retire_grace: ms(1000),
                retry: ms(100),
            },
            state_dir: PathBuf::from(STATE_DIR),
            ctl_dir: PathBuf::from("/run/warden/gen"),
            admin: admin(),
            listeners: vec![("http".into(), Addr::Tcp(SocketAddr::new(self.svc_ip, PORT)))],
            first: GenSpec { program: "svc".into(), args: vec!["v1".into(), "ok".into()] },
            vars: Vec::new(),
        }
    }

    pub(super) fn register(&self, world: &World) {
        let p = self.clone();
        world.register("coordinator", move |env: SimEnv, _| {
            let p = p.clone();
            async move {
                p.shared.coordinators.borrow_mut().push(env.proc_id());
                coordinator::run(env, p.setup()).await
            }
        });
        let p = self.clone();
        world.register("svc", move |env: SimEnv, args| {
            let p = p.clone();
            async move { p.service(env, args).await }
        });
        let p = self.clone();
        world.register("operator", move |env: SimEnv, _| {
            let p = p.clone();
            async move { p.operator(env).await }
        });
        let p = self.clone();
        world.register("journal-probe", move |env: SimEnv, _| {
            let p = p.clone();
            async move {
                let journal = Journal::new(STATE_DIR);
                loop {
                    env.sleep(Duration::from_millis(100)).await;
                    if let Ok(r) = journal.read(&env).await {
                        *p.shared.journal.borrow_mut() = r;
                    }
                }
            }
        });
        let p = self.clone();
        world.register("client", move |env: SimEnv, args| {
            let p = p.clone();
            async move { p.client(env, args).await }
        });
    }

    async fn service(self, env: SimEnv, args: Vec<String>) -> i32 {
        let proc = env.proc_id();
        let token = env.var(vars::TOKEN).unwrap_or_default();
        let incumbent = env.var(vars::ROLE).as_deref() == Some("incumbent");
        self.shared.gens.borrow_mut().entry(proc).or_default().token = token;
        let health = Health::parse(args.get(1).map_or("ok", String::as_str));
        let svc = Service {
            shared: self.shared.clone(),
            proc,
            behaviour: Behaviour { health, ..self.behaviour },
            incumbent: Cell::new(incumbent),
        };
        let ms = Duration::from_millis;
        let config = AppConfig {
            incumbent: IncumbentConfig {
                heartbeat: ms(100),
                orphan_grace: ms(2000),
                orphan_deadline: ms(10_000),
                exit_grace: ms(300),
            },
            successor: SuccessorConfig { begin_deadline: ms(5000), abort_grace: ms(300) },
        };
        let code = app::run(env, Rc::new(svc), config).await;
        self.shared.gens.borrow_mut().entry(proc).or_default().exited_cleanly = true;
        code
    }

    async fn operator(self, env: SimEnv) -> i32 {
        for k in 0..self.handoffs {
            env.sleep(Duration::from_millis(env.random_below(self.request_gap_ms))).await;
            if !env.faults_allowed() {
                break;
            }
            let roll = env.random_below(100);
            let health = if roll < self.never_ready_pct {
                Health::Never
            } else if roll < self.never_ready_pct + self.unhealthy_pct {
                Health::Unhealthy
            } else {
                Health::Ok
            };
            let spec = GenSpec { program: "svc".into(), args: vec![format!("v{}", k + 2), health.name().into()] };
            if env.random_below(100) < self.overlap_pct {
                let (env2, spec2, gap) = (env.clone(), spec.clone(), self.deadline);
                drop(env.spawn("second-request", async move {
                    env2.sleep(env2.random_duration(gap)).await;
                    // Outcomes are not checked here: the invariants read the
                    // journal, the generations and the clients.
                    let _ = coordinator::request_handoff(&env2, &admin(), &spec2, Duration::from_secs(30)).await;
                }));
            }
            let _ = coordinator::request_handoff(&env, &admin(), &spec, Duration::from_secs(30)).await;
        }
        std::future::pending().await
    }

    async fn client(self, env: SimEnv, args: Vec<String>) -> i32 {
        let id: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
        let addr = Addr::Tcp(SocketAddr::new(self.svc_ip, PORT));
        env.sleep(Duration::from_millis(300)).await;
        for n in 0..self.requests as u32 {
            env.sleep(Duration::from_millis(env.random_below(self.client_gap_ms))).await;
            if !env.faults_allowed() {
                break;
            }
            let key = (id, n);
            let boot = self.shared.boots().1;
            self.shared.pending.borrow_mut().insert(key);
            let (env2, addr2) = (env.clone(), addr.clone());
            let attempt = async move {
                let s = env2.connect(&addr2).await.map_err(|e| (true, format!("connect: {e}")))?;
                let req = format!("req {} {}\n", key.0, key.1);
                env2.write_all(&s, req.as_bytes()).await.map_err(|e| (false, e.to_string()))?;
                let mut buf = [0u8; 64];
                let n = env2.read(&s, &mut buf).await.map_err(|e| (false, format!("read: {e}")))?;
                if n == 0 { Err((false, "closed before a reply".to_owned())) } else { Ok(()) }
            };
            // Drop the connection task at once: the request is answered or failed.
            let r = env.timeout(REPLY_TIMEOUT, attempt).await;
            match r {
                Ok(Ok(())) => {
                    self.shared.pending.borrow_mut().remove(&key);
                }
                Ok(Err((refused, e))) => self.shared.failed(key, boot, refused, &e),
                Err(_) => self.shared.failed(key, boot, false, "no reply in time"),
            }
        }
        std::future::pending().await
    }
}
