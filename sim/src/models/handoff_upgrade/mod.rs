//! The handoff (seed 004) in the simulator: S (`warden::handoff::coordinator`),
//! and the service generations it starts (`warden::handoff::app`), on one
//! host with the listener shared through S's fd store; an operator on the
//! same host asks for handoffs at random instants; clients on other hosts
//! open connections at random instants (a connect storm), each sending one
//! request that must be answered.
//!
//! Invariants: `never-refused` (every request accepted and answered, unless
//! a fault that kills explains it: a power loss of the service host, or a
//! kill of the process that had accepted it), `one-generation` (at most one
//! generation accepts at any instant; exactly one at the end), `no-orphan`
//! (one generation alive at the end; S holds only its listener copy, its
//! admin listener and the incumbent's session), `journal-converges` (the
//! journal ends Idle, naming the serving generation),
//! `unhealthy-never-committed`.

mod programs;
mod service;
mod state;

use std::rc::Rc;

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use state::{SVC_HOST, Shared};

/// The handoff model.
pub(super) struct Upgrade;

static SPEC: ModelSpec = ModelSpec {
    name: "handoff.upgrade",
    about: "S hands a service from O to N under a connect storm, with slow seals, bad successors, deaths and restarts",
    invariants: &["never-refused", "one-generation", "no-orphan", "journal-converges", "unhealthy-never-committed"],
    coverage: &[
        ("seal-completes-after-timeout", "a seed in which O's seal completed after S had given the handoff up"),
        ("incumbent-died-mid-drain", "a seed in which O died while it was draining (not accepting)"),
        ("late-frame-ignored", "a seed in which a generation ignored a frame of an earlier handoff"),
    ],
    params: &[
        Param { name: "handoffs", default: 4, min: 0, max: 50, about: "handoffs the operator asks for" },
        Param {
            name: "request_gap_ms",
            default: 1500,
            min: 1,
            max: 60000,
            about: "longest pause between two requests",
        },
        Param {
            name: "overlap_pct",
            default: 0,
            min: 0,
            max: 100,
            about: "share of requests followed at once by a second one",
        },
        Param { name: "clients", default: 8, min: 0, max: 64, about: "client processes (on the model's host)" },
        Param { name: "requests", default: 40, min: 0, max: 1000, about: "requests per client" },
        Param {
            name: "client_gap_ms",
            default: 200,
            min: 1,
            max: 60000,
            about: "longest pause between two requests of a client",
        },
        Param { name: "serve_ms", default: 30, min: 0, max: 5000, about: "longest service time of one request" },
        Param { name: "seal_ms_min", default: 1, min: 0, max: 60000, about: "shortest seal" },
        Param { name: "seal_ms_max", default: 60, min: 0, max: 60000, about: "longest seal" },
        Param { name: "seal_fail_pct", default: 0, min: 0, max: 100, about: "share of seals that fail" },
        Param {
            name: "deadline_ms",
            default: 1000,
            min: 1,
            max: 600000,
            about: "S's deadline from request to SealComplete",
        },
        Param {
            name: "unhealthy_pct",
            default: 0,
            min: 0,
            max: 100,
            about: "share of successors whose health check fails",
        },
        Param {
            name: "never_ready_pct",
            default: 0,
            min: 0,
            max: 100,
            about: "share of successors whose health check never returns",
        },
        Param { name: "die_in_drain_pct", default: 0, min: 0, max: 100, about: "share of drains during which O dies" },
    ],
};

impl Model for Upgrade {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let svc = world.add_host("svc");
        debug_assert_eq!(svc, SVC_HOST);
        let shared = Rc::new(Shared::new(world.checks(), world.handle()));
        let p = programs::Programs::new(shared.clone(), params, world.host_ip(SVC_HOST));
        p.register(world);
        for (program, restart) in [("coordinator", true), ("operator", true), ("journal-probe", true)] {
            if let Err(e) = world.add_init(SVC_HOST, program, Vec::new(), restart) {
                world.checks().fail("never-refused", format!("cannot start {program}: {e}"));
            }
        }
        // Clients run on the model's own host, which never loses power, so
        // every request they send has an outcome.
        for c in 0..params.count("clients") {
            if let Err(e) = world.start(0, "client", vec![c.to_string()]) {
                world.checks().fail("never-refused", format!("cannot start a client: {e}"));
            }
        }
        let probe = world.probe();
        Box::new(move |checks| shared.final_checks(checks, &probe))
    }
}
