//! Each simulated host's wall clock: skewed and drifting when the
//! scenario asks (drawn from the seed), stepped by clock faults, and the
//! monotonic clock never touched.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use warden::env::Env;
use warden_sim::SimEnv;
use warden_sim::faults::Faults;
use warden_sim::testing::SimTest;

/// The wall clocks the hosts of one run read.
type Readings = Vec<(u32, SystemTime)>;
type Seen = Rc<RefCell<Readings>>;

fn clocks(faults: Faults) -> Vec<Readings> {
    let all: Rc<RefCell<Vec<Readings>>> = Rc::default();
    let sink = all.clone();
    SimTest::new("clocks").seeds(4).faults(faults).duration(Duration::from_secs(20)).run(&[], move |world| {
        let seen: Seen = Rc::default();
        for name in ["a", "b", "c"] {
            let host = world.add_host(name);
            let s = seen.clone();
            world.register(name, move |env: SimEnv, _| {
                let s = s.clone();
                async move {
                    env.sleep(Duration::from_secs(10)).await;
                    s.borrow_mut().push((env.host_index(), env.wall_clock()));
                    0
                }
            });
            world.start(host, name, Vec::new()).expect("start");
        }
        let sink = sink.clone();
        Box::new(move |_| sink.borrow_mut().push(seen.borrow().clone()))
    });
    Rc::try_unwrap(all).expect("runs over").into_inner()
}

fn spread(run: &[(u32, SystemTime)]) -> Duration {
    let min = run.iter().map(|(_, t)| *t).min().expect("readings");
    let max = run.iter().map(|(_, t)| *t).max().expect("readings");
    max.duration_since(min).expect("ordered")
}

#[test]
fn hosts_agree_without_clock_faults_and_disagree_within_bounds_with_them() {
    for run in clocks(Faults::default()) {
        // Read a few polls apart: microseconds.
        assert!(spread(&run) < Duration::from_millis(1), "no skew asked: every host reads the same time");
    }
    let skewed = clocks(Faults { clock_skew_ms: 2_000, clock_drift_ppm: 100, ..Faults::default() });
    assert!(skewed.iter().any(|r| spread(r) > Duration::from_millis(10)), "skew shows between hosts");
    for run in &skewed {
        // 2 s of skew either way, plus 100 ppm of 10 s: 1 ms.
        assert!(spread(run) <= Duration::from_millis(4_002), "{:?}", spread(run));
    }
    let stepped = clocks(Faults { clock_step: 0.5, ..Faults::default() });
    assert!(stepped.iter().any(|r| spread(r) > Duration::from_secs(1)), "clock steps show");
}
