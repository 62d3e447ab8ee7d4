//! The determinism self-check: the same seed in two OS processes must give
//! the same hash; on a mismatch, the first diverging event of each run.

use std::path::{Path, PathBuf};
#[allow(clippy::disallowed_types)] // check-determinism runs real OS processes by design
use std::process::Command;

/// What comparing one seed across two processes found.
#[derive(Debug, Clone)]
pub enum SeedCheck {
    /// Both processes printed this hash.
    Same(String),
    /// The hashes differ: the first diverging event of each run.
    Diverged {
        /// The two hashes.
        hashes: (String, String),
        /// Index of the first differing event and each run's line for it.
        first: (usize, String, String),
    },
}

fn child(
    bin: &Path,
    scenario: &Path,
    seed: u64,
    mutant: Option<&str>,
    dump: &Path,
) -> anyhow::Result<std::process::Child> {
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    // the point is a second OS process
    let mut cmd = Command::new(bin);
    cmd.arg("run").arg(scenario).arg("--seed").arg(seed.to_string()).arg("--dump-events").arg(dump);
    if let Some(m) = mutant {
        cmd.arg("--mutant").arg(m);
    }
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    Ok(cmd.spawn()?)
}

fn hash_of(out: &[u8]) -> anyhow::Result<String> {
    let text = String::from_utf8_lossy(out);
    let last = text.lines().last().unwrap_or_default();
    last.split_whitespace()
        .find_map(|w| w.strip_prefix("hash="))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("child printed no hash (last line {last:?})"))
}

/// Runs `seed` of `scenario` in two processes of `bin` and compares them.
pub fn check_seed(
    bin: &Path,
    scenario: &Path,
    seed: u64,
    mutant: Option<&str>,
    tmp: &Path,
) -> anyhow::Result<SeedCheck> {
    let dumps: [PathBuf; 2] = [tmp.join(format!("events-{seed}-a.txt")), tmp.join(format!("events-{seed}-b.txt"))];
    let a = child(bin, scenario, seed, mutant, &dumps[0])?;
    let b = child(bin, scenario, seed, mutant, &dumps[1])?;
    let (oa, ob) = (a.wait_with_output()?, b.wait_with_output()?);
    let (ha, hb) = (hash_of(&oa.stdout)?, hash_of(&ob.stdout)?);
    #[allow(clippy::disallowed_methods)] // the children's dump files
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let (da, db) = (read(&dumps[0]), read(&dumps[1]));
    for d in &dumps {
        #[allow(clippy::disallowed_methods)]
        let _ = std::fs::remove_file(d);
    }
    if ha == hb {
        return Ok(SeedCheck::Same(ha));
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (da.lines().collect(), db.lines().collect());
    let i = la.iter().zip(&lb).position(|(x, y)| x != y).unwrap_or(la.len().min(lb.len()));
    let at = |l: &[&str]| l.get(i).map_or_else(|| "<run ended>".to_owned(), |s| (*s).to_owned());
    Ok(SeedCheck::Diverged { hashes: (ha, hb), first: (i, at(&la), at(&lb)) })
}
