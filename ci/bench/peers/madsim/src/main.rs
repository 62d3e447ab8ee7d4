//! The benchmark workload (`shared/bench-workload.md`) on madsim.
//!
//! Build with `RUSTFLAGS="--cfg madsim"`.
//!
//! 4 nodes `h0`..`h3`, UDP port 9000. Each node ticks every 100 ms of virtual
//! time (first tick at once) and sends one 16-byte datagram to each of the
//! other 3; a second task counts what it receives. 60 s virtual per seed,
//! madsim's default network (latency uniform 1–10 ms, no loss). At
//! t = 5, 10, …, 55 s the supervisor (the `block_on` task, outside the nodes)
//! kills one node (splitmix64(seed) mod 4) and restarts it 500 ms later.
//!
//! The supervisor acts at the exact nominal instants. In madsim binding a
//! socket takes 1 ms of virtual time, so a node's ticks run from the moment
//! its socket is bound: 1 ms (plus the executor's 50–99 ns per poll) after
//! it starts. No host timer is ever due at the instant of a kill or restart,
//! and a restarted node is bound 1 ms before its peers' first datagrams
//! reach the network. See README.md.
//!
//! Usage: bench-peer-madsim [--secs 20] [--first-seed 1] [--seeds N] [--verbose]
//! Prints exactly one line: `madsim: <seeds> seeds in <secs> s = <rate> seeds/s`.

#[cfg(not(madsim))]
compile_error!("build this crate with RUSTFLAGS=\"--cfg madsim\" (see run-peers.sh)");

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use madsim::net::UdpSocket;
use madsim::runtime::{Handle, Runtime};
use madsim::time::{Instant, sleep_until};

const NAME: &str = "madsim";
const HOSTS: usize = 4;
const PORT: u16 = 9000;
const TICK: Duration = Duration::from_millis(100);
const RUN: Duration = Duration::from_secs(60);
const FAULT_EVERY: Duration = Duration::from_secs(5);
const FAULTS: u32 = 11;
const DOWN_FOR: Duration = Duration::from_millis(500);
const EXPECT_SENT: u64 = 7_035;
const EXPECT_DELIVERED: u64 = 6_870;

/// Counters live outside the nodes so a kill does not lose them.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    received: [AtomicU64; HOSTS],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    sent: u64,
    delivered: u64,
    per_host: [u64; HOSTS],
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn ip(i: usize) -> IpAddr {
    // Simulated addresses only (TEST-NET-1); nothing leaves the process.
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i as u8))
}

/// The software of one node: bind, spawn the counting task, tick.
/// The first tick is at once (once the socket is bound), the k-th at
/// `start + k * 100 ms`.
async fn host(me: usize, peers: [SocketAddr; HOSTS - 1], counts: Arc<Counts>) {
    let socket = Rc::new(
        UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT))
            .await
            .unwrap_or_else(|e| panic!("h{me}: bind failed: {e}")),
    );

    let rx = Rc::clone(&socket);
    let rx_counts = Arc::clone(&counts);
    madsim::task::spawn_local(async move {
        let mut buf = [0u8; 64];
        loop {
            match rx.recv_from(&mut buf).await {
                Ok(_) => {
                    rx_counts.received[me].fetch_add(1, Relaxed);
                }
                Err(e) => panic!("h{me}: recv_from failed: {e}"),
            }
        }
    });

    let payload = [me as u8; 16];
    let start = Instant::now();
    let mut next = start;
    loop {
        for &peer in &peers {
            socket
                .send_to(peer, &payload)
                .await
                .unwrap_or_else(|e| panic!("h{me}: send_to failed: {e}"));
            counts.sent.fetch_add(1, Relaxed);
        }
        next += TICK;
        sleep_until(next).await;
    }
}

fn run_seed(seed: u64) -> Outcome {
    let rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
    let counts = Arc::new(Counts::default());
    let c = Arc::clone(&counts);
    rt.block_on(async move {
        let zero = Instant::now();
        let handle = Handle::current();
        let nodes: Vec<_> = (0..HOSTS)
            .map(|me| {
                let mut peers = [SocketAddr::new(ip(0), PORT); HOSTS - 1];
                for (slot, j) in (0..HOSTS).filter(|&j| j != me).enumerate() {
                    peers[slot] = SocketAddr::new(ip(j), PORT);
                }
                let counts = Arc::clone(&c);
                handle
                    .create_node()
                    .name(format!("h{me}"))
                    .ip(ip(me))
                    .init(move || host(me, peers, Arc::clone(&counts)))
                    .build()
                    .id()
            })
            .collect();

        let mut pick = SplitMix64(seed);
        for k in 1..=FAULTS {
            let at = FAULT_EVERY * k;
            sleep_until(zero + at).await;
            let victim = nodes[(pick.next() % HOSTS as u64) as usize];
            handle.kill(victim);
            sleep_until(zero + at + DOWN_FOR).await;
            handle.restart(victim);
        }
        sleep_until(zero + RUN).await;
    });
    drop(rt);

    let per_host: [u64; HOSTS] = std::array::from_fn(|i| counts.received[i].load(Relaxed));
    Outcome {
        sent: counts.sent.load(Relaxed),
        delivered: per_host.iter().sum(),
        per_host,
    }
}

fn check(seed: u64, o: &Outcome) -> Result<(), String> {
    if o.sent != EXPECT_SENT || o.delivered != EXPECT_DELIVERED {
        return Err(format!(
            "seed {seed}: sent {} (expected {EXPECT_SENT}), delivered {} (expected {EXPECT_DELIVERED}), per host {:?}",
            o.sent, o.delivered, o.per_host
        ));
    }
    if let Some(h) = o.per_host.iter().position(|&n| n == 0) {
        return Err(format!("seed {seed}: host h{h} received nothing"));
    }
    Ok(())
}

struct Args {
    secs: f64,
    first_seed: u64,
    seeds: Option<u64>,
    verbose: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { secs: 20.0, first_seed: 1, seeds: None, verbose: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--secs" => a.secs = value("--secs")?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--first-seed" => {
                a.first_seed = value("--first-seed")?.parse().map_err(|e| format!("--first-seed: {e}"))?
            }
            "--seeds" => a.seeds = Some(value("--seeds")?.parse().map_err(|e| format!("--seeds: {e}"))?),
            "--verbose" | "-v" => a.verbose = true,
            "--help" | "-h" => {
                return Err("usage: bench-peer-madsim [--secs 20] [--first-seed 1] [--seeds N] [--verbose]".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !(a.secs > 0.0) {
        return Err("--secs must be positive".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-peer-madsim: {e}");
            return ExitCode::from(2);
        }
    };
    let fail = |msg: String| {
        eprintln!("{NAME}: FAILED: {msg}");
        ExitCode::FAILURE
    };

    // Determinism check: the first seed runs once here (untimed) and again as
    // the first seed of the timed loop; both must give the same counts.
    let reference = run_seed(args.first_seed);
    if let Err(e) = check(args.first_seed, &reference) {
        return fail(e);
    }

    // Wall time is read outside any madsim context, so it is the real clock.
    let budget = Duration::from_secs_f64(args.secs);
    let started = std::time::Instant::now();
    let mut done = 0u64;
    let mut seed = args.first_seed;
    while started.elapsed() < budget && args.seeds.is_none_or(|n| done < n) {
        let o = run_seed(seed);
        if let Err(e) = check(seed, &o) {
            return fail(e);
        }
        if seed == args.first_seed && o != reference {
            return fail(format!(
                "seed {seed} is not deterministic: first run {reference:?}, second run {o:?}"
            ));
        }
        if args.verbose {
            eprintln!("{NAME}: seed {seed}: sent {} delivered {} per host {:?}", o.sent, o.delivered, o.per_host);
        }
        done += 1;
        seed = seed.wrapping_add(1);
    }
    let secs = started.elapsed().as_secs_f64();
    if done == 0 {
        return fail("no seed completed".into());
    }
    println!("{NAME}: {done} seeds in {secs:.2} s = {:.2} seeds/s", done as f64 / secs);
    ExitCode::SUCCESS
}
