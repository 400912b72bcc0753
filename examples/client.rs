//! A client of `examples/serve.rs`, and a small load generator: every
//! client thread fetches the plan's view, rebuilds the backend from its
//! parameters, generates its own keys, registers its evaluation keys once,
//! uploads seeded ciphertexts (the batch split into inferences) and
//! decrypts the answers. Prints the bytes of every artefact on the wire and
//! the throughput.
//!
//! ```text
//! cargo run --release --example serve  -- --model mlp &
//! cargo run --release --example client -- --addr 127.0.0.1:8080 --clients 8 --inferences 2
//! ```
//!
//! Flags: `--addr A`, `--clients C` (threads, default 1), `--inferences I`
//! per client (default 1; each a full batch of the plan's samples), the
//! server's `/v1/stats` (requests, errors, peak RSS) printed at the end.
//! The model is the server's: the client checks its outputs only for
//! shape; `tests/loopback.rs` checks them against the plaintext network.

#[path = "http/mod.rs"]
mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mofhei::eval::ClientView;
use mofhei::he::HeScheme;
use mofhei::he::ckks::Ckks;
use mofhei::model::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), AnyError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| http::flag(&args, name);
    let addr: SocketAddr = flag("--addr")
        .unwrap_or_else(|| "127.0.0.1:8080".into())
        .parse()?;
    let clients: usize = flag("--clients").map_or(Ok(1), |v| v.parse())?;
    let inferences: usize = flag("--inferences").map_or(Ok(1), |v| v.parse())?;

    // The plan's shape, for the inputs: from the view itself.
    let (_, view_bytes) = http::request_blocking(addr, hyper::Method::GET, "/v1/view", Vec::new())?;
    let view = Arc::new(ClientView::from_bytes(&view_bytes)?);
    let scheme: Ckks = view.scheme()?;
    let samples = view.samples(scheme.slot_count());
    let dim: usize = view.input_shape().iter().product();

    let started = Instant::now();
    let results: Vec<Result<http::Traffic, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let view = view.clone();
                s.spawn(move || {
                    let mut rng = ChaCha20Rng::from_os_rng();
                    let n = samples * inferences;
                    let data = (0..n * dim).map(|_| rng.random_range(0.0..1.0)).collect();
                    let mut shape = vec![n];
                    shape.extend_from_slice(view.input_shape());
                    let x = Tensor::new(shape, data).map_err(|e| e.to_string())?;
                    let (y, traffic) = http::infer_remote::<Ckks, _>(addr, &x, &mut rng)
                        .map_err(|e| format!("client {c}: {e:?}"))?;
                    if y.shape()[0] != n {
                        return Err(format!("client {c}: {} outputs", y.shape()[0]));
                    }
                    Ok(traffic)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("client panicked".into())))
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let ok: Vec<&http::Traffic> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        eprintln!("error: {r}");
    }
    if let Some(t) = ok.first() {
        println!("bytes on the wire (one client):");
        println!("  client view        {:>12}", t.view);
        println!(
            "  parameters (in it) {:>12}",
            view.params().map_or(0, |p| p.bytes.len())
        );
        println!("  evaluation keys    {:>12}", t.eval_keys);
        println!(
            "  upload / inference {:>12}",
            t.uploads.first().unwrap_or(&0)
        );
        println!(
            "  output / inference {:>12}",
            t.outputs.first().unwrap_or(&0)
        );
    }
    let done: usize = ok.iter().map(|t| t.outputs.len()).sum();
    println!(
        "{clients} clients x {inferences} inferences of {samples} samples: {done} done, {} failed clients, {wall:.2} s, {:.2} inferences/s, {:.0} samples/s",
        results.len() - ok.len(),
        done as f64 / wall,
        (done * samples) as f64 / wall
    );
    let (_, stats) = http::request_blocking(addr, hyper::Method::GET, "/v1/stats", Vec::new())?;
    println!("server: {}", String::from_utf8_lossy(&stats));
    Ok(())
}
