//! The [`Client`]: holds the secret key and the plan's [`ClientView`];
//! encodes and encrypts inputs, decrypts and decodes outputs.

use std::sync::Arc;

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use zeroize::Zeroizing;

use crate::error::{Context, Error, Result};
use crate::he::OpKind;
use crate::he::{HeScheme, HeWire, Level, SlotValue};
use crate::model::Tensor;
use crate::plan::{OutputElem, Plan};

use super::encrypted::{EncryptedInput, EncryptedOutput};
use super::view::ClientView;
use super::wire;

/// Checks that a backend can hold a plan: enough levels and slots, and for
/// an exact integer scheme an integer plan whose accumulators fit its
/// plaintext modulus.
pub(super) fn check_backend<S: HeScheme>(scheme: &S, view: &ClientView) -> Result<()> {
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

/// Bits of noise flooding [`Client::decrypt`] uses by default: the flooding
/// noise has `2^8` times the standard deviation of the output's estimated
/// error ([`HeScheme::decrypt_flooded`]; the choice and its precision cost
/// are in `docs/security.md`).
pub const DEFAULT_FLOODING_BITS: u32 = 8;

/// The client: holds the secret key and the plan's [`ClientView`] (no
/// weights); encrypts inputs and decrypts outputs.
pub struct Client<S: HeScheme> {
    scheme: Arc<S>,
    view: Arc<ClientView>,
    sk: S::SecretKey,
    pk: S::PublicKey,
    flooding: Option<u32>,
}

impl<S: HeScheme> Client<S> {
    /// Generate keys for `plan`: returns the client and the evaluation keys
    /// to hand to the [`Server`](super::Server) (exactly the plan's key requirements).
    /// Refuses an inconsistent plan ([`Plan::validate`], e.g. a tampered
    /// one) and a backend with too few levels or slots before generating
    /// anything. The in-process convenience over [`Client::from_view`].
    pub fn new<R: RngCore + CryptoRng>(
        scheme: Arc<S>,
        plan: &Plan,
        rng: &mut R,
    ) -> Result<(Client<S>, S::EvalKeys)> {
        plan.validate()?;
        Client::generate(scheme, Arc::new(ClientView::from_plan(plan)?), rng)
    }

    /// A fresh secret key, the client and its evaluation keys.
    fn generate<R: RngCore + CryptoRng>(
        scheme: Arc<S>,
        view: Arc<ClientView>,
        rng: &mut R,
    ) -> Result<(Client<S>, S::EvalKeys)> {
        check_backend(&*scheme, &view)?;
        let sk = scheme.generate_secret_key(rng)?;
        let client = Client::build(scheme, view, sk, rng)?;
        let keys = client.generate_eval_keys(rng)?;
        Ok((client, keys))
    }

    /// The client of a secret key (derives the public key).
    fn build<R: RngCore + CryptoRng>(
        scheme: Arc<S>,
        view: Arc<ClientView>,
        sk: S::SecretKey,
        rng: &mut R,
    ) -> Result<Client<S>> {
        check_backend(&*scheme, &view)?;
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

    /// A source of input ciphertexts for [`Server::run_streamed`](super::Server::run_streamed): input `j`
    /// is encoded and encrypted only when the server first needs it (the
    /// stand-in for a client streaming ciphertexts over the network in the
    /// plan's order), so the whole input batch never sits in memory at once.
    /// Randomness: a ChaCha20 stream per input from a 32-byte seed drawn
    /// from `rng`.
    pub fn input_source<'c, R: RngCore + CryptoRng>(
        &'c self,
        x: &'c Tensor,
        rng: &mut R,
    ) -> Result<InputSource<'c, S>> {
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

impl<S: HeWire> Client<S> {
    /// Generate a fresh secret key for a plan's view (e.g. received from the
    /// server as bytes, [`ClientView::from_bytes`]): returns the client and
    /// the evaluation keys the server needs. Refuses a backend whose
    /// parameters are not the view's ([`Error::WrongContext`]) or that has
    /// too few levels or slots, before generating anything.
    pub fn from_view<R: RngCore + CryptoRng>(
        scheme: Arc<S>,
        view: Arc<ClientView>,
        rng: &mut R,
    ) -> Result<(Client<S>, S::EvalKeys)> {
        view.check_scheme(&*scheme)?;
        Client::generate(scheme, view, rng)
    }

    /// A client with an existing secret key (e.g. loaded from the client's
    /// storage with [`HeWire::secret_key_from_bytes`]); derives a public key.
    pub fn with_secret_key<R: RngCore + CryptoRng>(
        scheme: Arc<S>,
        view: Arc<ClientView>,
        sk: S::SecretKey,
        rng: &mut R,
    ) -> Result<Client<S>> {
        view.check_scheme(&*scheme)?;
        Client::build(scheme, view, sk, rng)
    }

    /// A client whose secret key is loaded from bytes written by
    /// [`Client::export_secret_key`] (checked against the parameters).
    pub fn from_secret_key_bytes<R: RngCore + CryptoRng>(
        scheme: Arc<S>,
        view: Arc<ClientView>,
        bytes: &[u8],
        rng: &mut R,
    ) -> Result<Client<S>> {
        view.check_scheme(&*scheme)?;
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
        let limit = wire::bundle_limit(&*self.scheme, count);
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
pub struct InputSource<'c, S: HeScheme> {
    client: &'c Client<S>,
    x: &'c Tensor,
    seed: [u8; 32],
    samples: usize,
}

impl<S: HeScheme> InputSource<'_, S> {
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
