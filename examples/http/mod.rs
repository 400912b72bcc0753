//! HTTP/2 transport of the client/server protocol, shared by
//! `examples/serve.rs`, `examples/client.rs` and `tests/loopback.rs`
//! (tokio + hyper + hyper-util). The server speaks HTTP/2 over cleartext TCP
//! with prior knowledge (h2c, for 127.0.0.1 or behind a TLS-terminating
//! load balancer) and HTTP/1.1 on the same port; the client speaks HTTP/2.
//! Request bodies are read frame by frame and refused as soon as they pass
//! their limit. The protocol itself is in `docs/deployment.md`:
//!
//! | request | body | answer |
//! |---|---|---|
//! | `GET /v1/view` | - | the plan's [`ClientView`] bytes (no weights) |
//! | `POST /v1/keys` | evaluation-key bytes | `201`, the key set's id (64 hex digits) |
//! | `POST /v1/infer/<key set id>` | encrypted-input bytes | encrypted-output bytes |
//! | `GET /v1/stats` | - | JSON counters (requests, errors, peak RSS) |
//!
//! Errors are a status and a JSON [`ErrorBody`] whose `code` names the
//! mofhei error (`malformed`, `too_large`, `wrong_plan`,
//! `wrong_parameters`, `missing_key`, `unknown_key_set`, `busy`,
//! `timeout`, ...). The server holds no secret key and no per-client state
//! but the key-set cache: a server that does not know a key set answers
//! `404 unknown_key_set` and the client registers its keys again, so any
//! number of servers can sit behind a load balancer.

#![allow(dead_code)]

/// The value after `name` on the command line (`--name value`), if any.
pub fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use mofhei::error::{Context, DecodeError};
use mofhei::eval::{ClientView, Server};
use mofhei::he::HeWire;
use mofhei::plan::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};

/// Limits of a server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Inferences run at once (the rest wait, up to the timeout).
    pub concurrent: usize,
    /// Longest a request may take, from its headers to its answer.
    pub timeout: Duration,
    /// Key sets kept (the oldest is dropped beyond).
    pub key_sets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrent: 2,
            timeout: Duration::from_secs(60),
            key_sets: 64,
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: String,
    /// The error's text.
    pub message: String,
}

/// Counters of a server (`GET /v1/stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests answered.
    pub requests: u64,
    /// Answers with an error status.
    pub errors: u64,
    /// Inferences run.
    pub inferences: u64,
    /// Key sets registered.
    pub key_sets: u64,
    /// Peak resident set of the server process, bytes.
    pub peak_rss_bytes: u64,
}

/// The status and code of a mofhei error.
pub fn classify(e: &mofhei::Error) -> (StatusCode, &'static str) {
    use mofhei::Error as E;
    match e {
        E::Decode {
            reason: DecodeError::TooLarge { .. },
            ..
        } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        E::Decode { .. } => (StatusCode::BAD_REQUEST, "malformed"),
        E::WrongContext {
            context: Context::Plan,
            ..
        } => (StatusCode::CONFLICT, "wrong_plan"),
        E::WrongContext {
            context: Context::Parameters,
            ..
        } => (StatusCode::CONFLICT, "wrong_parameters"),
        E::WrongContext { .. } => (StatusCode::CONFLICT, "wrong_key_set"),
        E::MissingRelinearizationKey | E::MissingRotationKey { .. } | E::MissingConjugationKey => {
            (StatusCode::BAD_REQUEST, "missing_key")
        }
        E::LevelMismatch { .. } | E::ParameterMismatch { .. } => {
            (StatusCode::BAD_REQUEST, "not_conforming")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn answer(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

fn error(status: StatusCode, code: &str, message: String) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&ErrorBody {
        code: code.to_string(),
        message,
    })
    .unwrap_or_default();
    answer(status, Bytes::from(body))
}

fn mofhei_error(e: &mofhei::Error) -> Response<Full<Bytes>> {
    let (status, code) = classify(e);
    error(status, code, e.to_string())
}

/// Hex of a key-set id.
pub fn hex(id: &[u8; 32]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The key-set cache: id (SHA-256 of the key bytes) and the server built on them.
type KeySets<S> = VecDeque<([u8; 32], Arc<Server<S>>)>;

/// What a server process holds: the scheme and plan (the model), the
/// client view's bytes, the key-set cache and the limits.
pub struct State<S: HeWire + 'static> {
    scheme: Arc<S>,
    plan: Arc<Plan>,
    view: Bytes,
    keys: Mutex<KeySets<S>>,
    running: Semaphore,
    limits: Limits,
    key_limit: u64,
    input_limit: u64,
    requests: AtomicU64,
    errors: AtomicU64,
    inferences: AtomicU64,
    key_sets: AtomicU64,
}

impl<S: HeWire + 'static> State<S> {
    /// The state of a server of `plan` on `scheme`.
    pub fn new(
        scheme: impl Into<Arc<S>>,
        plan: impl Into<Arc<Plan>>,
        limits: Limits,
    ) -> mofhei::Result<Self> {
        let (scheme, plan) = (scheme.into(), plan.into());
        let view = ClientView::new(&plan, &*scheme)?.to_bytes()?;
        Ok(State {
            key_limit: scheme.eval_keys_size_limit(plan.key_requirements()),
            input_limit: mofhei::eval::input_size_limit(&*scheme, &plan),
            scheme,
            plan,
            view: Bytes::from(view),
            keys: Mutex::new(VecDeque::new()),
            running: Semaphore::new(limits.concurrent.max(1)),
            limits,
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            inferences: AtomicU64::new(0),
            key_sets: AtomicU64::new(0),
        })
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            inferences: self.inferences.load(Ordering::Relaxed),
            key_sets: self.key_sets.load(Ordering::Relaxed),
            peak_rss_bytes: peak_rss_bytes().unwrap_or(0),
        }
    }

    fn key_set(&self, id: &[u8; 32]) -> Option<Arc<Server<S>>> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().find(|(k, _)| k == id).map(|(_, s)| s.clone())
    }
}

/// Reads a body of at most `limit` bytes as it streams in (refusing the
/// request as soon as it grows past the limit, before buffering more).
async fn read_body(req: Request<Incoming>, limit: u64) -> Result<Bytes, Response<Full<Bytes>>> {
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        // Read and discard (never buffer) up to 64 MiB past the limit, so
        // that a client still writing its body receives the answer instead
        // of a reset connection; beyond that the connection is closed.
        let cap = limit.saturating_add(64 << 20);
        let mut body = req.into_body();
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > cap {
                break;
            }
        }
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "body of {} bytes exceeds the limit of {limit}",
                declared.unwrap_or(0)
            ),
        ));
    }
    // Frame by frame: the running total is checked before each frame is
    // kept, so at most `limit` bytes are ever buffered (HTTP/2 bodies need
    // not declare a length).
    let mut body = req.into_body();
    let reserve = declared.unwrap_or(0).min(limit);
    let mut buf = bytes::BytesMut::with_capacity(usize::try_from(reserve).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| error(StatusCode::BAD_REQUEST, "bad_body", e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = (buf.len() as u64).saturating_add(data.len() as u64);
        if total > limit {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("body exceeds the limit of {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

async fn route<S: HeWire + 'static>(
    state: Arc<State<S>>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/v1/view") => answer(StatusCode::OK, state.view.clone()),
        (Method::GET, "/v1/stats") => answer(
            StatusCode::OK,
            Bytes::from(serde_json::to_vec(&state.stats()).unwrap_or_default()),
        ),
        (Method::POST, "/v1/keys") => {
            let body = match read_body(req, state.key_limit).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let id: [u8; 32] = Sha256::digest(&body).into();
            if state.key_set(&id).is_some() {
                return answer(StatusCode::CREATED, Bytes::from(hex(&id)));
            }
            let st = state.clone();
            let built = tokio::task::spawn_blocking(move || {
                Server::from_key_bytes(st.scheme.clone(), st.plan.clone(), &body)
            })
            .await;
            match built {
                Ok(Ok(server)) => {
                    let mut keys = state.keys.lock().unwrap_or_else(|p| p.into_inner());
                    if keys.len() >= state.limits.key_sets.max(1) {
                        keys.pop_front();
                    }
                    keys.push_back((id, Arc::new(server)));
                    state.key_sets.fetch_add(1, Ordering::Relaxed);
                    answer(StatusCode::CREATED, Bytes::from(hex(&id)))
                }
                Ok(Err(e)) => mofhei_error(&e),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
            }
        }
        (Method::POST, p) if p.starts_with("/v1/infer/") => {
            let id = unhex(&p["/v1/infer/".len()..]);
            let server = id.and_then(|id| state.key_set(&id));
            // The upload is read (within its limit) even when it is refused
            // for its key set, so the client gets the answer, not a reset.
            let body = match read_body(req, state.input_limit).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            if id.is_none() {
                return error(StatusCode::BAD_REQUEST, "bad_key_set_id", p.to_string());
            }
            let Some(server) = server else {
                return error(
                    StatusCode::NOT_FOUND,
                    "unknown_key_set",
                    "register the evaluation keys (POST /v1/keys) and retry".into(),
                );
            };
            let Ok(_permit) = state.running.acquire().await else {
                return error(StatusCode::SERVICE_UNAVAILABLE, "busy", String::new());
            };
            let run = tokio::task::spawn_blocking(move || server.run_bytes(&body)).await;
            match run {
                Ok(Ok((out, _report))) => {
                    state.inferences.fetch_add(1, Ordering::Relaxed);
                    answer(StatusCode::OK, Bytes::from(out))
                }
                Ok(Err(e)) => mofhei_error(&e),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "no_such_route", path),
    }
}

/// Streams one HTTP/2 connection may carry at once (the inference
/// semaphore still bounds the work).
const MAX_STREAMS: u32 = 16;

/// Serves on `listener` until `stop` fires (or is dropped): HTTP/2 (h2c
/// prior knowledge) or HTTP/1.1, detected per connection.
pub async fn serve<S: HeWire + 'static>(
    listener: TcpListener,
    state: Arc<State<S>>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move {
                            let timeout = state.limits.timeout;
                            let r = match tokio::time::timeout(timeout, route(state.clone(), req)).await {
                                Ok(r) => r,
                                Err(_) => error(StatusCode::REQUEST_TIMEOUT, "timeout", String::new()),
                            };
                            state.requests.fetch_add(1, Ordering::Relaxed);
                            if !r.status().is_success() {
                                state.errors.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    builder
                        .http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10));
                    builder
                        .http2()
                        .timer(TokioTimer::new())
                        .max_concurrent_streams(MAX_STREAMS)
                        .adaptive_window(true)
                        .keep_alive_interval(Duration::from_secs(20));
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}

/// Bytes of one DATA frame of an upload.
const CHUNK: usize = 64 << 10;

/// A request body streamed in chunks of [`CHUNK`] bytes, without a declared
/// length (the server checks its limit as the frames arrive).
struct Chunked(Bytes);

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if self.0.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = self.0.len().min(CHUNK);
        let chunk = self.0.split_to(n);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// One HTTP/2 request (h2c prior knowledge) on a fresh connection, the body
/// streamed in chunks: the status and the answer's body.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes), Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .adaptive_window(true)
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Chunked(Bytes::from(body)))?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// [`request`] from synchronous code (a client thread): its own runtime.
pub fn request_blocking(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes), Box<dyn std::error::Error + Send + Sync>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(request(addr, method, path, body))
}

/// The error code of an error answer.
pub fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|e| e.code)
}

/// What a remote inference moved over the wire, in bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    /// The client view.
    pub view: usize,
    /// The evaluation keys.
    pub eval_keys: usize,
    /// Every upload (encrypted inputs), one per inference.
    pub uploads: Vec<usize>,
    /// Every answer (encrypted outputs), one per inference.
    pub outputs: Vec<usize>,
}

/// A failed remote call: the HTTP status and the error code, or a local error.
#[derive(Debug)]
pub enum RemoteError {
    /// The server answered with an error.
    Server(StatusCode, Option<String>),
    /// Transport or local mofhei failure.
    Local(Box<dyn std::error::Error + Send + Sync>),
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for RemoteError {
    fn from(e: E) -> Self {
        RemoteError::Local(Box::new(e))
    }
}

fn call(addr: SocketAddr, method: Method, path: &str, body: Vec<u8>) -> Result<Bytes, RemoteError> {
    let (status, bytes) = request_blocking(addr, method, path, body).map_err(RemoteError::Local)?;
    if status.is_success() {
        Ok(bytes)
    } else {
        Err(RemoteError::Server(status, error_code(&bytes)))
    }
}

/// The whole client side against a server at `addr`: fetch the view,
/// rebuild the backend from its parameters, generate keys, register the
/// evaluation keys, split the batch, upload seeded ciphertexts, decrypt the
/// answers. Re-registers the keys once when the server does not know them
/// (another server behind the load balancer).
pub fn infer_remote<S: HeWire, R: rand::RngCore + rand::CryptoRng>(
    addr: SocketAddr,
    x: &mofhei::model::Tensor,
    rng: &mut R,
) -> Result<(mofhei::model::Tensor, Traffic), RemoteError> {
    use mofhei::eval::{Client, concat_batches};
    let view_bytes = call(addr, Method::GET, "/v1/view", Vec::new())?;
    let view = Arc::new(ClientView::from_bytes(&view_bytes)?);
    let scheme: Arc<S> = Arc::new(view.scheme()?);
    let (client, keys) = Client::from_view(scheme.clone(), view, rng)?;
    let key_bytes = scheme.eval_keys_to_bytes(&keys)?;
    drop(keys);
    let mut traffic = Traffic {
        view: view_bytes.len(),
        eval_keys: key_bytes.len(),
        ..Traffic::default()
    };
    let register = |kb: &[u8]| -> Result<String, RemoteError> {
        let id = call(addr, Method::POST, "/v1/keys", kb.to_vec())?;
        Ok(String::from_utf8_lossy(&id).into_owned())
    };
    let mut id = register(&key_bytes)?;
    let mut outs = Vec::new();
    for chunk in client.split_batch(x)? {
        let up = client.encrypt_to_bytes(&chunk, rng)?;
        traffic.uploads.push(up.len());
        let path = |id: &str| format!("/v1/infer/{id}");
        let out = match call(addr, Method::POST, &path(&id), up.clone()) {
            Err(RemoteError::Server(StatusCode::NOT_FOUND, Some(code)))
                if code == "unknown_key_set" =>
            {
                id = register(&key_bytes)?;
                call(addr, Method::POST, &path(&id), up)?
            }
            other => other?,
        };
        traffic.outputs.push(out.len());
        outs.push(client.decrypt_bytes(&out)?);
    }
    Ok((concat_batches(&outs)?, traffic))
}

/// The process's peak resident set (`VmHWM` of `/proc/self/status`, Linux).
fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}
