//! An inference server over HTTP/2 (h2c; HTTP/1.1 on the same port; tokio +
//! hyper): holds the model (the
//! compiled plan) and evaluation keys, never a secret key.
//!
//! ```text
//! cargo run --release --example serve -- --addr 127.0.0.1:8080 --model mlp
//! cargo run --release --example serve -- --model-file my.mofhei --packing batch
//! ```
//!
//! Flags: `--addr A` (default 127.0.0.1:8080), `--model mlp|lenet` (a
//! seeded, untrained zoo network: the protocol does not care) or
//! `--model-file F` (a network saved with `Network::save`), `--packing
//! batch|tile`, `--concurrent K` (inferences at once, default 2),
//! `--timeout S` (seconds per request, default 60). The parameters are the
//! smallest 128-bit-secure CKKS set the plan fits. Protocol and sizes:
//! `docs/deployment.md`; the client is `examples/client.rs`.

#[path = "http/mod.rs"]
mod http;

use std::sync::Arc;
use std::time::Duration;

use mofhei::compile::{CompileOptions, compile};
use mofhei::he::ckks::Ckks;
use mofhei::model::{Activation, Layer, Network, zoo};
use mofhei::packing::{Batch, Packing, Tile};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// A zoo network by name (LeNet made HE-friendly: average pools, x^2).
pub fn zoo_model(name: &str) -> Result<Network, AnyError> {
    Ok(match name {
        "mlp" => zoo::mlp(&[64, 32, 10], Activation::Square, 1)?,
        "lenet" => {
            let mut net = zoo::lenet_mofhei(Activation::Square, 1);
            for l in net.layers.iter_mut() {
                if let Layer::MaxPool2d(p) = l {
                    *l = Layer::AvgPool2d(*p);
                }
            }
            net
        }
        other => return Err(format!("unknown model {other} (mlp or lenet)").into()),
    })
}

fn main() -> Result<(), AnyError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| http::flag(&args, name);
    let addr = flag("--addr").unwrap_or_else(|| "127.0.0.1:8080".into());
    let net = match flag("--model-file") {
        Some(path) => Network::load(path)?,
        None => zoo_model(&flag("--model").unwrap_or_else(|| "mlp".into()))?,
    };
    let packing: Box<dyn Packing> = match flag("--packing").as_deref() {
        None | Some("batch") => Box::new(Batch),
        Some("tile") => Box::new(Tile::new(64, 64, 1)?.with_client_patches()),
        Some(other) => return Err(format!("unknown packing {other}").into()),
    };
    let limits = http::Limits {
        concurrent: flag("--concurrent").map_or(Ok(2), |v| v.parse())?,
        timeout: Duration::from_secs(flag("--timeout").map_or(Ok(60), |v| v.parse())?),
        ..http::Limits::default()
    };
    let plan = compile(&net, packing.as_ref(), &CompileOptions::default())?;
    let name = packing.name();
    let scheme = Ckks::for_plan(&plan)?;
    let plan = Arc::new(plan);
    let state = Arc::new(http::State::new(scheme, plan.clone(), limits)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!(
            "serving {} (N = 2^{}, depth {}) on http://{}",
            name,
            plan.params().log_n,
            plan.depth(),
            listener.local_addr()?
        );
        // Runs until the process is stopped.
        let (_never, stop) = tokio::sync::oneshot::channel();
        http::serve(listener, state, stop).await;
        Ok(())
    })
}
