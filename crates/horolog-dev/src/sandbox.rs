//! `horolog-dev sandbox`: a stand-in cluster on this machine, for running the operator and the load
//! tool where there is no Kubernetes. It serves horolog's in-memory API server (the one the
//! controller tests and local mode use, see [`horolog_memserver`]) over plain HTTP on a loopback
//! port, writes a kubeconfig for it, and runs a kubelet stand-in for its Pods: simulated by
//! default (each Pod runs for `--pod-run-time` and succeeds, as KWOK's nodes do), or the local
//! executor (each Pod's command runs as a process here), or none (Pods stay `Pending`).
//!
//! It is not a Kubernetes API server: no schema validation, admission, RBAC or discovery (so
//! `kubectl` cannot use it), no authentication and no TLS. That is why it listens on loopback
//! addresses only. What it is good for: the operator (`horolog run`) and `horolog-dev load` run
//! against it unchanged, over real HTTP connections, as separate processes, so the operator's
//! own CPU, memory, fire delay and writes per run can be measured without a cluster. It serves
//! what [`horolog_memserver::ResourceType::defaults`] and the horolog CRDs list, and `GET
//! /metrics` with `apiserver_request_total` as a real API server counts it (plus a `client`
//! label; the kubelet stand-in's writes are client `kubelet`, the garbage collector's
//! `garbage-collector`). It stores `batch/v1` CronJobs and Jobs but runs no controller for them,
//! so `horolog-dev load --compare-cronjob` needs a real cluster.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service;

use horolog::api::Duration;
use horolog::clock::{Clock, SystemClock};
use horolog_local::executor::{Mode, PodRunner};
use horolog_memserver::{ApiServer, RequestMatch, ResponseBody};

/// How long open connections (watches) get to end when the sandbox stops.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// A plain-text response.
fn text_response(
    status: http::StatusCode,
    content_type: &'static str,
    text: String,
) -> http::Response<ResponseBody> {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::new(bytes::Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

/// A 503 response saying why.
fn unavailable(error: &std::io::Error) -> http::Response<ResponseBody> {
    text_response(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        format!("unavailable: {error}"),
    )
}

/// `GET /metrics`: the request counts, as a real API server's `/metrics` shows
/// `apiserver_request_total`.
fn metrics(server: &ApiServer) -> http::Response<ResponseBody> {
    text_response(
        http::StatusCode::OK,
        "text/plain; version=0.0.4",
        server.metrics_text(),
    )
}

/// The name of the cluster, user and context in the kubeconfig the sandbox writes.
pub const CONTEXT: &str = "horolog-sandbox";

/// What runs the sandbox's Pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Kubelet {
    /// No process: each Pod is Running at once and Succeeded after --pod-run-time.
    #[default]
    Simulate,
    /// Each Pod's first container command runs as a process on this host, as in
    /// `horolog run --local`.
    Exec,
    /// Nothing: Pods stay Pending.
    None,
}

/// `horolog-dev sandbox`: serve a stand-in cluster on a loopback port.
#[derive(Clone, Debug, clap::Args)]
pub struct SandboxArgs {
    /// Where to serve the API (plain HTTP, no authentication): a loopback address only.
    /// Port 0 picks a free port; the kubeconfig tells which.
    #[arg(long, default_value = "127.0.0.1:8001")]
    pub listen: SocketAddr,

    /// Where to write the kubeconfig that points at the sandbox (overwritten).
    #[arg(long, default_value = "horolog-sandbox.kubeconfig")]
    pub kubeconfig: PathBuf,

    /// What runs the Pods.
    #[arg(long, value_enum, default_value = "simulate")]
    pub kubelet: Kubelet,

    /// With `--kubelet simulate`: how long each Pod runs before it succeeds, e.g. `1s`, `200ms`.
    #[arg(long, default_value = "1s")]
    pub pod_run_time: Duration,

    /// Hold every write (create, update, patch, delete) this long before serving it, e.g.
    /// `20ms`: a real API server's write round trip (etcd, admission), which the in-memory
    /// server does not have. Writes held at once wait side by side, so it models latency, not
    /// a server's write rate. `0s` (the default): none.
    #[arg(long, default_value = "0s")]
    pub write_latency: Duration,
}

/// Why the sandbox did not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// `--listen` is not a loopback address.
    #[error(
        "--listen {0}: the sandbox has no authentication and no TLS, so it listens on loopback \
         addresses only (127.0.0.1, [::1])"
    )]
    NotLoopback(SocketAddr),
    /// The address cannot be bound.
    #[error("--listen {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig cannot be written.
    #[error("--kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file asked for.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// A bound sandbox, not yet serving: [`Sandbox::serve`] runs it.
#[derive(Debug)]
pub struct Sandbox {
    listener: TcpListener,
    addr: SocketAddr,
    server: ApiServer,
    kubelet: Kubelet,
    pod_run_time: std::time::Duration,
}

impl Sandbox {
    /// Binds the address and writes the kubeconfig.
    pub async fn bind(args: &SandboxArgs) -> Result<Self, SandboxError> {
        if !args.listen.ip().is_loopback() {
            return Err(SandboxError::NotLoopback(args.listen));
        }
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: args.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: args.listen,
            source,
        })?;
        write_kubeconfig(&args.kubeconfig, addr).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let server = ApiServer::with_crds(clock, &horolog::crd::crds());
        let latency = args.write_latency.as_std();
        if !latency.is_zero() {
            server.faults().delay(RequestMatch::any().writes(), latency);
        }
        Ok(Sandbox {
            listener,
            addr,
            server,
            kubelet: args.kubelet,
            pod_run_time: args.pod_run_time.as_std(),
        })
    }

    /// The address the API is served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API server behind the socket (for tests that look at what was stored).
    pub fn api_server(&self) -> &ApiServer {
        &self.server
    }

    /// Serves the API and runs the kubelet stand-in until `shutdown` resolves; then stops the
    /// Pods (simulated and executed Pods end `Interrupted`) and closes the connections.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // Its writes are counted as the kubelet's, as a real node's are (by their client).
        let client = self.server.client_as("kubelet");
        let mode = match self.kubelet {
            Kubelet::Simulate => Some(Mode::Simulated {
                run_for: self.pod_run_time,
            }),
            Kubelet::Exec => Some(Mode::Processes {
                workdir: std::env::temp_dir().join(format!("horolog-sandbox-{}", std::process::id())),
            }),
            Kubelet::None => None,
        };
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let kubelet = mode.map(|mode| {
            let mut stop = stop_tx.subscribe();
            tokio::spawn(PodRunner::with_mode(client, clock, mode).run(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            }))
        });
        let server = self.server.clone();
        let handler = move |request: Request<Incoming>| {
            let mut server = server.clone();
            async move {
                if request.method() == http::Method::GET && request.uri().path() == "/metrics" {
                    return metrics(&server);
                }
                match server.call(request).await {
                    Ok(response) => response,
                    // Only an injected fault refuses a request, and the sandbox injects none;
                    // answer as an unavailable server would, should one ever be set.
                    Err(refused) => unavailable(&refused),
                }
            }
        };
        let serving = tokio::spawn(horolog::serve::serve(
            self.listener,
            "the sandbox API",
            handler,
            DRAIN,
            async move {
                let _ = stop_rx.wait_for(|stopped| *stopped).await;
            },
        ));
        shutdown.await;
        let _ = stop_tx.send(true);
        if let Some(kubelet) = kubelet
            && let Err(err) = kubelet.await
        {
            tracing::warn!(error = %err, "the sandbox's kubelet ended abnormally");
        }
        if let Err(err) = serving.await {
            tracing::warn!(error = %err, "the sandbox's server ended abnormally");
        }
    }
}

/// A kubeconfig whose current context is the sandbox at `addr`, namespace `default`.
pub fn kubeconfig_yaml(addr: SocketAddr) -> String {
    format!(
        "# Written by `horolog-dev sandbox`: its in-memory API server, plain HTTP, no credentials.\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {CONTEXT}\n  cluster:\n    server: http://{addr}\n\
         users:\n\
         - name: {CONTEXT}\n  user: {{}}\n\
         contexts:\n\
         - name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: default\n\
         current-context: {CONTEXT}\n"
    )
}

async fn write_kubeconfig(path: &Path, addr: SocketAddr) -> Result<(), SandboxError> {
    tokio::fs::write(path, kubeconfig_yaml(addr))
        .await
        .map_err(|source| SandboxError::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_reads_as_a_kubeconfig_pointing_at_the_address() {
        let addr: SocketAddr = "127.0.0.1:41234".parse().expect("addr");
        let config = kube::config::Kubeconfig::from_yaml(&kubeconfig_yaml(addr)).expect("kubeconfig");
        assert_eq!(config.current_context.as_deref(), Some(CONTEXT));
        let cluster = config.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("http://127.0.0.1:41234"));
        let context = config.contexts[0].context.as_ref().expect("context");
        assert_eq!(context.namespace.as_deref(), Some("default"));
    }

    #[tokio::test]
    async fn refuses_addresses_other_than_loopback() {
        let args = SandboxArgs {
            listen: "0.0.0.0:0".parse().expect("addr"),
            kubeconfig: std::env::temp_dir().join("horolog-sandbox-never-written.kubeconfig"),
            kubelet: Kubelet::None,
            pod_run_time: Duration::from(std::time::Duration::from_secs(1)),
            write_latency: Duration::from(std::time::Duration::ZERO),
        };
        let err = Sandbox::bind(&args).await.expect_err("0.0.0.0 must be refused");
        assert!(err.to_string().starts_with("--listen 0.0.0.0:0: "), "{err}");
        assert!(!args.kubeconfig.exists());
    }
}
