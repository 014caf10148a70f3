//! TLS with rustls over an owned-buffer [`TcpConn`], and certificate setup.
//!
//! rustls is driven by hand (`read_tls` / `process_new_packets` / `write_tls`) rather
//! than through tokio-rustls, because tokio-rustls needs tokio's `AsyncRead`, which the
//! `io_uring` backend does not provide. Ciphertext is read into a buffer owned by the
//! [`TlsConn`] and written through the [`TcpConn`] output queue, so TLS inherits the
//! transport's cancel safety.
//!
//! Invariants:
//! - Plaintext handed to the caller was decrypted and authenticated by rustls; nothing
//!   else ever reaches the caller.
//! - Ciphertext is only fed to rustls when its plaintext buffer is empty, which keeps
//!   rustls within its receive buffer limit.
//! - Records rustls produced are moved into the TCP output queue before any await, so
//!   dropping a future cannot lose or reorder them.
//! - The crypto provider is always `ring`, passed explicitly rather than through a
//!   process-wide default, so the crate works whatever other crates install.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConnection;

use crate::conn::{Conn, TcpConn, READ_CHUNK_BYTES};
use crate::error::{NetError, TlsSetupError};

/// File name of the certificate chain [`ensure_self_signed`] writes.
pub const CERT_FILE_NAME: &str = "cert.pem";
/// File name of the private key [`ensure_self_signed`] writes.
pub const KEY_FILE_NAME: &str = "key.pem";
/// Permissions of a written private key: readable by the server's user only.
pub const KEY_FILE_MODE: u32 = 0o600;
/// Permissions of a written certificate: public information.
pub const CERT_FILE_MODE: u32 = 0o644;

/// The crypto provider every TLS configuration of this crate uses.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server TLS configuration, cheap to clone and share between threads.
#[derive(Clone, Debug)]
pub struct TlsAcceptor {
    config: Arc<rustls::ServerConfig>,
}

impl TlsAcceptor {
    /// Wraps a ready rustls configuration.
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        TlsAcceptor { config }
    }

    /// Builds a configuration (TLS 1.2 and 1.3, no client certificates) from a
    /// certificate chain and its private key.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsSetupError> {
        let config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(TlsAcceptor::new(Arc::new(config)))
    }

    /// Loads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8,
    /// PKCS#1 or SEC1).
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<Self, TlsSetupError> {
        let pem_error = |path: &Path, error: rustls::pki_types::pem::Error| TlsSetupError::Pem {
            path: path.to_path_buf(),
            reason: error.to_string(),
        };
        let chain = CertificateDer::pem_file_iter(cert_path)
            .map_err(|error| pem_error(cert_path, error))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| pem_error(cert_path, error))?;
        if chain.is_empty() {
            return Err(TlsSetupError::NoCertificate {
                path: cert_path.to_path_buf(),
            });
        }
        let key =
            PrivateKeyDer::from_pem_file(key_path).map_err(|error| pem_error(key_path, error))?;
        Self::from_der(chain, key)
    }

    /// The certificate configured in `[tls]`, or, when neither file is configured, a
    /// self-signed one kept in `data_dir` (generated on first start, SPEC §7). Returns
    /// the acceptor and whether a certificate was just generated.
    pub fn load_or_generate(
        cert: Option<&Path>,
        key: Option<&Path>,
        data_dir: &Path,
        hostname: &str,
    ) -> Result<(Self, bool), TlsSetupError> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok((Self::from_pem_files(cert, key)?, false)),
            (Some(present), None) | (None, Some(present)) => Err(TlsSetupError::Incomplete {
                present: present.to_path_buf(),
                missing: PathBuf::from(if cert.is_some() {
                    "tls.key"
                } else {
                    "tls.cert"
                }),
            }),
            (None, None) => {
                let paths = ensure_self_signed(data_dir, hostname)?;
                Ok((
                    Self::from_pem_files(&paths.cert, &paths.key)?,
                    paths.generated,
                ))
            }
        }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }
}

/// A client configuration that trusts exactly the certificates in the PEM file
/// `cert_path`: for clients of this server's own certificate (tests, tools), whether
/// it is self-signed or not.
pub fn client_config_trusting(cert_path: &Path) -> Result<rustls::ClientConfig, TlsSetupError> {
    let pem_error = |error: rustls::pki_types::pem::Error| TlsSetupError::Pem {
        path: cert_path.to_path_buf(),
        reason: error.to_string(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert_path).map_err(pem_error)? {
        roots.add(cert.map_err(pem_error)?)?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Where the certificate and key are, and whether they were just generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPaths {
    /// The PEM certificate.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
    /// True when this call generated them (worth a log line: clients will warn).
    pub generated: bool,
}

/// Makes sure `dir` holds `cert.pem` and `key.pem`, generating a self-signed
/// certificate for `hostname` (and `localhost`) when neither exists. The key is written
/// with mode 0600. Existing files are never replaced; if only one of the two exists
/// that is an error, since it means an operator's files are incomplete.
pub fn ensure_self_signed(dir: &Path, hostname: &str) -> Result<CertPaths, TlsSetupError> {
    let cert = dir.join(CERT_FILE_NAME);
    let key = dir.join(KEY_FILE_NAME);
    match (cert.exists(), key.exists()) {
        (true, true) => {
            return Ok(CertPaths {
                cert,
                key,
                generated: false,
            })
        }
        (true, false) => {
            return Err(TlsSetupError::Incomplete {
                present: cert,
                missing: key,
            })
        }
        (false, true) => {
            return Err(TlsSetupError::Incomplete {
                present: key,
                missing: cert,
            })
        }
        (false, false) => {}
    }
    fs::create_dir_all(dir).map_err(|source| TlsSetupError::Write {
        path: dir.to_path_buf(),
        source,
    })?;

    let mut names = vec![hostname.to_string()];
    if hostname != "localhost" {
        names.push("localhost".to_string());
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let key_pair = rcgen::KeyPair::generate()?;
    let certificate = params.self_signed(&key_pair)?;

    // Key first: a crash between the two renames leaves a key without a certificate,
    // which the next start reports instead of silently pairing mismatched files.
    write_new_file(&key, key_pair.serialize_pem().as_bytes(), KEY_FILE_MODE)?;
    write_new_file(&cert, certificate.pem().as_bytes(), CERT_FILE_MODE)?;
    if let Ok(directory) = fs::File::open(dir) {
        // Make the renames durable; failure only risks regenerating next start.
        let _ = directory.sync_all();
    }
    Ok(CertPaths {
        cert,
        key,
        generated: true,
    })
}

/// Writes `contents` to `path` through a temporary file created with `mode`, so the
/// file never exists with looser permissions or partial contents.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsSetupError> {
    let write_error = |source| TlsSetupError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut temporary_name = path.as_os_str().to_owned();
    temporary_name.push(".tmp");
    let temporary = PathBuf::from(temporary_name);
    // A leftover from a crash during an earlier attempt.
    let _ = fs::remove_file(&temporary);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(write_error)?;
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    drop(file);
    fs::rename(&temporary, path).map_err(write_error)
}

/// A TLS server connection over a [`TcpConn`].
pub struct TlsConn {
    tcp: TcpConn,
    tls: ServerConnection,
    /// Ciphertext read from the socket; `cipher_in[cipher_start..]` is not yet fed to
    /// rustls.
    cipher_in: Vec<u8>,
    cipher_start: usize,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConn")
            .field("tcp", &self.tcp)
            .field("protocol_version", &self.tls.protocol_version())
            .field("handshaking", &self.tls.is_handshaking())
            .finish()
    }
}

impl TlsConn {
    /// Performs the server side of the handshake on `tcp`. The caller bounds the time
    /// it may take (see [`crate::FrameConfig::tls_handshake_timeout`]).
    pub async fn accept(tcp: TcpConn, acceptor: &TlsAcceptor) -> Result<TlsConn, NetError> {
        let mut tls = ServerConnection::new(Arc::clone(acceptor.config()))?;
        // The plaintext queue is bounded by the protocol servers flushing each reply;
        // a rustls limit would instead make `queue` fail half-way through a reply.
        tls.set_buffer_limit(None);
        let mut conn = TlsConn {
            tcp,
            tls,
            cipher_in: Vec::with_capacity(READ_CHUNK_BYTES),
            cipher_start: 0,
        };
        while conn.tls.is_handshaking() {
            conn.flush_records().await?;
            if !conn.tls.is_handshaking() {
                break;
            }
            if !conn.receive().await? {
                return Err(NetError::Truncated);
            }
        }
        // TLS 1.3 session tickets follow the handshake.
        conn.flush_records().await?;
        Ok(conn)
    }

    /// The backend the underlying TCP connection runs on.
    pub fn backend(&self) -> crate::Backend {
        self.tcp.backend()
    }

    /// The rustls connection: negotiated version, cipher suite, SNI name, ALPN.
    pub fn connection(&self) -> &ServerConnection {
        &self.tls
    }

    /// Feeds rustls more ciphertext, reading from the socket when none is buffered.
    /// Returns false once the peer has closed TCP.
    async fn receive(&mut self) -> Result<bool, NetError> {
        if self.cipher_start >= self.cipher_in.len() {
            self.cipher_in.clear();
            self.cipher_start = 0;
            if self.tcp.read_some(&mut self.cipher_in).await? == 0 {
                // Tell rustls about the end of stream so it can tell a clean
                // close_notify from a truncation.
                self.tls.read_tls(&mut io::empty())?;
                self.process().await?;
                return Ok(false);
            }
        }
        let mut pending = &self.cipher_in[self.cipher_start..];
        let before = pending.len();
        self.tls.read_tls(&mut pending)?;
        self.cipher_start += before - pending.len();
        self.process().await?;
        Ok(true)
    }

    async fn process(&mut self) -> Result<(), NetError> {
        if let Err(error) = self.tls.process_new_packets() {
            // rustls queued an alert saying why; the peer deserves to see it, but the
            // error is what matters, so a failure to send it is ignored.
            let _ = self.flush_records().await;
            return Err(error.into());
        }
        Ok(())
    }

    /// Moves every pending record into the TCP queue and sends it.
    async fn flush_records(&mut self) -> Result<(), NetError> {
        while self.tls.wants_write() {
            self.tls.write_tls(self.tcp.queue_buffer())?;
        }
        self.tcp.flush().await
    }

    /// Appends decrypted bytes to `out`: `Some(n)` with n > 0 for data, `Some(0)` at
    /// the end of the stream, `None` when rustls needs more ciphertext.
    fn take_plaintext(&mut self, out: &mut Vec<u8>) -> Result<Option<usize>, NetError> {
        let start = out.len();
        out.resize(start + READ_CHUNK_BYTES, 0);
        let result = self.tls.reader().read(&mut out[start..]);
        match result {
            Ok(n) => {
                out.truncate(start + n);
                Ok(Some(n))
            }
            Err(error) => {
                out.truncate(start);
                match error.kind() {
                    io::ErrorKind::WouldBlock => Ok(None),
                    // TCP closed without close_notify. The mail protocols mark the end
                    // of every command and message themselves, so a truncation cannot
                    // turn into a different accepted command: report plain end of
                    // stream, as for a plaintext connection.
                    io::ErrorKind::UnexpectedEof => Ok(Some(0)),
                    _ => Err(error.into()),
                }
            }
        }
    }
}

impl Conn for TlsConn {
    async fn read_some(&mut self, out: &mut Vec<u8>) -> Result<usize, NetError> {
        loop {
            if let Some(n) = self.take_plaintext(out)? {
                return Ok(n);
            }
            // E.g. the answer to a TLS 1.3 KeyUpdate.
            if self.tls.wants_write() {
                self.flush_records().await?;
            }
            self.receive().await?;
        }
    }

    fn queue(&mut self, data: &[u8]) -> Result<(), NetError> {
        self.tls.writer().write_all(data)?;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), NetError> {
        self.flush_records().await
    }

    async fn close(&mut self) -> Result<(), NetError> {
        self.tls.send_close_notify();
        self.flush_records().await?;
        self.tcp.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn self_signed_is_generated_once_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = ensure_self_signed(&data, "mail.example.test").unwrap();
        assert!(first.generated);
        let mode = fs::metadata(&first.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, KEY_FILE_MODE);
        let key_before = fs::read(&first.key).unwrap();

        let second = ensure_self_signed(&data, "mail.example.test").unwrap();
        assert!(!second.generated);
        assert_eq!(fs::read(&second.key).unwrap(), key_before);
        assert!(TlsAcceptor::from_pem_files(&second.cert, &second.key).is_ok());
    }

    #[test]
    fn a_lone_key_or_certificate_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ensure_self_signed(dir.path(), "localhost").unwrap();
        fs::remove_file(&paths.cert).unwrap();
        assert!(matches!(
            ensure_self_signed(dir.path(), "localhost"),
            Err(TlsSetupError::Incomplete { .. })
        ));
    }

    #[test]
    fn loading_reports_the_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        fs::write(&cert, "not a certificate\n").unwrap();
        fs::write(&key, "not a key\n").unwrap();
        match TlsAcceptor::from_pem_files(&cert, &key) {
            Err(TlsSetupError::NoCertificate { path }) => assert_eq!(path, cert),
            other => panic!("unexpected {other:?}"),
        }
        let missing = dir.path().join("missing.pem");
        match TlsAcceptor::from_pem_files(&missing, &key) {
            Err(TlsSetupError::Pem { path, .. }) => assert_eq!(path, missing),
            other => panic!("unexpected {other:?}"),
        }
    }
}
