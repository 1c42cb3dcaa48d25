//! `sftp:[user@]host:path`: the repository in a directory reached through the system's `ssh`
//! (`ssh host [-p port] [-l user] [sftp.args] -s sftp`, or `-o sftp.command=…`), as restic does
//! it, so `~/.ssh/config`, agents and jump hosts work as they do for the user. The layout is
//! the local one (`data/xx/<id>`); files are written under a temporary name and renamed.

use crate::helper::{split_words, Helper};
use crate::location::Location;
use crate::options::Options;
use crate::{check_name, Backend, FileInfo, FileType, Result, StorageError};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::rawsession::Limits;
use russh_sftp::client::{Config, RawSftpSession};
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use tokio::sync::{OnceCell, Semaphore};

const DEFAULT_CONNECTIONS: usize = 5;
/// What every SFTP server must accept in one read or write (draft-ietf-secsh-filexfer-02).
const PORTABLE_CHUNK: u64 = 32 * 1024;
/// At most this much per request even where a server allows more (OpenSSH: 255 KiB).
const LARGEST_CHUNK: u64 = 255 * 1024;
/// Requests in flight for one file's transfer.
const PIPELINE: usize = 16;
const POSIX_RENAME: &str = "posix-rename@openssh.com";
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

pub struct SftpBackend {
    argv: Vec<String>,
    /// The repository directory as the server sees it.
    root: String,
    location: String,
    connections: usize,
    limit: Semaphore,
    request_timeout_secs: u64,
    session: OnceCell<Session>,
}

struct Session {
    helper: Helper,
    sftp: RawSftpSession,
    posix_rename: bool,
    read_chunk: u64,
    write_chunk: u64,
}

impl SftpBackend {
    pub fn open(loc: &Location, opts: &Options) -> Result<SftpBackend> {
        let Location::Sftp {
            user,
            host,
            port,
            path,
        } = loc
        else {
            unreachable!("SftpBackend::open is only called for sftp: locations")
        };
        let argv = match (opts.get("sftp", "command"), opts.get("sftp", "args")) {
            (Some(_), Some(_)) => {
                return Err(StorageError::InvalidOption(
                    "give sftp.command or sftp.args, not both".into(),
                ))
            }
            (Some(command), None) => split_words("sftp.command", command)?,
            (None, args) => {
                let mut argv = vec!["ssh".to_string(), host.clone()];
                if let Some(port) = port {
                    argv.extend(["-p".to_string(), port.clone()]);
                }
                if let Some(user) = user {
                    argv.extend(["-l".to_string(), user.clone()]);
                }
                if let Some(args) = args {
                    argv.extend(split_words("sftp.args", args)?);
                }
                argv.extend(["-s".to_string(), "sftp".to_string()]);
                argv
            }
        };
        let connections = opts.connections("sftp", DEFAULT_CONNECTIONS)?;
        Ok(SftpBackend {
            argv,
            root: path.clone(),
            location: loc.to_string(),
            connections,
            limit: Semaphore::new(connections),
            request_timeout_secs: opts.timeout("sftp")?.as_secs(),
            session: OnceCell::new(),
        })
    }

    async fn session(&self) -> Result<&Session> {
        self.session.get_or_try_init(|| self.start()).await
    }

    async fn start(&self) -> Result<Session> {
        let (helper, io) = Helper::start(&self.argv, &self.location)?;
        let config = Config {
            request_timeout_secs: self.request_timeout_secs,
            ..Config::default()
        };
        let mut sftp = RawSftpSession::new_with_config(io, config);
        let version = match sftp.init().await {
            Ok(v) => v,
            Err(e) => {
                let e = self.error(e, "starting the sftp session");
                return Err(helper.failure(e).await);
            }
        };
        let has = |name: &str| version.extensions.contains_key(name);
        let (mut read_chunk, mut write_chunk) = (PORTABLE_CHUNK, PORTABLE_CHUNK);
        if has(russh_sftp::extensions::LIMITS) {
            if let Ok(limits) = sftp.limits().await {
                let limits = Limits::from(limits);
                read_chunk = limits.read_len.unwrap_or(LARGEST_CHUNK).min(LARGEST_CHUNK);
                write_chunk = limits.write_len.unwrap_or(LARGEST_CHUNK).min(LARGEST_CHUNK);
                sftp.set_limits(limits);
            }
        }
        Ok(Session {
            helper,
            posix_rename: has(POSIX_RENAME),
            sftp,
            read_chunk: read_chunk.max(1024),
            write_chunk: write_chunk.max(1024),
        })
    }

    fn dir_of(&self, ty: FileType, name: &str) -> String {
        match ty {
            FileType::Config => self.root.clone(),
            FileType::Pack => self.join(&format!("data/{}", &name[..2])),
            _ => self.join(ty.dir()),
        }
    }

    fn join(&self, rel: &str) -> String {
        if self.root == "." {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.root.trim_end_matches('/'))
        }
    }

    fn path_of(&self, ty: FileType, name: &str) -> Result<String> {
        check_name(ty, name)?;
        Ok(format!("{}/{name}", self.dir_of(ty, name)))
    }

    /// A failed request as a storage error: "no such file" as not found, what the server
    /// said otherwise, a broken session as unreachable (a retry starts no new session, so
    /// [`Helper::failure`] turns it into the helper's end where the helper has ended).
    fn error(&self, e: SftpError, what: &str) -> StorageError {
        match e {
            SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => {
                StorageError::Auth {
                    location: self.location.clone(),
                    detail: format!("{what}: permission denied"),
                }
            }
            SftpError::Status(s) => StorageError::Remote {
                location: self.location.clone(),
                detail: format!(
                    "{what}: {}{}",
                    s.status_code,
                    if s.error_message.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", crate::object::one_line(&s.error_message))
                    }
                ),
            },
            e => StorageError::Unreachable {
                location: self.location.clone(),
                detail: format!("{what}: {}", crate::object::one_line(&e.to_string())),
            },
        }
    }

    async fn fail(&self, session: &Session, e: SftpError, what: &str) -> StorageError {
        session.helper.failure(self.error(e, what)).await
    }

    fn not_found(&self, ty: FileType, name: &str) -> StorageError {
        if ty == FileType::Config {
            StorageError::NoRepository(self.location.clone())
        } else {
            StorageError::NotFound {
                ty,
                name: name.to_string(),
            }
        }
    }

    /// `mkdir -p`: each missing directory of `dir`, ignoring ones that exist.
    async fn mkdir_all(&self, s: &Session, dir: &str) -> Result<()> {
        let mut prefix = String::new();
        for (i, part) in dir.split('/').enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(part);
            if part.is_empty() || part == "." || part == ".." {
                continue;
            }
            self.mkdir(s, &prefix).await?;
        }
        Ok(())
    }

    async fn mkdir(&self, s: &Session, dir: &str) -> Result<()> {
        let attrs = FileAttributes {
            permissions: Some(DIR_MODE),
            ..FileAttributes::default()
        };
        match s.sftp.mkdir(dir, attrs).await {
            Ok(_) => Ok(()),
            Err(e) => match s.sftp.stat(dir).await {
                Ok(found) if found.attrs.is_dir() => Ok(()),
                _ => Err(self.fail(s, e, &format!("creating {dir}")).await),
            },
        }
    }

    /// The regular files in `dir` with their sizes; a missing directory is empty. Temporary
    /// files of unfinished writes are left out.
    async fn list_dir(&self, s: &Session, dir: &str, dirs: bool) -> Result<Vec<FileInfo>> {
        let handle = match s.sftp.opendir(dir).await {
            Ok(h) => h.handle,
            Err(SftpError::Status(st)) if st.status_code == StatusCode::NoSuchFile => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(self.fail(s, e, &format!("listing {dir}")).await),
        };
        let mut out = Vec::new();
        let result = loop {
            match s.sftp.readdir(handle.as_str()).await {
                Ok(name) => {
                    for f in name.files {
                        let wanted = if dirs {
                            f.attrs.is_dir() && f.filename.len() == 2
                        } else {
                            f.attrs.is_regular() && !is_temporary(&f.filename)
                        };
                        if wanted && f.filename != "." && f.filename != ".." {
                            out.push(FileInfo {
                                size: f.attrs.size.unwrap_or(0),
                                name: f.filename,
                            });
                        }
                    }
                }
                Err(SftpError::Status(st)) if st.status_code == StatusCode::Eof => break Ok(()),
                Err(e) => break Err(self.fail(s, e, &format!("listing {dir}")).await),
            }
        };
        let _ = s.sftp.close(handle.as_str()).await;
        result.map(|()| out)
    }

    /// `length` bytes at `offset` of the open file, read in chunks, several in flight; a
    /// file that ends first gives what there is.
    async fn read_at(
        &self,
        s: &Session,
        handle: &str,
        offset: u64,
        length: u64,
        what: &str,
    ) -> Result<Bytes> {
        let chunk = s.read_chunk;
        let starts = (0..length.div_ceil(chunk)).map(|i| offset + i * chunk);
        let pieces: Vec<Vec<u8>> = futures::stream::iter(starts)
            .map(|start| {
                let want = chunk.min(offset + length - start);
                self.read_piece(s, handle, start, want, what)
            })
            .buffered(PIPELINE)
            .try_collect()
            .await?;
        let mut out = BytesMut::with_capacity(length as usize);
        for piece in pieces {
            let short = (piece.len() as u64) < chunk;
            out.extend_from_slice(&piece);
            if short {
                break;
            }
        }
        out.truncate(length as usize);
        Ok(out.freeze())
    }

    /// One chunk; a server may answer a read with less than asked, so ask again for the rest
    /// until the chunk is whole or the file ends.
    async fn read_piece(
        &self,
        s: &Session,
        handle: &str,
        start: u64,
        want: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        let mut piece = Vec::with_capacity(want as usize);
        while (piece.len() as u64) < want {
            let at = start + piece.len() as u64;
            let ask = (want - piece.len() as u64) as u32;
            match s.sftp.read(handle, at, ask).await {
                Ok(data) if data.data.is_empty() => break,
                Ok(data) => {
                    piece.extend_from_slice(&data.data[..data.data.len().min(ask as usize)])
                }
                Err(SftpError::Status(st)) if st.status_code == StatusCode::Eof => break,
                Err(e) => return Err(self.fail(s, e, what).await),
            }
        }
        Ok(piece)
    }

    async fn open_read(&self, s: &Session, ty: FileType, name: &str) -> Result<String> {
        let path = self.path_of(ty, name)?;
        match s
            .sftp
            .open(path.as_str(), OpenFlags::READ, FileAttributes::default())
            .await
        {
            Ok(h) => Ok(h.handle),
            Err(SftpError::Status(st)) if st.status_code == StatusCode::NoSuchFile => {
                Err(self.not_found(ty, name))
            }
            Err(e) => Err(self.fail(s, e, &format!("opening {ty} {name}")).await),
        }
    }

    /// Write `data` to a new file `tmp` (creating its directory if needed), all of it or
    /// nothing: a failed write removes what it started.
    async fn write_new(&self, s: &Session, dir: &str, tmp: &str, data: &Bytes) -> Result<()> {
        let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE;
        let attrs = FileAttributes {
            permissions: Some(FILE_MODE),
            ..FileAttributes::default()
        };
        let handle = match s.sftp.open(tmp, flags, attrs.clone()).await {
            Ok(h) => h.handle,
            Err(SftpError::Status(st)) if st.status_code == StatusCode::NoSuchFile => {
                self.mkdir_all(s, dir).await?;
                match s.sftp.open(tmp, flags, attrs).await {
                    Ok(h) => h.handle,
                    Err(e) => return Err(self.fail(s, e, &format!("creating {tmp}")).await),
                }
            }
            Err(e) => return Err(self.fail(s, e, &format!("creating {tmp}")).await),
        };
        let chunk = s.write_chunk as usize;
        let written: Result<()> = futures::stream::iter((0..data.len()).step_by(chunk.max(1)))
            .map(|at| {
                let piece = data.slice(at..(at + chunk).min(data.len()));
                let handle = handle.as_str();
                async move {
                    match s.sftp.write(handle, at as u64, piece.to_vec()).await {
                        Ok(_) => Ok(()),
                        Err(e) => Err(self.fail(s, e, &format!("writing {tmp}")).await),
                    }
                }
            })
            .buffer_unordered(PIPELINE)
            .try_collect()
            .await;
        let closed = s.sftp.close(handle.as_str()).await;
        let result = match (written, closed) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(self.fail(s, e, &format!("closing {tmp}")).await),
            (Ok(()), Ok(_)) => Ok(()),
        };
        if result.is_err() {
            let _ = s.sftp.remove(tmp).await;
        }
        result
    }

    /// OpenSSH's rename that replaces the target (plain SFTP rename refuses an existing one).
    async fn replace(&self, s: &Session, from: &str, to: &str) -> Result<(), SftpError> {
        let mut data = Vec::with_capacity(8 + from.len() + to.len());
        for p in [from, to] {
            data.extend_from_slice(&(p.len() as u32).to_be_bytes());
            data.extend_from_slice(p.as_bytes());
        }
        match s.sftp.extended(POSIX_RENAME, data).await? {
            Packet::Status(st) if st.status_code == StatusCode::Ok => Ok(()),
            Packet::Status(st) => Err(SftpError::Status(st)),
            _ => Err(SftpError::UnexpectedPacket),
        }
    }
}

/// Names of unfinished writes, arca's and restic's.
fn is_temporary(name: &str) -> bool {
    name.contains("-tmp-") || name.contains("-restic-temp-")
}

#[async_trait]
impl Backend for SftpBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn connections(&self) -> usize {
        self.connections
    }

    async fn create(&self) -> Result<()> {
        let s = self.session().await?;
        let config = self.path_of(FileType::Config, "config")?;
        if s.sftp.lstat(config.as_str()).await.is_ok() {
            return Err(StorageError::RepositoryExists(self.location.clone()));
        }
        self.mkdir_all(s, &self.root).await?;
        for ty in [
            FileType::Key,
            FileType::Snapshot,
            FileType::Index,
            FileType::Lock,
            FileType::Pack,
        ] {
            self.mkdir(s, &self.join(ty.dir())).await?;
        }
        let subdirs = (0..=255u8).map(|i| self.join(&format!("data/{i:02x}")));
        futures::stream::iter(subdirs)
            .map(|d| async move { self.mkdir(s, &d).await })
            .buffer_unordered(PIPELINE)
            .try_collect::<()>()
            .await
    }

    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>> {
        let _permit = self.limit.acquire().await.expect("never closed");
        let s = self.session().await?;
        match ty {
            FileType::Config => match self.stat(ty, "config").await {
                Ok(info) => Ok(vec![info]),
                Err(StorageError::NoRepository(_)) => Ok(Vec::new()),
                Err(e) => Err(e),
            },
            FileType::Pack => {
                let data = self.join("data");
                let mut out = Vec::new();
                for sub in self.list_dir(s, &data, true).await? {
                    let dir = format!("{data}/{}", sub.name);
                    out.extend(self.list_dir(s, &dir, false).await?);
                }
                Ok(out)
            }
            _ => self.list_dir(s, &self.join(ty.dir()), false).await,
        }
    }

    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes> {
        let _permit = self.limit.acquire().await.expect("never closed");
        let s = self.session().await?;
        let handle = self.open_read(s, ty, name).await?;
        let what = format!("reading {ty} {name}");
        let result = match s.sftp.fstat(handle.as_str()).await {
            Ok(attrs) => {
                let size = attrs.attrs.size.unwrap_or(0);
                match self.read_at(s, &handle, 0, size, &what).await {
                    Ok(data) if data.len() as u64 == size => Ok(data),
                    Ok(data) => Err(StorageError::ShortRead {
                        ty,
                        name: name.to_string(),
                        offset: 0,
                        length: size,
                        size: data.len() as u64,
                    }),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(self.fail(s, e, &what).await),
        };
        let _ = s.sftp.close(handle.as_str()).await;
        result
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
        let _permit = self.limit.acquire().await.expect("never closed");
        let s = self.session().await?;
        let handle = self.open_read(s, ty, name).await?;
        let what = format!("reading {ty} {name}");
        let result = self.read_at(s, &handle, offset, length, &what).await;
        let _ = s.sftp.close(handle.as_str()).await;
        let data = result?;
        if (data.len() as u64) < length {
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
        let _permit = self.limit.acquire().await.expect("never closed");
        let s = self.session().await?;
        let path = self.path_of(ty, name)?;
        let dir = self.dir_of(ty, name);
        let tmp = format!("{path}-tmp-{:016x}", rand::random::<u64>());
        self.write_new(s, &dir, &tmp, &data).await?;
        let renamed = if exclusive {
            // Plain SFTP rename refuses to replace a file, so of two writers one wins.
            match s.sftp.rename(tmp.as_str(), path.as_str()).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let exists = s.sftp.lstat(path.as_str()).await.is_ok();
                    let _ = s.sftp.remove(tmp.as_str()).await;
                    return Err(if exists {
                        StorageError::AlreadyExists {
                            ty,
                            name: name.to_string(),
                        }
                    } else {
                        self.fail(s, e, &format!("renaming {tmp}")).await
                    });
                }
            }
        } else if s.posix_rename {
            self.replace(s, &tmp, &path).await
        } else {
            // Without the extension: make room, then rename.
            let _ = s.sftp.remove(path.as_str()).await;
            s.sftp.rename(tmp.as_str(), path.as_str()).await.map(|_| ())
        };
        match renamed {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = s.sftp.remove(tmp.as_str()).await;
                Err(self.fail(s, e, &format!("renaming {tmp}")).await)
            }
        }
    }

    async fn remove(&self, ty: FileType, name: &str) -> Result<()> {
        let _permit = self.limit.acquire().await.expect("never closed");
        let s = self.session().await?;
        let path = self.path_of(ty, name)?;
        match s.sftp.remove(path.as_str()).await {
            Ok(_) => Ok(()),
            Err(SftpError::Status(st)) if st.status_code == StatusCode::NoSuchFile => {
                Err(StorageError::NotFound {
                    ty,
                    name: name.to_string(),
                })
            }
            Err(e) => Err(self.fail(s, e, &format!("removing {ty} {name}")).await),
        }
    }

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo> {
        let s = self.session().await?;
        let path = self.path_of(ty, name)?;
        match s.sftp.lstat(path.as_str()).await {
            Ok(attrs) => Ok(FileInfo {
                name: name.to_string(),
                size: attrs.attrs.size.unwrap_or(0),
            }),
            Err(SftpError::Status(st)) if st.status_code == StatusCode::NoSuchFile => {
                Err(self.not_found(ty, name))
            }
            Err(e) => Err(self.fail(s, e, &format!("looking up {ty} {name}")).await),
        }
    }
}
