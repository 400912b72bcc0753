//! Culling (MOFHEI): physically remove neurons and filters that no longer
//! matter, with the matching inputs of the next layer.
//!
//! A unit (a row of `W [out, in]`: a neuron or a filter) is dead when
//!
//! - all its incoming weights are zero: its output is the constant
//!   `bias` everywhere. The constant is pushed through the layers up to the
//!   next dense/convolution layer (activation, batch norm, pooling,
//!   flatten) and its contribution `sum_k W_next[o, k] * c_k` is folded into
//!   the next layer's bias, so the function is unchanged (exactly, unless a
//!   zero-padded convolution or pooling sees the constant at its borders;
//!   the report says so);
//! - or all its outgoing weights (its columns in the next layer) are zero:
//!   it contributes nothing.
//!
//! Removing a filter removes its channel everywhere downstream: its
//! per-channel batch-norm and polynomial parameters and, after a flatten,
//! all its `H * W` features of the next dense layer. Culling repeats until
//! nothing changes (removing inputs can leave a unit of the next layer with
//! no weights). Output units are never culled and every layer keeps at least
//! one unit.

use serde::{Deserialize, Serialize};

use super::blocks::{matrix_dims, weighted_layers};
use crate::error::{Error, Result};
use crate::model::{Activation, Layer, Network};

/// What [`cull`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CullReport {
    /// Units (neurons/filters) per dense/convolution layer before culling.
    pub units_before: Vec<usize>,
    /// Units per dense/convolution layer after culling (MOFHEI's "units").
    pub units_after: Vec<usize>,
    /// Parameters before ([`Network::param_count`]).
    pub params_before: usize,
    /// Parameters after.
    pub params_after: usize,
    /// Whether every folded constant was exact (no zero padding saw it).
    pub exact: bool,
}

impl CullReport {
    /// MOFHEI's sparsity: `1 - params after / params before`.
    pub fn sparsity(&self) -> f64 {
        if self.params_before == 0 {
            0.0
        } else {
            1.0 - self.params_after as f64 / self.params_before as f64
        }
    }
}

/// MOFHEI's sparsity of `net` against the parameter count of the original.
pub(crate) fn sparsity(original_params: usize, net: &Network) -> f64 {
    if original_params == 0 {
        0.0
    } else {
        1.0 - net.param_count() as f64 / original_params as f64
    }
}

/// Units (output rows) of every dense/convolution layer, first to last.
pub fn units(net: &Network) -> Vec<usize> {
    weighted_layers(net)
        .into_iter()
        .filter_map(|i| matrix_dims(&net.layers[i]).map(|d| d.0))
        .collect()
}

/// Removes every dead unit of `net` (see the module docs) and returns the
/// smaller network with its report.
pub fn cull(net: &Network) -> Result<(Network, CullReport)> {
    let mut out = net.clone();
    let units_before = units(net);
    let mut exact = true;
    loop {
        let mut changed = false;
        let wl = weighted_layers(&out);
        for pair in wl.windows(2) {
            let (i, j) = (pair[0], pair[1]);
            let (removed, ex) = cull_between(&mut out, i, j)?;
            exact &= ex;
            changed |= removed;
        }
        if !changed {
            break;
        }
    }
    out.shapes()?;
    let report = CullReport {
        units_before,
        units_after: units(&out),
        params_before: net.param_count(),
        params_after: out.param_count(),
        exact,
    };
    Ok((out, report))
}

/// Value of an activation at `x` with coefficient set `set`.
fn activate(a: &Activation, set: usize, x: f32) -> f32 {
    match a {
        Activation::Relu => x.max(0.0),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Square => x * x,
        Activation::Poly(p) => {
            let c = p.coeffs.get(set).or_else(|| p.coeffs.first());
            c.map(|c| c.iter().rev().fold(0.0f32, |acc, &a| acc * x + a))
                .unwrap_or(0.0)
        }
    }
}

/// Culls the dead units of layer `i` whose consumer is layer `j`; returns
/// whether anything was removed and whether every fold was exact.
fn cull_between(net: &mut Network, i: usize, j: usize) -> Result<(bool, bool)> {
    let shapes = net.shapes()?;
    let Some((n_units, inp_i)) = matrix_dims(&net.layers[i]) else {
        return Ok((false, true));
    };
    let Some((out_j, inp_j)) = matrix_dims(&net.layers[j]) else {
        return Ok((false, true));
    };
    // Where the path between i and j flattens, and the features per unit.
    let mut flatten_at = None;
    let mut padded = false;
    for k in i + 1..j {
        match &net.layers[k] {
            Layer::Flatten => flatten_at = Some(k),
            Layer::AvgPool2d(p) | Layer::MaxPool2d(p) => padded |= p.padding != (0, 0),
            Layer::Activation(_) | Layer::BatchNorm(_) | Layer::Dropout { .. } => {}
            other => {
                return Err(Error::UnsupportedLayer {
                    layer: k,
                    kind: other.kind(),
                    by: "cull",
                });
            }
        }
    }
    if let Layer::Conv2d(c) = &net.layers[j] {
        padded |= c.padding != (0, 0);
    }
    // Features of j's input per unit of i, and taps per feature.
    let per_unit = match flatten_at {
        Some(f) => shapes[f - 1].iter().skip(1).product::<usize>().max(1),
        None => 1,
    };
    let taps = match &net.layers[j] {
        Layer::Conv2d(c) => c.weight.shape().iter().skip(2).product::<usize>().max(1),
        _ => 1,
    };
    if n_units * per_unit * taps != inp_j {
        return Err(Error::ShapeMismatch {
            layer: j,
            expected: vec![out_j, n_units * per_unit * taps],
            found: vec![out_j, inp_j],
        });
    }
    let (w_i, bias_i) = weight_bias(&net.layers[i]);
    let w_j = weight_bias(&net.layers[j]).0.to_vec();
    let cols = |u: usize| u * per_unit * taps..(u + 1) * per_unit * taps;
    let dead_in: Vec<bool> = (0..n_units)
        .map(|u| w_i[u * inp_i..(u + 1) * inp_i].iter().all(|w| *w == 0.0))
        .collect();
    let dead_out: Vec<bool> = (0..n_units)
        .map(|u| (0..out_j).all(|o| w_j[o * inp_j..][cols(u)].iter().all(|w| *w == 0.0)))
        .collect();
    let bias_i = bias_i.to_vec();
    let mut remove: Vec<usize> = (0..n_units)
        .filter(|&u| dead_in[u] || dead_out[u])
        .collect();
    if remove.len() == n_units {
        remove.pop();
    }
    if remove.is_empty() {
        return Ok((false, true));
    }
    // Fold the constants of units with no incoming weights.
    let mut fold = vec![0.0f64; out_j];
    let mut exact = true;
    for &u in &remove {
        if !dead_in[u] || dead_out[u] {
            continue;
        }
        exact &= !padded;
        let mut c = vec![bias_i[u]];
        for k in i + 1..j {
            match &net.layers[k] {
                Layer::Activation(a) => {
                    let sets = match a {
                        Activation::Poly(p) => p.coeffs.len(),
                        _ => 1,
                    };
                    for (t, v) in c.iter_mut().enumerate() {
                        let set = if sets > 1 {
                            if flatten_at.is_some_and(|f| k > f) {
                                u * per_unit + t
                            } else {
                                u
                            }
                        } else {
                            0
                        };
                        *v = activate(a, set, *v);
                    }
                }
                Layer::BatchNorm(b) => {
                    for (t, v) in c.iter_mut().enumerate() {
                        let ch = if flatten_at.is_some_and(|f| k > f) {
                            u * per_unit + t
                        } else {
                            u
                        };
                        let (g, be, m, var) = (
                            b.gamma.get(ch).copied().unwrap_or(1.0),
                            b.beta.get(ch).copied().unwrap_or(0.0),
                            b.mean.get(ch).copied().unwrap_or(0.0),
                            b.var.get(ch).copied().unwrap_or(1.0),
                        );
                        *v = g * (*v - m) / (var + b.eps).sqrt() + be;
                    }
                }
                Layer::Flatten => c = vec![c[0]; per_unit],
                _ => {}
            }
        }
        for (o, f) in fold.iter_mut().enumerate() {
            let row = &w_j[o * inp_j..][cols(u)];
            for (t, w) in row.iter().enumerate() {
                let ct = c.get(t / taps).copied().unwrap_or(c[0]);
                *f += f64::from(*w) * f64::from(ct);
            }
        }
    }
    // Rebuild layer i, the per-channel layers, and layer j.
    let keep: Vec<usize> = (0..n_units).filter(|u| !remove.contains(u)).collect();
    remove_rows(&mut net.layers[i], &keep, inp_i)?;
    for k in i + 1..j {
        let after_flatten = flatten_at.is_some_and(|f| k > f);
        let idx: Vec<usize> = if after_flatten {
            keep.iter()
                .flat_map(|&u| u * per_unit..(u + 1) * per_unit)
                .collect()
        } else {
            keep.clone()
        };
        match &mut net.layers[k] {
            Layer::BatchNorm(b) => {
                b.gamma = pick(&b.gamma, &idx);
                b.beta = pick(&b.beta, &idx);
                b.mean = pick(&b.mean, &idx);
                b.var = pick(&b.var, &idx);
            }
            Layer::Activation(Activation::Poly(p)) if p.coeffs.len() > 1 => {
                p.coeffs = pick(&p.coeffs, &idx);
            }
            _ => {}
        }
    }
    let col_idx: Vec<usize> = keep.iter().flat_map(|&u| cols(u)).collect();
    match &mut net.layers[j] {
        Layer::Dense(d) => {
            let mut w = Vec::with_capacity(out_j * col_idx.len());
            for o in 0..out_j {
                w.extend(col_idx.iter().map(|&c| w_j[o * inp_j + c]));
            }
            d.weight = crate::model::Tensor::new(vec![out_j, col_idx.len()], w)?;
            for (b, f) in d.bias.iter_mut().zip(&fold) {
                *b = (f64::from(*b) + f) as f32;
            }
        }
        Layer::Conv2d(cv) => {
            let s = cv.weight.shape().to_vec();
            let mut w = Vec::with_capacity(out_j * col_idx.len());
            for o in 0..out_j {
                w.extend(col_idx.iter().map(|&c| w_j[o * inp_j + c]));
            }
            cv.weight = crate::model::Tensor::new(vec![out_j, keep.len(), s[2], s[3]], w)?;
            for (b, f) in cv.bias.iter_mut().zip(&fold) {
                *b = (f64::from(*b) + f) as f32;
            }
        }
        _ => {}
    }
    Ok((true, exact))
}

fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().filter_map(|&i| v.get(i).cloned()).collect()
}

fn weight_bias(layer: &Layer) -> (&[f32], &[f32]) {
    match layer {
        Layer::Dense(d) => (d.weight.data(), &d.bias),
        Layer::Conv2d(c) => (c.weight.data(), &c.bias),
        _ => (&[], &[]),
    }
}

fn remove_rows(layer: &mut Layer, keep: &[usize], inp: usize) -> Result<()> {
    let (weight, bias) = match layer {
        Layer::Dense(d) => (&mut d.weight, &mut d.bias),
        Layer::Conv2d(c) => (&mut c.weight, &mut c.bias),
        _ => return Ok(()),
    };
    let mut shape = weight.shape().to_vec();
    let w = weight.data();
    let data: Vec<f32> = keep
        .iter()
        .flat_map(|&u| w[u * inp..(u + 1) * inp].iter().copied())
        .collect();
    shape[0] = keep.len();
    *weight = crate::model::Tensor::new(shape, data)?;
    *bias = pick(bias, keep);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Conv2d, Dense, Poly, Pool2d, Tensor};

    fn lenet_like() -> Network {
        let mut net = Network::new(
            vec![1, 12, 12],
            vec![
                Layer::Conv2d(Conv2d {
                    weight: Tensor::zeros(vec![4, 1, 3, 3]),
                    bias: vec![0.3, -0.2, 0.5, 0.1],
                    stride: (1, 1),
                    padding: (0, 0),
                }),
                Layer::Activation(Activation::Poly(Poly {
                    coeffs: vec![vec![0.1, 0.5, 0.25]],
                })),
                Layer::AvgPool2d(Pool2d {
                    kernel: (2, 2),
                    stride: (2, 2),
                    padding: (0, 0),
                }),
                Layer::Conv2d(Conv2d {
                    weight: Tensor::zeros(vec![3, 4, 3, 3]),
                    bias: vec![0.0, 0.1, -0.1],
                    stride: (1, 1),
                    padding: (0, 0),
                }),
                Layer::Activation(Activation::Square),
                Layer::Flatten,
                Layer::Dense(Dense {
                    weight: Tensor::zeros(vec![5, 3 * 3 * 3]),
                    bias: vec![0.0; 5],
                }),
                Layer::Activation(Activation::Square),
                Layer::Dense(Dense {
                    weight: Tensor::zeros(vec![2, 5]),
                    bias: vec![0.2, -0.2],
                }),
            ],
        )
        .unwrap();
        net.init_assign(7);
        // Prune: filter 1 of conv0 (incoming zero), filter 2 of conv1,
        // neuron 3 of dense0 (outgoing zero: column 3 of the last layer).
        let zero_rows = |l: &mut Layer, rows: &[usize]| {
            let (out, inp) = matrix_dims(l).unwrap();
            let w = super::super::blocks::matrix_mut(l).unwrap();
            for &r in rows {
                assert!(r < out);
                w[r * inp..(r + 1) * inp].iter_mut().for_each(|v| *v = 0.0);
            }
        };
        zero_rows(&mut net.layers[0], &[1]);
        zero_rows(&mut net.layers[3], &[2]);
        if let Layer::Dense(d) = &mut net.layers[8] {
            d.weight.data_mut()[3] = 0.0;
            d.weight.data_mut()[5 + 3] = 0.0;
        }
        net
    }

    #[test]
    fn culling_preserves_the_function() {
        let net = lenet_like();
        let (culled, report) = cull(&net).unwrap();
        assert_eq!(report.units_before, vec![4, 3, 5, 2]);
        assert_eq!(report.units_after, vec![3, 2, 4, 2]);
        assert!(report.exact);
        assert!(report.sparsity() > 0.0);
        assert_eq!(report.params_after, culled.param_count());
        let x = Tensor::new(
            vec![3, 1, 12, 12],
            (0..3 * 144)
                .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                .collect(),
        )
        .unwrap();
        let a = net.forward(&x).unwrap();
        let b = culled.forward(&x).unwrap();
        for (p, q) in a.data().iter().zip(b.data()) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{p} vs {q}");
        }
    }

    #[test]
    fn nothing_dead_nothing_culled() {
        let mut net = lenet_like();
        net.init_assign(3);
        let (culled, report) = cull(&net).unwrap();
        assert_eq!(culled, net);
        assert_eq!(report.sparsity(), 0.0);
    }
}
