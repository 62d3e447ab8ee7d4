//! `run --trace`: the Chrome trace-event JSON Perfetto opens. The file
//! follows the format's rules (every event has ph, ts, pid, tid; flows
//! come in pairs; slices nest on each track), ends with the failing
//! invariant, and is byte-identical across two runs of one seed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tracing::Instrument;
use warden::env::{Env, NetEnv};
use warden_sim::SimEnv;
use warden_sim::run::{RunOptions, RunShape, run};
use warden_sim::sched::SchedulerKind;

fn shape(name: &str) -> RunShape<'_> {
    RunShape {
        name,
        replayer: warden_sim::replay::Replayer::CargoTest { package: None, target: None, test: name.to_owned() },
        duration: Duration::from_secs(2),
        liveness: Duration::ZERO,
        scheduler: SchedulerKind::Random,
        faults: Default::default(),
        invariants: vec!["pings-answered".into()],
        extra_header: Vec::new(),
    }
}

/// Two hosts ping over UDP inside a span; the checker then fails the run.
fn traced_run(seed: u64) -> String {
    let opts = RunOptions { seed, chrome_trace: true, ..RunOptions::default() };
    let report = run(&shape("chrome-trace"), &opts, &|world| {
        let h1 = world.add_host("pinger");
        let h2 = world.add_host("echo");
        let to = SocketAddr::new(world.host_ip(h2), 9000);
        world.register("echo", |env: SimEnv, _| async move {
            let Ok(s) = env.bind_udp(SocketAddr::from(([0, 0, 0, 0], 9000))) else { return 1 };
            let mut buf = [0u8; 8];
            while let Ok((n, from)) = env.recv_from(&s, &mut buf).await {
                let _ = env.send_to(&s, &buf[..n], from).await;
            }
            0
        });
        world.register("pinger", move |env: SimEnv, _| async move {
            let Ok(s) = env.bind_udp(SocketAddr::from(([0, 0, 0, 0], 9001))) else { return 1 };
            for i in 0..5u8 {
                async {
                    let _ = env.send_to(&s, &[i], to).await;
                    let mut buf = [0u8; 8];
                    let _ = env.timeout(Duration::from_millis(50), env.recv_from(&s, &mut buf)).await;
                    tracing::info!(ping = i, "answered");
                }
                .instrument(tracing::info_span!("ping"))
                .await;
            }
            0
        });
        world.start(h2, "echo", Vec::new()).expect("echo");
        world.start(h1, "pinger", Vec::new()).expect("pinger");
        Box::new(|checks| checks.fail("pings-answered", "failing on purpose, to end the trace"))
    });
    report.chrome_trace.expect("a trace was asked for")
}

#[test]
fn the_trace_follows_the_format_and_is_the_same_for_one_seed() {
    let a = traced_run(3);
    assert_eq!(a, traced_run(3), "two runs of one seed give the same bytes");
    let doc: serde_json::Value = serde_json::from_str(&a).expect("valid JSON");
    let events = doc["traceEvents"].as_array().expect("traceEvents");
    let (mut starts, mut ends) = (BTreeMap::new(), BTreeMap::new());
    // Per track: slices as (start, end), spans as a stack.
    let mut slices: BTreeMap<(i64, i64), Vec<(f64, f64)>> = BTreeMap::new();
    let mut stacks: BTreeMap<(i64, i64), Vec<(String, f64)>> = BTreeMap::new();
    let mut kinds = std::collections::BTreeSet::new();
    let mut last: Option<&serde_json::Value> = None;
    for e in events {
        let ph = e["ph"].as_str().expect("every event has ph");
        kinds.insert(ph.to_owned());
        let pid = e["pid"].as_i64().expect("every event has pid");
        if ph == "M" {
            continue;
        }
        let tid = e["tid"].as_i64().expect("every timed event has tid");
        let ts = e["ts"].as_f64().expect("every timed event has ts");
        if last.is_none_or(|l| ts >= l["ts"].as_f64().unwrap_or(0.0)) {
            last = Some(e);
        }
        match ph {
            "X" => slices.entry((pid, tid)).or_default().push((ts, ts + e["dur"].as_f64().expect("dur"))),
            "B" => stacks.entry((pid, tid)).or_default().push((e["name"].to_string(), ts)),
            "E" => {
                let (name, begun) = stacks.entry((pid, tid)).or_default().pop().expect("an E closes a B");
                assert_eq!(name, e["name"].to_string(), "spans nest: the E closes the last B");
                assert!(ts >= begun);
            }
            "s" => assert!(starts.insert(e["id"].as_u64().expect("id"), ts).is_none(), "one start per flow"),
            "f" => assert!(ends.insert(e["id"].as_u64().expect("id"), ts).is_none(), "one end per flow"),
            _ => {}
        }
    }
    for want in ["M", "X", "B", "E", "i", "s", "f"] {
        assert!(kinds.contains(want), "no {want:?} event: {kinds:?}");
    }
    assert!(stacks.values().all(Vec::is_empty), "every span closed");
    assert_eq!(starts.keys().collect::<Vec<_>>(), ends.keys().collect::<Vec<_>>(), "flows come in pairs");
    assert!(starts.iter().all(|(id, t)| ends[id] >= *t), "a flow ends after it starts");
    for (track, list) in &slices {
        for w in list.windows(2) {
            assert!(w[1].0 >= w[0].1, "polls on track {track:?} do not overlap: {w:?}");
        }
    }
    let last = last.expect("timed events");
    assert_eq!(last["ph"], "i", "the failure is the last event");
    assert!(last["name"].as_str().unwrap_or_default().contains("pings-answered"), "{last}");
}
