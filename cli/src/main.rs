//! `arca`: a restic-compatible command line over the Arca engine.

mod command_reader;
mod commands;
mod global;
mod output;
mod snapshot_table;

use clap::Parser;
use global::GlobalOptions;

#[derive(Parser)]
#[command(
    name = "arca",
    version,
    about = "Fast, restic-compatible backups",
    disable_help_subcommand = false
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: commands::Command,
}

/// The whole command line's definition, for `arca generate`.
pub fn cli_command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// restic's exit code after SIGINT or SIGTERM.
const EXIT_INTERRUPTED: i32 = 130;

/// Resolves on SIGINT or SIGTERM with the signal's name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers the default action (exit) stays: nothing to wait for here.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupt",
        _ = term.recv() => "terminated",
    }
}

fn main() {
    let cli = Cli::parse();
    // glibc gives every thread that allocates its own arena; with a worker pool plus
    // blocking threads that multiplies peak memory. A few arenas are plenty here.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code, reason = "mallopt has no safe wrapper")]
    // SAFETY: mallopt only tunes the allocator and is called before any other thread exists.
    // Blocks of 4 MiB and more (index JSON, large blobs) are mapped and unmapped on free:
    // on the heap their holes fragmented it, and a million-file backup kept ~40 MiB more
    // resident. Pack buffers, which are reused, come from a pool and stay mapped.
    // Fixing the mmap threshold also fixes the trim threshold at 128 KiB, so every freed
    // chunk buffer handed its pages back (madvise, TLB shootdowns, page faults to get them
    // again): a third of backup's system time. Keeping 16 MiB per arena stops that.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
        .expect("tokio runtime");
    // restic's mount ends with success when stopped: that is how it is meant to end.
    let stopped_code = match cli.command {
        commands::Command::Mount(_) => 0,
        _ => EXIT_INTERRUPTED,
    };
    let code = rt.block_on(async {
        tokio::select! {
            done = commands::run(cli.command, cli.global) => match done {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("Fatal: {}", global::one_line(&e));
                    global::exit_code(&e)
                }
            },
            why = arca_engine::lock::lost() => {
                eprintln!("Fatal: {why}");
                1
            }
            signal = interrupted() => {
                // As restic: the lock files go, so other hosts need not wait for them to
                // go stale (30 minutes).
                eprintln!("signal {signal} received, cleaning up");
                arca_engine::lock::remove_held(std::time::Duration::from_secs(10)).await;
                stopped_code
            }
        }
    });
    // Do not wait for background tasks (lock refresh) on the way out.
    rt.shutdown_background();
    std::process::exit(code);
}
