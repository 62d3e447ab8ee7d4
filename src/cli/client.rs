//! The client commands: `status`, `start`, `stop`, `restart`, `upgrade`
//! talk to a running warden through the control socket named in the
//! config file.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::protocol::{Reply, Request, StatusLine};

/// How long a client waits for warden's answer; an upgrade waits for
/// the handoff's outcome, which S bounds by its own deadlines.
fn answer_timeout(request: &Request) -> Duration {
    match request {
        Request::Upgrade { .. } => Duration::from_secs(660),
        _ => Duration::from_secs(30),
    }
}

/// Sends `request` to the warden of `config` and returns its reply.
async fn ask(config: &Path, request: &Request) -> anyhow::Result<Reply> {
    let text = std::fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let cfg = warden::service::Config::parse(config, &text)?;
    let path = &cfg.warden.control;
    let stream = UnixStream::connect(path)
        .await
        .with_context(|| format!("warden is not running (cannot connect to {})", path.display()))?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    // A refusing warden may answer and close before reading everything:
    // its answer is what matters.
    if let Err(e) = write.write_all(line.as_bytes()).await
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    let mut answer = String::new();
    let timeout = answer_timeout(request);
    tokio::time::timeout(timeout, BufReader::new(read).read_line(&mut answer))
        .await
        .with_context(|| format!("no answer from warden within {} s", timeout.as_secs()))??;
    serde_json::from_str(answer.trim()).with_context(|| format!("bad answer from warden: {answer:?}"))
}

/// `warden status [--json]`.
pub(crate) async fn status(config: &Path, json: bool) -> anyhow::Result<()> {
    let reply = ask(config, &Request::Status).await?;
    if let Some(e) = reply.error {
        bail!("{e}");
    }
    let lines = reply.status.unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        print!("{}", table(&lines));
    }
    Ok(())
}

fn table(lines: &[StatusLine]) -> String {
    let mut rows = vec![["NAME", "STATE", "PID", "RESTARTS", "READY", "LAST EXIT"].map(String::from).to_vec()];
    for s in lines {
        rows.push(vec![
            s.name.clone(),
            s.state.clone(),
            s.pid.map_or("-".to_owned(), |p| p.to_string()),
            s.restarts.to_string(),
            if s.ready { "yes" } else { "no" }.to_owned(),
            s.last_exit.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `warden start|stop|restart|upgrade SERVICE`.
pub(crate) async fn command(config: &Path, request: Request) -> anyhow::Result<()> {
    let reply = ask(config, &request).await?;
    if let Some(e) = reply.error {
        bail!("{e}");
    }
    if let Some(m) = reply.message {
        println!("{m}");
    }
    Ok(())
}
