//! The shutdown signal: Ctrl-C or SIGTERM.
//!
//! Services pass this future to axum's graceful shutdown and to their
//! consumers, so they stop accepting work, finish what is in flight, and
//! exit 0.

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C, shutting down"),
        () = term => tracing::info!("received SIGTERM, shutting down"),
    }
}
