//! Decision records: the seed, scenario and mutant of a run and every
//! decision it took, one line per stream. Plain text so that a person or a
//! shrinker can edit it; a replay follows the edited decisions.

use std::fmt::Write as _;
use std::path::Path;

use crate::rng::Stream;

/// A recorded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The run's seed (replays print it, whatever `--seed` says).
    pub seed: u64,
    /// The scenario's name.
    pub scenario: String,
    /// The mutant that was on.
    pub mutant: Option<String>,
    /// Decisions per stream, in [`Stream::ALL`] order.
    pub streams: Vec<Vec<u64>>,
}

const MAGIC: &str = "# warden-sim decision record v2";
/// The last line of a complete record: a record without it was cut short.
const END: &str = "end";

/// A record file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct RecordError {
    path: String,
    line: usize,
    message: String,
}

impl Record {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{MAGIC}\nseed {}\nscenario {}\nmutant {}\n",
            self.seed,
            self.scenario,
            self.mutant.as_deref().unwrap_or("-")
        );
        for (stream, values) in Stream::ALL.iter().zip(&self.streams) {
            s.push_str(stream.name());
            for v in values {
                let _ = write!(s, " {v}");
            }
            s.push('\n');
        }
        s.push_str(END);
        s.push('\n');
        s
    }

    /// Parses the text form; `path` names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Record, RecordError> {
        let err = |line: usize, message: String| RecordError { path: path.display().to_string(), line, message };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, l)) if l.trim() == MAGIC => {}
            _ => {
                return Err(err(1, format!("not a decision record (first line must be {MAGIC:?})")));
            }
        }
        let mut rec =
            Record { seed: 0, scenario: String::new(), mutant: None, streams: vec![Vec::new(); Stream::ALL.len()] };
        let mut have_seed = false;
        let mut ended = false;
        for (i, line) in lines {
            let n = i + 1;
            let mut words = line.split_whitespace();
            let Some(key) = words.next() else { continue };
            if ended {
                return Err(err(n, format!("text after the {END:?} line")));
            }
            match key {
                END => ended = true,
                "seed" => {
                    rec.seed = words
                        .next()
                        .and_then(|w| w.parse().ok())
                        .ok_or_else(|| err(n, "seed must be an unsigned integer".into()))?;
                    have_seed = true;
                }
                "scenario" => rec.scenario = words.collect::<Vec<_>>().join(" "),
                "mutant" => rec.mutant = words.next().filter(|m| *m != "-").map(str::to_owned),
                _ => {
                    let Some(s) = Stream::ALL.iter().position(|s| s.name() == key) else {
                        return Err(err(
                            n,
                            format!("unknown line {key:?} (expected seed, scenario, mutant or a stream name)"),
                        ));
                    };
                    rec.streams[s] = words
                        .map(|w| {
                            w.parse::<u64>().map_err(|_| err(n, format!("{key}: {w:?} is not an unsigned integer")))
                        })
                        .collect::<Result<_, _>>()?;
                }
            }
        }
        if !have_seed {
            return Err(err(1, "no seed line".into()));
        }
        if !ended {
            let last = text.lines().count();
            return Err(err(last, format!("the record is cut short: no {END:?} line at its end")));
        }
        Ok(rec)
    }

    /// Writes the record to `path`.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        #[allow(clippy::disallowed_methods)] // the CLI's own file, not simulated I/O
        std::fs::write(path, self.to_text())
    }

    /// Reads a record from `path`.
    pub fn load(path: &Path) -> anyhow::Result<Record> {
        #[allow(clippy::disallowed_methods)] // the CLI's own file, not simulated I/O
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Record::parse(path, &text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_errors_name_the_line() {
        let r = Record {
            seed: 42,
            scenario: "s".into(),
            mutant: Some("m".into()),
            streams: vec![vec![1, 2], vec![], vec![3], vec![], vec![], vec![9]],
        };
        let back = Record::parse(Path::new("x"), &r.to_text()).unwrap();
        assert_eq!(r, back);
        let bad = r.to_text().replace("app 9", "app nine");
        let e = Record::parse(Path::new("rec.txt"), &bad).unwrap_err().to_string();
        assert!(e.starts_with("rec.txt:10:"), "{e}");
        let text = r.to_text();
        let cut = &text[..text.len() - 10];
        let e = Record::parse(Path::new("rec.txt"), cut).unwrap_err().to_string();
        assert!(e.contains("cut short"), "{e}");
    }
}
