//! Small in-process servers that behave in known ways, for checking that the load
//! generator counts and classifies exactly. Each test binary uses part of this module.
#![allow(dead_code)]

pub mod imap_server;
pub mod pop3_server;
pub mod smtp_server;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Any byte stream the test servers talk over (TCP or TLS over TCP).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A buffered server-side stream.
pub type Stream = BufReader<Box<dyn Io>>;

/// Reads one line without its CRLF; `None` at end of stream.
pub async fn read_line(stream: &mut Stream) -> io::Result<Option<String>> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(Some(line))
}

pub async fn write(stream: &mut Stream, text: &str) -> io::Result<()> {
    stream.get_mut().write_all(text.as_bytes()).await?;
    stream.get_mut().flush().await
}

pub async fn write_bytes(stream: &mut Stream, bytes: &[u8]) -> io::Result<()> {
    stream.get_mut().write_all(bytes).await?;
    stream.get_mut().flush().await
}

/// Switches a stream to TLS (after STARTTLS/STLS was answered).
pub async fn upgrade(stream: Stream, acceptor: &TlsAcceptor) -> io::Result<Stream> {
    let inner = stream.into_inner();
    let tls = acceptor.accept(inner).await?;
    Ok(BufReader::new(Box::new(tls)))
}

/// Binds a loopback listener on a free port.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    (listener, address)
}

/// What a test server counts: at least its connections.
pub trait Counters: Default + Send + Sync + 'static {
    /// Connections accepted.
    fn connections(&self) -> &AtomicU64;
}

/// Reads a counter.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::SeqCst)
}

/// Starts a test server on a free loopback port: each connection is counted, then
/// served by `session` with the behavior and the counters, on its own task.
pub async fn start<B, C, F, Fut>(behavior: B, session: F) -> (SocketAddr, Arc<C>)
where
    B: Send + Sync + 'static,
    C: Counters,
    F: Fn(Stream, Arc<B>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    let (listener, address) = listener().await;
    let counters = Arc::new(C::default());
    let shared = (Arc::new(behavior), counters.clone());
    serve_forever(listener, move |stream| {
        let (behavior, counters) = shared.clone();
        counters.connections().fetch_add(1, Ordering::SeqCst);
        let served = session(stream, behavior, counters);
        async move {
            let _ = served.await;
        }
    });
    (address, counters)
}

/// Accepts connections forever, serving each with `serve` on its own task.
pub fn serve_forever<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(Stream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _peer)) = listener.accept().await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            let stream: Stream = BufReader::new(Box::new(tcp));
            tokio::spawn(serve(stream));
        }
    });
}

/// A self-signed certificate for `localhost` and 127.0.0.1: the acceptor, and the
/// certificate in PEM.
pub fn self_signed() -> (TlsAcceptor, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("generate certificate");
    let certificate: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![certificate], key)
    .expect("server certificate");
    (TlsAcceptor::from(Arc::new(config)), certified.cert.pem())
}

/// A run plan and stop signal for tests: closed loop of `count` units.
pub fn schedule(sessions: usize, count: u64) -> Arc<lifeboat_bench::load::Schedule> {
    let (_stop, stopped) = lifeboat_bench::load::stop_channel();
    Arc::new(lifeboat_bench::load::Schedule::new(
        lifeboat_bench::load::Plan::closed(sessions, count),
        stopped,
    ))
}

/// An open-loop schedule of `count` arrivals at `rate` per second.
pub fn open_schedule(
    sessions: usize,
    count: u64,
    rate: f64,
) -> Arc<lifeboat_bench::load::Schedule> {
    let (_stop, stopped) = lifeboat_bench::load::stop_channel();
    Arc::new(lifeboat_bench::load::Schedule::new(
        lifeboat_bench::load::Plan {
            sessions,
            count: Some(count),
            duration: None,
            rate_per_second: Some(rate),
        },
        stopped,
    ))
}
