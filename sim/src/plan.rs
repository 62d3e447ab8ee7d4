//! Fault plans as data: which buggify sites are on, replayable with
//! `--plan FILE` instead of being drawn from the seed. (Explicit fault
//! events join this file with the simulated world: crashes, partitions.)

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
}

impl FaultPlan {
    /// Reads a plan; errors name the file, line and column.
    pub fn load(path: &Path) -> anyhow::Result<FaultPlan> {
        #[allow(clippy::disallowed_methods)] // the CLI's own input
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
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
