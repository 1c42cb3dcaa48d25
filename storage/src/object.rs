//! S3 and Azure Blob through Apache Arrow's `object_store`: one client with request
//! signing, credential discovery, retries and multipart uploads. (GCS goes through its
//! JSON API in `gcs.rs`, reusing object_store's credential providers.)
//!
//! Objects use restic's default layout under the prefix: `config`, `keys/<id>`,
//! `snapshots/<id>`, `index/<id>`, `locks/<id>`, `data/<first two hex digits>/<id>`.

use crate::location::Location;
use crate::options::Options;
use crate::{Backend, FileInfo, FileType, Result, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig, WriteMultipart,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Objects at least this large are uploaded in parts (packs are 16 MiB by default;
/// `--pack-size` allows up to 128 MiB).
pub const MULTIPART_THRESHOLD: usize = 32 << 20;
const PART_SIZE: usize = 16 << 20;

pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    location: String,
    kind: &'static str,
    connections: usize,
    limit: Arc<Semaphore>,
    attributes: Attributes,
}

/// Defaults that suit a 2-core laptop and a 64-core server alike: uploads are
/// network-bound, and each holds one pack in memory.
const DEFAULT_CONNECTIONS: usize = 5;

/// object_store's options: only whether plain HTTP is allowed, which it checks itself; the
/// client (timeouts, TLS) is [`crate::http`]'s, handed over by its connector.
fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new().with_allow_http(allow_http)
}

/// object_store's own retries (5xx, 429, connection errors, with jittered exponential
/// backoff) stay short: the repository-level retry layer above decides when to give up.
fn retry_config() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    }
}

impl ObjectBackend {
    pub fn open(loc: &Location, opts: &Options) -> Result<ObjectBackend> {
        let scheme = loc.scheme();
        let build_err = |e: object_store::Error| StorageError::InvalidLocation {
            location: loc.to_string(),
            reason: one_line(&e.to_string()),
        };
        let mut attributes = Attributes::new();
        let (store, prefix): (Arc<dyn ObjectStore>, &str) = match loc {
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                use object_store::aws::AmazonS3Builder;
                // Credentials, profile, IMDS and web identity (IRSA) come from the
                // environment, as for the AWS CLI and restic.
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry_config())
                    .with_client_options(client_options(endpoint.starts_with("http://")))
                    .with_http_connector(crate::http::Connector::new(
                        opts,
                        scheme,
                        loc,
                        endpoint.starts_with("http://"),
                    )?);
                let host = endpoint
                    .split_once("://")
                    .map_or(endpoint.as_str(), |(_, h)| h);
                let aws_region = host
                    .strip_prefix("s3.")
                    .and_then(|h| h.strip_suffix(".amazonaws.com"))
                    .filter(|r| !r.is_empty());
                let is_aws = host == "s3.amazonaws.com" || aws_region.is_some();
                let region = opts
                    .get(scheme, "region")
                    .map(str::to_string)
                    .or_else(|| aws_region.map(str::to_string))
                    .or_else(|| opts.env_var("AWS_REGION"))
                    .or_else(|| opts.env_var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|| "us-east-1".to_string());
                b = b.with_region(&region);
                if let Some(v) = opts.env_var("AWS_ACCESS_KEY_ID") {
                    b = b.with_access_key_id(v);
                }
                if let Some(v) = opts.env_var("AWS_SECRET_ACCESS_KEY") {
                    b = b.with_secret_access_key(v);
                }
                if let Some(v) = opts.env_var("AWS_SESSION_TOKEN") {
                    b = b.with_token(v);
                }
                // AWS: virtual-hosted addressing; other S3 servers: path-style unless
                // `-o s3.bucket-lookup=dns` (restic's option) says otherwise.
                let lookup = opts.get(scheme, "bucket-lookup").unwrap_or("auto");
                let virtual_hosted = match lookup {
                    "auto" => is_aws,
                    "dns" => true,
                    "path" => false,
                    other => {
                        return Err(StorageError::InvalidOption(format!(
                            "s3.bucket-lookup={other:?}: use auto, dns or path"
                        )))
                    }
                };
                if !is_aws {
                    let endpoint = if virtual_hosted {
                        let (scheme, host) =
                            endpoint.split_once("://").unwrap_or(("https", endpoint));
                        format!("{scheme}://{bucket}.{host}")
                    } else {
                        endpoint.clone()
                    };
                    b = b.with_endpoint(endpoint);
                }
                b = b.with_virtual_hosted_style_request(virtual_hosted);
                if let Some(class) = opts.get(scheme, "storage-class") {
                    attributes.insert(Attribute::StorageClass, class.to_string().into());
                }
                (Arc::new(b.build().map_err(build_err)?), prefix)
            }
            Location::Azure { container, prefix } => {
                use object_store::azure::MicrosoftAzureBuilder;
                // Workload identity and managed identity come from the environment too.
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .with_retry(retry_config());
                let account =
                    opts.env_var("AZURE_ACCOUNT_NAME")
                        .ok_or_else(|| StorageError::Auth {
                            location: loc.to_string(),
                            detail: "AZURE_ACCOUNT_NAME is not set".into(),
                        })?;
                b = b.with_account(&account);
                if let Some(key) = opts.env_var("AZURE_ACCOUNT_KEY") {
                    b = b.with_access_key(key);
                } else if let Some(sas) = opts.env_var("AZURE_ACCOUNT_SAS") {
                    let sas = sas.trim_start_matches('?').to_string();
                    b = b.with_config(object_store::azure::AzureConfigKey::SasKey, sas);
                }
                let endpoint = opts
                    .get(scheme, "endpoint-url")
                    .map(str::to_string)
                    .or_else(|| opts.env_var("AZURE_ENDPOINT_URL"))
                    .or_else(|| {
                        opts.env_var("AZURE_ENDPOINT_SUFFIX")
                            .map(|suffix| format!("https://{account}.blob.{suffix}"))
                    });
                let allow_http = endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://"));
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e.trim_end_matches('/').to_string());
                }
                b = b
                    .with_client_options(client_options(allow_http))
                    .with_http_connector(crate::http::Connector::new(
                        opts, scheme, loc, allow_http,
                    )?);
                (Arc::new(b.build().map_err(build_err)?), prefix)
            }
            Location::Local(_)
            | Location::Rest { .. }
            | Location::Gcs { .. }
            | Location::Sftp { .. }
            | Location::Rclone { .. } => {
                unreachable!("ObjectBackend::open is only called for S3 and Azure")
            }
        };
        let connections = opts.connections(scheme, DEFAULT_CONNECTIONS)?;
        Ok(ObjectBackend {
            store,
            prefix: prefix.to_string(),
            location: loc.to_string(),
            kind: scheme,
            connections,
            limit: Arc::new(Semaphore::new(connections)),
            attributes,
        })
    }

    fn dir(&self, ty: FileType) -> String {
        match (self.prefix.is_empty(), ty) {
            (true, FileType::Config) => String::new(),
            (true, _) => ty.dir().to_string(),
            (false, FileType::Config) => self.prefix.clone(),
            (false, _) => format!("{}/{}", self.prefix, ty.dir()),
        }
    }

    fn path(&self, ty: FileType, name: &str) -> Result<ObjPath> {
        crate::check_name(ty, name)?;
        let dir = self.dir(ty);
        let rel = match ty {
            FileType::Pack => format!("{}/{name}", &name[..2]),
            _ => name.to_string(),
        };
        let full = if dir.is_empty() {
            rel
        } else {
            format!("{dir}/{rel}")
        };
        ObjPath::parse(&full).map_err(|_| StorageError::InvalidName(name.to_string()))
    }

    /// Turn a client error into one line that says what went wrong.
    fn error(&self, ty: FileType, name: &str, e: object_store::Error) -> StorageError {
        match classify(&self.location, ty, name, e) {
            StorageError::NotFound {
                ty: FileType::Config,
                ..
            } => StorageError::NoRepository(self.location.clone()),
            other => other,
        }
    }

    async fn permit(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.limit
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed")
    }
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn classify(location: &str, ty: FileType, name: &str, e: object_store::Error) -> StorageError {
    use object_store::Error as E;
    if let Some(detail) = crate::http::tls_failure(&e) {
        return StorageError::Tls {
            location: location.to_string(),
            detail,
        };
    }
    let detail = one_line(&e.to_string());
    let lower = detail.to_lowercase();
    if lower.contains("nosuchbucket")
        || lower.contains("containernotfound")
        || lower.contains("bucket does not exist")
        || lower.contains("the specified bucket does not exist")
        || lower.contains("the specified container does not exist")
    {
        return StorageError::NoBucket(location.to_string());
    }
    match e {
        E::NotFound { .. } => StorageError::NotFound {
            ty,
            name: name.to_string(),
        },
        E::AlreadyExists { .. } | E::Precondition { .. } => StorageError::AlreadyExists {
            ty,
            name: name.to_string(),
        },
        E::Unauthenticated { .. } | E::PermissionDenied { .. } => StorageError::Auth {
            location: location.to_string(),
            detail,
        },
        _ if lower.contains("signaturedoesnotmatch")
            || lower.contains("invalidaccesskeyid")
            || lower.contains("authenticationfailed")
            || lower.contains("accessdenied")
            || lower.contains("403 forbidden") =>
        {
            StorageError::Auth {
                location: location.to_string(),
                detail,
            }
        }
        _ if lower.contains("error sending request")
            || lower.contains("connection refused")
            || lower.contains("dns error")
            || lower.contains("timed out")
            || lower.contains("connect error")
            || lower.contains("connection reset") =>
        {
            StorageError::Unreachable {
                location: location.to_string(),
                detail,
            }
        }
        _ => StorageError::Remote {
            location: location.to_string(),
            detail,
        },
    }
}

#[async_trait]
impl Backend for ObjectBackend {
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
        let _permit = self.permit().await;
        let dir = self.dir(ty);
        let prefix = ObjPath::parse(&dir).map_err(|_| StorageError::InvalidName(dir.clone()))?;
        let depth = if ty == FileType::Pack { 2 } else { 1 };
        let base = prefix.parts().count();
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.error(ty, &dir, e))?;
        Ok(metas
            .into_iter()
            .filter(|m| m.location.parts().count() == base + depth)
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                Some(FileInfo { name, size: m.size })
            })
            .collect())
    }

    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes> {
        let path = self.path(ty, name)?;
        let _permit = self.permit().await;
        let got = self
            .store
            .get(&path)
            .await
            .map_err(|e| self.error(ty, name, e))?;
        let size = got.meta.size;
        let data = got.bytes().await.map_err(|e| self.error(ty, name, e))?;
        if data.len() as u64 != size {
            return Err(StorageError::ShortRead {
                ty,
                name: name.to_string(),
                offset: 0,
                length: size,
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
        let path = self.path(ty, name)?;
        let end = offset
            .checked_add(length)
            .ok_or_else(|| StorageError::InvalidName(name.into()))?;
        if length == 0 {
            return Ok(Bytes::new());
        }
        let _permit = self.permit().await;
        let data = self
            .store
            .get_range(&path, offset..end)
            .await
            .map_err(|e| match self.error(ty, name, e) {
                // A range past the end: report it as a short read, like the local backend.
                StorageError::Remote { detail, .. } if detail.to_lowercase().contains("range") => {
                    StorageError::PastEnd {
                        ty,
                        name: name.to_string(),
                        offset,
                        length,
                        size: 0,
                    }
                }
                other => other,
            })?;
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
        let path = self.path(ty, name)?;
        if exclusive {
            // Conditional create where the store honours it; the existence check first
            // also covers stores and emulators that ignore the condition. (Before taking
            // a connection slot: the check needs one of its own.)
            crate::ensure_absent(self, ty, name).await?;
        }
        let _permit = self.permit().await;
        if data.len() >= MULTIPART_THRESHOLD && !exclusive {
            // Parts are uploaded as they are cut; the object appears only when the
            // upload completes, so a failure leaves nothing under the name.
            let upload = self
                .store
                .put_multipart_opts(
                    &path,
                    object_store::PutMultipartOptions {
                        attributes: self.attributes.clone(),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| self.error(ty, name, e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            w.put(data);
            w.finish().await.map_err(|e| self.error(ty, name, e))?;
            return Ok(());
        }
        let opts = PutOptions {
            mode: if exclusive {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            attributes: self.attributes.clone(),
            ..Default::default()
        };
        self.store
            .put_opts(&path, PutPayload::from_bytes(data), opts)
            .await
            .map_err(|e| self.error(ty, name, e))?;
        Ok(())
    }

    async fn remove(&self, ty: FileType, name: &str) -> Result<()> {
        let path = self.path(ty, name)?;
        let _permit = self.permit().await;
        self.store
            .delete(&path)
            .await
            .map_err(|e| self.error(ty, name, e))
    }

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo> {
        let path = self.path(ty, name)?;
        let _permit = self.permit().await;
        let m = self
            .store
            .head(&path)
            .await
            .map_err(|e| self.error(ty, name, e))?;
        Ok(FileInfo {
            name: name.to_string(),
            size: m.size,
        })
    }
}

impl std::fmt::Debug for ObjectBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectBackend({} {})", self.kind, self.location)
    }
}
