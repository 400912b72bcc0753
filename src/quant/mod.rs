//! Integer quantisation of a [`Network`] for integer HE schemes (BFV).
//!
//! BFV computes exactly on integers modulo a plaintext modulus `t` and cannot
//! divide, so a quantised network never re-quantises: the input is quantised
//! once, every later value is an exact integer at a growing scale, and `t`
//! must hold the largest of them. This module
//!
//! - quantises the input symmetrically (`input_bits`, one scale) and the
//!   weights symmetrically per layer or per output channel (`weight_bits`),
//!   folding the incoming per-channel scales into the weights so that mixed
//!   scales never meet in a sum;
//! - turns average pooling into integer sum pooling (the divisor goes into
//!   the scale) and evaluates the square activation on integers;
//! - computes, per layer, the worst-case absolute value of its integers
//!   (`sum |w| * bound_in + |b|`, `bound^2`, `k * bound`) and from that the
//!   smallest plaintext modulus that cannot overflow; a given `t` that is too
//!   small is refused with [`Error::AccumulatorOverflow`] naming the layer.
//!
//! Supported layers: `Dense`, `Conv2d`, `AvgPool2d`, `Flatten`, `Dropout`
//! (identity) and `Activation::Square`. Others (ReLU, max pooling, batch
//! norm, real polynomials) are [`Error::UnsupportedLayer`]: run the
//! HE-friendly transform and fold batch norm first. To run a quantised
//! network encrypted, compile it with [`crate::compile::compile_quantized`]
//! and run the plan with [`crate::eval`]. Design notes: `docs/bfv.md`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::he::primes::smallest_simd_plaintext_modulus;
use crate::model::{Activation, Layer, Network};

const BY: &str = "quant";

/// How finely weight scales are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    /// One scale per layer.
    PerLayer,
    /// One scale per output channel (dense row / conv filter).
    PerChannel,
}

/// Quantisation settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantConfig {
    /// Bits of the signed weight integers (2..=32): weights lie in
    /// `[-(2^(b-1) - 1), 2^(b-1) - 1]`.
    pub weight_bits: u32,
    /// Bits of the signed input integers (2..=32).
    pub input_bits: u32,
    /// The largest input magnitude expected (calibration); larger inputs are clipped.
    pub input_range: f32,
    /// Per-layer or per-channel weight scales.
    pub granularity: Granularity,
}

impl QuantConfig {
    /// 8-bit weights and inputs, per-channel scales, inputs in `[-range, range]`.
    pub fn int8(input_range: f32) -> QuantConfig {
        QuantConfig {
            weight_bits: 8,
            input_bits: 8,
            input_range,
            granularity: Granularity::PerChannel,
        }
    }
}

/// One layer of a [`QuantizedNetwork`], on integers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QLayer {
    /// `y = W x + b` with integer `W` (`[out, in]`, row-major) and `b`.
    Dense {
        /// Integer weights `[out, in]`.
        weight: Vec<i64>,
        /// Integer bias `[out]` (at the output scale).
        bias: Vec<i64>,
        /// Number of outputs.
        out: usize,
        /// Number of inputs.
        inp: usize,
    },
    /// Integer convolution, weights OIHW.
    Conv2d {
        /// Integer weights `[o, i, kh, kw]`.
        weight: Vec<i64>,
        /// Integer bias `[o]`.
        bias: Vec<i64>,
        /// `[o, i, kh, kw]`.
        shape: [usize; 4],
        /// Stride `(sh, sw)`.
        stride: (usize, usize),
        /// Zero padding `(ph, pw)`.
        padding: (usize, usize),
    },
    /// Sum over each window (average pooling with the divisor in the scale).
    SumPool2d {
        /// Window `(kh, kw)`.
        kernel: (usize, usize),
        /// Stride `(sh, sw)`.
        stride: (usize, usize),
        /// Zero padding `(ph, pw)`.
        padding: (usize, usize),
    },
    /// `x -> x^2`.
    Square,
    /// No change of values (flatten, dropout).
    Identity,
}

/// A network quantised to integers: the integer layers, the scale of every
/// value and the worst-case bound of every layer's integers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedNetwork {
    input_shape: Vec<usize>,
    input_scale: f64,
    input_bound: u128,
    layers: Vec<QLayer>,
    /// Per-sample shape after each layer.
    shapes: Vec<Vec<usize>>,
    /// Per channel (first per-sample dimension; per feature for 1-d) scale after each layer.
    scales: Vec<Vec<f64>>,
    /// Per channel worst-case absolute value after each layer.
    bounds: Vec<Vec<u128>>,
}

fn max_int(bits: u32) -> f64 {
    ((1u64 << (bits - 1)) - 1) as f64
}

fn check_bits(name: &'static str, bits: u32) -> Result<()> {
    if (2..=32).contains(&bits) {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name,
            value: i64::from(bits),
            allowed: "2..=32",
        })
    }
}

/// Integer from a real value, refusing what does not fit an `i64`.
fn to_int(layer: usize, x: f64) -> Result<i64> {
    let r = x.round();
    if r.is_finite() && r.abs() < 9.0e18 {
        Ok(r as i64)
    } else {
        Err(Error::InvalidLayer {
            layer,
            what: "quantised value (does not fit 64 bits)",
            value: if r.is_finite() { r as i64 } else { 0 },
        })
    }
}

/// Channels of a per-sample shape: the first dimension.
fn channels(shape: &[usize]) -> usize {
    shape.first().copied().unwrap_or(1)
}

/// Quantises the rows of `v` (`rows x cols`, real weights with the input
/// scales already folded in): returns integer weights and one scale per row.
fn quantise_rows(
    v: &[f64],
    rows: usize,
    cols: usize,
    bits: u32,
    granularity: Granularity,
    layer: usize,
) -> Result<(Vec<i64>, Vec<f64>)> {
    let top = max_int(bits);
    let row_max: Vec<f64> = (0..rows)
        .map(|r| {
            v[r * cols..(r + 1) * cols]
                .iter()
                .fold(0.0f64, |m, x| m.max(x.abs()))
        })
        .collect();
    let global = row_max.iter().fold(0.0f64, |m, x| m.max(*x));
    let scale_for = |m: f64| {
        if m > 0.0 {
            top / m
        } else if global > 0.0 {
            top / global
        } else {
            1.0
        }
    };
    let scales: Vec<f64> = match granularity {
        Granularity::PerLayer => vec![scale_for(global); rows],
        Granularity::PerChannel => row_max.iter().map(|&m| scale_for(m)).collect(),
    };
    let mut w = Vec::with_capacity(v.len());
    for r in 0..rows {
        for x in &v[r * cols..(r + 1) * cols] {
            w.push(to_int(layer, x * scales[r])?);
        }
    }
    Ok((w, scales))
}

/// Bounds stay below 2^126 so every integer (and a sum of two) fits an `i128`.
const MAX_BOUND: u128 = 1 << 126;

fn add_bound(layer: usize, a: u128, b: u128) -> Result<u128> {
    below_max_bound(layer, a.checked_add(b))
}

fn mul_bound(layer: usize, a: u128, b: u128) -> Result<u128> {
    below_max_bound(layer, a.checked_mul(b))
}

/// A bound that did not overflow and stays below [`MAX_BOUND`], or an
/// [`Error::AccumulatorOverflow`] at `layer`.
fn below_max_bound(layer: usize, v: Option<u128>) -> Result<u128> {
    v.filter(|&v| v < MAX_BOUND)
        .ok_or(Error::AccumulatorOverflow {
            layer,
            bound: u128::MAX,
            plaintext_modulus: 0,
        })
}

impl QuantizedNetwork {
    /// Quantises `net` (see the module docs for what is supported).
    pub fn quantize(net: &Network, cfg: &QuantConfig) -> Result<QuantizedNetwork> {
        check_bits("weight_bits", cfg.weight_bits)?;
        check_bits("input_bits", cfg.input_bits)?;
        if !(cfg.input_range.is_finite() && cfg.input_range > 0.0) {
            return Err(Error::InvalidValue {
                name: "input_range",
                value: f64::from(cfg.input_range),
                allowed: "finite and > 0",
            });
        }
        let shapes = net.shapes()?;
        let input_top = max_int(cfg.input_bits);
        let input_scale = input_top / f64::from(cfg.input_range);
        let input_bound = input_top as u128;
        let mut in_shape = net.input_shape.clone();
        let mut scale: Vec<f64> = vec![input_scale; channels(&in_shape)];
        let mut bound: Vec<u128> = vec![input_bound; channels(&in_shape)];
        let mut layers = Vec::with_capacity(net.layers.len());
        let mut scales = Vec::with_capacity(net.layers.len());
        let mut bounds = Vec::with_capacity(net.layers.len());
        for (i, layer) in net.layers.iter().enumerate() {
            let out_shape = &shapes[i];
            let (q, s, b) = match layer {
                Layer::Dense(d) => {
                    let (out, inp) = (d.weight.shape()[0], d.weight.shape()[1]);
                    // Per-feature input scales: the channel scale of each feature.
                    let per_feature = expand(&scale, inp);
                    let bound_in = expand(&bound, inp);
                    let v: Vec<f64> = d
                        .weight
                        .data()
                        .iter()
                        .enumerate()
                        .map(|(k, &w)| f64::from(w) / per_feature[k % inp])
                        .collect();
                    let (w, s) = quantise_rows(&v, out, inp, cfg.weight_bits, cfg.granularity, i)?;
                    let bias = d
                        .bias
                        .iter()
                        .zip(&s)
                        .map(|(&b, &so)| to_int(i, f64::from(b) * so))
                        .collect::<Result<Vec<_>>>()?;
                    let mut b = Vec::with_capacity(out);
                    for o in 0..out {
                        let mut acc = bias[o].unsigned_abs() as u128;
                        for k in 0..inp {
                            let t =
                                mul_bound(i, w[o * inp + k].unsigned_abs() as u128, bound_in[k])?;
                            acc = add_bound(i, acc, t)?;
                        }
                        b.push(acc);
                    }
                    (
                        QLayer::Dense {
                            weight: w,
                            bias,
                            out,
                            inp,
                        },
                        s,
                        b,
                    )
                }
                Layer::Conv2d(c) => {
                    let ws = c.weight.shape();
                    let shape = [ws[0], ws[1], ws[2], ws[3]];
                    let per_filter = ws[1] * ws[2] * ws[3];
                    let taps = ws[2] * ws[3];
                    let v: Vec<f64> = c
                        .weight
                        .data()
                        .iter()
                        .enumerate()
                        .map(|(k, &w)| f64::from(w) / scale[(k % per_filter) / taps])
                        .collect();
                    let (w, s) =
                        quantise_rows(&v, ws[0], per_filter, cfg.weight_bits, cfg.granularity, i)?;
                    let bias = c
                        .bias
                        .iter()
                        .zip(&s)
                        .map(|(&b, &so)| to_int(i, f64::from(b) * so))
                        .collect::<Result<Vec<_>>>()?;
                    let mut b = Vec::with_capacity(ws[0]);
                    for o in 0..ws[0] {
                        let mut acc = bias[o].unsigned_abs() as u128;
                        for k in 0..per_filter {
                            let t = mul_bound(
                                i,
                                w[o * per_filter + k].unsigned_abs() as u128,
                                bound[k / taps],
                            )?;
                            acc = add_bound(i, acc, t)?;
                        }
                        b.push(acc);
                    }
                    let q = QLayer::Conv2d {
                        weight: w,
                        bias,
                        shape,
                        stride: c.stride,
                        padding: c.padding,
                    };
                    (q, s, b)
                }
                Layer::AvgPool2d(p) => {
                    let k = (p.kernel.0 * p.kernel.1) as u128;
                    let s = scale.iter().map(|x| x * k as f64).collect();
                    let b = bound
                        .iter()
                        .map(|&x| mul_bound(i, x, k))
                        .collect::<Result<Vec<_>>>()?;
                    let q = QLayer::SumPool2d {
                        kernel: p.kernel,
                        stride: p.stride,
                        padding: p.padding,
                    };
                    (q, s, b)
                }
                Layer::Activation(Activation::Square) => {
                    let s = scale.iter().map(|x| x * x).collect();
                    let b = bound
                        .iter()
                        .map(|&x| mul_bound(i, x, x))
                        .collect::<Result<Vec<_>>>()?;
                    (QLayer::Square, s, b)
                }
                Layer::Flatten => {
                    let n: usize = in_shape.iter().product();
                    (QLayer::Identity, expand(&scale, n), expand(&bound, n))
                }
                Layer::Dropout { .. } => (QLayer::Identity, scale.clone(), bound.clone()),
                other => {
                    return Err(Error::UnsupportedLayer {
                        layer: i,
                        kind: other.kind(),
                        by: BY,
                    });
                }
            };
            layers.push(q);
            scales.push(s.clone());
            bounds.push(b.clone());
            scale = s;
            bound = b;
            in_shape = out_shape.clone();
        }
        Ok(QuantizedNetwork {
            input_shape: net.input_shape.clone(),
            input_scale,
            input_bound,
            layers,
            shapes,
            scales,
            bounds,
        })
    }

    /// The integer layers, one per layer of the source network.
    pub fn layers(&self) -> &[QLayer] {
        &self.layers
    }

    /// The input scale: an input `x` is encoded as `round(x * scale)`.
    pub fn input_scale(&self) -> f64 {
        self.input_scale
    }

    /// The largest input integer magnitude (inputs are clipped to it).
    pub fn input_bound(&self) -> u128 {
        self.input_bound
    }

    /// Per-sample input shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Per-sample shape after layer `i`.
    pub fn shape(&self, layer: usize) -> Option<&[usize]> {
        self.shapes.get(layer).map(Vec::as_slice)
    }

    /// The scale of every output element (row-major, per sample): real
    /// output = integer / scale.
    pub fn output_scales(&self) -> Vec<f64> {
        let n: usize = self
            .shapes
            .last()
            .map(|s| s.iter().product())
            .unwrap_or_else(|| self.input_shape.iter().product());
        match self.scales.last() {
            Some(s) => expand(s, n),
            None => vec![self.input_scale; n],
        }
    }

    /// The scale of each output channel of layer `i` (real = integer / scale).
    pub fn scales(&self, layer: usize) -> Option<&[f64]> {
        self.scales.get(layer).map(Vec::as_slice)
    }

    /// The worst-case absolute value of layer `i`'s integers, per channel.
    pub fn channel_bounds(&self, layer: usize) -> Option<&[u128]> {
        self.bounds.get(layer).map(Vec::as_slice)
    }

    /// The worst-case absolute value of each layer's integers (accumulators
    /// included), for inputs within the calibrated range.
    pub fn accumulator_bounds(&self) -> Vec<u128> {
        self.bounds
            .iter()
            .map(|b| b.iter().copied().max().unwrap_or(0))
            .collect()
    }

    /// Checks that plaintext modulus `t` holds every layer's integers
    /// (`t > 2 * bound`, the centred range); the error names the first layer
    /// that could overflow.
    pub fn check_plaintext_modulus(&self, t: u64) -> Result<()> {
        check_bounds(self.input_bound, &self.accumulator_bounds(), t)
    }

    /// The smallest plaintext modulus that cannot overflow: `2 * max bound + 1`
    /// (an error naming the layer if that exceeds 2^61, the largest `t` BFV takes).
    pub fn min_plaintext_modulus(&self) -> Result<u64> {
        min_modulus(self.input_bound, &self.accumulator_bounds())
    }

    /// The smallest prime plaintext modulus with SIMD batching at ring degree
    /// `degree` (`t = 1 mod 2N`) that cannot overflow.
    pub fn simd_plaintext_modulus(&self, degree: usize) -> Result<u64> {
        let min = self.min_plaintext_modulus()?;
        smallest_simd_plaintext_modulus(min, degree).ok_or(Error::InvalidParameter {
            name: "degree",
            value: degree as i64,
            allowed: "a power of two admitting a prime t = 1 mod 2N below 2^61",
        })
    }

    /// Errors unless `len` is the number of elements of one sample.
    fn check_input_len(&self, len: usize) -> Result<()> {
        let n: usize = self.input_shape.iter().product();
        if len != n {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: self.input_shape.clone(),
                found: vec![len],
            });
        }
        Ok(())
    }

    /// One sample's input (row-major, per-sample shape) as integers: `round(x * scale)`,
    /// clipped to the input range.
    pub fn quantize_input(&self, x: &[f32]) -> Result<Vec<i64>> {
        self.check_input_len(x.len())?;
        let top = self.input_bound as f64;
        Ok(x.iter()
            .map(|&v| (f64::from(v) * self.input_scale).round().clamp(-top, top) as i64)
            .collect())
    }

    /// The exact integer forward pass of one sample (what BFV computes, with
    /// no reduction modulo `t` as long as the bounds hold).
    pub fn forward(&self, input: &[i64]) -> Result<Vec<i64>> {
        self.check_input_len(input.len())?;
        let mut x: Vec<i128> = input.iter().map(|&v| i128::from(v)).collect();
        let mut shape = self.input_shape.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = match layer {
                QLayer::Dense {
                    weight,
                    bias,
                    out,
                    inp,
                } => (0..*out)
                    .map(|o| {
                        let row = &weight[o * inp..(o + 1) * inp];
                        i128::from(bias[o])
                            + row
                                .iter()
                                .zip(&x)
                                .map(|(&w, &v)| i128::from(w) * v)
                                .sum::<i128>()
                    })
                    .collect(),
                QLayer::Conv2d {
                    weight,
                    bias,
                    shape: ws,
                    stride,
                    padding,
                } => conv(
                    &x,
                    &shape,
                    weight,
                    bias,
                    *ws,
                    *stride,
                    *padding,
                    &self.shapes[i],
                ),
                QLayer::SumPool2d {
                    kernel,
                    stride,
                    padding,
                } => sum_pool(&x, &shape, *kernel, *stride, *padding, &self.shapes[i]),
                QLayer::Square => x.iter().map(|v| v * v).collect(),
                QLayer::Identity => x,
            };
            shape = self.shapes[i].clone();
        }
        x.into_iter()
            .map(|v| {
                i64::try_from(v).map_err(|_| Error::AccumulatorOverflow {
                    layer: self.layers.len().saturating_sub(1),
                    bound: v.unsigned_abs(),
                    plaintext_modulus: 0,
                })
            })
            .collect()
    }

    /// The network's real outputs from the last layer's integers.
    pub fn dequantize_output(&self, out: &[i64]) -> Vec<f32> {
        let scales = self.scales.last().map(Vec::as_slice).unwrap_or(&[]);
        let per_feature = expand(scales, out.len());
        out.iter()
            .zip(per_feature)
            .map(|(&v, s)| (v as f64 / s) as f32)
            .collect()
    }
}

/// Checks that plaintext modulus `t` holds the input integers (bound
/// `input_bound`) and every layer's (`bounds[i]`): `t > 2 * bound`. The error
/// names the first layer that could overflow (the input counts as layer 0).
pub(crate) fn check_bounds(input_bound: u128, bounds: &[u128], t: u64) -> Result<()> {
    let inputs = std::iter::once(input_bound);
    for (layer, bound) in inputs.chain(bounds.iter().copied()).enumerate() {
        if bound.checked_mul(2).is_none_or(|b2| b2 >= u128::from(t)) {
            return Err(Error::AccumulatorOverflow {
                // Index 0 is the input; layers follow.
                layer: layer.saturating_sub(1),
                bound,
                plaintext_modulus: t,
            });
        }
    }
    Ok(())
}

/// `2 * max bound + 1`, the smallest plaintext modulus [`check_bounds`]
/// accepts (an error naming the layer if that reaches 2^61).
pub(crate) fn min_modulus(input_bound: u128, bounds: &[u128]) -> Result<u64> {
    let mut max = input_bound;
    let mut at = 0;
    for (i, &b) in bounds.iter().enumerate() {
        if b > max {
            max = b;
            at = i;
        }
    }
    let t = max.checked_mul(2).and_then(|x| x.checked_add(1));
    match t {
        Some(t) if t < (1u128 << 61) => Ok(t as u64),
        _ => Err(Error::AccumulatorOverflow {
            layer: at,
            bound: max,
            plaintext_modulus: (1u64 << 61) - 1,
        }),
    }
}

/// Per-channel values repeated over the `n / channels` elements of each channel.
fn expand<T: Copy>(per_channel: &[T], n: usize) -> Vec<T> {
    let c = per_channel.len().max(1);
    let each = n / c;
    if per_channel.len() == n || each == 0 {
        return per_channel.to_vec();
    }
    per_channel
        .iter()
        .flat_map(|&v| std::iter::repeat_n(v, each))
        .collect()
}

/// The taps `(u, k, y, x)` of a sliding window at output position `(r, c)`:
/// kernel offset `(u, k)` reads input row `y`, column `x` of an `h x w`
/// plane; taps in the padding are skipped.
pub(crate) fn window_taps(
    (r, c): (usize, usize),
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (ph, pw): (usize, usize),
    (h, w): (usize, usize),
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..kh)
        .filter_map(move |u| {
            (r * sh + u)
                .checked_sub(ph)
                .filter(|&y| y < h)
                .map(|y| (u, y))
        })
        .flat_map(move |(u, y)| {
            (0..kw).filter_map(move |k| {
                (c * sw + k)
                    .checked_sub(pw)
                    .filter(|&x| x < w)
                    .map(|x| (u, k, y, x))
            })
        })
}

#[expect(clippy::too_many_arguments, reason = "a conv layer's full geometry")]
fn conv(
    x: &[i128],
    in_shape: &[usize],
    weight: &[i64],
    bias: &[i64],
    [oc, ic, kh, kw]: [usize; 4],
    (sh, sw): (usize, usize),
    (ph, pw): (usize, usize),
    out_shape: &[usize],
) -> Vec<i128> {
    let (h, w) = (in_shape[1], in_shape[2]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let mut y = vec![0i128; oc * oh * ow];
    for o in 0..oc {
        for r in 0..oh {
            for c in 0..ow {
                let mut acc = i128::from(bias[o]);
                for i in 0..ic {
                    for (u, v, yy, xx) in window_taps((r, c), (kh, kw), (sh, sw), (ph, pw), (h, w))
                    {
                        acc += i128::from(weight[((o * ic + i) * kh + u) * kw + v])
                            * x[(i * h + yy) * w + xx];
                    }
                }
                y[(o * oh + r) * ow + c] = acc;
            }
        }
    }
    y
}

fn sum_pool(
    x: &[i128],
    in_shape: &[usize],
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (ph, pw): (usize, usize),
    out_shape: &[usize],
) -> Vec<i128> {
    let (ch, h, w) = (in_shape[0], in_shape[1], in_shape[2]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let mut y = vec![0i128; ch * oh * ow];
    for k in 0..ch {
        for r in 0..oh {
            for c in 0..ow {
                let mut acc = 0i128;
                for (_, _, yy, xx) in window_taps((r, c), (kh, kw), (sh, sw), (ph, pw), (h, w)) {
                    acc += x[(k * h + yy) * w + xx];
                }
                y[(k * oh + r) * ow + c] = acc;
            }
        }
    }
    y
}

#[cfg(test)]
mod tests;
