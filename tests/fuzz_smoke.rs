//! A bounded, deterministic smoke run of the fuzz targets (`fuzz/`, bodies
//! in `tests/fuzz_targets/mod.rs`): each target gets its valid seeds
//! mutated by proptest (bit flips, byte edits, truncation, insertion,
//! deletion, splicing with another seed, length and size fields set to
//! boundary values), a fixed number of cases from a fixed seed, so CI
//! catches a decoder that panics again. The open-ended coverage-guided
//! campaign is `cargo fuzz run <target>` (docs/security.md, Fuzzing).
//!
//! `MOFHEI_FUZZ_CASES` overrides the number of cases per target (default
//! 2000).

mod fuzz_targets;

use fuzz_targets::{TARGETS, Target, target};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Boundary values written into length and size fields.
const INTERESTING: [u64; 12] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];

/// One edit of an input. Positions and lengths are taken modulo the
/// input's length when applied.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    /// Copy `len` bytes at `from` of seed `seed` over position `to`.
    Splice {
        seed: usize,
        from: usize,
        to: usize,
        len: usize,
    },
    /// Overwrite at a position with an interesting value in one of the
    /// encodings length fields use (bincode varint, u64 / u32 little
    /// endian, u32 big endian as IDX, protobuf varint).
    Field(usize, u8, usize),
    /// Repeat a slice (grows sequences).
    Repeat(usize, usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, v)| Mutation::SetByte(p, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, v)| Mutation::Insert(p, v)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Remove(p, n)),
        (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..256).prop_map(
            |(seed, from, to, len)| Mutation::Splice {
                seed,
                from,
                to,
                len
            }
        ),
        (any::<usize>(), 0u8..5, 0..INTERESTING.len())
            .prop_map(|(p, enc, v)| Mutation::Field(p, enc, v)),
        (any::<usize>(), 1usize..64, 1u8..8).prop_map(|(p, n, k)| Mutation::Repeat(p, n, k)),
    ]
}

/// Bincode's varint: one byte below 251, else a marker and 2, 4 or 8
/// little-endian bytes.
fn bincode_varint(v: u64) -> Vec<u8> {
    if v < 251 {
        vec![v as u8]
    } else if v <= u64::from(u16::MAX) {
        let mut o = vec![251];
        o.extend_from_slice(&(v as u16).to_le_bytes());
        o
    } else if v <= u64::from(u32::MAX) {
        let mut o = vec![252];
        o.extend_from_slice(&(v as u32).to_le_bytes());
        o
    } else {
        let mut o = vec![253];
        o.extend_from_slice(&v.to_le_bytes());
        o
    }
}

fn protobuf_varint(mut v: u64) -> Vec<u8> {
    let mut o = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            o.push(b);
            return o;
        }
        o.push(b | 0x80);
    }
}

fn overwrite(data: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let end = at + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[at..end].copy_from_slice(bytes);
}

fn apply(data: &mut Vec<u8>, m: &Mutation, seeds: &[Vec<u8>]) {
    let len = data.len();
    let at = |p: usize| if len == 0 { 0 } else { p % len };
    match m {
        Mutation::FlipBit(p, b) if len > 0 => data[at(*p)] ^= 1 << b,
        Mutation::SetByte(p, v) if len > 0 => data[at(*p)] = *v,
        Mutation::Truncate(p) => data.truncate(at(*p)),
        Mutation::Insert(p, v) => {
            let p = at(*p);
            data.splice(p..p, v.iter().copied());
        }
        Mutation::Remove(p, n) => {
            let p = at(*p);
            let end = (p + n).min(len);
            data.drain(p..end);
        }
        Mutation::Splice {
            seed,
            from,
            to,
            len: n,
        } => {
            let src = &seeds[seed % seeds.len()];
            if !src.is_empty() {
                let from = from % src.len();
                let end = (from + n).min(src.len());
                overwrite(data, at(*to), &src[from..end]);
            }
        }
        Mutation::Field(p, enc, v) => {
            let v = INTERESTING[*v];
            let bytes = match enc {
                0 => bincode_varint(v),
                1 => v.to_le_bytes().to_vec(),
                2 => (v as u32).to_le_bytes().to_vec(),
                3 => (v as u32).to_be_bytes().to_vec(),
                _ => protobuf_varint(v),
            };
            overwrite(data, at(*p), &bytes);
        }
        Mutation::Repeat(p, n, k) if len > 0 => {
            let p = at(*p);
            let end = (p + n).min(len);
            let chunk = data[p..end].to_vec();
            for _ in 0..*k {
                data.splice(end..end, chunk.iter().copied());
            }
        }
        _ => {}
    }
}

fn cases() -> u32 {
    std::env::var("MOFHEI_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

/// Runs `cases()` mutated seeds through the target, from a fixed seed.
fn smoke(t: &Target) {
    let seeds = (t.seeds)();
    assert!(!seeds.is_empty(), "{}: no seeds", t.name);
    for s in &seeds {
        (t.run)(s);
    }
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut key = [0u8; 32];
    for (k, b) in key.iter_mut().zip(t.name.bytes()) {
        *k = b;
    }
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (any::<usize>(), prop::collection::vec(mutation(), 1..6));
    let result = runner.run(&strategy, |(pick, muts)| {
        let mut data = seeds[pick % seeds.len()].clone();
        for m in &muts {
            apply(&mut data, m, &seeds);
        }
        (t.run)(&data);
        Ok::<(), TestCaseError>(())
    });
    if let Err(e) = result {
        panic!("fuzz target {}: {e}", t.name);
    }
}

macro_rules! smoke_tests {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$attr])*
            #[test]
            fn $name() {
                smoke(target(stringify!($name)).expect("target listed"));
            }
        )*

        /// Every target has a smoke test (the list above is complete).
        #[test]
        fn every_target_is_smoked() {
            let mut smoked = Vec::new();
            $(
                $(#[$attr])*
                smoked.push(stringify!($name));
            )*
            for t in TARGETS {
                assert!(smoked.contains(&t.name), "no smoke test for {}", t.name);
            }
        }
    };
}

smoke_tests!(
    ckks_params,
    ckks_ciphertext,
    ckks_seeded_ciphertext,
    ckks_plaintext,
    ckks_public_key,
    ckks_eval_keys,
    ckks_builder,
    #[cfg(feature = "bfv")]
    bfv_builder,
    plan,
    network,
    onnx,
    safetensors,
    idx,
    idx_gzip,
    csv,
    tile_shape,
);

/// The seeds are valid objects of their kind (the mutations start from
/// inputs the decoders accept, so the bodies reach past the first check).
#[test]
fn seeds_are_valid() {
    use mofhei::data::idx;
    use mofhei::he::ckks::CkksParams;
    use mofhei::model::Network;
    use mofhei::packing::tile::TileTensorShape;
    use mofhei::plan::Plan;
    let w = fuzz_targets::ckks_world();
    let all = |name: &str, ok: &dyn Fn(&[u8]) -> bool| {
        let seeds = (target(name).expect("target").seeds)();
        assert!(!seeds.is_empty(), "{name}");
        for (i, s) in seeds.iter().enumerate() {
            assert!(ok(s), "{name}: seed {i} refused");
        }
    };
    all("ckks_params", &|b| CkksParams::from_bytes(b).is_ok());
    all("ckks_ciphertext", &|b| {
        w.ckks.ciphertext_from_bytes(b).is_ok()
    });
    all("ckks_seeded_ciphertext", &|b| {
        w.ckks.seeded_ciphertext_from_bytes(b).is_ok()
    });
    all("ckks_plaintext", &|b| {
        w.ckks.plaintext_from_bytes(b).is_ok()
    });
    all("ckks_public_key", &|b| {
        w.ckks.public_key_from_bytes(b).is_ok()
    });
    all("ckks_eval_keys", &|b| {
        w.ckks.eval_keys_from_bytes(b, 4).is_ok()
    });
    all("plan", &|b| Plan::from_bytes(b).is_ok());
    all("network", &|b| Network::from_bytes(b).is_ok());
    all("idx", &|b| idx::parse(b).is_ok());
    all("tile_shape", &|b| {
        TileTensorShape::parse(&String::from_utf8_lossy(b)).is_ok()
    });
    // Four of the five ONNX fixtures import (the branching graph is refused
    // by design; the one ending in a softmax imports with it dropped).
    let onnx = (target("onnx").expect("target").seeds)();
    let imported = onnx
        .iter()
        .filter(|b| mofhei::import::onnx::from_bytes(b).is_ok())
        .count();
    assert_eq!(imported, 4);
    // At least one plan per packing compiled.
    assert!((target("plan").expect("target").seeds)().len() >= 6);
}
