//! Fault plans as data: which buggify sites are on, which hosts crash and
//! when, partitions, and the crash points processes die at. A run derives
//! its plan from the seed and can save it (`run --save-plan`); a plan
//! replays with `--plan FILE` instead of being drawn, and proptest
//! generates and shrinks plans directly.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::input::InputError;

/// The latest virtual time a plan may name, and the longest downtime or
/// partition (the most a run covers).
pub const MAX_PLAN_MS: u64 = 24 * 3600 * 1000;
/// The highest hit count a crash point of a plan may name.
pub const MAX_CRASH_HIT: u64 = 1_000_000;

/// A fault plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Declared buggify sites forced on (`true`) or off.
    #[serde(default)]
    pub buggify: BTreeMap<String, bool>,
    /// Host power losses.
    #[serde(default)]
    pub host_crashes: Vec<HostCrash>,
    /// Network partitions between two hosts.
    #[serde(default)]
    pub partitions: Vec<Partition>,
    /// Wall-clock steps of a host.
    #[serde(default)]
    pub clock_steps: Vec<ClockStep>,
    /// Processes die at these crash points, in this order: each at the
    /// `hit`-th hit of its point (a recovery point follows the crash that
    /// leads to it).
    #[serde(default)]
    pub crash_points: Vec<CrashAt>,
}

/// A host loses power at `at_ms` and boots `restart_after_ms` later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCrash {
    /// Virtual milliseconds from the start of the run.
    pub at_ms: u64,
    /// Host index (0 is the model's own host and never crashes).
    pub host: u32,
    /// Downtime.
    pub restart_after_ms: u64,
}

/// Hosts `a` and `b` cannot reach each other for `for_ms` from `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Virtual milliseconds from the start of the run.
    pub at_ms: u64,
    /// One host.
    pub a: u32,
    /// The other.
    pub b: u32,
    /// How long.
    pub for_ms: u64,
}

/// Host `host`'s wall clock jumps by `by_ms` (either way) at `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockStep {
    /// Virtual milliseconds from the start of the run.
    pub at_ms: u64,
    /// Host index.
    pub host: u32,
    /// The jump, in milliseconds (negative: back).
    pub by_ms: i64,
}

/// The `hit`-th hit of crash point `name` kills its process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashAt {
    /// A declared crash point.
    pub name: String,
    /// Which hit, from 1.
    pub hit: u64,
}

/// The plan's text with every value's place, for errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    buggify: BTreeMap<Spanned<String>, bool>,
    #[serde(default)]
    host_crashes: Vec<RawHostCrash>,
    #[serde(default)]
    partitions: Vec<RawPartition>,
    #[serde(default)]
    clock_steps: Vec<RawClockStep>,
    #[serde(default)]
    crash_points: Vec<RawCrashAt>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClockStep {
    at_ms: Spanned<u64>,
    host: Spanned<u32>,
    by_ms: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostCrash {
    at_ms: Spanned<u64>,
    host: Spanned<u32>,
    restart_after_ms: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    at_ms: Spanned<u64>,
    a: Spanned<u32>,
    b: Spanned<u32>,
    for_ms: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrashAt {
    name: Spanned<String>,
    hit: Spanned<u64>,
}

impl FaultPlan {
    /// Reads and checks a plan; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<FaultPlan, InputError> {
        FaultPlan::parse(path, &crate::input::read(path)?)
    }

    /// Checks plan `text` read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<FaultPlan, InputError> {
        let raw: Raw = toml::from_str(text).map_err(|e| InputError::toml(path, text, &e))?;
        let err = |span: std::ops::Range<usize>, m: String| InputError::at(path, text, span, m);
        let ms = |v: &Spanned<u64>, what: &str| {
            let x = *v.get_ref();
            if x > MAX_PLAN_MS {
                return Err(err(v.span(), format!("{what} = {x} is past the {MAX_PLAN_MS} ms a run may cover")));
            }
            Ok(x)
        };
        let mut plan = FaultPlan::default();
        for (site, on) in raw.buggify {
            if warden::env::buggify::find(site.get_ref()).is_none() {
                let known: Vec<_> = warden::env::buggify::ALL.iter().map(|s| s.name).collect();
                return Err(err(
                    site.span(),
                    format!("unknown buggify site {:?} (declared: {})", site.get_ref(), known.join(", ")),
                ));
            }
            plan.buggify.insert(site.into_inner(), on);
        }
        for c in raw.host_crashes {
            if *c.host.get_ref() == 0 {
                return Err(err(c.host.span(), "host 0 holds the model's own process and never crashes".into()));
            }
            plan.host_crashes.push(HostCrash {
                at_ms: ms(&c.at_ms, "at_ms")?,
                host: c.host.into_inner(),
                restart_after_ms: ms(&c.restart_after_ms, "restart_after_ms")?,
            });
        }
        for p in raw.partitions {
            if p.a.get_ref() == p.b.get_ref() {
                return Err(err(p.b.span(), "a partition needs two different hosts".into()));
            }
            plan.partitions.push(Partition {
                at_ms: ms(&p.at_ms, "at_ms")?,
                a: p.a.into_inner(),
                b: p.b.into_inner(),
                for_ms: ms(&p.for_ms, "for_ms")?,
            });
        }
        for c in raw.clock_steps {
            let by = *c.by_ms.get_ref();
            if by.unsigned_abs() > MAX_PLAN_MS {
                return Err(err(c.by_ms.span(), format!("by_ms = {by} steps a clock by more than {MAX_PLAN_MS} ms")));
            }
            plan.clock_steps.push(ClockStep { at_ms: ms(&c.at_ms, "at_ms")?, host: c.host.into_inner(), by_ms: by });
        }
        for c in raw.crash_points {
            if !warden::env::crash::is_declared(c.name.get_ref()) {
                return Err(err(c.name.span(), format!("no crash point named {:?} is declared", c.name.get_ref())));
            }
            if !(1..=MAX_CRASH_HIT).contains(c.hit.get_ref()) {
                return Err(err(c.hit.span(), format!("hit must be from 1 to {MAX_CRASH_HIT}")));
            }
            plan.crash_points.push(CrashAt { name: c.name.into_inner(), hit: c.hit.into_inner() });
        }
        Ok(plan)
    }

    /// The TOML text of the plan.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// How many faults it holds: buggify sites forced on, host crashes,
    /// partitions, clock steps and crash points.
    pub fn fault_count(&self) -> usize {
        self.buggify.values().filter(|on| **on).count()
            + self.host_crashes.len()
            + self.partitions.len()
            + self.clock_steps.len()
            + self.crash_points.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        FaultPlan::parse(Path::new("p.toml"), text).expect_err(text).to_string()
    }

    #[test]
    fn a_saved_plan_reads_back() {
        let plan = FaultPlan {
            buggify: [("gate.gone.after_prune".to_owned(), true)].into(),
            host_crashes: vec![HostCrash { at_ms: 5, host: 1, restart_after_ms: 500 }],
            partitions: vec![Partition { at_ms: 1, a: 0, b: 2, for_ms: 9 }],
            clock_steps: vec![ClockStep { at_ms: 3, host: 1, by_ms: -2000 }],
            crash_points: vec![CrashAt { name: "selftest.journal.after_sync".into(), hit: 2 }],
        };
        assert_eq!(FaultPlan::parse(Path::new("p"), &plan.to_toml()), Ok(plan));
    }

    #[test]
    fn bad_plans_are_refused_at_their_place() {
        let e = error_of("[[host_crashes]]\nat_ms = 100\nhost = 0\nrestart_after_ms = 1000\n");
        assert!(e.starts_with("p.toml:3:8:") && e.contains("never crashes"), "{e}");
        let e = error_of("[[host_crashes]]\nat_ms = 18446744073709551615\nhost = 1\nrestart_after_ms = 1\n");
        assert!(e.starts_with("p.toml:2:9:"), "{e}");
        let e = error_of("[[crash_points]]\nname = \"nope\"\nhit = 1\n");
        assert!(e.starts_with("p.toml:2:8:") && e.contains("no crash point"), "{e}");
        let e = error_of("[buggify]\n\"x.y\" = true\n");
        assert!(e.starts_with("p.toml:2:1:") && e.contains("unknown buggify site"), "{e}");
        let e = error_of("bogus = 1\n");
        assert!(e.starts_with("p.toml:1:1:"), "{e}");
    }
}
