//! `kvctl serve`: open the data directory, bind, serve until a signal.

use std::net::SocketAddr;

use anyhow::Context;

use crate::cli::ServeArgs;
use crate::local::Engine;
use crate::server::{self, listen, AuthToken, ServerConfig, TlsConfig};
use crate::wal::{ScanError, WalError};

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    // As many workers as tokio would start (TOKIO_WORKER_THREADS, else one
    // per core), but at least two: a request that flushes the log on the
    // spot holds its worker for an fsync, and readers and request timeouts
    // must go on meanwhile even on a one-core machine.
    let wanted = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()));
    let workers = wanted.unwrap_or(2).max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Secrets and certificates first: a bad one must stop the server
    // before it replays the log or opens the port.
    let auth = AuthToken::resolve(args.auth_token_file.as_deref())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig::load(cert, key)?),
        _ => None,
    };
    let open_files = listen::raise_open_file_limit().context("cannot read the open-file limit")?;
    let capacity = listen::connection_capacity(open_files);
    let max_connections = args.max_connections.min(capacity);
    if max_connections < args.max_connections {
        tracing::warn!(
            "--max-connections {} lowered to {max_connections}: the process may open only {open_files} files",
            args.max_connections
        );
    }
    // Listen for signals before the (possibly long) replay, so a SIGTERM
    // that comes early still ends in a clean shutdown with exit 0.
    let stop = shutdown_signal()?;
    let data_dir = args.data_dir.clone();
    let fsync = args.fsync;
    let auto_compact = args.auto_compact();
    let opened =
        tokio::task::spawn_blocking(move || Engine::open_with(&data_dir, fsync, auto_compact))
            .await
            .context("opening the data directory panicked")?;
    let (db, report) = match opened {
        Ok(opened) => opened,
        Err(WalError::Scan(ScanError::Corrupt(corrupt))) => anyhow::bail!(
            "refusing to start: {corrupt}; the log was left untouched (`kvctl wal repair --data-dir {}` cuts it at the last good record, keeping a backup)",
            args.data_dir.display()
        ),
        Err(err) => return Err(err.into()),
    };
    crate::metrics::replay_finished(report.elapsed);
    if let Some(torn) = &report.torn {
        tracing::warn!(
            "cut a torn tail off {}: {torn}",
            args.data_dir.join(crate::wal::WAL_FILE).display()
        );
    }
    if auth.is_none() && !args.host.is_loopback() {
        tracing::warn!(
            "serving on {} without --auth-token-file: anyone who can reach the port can read, write, compact and snapshot the store",
            args.host
        );
    }
    let addr = SocketAddr::new(args.host, args.port);
    let listener = server::bind(addr).await?;
    tracing::info!(
        "kvctl serving on {}://{} (data dir {}, fsync {}{}); replayed {} records ({} bytes) in {:.1?}, {} live keys; at most {max_connections} connections (open-file limit {open_files})",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr().unwrap_or(addr),
        args.data_dir.display(),
        args.fsync,
        if auth.is_some() { ", bearer token required" } else { "" },
        report.records,
        report.bytes,
        report.elapsed,
        report.keys,
    );
    let config = ServerConfig {
        limits: args.limits(),
        auth,
        tls,
        timeouts: args.timeouts(),
        max_connections,
    };
    server::serve(listener, db, config, stop)
        .await
        .context("serving")?;
    tracing::info!("stopped cleanly, log synced");
    Ok(())
}

/// Resolves at the first SIGTERM or Ctrl-C; the handlers are installed now.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("Ctrl-C received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    })
}
