//! Google Cloud Storage through its JSON API.
//!
//! object_store's GCS client writes through the XML API, which fake-gcs-server (the
//! emulator this project tests against, and the one most GCS users test with) does not
//! accept for uploads. The JSON API works on both, so requests are made here with
//! reqwest, while authentication reuses object_store's credential providers
//! (service-account files, the metadata server for workload identity, token refresh).

use crate::location::Location;
use crate::object::one_line;
use crate::options::Options;
use crate::rest::error_chain;
use crate::{check_name, Backend, FileInfo, FileType, Result, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use object_store::gcp::GcpCredentialProvider;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{header, Client, StatusCode};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Object names in URL paths and queries: everything but unreserved characters escaped.
const NAME: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
const DEFAULT_CONNECTIONS: usize = 5;
/// Resumable uploads send chunks in multiples of 256 KiB.
const CHUNK: usize = 16 << 20;

pub struct GcsBackend {
    client: Client,
    base: String,
    bucket: String,
    prefix: String,
    creds: GcpCredentialProvider,
    location: String,
    connections: usize,
    limit: Arc<Semaphore>,
}

#[derive(serde::Deserialize)]
struct ObjectList {
    #[serde(default)]
    items: Vec<ListedObject>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ListedObject {
    name: String,
    /// The JSON API sends sizes as decimal strings.
    size: String,
}

impl GcsBackend {
    pub fn open(loc: &Location, opts: &Options) -> Result<GcsBackend> {
        let Location::Gcs { bucket, prefix } = loc else {
            unreachable!("GcsBackend::open is only called for gs: locations")
        };
        let emulator = opts
            .get("gs", "endpoint-url")
            .map(str::to_string)
            .or_else(|| {
                opts.env_var("STORAGE_EMULATOR_HOST").map(|h| {
                    if h.contains("://") {
                        h
                    } else {
                        format!("http://{h}")
                    }
                })
            });
        let creds_file = opts.env_var("GOOGLE_APPLICATION_CREDENTIALS");
        let creds: GcpCredentialProvider = match (&emulator, &creds_file) {
            // Emulators take any bearer token.
            (Some(_), None) => Arc::new(object_store::StaticCredentialProvider::new(
                object_store::gcp::GcpCredential {
                    bearer: "emulator".to_string(),
                },
            )),
            _ => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket);
                // The variable holds a key file's path (the CLI, as restic) or the key
                // file's content (a cluster Secret): a JSON object is content.
                let content = creds_file
                    .as_deref()
                    .filter(|v| v.trim_start().starts_with('{'));
                match (&creds_file, content) {
                    (_, Some(json)) => b = b.with_service_account_key(json),
                    (Some(path), None) => b = b.with_application_credentials(path),
                    (None, None) => {}
                }
                b.build()
                    .map_err(|e| StorageError::Auth {
                        location: loc.to_string(),
                        // Whatever the library quotes of the credentials is cut out.
                        detail: match content {
                            Some(json) => one_line(&e.to_string().replace(json, "<key>")),
                            None => one_line(&e.to_string()),
                        },
                    })?
                    .credentials()
                    .clone()
            }
        };
        let client = crate::http::client(opts, "gs", loc, true)?;
        let connections = opts.connections("gs", DEFAULT_CONNECTIONS)?;
        Ok(GcsBackend {
            client,
            base: emulator
                .unwrap_or_else(|| "https://storage.googleapis.com".to_string())
                .trim_end_matches('/')
                .to_string(),
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            creds,
            location: loc.to_string(),
            connections,
            limit: Arc::new(Semaphore::new(connections)),
        })
    }

    fn dir(&self, ty: FileType) -> String {
        match (self.prefix.is_empty(), ty) {
            (true, FileType::Config) => String::new(),
            (true, _) => format!("{}/", ty.dir()),
            (false, FileType::Config) => format!("{}/", self.prefix),
            (false, _) => format!("{}/{}/", self.prefix, ty.dir()),
        }
    }

    fn object(&self, ty: FileType, name: &str) -> Result<String> {
        check_name(ty, name)?;
        Ok(match ty {
            FileType::Pack => format!("{}{}/{name}", self.dir(ty), &name[..2]),
            _ => format!("{}{name}", self.dir(ty)),
        })
    }

    fn object_url(&self, object: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            utf8_percent_encode(&self.bucket, NAME),
            utf8_percent_encode(object, NAME)
        )
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let token = self
            .creds
            .get_credential()
            .await
            .map_err(|e| StorageError::Auth {
                location: self.location.clone(),
                detail: one_line(&e.to_string()),
            })?;
        let _permit = self.limit.acquire().await.expect("semaphore never closed");
        req.bearer_auth(&token.bearer).send().await.map_err(|e| {
            match crate::http::tls_failure(&e) {
                Some(detail) => StorageError::Tls {
                    location: self.location.clone(),
                    detail,
                },
                None => StorageError::Unreachable {
                    location: self.location.clone(),
                    detail: one_line(&error_chain(&e)),
                },
            }
        })
    }

    /// Map an error answer; reads its body for the reason.
    async fn status_error(
        &self,
        ty: FileType,
        name: &str,
        resp: reqwest::Response,
    ) -> StorageError {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let reason = one_line(&body);
        match status {
            StatusCode::NOT_FOUND if reason.to_lowercase().contains("bucket") => {
                StorageError::NoBucket(self.location.clone())
            }
            StatusCode::NOT_FOUND if ty == FileType::Config => {
                StorageError::NoRepository(self.location.clone())
            }
            StatusCode::NOT_FOUND => StorageError::NotFound {
                ty,
                name: name.to_string(),
            },
            StatusCode::PRECONDITION_FAILED => StorageError::AlreadyExists {
                ty,
                name: name.to_string(),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StorageError::Auth {
                location: self.location.clone(),
                detail: format!("{status}: {reason}"),
            },
            StatusCode::RANGE_NOT_SATISFIABLE => StorageError::PastEnd {
                ty,
                name: name.to_string(),
                offset: 0,
                length: 0,
                size: 0,
            },
            s => StorageError::Remote {
                location: self.location.clone(),
                detail: format!("{ty} {name}: {s}: {reason}"),
            },
        }
    }

    async fn upload_resumable(
        &self,
        ty: FileType,
        name: &str,
        object: &str,
        data: Bytes,
    ) -> Result<()> {
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=resumable&name={}",
            self.base,
            utf8_percent_encode(&self.bucket, NAME),
            utf8_percent_encode(object, NAME)
        );
        let resp = self
            .send(self.client.post(url).header(header::CONTENT_LENGTH, 0))
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(ty, name, resp).await);
        }
        let session = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| StorageError::Remote {
                location: self.location.clone(),
                detail: "resumable upload: no session URL in the answer".into(),
            })?
            .to_string();
        // The object appears only when the last chunk is in: a failure in between leaves
        // nothing under the name.
        let total = data.len();
        let mut start = 0;
        while start < total {
            let end = (start + CHUNK).min(total);
            let range = format!("bytes {}-{}/{}", start, end - 1, total);
            let resp = self
                .send(
                    self.client
                        .put(&session)
                        .header(header::CONTENT_RANGE, range)
                        .body(data.slice(start..end)),
                )
                .await?;
            let s = resp.status();
            let done = end == total;
            // 308 means "resume incomplete": the chunk was stored, send the next.
            if !(s.is_success() || (!done && s.as_u16() == 308)) {
                return Err(self.status_error(ty, name, resp).await);
            }
            start = end;
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for GcsBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn connections(&self) -> usize {
        self.connections
    }

    async fn create(&self) -> Result<()> {
        crate::ensure_no_config(self).await
    }

    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>> {
        let dir = self.dir(ty);
        let depth = if ty == FileType::Pack { 2 } else { 1 };
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/storage/v1/b/{}/o?prefix={}&fields=items(name,size),nextPageToken",
                self.base,
                utf8_percent_encode(&self.bucket, NAME),
                utf8_percent_encode(&dir, NAME)
            );
            if let Some(p) = &page {
                url.push_str(&format!("&pageToken={}", utf8_percent_encode(p, NAME)));
            }
            let resp = self.send(self.client.get(url)).await?;
            if !resp.status().is_success() {
                return Err(self.status_error(ty, "", resp).await);
            }
            let body = resp.bytes().await.map_err(|e| StorageError::Unreachable {
                location: self.location.clone(),
                detail: one_line(&error_chain(&e)),
            })?;
            let list: ObjectList =
                serde_json::from_slice(&body).map_err(|e| StorageError::Remote {
                    location: self.location.clone(),
                    detail: format!("listing {ty} files: invalid answer: {e}"),
                })?;
            for o in list.items {
                let Some(rel) = o.name.strip_prefix(&dir) else {
                    continue;
                };
                if rel.split('/').count() != depth {
                    continue;
                }
                let name = rel.rsplit('/').next().unwrap_or(rel).to_string();
                let size = o.size.parse().map_err(|_| StorageError::Remote {
                    location: self.location.clone(),
                    detail: format!("listing {ty} files: invalid size {:?}", o.size),
                })?;
                out.push(FileInfo { name, size });
            }
            match list.next_page_token {
                Some(t) if !t.is_empty() => page = Some(t),
                _ => return Ok(out),
            }
        }
    }

    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes> {
        let url = format!("{}?alt=media", self.object_url(&self.object(ty, name)?));
        let resp = self.send(self.client.get(url)).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(ty, name, resp).await);
        }
        let want = resp.content_length();
        let data = resp.bytes().await.map_err(|e| StorageError::Unreachable {
            location: self.location.clone(),
            detail: one_line(&error_chain(&e)),
        })?;
        if want.is_some_and(|w| w != data.len() as u64) {
            return Err(StorageError::ShortRead {
                ty,
                name: name.to_string(),
                offset: 0,
                length: want.unwrap_or(0),
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
        let url = format!("{}?alt=media", self.object_url(&self.object(ty, name)?));
        let range = format!("bytes={}-{}", offset, offset + length - 1);
        let resp = self
            .send(self.client.get(url).header(header::RANGE, range))
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.status_error(ty, name, resp).await);
        }
        let data = resp.bytes().await.map_err(|e| StorageError::Unreachable {
            location: self.location.clone(),
            detail: one_line(&error_chain(&e)),
        })?;
        let data = if status == StatusCode::OK && data.len() as u64 > length {
            data.slice(offset as usize..(offset + length) as usize)
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
        let object = self.object(ty, name)?;
        if exclusive {
            crate::ensure_absent(self, ty, name).await?;
        } else if data.len() >= crate::object::MULTIPART_THRESHOLD {
            return self.upload_resumable(ty, name, &object, data).await;
        }
        let mut url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.base,
            utf8_percent_encode(&self.bucket, NAME),
            utf8_percent_encode(&object, NAME)
        );
        if exclusive {
            // GCS refuses the upload if the object exists (generation 0 = "no object").
            url.push_str("&ifGenerationMatch=0");
        }
        let resp = self
            .send(
                self.client
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(data),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(ty, name, resp).await);
        }
        Ok(())
    }

    async fn remove(&self, ty: FileType, name: &str) -> Result<()> {
        let url = self.object_url(&self.object(ty, name)?);
        let resp = self.send(self.client.delete(url)).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(ty, name, resp).await);
        }
        Ok(())
    }

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo> {
        let url = format!("{}?fields=size", self.object_url(&self.object(ty, name)?));
        let resp = self.send(self.client.get(url)).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(ty, name, resp).await);
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            size: String,
        }
        let body = resp.bytes().await.map_err(|e| StorageError::Unreachable {
            location: self.location.clone(),
            detail: one_line(&error_chain(&e)),
        })?;
        let meta: Meta = serde_json::from_slice(&body).map_err(|e| StorageError::Remote {
            location: self.location.clone(),
            detail: format!("{ty} {name}: invalid metadata: {e}"),
        })?;
        let size = meta.size.parse().map_err(|_| StorageError::Remote {
            location: self.location.clone(),
            detail: format!("{ty} {name}: invalid size {:?}", meta.size),
        })?;
        Ok(FileInfo {
            name: name.to_string(),
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What users put in a location's Secret: the key file's content, not a path. It is
    /// used as a key, and nothing of it shows in the error when it is no good.
    #[test]
    fn credentials_given_as_content_are_a_key_and_never_echoed() {
        let secret = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDSECRETSECRET";
        let key = serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "0123",
            "private_key": format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"),
            "client_email": "arca@p.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "http://127.0.0.1:9/token",
        })
        .to_string();
        let mut opts = Options::default();
        opts.env
            .insert("GOOGLE_APPLICATION_CREDENTIALS".into(), key.clone());
        let loc = Location::parse("gs:bucket:/prefix").unwrap();
        match GcsBackend::open(&loc, &opts) {
            Ok(_) => {}
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains(secret), "the key leaked: {msg}");
                assert!(!msg.contains("PRIVATE KEY"), "the key leaked: {msg}");
                assert!(
                    !msg.to_lowercase().contains("no such file"),
                    "the content was taken for a path: {msg}"
                );
            }
        }
    }
}
