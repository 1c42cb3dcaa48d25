//! The HTTP client every HTTP store uses (REST, GCS, and S3 and Azure through
//! object_store), so that one place decides timeouts and TLS: `--cacert` roots,
//! `--insecure-tls`, the `--tls-client-cert` identity and `--stuck-request-timeout`.

use crate::location::Location;
use crate::object::one_line;
use crate::options::Options;
use crate::{Result, StorageError};
use object_store::client::{HttpClient, HttpConnector};
use object_store::ClientOptions;
use std::time::Duration;

/// A client for `loc` with the backend's per-request timeout, the given roots and the
/// client certificate; plain `http://` is allowed only when `allow_http`.
pub(crate) fn client(
    opts: &Options,
    scheme: &str,
    loc: &Location,
    allow_http: bool,
) -> Result<reqwest::Client> {
    build(builder(opts, scheme, allow_http)?, loc)
}

fn build(b: reqwest::ClientBuilder, loc: &Location) -> Result<reqwest::Client> {
    b.build().map_err(|e| StorageError::InvalidLocation {
        location: loc.to_string(),
        reason: one_line(&e.to_string()),
    })
}

fn builder(opts: &Options, scheme: &str, allow_http: bool) -> Result<reqwest::ClientBuilder> {
    let mut b = reqwest::Client::builder()
        .timeout(opts.timeout(scheme)?)
        .connect_timeout(Duration::from_secs(15))
        // A request that receives nothing for this long is given up and retried.
        .read_timeout(opts.stuck_request_timeout())
        .https_only(!allow_http)
        // object_store reads sizes from Content-Length: no transparent decompression.
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .no_deflate();
    if let Some(pem) = read_file(&opts.ca_cert, "CA certificate")? {
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| StorageError::InvalidOption(format!("invalid CA certificate: {e}")))?;
        b = b.tls_certs_merge(std::iter::once(cert));
    }
    if opts.insecure_tls {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    if let Some(pem) = read_file(&opts.tls_client_cert, "TLS client certificate")? {
        // Never the file's contents in the error: it holds a private key.
        let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
            StorageError::InvalidOption(
                "invalid TLS client certificate: want a PEM file with a certificate and its private key"
                    .into(),
            )
        })?;
        b = b.identity(identity);
    }
    Ok(b)
}

/// The TLS failure among `e`'s causes (an unknown issuer, a refused client certificate),
/// if any: a setting to fix, not a dropped connection to try again.
/// Alerts by which a server refuses the certificates or the protocol offered.
const REFUSALS: &[&str] = &[
    "BadCertificate",
    "UnsupportedCertificate",
    "CertificateRevoked",
    "CertificateExpired",
    "CertificateUnknown",
    "CertificateRequired",
    "UnknownCA",
    "AccessDenied",
    "HandshakeFailure",
    "ProtocolVersion",
];

pub(crate) fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        // An alert the server sends after the handshake (TLS 1.3 checks the client's
        // certificate then) reaches us as text only.
        let text = c.to_string();
        if let Some(alert) = text.strip_prefix("received fatal alert: ") {
            if REFUSALS.contains(&alert) {
                return Some(text);
            }
        }
        // An io::Error's source() skips the error it wraps (itself often an io::Error
        // around rustls's): step into it instead.
        cur = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    None
}

fn read_file(path: &Option<std::path::PathBuf>, what: &str) -> Result<Option<Vec<u8>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    std::fs::read(path).map(Some).map_err(|e| {
        StorageError::InvalidOption(format!("cannot read {what} {}: {e}", path.display()))
    })
}

/// Hands object_store the client built above instead of its own, which knows no
/// client certificates. HTTP/1 only, as object_store's default (HTTP/2 is slower for
/// large transfers).
#[derive(Debug)]
pub(crate) struct Connector(pub reqwest::Client);

impl Connector {
    pub(crate) fn new(
        opts: &Options,
        scheme: &str,
        loc: &Location,
        allow_http: bool,
    ) -> Result<Self> {
        build(builder(opts, scheme, allow_http)?.http1_only(), loc).map(Connector)
    }
}

impl HttpConnector for Connector {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}
