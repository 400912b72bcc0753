//! The network IR: layers, shapes, tensors.
//!
//! Tensors are row-major `f32`. Activations are NCHW (a batch of `C x H x W`
//! samples) or `N x F` for flat features, as ONNX and PyTorch lay them out.
//! Weights: dense `[out, in]`, convolution OIHW `[out_channels,
//! in_channels, kh, kw]`. A [`Network`] is a chain of [`Layer`]s over a
//! per-sample input shape (`[C, H, W]` or `[F]`).
//!
//! Pruned weights are exact zeros in these tensors; the compiler reads the
//! zeros directly, so a pruned network needs no side table to run fast.
//!
//! - [`Network::forward`] runs the plaintext network over a batch
//!   (inference mode), [`Network::forward_all`] keeps every layer's output.
//! - [`Network::to_bytes`] / [`Network::from_bytes`] / [`Network::save`] /
//!   [`Network::load`]: the versioned binary format (magic, version,
//!   bincode; size limit; corrupt bytes are [`Error::Decode`]).
//! - [`zoo`] builds the reference architectures (MOFHEI's LeNet, MLPs,
//!   autoencoders, TenSEAL's MNIST net); [`Network::init_assign`] seeds
//!   He/Glorot weights.
//!
//! How the kernels work and why they are hand-written: `docs/training.md`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod footprint;
mod format;
pub(crate) mod forward;
pub mod init;
pub(crate) mod kernels;
pub mod zoo;

pub use footprint::Footprint;
pub use format::{FORMAT_VERSION, MAGIC, MAX_MODEL_BYTES};
pub use forward::argmax_rows;
pub use init::Init;

/// A dense row-major `f32` tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and row-major data; errors if the sizes disagree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor> {
        if checked_product(&shape) != Some(data.len()) {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: shape,
                found: vec![data.len()],
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A zero tensor.
    pub fn zeros(shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The data, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The data, mutable (the shape stays).
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Number of non-zero elements.
    pub fn count_nonzero(&self) -> usize {
        self.data.iter().filter(|v| **v != 0.0).count()
    }

    /// Into shape and data.
    pub fn into_parts(self) -> (Vec<usize>, Vec<f32>) {
        (self.shape, self.data)
    }
}

/// A fully connected layer: `y = W x + b`, `W` is `[out, in]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    /// Weights `[out, in]`.
    pub weight: Tensor,
    /// Bias `[out]`.
    pub bias: Vec<f32>,
}

/// A 2-d convolution (cross-correlation, as in PyTorch/ONNX), weights OIHW.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Weights `[out_channels, in_channels, kh, kw]`.
    pub weight: Tensor,
    /// Bias `[out_channels]`.
    pub bias: Vec<f32>,
    /// Stride `(sh, sw)`.
    pub stride: (usize, usize),
    /// Zero padding `(ph, pw)` on each side.
    pub padding: (usize, usize),
}

/// Window of a pooling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool2d {
    /// Window `(kh, kw)`.
    pub kernel: (usize, usize),
    /// Stride `(sh, sw)`.
    pub stride: (usize, usize),
    /// Zero padding `(ph, pw)`; average pooling divides by the full window
    /// (padding counted, as PyTorch's `count_include_pad = true`).
    pub padding: (usize, usize),
}

/// Batch normalisation over the channel (first per-sample) dimension:
/// `y = gamma * (x - mean) / sqrt(var + eps) + beta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    /// Scale per channel.
    pub gamma: Vec<f32>,
    /// Shift per channel.
    pub beta: Vec<f32>,
    /// Running mean per channel.
    pub mean: Vec<f32>,
    /// Running variance per channel.
    pub var: Vec<f32>,
    /// Added to the variance.
    pub eps: f32,
    /// Momentum of the running statistics during training.
    pub momentum: f32,
}

impl BatchNorm {
    /// Channel `c` as the affine map `x -> g x + h` used at inference:
    /// `g = gamma / sqrt(var + eps)`, `h = beta - g * mean` (in f64). The
    /// transform folds it into a neighbouring layer; the compiler applies it
    /// when a batch-norm reaches it.
    pub fn affine(&self, c: usize) -> (f64, f64) {
        let g = f64::from(self.gamma[c]) / (f64::from(self.var[c]) + f64::from(self.eps)).sqrt();
        (g, f64::from(self.beta[c]) - f64::from(self.mean[c]) * g)
    }
}

/// A polynomial activation `sum_i a_i x^i`.
///
/// `coeffs` holds one coefficient set (`a_0` first) for the whole layer, or
/// one per channel (first per-sample dimension); all sets have the same length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Poly {
    /// Coefficient sets, `a_0` first in each.
    pub coeffs: Vec<Vec<f32>>,
}

impl Poly {
    /// The polynomial's degree.
    pub fn degree(&self) -> usize {
        self.coeffs
            .first()
            .map(|c| c.len().saturating_sub(1))
            .unwrap_or(0)
    }
}

/// An element-wise activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `x^2`.
    Square,
    /// A (trainable) polynomial.
    Poly(Poly),
}

impl Activation {
    /// Whether HE can evaluate this activation directly (a polynomial).
    pub fn is_polynomial(&self) -> bool {
        matches!(self, Activation::Square | Activation::Poly(_))
    }
}

/// One layer of a [`Network`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Layer {
    /// Fully connected.
    Dense(Dense),
    /// 2-d convolution.
    Conv2d(Conv2d),
    /// Average pooling.
    AvgPool2d(Pool2d),
    /// Max pooling (not HE-friendly; the transform replaces it).
    MaxPool2d(Pool2d),
    /// Batch normalisation (folded away before HE).
    BatchNorm(BatchNorm),
    /// `[C, H, W] -> [C*H*W]`.
    Flatten,
    /// Dropout with this drop rate (training only; identity at inference).
    Dropout {
        /// Probability of dropping a unit.
        rate: f32,
    },
    /// Element-wise activation.
    Activation(Activation),
}

impl Layer {
    /// A short name of the layer's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense(_) => "dense",
            Layer::Conv2d(_) => "conv2d",
            Layer::AvgPool2d(_) => "avgpool2d",
            Layer::MaxPool2d(_) => "maxpool2d",
            Layer::BatchNorm(_) => "batchnorm",
            Layer::Flatten => "flatten",
            Layer::Dropout { .. } => "dropout",
            Layer::Activation(Activation::Relu) => "relu",
            Layer::Activation(Activation::Tanh) => "tanh",
            Layer::Activation(Activation::Sigmoid) => "sigmoid",
            Layer::Activation(Activation::Square) => "square",
            Layer::Activation(Activation::Poly(_)) => "poly",
        }
    }

    /// The per-sample output shape for a per-sample input shape `input`
    /// (`index` is the layer's position, for errors).
    pub fn output_shape(&self, index: usize, input: &[usize]) -> Result<Vec<usize>> {
        let mismatch = |expected: Vec<usize>| Error::ShapeMismatch {
            layer: index,
            expected,
            found: input.to_vec(),
        };
        match self {
            Layer::Dense(d) => {
                let ws = d.weight.shape();
                if ws.len() != 2
                    || d.bias.len() != ws[0]
                    || checked_product(ws) != Some(d.weight.len())
                {
                    return Err(Error::InvalidLayer {
                        layer: index,
                        what: "dense weight/bias shape",
                        value: d.bias.len() as i64,
                    });
                }
                if input != [ws[1]] {
                    return Err(mismatch(vec![ws[1]]));
                }
                Ok(vec![ws[0]])
            }
            Layer::Conv2d(c) => {
                let ws = c.weight.shape();
                if ws.len() != 4
                    || c.bias.len() != ws[0]
                    || checked_product(ws) != Some(c.weight.len())
                {
                    return Err(Error::InvalidLayer {
                        layer: index,
                        what: "conv weight/bias shape",
                        value: c.bias.len() as i64,
                    });
                }
                if input.len() != 3 || input[0] != ws[1] {
                    return Err(mismatch(vec![ws[1], 0, 0]));
                }
                let (h, w) = window_output(
                    index,
                    (input[1], input[2]),
                    (ws[2], ws[3]),
                    c.stride,
                    c.padding,
                )?;
                Ok(vec![ws[0], h, w])
            }
            Layer::AvgPool2d(p) | Layer::MaxPool2d(p) => {
                if input.len() != 3 {
                    return Err(mismatch(vec![0, 0, 0]));
                }
                let (h, w) =
                    window_output(index, (input[1], input[2]), p.kernel, p.stride, p.padding)?;
                Ok(vec![input[0], h, w])
            }
            Layer::BatchNorm(b) => {
                let c = input.first().copied().unwrap_or(0);
                let n = b.gamma.len();
                if [b.beta.len(), b.mean.len(), b.var.len()]
                    .iter()
                    .any(|&l| l != n)
                {
                    return Err(Error::InvalidLayer {
                        layer: index,
                        what: "batchnorm parameter lengths",
                        value: n as i64,
                    });
                }
                if input.is_empty() || c != n {
                    return Err(mismatch(vec![n]));
                }
                Ok(input.to_vec())
            }
            Layer::Flatten => match checked_product(input) {
                Some(n) => Ok(vec![n]),
                None => Err(Error::InvalidLayer {
                    layer: index,
                    what: "flattened size overflows",
                    value: i64::MAX,
                }),
            },
            Layer::Dropout { rate } => {
                if !(0.0..1.0).contains(rate) {
                    return Err(Error::InvalidLayer {
                        layer: index,
                        what: "dropout rate",
                        value: (*rate * 100.0) as i64,
                    });
                }
                Ok(input.to_vec())
            }
            Layer::Activation(Activation::Poly(p)) => {
                let d = p.coeffs.first().map(Vec::len).unwrap_or(0);
                if d == 0 || p.coeffs.iter().any(|c| c.len() != d) {
                    return Err(Error::InvalidLayer {
                        layer: index,
                        what: "polynomial coefficient sets",
                        value: d as i64,
                    });
                }
                let channels = input.first().copied().unwrap_or(0);
                if p.coeffs.len() != 1 && p.coeffs.len() != channels {
                    return Err(Error::InvalidLayer {
                        layer: index,
                        what: "polynomial coefficient sets (1 or one per channel)",
                        value: p.coeffs.len() as i64,
                    });
                }
                Ok(input.to_vec())
            }
            Layer::Activation(_) => Ok(input.to_vec()),
        }
    }
}

/// The product of `dims`, or `None` on overflow.
pub(crate) fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Output size of a sliding window along two dimensions.
fn window_output(
    layer: usize,
    input: (usize, usize),
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
) -> Result<(usize, usize)> {
    if stride.0 == 0 || stride.1 == 0 {
        return Err(Error::InvalidLayer {
            layer,
            what: "stride",
            value: 0,
        });
    }
    if kernel.0 == 0 || kernel.1 == 0 {
        return Err(Error::InvalidLayer {
            layer,
            what: "kernel size",
            value: 0,
        });
    }
    let padded = |i: usize, p: usize| p.checked_mul(2).and_then(|p2| i.checked_add(p2));
    let (Some(h), Some(w)) = (padded(input.0, padding.0), padded(input.1, padding.1)) else {
        return Err(Error::InvalidLayer {
            layer,
            what: "padding",
            value: i64::MAX,
        });
    };
    if kernel.0 > h || kernel.1 > w {
        return Err(Error::InvalidLayer {
            layer,
            what: "kernel larger than padded input",
            value: kernel.0.max(kernel.1) as i64,
        });
    }
    Ok(((h - kernel.0) / stride.0 + 1, (w - kernel.1) / stride.1 + 1))
}

/// A feed-forward network: a chain of layers over a per-sample input shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Per-sample input shape: `[C, H, W]` for images, `[F]` for features.
    pub input_shape: Vec<usize>,
    /// The layers, first to last.
    pub layers: Vec<Layer>,
}

impl Network {
    /// A network; checks that the shapes chain.
    pub fn new(input_shape: Vec<usize>, layers: Vec<Layer>) -> Result<Network> {
        let net = Network {
            input_shape,
            layers,
        };
        net.shapes()?;
        Ok(net)
    }

    /// The per-sample shape after each layer (`shapes()[i]` is layer `i`'s output).
    pub fn shapes(&self) -> Result<Vec<Vec<usize>>> {
        let mut cur = self.input_shape.clone();
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            cur = l.output_shape(i, &cur)?;
            out.push(cur.clone());
        }
        Ok(out)
    }

    /// The per-sample output shape.
    pub fn output_shape(&self) -> Result<Vec<usize>> {
        Ok(self
            .shapes()?
            .pop()
            .unwrap_or_else(|| self.input_shape.clone()))
    }

    /// Number of trainable weights and biases (polynomial coefficients and
    /// batch-norm affine parameters included).
    pub fn param_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Dense(d) => d.weight.len() + d.bias.len(),
                Layer::Conv2d(c) => c.weight.len() + c.bias.len(),
                Layer::BatchNorm(b) => 2 * b.gamma.len(),
                Layer::Activation(Activation::Poly(p)) => p.coeffs.iter().map(Vec::len).sum(),
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(o: usize, i: usize, k: usize) -> Layer {
        Layer::Conv2d(Conv2d {
            weight: Tensor::zeros(vec![o, i, k, k]),
            bias: vec![0.0; o],
            stride: (1, 1),
            padding: (0, 0),
        })
    }

    #[test]
    fn lenet_shapes() {
        let pool = Layer::AvgPool2d(Pool2d {
            kernel: (2, 2),
            stride: (2, 2),
            padding: (0, 0),
        });
        let net = Network::new(
            vec![1, 32, 32],
            vec![
                conv(6, 1, 5),
                Layer::Activation(Activation::Square),
                pool.clone(),
                conv(16, 6, 5),
                Layer::Activation(Activation::Square),
                pool,
                conv(120, 16, 5),
                Layer::Flatten,
                Layer::Dense(Dense {
                    weight: Tensor::zeros(vec![84, 120]),
                    bias: vec![0.0; 84],
                }),
                Layer::Dense(Dense {
                    weight: Tensor::zeros(vec![10, 84]),
                    bias: vec![0.0; 10],
                }),
            ],
        )
        .unwrap();
        let s = net.shapes().unwrap();
        assert_eq!(s[0], vec![6, 28, 28]);
        assert_eq!(s[2], vec![6, 14, 14]);
        assert_eq!(s[5], vec![16, 5, 5]);
        assert_eq!(s[6], vec![120, 1, 1]);
        assert_eq!(net.output_shape().unwrap(), vec![10]);
    }

    #[test]
    fn inconsistent_shapes_are_errors() {
        let err = Network::new(vec![2, 8, 8], vec![conv(4, 1, 3)]).unwrap_err();
        assert!(
            matches!(err, Error::ShapeMismatch { layer: 0, .. }),
            "{err}"
        );
        let err = Network::new(vec![1, 4, 4], vec![conv(4, 1, 5)]).unwrap_err();
        assert!(matches!(err, Error::InvalidLayer { layer: 0, .. }), "{err}");
        assert!(Tensor::new(vec![2, 2], vec![0.0; 3]).is_err());
    }
}
