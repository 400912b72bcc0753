use super::*;
use crate::error::DecodeError;
use crate::he::OpKind;
use crate::model::{Activation, Layer, Poly, Pool2d};
use crate::packing::{Batch, Diagonal, Tile};
use crate::plan::{Instr, OutputElem, Plain, PlainUse, Step};
use crate::testutil::*;

#[test]
fn mofhei_lenet_dense_batch_beats_the_paper() {
    let net = lenet(&mut rng(1));
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let c = plan.counts();
    let mults = c.get(OpKind::CtPtMul) + c.get(OpKind::CtScalarMul);
    let adds = c.get(OpKind::CtCtAdd);
    // MOFHEI: 437,368 ct x pt mults, 421,154 ct + ct adds, 6,508 ct x ct
    // mults, depth 19 at N = 2^15.
    assert!(mults <= 437_368, "{mults}");
    assert!(adds <= 421_154, "{adds}");
    assert_eq!(mults, 117_600 + 240_000 + 48_000 + 10_080 + 840);
    assert_eq!(c.get(OpKind::CtCtMul), 4704 + 1600 + 120 + 84);
    assert!(c.get(OpKind::CtCtMul) <= 6_508);
    // Lazy relinearisation: the four squares of a pool window share one key
    // switch and one rescale (conv0 and conv1 windows); conv2 and dense0
    // squares have no pool after them.
    assert_eq!(c.get(OpKind::Relinearize), 1176 + 400 + 120 + 84);
    assert_eq!(c.get(OpKind::Rotation), 0);
    assert!(plan.depth() < 19);
    assert_eq!(plan.depth(), 9);
    assert_eq!(plan.params().log_n, 14);
    assert!(plan.params().log_qp() <= 438);
    assert!(crate::he::security::check_128_bit(14, plan.params().log_qp()).is_ok());
    // The depth-first schedule keeps far fewer ciphertexts alive than the
    // 1024 inputs + 4704 conv0 outputs a layer-by-layer order would.
    assert!(plan.peak_live() < 1024 + 2 * 1176, "{}", plan.peak_live());
    let text = plan.to_string();
    assert!(text.contains("depth 9; CKKS N = 2^14"), "{text}");
    assert!(text.contains("ct_scalar_mul=416520"), "{text}");
    eprintln!("{plan}");
    eprintln!(
        "lenet dense batch: depth {} params {:?} peak_live {} (~{} MB at the input level) est {:.1} s counts {}",
        plan.depth(),
        plan.params(),
        plan.peak_live(),
        plan.estimated_peak_bytes() >> 20,
        plan.estimated_seconds(&CostModel::default()),
        serde_json::to_string(&plan.counts().total).unwrap()
    );
}

#[test]
fn pruned_lenet_units_1_2_16_9_is_small() {
    // MOFHEI's 90% row: units conv0/conv1/conv2/dense0 = 1/2/16/9 (culled
    // units are exact zeros here; the compiler drops them).
    let mut net = lenet(&mut rng(2));
    let keep = [(0usize, 1usize), (3, 2), (6, 16), (9, 9)];
    keep_units(&mut net, &keep);
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let c = plan.counts();
    let mults = c.get(OpKind::CtScalarMul);
    // conv0 784*25, conv1 100*2*25*1, conv2 16*25*2, dense 9*16, out 10*9.
    assert_eq!(mults, 784 * 25 + 100 * 2 * 25 + 16 * 50 + 9 * 16 + 10 * 9);
    assert!(mults <= 28_880);
    assert_eq!(c.get(OpKind::CtCtMul), 784 + 200 + 16 + 9);
    eprintln!(
        "lenet 1/2/16/9 batch: depth {} peak_live {} (~{} MB) est {:.1} s counts {}",
        plan.depth(),
        plan.peak_live(),
        plan.estimated_peak_bytes() >> 20,
        plan.estimated_seconds(&CostModel::default()),
        serde_json::to_string(&plan.counts().total).unwrap()
    );
}

#[test]
fn folding_spends_no_level_on_pools_and_coefficients() {
    let mut r = rng(3);
    let net = Network::new(
        vec![1, 4, 4],
        vec![
            conv(&mut r, 2, 1, 3, 1, 1),
            poly(0.5, 0.3, 0.7),
            pool(2, 2, 0),
            Layer::Flatten,
            dense(&mut r, 3, 8),
        ],
    )
    .unwrap();
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    assert_eq!(plan.depth(), 3);
    // The pool is a plain sum: 3 adds per output, no mult.
    let by = plan.counts_by_layer();
    assert_eq!(by[2].get(OpKind::CtCtAdd), 8 * 3);
    assert_eq!(by[2].get(OpKind::CtScalarMul), 0);
    // The activation is one squaring per unit, its shift folded into conv's bias.
    assert_eq!(by[1].get(OpKind::CtCtMul), 32);
    assert_eq!(by[1].get(OpKind::CtPtAdd), 0);
}

#[test]
fn unsupported_layers_are_named() {
    let mut r = rng(4);
    for (layer, kind) in [
        (Layer::Activation(Activation::Relu), "relu"),
        (
            Layer::MaxPool2d(Pool2d {
                kernel: (2, 2),
                stride: (2, 2),
                padding: (0, 0),
            }),
            "maxpool2d",
        ),
        (
            Layer::Activation(Activation::Poly(Poly {
                coeffs: vec![vec![0.0, 1.0, 0.5, 0.1]],
            })),
            "poly",
        ),
    ] {
        let net = Network::new(
            vec![1, 4, 4],
            vec![conv(&mut r, 1, 1, 3, 1, 1), layer, Layer::Flatten],
        )
        .unwrap();
        let err = compile(&net, &Batch, &CompileOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedLayer { layer: 1, kind: k, .. } if k == kind),
            "{err}"
        );
    }
}

#[test]
fn parameters_follow_depth_and_precision() {
    let p = choose_params(9, 1, &ParamRequest::default()).unwrap();
    assert_eq!(p.log_n, 14);
    assert_eq!(p.scale_bits, 32);
    assert_eq!(p.moduli_bits.len(), 10);
    let p = choose_params(3, 1, &ParamRequest::default()).unwrap();
    assert_eq!(p.log_n, 13);
    // The layout can force a larger ring.
    let p = choose_params(3, 1 << 14, &ParamRequest::default()).unwrap();
    assert_eq!(p.log_n, 15);
    let precise = ParamRequest {
        precision_bits: 24,
        ..ParamRequest::default()
    };
    let p = choose_params(9, 1, &precise).unwrap();
    assert_eq!(p.log_n, 15);
    assert!(p.expected_precision_bits() >= 24);
    let too_precise = ParamRequest {
        precision_bits: 30,
        ..ParamRequest::default()
    };
    assert!(matches!(
        choose_params(9, 1, &too_precise),
        Err(Error::PrecisionUnreachable {
            requested_bits: 30,
            ..
        })
    ));
    assert!(matches!(
        choose_params(60, 1, &precise),
        Err(Error::InsecureParameters { .. })
    ));
    let silly = ParamRequest {
        precision_bits: 50,
        ..ParamRequest::default()
    };
    assert!(choose_params(1, 1, &silly).is_err());
}

#[test]
fn plan_bytes_round_trip_and_garbage_is_refused() {
    let net = lenet(&mut rng(5));
    for plan in [
        compile(&net, &Batch, &CompileOptions::default()).unwrap(),
        compile(
            &Network::new(vec![16], vec![dense(&mut rng(1), 8, 16), square()]).unwrap(),
            &Diagonal,
            &CompileOptions::default(),
        )
        .unwrap(),
        compile(
            &Network::new(vec![16], vec![dense(&mut rng(1), 8, 16), square()]).unwrap(),
            &Tile::new(4, 4, 1).unwrap(),
            &CompileOptions::default(),
        )
        .unwrap(),
    ] {
        let bytes = plan.to_bytes().unwrap();
        assert_eq!(Plan::from_bytes(&bytes).unwrap(), plan);
        let err = |b: &[u8]| match Plan::from_bytes(b) {
            Err(Error::Decode { reason, .. }) => reason,
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert_eq!(err(b"garbage"), DecodeError::BadMagic);
        let mut v = bytes.clone();
        v[8] = 9;
        assert!(matches!(err(&v), DecodeError::Version { found: 9, .. }));
        assert!(matches!(
            err(&bytes[..bytes.len() / 2]),
            DecodeError::Malformed { .. }
        ));
        let mut v = bytes.clone();
        v.push(0);
        assert!(matches!(err(&v), DecodeError::TrailingBytes { count: 1 }));
    }
}

#[test]
fn corrupted_plans_are_refused_not_run() {
    let net = Network::new(vec![4], vec![dense(&mut rng(1), 3, 4), square()]).unwrap();
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let mut bad = plan.clone();
    if let Some(Step {
        instr: Instr::DotScalar { inputs, .. },
        ..
    }) = bad.steps.first_mut()
    {
        inputs[0] = 999;
    }
    assert!(matches!(bad.validate(), Err(Error::InvalidPlan { .. })));
    let mut bad = plan.clone();
    bad.depth = 0;
    assert!(bad.validate().is_err());
    let mut bad = plan.clone();
    bad.waves.pop();
    assert!(bad.validate().is_err());
    let bytes = bad.to_bytes().unwrap();
    assert!(Plan::from_bytes(&bytes).is_err());
}

/// Non-finite constants (an instruction's weights or bias, the output
/// map, a plaintext) are refused by validation: a tampered plan would
/// otherwise output NaN without an error.
#[test]
fn plans_with_non_finite_constants_are_refused() {
    let net = Network::new(vec![4], vec![dense(&mut rng(1), 3, 4), square()]).unwrap();
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let what = |p: &Plan| match p.validate() {
        Err(Error::InvalidPlan { reason }) => reason.what(),
        other => panic!("{other:?}"),
    };
    let mut bad = plan.clone();
    for s in &mut bad.steps {
        if let Instr::DotScalar { weights, .. } = &mut s.instr {
            weights[0] = f64::NAN;
        }
    }
    assert_eq!(what(&bad), "non-finite constant in an instruction");
    let mut bad = plan.clone();
    bad.output_map[0] = OutputElem::Const(f64::INFINITY);
    assert_eq!(what(&bad), "non-finite output map constant");
    let mut bad = plan.clone();
    bad.plains.push(Plain {
        values: vec![f64::NAN, 1.0],
        usage: PlainUse::Mul,
    });
    assert_eq!(what(&bad), "non-finite plaintext value");
    let mut bad = plan.clone();
    bad.plains.push(Plain {
        values: vec![1.0, 0.0],
        usage: PlainUse::Add,
    });
    assert!(what(&bad).starts_with("plaintext without a non-zero value"));
    let mut bad = plan;
    bad.samples = Some(0);
    assert!(what(&bad).starts_with("samples"));
}

#[test]
fn cost_model_scales_with_ring_and_level() {
    let m = CostModel::default();
    assert!(m.seconds(OpKind::Rotation, 9, 14) > m.seconds(OpKind::Rotation, 1, 14));
    assert!(
        (m.seconds(OpKind::CtCtAdd, 3, 15) - 2.0 * m.seconds(OpKind::CtCtAdd, 3, 14)).abs() < 1e-12
    );
    let net = lenet(&mut rng(6));
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let t = plan.estimated_seconds(&m);
    assert!(t > 1.0 && t < 1000.0, "{t}");
}

#[test]
fn quantized_plan_has_integer_instructions_and_bounds() {
    let q = quantised_net(false);
    let plan = compile_quantized(&q, &Batch, &CompileOptions::default()).unwrap();
    let integer = plan.integer().unwrap();
    assert_eq!(integer.layer_bounds(), q.accumulator_bounds().as_slice());
    assert_eq!(
        integer.min_plaintext_modulus().unwrap(),
        q.min_plaintext_modulus().unwrap()
    );
    assert_eq!(integer.output_scales(), q.output_scales().as_slice());
    // conv (1 level), pool (a sum, no level), dense (1), square (1), dense (1).
    assert_eq!(plan.depth(), 4);
    for s in plan.steps() {
        match &s.instr {
            Instr::DotScalar {
                weights, bias: b, ..
            } => {
                assert!(weights.iter().chain([b]).all(|w| w.fract() == 0.0));
            }
            Instr::Sum { bias: b, .. } | Instr::AddScalar { value: b, .. } => {
                assert_eq!(b.fract(), 0.0)
            }
            Instr::Square { .. }
            | Instr::SquareLazy { .. }
            | Instr::RelinRescale { .. }
            | Instr::DropLevel { .. } => {}
            other => panic!("unexpected instruction {other:?}"),
        }
    }
    // The dead unit's squared constant is absorbed by the last layer: no
    // instruction computes it, and 4 live units are squared.
    let dense_squares = plan
        .steps()
        .iter()
        .filter(|s| s.layer == 4 && matches!(s.instr, Instr::Square { .. }))
        .count();
    assert_eq!(dense_squares, 4);
    assert!(plan.output_map().iter().all(|e| matches!(
        e,
        OutputElem::Slot {
            alpha: 1.0,
            beta: 0.0,
            ..
        }
    )));
    assert!(plan.to_string().contains("integer plan"), "{plan}");
    // Round trip through bytes keeps the integer facts.
    let back = Plan::from_bytes(&plan.to_bytes().unwrap()).unwrap();
    assert_eq!(back, plan);
}

#[test]
fn quantized_plan_refuses_a_plaintext_modulus_its_accumulators_could_exceed() {
    let q = quantised_net(false);
    let bounds = q.accumulator_bounds();
    let compile_with = |t: u64| {
        compile_quantized(
            &q,
            &Batch,
            &CompileOptions {
                plaintext_modulus: Some(t),
                ..CompileOptions::default()
            },
        )
    };
    // t = 2 * bound is one short for every layer: the first layer whose bound
    // reaches it is named.
    for (layer, &b) in bounds.iter().enumerate() {
        let t = u64::try_from(2 * b).unwrap();
        let first = bounds.iter().position(|&x| 2 * x >= u128::from(t)).unwrap();
        let err = compile_with(t).unwrap_err();
        match err {
            Error::AccumulatorOverflow {
                layer: l,
                bound,
                plaintext_modulus,
            } => {
                assert_eq!(l, first, "t for layer {layer}");
                assert_eq!(bound, bounds[first]);
                assert_eq!(plaintext_modulus, t);
            }
            other => panic!("expected AccumulatorOverflow, got {other:?}"),
        }
    }
    // The last layer has the largest bound here; its error names it.
    let last = bounds.len() - 1;
    let err = compile_with(u64::try_from(2 * bounds[last]).unwrap()).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("layer {last}: ")),
        "{err}"
    );
    // The computed minimum is accepted.
    let t = q.min_plaintext_modulus().unwrap();
    assert!(compile_with(t).is_ok());
    assert_eq!(
        compile_with(t)
            .unwrap()
            .integer()
            .unwrap()
            .check_plaintext_modulus(t - 1)
            .unwrap_err()
            .to_string(),
        compile_with(t - 1).unwrap_err().to_string()
    );
}

#[test]
fn quantized_plan_on_the_simulator_equals_the_integer_forward_pass() {
    use crate::eval::{Client, Server};
    let q = quantised_net(false);
    let max = q.min_plaintext_modulus().unwrap();
    // The simulator needs room for the integers above its scale.
    let opts = CompileOptions {
        params: ParamRequest {
            precision_bits: 4,
            integer_bits: 64 - max.leading_zeros() + 1,
            ..ParamRequest::default()
        },
        ..CompileOptions::default()
    };
    for packing in [
        &Batch as &dyn crate::packing::Packing,
        &Tile::new(8, 8, 1).unwrap(),
        &Diagonal,
    ] {
        let plan = compile_quantized(&q, packing, &opts).unwrap();
        let sim = std::sync::Arc::new(sim_for(&plan, plan.period().unwrap_or(1).max(16)));
        let mut r = rng(72);
        let (client, keys) = Client::new(sim.clone(), &plan, &mut r).unwrap();
        let server = Server::new(sim.clone(), plan.clone(), keys).unwrap();
        let n = client.samples().min(16);
        let x = rand_tensor(&mut r, vec![n, 1, 6, 6], 1.2);
        let (out, _) = server.run(client.encrypt(&x, &mut r).unwrap()).unwrap();
        let got = client.decrypt_values(&out).unwrap();
        let real = client.decrypt(&out).unwrap();
        for (s, (row, reals)) in got.iter().zip(real.data().chunks(3)).enumerate() {
            let ints = q
                .forward(&q.quantize_input(&x.data()[s * 36..(s + 1) * 36]).unwrap())
                .unwrap();
            let want: Vec<f64> = ints.iter().map(|&v| v as f64).collect();
            assert_eq!(row, &want, "{:?}, sample {s}", plan.packing());
            assert_eq!(reals, q.dequantize_output(&ints).as_slice());
        }
    }
}

/// A packing whose lowering always fails (a candidate `compile_cheapest`
/// must skip).
struct Refuses;

impl Packing for Refuses {
    fn name(&self) -> &'static str {
        "refusing packing"
    }
    fn kind(&self) -> PackingKind {
        PackingKind::Batch
    }
    fn block_shape(&self, _: &Network, _: usize) -> Option<crate::packing::BlockShape> {
        None
    }
    fn zero_block_saves(&self) -> OpCounts {
        OpCounts::default()
    }
    fn lower(&self, _: &Folded, _: &mut Builder) -> Result<()> {
        Err(Error::InvalidParameter {
            name: "refusing packing",
            value: 0,
            allowed: "nothing",
        })
    }
}

#[test]
fn compile_cheapest_picks_the_lowest_estimate_per_sample() {
    use crate::packing::tile::Transition;
    let mut r = rng(77);
    let net = lenet(&mut r);
    let opts = CompileOptions::default();
    let model = CostModel::default();
    let gather = Tile::new(8, 8, 1).unwrap().with_interleaved_conv();
    let products = gather.with_transition(Transition::Products);
    let composed = Tile::new(64, 64, 1).unwrap().with_client_patches();
    // A packing that cannot compile the network is skipped, not an error.
    let refuses = Refuses;
    assert!(compile(&net, &refuses, &opts).is_err());
    let cands: [&dyn Packing; 5] = [&refuses, &Diagonal, &gather, &products, &composed];
    let (i, plan) = compile_cheapest(&net, &cands, &opts, &model).unwrap();
    let per_sample = |p: &dyn Packing| {
        let plan = compile(&net, p, &opts).unwrap();
        plan.estimated_seconds(&model) / plan.samples(plan.params().slots()) as f64
    };
    let costs: Vec<f64> = cands[1..].iter().map(|p| per_sample(*p)).collect();
    let want = 1
        + (0..costs.len())
            .min_by(|&a, &b| costs[a].total_cmp(&costs[b]))
            .unwrap();
    eprintln!("compile_cheapest: per-sample estimates {costs:?}, chose {i}");
    assert_eq!(i, want, "per-sample estimates {costs:?}");
    assert_eq!(
        plan.steps().len(),
        compile(&net, cands[i], &opts).unwrap().steps().len()
    );
    // No candidate compiles: the first error; none given: EmptyInput.
    assert!(matches!(
        compile_cheapest(&net, &[&refuses], &opts, &model),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        compile_cheapest(&net, &[], &opts, &model),
        Err(Error::EmptyInput { .. })
    ));
}
