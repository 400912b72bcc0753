//! The evaluator: runs a [`Plan`](crate::plan::Plan) on any
//! [`HeScheme`](crate::he::HeScheme).
//!
//! - [`Client`] (holds the secret key): key generation from the plan's
//!   [`KeyRequirements`](crate::he::KeyRequirements), encoding + encryption
//!   of a batch of samples in the plan's input layout, decryption + decoding
//!   of the outputs (applying the plan's pending output scale and offset).
//! - [`Server`]: holds only the evaluation keys and the encoded model; it
//!   has no method that decrypts and no secret key to decrypt with. It
//!   checks keys, levels and slots against the plan before any ciphertext work, runs the plan wave by wave (the
//!   instructions of a wave in parallel with rayon), and drops every
//!   ciphertext after its last use, so peak memory follows the plan's live
//!   set ([`Plan::peak_live`](crate::plan::Plan::peak_live)).
//!
//! Both own what they use: the server its plan (`Arc<Plan>`), both the
//! backend (`Arc<S>`, shared: the same parameters serve many clients and
//! key sets, and a [`Counted`](crate::he::Counted) backend's counts stay
//! readable by its owner), so either can live in a thread or an async task.
//! Constructors take the backend as an `Arc` and the plan by value or as
//! an `Arc`.
//!
//! A plan compiled from a quantised network
//! ([`crate::compile::compile_quantized`]) runs the same way: the client
//! quantises the inputs and divides the outputs by their scales
//! ([`Client::decrypt_values`] gives the exact integers), and an exact
//! integer backend ([`HeScheme::plaintext_modulus`](crate::he::HeScheme::plaintext_modulus)) is refused when the
//! plan's accumulators could exceed its plaintext modulus.
//!
//! Each run returns a [`RunReport`] (wall and CPU time, time per layer,
//! the live-ciphertext peak and the process's peak resident set: see
//! [`RunReport::peak_rss_bytes`] for how it is measured without touching the
//! process-wide mark unless asked to, [`Server::set_peak_rss_reset`]).
//!
//! Files: the client (`client.rs`), the server's checks and entry
//! points (`server.rs`), the instruction executor (`exec.rs`), the encrypted
//! inputs and outputs (`encrypted.rs`), the run report (`report.rs`), the
//! `/proc` probes (`memory.rs`, crate-private), the client view (`view.rs`)
//! and the wire envelope (`wire.rs`).

mod client;
mod encrypted;
mod exec;
mod memory;
mod report;
mod server;
mod view;
mod wire;

pub use client::{Client, DEFAULT_FLOODING_BITS, InputSource, concat_batches};
pub use encrypted::{EncryptedInput, EncryptedOutput};
pub use report::{LayerReport, RunReport};
pub use server::{Server, input_size_limit};
pub use view::{ClientView, VIEW_BYTES_LIMIT, ViewParams, plan_hash};
pub use wire::peek_bundle;

#[cfg(test)]
mod tests;
