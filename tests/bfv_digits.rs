//! A quantised MLP on the digits set under BFV with batch packing: one
//! sample per slot (all test samples in one batch), one ciphertext per
//! feature. Checks (issue 8): the encrypted predictions equal the quantised
//! plaintext predictions exactly, and the quantised accuracy is within two
//! points of the float model's. 128-bit parameters (N = 8192).
#![cfg(feature = "bfv")]

use mofhei::data::Dataset;
use mofhei::he::bfv::{Bfv, BfvParams};
use mofhei::he::{HeScheme, KeyRequirements, Scale};
use mofhei::model::{Activation, zoo};
use mofhei::quant::{QLayer, QuantConfig, QuantizedNetwork};
use mofhei::train::{self, NoProgress, TrainConfig, Trainer};
use rand::SeedableRng;

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv { (i, x) } else { (bi, bv) }
        })
        .0
}

#[test]
fn quantised_mlp_on_digits_under_bfv() {
    let data = Dataset::digits_8x8().flatten();
    let (train_set, test_set) = data.split(0.25, 1).unwrap();
    let mut net = zoo::mlp(&[64, 16, 10], Activation::Square, 2).unwrap();
    let mut trainer = Trainer::new(TrainConfig {
        epochs: 30,
        batch_size: 32,
        lr: 3e-3,
        seed: 3,
        ..TrainConfig::default()
    });
    trainer
        .fit(&mut net, &train_set, None, &mut NoProgress)
        .unwrap();
    let float_acc = train::accuracy(&net, &test_set).unwrap();

    // Inputs are in [0, 1]; 5-bit weights and inputs keep every accumulator
    // of 64-16-10 with a square below 2^37.
    let cfg = QuantConfig {
        weight_bits: 5,
        input_bits: 5,
        ..QuantConfig::int8(1.0)
    };
    let q = QuantizedNetwork::quantize(&net, &cfg).unwrap();
    let t = q.simd_plaintext_modulus(8192).unwrap();
    let params = BfvParams::builder()
        .degree(8192)
        .plaintext_modulus(t)
        .moduli_sizes(&[60, 40, 40, 60])
        .build()
        .unwrap();
    q.check_plaintext_modulus(params.plaintext_modulus())
        .unwrap();
    let he = Bfv::new(params);

    let labels = test_set.labels().unwrap();
    let n = test_set.len();
    assert!(n <= he.slot_count());
    let xs: Vec<Vec<i64>> = test_set
        .inputs()
        .data()
        .chunks(64)
        .map(|x| q.quantize_input(x).unwrap())
        .collect();
    let plain_out: Vec<Vec<i64>> = xs.iter().map(|x| q.forward(x).unwrap()).collect();
    let plain_pred: Vec<usize> = plain_out
        .iter()
        .map(|o| argmax(&q.dequantize_output(o)))
        .collect();
    let correct = |pred: &[usize]| pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    let quant_acc = correct(&plain_pred) as f32 / n as f32;

    // Encrypted: feature f of every test sample in one ciphertext.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
    let sk = he.generate_secret_key(&mut rng).unwrap();
    let pk = he.generate_public_key(&sk, &mut rng).unwrap();
    let keys = he
        .generate_eval_keys(
            &sk,
            &KeyRequirements::new().with_relinearization(),
            &mut rng,
        )
        .unwrap();
    let top = he.max_level();
    let mut acts: Vec<_> = (0..64)
        .map(|f| {
            let col: Vec<i64> = xs.iter().map(|x| x[f]).collect();
            he.encrypt(&pk, &he.encode(&col, top, Scale::ONE).unwrap(), &mut rng)
                .unwrap()
        })
        .collect();
    for layer in q.layers() {
        acts = match layer {
            QLayer::Dense {
                weight,
                bias,
                out,
                inp,
            } => (0..*out)
                .map(|o| {
                    let refs: Vec<_> = acts.iter().collect();
                    let mut y = he
                        .dot_scalar(&refs, &weight[o * inp..(o + 1) * inp], Scale::ONE)
                        .unwrap();
                    he.add_scalar_assign(&mut y, bias[o]).unwrap();
                    y
                })
                .collect(),
            QLayer::Square => acts
                .iter()
                .map(|a| he.rescale(&he.square_relin(a, &keys).unwrap()).unwrap())
                .collect(),
            other => panic!("unexpected layer {other:?}"),
        };
    }
    let outs: Vec<Vec<i64>> = acts
        .iter()
        .map(|ct| he.decode(&he.decrypt(&sk, ct).unwrap()).unwrap())
        .collect();
    let enc_out: Vec<Vec<i64>> = (0..n)
        .map(|i| outs.iter().map(|o| o[i]).collect())
        .collect();
    assert_eq!(
        enc_out, plain_out,
        "encrypted outputs equal the integer forward pass"
    );
    let enc_pred: Vec<usize> = enc_out
        .iter()
        .map(|o| argmax(&q.dequantize_output(o)))
        .collect();
    assert_eq!(enc_pred, plain_pred);
    eprintln!(
        "digits MLP 64-16-10 (square), {n} test samples: float {float_acc:.4}, quantised (5-bit) {quant_acc:.4}, BFV t = {t} (log2 {:.1})",
        (t as f64).log2()
    );
    assert!(float_acc > 0.85, "float accuracy {float_acc}");
    assert!(
        quant_acc >= float_acc - 0.02,
        "quantised {quant_acc} vs float {float_acc}"
    );
}
