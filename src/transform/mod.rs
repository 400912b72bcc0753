//! The HE-friendly transformation (MOFHEI): turn a pre-trained network into
//! one that CKKS can evaluate, losing as little accuracy as possible.
//!
//! - [`fold_batchnorm`]: batch-norm folded exactly into a neighbouring
//!   linear layer, so no batch-norm reaches HE.
//! - [`replace_max_pool`]: max-pool -> average-pool (same window, stride,
//!   padding).
//! - [`replace_activation`]: ReLU / tanh / sigmoid -> `x^2` or a trainable
//!   polynomial of degree 2..4, one coefficient set per layer or per channel,
//!   initialised as MOFHEI does (`1e-5`) or by a least-squares fit of the
//!   original activation on the inputs it actually sees ([`PolyInit`]).
//! - [`make_he_friendly`]: the schedule. MOFHEI's layer-by-layer mode
//!   replaces the non-HE-friendly layers one at a time from the last to the
//!   first; after each replacement the earlier layers are frozen and the rest
//!   trained, then everything is fine-tuned; early stopping restores the best
//!   weights, the learning rate halves on plateaus, and training stops as soon
//!   as the validation metric reaches the original's. An all-at-once mode
//!   and knowledge distillation from the original network are options.
//!
//! Design notes: `docs/transform.md`.

mod batchnorm;
mod fit;
mod he_friendly;
mod replace;

pub use batchnorm::{batchnorm_affine, fold_batchnorm};
pub use fit::least_squares;
pub use he_friendly::{HeFriendlyConfig, Mode, StepReport, TransformReport, make_he_friendly};
pub use replace::{
    PolyInit, Replacement, activation_fn, is_he_friendly, replace_activation, replace_max_pool,
};

use crate::error::Result;
use crate::model::{Layer, Network, Tensor};

/// Per-channel samples of the inputs each layer receives, from a forward
/// pass over `inputs`: `observed[layer][channel]` (at most `per_channel`
/// values each, evenly strided).
pub fn observe_inputs(
    net: &Network,
    inputs: &Tensor,
    per_channel: usize,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let all = net.forward_all(inputs)?;
    let mut out = Vec::with_capacity(net.layers.len());
    for t in all.iter().take(net.layers.len()) {
        let shape = t.shape();
        let n = shape.first().copied().unwrap_or(0);
        let channels = shape.get(1).copied().unwrap_or(1);
        let inner: usize = shape.iter().skip(2).product::<usize>().max(1);
        let data = t.data();
        let mut per: Vec<Vec<f32>> = vec![Vec::new(); channels];
        let total = n * inner;
        let stride = (total / per_channel.max(1)).max(1);
        for (c, values) in per.iter_mut().enumerate() {
            let mut k = 0;
            while k < total {
                let (s, i) = (k / inner, k % inner);
                values.push(data[(s * channels + c) * inner + i]);
                k += stride;
            }
        }
        out.push(per);
    }
    Ok(out)
}

/// Replaces every non-HE-friendly layer at once (no training): batch-norm
/// folded, max-pool -> average-pool, activations -> `replacement`. With
/// [`PolyInit::LeastSquares`], `calibration` inputs are run through the
/// network to observe each activation's input range.
pub fn replace_all(
    net: &Network,
    replacement: Replacement,
    calibration: Option<&Tensor>,
) -> Result<Network> {
    let mut net = fold_batchnorm(net)?;
    let observed = match calibration {
        Some(x) => Some(observe_inputs(&net, x, 4096)?),
        None => None,
    };
    for i in 0..net.layers.len() {
        replace_layer(
            &mut net,
            i,
            replacement,
            observed.as_ref().map(|o| o[i].as_slice()),
        )?;
    }
    Ok(net)
}

/// Replaces layer `index` in place if it is not HE-friendly.
pub(crate) fn replace_layer(
    net: &mut Network,
    index: usize,
    replacement: Replacement,
    observed: Option<&[Vec<f32>]>,
) -> Result<()> {
    let new = match &net.layers[index] {
        Layer::MaxPool2d(_) => replace_max_pool(&net.layers[index]),
        Layer::Activation(a) if !a.is_polynomial() => {
            Layer::Activation(replace_activation(a, replacement, observed.unwrap_or(&[]))?)
        }
        _ => return Ok(()),
    };
    net.layers[index] = new;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, BatchNorm, Conv2d, Dense, Pool2d};

    fn t(shape: Vec<usize>, seed: u32) -> Tensor {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0)
                    - 1.0
            })
            .collect();
        Tensor::new(shape, data).unwrap()
    }

    fn bn(c: usize, seed: u32) -> Layer {
        let v = |k: u32| {
            (0..c)
                .map(|i| 0.5 + ((i as u32 * 7 + k + seed) % 10) as f32 / 10.0)
                .collect::<Vec<_>>()
        };
        Layer::BatchNorm(BatchNorm {
            gamma: v(1),
            beta: v(2),
            mean: v(3),
            var: v(4),
            eps: 1e-5,
            momentum: 0.1,
        })
    }

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        assert_eq!(a.shape(), b.shape());
        for (x, y) in a.data().iter().zip(b.data()) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn batchnorm_folds_exactly_backward_and_forward() {
        let conv = |o, i, pad| {
            Layer::Conv2d(Conv2d {
                weight: t(vec![o, i, 3, 3], o as u32),
                bias: vec![0.1; o],
                stride: (1, 1),
                padding: (pad, pad),
            })
        };
        let net = Network::new(
            vec![2, 8, 8],
            vec![
                bn(2, 0), // leading BN: folds forward into an unpadded conv
                conv(3, 2, 0),
                bn(3, 1), // folds backward into the conv
                Layer::Activation(Activation::Relu),
                bn(3, 2), // after an activation: folds forward across flatten into dense
                Layer::Flatten,
                Layer::Dense(Dense {
                    weight: t(vec![4, 108], 5),
                    bias: vec![0.2; 4],
                }),
                bn(4, 3),
            ],
        )
        .unwrap();
        let folded = fold_batchnorm(&net).unwrap();
        assert!(
            folded
                .layers
                .iter()
                .all(|l| !matches!(l, Layer::BatchNorm(_)))
        );
        assert_eq!(folded.layers.len(), 4);
        let x = t(vec![5, 2, 8, 8], 9);
        close(
            &folded.forward(&x).unwrap(),
            &net.forward(&x).unwrap(),
            1e-4,
        );
    }

    #[test]
    fn batchnorm_before_padded_conv_is_refused() {
        let net = Network::new(
            vec![1, 4, 4],
            vec![
                bn(1, 0),
                Layer::Conv2d(Conv2d {
                    weight: t(vec![1, 1, 3, 3], 1),
                    bias: vec![0.0],
                    stride: (1, 1),
                    padding: (1, 1),
                }),
            ],
        )
        .unwrap();
        let err = fold_batchnorm(&net).unwrap_err();
        assert!(
            matches!(
                err,
                crate::Error::UnsupportedLayer {
                    layer: 0,
                    kind: "batchnorm",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn replace_all_leaves_only_he_friendly_layers() {
        let pool = Pool2d {
            kernel: (2, 2),
            stride: (2, 2),
            padding: (0, 0),
        };
        let net = Network::new(
            vec![1, 8, 8],
            vec![
                Layer::Conv2d(Conv2d {
                    weight: t(vec![2, 1, 3, 3], 3),
                    bias: vec![0.0; 2],
                    stride: (1, 1),
                    padding: (1, 1),
                }),
                bn(2, 4),
                Layer::Activation(Activation::Relu),
                Layer::MaxPool2d(pool),
                Layer::Flatten,
                Layer::Dense(Dense {
                    weight: t(vec![3, 32], 6),
                    bias: vec![0.0; 3],
                }),
                Layer::Activation(Activation::Tanh),
            ],
        )
        .unwrap();
        let x = t(vec![16, 1, 8, 8], 2);
        for init in [PolyInit::Mofhei, PolyInit::LeastSquares] {
            let r = Replacement::Poly {
                degree: 2,
                init,
                per_channel: true,
            };
            let he = replace_all(&net, r, Some(&x)).unwrap();
            assert!(
                he.layers.iter().all(is_he_friendly),
                "{:?}",
                he.layers.iter().map(Layer::kind).collect::<Vec<_>>()
            );
            assert!(matches!(he.layers[2], Layer::AvgPool2d(p) if p == pool));
            let Layer::Activation(Activation::Poly(p)) = &he.layers[1] else {
                panic!("poly expected")
            };
            assert_eq!(p.coeffs.len(), 2, "one set per channel");
            assert_eq!(p.degree(), 2);
        }
        let sq = replace_all(&net, Replacement::Square, None).unwrap();
        assert!(matches!(
            sq.layers[1],
            Layer::Activation(Activation::Square)
        ));
        assert!(
            Replacement::Poly {
                degree: 5,
                init: PolyInit::Mofhei,
                per_channel: false
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn least_squares_init_tracks_relu_on_observed_range() {
        let net = Network::new(vec![4], vec![Layer::Activation(Activation::Relu)]).unwrap();
        let x = t(vec![256, 4], 11);
        let r = Replacement::Poly {
            degree: 2,
            init: PolyInit::LeastSquares,
            per_channel: false,
        };
        let he = replace_all(&net, r, Some(&x)).unwrap();
        let (a, b) = (he.forward(&x).unwrap(), net.forward(&x).unwrap());
        let mse: f32 = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f32>()
            / a.len() as f32;
        assert!(mse < 0.01, "mse {mse}");
    }
}
