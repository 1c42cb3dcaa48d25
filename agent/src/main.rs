//! `arca-agent`: the node agent's entry points.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "arca-agent", version, about = "Arca's node agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node agent: back up and restore the pod volumes of this node.
    Run {
        /// This node's name (from the downward API).
        #[arg(long, env = "NODE_NAME")]
        node: String,
        /// The namespace of Arca's resources and Secrets.
        #[arg(long, env = "POD_NAMESPACE", default_value = "arca-system")]
        namespace: String,
        /// The kubelet's pods directory as mounted into this container.
        #[arg(long, default_value = "/host_pods")]
        kubelet_pods: PathBuf,
        /// Keep index files and tree packs in this folder (restic's cache layout), so that
        /// incremental volume backups do not read them from the store again.
        #[arg(long, env = "ARCA_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Volume transfers at once on this node.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// How long a volume backup or restore waits for the repository lock while
        /// maintenance holds it, before it fails (restic's --retry-lock; e.g. 30m, 4h).
        #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
        retry_lock: Duration,
        /// Log lines as text, or as JSON objects for log aggregators (level with RUST_LOG)
        #[arg(long, env = "ARCA_LOG_FORMAT", default_value = "text", value_parser = arca_reconcile::logging::FORMATS)]
        log_format: String,
        /// Where to serve /metrics (Prometheus); empty to serve none.
        #[arg(long, default_value = "")]
        metrics_address: String,
    },
    /// Wait until every restored volume has its done marker (run as the restore-wait init
    /// container); fail on a failure marker or after the timeout.
    RestoreWait {
        /// The Restore's UID (the marker's name).
        restore_uid: String,
        /// Where the restored volumes are mounted, one folder each.
        #[arg(long, default_value = "/restores")]
        restores_dir: PathBuf,
        /// Give up after this long (e.g. 30m, 4h).
        #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// How often to look.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: Duration,
    },
    /// Keep a claim mounted for the node agent (the container of a claim helper pod): do
    /// nothing until stopped.
    Hold,
}

fn main() -> ExitCode {
    arca_reconcile::exit_code(run(Cli::parse()))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            node,
            namespace,
            kubelet_pods,
            concurrency,
            retry_lock,
            cache_dir,
            log_format,
            metrics_address,
        } => {
            arca_reconcile::logging::init(&log_format);
            let metrics_address = arca_reconcile::metrics::address(&metrics_address)
                .map_err(|e| anyhow::anyhow!("--metrics-address {metrics_address:?}: {e}"))?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                arca_storage::install_tls_provider();
                let client = kube::Client::try_default()
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot reach the Kubernetes API: {e}"))?;
                let mut ctx =
                    arca_agent::context::Context::new(client, &node, &namespace, kubelet_pods);
                ctx.transfers = tokio::sync::Semaphore::new(concurrency.max(1));
                ctx.lock_retry = arca_engine::lock::RetryLock::up_to(retry_lock);
                ctx.cache_dir = cache_dir;
                if let Some(addr) = metrics_address {
                    let failures = ctx.failures.clone();
                    let encode = move || arca_agent::metrics::encode(&failures);
                    arca_reconcile::metrics::spawn(addr, std::sync::Arc::new(encode))
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
                }
                arca_agent::controller::run(std::sync::Arc::new(ctx)).await?;
                Ok(())
            })
        }
        Command::RestoreWait {
            restore_uid,
            restores_dir,
            timeout,
            interval,
        } => {
            let n = arca_agent::restore_wait::wait(&restores_dir, &restore_uid, timeout, interval)?;
            println!("all {n} volume(s) restored");
            Ok(())
        }
        Command::Hold => {
            // As a container's first process, a signal without a handler is ignored: stop
            // on SIGTERM rather than wait for the kill at the end of the grace period.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = signal(SignalKind::terminate())?;
                let mut int = signal(SignalKind::interrupt())?;
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                Ok(())
            })
        }
    }
}
