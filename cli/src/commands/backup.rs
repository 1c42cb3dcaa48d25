//! `arca backup`, with restic's flags, output and exit codes.

use crate::global::GlobalOptions;
use crate::output::{format_bytes, Bar, JsonObject};
use anyhow::{anyhow, bail, Context, Result};
use arca_engine::backup::{self, BackupOptions, BackupResult, ChangeIgnore};
use arca_engine::exclude::{ExcludeRules, CACHEDIR_TAG};
use arca_engine::filter::Patterns;
use arca_engine::forget::GroupBy;
use arca_engine::progress::{NoProgress, Progress};
use arca_engine::snapshots;
use arca_engine::writer::WriterOptions;
use arca_engine::Repository;
use arca_format::gotime::GoTime;
use clap::Args;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// restic's exit code for a snapshot written with some files unreadable.
const EXIT_INCOMPLETE: i32 = 3;

#[derive(Args)]
pub struct BackupArgs {
    /// files and directories to back up
    paths: Vec<PathBuf>,
    /// read backup from stdin
    #[arg(long)]
    stdin: bool,
    /// interpret arguments as command to execute and store its stdout
    #[arg(long)]
    stdin_from_command: bool,
    /// filename to use when reading from stdin
    #[arg(long, default_value = "stdin")]
    stdin_filename: String,
    /// add tags for the new snapshot in the format `tag[,tag,...]` (can be specified multiple times)
    #[arg(long)]
    tag: Vec<String>,
    /// set the hostname for the snapshot manually
    #[arg(short = 'H', long, env = "RESTIC_HOST", hide_env_values = true)]
    host: Option<String>,
    /// use this parent snapshot (default: latest snapshot in the group determined by --group-by and not newer than the timestamp determined by --time)
    #[arg(long)]
    parent: Option<String>,
    /// group snapshots by host, paths and/or tags, separated by comma (disable grouping with '')
    #[arg(short = 'g', long, default_value = "host,paths", value_parser = GroupBy::parse)]
    group_by: GroupBy,
    /// read n files concurrently (default: $RESTIC_READ_CONCURRENCY or 2)
    #[arg(long, value_name = "n")]
    read_concurrency: Option<usize>,
    /// do not run scanner to estimate size of backup
    #[arg(long)]
    no_scan: bool,
    /// ignore inode number and ctime changes when checking for modified files
    #[arg(long)]
    ignore_inode: bool,
    /// ignore ctime changes when checking for modified files
    #[arg(long)]
    ignore_ctime: bool,
    /// skip snapshot creation if identical to parent snapshot
    #[arg(long)]
    skip_if_unchanged: bool,
    /// force re-reading the target files/directories (overrides the "parent" flag)
    #[arg(short, long)]
    force: bool,
    /// exclude a pattern (can be specified multiple times)
    #[arg(short, long)]
    exclude: Vec<String>,
    /// same as --exclude pattern but ignores the casing of filenames
    #[arg(long)]
    iexclude: Vec<String>,
    /// read exclude patterns from a file (can be specified multiple times)
    #[arg(long)]
    exclude_file: Vec<PathBuf>,
    /// same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long)]
    iexclude_file: Vec<PathBuf>,
    /// excludes cache directories that are marked with a CACHEDIR.TAG file
    #[arg(long)]
    exclude_caches: bool,
    /// takes filename[:header], exclude contents of directories containing filename (except filename itself) if header of that file is as provided
    #[arg(long)]
    exclude_if_present: Vec<String>,
    /// max size of the files to be backed up (allowed suffixes: k/K, m/M, g/G, t/T)
    #[arg(long)]
    exclude_larger_than: Option<String>,
    /// exclude other file systems, don't cross filesystem boundaries and subvolumes
    #[arg(short = 'x', long)]
    one_file_system: bool,
    /// read the files to backup from file (can be combined with file args)
    #[arg(long)]
    files_from: Vec<PathBuf>,
    /// read the files to backup from file, one path per line, no comments or glob expansion
    #[arg(long)]
    files_from_verbatim: Vec<PathBuf>,
    /// read the files to backup from file, NUL-separated
    #[arg(long)]
    files_from_raw: Vec<PathBuf>,
    /// do not upload or write any data, just show what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// store the atime for all files and directories
    #[arg(long)]
    with_atime: bool,
    /// time of the backup (ex. '2012-11-01 22:08:41') (default: now)
    #[arg(long)]
    time: Option<String>,
}

/// restic's size flags: a number with an optional k/m/g/t suffix (binary units).
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        Some('b') => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow!("invalid size {s:?}"))?;
    n.checked_mul(mul)
        .ok_or_else(|| anyhow!("size {s:?} too large"))
}

pub fn read_patterns(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading pattern file {}", f.display()))?;
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            out.push(expand_env(l));
        }
    }
    Ok(out)
}

/// `$VAR` and `${VAR}` in pattern files, as restic expands them.
fn expand_env(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                name.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.peek() == Some(&'}') {
            chars.next();
        }
        out.push_str(&std::env::var(&name).unwrap_or_default());
    }
    out
}

/// A --files-from* list: a file, or standard input for `-` (read once, whichever flag names
/// it first).
fn read_list(f: &std::path::Path) -> Result<Vec<u8>> {
    if f.as_os_str() == "-" {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut data)
            .context("reading the list of files from standard input")?;
        return Ok(data);
    }
    std::fs::read(f).with_context(|| format!("reading {}", f.display()))
}

fn read_files_from(a: &BackupArgs) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    // restic expands wildcards (Go's filepath.Glob) in --files-from lines, not variables.
    for f in &a.files_from {
        let text = String::from_utf8_lossy(&read_list(f)?).into_owned();
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let expanded = arca_engine::filter::glob(l).map_err(|e| anyhow!(e))?;
            if expanded.is_empty() {
                eprintln!("pattern {l:?} does not match any files, skipping");
            }
            out.extend(expanded);
        }
    }
    for f in &a.files_from_verbatim {
        let text = read_list(f)?;
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            out.push(PathBuf::from(std::ffi::OsStr::from_bytes(line)));
        }
    }
    for f in &a.files_from_raw {
        let text = read_list(f)?;
        if text.is_empty() {
            continue;
        }
        // As restic: every name ends in a NUL, and none is empty.
        let Some(body) = text.strip_suffix(&[0]) else {
            bail!("--files-from-raw: trailing zero byte missing");
        };
        for name in body.split(|&b| b == 0) {
            if name.is_empty() {
                bail!("--files-from-raw: empty filename in listing");
            }
            out.push(PathBuf::from(std::ffi::OsStr::from_bytes(name)));
        }
    }
    Ok(out)
}

/// `RESTIC_READ_CONCURRENCY`, ignored when it is not a number (as restic does).
fn read_concurrency_env() -> Option<usize> {
    std::env::var("RESTIC_READ_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
}

pub fn parse_time(s: &str) -> Result<GoTime> {
    if let Ok(t) = GoTime::parse(s) {
        return Ok(t);
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map_err(|_| anyhow!("invalid --time {s:?}, use 'YYYY-MM-DD HH:MM:SS'"))?;
    let local = naive
        .and_local_timezone(chrono::Local)
        .single()
        .ok_or_else(|| anyhow!("ambiguous local time {s:?}"))?;
    Ok(GoTime(local.fixed_offset()))
}

/// Backup progress: a byte bar on a terminal, JSON status lines with --json.
struct BackupProgress {
    bar: Bar,
    json: bool,
    done: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
    last: std::sync::Mutex<Instant>,
}

impl Progress for BackupProgress {
    fn set_total(&self, total: u64) {
        self.total
            .store(total, std::sync::atomic::Ordering::Relaxed);
        self.bar.set_total(total);
    }
    fn add(&self, n: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let done = self.done.fetch_add(n, Relaxed) + n;
        self.bar.add(n);
        if self.json {
            let mut last = self.last.lock().expect("progress mutex");
            if last.elapsed().as_millis() >= 1000 {
                *last = Instant::now();
                let total = self.total.load(Relaxed);
                let pct = if total > 0 {
                    (done as f64 / total as f64).min(1.0)
                } else {
                    0.0
                };
                let line = JsonObject::new()
                    .str("message_type", b"status")
                    .num("percent_done", pct)
                    .num("total_bytes", total)
                    .num("bytes_done", done)
                    .finish();
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(&line);
                let _ = o.write_all(b"\n");
            }
        }
    }
}

pub async fn run(mut repo: Repository, a: BackupArgs, g: GlobalOptions) -> Result<i32> {
    let started = Instant::now();
    let writer = WriterOptions {
        dry_run: a.dry_run,
        ..g.writer_options()?
    };
    let from_stdin = a.stdin || a.stdin_from_command;
    let listed = !(a.files_from.is_empty()
        && a.files_from_verbatim.is_empty()
        && a.files_from_raw.is_empty());
    if from_stdin && listed {
        bail!("--stdin and --files-from cannot be used together");
    }
    if a.stdin && !a.paths.is_empty() {
        bail!("--stdin was specified and files/dirs were listed as arguments");
    }
    if a.stdin_from_command && a.paths.is_empty() {
        bail!("--stdin-from-command needs the command to run as arguments");
    }
    let mut paths = if a.stdin_from_command {
        Vec::new()
    } else {
        a.paths.clone()
    };
    paths.extend(read_files_from(&a)?);
    if !from_stdin && paths.is_empty() {
        bail!("nothing to backup, please specify source files/dirs");
    }
    // Like restic (0.17 on): targets that are missing or cannot be reached are skipped with a
    // warning and make the backup incomplete (exit code 3); none left is an error.
    let mut skipped_targets = false;
    if !from_stdin {
        let before = paths.len();
        paths.retain(|p| match std::fs::symlink_metadata(p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("{} does not exist, skipping", p.display());
                false
            }
            Err(_) => {
                eprintln!("{} cannot be accessed, skipping", p.display());
                false
            }
            Ok(_) => true,
        });
        if paths.is_empty() {
            bail!("all source directories/files do not exist");
        }
        skipped_targets = paths.len() < before;
    }
    let mut excludes = a.exclude.clone();
    excludes.extend(read_patterns(&a.exclude_file)?);
    let mut iexcludes = a.iexclude.clone();
    iexcludes.extend(read_patterns(&a.iexclude_file)?);
    let mut if_present = a.exclude_if_present.clone();
    if a.exclude_caches {
        if_present.push(CACHEDIR_TAG.to_string());
    }
    let larger = a
        .exclude_larger_than
        .as_deref()
        .map(parse_size)
        .transpose()?;
    let abs_paths: Vec<PathBuf> = paths.iter().map(|p| backup::absolute(p)).collect();
    let rules = ExcludeRules::new(
        (!excludes.is_empty())
            .then(|| Patterns::new(&excludes, false))
            .transpose()
            .map_err(|e| anyhow!(e))?,
        (!iexcludes.is_empty())
            .then(|| Patterns::new(&iexcludes, true))
            .transpose()
            .map_err(|e| anyhow!(e))?,
        &if_present,
        larger,
        a.one_file_system.then_some(&abs_paths[..]),
    )?;
    let selector: Arc<dyn backup::Selector> = Arc::new(rules);

    let ibar = Bar::new(g.show_progress(), false, "index");
    repo.load_index(&ibar).await?;
    ibar.finish();

    let hostname = a.host.clone().unwrap_or_else(arca_engine::sys::hostname);
    let abs_strings: Vec<String> = if from_stdin {
        vec![format!("/{}", a.stdin_filename)]
    } else {
        paths
            .iter()
            .map(|p| backup::absolute(p).to_string_lossy().into_owned())
            .collect()
    };
    let time = a.time.as_deref().map(parse_time).transpose()?;
    let tags: Vec<String> = a
        .tag
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    // As restic: no parent for --stdin (a stream has no metadata to compare).
    let parent = if a.force || a.stdin {
        None
    } else if let Some(p) = &a.parent {
        Some(
            snapshots::find(&repo, p, &Default::default())
                .await
                .with_context(|| format!("parent snapshot {p}"))?,
        )
    } else {
        // The latest snapshot of this backup's group that is not newer than its time.
        let g = a.group_by;
        let filter = snapshots::SnapshotFilter {
            hosts: if g.host {
                vec![hostname.clone()]
            } else {
                Vec::new()
            },
            tags: if g.tags && !tags.is_empty() {
                vec![tags.clone()]
            } else {
                Vec::new()
            },
            paths: if g.paths {
                abs_strings.clone()
            } else {
                Vec::new()
            },
        };
        let limit = time.as_ref().map(|t| t.0);
        snapshots::load_all(&repo)
            .await?
            .into_iter()
            .rev()
            .filter(|s| limit.is_none_or(|l| s.time.0 <= l))
            .find(|s| filter.matches(s) && (!g.paths || s.paths.len() == abs_strings.len()))
    };
    if let Some(p) = &parent {
        if !g.json {
            g.verbose(format!("using parent snapshot {}", p.id.short()));
        }
    }
    let threads = match a.read_concurrency.or_else(read_concurrency_env) {
        Some(0) => bail!("--read-concurrency must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    };
    let opts = BackupOptions {
        paths: paths.clone(),
        tags,
        hostname,
        parent,
        force: a.force,
        with_atime: a.with_atime,
        // restic records only the --exclude patterns in the snapshot.
        excludes: a.exclude.clone(),
        selector: selector.clone(),
        writer,
        time,
        threads,
        program_version: format!("arca {}", env!("CARGO_PKG_VERSION")),
        contents_of: false,
        skip_if_unchanged: a.skip_if_unchanged,
        ignore: ChangeIgnore {
            ctime: a.ignore_ctime,
            inode: a.ignore_inode,
        },
    };
    let progress = Arc::new(BackupProgress {
        bar: Bar::new(g.show_progress(), true, "backup"),
        json: g.json && !g.quiet,
        done: Default::default(),
        total: Default::default(),
        last: std::sync::Mutex::new(Instant::now()),
    });
    if (g.show_progress() || g.json) && !from_stdin && !a.no_scan {
        let (p, sel, prog) = (paths.clone(), selector.clone(), progress.clone());
        std::thread::spawn(move || backup::scan(&p, sel.as_ref(), prog.as_ref()));
    }
    let repo = Arc::new(repo);
    let prog: Arc<dyn Progress> = if g.quiet {
        Arc::new(NoProgress)
    } else {
        progress.clone()
    };
    let res: BackupResult = if a.stdin_from_command {
        // The snapshot is written only if the command ends well: the reader turns a failed
        // exit into a read error, which fails the backup before its snapshot is saved.
        let command = crate::command_reader::CommandReader::spawn(&a.paths)?;
        backup::backup_stdin(
            repo,
            opts,
            a.stdin_filename.clone(),
            Box::new(command),
            prog,
        )
        .await?
    } else if a.stdin {
        backup::backup_stdin(
            repo,
            opts,
            a.stdin_filename.clone(),
            Box::new(std::io::stdin()),
            prog,
        )
        .await?
    } else {
        backup::backup(repo, opts, prog).await?
    };
    progress.bar.finish();
    for e in &res.errors {
        if g.json {
            let line = JsonObject::new()
                .str("message_type", b"error")
                .raw(
                    "error",
                    &JsonObject::new().str("message", e.as_bytes()).finish(),
                )
                .str("during", b"archival")
                .finish();
            // restic prints error messages on stderr, also with --json.
            eprintln!("{}", String::from_utf8_lossy(&line));
        } else {
            eprintln!("error: {e}");
        }
    }
    let s = &res.summary;
    let id = res.snapshot.as_ref().map(|s| s.id);
    if g.json {
        let mut o = JsonObject::new()
            .str("message_type", b"summary")
            .num("files_new", s.files_new)
            .num("files_changed", s.files_changed)
            .num("files_unmodified", s.files_unmodified)
            .num("dirs_new", s.dirs_new)
            .num("dirs_changed", s.dirs_changed)
            .num("dirs_unmodified", s.dirs_unmodified)
            .num("data_blobs", s.data_blobs)
            .num("tree_blobs", s.tree_blobs)
            .num("data_added", s.data_added)
            .num("data_added_packed", s.data_added_packed)
            .num("total_files_processed", s.total_files_processed)
            .num("total_bytes_processed", s.total_bytes_processed)
            .num("total_duration", started.elapsed().as_secs_f64());
        if let Some(id) = id {
            o = o.str("snapshot_id", id.to_hex().as_bytes());
        }
        if a.dry_run {
            o = o.raw("dry_run", b"true");
        }
        println!("{}", String::from_utf8_lossy(&o.finish()));
    } else if !g.quiet {
        println!();
        println!(
            "Files:       {:5} new, {:5} changed, {:5} unmodified",
            s.files_new, s.files_changed, s.files_unmodified
        );
        println!(
            "Dirs:        {:5} new, {:5} changed, {:5} unmodified",
            s.dirs_new, s.dirs_changed, s.dirs_unmodified
        );
        if a.dry_run {
            println!(
                "Would add to the repository: {} ({} stored)",
                format_bytes(s.data_added),
                format_bytes(s.data_added_packed)
            );
        } else {
            println!(
                "Added to the repository: {} ({} stored)",
                format_bytes(s.data_added),
                format_bytes(s.data_added_packed)
            );
        }
        println!();
        let secs = started.elapsed().as_secs();
        println!(
            "processed {} files, {} in {}:{:02}",
            s.total_files_processed,
            format_bytes(s.total_bytes_processed),
            secs / 60,
            secs % 60
        );
        match id {
            Some(id) => println!("snapshot {} saved", id.short()),
            None if res.skipped => println!("skipped creating snapshot"),
            None => println!("dry run: no snapshot saved"),
        }
    }
    if !res.errors.is_empty() || skipped_targets {
        eprintln!("Warning: at least one source file could not be read");
        return Ok(EXIT_INCOMPLETE);
    }
    Ok(0)
}
