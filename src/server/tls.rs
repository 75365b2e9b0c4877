//! The server's TLS identity: loading a PEM certificate chain and private
//! key into a rustls configuration (ring provider, HTTP/1.1 only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A loaded certificate and key, ready to accept TLS connections.
#[derive(Clone)]
pub struct TlsConfig {
    pub(super) acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig(..)")
    }
}

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file is missing, unreadable or not PEM.
    #[error("cannot read the TLS {what} {}: {reason}", path.display())]
    Unreadable {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The certificate file holds no certificate.
    #[error("no PEM certificate in {}", .0.display())]
    NoCertificate(PathBuf),
    /// rustls refused the pair: a key that does not match the
    /// certificate, an unsupported key type.
    #[error("cannot use the TLS certificate {} with the key {}: {reason}", cert.display(), key.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        reason: String,
    },
}

impl TlsConfig {
    /// Loads the chain in `cert` (leaf first) and the private key in `key`,
    /// and checks that the key belongs to the leaf.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let unreadable = |what, path: &Path, reason: String| TlsError::Unreadable {
            what,
            path: path.to_owned(),
            reason,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| unreadable("certificate", cert, pem_reason(e)))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(cert.to_owned()));
        }
        let private_key =
            PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable("key", key, pem_reason(e)))?;
        let rejected = |e: rustls::Error| TlsError::Rejected {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        };
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(rejected)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// A PEM error in words; "no items found" is what an empty or non-PEM file gives.
fn pem_reason(err: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match err {
        Error::Io(e) => e.to_string(),
        Error::NoItemsFound => "no PEM section of the expected kind in it".into(),
        other => format!("not valid PEM ({other})"),
    }
}
