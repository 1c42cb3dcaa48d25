//! `rclone:remote:path`: restic's REST protocol spoken over HTTP/2 on the standard input and
//! output of `rclone serve restic --stdio remote:path`, as restic does it. rclone is started
//! on the first request; `-o rclone.program`, `rclone.args`, `rclone.connections` and
//! `rclone.timeout` (how long to wait for rclone to answer at start) are restic's options.

use crate::helper::{split_words, Helper};
use crate::location::Location;
use crate::options::Options;
use crate::rest::{content_length, Answer, Call, RestBackend, Transport, LIST_V2};
use crate::{Result, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::{header, Method, Url};
use std::time::Duration;
use tokio::sync::OnceCell;

const DEFAULT_ARGS: &str = "serve restic --stdio --b2-hard-delete";
const DEFAULT_CONNECTIONS: usize = 5;
/// restic's default for `rclone.timeout`.
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Per request, as the other network backends' default.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Large windows: the pipe has no latency to hide, but the default 64 KiB per stream would
/// stall a pack upload every 64 KiB for a window update.
const STREAM_WINDOW: u32 = 8 << 20;
const CONNECTION_WINDOW: u32 = 32 << 20;

pub(crate) fn open(loc: &Location, opts: &Options) -> Result<RestBackend> {
    let Location::Rclone { remote } = loc else {
        unreachable!("rclone::open is only called for rclone: locations")
    };
    let mut argv = split_words(
        "rclone.program",
        opts.get("rclone", "program").unwrap_or("rclone"),
    )?;
    argv.extend(split_words(
        "rclone.args",
        opts.get("rclone", "args").unwrap_or(DEFAULT_ARGS),
    )?);
    argv.push(remote.clone());
    let start_timeout = match opts.get("rclone", "timeout") {
        None => DEFAULT_START_TIMEOUT,
        Some(_) => opts.timeout("rclone")?,
    };
    let transport = StdioTransport {
        argv,
        location: loc.to_string(),
        start_timeout,
        session: OnceCell::new(),
    };
    let base = Url::parse("http://localhost/").expect("a valid URL");
    let connections = opts.connections("rclone", DEFAULT_CONNECTIONS)?;
    Ok(RestBackend::with_transport(
        std::sync::Arc::new(transport),
        base,
        loc.to_string(),
        connections,
    ))
}

struct StdioTransport {
    argv: Vec<String>,
    location: String,
    start_timeout: Duration,
    session: OnceCell<Session>,
}

/// A running rclone and the HTTP/2 connection over its pipes (one connection; requests
/// are streams on it).
struct Session {
    helper: Helper,
    sender: SendRequest<Full<Bytes>>,
}

impl StdioTransport {
    async fn session(&self) -> Result<&Session> {
        self.session.get_or_try_init(|| self.start()).await
    }

    async fn start(&self) -> Result<Session> {
        let (helper, io) = Helper::start(&self.argv, &self.location)?;
        let handshake = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(TokioIo::new(io));
        let started = async {
            let (sender, connection) = handshake.await.map_err(|e| self.unreachable(&e))?;
            tokio::spawn(connection);
            let session = Session { helper, sender };
            // As restic: ask for a file that does not exist, to see that rclone answers.
            let probe = Call {
                method: Method::GET,
                url: Url::parse(&format!("http://localhost/file-{}", rand::random::<u64>()))
                    .expect("a valid URL"),
                headers: vec![(header::ACCEPT, LIST_V2.to_string())],
                body: None,
            };
            match session.request(probe, &self.location).await {
                Ok(_) => Ok(session),
                Err(e) => Err(session.helper.failure(e).await),
            }
        };
        match tokio::time::timeout(self.start_timeout, started).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::Helper {
                location: self.location.clone(),
                detail: format!(
                    "rclone did not answer within {:?} of starting",
                    self.start_timeout
                ),
            }),
        }
    }

    fn unreachable(&self, e: &dyn std::error::Error) -> StorageError {
        StorageError::Unreachable {
            location: self.location.clone(),
            detail: crate::object::one_line(&crate::rest::error_chain(e)),
        }
    }
}

impl Session {
    async fn request(&self, call: Call, location: &str) -> Result<Answer> {
        let unreachable = |e: &dyn std::error::Error| StorageError::Unreachable {
            location: location.to_string(),
            detail: crate::object::one_line(&crate::rest::error_chain(e)),
        };
        let mut req = hyper::Request::builder()
            .method(call.method)
            .uri(call.url.as_str());
        for (name, value) in call.headers {
            req = req.header(name, value);
        }
        let req = req
            .body(Full::new(call.body.unwrap_or_default()))
            .map_err(|e| unreachable(&e))?;
        let exchange = async {
            let resp = self
                .sender
                .clone()
                .send_request(req)
                .await
                .map_err(|e| unreachable(&e))?;
            let status = resp.status();
            let length = content_length(resp.headers());
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(&e))?
                .to_bytes();
            Ok(Answer {
                status,
                length,
                body,
            })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::Unreachable {
                location: location.to_string(),
                detail: format!("no answer from rclone within {REQUEST_TIMEOUT:?}"),
            }),
        }
    }
}

#[async_trait]
impl Transport for StdioTransport {
    async fn send(&self, call: Call) -> Result<Answer> {
        let session = self.session().await?;
        match session.request(call, &self.location).await {
            Ok(answer) => Ok(answer),
            Err(e) => Err(session.helper.failure(e).await),
        }
    }
}
