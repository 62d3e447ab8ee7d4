//! Run outcomes and the restart decision (seed 003 D1, D2, D7): a run ends
//! clean, cancelled or in error, and only an error the policy permits,
//! with the context not cancelled, restarts.

use crate::env::JoinError;
use crate::supervisor::error::{RunError, RunResult};

/// Whether failed runs restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never restart.
    Never,
    /// Restart after an error.
    OnFailure,
}

/// How one run of a start function ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// It returned without error, or with an error the valid-error
    /// predicate accepts. A start that returns at once because it serves in
    /// the background ends here too: a clean start, not an exit.
    Clean,
    /// Its context was cancelled.
    Cancelled,
    /// It failed or panicked; the error is never empty.
    Error(RunError),
}

/// Classifies a run from its joined result, whether its context was
/// cancelled by then, and the valid-error predicate.
pub fn classify(
    result: Result<RunResult, JoinError>,
    cancelled: bool,
    valid_error: Option<&dyn Fn(&RunError) -> bool>,
) -> RunOutcome {
    match result {
        Ok(_) | Err(JoinError::Cancelled) if cancelled => RunOutcome::Cancelled,
        Err(JoinError::Cancelled) => RunOutcome::Cancelled,
        Ok(Ok(())) => RunOutcome::Clean,
        Ok(Err(e)) if valid_error.is_some_and(|v| v(&e)) => RunOutcome::Clean,
        Ok(Err(e)) => RunOutcome::Error(e),
        Err(JoinError::Panicked(m)) => RunOutcome::Error(RunError::new(format!("panicked: {m}"))),
    }
}

/// Whether `outcome` restarts under `policy`.
pub fn should_restart(outcome: &RunOutcome, policy: RestartPolicy, cancelled: bool) -> bool {
    match (outcome, policy) {
        (RunOutcome::Error(_), RestartPolicy::OnFailure) => !cancelled,
        (RunOutcome::Error(_), RestartPolicy::Never) => false,
        (RunOutcome::Clean | RunOutcome::Cancelled, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_table() {
        let valid = |e: &RunError| e.message() == "server closed";
        let cases: &[(Result<RunResult, JoinError>, bool, RunOutcome, bool)] = &[
            (Ok(Ok(())), false, RunOutcome::Clean, false),
            (Ok(Ok(())), true, RunOutcome::Cancelled, false),
            (Ok(Err(RunError::new("boom"))), false, RunOutcome::Error(RunError::new("boom")), true),
            (Ok(Err(RunError::new("boom"))), true, RunOutcome::Cancelled, false),
            (Ok(Err(RunError::new("server closed"))), false, RunOutcome::Clean, false),
            (Err(JoinError::Panicked("x".into())), false, RunOutcome::Error(RunError::new("panicked: x")), true),
            (Err(JoinError::Cancelled), false, RunOutcome::Cancelled, false),
        ];
        for (result, cancelled, outcome, restart) in cases {
            let got = classify(result.clone(), *cancelled, Some(&valid));
            assert_eq!(&got, outcome, "{result:?} cancelled={cancelled}");
            assert_eq!(should_restart(&got, RestartPolicy::OnFailure, *cancelled), *restart, "{result:?}");
            assert!(!should_restart(&got, RestartPolicy::Never, *cancelled));
        }
        assert_eq!(RunError::new("").message(), "error with no message", "never an empty error");
    }
}
