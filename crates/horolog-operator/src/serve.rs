//! Serving HTTP/1 on a bound listener until shutdown: one loop for the metrics and probe server
//! and for the sandbox's API server.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `handler` on `listener` until `shutdown` resolves; then stops accepting, lets requests
/// in flight finish for at most `drain`, and returns. `what` names the server in logs.
///
/// Per-connection errors (a peer that resets, too many open files) are logged and never end
/// the server.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    what: &'static str,
    handler: H,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    tracing::info!(addr = ?listener.local_addr().ok(), "serving {what}");
    // Each connection holds a receiver; `closed()` on the sender then waits for all of them.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a {what} connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                // Err means the sender is gone, which also means stop.
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "{what} connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // A client that never finishes its request (a watch) must not hold the process.
    if tokio::time::timeout(drain, stop_tx.closed()).await.is_err() {
        tracing::warn!("{what} connections still open after shutdown; dropping them");
    }
}
