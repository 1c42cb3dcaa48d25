//! The targets of a backup as the snapshot records them: restic keeps every component of
//! each target path (`/home/u/docs` is stored under `home/u/docs`), names two targets with the
//! same first component from different folders `x` and `x-1`, and cleans paths as Go's
//! `filepath.Clean` does.

use crate::error::{Error, Result, TargetError};
use crate::sys::entry_names;
use rustix::fs::OFlags;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The shape of the snapshot's top levels: restic keeps every component of each
/// target path, so `/home/u/docs` is stored under `home/u/docs`, with the
/// intermediate directories' metadata taken from the file system.
#[derive(Default)]
pub(super) struct TargetTree {
    pub(super) nodes: BTreeMap<Vec<u8>, TargetTree>,
    /// Set for a leaf: the file or directory to save here.
    pub(super) path: Option<PathBuf>,
    /// For an intermediate directory: where to read its metadata.
    pub(super) info_path: Option<PathBuf>,
    /// Backing up one folder's contents: that folder's handle, in which its entries (the
    /// leaves) are looked at.
    pub(super) folder: Option<OwnedFd>,
}

pub(super) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            // Like Go's filepath.Clean: `..` removes a name, stays at the root, and
            // accumulates at the start of a relative path (`../..` is not `.`).
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Path components as restic counts them: relative paths are rooted at `/`, so
/// `../x` has the single component `x`.
fn components(p: &Path) -> Vec<Vec<u8>> {
    let rooted = clean(&Path::new("/").join(p));
    rooted
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        })
        .collect()
}

/// The directory that holds a target's first component.
fn root_dir(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return PathBuf::from("/");
    }
    let mut rel = PathBuf::from(".");
    for c in clean(p).components() {
        if c == Component::ParentDir {
            rel.push("..");
        }
    }
    rel
}

impl TargetTree {
    pub(super) fn build(targets: &[PathBuf]) -> Result<TargetTree> {
        let mut t = TargetTree::default();
        let mut roots: BTreeMap<Vec<u8>, PathBuf> = BTreeMap::new();
        for target in targets {
            let target = clean(target);
            let pc = components(&target);
            if pc.is_empty() {
                return Err(TargetError::NoComponents(target).into());
            }
            let root = root_dir(&target);
            // Same first name from a different root directory: restic appends -1, -2, ...
            let mut name = pc[0].clone();
            let mut i = 0;
            while let Some(r) = roots.get(&name) {
                if *r == root {
                    break;
                }
                i += 1;
                name = [pc[0].clone(), format!("-{i}").into_bytes()].concat();
            }
            roots.insert(name.clone(), root.clone());
            let node = t.nodes.entry(name).or_default();
            if pc.len() == 1 {
                node.path = Some(target.clone());
            } else {
                let sub = root.join(OsStr::from_bytes(&pc[0]));
                node.info_path = Some(sub.clone());
                node.add(&target, sub, &pc[1..])?;
            }
        }
        t.unroll()?;
        Ok(t)
    }

    /// The entries of one directory, each a top-level target.
    pub(super) fn contents(paths: &[PathBuf]) -> Result<TargetTree> {
        let [dir] = paths else {
            return Err(TargetError::ContentsOfOne(paths.len()).into());
        };
        let dir = absolute(dir);
        // The folder itself is the caller's to choose (it may be reached through links).
        let folder = rustix::fs::open(
            &dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::io(&dir)(e.into()))?;
        let mut t = TargetTree::default();
        for name in entry_names(&folder).map_err(Error::io(&dir))? {
            t.nodes.insert(
                name.as_bytes().to_vec(),
                TargetTree {
                    path: Some(dir.join(&name)),
                    ..TargetTree::default()
                },
            );
        }
        t.folder = Some(folder);
        Ok(t)
    }

    fn add(&mut self, target: &Path, root: PathBuf, pc: &[Vec<u8>]) -> Result<()> {
        let node = self.nodes.entry(pc[0].clone()).or_default();
        if pc.len() == 1 {
            if node.path.is_some() {
                return Err(TargetError::Twice(target.to_path_buf()).into());
            }
            node.path = Some(target.to_path_buf());
            return Ok(());
        }
        let sub = root.join(OsStr::from_bytes(&pc[0]));
        node.info_path = Some(sub.clone());
        node.add(target, sub, &pc[1..])
    }

    /// A leaf that also has children (one target inside another): expand the leaf
    /// into its directory entries so only leaves carry paths.
    fn unroll(&mut self) -> Result<()> {
        if let (Some(p), false) = (&self.path, self.nodes.is_empty()) {
            let p = p.clone();
            let rd = std::fs::read_dir(&p).map_err(Error::io(&p))?;
            for e in rd {
                let e = e.map_err(Error::io(&p))?;
                let name = e.file_name().as_bytes().to_vec();
                let child = p.join(e.file_name());
                let n = self.nodes.entry(name).or_default();
                match &n.path {
                    None => n.path = Some(child),
                    Some(existing) if *existing == child => {}
                    Some(existing) => {
                        return Err(TargetError::Collision(existing.clone()).into());
                    }
                }
            }
            self.path = None;
        }
        for n in self.nodes.values_mut() {
            n.unroll()?;
        }
        Ok(())
    }
}

/// Absolute, cleaned paths as restic records them in the snapshot.
pub fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        clean(p)
    } else {
        clean(
            &std::env::current_dir()
                .unwrap_or_else(|_| PathBuf::from("/"))
                .join(p),
        )
    }
}

/// Targets with no path components ("." or "..") stand for their entries.
pub(super) fn resolve_targets(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let c = clean(p);
        if !components(&c).is_empty() {
            out.push(c);
            continue;
        }
        let mut names: Vec<OsString> = std::fs::read_dir(&c)
            .map_err(Error::io(&c))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(Error::io(&c))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        out.extend(names.into_iter().map(|n| c.join(n)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_components_like_restic() {
        assert_eq!(
            components(Path::new("/tmp/rt/src")),
            vec![b"tmp".to_vec(), b"rt".to_vec(), b"src".to_vec()]
        );
        assert_eq!(components(Path::new("src")), vec![b"src".to_vec()]);
        assert_eq!(components(Path::new("../x")), vec![b"x".to_vec()]);
        assert!(components(Path::new(".")).is_empty());
        assert_eq!(root_dir(Path::new("../../x")), PathBuf::from("./../.."));
        assert_eq!(root_dir(Path::new("/a")), PathBuf::from("/"));
        assert_eq!(clean(Path::new("../../x")), PathBuf::from("../../x"));
        assert_eq!(clean(Path::new("a/../../b/./c/..")), PathBuf::from("../b"));
        assert_eq!(clean(Path::new("/../a/..")), PathBuf::from("/"));
        assert_eq!(clean(Path::new("a/..")), PathBuf::from("."));
    }
}
