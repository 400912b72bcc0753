//! The client/server protocol as bytes: the client view carries no weight,
//! a client rebuilt from bytes (view, secret key) runs the whole round trip
//! on CKKS and BFV, other plans' and parameters' artefacts are refused with
//! typed errors, large batches are split.

use rand::Rng;

use super::*;
use crate::error::Context;
use crate::he::ckks::{Ckks, CkksParams};
use crate::plan::Instr;

fn small_ckks(plan: &Plan, log_n: u32) -> Ckks {
    let c = plan.params();
    let p = CkksParams::insecure_for_tests(log_n, &c.moduli_bits, &c.special_bits, c.scale_bits)
        .unwrap();
    Ckks::new(p).unwrap()
}

/// Every non-trivial number the server's model holds: the network's
/// weights and biases and the plan's folded weights, plaintexts and biases.
fn model_numbers(net: &Network, plan: &Plan) -> Vec<f64> {
    let mut v: Vec<f64> = Vec::new();
    for l in &net.layers {
        match l {
            Layer::Dense(d) => {
                v.extend(d.weight.data().iter().map(|&w| f64::from(w)));
                v.extend(d.bias.iter().map(|&b| f64::from(b)));
            }
            Layer::Conv2d(c) => {
                v.extend(c.weight.data().iter().map(|&w| f64::from(w)));
                v.extend(c.bias.iter().map(|&b| f64::from(b)));
            }
            _ => {}
        }
    }
    for s in plan.steps() {
        if let Instr::DotScalar { weights, bias, .. } = &s.instr {
            v.extend(weights);
            v.push(*bias);
        }
    }
    for p in plan.plains() {
        v.extend(&p.values);
    }
    v.retain(|x| *x != 0.0 && x.abs() != 1.0);
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn wide_mlp(seed: u64, hidden: usize) -> Network {
    let mut r = rng(seed);
    Network::new(
        vec![16],
        vec![
            dense(&mut r, hidden, 16),
            square(),
            dense(&mut r, 4, hidden),
        ],
    )
    .unwrap()
}

#[test]
fn client_view_holds_no_weight_and_does_not_grow_with_the_model() {
    let mut sizes = Vec::new();
    for (packing, name) in [
        (Box::new(Batch) as Box<dyn Packing>, "batch"),
        (Box::new(Tile::new(4, 4, 1).unwrap()), "tile"),
    ] {
        let mut per_model = Vec::new();
        for hidden in [8, 64] {
            let net = wide_mlp(5, hidden);
            let plan = compile(&net, packing.as_ref(), &CompileOptions::default()).unwrap();
            let ckks = small_ckks(&plan, 6);
            let view = ClientView::new(&plan, &ckks).unwrap();
            let bytes = view.to_bytes().unwrap();
            assert_eq!(ClientView::from_bytes(&bytes).unwrap(), view);
            let numbers = model_numbers(&net, &plan);
            assert!(numbers.len() > 100, "{name}");
            for x in numbers {
                assert!(!contains(&bytes, &x.to_le_bytes()), "{name}: {x} (f64)");
                let f = x as f32;
                if f64::from(f) == x || numbers_are_f32(&net, f) {
                    assert!(!contains(&bytes, &f.to_le_bytes()), "{name}: {x} (f32)");
                }
            }
            per_model.push((bytes.len(), plan.to_bytes().unwrap().len()));
        }
        let (small, big) = (per_model[0], per_model[1]);
        // The plan grows with the hidden width; the view does not.
        assert!(big.1 > 4 * small.1, "{name}: plans {small:?} {big:?}");
        assert!(
            big.0 <= small.0 + 64,
            "{name}: views {} then {} bytes",
            small.0,
            big.0
        );
        sizes.push(small.0);
    }
    assert!(sizes.iter().all(|&s| s < 16 * 1024), "{sizes:?}");
}

/// Whether `f` is one of the network's own f32 weights.
fn numbers_are_f32(net: &Network, f: f32) -> bool {
    net.layers.iter().any(|l| match l {
        Layer::Dense(d) => d.weight.data().contains(&f) || d.bias.contains(&f),
        _ => false,
    })
}

#[test]
fn client_view_bytes_are_checked() {
    let net = mlp(3);
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let view = ClientView::new(&plan, &small_ckks(&plan, 6)).unwrap();
    let good = view.to_bytes().unwrap();
    let mut r = rng(4);
    for i in 0..400 {
        let mut b = good.clone();
        match i % 3 {
            0 => b.truncate(r.random_range(0..b.len())),
            1 => {
                let k = r.random_range(0..b.len());
                b[k] ^= 1 << r.random_range(0..8);
            }
            _ => {
                for _ in 0..4 {
                    let k = r.random_range(0..b.len());
                    b[k] = r.random();
                }
            }
        }
        match ClientView::from_bytes(&b) {
            // Whatever loads passed the consistency checks.
            Ok(v) => assert!(v.to_bytes().is_ok()),
            Err(e) => assert!(matches!(e, Error::Decode { .. }), "{e}"),
        }
    }
    let mut big = good.clone();
    big.resize(VIEW_BYTES_LIMIT as usize + 1, 0);
    assert!(matches!(
        ClientView::from_bytes(&big),
        Err(Error::Decode {
            reason: crate::error::DecodeError::TooLarge { .. },
            ..
        })
    ));
}

/// The whole round trip with every artefact crossing as bytes: the client
/// side holds only the view's bytes, its backend and its secret key.
#[test]
fn round_trip_as_bytes_on_ckks() {
    let net = mlp(21);
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let server_he = small_ckks(&plan, 6);
    let view_bytes = ClientView::new(&plan, &server_he)
        .unwrap()
        .to_bytes()
        .unwrap();

    // Client process.
    let view = Arc::new(ClientView::from_bytes(&view_bytes).unwrap());
    let client_he = small_ckks(&plan, 6); // same parameters, another backend object
    let mut r = rng(22);
    let (client, keys) =
        Client::from_view(std::sync::Arc::new(client_he.clone()), view.clone(), &mut r).unwrap();
    let key_bytes = client_he.eval_keys_to_bytes(&keys).unwrap();
    let n = client.samples();
    assert_eq!(n, 32);
    // A batch of 2.5 inferences, split by the client.
    let x = rand_tensor(&mut r, vec![2 * n + n / 2, 16], 1.0);
    let chunks = client.split_batch(&x).unwrap();
    assert_eq!(
        chunks.iter().map(|c| c.shape()[0]).collect::<Vec<_>>(),
        vec![n, n, n / 2]
    );
    let uploads: Vec<Vec<u8>> = chunks
        .iter()
        .map(|c| client.encrypt_to_bytes(c, &mut r).unwrap())
        .collect();
    // Seeded: about half of a full upload.
    let full = client.encrypt(&chunks[0], &mut r).unwrap();
    let full_bytes = full.to_bytes(&client_he).unwrap();
    assert!(uploads[0].len() * 10 < full_bytes.len() * 6);

    // Server process.
    let server = Server::from_key_bytes(
        std::sync::Arc::new(server_he.clone()),
        plan.clone(),
        &key_bytes,
    )
    .unwrap();
    let mut outs = Vec::new();
    for u in &uploads {
        let (bytes, report) = server.run_bytes(u).unwrap();
        assert!(report.cpu.is_some());
        outs.push(bytes);
    }
    // The full (unseeded) form is accepted too.
    let (full_out, _) = server.run_bytes(&full_bytes).unwrap();

    // Client process: decrypt, also with a client rebuilt from its stored key.
    let y = concat_batches(
        &outs
            .iter()
            .map(|o| client.decrypt_bytes(o).unwrap())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let want = forward(&net, &x);
    for (s, w) in want.iter().enumerate() {
        for (e, b) in w.iter().enumerate() {
            let a = f64::from(y.data()[s * 4 + e]);
            assert!((a - b).abs() < 1e-3, "sample {s}: {a} vs {b}");
        }
    }
    let stored = client.export_secret_key().unwrap();
    let again = Client::from_secret_key_bytes(
        std::sync::Arc::new(client_he.clone()),
        view,
        &stored,
        &mut r,
    )
    .unwrap();
    // Equal up to the noise flooding each decryption adds.
    let (a, b) = (
        again.decrypt_bytes(&outs[2]).unwrap(),
        client.decrypt_bytes(&outs[2]).unwrap(),
    );
    assert_eq!(a.shape(), b.shape());
    for (x, y) in a.data().iter().zip(b.data()) {
        assert!((x - y).abs() < 1e-3, "{x} vs {y}");
    }
    let y0 = client.decrypt_bytes(&full_out).unwrap();
    assert!((y0.data()[0] - y.data()[0]).abs() < 1e-3);
}

#[test]
fn other_plans_and_parameters_are_refused_with_typed_errors() {
    let net = mlp(31);
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let other_plan = compile(&mlp(32), &Batch, &CompileOptions::default()).unwrap();
    let he = small_ckks(&plan, 6);
    let other_he = small_ckks(&plan, 7);
    let mut r = rng(33);
    let view = Arc::new(ClientView::new(&plan, &he).unwrap());
    let (client, keys) =
        Client::from_view(std::sync::Arc::new(he.clone()), view.clone(), &mut r).unwrap();
    let key_bytes = he.eval_keys_to_bytes(&keys).unwrap();
    let server =
        Server::from_key_bytes(std::sync::Arc::new(he.clone()), plan.clone(), &key_bytes).unwrap();
    let x = rand_tensor(&mut r, vec![3, 16], 1.0);
    let up = client.encrypt_to_bytes(&x, &mut r).unwrap();
    let (out, _) = server.run_bytes(&up).unwrap();

    // A server of another plan refuses the upload, the client its output.
    let other_view = Arc::new(ClientView::new(&other_plan, &he).unwrap());
    let (other_client, other_keys) =
        Client::from_view(std::sync::Arc::new(he.clone()), other_view, &mut r).unwrap();
    let other_server = Server::new(
        std::sync::Arc::new(he.clone()),
        other_plan.clone(),
        other_keys,
    )
    .unwrap();
    assert!(matches!(
        other_server.run_bytes(&up),
        Err(Error::WrongContext {
            context: Context::Plan,
            ..
        })
    ));
    assert!(matches!(
        other_client.decrypt_bytes(&out),
        Err(Error::WrongContext {
            context: Context::Plan,
            ..
        })
    ));
    // In process too: another plan's output.
    let (o2, _) = other_server
        .run(other_client.encrypt(&x, &mut r).unwrap())
        .unwrap();
    assert!(matches!(
        client.decrypt(&o2),
        Err(Error::WrongContext {
            context: Context::Plan,
            ..
        })
    ));
    // Another parameter set: refused by the view, by the server, by the client.
    assert!(matches!(
        Client::from_view(std::sync::Arc::new(other_he.clone()), view, &mut r),
        Err(Error::WrongContext {
            context: Context::Parameters,
            ..
        })
    ));
    let (oc, ok) = Client::new(std::sync::Arc::new(other_he.clone()), &plan, &mut r).unwrap();
    let os = Server::new(std::sync::Arc::new(other_he.clone()), plan.clone(), ok).unwrap();
    assert!(matches!(
        os.run_bytes(&up),
        Err(Error::WrongContext {
            context: Context::Parameters,
            ..
        })
    ));
    assert!(matches!(
        oc.decrypt_bytes(&out),
        Err(Error::WrongContext {
            context: Context::Parameters,
            ..
        })
    ));
    // Keys of another parameter set, keys short of the plan's requirements.
    assert!(matches!(
        Server::from_key_bytes(
            std::sync::Arc::new(other_he.clone()),
            plan.clone(),
            &key_bytes
        ),
        Err(Error::Decode { .. })
    ));
    // Bytes that are not what they claim: an output uploaded as an input,
    // truncated, or a ciphertext of the wrong level.
    assert!(matches!(server.run_bytes(&out), Err(Error::Decode { .. })));
    assert!(server.run_bytes(&up[..up.len() - 1]).is_err());
    // The number of ciphertexts (after envelope, fingerprint, hash, samples).
    let mut miscounted = up.clone();
    miscounted[13 + 8 + 32 + 4] ^= 1;
    assert!(matches!(
        server.run_bytes(&miscounted),
        Err(Error::Decode { .. })
    ));
    // (A flipped bit inside a residue may give another valid ciphertext:
    // integrity of the payload is the transport's job, e.g. TLS.)
    // The server still serves.
    let (again, _) = server.run_bytes(&up).unwrap();
    assert_eq!(client.decrypt_bytes(&again).unwrap().shape(), &[3, 4]);
}

#[cfg(feature = "bfv")]
#[test]
fn round_trip_as_bytes_on_bfv() {
    use crate::compile::compile_quantized;
    use crate::he::HeWire;
    use crate::he::bfv::{Bfv, BfvParams};
    use crate::quant::{QuantConfig, QuantizedNetwork};
    const DEGREE: usize = 256;
    let net = wide_mlp(41, 8);
    let cfg = QuantConfig {
        weight_bits: 5,
        input_bits: 5,
        ..QuantConfig::int8(1.0)
    };
    let q = QuantizedNetwork::quantize(&net, &cfg).unwrap();
    let t = q.simd_plaintext_modulus(DEGREE).unwrap();
    let opts = CompileOptions {
        plaintext_modulus: Some(t),
        ..CompileOptions::default()
    };
    let plan = compile_quantized(&q, &Batch, &opts).unwrap();
    let params = BfvParams::builder()
        .degree(DEGREE)
        .plaintext_modulus(t)
        .moduli_sizes(&vec![60; plan.depth() as usize + 1])
        .build_insecure_for_tests()
        .unwrap();
    let server_he = Arc::new(Bfv::new(params.clone()));
    let view_bytes = ClientView::new(&plan, &*server_he)
        .unwrap()
        .to_bytes()
        .unwrap();

    // Client process (insecure test parameters are built, not loaded).
    let view = Arc::new(ClientView::from_bytes(&view_bytes).unwrap());
    let client_he = Arc::new(Bfv::new(params));
    let mut r = rng(42);
    let (client, keys) = Client::from_view(client_he.clone(), view, &mut r).unwrap();
    let kb = client_he.eval_keys_to_bytes(&keys).unwrap();
    let x = rand_tensor(&mut r, vec![5, 16], 1.0);
    let up = client.encrypt_to_bytes(&x, &mut r).unwrap();

    // Server process.
    let server = Server::from_key_bytes(server_he.clone(), plan.clone(), &kb).unwrap();
    let (out, _) = server.run_bytes(&up).unwrap();

    let got = client
        .decrypt_values(&client.output_from_bytes(&out).unwrap())
        .unwrap();
    let want = crate::testutil::integer_outputs(&q, &x, 16);
    assert_eq!(got, want);
}
