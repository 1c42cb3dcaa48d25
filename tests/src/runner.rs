//! Running `restic` and `arca` against a repository, with nothing from the host leaking in.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::fixtures::{tempdir, workspace_root};
use crate::tools::require_restic;

/// Default limit for one invocation; a hung process fails the test instead of hanging it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A command-line program run with a clean environment.
///
/// Every invocation gets `env_clear()` and then only: `PATH` (the host's, so tools like `rclone`
/// are found), `HOME`, `XDG_CACHE_HOME`, `XDG_CONFIG_HOME` and `RESTIC_CACHE_DIR` inside a private
/// temporary folder, `TMPDIR` (the host's temp dir), `TZ=UTC`, `LC_ALL=LANG=C.UTF-8`, then the
/// runner's own variables ([`Runner::env`]) and the invocation's ([`Invocation::env`]).
/// Stdin is empty unless [`Invocation::stdin`] gives bytes.
pub struct Runner {
    program: PathBuf,
    global_args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    scratch: tempfile::TempDir,
    timeout: Duration,
}

impl Runner {
    /// A runner for `program` with the clean base environment and no repository or password.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Runner {
            program: program.into(),
            global_args: Vec::new(),
            env: Vec::new(),
            scratch: tempdir("arca-runner-"),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The program this runner runs.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The private folder used as `HOME` and for caches.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// Set an environment variable for every invocation.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Remove an environment variable (e.g. `RESTIC_PASSWORD`) for every invocation.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// An argument put before the command's own arguments on every invocation (e.g. `--no-cache`).
    pub fn global_arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.global_args.push(arg.as_ref().to_owned());
        self
    }

    /// Remove every global argument equal to `arg`.
    pub fn remove_global_arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.global_args.retain(|a| a.as_os_str() != arg.as_ref());
        self
    }

    /// Limit for a single invocation (default 600 s); the process is killed after it.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// Start building an invocation with these arguments.
    pub fn cmd<I, S>(&self, args: I) -> Invocation<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Invocation {
            runner: self,
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            env: Vec::new(),
            stdin: None,
            current_dir: None,
        }
    }

    /// Run; on success return stdout, on failure panic with the exit status and stderr.
    pub fn run<I, S>(&self, args: I) -> Vec<u8>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).run()
    }

    /// [`Runner::run`], stdout as UTF-8 text (panics if it is not).
    pub fn run_string<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).run_string()
    }

    /// [`Runner::run`], stdout parsed as one JSON document.
    pub fn run_json<I, S>(&self, args: I) -> serde_json::Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).run_json()
    }

    /// [`Runner::run`], stdout parsed as JSON lines (`ls --json`, `backup --json`).
    pub fn run_json_lines<I, S>(&self, args: I) -> Vec<serde_json::Value>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).run_json_lines()
    }

    /// Run and return the full [`Output`] whatever the exit status.
    pub fn output<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).output()
    }

    /// Run, expecting failure: panics (with stdout) if the exit status is success.
    pub fn expect_failure<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).expect_failure()
    }
}

/// One invocation being built: `runner.cmd(["backup"]).arg(&path).stdin(b"..").run()`.
pub struct Invocation<'r> {
    runner: &'r Runner,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    current_dir: Option<PathBuf>,
}

impl Invocation<'_> {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Bytes to feed on stdin (otherwise stdin is empty).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// The command line for messages: program name and arguments, each `{:?}`-quoted if needed.
    pub fn describe(&self) -> String {
        let name = self
            .runner
            .program
            .file_name()
            .unwrap_or(self.runner.program.as_os_str());
        std::iter::once(name)
            .chain(self.runner.global_args.iter().map(OsString::as_os_str))
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(shell_word)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The [`Command`] this invocation would run (stdio not configured).
    pub fn command(&self) -> Command {
        let r = self.runner;
        let scratch = r.scratch.path();
        let mut cmd = Command::new(&r.program);
        cmd.env_clear();
        cmd.env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        );
        cmd.env("HOME", scratch.join("home"));
        cmd.env("XDG_CACHE_HOME", scratch.join("xdg-cache"));
        cmd.env("XDG_CONFIG_HOME", scratch.join("xdg-config"));
        cmd.env("RESTIC_CACHE_DIR", scratch.join("cache"));
        cmd.env("TMPDIR", std::env::temp_dir());
        cmd.env("TZ", "UTC");
        cmd.env("LANG", "C.UTF-8");
        cmd.env("LC_ALL", "C.UTF-8");
        for (key, value) in r.env.iter().chain(self.env.iter()) {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd.args(&r.global_args).args(&self.args);
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Run and return the full [`Output`] whatever the exit status. Panics only if the program
    /// cannot be started or runs past the runner's timeout.
    pub fn output(self) -> Output {
        let mut cmd = self.command();
        let _ = std::fs::create_dir_all(self.runner.scratch.path().join("home"));
        let (output, timed_out) =
            run_with_timeout(&mut cmd, self.stdin.clone(), self.runner.timeout).unwrap_or_else(
                |e| {
                    panic!(
                        "cannot start `{}` ({}): {e}",
                        self.describe(),
                        self.runner.program.display()
                    )
                },
            );
        if timed_out {
            panic!(
                "`{}` did not finish within {:?} and was killed\n{}",
                self.describe(),
                self.runner.timeout,
                format_output(&output)
            );
        }
        output
    }

    /// Run; on success return stdout, on failure panic with the exit status, stderr and stdout.
    pub fn run(self) -> Vec<u8> {
        let described = self.describe();
        let output = self.output();
        if !output.status.success() {
            panic!(
                "`{described}` failed: {}\n{}",
                output.status,
                format_output(&output)
            );
        }
        output.stdout
    }

    /// [`Invocation::run`], stdout as UTF-8 text.
    pub fn run_string(self) -> String {
        let described = self.describe();
        String::from_utf8(self.run())
            .unwrap_or_else(|e| panic!("`{described}` printed non-UTF-8 output: {e}"))
    }

    /// [`Invocation::run`], stdout parsed as one JSON document.
    pub fn run_json(self) -> serde_json::Value {
        let described = self.describe();
        let stdout = self.run();
        serde_json::from_slice(&stdout).unwrap_or_else(|e| {
            panic!(
                "`{described}` printed invalid JSON ({e}):\n{}",
                String::from_utf8_lossy(&stdout)
            )
        })
    }

    /// [`Invocation::run`], stdout parsed as JSON lines (blank lines ignored).
    pub fn run_json_lines(self) -> Vec<serde_json::Value> {
        let described = self.describe();
        let stdout = self.run();
        stdout
            .split(|&b| b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| {
                serde_json::from_slice(line).unwrap_or_else(|e| {
                    panic!(
                        "`{described}` printed a line that is not JSON ({e}): {}",
                        String::from_utf8_lossy(line)
                    )
                })
            })
            .collect()
    }

    /// Run, expecting a non-zero exit status; panics if it succeeded.
    pub fn expect_failure(self) -> Output {
        let described = self.describe();
        let output = self.output();
        if output.status.success() {
            panic!(
                "`{described}` succeeded but was expected to fail\n{}",
                format_output(&output)
            );
        }
        output
    }
}

fn shell_word(word: &OsStr) -> String {
    match word.to_str() {
        Some(s)
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) =>
        {
            s.to_owned()
        }
        _ => format!("{word:?}"),
    }
}

fn format_output(output: &Output) -> String {
    const LIMIT: usize = 8 * 1024;
    let clip = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        if text.len() > LIMIT {
            let mut end = LIMIT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}\n[... {} more bytes]", &text[..end], text.len() - end)
        } else {
            text.into_owned()
        }
    };
    format!(
        "--- stderr ---\n{}\n--- stdout ---\n{}",
        clip(&output.stderr).trim_end(),
        clip(&output.stdout).trim_end()
    )
}

/// Spawn with piped stdio, feed stdin and drain stdout/stderr on threads, and kill the process if
/// it runs past `timeout`. Returns the output and whether it timed out.
fn run_with_timeout(
    cmd: &mut Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> std::io::Result<(Output, bool)> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let feeder = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => Some(thread::spawn(move || {
            // A process that exits without reading its stdin is not an error here.
            let _ = pipe.write_all(&data);
        })),
        _ => None,
    };
    let mut out_pipe = child.stdout.take().expect("stdout is piped");
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });

    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let mut timed_out = false;
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(25));
    };
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok((
        Output {
            status,
            stdout,
            stderr,
        },
        timed_out,
    ))
}

/// The real `restic` against one repository.
///
/// `RESTIC_REPOSITORY` and `RESTIC_PASSWORD` are set in the environment (the password is never
/// on the command line), and `--no-cache` is passed so a local cache can never hide what is in
/// the repository (call [`Restic::with_cache`] to use a private cache folder instead).
///
/// ```no_run
/// # use arca_tests::*;
/// let repo = TempRepo::new();
/// let restic = Restic::new(repo.path(), "secret");
/// restic.run(["init"]);
/// let snapshots = restic.run_json(["snapshots", "--json"]);
/// ```
pub struct Restic(Runner);

impl Restic {
    /// restic ([`require_restic`]) with `RESTIC_REPOSITORY=repo` and `RESTIC_PASSWORD=password`.
    pub fn new(repo: impl AsRef<OsStr>, password: &str) -> Self {
        Self::with_bin(require_restic(), repo, password)
    }

    /// Like [`Restic::new`] with an explicit binary (e.g. from [`crate::restic_or_skip`]).
    pub fn with_bin(bin: impl Into<PathBuf>, repo: impl AsRef<OsStr>, password: &str) -> Self {
        let mut restic = Self::plain_with_bin(bin);
        restic
            .env("RESTIC_REPOSITORY", repo)
            .env("RESTIC_PASSWORD", password);
        restic
    }

    /// restic with no repository and no password set (for `version`, or tests passing `-r`).
    pub fn plain() -> Self {
        Self::plain_with_bin(require_restic())
    }

    /// Like [`Restic::plain`] with an explicit binary.
    pub fn plain_with_bin(bin: impl Into<PathBuf>) -> Self {
        let mut runner = Runner::new(bin);
        runner.global_arg("--no-cache");
        Restic(runner)
    }

    /// Use a cache (in the runner's private folder, shared by its invocations) instead of
    /// `--no-cache`.
    pub fn with_cache(mut self) -> Self {
        self.0.remove_global_arg("--no-cache");
        self
    }
}

impl Deref for Restic {
    type Target = Runner;
    fn deref(&self) -> &Runner {
        &self.0
    }
}

impl DerefMut for Restic {
    fn deref_mut(&mut self) -> &mut Runner {
        &mut self.0
    }
}

/// The built `arca` binary ([`arca_bin`]) against one repository: `RESTIC_REPOSITORY` and
/// `RESTIC_PASSWORD` in the environment (arca honours both), `RUST_BACKTRACE=1`, and, as for
/// [`Restic`], `--no-cache` so that a cache never hides what the repository holds (call
/// [`Arca::with_cache`] for a private cache folder).
pub struct Arca(Runner);

impl Arca {
    pub fn new(repo: impl AsRef<OsStr>, password: &str) -> Self {
        Self::with_bin(arca_bin(), repo, password)
    }

    /// Like [`Arca::new`] with an explicit binary (e.g. `env!("CARGO_BIN_EXE_arca")` in
    /// `cli/tests`).
    pub fn with_bin(bin: impl Into<PathBuf>, repo: impl AsRef<OsStr>, password: &str) -> Self {
        let mut arca = Self::plain_with_bin(bin);
        arca.env("RESTIC_REPOSITORY", repo)
            .env("RESTIC_PASSWORD", password);
        arca
    }

    /// arca with no repository and no password set.
    pub fn plain() -> Self {
        Self::plain_with_bin(arca_bin())
    }

    pub fn plain_with_bin(bin: impl Into<PathBuf>) -> Self {
        let mut runner = Runner::new(bin);
        runner.env("RUST_BACKTRACE", "1").global_arg("--no-cache");
        Arca(runner)
    }

    /// Use a cache (in the runner's private folder, `$RESTIC_CACHE_DIR`, shared by its
    /// invocations) instead of `--no-cache`.
    pub fn with_cache(mut self) -> Self {
        self.0.remove_global_arg("--no-cache");
        self
    }
}

impl Deref for Arca {
    type Target = Runner;
    fn deref(&self) -> &Runner {
        &self.0
    }
}

impl DerefMut for Arca {
    fn deref_mut(&mut self) -> &mut Runner {
        &mut self.0
    }
}

/// Path of the built `arca` binary: `$ARCA_BIN` if set, else `target/<profile>/arca` next to the
/// running test executable (which lives in `target/<profile>/deps/`). Panics with
/// "run `cargo build -p arca` first" if it is not there, and warns on stderr if it is older than
/// the workspace's sources (a stale binary).
pub fn arca_bin() -> PathBuf {
    workspace_bin("arca", "ARCA_BIN", "arca")
}

/// Path of the built `arca-agent` binary (the node agent and the restore-wait helper), found
/// like [`arca_bin`]: `$ARCA_AGENT_BIN`, else next to the test executable.
pub fn agent_bin() -> PathBuf {
    workspace_bin("arca-agent", "ARCA_AGENT_BIN", "arca-agent")
}

fn workspace_bin(name: &str, var: &str, package: &str) -> PathBuf {
    let path = match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = std::env::current_exe().expect("the path of the running test executable");
            let mut dir = exe
                .parent()
                .expect("the test executable is in a folder")
                .to_path_buf();
            if dir.file_name() == Some(OsStr::new("deps")) {
                dir.pop();
            }
            dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !path.is_file() {
        panic!(
            "the {name} binary is not at {}: run `cargo build -p {package}` first \
             (bash scripts/test.sh does), or set {var}",
            path.display()
        );
    }
    warn_if_stale(&path);
    path
}

fn warn_if_stale(bin: &Path) {
    static CHECKED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if !checked.iter().any(|b| b == bin) {
        checked.push(bin.to_path_buf());
        check_stale(bin);
    }
}

fn check_stale(bin: &Path) {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return;
    };
    let root = workspace_root();
    let newest = [
        "cli",
        "agent",
        "api",
        "engine",
        "storage",
        "repo-format",
        "chunker",
    ]
    .iter()
    .filter_map(|krate| newest_mtime(&root.join(krate).join("src")))
    .max();
    if let Some(newest) = newest {
        if newest > built {
            let _ = writeln!(
                std::io::stderr().lock(),
                "WARNING: {} is older than the sources; run `cargo build` to test the current \
                 code",
                bin.display()
            );
        }
    }
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let candidate = if meta.is_dir() {
            newest_mtime(&entry.path())
        } else {
            meta.modified().ok()
        };
        newest = newest.max(candidate);
    }
    newest
}

/// `cp -a src dst` (GNU cp: preserves modes, times, links, hardlinks). `dst` must not exist.
pub fn cp_a(src: &Path, dst: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
    assert!(
        out.status.success(),
        "`cp -a {} {}` failed: {}",
        src.display(),
        dst.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
