//! restic's include/exclude patterns: a pattern without a leading `/` matches at any
//! depth; `*` stays within one path component, `**` spans components; a pattern that
//! matches a directory applies to everything below it.

use globset::{GlobBuilder, GlobMatcher};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A pattern that is no glob.
#[derive(Debug, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {source}")]
pub struct PatternError {
    pub pattern: String,
    #[source]
    pub source: globset::Error,
}

pub struct Patterns {
    globs: Vec<GlobMatcher>,
}

impl Patterns {
    pub fn new(patterns: &[String], case_insensitive: bool) -> Result<Patterns, PatternError> {
        let mut globs = Vec::new();
        Self::compile(patterns, case_insensitive, &mut globs)?;
        Ok(Patterns { globs })
    }

    /// `exact` patterns and `ignoring_case` ones (restic's `--include` and `--iinclude`,
    /// `--exclude` and `--iexclude`), each matched as given.
    pub fn with_case(exact: &[String], ignoring_case: &[String]) -> Result<Patterns, PatternError> {
        let mut globs = Vec::new();
        Self::compile(exact, false, &mut globs)?;
        Self::compile(ignoring_case, true, &mut globs)?;
        Ok(Patterns { globs })
    }

    fn compile(
        patterns: &[String],
        case_insensitive: bool,
        globs: &mut Vec<GlobMatcher>,
    ) -> Result<(), PatternError> {
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
                .map_err(|source| PatternError {
                    pattern: p.to_string(),
                    source,
                })?;
            globs.push(g.compile_matcher());
        }
        Ok(())
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

/// Go's `filepath.Glob`, which restic applies to each `--files-from` line: a pattern
/// without `*`, `?`, `[` or `\` is returned as is if it exists (lstat); otherwise each
/// component with wildcards is matched (Go's `filepath.Match`: `*` and `?` stay within a
/// name and match leading dots, `[...]` classes, `\` escapes; braces are literal)
/// against the sorted entries of the directories matched so far. I/O errors are
/// ignored; only a malformed pattern is an error.
pub fn glob(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let has_meta = |s: &str| s.contains(['*', '?', '[', '\\']);
    if !has_meta(pattern) {
        return Ok(std::fs::symlink_metadata(pattern)
            .map(|_| vec![PathBuf::from(pattern)])
            .unwrap_or_default());
    }
    let (dir, file) = match pattern.rfind('/') {
        Some(i) => (&pattern[..=i], &pattern[i + 1..]),
        None => ("", pattern),
    };
    let dir = match dir {
        "" => ".",
        "/" => "/",
        d => &d[..d.len() - 1],
    };
    let matcher = GlobBuilder::new(&go_to_globset(file))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("pattern {pattern:?}: {e}"))?
        .compile_matcher();
    let dirs = if !has_meta(dir) {
        vec![PathBuf::from(dir)]
    } else if dir == pattern {
        return Err(format!("pattern {pattern:?}: syntax error in pattern"));
    } else {
        glob(dir)?
    };
    let mut out = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for n in names {
            if matcher.is_match(Path::new(&n)) {
                out.push(if d == Path::new(".") {
                    PathBuf::from(n)
                } else {
                    d.join(n)
                });
            }
        }
    }
    Ok(out)
}

/// A `filepath.Match` pattern for globset: braces, literal in Go, are escaped.
fn go_to_globset(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let (mut chars, mut in_class) = (p.chars(), false);
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                out.extend(chars.next());
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '{' | '}' if !in_class => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_go() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for f in [
            "a/x1.txt",
            "a/x2.txt",
            "a/.x3.txt",
            "a/y.txt",
            "b/x9.txt",
            "c{1}/z",
        ] {
            std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            std::fs::write(d.join(f), b"").unwrap();
        }
        let g = |p: &str| glob(&format!("{}/{p}", d.display())).unwrap();
        let rel = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.strip_prefix(d).unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(rel(g("a/x*")), ["a/x1.txt", "a/x2.txt"]);
        assert_eq!(
            rel(g("a/*")),
            ["a/.x3.txt", "a/x1.txt", "a/x2.txt", "a/y.txt"]
        );
        assert_eq!(rel(g("?/x[19].txt")), ["a/x1.txt", "b/x9.txt"]);
        assert_eq!(rel(g("c{1}/*")), ["c{1}/z"]);
        assert_eq!(rel(g("a/nothing*")), Vec::<String>::new());
        assert_eq!(rel(g("a/y.txt")), ["a/y.txt"]);
        assert_eq!(rel(g("a/missing")), Vec::<String>::new());
        assert!(glob("[").is_err());
    }

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

    #[test]
    fn exact_and_case_ignoring_patterns_keep_their_own_case_rule() {
        let p = Patterns::with_case(&["/Docs".into()], &["*.JPG".into()]).unwrap();
        assert!(p.matches(b"/Docs/a"));
        assert!(!p.matches(b"/docs/a"));
        assert!(p.matches(b"/p/photo.jpg"));
        assert!(p.matches(b"/p/photo.Jpg"));
    }
}
