//! `warden-sim list`: models, their invariants, coverage windows and
//! parameters, and every mutant.

use warden::env::mutants;

use crate::{models, trace};

pub(super) fn cmd_list(names_only: bool) {
    if names_only {
        for m in mutants::ALL {
            println!("{}", m.name);
        }
        return;
    }
    trace::install();
    for m in models::all() {
        let s = m.spec();
        println!("model {}: {}", s.name, s.about);
        println!("  invariants: {}", s.invariants.join(", "));
        for (c, about) in s.coverage {
            println!("  coverage {c}: {about}");
        }
        for p in s.params {
            println!("  param {} = {} ({})", p.name, p.default, p.about);
        }
    }
    println!(
        "mutants ({}):",
        if mutants::enabled() { "compiled in" } else { "compiled out; build with --features warden/mutants" }
    );
    for m in mutants::ALL {
        println!("  {}: {}", m.name, m.bug);
    }
}
