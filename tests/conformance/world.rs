//! The world's behaviours, each written once against `Env`: processes,
//! signals, sockets, fd passing, disk.

use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use warden::env::{Addr, Env, ExitStatus, OpenOptions, ProcessSpec, Signal};

/// A generous deadline: real machines under load must not fail order checks.
const PATIENCE: Duration = Duration::from_secs(20);

async fn read_exact<E: Env>(env: &E, s: &E::Stream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let r = env.timeout(PATIENCE, env.read(s, &mut buf[got..])).await.expect("read in time").expect("read");
        assert!(r > 0, "stream closed after {got} of {n} bytes");
        got += r;
    }
    buf
}

async fn wait<E: Env>(env: &E, child: &E::Child) -> ExitStatus {
    env.timeout(PATIENCE, env.wait_child(child)).await.expect("child exits in time")
}

/// The path of a Unix socket in `dir`.
fn sock(dir: &Path, name: &str) -> Addr {
    Addr::Unix(dir.join(name))
}

pub async fn exit_codes_and_signal_statuses<E: Env>(env: E, _dir: std::path::PathBuf) {
    let c = env.spawn_process(ProcessSpec::new("exit-with").arg("7")).expect("spawn");
    assert_eq!(wait(&env, &c).await, ExitStatus::Code(7));
    let c = env.spawn_process(ProcessSpec::new("sleep-forever")).expect("spawn");
    env.sleep(Duration::from_millis(50)).await;
    env.signal_child(&c, Signal::Kill).expect("signal");
    assert_eq!(wait(&env, &c).await, ExitStatus::Signaled(Signal::Kill));
}

pub async fn sigterm_handled_and_unhandled<E: Env>(env: E, _dir: std::path::PathBuf) {
    let (a, b) = env.socketpair().expect("socketpair");
    let fd = env.stream_into_fd(b);
    let c = env.spawn_process(ProcessSpec::new("term-handler").fd(fd, 3)).expect("spawn");
    assert_eq!(read_exact(&env, &a, 1).await, b"r", "handler installed");
    env.signal_child(&c, Signal::Term).expect("signal");
    assert_eq!(wait(&env, &c).await, ExitStatus::Code(42), "a handled SIGTERM reaches the program");
    let c = env.spawn_process(ProcessSpec::new("sleep-forever")).expect("spawn");
    env.sleep(Duration::from_millis(50)).await;
    env.signal_child(&c, Signal::Term).expect("signal");
    assert_eq!(wait(&env, &c).await, ExitStatus::Signaled(Signal::Term), "an unhandled SIGTERM kills");
}

async fn drain<E: Env>(env: &E, s: &E::Stream) {
    let mut buf = [0u8; 256];
    while let Ok(Ok(n)) = env.timeout(Duration::from_millis(100), env.read(s, &mut buf)).await {
        assert!(n > 0, "ticker stream closed");
    }
}

pub async fn sigstop_pauses_and_sigcont_resumes<E: Env>(env: E, _dir: std::path::PathBuf) {
    let (a, b) = env.socketpair().expect("socketpair");
    let c = env.spawn_process(ProcessSpec::new("ticker").fd(env.stream_into_fd(b), 3)).expect("spawn");
    assert_eq!(read_exact(&env, &a, 1).await, b"t");
    env.signal_child(&c, Signal::Stop).expect("stop");
    env.sleep(Duration::from_millis(100)).await;
    drain(&env, &a).await;
    let mut buf = [0u8; 16];
    let quiet = env.timeout(Duration::from_millis(300), env.read(&a, &mut buf)).await;
    assert!(quiet.is_err(), "a stopped process wrote {quiet:?}");
    env.signal_child(&c, Signal::Cont).expect("cont");
    assert_eq!(read_exact(&env, &a, 1).await, b"t", "ticks resume after SIGCONT");
    env.signal_child(&c, Signal::Kill).expect("kill");
    assert_eq!(wait(&env, &c).await, ExitStatus::Signaled(Signal::Kill));
}

pub async fn unix_round_trip<E: Env>(env: E, dir: std::path::PathBuf) {
    env.create_dir_all(&dir).await.expect("dir");
    let addr = sock(&dir, "rt.sock");
    let l = env.listen(&addr).expect("listen");
    let env2 = env.clone();
    let server = env.spawn("echo", async move {
        let s = env2.accept(&l).await.expect("accept");
        let msg = read_exact(&env2, &s, 14).await;
        env2.write_all(&s, &msg).await.expect("echo");
    });
    let s = env.timeout(PATIENCE, env.connect(&addr)).await.expect("in time").expect("connect");
    env.write_all(&s, b"ping-pong-1234").await.expect("write");
    assert_eq!(read_exact(&env, &s, 14).await, b"ping-pong-1234");
    server.await.expect("server");
}

pub async fn listener_passed_to_child_while_parent_keeps_copy<E: Env>(env: E, dir: std::path::PathBuf) {
    env.create_dir_all(&dir).await.expect("dir");
    let addr = sock(&dir, "pass.sock");
    let l = env.listen(&addr).expect("listen");
    let parent_copy = env.listener_into_fd(l);
    let passed = env.dup_fd(&parent_copy).expect("dup");
    let c = env.spawn_process(ProcessSpec::new("accept-echo").fd(passed, 3)).expect("spawn");
    let s = env.timeout(PATIENCE, env.connect(&addr)).await.expect("in time").expect("connect");
    env.write_all(&s, b"abcd").await.expect("write");
    assert_eq!(read_exact(&env, &s, 4).await, b"abcd", "the child accepted on the passed listener");
    assert_eq!(wait(&env, &c).await, ExitStatus::Code(0));
    // The parent's copy keeps the listener open after the child exits.
    let again = env.timeout(PATIENCE, env.connect(&addr)).await.expect("in time");
    assert!(again.is_ok(), "refused although the parent still holds the listener: {:?}", again.err());
}

pub async fn connects_queue_while_nobody_accepts<E: Env>(env: E, dir: std::path::PathBuf) {
    env.create_dir_all(&dir).await.expect("dir");
    let addr = sock(&dir, "q.sock");
    let _l = env.listen(&addr).expect("listen");
    let mut clients = Vec::new();
    for i in 0..5 {
        let c = env.timeout(PATIENCE, env.connect(&addr)).await.expect("in time");
        clients.push(c.unwrap_or_else(|e| panic!("connect {i} while nobody accepts: {e}")));
    }
}

pub async fn refused_once_the_last_fd_closes<E: Env>(env: E, dir: std::path::PathBuf) {
    env.create_dir_all(&dir).await.expect("dir");
    let addr = sock(&dir, "last.sock");
    let l = env.listen(&addr).expect("listen");
    let fd = env.listener_into_fd(l);
    let dup = env.dup_fd(&fd).expect("dup");
    drop(fd);
    let ok = env.timeout(PATIENCE, env.connect(&addr)).await.expect("in time");
    assert!(ok.is_ok(), "the dup keeps it open: {:?}", ok.err());
    drop(ok);
    drop(dup);
    let refused = env.timeout(PATIENCE, env.connect(&addr)).await.expect("in time");
    assert_eq!(refused.err().map(|e| e.kind()), Some(ErrorKind::ConnectionRefused));
}

pub async fn broken_pipe_on_a_unix_stream<E: Env>(env: E, _dir: std::path::PathBuf) {
    let (a, b) = env.socketpair().expect("socketpair");
    drop(b);
    let r = env.write_all(&a, b"anyone?").await;
    assert_eq!(r.err().map(|e| e.kind()), Some(ErrorKind::BrokenPipe));
}

pub async fn no_such_process<E: Env>(env: E, _dir: std::path::PathBuf) {
    let c = env.spawn_process(ProcessSpec::new("exit-with").arg("0")).expect("spawn");
    assert_eq!(wait(&env, &c).await, ExitStatus::Code(0));
    let r = env.signal_child(&c, Signal::Term);
    assert_eq!(r.err().map(|e| e.kind()), Some(ErrorKind::NotFound), "signalling an exited child");
}

async fn write_file<E: Env>(env: &E, path: &Path, data: &[u8]) {
    let f = env.open(path, OpenOptions { create: true, truncate: true }).await.expect("open");
    env.append(&f, data).await.expect("append");
    env.sync_file(&f).await.expect("fsync");
}

pub async fn rename_replaces_a_file_atomically<E: Env>(env: E, dir: std::path::PathBuf) {
    env.create_dir_all(&dir).await.expect("dir");
    let (target, tmp) = (dir.join("state"), dir.join("state.tmp"));
    write_file(&env, &target, b"old").await;
    write_file(&env, &tmp, b"new").await;
    env.rename(&tmp, &target).await.expect("rename");
    env.sync_dir(&dir).await.expect("fsync dir");
    let f = env.open(&target, OpenOptions::default()).await.expect("open");
    assert_eq!(env.read_all(&f).await.expect("read"), b"new");
    let names = env.read_dir(&dir).await.expect("read_dir");
    assert!(names.contains(&"state".to_owned()) && !names.contains(&"state.tmp".to_owned()), "{names:?}");
}

pub async fn dir_lock_held_and_released_at_holder_death<E: Env>(env: E, dir: std::path::PathBuf) {
    let locked = dir.join("locked");
    env.create_dir_all(&locked).await.expect("dir");
    let (a, b) = env.socketpair().expect("socketpair");
    let arg = locked.to_string_lossy().into_owned();
    let c = env.spawn_process(ProcessSpec::new("lock-holder").arg(arg).fd(env.stream_into_fd(b), 3)).expect("spawn");
    assert_eq!(read_exact(&env, &a, 1).await, b"r", "holder has the lock");
    let held = env.lock_dir(&locked);
    assert_eq!(held.err().map(|e| e.kind()), Some(ErrorKind::WouldBlock));
    env.signal_child(&c, Signal::Kill).expect("kill");
    assert_eq!(wait(&env, &c).await, ExitStatus::Signaled(Signal::Kill));
    assert!(env.lock_dir(&locked).is_ok(), "the lock is released when its holder dies");
}

pub async fn unlisted_fds_are_not_inherited<E: Env>(env: E, dir: std::path::PathBuf) {
    env.create_dir_all(&dir).await.expect("dir");
    let _file = env.open(&dir.join("private"), OpenOptions { create: true, truncate: false }).await.expect("open");
    let _listener = env.listen(&sock(&dir, "private.sock")).expect("listen");
    let (_a, b) = env.socketpair().expect("socketpair");
    let c = env.spawn_process(ProcessSpec::new("count-fds").fd(env.stream_into_fd(b), 3)).expect("spawn");
    assert_eq!(wait(&env, &c).await, ExitStatus::Code(1), "only the listed fd reaches the child");
}

/// A stream as tokio's AsyncRead + AsyncWrite: a `BufReader` reads lines
/// the peer wrote in arbitrary pieces, `write_all` and `shutdown` work.
pub async fn tokio_io_adapter_reads_lines_and_writes<E: Env>(env: E, dir: std::path::PathBuf) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use warden::env::io::IoStream;

    env.create_dir_all(&dir).await.expect("dir");
    let addr = sock(&dir, "lines.sock");
    let l = env.listen(&addr).expect("listen");
    let env2 = env.clone();
    let server = env.spawn("lines", async move {
        let s = env2.accept(&l).await.expect("accept");
        let mut io = BufReader::new(IoStream::new(env2.clone(), s));
        let mut got = Vec::new();
        let mut line = String::new();
        while io.read_line(&mut line).await.expect("read_line") > 0 {
            got.push(std::mem::take(&mut line));
        }
        let mut io = io.into_inner();
        io.write_all(format!("{} lines\n", got.len()).as_bytes()).await.expect("write_all");
        io.shutdown().await.expect("shutdown");
        got
    });
    let s = env.timeout(PATIENCE, env.connect(&addr)).await.expect("in time").expect("connect");
    for part in ["one\ntw", "o\n", "three\nfo", "ur\n"] {
        env.write_all(&s, part.as_bytes()).await.expect("write");
    }
    env.shutdown_write(&s).expect("shutdown");
    let got = server.await.expect("server");
    assert_eq!(got, ["one\n", "two\n", "three\n", "four\n"]);
    assert_eq!(read_exact(&env, &s, 8).await, b"4 lines\n");
}
