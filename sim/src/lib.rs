//! warden-sim: a seeded, single-threaded, deterministic simulator that runs
//! async Rust services unchanged, with virtual time, simulated hosts,
//! processes, sockets and disks, a pluggable scheduler, injected faults and
//! checked invariants. One seed reproduces one run bit for bit.
//!
//! # Testing your own service
//!
//! Write the service's code against [`warden::env::Env`] (time, tasks,
//! randomness, processes, sockets and disk all come through it), so the
//! same functions run on the real OS (`RealEnv`) and here ([`SimEnv`]).
//! Then, under `cargo test`, run it over many seeds with [`SimTest`]:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use warden_sim::prelude::*;
//!
//! // An echo server on its own host, a client on the model's host (0).
//! async fn echo(env: SimEnv, _args: Vec<String>) -> i32 {
//!     let Ok(sock) = env.bind_udp(SocketAddr::from(([0, 0, 0, 0], 7))) else { return 1 };
//!     let mut buf = [0u8; 64];
//!     while let Ok((n, from)) = env.recv_from(&sock, &mut buf).await {
//!         let _ = env.send_to(&sock, &buf[..n], from).await;
//!     }
//!     0
//! }
//!
//! SimTest::new("echo_answers").seeds(8).run_in_world(
//!     |world| {
//!         let host = world.add_host("server");
//!         world.register("echo", echo);
//!         world.start(host, "echo", Vec::new()).expect("echo starts");
//!     },
//!     |env| async move {
//!         let sock = env.bind_udp(SocketAddr::from(([0, 0, 0, 0], 9000))).expect("bind");
//!         let server = SocketAddr::from(([10, 0, 0, 2], 7));
//!         env.sleep(Duration::from_millis(1)).await; // let the server bind
//!         env.send_to(&sock, b"ping", server).await.expect("send");
//!         let mut buf = [0u8; 8];
//!         let (n, _) = env.timeout(Duration::from_secs(1), env.recv_from(&sock, &mut buf))
//!             .await
//!             .expect("answered within a second")
//!             .expect("recv");
//!         assert_eq!(&buf[..n], b"ping");
//!     },
//! );
//! ```
//!
//! A failure panics with the assertion's place first and the exact line
//! that replays it, `SIM_SEED=N cargo test -p PKG --test T NAME -- --exact`.
//! `SIM_SEEDS=K` runs K seeds of every such test; `SIM_SEED=N` exactly one.
//! [`SimTest::try_run`] returns the failing run's report instead, so a test
//! can assert that a race is found.
//!
//! # Models, invariants, coverage
//!
//! For sweeps outside `cargo test`, a [`Model`] starts a workload in a
//! [`World`] (hosts, programs, init, scheduled actions) and returns the
//! checks to run after the fault-free phase; its programs report safety
//! failures and coverage through [`Checks`] (`fail`, `pending`, `cover`).
//! A scenario file (TOML) names the model, its invariants, the coverage
//! each window must reach and the mutants it must catch; a project's own
//! binary gets the whole command line (`run`, `explore`,
//! `check-determinism`, `shrink`, `list`) from `warden_sim::cli::main_with`
//! (feature `cli`).
//!
//! # What the world models, and what it does not
//!
//! Hosts boot, lose power (losing unsynced disk data, resetting their
//! connections) and reboot; processes have pids that wrap, fds, exit
//! statuses, signals and SIGSTOP; streams deliver in order with arbitrary
//! read splits, 1-10 ms between hosts and 5-50 us within one; datagrams
//! may be lost, delayed and reordered; partitions hold stream bytes until
//! they heal. A scenario's clock faults give each host's wall clock its
//! own skew and drift drawn from the seed, and steps. Not modelled: CPU time (a poll costs a few random
//! microseconds of virtual time, whatever it does), memory limits, DNS,
//! byte-level packet loss on streams, and anything a program reaches
//! outside [`warden::env::Env`].
#![deny(missing_docs, unreachable_pub)]

pub mod check;
#[cfg(feature = "cli")]
pub mod cli;
pub mod determinism;
pub mod env;
pub mod exec;
pub mod explore;
pub mod faults;
pub mod input;
pub mod models;
mod panic_hook;
pub mod plan;
pub mod record;
pub mod replay;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod sched;
pub mod shrink;
mod simulation;
mod switches;
pub mod testing;
pub mod trace;
pub mod watchdog;
pub mod world;

pub mod prelude;

pub use check::{Checks, Failure, FailureClass};
pub use env::SimEnv;
pub use models::{Catalog, FinalCheck, Model, ModelSpec, Param, Params};
pub use run::{RunOptions, RunReport};
pub use scenario::Scenario;
pub use testing::{SimFailure, SimTest};
pub use world::facade::{Probe, World, WorldHandle};
