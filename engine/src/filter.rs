//! restic's include/exclude patterns: a pattern without a leading `/` matches at any
//! depth; `*` stays within one path component, `**` spans components; a pattern that
//! matches a directory applies to everything below it.

use globset::{GlobBuilder, GlobMatcher};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub struct Patterns {
    globs: Vec<GlobMatcher>,
}

impl Patterns {
    pub fn new(patterns: &[String], case_insensitive: bool) -> Result<Patterns, String> {
        let mut globs = Vec::new();
        for p in patterns {
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                continue;
            }
            let full = if p.starts_with('/') {
                p.to_string()
            } else {
                format!("**/{p}")
            };
            let g = GlobBuilder::new(&full)
                .literal_separator(true)
                .case_insensitive(case_insensitive)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("invalid pattern {p:?}: {e}"))?;
            globs.push(g.compile_matcher());
        }
        Ok(Patterns { globs })
    }

    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// Whether `path` (absolute, `/`-separated bytes) or one of its parents matches.
    pub fn matches(&self, path: &[u8]) -> bool {
        let mut end = path.len();
        loop {
            let p = Path::new(OsStr::from_bytes(&path[..end]));
            if self.globs.iter().any(|g| g.is_match(p)) {
                return true;
            }
            match path[..end].iter().rposition(|&b| b == b'/') {
                Some(0) | None => return false,
                Some(i) => end = i,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_like_matching() {
        let p = Patterns::new(
            &["*.txt".into(), "/etc/ssh".into(), "cache/**/tmp".into()],
            false,
        )
        .unwrap();
        assert!(p.matches(b"/home/a.txt"));
        assert!(p.matches(b"/home/x/y/a.txt"));
        assert!(!p.matches(b"/home/a.txt.bak"));
        assert!(p.matches(b"/etc/ssh/sshd_config"));
        assert!(!p.matches(b"/x/etc/ssh"));
        assert!(p.matches(b"/a/cache/b/c/tmp/f"));
        let ci = Patterns::new(&["*.JPG".into()], true).unwrap();
        assert!(ci.matches(b"/p/photo.jpg"));
    }
}
