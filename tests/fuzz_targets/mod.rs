//! The bodies of the fuzz targets and the valid objects their corpora start
//! from, shared by the cargo-fuzz crate (`fuzz/`, which includes this file
//! with `#[path]`) and the bounded smoke run in `cargo test`
//! (`tests/fuzz_smoke.rs`), so the two cannot drift.
//!
//! A body takes any bytes and must return without panicking, aborting or
//! allocating beyond its budget; errors are expected and ignored. When a
//! decoder accepts the bytes, the body also uses the decoded value (re-encodes
//! it, runs it) and checks the properties a valid object has: a panic there
//! is a finding too.
//!
//! One target per public decoder, importer and builder; see [`TARGETS`] and
//! `docs/security.md` (section Fuzzing).

#![allow(
    dead_code,
    clippy::expect_used,
    reason = "shared with the fuzz crate; a failed expect on a fixed valid object is a finding"
)]

use std::io::Write;
use std::sync::{Arc, OnceLock};

use mofhei::compile::{CompileOptions, compile};
use mofhei::data::{csv, idx};
use mofhei::eval::{Client, Server};
use mofhei::he::ckks::CkksSecretKey;
use mofhei::he::ckks::{Ckks, CkksCiphertext, CkksEvalKeys, CkksParams, CkksPublicKey};
use mofhei::he::sim::Sim;
use mofhei::he::{HeScheme, KeyRequirements, Level, Rotation};
use mofhei::import::onnx::{self, ImportOptions};
use mofhei::import::safetensors::{WeightNames, load_weights};
use mofhei::model::{Activation, Layer, Network, Pool2d, Tensor, zoo};
use mofhei::packing::tile::TileTensorShape;
use mofhei::packing::{Batch, Diagonal, Packing, Tile};
use mofhei::plan::Plan;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// A fuzz target: its name (the cargo-fuzz binary and corpus directory),
/// its body, and the valid inputs its corpus is seeded with.
pub struct Target {
    /// Name of the target (`fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`).
    pub name: &'static str,
    /// The body: any bytes in, no panic out.
    pub run: fn(&[u8]),
    /// Valid inputs (seeds of the corpus and of the smoke run's mutations).
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "ckks_params",
        run: ckks_params,
        seeds: seeds_ckks_params,
    },
    Target {
        name: "ckks_ciphertext",
        run: ckks_ciphertext,
        seeds: seeds_ckks_ciphertext,
    },
    Target {
        name: "ckks_seeded_ciphertext",
        run: ckks_seeded_ciphertext,
        seeds: seeds_ckks_seeded_ciphertext,
    },
    Target {
        name: "ckks_plaintext",
        run: ckks_plaintext,
        seeds: seeds_ckks_plaintext,
    },
    Target {
        name: "ckks_public_key",
        run: ckks_public_key,
        seeds: seeds_ckks_public_key,
    },
    Target {
        name: "ckks_eval_keys",
        run: ckks_eval_keys,
        seeds: seeds_ckks_eval_keys,
    },
    Target {
        name: "ckks_builder",
        run: ckks_builder,
        seeds: seeds_ckks_builder,
    },
    #[cfg(feature = "bfv")]
    Target {
        name: "bfv_builder",
        run: bfv_builder,
        seeds: seeds_bfv_builder,
    },
    Target {
        name: "plan",
        run: plan,
        seeds: seeds_plan,
    },
    Target {
        name: "network",
        run: network,
        seeds: seeds_network,
    },
    Target {
        name: "onnx",
        run: onnx_import,
        seeds: seeds_onnx,
    },
    Target {
        name: "safetensors",
        run: safetensors,
        seeds: seeds_safetensors,
    },
    Target {
        name: "idx",
        run: idx_raw,
        seeds: seeds_idx,
    },
    Target {
        name: "idx_gzip",
        run: idx_gzip,
        seeds: seeds_idx_gzip,
    },
    Target {
        name: "csv",
        run: csv_text,
        seeds: seeds_csv,
    },
    Target {
        name: "tile_shape",
        run: tile_shape,
        seeds: seeds_tile_shape,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Deterministic randomness for the fixed keys and encryptions of the bodies.
fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Reads numbers from the front of a fuzz input (zeros once it runs out).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, i| acc | (u64::from(self.u8()) << (8 * i)))
    }
}

// ---------------------------------------------------------------------------
// CKKS objects
// ---------------------------------------------------------------------------

/// A CKKS backend with the keys and ciphertexts the CKKS decoder bodies
/// check decoded objects against. **Insecure** small parameters (N = 32):
/// the decoders' checks do not depend on N, and small objects let the
/// fuzzer mutate whole ciphertexts and keys quickly.
pub struct CkksWorld {
    /// The backend.
    pub ckks: Ckks,
    /// Its secret key.
    pub sk: CkksSecretKey,
    /// Its public key.
    pub pk: CkksPublicKey,
    /// Relinearisation, conjugation and rotation (1, -2) keys.
    pub keys: CkksEvalKeys,
    /// A fresh ciphertext at the top level.
    pub ct: CkksCiphertext,
}

/// The shared CKKS world (built once per process).
pub fn ckks_world() -> &'static CkksWorld {
    static WORLD: OnceLock<CkksWorld> = OnceLock::new();
    WORLD.get_or_init(|| {
        let params = CkksParams::insecure_for_tests(5, &[40, 30, 30], &[40], 30)
            .expect("small CKKS parameters");
        let ckks = Ckks::new(params).expect("small CKKS backend");
        let mut r = rng(1);
        let sk = ckks.generate_secret_key(&mut r).expect("secret key");
        let pk = ckks.generate_public_key(&sk, &mut r).expect("public key");
        let req = KeyRequirements::new()
            .with_relinearization()
            .with_conjugation()
            .with_rotations([Rotation(1), Rotation(-2)]);
        let keys = ckks.generate_eval_keys(&sk, &req, &mut r).expect("keys");
        let pt = ckks
            .encode(&[0.5, -0.25, 1.0], ckks.max_level(), ckks.default_scale())
            .expect("encode");
        let ct = ckks.encrypt(&pk, &pt, &mut r).expect("encrypt");
        CkksWorld {
            ckks,
            sk,
            pk,
            keys,
            ct,
        }
    })
}

/// Decrypts and decodes (errors ignored: a decoded ciphertext of another
/// key is garbage, but decrypting it must not panic).
fn decrypt_decode(w: &CkksWorld, ct: &CkksCiphertext) {
    if let Ok(pt) = w.ckks.decrypt(&w.sk, ct) {
        let _ = w.ckks.decode(&pt);
    }
}

/// `CkksParams::from_bytes`: accepted parameters are secure and re-encode
/// to parameters equal to themselves.
pub fn ckks_params(data: &[u8]) {
    if let Ok(p) = CkksParams::from_bytes(data) {
        check_ckks_params(&p, true);
        let again = p.to_bytes().expect("encode accepted parameters");
        assert_eq!(
            CkksParams::from_bytes(&again).expect("re-decode parameters"),
            p
        );
    }
}

/// What accepted CKKS parameters satisfy: 128-bit security (when asked for),
/// and distinct NTT-friendly primes of the requested sizes.
fn check_ckks_params(p: &CkksParams, secure: bool) {
    let primes: Vec<u64> = p
        .moduli()
        .iter()
        .chain(p.special_moduli())
        .copied()
        .collect();
    let bits: u32 = primes.iter().map(|q| 64 - q.leading_zeros()).sum();
    if secure {
        assert!(
            mofhei::he::security::check_128_bit(p.log_n(), bits).is_ok(),
            "insecure parameters accepted: log_n {}, {bits} bits",
            p.log_n()
        );
    }
    let two_n = 2 * p.degree() as u64;
    for (i, &q) in primes.iter().enumerate() {
        assert!(mofhei::he::primes::is_prime(q), "{q} is not prime");
        assert_eq!(q % two_n, 1, "{q} is not 1 mod 2N");
        assert!(!primes[..i].contains(&q), "prime {q} repeated");
    }
}

/// `Ckks::ciphertext_from_bytes`, then the decoded ciphertext is
/// re-encoded, decrypted, relinearised, multiplied and rotated.
pub fn ckks_ciphertext(data: &[u8]) {
    let w = ckks_world();
    let Ok(ct) = w.ckks.ciphertext_from_bytes(data) else {
        return;
    };
    let bytes = w.ckks.ciphertext_to_bytes(&ct).expect("encode ciphertext");
    let again = w.ckks.ciphertext_from_bytes(&bytes).expect("re-decode");
    assert_eq!(w.ckks.ciphertext_to_bytes(&again).ok(), Some(bytes));
    decrypt_decode(w, &ct);
    let mut ct = ct;
    if ct.size() == 3 {
        let _ = w.ckks.relinearize_assign(&mut ct, &w.keys);
    }
    if let Ok(sq) = w.ckks.mul_relin_rescale(&ct, &ct, &w.keys) {
        decrypt_decode(w, &sq);
    }
    if let Ok(r) = w.ckks.rotate(&ct, Rotation(-2), &w.keys) {
        decrypt_decode(w, &r);
    }
    let _ = w.ckks.add(&ct, &w.ct);
}

/// `Ckks::seeded_ciphertext_from_bytes`, then re-encoding and expansion.
pub fn ckks_seeded_ciphertext(data: &[u8]) {
    let w = ckks_world();
    let Ok(ct) = w.ckks.seeded_ciphertext_from_bytes(data) else {
        return;
    };
    let bytes = w
        .ckks
        .seeded_ciphertext_to_bytes(&ct)
        .expect("encode seeded ciphertext");
    let again = w
        .ckks
        .seeded_ciphertext_from_bytes(&bytes)
        .expect("re-decode");
    assert_eq!(w.ckks.seeded_ciphertext_to_bytes(&again).ok(), Some(bytes));
    if let Ok(full) = w.ckks.expand(&ct) {
        decrypt_decode(w, &full);
    }
}

/// `Ckks::plaintext_from_bytes`, then re-encoding, decoding and plaintext
/// operations on a fixed ciphertext.
pub fn ckks_plaintext(data: &[u8]) {
    let w = ckks_world();
    let Ok(pt) = w.ckks.plaintext_from_bytes(data) else {
        return;
    };
    let bytes = w.ckks.plaintext_to_bytes(&pt).expect("encode plaintext");
    let again = w.ckks.plaintext_from_bytes(&bytes).expect("re-decode");
    assert_eq!(w.ckks.plaintext_to_bytes(&again).ok(), Some(bytes));
    let _ = w.ckks.decode(&pt);
    let _ = w.ckks.add_plain(&w.ct, &pt);
    if let Ok(p) = w.ckks.mul_plain(&w.ct, &pt) {
        decrypt_decode(w, &p);
    }
}

/// `Ckks::public_key_from_bytes`, then re-encoding and an encryption.
pub fn ckks_public_key(data: &[u8]) {
    let w = ckks_world();
    let Ok(pk) = w.ckks.public_key_from_bytes(data) else {
        return;
    };
    let bytes = w.ckks.public_key_to_bytes(&pk).expect("encode public key");
    let again = w.ckks.public_key_from_bytes(&bytes).expect("re-decode");
    assert_eq!(w.ckks.public_key_to_bytes(&again).ok(), Some(bytes));
    let pt = w
        .ckks
        .encode(&[1.0], w.ckks.max_level(), w.ckks.default_scale())
        .expect("encode");
    if let Ok(ct) = w.ckks.encrypt(&pk, &pt, &mut rng(2)) {
        decrypt_decode(w, &ct);
    }
}

/// `Ckks::eval_keys_from_bytes` with a small and an unbounded key count,
/// then re-encoding and every operation the keys may support.
pub fn ckks_eval_keys(data: &[u8]) {
    let w = ckks_world();
    let unbounded = w.ckks.eval_keys_from_bytes(data, usize::MAX);
    let Ok(keys) = w.ckks.eval_keys_from_bytes(data, 4) else {
        return;
    };
    assert!(unbounded.is_ok(), "accepted with 4 keys, refused unbounded");
    let bytes = w.ckks.eval_keys_to_bytes(&keys).expect("encode keys");
    let again = w.ckks.eval_keys_from_bytes(&bytes, 4).expect("re-decode");
    assert_eq!(w.ckks.eval_keys_to_bytes(&again).ok(), Some(bytes));
    if let Ok(sq) = w.ckks.mul_relin_rescale(&w.ct, &w.ct, &keys) {
        decrypt_decode(w, &sq);
    }
    for step in [1, -2, 3] {
        if let Ok(r) = w.ckks.rotate(&w.ct, Rotation(step), &keys) {
            decrypt_decode(w, &r);
        }
    }
    if let Ok(c) = w.ckks.conjugate(&w.ct, &keys) {
        decrypt_decode(w, &c);
    }
}

/// The CKKS parameter builder (and the insecure test constructor) on
/// fuzzed numbers: accepted secure parameters are secure, every accepted
/// set has distinct NTT-friendly primes, and small ones build a backend
/// whose encodings decode.
///
/// Input: a mode byte (bit 0: insecure test constructor), `log2 N`, the
/// scale bits, the counts of moduli and special primes, then one byte of
/// bit size per prime.
pub fn ckks_builder(data: &[u8]) {
    let mut b = Bytes(data);
    let mode = b.u8();
    let log_n = u32::from(b.u8());
    let scale_bits = u32::from(b.u8());
    let n_moduli = usize::from(b.u8() % 32);
    let n_special = usize::from(b.u8() % 8);
    let moduli: Vec<u32> = (0..n_moduli).map(|_| u32::from(b.u8())).collect();
    let special: Vec<u32> = (0..n_special).map(|_| u32::from(b.u8())).collect();
    let insecure = mode & 1 == 1;
    let built = if insecure {
        // Small degrees only: the point is the chain, not the big tables.
        if log_n > 10 {
            return;
        }
        CkksParams::insecure_for_tests(log_n, &moduli, &special, scale_bits)
    } else {
        CkksParams::builder()
            .log_n(log_n)
            .moduli_bits(&moduli)
            .special_bits(&special)
            .scale_bits(scale_bits)
            .build()
    };
    let Ok(p) = built else {
        return;
    };
    check_ckks_params(&p, !insecure);
    assert_eq!(p.moduli().len(), moduli.len());
    assert_eq!(p.special_moduli().len(), special.len());
    if p.log_n() <= 12 {
        let ckks = Ckks::new(p).expect("backend of accepted parameters");
        // The default scale may not fit a one-prime chain of its own size
        // (a typed `ScaleOverflow`); what is encoded decodes.
        let v = [0.25, -0.5];
        if let Ok(pt) = ckks.encode(&v, ckks.max_level(), ckks.default_scale()) {
            ckks.decode(&pt).expect("decode on accepted parameters");
        }
    }
}

#[cfg(feature = "bfv")]
/// The BFV parameter builder on fuzzed numbers (secure and insecure
/// builds): no panic inside `fhe`, and accepted secure sets are secure.
///
/// Input: a mode byte (bit 0: insecure build; bit 1: the plaintext modulus
/// is the first prime of the progression `k 2N + 1` from the next 8 bytes,
/// else those 8 bytes as is), `log2 N` (at most 13: larger sets take
/// seconds and gigabytes to build), the 8 bytes of `t`, a count, then one
/// byte of bit size per ciphertext modulus.
pub fn bfv_builder(data: &[u8]) {
    use mofhei::he::bfv::BfvParams;
    let mut b = Bytes(data);
    let mode = b.u8();
    let log_n = u32::from(b.u8() % 14);
    let raw_t = b.u64();
    let count = usize::from(b.u8() % 16);
    let sizes: Vec<usize> = (0..count).map(|_| usize::from(b.u8())).collect();
    let degree = 1usize << log_n;
    let t = if mode & 2 == 2 {
        let two_n = 2 * degree as u64;
        let start = (raw_t % (1 << 40)) / two_n;
        (start..start + 2000)
            .map(|k| k.saturating_mul(two_n).saturating_add(1))
            .find(|&c| mofhei::he::primes::is_prime(c))
            .unwrap_or(raw_t)
    } else {
        raw_t
    };
    let builder = BfvParams::builder()
        .degree(degree)
        .plaintext_modulus(t)
        .moduli_sizes(&sizes);
    let insecure = mode & 1 == 1;
    let built = if insecure {
        builder.build_insecure_for_tests()
    } else {
        builder.build()
    };
    if let Ok(p) = built {
        assert_eq!(p.is_secure(), !insecure);
        if !insecure {
            assert!(
                mofhei::he::security::check_128_bit(log_n, p.log_q()).is_ok(),
                "insecure BFV parameters accepted"
            );
        }
        assert_eq!(p.moduli().len(), sizes.len());
        assert!(!p.moduli().contains(&t), "a ciphertext prime equals t");
    }
}

// ---------------------------------------------------------------------------
// Plans and networks
// ---------------------------------------------------------------------------

/// Largest per-sample input the bodies build a tensor for (the harness's
/// own allocation; the library's budgets are what is under test).
const MAX_TEST_INPUT: usize = 1 << 12;
/// Largest slot count the plan body runs a simulator with.
const MAX_SIM_SLOTS: usize = 1 << 12;

/// `Plan::from_bytes`; an accepted plan is re-encoded, summarised and run
/// on the simulator through `Client` and `Server` on one sample (all at
/// once and streamed).
pub fn plan(data: &[u8]) {
    let Ok(plan) = Plan::from_bytes(data) else {
        return;
    };
    // Bytes, not values: a plan may hold NaN (NaN != NaN).
    let bytes = plan.to_bytes().expect("encode plan");
    let again = Plan::from_bytes(&bytes).expect("re-decode plan");
    assert_eq!(again.to_bytes().ok(), Some(bytes));
    let _ = plan.to_string();
    let _ = plan.counts_by_layer();
    let _ = plan.estimated_peak_bytes();
    let _ = plan.estimated_peak_bytes_streamed();
    let _ = plan.estimated_seconds(&Default::default());
    let _ = plan.rotation_steps();
    let input_len = plan
        .input_shape()
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    if input_len.is_none_or(|n| n > MAX_TEST_INPUT) {
        return;
    }
    let slots = plan
        .period()
        .unwrap_or(1)
        .max(16)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX);
    if slots > MAX_SIM_SLOTS {
        return;
    }
    let Ok(sp) = plan.params().sim_params(slots) else {
        return;
    };
    let sim = Arc::new(Sim::new(sp));
    let mut r = rng(3);
    let Ok((client, keys)) = Client::new(sim.clone(), &plan, &mut r) else {
        return;
    };
    let Ok(server) = Server::new(sim.clone(), plan.clone(), keys) else {
        return;
    };
    let mut shape = vec![1];
    shape.extend_from_slice(plan.input_shape());
    let x = Tensor::zeros(shape);
    if let Ok(enc) = client.encrypt(&x, &mut r)
        && let Ok((out, _)) = server.run(enc)
    {
        let _ = client.decrypt(&out);
    }
    if let Ok(source) = client.input_source(&x, &mut r)
        && let Ok((out, _)) = server.run_streamed(1, |j| source.get(j))
    {
        let _ = client.decrypt(&out);
    }
}

/// Runs what a network read from outside goes through: a forward pass on
/// one zero sample, and compilation with a packing chosen by `pick`.
fn use_network(net: &Network, pick: usize) {
    let _ = net.param_count();
    let Ok(out_shape) = net.output_shape() else {
        return;
    };
    let input_len = net
        .input_shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    if input_len.is_some_and(|n| n <= MAX_TEST_INPUT) {
        let mut shape = vec![1];
        shape.extend_from_slice(&net.input_shape);
        if let Ok(y) = net.forward(&Tensor::zeros(shape)) {
            assert_eq!(y.shape()[1..], out_shape[..]);
        }
    }
    let tile = Tile::new(16, 16, 1);
    let packing: &dyn Packing = match pick % 3 {
        0 => &Batch,
        1 => &Diagonal,
        _ => match &tile {
            Ok(t) => t,
            Err(_) => return,
        },
    };
    let _ = compile(net, packing, &CompileOptions::default());
}

/// `Network::from_bytes`; an accepted network re-encodes to itself, runs
/// forward on one zero sample and compiles.
pub fn network(data: &[u8]) {
    let Ok(net) = Network::from_bytes(data) else {
        return;
    };
    let bytes = net.to_bytes().expect("encode network");
    let again = Network::from_bytes(&bytes).expect("re-decode network");
    assert_eq!(again.to_bytes().ok(), Some(bytes));
    use_network(&net, data.len());
}

/// ONNX import (with and without dropping a final softmax); an imported
/// network is valid, round-trips through the model format, runs forward
/// and compiles.
pub fn onnx_import(data: &[u8]) {
    let mut strict = ImportOptions::default();
    strict.drop_final_softmax = false;
    let _ = onnx::from_bytes_with(data, strict);
    let Ok(net) = onnx::from_bytes(data) else {
        return;
    };
    if let Ok(bytes) = net.to_bytes() {
        let _ = Network::from_bytes(&bytes);
    }
    use_network(&net, data.len());
}

/// The network the safetensors body loads weights into: the architecture
/// of `tests/data/onnx/bn_pad_pool.onnx` (conv, batch norm, pools, dense).
fn safetensors_network() -> &'static Network {
    static NET: OnceLock<Network> = OnceLock::new();
    NET.get_or_init(|| {
        onnx::from_bytes(include_bytes!("../data/onnx/bn_pad_pool.onnx"))
            .expect("bn_pad_pool fixture")
    })
}

/// `load_weights` (automatic names and explicit prefixes): all or nothing
/// (the network is unchanged on error), and a loaded network runs forward.
pub fn safetensors(data: &[u8]) {
    let base = safetensors_network();
    let prefixes = WeightNames::Prefixes(vec![
        "features.0".into(),
        "features.1".into(),
        "features.5".into(),
        "classifier".into(),
    ]);
    for names in [WeightNames::Auto, prefixes] {
        let mut net = base.clone();
        match load_weights(&mut net, data, &names) {
            Ok(()) => {
                assert_eq!(net.shapes().ok(), base.shapes().ok());
                let mut shape = vec![1];
                shape.extend_from_slice(&net.input_shape);
                let _ = net.forward(&Tensor::zeros(shape));
            }
            Err(_) => assert_eq!(&net, base, "network changed by a failed load"),
        }
    }
}

// ---------------------------------------------------------------------------
// Data files and notations
// ---------------------------------------------------------------------------

/// `idx::parse` on the bytes as given (raw, or gzip when they start with
/// the gzip magic), then images / labels of the array.
pub fn idx_raw(data: &[u8]) {
    use_idx(idx::parse(data));
}

/// `idx::parse` on the input gzip-compressed (exercises the decompressing
/// path with well-formed streams around mutated content).
pub fn idx_gzip(data: &[u8]) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if gz.write_all(data).is_err() {
        return;
    }
    if let Ok(bytes) = gz.finish() {
        use_idx(idx::parse(&bytes));
    }
}

fn use_idx(parsed: mofhei::Result<idx::IdxArray>) {
    let Ok(a) = parsed else {
        return;
    };
    let n = a.dims.iter().try_fold(1usize, |x, &d| x.checked_mul(d));
    assert_eq!(n, Some(a.data.len()), "dims do not match the data");
    if let Ok(t) = idx::images(&a) {
        assert_eq!(t.len(), a.data.len());
    }
    if let Ok(l) = idx::labels(&a) {
        assert_eq!(l.len(), a.data.len());
    }
}

/// `csv::parse`. Input: one option byte (bits 0-2: label column, 7 =
/// none; bits 3-4: delimiter `,` `;` tab space), then the text (lossy
/// UTF-8). An accepted table has consistent features and labels.
pub fn csv_text(data: &[u8]) {
    let mut b = Bytes(data);
    let opt = b.u8();
    let label_column = match opt & 7 {
        7 => None,
        c => Some(usize::from(c)),
    };
    let delimiter = [',', ';', '\t', ' '][usize::from((opt >> 3) & 3)];
    let text = String::from_utf8_lossy(b.0);
    // A header name as label column when the low bits ask for none.
    let label_header = (label_column.is_none() && opt & 0x20 != 0).then(|| {
        text.split([',', ';', '\t', ' '])
            .next()
            .unwrap_or("")
            .to_string()
    });
    let opts = csv::CsvOptions {
        label_column,
        delimiter,
        label_header,
    };
    if let Ok(ds) = csv::parse(&text, &opts) {
        assert_eq!(ds.inputs().shape()[0], ds.len());
        if let Some(l) = ds.labels() {
            assert_eq!(l.len(), ds.len());
        }
    }
}

/// `TileTensorShape::parse` (lossy UTF-8); an accepted shape counts its
/// tiles and slots and prints to a string that parses back to itself.
pub fn tile_shape(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(s) = TileTensorShape::parse(&text) else {
        return;
    };
    let _ = s.tile_count();
    let _ = s.tile_slots();
    let printed = s.to_string();
    assert_eq!(
        TileTensorShape::parse(&printed).ok().as_ref(),
        Some(&s),
        "{printed}"
    );
}

// ---------------------------------------------------------------------------
// Seeds: valid inputs of every kind
// ---------------------------------------------------------------------------

fn seeds_ckks_params() -> Vec<Vec<u8>> {
    [
        (12, vec![36, 30], vec![40], 30),
        (13, vec![60, 40, 40], vec![60], 40),
        (14, vec![60, 40, 40, 40, 40, 40, 40], vec![60], 40),
    ]
    .into_iter()
    .filter_map(|(log_n, m, s, scale)| {
        CkksParams::builder()
            .log_n(log_n)
            .moduli_bits(&m)
            .special_bits(&s)
            .scale_bits(scale)
            .build()
            .ok()?
            .to_bytes()
            .ok()
    })
    .collect()
}

fn seeds_ckks_ciphertext() -> Vec<Vec<u8>> {
    let w = ckks_world();
    let c = &w.ckks;
    let mut cts = vec![w.ct.clone()];
    if let Ok(prod) = c.mul(&w.ct, &w.ct) {
        cts.push(prod);
    }
    let mut low = w.ct.clone();
    if c.drop_level_assign(&mut low, Level(0)).is_ok() {
        cts.push(low);
    }
    cts.iter()
        .filter_map(|ct| c.ciphertext_to_bytes(ct).ok())
        .collect()
}

fn seeds_ckks_seeded_ciphertext() -> Vec<Vec<u8>> {
    let w = ckks_world();
    let c = &w.ckks;
    let mut r = rng(4);
    [c.max_level(), Level(0)]
        .into_iter()
        .filter_map(|l| {
            let pt = c.encode(&[0.125, 3.0], l, c.default_scale()).ok()?;
            let ct = c.encrypt_secret_seeded(&w.sk, &pt, &mut r).ok()?;
            c.seeded_ciphertext_to_bytes(&ct).ok()
        })
        .collect()
}

fn seeds_ckks_plaintext() -> Vec<Vec<u8>> {
    let w = ckks_world();
    let c = &w.ckks;
    [c.max_level(), Level(0)]
        .into_iter()
        .filter_map(|l| {
            let pt = c
                .encode(&[-1.5, 2.0, 0.0, 7.0], l, c.default_scale())
                .ok()?;
            c.plaintext_to_bytes(&pt).ok()
        })
        .collect()
}

fn seeds_ckks_public_key() -> Vec<Vec<u8>> {
    let w = ckks_world();
    w.ckks.public_key_to_bytes(&w.pk).into_iter().collect()
}

fn seeds_ckks_eval_keys() -> Vec<Vec<u8>> {
    let w = ckks_world();
    let c = &w.ckks;
    let mut out: Vec<Vec<u8>> = c.eval_keys_to_bytes(&w.keys).into_iter().collect();
    let mut r = rng(5);
    for req in [
        KeyRequirements::new().with_relinearization(),
        KeyRequirements::new().with_rotations([Rotation(3)]),
    ] {
        if let Ok(k) = c.generate_eval_keys(&w.sk, &req, &mut r)
            && let Ok(b) = c.eval_keys_to_bytes(&k)
        {
            out.push(b);
        }
    }
    out
}

fn builder_seed(mode: u8, log_n: u8, scale: u8, moduli: &[u8], special: &[u8]) -> Vec<u8> {
    let mut v = vec![mode, log_n, scale, moduli.len() as u8, special.len() as u8];
    v.extend_from_slice(moduli);
    v.extend_from_slice(special);
    v
}

fn seeds_ckks_builder() -> Vec<Vec<u8>> {
    vec![
        builder_seed(0, 12, 30, &[36, 30], &[40]),
        builder_seed(0, 13, 40, &[60, 40, 40], &[60]),
        builder_seed(0, 14, 40, &[60, 40, 40, 40, 40, 40, 40], &[60]),
        builder_seed(0, 15, 50, &[60, 50, 50, 50, 50, 50], &[60, 60]),
        builder_seed(1, 5, 30, &[40, 30, 30], &[40]),
        builder_seed(1, 8, 25, &[30, 25], &[30, 30]),
    ]
}

#[cfg(feature = "bfv")]
fn seeds_bfv_builder() -> Vec<Vec<u8>> {
    let seed = |mode: u8, log_n: u8, t: u64, sizes: &[u8]| {
        let mut v = vec![mode, log_n];
        v.extend_from_slice(&t.to_le_bytes());
        v.push(sizes.len() as u8);
        v.extend_from_slice(sizes);
        v
    };
    vec![
        seed(0, 13, 65537, &[60, 40, 40, 60]),
        seed(0, 12, 40961, &[36, 16]),
        seed(0, 12, 65537, &[50, 50]),
        seed(1, 10, 12289, &[40, 40]),
        seed(3, 6, 1000, &[40, 30]),
        seed(2, 11, 1 << 17, &[54]),
    ]
}

/// Small HE-friendly networks (polynomial activations, average pools).
fn small_networks() -> Vec<Network> {
    let mut nets = Vec::new();
    if let Ok(n) = zoo::mlp(&[8, 4, 3], Activation::Square, 1) {
        nets.push(n);
    }
    if let Ok(n) = zoo::mlp(&[6, 5, 4, 2], Activation::Square, 2) {
        nets.push(n);
    }
    let mut conv = Network {
        input_shape: vec![1, 6, 6],
        layers: vec![
            zoo::conv(2, 1, 3, 1, 1),
            Layer::Activation(Activation::Square),
            Layer::AvgPool2d(Pool2d {
                kernel: (2, 2),
                stride: (2, 2),
                padding: (0, 0),
            }),
            Layer::Flatten,
            zoo::dense(18, 3),
        ],
    };
    conv.init_assign(3);
    nets.push(conv);
    nets
}

fn seeds_plan() -> Vec<Vec<u8>> {
    let tile = Tile::new(16, 16, 1).ok();
    let mut out = Vec::new();
    for net in small_networks() {
        let mut packings: Vec<&dyn Packing> = vec![&Batch, &Diagonal];
        if let Some(t) = &tile {
            packings.push(t);
        }
        for p in packings {
            if let Ok(plan) = compile(&net, p, &CompileOptions::default())
                && let Ok(b) = plan.to_bytes()
            {
                out.push(b);
            }
        }
    }
    out
}

fn seeds_network() -> Vec<Vec<u8>> {
    let mut nets = small_networks();
    nets.push(zoo::tenseal_mnist(4));
    if let Ok(n) = zoo::mlp(&[4, 3], Activation::Relu, 5) {
        nets.push(n);
    }
    nets.iter().filter_map(|n| n.to_bytes().ok()).collect()
}

fn seeds_onnx() -> Vec<Vec<u8>> {
    vec![
        include_bytes!("../data/onnx/mlp_opset11.onnx").to_vec(),
        include_bytes!("../data/onnx/keras_nhwc_cnn.onnx").to_vec(),
        include_bytes!("../data/onnx/bn_pad_pool.onnx").to_vec(),
        include_bytes!("../data/onnx/unknown_op.onnx").to_vec(),
        include_bytes!("../data/onnx/branch.onnx").to_vec(),
    ]
}

/// A safetensors file (8-byte little-endian header length, JSON header,
/// data) holding f32 tensors.
fn safetensors_file(tensors: &[(&str, &[usize], &[f32])]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (i, (name, shape, values)) in tensors.iter().enumerate() {
        let start = data.len();
        for v in values.iter() {
            data.extend_from_slice(&v.to_le_bytes());
        }
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{start},{}]}}",
            dims.join(","),
            data.len()
        ));
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

fn seeds_safetensors() -> Vec<Vec<u8>> {
    let net = safetensors_network();
    // The fixture's own weights, and the network's weights written here.
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let names = ["features.0", "features.1", "features.5", "classifier"];
    let mut prefix = names.iter();
    for layer in &net.layers {
        match layer {
            Layer::Dense(d) => {
                let Some(p) = prefix.next() else { break };
                tensors.push((
                    format!("{p}.weight"),
                    d.weight.shape().to_vec(),
                    d.weight.data().to_vec(),
                ));
                tensors.push((format!("{p}.bias"), vec![d.bias.len()], d.bias.clone()));
            }
            Layer::Conv2d(c) => {
                let Some(p) = prefix.next() else { break };
                tensors.push((
                    format!("{p}.weight"),
                    c.weight.shape().to_vec(),
                    c.weight.data().to_vec(),
                ));
                tensors.push((format!("{p}.bias"), vec![c.bias.len()], c.bias.clone()));
            }
            Layer::BatchNorm(b) => {
                let Some(p) = prefix.next() else { break };
                let n = vec![b.gamma.len()];
                tensors.push((format!("{p}.weight"), n.clone(), b.gamma.clone()));
                tensors.push((format!("{p}.bias"), n.clone(), b.beta.clone()));
                tensors.push((format!("{p}.running_mean"), n.clone(), b.mean.clone()));
                tensors.push((format!("{p}.running_var"), n, b.var.clone()));
            }
            _ => {}
        }
    }
    let refs: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice()))
        .collect();
    vec![
        include_bytes!("../data/onnx/bn_pad_pool.safetensors").to_vec(),
        safetensors_file(&refs),
    ]
}

fn seeds_idx() -> Vec<Vec<u8>> {
    let images: Vec<u8> = (0..3 * 4 * 4).map(|i| (i * 37 % 256) as u8).collect();
    let mut out = Vec::new();
    for (dims, data) in [
        (vec![3, 4, 4], images.clone()),
        (vec![3], vec![1, 7, 9]),
        (vec![2, 2, 3, 2], images[..24].to_vec()),
    ] {
        if let Ok(raw) = idx::encode(&dims, &data) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            if gz.write_all(&raw).is_ok()
                && let Ok(z) = gz.finish()
            {
                out.push(z);
            }
            out.push(raw);
        }
    }
    out
}

fn seeds_idx_gzip() -> Vec<Vec<u8>> {
    // The raw files: the body compresses them.
    seeds_idx()
        .into_iter()
        .filter(|b| !b.starts_with(&[0x1f, 0x8b]))
        .collect()
}

fn seeds_csv() -> Vec<Vec<u8>> {
    let digits = include_str!("../../data/digits.csv");
    let head: String = digits.lines().take(4).map(|l| format!("{l}\n")).collect();
    let with = |opt: u8, text: &str| {
        let mut v = vec![opt];
        v.extend_from_slice(text.as_bytes());
        v
    };
    vec![
        with(0, &head),
        with(7, "a,b,c\n1,2,3\n4.5,-6,7e-3\n"),
        with(2 | (1 << 3), "x;y;label\n0.1;0.2;1\n0.3;0.4;0\n"),
        with(1 | (2 << 3), "1\t2\t3\n4\t5\t6\n"),
    ]
}

fn seeds_tile_shape() -> Vec<Vec<u8>> {
    [
        "[300/64, */128, 2/2]",
        "[~16/4, 3?/4]",
        "[784/1024]",
        "[*/8, 10?/16, ~32/8]",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}
