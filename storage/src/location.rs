//! Repository strings in restic's syntax, parsed into where the repository lives.
//!
//! - `/path`, `local:/path`
//! - `s3:https://host[:port]/bucket[/prefix]`, `s3:http://…`, `s3:host/bucket[/prefix]` (https)
//! - `azure:container:/prefix`
//! - `gs:bucket:/prefix`
//! - `rest:http(s)://[user:pass@]host:port[/path]`

use crate::StorageError;
use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 {
        /// `scheme://host[:port]`.
        endpoint: String,
        bucket: String,
        /// Path inside the bucket, without leading or trailing `/` (may be empty).
        prefix: String,
    },
    Azure {
        container: String,
        prefix: String,
    },
    Gcs {
        bucket: String,
        prefix: String,
    },
    Rest {
        /// Base URL ending in `/`, credentials included if given.
        url: String,
    },
}

impl Location {
    /// The backend kind, as in restic's option names (`s3.connections`, …).
    pub fn scheme(&self) -> &'static str {
        match self {
            Location::Local(_) => "local",
            Location::S3 { .. } => "s3",
            Location::Azure { .. } => "azure",
            Location::Gcs { .. } => "gs",
            Location::Rest { .. } => "rest",
        }
    }

    pub fn parse(repo: &str) -> Result<Location, StorageError> {
        let invalid = |why: &str| StorageError::InvalidLocation {
            location: repo.to_string(),
            reason: why.to_string(),
        };
        let Some((scheme, rest)) = repo.split_once(':') else {
            return local(repo).ok_or_else(|| invalid("empty path"));
        };
        match scheme {
            "local" => local(rest).ok_or_else(|| invalid("empty path")),
            "s3" => parse_s3(rest).map_err(|r| invalid(&r)),
            "azure" => {
                let (container, prefix) =
                    split_bucket(rest, "container").map_err(|r| invalid(&r))?;
                Ok(Location::Azure { container, prefix })
            }
            "gs" => {
                let (bucket, prefix) = split_bucket(rest, "bucket").map_err(|r| invalid(&r))?;
                Ok(Location::Gcs { bucket, prefix })
            }
            "rest" => parse_rest(rest).map_err(|r| invalid(&r)),
            "sftp" | "b2" | "swift" | "rclone" => {
                Err(StorageError::Unsupported(scheme.to_string()))
            }
            // A Windows drive letter or a relative path with a colon in it.
            _ => local(repo).ok_or_else(|| invalid("empty path")),
        }
    }
}

fn local(path: &str) -> Option<Location> {
    (!path.is_empty()).then(|| Location::Local(PathBuf::from(path)))
}

/// `https://host/bucket/prefix`, `http://…`, or `host/bucket/prefix` (restic's s3 rules).
fn parse_s3(rest: &str) -> Result<Location, String> {
    let (scheme, rest) = if let Some(r) = rest.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = rest.strip_prefix("http://") {
        ("http", r)
    } else {
        ("https", rest.strip_prefix("//").unwrap_or(rest))
    };
    let mut parts = rest.splitn(3, '/');
    let host = parts.next().unwrap_or_default();
    let bucket = parts.next().unwrap_or_default();
    let prefix = clean_prefix(parts.next().unwrap_or_default());
    if host.is_empty() {
        return Err("no host in s3 URL (expected s3:https://host/bucket[/prefix])".into());
    }
    if bucket.is_empty() {
        return Err("no bucket in s3 URL (expected s3:https://host/bucket[/prefix])".into());
    }
    check_bucket_name(bucket)?;
    Ok(Location::S3 {
        endpoint: format!("{scheme}://{host}"),
        bucket: bucket.to_string(),
        prefix,
    })
}

/// `name:/prefix` or `name:prefix` or just `name` (azure containers, gs buckets).
fn split_bucket(rest: &str, what: &str) -> Result<(String, String), String> {
    let (name, prefix) = rest.split_once(':').unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(format!("no {what} name (expected {what}:/prefix)"));
    }
    check_bucket_name(name)?;
    Ok((name.to_string(), clean_prefix(prefix)))
}

fn check_bucket_name(name: &str) -> Result<(), String> {
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid bucket or container name {name:?}"))
    }
}

fn clean_prefix(p: &str) -> String {
    p.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_rest(rest: &str) -> Result<Location, String> {
    if !(rest.starts_with("http://") || rest.starts_with("https://")) {
        return Err("expected rest:http://host:port/path or rest:https://…".into());
    }
    let mut url = reqwest::Url::parse(rest).map_err(|e| format!("invalid URL: {e}"))?;
    if url.host_str().is_none_or(|h| h.is_empty()) {
        return Err("no host in REST URL".into());
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(Location::Rest {
        url: url.to_string(),
    })
}

/// A repository string as it may be shown: a password in a URL's user part replaced by
/// `***` (`rest:https://user:***@host/`), as restic shows it; everything else as given.
pub fn redacted(repo: &str) -> String {
    let Some(scheme_end) = repo.find("://") else {
        return repo.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_len = repo[authority_start..]
        .find(['/', '?', '#'])
        .unwrap_or(repo.len() - authority_start);
    let authority = &repo[authority_start..authority_start + authority_len];
    let Some(at) = authority.rfind('@') else {
        return repo.to_string();
    };
    let Some((user, _password)) = authority[..at].split_once(':') else {
        return repo.to_string();
    };
    format!(
        "{}{user}:***{}",
        &repo[..authority_start],
        &repo[authority_start + at..]
    )
}

impl fmt::Display for Location {
    /// The location for messages, without credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slash = |p: &str| {
            if p.is_empty() {
                String::new()
            } else {
                format!("/{p}")
            }
        };
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => write!(f, "s3:{endpoint}/{bucket}{}", slash(prefix)),
            Location::Azure { container, prefix } => write!(f, "azure:{container}:/{prefix}"),
            Location::Gcs { bucket, prefix } => write!(f, "gs:{bucket}:/{prefix}"),
            Location::Rest { url } => match reqwest::Url::parse(url) {
                Ok(mut u) => {
                    let _ = u.set_password(None);
                    let _ = u.set_username("");
                    write!(f, "rest:{u}")
                }
                Err(_) => write!(f, "rest:<invalid URL>"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(endpoint: &str, bucket: &str, prefix: &str) -> Location {
        Location::S3 {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn restic_repository_strings() {
        let cases = [
            ("/srv/repo", Location::Local("/srv/repo".into())),
            ("local:/srv/repo", Location::Local("/srv/repo".into())),
            ("relative/repo", Location::Local("relative/repo".into())),
            (
                "s3:https://host:9000/bucket",
                s3("https://host:9000", "bucket", ""),
            ),
            (
                "s3:http://127.0.0.1:8333/b/some/prefix/",
                s3("http://127.0.0.1:8333", "b", "some/prefix"),
            ),
            (
                "s3:s3.amazonaws.com/bucket/prefix",
                s3("https://s3.amazonaws.com", "bucket", "prefix"),
            ),
            (
                "s3://minio.local/bucket",
                s3("https://minio.local", "bucket", ""),
            ),
            (
                "azure:backups:/team/repo",
                Location::Azure {
                    container: "backups".into(),
                    prefix: "team/repo".into(),
                },
            ),
            (
                "azure:backups:/",
                Location::Azure {
                    container: "backups".into(),
                    prefix: "".into(),
                },
            ),
            (
                "gs:bucket:/repo",
                Location::Gcs {
                    bucket: "bucket".into(),
                    prefix: "repo".into(),
                },
            ),
            (
                "gs:bucket",
                Location::Gcs {
                    bucket: "bucket".into(),
                    prefix: "".into(),
                },
            ),
            (
                "rest:http://host:8000/",
                Location::Rest {
                    url: "http://host:8000/".into(),
                },
            ),
            (
                "rest:https://u:p@host:8000/repo",
                Location::Rest {
                    url: "https://u:p@host:8000/repo/".into(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Location::parse(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn malformed_strings_name_the_problem() {
        for (input, needle) in [
            ("s3:", "no host"),
            ("s3:https://host", "no bucket"),
            ("s3:https://host/", "no bucket"),
            ("s3:https://host/bad bucket", "invalid bucket"),
            ("azure::/prefix", "no container"),
            ("gs::/prefix", "no bucket"),
            ("rest:host:8000", "expected rest:http"),
            ("rest:http://", "host"),
            ("local:", "empty path"),
        ] {
            let err = Location::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        assert!(matches!(
            Location::parse("sftp:host:/repo"),
            Err(StorageError::Unsupported(_))
        ));
    }

    #[test]
    fn redacted_hides_passwords_in_urls_as_restic_does() {
        for (given, shown) in [
            (
                "rest:https://user:secret@host:8000/repo",
                "rest:https://user:***@host:8000/repo",
            ),
            ("rest:http://u:p%40ss@h/", "rest:http://u:***@h/"),
            ("rest:http://a:b:c@h", "rest:http://a:***@h"),
            ("rest:http://user@host/", "rest:http://user@host/"),
            ("rest:http://host/x@y", "rest:http://host/x@y"),
            ("s3:https://k:s@host/bucket", "s3:https://k:***@host/bucket"),
            ("/srv/repo@2", "/srv/repo@2"),
            ("sftp:user@host:/repo", "sftp:user@host:/repo"),
        ] {
            assert_eq!(redacted(given), shown, "{given}");
        }
    }

    #[test]
    fn display_hides_rest_credentials() {
        let l = Location::parse("rest:https://user:secret@host:8000/repo").unwrap();
        let shown = l.to_string();
        assert!(
            !shown.contains("secret") && !shown.contains("user"),
            "{shown}"
        );
    }
}
