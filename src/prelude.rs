//! The names of the common path, in one import: `use mofhei::prelude::*;`.
//!
//! Train a network, make it HE-friendly, prune it with packing-aligned
//! blocks, compile it for a packing, and run it encrypted with a
//! [`Client`] (secret key) and a [`Server`] (evaluation keys only). Here
//! on the simulator, at small sizes; [`Ckks`] (or `Bfv` for quantised
//! plans, feature `bfv`) runs the same way.
//!
//! ```
//! use std::sync::Arc;
//!
//! use mofhei::prelude::*;
//! use mofhei::data::synthetic::blobs;
//!
//! # fn main() -> mofhei::Result<()> {
//! // Data and a small MLP.
//! let data = blobs(160, 6, 3, 0.4, 1)?;
//! let (train, valid) = data.split(0.25, 1)?;
//! let mut net = zoo::mlp(&[6, 8, 3], Activation::Relu, 1)?;
//!
//! // Train.
//! let config = TrainConfig { epochs: 3, ..TrainConfig::default() };
//! Trainer::new(config).fit(&mut net, &train, Some(&valid), &mut NoProgress)?;
//!
//! // Replace ReLU by a trained polynomial (HE-friendly).
//! let he_config = HeFriendlyConfig::mofhei(2, 1);
//! let (net, _report) = make_he_friendly(&net, &train, &valid, &he_config, &mut NoProgress)?;
//!
//! // Prune whole units (MOFHEI), then cull them.
//! let mut prune = MofheiConfig::digits_lenet(1);
//! prune.train = TrainConfig { epochs: 2, augment: None, ..prune.train };
//! prune.retrain_epochs = 1;
//! prune.candidates = 1;
//! let (net, _culled) = mofhei_prune(&net, 0.25, &prune, &train, &valid)?;
//!
//! // Compile for batch packing (one sample per slot).
//! let plan = compile(&net, &Batch, &CompileOptions::default())?;
//!
//! // Run encrypted on the simulator with 16 slots.
//! let he = Arc::new(Sim::new(plan.params().sim_params(16)?));
//! let mut rng = rand::rng();
//! let (client, keys) = Client::new(he.clone(), &plan, &mut rng)?;
//! let server = Server::new(he, plan, keys)?;
//! let n = client.samples().min(valid.len());
//! let x = valid.subset(&(0..n).collect::<Vec<_>>())?.inputs().clone();
//! let (out, _report) = server.run(client.encrypt(&x, &mut rng)?)?;
//! let y = client.decrypt(&out)?;
//!
//! // The same predictions as in plaintext.
//! assert_eq!(argmax_rows(&y), argmax_rows(&net.forward(&x)?));
//! # Ok(())
//! # }
//! ```

pub use crate::compile::{CompileOptions, compile, compile_quantized};
pub use crate::data::Dataset;
pub use crate::error::{Error, Result};
pub use crate::eval::{Client, ClientView, Server};
#[cfg(feature = "bfv")]
pub use crate::he::bfv::Bfv;
pub use crate::he::ckks::Ckks;
pub use crate::he::sim::Sim;
pub use crate::he::{Counted, HeScheme, HeWire};
pub use crate::model::{Activation, Layer, Network, Tensor, argmax_rows, zoo};
pub use crate::packing::{Batch, Diagonal, Packing, Tile};
pub use crate::plan::Plan;
pub use crate::prune::{HePexConfig, MofheiConfig, hepex_prune, mofhei_prune};
pub use crate::quant::{QuantConfig, QuantizedNetwork};
pub use crate::train::{NoProgress, TrainConfig, Trainer};
pub use crate::transform::{HeFriendlyConfig, make_he_friendly};
