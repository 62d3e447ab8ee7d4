//! The benchmark workload (`shared/bench-workload.md`) on turmoil.
//!
//! 4 hosts `h0`..`h3`, UDP port 9000. Each host ticks every 100 ms of virtual
//! time (first tick at once) and sends one 16-byte datagram to each of the
//! other 3; a second task counts what it receives. 60 s virtual per seed. At
//! t = 5, 10, …, 55 s one host (splitmix64(seed) mod 4) is crashed, and
//! restarted 500 ms later, by the loop that steps the simulation, before the
//! step in which timers due at that instant run.
//!
//! Usage: bench-peer-turmoil [--tick-ms 1] [--secs 20] [--first-seed 1]
//!                           [--seeds N] [--verbose]
//! Prints exactly one line: `turmoil-<tick>ms: <seeds> seeds in <secs> s = <rate> seeds/s`.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use turmoil::net::UdpSocket;

const HOSTS: usize = 4;
const PORT: u16 = 9000;
const TICK: Duration = Duration::from_millis(100);
const RUN: Duration = Duration::from_secs(60);
const FAULT_EVERY: Duration = Duration::from_secs(5);
const DOWN_FOR: Duration = Duration::from_millis(500);
const EXPECT_SENT: u64 = 7_035;
const EXPECT_DELIVERED: u64 = 6_870;

/// Counters live outside the hosts so a crash does not lose them.
#[derive(Default)]
struct Counts {
    sent: Cell<u64>,
    received: [Cell<u64>; HOSTS],
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

/// The software of one host: bind, spawn the counting task, tick.
async fn host(me: usize, peers: Vec<SocketAddr>, counts: Rc<Counts>) -> turmoil::Result {
    let socket = Rc::new(UdpSocket::bind((IpAddr::from([0, 0, 0, 0]), PORT)).await?);

    let rx = Rc::clone(&socket);
    let rx_counts = Rc::clone(&counts);
    tokio::task::spawn_local(async move {
        let mut buf = [0u8; 64];
        loop {
            match rx.recv_from(&mut buf).await {
                Ok(_) => {
                    let c = &rx_counts.received[me];
                    c.set(c.get() + 1);
                }
                Err(e) => panic!("h{me}: recv_from failed: {e}"),
            }
        }
    });

    let payload = [me as u8; 16];
    let start = tokio::time::Instant::now();
    let mut next = start;
    loop {
        for &peer in &peers {
            socket.send_to(&payload, peer).await?;
            counts.sent.set(counts.sent.get() + 1);
        }
        next += TICK;
        tokio::time::sleep_until(next).await;
    }
}

fn run_seed(seed: u64, tick: Duration) -> Result<Outcome, String> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(tick)
        .simulation_duration(RUN)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .build();

    let ips: Vec<IpAddr> = (0..HOSTS).map(|i| sim.lookup(format!("h{i}"))).collect();
    let counts = Rc::new(Counts::default());
    for me in 0..HOSTS {
        let peers: Vec<SocketAddr> = (0..HOSTS)
            .filter(|&j| j != me)
            .map(|j| SocketAddr::new(ips[j], PORT))
            .collect();
        let counts = Rc::clone(&counts);
        sim.host(ips[me], move || host(me, peers.clone(), Rc::clone(&counts)));
    }

    let mut pick = SplitMix64(seed);
    let mut next_fault = FAULT_EVERY;
    let mut down: Option<(IpAddr, Duration)> = None;
    while sim.elapsed() < RUN {
        let now = sim.elapsed();
        // Faults are applied before the step that runs the timers due at
        // `now` (turmoil wakes them at the end of the previous step and
        // polls them at the start of this one).
        if let Some((ip, at)) = down
            && now >= at
        {
            sim.bounce(ip);
            down = None;
        }
        if now >= next_fault && next_fault < RUN {
            let victim = ips[(pick.next() % HOSTS as u64) as usize];
            sim.crash(victim);
            down = Some((victim, now + DOWN_FOR));
            next_fault += FAULT_EVERY;
        }
        sim.step().map_err(|e| format!("seed {seed}: simulation failed: {e}"))?;
    }

    let per_host: [u64; HOSTS] = std::array::from_fn(|i| counts.received[i].get());
    Ok(Outcome {
        sent: counts.sent.get(),
        delivered: per_host.iter().sum(),
        per_host,
    })
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
    tick_ms: u64,
    secs: f64,
    first_seed: u64,
    seeds: Option<u64>,
    verbose: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { tick_ms: 1, secs: 20.0, first_seed: 1, seeds: None, verbose: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--tick-ms" => a.tick_ms = value("--tick-ms")?.parse().map_err(|e| format!("--tick-ms: {e}"))?,
            "--secs" => a.secs = value("--secs")?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--first-seed" => {
                a.first_seed = value("--first-seed")?.parse().map_err(|e| format!("--first-seed: {e}"))?
            }
            "--seeds" => a.seeds = Some(value("--seeds")?.parse().map_err(|e| format!("--seeds: {e}"))?),
            "--verbose" | "-v" => a.verbose = true,
            "--help" | "-h" => {
                return Err("usage: bench-peer-turmoil [--tick-ms 1] [--secs 20] [--first-seed 1] [--seeds N] [--verbose]".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.tick_ms == 0 || 100 % a.tick_ms != 0 {
        return Err(format!("--tick-ms {} must divide 100 so ticks and faults land on steps", a.tick_ms));
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
            eprintln!("bench-peer-turmoil: {e}");
            return ExitCode::from(2);
        }
    };
    let name = format!("turmoil-{}ms", args.tick_ms);
    let tick = Duration::from_millis(args.tick_ms);
    let fail = |msg: String| {
        eprintln!("{name}: FAILED: {msg}");
        ExitCode::FAILURE
    };

    // Determinism check: the first seed runs once here (untimed) and again as
    // the first seed of the timed loop; both must give the same counts.
    let reference = match run_seed(args.first_seed, tick) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    if let Err(e) = check(args.first_seed, &reference) {
        return fail(e);
    }

    let budget = Duration::from_secs_f64(args.secs);
    let started = Instant::now();
    let mut done = 0u64;
    let mut seed = args.first_seed;
    while started.elapsed() < budget && args.seeds.is_none_or(|n| done < n) {
        let o = match run_seed(seed, tick) {
            Ok(o) => o,
            Err(e) => return fail(e),
        };
        if let Err(e) = check(seed, &o) {
            return fail(e);
        }
        if seed == args.first_seed && o != reference {
            return fail(format!(
                "seed {seed} is not deterministic: first run {reference:?}, second run {o:?}"
            ));
        }
        if args.verbose {
            eprintln!("{name}: seed {seed}: sent {} delivered {} per host {:?}", o.sent, o.delivered, o.per_host);
        }
        done += 1;
        seed = seed.wrapping_add(1);
    }
    let secs = started.elapsed().as_secs_f64();
    if done == 0 {
        return fail("no seed completed".into());
    }
    println!("{name}: {done} seeds in {secs:.2} s = {:.2} seeds/s", done as f64 / secs);
    ExitCode::SUCCESS
}
