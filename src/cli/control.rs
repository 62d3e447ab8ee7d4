//! The control socket of `warden run`: a Unix stream socket, mode 0600,
//! that serves [`Request`]s from peers with warden's own uid or root
//! (SO_PEERCRED); any other peer gets an error and a log line.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use warden::service::{Command, Handle};

use super::protocol::{Reply, Request, StatusLine};

/// The longest request line read.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound control socket; the path is removed on drop.
pub(crate) struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` with mode 0600; a stale socket (nobody answers) is
/// replaced, a live one means another warden runs.
pub(crate) async fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            bail!("control socket {} is in use: another warden runs with this config", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("cannot remove stale {}", path.display()))?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // No window in which the socket exists with a wider mode: the process
    // is still single-threaded here, so the umask change is ours alone.
    // SAFETY: umask only swaps the process's file mode mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound.with_context(|| format!("cannot bind control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(ControlSocket { listener, path: path.to_owned() })
}

/// Serves connections until the task is dropped.
pub(crate) async fn serve(socket: ControlSocket, handle: Handle) {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    loop {
        let stream = match socket.listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                continue;
            }
        };
        let handle = handle.clone();
        drop(tokio::task::spawn_local(async move {
            if let Err(e) = connection(stream, handle, me).await {
                tracing::debug!(error = %e, "control connection ended");
            }
        }));
    }
}

async fn connection(stream: UnixStream, handle: Handle, me: u32) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // A request is one short line; read it (bounded in size and time)
    // before answering, so even a refused client reads its answer.
    let mut reader = BufReader::new(read.take(MAX_REQUEST_BYTES));
    let got = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await;
    if cred.uid() != me && cred.uid() != 0 {
        tracing::warn!(uid = cred.uid(), pid = cred.pid(), "control socket: refused a peer with another uid");
        let reply = Reply::error(format!("permission denied: uid {} is neither warden's ({me}) nor root", cred.uid()));
        return send(&mut write, &reply).await;
    }
    got.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request in time"))??;
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Err(e) => Reply::error(format!("bad request: {e}")),
        Ok(Request::Status) => {
            Reply { status: Some(handle.status().iter().map(StatusLine::from).collect()), ..Reply::ok() }
        }
        Ok(Request::Start { service }) => result(handle.command(&service, Command::Start).await),
        Ok(Request::Stop { service }) => result(handle.command(&service, Command::Stop).await),
        Ok(Request::Restart { service }) => result(handle.command(&service, Command::Restart).await),
        Ok(Request::Upgrade { service }) => match handle.upgrade(&service).await {
            Ok(u) => Reply {
                message: Some(format!("{service}: handoff {} committed; pid {} serves", u.handoff, u.pid)),
                ..Reply::ok()
            },
            Err(e) => Reply::error(e),
        },
    };
    send(&mut write, &reply).await
}

fn result(r: Result<(), warden::service::CommandError>) -> Reply {
    match r {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::error(e),
    }
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> io::Result<()> {
    let mut text = serde_json::to_string(reply).map_err(io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}
