//! A run cleans up after itself and ends: nothing of it outlives it (a
//! sweep's memory stays flat in the number of seeds), and a run that would
//! go on forever fails as a simulator error instead.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use warden::env::Env;
use warden_sim::check::FailureClass;
use warden_sim::run::{RunOptions, RunShape, run};
use warden_sim::sched::SchedulerKind;
use warden_sim::{SimEnv, scenario};

fn shape(name: &str) -> RunShape<'_> {
    RunShape {
        name,
        replayer: warden_sim::replay::Replayer::CargoTest { package: None, target: None, test: name.to_owned() },
        duration: Duration::from_secs(1),
        liveness: Duration::ZERO,
        scheduler: SchedulerKind::Random,
        faults: Default::default(),
        invariants: Vec::new(),
        extra_header: Vec::new(),
    }
}

#[test]
fn an_environment_kept_past_its_run_fails_it_as_a_leak() {
    let kept: Rc<RefCell<Vec<SimEnv>>> = Rc::default();
    let k = kept.clone();
    let report = run(&shape("leak"), &RunOptions::default(), &move |world| {
        k.borrow_mut().push(world.main_env());
        Box::new(|_| {})
    });
    let f = report.failure.expect("the kept environment is reported");
    assert_eq!((f.class, f.invariant.as_str()), (FailureClass::SimError, "no-leak"), "{f}");
}

#[test]
fn model_state_holding_an_environment_inside_a_program_does_not_leak() {
    // The stampede's shape: a program (owned by the world) holds model
    // state that holds an environment of the run.
    let report = run(&shape("cycle"), &RunOptions::default(), &|world| {
        let slot: Rc<RefCell<Option<SimEnv>>> = Rc::default();
        let s = slot.clone();
        world.register("holder", move |env: SimEnv, _| {
            let s = s.clone();
            async move {
                *s.borrow_mut() = Some(env.clone());
                env.sleep(Duration::from_secs(3600)).await;
                0
            }
        });
        world.start(0, "holder", Vec::new()).expect("start");
        Box::new(move |_| drop(slot))
    });
    assert!(report.failure.is_none(), "{:?}", report.failure);
}

#[test]
fn every_scenario_runs_without_leaking() {
    for file in scenario::files_in(std::path::Path::new("../scenarios")).expect("scenarios/") {
        let sc = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let r = warden_sim::run::run_scenario(&sc, &RunOptions { seed: 1, ..RunOptions::default() });
        assert!(r.failure.as_ref().is_none_or(|f| f.invariant != "no-leak"), "{}: {:?}", file.display(), r.failure);
    }
}

#[test]
fn a_run_that_never_settles_fails_at_its_event_budget() {
    let report = run(&shape("spin"), &RunOptions { event_budget: Some(10_000), ..RunOptions::default() }, &|world| {
        let env = world.main_env();
        drop(env.clone().spawn("ticker", async move {
            loop {
                env.sleep(Duration::from_nanos(1)).await;
            }
        }));
        Box::new(|_| {})
    });
    let f = report.failure.expect("the budget ends the run");
    assert_eq!((f.class, f.invariant.as_str()), (FailureClass::SimError, "event-budget"), "{f}");
    assert!(f.message.contains("10000 polls and timer events"), "{f}");
}
