//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert`, on rustls (aws-lc-rs provider).
//!
//! tokio-postgres knows only `disable`, `prefer` and `require` and leaves certificate checks
//! to the TLS connector, so the checks of each mode live here, in the rustls verifier:
//!
//! | sslmode | encrypts | certificate check |
//! | --- | --- | --- |
//! | `disable` | never | none |
//! | `prefer` (default) | when the server offers TLS | none, or the chain when `sslrootcert` is set |
//! | `require` | always | none, or the chain when `sslrootcert` is set |
//! | `verify-ca` | always | the chain, against `sslrootcert` or the system roots |
//! | `verify-full` | always | the chain and the host name |

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::DbError;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    const ALL: [Self; 5] = [
        Self::Disable,
        Self::Prefer,
        Self::Require,
        Self::VerifyCa,
        Self::VerifyFull,
    ];

    pub(crate) fn parse(value: &str) -> Result<Self, DbError> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == value)
            .ok_or_else(|| {
                // The value is echoed only when it is a misspelt mode name: anything else
                // could be a secret pasted into the wrong place.
                let near = value.to_ascii_lowercase().replace('_', "-");
                let hint = Self::ALL
                    .into_iter()
                    .find(|mode| mode.as_str() == near)
                    .map_or_else(String::new, |mode| {
                        format!(" '{value}' (did you mean {mode}?)")
                    });
                DbError::Config(format!(
                    "unknown sslmode{hint} in DATABASE_URL: use disable, prefer, require, \
                     verify-ca or verify-full"
                ))
            })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres does with the server's answer to the TLS request; the certificate
    /// checks are the verifier's.
    pub(crate) fn negotiation(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Pg;
        match self {
            Self::Disable => Pg::Disable,
            Self::Prefer => Pg::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Pg::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS parameters of a PostgreSQL `DATABASE_URL`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub(crate) mode: SslMode,
    /// `sslrootcert`: a PEM file of CA certificates.
    pub(crate) root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// The rustls connector for these settings, `None` for `disable`. Reads `sslrootcert` (or
    /// the system roots), so it is built once per pool, not per connection.
    pub(crate) fn connector(&self) -> Result<Option<MakeRustlsConnect>, DbError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (self.mode, &self.root_cert) {
            (SslMode::Disable, _) => return Ok(None),
            // libpq: without a root certificate, prefer and require encrypt but do not
            // authenticate the server.
            (SslMode::Prefer | SslMode::Require, None) => Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }),
            // libpq: with one, they check the chain as verify-ca does.
            (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, root_cert) => {
                Arc::new(ChainOnly(self.webpki(root_cert.as_deref(), &provider)?))
            }
            (SslMode::VerifyFull, root_cert) => self.webpki(root_cert.as_deref(), &provider)?,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| DbError::Config(format!("cannot set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Some(MakeRustlsConnect::new(config)))
    }

    fn webpki(
        &self,
        root_cert: Option<&Path>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<WebPkiServerVerifier>, DbError> {
        let roots = match root_cert {
            Some(path) => roots_from_file(path)?,
            None => system_roots(self.mode)?,
        };
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
            .build()
            .map_err(|e| DbError::Config(format!("cannot set up TLS verification: {e}")))
    }
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, DbError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| DbError::Config(format!("cannot read sslrootcert {shown}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            DbError::Config(format!("sslrootcert {shown} is not a valid PEM file: {e}"))
        })?;
        roots.add(cert).map_err(|e| {
            DbError::Config(format!(
                "sslrootcert {shown} holds an invalid certificate: {e}"
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(DbError::Config(format!(
            "sslrootcert {shown} holds no PEM certificate"
        )));
    }
    Ok(roots)
}

/// The operating system's CA certificates (read from disk, e.g. /etc/ssl/certs).
fn system_roots(mode: SslMode) -> Result<RootCertStore, DbError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(String::new, |e| format!(" ({e})"));
        return Err(DbError::Config(format!(
            "sslmode={mode} without sslrootcert needs the system's CA certificates, and none \
             were found{why}: set sslrootcert=PATH to the server's CA file"
        )));
    }
    Ok(roots)
}

/// verify-ca: the chain must lead to a trusted root, whatever host name the certificate
/// names. Delegates to webpki and forgives only the name mismatch, which webpki reports
/// after the chain has been verified.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// require (and prefer) without `sslrootcert`: any certificate is accepted, as libpq does,
/// but the handshake signatures are still checked, so the session is encrypted for whoever
/// holds the presented certificate's key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_libpq_mode_parses_and_others_are_refused() {
        for mode in SslMode::ALL {
            assert_eq!(SslMode::parse(mode.as_str()).ok(), Some(mode));
        }
        for bad in ["verify_full", "VERIFY-FULL", "allow", ""] {
            let err = SslMode::parse(bad).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains("sslmode")),
                "{bad}: {err:?}"
            );
        }
        let err = SslMode::parse("hunter2").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| !e.contains("hunter2")));
        let err = SslMode::parse("verify_full").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("did you mean verify-full")));
    }

    #[test]
    fn verifying_modes_always_require_tls() {
        use tokio_postgres::config::SslMode as Pg;
        assert_eq!(SslMode::Disable.negotiation(), Pg::Disable);
        assert_eq!(SslMode::Prefer.negotiation(), Pg::Prefer);
        for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            assert_eq!(mode.negotiation(), Pg::Require);
        }
    }

    #[test]
    fn connectors_build_without_network_and_bad_root_files_are_config_errors() {
        let settings = |mode, root_cert: Option<&str>| TlsSettings {
            mode,
            root_cert: root_cert.map(PathBuf::from),
        };
        assert!(matches!(
            settings(SslMode::Disable, None).connector(),
            Ok(None)
        ));
        assert!(matches!(
            settings(SslMode::Require, None).connector(),
            Ok(Some(_))
        ));
        match settings(SslMode::VerifyFull, Some("/nonexistent/ca.pem")).connector() {
            Err(DbError::Config(m)) => assert!(m.contains("sslrootcert"), "{m}"),
            other => panic!("expected a configuration error, got {:?}", other.err()),
        }
    }
}
