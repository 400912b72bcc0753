//! Convolution on interleaved image tiles (`Tile::with_interleaved_conv`):
//! conv alone, conv + activation + pool + dense, LeNet on the simulator and
//! on CKKS, exact skipping of zero kernels and filters, refusals.

use rand_chacha::ChaCha20Rng;

use super::*;
use crate::model::{Activation, Conv2d, zoo};
use crate::packing::tile::Transition;

fn interleaved(rows: usize, cols: usize, batch: usize) -> Tile {
    Tile::new(rows, cols, batch)
        .unwrap()
        .with_interleaved_conv()
}

fn conv_mut(net: &mut Network, layer: usize) -> &mut Conv2d {
    match &mut net.layers[layer] {
        Layer::Conv2d(c) => c,
        _ => panic!("not a convolution"),
    }
}

/// Zero kernel `(o, c)` of convolution `layer`.
fn zero_kernel(net: &mut Network, layer: usize, o: usize, c: usize) {
    let conv = conv_mut(net, layer);
    let s = conv.weight.shape().to_vec();
    let per = s[2] * s[3];
    let start = (o * s[1] + c) * per;
    conv.weight.data_mut()[start..start + per]
        .iter_mut()
        .for_each(|w| *w = 0.0);
}

/// MOFHEI's LeNet (32x32) with squares and average pools.
fn lenet_mofhei_avg(seed: u64) -> Network {
    let mut net = zoo::lenet_mofhei(Activation::Square, seed);
    for l in &mut net.layers {
        if let Layer::MaxPool2d(p) = l {
            *l = Layer::AvgPool2d(*p);
        }
    }
    net
}

#[test]
fn conv_alone_strided_and_batched() {
    let mut r = rng(41);
    let net = Network::new(vec![2, 8, 8], vec![conv(&mut r, 3, 2, 3, 1, 0)]).unwrap();
    let tile = interleaved(4, 4, 1);
    assert_eq!(
        tile.interleaved_input_shape(&net).unwrap().to_string(),
        "[2/1, ~8/4, ~8/4, 1/1]"
    );
    // 32 slots: the 16-slot tile is replicated twice.
    let o = check(&net, &tile, 32, 1);
    // ky = kx = 2: 8 input tiles, each rotated by the 3 shifts (0,1), (1,0),
    // (1,1); 3 filters x 4 output tiles x 18 weights ct x scalar; no
    // plaintext at all (the bias is a scalar).
    assert_eq!(o.plan.input_layout().cts.len(), 8);
    assert_eq!(o.plan.depth(), 1);
    assert_eq!(o.counts.get(OpKind::Rotation), 24);
    assert_eq!(o.counts.get(OpKind::CtScalarMul), 3 * 4 * 18);
    assert_eq!(o.counts.get(OpKind::CtPtMul), 0);
    assert!(o.plan.plains().is_empty());
    // Stride 2 (ky = 2 divides by it), 2 samples per tile.
    let net = Network::new(vec![2, 8, 8], vec![conv(&mut r, 3, 2, 3, 2, 0)]).unwrap();
    check(&net, &interleaved(4, 4, 2), 32, 2);
    // Stride 2 with ceil(7/4) = 2 already a multiple; 4x2 tiles: kx = 4.
    let net = Network::new(vec![1, 7, 7], vec![conv(&mut r, 2, 1, 3, 2, 0)]).unwrap();
    check(&net, &interleaved(4, 2, 1), 8, 1);
    // A 7x7 kernel on 8x8 with 2x2 tiles (ky = 4): only output tiles
    // (a, b) < (2, 2) hold a valid pixel; the 12 others are not computed.
    let net = Network::new(vec![1, 8, 8], vec![conv(&mut r, 2, 1, 7, 1, 0)]).unwrap();
    let o = check(&net, &interleaved(2, 2, 1), 4, 1);
    assert_eq!(o.counts.get(OpKind::Rescale), 2 * 4);
    // TenSEAL's MNIST network: 7x7 stride 3 on 28x28; ceil(28/8) = 4 is
    // rounded up to ky = 6, a multiple of the stride (36 input tiles).
    let t = zoo::tenseal_mnist(3);
    let tile = interleaved(8, 8, 1);
    assert_eq!(
        tile.interleaved_input_shape(&t).unwrap().to_string(),
        "[1/1, ~48/8, ~48/8, 1/1]"
    );
    let o = check(&t, &tile, 64, 1);
    assert_eq!(o.plan.input_layout().cts.len(), 36);
    check(&t, &tile.with_transition(Transition::Products), 64, 1);
}

/// Over a `[2, 8, 8]` input: a 4-filter 3 x 3 conv, `act`, a 2 x 2 pool,
/// flatten and a dense layer of 5 outputs.
fn conv_pool_dense(r: &mut ChaCha20Rng, act: Layer) -> Vec<Layer> {
    vec![
        conv(r, 4, 2, 3, 1, 0),
        act,
        pool(2, 2, 0),
        Layer::Flatten,
        dense(r, 5, 36),
    ]
}

#[test]
fn conv_act_pool_dense() {
    let mut r = rng(42);
    let net = Network::new(vec![2, 8, 8], conv_pool_dense(&mut r, poly(0.1, 0.5, 0.25))).unwrap();
    let tile = interleaved(4, 4, 1);
    let o = check(&net, &tile, 16, 1);
    // conv, square, (pool: no level), gather mask, dense.
    assert_eq!(o.plan.depth(), 4);
    // The pool (window = stride = 2 = ky) rotates nothing: the only
    // rotations are the convolution's 24, the gather's and the chain's.
    let by_layer = o.plan.counts_by_layer();
    assert_eq!(by_layer[2].get(OpKind::Rotation), 0);
    assert_eq!(by_layer[2].get(OpKind::CtScalarMul), 0);
    assert_eq!(by_layer[0].get(OpKind::Rotation), 24);
    // A pool whose window is not its stride rotates, and the network ends
    // on the image tiles.
    let net = Network::new(
        vec![1, 8, 8],
        vec![conv(&mut r, 2, 1, 3, 1, 0), square(), pool(2, 1, 0)],
    )
    .unwrap();
    let o = check(&net, &tile, 16, 1);
    assert!(o.plan.counts_by_layer()[2].get(OpKind::Rotation) > 0);
}

#[test]
fn product_transition() {
    let mut r = rng(45);
    // A dense layer after flatten: 5 outputs x 4 pooled tiles products,
    // each summed over the 16 slots (4 rotations), masked into 2 chain tiles.
    let mut layers = conv_pool_dense(&mut r, square());
    layers.extend([square(), dense(&mut r, 3, 5)]);
    let net = Network::new(vec![2, 8, 8], layers).unwrap();
    let tile = interleaved(4, 4, 1).with_transition(Transition::Products);
    let o = check(&net, &tile, 16, 1);
    assert_eq!(o.plan.counts_by_layer()[4].get(OpKind::CtPtMul), 5 * 4 + 5);
    // conv, x^2, products, mask, x^2, dense.
    assert_eq!(o.plan.depth(), 6);
    // Its block: one output's weights on one channel's 3 x 3 plane (one
    // pooled tile): a zero block saves a ct x pt, an add and a plaintext.
    let shape = tile.block_shape(&net, 4).unwrap();
    assert_eq!(shape, BlockShape::Tile { rows: 1, cols: 9 });
    let mut pruned = net.clone();
    zero_blocks(&mut pruned, 4, &[shape.blocks(5, 36)[1].clone()]);
    let p = check(&pruned, &tile, 16, 1);
    assert_eq!(
        diff(&o.counts, &p.counts),
        vec![(OpKind::CtPtMul, 1), (OpKind::CtCtAdd, 1)]
    );
    assert_eq!(o.setup_encodes - p.setup_encodes, 1);
    // LeNet: conv3 (1 x 1 output) is the transition.
    let net = lenet_mofhei_avg(3);
    let tile = interleaved(8, 8, 1).with_transition(Transition::Products);
    let o = check(&net, &tile, 64, 1);
    assert_eq!(o.plan.depth(), 10);
    let conv3 = o.plan.counts_by_layer()[6].clone();
    // 120 outputs x 16 input tiles, summed over the 64 slots (6 rotations).
    assert_eq!(conv3.get(OpKind::CtPtMul), 120 * 16 + 120);
    assert_eq!(conv3.get(OpKind::Rotation), 120 * 6);
    assert_eq!(conv3.get(OpKind::CtScalarMul), 0);
    let o = PlanSuite::new(ckks_factory, 1e-3).check(&net, &tile, 64, 1);
    let max = o.want.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in o.got[0].iter().zip(&o.want[0]) {
        assert!(
            (a - b).abs() <= 1e-3 * (1.0 + max),
            "lenet ckks: {a} vs {b}"
        );
    }
}

#[test]
fn lenet_interleaved_matches_plaintext() {
    // Polynomial activations (testutil) and MOFHEI's squares.
    let tile = interleaved(8, 8, 1);
    let net = crate::testutil::lenet(&mut rng(23));
    check(&net, &tile, 64, 1);
    let net = lenet_mofhei_avg(3);
    assert_eq!(
        tile.interleaved_input_shape(&net).unwrap().to_string(),
        "[1/1, ~32/8, ~32/8, 1/1]"
    );
    let o = check(&net, &tile, 128, 1);
    // conv, x^2, conv, x^2, conv, gather, x^2, dense, x^2, dense.
    assert_eq!(o.plan.depth(), 10);
    assert_eq!(o.plan.input_layout().cts.len(), 16);
    let c = o.plan.counts();
    eprintln!(
        "lenet interleaved 8x8: depth {} log_n {} rot {} scalar {} ptmul {} ctmul {} add {} plains {}",
        o.plan.depth(),
        o.plan.params().log_n,
        c.get(OpKind::Rotation),
        c.get(OpKind::CtScalarMul),
        c.get(OpKind::CtPtMul),
        c.get(OpKind::CtCtMul),
        c.get(OpKind::CtCtAdd),
        o.plan.plains().len()
    );
    // Two samples per tile.
    check(&net, &interleaved(8, 8, 2), 128, 2);
}

#[test]
fn lenet_interleaved_on_ckks() {
    let net = lenet_mofhei_avg(5);
    // N = 2^7: 64 slots, one 8x8 tile. Tolerance as `run_ckks`'s other
    // users: 1e-3 of the largest reference magnitude.
    let o = PlanSuite::new(ckks_factory, 1e-3).check(&net, &interleaved(8, 8, 1), 64, 1);
    let max = o.want.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in o.got[0].iter().zip(&o.want[0]) {
        assert!(
            (a - b).abs() <= 1e-3 * (1.0 + max),
            "lenet ckks: {a} vs {b}"
        );
    }
    assert_eq!(&o.counts, o.plan.counts());
    assert_eq!(o.setup_encodes, o.plan.plains().len() as u64);
}

#[test]
fn zero_kernels_and_filters_save_exactly_what_the_packing_says() {
    let mut r = rng(43);
    let net = Network::new(vec![2, 8, 8], conv_pool_dense(&mut r, square())).unwrap();
    let tile = interleaved(4, 4, 1);
    assert_eq!(
        tile.block_shape(&net, 0),
        Some(BlockShape::Tile { rows: 1, cols: 9 })
    );
    // The dense layer is the chain's first (even) layer: t2 x t1 tiles.
    assert_eq!(
        tile.block_shape(&net, 4),
        Some(BlockShape::Tile { rows: 4, cols: 4 })
    );
    let saves = tile.kernel_saves(&net, 0).unwrap();
    // 4 output tiles per filter x 9 weights.
    assert_eq!(saves.get(OpKind::CtScalarMul), 36);
    let dense_o = check(&net, &tile, 16, 1);
    // One kernel: every rotation it read is still read by the other filters.
    let mut one = net.clone();
    zero_kernel(&mut one, 0, 1, 0);
    let o = check(&one, &tile, 16, 1);
    let want: Vec<(OpKind, i64)> = OpKind::ALL
        .iter()
        .map(|&k| (k, saves.get(k) as i64))
        .filter(|(_, n)| *n != 0)
        .collect();
    assert_eq!(diff(&dense_o.counts, &o.counts), want);
    assert_eq!(dense_o.setup_encodes, o.setup_encodes);
    // Input channel 1 in every filter: 4 kernels' work, and the 3 rotations
    // of each of channel 1's 4 input tiles are no longer emitted.
    let mut chan = net.clone();
    for f in 0..4 {
        zero_kernel(&mut chan, 0, f, 1);
    }
    let o = check(&chan, &tile, 16, 1);
    // Its 4 input tiles are not even sent.
    assert_eq!(o.plan.input_layout().cts.len(), 4);
    let mut want: Vec<(OpKind, i64)> = want.iter().map(|&(k, n)| (k, 4 * n)).collect();
    want.push((OpKind::Rotation, 12));
    want.sort();
    let mut got = diff(&dense_o.counts, &o.counts);
    got.sort();
    assert_eq!(got, want);
    // A whole filter: its 4 output tiles are gone (their 4 x 18 scalar
    // mults, 4 rescales, 4 lazy squares, its pooled tile) and its 9 pooled
    // values are a constant the dense layer folds into its bias.
    let mut filt = net.clone();
    for c in 0..2 {
        zero_kernel(&mut filt, 0, 2, c);
    }
    let o = check(&filt, &tile, 16, 1);
    let d = diff(&dense_o.counts, &o.counts);
    let get = |k| d.iter().find(|x| x.0 == k).map(|x| x.1).unwrap_or(0);
    assert_eq!(get(OpKind::CtScalarMul), 4 * 18, "{d:?}");
    assert_eq!(get(OpKind::CtCtMul), 4, "{d:?}");
    assert!(get(OpKind::Rotation) >= 0, "{d:?}");
    assert!(get(OpKind::CtPtMul) > 0, "{d:?}");
}

#[test]
fn refuses_what_the_layout_cannot_do_before_any_ciphertext() {
    let mut r = rng(44);
    let tile = interleaved(4, 4, 1);
    let opts = CompileOptions::default();
    // Padding.
    let net = Network::new(vec![1, 8, 8], vec![conv(&mut r, 2, 1, 3, 1, 1)]).unwrap();
    let err = compile(&net, &tile, &opts).err().unwrap();
    assert!(
        matches!(err, Error::UnsupportedLayer { layer: 0, .. }),
        "{err}"
    );
    // A network that does not start with a convolution.
    let err = compile(&mlp(1), &tile, &opts).err().unwrap();
    assert!(matches!(err, Error::UnsupportedLayer { .. }), "{err}");
    // Client patches and interleaving cannot be combined: the later mode
    // replaces the earlier one.
    let both = Tile::new(4, 4, 1)
        .unwrap()
        .with_client_patches()
        .with_interleaved_conv();
    assert_eq!(both.input(), crate::packing::tile::TileInput::Interleaved);
    assert_eq!(
        both.with_client_patches(),
        Tile::new(4, 4, 1).unwrap().with_client_patches()
    );
    // Per-channel polynomial coefficients fold into per-(o, c) kernels.
    let act = |sets: Vec<Vec<f32>>| {
        Layer::Activation(Activation::Poly(crate::model::Poly { coeffs: sets }))
    };
    let per_channel = Network::new(
        vec![1, 8, 8],
        vec![
            conv(&mut r, 2, 1, 3, 1, 0),
            act(vec![vec![0.0, 0.0, 1.0], vec![0.1, 0.0, 2.0]]),
            conv(&mut r, 2, 2, 3, 1, 0),
        ],
    )
    .unwrap();
    check(&per_channel, &tile, 16, 1);
    // A strided 1 x 1 single-channel convolution folds into a selection of
    // the input pixels (no stage of its own): the next convolution's rows
    // then are not a convolution of the stored image.
    let selection = Network::new(
        vec![1, 8, 8],
        vec![conv(&mut r, 1, 1, 1, 2, 0), conv(&mut r, 2, 1, 3, 1, 0)],
    )
    .unwrap();
    let err = compile(&selection, &tile, &opts).err().unwrap();
    assert!(
        matches!(err, Error::UnsupportedLayer { layer: 1, .. }),
        "{err}"
    );
}
