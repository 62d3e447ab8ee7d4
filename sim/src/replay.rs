//! The one command that replays a run, built from everything that decided
//! it: the program that reran it (the CLI on a scenario file, or a `cargo
//! test`), the seed, the mutant, a scheduler override and a fault plan.
//! Every place that prints a replay line (`run`, `explore`, the watchdog,
//! the `cargo test` helpers) prints this.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::sched::SchedulerKind;

/// The name the command line was started as: a process-wide setting of
/// the CLI edge, outside any run.
static PROGRAM: OnceLock<String> = OnceLock::new();

/// Records the CLI's program name (once; later calls do nothing).
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) fn set_program_name(name: String) {
    let _ = PROGRAM.set(name);
}

/// The program replay lines name: the running CLI, or `warden-sim`.
pub fn program_name() -> &'static str {
    PROGRAM.get().map_or("warden-sim", String::as_str)
}

/// What reruns a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayer {
    /// A CLI binary (`warden-sim`, or a project's own built on
    /// [`crate::cli`]) running a scenario file.
    Cli {
        /// The binary's name.
        program: String,
        /// The scenario file.
        scenario: PathBuf,
    },
    /// A test under `cargo test`.
    CargoTest {
        /// The package (`-p`), when known.
        package: Option<String>,
        /// The integration-test target (`--test`), when known.
        target: Option<String>,
        /// The test's full name, run with `--exact`.
        test: String,
    },
}

impl Replayer {
    /// This process's CLI running the scenario file at `scenario`.
    pub fn cli(scenario: &std::path::Path) -> Replayer {
        Replayer::Cli { program: program_name().into(), scenario: scenario.to_owned() }
    }
}

/// One run's replay command; `Display` prints it on one line.
#[derive(Debug, Clone)]
pub struct ReplayLine<'a> {
    /// What reruns it.
    pub replayer: &'a Replayer,
    /// The seed.
    pub seed: u64,
    /// The mutant switched on.
    pub mutant: Option<&'a str>,
    /// A scheduler that overrode the scenario's.
    pub scheduler: Option<SchedulerKind>,
    /// The fault plan file the run replayed.
    pub plan_file: Option<&'a std::path::Path>,
}

impl fmt::Display for ReplayLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.replayer {
            Replayer::Cli { program, scenario } => {
                write!(f, "{program} run {} --seed {}", scenario.display(), self.seed)?;
                if let Some(m) = self.mutant {
                    write!(f, " --mutant {m}")?;
                }
                match self.scheduler {
                    Some(SchedulerKind::Random) => f.write_str(" --sched random")?,
                    Some(SchedulerKind::Pct { .. }) => f.write_str(" --sched pct")?,
                    None => {}
                }
                if let Some(p) = self.plan_file {
                    write!(f, " --plan {}", p.display())?;
                }
                Ok(())
            }
            Replayer::CargoTest { package, target, test } => {
                write!(f, "SIM_SEED={} cargo test", self.seed)?;
                if let Some(p) = package {
                    write!(f, " -p {p}")?;
                }
                if let Some(t) = target {
                    write!(f, " --test {t}")?;
                }
                write!(f, " {test} -- --exact")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_deciding_input_is_in_the_line() {
        let cli = Replayer::Cli { program: "warden-sim".into(), scenario: "scenarios/s.toml".into() };
        let plan = std::path::Path::new("/tmp/p.toml");
        let line = ReplayLine {
            replayer: &cli,
            seed: 7,
            mutant: Some("m"),
            scheduler: Some(SchedulerKind::Pct { depth: 3, steps: None }),
            plan_file: Some(plan),
        };
        assert_eq!(
            line.to_string(),
            "warden-sim run scenarios/s.toml --seed 7 --mutant m --sched pct --plan /tmp/p.toml"
        );
        let test = Replayer::CargoTest { package: Some("p".into()), target: Some("t".into()), test: "a::b".into() };
        let line = ReplayLine { replayer: &test, seed: 3, mutant: None, scheduler: None, plan_file: None };
        assert_eq!(line.to_string(), "SIM_SEED=3 cargo test -p p --test t a::b -- --exact");
    }
}
