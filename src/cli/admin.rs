//! The admin HTTP server (`[warden] admin`): `/livez`, `/readyz`,
//! `/status`, `/metrics`, on hyper's HTTP/1 server on this thread.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use warden::service::Handle;

use super::protocol::StatusLine;

/// Binds `addr` (before any service starts, so a bad address fails early).
pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen for admin HTTP on {addr}"))
}

/// Serves until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, handle: Handle) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                continue;
            }
        };
        let handle = handle.clone();
        drop(tokio::task::spawn_local(async move {
            let service = hyper::service::service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(respond(&req, &handle)) }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(60), conn).await {
                tracing::debug!(error = %e, "admin connection timed out");
            }
        }));
    }
}

fn text(code: StatusCode, body: String, content_type: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn respond(req: &Request<Incoming>, handle: &Handle) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into(), PLAIN);
    }
    let status = handle.status();
    match req.uri().path() {
        "/livez" if handle.is_running() => text(StatusCode::OK, "ok\n".into(), PLAIN),
        "/livez" => text(StatusCode::SERVICE_UNAVAILABLE, "supervision loop has ended\n".into(), PLAIN),
        "/readyz" => {
            let mut reasons: Vec<String> = status.iter().filter_map(|s| s.not_ready_reason()).collect();
            if handle.is_stopping() {
                reasons.insert(0, "warden is stopping".into());
            }
            if reasons.is_empty() {
                text(StatusCode::OK, "ready\n".into(), PLAIN)
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready:\n{}\n", reasons.join("\n")), PLAIN)
            }
        }
        "/status" => {
            let lines: Vec<StatusLine> = status.iter().map(StatusLine::from).collect();
            match serde_json::to_string_pretty(&lines) {
                Ok(body) => text(StatusCode::OK, body + "\n", "application/json"),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"), PLAIN),
            }
        }
        "/metrics" => match super::metrics::render(&status) {
            Ok(body) => text(StatusCode::OK, body, "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"), PLAIN),
        },
        _ => text(StatusCode::NOT_FOUND, "try /livez /readyz /status /metrics\n".into(), PLAIN),
    }
}
