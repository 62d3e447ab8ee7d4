//! The simulated network between hosts: TCP streams are delayed by the
//! configured latency, held (never lost) across a partition, refused when
//! nothing listens, reset when the peer's host loses power; UDP datagrams
//! arrive after a latency in range and may be lost.

use std::net::SocketAddr;
use std::time::Duration;

use warden::env::{Addr, Env, NetEnv};
use warden_sim::SimEnv;
use warden_sim::testing::check_in_world;

const PORT: u16 = 7000;

/// Host 1 (10.0.0.2) runs an echo server on TCP port 7000.
async fn echo_server(env: SimEnv, _: Vec<String>) -> i32 {
    let Ok(l) = env.listen(&Addr::Tcp(SocketAddr::from(([0, 0, 0, 0], PORT)))) else { return 1 };
    loop {
        let Ok(s) = env.accept(&l).await else { return 2 };
        let env2 = env.clone();
        drop(env.spawn("echo", async move {
            let mut buf = [0u8; 64];
            while let Ok(n) = env2.read(&s, &mut buf).await {
                if n == 0 || env2.write_all(&s, &buf[..n]).await.is_err() {
                    break;
                }
            }
        }));
    }
}

/// Adds host 1 running the echo server; returns its index.
fn start_echo_host(world: &warden_sim::models::World) -> u32 {
    let h1 = world.add_host("server");
    world.register("echo", echo_server);
    world.start(h1, "echo", Vec::new()).expect("start");
    h1
}

fn server_addr() -> Addr {
    Addr::Tcp(SocketAddr::from(([10, 0, 0, 2], PORT)))
}

async fn round_trip(env: &SimEnv, s: &<SimEnv as NetEnv>::Stream, msg: &[u8]) -> Vec<u8> {
    env.write_all(s, msg).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < msg.len() {
        let n = env.read(s, &mut buf).await.expect("read");
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn tcp_between_hosts_takes_a_round_trip_of_latency() {
    check_in_world(
        "tcp_between_hosts_takes_a_round_trip_of_latency",
        Duration::from_secs(60),
        |world| {
            start_echo_host(world);
        },
        |env| async move {
            env.sleep(Duration::from_millis(1)).await;
            let s = env.connect(&server_addr()).await.expect("connect");
            let t0 = env.now();
            assert_eq!(round_trip(&env, &s, b"hello over tcp").await, b"hello over tcp");
            let rtt = env.now() - t0;
            assert!(rtt >= Duration::from_millis(2) && rtt <= Duration::from_millis(21), "round trip took {rtt:?}");
        },
    );
}

#[test]
fn a_partition_delays_bytes_and_connects_but_loses_nothing() {
    check_in_world(
        "a_partition_delays_bytes_and_connects_but_loses_nothing",
        Duration::from_secs(120),
        |world| {
            let h1 = start_echo_host(world);
            // Host 0 (this test) and host 1 cannot talk from 1 s to 4 s.
            world.configure_net(|n| n.partitions.push((0, h1, 1_000_000_000, 4_000_000_000)));
        },
        |env| async move {
            env.sleep(Duration::from_millis(1)).await;
            let s = env.connect(&server_addr()).await.expect("connect before the partition");
            env.sleep(Duration::from_millis(1500)).await;
            let t0 = env.now();
            assert_eq!(round_trip(&env, &s, b"held, not lost").await, b"held, not lost");
            assert!(
                env.now() >= warden::env::Instant::from_nanos(4_000_000_000),
                "delivered before the partition healed"
            );
            assert!(env.now() - t0 >= Duration::from_millis(2400));
            // A connect during a partition retries until it heals.
            let later = env.connect(&server_addr()).await;
            assert!(later.is_ok(), "connect after the partition: {:?}", later.err());
        },
    );
}

#[test]
fn nothing_listening_is_refused_and_a_crashed_peer_resets() {
    check_in_world(
        "nothing_listening_is_refused_and_a_crashed_peer_resets",
        Duration::from_secs(60),
        |world| {
            let h1 = start_echo_host(world);
            let h = world.handle();
            world.at(Duration::from_secs(2), move || h.crash_host(h1));
        },
        |env| async move {
            env.sleep(Duration::from_millis(1)).await;
            let refused = env.connect(&Addr::Tcp(SocketAddr::from(([10, 0, 0, 2], PORT + 1)))).await;
            assert_eq!(refused.err().map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionRefused));
            let s = env.connect(&server_addr()).await.expect("connect");
            env.sleep(Duration::from_secs(3)).await;
            let mut buf = [0u8; 8];
            let r = env.read(&s, &mut buf).await;
            assert_eq!(r.err().map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionReset));
        },
    );
}

#[test]
fn udp_arrives_within_latency_or_is_lost_at_the_configured_rate() {
    check_in_world(
        "udp_arrives_within_latency_or_is_lost_at_the_configured_rate",
        Duration::from_secs(60),
        |world| {
            world.add_host("peer");
            world.configure_net(|n| n.udp_loss = 0.25);
        },
        |env| async move {
            let a = env.bind_udp(SocketAddr::from(([0, 0, 0, 0], 9000))).expect("bind");
            // Host 0 sends to itself through its own address: a loopback
            // latency of microseconds, and loss applies to every datagram.
            let to = SocketAddr::from(([10, 0, 0, 1], 9000));
            let mut received = 0;
            for i in 0..400u32 {
                env.send_to(&a, &i.to_le_bytes(), to).await.expect("send");
                let mut buf = [0u8; 8];
                if let Ok(Ok((n, from))) = env.timeout(Duration::from_millis(50), env.recv_from(&a, &mut buf)).await {
                    assert_eq!((n, from), (4, to));
                    received += 1;
                }
            }
            assert!((220..=380).contains(&received), "{received} of 400 arrived at 25 % loss");
        },
    );
}
