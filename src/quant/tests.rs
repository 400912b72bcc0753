use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::model::{Tensor, zoo};

fn inputs(n: usize, len: usize, range: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..len).map(|_| rng.random_range(-range..=range)).collect())
        .collect()
}

fn with_biases(mut net: Network, seed: u64) -> Network {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for l in &mut net.layers {
        match l {
            Layer::Dense(d) => d
                .bias
                .iter_mut()
                .for_each(|b| *b = rng.random_range(-0.1..0.1)),
            Layer::Conv2d(c) => c
                .bias
                .iter_mut()
                .for_each(|b| *b = rng.random_range(-0.1..0.1)),
            _ => {}
        }
    }
    net
}

/// Max |quantised - float| over the samples, relative to max |float|.
fn relative_error(net: &Network, q: &QuantizedNetwork, samples: &[Vec<f32>]) -> f64 {
    let (mut err, mut top) = (0.0f64, 0.0f64);
    for x in samples {
        let mut shape = vec![1];
        shape.extend_from_slice(&net.input_shape);
        let float = net
            .forward(&Tensor::new(shape, x.clone()).unwrap())
            .unwrap();
        let ints = q.forward(&q.quantize_input(x).unwrap()).unwrap();
        let deq = q.dequantize_output(&ints);
        for (a, b) in float.data().iter().zip(&deq) {
            err = err.max(f64::from(a - b).abs());
            top = top.max(f64::from(*a).abs());
        }
    }
    err / top
}

#[test]
fn mlp_with_square_tracks_the_float_model() {
    let net = with_biases(zoo::mlp(&[64, 32, 10], Activation::Square, 3).unwrap(), 4);
    let samples = inputs(20, 64, 1.0, 5);
    for granularity in [Granularity::PerLayer, Granularity::PerChannel] {
        let cfg = QuantConfig {
            granularity,
            ..QuantConfig::int8(1.0)
        };
        let q = QuantizedNetwork::quantize(&net, &cfg).unwrap();
        let e = relative_error(&net, &q, &samples);
        assert!(e < 0.03, "{granularity:?}: relative error {e}");
        // Coarser quantisation is measurably worse: the comparison can fail.
        let coarse = QuantizedNetwork::quantize(
            &net,
            &QuantConfig {
                weight_bits: 3,
                input_bits: 3,
                ..cfg
            },
        )
        .unwrap();
        assert!(relative_error(&net, &coarse, &samples) > e);
    }
}

#[test]
fn conv_network_tracks_the_float_model() {
    let mut net = with_biases(zoo::tenseal_mnist(11), 12);
    // conv -> square -> avgpool -> flatten -> dense 64 -> square -> dense 10.
    net.layers.insert(2, Layer::AvgPool2d(zoo::pool(2)));
    if let Layer::Dense(d) = &mut net.layers[4] {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        d.weight = Tensor::new(
            vec![64, 64],
            (0..64 * 64).map(|_| rng.random_range(-0.2..0.2)).collect(),
        )
        .unwrap();
    }
    let net = Network::new(net.input_shape.clone(), net.layers).unwrap();
    // Two squares with 8-bit quantisation and no re-quantisation: the last
    // layer's integers need more than 64 bits, and quantisation says where.
    let err = QuantizedNetwork::quantize(&net, &QuantConfig::int8(1.0)).unwrap_err();
    assert!(matches!(err, Error::InvalidLayer { layer: 6, .. }), "{err}");
    // One square fits with 6 bits.
    let mut layers = net.layers.clone();
    layers.remove(5);
    let net = Network::new(net.input_shape.clone(), layers).unwrap();
    let cfg = QuantConfig {
        weight_bits: 6,
        input_bits: 6,
        ..QuantConfig::int8(1.0)
    };
    let q = QuantizedNetwork::quantize(&net, &cfg).unwrap();
    let e = relative_error(&net, &q, &inputs(4, 28 * 28, 1.0, 14));
    assert!(e < 0.1, "relative error {e}");
    assert!(matches!(q.layers()[2], QLayer::SumPool2d { .. }));
    let t = q.min_plaintext_modulus().unwrap();
    assert!(q.check_plaintext_modulus(t).is_ok());
    assert!(matches!(
        q.check_plaintext_modulus(257),
        Err(Error::AccumulatorOverflow { layer: 0, .. })
    ));
}

#[test]
fn bounds_are_sound_and_attained() {
    // One dense layer: the input that follows the signs of the widest row hits the bound.
    let net = with_biases(zoo::mlp(&[16, 4], Activation::Square, 21).unwrap(), 22);
    let q = QuantizedNetwork::quantize(&net, &QuantConfig::int8(2.0)).unwrap();
    let QLayer::Dense { weight, bias, .. } = &q.layers()[0] else {
        panic!("dense expected");
    };
    let bounds = q.channel_bounds(0).unwrap();
    let (o, &b) = bounds.iter().enumerate().max_by_key(|(_, b)| **b).unwrap();
    let sign = if bias[o] < 0 { -1 } else { 1 };
    let x: Vec<i64> = weight[o * 16..(o + 1) * 16]
        .iter()
        .map(|w| sign * w.signum() * 127)
        .collect();
    let y = q.forward(&x).unwrap();
    assert_eq!(y[o].unsigned_abs() as u128, b);
    assert_eq!(q.accumulator_bounds(), vec![b]);
    assert_eq!(q.min_plaintext_modulus().unwrap() as u128, 2 * b + 1);

    // Random extreme inputs through dense-square-dense stay within the bounds.
    let net = with_biases(zoo::mlp(&[16, 8, 4], Activation::Square, 23).unwrap(), 24);
    let q = QuantizedNetwork::quantize(&net, &QuantConfig::int8(2.0)).unwrap();
    let last = *q.accumulator_bounds().last().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(25);
    for _ in 0..200 {
        let x: Vec<i64> = (0..16)
            .map(|_| if rng.random::<bool>() { 127 } else { -127 })
            .collect();
        for v in q.forward(&x).unwrap() {
            assert!(v.unsigned_abs() as u128 <= last);
        }
    }
}

#[test]
fn too_small_a_plaintext_modulus_names_the_layer() {
    let net = with_biases(zoo::mlp(&[16, 8, 4], Activation::Square, 31).unwrap(), 32);
    let q = QuantizedNetwork::quantize(&net, &QuantConfig::int8(1.0)).unwrap();
    let b = q.accumulator_bounds();
    assert_eq!(b.len(), 3);
    assert!(b[0] < b[1] && b[1] < b[2], "{b:?}");
    let t_min = q.min_plaintext_modulus().unwrap();
    assert!(q.check_plaintext_modulus(t_min).is_ok());
    assert!(matches!(
        q.check_plaintext_modulus(t_min - 1),
        Err(Error::AccumulatorOverflow { layer: 2, .. })
    ));
    // Enough for layer 0 but not for the square (layer 1).
    let t = (2 * b[0] + 1) as u64;
    let err = q.check_plaintext_modulus(t).unwrap_err();
    assert!(
        matches!(err, Error::AccumulatorOverflow { layer: 1, bound, plaintext_modulus } if bound == b[1] && plaintext_modulus == t),
        "{err}"
    );
    let t = q.simd_plaintext_modulus(8192).unwrap();
    assert!(t >= t_min && t % 16384 == 1);
    assert!(crate::he::primes::is_prime(t));
}

#[test]
fn unsupported_layers_and_bad_config_are_errors() {
    let net = zoo::lenet_mofhei(Activation::Relu, 1);
    let err = QuantizedNetwork::quantize(&net, &QuantConfig::int8(1.0)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedLayer {
                layer: 1,
                kind: "relu",
                by: "quant"
            }
        ),
        "{err}"
    );
    let mlp = zoo::mlp(&[4, 2], Activation::Square, 1).unwrap();
    let bad = QuantConfig {
        weight_bits: 1,
        ..QuantConfig::int8(1.0)
    };
    assert!(QuantizedNetwork::quantize(&mlp, &bad).is_err());
    assert!(QuantizedNetwork::quantize(&mlp, &QuantConfig::int8(0.0)).is_err());
    let q = QuantizedNetwork::quantize(&mlp, &QuantConfig::int8(1.0)).unwrap();
    assert!(matches!(
        q.forward(&[1, 2, 3]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(
        q.quantize_input(&[5.0, -5.0, 0.5, 0.0]).unwrap(),
        vec![127, -127, 64, 0]
    );
}

/// The quantised MLP under BFV with batch packing (one sample per slot, one
/// ciphertext per feature) decrypts to exactly the plaintext integer forward pass.
#[cfg(feature = "bfv")]
#[test]
fn encrypted_batch_inference_equals_the_integer_forward_pass() {
    use crate::he::bfv::{Bfv, BfvParams};
    use crate::he::{HeScheme, KeyRequirements, Level, Scale};

    let net = with_biases(zoo::mlp(&[8, 4, 3], Activation::Square, 41).unwrap(), 42);
    let cfg = QuantConfig {
        weight_bits: 4,
        input_bits: 4,
        ..QuantConfig::int8(1.0)
    };
    let q = QuantizedNetwork::quantize(&net, &cfg).unwrap();
    let degree = 64;
    let t = q.simd_plaintext_modulus(degree).unwrap();
    let he = Bfv::new(
        BfvParams::builder()
            .degree(degree)
            .plaintext_modulus(t)
            .moduli_sizes(&[60, 60, 60])
            .build_insecure_for_tests()
            .unwrap(),
    );
    q.check_plaintext_modulus(he.params().plaintext_modulus())
        .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(43);
    let sk = he.generate_secret_key(&mut rng).unwrap();
    let pk = he.generate_public_key(&sk, &mut rng).unwrap();
    let keys = he
        .generate_eval_keys(
            &sk,
            &KeyRequirements::new().with_relinearization(),
            &mut rng,
        )
        .unwrap();

    let batch = he.slot_count();
    let samples: Vec<Vec<i64>> = inputs(batch, 8, 1.0, 44)
        .iter()
        .map(|x| q.quantize_input(x).unwrap())
        .collect();
    let top = he.max_level();
    // Feature f of every sample in one ciphertext.
    let mut acts: Vec<_> = (0..8)
        .map(|f| {
            let col: Vec<i64> = samples.iter().map(|s| s[f]).collect();
            let pt = he.encode(&col, top, Scale::ONE).unwrap();
            he.encrypt(&pk, &pt, &mut rng).unwrap()
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
                .map(|a| {
                    let mut s = he.square_relin(a, &keys).unwrap();
                    he.rescale_assign(&mut s).unwrap();
                    s
                })
                .collect(),
            other => panic!("unexpected layer {other:?}"),
        };
    }
    assert_eq!(he.level(&acts[0]), Level(1));
    let outs: Vec<Vec<i64>> = acts
        .iter()
        .map(|ct| he.decode(&he.decrypt(&sk, ct).unwrap()).unwrap())
        .collect();
    for (i, s) in samples.iter().enumerate() {
        let want = q.forward(s).unwrap();
        let got: Vec<i64> = outs.iter().map(|o| o[i]).collect();
        assert_eq!(got, want, "sample {i}");
    }
}
