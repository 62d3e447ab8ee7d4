//! Scenario files: TOML, validated against the model they name. Every
//! error names the file, line and column of the offending key or value.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use warden::env::mutants;

use crate::check::FailureClass;
use crate::models::{self, Model, Params};
use crate::sched::{PCT_MAX_DEPTH, SchedulerKind};

/// What proves a mutant caught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Catch {
    /// This invariant fails.
    Invariant(String),
    /// The run fails with this class (e.g. `livelock`, `nondeterminism`).
    Class(FailureClass),
}

/// A validated scenario.
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// The model it runs.
    pub model: &'static dyn Model,
    /// Virtual time of the phase with faults.
    pub duration: Duration,
    /// Virtual time of the fault-free phase after it.
    pub liveness: Duration,
    /// The scheduler.
    pub scheduler: SchedulerKind,
    /// Seeds CI runs.
    pub seeds: u64,
    /// Invariants checked.
    pub invariants: Vec<String>,
    /// Coverage minimums (share of opportunities).
    pub coverage: Vec<(String, f64)>,
    /// Mutants this scenario must catch, and how.
    pub catches: Vec<(String, Catch)>,
    /// Fault rates.
    pub faults: crate::faults::Faults,
    /// The model's parameters.
    pub params: Params,
}

impl Scenario {
    /// How `mutant` is caught here, if the scenario lists it.
    pub fn catch_of(&self, mutant: &str) -> Option<&Catch> {
        self.catches.iter().find(|(m, _)| m == mutant).map(|(_, c)| c)
    }
}

/// A scenario that cannot be used (it names the file, line and column).
pub type ScenarioError = crate::input::InputError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    model: Spanned<String>,
    duration: Spanned<String>,
    #[serde(default)]
    liveness: Option<Spanned<String>>,
    scheduler: Spanned<RawScheduler>,
    seeds: Spanned<i64>,
    #[serde(default)]
    invariants: Vec<Spanned<String>>,
    #[serde(default)]
    coverage: BTreeMap<Spanned<String>, Spanned<f64>>,
    #[serde(default)]
    catches: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    faults: Option<Spanned<crate::faults::Faults>>,
    #[serde(default)]
    params: BTreeMap<Spanned<String>, Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    kind: Spanned<String>,
    #[serde(default)]
    depth: Option<Spanned<i64>>,
    #[serde(default)]
    steps: Option<Spanned<i64>>,
}

/// The most virtual time a run may cover (duration plus liveness).
pub const MAX_VIRTUAL_TIME: Duration = Duration::from_secs(24 * 3600);

/// The largest PCT step estimate a scenario may give.
pub const MAX_PCT_STEPS: u64 = 1_000_000_000;

/// Default length of the fault-free liveness phase.
pub const DEFAULT_LIVENESS: Duration = Duration::from_secs(30);

/// Reads and validates a scenario file naming one of warden's own models.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    load_in(path, models::Catalog::builtin())
}

/// Reads and validates a scenario file naming a model of `catalog`.
pub fn load_in(path: &Path, catalog: models::Catalog) -> Result<Scenario, ScenarioError> {
    parse_in(path, &crate::input::read(path)?, catalog)
}

/// Validates scenario `text` read from `path` (warden's own models).
pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    parse_in(path, text, models::Catalog::builtin())
}

/// Validates scenario `text` read from `path`, naming a model of `catalog`.
pub fn parse_in(path: &Path, text: &str, catalog: models::Catalog) -> Result<Scenario, ScenarioError> {
    let err = |span: Range<usize>, message: String| ScenarioError::at(path, text, span, message);
    let raw: Raw = toml::from_str(text).map_err(|e| ScenarioError::toml(path, text, &e))?;

    let model = catalog.find(raw.model.get_ref()).ok_or_else(|| {
        let names: Vec<_> = catalog.models().iter().map(|m| m.spec().name).collect();
        err(raw.model.span(), format!("unknown model {:?} (known: {})", raw.model.get_ref(), names.join(", ")))
    })?;
    let spec = model.spec();
    let duration = parse_duration(&raw.duration).map_err(|m| err(raw.duration.span(), m))?;
    if duration.is_zero() {
        return Err(err(raw.duration.span(), "duration must be longer than 0s".into()));
    }
    let liveness = match &raw.liveness {
        Some(l) => parse_duration(l).map_err(|m| err(l.span(), m))?,
        None => DEFAULT_LIVENESS,
    };
    if duration.saturating_add(liveness) > MAX_VIRTUAL_TIME {
        return Err(err(
            raw.duration.span(),
            format!(
                "duration + liveness is {}; a run may cover at most {} of virtual time",
                humantime::format_duration(duration.saturating_add(liveness)),
                humantime::format_duration(MAX_VIRTUAL_TIME)
            ),
        ));
    }
    let sched = raw.scheduler.get_ref();
    let scheduler = match sched.kind.get_ref().as_str() {
        "random" => {
            if let Some(d) = &sched.depth {
                return Err(err(d.span(), "depth applies only to kind = \"pct\"".into()));
            }
            if let Some(s) = &sched.steps {
                return Err(err(s.span(), "steps applies only to kind = \"pct\"".into()));
            }
            SchedulerKind::Random
        }
        "pct" => {
            let depth = match &sched.depth {
                Some(d) => u32::try_from(*d.get_ref())
                    .ok()
                    .filter(|d| (1..=PCT_MAX_DEPTH).contains(d))
                    .ok_or_else(|| err(d.span(), format!("depth must be an integer from 1 to {PCT_MAX_DEPTH}")))?,
                None => 3,
            };
            let steps = match &sched.steps {
                Some(s) => Some(
                    u64::try_from(*s.get_ref())
                        .ok()
                        .filter(|s| (1..=MAX_PCT_STEPS).contains(s))
                        .ok_or_else(|| err(s.span(), format!("steps must be an integer from 1 to {MAX_PCT_STEPS}")))?,
                ),
                None => None,
            };
            SchedulerKind::Pct { depth, steps }
        }
        other => {
            return Err(err(
                sched.kind.span(),
                format!("unknown scheduler kind {other:?} (expected \"random\" or \"pct\")"),
            ));
        }
    };
    let seeds = u64::try_from(*raw.seeds.get_ref())
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| err(raw.seeds.span(), "seeds must be a positive integer".into()))?;

    let mut invariants = Vec::new();
    for inv in &raw.invariants {
        if !spec.invariants.contains(&inv.get_ref().as_str()) {
            return Err(err(
                inv.span(),
                format!(
                    "unknown invariant {:?} for model {} (known: {})",
                    inv.get_ref(),
                    spec.name,
                    spec.invariants.join(", ")
                ),
            ));
        }
        invariants.push(inv.get_ref().clone());
    }
    let faults = match &raw.faults {
        Some(f) => {
            let v = f.get_ref().clone();
            for (name, rate, max) in [
                ("crash", v.crash, 10.0),
                ("partition", v.partition, 10.0),
                ("disk_error", v.disk_error, 1.0),
                ("udp_loss", v.udp_loss, 1.0),
                ("clock_step", v.clock_step, 10.0),
                ("clock_skew_ms", v.clock_skew_ms as f64, 3_600_000.0),
                ("clock_drift_ppm", v.clock_drift_ppm as f64, 100_000.0),
            ] {
                if !(0.0..=max).contains(&rate) {
                    return Err(err(f.span(), format!("faults.{name} = {rate} is outside 0..={max}")));
                }
            }
            if let crate::faults::CrashPoints::Prefix(p) = &v.crash_points
                && !warden::env::crash::names().any(|n| n.starts_with(p.as_str()))
            {
                return Err(err(
                    f.span(),
                    format!("faults.crash_points = {p:?}: no declared crash point starts with it"),
                ));
            }
            v
        }
        None => crate::faults::Faults::default(),
    };
    let mut coverage = Vec::new();
    let crash_windows = faults.crash_points.windows();
    for (name, min) in &raw.coverage {
        if !spec.coverage.iter().any(|(c, _)| c == name.get_ref()) && !crash_windows.contains(name.get_ref()) {
            let mut known: Vec<_> = spec.coverage.iter().map(|(c, _)| (*c).to_owned()).collect();
            known.extend(crash_windows.iter().cloned());
            return Err(err(
                name.span(),
                format!(
                    "unknown coverage window {:?} for model {} (known: {})",
                    name.get_ref(),
                    spec.name,
                    known.join(", ")
                ),
            ));
        }
        if !(0.0..=1.0).contains(min.get_ref()) {
            return Err(err(min.span(), "a coverage minimum is a share between 0 and 1".into()));
        }
        coverage.push((name.get_ref().clone(), *min.get_ref()));
    }
    let mut catches = Vec::new();
    for (mutant, how) in &raw.catches {
        if mutants::find(mutant.get_ref()).is_none() {
            let known: Vec<_> = mutants::ALL.iter().map(|m| m.name).collect();
            return Err(err(
                mutant.span(),
                format!("unknown mutant {:?} (known: {})", mutant.get_ref(), known.join(", ")),
            ));
        }
        let catch = if invariants.contains(how.get_ref()) {
            Catch::Invariant(how.get_ref().clone())
        } else if let Some(class) = FailureClass::from_name(how.get_ref()) {
            Catch::Class(class)
        } else {
            return Err(err(
                how.span(),
                format!(
                    "{:?} is neither an invariant this scenario checks ({}) nor a failure class (livelock, nondeterminism, crash, liveness)",
                    how.get_ref(),
                    invariants.join(", ")
                ),
            ));
        };
        catches.push((mutant.get_ref().clone(), catch));
    }
    let mut values = BTreeMap::new();
    for (key, value) in &raw.params {
        if !spec.params.iter().any(|p| p.name == key.get_ref()) {
            let known: Vec<_> = spec.params.iter().map(|p| p.name).collect();
            return Err(err(
                key.span(),
                format!("unknown parameter {:?} for model {} (known: {})", key.get_ref(), spec.name, known.join(", ")),
            ));
        }
        let (v, p) = (*value.get_ref(), spec.params.iter().find(|p| p.name == key.get_ref()));
        if let Some(p) = p
            && !(p.min..=p.max).contains(&v)
        {
            return Err(err(value.span(), format!("{} = {v} is outside {}..={}", p.name, p.min, p.max)));
        }
        values.insert(key.get_ref().clone(), v);
    }
    Ok(Scenario {
        path: path.to_path_buf(),
        name: raw.name.into_inner(),
        model,
        duration,
        liveness,
        scheduler,
        seeds,
        invariants,
        coverage,
        catches,
        faults,
        params: Params::new(spec, &values),
    })
}

fn parse_duration(s: &Spanned<String>) -> Result<Duration, String> {
    humantime::parse_duration(s.get_ref())
        .map_err(|e| format!("invalid duration {:?}: {e} (e.g. \"120s\", \"500ms\", \"2m\")", s.get_ref()))
}

/// Scenario files in `dir`, sorted by name.
pub fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    #[allow(clippy::disallowed_methods)] // the CLI's own input
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
model = "selftest.lost-update"
duration = "10s"
scheduler = { kind = "random" }
seeds = 10
invariants = ["no-lost-update"]
catches = { selftest-lost-update = "no-lost-update" }
"#;

    fn error_of(text: &str) -> String {
        match parse(Path::new("s.toml"), text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_a_valid_file() {
        let s = parse(Path::new("s.toml"), GOOD).expect("valid");
        assert_eq!(s.duration, Duration::from_secs(10));
        assert_eq!(s.catch_of("selftest-lost-update"), Some(&Catch::Invariant("no-lost-update".into())));
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = error_of(&GOOD.replace("seeds = 10", "seeds = 10\nbogus = 1"));
        assert!(e.starts_with("s.toml:7:1:") && e.contains("bogus"), "{e}");
        let e = error_of(&GOOD.replace("[\"no-lost-update\"]", "[\"nope\"]"));
        assert!(e.starts_with("s.toml:7:15:") && e.contains("unknown invariant"), "{e}");
        let e = error_of(&GOOD.replace("catches = { selftest-lost-update", "catches = { no-such-mutant"));
        assert!(e.starts_with("s.toml:8:13:") && e.contains("unknown mutant"), "{e}");
        let e = error_of(&GOOD.replace("\"10s\"", "\"ten\""));
        assert!(e.starts_with("s.toml:4:12:"), "{e}");
        let e = error_of(&GOOD.replace("\"random\"", "\"fifo\""));
        assert!(e.contains("unknown scheduler kind"), "{e}");
    }
}
