//! A real HTTP/1.1 upstream (hyper) standing in for a legacy app: it answers every request
//! with JSON describing what it received, and counts requests so a test can prove that a
//! refused request never reached it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinHandle};

pub struct Upstream {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    /// "METHOD URI" of every request received, in order.
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
    /// Open connections, aborted by `stop` so pooled keep-alive connections die too.
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = requests.clone();
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let open = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                let log = log.clone();
                let conn = tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        if let Ok(mut log) = log.lock() {
                            log.push(format!("{} {}", req.method(), req.uri()));
                        }
                        async move { Ok::<_, Infallible>(echo(req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                if let Ok(mut open) = open.lock() {
                    open.push(conn.abort_handle());
                }
            }
        });
        Upstream {
            addr,
            hits,
            requests,
            task,
            connections,
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// "METHOD URI" of every request received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Stops listening (the port then refuses connections).
    pub fn stop(self) {
        self.task.abort();
        if let Ok(open) = self.connections.lock() {
            for c in open.iter() {
                c.abort();
            }
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn echo(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let headers: Vec<serde_json::Value> = req
        .headers()
        .iter()
        .map(|(k, v)| serde_json::json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())]))
        .collect();
    let body = serde_json::json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "headers": headers,
    });
    Response::builder()
        .header("Content-Type", "application/json")
        .header("X-Upstream", "echo")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

/// What the upstream saw, parsed from its JSON answer.
#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn parse(body: &str) -> Seen {
        let v: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("upstream answer is not JSON ({e}): {body}"));
        Seen {
            method: v["method"].as_str().unwrap_or("").to_string(),
            uri: v["uri"].as_str().unwrap_or("").to_string(),
            headers: v["headers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            (
                                p[0].as_str().unwrap_or("").to_string(),
                                p[1].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(
            all.len() <= 1,
            "header {name} arrived {} times: {all:?}",
            all.len()
        );
        all.first().copied()
    }
}
