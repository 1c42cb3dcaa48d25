//! The local-filesystem backend, with restic's semantics: temp file, fsync, rename,
//! directory fsync, read-only files, packs under `data/<first two hex>/`.

use crate::{check_name, Backend, FileInfo, FileType, Result, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct LocalBackend {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Names reach the file system as path components: allow only what the layout uses.
impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir_of(&self, ty: FileType, name: &str) -> PathBuf {
        match ty {
            FileType::Config => self.root.clone(),
            FileType::Pack => self.root.join("data").join(&name[..2]),
            _ => self.root.join(ty.dir()),
        }
    }

    fn path_of(&self, ty: FileType, name: &str) -> Result<PathBuf> {
        check_name(ty, name)?;
        Ok(self.dir_of(ty, name).join(name))
    }

    fn not_found(&self, ty: FileType, name: &str, e: std::io::Error, path: &Path) -> StorageError {
        if e.kind() == std::io::ErrorKind::NotFound {
            if !self.root.join("config").exists() && ty == FileType::Config {
                return StorageError::NoRepository(self.location());
            }
            StorageError::NotFound {
                ty,
                name: name.to_string(),
            }
        } else {
            io_err(path)(e)
        }
    }

    fn create_sync(&self) -> Result<()> {
        let config = self.root.join("config");
        if config.exists() {
            return Err(StorageError::RepositoryExists(self.location()));
        }
        let mut dirs = vec![self.root.clone()];
        for ty in [
            FileType::Key,
            FileType::Snapshot,
            FileType::Index,
            FileType::Lock,
            FileType::Pack,
        ] {
            dirs.push(self.root.join(ty.dir()));
        }
        for i in 0..=255u8 {
            dirs.push(self.root.join("data").join(format!("{i:02x}")));
        }
        for d in dirs {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(io_err(&d))?;
        }
        Ok(())
    }

    fn list_sync(&self, ty: FileType) -> Result<Vec<FileInfo>> {
        let mut out = Vec::new();
        match ty {
            FileType::Config => {
                let p = self.root.join("config");
                if let Ok(md) = fs::metadata(&p) {
                    out.push(FileInfo {
                        name: "config".into(),
                        size: md.len(),
                    });
                }
            }
            FileType::Pack => {
                let data = self.root.join("data");
                for sub in read_dir_or_empty(&data)? {
                    if sub.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        list_files(&sub.path(), &mut out)?;
                    }
                }
            }
            _ => list_files(&self.root.join(ty.dir()), &mut out)?,
        }
        Ok(out)
    }

    fn write_sync(&self, ty: FileType, name: &str, data: &[u8], exclusive: bool) -> Result<()> {
        let path = self.path_of(ty, name)?;
        let dir = self.dir_of(ty, name);
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_err(&dir))?;
        }
        let suffix: u64 = rand::random();
        let tmp = dir.join(format!("{name}-tmp-{suffix:016x}"));
        let result = (|| {
            let f = crate::direct::create_and_write(&tmp, data).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            drop(f);
            if exclusive {
                // A hard link fails if the name exists, so two writers cannot both win.
                match fs::hard_link(&tmp, &path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(StorageError::AlreadyExists {
                            ty,
                            name: name.to_string(),
                        })
                    }
                    Err(e) => return Err(io_err(&path)(e)),
                }
                fs::remove_file(&tmp).map_err(io_err(&tmp))?;
            } else {
                fs::rename(&tmp, &path).map_err(io_err(&path))?;
            }
            fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(&dir))?;
            // Stored files are immutable: make them read-only, as restic does.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).map_err(io_err(&path))?;
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn read_dir_or_empty(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.collect::<std::io::Result<Vec<_>>>().map_err(io_err(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

fn list_files(dir: &Path, out: &mut Vec<FileInfo>) -> Result<()> {
    for e in read_dir_or_empty(dir)? {
        let md = match e.metadata() {
            Ok(md) => md,
            // Removed between readdir and stat: not there any more.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(io_err(&e.path())(err)),
        };
        if md.is_file() {
            if let Some(name) = e.file_name().to_str() {
                out.push(FileInfo {
                    name: name.to_string(),
                    size: md.len(),
                });
            }
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn clone(b: &LocalBackend) -> LocalBackend {
    LocalBackend {
        root: b.root.clone(),
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    /// Writes land in the page cache; a second concurrent one bought no speed in
    /// measurements, only another pack held in memory.
    fn connections(&self) -> usize {
        1
    }

    fn is_remote(&self) -> bool {
        false
    }

    async fn create(&self) -> Result<()> {
        let me = clone(self);
        blocking(move || me.create_sync()).await
    }

    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>> {
        let me = clone(self);
        blocking(move || me.list_sync(ty)).await
    }

    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes> {
        let path = self.path_of(ty, name)?;
        let me = clone(self);
        let name = name.to_string();
        blocking(move || match fs::read(&path) {
            Ok(v) => Ok(Bytes::from(v)),
            Err(e) => Err(me.not_found(ty, &name, e, &path)),
        })
        .await
    }

    async fn read_range(
        &self,
        ty: FileType,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes> {
        let path = self.path_of(ty, name)?;
        let me = clone(self);
        let name = name.to_string();
        blocking(move || {
            let f = fs::File::open(&path).map_err(|e| me.not_found(ty, &name, e, &path))?;
            let size = f.metadata().map_err(io_err(&path))?.len();
            if offset.checked_add(length).is_none_or(|end| end > size) {
                return Err(StorageError::PastEnd {
                    ty,
                    name,
                    offset,
                    length,
                    size,
                });
            }
            // Into a recycled buffer, filled without zeroing it first.
            let buf = crate::direct::read_range(&f, &path, offset, length as usize)
                .map_err(io_err(&path))?;
            if buf.len() as u64 != length {
                // The file shrank between the size check and the read.
                return Err(StorageError::PastEnd {
                    ty,
                    name,
                    offset,
                    length,
                    size: offset + buf.len() as u64,
                });
            }
            Ok(buf)
        })
        .await
    }

    async fn write(&self, ty: FileType, name: &str, data: Bytes, exclusive: bool) -> Result<()> {
        let me = clone(self);
        let name = name.to_string();
        blocking(move || me.write_sync(ty, &name, &data, exclusive)).await
    }

    async fn remove(&self, ty: FileType, name: &str) -> Result<()> {
        let path = self.path_of(ty, name)?;
        let me = clone(self);
        let name = name.to_string();
        blocking(move || fs::remove_file(&path).map_err(|e| me.not_found(ty, &name, e, &path)))
            .await
    }

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo> {
        let path = self.path_of(ty, name)?;
        let me = clone(self);
        let name = name.to_string();
        blocking(move || match fs::metadata(&path) {
            Ok(md) => Ok(FileInfo {
                name,
                size: md.len(),
            }),
            Err(e) => Err(me.not_found(ty, &name, e, &path)),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    #[tokio::test]
    async fn layout_write_read_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create().await.unwrap();
        assert!(dir.path().join("repo/data/ff").is_dir());
        assert!(dir.path().join("repo/keys").is_dir());

        let pack = name('a');
        b.write(
            FileType::Pack,
            &pack,
            Bytes::from_static(b"0123456789"),
            false,
        )
        .await
        .unwrap();
        let on_disk = dir.path().join("repo/data/aa").join(&pack);
        assert_eq!(fs::read(&on_disk).unwrap(), b"0123456789");
        assert_eq!(
            fs::metadata(&on_disk).unwrap().permissions().mode() & 0o777,
            0o400
        );
        assert_eq!(
            b.list(FileType::Pack).await.unwrap(),
            vec![FileInfo {
                name: pack.clone(),
                size: 10
            }]
        );
        assert_eq!(
            &b.read_range(FileType::Pack, &pack, 2, 3).await.unwrap()[..],
            b"234"
        );
        // A range past the end is the file's shape, not a passing fault: not retried.
        match b.read_range(FileType::Pack, &pack, 8, 3).await {
            Err(e @ StorageError::PastEnd { .. }) => assert!(!e.is_transient(), "{e}"),
            other => panic!("range past the end: {:?}", other.map(|d| d.len())),
        }
        assert_eq!(b.stat(FileType::Pack, &pack).await.unwrap().size, 10);

        b.write(FileType::Config, "config", Bytes::from_static(b"c"), true)
            .await
            .unwrap();
        assert!(matches!(
            b.write(FileType::Config, "config", Bytes::from_static(b"d"), true)
                .await,
            Err(StorageError::AlreadyExists { .. })
        ));
        assert_eq!(&b.read(FileType::Config, "config").await.unwrap()[..], b"c");
        assert!(matches!(
            b.create().await,
            Err(StorageError::RepositoryExists(_))
        ));

        b.remove(FileType::Pack, &pack).await.unwrap();
        assert!(b
            .read(FileType::Pack, &pack)
            .await
            .unwrap_err()
            .is_not_found());
        assert!(b.list(FileType::Pack).await.unwrap().is_empty());
        // No temp files are left behind.
        assert_eq!(
            fs::read_dir(dir.path().join("repo/data/aa"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn missing_repository_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("nope"));
        assert!(matches!(
            b.read(FileType::Config, "config").await,
            Err(StorageError::NoRepository(_))
        ));
        assert!(b.list(FileType::Snapshot).await.unwrap().is_empty());
        assert!(matches!(
            b.read(FileType::Key, "../../etc/passwd").await,
            Err(StorageError::InvalidName(_))
        ));
    }
}
