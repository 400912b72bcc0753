//! HE-PEx permutation: reorder hidden neurons so that the non-zero weights
//! gather into few tiles, without changing the network's function.
//!
//! Neuron `i` of a hidden space sits at row `i` of the layer that produces
//! it (`W_l [out, in]`, its bias, and per-neuron parameters of the
//! element-wise layers after it: polynomial coefficient sets, batch-norm
//! statistics) and at column `i` of the layer that reads it (`W_{l+1}`).
//! Moving it everywhere at once leaves the function unchanged. The network
//! input and output spaces can be permuted too; the client then applies
//! [`Permutation::permute_input`] before encrypting and
//! [`Permutation::unpermute_output`] after decrypting, in plaintext.
//!
//! Each space is reordered by balanced k-means on its neurons' non-zero
//! patterns: a neuron's feature vector is its row of `W_l` and its column of
//! `W_{l+1}` as 0/1 flags (weight level: tile-level patterns carry no signal
//! while the neighbouring spaces are still scattered).
//! Clusters hold exactly `g` neurons, `g` the least common multiple of the
//! tile dimensions along that space, so a cluster is one tile band in both
//! layers. Spaces are visited in turn (a space's rows, then the next
//! layer's columns: alternating row/column passes) for a few iterations; a
//! new order is kept only if it does not increase the tile count.

use serde::{Deserialize, Serialize};

use super::blocks::{BlockShape, LayerBlocks, matrix_dims};
use crate::error::{Error, Result};
use crate::model::{Activation, Layer, Network, Tensor};

/// Options of [`permute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermuteOptions {
    /// Also reorder the network's input features (the client permutes its
    /// input in plaintext).
    pub permute_input: bool,
    /// Also reorder the network's outputs (the client un-permutes them).
    pub permute_output: bool,
    /// Passes over all spaces.
    pub iterations: usize,
    /// k-means rounds per space and pass.
    pub kmeans_rounds: usize,
}

impl Default for PermuteOptions {
    fn default() -> Self {
        PermuteOptions {
            permute_input: true,
            permute_output: true,
            iterations: 4,
            kmeans_rounds: 8,
        }
    }
}

/// The reorderings applied by [`permute`]: `spaces[s][j]` is the old index
/// of the neuron now at position `j` in space `s` (space 0 is the network
/// input, space `k` the output of the `k`-th dense layer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permutation {
    /// One permutation per space, input first, output last.
    pub spaces: Vec<Vec<usize>>,
}

impl Permutation {
    /// The identity on spaces of the given sizes.
    pub fn identity(sizes: &[usize]) -> Permutation {
        Permutation {
            spaces: sizes.iter().map(|&n| (0..n).collect()).collect(),
        }
    }

    /// The input permutation (client side, before encryption).
    pub fn input(&self) -> &[usize] {
        self.spaces.first().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The output permutation (client side, after decryption).
    pub fn output(&self) -> &[usize] {
        self.spaces.last().map(Vec::as_slice).unwrap_or(&[])
    }

    /// Reorders a batch `[N, F]` of inputs for the permuted network:
    /// `x'[n, j] = x[n, input[j]]`.
    pub fn permute_input(&self, x: &Tensor) -> Result<Tensor> {
        let p = self.input();
        let f = p.len();
        check_batch(x, f)?;
        let mut out = Vec::with_capacity(x.len());
        for row in x.data().chunks(f.max(1)) {
            out.extend(p.iter().map(|&i| row[i]));
        }
        Tensor::new(x.shape().to_vec(), out)
    }

    /// Restores the original order of a batch `[N, F]` of outputs of the
    /// permuted network: `y[n, output[j]] = y'[n, j]`.
    pub fn unpermute_output(&self, y: &Tensor) -> Result<Tensor> {
        let p = self.output();
        let f = p.len();
        check_batch(y, f)?;
        let mut out = vec![0.0; y.len()];
        for (src, dst) in y.data().chunks(f.max(1)).zip(out.chunks_mut(f.max(1))) {
            for (j, &i) in p.iter().enumerate() {
                dst[i] = src[j];
            }
        }
        Tensor::new(y.shape().to_vec(), out)
    }
}

impl Permutation {
    /// A data set in the permuted network's order: inputs permuted as by
    /// [`Permutation::permute_input`]; class labels moved to the permuted
    /// output position of their class, value targets permuted like outputs.
    /// For retraining a permuted network.
    pub fn permute_dataset(&self, data: &crate::data::Dataset) -> Result<crate::data::Dataset> {
        use crate::data::{Dataset, Targets};
        let x = self.permute_input(data.inputs())?;
        let out = self.output();
        match data.targets() {
            Targets::Classes { labels, classes } => {
                let mut pos = vec![0usize; out.len()];
                for (j, &c) in out.iter().enumerate() {
                    pos[c] = j;
                }
                let labels = labels
                    .iter()
                    .map(|&l| pos.get(l).copied().unwrap_or(l))
                    .collect();
                Dataset::classification(x, labels, *classes)
            }
            Targets::Values(t) => {
                let f = out.len();
                check_batch(t, f)?;
                let mut v = Vec::with_capacity(t.len());
                for row in t.data().chunks(f.max(1)) {
                    v.extend(out.iter().map(|&i| row[i]));
                }
                Dataset::regression(x, Tensor::new(t.shape().to_vec(), v)?)
            }
        }
    }
}

fn check_batch(x: &Tensor, f: usize) -> Result<()> {
    if x.shape().len() != 2 || x.shape()[1] != f {
        return Err(Error::ShapeMismatch {
            layer: 0,
            expected: vec![x.shape().first().copied().unwrap_or(0), f],
            found: x.shape().to_vec(),
        });
    }
    Ok(())
}

/// Indices of the dense layers; errors unless `net` is a chain of dense
/// layers with only element-wise layers between them.
fn dense_chain(net: &Network) -> Result<Vec<usize>> {
    let mut dense = Vec::new();
    for (i, l) in net.layers.iter().enumerate() {
        match l {
            Layer::Dense(_) => dense.push(i),
            Layer::Activation(_) | Layer::Dropout { .. } | Layer::BatchNorm(_) => {}
            _ => {
                return Err(Error::UnsupportedLayer {
                    layer: i,
                    kind: l.kind(),
                    by: "permute (dense chains only)",
                });
            }
        }
    }
    if net.input_shape.len() != 1 || dense.is_empty() {
        return Err(Error::UnsupportedLayer {
            layer: 0,
            kind: net.layers.first().map(Layer::kind).unwrap_or("empty"),
            by: "permute (dense chains over flat inputs only)",
        });
    }
    Ok(dense)
}

/// Space sizes of a dense chain: input, then each dense layer's outputs.
fn space_sizes(net: &Network, dense: &[usize]) -> Vec<usize> {
    let mut sizes = vec![net.input_shape.first().copied().unwrap_or(0)];
    sizes.extend(
        dense
            .iter()
            .map(|&i| matrix_dims(&net.layers[i]).map(|d| d.0).unwrap_or(0)),
    );
    sizes
}

fn permute_vec<T: Clone>(v: &[T], p: &[usize]) -> Vec<T> {
    p.iter().map(|&i| v[i].clone()).collect()
}

/// Applies `perm` to `net` (a dense chain): every layer's rows, columns and
/// per-neuron parameters move with their neuron.
pub fn apply_permutation(net: &Network, perm: &Permutation) -> Result<Network> {
    let dense = dense_chain(net)?;
    let sizes = space_sizes(net, &dense);
    if perm.spaces.len() != sizes.len()
        || perm
            .spaces
            .iter()
            .zip(&sizes)
            .any(|(p, &n)| !is_permutation(p, n))
    {
        return Err(Error::InvalidParameter {
            name: "permutation spaces",
            value: i64::try_from(perm.spaces.len()).unwrap_or(i64::MAX),
            allowed: "one permutation of each dense space",
        });
    }
    let mut out = net.clone();
    // Space index of the features flowing through each layer's output.
    let mut space = 0usize;
    for l in out.layers.iter_mut() {
        match l {
            Layer::Dense(d) => {
                let (rows, cols) = (&perm.spaces[space + 1], &perm.spaces[space]);
                let inp = cols.len();
                let w = d.weight.data().to_vec();
                let dst = d.weight.data_mut();
                for (j, &r) in rows.iter().enumerate() {
                    for (i, &c) in cols.iter().enumerate() {
                        dst[j * inp + i] = w[r * inp + c];
                    }
                }
                d.bias = permute_vec(&d.bias, rows);
                space += 1;
            }
            Layer::BatchNorm(b) => {
                let p = &perm.spaces[space];
                b.gamma = permute_vec(&b.gamma, p);
                b.beta = permute_vec(&b.beta, p);
                b.mean = permute_vec(&b.mean, p);
                b.var = permute_vec(&b.var, p);
            }
            Layer::Activation(Activation::Poly(poly)) if poly.coeffs.len() > 1 => {
                poly.coeffs = permute_vec(&poly.coeffs, &perm.spaces[space]);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn is_permutation(p: &[usize], n: usize) -> bool {
    if p.len() != n {
        return false;
    }
    let mut seen = vec![false; n];
    for &i in p {
        if i >= n || seen[i] {
            return false;
        }
        seen[i] = true;
    }
    true
}

/// Tile dimensions `(rows, cols)` of layer `i` under `blocks` (1 x 1 for
/// shapes other than tiles).
fn tile_dims(blocks: &LayerBlocks, i: usize) -> (usize, usize) {
    match blocks.get(i) {
        Some(BlockShape::Tile { rows, cols }) => (rows.max(1), cols.max(1)),
        _ => (1, 1),
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Non-zero tiles of a row-major `[out, inp]` matrix with `rt x ct` tiles.
fn tiles_of(w: &[f32], out: usize, inp: usize, rt: usize, ct: usize) -> usize {
    let per_row = inp.div_ceil(ct);
    let mut nz = vec![false; out.div_ceil(rt) * per_row];
    for r in 0..out {
        for c in 0..inp {
            if w[r * inp + c] != 0.0 {
                nz[(r / rt) * per_row + c / ct] = true;
            }
        }
    }
    nz.iter().filter(|b| **b).count()
}

/// Reorders the neurons of every space of a dense chain so its non-zero
/// weights fall into as few tiles (of the shapes in `blocks`) as the
/// clustering finds; returns the permuted network (same function) and the
/// permutation (its input and output parts are for the client).
pub fn permute(
    net: &Network,
    blocks: &LayerBlocks,
    opts: &PermuteOptions,
) -> Result<(Network, Permutation)> {
    let dense = dense_chain(net)?;
    let sizes = space_sizes(net, &dense);
    let m = dense.len();
    let mut perm = Permutation::identity(&sizes);
    // Current weights in the current order.
    let mut cur = net.clone();
    for _ in 0..opts.iterations {
        let mut improved = false;
        for s in 0..=m {
            if (s == 0 && !opts.permute_input) || (s == m && !opts.permute_output) {
                continue;
            }
            let n = sizes[s];
            // Producer W_{s-1} (rows = neurons), consumer W_s (cols = neurons).
            let producer = s.checked_sub(1).map(|k| dense[k]);
            let consumer = dense.get(s).copied();
            let mut g = 1usize;
            if let Some(p) = producer {
                let rt = tile_dims(blocks, p).0;
                g = g / gcd(g, rt) * rt;
            }
            if let Some(c) = consumer {
                let ct = tile_dims(blocks, c).1;
                g = g / gcd(g, ct) * ct;
            }
            let g = g.min(n).max(1);
            if g <= 1 || g >= n {
                continue;
            }
            let feats = features(&cur, blocks, producer, consumer, n);
            let cost = |order: &[usize]| -> usize {
                let mut t = 0;
                if let Some(p) = producer
                    && let Some((out, inp)) = matrix_dims(&cur.layers[p])
                    && let Layer::Dense(d) = &cur.layers[p]
                {
                    let (rt, ct) = tile_dims(blocks, p);
                    let mut w = vec![0.0f32; out * inp];
                    for (j, &r) in order.iter().enumerate() {
                        w[j * inp..(j + 1) * inp]
                            .copy_from_slice(&d.weight.data()[r * inp..(r + 1) * inp]);
                    }
                    t += tiles_of(&w, out, inp, rt, ct);
                }
                if let Some(c) = consumer
                    && let Some((out, inp)) = matrix_dims(&cur.layers[c])
                    && let Layer::Dense(d) = &cur.layers[c]
                {
                    let (rt, ct) = tile_dims(blocks, c);
                    let src = d.weight.data();
                    let mut w = vec![0.0f32; out * inp];
                    for r in 0..out {
                        for (j, &i) in order.iter().enumerate() {
                            w[r * inp + j] = src[r * inp + i];
                        }
                    }
                    t += tiles_of(&w, out, inp, rt, ct);
                }
                t
            };
            let identity: Vec<usize> = (0..n).collect();
            let before = cost(&identity);
            let order = balanced_kmeans(&feats, g, opts.kmeans_rounds, &cost);
            let after = cost(&order);
            if after <= before && order != identity {
                improved = true;
                let mut step = Permutation::identity(&sizes);
                step.spaces[s] = order.clone();
                cur = apply_permutation(&cur, &step)?;
                perm.spaces[s] = order.iter().map(|&i| perm.spaces[s][i]).collect();
            }
        }
        if !improved {
            break;
        }
    }
    Ok((cur, perm))
}

/// Binary non-zero patterns of the neurons of one space: its row of the
/// producer and its column of the consumer, weight by weight (tile-level
/// patterns carry no signal while the other spaces are still scattered).
fn features(
    net: &Network,
    blocks: &LayerBlocks,
    producer: Option<usize>,
    consumer: Option<usize>,
    n: usize,
) -> Vec<Vec<f32>> {
    let mut feats = vec![Vec::new(); n];
    if let Some(p) = producer
        && let (Some((out, inp)), Layer::Dense(d)) = (matrix_dims(&net.layers[p]), &net.layers[p])
    {
        let _ = blocks;
        for (r, f) in feats.iter_mut().enumerate().take(out) {
            f.extend(
                d.weight.data()[r * inp..(r + 1) * inp]
                    .iter()
                    .map(|w| f32::from(u8::from(*w != 0.0))),
            );
        }
    }
    if let Some(c) = consumer
        && let (Some((out, inp)), Layer::Dense(d)) = (matrix_dims(&net.layers[c]), &net.layers[c])
    {
        for (i, f) in feats.iter_mut().enumerate().take(inp) {
            f.extend((0..out).map(|r| f32::from(u8::from(d.weight.data()[r * inp + i] != 0.0))));
        }
    }
    feats
}

/// Balanced k-means: clusters of exactly `g` points (the last one takes the
/// remainder), starting from consecutive groups of the pattern-sorted order;
/// returns the order (cluster by cluster) with the lowest `cost` seen over
/// the rounds, the starting order included.
fn balanced_kmeans(
    feats: &[Vec<f32>],
    g: usize,
    rounds: usize,
    cost: &dyn Fn(&[usize]) -> usize,
) -> Vec<usize> {
    let n = feats.len();
    let k = n.div_ceil(g);
    let dim = feats.first().map(Vec::len).unwrap_or(0);
    let capacity: Vec<usize> = (0..k).map(|c| g.min(n - c * g)).collect();
    let mut best_order: Vec<usize> = (0..n).collect();
    let mut best_cost = cost(&best_order);
    // Start from the neurons sorted by pattern (identical patterns side by
    // side): k-means from consecutive groups of a scattered order sits at a
    // symmetric fixed point.
    let mut sorted: Vec<usize> = (0..n).collect();
    sorted.sort_by(|&a, &b| {
        feats[b]
            .iter()
            .zip(&feats[a])
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    let mut assign = vec![0usize; n];
    for (pos, &i) in sorted.iter().enumerate() {
        assign[i] = pos / g;
    }
    let c = cost(&sorted);
    if c <= best_cost {
        best_cost = c;
        best_order = sorted;
    }
    for _ in 0..rounds.max(1) {
        // Centroids of the current clusters.
        let mut cent = vec![vec![0.0f64; dim]; k];
        let mut count = vec![0usize; k];
        for (i, &c) in assign.iter().enumerate() {
            count[c] += 1;
            for (a, &f) in cent[c].iter_mut().zip(&feats[i]) {
                *a += f64::from(f);
            }
        }
        for (c, row) in cent.iter_mut().enumerate() {
            for a in row.iter_mut() {
                *a /= count[c].max(1) as f64;
            }
        }
        let dist = |i: usize, c: usize| -> f64 {
            feats[i]
                .iter()
                .zip(&cent[c])
                .map(|(&f, &m)| (f64::from(f) - m).powi(2))
                .sum()
        };
        // Balanced assignment: cheapest (point, cluster) pairs first.
        let mut pairs: Vec<(f64, usize, usize)> = (0..n)
            .flat_map(|i| (0..k).map(move |c| (i, c)))
            .map(|(i, c)| (dist(i, c), i, c))
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut left = capacity.clone();
        let mut next = vec![usize::MAX; n];
        for (_, i, c) in pairs {
            if next[i] == usize::MAX && left[c] > 0 {
                next[i] = c;
                left[c] -= 1;
            }
        }
        if next == assign {
            break;
        }
        assign = next;
        let order = order_of(&assign, k);
        let c = cost(&order);
        if c <= best_cost {
            best_cost = c;
            best_order = order;
        }
    }
    best_order
}

/// Points ordered by cluster, then by index.
fn order_of(assign: &[usize], k: usize) -> Vec<usize> {
    let mut order = Vec::with_capacity(assign.len());
    for c in 0..k {
        order.extend((0..assign.len()).filter(|&i| assign[i] == c));
    }
    order
}

/// Non-zero tiles per layer of `net` under the tile shapes in `blocks`
/// (other layers: non-zero blocks of their shape).
pub fn tile_count(net: &Network, blocks: &LayerBlocks) -> usize {
    super::tiles::nonzero_blocks(net, blocks).iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dense, Poly};

    fn dense(out: usize, inp: usize, w: Vec<f32>, b: Vec<f32>) -> Layer {
        Layer::Dense(Dense {
            weight: Tensor::new(vec![out, inp], w).unwrap(),
            bias: b,
        })
    }

    #[test]
    fn permutation_round_trip_on_client_side() {
        let p = Permutation {
            spaces: vec![vec![2, 0, 1], vec![1, 0]],
        };
        let x = Tensor::new(vec![1, 3], vec![10.0, 20.0, 30.0]).unwrap();
        assert_eq!(p.permute_input(&x).unwrap().data(), &[30.0, 10.0, 20.0]);
        let y = Tensor::new(vec![1, 2], vec![1.0, 2.0]).unwrap();
        assert_eq!(p.unpermute_output(&y).unwrap().data(), &[2.0, 1.0]);
        assert!(p.permute_input(&y).is_err());
    }

    #[test]
    fn apply_moves_rows_columns_and_parameters() {
        let net = Network::new(
            vec![2],
            vec![
                dense(
                    3,
                    2,
                    vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                    vec![0.1, 0.2, 0.3],
                ),
                Layer::Activation(Activation::Poly(Poly {
                    coeffs: vec![vec![0.0, 1.0], vec![0.0, 2.0], vec![0.0, 3.0]],
                })),
                dense(1, 3, vec![7.0, 8.0, 9.0], vec![0.5]),
            ],
        )
        .unwrap();
        let perm = Permutation {
            spaces: vec![vec![1, 0], vec![2, 0, 1], vec![0]],
        };
        let out = apply_permutation(&net, &perm).unwrap();
        let Layer::Dense(d0) = &out.layers[0] else {
            panic!()
        };
        assert_eq!(d0.weight.data(), &[6.0, 5.0, 2.0, 1.0, 4.0, 3.0]);
        assert_eq!(d0.bias, vec![0.3, 0.1, 0.2]);
        let Layer::Activation(Activation::Poly(p)) = &out.layers[1] else {
            panic!()
        };
        assert_eq!(p.coeffs[0], vec![0.0, 3.0]);
        let Layer::Dense(d1) = &out.layers[2] else {
            panic!()
        };
        assert_eq!(d1.weight.data(), &[9.0, 7.0, 8.0]);
        let bad = Permutation {
            spaces: vec![vec![0, 0], vec![0, 1, 2], vec![0]],
        };
        assert!(apply_permutation(&net, &bad).is_err());
    }

    #[test]
    fn clustering_gathers_a_scattered_block_diagonal() {
        // Hidden neurons h feed from input group h % 2 only; with 2 x 2
        // tiles, the interleaved order touches every tile, a sorted one half.
        let n = 8;
        let mut w0 = vec![0.0f32; n * n];
        for h in 0..n {
            for i in 0..n {
                if i % 2 == h % 2 {
                    w0[h * n + i] = 1.0;
                }
            }
        }
        let net = Network::new(
            vec![n],
            vec![
                dense(n, n, w0, vec![0.0; n]),
                Layer::Activation(Activation::Square),
                dense(n, n, vec![1.0; n * n], vec![0.0; n]),
            ],
        )
        .unwrap();
        let blocks = LayerBlocks::uniform(&net, BlockShape::Tile { rows: 2, cols: 2 });
        let before = tile_count(&net, &blocks);
        let (p, _) = permute(&net, &blocks, &PermuteOptions::default()).unwrap();
        let after = tile_count(&p, &blocks);
        assert_eq!(before, 16 + 16);
        assert_eq!(after, 8 + 16, "{after}");
    }
}

#[cfg(test)]
mod function_tests {
    use super::*;
    use crate::model::{BatchNorm, Poly, zoo};
    use crate::prune::{PruneOptions, prune_assign};

    #[test]
    fn permuted_network_computes_the_same_function() {
        let mut net = zoo::mlp(&[16, 24, 12, 6], Activation::Square, 5).unwrap();
        // Per-neuron parameters move with their neuron.
        net.layers[1] = Layer::Activation(Activation::Poly(Poly {
            coeffs: (0..24).map(|i| vec![0.01 * i as f32, 1.0, 0.1]).collect(),
        }));
        net.layers.insert(
            4,
            Layer::BatchNorm(BatchNorm {
                gamma: (0..12).map(|i| 1.0 + 0.1 * i as f32).collect(),
                beta: (0..12).map(|i| 0.05 * i as f32).collect(),
                mean: (0..12).map(|i| 0.01 * i as f32).collect(),
                var: vec![1.5; 12],
                eps: 1e-5,
                momentum: 0.1,
            }),
        );
        net.shapes().unwrap();
        let blocks = LayerBlocks::uniform(&net, BlockShape::Weight);
        let opts = PruneOptions {
            exempt_output: false,
            ..PruneOptions::default()
        };
        prune_assign(&mut net, &blocks, &opts, 0.8).unwrap();
        let tiles = LayerBlocks::uniform(&net, BlockShape::Tile { rows: 4, cols: 4 });
        let (p, perm) = permute(&net, &tiles, &PermuteOptions::default()).unwrap();
        assert!(tile_count(&p, &tiles) < tile_count(&net, &tiles));
        assert_ne!(perm.input(), (0..16).collect::<Vec<_>>().as_slice());
        let x = Tensor::new(
            vec![5, 16],
            (0..80)
                .map(|i| ((i * 29 % 67) as f32 / 33.0) - 1.0)
                .collect(),
        )
        .unwrap();
        let want = net.forward(&x).unwrap();
        let got = perm
            .unpermute_output(&p.forward(&perm.permute_input(&x).unwrap()).unwrap())
            .unwrap();
        for (a, b) in want.data().iter().zip(got.data()) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }
}
