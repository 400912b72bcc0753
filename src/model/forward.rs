//! The plaintext forward pass (inference mode: dropout is the identity,
//! batch normalisation uses its running statistics).

use rayon::prelude::*;

use super::kernels::{self, Window};
use super::{Activation, BatchNorm, Layer, Network, Tensor};
use crate::budget::Budget;
use crate::error::{Error, Result};

/// Samples per parallel chunk of the inference forward pass.
const CHUNK: usize = 64;

impl Network {
    /// Runs the network on a batch `input` of shape `[N, ...input_shape]` and
    /// returns `[N, ...output_shape]`.
    ///
    /// Inference mode: dropout is the identity and batch normalisation uses
    /// its running statistics. Chunks of 64 samples run in parallel (rayon);
    /// the result is deterministic for a given batch.
    ///
    /// Refuses ([`Error::BudgetExceeded`]), before allocating, a batch whose
    /// activations or convolution scratch exceed the default [`Budget`];
    /// [`Network::forward_with_budget`] takes the caller's.
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        self.forward_with_budget(input, &Budget::default())
    }

    /// [`Network::forward`] with the caller's [`Budget`].
    pub fn forward_with_budget(&self, input: &Tensor, budget: &Budget) -> Result<Tensor> {
        let mut all = self.forward_impl(input, false, budget)?;
        all.pop().ok_or(Error::Internal {
            invariant: "a forward pass yields the output activation",
        })
    }

    /// Like [`Network::forward`] but returns the input followed by every
    /// layer's output (`result[i + 1]` is layer `i`'s output), e.g. to
    /// observe the range of values entering an activation. All activations
    /// together must fit the default [`Budget`].
    pub fn forward_all(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        self.forward_impl(input, true, &Budget::default())
    }

    /// The index of the largest output per sample (class predictions).
    pub fn predict(&self, input: &Tensor) -> Result<Vec<usize>> {
        let out = self.forward(input)?;
        Ok(argmax_rows(&out))
    }

    /// Checks that `input` is `[N, ...input_shape]`; returns `N`.
    pub(crate) fn check_input(&self, input: &Tensor) -> Result<usize> {
        let s = input.shape();
        if s.len() != self.input_shape.len() + 1 || s[1..] != self.input_shape[..] {
            let mut expected = vec![s.first().copied().unwrap_or(0)];
            expected.extend_from_slice(&self.input_shape);
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected,
                found: s.to_vec(),
            });
        }
        Ok(s[0])
    }

    fn forward_impl(&self, input: &Tensor, keep_all: bool, budget: &Budget) -> Result<Vec<Tensor>> {
        let shapes = self.shapes()?;
        let n = self.check_input(input)?;
        self.check_budget(n, keep_all, budget)?;
        let sample_in: usize = self.input_shape.iter().product();
        let run_chunk = |x: &[f32]| -> Vec<Vec<f32>> {
            let m = x.len().checked_div(sample_in).unwrap_or(0);
            let mut outs = Vec::new();
            let mut cur = x.to_vec();
            let mut in_shape: &[usize] = &self.input_shape;
            for (layer, out_shape) in self.layers.iter().zip(&shapes) {
                let next = layer_forward_eval(layer, in_shape, m, cur);
                if keep_all {
                    outs.push(next.clone());
                }
                cur = next;
                in_shape = out_shape;
            }
            if !keep_all {
                outs.push(cur);
            }
            outs
        };
        let chunks: Vec<Vec<Vec<f32>>> = if n <= CHUNK || sample_in == 0 {
            vec![run_chunk(input.data())]
        } else {
            input
                .data()
                .par_chunks(CHUNK * sample_in)
                .map(run_chunk)
                .collect()
        };
        // Stitch the chunks back together, per recorded tensor.
        let per_sample: Vec<&[usize]> = if keep_all {
            shapes.iter().map(Vec::as_slice).collect()
        } else {
            vec![
                shapes
                    .last()
                    .map(Vec::as_slice)
                    .unwrap_or(&self.input_shape),
            ]
        };
        let mut result = Vec::with_capacity(per_sample.len() + 1);
        if keep_all {
            result.push(input.clone());
        }
        for (t, ps) in per_sample.iter().enumerate() {
            let mut data = Vec::new();
            for c in &chunks {
                data.extend_from_slice(&c[t]);
            }
            let mut shape = vec![n];
            shape.extend_from_slice(ps);
            result.push(Tensor::new(shape, data)?);
        }
        Ok(result)
    }
}

/// Index of the maximum of each row of a `[N, ...]` tensor (the predicted
/// class of each sample of a batch of logits; the first maximum on ties).
pub fn argmax_rows(t: &Tensor) -> Vec<usize> {
    let n = t.shape().first().copied().unwrap_or(0);
    if n == 0 {
        return Vec::new();
    }
    let k = t.len() / n;
    if k == 0 {
        return vec![0; n];
    }
    t.data()
        .chunks_exact(k)
        .map(|row| {
            let mut best = 0;
            for (i, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// One layer in inference mode on `n` samples of per-sample shape `in_shape`
/// (already validated by shape inference).
pub(crate) fn layer_forward_eval(
    layer: &Layer,
    in_shape: &[usize],
    n: usize,
    mut x: Vec<f32>,
) -> Vec<f32> {
    match layer {
        Layer::Dense(d) => kernels::dense_forward(n, &x, d.weight.data(), &d.bias),
        Layer::Conv2d(c) => {
            let ws = c.weight.shape();
            let g = Window::new(in_shape, (ws[2], ws[3]), c.stride, c.padding);
            kernels::conv_forward(&g, n, &x, c.weight.data(), &c.bias)
        }
        Layer::AvgPool2d(p) => {
            let g = Window::new(in_shape, p.kernel, p.stride, p.padding);
            kernels::avgpool_forward(&g, n, &x)
        }
        Layer::MaxPool2d(p) => {
            let g = Window::new(in_shape, p.kernel, p.stride, p.padding);
            kernels::maxpool_forward(&g, n, &x, None)
        }
        Layer::BatchNorm(b) => {
            batchnorm_eval_assign(b, in_shape, &mut x);
            x
        }
        Layer::Flatten | Layer::Dropout { .. } => x,
        Layer::Activation(a) => {
            activation_assign(a, in_shape, &mut x);
            x
        }
    }
}

/// Product of the per-sample dimensions after the first (elements per channel).
pub(crate) fn inner_size(in_shape: &[usize]) -> usize {
    in_shape.iter().skip(1).product()
}

/// Batch normalisation with running statistics, in place.
pub(crate) fn batchnorm_eval_assign(b: &BatchNorm, in_shape: &[usize], x: &mut [f32]) {
    let c = b.gamma.len();
    let inner = inner_size(in_shape);
    if c == 0 || inner == 0 {
        return;
    }
    let scale: Vec<f32> = (0..c)
        .map(|i| b.gamma[i] / (b.var[i] + b.eps).sqrt())
        .collect();
    for (j, chunk) in x.chunks_exact_mut(inner).enumerate() {
        let ch = j % c;
        let (s, m, beta) = (scale[ch], b.mean[ch], b.beta[ch]);
        for v in chunk {
            *v = (*v - m) * s + beta;
        }
    }
}

/// An element-wise activation, in place.
pub(crate) fn activation_assign(a: &Activation, in_shape: &[usize], x: &mut [f32]) {
    match a {
        Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
        Activation::Sigmoid => x.iter_mut().for_each(|v| *v = kernels::sigmoid(*v)),
        Activation::Square => x.iter_mut().for_each(|v| *v *= *v),
        Activation::Poly(p) => {
            if p.coeffs.len() == 1 {
                let a = &p.coeffs[0];
                x.iter_mut().for_each(|v| *v = kernels::poly_eval(a, *v));
            } else {
                let c = p.coeffs.len();
                let inner = inner_size(in_shape).max(1);
                for (j, chunk) in x.chunks_exact_mut(inner).enumerate() {
                    let a = &p.coeffs[j % c];
                    chunk
                        .iter_mut()
                        .for_each(|v| *v = kernels::poly_eval(a, *v));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Conv2d, Dense, Poly, Pool2d};
    use super::*;

    fn t(shape: Vec<usize>, f: impl Fn(usize) -> f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape, (0..n).map(f).collect()).unwrap()
    }

    /// Direct (loop) convolution for reference.
    fn conv_ref(x: &Tensor, c: &Conv2d) -> Vec<f32> {
        let (n, ci, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let ws = c.weight.shape();
        let (o, kh, kw) = (ws[0], ws[2], ws[3]);
        let g = Window::new(&[ci, h, w], (kh, kw), c.stride, c.padding);
        let mut y = vec![0.0; n * o * g.p()];
        for s in 0..n {
            for oc in 0..o {
                for oh in 0..g.oh {
                    for ow in 0..g.ow {
                        let mut acc = c.bias[oc];
                        for cc in 0..ci {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let ih = (oh * c.stride.0 + ki) as isize - c.padding.0 as isize;
                                    let iw = (ow * c.stride.1 + kj) as isize - c.padding.1 as isize;
                                    if ih < 0 || iw < 0 || ih >= h as isize || iw >= w as isize {
                                        continue;
                                    }
                                    acc += x.data()
                                        [((s * ci + cc) * h + ih as usize) * w + iw as usize]
                                        * c.weight.data()[((oc * ci + cc) * kh + ki) * kw + kj];
                                }
                            }
                        }
                        y[((s * o + oc) * g.oh + oh) * g.ow + ow] = acc;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn conv_matches_direct_loops() {
        for &(stride, pad) in &[((1, 1), (0, 0)), ((2, 1), (1, 2)), ((3, 3), (0, 0))] {
            let conv = Conv2d {
                weight: t(vec![4, 2, 3, 3], |i| ((i * 13) % 7) as f32 * 0.1 - 0.3),
                bias: vec![0.1, -0.2, 0.3, 0.0],
                stride,
                padding: pad,
            };
            let x = t(vec![3, 2, 7, 8], |i| ((i * 31) % 11) as f32 * 0.2 - 1.0);
            let net = Network::new(vec![2, 7, 8], vec![Layer::Conv2d(conv.clone())]).unwrap();
            let y = net.forward(&x).unwrap();
            let want = conv_ref(&x, &conv);
            assert_eq!(y.len(), want.len());
            for (a, b) in y.data().iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn dense_pool_bn_activations() {
        let net = Network::new(
            vec![1, 4, 4],
            vec![
                Layer::MaxPool2d(Pool2d {
                    kernel: (2, 2),
                    stride: (2, 2),
                    padding: (0, 0),
                }),
                Layer::AvgPool2d(Pool2d {
                    kernel: (2, 2),
                    stride: (1, 1),
                    padding: (1, 1),
                }),
                Layer::Flatten,
                Layer::Dense(Dense {
                    weight: t(vec![2, 9], |i| if i == 4 || i == 9 { 1.0 } else { 0.0 }),
                    bias: vec![0.0, 1.0],
                }),
                Layer::BatchNorm(BatchNorm {
                    gamma: vec![2.0, 1.0],
                    beta: vec![0.5, 0.0],
                    mean: vec![1.0, 0.0],
                    var: vec![4.0 - 1e-5, 1.0 - 1e-5],
                    eps: 1e-5,
                    momentum: 0.1,
                }),
                Layer::Dropout { rate: 0.5 },
                Layer::Activation(Activation::Poly(Poly {
                    coeffs: vec![vec![0.0, 1.0, 1.0], vec![1.0, 0.0, 0.0]],
                })),
            ],
        )
        .unwrap();
        let x = t(vec![1, 1, 4, 4], |i| i as f32);
        let all = net.forward_all(&x).unwrap();
        // max-pool of 0..16 in a 4x4 grid: [5, 7, 13, 15]
        assert_eq!(all[1].data(), &[5.0, 7.0, 13.0, 15.0]);
        // avg-pool 2x2 stride 1 pad 1 with the pad counted: centre = mean of all 4
        assert_eq!(all[2].shape(), &[1, 1, 3, 3]);
        assert_eq!(all[2].data()[4], 10.0);
        assert_eq!(all[2].data()[0], 5.0 / 4.0);
        // dense picks element 4 (=10) and element 0 (=1.25) + 1
        assert_eq!(all[4].data(), &[10.0, 2.25]);
        // BN: 2 * (10 - 1) / 2 + 0.5 = 9.5; (2.25 - 0)/1 = 2.25
        let bn = all[5].data();
        assert!((bn[0] - 9.5).abs() < 1e-4 && (bn[1] - 2.25).abs() < 1e-4);
        // per-channel poly: x + x^2 on channel 0, constant 1 on channel 1
        let out = net.forward(&x).unwrap();
        assert!((out.data()[0] - (9.5 + 9.5 * 9.5)).abs() < 1e-2);
        assert_eq!(out.data()[1], 1.0);
        assert_eq!(net.predict(&x).unwrap(), vec![0]);
    }

    #[test]
    fn bad_input_shape_is_an_error() {
        let net = Network::new(vec![3], vec![Layer::Activation(Activation::Relu)]).unwrap();
        assert!(matches!(
            net.forward(&Tensor::zeros(vec![2, 4])),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(net.forward(&Tensor::zeros(vec![3])).is_err());
        // empty batch is fine
        assert_eq!(
            net.forward(&Tensor::zeros(vec![0, 3])).unwrap().shape(),
            &[0, 3]
        );
    }

    #[test]
    fn chunked_parallel_forward_equals_per_sample() {
        let net = Network::new(
            vec![5],
            vec![
                Layer::Dense(Dense {
                    weight: t(vec![7, 5], |i| (i as f32 * 0.3).sin()),
                    bias: vec![0.1; 7],
                }),
                Layer::Activation(Activation::Tanh),
            ],
        )
        .unwrap();
        let x = t(vec![200, 5], |i| (i as f32 * 0.01).cos());
        let y = net.forward(&x).unwrap();
        for s in [0usize, 63, 64, 199] {
            let xs = Tensor::new(vec![1, 5], x.data()[s * 5..s * 5 + 5].to_vec()).unwrap();
            let ys = net.forward(&xs).unwrap();
            for (a, b) in y.data()[s * 7..s * 7 + 7].iter().zip(ys.data()) {
                assert!((a - b).abs() < 1e-6);
            }
        }
    }
}
