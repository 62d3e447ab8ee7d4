//! A counter store and a client that increments it with a GET then a SET:
//! the classic lost update. Two clients on one host, each reading the
//! value and writing it back plus one, lose an increment whenever the
//! second GET lands between the first GET and its SET.
//!
//! Both run on any `warden::env::Env`: the real OS, or warden-sim in the
//! tests (`tests/race.rs`), which finds the race and replays it by seed.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use warden::env::{Addr, Env};

pub mod model;

/// Where the store listens.
pub fn store_addr() -> Addr {
    Addr::Unix(PathBuf::from("/run/counter.sock"))
}

/// Reads one `\n`-terminated line (a read may return any part of it).
async fn read_line<E: Env>(env: &E, s: &E::Stream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if env.read(s, &mut byte).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed mid-line"));
        }
        if byte[0] == b'\n' {
            return String::from_utf8(line).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"));
        }
        line.push(byte[0]);
    }
}

/// The store: `GET` answers the value, `SET n` sets it; one request per
/// connection. Returns only on an error.
pub async fn store<E: Env>(env: E, value: std::rc::Rc<std::cell::Cell<u64>>) -> io::Result<()> {
    let listener = env.listen(&store_addr())?;
    loop {
        let conn = env.accept(&listener).await?;
        let (env2, value) = (env.clone(), value.clone());
        drop(env.spawn("store.conn", async move {
            let Ok(req) = read_line(&env2, &conn).await else { return };
            let reply = match req.split_once(' ') {
                None if req == "GET" => format!("{}\n", value.get()),
                Some(("SET", n)) => match n.parse() {
                    Ok(n) => {
                        value.set(n);
                        "OK\n".to_owned()
                    }
                    Err(_) => "ERR bad number\n".to_owned(),
                },
                _ => "ERR unknown request\n".to_owned(),
            };
            let _ = env2.write_all(&conn, reply.as_bytes()).await;
        }));
    }
}

async fn call<E: Env>(env: &E, request: &str) -> io::Result<String> {
    let s = env.connect(&store_addr()).await?;
    env.write_all(&s, format!("{request}\n").as_bytes()).await?;
    read_line(env, &s).await
}

/// A client: waits `think`, then GET, then SET the value plus one.
pub async fn increment<E: Env>(env: E, think: Duration) -> io::Result<()> {
    env.sleep(think).await;
    let v: u64 = call(&env, "GET").await?.parse().map_err(|_| io::Error::other("bad value"))?;
    call(&env, &format!("SET {}", v + 1)).await?;
    Ok(())
}
