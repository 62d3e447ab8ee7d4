//! Fault plans as data: which buggify sites are on, which hosts crash and
//! when, partitions, and the crash point a process dies at. A run derives
//! its plan from the seed and can save it (`run --save-plan`); a plan
//! replays with `--plan FILE` instead of being drawn, and proptest
//! generates and shrinks plans directly.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A fault plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Buggify sites (`module::path:line`) forced on (`true`) or off.
    #[serde(default)]
    pub buggify: BTreeMap<String, bool>,
    /// Host power losses.
    #[serde(default)]
    pub host_crashes: Vec<HostCrash>,
    /// Network partitions between two hosts.
    #[serde(default)]
    pub partitions: Vec<Partition>,
    /// The process that reaches this crash point's k-th hit dies there.
    #[serde(default)]
    pub crash_point: Option<CrashAt>,
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

/// The `hit`-th hit of crash point `name` kills its process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashAt {
    /// A declared crash point.
    pub name: String,
    /// Which hit, from 1.
    pub hit: u64,
}

impl FaultPlan {
    /// Reads a plan; errors name the file, line and column.
    pub fn load(path: &Path) -> anyhow::Result<FaultPlan> {
        #[allow(clippy::disallowed_methods)] // the CLI's own input
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let line = text[..at.min(text.len())].matches('\n').count() + 1;
            anyhow::anyhow!("{}:{line}: {}", path.display(), e.message().trim())
        })
    }

    /// The TOML text of the plan.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}
