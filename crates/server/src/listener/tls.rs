//! TLS on the API listener: the certificate chain and key of `tls_cert_file` and
//! `tls_key_file` (PEM), rustls with the aws-lc-rs provider, HTTP/1.1 by ALPN.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// The acceptor for `files`, or what is wrong with them, naming the key and the file.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let (cert_pem, key_pem) = files.read()?;
    let cert_file = files.cert_file.display();
    let key_file = files.key_file.display();
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`tls_cert_file`: {cert_file} is not a PEM certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "`tls_cert_file`: {cert_file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!("`tls_key_file`: {key_file} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}")
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "`tls_cert_file`, `tls_key_file`: {cert_file} and {key_file} cannot serve TLS \
                 (is the key the certificate's?): {e}"
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
