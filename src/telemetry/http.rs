//! The operations endpoint: `/metrics` (Prometheus text), `/healthz`
//! (process alive) and `/readyz` (SQS reachable recently, sinks configured).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::ingest::sqs::Health;
use crate::shard::now_ms;
use crate::telemetry::metrics;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    sinks: usize,
    /// How recent a successful ReceiveMessage must be for readiness.
    ready_window_ms: i64,
}

async fn metrics_handler() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        metrics().render(),
    )
}

async fn readyz(State(s): State<AppState>) -> (StatusCode, String) {
    let last = s.health.sqs_last_ok_ms.load(Ordering::Acquire);
    let sqs_ok = last > 0 && now_ms() - last <= s.ready_window_ms;
    let sinks_ok = s.sinks > 0;
    let body = format!("sqs_reachable={sqs_ok}\nsinks_configured={sinks_ok}\n");
    if sqs_ok && sinks_ok {
        (StatusCode::OK, body)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

/// Bind `addr` and serve until `token` is cancelled. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    sinks: usize,
    wait_time_secs: u32,
    token: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let state = AppState {
        health,
        sinks,
        ready_window_ms: (wait_time_secs as i64 * 1000) * 3 + 30_000,
    };
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "HTTP server failed.");
        }
    });
    Ok(bound)
}
