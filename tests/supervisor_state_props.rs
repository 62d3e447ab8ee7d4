//! Property tests of the pure state machines: random event sequences never
//! reach an illegal transition, and jitter never lengthens a delay.

use proptest::prelude::*;
use warden::supervisor::{Backoff, BackoffConfig, IllegalTransition, NodeEvent, NodeMachine, NodeState};

fn event() -> impl Strategy<Value = NodeEvent> {
    prop_oneof![
        Just(NodeEvent::SignalHealthy),
        Just(NodeEvent::SignalDone),
        (any::<bool>(), any::<bool>()).prop_map(|(ok, canceled)| NodeEvent::Returned { ok, canceled }),
        Just(NodeEvent::Restart),
    ]
}

proptest! {
    #[test]
    fn random_events_never_reach_an_illegal_state(events in proptest::collection::vec(event(), 0..64)) {
        let mut m = NodeMachine::new();
        for e in events {
            let before = m;
            match m.step(e) {
                Ok(_) => {}
                Err(err) => {
                    prop_assert_eq!(m, before, "a rejected event changed the machine");
                    // Each rejection is the one its state forbids.
                    let expected = match (before.state(), e) {
                        (NodeState::New, NodeEvent::SignalDone) => err == IllegalTransition::DoneBeforeHealthy,
                        (_, NodeEvent::Restart) => matches!(err, IllegalTransition::RestartWhileRunning(_) | IllegalTransition::RestartDone),
                        (_, NodeEvent::Returned { .. }) => matches!(err, IllegalTransition::ReturnedTwice(_)),
                        _ => true,
                    };
                    prop_assert!(expected, "{:?} on {:?}: {:?}", e, before, err);
                }
            }
            prop_assert_eq!(m.check(), Ok(()));
            // DONE only after the runnable returned.
            if m.state() == NodeState::Done {
                prop_assert!(!m.running());
            }
            if let NodeEvent::Returned { .. } = e && before.running() {
                prop_assert!(!m.running() && m.state().has_returned());
            }
        }
    }

    #[test]
    fn restart_only_after_return(events in proptest::collection::vec(event(), 0..64)) {
        let mut m = NodeMachine::new();
        for e in events {
            let running = m.running();
            let r = m.step(e);
            if e == NodeEvent::Restart && running {
                prop_assert!(r.is_err(), "restart while running would run two instances");
            }
        }
    }

    #[test]
    fn jitter_only_shortens(draws in proptest::collection::vec(any::<u64>(), 1..40), permille in 0u32..=1000) {
        let mut b = Backoff::new(BackoffConfig { jitter_permille: permille, ..BackoffConfig::TREE });
        for r in draws {
            let base = b.peek();
            let d = b.next_delay(r);
            prop_assert!(d <= base);
            prop_assert!(b.peek() <= BackoffConfig::TREE.max);
        }
    }
}
