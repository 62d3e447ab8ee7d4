//! The benchmark workload (`shared/bench-workload.md`): four hosts
//! `h0`..`h3` each send a 16-byte datagram to the other three every 100 ms
//! and count what they receive; one host, picked by splitmix64 of the
//! seed, loses power at t = 5, 10, ..., 55 s and reboots 500 ms later.
//! Each seed must give 7,035 sent and 6,870 delivered.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{Env, splitmix64};

use super::{FinalCheck, Model, ModelSpec, Params, World};
use crate::env::SimEnv;

/// The heartbeat benchmark model.
pub(super) struct Heartbeat;

static SPEC: ModelSpec = ModelSpec {
    name: "bench.heartbeat",
    about: "4 hosts exchanging UDP heartbeats every 100 ms, one crash every 5 s",
    invariants: &["sent-and-delivered", "every-host-heard"],
    coverage: &[("crash-while-sending", "a crash while other hosts kept sending to the crashed host")],
    params: &[],
};

/// The UDP port every host listens on.
pub(super) const PORT: u16 = 9000;
const HOSTS: usize = 4;
const SENT_PER_SEED: u64 = 7_035;
const DELIVERED_PER_SEED: u64 = 6_870;

/// One heartbeat host: sends 16 bytes to each peer every 100 ms (first at
/// once) and counts what arrives, on a second task.
pub(super) async fn heartbeat<E: Env>(
    env: E,
    peers: Vec<SocketAddr>,
    on_send: impl Fn(),
    on_receive: impl Fn() + 'static,
) -> i32 {
    let Ok(sock) = env.bind_udp(SocketAddr::from(([0, 0, 0, 0], PORT))) else { return 1 };
    let sock = Rc::new(sock);
    let (env2, rx) = (env.clone(), sock.clone());
    let _counter = env.spawn("count", async move {
        let mut buf = [0u8; 64];
        while env2.recv_from(&rx, &mut buf).await.is_ok() {
            on_receive();
        }
    });
    let payload = [0xA5u8; 16];
    let mut next = env.now();
    loop {
        for p in &peers {
            if env.send_to(&sock, &payload, *p).await.is_ok() {
                on_send();
            }
        }
        next += Duration::from_millis(100);
        env.sleep_until(next).await;
    }
}

impl Model for Heartbeat {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, _: &Params) -> FinalCheck {
        let sent = Rc::new(Cell::new(0u64));
        let received: Rc<Vec<Cell<u64>>> = Rc::new((0..HOSTS).map(|_| Cell::new(0)).collect());
        let hosts: Vec<u32> = (0..HOSTS).map(|i| world.add_host(&format!("h{i}"))).collect();
        let addrs: Vec<SocketAddr> = hosts.iter().map(|h| SocketAddr::new(world.host_ip(*h), PORT)).collect();
        for (i, h) in hosts.iter().enumerate() {
            let peers: Vec<SocketAddr> = addrs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, a)| *a).collect();
            let (sent, received) = (sent.clone(), received.clone());
            let name = format!("heartbeat-{i}");
            world.register(&name, move |env: SimEnv, _| {
                let (sent, received, peers) = (sent.clone(), received.clone(), peers.clone());
                heartbeat(env, peers, move || sent.set(sent.get() + 1), move || received[i].set(received[i].get() + 1))
            });
            if let Err(e) = world.add_init(*h, &name, Vec::new(), false) {
                world.checks().fail("sent-and-delivered", format!("cannot start {name}: {e}"));
            }
        }
        let mut state = world.seed();
        let handle = world.handle();
        let checks = world.checks();
        for k in 1..=11u64 {
            let victim = hosts[(splitmix64(&mut state) % HOSTS as u64) as usize];
            let (h1, h2) = (handle.clone(), handle.clone());
            let at = Duration::from_secs(5 * k);
            world.at(at, move || h1.crash_host(victim));
            world.at(at + Duration::from_millis(500), move || h2.restart_host(victim));
            checks.cover("crash-while-sending", true);
        }
        Box::new(move |checks| {
            let delivered: u64 = received.iter().map(Cell::get).sum();
            if sent.get() != SENT_PER_SEED || delivered != DELIVERED_PER_SEED {
                checks.fail(
                    "sent-and-delivered",
                    format!(
                        "sent {} (want {SENT_PER_SEED}), delivered {delivered} (want {DELIVERED_PER_SEED})",
                        sent.get()
                    ),
                );
            }
            if let Some(i) = received.iter().position(|r| r.get() == 0) {
                checks.fail("every-host-heard", format!("h{i} received nothing"));
            }
        })
    }
}
