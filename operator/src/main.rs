//! `arca-operator`: runs Backups, Restores and Schedules, keeps storage locations checked and
//! repositories ready and maintained, and serves Prometheus metrics.

use anyhow::Result;
use clap::Parser;
use std::net::SocketAddr;
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
    /// Log lines as text, or as JSON objects for log aggregators (level with RUST_LOG)
    #[arg(long, env = "ARCA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Fatal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::from_default_env();
    if cli.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let metrics_address: Option<SocketAddr> = match cli.metrics_address.trim() {
        "" => None,
        a => Some(
            a.parse()
                .map_err(|e| anyhow::anyhow!("--metrics-address {a:?}: {e}"))?,
        ),
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        arca_storage::install_tls_provider();
        let client = kube::Client::try_default()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the Kubernetes API: {e}"))?;
        let mut ctx = arca_operator::context::Context::new(client, &cli.namespace);
        ctx.agent_image = cli.agent_image;
        let metrics = Arc::new(arca_operator::metrics::Metrics::default());
        if let Some(addr) = metrics_address {
            let m = metrics.clone();
            let listener = arca_operator::metrics::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
            tokio::spawn(async move {
                if let Err(e) = arca_operator::metrics::serve(listener, m).await {
                    tracing::error!("metrics server stopped: {e}");
                }
            });
        }
        let op = Arc::new(arca_operator::controller::Operator::new(ctx, metrics));
        arca_operator::controller::run(op).await;
        Ok(())
    })
}
