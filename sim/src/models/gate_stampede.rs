//! The re-register stampede: a daemon runs warden's recovery driver
//! (`warden::gate::Recovery`) against the simulated registry of
//! [`registry`] on another host. The registry deletes
//! registrations in waves, several runtimes of a key at once; HTTP
//! heartbeats, websocket acks and the sync loop all report them gone.
//!
//! Checkers: the registry fails `one-registration-per-deletion` when it
//! accepts two registrations of a key with no deletion between them; after
//! the fault-free phase, `every-deletion-recovered` wants every deletion
//! followed by a registration, and `no-sibling-lost` wants the daemon's
//! runtime set of each key to be exactly the registry's live set (no
//! sibling dropped, none duplicated).
//!
//! A scenario may take the registry down for a long outage (starting as a
//! recovery registers) and stop the waves after a few: a deletion whose
//! recovery fails through the whole outage has no later event to recover
//! it, so only a gate that keeps retrying gets it back.
//!
//! A scenario may also give the registry the faults of a real one after it
//! applied a register (reply lost, timed out or reset; a request delivered
//! twice; a register stalled past its deadline and applied later): the
//! gate sees a failure for a registration that took place, and only the
//! register's condition keeps its retry from registering twice.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use warden::env::Env;
use warden::gate::{GIVE_UP_AFTER, GateConfig, Recovery, RecoveryConfig};

mod after_apply;
mod book;
pub(super) mod registry;
mod wire;

use self::book::Book;
use self::registry::{Knobs, SharedBook};
use self::wire::StreamRegistry;
use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use crate::env::SimEnv;

/// The stampede model.
pub(super) struct Stampede;

static SPEC: ModelSpec = ModelSpec {
    name: "gate.stampede",
    about: "a stampede of gone reports against warden's re-register gate and a simulated registry",
    invariants: &["one-registration-per-deletion", "every-deletion-recovered", "no-sibling-lost"],
    coverage: &[
        ("straggler-after-success", "a deletion wave in which a straggler reached the gate after a success"),
        (
            "retried-through-outage",
            "a seed (reached if a key failed more registers in a row than the old give-up count and was recovered)",
        ),
        (
            "register-reply-lost-after-apply",
            "a deletion wave in which the registry applied a register whose reply the daemon never saw",
        ),
    ],
    params: &[
        Param { name: "keys", default: 2, min: 1, max: 64, about: "registration keys (workspaces)" },
        Param { name: "runtimes_per_key", default: 4, min: 1, max: 64, about: "runtimes (providers) per key" },
        Param {
            name: "revisions",
            default: 1,
            min: 0,
            max: 1,
            about: "1: the registry has revisions; 0: timestamp rule only",
        },
        Param {
            name: "fail_percent",
            default: 15,
            min: 0,
            max: 100,
            about: "register / recover-orphans calls refused",
        },
        Param { name: "slow_percent", default: 30, min: 0, max: 100, about: "registry calls that stall" },
        Param { name: "stall_max_ms", default: 30_000, min: 0, max: 600_000, about: "longest registry stall" },
        Param {
            name: "wave_gap_min_ms",
            default: 4_000,
            min: 1,
            max: 3_600_000,
            about: "shortest gap between deletion waves",
        },
        Param {
            name: "wave_gap_max_ms",
            default: 15_000,
            min: 1,
            max: 3_600_000,
            about: "longest gap between deletion waves",
        },
        Param {
            name: "wave_spread_ms",
            default: 3_000,
            min: 0,
            max: 600_000,
            about: "deletions of one wave land within this",
        },
        Param { name: "waves_max", default: 0, min: 0, max: 1_000_000, about: "deletion waves in all (0: no limit)" },
        Param {
            name: "wave_victims_max",
            default: 0,
            min: 0,
            max: 64,
            about: "registrations a wave deletes per key (0: no limit)",
        },
        Param {
            name: "outage_after_ms",
            default: -1,
            min: -1,
            max: 86_400_000,
            about: "the first register after this starts an outage (-1: none)",
        },
        Param { name: "outage_ms", default: 60_000, min: 0, max: 86_400_000, about: "how long the outage lasts" },
        Param {
            name: "lost_reply_percent",
            default: 0,
            min: 0,
            max: 100,
            about: "registers whose reply is lost, sent late or reset after the registry applied them",
        },
        Param { name: "duplicate_percent", default: 0, min: 0, max: 100, about: "registers delivered twice" },
        Param {
            name: "late_apply_percent",
            default: 0,
            min: 0,
            max: 100,
            about: "registers stalled past their deadline and applied later",
        },
        Param {
            name: "failure_backoff_ms",
            default: 60_000,
            min: 1,
            max: 86_400_000,
            about: "the gate's first backoff after a failed register",
        },
        Param {
            name: "failure_backoff_max_ms",
            default: 60_000,
            min: 1,
            max: 86_400_000,
            about: "the cap of the gate's failure backoff",
        },
    ],
};

type Daemon = Recovery<SimEnv, StreamRegistry<SimEnv>>;

/// What the model's programs and checkers share.
struct Shared {
    book: SharedBook,
    daemon: RefCell<Option<Daemon>>,
    /// The gate's straggler count and the registry's count of registers
    /// applied unseen, at the start of each wave.
    waves: RefCell<Vec<(u64, u64)>>,
    registry_addr: Cell<Option<SocketAddr>>,
}

impl Shared {
    fn covered(&self) -> u64 {
        self.daemon.borrow().as_ref().map_or(0, |d| d.stats().covered)
    }
}

/// Deletes registrations in waves while faults are on.
async fn waves(env: SimEnv, shared: Rc<Shared>, params: WaveParams) {
    for _ in 0..params.max.unwrap_or(u64::MAX) {
        let gap = params.gap_min + env.random_duration(params.gap_max.saturating_sub(params.gap_min));
        env.sleep(gap).await;
        if !env.faults_allowed() {
            return;
        }
        let lost = shared.book.borrow().lost_after_apply;
        shared.waves.borrow_mut().push((shared.covered(), lost));
        let keys = shared.book.borrow().key_names();
        let mut victims = Vec::new();
        // Most waves hit one key; some hit every key at once.
        let every_key = env.random_below(3) == 0;
        let one = env.random_below(keys.len().max(1) as u64) as usize;
        for (i, key) in keys.iter().enumerate() {
            if !every_key && i != one {
                continue;
            }
            let alive = shared.book.borrow().alive(key);
            if alive.is_empty() {
                continue;
            }
            let n =
                if env.random_below(4) == 0 { alive.len() } else { 1 + env.random_below(alive.len() as u64) as usize };
            let n = params.victims_max.map_or(n, |max| n.min(max));
            let mut pool = alive;
            for _ in 0..n {
                let i = env.random_below(pool.len() as u64) as usize;
                victims.push(pool.swap_remove(i));
            }
        }
        for id in victims {
            let (env2, shared) = (env.clone(), shared.clone());
            let at = env.random_duration(params.spread);
            drop(env.spawn("registry.delete", async move {
                env2.sleep(at).await;
                shared.book.borrow_mut().delete(&id);
            }));
        }
    }
}

#[derive(Clone, Copy)]
struct WaveParams {
    gap_min: Duration,
    gap_max: Duration,
    spread: Duration,
    max: Option<u64>,
    victims_max: Option<usize>,
}

fn ms(params: &Params, name: &str) -> Duration {
    Duration::from_millis(params.count(name))
}

impl Model for Stampede {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let daemon_host = world.add_host("daemon");
        let registry_host = world.add_host("registry");
        let book = Book::new(
            world.checks(),
            params.count("keys").max(1),
            params.count("runtimes_per_key").max(1),
            params.get("revisions") != 0,
        );
        let shared = Rc::new(Shared {
            book: Rc::new(RefCell::new(book)),
            daemon: RefCell::new(None),
            waves: RefCell::new(Vec::new()),
            registry_addr: Cell::new(Some(SocketAddr::new(world.host_ip(registry_host), registry::PORT))),
        });
        let knobs = Knobs {
            fail_percent: params.count("fail_percent"),
            slow_percent: params.count("slow_percent"),
            stall_max: ms(params, "stall_max_ms"),
            outage: u64::try_from(params.get("outage_after_ms"))
                .ok()
                .map(|after| (Duration::from_millis(after), ms(params, "outage_ms"))),
            lost_reply_percent: params.count("lost_reply_percent"),
            duplicate_percent: params.count("duplicate_percent"),
            late_apply_percent: params.count("late_apply_percent"),
        };
        let wave = WaveParams {
            gap_min: ms(params, "wave_gap_min_ms"),
            gap_max: ms(params, "wave_gap_max_ms"),
            spread: ms(params, "wave_spread_ms"),
            max: Some(params.count("waves_max")).filter(|n| *n > 0),
            victims_max: Some(params.count("wave_victims_max") as usize).filter(|n| *n > 0),
        };
        let config = RecoveryConfig {
            gate: GateConfig {
                failure_backoff: ms(params, "failure_backoff_ms"),
                failure_backoff_max: ms(params, "failure_backoff_max_ms"),
                ..GateConfig::default()
            },
            ..RecoveryConfig::default()
        };
        let s = shared.clone();
        world.register("gate-registry", move |env: SimEnv, _| {
            let s = s.clone();
            async move {
                drop(env.spawn("registry.waves", waves(env.clone(), s.clone(), wave)));
                registry::serve(env, s.book.clone(), knobs).await
            }
        });
        let s = shared.clone();
        world.register("gate-daemon", move |env: SimEnv, _| {
            let s = s.clone();
            async move {
                let Some(addr) = s.registry_addr.get() else { return 2 };
                // Let the registry start listening first.
                env.sleep(Duration::from_millis(50)).await;
                let registry = StreamRegistry::new(env.clone(), addr);
                let Ok(daemon) = Recovery::new(env.clone(), registry, config) else { return 3 };
                *s.daemon.borrow_mut() = Some(daemon.clone());
                daemon.start(&s.book.borrow().key_names());
                daemon.root().cancelled().await;
                0
            }
        });
        for (host, program) in [(registry_host, "gate-registry"), (daemon_host, "gate-daemon")] {
            if let Err(e) = world.start(host, program, Vec::new()) {
                world.checks().fail("every-deletion-recovered", format!("cannot start {program}: {e}"));
            }
        }
        Box::new(move |checks| {
            // Coverage: per wave, whether a straggler bailed at the gate,
            // and whether a register was applied unseen, before the next
            // wave began.
            let starts = shared.waves.borrow().clone();
            let book = shared.book.borrow();
            let end = (shared.covered(), book.lost_after_apply);
            for (i, at) in starts.iter().enumerate() {
                let next = starts.get(i + 1).copied().unwrap_or(end);
                checks.cover("straggler-after-success", next.0 > at.0);
                checks.cover("register-reply-lost-after-apply", next.1 > at.1);
            }
            let streak = shared.daemon.borrow().as_ref().map_or(0, |d| d.stats().longest_failure_streak);
            checks.cover("retried-through-outage", streak > GIVE_UP_AFTER && book.unrecovered().is_empty());
            if let Some((key, rev)) = book.unrecovered().iter().next() {
                checks.pending(
                    "every-deletion-recovered",
                    format!("{key}: deleted at revision {rev}, never registered again"),
                );
            }
            let Some(daemon) = shared.daemon.borrow().clone() else {
                checks.pending("no-sibling-lost", "the daemon never started");
                return;
            };
            for key in book.key_names() {
                let mut local = daemon.runtime_ids_of(&key);
                local.sort();
                let alive = book.alive(&key);
                if local != alive {
                    checks.fail(
                        "no-sibling-lost",
                        format!("{key}: daemon holds {local:?}, registry has {alive:?} alive"),
                    );
                }
            }
        })
    }
}
