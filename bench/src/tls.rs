//! TLS client setup (rustls with the ring provider).
//!
//! Benchmarks usually run against servers with self-signed certificates, so besides
//! verifying against a CA file the client can skip certificate verification
//! (`--tls-no-verify`). Skipping verification still checks the handshake signatures:
//! only the question "is this certificate trusted for this name" is answered yes.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
pub enum Verification {
    /// Trust the certificates in this PEM file (and only those).
    CaFile(PathBuf),
    /// Accept any certificate: for self-signed test servers.
    None,
}

/// Why the TLS client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA file {0} holds no usable certificate")]
    NoCertificate(PathBuf),
    #[error("invalid TLS server name `{0}`")]
    ServerName(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A ready TLS client: the connector and the name the server is expected to present.
#[derive(Clone)]
pub struct TlsClient {
    pub connector: TlsConnector,
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Builds a client that checks certificates as `verification` says and expects
    /// `server_name` (a host name or an IP address literal).
    pub fn new(verification: &Verification, server_name: &str) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match verification {
            Verification::None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
                .with_no_client_auth(),
            Verification::CaFile(path) => {
                let pem = std::fs::read(path).map_err(|source| TlsSetupError::CaFile {
                    path: path.clone(),
                    source,
                })?;
                let mut roots = RootCertStore::empty();
                for certificate in CertificateDer::pem_slice_iter(&pem).flatten() {
                    // A certificate rustls cannot parse is skipped, as browsers do
                    // with a bundle; an empty store is refused below.
                    let _ = roots.add(certificate);
                }
                if roots.is_empty() {
                    return Err(TlsSetupError::NoCertificate(path.clone()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsSetupError::ServerName(server_name.to_string()))?;
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// Trusts every certificate but still verifies handshake signatures, so the session
/// keys really belong to whoever holds the certificate's private key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
