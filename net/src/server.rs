//! The thread-per-core runtime.
//!
//! `threads` I/O threads each run their own single-threaded runtime (tokio-uring, or a
//! tokio current-thread runtime with a `LocalSet` for epoll) and own one socket per
//! listener, all bound to the same address with `SO_REUSEPORT`, so the kernel spreads
//! incoming connections over the threads and no thread hands work to another.
//!
//! Accepting is readiness-based on both backends (the tokio reactor runs inside the
//! tokio-uring runtime as well); an accepted socket is then handed to the backend, so
//! on `io_uring` every read and write goes through the ring. Accepting this way keeps
//! the accept loop cancel-safe, which makes stopping it at shutdown trivial, and gives
//! the local address of each connection without unsafe code.
//!
//! Invariants:
//! - All sockets are bound before any thread starts; a bind error fails
//!   [`ServerBuilder::start`] and nothing is left running.
//! - A handler and its connection run on the thread that accepted them, so handler
//!   factories are called once per listener per thread and handlers need not be
//!   `Send`.
//! - Connection limits are checked at accept, before any handler code runs, with counts
//!   shared by all threads ([`crate::limits`]).
//! - Shutdown: every thread stops accepting and closes its listening sockets at once;
//!   running handlers see the signal and get until the drain deadline; what is still
//!   running then is dropped (its sockets closed) when the thread's runtime is.

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::net::{Shutdown as SocketShutdown, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::Notify;

use crate::backend::{select_backend, Backend, BackendChoice, IoMode, URING_ENTRIES};
use crate::conn::{Stream, TcpConn};
use crate::error::StartError;
use crate::framed::{ConnInfo, FrameConfig, Framed, TlsState};
use crate::limits::{ConnectionCounter, ConnectionLimits, ConnectionPermit, LimitExceeded};
use crate::shutdown::Shutdown;
use crate::tls::{TlsAcceptor, TlsConn};

/// Most I/O threads; far above any core count this runs on, it only catches a typo
/// in `server.threads` before it exhausts memory.
pub const THREADS_MAX: usize = 256;
/// Listen backlog of each socket (the kernel caps it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: i32 = 1024;
/// Longest refusal line; it is sent with one non-blocking write.
pub const REFUSAL_BYTES_MAX: usize = 512;
/// Pause after a failed accept (e.g. out of descriptors), so the loop does not spin
/// while connections finish and free resources.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait for every thread to build its runtime and register its sockets.
pub const THREAD_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Time past the drain deadline for threads to drop their runtimes and exit.
pub const SHUTDOWN_JOIN_MARGIN: Duration = Duration::from_secs(2);
/// Drain time when a running [`Server`] is dropped without [`Server::shutdown`].
pub const DROP_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const JOIN_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Runtime settings (`server.threads`, `server.io`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerConfig {
    /// I/O threads; 0 means one per available core.
    pub threads: usize,
    /// Backend selection.
    pub io: IoMode,
}

/// One listener: where, how (TLS), with which limits.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// Name used in logs and to look the listener up (`smtp`, `imaps`, ...).
    pub name: String,
    /// Address to bind; port 0 picks a free port (see [`Server::local_addr`]).
    pub addr: SocketAddr,
    /// `Some` for implicit TLS (handshake before the handler runs).
    pub tls: Option<TlsAcceptor>,
    /// Connection limits.
    pub limits: ConnectionLimits,
    /// The protocol's one-line refusal sent when a limit refuses a connection, e.g.
    /// `421 4.7.0 Too many connections\r\n`. Not sent on implicit TLS listeners (it
    /// would be sent in plaintext to a client expecting TLS); those just close.
    pub refusal: Vec<u8>,
    /// Framing settings for the listener's connections.
    pub frame: FrameConfig,
}

impl ListenerConfig {
    /// A plaintext listener with the default limits and framing and no refusal line.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        ListenerConfig {
            name: name.into(),
            addr,
            tls: None,
            limits: ConnectionLimits::default(),
            refusal: Vec::new(),
            frame: FrameConfig::default(),
        }
    }

    /// A protocol listener: implicit TLS with `tls`, or plaintext (the protocol's own
    /// STARTTLS) that answers `refusal` when a connection limit is hit; `idle_timeout`
    /// for the framing.
    pub fn protocol(
        name: impl Into<String>,
        addr: SocketAddr,
        tls: Option<&TlsAcceptor>,
        refusal: &[u8],
        idle_timeout: std::time::Duration,
    ) -> Self {
        let mut listener = ListenerConfig::new(name, addr);
        match tls {
            // Implicit TLS listeners just close: a plaintext refusal would be garbage
            // to a client expecting a handshake.
            Some(tls) => listener.tls = Some(tls.clone()),
            None => listener.refusal = refusal.to_vec(),
        }
        listener.frame.idle_timeout = idle_timeout;
        listener
    }
}

/// What a handler factory learns about the thread it builds a handler for.
#[derive(Clone, Debug)]
pub struct ThreadContext {
    /// Thread index, 0-based.
    pub index: usize,
    /// Backend in use.
    pub backend: Backend,
    /// The server's shutdown signal.
    pub shutdown: Shutdown,
}

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;
type LocalHandler = Rc<dyn Fn(Framed<Stream>) -> LocalFuture>;
type HandlerFactory = Arc<dyn Fn(&ThreadContext) -> LocalHandler + Send + Sync>;

/// Collects listeners and their handlers, then starts the threads.
pub struct ServerBuilder {
    config: ServerConfig,
    listeners: Vec<(ListenerConfig, HandlerFactory)>,
}

impl ServerBuilder {
    /// A server with no listeners yet.
    pub fn new(config: ServerConfig) -> Self {
        ServerBuilder {
            config,
            listeners: Vec::new(),
        }
    }

    /// Adds a listener. `factory` runs once on each I/O thread and returns that
    /// thread's handler; the handler runs once per accepted connection, as a task on
    /// the accepting thread. Per-thread state (caches, a store handle) can live in the
    /// handler's captures without locks.
    pub fn listener<F, H, Fut>(mut self, listener: ListenerConfig, factory: F) -> Self
    where
        F: Fn(&ThreadContext) -> H + Send + Sync + 'static,
        H: Fn(Framed<Stream>) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let factory: HandlerFactory = Arc::new(move |context: &ThreadContext| {
            let handler = factory(context);
            let boxed: LocalHandler = Rc::new(move |framed| Box::pin(handler(framed)));
            boxed
        });
        self.listeners.push((listener, factory));
        self
    }

    /// Selects the backend, binds every socket, and starts the threads. Returns once
    /// every thread is accepting.
    pub fn start(self) -> Result<Server, StartError> {
        validate(&self.listeners)?;
        let choice = select_backend(self.config.io)?;
        let threads = match self.config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(THREADS_MAX);

        let mut shared_listeners = Vec::new();
        let mut per_thread: Vec<Vec<ThreadListener>> = (0..threads).map(|_| Vec::new()).collect();
        for (config, factory) in self.listeners {
            let name = config.name.clone();
            let bind_error = |addr, source| StartError::Bind {
                name: name.clone(),
                addr,
                source,
            };
            let first = bind_reuseport(config.addr).map_err(|e| bind_error(config.addr, e))?;
            // With port 0 the first bind picks the port; the others must join it.
            let addr = first.local_addr().map_err(|e| bind_error(config.addr, e))?;
            let shared = Arc::new(ListenerShared {
                name: Arc::from(config.name.as_str()),
                local_addr: addr,
                counter: ConnectionCounter::new(config.limits),
                config,
            });
            let mut sockets = vec![first];
            for _ in 1..threads {
                sockets.push(bind_reuseport(addr).map_err(|e| bind_error(addr, e))?);
            }
            for (thread, socket) in per_thread.iter_mut().zip(sockets) {
                thread.push(ThreadListener {
                    socket,
                    shared: Arc::clone(&shared),
                    factory: Arc::clone(&factory),
                });
            }
            shared_listeners.push(shared);
        }

        let shutdown = Shutdown::new();
        let aborted = Arc::new(AtomicUsize::new(0));
        let mut server = Server {
            choice,
            shutdown: shutdown.clone(),
            threads: Vec::with_capacity(threads),
            listeners: shared_listeners,
            aborted: Arc::clone(&aborted),
        };
        let (ready_sender, ready) = mpsc::channel();
        for (index, listeners) in per_thread.into_iter().enumerate() {
            let context = ThreadContext {
                index,
                backend: server.choice.backend,
                shutdown: shutdown.clone(),
            };
            let ready_sender = ready_sender.clone();
            let aborted = Arc::clone(&aborted);
            let spawned = std::thread::Builder::new()
                .name(format!("lifeboat-io-{index}"))
                .spawn(move || run_thread(context, listeners, ready_sender, aborted));
            match spawned {
                Ok(handle) => server.threads.push(handle),
                Err(source) => {
                    server.stop_now();
                    return Err(StartError::Thread { index, source });
                }
            }
        }
        drop(ready_sender);
        let started_by = Instant::now() + THREAD_START_TIMEOUT;
        for _ in 0..threads {
            let wait = started_by.saturating_duration_since(Instant::now());
            let failure = match ready.recv_timeout(wait) {
                Ok((_, Ok(()))) => continue,
                Ok((index, Err(source))) => StartError::Thread { index, source },
                Err(_) => StartError::Thread {
                    index: 0,
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        "an I/O thread did not start in time",
                    ),
                },
            };
            server.stop_now();
            return Err(failure);
        }
        tracing::info!(backend = %server.choice, threads, "network runtime started");
        Ok(server)
    }
}

fn validate(listeners: &[(ListenerConfig, HandlerFactory)]) -> Result<(), StartError> {
    let mut names = HashSet::new();
    for (listener, _) in listeners {
        let invalid = |reason| StartError::InvalidListener {
            name: listener.name.clone(),
            reason,
        };
        if listener.name.is_empty() {
            return Err(invalid("empty name"));
        }
        if !names.insert(listener.name.as_str()) {
            return Err(invalid("duplicate name"));
        }
        if listener.refusal.len() > REFUSAL_BYTES_MAX {
            return Err(invalid("refusal line longer than 512 bytes"));
        }
    }
    Ok(())
}

/// A listening socket that shares its address with the other threads' sockets.
fn bind_reuseport(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Restarting must not wait for TIME_WAIT connections of the previous process.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    // The tokio reactor that accepts requires a non-blocking socket.
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

struct ListenerShared {
    name: Arc<str>,
    local_addr: SocketAddr,
    counter: Arc<ConnectionCounter>,
    config: ListenerConfig,
}

struct ThreadListener {
    socket: std::net::TcpListener,
    shared: Arc<ListenerShared>,
    factory: HandlerFactory,
}

type ReadySender = mpsc::Sender<(usize, io::Result<()>)>;

fn run_thread(
    context: ThreadContext,
    listeners: Vec<ThreadListener>,
    ready: ReadySender,
    aborted: Arc<AtomicUsize>,
) {
    let index = context.index;
    match context.backend {
        Backend::Uring => {
            match tokio_uring::Runtime::new(tokio_uring::builder().entries(URING_ENTRIES)) {
                Ok(runtime) => runtime.block_on(thread_main(context, listeners, ready, aborted)),
                Err(error) => {
                    let _ = ready.send((index, Err(error)));
                }
            }
        }
        Backend::Epoll => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready.send((index, Err(error)));
                    return;
                }
            };
            // Declared after the runtime so it is dropped first: its tasks own sockets
            // registered with the runtime's reactor.
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, thread_main(context, listeners, ready, aborted));
        }
    }
}

async fn thread_main(
    context: ThreadContext,
    listeners: Vec<ThreadListener>,
    ready: ReadySender,
    aborted: Arc<AtomicUsize>,
) {
    let context = Rc::new(context);
    let active = Rc::new(ActiveConnections::default());
    let mut accepting = Vec::with_capacity(listeners.len());
    for listener in listeners {
        match tokio::net::TcpListener::from_std(listener.socket) {
            Ok(socket) => {
                let handler = (listener.factory)(&context);
                accepting.push((socket, listener.shared, handler));
            }
            Err(error) => {
                let _ = ready.send((context.index, Err(error)));
                return;
            }
        }
    }
    let _ = ready.send((context.index, Ok(())));
    let loops: Vec<_> = accepting
        .into_iter()
        .map(|(socket, shared, handler)| {
            tokio::task::spawn_local(accept_loop(
                socket,
                shared,
                handler,
                Rc::clone(&context),
                Rc::clone(&active),
            ))
        })
        .collect();

    context.shutdown.triggered().await;
    for accept in loops {
        let _ = accept.await;
    }
    let deadline = context
        .shutdown
        .deadline()
        .unwrap_or_else(|| Instant::now() + crate::shutdown::DRAIN_TIMEOUT_DEFAULT);
    let drained = tokio::time::timeout_at(deadline.into(), active.wait_idle()).await;
    if drained.is_err() {
        let still_running = active.count.get();
        aborted.fetch_add(still_running, Ordering::AcqRel);
        tracing::warn!(
            thread = context.index,
            connections = still_running,
            "drain deadline passed; aborting connections"
        );
    }
    // Returning drops the runtime's remaining tasks, closing their connections.
}

async fn accept_loop(
    socket: tokio::net::TcpListener,
    shared: Arc<ListenerShared>,
    handler: LocalHandler,
    context: Rc<ThreadContext>,
    active: Rc<ActiveConnections>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = context.shutdown.triggered() => break,
            accepted = socket.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(listener = %shared.name, %error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let permit = match shared.counter.try_acquire(peer.ip()) {
            Ok(permit) => permit,
            Err(limit) => {
                refuse(stream, &shared, peer, limit);
                continue;
            }
        };
        // Replies are small and latency-bound; Nagle would delay pipelined answers.
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(shared.local_addr);
        let tcp = match to_backend(stream, context.backend, permit) {
            Ok(tcp) => tcp,
            Err(error) => {
                tracing::debug!(listener = %shared.name, %peer, %error, "cannot set up connection");
                continue;
            }
        };
        let info = ConnInfo {
            // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; policy
            // checks (relay networks, loopback) expect the plain IPv4 address.
            peer: SocketAddr::new(peer.ip().to_canonical(), peer.port()),
            local,
            listener: Arc::clone(&shared.name),
            thread_index: context.index,
            tls: if shared.config.tls.is_some() {
                TlsState::Implicit
            } else {
                TlsState::None
            },
        };
        let guard = ActiveGuard::enter(&active);
        let handler = Rc::clone(&handler);
        let shared = Arc::clone(&shared);
        let shutdown = context.shutdown.clone();
        tokio::task::spawn_local(async move {
            let _guard = guard;
            let stream = match &shared.config.tls {
                None => Stream::Plain(tcp),
                Some(acceptor) => {
                    let timeout = shared.config.frame.tls_handshake_timeout;
                    match tokio::time::timeout(timeout, TlsConn::accept(tcp, acceptor)).await {
                        Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                        Ok(Err(error)) => {
                            tracing::debug!(listener = %shared.name, peer = %info.peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(listener = %shared.name, peer = %info.peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            handler(Framed::new(
                stream,
                shared.config.frame,
                info,
                Some(shutdown),
            ))
            .await;
        });
    }
    // Dropping the socket here removes it from the SO_REUSEPORT group at once.
}

/// Moves an accepted socket onto the thread's backend.
fn to_backend(
    stream: tokio::net::TcpStream,
    backend: Backend,
    permit: ConnectionPermit,
) -> io::Result<TcpConn> {
    match backend {
        Backend::Epoll => Ok(TcpConn::from_epoll(stream, Some(permit))),
        Backend::Uring => {
            let stream = stream.into_std()?;
            // IORING_OP_READ on an O_NONBLOCK socket returns EAGAIN instead of waiting
            // in the ring, so the socket must be blocking for io_uring.
            stream.set_nonblocking(false)?;
            Ok(TcpConn::from_uring(
                tokio_uring::net::TcpStream::from_std(stream),
                Some(permit),
            ))
        }
    }
}

/// Turns away a connection over a limit with the protocol's refusal line.
fn refuse(
    stream: tokio::net::TcpStream,
    shared: &ListenerShared,
    peer: SocketAddr,
    limit: LimitExceeded,
) {
    tracing::debug!(listener = %shared.name, %peer, ?limit, "connection refused by limit");
    if shared.config.tls.is_none() && !shared.config.refusal.is_empty() {
        // One non-blocking write: a new socket's send buffer is empty, so a line this
        // short fits, and a refused client must not be able to hold the accept loop.
        let _ = stream.try_write(&shared.config.refusal);
    }
    let _ = socket2::SockRef::from(&stream).shutdown(SocketShutdown::Write);
}

/// Connections running on one thread, so shutdown can wait for them.
#[derive(Default)]
struct ActiveConnections {
    count: Cell<usize>,
    idle: Notify,
}

impl ActiveConnections {
    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count.get() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts one running connection; released however its task ends (return, panic,
/// abort).
struct ActiveGuard(Rc<ActiveConnections>);

impl ActiveGuard {
    fn enter(active: &Rc<ActiveConnections>) -> Self {
        active.count.set(active.count.get() + 1);
        ActiveGuard(Rc::clone(active))
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let count = self.0.count.get() - 1;
        self.0.count.set(count);
        if count == 0 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Counts of one listener, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerStats {
    /// Connections open now, over all threads.
    pub active: usize,
    /// Connections refused by a limit since start.
    pub refused_total: u64,
}

/// What happened at shutdown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Threads that exited.
    pub threads_joined: usize,
    /// Threads still running at the join deadline (left detached).
    pub threads_stuck: usize,
    /// Threads that panicked.
    pub threads_panicked: usize,
    /// Connections still running at the drain deadline, which were aborted.
    pub connections_aborted: usize,
}

/// A running server. Dropping it shuts it down with [`DROP_DRAIN_TIMEOUT`].
pub struct Server {
    choice: BackendChoice,
    shutdown: Shutdown,
    threads: Vec<JoinHandle<()>>,
    listeners: Vec<Arc<ListenerShared>>,
    aborted: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("backend", &self.choice)
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl Server {
    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.choice.backend
    }

    /// The backend selection with the reason for any fallback, for the startup log.
    pub fn backend_choice(&self) -> &BackendChoice {
        &self.choice
    }

    /// Number of I/O threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// The bound address of a listener (with the real port when 0 was asked for).
    pub fn local_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.find(listener).map(|shared| shared.local_addr)
    }

    /// Current counts of a listener.
    pub fn stats(&self, listener: &str) -> Option<ListenerStats> {
        self.find(listener).map(|shared| ListenerStats {
            active: shared.counter.active(),
            refused_total: shared.counter.refused_total(),
        })
    }

    /// The shutdown signal, e.g. for a signal handler to trigger.
    pub fn shutdown_token(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Stops accepting, gives running connections `grace` to finish, aborts the rest,
    /// and joins the threads (waiting at most `grace` plus [`SHUTDOWN_JOIN_MARGIN`]).
    pub fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        let drain_deadline = Instant::now() + grace;
        self.shutdown.trigger_with_deadline(drain_deadline);
        self.join(drain_deadline + SHUTDOWN_JOIN_MARGIN)
    }

    /// Blocks until shutdown is triggered through [`Server::shutdown_token`] and every
    /// thread has finished draining.
    pub fn wait(mut self) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        for thread in std::mem::take(&mut self.threads) {
            match thread.join() {
                Ok(()) => report.threads_joined += 1,
                Err(_) => report.threads_panicked += 1,
            }
        }
        report.connections_aborted = self.aborted.load(Ordering::Acquire);
        report
    }

    fn find(&self, listener: &str) -> Option<&Arc<ListenerShared>> {
        self.listeners
            .iter()
            .find(|shared| &*shared.name == listener)
    }

    fn stop_now(&mut self) {
        let deadline = Instant::now();
        self.shutdown.trigger_with_deadline(deadline);
        self.join(deadline + SHUTDOWN_JOIN_MARGIN);
    }

    fn join(&mut self, deadline: Instant) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        for thread in std::mem::take(&mut self.threads) {
            // std has no join with a timeout; poll for completion instead.
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(JOIN_POLL_INTERVAL);
            }
            if thread.is_finished() {
                match thread.join() {
                    Ok(()) => report.threads_joined += 1,
                    Err(_) => report.threads_panicked += 1,
                }
            } else {
                report.threads_stuck += 1;
            }
        }
        report.connections_aborted = self.aborted.load(Ordering::Acquire);
        if report.threads_stuck > 0 {
            tracing::warn!(
                threads = report.threads_stuck,
                "I/O threads did not exit in time"
            );
        }
        report
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let deadline = Instant::now() + DROP_DRAIN_TIMEOUT;
            self.shutdown.trigger_with_deadline(deadline);
            self.join(deadline + SHUTDOWN_JOIN_MARGIN);
        }
    }
}
