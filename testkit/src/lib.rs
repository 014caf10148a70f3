//! What the test suites of the Lifeboat crates share, so that each suite holds only its
//! protocol's fixtures and checks. A dev-dependency only: nothing here ships.
//!
//! - [`Client`]: a blocking line client over a raw socket, for driving servers byte by
//!   byte (pipelining, STARTTLS injection, limits), and [`tls_client`] for after the
//!   upgrade.
//! - [`transcript`]: golden `C:`/`S:` transcripts: the files, their escapes, and the
//!   replay-or-bless loop (ARCHITECTURE.md §6).
//! - [`fuzz`]: the fuzz corpora replayed through the checks the fuzz targets run.
//! - [`dkim`]: verifying DKIM signatures against records the test publishes.
//! - [`peers`]: the real programs some tests talk to (Python, curl), with skip notes
//!   where one cannot run at all.
//! - [`backends`] and [`block_on`]: running a test once per I/O backend, and a future
//!   on the test's own thread.
//! - [`listener`]: a loopback port for a server under test, outside the kernel's
//!   ephemeral range.

mod client;
pub mod dkim;
pub mod fuzz;
pub mod nats;
pub mod peers;
pub mod transcript;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use lifeboat_net::{probe_uring, Backend, IoMode};

pub use client::{tls_client, Client};

/// Ports [`listener`] gave out in this process.
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A listener on a loopback port below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`), for a server the test starts on that port. A port
/// from the ephemeral range (what binding port 0 gives) can be taken, once the test
/// lets it go, by any outgoing connection's local end: a node killed and restarted on
/// its old ports then fails with "Address already in use".
pub fn listener() -> std::net::TcpListener {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (first, last) = (10_000u16, low.max(10_001) - 1);
    let mut state = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    };
    for _ in 0..1000 {
        // xorshift: a spread of ports that differs between test processes.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = first + (state % u64::from(last - first + 1)) as u16;
        // Never the same port twice in one process: a test often lets its port go
        // before its server binds it, and another test's pick must not take it then.
        if !HANDED_OUT.lock().unwrap().insert(port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return listener;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port")
}

/// How long a test client waits for the server before it fails the test.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// The I/O backends to run a test on: epoll, and `io_uring` when the probe says it
/// works here (a note says why not otherwise).
pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Epoll];
    match probe_uring() {
        Ok(()) => backends.push(Backend::Uring),
        Err(reason) => println!("note: skipping the io_uring run: {reason}"),
    }
    backends
}

/// The configuration that selects `backend`.
pub fn io_mode(backend: Backend) -> IoMode {
    match backend {
        Backend::Uring => IoMode::Uring,
        Backend::Epoll => IoMode::Epoll,
    }
}

/// Runs a future to completion on this thread; whatever it waits for (the store's
/// writer, the authenticator) wakes it from its own thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
        std::thread::park();
    }
}
