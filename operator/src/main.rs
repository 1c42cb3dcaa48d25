//! `arca-operator`: runs Backups, Restores and Schedules, keeps storage locations checked and
//! repositories ready and maintained, and serves Prometheus metrics.

use anyhow::Result;
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "arca-operator", version, about = "Arca's Kubernetes operator")]
struct Cli {
    /// The namespace of Arca's resources, repository keys and credentials.
    #[arg(long, env = "POD_NAMESPACE", default_value = "arca-system")]
    namespace: String,
    /// Where to serve /metrics (Prometheus); empty to serve none.
    #[arg(long, default_value = "0.0.0.0:8085")]
    metrics_address: String,
    /// The image of the restore-wait init container added to restored pods (default: the
    /// image of the arca-agent DaemonSet in --namespace).
    #[arg(long, env = "ARCA_AGENT_IMAGE")]
    agent_image: Option<String>,
    /// Keep index files and tree packs in this folder (restic's cache layout).
    #[arg(long, env = "ARCA_CACHE_DIR")]
    cache_dir: Option<std::path::PathBuf>,
    /// How long maintenance, expiry and manifest backups wait for a repository lock held by
    /// running work (e.g. 30m, 4h) before they fail.
    #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
    retry_lock: std::time::Duration,
    /// Log lines as text, or as JSON objects for log aggregators (level with RUST_LOG)
    #[arg(long, env = "ARCA_LOG_FORMAT", default_value = "text", value_parser = arca_reconcile::logging::FORMATS)]
    log_format: String,
}

fn main() -> ExitCode {
    arca_reconcile::exit_code(run(Cli::parse()))
}

fn run(cli: Cli) -> Result<()> {
    arca_reconcile::logging::init(&cli.log_format);
    let metrics_address = arca_reconcile::metrics::address(&cli.metrics_address)
        .map_err(|e| anyhow::anyhow!("--metrics-address {:?}: {e}", cli.metrics_address))?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        arca_storage::install_tls_provider();
        let client = kube::Client::try_default()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the Kubernetes API: {e}"))?;
        let mut ctx = arca_operator::context::Context::new(client, &cli.namespace);
        ctx.agent_image = cli.agent_image;
        ctx.cache_dir = cli.cache_dir;
        ctx.lock_retry = arca_engine::lock::RetryLock::up_to(cli.retry_lock);
        let metrics = Arc::new(arca_operator::metrics::Metrics::default());
        if let Some(addr) = metrics_address {
            let m = metrics.clone();
            arca_reconcile::metrics::spawn(addr, Arc::new(move || m.encode()))
                .await
                .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
        }
        let op = Arc::new(arca_operator::controller::Operator::new(ctx, metrics));
        arca_operator::controller::run(op).await;
        Ok(())
    })
}
