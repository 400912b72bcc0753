//! The plan-level suite: every packing x every layer kind x dense/pruned,
//! exact op counts, encrypted vs plaintext (see the module docs).

use std::sync::Arc;

use crate::compile::{CompileOptions, compile, compile_quantized};
use crate::error::Result;
use crate::eval::{Client, Server};
use crate::he::{Counted, HeScheme, OpCounts, OpKind, SlotValue};
use crate::model::{Layer, Network};
use crate::packing::{Batch, BlockShape, Diagonal, Packing, Tile};
use crate::plan::Plan;
use crate::quant::{QuantConfig, QuantizedNetwork};

use super::reference::{batch_norm, conv, dense, forward, poly, pool, rand_tensor, rng, square};

/// The plan-level suite for the backends a factory makes (see the module
/// docs). Each method is one case; it panics with a message naming the
/// network and packing when a check fails.
pub struct PlanSuite<F> {
    make: F,
    tolerance: f64,
}

/// What one checked encrypted run gave ([`PlanSuite::check`]).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The compiled plan.
    pub plan: Plan,
    /// Decrypted outputs per sample.
    pub got: Vec<Vec<f64>>,
    /// The model's own forward pass (f32), per sample.
    pub model: Vec<Vec<f64>>,
    /// The f64 reference, per sample.
    pub want: Vec<Vec<f64>>,
    /// Operations of the run.
    pub counts: OpCounts,
    /// Plaintexts the server encoded.
    pub setup_encodes: u64,
}

/// The packings of the suite with the slots and samples of one run:
/// `(packing, slots, samples)`.
pub fn packings() -> Vec<(Box<dyn Packing>, usize, usize)> {
    vec![
        (Box::new(Batch), 8, 8),
        (Box::new(Tile::new(4, 4, 1).unwrap()), 32, 1),
        (Box::new(Tile::new(4, 8, 2).unwrap()), 64, 2),
        (Box::new(Diagonal), 64, 1),
    ]
}

/// A 16-8-8-4 MLP with a square and a polynomial activation.
pub fn mlp(seed: u64) -> Network {
    let mut r = rng(seed);
    Network::new(
        vec![16],
        vec![
            dense(&mut r, 8, 16),
            square(),
            dense(&mut r, 8, 8),
            poly(0.1, 0.5, 0.25),
            dense(&mut r, 4, 8),
        ],
    )
    .unwrap()
}

/// Small networks covering every layer kind the compiler lowers.
fn layer_kind_nets() -> Vec<(&'static str, Network)> {
    let mut r = rng(11);
    vec![
        (
            "dense+poly",
            Network::new(
                vec![12],
                vec![
                    dense(&mut r, 9, 12),
                    poly(0.1, 0.4, 0.3),
                    dense(&mut r, 3, 9),
                ],
            )
            .unwrap(),
        ),
        (
            "conv stride 2 pad 1 + square",
            Network::new(
                vec![2, 6, 6],
                vec![
                    conv(&mut r, 3, 2, 3, 2, 1),
                    square(),
                    Layer::Flatten,
                    dense(&mut r, 3, 27),
                ],
            )
            .unwrap(),
        ),
        (
            "avgpool (padded) between polys",
            Network::new(
                vec![2, 6, 6],
                vec![
                    conv(&mut r, 2, 2, 3, 1, 1),
                    poly(0.2, 0.5, 0.2),
                    pool(2, 2, 0),
                    pool(3, 2, 1),
                    square(),
                    Layer::Flatten,
                    dense(&mut r, 2, 8),
                ],
            )
            .unwrap(),
        ),
        (
            "batchnorm + dropout",
            Network::new(
                vec![6],
                vec![
                    dense(&mut r, 5, 6),
                    batch_norm(&mut r, 5),
                    Layer::Dropout { rate: 0.5 },
                    poly(0.0, 0.3, 0.5),
                    dense(&mut r, 2, 5),
                ],
            )
            .unwrap(),
        ),
        (
            "poly after poly, ends in an activation",
            Network::new(
                vec![5],
                vec![
                    dense(&mut r, 4, 5),
                    poly(0.3, 0.2, 0.5),
                    poly(-0.1, 0.7, 0.2),
                    dense(&mut r, 3, 4),
                    poly(0.1, 1.0, 0.4),
                ],
            )
            .unwrap(),
        ),
    ]
}

/// Zeroes the given blocks of dense layer `layer`.
pub fn zero_blocks(net: &mut Network, layer: usize, blocks: &[Vec<(usize, usize)>]) {
    let Layer::Dense(d) = &mut net.layers[layer] else {
        panic!("layer {layer} is not dense")
    };
    let cols = d.weight.shape()[1];
    for b in blocks {
        for &(r, c) in b {
            d.weight.data_mut()[r * cols + c] = 0.0;
        }
    }
}

/// `a - b` per operation kind, non-zero entries only.
pub fn diff(a: &OpCounts, b: &OpCounts) -> Vec<(OpKind, i64)> {
    OpKind::ALL
        .iter()
        .map(|&k| (k, a.get(k) as i64 - b.get(k) as i64))
        .filter(|(_, d)| *d != 0)
        .collect()
}

/// What zeroing one block saves under `p`, encodes aside.
fn saving_of(p: &dyn Packing) -> Vec<(OpKind, i64)> {
    let s = p.zero_block_saves();
    OpKind::ALL
        .iter()
        .filter(|&&k| k != OpKind::Encode)
        .map(|&k| (k, s.get(k) as i64))
        .filter(|(_, d)| *d != 0)
        .collect()
}

impl<S, F> PlanSuite<F>
where
    S: HeScheme,
    F: Fn(&Plan, usize) -> Result<S>,
{
    /// The suite for the backends `make(plan, slots)` returns: able to run
    /// `plan` (its depth) with at least `slots` slots. `tolerance`: the
    /// largest error allowed against the `f64` reference, relative to one
    /// plus the largest reference magnitude (the simulator: `1e-6`; CKKS at
    /// scale `2^32`: `1e-3`; ignored by integer backends, which must be
    /// exact).
    pub fn new(make: F, tolerance: f64) -> PlanSuite<F> {
        PlanSuite { make, tolerance }
    }

    /// The backend for `plan`, counted.
    fn backend(&self, plan: &Plan, slots: usize) -> Arc<Counted<S>> {
        let slots = slots.max(plan.period().unwrap_or(1));
        let s = (self.make)(plan, slots).expect("backend for the plan");
        assert!(
            s.slot_count() >= slots,
            "the factory gave {} slots, the plan needs {slots}",
            s.slot_count()
        );
        Arc::new(Counted::new(s))
    }

    /// Whether the backend is an exact integer scheme (it runs the
    /// quantised cases only).
    fn integer(&self) -> bool {
        let plan = compile(&mlp(1), &Batch, &CompileOptions::default()).unwrap();
        let s = (self.make)(&plan, 8).expect("backend for the plan");
        s.plaintext_modulus().is_some()
    }

    /// Compiles `net` under `packing` and runs `n` random samples (fewer if
    /// the backend holds fewer) through client and server.
    fn run(&self, net: &Network, packing: &dyn Packing, slots: usize, n: usize) -> Outcome {
        let plan = compile(net, packing, &CompileOptions::default()).unwrap();
        let he = self.backend(&plan, slots);
        let mut r = rng(3);
        let (client, keys) = Client::new(he.clone(), &plan, &mut r).unwrap();
        let server = Server::new(he.clone(), plan.clone(), keys).unwrap();
        let setup_encodes = he.take_counts().get(OpKind::Encode);
        let n = n.min(client.samples()).max(1);
        let mut shape = vec![n];
        shape.extend_from_slice(&net.input_shape);
        let x = rand_tensor(&mut r, shape, 1.0);
        let enc = client.encrypt(&x, &mut r).unwrap();
        let (out, report) = server.run_counted(enc).unwrap();
        let y = client.decrypt(&out).unwrap();
        let m: usize = net.output_shape().unwrap().iter().product();
        assert_eq!(y.shape()[0], n);
        let rows = |d: &[f32]| -> Vec<Vec<f64>> {
            d.chunks(m.max(1))
                .map(|c| c.iter().map(|&v| f64::from(v)).collect())
                .collect()
        };
        Outcome {
            got: rows(y.data()),
            model: rows(net.forward(&x).unwrap().data()),
            want: forward(net, &x),
            plan,
            counts: report.counts.unwrap(),
            setup_encodes,
        }
    }

    /// Outputs within tolerance of the references; counts and encodes
    /// exactly the plan's.
    fn assert_close(&self, o: &Outcome, what: &str) {
        let max = o.want.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        for (g, w) in o.got.iter().zip(&o.want) {
            for (a, b) in g.iter().zip(w) {
                // Outputs come back as f32.
                let tol = self.tolerance * (1.0 + max) + 1e-6 * b.abs();
                assert!(
                    (a - b).abs() <= tol,
                    "{what}: got {a}, want {b} (max {max})"
                );
            }
        }
        // Against the model's own f32 forward pass: f32 rounding dominates.
        for (g, w) in o.got.iter().zip(&o.model) {
            for (a, b) in g.iter().zip(w) {
                let tol = self.tolerance.max(1e-4) * (1.0 + max);
                assert!((a - b).abs() <= tol, "{what}: got {a}, model {b}");
            }
        }
        assert_eq!(
            &o.counts,
            o.plan.counts(),
            "{what}: plan estimate != counted"
        );
        assert_eq!(
            o.setup_encodes,
            o.plan.plains().len() as u64,
            "{what}: stored plaintexts"
        );
    }

    /// Compiles `net` under `packing`, runs `samples` random samples (fewer
    /// when the backend holds fewer) on a backend of at least `slots` slots,
    /// checks the outputs against the reference and the op counts against
    /// the plan's, and returns what the run gave. Real-number backends
    /// only.
    pub fn check(
        &self,
        net: &Network,
        packing: &dyn Packing,
        slots: usize,
        samples: usize,
    ) -> Outcome {
        let o = self.run(net, packing, slots, samples);
        self.assert_close(&o, packing.name());
        o
    }

    /// Every layer kind under every packing agrees with the reference, with
    /// exactly the plan's op counts.
    pub fn layer_kinds_under_every_packing(&self) {
        if self.integer() {
            return;
        }
        for (name, net) in layer_kind_nets() {
            for (p, slots, n) in packings() {
                let o = self.run(&net, p.as_ref(), slots, n);
                self.assert_close(&o, &format!("{name} / {}", p.name()));
            }
        }
    }

    /// An MLP under every packing; its depth is the plan's parameter depth.
    pub fn mlp_under_every_packing(&self) {
        if self.integer() {
            return;
        }
        let net = mlp(5);
        for (p, slots, n) in packings() {
            let o = self.run(&net, p.as_ref(), slots, n);
            self.assert_close(&o, p.name());
            assert_eq!(o.plan.depth(), o.plan.params().max_level().0);
        }
    }

    /// Batch packing: two zero weights save exactly twice the packing's
    /// per-block saving.
    pub fn batch_zero_weight(&self) {
        if self.integer() {
            return;
        }
        let net = mlp(6);
        let dense_o = self.run(&net, &Batch, 8, 8);
        let shape = Batch.block_shape(&net, 2).unwrap();
        assert_eq!(shape, BlockShape::Weight);
        let blocks = shape.blocks(8, 8);
        let mut pruned = net.clone();
        zero_blocks(&mut pruned, 2, &[blocks[3].clone(), blocks[20].clone()]);
        let o = self.run(&pruned, &Batch, 8, 8);
        self.assert_close(&o, "pruned batch");
        let want: Vec<(OpKind, i64)> = saving_of(&Batch)
            .into_iter()
            .map(|(k, n)| (k, 2 * n))
            .collect();
        assert_eq!(diff(&dense_o.counts, &o.counts), want);
    }

    /// Batch packing: a culled neuron removes its dot product, its
    /// activation and its column of the next layer, nothing else.
    pub fn batch_culled_neuron(&self) {
        if self.integer() {
            return;
        }
        let net = mlp(7);
        let dense_o = self.run(&net, &Batch, 8, 8);
        let mut pruned = net.clone();
        // Neuron 3 of the first layer: its whole row (a Column block).
        let col = BlockShape::Column.blocks(8, 16)[3].clone();
        zero_blocks(&mut pruned, 0, &[col]);
        let o = self.run(&pruned, &Batch, 8, 8);
        self.assert_close(&o, "culled");
        // Its dot (16 mults, 15 adds, rescale, bias), its square (mul,
        // relin, rescale) and its column of the next layer (8 mults, 8
        // adds) are gone.
        assert_eq!(
            diff(&dense_o.counts, &o.counts),
            vec![
                (OpKind::CtCtMul, 1),
                (OpKind::CtScalarMul, 16 + 8),
                (OpKind::CtCtAdd, 15 + 8),
                (OpKind::CtPtAdd, 1),
                (OpKind::Rescale, 2),
                (OpKind::Relinearize, 1),
            ]
        );
    }

    /// Tile packing: a zero tile saves exactly the packing's per-block
    /// saving (and one stored plaintext); a zero tile row its rotations.
    pub fn tile_zero_tile(&self) {
        if self.integer() {
            return;
        }
        let net = mlp(8);
        let tile = Tile::new(4, 4, 1).unwrap();
        let dense_o = self.run(&net, &tile, 32, 1);
        let shape = tile.block_shape(&net, 0).unwrap();
        assert_eq!(shape, BlockShape::Tile { rows: 4, cols: 4 });
        let blocks = shape.blocks(8, 16);
        assert_eq!(blocks.len(), 8);
        // Tile (outputs 0..4, inputs 4..8): its tile row keeps 3 non-zero tiles.
        let mut pruned = net.clone();
        zero_blocks(&mut pruned, 0, &[blocks[1].clone()]);
        let o = self.run(&pruned, &tile, 32, 1);
        self.assert_close(&o, "pruned tile");
        assert_eq!(diff(&dense_o.counts, &o.counts), saving_of(&tile));
        assert_eq!(
            dense_o.setup_encodes - o.setup_encodes,
            tile.zero_block_saves().get(OpKind::Encode)
        );
        // A whole tile row: its 4 mults, 3 adds, rescale, the log2(t1) = 2
        // rotations (+2 adds) of its rotate-and-sum and its bias add
        // disappear; the next layer loses the products with that tile too.
        let mut row = net.clone();
        zero_blocks(&mut row, 0, &blocks[0..4]);
        let o2 = self.run(&row, &tile, 32, 1);
        self.assert_close(&o2, "tile row");
        let d = diff(&dense_o.counts, &o2.counts);
        let get = |k| d.iter().find(|x| x.0 == k).map(|x| x.1).unwrap_or(0);
        assert!(get(OpKind::Rotation) >= 2, "{d:?}");
        assert_eq!(get(OpKind::CtCtMul), 1, "{d:?}"); // its square
    }

    /// Diagonal packing: a zero diagonal saves exactly the packing's
    /// per-block saving; zeroing every user of a baby step saves its
    /// rotation too.
    pub fn diagonal_zero_diagonal(&self) {
        if self.integer() {
            return;
        }
        let mut r = rng(9);
        let net = Network::new(
            vec![8],
            vec![dense(&mut r, 8, 8), square(), dense(&mut r, 8, 8)],
        )
        .unwrap();
        let dense_o = self.run(&net, &Diagonal, 32, 1);
        let shape = Diagonal.block_shape(&net, 0).unwrap();
        assert_eq!(shape, BlockShape::Diagonal { size: 8 });
        let blocks = shape.blocks(8, 8);
        // d = 8, 4 baby steps: diagonal 5 = giant 1, baby 1; both stay in use.
        let mut pruned = net.clone();
        zero_blocks(&mut pruned, 0, &[blocks[5].clone()]);
        let o = self.run(&pruned, &Diagonal, 32, 1);
        self.assert_close(&o, "pruned diagonal");
        assert_eq!(diff(&dense_o.counts, &o.counts), saving_of(&Diagonal));
        assert_eq!(dense_o.setup_encodes - o.setup_encodes, 1);
        // Diagonals 3 and 7 are the only users of baby step 3: one rotation more.
        let mut baby = net.clone();
        zero_blocks(&mut baby, 0, &[blocks[3].clone(), blocks[7].clone()]);
        let o2 = self.run(&baby, &Diagonal, 32, 1);
        self.assert_close(&o2, "baby step");
        let mut want = saving_of(&Diagonal)
            .into_iter()
            .map(|(k, n)| (k, 2 * n))
            .collect::<Vec<_>>();
        want.push((OpKind::Rotation, 1));
        want.sort();
        let mut got = diff(&dense_o.counts, &o2.counts);
        got.sort();
        assert_eq!(got, want);
    }

    /// Integer backends: a quantised network (convolution, pooling, a dead
    /// neuron, square, dense) under every packing, dense and with a culled
    /// neuron, decrypts to exactly the integer forward pass, with exactly
    /// the plan's op counts and stored plaintexts; culling never costs
    /// more, and under batch packing saves.
    pub fn quantised_under_every_packing(&self) {
        if !self.integer() {
            return;
        }
        let packings: [(&dyn Packing, usize); 3] = [
            (&Batch, 16),
            (&Tile::new(8, 8, 1).unwrap(), 64),
            (&Diagonal, 64),
        ];
        for (packing, slots) in packings {
            let dense_q = quantised_net(false);
            let pruned_q = quantised_net(true);
            let d = self.run_quantised(&dense_q, packing, slots);
            let p = self.run_quantised(&pruned_q, packing, slots);
            // A culled neuron never costs more; under batch packing (one
            // block per weight) it costs strictly less.
            let saved = diff(&d, &p);
            assert!(
                saved.iter().all(|(_, n)| *n >= 0),
                "{}: pruning cost {saved:?}",
                packing.name()
            );
            if packing.name() == Batch.name() {
                assert!(!saved.is_empty(), "batch: a culled neuron saved nothing");
            }
        }
    }

    /// Runs a quantised network: exact integers, exact counts; returns the
    /// counts.
    fn run_quantised(&self, q: &QuantizedNetwork, packing: &dyn Packing, slots: usize) -> OpCounts {
        let what = packing.name();
        let plan = compile_quantized(q, packing, &CompileOptions::default()).unwrap();
        let he = self.backend(&plan, slots);
        let mut r = rng(72);
        let (client, keys) = Client::new(he.clone(), &plan, &mut r).unwrap();
        let server = Server::new(he.clone(), plan.clone(), keys).unwrap();
        let setup_encodes = he.take_counts().get(OpKind::Encode);
        assert_eq!(setup_encodes, plan.plains().len() as u64, "{what}");
        let n = client.samples().min(8);
        let dim: usize = q.input_shape().iter().product();
        let mut shape = vec![n];
        shape.extend_from_slice(q.input_shape());
        let x = rand_tensor(&mut r, shape, 1.2);
        let (out, report) = server
            .run_counted(client.encrypt(&x, &mut r).unwrap())
            .unwrap();
        let got = client.decrypt_values(&out).unwrap();
        for (s, row) in got.iter().enumerate() {
            let ints = q
                .forward(&q.quantize_input(&x.data()[s * dim..(s + 1) * dim]).unwrap())
                .unwrap();
            let want: Vec<f64> = ints.iter().map(|&v| v as f64).collect();
            let row: Vec<f64> = row.iter().map(|v| v.to_f64()).collect();
            assert_eq!(row, want, "{what}, sample {s}");
        }
        let counts = report.counts.unwrap();
        assert_eq!(&counts, plan.counts(), "{what}: plan estimate != counted");
        counts
    }
}

/// A small quantised convolutional network (3-bit weights and inputs);
/// `pruned`: unit 2 of its first dense layer culled as well.
pub(crate) fn quantised_net(pruned: bool) -> QuantizedNetwork {
    let mut r = rng(71);
    let mut net = Network {
        input_shape: vec![1, 6, 6],
        layers: vec![
            conv(&mut r, 2, 1, 3, 1, 1),
            pool(2, 2, 0),
            Layer::Flatten,
            dense(&mut r, 5, 18),
            square(),
            dense(&mut r, 3, 5),
        ],
    };
    // Unit 1 of the first dense layer is dead: its value is its bias, a
    // constant the square and the last layer absorb.
    if let Layer::Dense(d) = &mut net.layers[3] {
        d.weight.data_mut()[18..36]
            .iter_mut()
            .for_each(|w| *w = 0.0);
        d.bias[1] = 0.3;
        if pruned {
            d.weight.data_mut()[36..54]
                .iter_mut()
                .for_each(|w| *w = 0.0);
        }
    }
    let cfg = QuantConfig {
        weight_bits: 3,
        input_bits: 3,
        ..QuantConfig::int8(1.0)
    };
    QuantizedNetwork::quantize(&net, &cfg).unwrap()
}
