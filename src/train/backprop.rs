//! Forward (training mode, with caches) and backward passes for every layer.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::model::forward::{activation_assign, batchnorm_eval_assign, inner_size};
use crate::model::kernels::{self, Mat, Window};
use crate::model::{Activation, Layer, Network};

/// Gradients of the loss with respect to every parameter, laid out like the
/// network's parameters: `layers[i][j]` is parameter `j` of layer `i`
/// (dense/conv: 0 = weight, 1 = bias; batch norm: 0 = gamma, 1 = beta;
/// polynomial: one entry per coefficient set; other layers: none).
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// Per layer, per parameter, the gradient (same length as the parameter).
    pub layers: Vec<Vec<Vec<f32>>>,
}

impl Gradients {
    /// The weight gradient of a dense or convolution layer.
    pub fn weight(&self, layer: usize) -> Option<&[f32]> {
        self.layers
            .get(layer)
            .and_then(|p| p.first())
            .map(Vec::as_slice)
    }

    /// The bias gradient of a dense or convolution layer (beta for batch norm).
    pub fn bias(&self, layer: usize) -> Option<&[f32]> {
        self.layers
            .get(layer)
            .and_then(|p| p.get(1))
            .map(Vec::as_slice)
    }
}

/// Mutable views of a layer's parameters, in [`Gradients`] order.
pub(crate) fn params_mut(layer: &mut Layer) -> Vec<&mut [f32]> {
    match layer {
        Layer::Dense(d) => vec![d.weight.data_mut(), &mut d.bias[..]],
        Layer::Conv2d(c) => vec![c.weight.data_mut(), &mut c.bias[..]],
        Layer::BatchNorm(b) => vec![&mut b.gamma[..], &mut b.beta[..]],
        Layer::Activation(Activation::Poly(p)) => p.coeffs.iter_mut().map(|c| &mut c[..]).collect(),
        _ => Vec::new(),
    }
}

/// Lengths of a layer's parameters, in [`Gradients`] order.
pub(crate) fn param_lens(layer: &Layer) -> Vec<usize> {
    match layer {
        Layer::Dense(d) => vec![d.weight.len(), d.bias.len()],
        Layer::Conv2d(c) => vec![c.weight.len(), c.bias.len()],
        Layer::BatchNorm(b) => vec![b.gamma.len(), b.beta.len()],
        Layer::Activation(Activation::Poly(p)) => p.coeffs.iter().map(Vec::len).collect(),
        _ => Vec::new(),
    }
}

/// What the backward pass of one layer needs.
pub(crate) enum Cache {
    None,
    Dense {
        x: Vec<f32>,
    },
    /// The layer's input (the im2col matrix is rebuilt from it).
    Conv {
        x: Vec<f32>,
    },
    MaxPool {
        argmax: Vec<u32>,
    },
    BatchNorm {
        xhat: Vec<f32>,
        inv_std: Vec<f32>,
        batch_stats: Option<BnStats>,
    },
    Dropout {
        mask: Vec<f32>,
    },
    /// The activation's input (ReLU, square, polynomial) or output (tanh,
    /// sigmoid).
    Act {
        v: Vec<f32>,
    },
}

/// Batch statistics of a batch-norm layer, for the running averages.
pub(crate) struct BnStats {
    pub mean: Vec<f32>,
    pub var_unbiased: Vec<f32>,
}

/// Per-layer training mode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerMode {
    /// Keep a cache for the backward pass.
    pub cache: bool,
    /// Batch norm uses batch statistics (else running statistics).
    pub bn_batch: bool,
}

/// Forward pass in training mode over `n` samples. Returns the output and
/// one cache per layer.
pub(crate) fn forward_train(
    net: &Network,
    shapes: &[Vec<usize>],
    n: usize,
    x: &[f32],
    modes: &[LayerMode],
    rng: &mut ChaCha8Rng,
) -> (Vec<f32>, Vec<Cache>) {
    let mut cur = x.to_vec();
    let mut caches = Vec::with_capacity(net.layers.len());
    let mut in_shape: &[usize] = &net.input_shape;
    for ((layer, out_shape), mode) in net.layers.iter().zip(shapes).zip(modes) {
        let (y, cache) = layer_forward_train(layer, in_shape, n, cur, *mode, rng);
        caches.push(if mode.cache { cache } else { Cache::None });
        cur = y;
        in_shape = out_shape;
    }
    (cur, caches)
}

fn layer_forward_train(
    layer: &Layer,
    in_shape: &[usize],
    n: usize,
    mut x: Vec<f32>,
    mode: LayerMode,
    rng: &mut ChaCha8Rng,
) -> (Vec<f32>, Cache) {
    match layer {
        Layer::Dense(d) => {
            let y = kernels::dense_forward(n, &x, d.weight.data(), &d.bias);
            (y, Cache::Dense { x })
        }
        Layer::Conv2d(c) => {
            let ws = c.weight.shape();
            let g = Window::new(in_shape, (ws[2], ws[3]), c.stride, c.padding);
            let y = kernels::conv_forward(&g, n, &x, c.weight.data(), &c.bias);
            (y, Cache::Conv { x })
        }
        Layer::AvgPool2d(p) => {
            let g = Window::new(in_shape, p.kernel, p.stride, p.padding);
            (kernels::avgpool_forward(&g, n, &x), Cache::None)
        }
        Layer::MaxPool2d(p) => {
            let g = Window::new(in_shape, p.kernel, p.stride, p.padding);
            let mut argmax = Vec::new();
            let y = kernels::maxpool_forward(&g, n, &x, Some(&mut argmax));
            (y, Cache::MaxPool { argmax })
        }
        Layer::BatchNorm(b) => {
            let c = b.gamma.len();
            let inner = inner_size(in_shape);
            let m = n * inner;
            if !mode.bn_batch || m < 2 {
                let inv_std: Vec<f32> = b.var.iter().map(|v| 1.0 / (v + b.eps).sqrt()).collect();
                let mut xhat = Vec::new();
                if mode.cache {
                    xhat = x.clone();
                    for (j, chunk) in xhat.chunks_exact_mut(inner.max(1)).enumerate() {
                        let ch = j % c.max(1);
                        chunk
                            .iter_mut()
                            .for_each(|v| *v = (*v - b.mean[ch]) * inv_std[ch]);
                    }
                }
                batchnorm_eval_assign(b, in_shape, &mut x);
                return (
                    x,
                    Cache::BatchNorm {
                        xhat,
                        inv_std,
                        batch_stats: None,
                    },
                );
            }
            let mut mean = vec![0.0f64; c];
            let mut sq = vec![0.0f64; c];
            for (j, chunk) in x.chunks_exact(inner.max(1)).enumerate() {
                let ch = j % c;
                for v in chunk {
                    mean[ch] += f64::from(*v);
                }
            }
            mean.iter_mut().for_each(|v| *v /= m as f64);
            for (j, chunk) in x.chunks_exact(inner.max(1)).enumerate() {
                let ch = j % c;
                for v in chunk {
                    let d = f64::from(*v) - mean[ch];
                    sq[ch] += d * d;
                }
            }
            let var: Vec<f64> = sq.iter().map(|s| s / m as f64).collect();
            let inv_std: Vec<f32> = var
                .iter()
                .map(|v| (1.0 / (v + f64::from(b.eps)).sqrt()) as f32)
                .collect();
            let mut xhat = vec![0.0f32; x.len()];
            for (j, (chunk, hchunk)) in x
                .chunks_exact_mut(inner.max(1))
                .zip(xhat.chunks_exact_mut(inner.max(1)))
                .enumerate()
            {
                let ch = j % c;
                let (mu, is) = (mean[ch] as f32, inv_std[ch]);
                for (v, h) in chunk.iter_mut().zip(hchunk) {
                    *h = (*v - mu) * is;
                    *v = b.gamma[ch] * *h + b.beta[ch];
                }
            }
            let stats = BnStats {
                mean: mean.iter().map(|v| *v as f32).collect(),
                var_unbiased: sq.iter().map(|s| (s / (m - 1) as f64) as f32).collect(),
            };
            (
                x,
                Cache::BatchNorm {
                    xhat,
                    inv_std,
                    batch_stats: Some(stats),
                },
            )
        }
        Layer::Flatten => (x, Cache::None),
        Layer::Dropout { rate } => {
            if *rate <= 0.0 {
                return (x, Cache::Dropout { mask: Vec::new() });
            }
            let keep = 1.0 / (1.0 - rate);
            let mask: Vec<f32> = (0..x.len())
                .map(|_| {
                    if rng.random::<f32>() < *rate {
                        0.0
                    } else {
                        keep
                    }
                })
                .collect();
            x.iter_mut().zip(&mask).for_each(|(v, m)| *v *= m);
            (x, Cache::Dropout { mask })
        }
        Layer::Activation(Activation::Relu) if mode.cache => {
            // a new output; the input itself becomes the cache (no copy)
            let y = x.iter().map(|v| v.max(0.0)).collect();
            (y, Cache::Act { v: x })
        }
        Layer::Activation(a) => {
            let keep_output = matches!(a, Activation::Tanh | Activation::Sigmoid);
            if keep_output {
                activation_assign(a, in_shape, &mut x);
                let v = if mode.cache { x.clone() } else { Vec::new() };
                (x, Cache::Act { v })
            } else {
                let v = if mode.cache { x.clone() } else { Vec::new() };
                activation_assign(a, in_shape, &mut x);
                (x, Cache::Act { v })
            }
        }
    }
}

/// Backward pass of one layer: accumulates parameter gradients into
/// `grads` (already sized by [`param_lens`]) when `want_params`, and
/// returns the input gradient when `want_dx`.
#[expect(clippy::too_many_arguments, reason = "internal kernel entry point")]
pub(crate) fn layer_backward(
    layer: &Layer,
    in_shape: &[usize],
    n: usize,
    dy: Vec<f32>,
    cache: &Cache,
    grads: &mut [Vec<f32>],
    want_params: bool,
    want_dx: bool,
) -> Option<Vec<f32>> {
    match (layer, cache) {
        (Layer::Dense(d), Cache::Dense { x }) => {
            let out = d.bias.len();
            let inp = d.weight.len().checked_div(out).unwrap_or(0);
            if want_params {
                kernels::gemm(Mat::t(&dy, n, out), Mat::n(x, n, inp), 0.0, &mut grads[0]);
                let db = &mut grads[1];
                db.fill(0.0);
                for row in dy.chunks_exact(out.max(1)) {
                    db.iter_mut().zip(row).for_each(|(b, g)| *b += *g);
                }
            }
            want_dx.then(|| {
                let mut dx = vec![0.0f32; n * inp];
                kernels::gemm(
                    Mat::n(&dy, n, out),
                    Mat::n(d.weight.data(), out, inp),
                    0.0,
                    &mut dx,
                );
                dx
            })
        }
        (Layer::Conv2d(c), Cache::Conv { x }) => {
            let ws = c.weight.shape();
            let g = Window::new(in_shape, (ws[2], ws[3]), c.stride, c.padding);
            let params = if want_params {
                match grads {
                    [w, b, ..] => Some((&mut w[..], &mut b[..])),
                    _ => None,
                }
            } else {
                None
            };
            kernels::conv_backward(&g, n, x, c.weight.data(), &dy, params, want_dx)
        }
        (Layer::AvgPool2d(pl), _) => want_dx.then(|| {
            let g = Window::new(in_shape, pl.kernel, pl.stride, pl.padding);
            kernels::avgpool_backward(&g, n, &dy)
        }),
        (Layer::MaxPool2d(pl), Cache::MaxPool { argmax }) => want_dx.then(|| {
            let g = Window::new(in_shape, pl.kernel, pl.stride, pl.padding);
            let (in_len, per) = (g.in_len(), g.c * g.p());
            let mut dx = vec![0.0f32; n * in_len];
            if per == 0 || in_len == 0 {
                return dx;
            }
            // per sample: the arg-max indices are relative to the sample
            for ((dxs, am), dys) in dx
                .chunks_exact_mut(in_len)
                .zip(argmax.chunks_exact(per))
                .zip(dy.chunks_exact(per))
            {
                for (a, d) in am.iter().zip(dys) {
                    if let Some(v) = dxs.get_mut(*a as usize) {
                        *v += *d;
                    }
                }
            }
            dx
        }),
        (
            Layer::BatchNorm(b),
            Cache::BatchNorm {
                xhat,
                inv_std,
                batch_stats,
            },
        ) => {
            let c = b.gamma.len();
            let inner = inner_size(in_shape).max(1);
            if batch_stats.is_none() {
                // running statistics: an affine map per channel
                if want_params {
                    grads[0].fill(0.0);
                    grads[1].fill(0.0);
                }
                let mut dx = dy;
                for (j, chunk) in dx.chunks_exact_mut(inner).enumerate() {
                    let ch = j % c;
                    if want_params {
                        grads[1][ch] += chunk.iter().sum::<f32>();
                        if let Some(h) = xhat.get(j * inner..(j + 1) * inner) {
                            grads[0][ch] += chunk.iter().zip(h).map(|(d, h)| d * h).sum::<f32>();
                        }
                    }
                    let s = b.gamma[ch] * inv_std[ch];
                    chunk.iter_mut().for_each(|v| *v *= s);
                }
                return want_dx.then_some(dx);
            }
            let mut sum_dy = vec![0.0f64; c];
            let mut sum_dy_xhat = vec![0.0f64; c];
            for (j, (dch, hch)) in dy
                .chunks_exact(inner)
                .zip(xhat.chunks_exact(inner))
                .enumerate()
            {
                let ch = j % c;
                for (d, h) in dch.iter().zip(hch) {
                    sum_dy[ch] += f64::from(*d);
                    sum_dy_xhat[ch] += f64::from(*d) * f64::from(*h);
                }
            }
            if want_params {
                for ch in 0..c {
                    grads[0][ch] = sum_dy_xhat[ch] as f32;
                    grads[1][ch] = sum_dy[ch] as f32;
                }
            }
            want_dx.then(|| {
                let m = (n * inner) as f64;
                let mut dx = vec![0.0f32; dy.len()];
                for (j, ((dxc, dch), hch)) in dx
                    .chunks_exact_mut(inner)
                    .zip(dy.chunks_exact(inner))
                    .zip(xhat.chunks_exact(inner))
                    .enumerate()
                {
                    let ch = j % c;
                    let k = f64::from(b.gamma[ch]) * f64::from(inv_std[ch]) / m;
                    let (sd, sdh) = (sum_dy[ch], sum_dy_xhat[ch]);
                    for ((o, d), h) in dxc.iter_mut().zip(dch).zip(hch) {
                        *o = (k * (m * f64::from(*d) - sd - f64::from(*h) * sdh)) as f32;
                    }
                }
                dx
            })
        }
        (Layer::Flatten, _) => want_dx.then_some(dy),
        (Layer::Dropout { .. }, Cache::Dropout { mask }) => want_dx.then(|| {
            let mut dx = dy;
            if !mask.is_empty() {
                dx.iter_mut().zip(mask).for_each(|(d, m)| *d *= m);
            }
            dx
        }),
        (Layer::Activation(a), Cache::Act { v }) => {
            let mut dx = dy;
            match a {
                Activation::Relu => dx
                    .iter_mut()
                    .zip(v)
                    .for_each(|(d, x)| *d = if *x > 0.0 { *d } else { 0.0 }),
                Activation::Tanh => dx.iter_mut().zip(v).for_each(|(d, y)| *d *= 1.0 - y * y),
                Activation::Sigmoid => dx.iter_mut().zip(v).for_each(|(d, y)| *d *= y * (1.0 - y)),
                Activation::Square => dx.iter_mut().zip(v).for_each(|(d, x)| *d *= 2.0 * x),
                Activation::Poly(p) => {
                    let sets = p.coeffs.len();
                    let inner = if sets == 1 {
                        v.len().max(1)
                    } else {
                        inner_size(in_shape).max(1)
                    };
                    if want_params {
                        grads.iter_mut().for_each(|g| g.fill(0.0));
                        let deg = p.coeffs.first().map_or(0, Vec::len);
                        let mut acc = vec![vec![0.0f64; deg]; sets];
                        for (j, (dch, xch)) in dx.chunks(inner).zip(v.chunks(inner)).enumerate() {
                            let a = &mut acc[j % sets];
                            for (d, x) in dch.iter().zip(xch) {
                                let mut pw = f64::from(*d);
                                for ai in a.iter_mut() {
                                    *ai += pw;
                                    pw *= f64::from(*x);
                                }
                            }
                        }
                        for (g, a) in grads.iter_mut().zip(acc) {
                            g.iter_mut().zip(a).for_each(|(g, a)| *g = a as f32);
                        }
                    }
                    for (j, (dch, xch)) in dx.chunks_mut(inner).zip(v.chunks(inner)).enumerate() {
                        let a = &p.coeffs[j % sets];
                        for (d, x) in dch.iter_mut().zip(xch) {
                            *d *= kernels::poly_deriv(a, *x);
                        }
                    }
                }
            }
            want_dx.then_some(dx)
        }
        // A layer without its cache (not expected: the caller keeps caches
        // for every layer it backpropagates through).
        _ => want_dx.then(|| vec![0.0; n * in_shape.iter().product::<usize>()]),
    }
}
