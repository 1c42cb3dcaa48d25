//! Serving `/metrics`: a hand-sized HTTP/1.1 responder, since Prometheus sends one GET and
//! reads one response per scrape.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The metrics listener (bound first, so a taken port is a start-up error).
pub async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await
}

/// Parse `--metrics-address`: empty for none.
pub fn address(text: &str) -> Result<Option<SocketAddr>, std::net::AddrParseError> {
    match text.trim() {
        "" => Ok(None),
        a => a.parse().map(Some),
    }
}

/// Serve `/metrics`, the text `encode` gives at each scrape, until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    encode: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<()> {
    loop {
        let (mut conn, _) = listener.accept().await?;
        let encode = encode.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let n = match conn.read(&mut buf).await {
                Ok(n) => n,
                Err(_) => return,
            };
            let (status, body) = if buf[..n].starts_with(b"GET /metrics") {
                ("200 OK", encode())
            } else {
                ("404 Not Found", "not found: try /metrics\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
        });
    }
}

/// Bind `address` and serve `/metrics` from it in the background.
pub async fn spawn(
    address: SocketAddr,
    encode: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<SocketAddr> {
    let listener = bind(address).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, encode).await {
            tracing::error!("metrics server stopped: {e}");
        }
    });
    Ok(bound)
}
