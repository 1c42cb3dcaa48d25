//! Global flags and environment, as restic has them, and opening the repository.

use anyhow::{anyhow, bail, Context, Result};
use arca_engine::Repository;
use std::io::IsTerminal;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct GlobalOptions {
    /// Repository to back up to or restore from
    #[arg(
        short = 'r',
        long = "repo",
        env = "RESTIC_REPOSITORY",
        global = true,
        hide_env_values = true
    )]
    pub repo: Option<String>,
    /// File to read the repository location from
    #[arg(
        long,
        env = "RESTIC_REPOSITORY_FILE",
        global = true,
        hide_env_values = true
    )]
    pub repository_file: Option<String>,
    /// File to read the repository password from
    #[arg(
        short = 'p',
        long,
        env = "RESTIC_PASSWORD_FILE",
        global = true,
        hide_env_values = true
    )]
    pub password_file: Option<String>,
    /// Shell command to obtain the repository password from
    #[arg(
        long,
        env = "RESTIC_PASSWORD_COMMAND",
        global = true,
        hide_env_values = true
    )]
    pub password_command: Option<String>,
    /// Set output mode to JSON for commands that support it
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not output comprehensive progress report
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Be verbose (specify multiple times or a level using --verbose=n)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Do not lock the repository, this allows some operations on read-only repositories
    #[arg(long, global = true)]
    pub no_lock: bool,
    /// retry to lock the repository if it is already locked, takes a value like 5m or 2h (default: no retries)
    #[arg(long, global = true, value_name = "duration", value_parser = humantime::parse_duration)]
    pub retry_lock: Option<std::time::Duration>,
    /// compression mode (only available for repository format version 2), one of (auto|off|fastest|better|max)
    #[arg(
        long,
        global = true,
        env = "RESTIC_COMPRESSION",
        default_value = "auto",
        hide_env_values = true
    )]
    pub compression: String,
    /// set target pack size in MiB, created pack files may be larger
    #[arg(long, global = true, env = "RESTIC_PACK_SIZE", hide_env_values = true)]
    pub pack_size: Option<u32>,
    /// set extended option (key=value, can be specified multiple times), e.g. -o s3.connections=8
    #[arg(short = 'o', long = "option", global = true, value_name = "KEY=VALUE")]
    pub option: Vec<String>,
    /// file to load root certificates from (default: use system certificates)
    #[arg(
        long,
        global = true,
        env = "RESTIC_CACERT",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub cacert: Option<std::path::PathBuf>,
    /// skip TLS certificate verification when connecting to the repository (insecure)
    #[arg(long, global = true)]
    pub insecure_tls: bool,
    /// path to a file containing PEM encoded TLS client certificate and private key
    #[arg(
        long,
        global = true,
        env = "RESTIC_TLS_CLIENT_CERT",
        value_name = "file",
        hide_env_values = true
    )]
    pub tls_client_cert: Option<std::path::PathBuf>,
    /// limits uploads to a maximum rate in KiB/s. (default: unlimited)
    #[arg(long, global = true, value_name = "rate")]
    pub limit_upload: Option<u64>,
    /// limits downloads to a maximum rate in KiB/s. (default: unlimited)
    #[arg(long, global = true, value_name = "rate")]
    pub limit_download: Option<u64>,
    /// duration after which to retry stuck requests
    #[arg(long, global = true, value_name = "duration", default_value = "5m0s", value_parser = humantime::parse_duration)]
    pub stuck_request_timeout: std::time::Duration,
    /// do not use a local cache
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// set the cache `directory`. (default: use system default cache directory)
    #[arg(long, global = true, env = "RESTIC_CACHE_DIR", hide_env_values = true)]
    pub cache_dir: Option<String>,
    /// auto remove old cache directories
    #[arg(long, global = true)]
    pub cleanup_cache: bool,
}

/// Exit codes as restic 0.17+ uses them.
pub const EXIT_NO_REPO: i32 = 10;
pub const EXIT_LOCKED: i32 = 11;
pub const EXIT_WRONG_PASSWORD: i32 = 12;

pub fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<arca_engine::Error>() {
            return match err {
                arca_engine::Error::WrongPassword => EXIT_WRONG_PASSWORD,
                arca_engine::Error::Locked(_) => EXIT_LOCKED,
                arca_engine::Error::Storage(arca_storage::StorageError::NoRepository(_)) => {
                    EXIT_NO_REPO
                }
                _ => 1,
            };
        }
        if let Some(arca_storage::StorageError::NoRepository(_)) =
            cause.downcast_ref::<arca_storage::StorageError>()
        {
            return EXIT_NO_REPO;
        }
    }
    1
}

/// The whole error chain on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

impl GlobalOptions {
    pub fn repo_location(&self) -> Result<String> {
        if let Some(r) = &self.repo {
            if !r.is_empty() {
                return Ok(r.clone());
            }
        }
        if let Some(f) = &self.repository_file {
            let s = read_text_file(f).with_context(|| format!("reading repository file {f}"))?;
            return Ok(s.trim().to_string());
        }
        bail!("Please specify repository location (-r or --repository-file)")
    }

    /// The password, from restic's sources in restic's order.
    /// Options with nothing set, as a base for a secondary repository's options.
    pub fn empty() -> GlobalOptions {
        GlobalOptions {
            compression: "auto".into(),
            ..Default::default()
        }
    }

    pub fn password(&self) -> Result<String> {
        self.password_from("RESTIC_PASSWORD")
    }

    /// The password from the command, the file, the environment variable `env`, or a prompt.
    pub fn password_from(&self, env: &str) -> Result<String> {
        if self.password_file.is_some() && self.password_command.is_some() {
            bail!("Password file and command are mutually exclusive options");
        }
        if let Some(cmd) = &self.password_command {
            // The command is not repeated in errors: it may hold the password itself.
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stderr(std::process::Stdio::inherit())
                .output()
                .context("cannot run the password command")?;
            if !out.status.success() {
                bail!("the password command failed: {}", out.status);
            }
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        if let Some(f) = &self.password_file {
            return read_password_file(f);
        }
        if let Ok(p) = std::env::var(env) {
            if !p.is_empty() {
                return Ok(p);
            }
        }
        if std::io::stdin().is_terminal() {
            return rpassword::prompt_password("enter password for repository: ")
                .context("reading password");
        }
        bail!("no password given: use --password-file, RESTIC_PASSWORD_FILE, RESTIC_PASSWORD or a terminal")
    }

    /// How new blobs are written: `--compression` and `--pack-size` checked.
    pub fn writer_options(&self) -> Result<arca_engine::writer::WriterOptions> {
        let compression =
            arca_format::compression::Mode::parse(&self.compression).ok_or_else(|| {
                anyhow!(
                    "invalid compression mode {:?}: use auto, off, fastest, better or max",
                    self.compression
                )
            })?;
        let pack_size = match self.pack_size {
            Some(mb) if !(4..=128).contains(&mb) => {
                bail!("pack size {mb} MiB is out of range (4 to 128)")
            }
            Some(mb) => mb as usize * 1024 * 1024,
            None => arca_engine::writer::DEFAULT_PACK_SIZE,
        };
        Ok(arca_engine::writer::WriterOptions {
            compression,
            pack_size,
            ..Default::default()
        })
    }

    /// Whether progress bars may be drawn.
    pub fn show_progress(&self) -> bool {
        !self.json && !self.quiet && std::io::stdout().is_terminal()
    }

    pub fn verbose(&self, msg: impl std::fmt::Display) {
        if !self.quiet && !self.json {
            println!("{msg}");
        }
    }

    /// The storage backend for a repository string, with `-o` options and `--cacert`.
    pub fn backend(&self, loc: &str) -> Result<arca_storage::DynBackend> {
        let mut opts = arca_storage::Options::parse(self.option.iter().map(String::as_str))?;
        opts.ca_cert = self.cacert.clone();
        opts.insecure_tls = self.insecure_tls;
        opts.tls_client_cert = self.tls_client_cert.clone();
        opts.stuck_request_timeout = Some(self.stuck_request_timeout);
        // restic's flags count KiB/s; 0 means no limit, as there.
        let per_second = |kib: Option<u64>| kib.filter(|&k| k > 0).map(|k| k * 1024);
        opts.limit_upload = per_second(self.limit_upload);
        opts.limit_download = per_second(self.limit_download);
        Ok(arca_storage::open_with(loc, &opts)?)
    }

    /// The cache's base folder: `--cache-dir`, `$RESTIC_CACHE_DIR`, else the user's cache
    /// folder (`$XDG_CACHE_HOME/restic`, `~/.cache/restic`).
    pub fn cache_base(&self) -> Option<std::path::PathBuf> {
        match &self.cache_dir {
            Some(d) if !d.is_empty() => Some(d.into()),
            _ => arca_storage::cache::default_base(),
        }
    }

    /// Lock `repo` (exclusively or not). Held by someone else: with `--retry-lock`, try again
    /// with growing pauses (5 s, doubling, at most a minute) until the time is up, as restic
    /// does; without it, fail at once.
    pub async fn lock(
        &self,
        repo: &Repository,
        exclusive: bool,
    ) -> Result<arca_engine::lock::LockGuard> {
        self.retrying_lock(|| arca_engine::lock::LockGuard::acquire(repo, exclusive))
            .await
    }

    /// [`GlobalOptions::lock`] for a shared lock confirmed while the command runs.
    pub async fn begin_lock(
        &self,
        repo: &Repository,
    ) -> Result<(arca_engine::lock::LockGuard, arca_engine::lock::LockCheck)> {
        self.retrying_lock(|| arca_engine::lock::LockGuard::begin(repo, false))
            .await
    }

    async fn retrying_lock<T, F, Fut>(&self, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = arca_engine::Result<T>>,
    {
        let Some(wait) = self.retry_lock else {
            return attempt().await.map_err(|e| anyhow!(e));
        };
        let mut said = false;
        let retry = arca_engine::lock::RetryLock::up_to(wait);
        let (value, _) = arca_engine::lock::retrying(retry, attempt, |_, _| {
            if !said {
                self.verbose(format!(
                    "repo already locked, waiting up to {} for the lock",
                    crate::output::go_duration_ms(wait)
                ));
                said = true;
            }
            async {}
        })
        .await
        .map_err(|e| anyhow!(e))?;
        Ok(value)
    }

    /// Open the repository with the local cache in front of it (unless --no-cache).
    pub async fn open(&self) -> Result<Repository> {
        let mut repo = self.open_uncached().await?;
        if !self.no_cache {
            self.use_cache(&mut repo);
        }
        Ok(repo)
    }

    /// As restic does: a cache that cannot be opened is a warning, not a failure; a new one
    /// is said, and old ones (unused for 30 days) are pointed out, or removed with
    /// --cleanup-cache.
    fn use_cache(&self, repo: &mut Repository) {
        let Some(base) = self.cache_base() else {
            eprintln!("unable to open cache: no cache folder (set --cache-dir or $HOME)");
            return;
        };
        let dir = arca_storage::cache::CacheDir::new(&base);
        match repo.use_cache(&dir) {
            Ok(true) if !self.json && std::io::stdout().is_terminal() => {
                self.verbose(format!("created new cache in {}", base.display()))
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("unable to open cache: {e}");
                return;
            }
        }
        let old = match dir.older_than(arca_storage::cache::MAX_AGE) {
            Ok(old) => old,
            Err(e) => {
                eprintln!("unable to find old cache directories: {e}");
                return;
            }
        };
        if old.is_empty() {
            return;
        }
        if self.cleanup_cache {
            if !self.json {
                self.verbose(format!(
                    "removing {} old cache dirs from {}",
                    old.len(),
                    base.display()
                ));
            }
            for e in old {
                if let Err(err) = std::fs::remove_dir_all(&e.path) {
                    eprintln!("unable to remove {}: {err}", e.path.display());
                }
            }
        } else if std::io::stdout().is_terminal() {
            self.verbose(format!(
                "found {} old cache directories in {}, run `arca cache --cleanup` to remove them",
                old.len(),
                base.display()
            ));
        }
    }

    /// Open the repository, reading everything from the store.
    pub async fn open_uncached(&self) -> Result<Repository> {
        let loc = self.repo_location()?;
        let backend = self.backend(&loc)?;
        let password = self.password()?;
        if password.is_empty() {
            bail!("an empty password is not allowed by default");
        }
        let repo = Repository::open(backend, &password)
            .await
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("repository {}", arca_storage::location::redacted(&loc)))?;
        Ok(repo)
    }
}

/// A password file as restic reads it: the whole text, a byte-order mark dropped, UTF-16
/// converted, surrounding whitespace (a trailing newline, spaces) trimmed.
pub fn read_password_file(f: &str) -> Result<String> {
    let s = read_text_file(f).with_context(|| format!("reading password file {f}"))?;
    Ok(s.trim().to_string())
}

/// A text file as restic's `textfile.Read` takes it: UTF-8 with or without a byte-order
/// mark, or UTF-16 with one.
fn read_text_file(f: &str) -> Result<String> {
    let bytes = std::fs::read(f)?;
    let utf16 = |b: &[u8], read: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = b.chunks_exact(2).map(|c| read([c[0], c[1]])).collect();
        String::from_utf16(&units).map_err(|_| anyhow!("not valid UTF-16"))
    };
    match bytes.as_slice() {
        [0xEF, 0xBB, 0xBF, rest @ ..] => Ok(String::from_utf8_lossy(rest).into_owned()),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        b => Ok(String::from_utf8_lossy(b).into_owned()),
    }
}

/// A new password: from --new-password-file, else RESTIC_PASSWORD for init, else prompt twice.
pub fn new_password(file: Option<&str>, allow_env: bool) -> Result<String> {
    if let Some(f) = file {
        return read_password_file(f);
    }
    if allow_env {
        if let Ok(p) = std::env::var("RESTIC_PASSWORD") {
            return Ok(p);
        }
    }
    if !std::io::stdin().is_terminal() {
        bail!("no new password given: use --new-password-file or a terminal");
    }
    let a = rpassword::prompt_password("enter new password: ")?;
    let b = rpassword::prompt_password("enter password again: ")?;
    if a != b {
        bail!("passwords do not match");
    }
    if a.is_empty() {
        bail!("an empty password is not allowed");
    }
    Ok(a)
}
