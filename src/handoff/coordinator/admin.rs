//! The operator's side: one request per connection to S's admin socket,
//! one line each way (fields separated by tabs).
//!
//! ```text
//! request: handoff <TAB> program [<TAB> arg]... <LF>
//! reply:   committed <TAB> id <TAB> pid <LF>
//!        | aborted <TAB> id <TAB> reason <LF>
//!        | error <TAB> message <LF>
//! ```

use std::time::Duration;

use super::types::{GenSpec, HandoffError, Outcome};
use crate::env::{Addr, Env};
use crate::handoff::id::HandoffId;

/// Longest line either side accepts.
pub(super) const LINE_MAX: usize = 16 * 1024;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The socket failed or timed out.
    #[error("admin socket: {0}")]
    Io(#[from] std::io::Error),
    /// S refused the request (another handoff in progress, no incumbent, ...).
    #[error("{0}")]
    Refused(String),
    /// S answered something this client does not understand.
    #[error("unreadable reply: {0:?}")]
    Protocol(String),
}

/// The request line for `spec`; `None` if a field holds a tab or newline.
pub fn request_line(spec: &GenSpec) -> Option<String> {
    let fields = std::iter::once(&spec.program).chain(&spec.args);
    if fields.clone().any(|f| f.contains(['\t', '\n'])) || spec.program.is_empty() {
        return None;
    }
    Some(format!("handoff\t{}\n", fields.cloned().collect::<Vec<_>>().join("\t")))
}

/// Parses a request line (without its newline).
pub(super) fn parse_request(line: &str) -> Option<GenSpec> {
    let mut f = line.split('\t');
    if f.next()? != "handoff" {
        return None;
    }
    let program = f.next().filter(|p| !p.is_empty())?.to_owned();
    Some(GenSpec { program, args: f.map(str::to_owned).collect() })
}

/// The reply line for an outcome.
pub(super) fn reply_line(r: &Result<Outcome, HandoffError>) -> String {
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    match r {
        Ok(Outcome::Committed { id, pid }) => format!("committed\t{id}\t{pid}\n"),
        Ok(Outcome::Aborted { id, reason }) => format!("aborted\t{id}\t{}\n", clean(reason)),
        Err(e) => format!("error\t{}\n", clean(&e.to_string())),
    }
}

/// Parses a reply line (without its newline).
pub fn parse_reply(line: &str) -> Result<Outcome, AdminError> {
    let bad = || AdminError::Protocol(line.to_owned());
    let mut f = line.splitn(3, '\t');
    let kind = f.next().ok_or_else(bad)?;
    let id = |s: Option<&str>| s.and_then(|s| u64::from_str_radix(s, 16).ok()).map(HandoffId);
    match kind {
        "committed" => {
            let id = id(f.next()).ok_or_else(bad)?;
            let pid = f.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
            Ok(Outcome::Committed { id, pid })
        }
        "aborted" => {
            let id = id(f.next()).ok_or_else(bad)?;
            Ok(Outcome::Aborted { id, reason: f.next().unwrap_or_default().to_owned() })
        }
        "error" => Err(AdminError::Refused(f.collect::<Vec<_>>().join("\t"))),
        _ => Err(bad()),
    }
}

/// Reads one line (at most [`LINE_MAX`] bytes) from `s`.
pub(super) async fn read_line<E: Env>(env: &E, s: &E::Stream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = env.read(s, &mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a full line"));
        }
        line.extend_from_slice(&buf[..n]);
        if let Some(end) = line.iter().position(|b| *b == b'\n') {
            line.truncate(end);
            return String::from_utf8(line)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "line is not UTF-8"));
        }
        if line.len() > LINE_MAX {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "line too long"));
        }
    }
}

/// Asks the coordinator listening on `admin` for a handoff to `spec` and
/// waits (at most `timeout`) for its outcome.
pub async fn request_handoff<E: Env>(
    env: &E,
    admin: &Addr,
    spec: &GenSpec,
    timeout: Duration,
) -> Result<Outcome, AdminError> {
    let line = request_line(spec).ok_or_else(|| AdminError::Protocol("a field holds a tab or newline".into()))?;
    let work = async {
        let s = env.connect(admin).await?;
        env.write_all(&s, line.as_bytes()).await?;
        let reply = read_line(env, &s).await?;
        parse_reply(&reply)
    };
    match env.timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(AdminError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply in time"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let spec = GenSpec { program: "/usr/bin/svc".into(), args: vec!["--v".into(), "2 b".into()] };
        let line = request_line(&spec).unwrap();
        assert_eq!(parse_request(line.trim_end()), Some(spec));
        let c = Outcome::Committed { id: HandoffId(0xab), pid: 7 };
        assert_eq!(parse_reply(reply_line(&Ok(c.clone())).trim_end()).unwrap(), c);
        let busy = Err(HandoffError::InProgress { id: HandoffId(0xab), phase: "sealing" });
        let Err(AdminError::Refused(msg)) = parse_reply(reply_line(&busy).trim_end()) else { panic!() };
        assert!(msg.contains("00000000000000ab") && msg.contains("sealing") && msg.contains("in progress"), "{msg}");
        assert!(request_line(&GenSpec { program: "a\tb".into(), args: vec![] }).is_none());
    }
}
