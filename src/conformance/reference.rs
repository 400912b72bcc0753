//! Test networks of every layer kind and a plaintext reference forward
//! pass in `f64`, straight from the layer definitions (independent of the
//! compiler's folding), against which encrypted runs are compared.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::model::{Activation, BatchNorm, Conv2d, Dense, Layer, Network, Poly, Pool2d, Tensor};

/// A seeded ChaCha20 generator.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A tensor of `shape` with entries uniform in `[-scale, scale)`.
pub fn rand_tensor(r: &mut ChaCha20Rng, shape: Vec<usize>, scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|_| r.random_range(-scale..scale)).collect();
    Tensor::new(shape, data).unwrap()
}

/// A dense layer `out x inp`, weights uniform in `±1/sqrt(inp)`, biases in `±0.1`.
pub fn dense(r: &mut ChaCha20Rng, out: usize, inp: usize) -> Layer {
    let s = 1.0 / (inp as f32).sqrt();
    Layer::Dense(Dense {
        weight: rand_tensor(r, vec![out, inp], s),
        bias: (0..out).map(|_| r.random_range(-0.1..0.1)).collect(),
    })
}

/// A square-kernel convolution (`o` outputs, `i` inputs, kernel `k`).
pub fn conv(r: &mut ChaCha20Rng, o: usize, i: usize, k: usize, stride: usize, pad: usize) -> Layer {
    let s = 1.0 / ((i * k * k) as f32).sqrt();
    Layer::Conv2d(Conv2d {
        weight: rand_tensor(r, vec![o, i, k, k], s),
        bias: (0..o).map(|_| r.random_range(-0.1..0.1)).collect(),
        stride: (stride, stride),
        padding: (pad, pad),
    })
}

/// A square average pooling (kernel `k`, stride `s`, padding `p`).
pub fn pool(k: usize, s: usize, p: usize) -> Layer {
    Layer::AvgPool2d(Pool2d {
        kernel: (k, k),
        stride: (s, s),
        padding: (p, p),
    })
}

/// The activation `a0 + a1 x + a2 x^2`.
pub fn poly(a0: f32, a1: f32, a2: f32) -> Layer {
    Layer::Activation(Activation::Poly(Poly {
        coeffs: vec![vec![a0, a1, a2]],
    }))
}

/// The activation `x^2`.
pub fn square() -> Layer {
    Layer::Activation(Activation::Square)
}

/// A batch normalisation over `c` channels with random statistics.
pub fn batch_norm(r: &mut ChaCha20Rng, c: usize) -> Layer {
    Layer::BatchNorm(BatchNorm {
        gamma: (0..c).map(|_| r.random_range(0.5..1.5)).collect(),
        beta: (0..c).map(|_| r.random_range(-0.2..0.2)).collect(),
        mean: (0..c).map(|_| r.random_range(-0.2..0.2)).collect(),
        var: (0..c).map(|_| r.random_range(0.5..1.5)).collect(),
        eps: 1e-5,
        momentum: 0.1,
    })
}

/// MOFHEI's LeNet (32x32) with degree-2 polynomial activations.
pub fn lenet(r: &mut ChaCha20Rng) -> Network {
    Network::new(
        vec![1, 32, 32],
        vec![
            conv(r, 6, 1, 5, 1, 0),
            poly(0.1, 0.5, 0.25),
            pool(2, 2, 0),
            conv(r, 16, 6, 5, 1, 0),
            poly(0.05, 0.6, 0.2),
            pool(2, 2, 0),
            conv(r, 120, 16, 5, 1, 0),
            poly(0.0, 0.5, 0.3),
            Layer::Flatten,
            dense(r, 84, 120),
            square(),
            dense(r, 10, 84),
        ],
    )
    .unwrap()
}

/// Reference forward of one sample, f64, straight from the layer definitions.
pub fn forward_one(net: &Network, x: &[f64]) -> Vec<f64> {
    let mut shape = net.input_shape.clone();
    let mut v = x.to_vec();
    for l in &net.layers {
        match l {
            Layer::Dense(d) => {
                let ws = d.weight.shape();
                let w = d.weight.data();
                v = (0..ws[0])
                    .map(|i| {
                        f64::from(d.bias[i])
                            + (0..ws[1])
                                .map(|j| f64::from(w[i * ws[1] + j]) * v[j])
                                .sum::<f64>()
                    })
                    .collect();
                shape = vec![ws[0]];
            }
            Layer::Conv2d(c) => {
                let ws = c.weight.shape();
                let (oc, ic, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
                let (h, w) = (shape[1] as isize, shape[2] as isize);
                let oh = (shape[1] + 2 * c.padding.0 - kh) / c.stride.0 + 1;
                let ow = (shape[2] + 2 * c.padding.1 - kw) / c.stride.1 + 1;
                let wd = c.weight.data();
                let mut out = vec![0.0; oc * oh * ow];
                for o in 0..oc {
                    for y in 0..oh {
                        for xx in 0..ow {
                            let mut acc = f64::from(c.bias[o]);
                            for ci in 0..ic {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy =
                                            (y * c.stride.0 + ky) as isize - c.padding.0 as isize;
                                        let ix =
                                            (xx * c.stride.1 + kx) as isize - c.padding.1 as isize;
                                        if iy >= 0 && iy < h && ix >= 0 && ix < w {
                                            acc +=
                                                f64::from(wd[((o * ic + ci) * kh + ky) * kw + kx])
                                                    * v[(ci * h as usize + iy as usize)
                                                        * w as usize
                                                        + ix as usize];
                                        }
                                    }
                                }
                            }
                            out[(o * oh + y) * ow + xx] = acc;
                        }
                    }
                }
                v = out;
                shape = vec![oc, oh, ow];
            }
            Layer::AvgPool2d(p) => {
                let (c, h, w) = (shape[0], shape[1] as isize, shape[2] as isize);
                let oh = (shape[1] + 2 * p.padding.0 - p.kernel.0) / p.stride.0 + 1;
                let ow = (shape[2] + 2 * p.padding.1 - p.kernel.1) / p.stride.1 + 1;
                let mut out = vec![0.0; c * oh * ow];
                for ch in 0..c {
                    for y in 0..oh {
                        for xx in 0..ow {
                            let mut acc = 0.0;
                            for ky in 0..p.kernel.0 {
                                for kx in 0..p.kernel.1 {
                                    let iy = (y * p.stride.0 + ky) as isize - p.padding.0 as isize;
                                    let ix = (xx * p.stride.1 + kx) as isize - p.padding.1 as isize;
                                    if iy >= 0 && iy < h && ix >= 0 && ix < w {
                                        acc += v[(ch * h as usize + iy as usize) * w as usize
                                            + ix as usize];
                                    }
                                }
                            }
                            out[(ch * oh + y) * ow + xx] = acc / (p.kernel.0 * p.kernel.1) as f64;
                        }
                    }
                }
                v = out;
                shape = vec![c, oh, ow];
            }
            Layer::BatchNorm(b) => {
                let per = v.len() / b.gamma.len();
                for (i, x) in v.iter_mut().enumerate() {
                    let c = i / per;
                    *x = f64::from(b.gamma[c]) * (*x - f64::from(b.mean[c]))
                        / (f64::from(b.var[c]) + f64::from(b.eps)).sqrt()
                        + f64::from(b.beta[c]);
                }
            }
            Layer::Flatten => shape = vec![v.len()],
            Layer::Dropout { .. } => {}
            Layer::Activation(Activation::Square) => v.iter_mut().for_each(|x| *x *= *x),
            Layer::Activation(Activation::Poly(p)) => {
                let per = v.len() / p.coeffs.len();
                for (i, x) in v.iter_mut().enumerate() {
                    let c = &p.coeffs[if p.coeffs.len() == 1 { 0 } else { i / per }];
                    let mut acc = 0.0;
                    for (k, a) in c.iter().enumerate() {
                        acc += f64::from(*a) * x.powi(k as i32);
                    }
                    *x = acc;
                }
            }
            other => panic!("reference forward: unsupported {}", other.kind()),
        }
    }
    v
}

/// Reference forward of a batch `[n, ...]`.
pub fn forward(net: &Network, x: &Tensor) -> Vec<Vec<f64>> {
    let n = x.shape()[0];
    let d = x.len() / n;
    (0..n)
        .map(|s| {
            let xs: Vec<f64> = x.data()[s * d..(s + 1) * d]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            forward_one(net, &xs)
        })
        .collect()
}
