//! Sweeps: prune at several targets and report, per target, the sparsity,
//! the units per layer, the metric and the packed plan's op counts.
//!
//! The op counts come from a counting function passed in
//! ([`OpCounter`]): [`compiled_op_counts`] (the compiled plan's own counts)
//! or [`batch_op_counts`], the batch packing's formula (one ct x scalar
//! mult and one add per non-zero weight and position; `docs/pruning.md`).

use serde::{Deserialize, Serialize};

use super::blocks::matrix;
use super::cull::units;
use crate::error::{Error, Result};
use crate::he::{Level, OpCounts, OpKind};
use crate::model::{Activation, Layer, Network};

/// Counts the HE operations of running a network (e.g. a compiled plan's
/// counts, or [`batch_op_counts`]).
pub type OpCounter<'a> = &'a dyn Fn(&Network) -> Result<OpCounts>;

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// The target sparsity asked for.
    pub target: f64,
    /// MOFHEI's sparsity: `1 - params after / params before`.
    pub sparsity: f64,
    /// Units per dense/convolution layer.
    pub units: Vec<usize>,
    /// The metric (accuracy, or MSE for regression) on the test set.
    pub metric: f64,
    /// HE op counts of the pruned network.
    pub ops: OpCounts,
}

/// The HE ops of a network under batch packing (one ciphertext per
/// activation, one sample per slot), by the packing table's formula:
///
/// - dense/convolution: per non-zero weight and output position, one ct x
///   scalar mult and one ct + ct add; per output activation one ct + pt add
///   (the bias);
/// - polynomial activation of degree `d` per element: `d - 1` ct x ct mults
///   (square: 1), `d - 1` scalar mults and `d - 1` adds for the lower
///   terms (none for a plain square);
/// - average pooling per output element: `k*k - 1` ct + ct adds (the divisor
///   folds into the next weights).
///
/// Zero weights cost nothing, so a pruned network's counts fall with its
/// non-zeros and a culled unit removes its activations too.
pub fn batch_op_counts(net: &Network) -> Result<OpCounts> {
    let shapes = net.shapes()?;
    let mut c = OpCounts::default();
    let l0 = Level(0);
    for (i, layer) in net.layers.iter().enumerate() {
        let out_elems: u64 = shapes[i].iter().product::<usize>() as u64;
        match layer {
            Layer::Dense(_) | Layer::Conv2d(_) => {
                let positions: u64 = match layer {
                    Layer::Conv2d(_) => shapes[i].iter().skip(1).product::<usize>() as u64,
                    _ => 1,
                };
                let nnz = matrix(layer)
                    .map(|w| w.iter().filter(|v| **v != 0.0).count())
                    .unwrap_or(0) as u64;
                c.record(OpKind::CtScalarMul, l0, nnz * positions);
                c.record(OpKind::CtCtAdd, l0, nnz * positions);
                c.record(OpKind::CtPtAdd, l0, out_elems);
            }
            Layer::Activation(Activation::Square) => {
                c.record(OpKind::CtCtMul, l0, out_elems);
            }
            Layer::Activation(Activation::Poly(p)) => {
                let d = p.degree() as u64;
                c.record(OpKind::CtCtMul, l0, out_elems * d.saturating_sub(1));
                c.record(OpKind::CtScalarMul, l0, out_elems * d.saturating_sub(1));
                c.record(OpKind::CtCtAdd, l0, out_elems * d.saturating_sub(1));
            }
            Layer::Activation(a) => {
                return Err(Error::UnsupportedLayer {
                    layer: i,
                    kind: Layer::Activation(a.clone()).kind(),
                    by: "batch op counts (polynomial activations only)",
                });
            }
            Layer::AvgPool2d(p) => {
                let taps = (p.kernel.0 * p.kernel.1) as u64;
                c.record(OpKind::CtCtAdd, l0, out_elems * taps.saturating_sub(1));
            }
            Layer::MaxPool2d(_) => {
                return Err(Error::UnsupportedLayer {
                    layer: i,
                    kind: layer.kind(),
                    by: "batch op counts",
                });
            }
            Layer::BatchNorm(_) | Layer::Flatten | Layer::Dropout { .. } => {}
        }
    }
    Ok(c)
}

/// Runs `prune_at(target)` for every target (each from the same starting
/// network, which the closure owns) and reports each result: the pruned
/// network's sparsity against `original_params`, units per layer, the
/// metric the closure returns, and `count`'s op counts.
pub fn sweep(
    original_params: usize,
    targets: &[f64],
    prune_at: &mut dyn FnMut(f64) -> Result<(Network, f64)>,
    count: OpCounter<'_>,
) -> Result<Vec<SweepPoint>> {
    let mut points = Vec::with_capacity(targets.len());
    for &target in targets {
        let (net, metric) = prune_at(target)?;
        points.push(SweepPoint {
            target,
            sparsity: super::cull::sparsity(original_params, &net),
            units: units(&net),
            metric,
            ops: count(&net)?,
        });
    }
    Ok(points)
}

/// Op counts of `net` from the compiler's plan under `packing` (the plan's
/// own counts: zero blocks emit no instruction).
pub fn compiled_op_counts(
    net: &Network,
    packing: &dyn crate::packing::Packing,
) -> Result<OpCounts> {
    let plan = crate::compile::compile(net, packing, &crate::compile::CompileOptions::default())?;
    Ok(plan.counts().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Conv2d, Dense, Pool2d, Tensor};

    #[test]
    fn sweep_is_monotone() {
        // One-shot unit pruning (no training) of a seeded LeNet, culled.
        let mut net = crate::model::zoo::lenet_mofhei(Activation::Square, 1);
        for l in net.layers.iter_mut() {
            if let Layer::MaxPool2d(p) = l {
                *l = Layer::AvgPool2d(*p);
            }
        }
        let params = net.param_count();
        let blocks = crate::prune::LayerBlocks::uniform(&net, crate::prune::BlockShape::Column);
        let opts = crate::prune::PruneOptions::default();
        let mut prune_at = |t: f64| -> Result<(Network, f64)> {
            let mut n = net.clone();
            crate::prune::prune_assign(&mut n, &blocks, &opts, t)?;
            let (c, _) = crate::prune::cull(&n)?;
            Ok((c, t))
        };
        let targets = [0.0, 0.3, 0.5, 0.7, 0.9, 0.95];
        let pts = sweep(params, &targets, &mut prune_at, &batch_op_counts).unwrap();
        assert_eq!(pts[0].sparsity, 0.0);
        assert_eq!(pts[0].units, vec![6, 16, 120, 84, 10]);
        for w in pts.windows(2) {
            assert!(w[1].sparsity > w[0].sparsity, "{:?}", w[1]);
            assert!(w[1].ops.homomorphic_total() < w[0].ops.homomorphic_total());
            assert!(w[1].units.iter().zip(&w[0].units).all(|(a, b)| a <= b));
        }
        // Units at the 90% target: 90% of each layer rounded down (the paper
        // reports 1/2/16/9).
        assert_eq!(pts[4].units, vec![1, 2, 12, 9, 10]);
    }

    #[test]
    fn batch_formula_on_dense_lenet_layer_sizes() {
        // conv0 of MOFHEI's LeNet: 28*28*6 outputs x 25 taps = 117,600 mults.
        let conv = Layer::Conv2d(Conv2d {
            weight: Tensor::new(vec![6, 1, 5, 5], vec![1.0; 150]).unwrap(),
            bias: vec![0.0; 6],
            stride: (1, 1),
            padding: (0, 0),
        });
        let net = Network::new(
            vec![1, 32, 32],
            vec![
                conv,
                Layer::Activation(Activation::Square),
                Layer::AvgPool2d(Pool2d {
                    kernel: (2, 2),
                    stride: (2, 2),
                    padding: (0, 0),
                }),
                Layer::Flatten,
                Layer::Dense(Dense {
                    weight: Tensor::zeros(vec![2, 6 * 14 * 14]),
                    bias: vec![0.0; 2],
                }),
            ],
        )
        .unwrap();
        let c = batch_op_counts(&net).unwrap();
        assert_eq!(c.get(OpKind::CtScalarMul), 117_600);
        assert_eq!(c.get(OpKind::CtCtMul), 28 * 28 * 6);
        assert_eq!(c.get(OpKind::CtCtAdd), 117_600 + 14 * 14 * 6 * 3);
        assert_eq!(c.get(OpKind::CtPtAdd), 28 * 28 * 6 + 2);
    }
}
