//! A run's switches: the mutant it turns on and its buggify sites.
//!
//! A buggify site is decided once per run, on its first hit: on in a
//! quarter of the runs that allow buggify. The decision is always drawn,
//! then a fault plan may override it, so a run and its saved plan draw the
//! same numbers and replay the same run. An enabled site fires in a
//! quarter of its hits during the phase with faults.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use warden::env::{buggify, mutants};

use crate::check::{Checks, FailureClass};
use crate::rng::{Decisions, Stream, below};
use crate::trace::{self, Kind};

/// The mutant and buggify state of one run.
pub(crate) struct Switches {
    mutant: Option<&'static str>,
    allowed: bool,
    fault_phase: Cell<bool>,
    sites: RefCell<BTreeMap<&'static str, bool>>,
    forced: BTreeMap<String, bool>,
}

impl Switches {
    /// Switches for a run with `mutant` on, buggify `allowed` by the
    /// scenario, and sites `forced` by a fault plan.
    pub(crate) fn new(mutant: Option<&'static str>, allowed: bool, forced: BTreeMap<String, bool>) -> Self {
        Switches { mutant, allowed, fault_phase: Cell::new(true), sites: RefCell::default(), forced }
    }

    /// Whether `name` is a declared mutant and the one switched on.
    pub(crate) fn mutant_on(&self, name: &'static str, checks: &Checks) -> bool {
        if mutants::find(name).is_none() {
            checks.fail_class(
                FailureClass::SimError,
                "known-mutant",
                format!("env.mutant({name:?}): no such mutant in warden::env::mutants::ALL"),
            );
            return false;
        }
        mutants::enabled() && self.mutant == Some(name)
    }

    /// Whether faults may be injected now (the phase with faults).
    #[inline]
    pub(crate) fn faults_allowed(&self) -> bool {
        self.fault_phase.get()
    }

    /// Ends the phase with faults.
    pub(crate) fn end_fault_phase(&self) {
        self.fault_phase.set(false);
    }

    /// Whether buggify site `site` fires now.
    pub(crate) fn buggify(&self, site: &'static str, decisions: &RefCell<Decisions>, checks: &Checks) -> bool {
        if buggify::find(site).is_none() {
            checks.fail_class(
                FailureClass::SimError,
                "known-buggify-site",
                format!("buggify!(env, {site:?}) is not declared in warden::env::buggify::ALL"),
            );
            return false;
        }
        if !self.allowed || !self.fault_phase.get() {
            return false;
        }
        let decided = self.sites.borrow().get(site).copied();
        let enabled = match decided {
            Some(e) => e,
            None => {
                let drawn = below(decisions.borrow_mut().draw(Stream::Faults), 4) == 0;
                let e = self.forced.get(site).copied().unwrap_or(drawn);
                self.sites.borrow_mut().insert(site, e);
                trace::sim_event(Kind::Buggify, u64::from(e), 0, || format!("buggify site {site} enabled={e}"));
                e
            }
        };
        enabled && below(decisions.borrow_mut().draw(Stream::Faults), 4) == 0
    }

    /// The sites decided so far, for the run's fault plan.
    pub(crate) fn decided_sites(&self) -> BTreeMap<String, bool> {
        self.sites.borrow().iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }
}
