//! Uses every entry of the repository's `clippy.toml` exactly once.
//!
//! `ci/clippy-fixture.sh` runs clippy here and asserts that the number of
//! `clippy::disallowed_{methods,types,macros}` diagnostics equals the number
//! of entries in `clippy.toml`: an entry whose path clippy cannot resolve
//! (typo, moved item, wrong crate version) does not fire and fails CI.
//!
//! Rules for this file: one use per entry, always written with the entry's
//! full path and no `use` items (a `use` of a banned type is itself a
//! diagnostic), in the same order and sections as `clippy.toml`. Nothing here
//! is ever run.

#![allow(deprecated, dead_code, unused_must_use, clippy::all)]
#![warn(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::disallowed_macros
)]

// ---------------------------------------------------------------- methods

pub async fn time(i: std::time::Instant, s: std::time::SystemTime, ti: tokio::time::Instant) {
    std::time::Instant::now();
    i.elapsed();
    std::time::SystemTime::now();
    s.elapsed();
    tokio::time::Instant::now();
    ti.elapsed();
    tokio::time::sleep(std::time::Duration::ZERO);
    tokio::time::sleep_until(ti);
    tokio::time::timeout(std::time::Duration::ZERO, async {});
    tokio::time::timeout_at(ti, async {});
    tokio::time::interval(std::time::Duration::from_secs(1));
    tokio::time::interval_at(ti, std::time::Duration::from_secs(1));
    std::thread::sleep(std::time::Duration::ZERO);
    unsafe { libc::time(std::ptr::null_mut()) };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, std::ptr::null_mut()) };
    unsafe { libc::gettimeofday(std::ptr::null_mut(), std::ptr::null_mut()) };
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC);
}

pub fn spawning() {
    tokio::spawn(async {});
    tokio::task::spawn_local(async {});
    tokio::task::spawn_blocking(|| {});
    tokio::task::block_in_place(|| {});
    std::thread::spawn(|| {});
    std::thread::scope(|_| {});
}

pub fn randomness(buf: &mut [u8]) {
    rand::thread_rng();
    rand::rng();
    rand::random::<u8>();
    rand::random_range(0..1u8);
    rand::random_bool(0.5);
    rand::random_ratio(1, 2);
    rand::random_iter::<u8>();
    rand::fill(buf);
    unsafe { libc::rand() };
    <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
}

pub fn environment() {
    std::env::var("X");
    std::env::var_os("X");
    std::env::vars();
    std::env::vars_os();
    // SAFETY: never run; exists only to be linted.
    unsafe { std::env::set_var("X", "1") };
    // SAFETY: never run; exists only to be linted.
    unsafe { std::env::remove_var("X") };
    std::env::current_dir();
    std::env::set_current_dir("/");
}

pub fn process_exit() -> ! {
    std::process::exit(0)
}

pub fn process_abort() -> ! {
    std::process::abort()
}

pub fn process_id() -> u32 {
    unsafe { libc::getpid() };
    nix::unistd::getpid();
    std::env::args();
    std::env::args_os();
    std::process::id()
}

pub async fn signals() {
    tokio::signal::ctrl_c();
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
}

pub fn network() {
    tokio::net::lookup_host("localhost:0");
    tokio::net::unix::pipe::pipe();
}

pub fn std_fs() {
    std::fs::canonicalize("/");
    std::fs::copy("/a", "/b");
    std::fs::create_dir("/a");
    std::fs::create_dir_all("/a");
    std::fs::exists("/a");
    std::fs::hard_link("/a", "/b");
    std::fs::metadata("/a");
    std::fs::read("/a");
    std::fs::read_dir("/a");
    std::fs::read_link("/a");
    std::fs::read_to_string("/a");
    std::fs::remove_dir("/a");
    std::fs::remove_dir_all("/a");
    std::fs::remove_file("/a");
    std::fs::rename("/a", "/b");
    std::fs::set_permissions("/a", std::fs::Permissions::from(std::os::unix::fs::PermissionsExt::from_mode(0o644)));
    std::fs::symlink_metadata("/a");
    std::fs::write("/a", b"");
    std::os::unix::fs::symlink("/a", "/b");
}

pub fn tokio_fs(p: std::fs::Permissions) {
    tokio::fs::canonicalize("/");
    tokio::fs::copy("/a", "/b");
    tokio::fs::create_dir("/a");
    tokio::fs::create_dir_all("/a");
    tokio::fs::hard_link("/a", "/b");
    tokio::fs::metadata("/a");
    tokio::fs::read("/a");
    tokio::fs::read_dir("/a");
    tokio::fs::read_link("/a");
    tokio::fs::read_to_string("/a");
    tokio::fs::remove_dir("/a");
    tokio::fs::remove_dir_all("/a");
    tokio::fs::remove_file("/a");
    tokio::fs::rename("/a", "/b");
    tokio::fs::set_permissions("/a", p);
    tokio::fs::symlink("/a", "/b");
    tokio::fs::symlink_metadata("/a");
    tokio::fs::try_exists("/a");
    tokio::fs::write("/a", b"");
}

// ------------------------------------------------------------------ types

pub fn iteration_order(
    _: std::collections::HashMap<u8, u8>,
    _: std::collections::HashSet<u8>,
    _: std::hash::RandomState,
) {
}

pub fn files(
    _: std::fs::File,
    _: std::fs::OpenOptions,
    _: std::fs::DirBuilder,
    _: tokio::fs::File,
    _: tokio::fs::OpenOptions,
    _: tokio::fs::DirBuilder,
) {
}

pub fn processes(
    _: std::process::Command,
    _: tokio::process::Command,
    _: tokio::process::Child,
    _: tokio::process::ChildStdin,
    _: tokio::process::ChildStdout,
    _: tokio::process::ChildStderr,
) {
}

pub fn sockets(
    _: std::net::TcpListener,
    _: std::net::TcpStream,
    _: std::net::UdpSocket,
    _: std::os::unix::net::UnixListener,
    _: std::os::unix::net::UnixStream,
    _: std::os::unix::net::UnixDatagram,
    _: tokio::net::TcpListener,
    _: tokio::net::TcpSocket,
    _: tokio::net::TcpStream,
    _: tokio::net::UdpSocket,
    _: tokio::net::UnixDatagram,
    _: tokio::net::UnixListener,
    _: tokio::net::UnixSocket,
    _: tokio::net::UnixStream,
    _: tokio::net::unix::pipe::OpenOptions,
    _: tokio::net::unix::pipe::Sender,
    _: tokio::net::unix::pipe::Receiver,
) {
}

pub fn signal_types(_: tokio::signal::unix::Signal) {}

pub fn runtime(
    _: tokio::runtime::Runtime,
    _: tokio::runtime::Builder,
    _: tokio::runtime::Handle,
    _: tokio::task::JoinSet<()>,
    _: tokio::task::LocalSet,
    _: std::thread::Builder,
) {
}

// ----------------------------------------------------------------- macros

pub async fn macros() {
    tokio::select! {
        () = async {} => {}
    }
    futures::select! {
        () = futures::future::ready(()) => {}
    }
}
