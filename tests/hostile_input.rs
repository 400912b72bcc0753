//! Hostile inputs: every reproducer of the misuse audit (issue 14) gives a
//! typed error, never a panic or an abort, and stays under a memory bound.
//!
//! Memory: a test wrapped in [`bounded`] re-runs itself in a child process
//! (this test binary, filtered to that one test) and reads the child's peak
//! resident set (`VmHWM` from `/proc/self/status`, Linux) at the end; the
//! bound named in the call must hold. The child starts at a few MB, so a
//! bound of 64-256 MiB proves that the refusal came before the gigabytes or
//! terabytes the input asked for. Off Linux the bound is not checked.
#![allow(clippy::unwrap_used, reason = "test set-up helpers")]

use std::process::Command;
use std::time::{Duration, Instant};

use mofhei::Budget;
use mofhei::compile::{CompileOptions, compile};
use mofhei::data::idx;
use mofhei::error::{DecodeError, Error};
use mofhei::eval::{Client, Server};
use mofhei::he::ckks::{Ckks, CkksParams};
use mofhei::he::sim::Sim;
use mofhei::he::{HeScheme, KeyRequirements, Rotation};
use mofhei::model::{Activation, Conv2d, Layer, Network, Tensor, zoo};
use mofhei::packing::tile::TileTensorShape;
use mofhei::packing::{Batch, Diagonal};
use mofhei::plan::Plan;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The process's peak resident set (`VmHWM` of `/proc/self/status`, Linux).
fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

const CHILD: &str = "MOFHEI_HOSTILE_INPUT_CHILD";
const MIB: u64 = 1 << 20;

/// Runs `body` in a child process (this binary, test `name` only) and
/// checks the child's peak RSS is at most `limit_mib` MiB.
fn bounded(name: &str, limit_mib: u64, body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        if let Some(hwm) = peak_rss_bytes() {
            println!("\nVMHWM={hwm}");
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hwm = stdout
        .lines()
        .find_map(|l| l.split("VMHWM=").nth(1))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    if let Some(hwm) = hwm {
        assert!(
            hwm <= limit_mib * MIB,
            "{name}: peak RSS {} MiB over the bound of {limit_mib} MiB",
            hwm / MIB
        );
    } else if cfg!(target_os = "linux") {
        panic!("no VMHWM line:\n{stdout}");
    }
}

fn budget_err<T: std::fmt::Debug>(r: mofhei::Result<T>) -> (&'static str, u64, u64) {
    match r {
        Err(Error::BudgetExceeded {
            what,
            needed,
            limit,
        }) => (what, needed, limit),
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
}

fn not_conforming<T: std::fmt::Debug>(r: mofhei::Result<T>) -> &'static str {
    match r {
        Err(Error::Decode {
            reason: DecodeError::NotConforming { what },
            ..
        }) => what,
        // The same checks on a plan in memory (Plan::validate, Client::new,
        // Server::new) name the failed check as a PlanError.
        Err(Error::InvalidPlan { reason }) => reason.what(),
        other => panic!("expected a NotConforming decode error, got {other:?}"),
    }
}

// ---- item 3: the 45-byte model and the 19-byte model -------------------

/// A 1x1 convolution with padding 2^19 - 1 on a 1x1 input: an activation of
/// 2^40 elements (4.4 TB), 45 bytes serialised.
fn padded_conv() -> Network {
    let pad = (1 << 19) - 1;
    Network {
        input_shape: vec![1, 1, 1],
        layers: vec![Layer::Conv2d(Conv2d {
            weight: Tensor::new(vec![1, 1, 1, 1], vec![1.0]).unwrap(),
            bias: vec![0.0],
            stride: (1, 1),
            padding: (pad, pad),
        })],
    }
}

/// Bound: 64 MiB (the input asks for 4.4 TB in `forward`, 26 TB in
/// `compile`): decoding, the forward pass and the compiler all refuse it
/// with `BudgetExceeded` before allocating.
#[test]
fn conv_padding_model_is_refused_before_allocating() {
    bounded(
        "conv_padding_model_is_refused_before_allocating",
        64,
        || {
            let net = padded_conv();
            let bytes = net.to_bytes().unwrap();
            assert_eq!(bytes.len(), 45);
            let (what, needed, limit) = budget_err(Network::from_bytes(&bytes));
            assert_eq!(what, "tensor elements");
            assert_eq!(needed, ((1 << 20) - 1) * ((1 << 20) - 1));
            assert_eq!(limit, Budget::default().max_tensor_elements);
            // Built by hand (public fields), it is refused by every consumer.
            let x = Tensor::zeros(vec![1, 1, 1, 1]);
            budget_err(net.forward(&x));
            budget_err(net.forward_all(&x));
            budget_err(compile(&net, &Batch, &CompileOptions::default()));
            budget_err(net.validate());
            // Even a budget raised to the activation size refuses it in the
            // compiler: value ids are 32-bit.
            let huge = Budget {
                max_tensor_elements: u64::MAX,
                max_compile_terms: u64::MAX,
                ..Budget::default()
            };
            let opts = CompileOptions {
                budget: huge,
                ..CompileOptions::default()
            };
            budget_err(compile(&net, &Batch, &opts));
        },
    );
}

/// A 19-byte model (a `[250, 250, 250]` input squared, 15.6 million
/// elements) made `compile` run 2.3 s: its folding work is over the default
/// compile budget, so it is refused at once (bound: 64 MiB, well under a
/// second).
#[test]
fn large_input_model_compile_is_bounded() {
    bounded("large_input_model_compile_is_bounded", 64, || {
        let net = Network::new(
            vec![250, 250, 250],
            vec![Layer::Activation(Activation::Square)],
        )
        .unwrap();
        let bytes = net.to_bytes().unwrap();
        assert_eq!(bytes.len(), 19);
        let net = Network::from_bytes(&bytes).unwrap();
        let t = Instant::now();
        let (what, needed, _) = budget_err(compile(&net, &Batch, &CompileOptions::default()));
        assert_eq!(what, "compile terms");
        assert_eq!(needed, 3 * 250 * 250 * 250);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    });
}

/// Real networks fit the default budget: the MOFHEI LeNet and a 784-input
/// MLP compile, and the LeNet's forward pass runs at a batch of 8192 (only
/// the budget check at that batch here; the pass itself at a batch of 4).
#[test]
fn real_networks_fit_the_default_budget() {
    let lenet = zoo::lenet_mofhei(Activation::Square, 1);
    let b = Budget::default();
    lenet.check_budget(8192, false, &b).unwrap();
    let mlp = zoo::mlp(&[784, 1024, 1024, 10], Activation::Square, 1).unwrap();
    mlp.check_budget(8192, true, &b).unwrap();
    assert!(mlp.footprint(1).unwrap().compile_terms <= b.max_compile_terms);
    assert!(lenet.footprint(1).unwrap().compile_terms <= b.max_compile_terms);
    let y = lenet.forward(&Tensor::zeros(vec![4, 1, 32, 32])).unwrap();
    assert_eq!(y.shape(), &[4, 10]);
    let plan = compile(
        &zoo::mlp(&[784, 32, 10], Activation::Square, 2).unwrap(),
        &Batch,
        &CompileOptions::default(),
    );
    assert!(plan.is_ok());
    // A budget the caller lowers is honoured; raising it lets more through.
    let small = Budget {
        max_tensor_elements: 1000,
        ..Budget::default()
    };
    budget_err(lenet.forward_with_budget(&Tensor::zeros(vec![1, 1, 32, 32]), &small));
    budget_err(Network::from_bytes_with_budget(
        &lenet.to_bytes().unwrap(),
        &small,
    ));
    let big = lenet.to_bytes().unwrap();
    assert!(Network::from_bytes_with_budget(&big, &b).is_ok());
}

// ---- item 4: IDX gzip amplification ------------------------------------

fn gz(chunks: &[&[u8]], zeros: usize) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for c in chunks {
        e.write_all(c).unwrap();
    }
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let k = left.min(block.len());
        e.write_all(&block[..k]).unwrap();
        left -= k;
    }
    e.finish().unwrap()
}

fn idx_header(dims: &[u32]) -> Vec<u8> {
    let mut h = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        h.extend_from_slice(&d.to_be_bytes());
    }
    h
}

/// Gzip bombs: a small file declaring more elements than the budget, and a
/// small header followed by a gigabyte of zeros, are refused while
/// decompressing. Bound: 96 MiB (the old reader peaked at 1.09 GiB on a
/// 509 KiB file).
#[test]
fn idx_gzip_bomb_is_capped_while_decompressing() {
    bounded("idx_gzip_bomb_is_capped_while_decompressing", 96, || {
        // Declares 2^28 elements (over the 2^27 default): refused at the header.
        let over = gz(&[&idx_header(&[1 << 12, 1 << 8, 1 << 8])], 1 << 20);
        let (what, needed, _) = budget_err(idx::parse(&over));
        assert_eq!((what, needed), ("idx elements", 1 << 28));
        // Declares 100 elements, then 1 GiB of zeros follows (under 5 MB of
        // gzip): decompression stops a few KB past the declared end.
        let bomb = gz(&[&idx_header(&[100])], 1 << 30);
        assert!(bomb.len() < 5 << 20, "{}", bomb.len());
        let t = Instant::now();
        assert!(matches!(
            idx::parse(&bomb),
            Err(Error::Dataset {
                reason: DecodeError::TrailingBytes { .. },
                ..
            })
        ));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // Declares 2^26 elements but holds 10: a malformed (short) stream.
        let short = gz(&[&idx_header(&[1 << 26])], 10);
        assert!(matches!(
            idx::parse(&short),
            Err(Error::Dataset {
                reason: DecodeError::Malformed { .. },
                ..
            })
        ));
        // A caller can lower (or raise) the budget.
        let tiny = Budget {
            max_data_elements: 50,
            ..Budget::default()
        };
        let ok = gz(&[&idx_header(&[100])], 100);
        assert_eq!(idx::parse(&ok).unwrap().data.len(), 100);
        budget_err(idx::parse_with_budget(&ok, &tiny));
    });
}

/// Labels are checked against the images' count before they are widened
/// to `usize` (8 bytes each): 2^26 labels against one image is refused with
/// at most the 64 MiB of label bytes in memory, not the 512 MiB the widened
/// labels would take. Bound: 128 MiB.
#[test]
fn idx_labels_are_not_widened_before_checking() {
    bounded("idx_labels_are_not_widened_before_checking", 128, || {
        let images = idx::encode(&[1, 2, 2], &[7; 4]).unwrap();
        let labels = gz(&[&idx_header(&[1 << 26])], 1 << 26);
        assert!(matches!(
            idx::dataset_from_bytes(&images, &labels),
            Err(Error::Dataset {
                reason: DecodeError::NotConforming { .. },
                ..
            })
        ));
    });
}

// ---- item 1 and item 9: tampered plans ---------------------------------

fn mlp_plan(packing: &dyn mofhei::packing::Packing) -> Plan {
    let net = zoo::mlp(&[8, 4, 2], Activation::Square, 3).unwrap();
    compile(&net, packing, &CompileOptions::default()).unwrap()
}

/// A plan edited through its serde form (what a tampered file decodes to).
fn tampered(plan: &Plan, edit: impl FnOnce(&mut serde_json::Value)) -> Plan {
    let mut v = serde_json::to_value(plan).unwrap();
    edit(&mut v);
    serde_json::from_value(v).unwrap()
}

/// `samples = Some(0)` is refused by `Plan::validate`, `Plan::from_bytes`,
/// `Client::new` and `Server::new` (it used to pass them and make
/// `Client::encrypt` panic on `clamp(1, 0)`).
#[test]
fn plan_with_zero_samples_is_refused() {
    let plan = mlp_plan(&Batch);
    let bad = tampered(&plan, |v| v["samples"] = serde_json::json!(0));
    assert_eq!(bad.samples(16), 0);
    assert!(not_conforming(bad.validate()).starts_with("samples"));
    not_conforming(Plan::from_bytes(&bad.to_bytes().unwrap()));
    let sim = std::sync::Arc::new(Sim::new(plan.params().sim_params(16).unwrap()));
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    not_conforming(Client::new(sim.clone(), &bad, &mut rng).map(|_| ()));
    let (_, keys) = Client::new(sim.clone(), &plan, &mut rng).unwrap();
    not_conforming(Server::new(sim.clone(), bad.clone(), keys).map(|_| ()));
}

/// Sibling fields: a rotate-sum stride that overflows, nonsensical
/// parameters and an overflowing shape are refused by validation too
/// (typed errors, no panic; non-finite constants: the unit test
/// `plans_with_non_finite_constants_are_refused`).
#[test]
fn plan_sibling_fields_are_validated() {
    let plan = mlp_plan(&Batch);
    plan.validate().unwrap();
    let bad = tampered(&plan, |v| v["params"]["log_n"] = serde_json::json!(0));
    not_conforming(bad.validate());
    let bad = tampered(&plan, |v| v["params"]["log_n"] = serde_json::json!(99));
    not_conforming(bad.validate());
    let bad = tampered(&plan, |v| {
        v["params"]["moduli_bits"] = serde_json::json!([u32::MAX, u32::MAX]);
    });
    not_conforming(bad.validate());
    let bad = tampered(&plan, |v| {
        v["output_shape"] = serde_json::json!([usize::MAX, 3]);
    });
    not_conforming(bad.validate());
    let mut rs = mlp_plan(&mofhei::packing::Tile::new(4, 4, 1).unwrap());
    // A RotateSum whose stride times count overflows i64.
    let has_rotate_sum = serde_json::to_value(&rs).unwrap()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["instr"].get("RotateSum").is_some());
    if has_rotate_sum {
        rs = tampered(&rs, |v| {
            for s in v["steps"].as_array_mut().unwrap() {
                if let Some(r) = s["instr"].get_mut("RotateSum") {
                    r["stride"] = serde_json::json!(i64::MAX);
                }
            }
        });
        not_conforming(rs.validate());
    }
}

/// A diagonal plan whose plaintexts were emptied (it ran and output zeros)
/// is refused by validation and by `Server::new`.
#[test]
fn tampered_diagonal_plan_with_empty_plaintexts_is_refused() {
    let plan = mlp_plan(&Diagonal);
    assert!(!plan.plains().is_empty());
    let bad = tampered(&plan, |v| {
        for p in v["plains"].as_array_mut().unwrap() {
            p["values"] = serde_json::json!([]);
        }
    });
    assert!(not_conforming(bad.validate()).starts_with("plaintext without"));
    not_conforming(Plan::from_bytes(&bad.to_bytes().unwrap()));
    let slots = plan.period().unwrap_or(16).max(16);
    let sim = std::sync::Arc::new(Sim::new(plan.params().sim_params(slots).unwrap()));
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (_, keys) = Client::new(sim.clone(), &plan, &mut rng).unwrap();
    not_conforming(Server::new(sim.clone(), bad.clone(), keys).map(|_| ()));
    // All-zero values of full length are refused the same way.
    let zero = tampered(&plan, |v| {
        for p in v["plains"].as_array_mut().unwrap() {
            let n = p["values"].as_array().unwrap().len();
            p["values"] = serde_json::json!(vec![0.0; n]);
        }
    });
    not_conforming(zero.validate());
}

// ---- item 5: checked arithmetic on untrusted values --------------------

/// CKKS parameters whose bit sizes sum past `u32` are refused (checked
/// sum), from the builder and from bytes.
#[test]
fn ckks_param_bit_sums_are_checked() {
    let r = CkksParams::builder()
        .log_n(14)
        .moduli_bits(&[u32::MAX, u32::MAX])
        .special_bits(&[60])
        .build();
    assert!(
        matches!(r, Err(mofhei::he::Error::InsecureParameters { .. })),
        "{r:?}"
    );
    // The same from bytes: header of valid bytes, body with two u32::MAX sizes.
    let good = CkksParams::builder().build().unwrap().to_bytes().unwrap();
    let mut bytes = good[..13].to_vec();
    bytes.extend_from_slice(&[14, 2]);
    for _ in 0..2 {
        bytes.push(0xfc);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    bytes.extend_from_slice(&[1, 60, 40]);
    let r = CkksParams::from_bytes(&bytes);
    assert!(
        matches!(r, Err(mofhei::he::Error::InsecureParameters { .. })),
        "{r:?}"
    );
}

/// Tile-tensor shapes whose tile count or slots overflow are errors.
#[test]
fn tile_shape_products_are_checked() {
    for s in [
        "[18446744073709551615/1, 3/1]",
        "[4611686018427387904/1, 4611686018427387904/1]",
        "[1/9223372036854775808, 1/4]",
    ] {
        assert!(
            matches!(
                TileTensorShape::parse(s),
                Err(Error::InvalidParameter { .. })
            ),
            "{s}"
        );
    }
    let ok = TileTensorShape::parse("[300/64, */128, 2/2]").unwrap();
    assert_eq!(ok.tile_count().unwrap(), 5);
}

/// `eval_keys_from_bytes(bytes, usize::MAX)` means "no bound on the number
/// of keys": valid keys load (the limit used to wrap to 1014 bytes); a
/// bound below the number of keys refuses them.
#[test]
fn eval_keys_limit_saturates() {
    let params = CkksParams::builder()
        .log_n(12)
        .moduli_bits(&[36, 30])
        .special_bits(&[40])
        .scale_bits(30)
        .build()
        .unwrap();
    let ckks = Ckks::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let sk = ckks.generate_secret_key(&mut rng).unwrap();
    let req = KeyRequirements::new()
        .with_relinearization()
        .with_rotations([Rotation(1), Rotation(3)]);
    let keys = ckks.generate_eval_keys(&sk, &req, &mut rng).unwrap();
    let bytes = ckks.eval_keys_to_bytes(&keys).unwrap();
    assert!(ckks.eval_keys_from_bytes(&bytes, usize::MAX).is_ok());
    assert!(ckks.eval_keys_from_bytes(&bytes, 3).is_ok());
    assert!(ckks.eval_keys_from_bytes(&bytes, 2).is_err());
}

// ---- item 2 and 5: BFV parameters --------------------------------------

#[cfg(feature = "bfv")]
mod bfv {
    use mofhei::he::Error;
    use mofhei::he::bfv::BfvParams;

    /// fhe's generator picked `q = t` for these and panicked; the chain is
    /// now chosen by mofhei (primes above `t` only) and a size with no such
    /// prime is a typed error.
    #[test]
    fn bfv_chain_with_a_prime_equal_to_t_is_refused() {
        let r = BfvParams::builder()
            .degree(4096)
            .plaintext_modulus(40961)
            .moduli_sizes(&[36, 16])
            .build();
        assert!(
            matches!(
                r,
                Err(Error::InvalidParameter {
                    name: "ciphertext modulus size",
                    value: 16,
                    ..
                })
            ),
            "{r:?}"
        );
        let mut sizes = vec![37];
        sizes.extend([62; 6]);
        sizes.push(17);
        let r = BfvParams::builder()
            .degree(16384)
            .plaintext_modulus(65537)
            .moduli_sizes(&sizes)
            .build();
        assert!(
            matches!(
                r,
                Err(Error::InvalidParameter {
                    name: "ciphertext modulus size",
                    value: 17,
                    ..
                })
            ),
            "{r:?}"
        );
        // A chain whose every prime is above t builds, and every prime is
        // above t and distinct.
        let p = BfvParams::builder()
            .degree(4096)
            .plaintext_modulus(40961)
            .moduli_sizes(&[36, 30])
            .build()
            .unwrap();
        assert!(p.moduli().iter().all(|&q| q > 40961));
        assert_ne!(p.moduli()[0], p.moduli()[1]);
    }

    /// Bit-size sums are checked: sizes past `usize`/`u32` are errors, not
    /// a wrapped (secure-looking) total.
    #[test]
    fn bfv_size_sums_are_checked() {
        let r = BfvParams::builder()
            .degree(4096)
            .plaintext_modulus(40961)
            .moduli_sizes(&[usize::MAX, 2])
            .build();
        assert!(matches!(r, Err(Error::InsecureParameters { .. })), "{r:?}");
        let r = BfvParams::builder()
            .degree(4096)
            .plaintext_modulus(40961)
            .moduli_sizes(&[1 << 32, 40])
            .build();
        assert!(matches!(r, Err(Error::InsecureParameters { .. })), "{r:?}");
    }

    /// The build-cost guard: a chain whose construction inside fhe would
    /// take gigabytes is refused before anything is built; the default
    /// sets are well within the limit.
    #[test]
    fn bfv_build_cost_is_bounded() {
        let mut sizes = vec![60usize; 14];
        sizes.push(40);
        let b = BfvParams::builder()
            .degree(1 << 15)
            .plaintext_modulus(65537)
            .moduli_sizes(&sizes);
        assert!(b.build_cost().bytes > 2 << 30);
        assert!(matches!(
            b.build(),
            Err(Error::BudgetExceeded {
                what: "bfv parameter build bytes",
                ..
            })
        ));
        let n8192 = BfvParams::builder()
            .degree(8192)
            .plaintext_modulus(65537)
            .moduli_sizes(&[60, 40, 40, 60]);
        assert!(n8192.build_cost().bytes < 256 << 20);
    }
}
