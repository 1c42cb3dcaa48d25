//! restic's REST protocol (rest-server, `rclone serve restic`), version 2:
//! `GET {type}/` lists names and sizes, `HEAD`/`GET`/`POST`/`DELETE {type}/{name}` act
//! on one file (`GET` with a `Range` header for parts), `POST /?create=true` creates the
//! repository. Packs are addressed flat (`data/<id>`); the server lays them out.
//!
//! The protocol is spoken over a [`Transport`]: HTTP(S) to a server (`rest:`), or HTTP/2 over
//! the standard input and output of `rclone serve restic --stdio` (`rclone:`).

use crate::location::Location;
use crate::object::one_line;
use crate::options::Options;
use crate::{check_name, Backend, FileInfo, FileType, Result, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::{header, Client, Method, StatusCode, Url};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub(crate) const LIST_V2: &str = "application/vnd.x.restic.rest.v2";
const DEFAULT_CONNECTIONS: usize = 5;

/// One request of the protocol.
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(header::HeaderName, String)>,
    pub body: Option<Bytes>,
}

/// The server's answer, its body read whole (files are at most a pack).
pub(crate) struct Answer {
    pub status: StatusCode,
    /// The Content-Length header, if the server sent one.
    pub length: Option<u64>,
    pub body: Bytes,
}

/// How requests reach the server.
#[async_trait]
pub(crate) trait Transport: Send + Sync + 'static {
    async fn send(&self, call: Call) -> Result<Answer>;
}

pub struct RestBackend {
    transport: Arc<dyn Transport>,
    /// The server URL without credentials: request URLs (which reqwest puts in its errors)
    /// never hold a password.
    base: Url,
    location: String,
    connections: usize,
    limit: Arc<Semaphore>,
}

#[derive(serde::Deserialize)]
struct Listed {
    name: String,
    size: u64,
}

/// HTTP(S) to a REST server, with basic-auth credentials.
struct HttpTransport {
    client: Client,
    /// Basic-auth user and password, from the URL or RESTIC_REST_USERNAME/PASSWORD.
    auth: Option<(String, Option<String>)>,
    location: String,
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, call: Call) -> Result<Answer> {
        let mut req = self.client.request(call.method, call.url);
        for (name, value) in call.headers {
            req = req.header(name, value);
        }
        if let Some(body) = call.body {
            req = req.body(body);
        }
        if let Some((user, pass)) = &self.auth {
            req = req.basic_auth(user, pass.as_ref());
        }
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let length = content_length(resp.headers());
        let body = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        Ok(Answer {
            status,
            length,
            body,
        })
    }
}

impl HttpTransport {
    fn transport_error(&self, e: reqwest::Error) -> StorageError {
        if let Some(detail) = crate::http::tls_failure(&e) {
            return StorageError::Tls {
                location: self.location.clone(),
                detail,
            };
        }
        StorageError::Unreachable {
            location: self.location.clone(),
            detail: one_line(&error_chain(&e.without_url())),
        }
    }
}

pub(crate) fn content_length(headers: &header::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl RestBackend {
    pub fn open(loc: &Location, opts: &Options) -> Result<RestBackend> {
        let Location::Rest { url } = loc else {
            unreachable!("RestBackend::open is only called for rest: locations")
        };
        let mut base = Url::parse(url).map_err(|e| StorageError::InvalidLocation {
            location: loc.to_string(),
            reason: e.to_string(),
        })?;
        // As restic: the environment's credentials apply only when the URL names none.
        let auth = match (base.username(), base.password()) {
            ("", None) => {
                let user = opts.env_var("RESTIC_REST_USERNAME");
                let pass = opts.env_var("RESTIC_REST_PASSWORD");
                (user.is_some() || pass.is_some()).then(|| (user.unwrap_or_default(), pass))
            }
            (user, pass) => Some((percent_decode(user), pass.map(percent_decode))),
        };
        let stripped = base.set_username("").is_ok() && base.set_password(None).is_ok();
        if !stripped {
            return Err(StorageError::InvalidLocation {
                location: loc.to_string(),
                reason: "cannot take the credentials out of the URL".into(),
            });
        }
        let transport = HttpTransport {
            client: crate::http::client(opts, "rest", loc, true)?,
            auth,
            location: loc.to_string(),
        };
        let connections = opts.connections("rest", DEFAULT_CONNECTIONS)?;
        Ok(RestBackend::with_transport(
            Arc::new(transport),
            base,
            loc.to_string(),
            connections,
        ))
    }

    /// The protocol over another transport (rclone's standard input and output).
    pub(crate) fn with_transport(
        transport: Arc<dyn Transport>,
        base: Url,
        location: String,
        connections: usize,
    ) -> RestBackend {
        RestBackend {
            transport,
            base,
            location,
            connections,
            limit: Arc::new(Semaphore::new(connections)),
        }
    }

    fn url(&self, ty: FileType, name: Option<&str>) -> Result<Url> {
        let rel = match (ty, name) {
            (FileType::Config, _) => "config".to_string(),
            (_, None) => format!("{}/", ty.dir()),
            (_, Some(n)) => {
                check_name(ty, n)?;
                format!("{}/{n}", ty.dir())
            }
        };
        self.base
            .join(&rel)
            .map_err(|_| StorageError::InvalidName(rel.clone()))
    }

    /// Send under the connection limit.
    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: Vec<(header::HeaderName, String)>,
        body: Option<Bytes>,
    ) -> Result<Answer> {
        let _permit = self.limit.acquire().await.expect("semaphore never closed");
        self.transport
            .send(Call {
                method,
                url,
                headers,
                body,
            })
            .await
    }

    fn status_error(&self, ty: FileType, name: &str, status: StatusCode) -> StorageError {
        match status {
            StatusCode::NOT_FOUND if ty == FileType::Config => {
                StorageError::NoRepository(self.location.clone())
            }
            StatusCode::NOT_FOUND => StorageError::NotFound {
                ty,
                name: name.to_string(),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StorageError::Auth {
                location: self.location.clone(),
                detail: format!("the server answered {status}"),
            },
            s => StorageError::Remote {
                location: self.location.clone(),
                detail: format!("{ty} {name}: the server answered {s}"),
            },
        }
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// reqwest's top-level message is terse ("error sending request"); the causes say why.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[async_trait]
impl Backend for RestBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn connections(&self) -> usize {
        self.connections
    }

    async fn create(&self) -> Result<()> {
        crate::ensure_no_config(self).await?;
        let mut url = self.base.clone();
        url.set_query(Some("create=true"));
        let answer = self.send(Method::POST, url, Vec::new(), None).await?;
        if !answer.status.is_success() {
            return Err(self.status_error(FileType::Config, "config", answer.status));
        }
        Ok(())
    }

    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>> {
        let url = self.url(ty, None)?;
        let accept = vec![(header::ACCEPT, LIST_V2.to_string())];
        let answer = self.send(Method::GET, url, accept, None).await?;
        match answer.status {
            // A type directory that was never written to lists as empty.
            StatusCode::NOT_FOUND => return Ok(Vec::new()),
            s if !s.is_success() => return Err(self.status_error(ty, "", s)),
            _ => {}
        }
        let listed: Vec<Listed> =
            serde_json::from_slice(&answer.body).map_err(|e| StorageError::Remote {
                location: self.location.clone(),
                detail: format!("listing {ty} files: the server sent an invalid v2 list: {e}"),
            })?;
        Ok(listed
            .into_iter()
            .map(|l| FileInfo {
                name: l.name,
                size: l.size,
            })
            .collect())
    }

    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes> {
        let url = self.url(ty, Some(name))?;
        let answer = self.send(Method::GET, url, Vec::new(), None).await?;
        if !answer.status.is_success() {
            return Err(self.status_error(ty, name, answer.status));
        }
        let data = answer.body;
        if answer.length.is_some_and(|w| w != data.len() as u64) {
            return Err(StorageError::ShortRead {
                ty,
                name: name.to_string(),
                offset: 0,
                length: answer.length.unwrap_or(0),
                size: data.len() as u64,
            });
        }
        Ok(data)
    }

    async fn read_range(
        &self,
        ty: FileType,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes> {
        if length == 0 {
            return Ok(Bytes::new());
        }
        let url = self.url(ty, Some(name))?;
        let range = format!("bytes={}-{}", offset, offset + length - 1);
        let answer = self
            .send(Method::GET, url, vec![(header::RANGE, range)], None)
            .await?;
        let status = answer.status;
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            return Err(StorageError::PastEnd {
                ty,
                name: name.to_string(),
                offset,
                length,
                size: 0,
            });
        }
        if !status.is_success() {
            return Err(self.status_error(ty, name, status));
        }
        let data = answer.body;
        // A server that ignores Range sends the whole file (200 instead of 206).
        let data = if status == StatusCode::OK && data.len() as u64 > length {
            let end = (offset + length).min(data.len() as u64);
            data.slice(offset.min(end) as usize..end as usize)
        } else {
            data
        };
        if data.len() as u64 != length {
            return Err(StorageError::PastEnd {
                ty,
                name: name.to_string(),
                offset,
                length,
                size: offset + data.len() as u64,
            });
        }
        Ok(data)
    }

    async fn write(&self, ty: FileType, name: &str, data: Bytes, exclusive: bool) -> Result<()> {
        // The protocol has no conditional create: check first (locks and keys only).
        if exclusive {
            crate::ensure_absent(self, ty, name).await?;
        }
        let url = self.url(ty, Some(name))?;
        let content_type = vec![(header::CONTENT_TYPE, "application/octet-stream".to_string())];
        let answer = self
            .send(Method::POST, url, content_type, Some(data))
            .await?;
        if !answer.status.is_success() {
            return Err(self.status_error(ty, name, answer.status));
        }
        Ok(())
    }

    async fn remove(&self, ty: FileType, name: &str) -> Result<()> {
        let url = self.url(ty, Some(name))?;
        let answer = self.send(Method::DELETE, url, Vec::new(), None).await?;
        if !answer.status.is_success() {
            return Err(self.status_error(ty, name, answer.status));
        }
        Ok(())
    }

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo> {
        let url = self.url(ty, Some(name))?;
        let answer = self.send(Method::HEAD, url, Vec::new(), None).await?;
        if !answer.status.is_success() {
            return Err(self.status_error(ty, name, answer.status));
        }
        let size = answer.length.ok_or_else(|| StorageError::Remote {
            location: self.location.clone(),
            detail: format!("{ty} {name}: no Content-Length in the HEAD answer"),
        })?;
        Ok(FileInfo {
            name: name.to_string(),
            size,
        })
    }
}
