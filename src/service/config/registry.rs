//! `[registry]` and each service's `register`: where warden keeps the
//! registrations of its ready services (etcd) and what each registers.
//!
//! ```toml
//! [registry]
//! etcd = ["http://127.0.0.1:2379"]   # client URLs of the cluster's members
//! prefix = "/services/"              # default "/warden/"
//! ttl = "10s"                        # lease TTL, whole seconds (default 10s)
//!
//! [[service]]
//! name = "web"
//! listen = [{ name = "http", addr = "127.0.0.1:8080" }]
//! register = { key = "web", value = "http://{listen.http}" }
//! ```
//!
//! In `value`, `{listen.NAME}` is the address of the service's listener
//! `NAME` and `{name}` the service's name.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Ctx, Listen, values};
use crate::service::ConfigError;

/// `[registry]` as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    pub etcd: Spanned<Vec<Spanned<String>>>,
    pub prefix: Option<Spanned<String>>,
    pub ttl: Option<Spanned<String>>,
}

/// `register = { key, value }` as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegister {
    pub key: Spanned<String>,
    pub value: Spanned<String>,
}

/// `[registry]`: an etcd cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Client URLs of its members (`http://HOST:PORT`).
    pub etcd: Vec<String>,
    /// Prepended to each service's key.
    pub prefix: String,
    /// The lease TTL of each registration.
    pub ttl: Duration,
}

/// A service's registration: the key (under the prefix) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// The key, under `[registry] prefix`.
    pub key: String,
    /// The value, with its `{listen.NAME}` and `{name}` filled in.
    pub value: String,
}

const DEFAULT_PREFIX: &str = "/warden/";
const DEFAULT_TTL: Duration = Duration::from_secs(10);

pub(super) fn registry(cx: &Ctx<'_>, r: &RawRegistry) -> Result<RegistryConfig, ConfigError> {
    if r.etcd.get_ref().is_empty() {
        return Err(cx.err(r.etcd.span(), "registry: etcd lists no endpoint (\"http://HOST:PORT\")"));
    }
    let mut etcd = Vec::new();
    for e in r.etcd.get_ref() {
        etcd.push(cx.at(e, endpoint(e.get_ref()))?);
    }
    let prefix = match &r.prefix {
        Some(p) if p.get_ref().is_empty() || p.get_ref().chars().any(char::is_whitespace) => {
            return Err(cx.err(p.span(), format!("registry: bad prefix {:?}: empty or with whitespace", p.get_ref())));
        }
        Some(p) => p.get_ref().clone(),
        None => DEFAULT_PREFIX.to_owned(),
    };
    let ttl = match &r.ttl {
        Some(t) => cx.at(t, values::duration(t.get_ref()).and_then(ttl))?,
        None => DEFAULT_TTL,
    };
    Ok(RegistryConfig { etcd, prefix, ttl })
}

/// A lease TTL: whole seconds, 2 s to a day (etcd's shortest is about 2 s).
fn ttl(d: Duration) -> Result<Duration, String> {
    if d.subsec_nanos() != 0 || d < Duration::from_secs(2) || d > Duration::from_secs(86_400) {
        return Err(format!("bad ttl {d:?}: whole seconds from 2s to 1day"));
    }
    Ok(d)
}

/// `http://HOST:PORT` (a trailing `/` allowed).
fn endpoint(text: &str) -> Result<String, String> {
    let bad = || format!("bad etcd endpoint {text:?}: expected \"http://HOST:PORT\"");
    let authority = text.trim().strip_prefix("http://").ok_or_else(bad)?.trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || authority.contains('/') || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(format!("http://{authority}"))
}

/// The service `name`'s `register`, its value filled in from `listen`.
pub(super) fn register(
    cx: &Ctx<'_>,
    name: &str,
    r: &Spanned<RawRegister>,
    listen: &[Listen],
    registry: Option<&RegistryConfig>,
) -> Result<Register, ConfigError> {
    if registry.is_none() {
        return Err(cx.err(r.span(), format!("service {name:?} registers, but the file has no [registry] section")));
    }
    let RawRegister { key, value } = r.get_ref();
    let k = key.get_ref();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./@:".contains(c)) {
        return Err(
            cx.err(key.span(), format!("service {name:?}: bad register key {k:?}: use letters, digits, '-_./@:'"))
        );
    }
    let value = cx.at(value, fill(value.get_ref(), name, listen))?;
    Ok(Register { key: k.clone(), value })
}

/// Fills `{listen.NAME}` and `{name}` into `template`.
fn fill(template: &str, name: &str, listen: &[Listen]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').ok_or_else(|| format!("register value {template:?}: '{{' without '}}'"))?;
        let field = &rest[open + 1..open + close];
        match field.strip_prefix("listen.") {
            Some(l) => match listen.iter().find(|x| x.name == l) {
                Some(x) => out.push_str(&x.addr.to_string()),
                None => {
                    return Err(format!("register value names {{listen.{l}}}, but the service has no listener {l:?}"));
                }
            },
            None if field == "name" => out.push_str(name),
            None => return Err(format!("register value: unknown {{{field}}}: use {{listen.NAME}} or {{name}}")),
        }
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("register value {template:?}: '}}' without '{{'"));
    }
    out.push_str(rest);
    Ok(out)
}

/// Refuses two services registering the same key.
pub(super) fn unique_keys(cx: &Ctx<'_>, registers: &[(&Spanned<RawRegister>, &Register)]) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    for (raw, r) in registers {
        if seen.insert(&r.key, ()).is_some() {
            return Err(cx.err(raw.get_ref().key.span(), format!("register key {:?} is registered twice", r.key)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::service::Config;

    fn err_at(text: &str) -> String {
        Config::parse(Path::new("/etc/w/warden.toml"), text).expect_err("config should be rejected").to_string()
    }

    const REG: &str = "[registry]\netcd = [\"http://127.0.0.1:2379\"]\n";
    const WEB: &str = "[[service]]\nname = \"web\"\ncommand = [\"sleep\", \"9\"]\n";

    #[test]
    fn a_registry_and_registrations_parse() {
        let text = format!(
            "[registry]\netcd = [\"http://127.0.0.1:2379\", \"http://10.0.0.2:2379/\"]\nprefix = \"/svc/\"\nttl = \"5s\"\n\
             {WEB}listen = [{{ name = \"http\", addr = \"127.0.0.1:8080\" }}]\n\
             register = {{ key = \"web\", value = \"http://{{listen.http}}/{{name}}\" }}\n"
        );
        let c = Config::parse(Path::new("/etc/w/warden.toml"), &text).expect("parses");
        let r = c.registry.expect("a registry");
        assert_eq!(r.etcd, ["http://127.0.0.1:2379", "http://10.0.0.2:2379"]);
        assert_eq!((r.prefix.as_str(), r.ttl), ("/svc/", Duration::from_secs(5)));
        let reg = c.services[0].register.clone().expect("web registers");
        assert_eq!((reg.key.as_str(), reg.value.as_str()), ("web", "http://127.0.0.1:8080/web"));
        let c = Config::parse(Path::new("w.toml"), &format!("{REG}{WEB}")).expect("parses");
        assert_eq!(c.registry.map(|r| (r.prefix, r.ttl)), Some(("/warden/".to_owned(), DEFAULT_TTL)));
        assert_eq!(c.services[0].register, None);
    }

    #[test]
    fn registry_errors_name_file_line_and_column() {
        let e = err_at(&format!("{WEB}register = {{ key = \"web\", value = \"x\" }}\n"));
        assert_eq!(e, "/etc/w/warden.toml:4:12: service \"web\" registers, but the file has no [registry] section");
        let e = err_at("[registry]\netcd = [\"127.0.0.1:2379\"]\n");
        assert!(e.starts_with("/etc/w/warden.toml:2:9: bad etcd endpoint"), "{e}");
        let e = err_at("[registry]\netcd = []\n");
        assert!(e.starts_with("/etc/w/warden.toml:2:8: registry: etcd lists no endpoint"), "{e}");
        let e = err_at(&format!("{REG}ttl = \"500ms\"\n"));
        assert!(e.starts_with("/etc/w/warden.toml:3:7: bad ttl"), "{e}");
        let e = err_at(&format!("{REG}endpoints = []\n"));
        assert!(e.starts_with("/etc/w/warden.toml:3:1: unknown field `endpoints`"), "{e}");
        let e = err_at(&format!("{REG}{WEB}register = {{ key = \"web\", value = \"{{listen.http}}\" }}\n"));
        assert!(e.starts_with("/etc/w/warden.toml:6:35: register value names {listen.http}"), "{e}");
        let e = err_at(&format!("{REG}{WEB}register = {{ key = \"a b\", value = \"x\" }}\n"));
        assert!(e.starts_with("/etc/w/warden.toml:6:20: service \"web\": bad register key"), "{e}");
        let e = err_at(&format!(
            "{REG}{WEB}register = {{ key = \"k\", value = \"x\" }}\n\
             [[service]]\nname = \"api\"\ncommand = [\"true\"]\nregister = {{ key = \"k\", value = \"y\" }}\n"
        ));
        assert!(e.starts_with("/etc/w/warden.toml:10:20: register key \"k\" is registered twice"), "{e}");
        let e = err_at(&format!("{REG}{WEB}register = {{ key = \"k\" }}\n"));
        assert!(e.starts_with("/etc/w/warden.toml:6:12: missing field `value`"), "{e}");
    }

    #[test]
    fn values_fill_and_endpoints_parse() {
        let listen = [Listen { name: "http".into(), addr: "127.0.0.1:8080".parse().unwrap() }];
        assert_eq!(fill("http://{listen.http}/x", "web", &listen).unwrap(), "http://127.0.0.1:8080/x");
        assert_eq!(fill("{name}", "web", &listen).unwrap(), "web");
        assert!(fill("{listen.grpc}", "web", &listen).unwrap_err().contains("no listener \"grpc\""));
        assert!(fill("{port}", "web", &listen).is_err());
        assert!(fill("a{b", "web", &listen).is_err());
        assert!(fill("a}b", "web", &listen).is_err());
        assert_eq!(endpoint("http://127.0.0.1:2379/").unwrap(), "http://127.0.0.1:2379");
        assert_eq!(endpoint("http://etcd-0:2379").unwrap(), "http://etcd-0:2379");
        assert!(endpoint("127.0.0.1:2379").is_err());
        assert!(endpoint("http://127.0.0.1").is_err());
        assert!(endpoint("http://127.0.0.1:2379/v3").is_err());
        assert!(ttl(Duration::from_millis(2500)).is_err());
        assert!(ttl(Duration::from_secs(1)).is_err());
        assert_eq!(ttl(Duration::from_secs(5)), Ok(Duration::from_secs(5)));
    }
}
