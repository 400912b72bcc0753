//! The evaluator: runs a [`Plan`] on any [`HeScheme`].
//!
//! - [`Client`] (holds the secret key): key generation from the plan's
//!   [`KeyRequirements`](crate::he::KeyRequirements), encoding + encryption
//!   of a batch of samples in the plan's input layout, decryption + decoding
//!   of the outputs (applying the plan's pending output scale and offset).
//! - [`Server`] (also exported as [`Evaluator`]): holds only the evaluation
//!   keys and the encoded model; it has no method that decrypts and no
//!   secret key to decrypt with. It checks keys, levels and slots against the
//!   plan before any ciphertext work, runs the plan wave by wave (the
//!   instructions of a wave in parallel with rayon), and drops every
//!   ciphertext after its last use, so peak memory follows the plan's live
//!   set ([`Plan::peak_live`]).
//!
//! A plan compiled from a quantised network
//! ([`crate::compile::compile_quantized`]) runs the same way: the client
//! quantises the inputs and divides the outputs by their scales
//! ([`Client::decrypt_values`] gives the exact integers), and an exact
//! integer backend ([`HeScheme::plaintext_modulus`]) is refused when the
//! plan's accumulators could exceed its plaintext modulus.
//!
//! Peak memory is read from `/proc/self/status` (`VmHWM`, the resident-set
//! high-water mark of the process, Linux only); before a run the mark is
//! reset by writing `5` to `/proc/self/clear_refs` (Linux >= 4.0), so the
//! figure is the peak during the run, including whatever else the process
//! holds. See `docs/compile.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use zeroize::Zeroizing;

use crate::error::{Context, Error, Result};
use crate::he::OpKind;
use crate::he::doubling::rotate_sum;
use crate::he::{
    Counted, EvaluationKeys, HeScheme, HeWire, Level, OpCounts, Rotation, Scale, SlotValue,
};
use crate::model::Tensor;
use crate::plan::{Instr, OutputElem, PlainUse, Plan, Step, ValueId};

mod view;
mod wire;

pub use view::{ClientView, VIEW_BYTES_LIMIT, ViewParams, plan_hash};
pub use wire::peek_bundle;

/// The server side (alias of [`Server`]).
pub type Evaluator<'a, S> = Server<'a, S>;

/// Encrypted inputs of one inference (one ciphertext per input tile/scalar),
/// tagged with the hash of the plan they were made for.
pub struct EncryptedInput<S: HeScheme> {
    cts: Vec<S::Ciphertext>,
    samples: usize,
    plan_hash: [u8; 32],
}

impl<S: HeScheme> EncryptedInput<S> {
    /// Number of samples encrypted.
    pub fn samples(&self) -> usize {
        self.samples
    }
    /// The ciphertexts.
    pub fn ciphertexts(&self) -> &[S::Ciphertext] {
        &self.cts
    }
    /// The hash of the plan they were made for.
    pub fn plan_hash(&self) -> [u8; 32] {
        self.plan_hash
    }
}

impl<S: HeWire> EncryptedInput<S> {
    /// The inputs as bytes (full ciphertexts; a client uploads seeded ones
    /// with [`Client::encrypt_to_bytes`]).
    pub fn to_bytes(&self, scheme: &S) -> Result<Vec<u8>> {
        wire::seal_ciphertexts(
            &wire::INPUT,
            scheme,
            &self.plan_hash,
            self.samples,
            &self.cts,
        )
    }
}

/// Encrypted outputs of one inference, tagged with the hash of the plan
/// that made them.
pub struct EncryptedOutput<S: HeScheme> {
    cts: Vec<S::Ciphertext>,
    samples: usize,
    plan_hash: [u8; 32],
}

impl<S: HeScheme> EncryptedOutput<S> {
    /// Number of samples.
    pub fn samples(&self) -> usize {
        self.samples
    }
    /// The ciphertexts.
    pub fn ciphertexts(&self) -> &[S::Ciphertext] {
        &self.cts
    }
    /// The hash of the plan that made them.
    pub fn plan_hash(&self) -> [u8; 32] {
        self.plan_hash
    }
}

impl<S: HeWire> EncryptedOutput<S> {
    /// The outputs as bytes.
    pub fn to_bytes(&self, scheme: &S) -> Result<Vec<u8>> {
        wire::seal_ciphertexts(
            &wire::OUTPUT,
            scheme,
            &self.plan_hash,
            self.samples,
            &self.cts,
        )
    }
}

/// Checks that a backend can hold a plan: enough levels and slots, and for
/// an exact integer scheme an integer plan whose accumulators fit its
/// plaintext modulus.
fn check_backend<S: HeScheme>(scheme: &S, view: &ClientView) -> Result<()> {
    if let Some(t) = scheme.plaintext_modulus() {
        match view.integer() {
            Some(q) => q.check_plaintext_modulus(t)?,
            None => {
                return Err(Error::Incompatible {
                    what: "a real-valued plan",
                    with: "an integer scheme (compile a quantised network with compile_quantized)",
                });
            }
        }
    }
    if scheme.max_level() < Level(view.depth()) {
        return Err(Error::LevelOutOfRange {
            op: OpKind::Encode,
            requested: Level(view.depth()),
            max: scheme.max_level(),
        });
    }
    let slots = scheme.slot_count();
    let need = view.period().unwrap_or(1).max(view.samples(slots)).max(1);
    if need > slots || view.period().is_some_and(|p| !slots.is_multiple_of(p)) {
        return Err(Error::InvalidParameter {
            name: "slot count",
            value: slots as i64,
            allowed: "at least (and a multiple of) the plan's layout period",
        });
    }
    Ok(())
}

/// Replicate a period-long vector over `slots` slots.
fn replicate<V: SlotValue>(values: &[f64], period: Option<usize>, slots: usize) -> Vec<V> {
    let mut out = vec![V::zero(); slots];
    let period = period.unwrap_or(slots).max(1);
    for c in 0..slots / period {
        for (i, &v) in values.iter().enumerate() {
            if let Some(o) = out.get_mut(c * period + i) {
                *o = V::from_f64(v);
            }
        }
    }
    out
}

/// Bits of noise flooding [`Client::decrypt`] uses by default: the flooding
/// noise has `2^8` times the standard deviation of the output's estimated
/// error ([`HeScheme::decrypt_flooded`]; the choice and its precision cost
/// are in `docs/security.md`).
pub const DEFAULT_FLOODING_BITS: u32 = 8;

/// The client: holds the secret key and the plan's [`ClientView`] (no
/// weights); encrypts inputs and decrypts outputs.
pub struct Client<'a, S: HeScheme> {
    scheme: &'a S,
    view: Arc<ClientView>,
    sk: S::SecretKey,
    pk: S::PublicKey,
    flooding: Option<u32>,
}

impl<'a, S: HeScheme> Client<'a, S> {
    /// Generate keys for `plan`: returns the client and the evaluation keys
    /// to hand to the [`Server`] (exactly the plan's key requirements).
    /// Refuses an inconsistent plan ([`Plan::validate`], e.g. a tampered
    /// one) and a backend with too few levels or slots before generating
    /// anything. The in-process convenience over [`Client::from_view`].
    pub fn new<R: RngCore + CryptoRng>(
        scheme: &'a S,
        plan: &Plan,
        rng: &mut R,
    ) -> Result<(Client<'a, S>, S::EvalKeys)> {
        plan.validate()?;
        Client::generate(scheme, Arc::new(ClientView::from_plan(plan)?), rng)
    }

    /// A fresh secret key, the client and its evaluation keys.
    fn generate<R: RngCore + CryptoRng>(
        scheme: &'a S,
        view: Arc<ClientView>,
        rng: &mut R,
    ) -> Result<(Client<'a, S>, S::EvalKeys)> {
        check_backend(scheme, &view)?;
        let sk = scheme.generate_secret_key(rng)?;
        let client = Client::build(scheme, view, sk, rng)?;
        let keys = client.generate_eval_keys(rng)?;
        Ok((client, keys))
    }

    /// The client of a secret key (derives the public key).
    fn build<R: RngCore + CryptoRng>(
        scheme: &'a S,
        view: Arc<ClientView>,
        sk: S::SecretKey,
        rng: &mut R,
    ) -> Result<Client<'a, S>> {
        check_backend(scheme, &view)?;
        let pk = scheme.generate_public_key(&sk, rng)?;
        Ok(Client {
            scheme,
            view,
            sk,
            pk,
            flooding: Some(DEFAULT_FLOODING_BITS),
        })
    }

    /// Fresh evaluation keys for the plan (exactly its key requirements).
    pub fn generate_eval_keys<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<S::EvalKeys> {
        self.scheme
            .generate_eval_keys(&self.sk, self.view.key_requirements(), rng)
            .map_err(Error::from)
    }

    /// The public key.
    pub fn public_key(&self) -> &S::PublicKey {
        &self.pk
    }

    /// Noise flooding of decryptions: `Some(bits)` (the default,
    /// [`DEFAULT_FLOODING_BITS`]) floods every decryption with `2^bits`
    /// times the estimated error ([`HeScheme::decrypt_flooded`]), so the
    /// decrypted outputs can be shared without revealing the secret key;
    /// `None` decrypts exactly, for results that never leave the key
    /// holder (see `docs/security.md`).
    pub fn set_flooding(&mut self, bits: Option<u32>) {
        self.flooding = bits;
    }

    /// The flooding in use (see [`Client::set_flooding`]).
    pub fn flooding(&self) -> Option<u32> {
        self.flooding
    }

    /// The plan's view.
    pub fn view(&self) -> &ClientView {
        &self.view
    }

    /// Samples one inference holds on this backend.
    pub fn samples(&self) -> usize {
        self.view.samples(self.scheme.slot_count())
    }

    /// Checks a batch's shape; returns the number of samples.
    fn check_input(&self, x: &Tensor) -> Result<usize> {
        let n = self.check_shape(x)?;
        let cap = self.samples();
        if n > cap {
            return Err(Error::TooManyValues {
                given: n,
                slots: cap,
            });
        }
        Ok(n)
    }

    /// Checks a batch's per-sample shape (any number of samples but 0).
    fn check_shape(&self, x: &Tensor) -> Result<usize> {
        let shape = x.shape();
        let cap = self.samples();
        let mut expected = vec![shape.first().copied().unwrap_or(1).clamp(1, cap.max(1))];
        expected.extend_from_slice(self.view.input_shape());
        if shape.len() != expected.len() || shape[1..] != expected[1..] || shape[0] == 0 {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected,
                found: shape.to_vec(),
            });
        }
        Ok(shape[0])
    }

    /// Splits a batch of any size into batches of at most
    /// [`Client::samples`] samples (one inference each), in order.
    pub fn split_batch(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let n = self.check_shape(x)?;
        let dim: usize = self.view.input_shape().iter().product();
        let cap = self.samples().max(1);
        (0..n)
            .step_by(cap)
            .map(|start| {
                let m = cap.min(n - start);
                let mut shape = vec![m];
                shape.extend_from_slice(self.view.input_shape());
                Tensor::new(shape, x.data()[start * dim..(start + m) * dim].to_vec())
            })
            .collect()
    }

    /// The slot values of input ciphertext `index` for the batch `x` (shape
    /// already checked).
    fn input_values(&self, x: &Tensor, index: usize) -> Result<Vec<S::Value>> {
        let entries = self
            .view
            .input_layout()
            .cts
            .get(index)
            .ok_or(Error::IndexOutOfRange {
                what: "input ciphertext",
                index,
                len: self.view.input_layout().cts.len(),
            })?;
        let n = x.shape()[0];
        let dim: usize = self.view.input_shape().iter().product();
        let slots = self.scheme.slot_count();
        let period = self.view.period().unwrap_or(slots).max(1);
        let data = x.data();
        // An integer plan encrypts the quantised inputs.
        let integer = self.view.integer();
        let value = |x: f32| match integer {
            Some(q) => q.quantize_input(x),
            None => f64::from(x),
        };
        let mut v = vec![S::Value::zero(); slots];
        for c in 0..slots / period {
            for &(slot, e) in entries {
                for s in 0..n {
                    if let (Some(o), Some(&d)) = (
                        v.get_mut(c * period + slot as usize + s),
                        data.get(s * dim + e as usize),
                    ) {
                        *o = S::Value::from_f64(value(d));
                    }
                }
            }
        }
        Ok(v)
    }

    /// The encoded input ciphertext `index` for the batch `x`.
    fn input_plaintext(&self, x: &Tensor, index: usize) -> Result<S::Plaintext> {
        let v = self.input_values(x, index)?;
        self.scheme
            .encode(&v, Level(self.view.depth()), self.scheme.default_scale())
            .map_err(Error::from)
    }

    /// Encode and encrypt input ciphertext `index` of the plan's layout for
    /// the batch `x` (shape already checked).
    fn encrypt_one<R: RngCore + CryptoRng>(
        &self,
        x: &Tensor,
        index: usize,
        rng: &mut R,
    ) -> Result<S::Ciphertext> {
        let pt = self.input_plaintext(x, index)?;
        Ok(self.scheme.encrypt_secret(&self.sk, &pt, rng)?)
    }

    /// One 32-byte seed per input ciphertext, drawn from `rng`.
    fn seeds<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Vec<[u8; 32]> {
        (0..self.view.input_layout().cts.len())
            .map(|_| {
                let mut s = [0u8; 32];
                rng.fill_bytes(&mut s);
                s
            })
            .collect()
    }

    /// Encode and encrypt a batch `x` of shape `[n, ...input_shape]`
    /// (`1 <= n <=` [`Client::samples`]) in the plan's layout, at the
    /// plan's input level (all input ciphertexts at once, in parallel).
    pub fn encrypt<R: RngCore + CryptoRng>(
        &self,
        x: &Tensor,
        rng: &mut R,
    ) -> Result<EncryptedInput<S>> {
        let n = self.check_input(x)?;
        let cts = self
            .seeds(rng)
            .into_par_iter()
            .enumerate()
            .map(|(j, seed)| self.encrypt_one(x, j, &mut ChaCha20Rng::from_seed(seed)))
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedInput {
            cts,
            samples: n,
            plan_hash: self.view.plan_hash(),
        })
    }

    /// A source of input ciphertexts for [`Server::run_streamed`]: input `j`
    /// is encoded and encrypted only when the server first needs it (the
    /// stand-in for a client streaming ciphertexts over the network in the
    /// plan's order), so the whole input batch never sits in memory at once.
    /// Randomness: a ChaCha20 stream per input from a 32-byte seed drawn
    /// from `rng`.
    pub fn input_source<'c, R: RngCore + CryptoRng>(
        &'c self,
        x: &'c Tensor,
        rng: &mut R,
    ) -> Result<InputSource<'c, 'a, S>> {
        let samples = self.check_input(x)?;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Ok(InputSource {
            client: self,
            x,
            seed,
            samples,
        })
    }

    /// Checks that outputs were made by this client's plan.
    fn check_output(&self, out: &EncryptedOutput<S>) -> Result<()> {
        if out.plan_hash != self.view.plan_hash() {
            return Err(Error::WrongContext {
                what: "encrypted output",
                context: Context::Plan,
            });
        }
        if out.cts.len() != self.view.output_count() {
            return Err(Error::CountMismatch {
                what: "output ciphertexts",
                expected: self.view.output_count(),
                found: out.cts.len(),
            });
        }
        Ok(())
    }

    /// Decrypt and decode the output ciphertexts.
    fn decrypt_slots(&self, out: &EncryptedOutput<S>) -> Result<Vec<Vec<S::Value>>> {
        self.check_output(out)?;
        out.cts
            .par_iter()
            .map(|ct| {
                let pt = match self.flooding {
                    Some(bits) => {
                        self.scheme
                            .decrypt_flooded(&self.sk, ct, bits, &mut rand::rng())?
                    }
                    None => self.scheme.decrypt(&self.sk, ct)?,
                };
                Ok(self.scheme.decode(&pt)?)
            })
            .collect()
    }

    /// Decrypt and decode the outputs into a tensor `[n, ...output_shape]`
    /// (an integer plan's outputs divided by their scales: the real outputs).
    pub fn decrypt(&self, out: &EncryptedOutput<S>) -> Result<Tensor> {
        let values = self.decrypt_values(out)?;
        let n = out.samples;
        let m = self.view.output_map().len();
        let scales = self.view.integer().map(|q| q.output_scales());
        let mut data = vec![0.0f32; n * m];
        for (row, sample) in data.chunks_mut(m.max(1)).zip(&values) {
            for (e, (d, v)) in row.iter_mut().zip(sample).enumerate() {
                let scale = scales.and_then(|q| q.get(e)).copied().unwrap_or(1.0);
                *d = (v.to_f64() / scale) as f32;
            }
        }
        let mut shape = vec![n];
        shape.extend_from_slice(self.view.output_shape());
        Tensor::new(shape, data)
    }

    /// Decrypt the outputs as the backend's slot values, per sample (`n`
    /// rows of the flattened per-sample output), before any output scale: an
    /// integer plan's exact integers under an integer scheme. Elements read
    /// from a slot with no pending affine map (`alpha = 1`, `beta = 0`, as
    /// in every integer plan) are the decoded value itself; others go
    /// through `f64`.
    pub fn decrypt_values(&self, out: &EncryptedOutput<S>) -> Result<Vec<Vec<S::Value>>> {
        let decoded = self.decrypt_slots(out)?;
        let map = self.view.output_map();
        Ok((0..out.samples)
            .map(|s| {
                map.iter()
                    .map(|o| match *o {
                        OutputElem::Const(v) => S::Value::from_f64(v),
                        OutputElem::Slot {
                            ct,
                            slot,
                            alpha,
                            beta,
                        } => {
                            let v = decoded
                                .get(ct as usize)
                                .and_then(|d| d.get(slot as usize + s))
                                .copied()
                                .unwrap_or_else(S::Value::zero);
                            if alpha == 1.0 && beta == 0.0 {
                                v
                            } else {
                                S::Value::from_f64(alpha * v.to_f64() + beta)
                            }
                        }
                    })
                    .collect()
            })
            .collect())
    }
}

impl<'a, S: HeWire> Client<'a, S> {
    /// Generate a fresh secret key for a plan's view (e.g. received from the
    /// server as bytes, [`ClientView::from_bytes`]): returns the client and
    /// the evaluation keys the server needs. Refuses a backend whose
    /// parameters are not the view's ([`Error::WrongContext`]) or that has
    /// too few levels or slots, before generating anything.
    pub fn from_view<R: RngCore + CryptoRng>(
        scheme: &'a S,
        view: Arc<ClientView>,
        rng: &mut R,
    ) -> Result<(Client<'a, S>, S::EvalKeys)> {
        view.check_scheme(scheme)?;
        Client::generate(scheme, view, rng)
    }

    /// A client with an existing secret key (e.g. loaded from the client's
    /// storage with [`HeWire::secret_key_from_bytes`]); derives a public key.
    pub fn with_secret_key<R: RngCore + CryptoRng>(
        scheme: &'a S,
        view: Arc<ClientView>,
        sk: S::SecretKey,
        rng: &mut R,
    ) -> Result<Client<'a, S>> {
        view.check_scheme(scheme)?;
        Client::build(scheme, view, sk, rng)
    }

    /// A client whose secret key is loaded from bytes written by
    /// [`Client::export_secret_key`] (checked against the parameters).
    pub fn from_secret_key_bytes<R: RngCore + CryptoRng>(
        scheme: &'a S,
        view: Arc<ClientView>,
        bytes: &[u8],
        rng: &mut R,
    ) -> Result<Client<'a, S>> {
        view.check_scheme(scheme)?;
        let sk = scheme.secret_key_from_bytes(bytes)?;
        Client::build(scheme, view, sk, rng)
    }

    /// The secret key as bytes, for the client's own storage (zeroised when
    /// dropped). Whoever holds them can decrypt everything encrypted under
    /// this key: never send them to a server.
    pub fn export_secret_key(&self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(self.scheme.secret_key_to_bytes(&self.sk)?)
    }

    /// Encode and encrypt a batch (as [`Client::encrypt`]) straight to the
    /// bytes to upload: secret-key ciphertexts in the backend's smallest
    /// form (seeded, half the size, on CKKS), tagged with the plan hash and
    /// the parameter fingerprint.
    pub fn encrypt_to_bytes<R: RngCore + CryptoRng>(
        &self,
        x: &Tensor,
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let n = self.check_input(x)?;
        let cts = self
            .seeds(rng)
            .into_par_iter()
            .enumerate()
            .map(|(j, seed)| {
                let pt = self.input_plaintext(x, j)?;
                Ok(self.scheme.encrypt_secret_to_bytes(
                    &self.sk,
                    &pt,
                    &mut ChaCha20Rng::from_seed(seed),
                )?)
            })
            .collect::<Result<Vec<_>>>()?;
        wire::seal(
            &wire::INPUT,
            self.scheme.fingerprint(),
            &self.view.plan_hash(),
            n,
            &cts,
        )
    }

    /// Outputs from bytes: refuses those of another plan or parameter set
    /// ([`Error::WrongContext`]) before decoding a ciphertext.
    pub fn output_from_bytes(&self, bytes: &[u8]) -> Result<EncryptedOutput<S>> {
        let count = self.view.output_count();
        let expect = wire::Expect {
            fingerprint: self.scheme.fingerprint(),
            plan_hash: self.view.plan_hash(),
            count,
            max_samples: self.samples(),
        };
        let limit = wire::bundle_limit(self.scheme, count);
        let (samples, parts) = wire::open(&wire::OUTPUT, bytes, limit, &expect)?;
        let cts = parts
            .into_par_iter()
            .map(|b| Ok(self.scheme.ciphertext_from_bytes(b)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedOutput {
            cts,
            samples,
            plan_hash: expect.plan_hash,
        })
    }

    /// Decrypt outputs received as bytes ([`Client::output_from_bytes`],
    /// then [`Client::decrypt`]).
    pub fn decrypt_bytes(&self, bytes: &[u8]) -> Result<Tensor> {
        self.decrypt(&self.output_from_bytes(bytes)?)
    }
}

/// Concatenates per-inference output batches along the sample axis (the
/// outputs of [`Client::split_batch`]'s chunks, in order).
pub fn concat_batches(parts: &[Tensor]) -> Result<Tensor> {
    let first = parts.first().ok_or(Error::EmptyInput { what: "batches" })?;
    let mut shape = first.shape().to_vec();
    let mut data = Vec::new();
    let mut n = 0usize;
    for p in parts {
        if p.shape().get(1..) != shape.get(1..) {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: shape,
                found: p.shape().to_vec(),
            });
        }
        n += p.shape().first().copied().unwrap_or(0);
        data.extend_from_slice(p.data());
    }
    if let Some(s) = shape.first_mut() {
        *s = n;
    }
    Tensor::new(shape, data)
}

/// Encrypts input ciphertexts on demand (see [`Client::input_source`]).
pub struct InputSource<'c, 'a, S: HeScheme> {
    client: &'c Client<'a, S>,
    x: &'c Tensor,
    seed: [u8; 32],
    samples: usize,
}

impl<S: HeScheme> InputSource<'_, '_, S> {
    /// Samples in the batch.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The hash of the plan the inputs are for.
    pub fn plan_hash(&self) -> [u8; 32] {
        self.client.view.plan_hash()
    }

    /// Input ciphertext `index`, freshly encrypted.
    pub fn get(&self, index: usize) -> Result<S::Ciphertext> {
        let mut rng = ChaCha20Rng::from_seed(self.seed);
        rng.set_stream(index as u64);
        self.client.encrypt_one(self.x, index, &mut rng)
    }
}

/// Time spent in one network layer during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Index of the network layer.
    pub layer: usize,
    /// Its kind.
    pub kind: String,
    /// Instructions run for it.
    pub instructions: usize,
    /// Time spent in its instructions, summed over threads.
    pub busy: Duration,
}

/// What a run cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// CPU time of the whole process (user + system, every thread) during
    /// the run, if readable (`/proc/self/stat`, 10 ms resolution); with
    /// other work in the process it counts that too.
    pub cpu: Option<Duration>,
    /// Per layer (only layers that emitted instructions).
    pub layers: Vec<LayerReport>,
    /// Peak resident set of the process during the run (`VmHWM`), if readable.
    pub peak_rss_bytes: Option<u64>,
    /// Most ciphertexts alive at once.
    pub peak_live: usize,
    /// Op counts of the run (set by [`Server::run_counted`]).
    pub counts: Option<OpCounts>,
}

/// Reads a `kB` field of `/proc/self/status` in bytes.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time (user + system, all threads) of the process so far, from
/// `/proc/self/stat` (Linux; clock ticks of 10 ms).
pub fn process_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = s.get(s.rfind(')')? + 2..)?;
    let mut f = rest.split_whitespace();
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(Duration::from_millis(
        utime.checked_add(stime)?.checked_mul(10)?,
    ))
}

/// Resets the process's peak-RSS mark (Linux `clear_refs` 5); best effort.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The server: runs a plan with evaluation keys only; cannot decrypt.
pub struct Server<'a, S: HeScheme> {
    scheme: &'a S,
    plan: &'a Plan,
    plan_hash: [u8; 32],
    keys: S::EvalKeys,
    plains: Vec<S::Plaintext>,
}

impl<'a, S: HeScheme> Server<'a, S> {
    /// A server for `plan`. Before any ciphertext work, refuses: keys of
    /// other parameters ([`Error::ParameterMismatch`]), too few levels or
    /// slots, a missing relinearisation key
    /// ([`Error::MissingRelinearizationKey`]) or rotation key
    /// ([`Error::MissingRotationKey`]); input ciphertexts of another secret
    /// key than the keys' are refused when a run starts
    /// ([`Error::KeyMismatch`]). Encodes the plan's plaintexts (the stored
    /// model) at the level and scale each is used at.
    pub fn new(scheme: &'a S, plan: &'a Plan, keys: S::EvalKeys) -> Result<Server<'a, S>> {
        plan.validate()?;
        scheme.check_eval_keys(&keys)?;
        let view = ClientView::from_plan(plan)?;
        check_backend(scheme, &view)?;
        let req = plan.key_requirements();
        if req.relinearization() && !keys.supports_relinearization() {
            return Err(Error::MissingRelinearizationKey);
        }
        if let Some(step) = req.rotations().find(|&r| !keys.supports_rotation(r)) {
            return Err(Error::MissingRotationKey { step });
        }
        // Scales of every value, from the backend's moduli (no ciphertext).
        let mut scales: Vec<Option<Scale>> = vec![None; plan.value_count()];
        for s in scales.iter_mut().take(plan.input_layout().cts.len()) {
            *s = Some(scheme.default_scale());
        }
        let mut plain_at: Vec<Option<(Level, Scale)>> = vec![None; plan.plains().len()];
        let bad = |what| Error::Decode {
            what: "plan",
            reason: crate::error::DecodeError::NotConforming { what },
        };
        for step in plan.steps() {
            let ins = step.instr.inputs();
            let lvl = plan.level(ins[0]);
            let sc = scales[ins[0] as usize].ok_or(bad("scale of an undefined value"))?;
            let out_scale = match &step.instr {
                Instr::Square { .. } => sc * sc / scheme.rescale_divisor(lvl)?,
                Instr::SquareLazy { .. } => sc * sc,
                Instr::RelinRescale { .. } => sc / scheme.rescale_divisor(lvl)?,
                _ => sc,
            };
            for p in step.instr.plains() {
                let usage = plan.plains()[p as usize].usage;
                let want = match usage {
                    PlainUse::Mul => (
                        lvl,
                        Scale::new(scheme.rescale_divisor(lvl)?).ok_or(bad("modulus"))?,
                    ),
                    PlainUse::Add => (lvl, sc),
                };
                match plain_at[p as usize] {
                    None => plain_at[p as usize] = Some(want),
                    Some((l, s)) if l == want.0 && s.approx_eq(want.1) => {}
                    Some(_) => return Err(bad("plaintext used at two levels or scales")),
                }
            }
            for o in step.instr.outputs() {
                scales[o as usize] = Some(out_scale);
            }
        }
        let slots = scheme.slot_count();
        let plains = plan
            .plains()
            .par_iter()
            .zip(plain_at)
            .map(|(p, at)| {
                let (lvl, sc) = at.unwrap_or((Level(0), scheme.default_scale()));
                let v: Vec<S::Value> = replicate(&p.values, plan.period(), slots);
                Ok(scheme.encode(&v, lvl, sc)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Server {
            scheme,
            plan,
            plan_hash: view.plan_hash(),
            keys,
            plains,
        })
    }

    /// The evaluation keys held.
    pub fn keys(&self) -> &S::EvalKeys {
        &self.keys
    }

    /// Run the plan on encrypted inputs (all present from the start).
    pub fn run(&self, input: EncryptedInput<S>) -> Result<(EncryptedOutput<S>, RunReport)> {
        let plan = self.plan;
        if input.plan_hash != self.plan_hash {
            return Err(Error::WrongContext {
                what: "encrypted input",
                context: Context::Plan,
            });
        }
        if input.cts.len() != plan.input_layout().cts.len() {
            return Err(Error::CountMismatch {
                what: "input ciphertexts",
                expected: plan.input_layout().cts.len(),
                found: input.cts.len(),
            });
        }
        let samples = input.samples;
        let mut values: Vec<Option<S::Ciphertext>> = Vec::with_capacity(plan.value_count());
        values.extend(input.cts.into_iter().map(Some));
        values.resize_with(plan.value_count(), || None);
        self.execute(values, samples, None, plan.peak_live())
    }

    /// Run the plan fetching each input ciphertext just before the first wave
    /// that reads it (e.g. from [`Client::input_source`]), so inputs occupy
    /// memory only while needed ([`Plan::peak_live_streamed`]).
    pub fn run_streamed<F>(
        &self,
        samples: usize,
        fetch: F,
    ) -> Result<(EncryptedOutput<S>, RunReport)>
    where
        F: Fn(usize) -> Result<S::Ciphertext> + Sync,
    {
        let mut values: Vec<Option<S::Ciphertext>> = Vec::with_capacity(self.plan.value_count());
        values.resize_with(self.plan.value_count(), || None);
        self.execute(
            values,
            samples,
            Some(&fetch),
            self.plan.peak_live_streamed(),
        )
    }

    fn check_input_level(&self, ct: &S::Ciphertext) -> Result<()> {
        crate::he::checks::same_key(
            OpKind::Encrypt,
            self.keys.key_id(),
            self.scheme.ciphertext_key_id(ct),
        )?;
        let want = Level(self.plan.depth());
        if self.scheme.level(ct) != want {
            return Err(Error::LevelMismatch {
                op: OpKind::Encrypt,
                left: self.scheme.level(ct),
                right: want,
            });
        }
        Ok(())
    }

    fn execute(
        &self,
        mut values: Vec<Option<S::Ciphertext>>,
        samples: usize,
        fetch: Option<&(dyn Fn(usize) -> Result<S::Ciphertext> + Sync)>,
        peak_live: usize,
    ) -> Result<(EncryptedOutput<S>, RunReport)> {
        let plan = self.plan;
        for ct in values.iter().take(plan.input_layout().cts.len()).flatten() {
            self.check_input_level(ct)?;
        }
        reset_peak_rss();
        let cpu0 = process_cpu_time();
        let start = Instant::now();
        let n_layers = plan.layer_kinds().len();
        let mut busy = vec![Duration::ZERO; n_layers];
        let mut instrs = vec![0usize; n_layers];
        let mut begin = 0usize;
        for wave in plan.waves() {
            if let Some(fetch) = fetch {
                let loaded = wave
                    .loads
                    .par_iter()
                    .map(|&j| {
                        let ct = fetch(j as usize)?;
                        self.check_input_level(&ct)?;
                        Ok((j, ct))
                    })
                    .collect::<Result<Vec<_>>>()?;
                for (j, ct) in loaded {
                    if let Some(slot) = values.get_mut(j as usize) {
                        *slot = Some(ct);
                    }
                }
            }
            let end = wave.end as usize;
            let steps = plan.steps().get(begin..end).unwrap_or(&[]);
            // Dot products of a wave run as one blocked call per level
            // (inputs shared by several outputs are read once); the rest
            // instruction by instruction, in parallel.
            let (dots, rest): (Vec<&Step>, Vec<&Step>) = steps
                .iter()
                .partition(|s| matches!(s.instr, Instr::DotScalar { .. }));
            let mut results = rest
                .par_iter()
                .map(|s| {
                    let t = Instant::now();
                    let out = self.exec(s, &values)?;
                    Ok((s.layer as usize, t.elapsed(), out))
                })
                .collect::<Result<Vec<_>>>()?;
            results.extend(self.exec_dots(&dots, &values)?);
            for (layer, dt, outs) in results {
                if let (Some(b), Some(n)) = (busy.get_mut(layer), instrs.get_mut(layer)) {
                    *b += dt;
                    *n += 1;
                }
                for (id, ct) in outs {
                    if let Some(slot) = values.get_mut(id as usize) {
                        *slot = Some(ct);
                    }
                }
            }
            for &f in &wave.frees {
                if let Some(slot) = values.get_mut(f as usize) {
                    *slot = None;
                }
            }
            begin = end;
        }
        let mut cts = Vec::with_capacity(plan.outputs().len());
        for &o in plan.outputs() {
            let ct = match values.get_mut(o as usize).and_then(Option::take) {
                Some(ct) => ct,
                // An output that is an input never read by any wave.
                None => match fetch {
                    Some(f) => f(o as usize)?,
                    None => {
                        return Err(Error::Internal {
                            invariant: "a validated plan's outputs are defined values",
                        });
                    }
                },
            };
            cts.push(ct);
        }
        let wall = start.elapsed();
        let layers = (0..n_layers)
            .filter(|&l| instrs[l] > 0)
            .map(|l| LayerReport {
                layer: l,
                kind: plan.layer_kinds()[l].clone(),
                instructions: instrs[l],
                busy: busy[l],
            })
            .collect();
        Ok((
            EncryptedOutput {
                cts,
                samples,
                plan_hash: self.plan_hash,
            },
            RunReport {
                wall,
                cpu: process_cpu_time()
                    .zip(cpu0)
                    .map(|(b, a)| b.saturating_sub(a)),
                layers,
                peak_rss_bytes: proc_status_bytes("VmHWM:"),
                peak_live,
                counts: None,
            },
        ))
    }

    fn get<'v>(
        &self,
        values: &'v [Option<S::Ciphertext>],
        id: ValueId,
    ) -> Result<&'v S::Ciphertext> {
        values
            .get(id as usize)
            .and_then(Option::as_ref)
            .ok_or(Error::Internal {
                invariant: "a validated plan reads only live values",
            })
    }

    fn plain(&self, id: u32) -> Result<&S::Plaintext> {
        self.plains.get(id as usize).ok_or(Error::Internal {
            invariant: "a validated plan names only its own plaintexts",
        })
    }

    /// Runs [`Instr::DotScalar`] steps: per level, one
    /// [`HeScheme::dot_scalar_many`] over the union of their inputs, then a
    /// rescale and the bias per output. The call's time is shared among the
    /// steps' layers in proportion to their terms.
    #[expect(clippy::type_complexity, reason = "(layer, time, outputs) per step")]
    fn exec_dots(
        &self,
        dots: &[&Step],
        values: &[Option<S::Ciphertext>],
    ) -> Result<Vec<(usize, Duration, Vec<(ValueId, S::Ciphertext)>)>> {
        let s = self.scheme;
        let mut by_level: std::collections::BTreeMap<u32, Vec<&Step>> = Default::default();
        for &step in dots {
            if let Instr::DotScalar { inputs, .. } = &step.instr {
                let lvl = inputs.first().map_or(0, |&v| self.plan.level(v).0);
                by_level.entry(lvl).or_default().push(step);
            }
        }
        let mut results = Vec::with_capacity(dots.len());
        for (lvl, group) in by_level {
            let t = Instant::now();
            let mut pool: Vec<&S::Ciphertext> = Vec::new();
            let mut index: std::collections::HashMap<ValueId, usize> = Default::default();
            let mut rows = Vec::with_capacity(group.len());
            for step in &group {
                if let Instr::DotScalar {
                    inputs, weights, ..
                } = &step.instr
                {
                    let mut row = Vec::with_capacity(inputs.len());
                    for (&v, &w) in inputs.iter().zip(weights) {
                        let k = match index.get(&v) {
                            Some(&k) => k,
                            None => {
                                pool.push(self.get(values, v)?);
                                index.insert(v, pool.len() - 1);
                                pool.len() - 1
                            }
                        };
                        row.push((k, S::Value::from_f64(w)));
                    }
                    rows.push(row);
                }
            }
            let scale = Scale::new(s.rescale_divisor(Level(lvl))?).ok_or(Error::Internal {
                invariant: "a rescale divisor is a positive prime",
            })?;
            let cts = s.dot_scalar_many(&pool, &rows, scale)?;
            let done = cts
                .into_par_iter()
                .zip(group.par_iter())
                .map(|(mut ct, step)| {
                    s.rescale_assign(&mut ct)?;
                    let (out, bias) = match &step.instr {
                        Instr::DotScalar { out, bias, .. } => (*out, *bias),
                        _ => (0, 0.0),
                    };
                    if bias != 0.0 {
                        s.add_scalar_assign(&mut ct, S::Value::from_f64(bias))?;
                    }
                    Ok((out, ct))
                })
                .collect::<Result<Vec<_>>>()?;
            let dt = t.elapsed();
            let terms: usize = rows.iter().map(Vec::len).sum::<usize>().max(1);
            for ((step, row), outcome) in group.iter().zip(&rows).zip(done) {
                let share = dt.mul_f64(row.len() as f64 / terms as f64);
                results.push((step.layer as usize, share, vec![outcome]));
            }
        }
        Ok(results)
    }

    fn exec(
        &self,
        step: &Step,
        values: &[Option<S::Ciphertext>],
    ) -> Result<Vec<(ValueId, S::Ciphertext)>> {
        let s = self.scheme;
        let refs = |ids: &[ValueId]| -> Result<Vec<&S::Ciphertext>> {
            ids.iter().map(|&i| self.get(values, i)).collect()
        };
        Ok(match &step.instr {
            Instr::DotScalar { .. } => self
                .exec_dots(&[step], values)?
                .into_iter()
                .flat_map(|(_, _, outs)| outs)
                .collect(),
            Instr::Sum { out, inputs, bias } => {
                let r = refs(inputs)?;
                let mut ct = s.sum(&r)?;
                if *bias != 0.0 {
                    s.add_scalar_assign(&mut ct, S::Value::from_f64(*bias))?;
                }
                vec![(*out, ct)]
            }
            Instr::Square { out, input } => {
                let x = self.get(values, *input)?;
                vec![(*out, s.mul_relin_rescale(x, x, &self.keys)?)]
            }
            Instr::SquareLazy { out, input } => {
                let x = self.get(values, *input)?;
                vec![(*out, s.mul(x, x)?)]
            }
            Instr::RelinRescale { out, input } => {
                let mut ct = self.get(values, *input)?.clone();
                s.relinearize_assign(&mut ct, &self.keys)?;
                s.rescale_assign(&mut ct)?;
                vec![(*out, ct)]
            }
            Instr::AddScalar { out, input, value } => {
                let mut ct = self.get(values, *input)?.clone();
                s.add_scalar_assign(&mut ct, S::Value::from_f64(*value))?;
                vec![(*out, ct)]
            }
            Instr::DotPlain {
                out,
                inputs,
                plains,
            } => {
                let r = refs(inputs)?;
                let p = plains
                    .iter()
                    .map(|&i| self.plain(i))
                    .collect::<Result<Vec<_>>>()?;
                let mut ct = s.dot_plain(&r, &p)?;
                s.rescale_assign(&mut ct)?;
                vec![(*out, ct)]
            }
            Instr::MulPlain { out, input, plain } => {
                let mut ct = s.mul_plain(self.get(values, *input)?, self.plain(*plain)?)?;
                s.rescale_assign(&mut ct)?;
                vec![(*out, ct)]
            }
            Instr::AddPlain { out, input, plain } => {
                vec![(
                    *out,
                    s.add_plain(self.get(values, *input)?, self.plain(*plain)?)?,
                )]
            }
            Instr::RotateMany { outs, input, steps } => {
                let rs: Vec<Rotation> = steps.iter().map(|&k| Rotation(k)).collect();
                let cts = s.rotate_many(self.get(values, *input)?, &rs, &self.keys)?;
                outs.iter().copied().zip(cts).collect()
            }
            Instr::RotateSum {
                out,
                input,
                stride,
                count,
            } => {
                let acc = rotate_sum(
                    s,
                    self.get(values, *input)?,
                    *stride,
                    u64::from(*count),
                    &self.keys,
                )?;
                vec![(*out, acc)]
            }
            Instr::DropLevel { out, input } => {
                let mut ct = self.get(values, *input)?.clone();
                s.drop_level_assign(&mut ct, self.plan.level(*out))?;
                vec![(*out, ct)]
            }
        })
    }
}

/// The most bytes an encrypted input of `plan` on `scheme` can take (a
/// server's request-size limit before it holds any key).
pub fn input_size_limit<S: HeWire>(scheme: &S, plan: &Plan) -> u64 {
    wire::bundle_limit(scheme, plan.input_layout().cts.len())
}

impl<'a, S: HeWire> Server<'a, S> {
    /// A server whose evaluation keys are read from bytes (the size limit
    /// derived from the parameters and the plan's key requirements, which
    /// the keys must meet).
    pub fn from_key_bytes(scheme: &'a S, plan: &'a Plan, bytes: &[u8]) -> Result<Server<'a, S>> {
        let keys = scheme.eval_keys_from_bytes(bytes, plan.key_requirements())?;
        Server::new(scheme, plan, keys)
    }

    /// The client's view of the plan, with these parameters.
    pub fn client_view(&self) -> Result<ClientView> {
        ClientView::new(self.plan, self.scheme)
    }

    /// The hash of the plan served.
    pub fn plan_hash(&self) -> [u8; 32] {
        self.plan_hash
    }

    /// The most bytes an encrypted input of this plan can take (for a
    /// request-size limit).
    pub fn input_size_limit(&self) -> u64 {
        input_size_limit(self.scheme, self.plan)
    }

    /// Encrypted inputs from uploaded bytes ([`Client::encrypt_to_bytes`]):
    /// refuses another plan's or parameter set's ([`Error::WrongContext`])
    /// before decoding a ciphertext, then checks every ciphertext against
    /// the parameters and the plan's input level.
    pub fn input_from_bytes(&self, bytes: &[u8]) -> Result<EncryptedInput<S>> {
        let count = self.plan.input_layout().cts.len();
        let expect = wire::Expect {
            fingerprint: self.scheme.fingerprint(),
            plan_hash: self.plan_hash,
            count,
            max_samples: self.plan.samples(self.scheme.slot_count()),
        };
        let (samples, parts) = wire::open(&wire::INPUT, bytes, self.input_size_limit(), &expect)?;
        let cts = parts
            .into_par_iter()
            .map(|b| {
                let ct = self.scheme.fresh_ciphertext_from_bytes(b)?;
                self.check_input_level(&ct)?;
                Ok(ct)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedInput {
            cts,
            samples,
            plan_hash: self.plan_hash,
        })
    }

    /// Runs the plan on uploaded bytes and returns the outputs as bytes.
    pub fn run_bytes(&self, bytes: &[u8]) -> Result<(Vec<u8>, RunReport)> {
        let input = self.input_from_bytes(bytes)?;
        let (out, report) = self.run(input)?;
        Ok((out.to_bytes(self.scheme)?, report))
    }
}

impl<'a, X: HeScheme> Server<'a, Counted<X>> {
    /// [`Server::run`] with the op counts of the run in the report (resets
    /// the wrapper's counts first; they hold the run's counts afterwards).
    pub fn run_counted(
        &self,
        input: EncryptedInput<Counted<X>>,
    ) -> Result<(EncryptedOutput<Counted<X>>, RunReport)> {
        let _ = self.scheme.take_counts();
        let (out, mut report) = self.run(input)?;
        report.counts = Some(self.scheme.counts());
        Ok((out, report))
    }
}

#[cfg(test)]
mod tests;
