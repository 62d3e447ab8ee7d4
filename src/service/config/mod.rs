//! `warden.toml`: the services warden supervises.
//!
//! [`Config::parse`] takes the file's text (the caller reads it, through
//! `Env` or at the edge) and either returns a config in which every name,
//! dependency, duration, signal and address is valid, or the first error
//! as `FILE:LINE:COL: message`. Relative paths are resolved against the
//! config file's directory.

mod raw;
mod registry;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use raw::{RawConfig, RawReady, RawService};
pub use registry::{Register, RegistryConfig};
use toml::Spanned;
pub use values::HttpTarget;

use super::graph::Graph;
use crate::env::Signal;
use crate::supervisor::{BackoffConfig, Intensity};

/// A config error with its position in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{col}: {message}", file.display())]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// When a service is started again after its process ended (OTP's restart
/// types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// After any exit (OTP permanent).
    Always,
    /// After an exit with a non-zero code or by a signal (OTP transient).
    OnFailure,
    /// Never (OTP temporary).
    Never,
}

impl RestartPolicy {
    /// The name used in the file.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How warden learns that a started service is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready once started.
    None,
    /// Ready when it sends `READY=1` on `NOTIFY_SOCKET` (sd_notify).
    Notify,
    /// Ready when a GET answers 2xx or 3xx.
    Http(HttpTarget),
    /// Ready when this command exits 0.
    Exec(Vec<String>),
}

/// A socket warden binds and passes to the service (socket activation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Its name in `LISTEN_FDNAMES`.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// `[warden]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WardenConfig {
    /// The control socket's path.
    pub control: PathBuf,
    /// Where the admin HTTP server listens, if anywhere.
    pub admin: Option<SocketAddr>,
    /// The deadline of the whole stop.
    pub stop_timeout: Duration,
}

/// One `[[service]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Its unique name.
    pub name: String,
    /// argv: the program (found on `PATH` when it has no '/') and its
    /// arguments; no shell.
    pub command: Vec<String>,
    /// When it is restarted.
    pub restart: RestartPolicy,
    /// Services it starts after (once they are ready) and stops before.
    pub after: Vec<String>,
    /// How readiness is learnt.
    pub ready: Readiness,
    /// The signal that asks it to stop.
    pub stop_signal: Signal,
    /// How long it gets to stop before SIGKILL.
    pub stop_timeout: Duration,
    /// Restart delays.
    pub backoff: BackoffConfig,
    /// More restarts than this within the window: the service is failed.
    pub intensity: Intensity,
    /// A failed critical service stops warden (exit status 1).
    pub critical: bool,
    /// It supports `warden upgrade` (a handoff).
    pub handoff: bool,
    /// Sockets passed to it.
    pub listen: Vec<Listen>,
    /// Variables added to its environment.
    pub env: BTreeMap<String, String>,
    /// Its working directory.
    pub working_dir: PathBuf,
    /// What it registers in `[registry]` while it is ready.
    pub register: Option<Register>,
}

/// A validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// `[warden]`.
    pub warden: WardenConfig,
    /// The services, in file order.
    pub services: Vec<ServiceConfig>,
    /// Their dependencies, by index into `services`.
    pub graph: Graph,
    /// `[registry]`, where ready services are registered.
    pub registry: Option<RegistryConfig>,
}

/// Defaults where the file is silent.
const DEFAULT_CONTROL: &str = "warden.sock";
const DEFAULT_STOP_TIMEOUT_ALL: Duration = Duration::from_secs(30);
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_BACKOFF: BackoffConfig = BackoffConfig {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(30),
    multiplier_percent: 200,
    jitter_permille: 250,
};

/// Turns spans into positions and collects the first error.
struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let at = span.start.min(self.text.len());
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError { file: self.file.to_owned(), line, col, message: message.into() }
    }

    fn at<S, T>(&self, v: &Spanned<S>, r: Result<T, String>) -> Result<T, ConfigError> {
        r.map_err(|m| self.err(v.span(), m))
    }

    fn duration(&self, v: Option<&Spanned<String>>, default: Duration) -> Result<Duration, ConfigError> {
        match v {
            Some(v) => self.at(v, values::duration(v.get_ref()).map(|d| d.max(Duration::from_millis(1)))),
            None => Ok(default),
        }
    }
}

impl Config {
    /// Parses and validates `text`, the content of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let cx = Ctx { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            cx.err(span, e.message().trim().to_owned())
        })?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let w = raw.warden.unwrap_or_default();
        let control = dir.join(w.control.as_ref().map_or(DEFAULT_CONTROL, |c| c.get_ref().as_str()));
        let admin = match &w.admin {
            Some(a) => Some(cx.at(a, values::socket_addr(a.get_ref()))?),
            None => None,
        };
        let stop_timeout = cx.duration(w.stop_timeout.as_ref(), DEFAULT_STOP_TIMEOUT_ALL)?;
        let warden = WardenConfig { control, admin, stop_timeout };

        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, s) in raw.service.iter().enumerate() {
            cx.at(&s.name, values::name(s.name.get_ref(), "service name"))?;
            if index.insert(s.name.get_ref(), i).is_some() {
                return Err(cx.err(s.name.span(), format!("duplicate service name {:?}", s.name.get_ref())));
            }
        }
        let mut deps = Vec::with_capacity(raw.service.len());
        for s in &raw.service {
            let mut ds = Vec::new();
            for a in &s.after {
                match index.get(a.get_ref().as_str()) {
                    Some(&d) if !ds.contains(&d) => ds.push(d),
                    Some(_) => {}
                    None => {
                        return Err(cx.err(
                            a.span(),
                            format!("service {:?} starts after unknown service {:?}", s.name.get_ref(), a.get_ref()),
                        ));
                    }
                }
            }
            deps.push(ds);
        }
        let graph = Graph::new(deps).map_err(|cycle| {
            let names: Vec<&str> = cycle.0.iter().map(|&i| raw.service[i].name.get_ref().as_str()).collect();
            let (first, second) = (cycle.0[0], cycle.0[1]);
            let span = raw.service[first]
                .after
                .iter()
                .find(|a| a.get_ref() == raw.service[second].name.get_ref())
                .map_or(raw.service[first].name.span(), Spanned::span);
            cx.err(span, format!("dependency cycle: {}", names.join(" -> ")))
        })?;
        let reg = raw.registry.as_ref().map(|r| registry::registry(&cx, r)).transpose()?;
        let services =
            raw.service.iter().map(|s| service(&cx, &dir, s, reg.as_ref())).collect::<Result<Vec<_>, _>>()?;
        let registers: Vec<_> = raw
            .service
            .iter()
            .zip(&services)
            .filter_map(|(r, s)| r.register.as_ref().zip(s.register.as_ref()))
            .collect();
        registry::unique_keys(&cx, &registers)?;
        Ok(Config { file: file.to_owned(), warden, services, graph, registry: reg })
    }
}

fn service(
    cx: &Ctx<'_>,
    dir: &Path,
    s: &RawService,
    reg: Option<&RegistryConfig>,
) -> Result<ServiceConfig, ConfigError> {
    let name = s.name.get_ref().clone();
    let command: Vec<String> = s.command.get_ref().iter().map(|c| c.get_ref().clone()).collect();
    if command.is_empty() {
        return Err(cx.err(s.command.span(), format!("service {name:?}: command is empty")));
    }
    if let Some(c) = s.command.get_ref().iter().find(|c| c.get_ref().is_empty()) {
        return Err(cx.err(c.span(), format!("service {name:?}: the program name is empty")));
    }
    let restart = match &s.restart {
        None => RestartPolicy::Always,
        Some(r) => cx.at(
            r,
            match r.get_ref().as_str() {
                "always" => Ok(RestartPolicy::Always),
                "on-failure" => Ok(RestartPolicy::OnFailure),
                "never" => Ok(RestartPolicy::Never),
                other => Err(format!("bad restart {other:?}: expected \"always\", \"on-failure\" or \"never\"")),
            },
        )?,
    };
    let ready = match &s.ready {
        None => Readiness::None,
        Some(r) => readiness(cx, r)?,
    };
    let stop_signal = match &s.stop_signal {
        Some(v) => cx.at(v, values::signal(v.get_ref()))?,
        None => Signal::Term,
    };
    let stop_timeout = cx.duration(s.stop_timeout.as_ref(), DEFAULT_STOP_TIMEOUT)?;
    let mut backoff = DEFAULT_BACKOFF;
    if let Some(b) = &s.backoff {
        backoff.initial = cx.duration(b.initial.as_ref(), backoff.initial)?;
        backoff.max = cx.duration(b.max.as_ref(), backoff.max.max(backoff.initial))?;
        if backoff.max < backoff.initial
            && let Some(m) = &b.max
        {
            return Err(cx.err(m.span(), format!("service {name:?}: backoff max is below initial")));
        }
    }
    let mut intensity = Intensity::DEFAULT;
    if let Some(i) = &s.intensity {
        if let Some(r) = &i.restarts {
            intensity.max_restarts = *r.get_ref();
        }
        intensity.period = cx.duration(i.within.as_ref(), intensity.period)?;
    }
    let mut listen = Vec::new();
    for l in &s.listen {
        cx.at(&l.name, values::name(l.name.get_ref(), "listen name"))?;
        let addr = cx.at(&l.addr, values::socket_addr(l.addr.get_ref()))?;
        listen.push(Listen { name: l.name.get_ref().clone(), addr });
    }
    let mut env = BTreeMap::new();
    for (k, v) in &s.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(cx.err(v.span(), format!("service {name:?}: bad environment variable name {k:?}")));
        }
        env.insert(k.clone(), v.get_ref().clone());
    }
    let working_dir = dir.join(s.working_dir.as_ref().map_or(".", |w| w.get_ref().as_str()));
    let register = s.register.as_ref().map(|r| registry::register(cx, &name, r, &listen, reg)).transpose()?;
    Ok(ServiceConfig {
        name,
        command,
        restart,
        after: s.after.iter().map(|a| a.get_ref().clone()).collect(),
        ready,
        stop_signal,
        stop_timeout,
        backoff,
        intensity,
        critical: s.critical,
        handoff: s.handoff,
        listen,
        env,
        working_dir,
        register,
    })
}

fn readiness(cx: &Ctx<'_>, r: &Spanned<RawReady>) -> Result<Readiness, ConfigError> {
    let RawReady { notify, http, exec } = r.get_ref();
    let set = usize::from(notify.is_some()) + usize::from(http.is_some()) + usize::from(exec.is_some());
    if set != 1 {
        return Err(cx.err(r.span(), "ready takes exactly one of notify = true, http = \"URL\", exec = [..]"));
    }
    if let Some(n) = notify {
        return Ok(if *n { Readiness::Notify } else { Readiness::None });
    }
    if let Some(h) = http {
        return cx.at(h, values::http_url(h.get_ref())).map(Readiness::Http);
    }
    match exec {
        Some(e) if e.get_ref().is_empty() || e.get_ref()[0].is_empty() => {
            Err(cx.err(e.span(), "ready.exec: the command is empty"))
        }
        Some(e) => Ok(Readiness::Exec(e.get_ref().clone())),
        None => Ok(Readiness::None),
    }
}

#[cfg(test)]
mod tests;
