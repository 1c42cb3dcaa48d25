//! restic's backup exclusion rules as a [`Selector`].

use crate::backup::Selector;
use crate::filter::Patterns;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The signature a CACHEDIR.TAG file starts with (bford.info/cachedir).
pub const CACHEDIR_TAG: &str = "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55";

#[derive(Default)]
pub struct ExcludeRules {
    pub excludes: Option<Patterns>,
    pub iexcludes: Option<Patterns>,
    /// `--exclude-if-present name[:header]`.
    pub if_present: Vec<(String, Option<Vec<u8>>)>,
    pub larger_than: Option<u64>,
    /// Devices of the backup targets, for `--one-file-system`.
    pub allowed_devices: Option<HashSet<u64>>,
    tagged_dirs: Mutex<HashMap<PathBuf, bool>>,
}

impl ExcludeRules {
    pub fn new(
        excludes: Option<Patterns>,
        iexcludes: Option<Patterns>,
        if_present: &[String],
        larger_than: Option<u64>,
        one_file_system_targets: Option<&[PathBuf]>,
    ) -> std::io::Result<ExcludeRules> {
        let if_present = if_present
            .iter()
            .map(|s| match s.split_once(':') {
                Some((name, header)) => (name.to_string(), Some(header.as_bytes().to_vec())),
                None => (s.clone(), None),
            })
            .collect();
        let allowed_devices = match one_file_system_targets {
            Some(targets) => {
                let mut set = HashSet::new();
                for t in targets {
                    set.insert(std::fs::symlink_metadata(t)?.dev());
                }
                Some(set)
            }
            None => None,
        };
        Ok(ExcludeRules {
            excludes,
            iexcludes,
            if_present,
            larger_than,
            allowed_devices,
            tagged_dirs: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `dir` holds a tag file (with the right header, if one is required).
    fn dir_is_tagged(&self, dir: &Path) -> bool {
        if let Some(&v) = self.tagged_dirs.lock().expect("tag cache").get(dir) {
            return v;
        }
        let tagged = self.if_present.iter().any(|(name, header)| {
            let p = dir.join(name);
            match header {
                None => p.symlink_metadata().is_ok(),
                Some(h) => {
                    let mut buf = vec![0u8; h.len()];
                    std::fs::File::open(&p)
                        .and_then(|mut f| f.read_exact(&mut buf))
                        .is_ok()
                        && buf == *h
                }
            }
        });
        self.tagged_dirs
            .lock()
            .expect("tag cache")
            .insert(dir.to_path_buf(), tagged);
        tagged
    }
}

impl Selector for ExcludeRules {
    fn select_by_name(&self, path: &Path) -> bool {
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
        if self.excludes.as_ref().is_some_and(|p| p.matches(bytes))
            || self.iexcludes.as_ref().is_some_and(|p| p.matches(bytes))
        {
            return false;
        }
        if !self.if_present.is_empty() {
            // The tag file itself stays; everything else in a tagged directory goes.
            if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                let is_tag = self.if_present.iter().any(|(n, _)| name == n.as_str());
                if !is_tag && self.dir_is_tagged(dir) {
                    return false;
                }
            }
        }
        true
    }

    fn select(&self, path: &Path, md: &crate::fsnode::FileStat) -> bool {
        if let Some(limit) = self.larger_than {
            if md.is_file() && md.size() > limit {
                return false;
            }
        }
        if let Some(allowed) = &self.allowed_devices {
            if !allowed.contains(&md.dev()) {
                // A mount point is kept (as an empty directory); what is below it is not.
                let parent_ok = md.is_dir()
                    && path
                        .parent()
                        .and_then(|p| p.symlink_metadata().ok())
                        .is_some_and(|pm| allowed.contains(&pm.dev()));
                if !parent_ok {
                    return false;
                }
            }
        }
        true
    }
}
