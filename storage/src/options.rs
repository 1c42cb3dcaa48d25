//! Backend options, restic's `-o scheme.key=value` (`-o s3.connections=8`).

use crate::StorageError;
use std::collections::BTreeMap;
use std::time::Duration;

/// Options for one backend kind; every key is checked against what that kind knows.
#[derive(Clone, Debug, Default)]
pub struct Options {
    values: BTreeMap<String, String>,
    /// A PEM file of extra root certificates (restic's `--cacert`).
    pub ca_cert: Option<std::path::PathBuf>,
    /// Accept any server certificate (restic's `--insecure-tls`).
    pub insecure_tls: bool,
    /// A PEM file with a client certificate and its private key (`--tls-client-cert`).
    pub tls_client_cert: Option<std::path::PathBuf>,
    /// How long an HTTP request may receive nothing before it is given up and retried
    /// (`--stuck-request-timeout`); restic's five minutes when unset.
    pub stuck_request_timeout: Option<Duration>,
    /// Upload and download limits in bytes per second (`--limit-upload`,
    /// `--limit-download`, given there in KiB/s).
    pub limit_upload: Option<u64>,
    pub limit_download: Option<u64>,
    /// Credentials and endpoints by environment-variable name (`AWS_ACCESS_KEY_ID`,
    /// `AZURE_ACCOUNT_KEY`, …). Values here win over the process environment, so a
    /// program serving several repositories (the node agent) can give each its own.
    pub env: BTreeMap<String, String>,
}

/// Keys each backend understands (after the `scheme.` prefix).
fn known(scheme: &str) -> &'static [&'static str] {
    match scheme {
        "local" => &["connections"],
        "s3" => &[
            "connections",
            "region",
            "storage-class",
            "bucket-lookup",
            "timeout",
        ],
        "azure" => &["connections", "endpoint-url", "timeout"],
        "gs" => &["connections", "endpoint-url", "timeout"],
        "rest" => &["connections", "timeout"],
        "rclone" => &["program", "args", "connections", "timeout"],
        "sftp" => &["command", "args", "connections", "timeout"],
        _ => &[],
    }
}

impl Options {
    /// Parse `key=value` pairs as given to `-o`.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<Options, StorageError> {
        let mut values = BTreeMap::new();
        for p in pairs {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| StorageError::InvalidOption(format!("{p:?} is not key=value")))?;
            values.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(Options {
            values,
            ..Options::default()
        })
    }

    /// Refuse keys meant for this backend kind that it does not know; keys for other
    /// kinds are ignored, as restic does.
    pub fn check(&self, scheme: &str) -> Result<(), StorageError> {
        let keys = known(scheme);
        for k in self.values.keys() {
            if let Some(rest) = k.strip_prefix(&format!("{scheme}.")) {
                if !keys.contains(&rest) {
                    return Err(StorageError::InvalidOption(format!(
                        "unknown option {k} (known: {})",
                        keys.iter()
                            .map(|k| format!("{scheme}.{k}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            } else if !k.contains('.') {
                return Err(StorageError::InvalidOption(format!(
                    "option {k} has no backend prefix (e.g. {scheme}.connections)"
                )));
            }
        }
        Ok(())
    }

    /// A variable from [`env`](Self::env), else from the process environment; empty
    /// values count as unset.
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    }

    pub fn get(&self, scheme: &str, key: &str) -> Option<&str> {
        self.values
            .get(&format!("{scheme}.{key}"))
            .map(String::as_str)
    }

    /// `scheme.connections`, or the given default; at least 1.
    pub fn connections(&self, scheme: &str, default: usize) -> Result<usize, StorageError> {
        match self.get(scheme, "connections") {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => Ok(n),
                _ => Err(StorageError::InvalidOption(format!(
                    "{scheme}.connections={v:?} is not a number from 1 to 1024"
                ))),
            },
        }
    }

    /// Per-request timeout (`scheme.timeout`, e.g. `90s`, `5m`), default 5 minutes: long
    /// enough for a 128 MiB pack on a slow link, short enough to notice a hung request.
    pub fn stuck_request_timeout(&self) -> Duration {
        self.stuck_request_timeout
            .unwrap_or(Duration::from_secs(300))
    }

    pub fn timeout(&self, scheme: &str) -> Result<Duration, StorageError> {
        match self.get(scheme, "timeout") {
            None => Ok(Duration::from_secs(300)),
            Some(v) => parse_duration(v).ok_or_else(|| {
                StorageError::InvalidOption(format!(
                    "{scheme}.timeout={v:?} is not a duration like 90s or 5m"
                ))
            }),
        }
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_check() {
        let o = Options::parse([
            "s3.connections=8",
            "s3.region = eu-west-1",
            "azure.connections=3",
        ])
        .unwrap();
        o.check("s3").unwrap();
        assert_eq!(o.connections("s3", 5).unwrap(), 8);
        assert_eq!(o.get("s3", "region"), Some("eu-west-1"));
        assert_eq!(o.connections("gs", 5).unwrap(), 5);
        let bad = Options::parse(["s3.conections=8"]).unwrap();
        assert!(bad
            .check("s3")
            .unwrap_err()
            .to_string()
            .contains("unknown option s3.conections"));
        assert!(Options::parse(["novalue"]).is_err());
        let zero = Options::parse(["rest.connections=0"]).unwrap();
        assert!(zero.connections("rest", 5).is_err());
        let t = Options::parse(["s3.timeout=90s", "gs.timeout=2m", "rest.timeout=x"]).unwrap();
        assert_eq!(t.timeout("s3").unwrap(), Duration::from_secs(90));
        assert_eq!(t.timeout("gs").unwrap(), Duration::from_secs(120));
        assert!(t.timeout("rest").is_err());
    }
}
