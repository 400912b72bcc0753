//! The client/server protocol over a real loopback socket: a server on
//! 127.0.0.1 (tokio + hyper, `examples/http`), 8 client threads each with
//! its own keys, encrypted predictions equal to the plaintext ones, and
//! corrupted, oversized and mismatched uploads answered with typed errors
//! while the server keeps serving. HTTP/2 (h2c), uploads streamed in 64 KiB
//! frames without a declared length; one HTTP/1.1 request too.

#![allow(clippy::unwrap_used, reason = "test set-up helpers")]

#[path = "../examples/http/mod.rs"]
mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use mofhei::compile::{CompileOptions, compile};
use mofhei::eval::{Client, ClientView};
use mofhei::he::HeWire;
use mofhei::he::ckks::{Ckks, CkksParams};
use mofhei::model::{Activation, Network, Tensor, argmax_rows, zoo};
use mofhei::packing::Batch;
use mofhei::plan::Plan;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn inputs(seed: u64, n: usize, dim: usize) -> Tensor {
    let mut r = ChaCha20Rng::seed_from_u64(seed);
    Tensor::new(
        vec![n, dim],
        (0..n * dim).map(|_| r.random_range(-1.0..1.0)).collect(),
    )
    .unwrap()
}

fn post(addr: SocketAddr, path: &str, body: Vec<u8>) -> (StatusCode, Option<String>, Vec<u8>) {
    let (status, bytes) = http::request_blocking(addr, Method::POST, path, body).unwrap();
    (status, http::error_code(&bytes), bytes.to_vec())
}

#[test]
fn loopback_server_serves_concurrent_clients_and_refuses_bad_uploads() {
    let net: Network = zoo::mlp(&[16, 8, 4], Activation::Square, 3).unwrap();
    let plan: &'static Plan = Box::leak(Box::new(
        compile(&net, &Batch, &CompileOptions::default()).unwrap(),
    ));
    // The smallest 128-bit-secure parameters the plan fits.
    let scheme: &'static Ckks = Box::leak(Box::new(Ckks::for_plan(plan).unwrap()));
    let limits = http::Limits {
        concurrent: 2,
        timeout: Duration::from_secs(60),
        key_sets: 16,
    };
    let state = Arc::new(http::State::new(scheme.clone(), plan.clone(), limits).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let server = rt.spawn(http::serve(listener, state.clone(), stop_rx));

    // 8 concurrent clients, each with its own keys; client 0 sends a batch
    // larger than one inference (split into two).
    let samples = plan.samples(1 << (plan.params().log_n - 1));
    let started = std::time::Instant::now();
    let results: Vec<(Tensor, Tensor, http::Traffic)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|c| {
                s.spawn(move || {
                    let n = if c == 0 { samples + 3 } else { 5 + c as usize };
                    let x = inputs(100 + c, n, 16);
                    let mut rng = ChaCha20Rng::seed_from_u64(200 + c);
                    let (y, t) = http::infer_remote::<Ckks, _>(addr, &x, &mut rng).unwrap();
                    (x, y, t)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (x, y, t) in &results {
        let want = net.forward(x).unwrap();
        assert_eq!(y.shape(), want.shape());
        assert_predictions_agree(y, &want);
        for (a, b) in y.data().iter().zip(want.data()) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
        assert_eq!(t.uploads.len(), x.shape()[0].div_ceil(samples));
    }
    // Load figures: 8 concurrent clients, each registering its keys and
    // running its inferences (client 0 two), over HTTP/2.
    let elapsed = started.elapsed().as_secs_f64();
    let load = state.stats();
    let runs: usize = results.iter().map(|r| r.2.uploads.len()).sum();
    let rows: usize = results.iter().map(|r| r.0.shape()[0]).sum();
    eprintln!(
        "load: 8 clients, {} requests, {} errors, {runs} inferences ({rows} samples) in {elapsed:.2} s: {:.2} inferences/s, {:.1} samples/s (keys, encryption and decryption on the same 2 cores included); peak RSS of the process (server and the 8 clients) {:.1} MiB",
        load.requests,
        load.errors,
        runs as f64 / elapsed,
        rows as f64 / elapsed,
        load.peak_rss_bytes as f64 / f64::from(1 << 20)
    );
    assert_eq!(load.errors, 0);
    assert_eq!(load.inferences, runs as u64);
    let t = &results[0].2;
    eprintln!(
        "bytes: view {}, eval keys {}, upload {}, output {}",
        t.view, t.eval_keys, t.uploads[0], t.outputs[0]
    );

    // A client of this test for the refusals.
    let view = Arc::new(ClientView::new(plan, scheme).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let (client, keys) = Client::from_view(Arc::new(scheme.clone()), view, &mut rng).unwrap();
    let key_bytes = scheme.eval_keys_to_bytes(&keys).unwrap();
    let (st, _, id) = post(addr, "/v1/keys", key_bytes.clone());
    assert_eq!(st, StatusCode::CREATED);
    let infer = format!("/v1/infer/{}", String::from_utf8(id).unwrap());
    let x = inputs(7, 4, 16);
    let good = client.encrypt_to_bytes(&x, &mut rng).unwrap();

    let corrupted = good[..good.len() - 7].to_vec();
    let mut miscounted = good.clone();
    miscounted[13 + 8 + 32 + 4] ^= 1;
    let mut bad_header = good.clone();
    bad_header[0] = b'X';
    let oversized = vec![0u8; mofhei::eval::input_size_limit(scheme, plan) as usize + 1];
    // Same plan, other (secure) parameters: N doubled.
    let c = plan.params();
    let other = Ckks::new(
        CkksParams::builder()
            .log_n(c.log_n + 1)
            .moduli_bits(&c.moduli_bits)
            .special_bits(&c.special_bits)
            .scale_bits(c.scale_bits)
            .build()
            .unwrap(),
    )
    .unwrap();
    let other_view = Arc::new(ClientView::new(plan, &other).unwrap());
    let (other_client, _) =
        Client::from_view(Arc::new(other.clone()), other_view, &mut rng).unwrap();
    let wrong_params = other_client.encrypt_to_bytes(&x, &mut rng).unwrap();
    // Another plan (other weights), same parameters.
    let net2 = zoo::mlp(&[16, 8, 4], Activation::Square, 4).unwrap();
    let plan2 = compile(&net2, &Batch, &CompileOptions::default()).unwrap();
    let view2 = Arc::new(ClientView::new(&plan2, scheme).unwrap());
    let (client2, _) = Client::from_view(Arc::new(scheme.clone()), view2, &mut rng).unwrap();
    let wrong_plan = client2.encrypt_to_bytes(&x, &mut rng).unwrap();

    for (body, status, code) in [
        (corrupted, StatusCode::BAD_REQUEST, "malformed"),
        (miscounted, StatusCode::BAD_REQUEST, "malformed"),
        (bad_header, StatusCode::BAD_REQUEST, "malformed"),
        (oversized, StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        (wrong_params, StatusCode::CONFLICT, "wrong_parameters"),
        (wrong_plan, StatusCode::CONFLICT, "wrong_plan"),
        (Vec::new(), StatusCode::BAD_REQUEST, "malformed"),
    ] {
        let (st, got, _) = post(addr, &infer, body);
        assert_eq!((st, got.as_deref()), (status, Some(code)));
    }
    // Keys: garbage, too many for the plan, and an unknown key set.
    let (st, got, _) = post(addr, "/v1/keys", b"not keys".to_vec());
    assert_eq!(
        (st, got.as_deref()),
        (StatusCode::BAD_REQUEST, Some("malformed"))
    );
    let big = vec![1u8; scheme.eval_keys_size_limit(plan.key_requirements()) as usize + 1];
    let (st, got, _) = post(addr, "/v1/keys", big);
    assert_eq!(
        (st, got.as_deref()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large"))
    );
    let (st, got, _) = post(
        addr,
        &format!("/v1/infer/{}", "ab".repeat(32)),
        good.clone(),
    );
    assert_eq!(
        (st, got.as_deref()),
        (StatusCode::NOT_FOUND, Some("unknown_key_set"))
    );

    // The same port answers HTTP/1.1 too.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /v1/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    // Still serving: the good upload decrypts to the plaintext outputs.
    let (st, _, out) = post(addr, &infer, good);
    assert_eq!(st, StatusCode::OK);
    let y = client.decrypt_bytes(&out).unwrap();
    assert_predictions_agree(&y, &net.forward(&x).unwrap());

    let stats = state.stats();
    eprintln!("server stats: {stats:?}");
    assert_eq!(stats.errors, 10);
    assert_eq!(stats.inferences, 2 + 7 + 1);
    stop_tx.send(()).unwrap();
    rt.block_on(server).unwrap();
}

/// The predicted classes agree wherever the top two plaintext logits are
/// further apart than the decryption error (noise flooding included) can
/// move them; the values themselves are checked against a tolerance.
fn assert_predictions_agree(y: &Tensor, want: &Tensor) {
    let (got, exp) = (argmax_rows(y), argmax_rows(want));
    let classes = want.shape()[1];
    for (r, row) in want.data().chunks(classes).enumerate() {
        let mut sorted = row.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 2e-3 {
            assert_eq!(got[r], exp[r], "row {r}: {row:?}");
        }
    }
}
