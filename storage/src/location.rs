//! Repository strings in restic's syntax, parsed into where the repository lives.
//!
//! - `/path`, `local:/path`
//! - `s3:https://host[:port]/bucket[/prefix]`, `s3:http://…`, `s3:host/bucket[/prefix]` (https)
//! - `azure:container:/prefix`
//! - `gs:bucket:/prefix`
//! - `rest:http(s)://[user:pass@]host:port[/path]`
//! - `sftp:[user@]host:path`, `sftp://[user@]host[:port]/path` (through the system's `ssh`)
//! - `rclone:remote:path` (through `rclone serve restic --stdio`)

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
    Sftp {
        user: Option<String>,
        host: String,
        port: Option<String>,
        /// Cleaned; relative paths are relative to the login's home directory.
        path: String,
    },
    Rclone {
        /// What rclone is given: `remote:path`, a local path, or a connection string
        /// (which may hold credentials: shown only through [`redacted`]).
        remote: String,
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
            Location::Sftp { .. } => "sftp",
            Location::Rclone { .. } => "rclone",
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
            "sftp" => parse_sftp(rest).map_err(|r| invalid(&r)),
            "rclone" if rest.is_empty() => {
                Err(invalid("no rclone remote (expected rclone:remote:path)"))
            }
            "rclone" => Ok(Location::Rclone {
                remote: rest.to_string(),
            }),
            "b2" | "swift" => Err(StorageError::Unsupported(scheme.to_string())),
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

/// `sftp:[user@]host:path` or `sftp://[user[:password]@]host[:port]/path` (restic's rules: a
/// password in the URL is ignored, `//abs` in the URL form and `/abs` in the short form are
/// absolute, `~` is refused because sftp servers do not expand it).
fn parse_sftp(rest: &str) -> Result<Location, String> {
    let (user, host, port, dir) = if let Some(url) = rest.strip_prefix("//") {
        let (authority, dir) = url
            .split_once('/')
            .ok_or("no directory in sftp URL (expected sftp://host/path)")?;
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.split(':').next().unwrap_or(u)), h),
            None => (None, authority),
        };
        let (host, port) = split_port(hostport)?;
        (user, host, port, dir)
    } else {
        let (userhost, dir) = rest
            .split_once(':')
            .ok_or("hostname or path not found (expected sftp:[user@]host:path)")?;
        let (user, host) = match userhost.split_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, userhost),
        };
        (user, host, None, dir)
    };
    if host.is_empty() {
        return Err("no host (expected sftp:[user@]host:path)".into());
    }
    if dir.is_empty() {
        return Err("no directory (expected sftp:[user@]host:path)".into());
    }
    let path = clean_path(dir);
    if path.starts_with('~') {
        return Err("the path starts with ~, which sftp servers do not expand: give a path relative to the home directory instead".into());
    }
    Ok(Location::Sftp {
        user: user.filter(|u| !u.is_empty()).map(str::to_string),
        host: host.to_string(),
        port: port.map(str::to_string),
        path,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_port(hostport: &str) -> Result<(&str, Option<&str>), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    match port {
        Some(p) if p.parse::<u16>().is_err() => Err(format!("invalid port {p:?}")),
        Some("") => Ok((host, None)),
        p => Ok((host, p)),
    }
}

/// restic's `path.Clean`: no empty or `.` parts, `..` folded where it can be.
fn clean_path(p: &str) -> String {
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// An rclone remote as it may be shown: the parameters of a connection string
/// (`:s3,access_key_id=…,secret_access_key=…:bucket`) replaced by `***`.
fn redacted_rclone(remote: &str) -> String {
    // The configuration part ends at the first unquoted ':' after the leading one.
    let mut out = String::with_capacity(remote.len());
    let mut quote: Option<char> = None;
    let mut in_value = false;
    for (i, c) in remote.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if in_value => quote = Some(c),
            (None, ':') if i > 0 => {
                out.push_str(&remote[i..]);
                return out;
            }
            (None, ',') => in_value = false,
            (None, '=') if !in_value => {
                in_value = true;
                out.push_str("=***");
                continue;
            }
            _ => {}
        }
        if !in_value {
            out.push(c);
        }
    }
    out
}

/// A repository string as it may be shown: a password in a URL's user part replaced by
/// `***` (`rest:https://user:***@host/`), as restic shows it; everything else as given.
pub fn redacted(repo: &str) -> String {
    if let Some(remote) = repo.strip_prefix("rclone:") {
        return format!("rclone:{}", redacted_rclone(remote));
    }
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
            Location::Sftp {
                user,
                host,
                port,
                path,
            } => {
                let user = user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                match port {
                    // The URL form keeps the port; `//` makes an absolute path.
                    Some(p) => write!(f, "sftp://{user}{host}:{p}/{path}"),
                    None => write!(f, "sftp:{user}{host}:{path}"),
                }
            }
            Location::Rclone { remote } => write!(f, "rclone:{}", redacted_rclone(remote)),
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
        for (input, needle) in [
            ("sftp:host", "hostname or path not found"),
            ("sftp:host:", "no directory"),
            ("sftp::/repo", "no host"),
            ("sftp:host:~/repo", "starts with ~"),
            ("sftp://host", "no directory"),
            ("sftp://host:port/x", "invalid port"),
            ("rclone:", "no rclone remote"),
        ] {
            let err = Location::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
        assert!(matches!(
            Location::parse("b2:bucket:/repo"),
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

    fn sftp(user: Option<&str>, host: &str, port: Option<&str>, path: &str) -> Location {
        Location::Sftp {
            user: user.map(Into::into),
            host: host.into(),
            port: port.map(Into::into),
            path: path.into(),
        }
    }

    #[test]
    fn sftp_and_rclone_strings_as_restic_reads_them() {
        for (input, want) in [
            (
                "sftp:user@host:/srv/repo",
                sftp(Some("user"), "host", None, "/srv/repo"),
            ),
            (
                "sftp:host:backups/./x/",
                sftp(None, "host", None, "backups/x"),
            ),
            (
                "sftp://u@host:2222//srv/repo",
                sftp(Some("u"), "host", Some("2222"), "/srv/repo"),
            ),
            (
                "sftp://u:pw@host/rel/repo",
                sftp(Some("u"), "host", None, "rel/repo"),
            ),
            ("sftp://[::1]:22/a/../b", sftp(None, "::1", Some("22"), "b")),
        ] {
            assert_eq!(Location::parse(input).unwrap(), want, "{input}");
        }
        assert_eq!(
            Location::parse("rclone:remote:bucket/path").unwrap(),
            Location::Rclone {
                remote: "remote:bucket/path".into()
            }
        );
        let shown = Location::parse("sftp://u:pw@host:2222//srv/repo")
            .unwrap()
            .to_string();
        assert_eq!(shown, "sftp://u@host:2222//srv/repo");
    }

    #[test]
    fn rclone_connection_strings_are_shown_without_their_parameters() {
        for (given, shown) in [
            ("rclone:remote:path", "rclone:remote:path"),
            ("rclone:/local/dir", "rclone:/local/dir"),
            (
                "rclone::s3,access_key_id=AK,secret_access_key=SK:bucket/x",
                "rclone::s3,access_key_id=***,secret_access_key=***:bucket/x",
            ),
            (
                "rclone:remote,password='a:b,c':dir",
                "rclone:remote,password=***:dir",
            ),
        ] {
            assert_eq!(redacted(given), shown, "{given}");
            let loc = Location::parse(given).unwrap().to_string();
            assert_eq!(loc, shown, "{given}");
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
