//! The file as serde reads it: every value the validator may complain about
//! keeps its span, so each error can name `FILE:LINE:COL`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub warden: Option<RawWarden>,
    #[serde(default)]
    pub service: Vec<RawService>,
    pub registry: Option<super::registry::RawRegistry>,
}

/// `[warden]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWarden {
    pub control: Option<Spanned<String>>,
    pub admin: Option<Spanned<String>>,
    pub stop_timeout: Option<Spanned<String>>,
}

/// One `[[service]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub name: Spanned<String>,
    pub command: Spanned<Vec<Spanned<String>>>,
    pub restart: Option<Spanned<String>>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    pub ready: Option<Spanned<RawReady>>,
    pub stop_signal: Option<Spanned<String>>,
    pub stop_timeout: Option<Spanned<String>>,
    pub backoff: Option<RawBackoff>,
    pub intensity: Option<RawIntensity>,
    #[serde(default)]
    pub critical: bool,
    #[serde(default)]
    pub handoff: bool,
    #[serde(default)]
    pub listen: Vec<RawListen>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    pub working_dir: Option<Spanned<String>>,
    pub register: Option<Spanned<super::registry::RawRegister>>,
}

/// `ready = { .. }`: exactly one of the keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReady {
    pub notify: Option<bool>,
    pub http: Option<Spanned<String>>,
    pub exec: Option<Spanned<Vec<String>>>,
}

/// `backoff = { initial, max }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackoff {
    pub initial: Option<Spanned<String>>,
    pub max: Option<Spanned<String>>,
}

/// `intensity = { restarts, within }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntensity {
    pub restarts: Option<Spanned<u32>>,
    pub within: Option<Spanned<String>>,
}

/// One `listen` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListen {
    pub name: Spanned<String>,
    pub addr: Spanned<String>,
}
