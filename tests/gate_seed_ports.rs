//! The seed's tests (seed 001, `runtime_gone_test.go`) ported: the local
//! state (`TestRemoveStaleRuntime_*`, `TestWorkspaceNeedsRuntimeRecovery`),
//! the gate (`TestTryClaimRegisterSlot_*`) and the driver
//! (`TestHandleRuntimeGone_*`, `TestHandleWSHeartbeatAck_*`), the driver
//! running in the simulator against an in-test registry.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{CancellationToken, Env, Instant};
use warden::gate::{
    AckStatus, Claim, Condition, GateConfig, HeartbeatAck, LocalState, Outcome, Recovery, RecoveryConfig, Registered,
    Registry, RegistryError, Runtime,
};
use warden_sim::SimEnv;
use warden_sim::testing::check;

fn rt(id: &str, key: &str, provider: &str) -> Runtime {
    Runtime { id: id.to_owned(), key: key.to_owned(), provider: provider.to_owned() }
}

fn ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

fn gate() -> warden::gate::Gate {
    warden::gate::Gate::new(GateConfig::default()).expect("default config is valid")
}

// --- TestRemoveStaleRuntime_* and TestWorkspaceNeedsRuntimeRecovery ---

#[test]
fn remove_stale_runtime_prunes_all_local_state() {
    let mut s = LocalState::default();
    let ws = s.insert_key("ws-1", &[rt("rt-1", "ws-1", "a"), rt("rt-2", "ws-1", "b"), rt("rt-3", "ws-1", "c")]);
    s.record_ack("rt-2", Instant::BOOT);
    assert_eq!(s.remove_stale_runtime("rt-2").as_deref(), Some("ws-1"));
    assert_eq!(ws.borrow().runtime_ids, ["rt-1", "rt-3"]);
    assert!(s.runtime("rt-2").is_none(), "runtime index still holds rt-2");
    assert!(!s.recently_acked("rt-2", Instant::BOOT, Duration::from_secs(60)), "freshness mark kept for rt-2");
}

#[test]
fn remove_stale_runtime_unknown_runtime_is_noop() {
    let mut s = LocalState::default();
    let ws = s.insert_key("ws-1", &[rt("rt-1", "ws-1", "a")]);
    assert_eq!(s.remove_stale_runtime("rt-unknown"), None);
    assert_eq!(ws.borrow().runtime_ids, ["rt-1"], "unrelated key mutated");
}

#[test]
fn remove_stale_runtime_updates_the_key_state_object_in_place() {
    let mut s = LocalState::default();
    let original = s.insert_key("ws-1", &[rt("rt-1", "ws-1", "a")]);
    s.remove_stale_runtime("rt-1");
    s.replace_runtimes("ws-1", &[rt("rt-9", "ws-1", "a")]);
    let now = s.key("ws-1").expect("key tracked");
    assert!(Rc::ptr_eq(&original, &now), "the key's state object was replaced; holders would act on a stale copy");
    assert_eq!(original.borrow().runtime_ids, ["rt-9"]);
}

#[test]
fn workspace_needs_runtime_recovery() {
    let mut s = LocalState::default();
    s.insert_key("ws-empty", &[]);
    s.insert_key("ws-full", &[rt("rt-1", "ws-full", "a")]);
    assert!(s.needs_runtime_recovery("ws-empty"));
    assert!(!s.needs_runtime_recovery("ws-full"));
    assert!(!s.needs_runtime_recovery("ws-unknown"), "an untracked key needs no recovery");
}

// --- TestTryClaimRegisterSlot_* (timestamp rule, as in the seed) ---

fn t(at_ms: u64) -> warden::gate::Mark {
    warden::gate::Mark::time(ms(at_ms))
}

#[test]
fn try_claim_register_slot_first_caller_claims() {
    assert!(matches!(gate().claim("ws-1", t(0), ms(0)), Claim::Granted(_)));
}

#[test]
fn try_claim_register_slot_straggler_bails_after_sibling_success() {
    let mut g = gate();
    let Claim::Granted(a) = g.claim("ws-1", t(1), ms(1)) else { panic!("A: expected to claim") };
    g.complete(&a, Outcome::Registered { revision: None }, ms(50));
    // B entered at 0, before A completed, and reaches the gate at 60.
    assert_eq!(g.claim("ws-1", t(0), ms(60)), Claim::Covered, "same-wave straggler re-claimed after A's success");
}

#[test]
fn try_claim_register_slot_distinct_later_event_claims() {
    let mut g = gate();
    let Claim::Granted(a) = g.claim("ws-1", t(0), ms(0)) else { panic!("first caller should claim") };
    g.complete(&a, Outcome::Registered { revision: None }, ms(50));
    assert!(matches!(g.claim("ws-1", t(100), ms(100)), Claim::Granted(_)), "a later event must claim");
}

#[test]
fn try_claim_register_slot_failure_backoff_suppresses_retries() {
    let mut g = gate();
    let backoff = GateConfig::default().failure_backoff;
    let Claim::Granted(a) = g.claim("ws-1", t(0), ms(0)) else { panic!("first caller should claim") };
    g.complete(&a, Outcome::Failed, ms(50));
    let within = ms(50) + backoff / 2;
    assert!(matches!(g.claim("ws-1", warden::gate::Mark::time(within), within), Claim::BackingOff { .. }));
    let past = ms(50) + backoff + Duration::from_secs(1);
    assert!(matches!(g.claim("ws-1", warden::gate::Mark::time(past), past), Claim::Granted(_)));
}

#[test]
fn try_claim_register_slot_straggler_after_failed_sibling_retries_past_backoff() {
    let mut g = gate();
    let backoff = GateConfig::default().failure_backoff;
    let Claim::Granted(a) = g.claim("ws-1", t(1), ms(1)) else { panic!("A: expected to claim") };
    g.complete(&a, Outcome::Failed, ms(50));
    assert_eq!(g.last_success("ws-1"), None, "a failure stamped the watermark");
    let arrive = ms(50) + backoff + Duration::from_secs(1);
    assert!(
        matches!(g.claim("ws-1", t(0), arrive), Claim::Granted(_)),
        "a straggler older than a failed sibling must claim once the backoff is over"
    );
}

#[test]
fn try_claim_register_slot_peer_holding_slot_forces_coalesce() {
    let mut g = gate();
    assert!(matches!(g.claim("ws-1", t(0), ms(0)), Claim::Granted(_)));
    assert_eq!(g.claim("ws-1", t(1), ms(1)), Claim::Coalesced);
}

// --- The driver against an in-test registry ---

/// How the in-test registry answers `register`.
#[derive(Clone)]
enum Answer {
    /// Always this set (the seed's `rt-new` fixture).
    Fixed(Vec<Runtime>),
    /// Upsert per provider: a deleted provider gets a fresh id.
    Upsert,
    /// Refuse.
    Fail,
    /// Never answer.
    Hang,
}

struct FakeState {
    answer: Answer,
    /// provider -> current id (None once deleted).
    providers: BTreeMap<String, Option<String>>,
    next_id: u64,
    revision: u64,
    revisions: bool,
    delay: Duration,
    /// Register calls that reached the registry.
    calls: u64,
    /// Register calls that ran to their end (not dropped by cancellation).
    finished: u64,
}

#[derive(Clone)]
struct Fake {
    env: SimEnv,
    st: Rc<RefCell<FakeState>>,
}

impl Fake {
    fn new(env: &SimEnv, answer: Answer, providers: &[(&str, &str)]) -> Self {
        let providers = providers.iter().map(|(p, id)| ((*p).to_owned(), Some((*id).to_owned()))).collect();
        let st = FakeState {
            answer,
            providers,
            next_id: 1,
            revision: 0,
            revisions: true,
            delay: Duration::ZERO,
            calls: 0,
            finished: 0,
        };
        Fake { env: env.clone(), st: Rc::new(RefCell::new(st)) }
    }

    /// A UI delete: the provider's runtime is gone; returns its tombstone.
    fn mark_deleted(&self, provider: &str) -> Option<u64> {
        let mut s = self.st.borrow_mut();
        s.revision += 1;
        let rev = s.revision;
        s.providers.insert(provider.to_owned(), None);
        s.revisions.then_some(rev)
    }

    fn calls(&self) -> u64 {
        self.st.borrow().calls
    }

    fn id_of(&self, provider: &str) -> Option<String> {
        self.st.borrow().providers.get(provider).cloned().flatten()
    }
}

/// The seed's registry: its register is unconditional (the condition is
/// ignored), as the seed's tests assume.
impl Registry for Fake {
    fn register(
        &self,
        key: &str,
        _condition: Condition,
        _deadline: Instant,
    ) -> impl std::future::Future<Output = Result<Registered, RegistryError>> + 'static {
        let (env, st, key) = (self.env.clone(), self.st.clone(), key.to_owned());
        async move {
            let (answer, delay) = {
                let mut s = st.borrow_mut();
                s.calls += 1;
                (s.answer.clone(), s.delay)
            };
            // Applied on arrival; the reply may be slow.
            let reply = {
                let mut s = st.borrow_mut();
                s.revision += 1;
                let revision = s.revisions.then_some(s.revision);
                match answer {
                    Answer::Fixed(runtimes) => Some(Ok(Registered { runtimes, revision, applied: true })),
                    Answer::Upsert => {
                        let mut runtimes = Vec::new();
                        let provs: Vec<String> = s.providers.keys().cloned().collect();
                        for p in provs {
                            let id = match s.providers[&p].clone() {
                                Some(id) => id,
                                None => {
                                    let id = format!("{p}-new-{}", s.next_id);
                                    s.next_id += 1;
                                    s.providers.insert(p.clone(), Some(id.clone()));
                                    id
                                }
                            };
                            runtimes.push(Runtime { id, key: key.clone(), provider: p });
                        }
                        Some(Ok(Registered { runtimes, revision, applied: true }))
                    }
                    Answer::Fail => Some(Err(RegistryError("500".into()))),
                    Answer::Hang => None,
                }
            };
            let Some(reply) = reply else {
                // Never answers.
                return std::future::pending().await;
            };
            env.sleep(delay).await;
            st.borrow_mut().finished += 1;
            reply
        }
    }

    fn recover_orphans(&self, _key: &str) -> impl std::future::Future<Output = Result<(), RegistryError>> + 'static {
        std::future::ready(Ok(()))
    }

    fn deregister(&self, _ids: &[String]) -> impl std::future::Future<Output = Result<(), RegistryError>> + 'static {
        std::future::ready(Ok(()))
    }

    fn heartbeat(&self, id: &str) -> impl std::future::Future<Output = Result<HeartbeatAck, RegistryError>> + 'static {
        std::future::ready(Ok(HeartbeatAck { runtime_id: id.to_owned(), status: AckStatus::Ok }))
    }
}

fn quiet() -> RecoveryConfig {
    RecoveryConfig { heartbeats: false, ..RecoveryConfig::default() }
}

fn daemon(env: &SimEnv, fake: &Fake) -> Recovery<SimEnv, Fake> {
    Recovery::new(env.clone(), fake.clone(), quiet()).expect("valid config")
}

fn seed(d: &Recovery<SimEnv, Fake>, key: &str, runtimes: &[(&str, &str)]) {
    d.track(key);
    let rs: Vec<Runtime> = runtimes.iter().map(|(id, p)| rt(id, key, p)).collect();
    d.install(key, &rs);
}

fn rt_new() -> Answer {
    Answer::Fixed(vec![rt("rt-new", "ws-1", "claude")])
}

const LIMIT: Duration = Duration::from_secs(600);

#[test]
fn handle_runtime_gone_prunes_and_reregisters() {
    check("handle_runtime_gone_prunes_and_reregisters", LIMIT, |env| async move {
        let fake = Fake::new(&env, rt_new(), &[]);
        let d = daemon(&env, &fake);
        seed(&d, "ws-1", &[("rt-old", "claude")]);
        d.handle_heartbeat_ack(Some(&HeartbeatAck { runtime_id: "rt-old".into(), status: AckStatus::Ok }), &d.root());
        d.handle_runtime_gone("rt-old", Some(0), CancellationToken::new()).await;
        let s = d.state();
        assert!(s.runtime("rt-old").is_none(), "rt-old still indexed");
        assert!(s.runtime("rt-new").is_some(), "rt-new not indexed after re-register");
        assert!(!s.recently_acked("rt-old", env.now(), Duration::from_secs(60)), "freshness mark not cleared");
        drop(s);
        assert_eq!(d.runtime_ids_of("ws-1"), ["rt-new"]);
        assert_eq!(fake.calls(), 1, "register called {} times", fake.calls());
    });
}

#[test]
fn handle_runtime_gone_coalesces_concurrent_callers() {
    check("handle_runtime_gone_coalesces_concurrent_callers", LIMIT, |env| async move {
        let fake = Fake::new(&env, rt_new(), &[]);
        fake.st.borrow_mut().delay = Duration::from_millis(20);
        let d = daemon(&env, &fake);
        seed(&d, "ws-1", &[("rt-a", "claude"), ("rt-b", "codex"), ("rt-c", "gemini")]);
        let handles: Vec<_> = ["rt-a", "rt-b", "rt-c"]
            .into_iter()
            .map(|id| {
                let d = d.clone();
                env.spawn("gone", async move { d.handle_runtime_gone(id, Some(0), CancellationToken::new()).await })
            })
            .collect();
        for h in handles {
            h.await.expect("gone handler");
        }
        assert_eq!(fake.calls(), 1, "register called {} times under stampede", fake.calls());
        assert_eq!(d.runtime_ids_of("ws-1"), ["rt-new"]);
    });
}

#[test]
fn handle_runtime_gone_backoff_on_failure() {
    check("handle_runtime_gone_backoff_on_failure", LIMIT, |env| async move {
        let fake = Fake::new(&env, Answer::Fail, &[]);
        let d = daemon(&env, &fake);
        seed(&d, "ws-1", &[("rt-1", "claude"), ("rt-2", "codex")]);
        // Both reports are handled concurrently; whichever claims first is
        // the holder and keeps retrying (once per backoff) in its task.
        let handlers: Vec<_> = [("rt-1", 1), ("rt-2", 2)]
            .into_iter()
            .map(|(id, rev)| {
                let d = d.clone();
                env.spawn("gone", async move { d.handle_runtime_gone(id, Some(rev), CancellationToken::new()).await })
            })
            .collect();
        // Buggify may delay a report by up to 6 s.
        env.sleep(Duration::from_secs(10)).await;
        assert_eq!(fake.calls(), 1, "the second report must be held by the failure backoff");
        assert!(d.runtime_ids_of("ws-1").is_empty(), "pruning happens even though register failed");
        env.sleep(GateConfig::default().failure_backoff).await;
        assert_eq!(fake.calls(), 2, "exactly one retry after the backoff");
        for h in handlers {
            h.abort();
        }
    });
}

#[test]
fn handle_ws_heartbeat_ack_runtime_gone_triggers_recovery() {
    check("handle_ws_heartbeat_ack_runtime_gone_triggers_recovery", LIMIT, |env| async move {
        let fake = Fake::new(&env, rt_new(), &[]);
        let d = daemon(&env, &fake);
        seed(&d, "ws-1", &[("rt-old", "claude")]);
        d.handle_heartbeat_ack(Some(&HeartbeatAck { runtime_id: "rt-old".into(), status: AckStatus::Ok }), &d.root());
        let gone = HeartbeatAck { runtime_id: "rt-old".into(), status: AckStatus::Gone { revision: Some(0) } };
        d.handle_heartbeat_ack(Some(&gone), &CancellationToken::new());
        assert!(
            !d.state().recently_acked("rt-old", env.now(), Duration::from_secs(60)),
            "freshness mark kept for a gone runtime: the HTTP heartbeat would skip its tick"
        );
        env.sleep(Duration::from_secs(10)).await;
        assert!(d.state().runtime("rt-old").is_none(), "rt-old not pruned after a gone ack");
        assert_eq!(d.runtime_ids_of("ws-1"), ["rt-new"]);
    });
}

#[test]
fn handle_ws_heartbeat_ack_normal_ack_records_freshness() {
    check("handle_ws_heartbeat_ack_normal_ack_records_freshness", LIMIT, |env| async move {
        let d = daemon(&env, &Fake::new(&env, rt_new(), &[]));
        d.handle_heartbeat_ack(Some(&HeartbeatAck { runtime_id: "rt-1".into(), status: AckStatus::Ok }), &d.root());
        assert!(d.state().recently_acked("rt-1", env.now(), Duration::from_secs(1)));
    });
}

#[test]
fn handle_ws_heartbeat_ack_empty_ack_ignored() {
    check("handle_ws_heartbeat_ack_empty_ack_ignored", LIMIT, |env| async move {
        let d = daemon(&env, &Fake::new(&env, rt_new(), &[]));
        d.handle_heartbeat_ack(None, &d.root());
        d.handle_heartbeat_ack(Some(&HeartbeatAck { runtime_id: String::new(), status: AckStatus::Ok }), &d.root());
        assert_eq!(d.state().ack_count(), 0, "an empty ack recorded state");
    });
}

#[test]
fn handle_runtime_gone_partial_workspace_recovery_keeps_sibling() {
    check("handle_runtime_gone_partial_workspace_recovery_keeps_sibling", LIMIT, |env| async move {
        let fake = Fake::new(&env, Answer::Upsert, &[("claude", "rt-claude-1"), ("codex", "rt-codex-1")]);
        let d = daemon(&env, &fake);
        seed(&d, "ws-1", &[("rt-claude-1", "claude"), ("rt-codex-1", "codex")]);
        let rev = fake.mark_deleted("claude");
        d.handle_runtime_gone("rt-claude-1", rev, CancellationToken::new()).await;
        let mut got = d.runtime_ids_of("ws-1");
        assert_eq!(got.len(), 2, "after partial recovery: {got:?}");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 2, "duplicate runtime ids after partial recovery");
        assert!(got.contains(&"rt-codex-1".to_owned()), "surviving sibling missing: {got:?}");
        assert!(!got.contains(&"rt-claude-1".to_owned()), "deleted runtime kept: {got:?}");
        assert!(d.state().runtime("rt-claude-1").is_none());
        assert!(d.state().runtime("rt-codex-1").is_some(), "sibling dropped from the index");
    });
}

#[test]
fn handle_runtime_gone_distinct_deletions_within_coalesce_window_both_recover() {
    check("handle_runtime_gone_distinct_deletions_within_coalesce_window_both_recover", LIMIT, |env| async move {
        let fake = Fake::new(&env, Answer::Upsert, &[("claude", "rt-claude-1"), ("codex", "rt-codex-1")]);
        let d = daemon(&env, &fake);
        seed(&d, "ws-1", &[("rt-claude-1", "claude"), ("rt-codex-1", "codex")]);
        let rev = fake.mark_deleted("claude");
        d.handle_runtime_gone("rt-claude-1", rev, CancellationToken::new()).await;
        assert_eq!(fake.calls(), 1);
        let claude = fake.id_of("claude").expect("claude re-minted");
        let rev = fake.mark_deleted("codex");
        d.handle_runtime_gone("rt-codex-1", rev, CancellationToken::new()).await;
        assert_eq!(fake.calls(), 2, "a distinct later deletion within the window must register again");
        let mut got = d.runtime_ids_of("ws-1");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.contains(&claude), "claude id from the first recovery lost: {got:?}");
    });
}

#[test]
fn handle_runtime_gone_recovery_context_survives_caller_cancellation() {
    check("handle_runtime_gone_recovery_context_survives_caller_cancellation", LIMIT, |env| async move {
        let fake = Fake::new(&env, rt_new(), &[]);
        fake.st.borrow_mut().delay = Duration::from_secs(1);
        let d = daemon(&env, &fake);
        seed(&d, "ws-1", &[("rt-old", "claude")]);
        let caller = CancellationToken::new();
        let run = {
            let (d, caller) = (d.clone(), caller.clone());
            env.spawn("gone", async move { d.handle_runtime_gone("rt-old", Some(0), caller).await })
        };
        env.sleep(Duration::from_millis(500)).await;
        caller.cancel();
        run.await.expect("gone handler");
        assert_eq!(fake.st.borrow().finished, 1, "the register call was cut short by the caller's cancellation");
        assert_eq!(d.runtime_ids_of("ws-1"), ["rt-new"]);
    });
}

#[test]
fn handle_runtime_gone_recovery_context_stops_on_daemon_shutdown() {
    check("handle_runtime_gone_recovery_context_stops_on_daemon_shutdown", LIMIT, |env| async move {
        let fake = Fake::new(&env, Answer::Hang, &[]);
        let d = daemon(&env, &fake);
        seed(&d, "ws-1", &[("rt-old", "claude")]);
        let run = {
            let d = d.clone();
            env.spawn("gone", async move { d.handle_runtime_gone("rt-old", Some(0), CancellationToken::new()).await })
        };
        while fake.calls() == 0 {
            env.sleep(Duration::from_millis(10)).await;
        }
        d.shutdown().await;
        let ended = env.timeout(Duration::from_secs(3), run).await;
        assert!(matches!(ended, Ok(Ok(()))), "recovery did not stop after shutdown");
    });
}

// --- Beyond the seed: revisions, follow-ups, ownership ---

/// A deletion lands while a slow register is in flight, after the
/// registry applied it. The seed's timestamp rule loses it: its report
/// entered before the completion stamp. Revisions recover it.
fn deletion_during_slow_registration(revisions: bool) -> (u64, bool) {
    let result = Rc::new(RefCell::new((0, false)));
    let out = result.clone();
    check("deletion_during_slow_registration", LIMIT, move |env| {
        let out = out.clone();
        async move {
            let fake = Fake::new(&env, Answer::Upsert, &[("a", "rt-a"), ("b", "rt-b"), ("c", "rt-c")]);
            fake.st.borrow_mut().revisions = revisions;
            fake.st.borrow_mut().delay = Duration::from_secs(10);
            let d = daemon(&env, &fake);
            seed(&d, "ws-1", &[("rt-a", "a"), ("rt-b", "b"), ("rt-c", "c")]);
            let rev = fake.mark_deleted("a");
            let first = {
                let d = d.clone();
                env.spawn("gone-a", async move { d.handle_runtime_gone("rt-a", rev, CancellationToken::new()).await })
            };
            // The registry applies the register on arrival and answers 10 s
            // later; b is deleted 2 s after the register arrived and
            // reported 1 s after that.
            while fake.calls() == 0 {
                env.sleep(Duration::from_millis(10)).await;
            }
            env.sleep(Duration::from_secs(2)).await;
            let rev_b = fake.mark_deleted("b");
            env.sleep(Duration::from_secs(1)).await;
            d.handle_runtime_gone("rt-b", rev_b, CancellationToken::new()).await;
            first.await.expect("gone handler");
            env.sleep(Duration::from_secs(30)).await;
            let b_alive = fake.id_of("b").is_some();
            *out.borrow_mut() = (fake.calls(), b_alive);
        }
    });
    *result.borrow()
}

#[test]
fn timestamp_mode_loses_a_deletion_during_a_slow_registration_revision_mode_recovers_it() {
    let (calls, b_registered) = deletion_during_slow_registration(false);
    assert_eq!((calls, b_registered), (1, false), "timestamp rule: b's deletion is hidden by the completion stamp");
    let (calls, b_registered) = deletion_during_slow_registration(true);
    assert_eq!((calls, b_registered), (2, true), "revisions: b's deletion runs as the follow-up");
}

#[test]
fn a_stale_holder_cannot_release_a_newer_claim_and_keys_are_independent() {
    let mut g = gate();
    let Claim::Granted(old) = g.claim("ws-1", t(0), ms(0)) else { panic!("claim") };
    g.complete(&old, Outcome::Abandoned, ms(1));
    let Claim::Granted(new) = g.claim("ws-1", t(2), ms(2)) else { panic!("reclaim after abandon") };
    assert_eq!(g.complete(&old, Outcome::Registered { revision: None }, ms(3)), warden::gate::Completion::Stale);
    assert!(g.is_held("ws-1"), "a stale ticket released the newer holder");
    assert!(matches!(g.claim("ws-2", t(3), ms(3)), Claim::Granted(_)), "another key is not held up");
    assert_eq!(g.complete(&new, Outcome::Registered { revision: None }, ms(4)), warden::gate::Completion::Done);
}

#[test]
fn the_register_deadline_must_be_shorter_than_the_window() {
    let bad = GateConfig { register_deadline: Duration::from_secs(30), ..GateConfig::default() };
    assert!(warden::gate::Gate::new(bad).is_err());
    let Claim::Granted(ticket) = gate().claim("ws-1", t(0), ms(0)) else { panic!("claim") };
    assert_eq!(ticket.deadline, ms(0) + GateConfig::default().register_deadline);
}
