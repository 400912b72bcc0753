//! Batch-norm folding: remove every `BatchNorm` layer by folding its affine
//! map `y = s * x + t` (per channel, `s = gamma / sqrt(var + eps)`,
//! `t = beta - s * mean`) into a neighbouring linear layer, exactly.
//!
//! - Backward, into the preceding `Dense`/`Conv2d` (possibly across a
//!   `Dropout`): output unit `o` gets `W[o] *= s[o]`, `b[o] = s[o] * b[o] + t[o]`.
//! - Forward, into the next `Dense` (possibly across `Flatten`/`Dropout`) or
//!   the next `Conv2d` without padding: input unit `i` gets `W[:, i] *= s[i]`,
//!   and the bias absorbs `W[:, i] * t[i]`. With zero padding a forward fold
//!   would be wrong at the borders (padded zeros are not shifted), so it is
//!   refused.
//!
//! A batch-norm that has neither neighbour is an error naming the layer.

use crate::error::{Error, Result};
use crate::model::{BatchNorm, Layer, Network};

/// The per-channel affine map `(s, t)` of a batch-norm layer.
pub fn batchnorm_affine(bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
    (0..bn.gamma.len())
        .map(|c| bn.affine(c))
        .map(|(g, h)| (g as f32, h as f32))
        .unzip()
}

/// A network equal in function to `net` with no `BatchNorm` layer left.
pub fn fold_batchnorm(net: &Network) -> Result<Network> {
    let mut layers = net.layers.clone();
    // Indices refer to the original network, for errors.
    let mut origin: Vec<usize> = (0..layers.len()).collect();
    while let Some(pos) = layers.iter().position(|l| matches!(l, Layer::BatchNorm(_))) {
        let Layer::BatchNorm(bn) = layers[pos].clone() else {
            continue;
        };
        let (s, t) = batchnorm_affine(&bn);
        if let Some(prev) = previous_linear(&layers, pos) {
            fold_into_outputs(&mut layers[prev], &s, &t);
        } else if let Some(next) = next_linear(&layers, pos) {
            let shape = shape_before(net, &layers, pos)?;
            fold_into_inputs(&mut layers[next], &s, &t, &shape).map_err(|_| {
                Error::UnsupportedLayer {
                    layer: origin[pos],
                    kind: "batchnorm",
                    by: "batch-norm folding (next conv has padding)",
                }
            })?;
        } else {
            return Err(Error::UnsupportedLayer {
                layer: origin[pos],
                kind: "batchnorm",
                by: "batch-norm folding (no adjacent dense/conv layer)",
            });
        }
        layers.remove(pos);
        origin.remove(pos);
    }
    Network::new(net.input_shape.clone(), layers)
}

fn previous_linear(layers: &[Layer], pos: usize) -> Option<usize> {
    let mut i = pos;
    while i > 0 {
        i -= 1;
        match &layers[i] {
            Layer::Dense(_) | Layer::Conv2d(_) => return Some(i),
            Layer::Dropout { .. } => continue,
            _ => return None,
        }
    }
    None
}

fn next_linear(layers: &[Layer], pos: usize) -> Option<usize> {
    for (i, l) in layers.iter().enumerate().skip(pos + 1) {
        match l {
            Layer::Dense(_) | Layer::Conv2d(_) => return Some(i),
            Layer::Dropout { .. } | Layer::Flatten => continue,
            _ => return None,
        }
    }
    None
}

/// Per-sample input shape of layer `pos` in the partially folded `layers`.
fn shape_before(net: &Network, layers: &[Layer], pos: usize) -> Result<Vec<usize>> {
    let partial = Network {
        input_shape: net.input_shape.clone(),
        layers: layers[..pos].to_vec(),
    };
    partial.output_shape()
}

/// `W[o] *= s[o]`, `b[o] = s[o] b[o] + t[o]` for every output unit `o`.
fn fold_into_outputs(layer: &mut Layer, s: &[f32], t: &[f32]) {
    let (weight, bias) = match layer {
        Layer::Dense(d) => (&mut d.weight, &mut d.bias),
        Layer::Conv2d(c) => (&mut c.weight, &mut c.bias),
        _ => return,
    };
    let per_unit = weight.len() / bias.len().max(1);
    for (o, row) in weight.data_mut().chunks_mut(per_unit).enumerate() {
        row.iter_mut().for_each(|w| *w *= s[o]);
        bias[o] = s[o] * bias[o] + t[o];
    }
}

/// Folds `x -> s x + t` (per channel of `shape`, the next layer's input before
/// any flatten) into the inputs of a dense layer or an unpadded convolution.
fn fold_into_inputs(
    layer: &mut Layer,
    s: &[f32],
    t: &[f32],
    shape: &[usize],
) -> std::result::Result<(), ()> {
    let channels = s.len();
    let per_channel: usize = shape.iter().skip(1).product::<usize>().max(1);
    match layer {
        Layer::Dense(d) => {
            let inputs = d.weight.shape()[1];
            let outputs = d.weight.shape()[0];
            if inputs != channels * per_channel {
                return Err(());
            }
            let w = d.weight.data_mut();
            for o in 0..outputs {
                let mut shift = 0.0f32;
                for i in 0..inputs {
                    let c = i / per_channel;
                    shift += w[o * inputs + i] * t[c];
                    w[o * inputs + i] *= s[c];
                }
                d.bias[o] += shift;
            }
            Ok(())
        }
        Layer::Conv2d(conv) => {
            if conv.padding != (0, 0) {
                return Err(());
            }
            let ws = conv.weight.shape().to_vec();
            let (outs, ins, k) = (ws[0], ws[1], ws[2] * ws[3]);
            if ins != channels {
                return Err(());
            }
            let w = conv.weight.data_mut();
            for o in 0..outs {
                let mut shift = 0.0f32;
                for i in 0..ins {
                    for j in 0..k {
                        let idx = (o * ins + i) * k + j;
                        shift += w[idx] * t[i];
                        w[idx] *= s[i];
                    }
                }
                conv.bias[o] += shift;
            }
            Ok(())
        }
        _ => Err(()),
    }
}
