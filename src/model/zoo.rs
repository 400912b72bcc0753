//! Builders for the reference architectures, seeded-initialised
//! ([`Network::init_assign`]).

use super::{Activation, Conv2d, Dense, Layer, Network, Pool2d, Tensor};
use crate::error::{Error, Result};

/// A convolution layer with zero weights (`o` filters of `i x k x k`).
pub fn conv(o: usize, i: usize, k: usize, stride: usize, padding: usize) -> Layer {
    Layer::Conv2d(Conv2d {
        weight: Tensor::zeros(vec![o, i, k, k]),
        bias: vec![0.0; o],
        stride: (stride, stride),
        padding: (padding, padding),
    })
}

/// A dense layer with zero weights (`inputs -> outputs`).
pub fn dense(inputs: usize, outputs: usize) -> Layer {
    Layer::Dense(Dense {
        weight: Tensor::zeros(vec![outputs, inputs]),
        bias: vec![0.0; outputs],
    })
}

/// Square pooling window `k`, stride `k`, no padding.
pub fn pool(k: usize) -> Pool2d {
    Pool2d {
        kernel: (k, k),
        stride: (k, k),
        padding: (0, 0),
    }
}

/// MOFHEI's LeNet for `[1, 32, 32]` inputs (original, before the
/// HE-friendly transformation): conv 5x5 x6 - act - maxpool 2 - conv 5x5
/// x16 - act - maxpool 2 - conv 5x5 x120 - act - flatten - dense 84 - act -
/// dense 10. MOFHEI's original uses ReLU or tanh; its HE-friendly version
/// replaces max-pool by average-pool and the activations by polynomials
/// (x^2 after dense 84).
pub fn lenet_mofhei(act: Activation, seed: u64) -> Network {
    let a = || Layer::Activation(act.clone());
    let mut net = Network {
        input_shape: vec![1, 32, 32],
        layers: vec![
            conv(6, 1, 5, 1, 0),
            a(),
            Layer::MaxPool2d(pool(2)),
            conv(16, 6, 5, 1, 0),
            a(),
            Layer::MaxPool2d(pool(2)),
            conv(120, 16, 5, 1, 0),
            a(),
            Layer::Flatten,
            dense(120, 84),
            a(),
            dense(84, 10),
        ],
    };
    net.init_assign(seed);
    net
}

/// A multi-layer perceptron over `sizes[0]` features: dense layers
/// `sizes[i] -> sizes[i+1]` with `act` between them (none after the last),
/// e.g. `&[64, 32, 10]` for the 8x8 digits.
pub fn mlp(sizes: &[usize], act: Activation, seed: u64) -> Result<Network> {
    if sizes.len() < 2 || sizes.contains(&0) {
        return Err(Error::InvalidParameter {
            name: "mlp sizes",
            value: i64::try_from(sizes.len()).unwrap_or(i64::MAX),
            allowed: "at least two sizes, none zero",
        });
    }
    let mut layers = Vec::new();
    for (i, w) in sizes.windows(2).enumerate() {
        if i > 0 {
            layers.push(Layer::Activation(act.clone()));
        }
        layers.push(dense(w[0], w[1]));
    }
    let mut net = Network::new(vec![sizes[0]], layers)?;
    net.init_assign(seed);
    Ok(net)
}

/// An autoencoder `features - hidden[0] - ... - features` (e.g. 64-32-64 or
/// MOFHEI's 784-32-784) with `act` after every hidden layer.
pub fn autoencoder(
    features: usize,
    hidden: &[usize],
    act: Activation,
    seed: u64,
) -> Result<Network> {
    let mut sizes = vec![features];
    sizes.extend_from_slice(hidden);
    sizes.push(features);
    mlp(&sizes, act, seed)
}

/// TenSEAL's encrypted MNIST tutorial network for `[1, 28, 28]` inputs:
/// conv 7x7 stride 3 x4 - square - flatten - dense 256 -> 64 - square -
/// dense 64 -> 10.
pub fn tenseal_mnist(seed: u64) -> Network {
    let mut net = Network {
        input_shape: vec![1, 28, 28],
        layers: vec![
            conv(4, 1, 7, 3, 0),
            Layer::Activation(Activation::Square),
            Layer::Flatten,
            dense(256, 64),
            Layer::Activation(Activation::Square),
            dense(64, 10),
        ],
    };
    net.init_assign(seed);
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_have_the_documented_shapes() {
        let l = lenet_mofhei(Activation::Relu, 1);
        let s = l.shapes().unwrap();
        assert_eq!(s[0], vec![6, 28, 28]);
        assert_eq!(s[5], vec![16, 5, 5]);
        assert_eq!(s[8], vec![120]);
        assert_eq!(l.output_shape().unwrap(), vec![10]);
        assert_eq!(
            l.param_count(),
            6 * 25 + 6 + 16 * 150 + 16 + 120 * 400 + 120 + 84 * 120 + 84 + 850
        );
        let t = tenseal_mnist(1);
        assert_eq!(t.shapes().unwrap()[0], vec![4, 8, 8]);
        assert_eq!(t.output_shape().unwrap(), vec![10]);
        let m = mlp(&[64, 32, 10], Activation::Tanh, 1).unwrap();
        assert_eq!(m.layers.len(), 3);
        let a = autoencoder(784, &[32], Activation::Square, 1).unwrap();
        assert_eq!(a.output_shape().unwrap(), vec![784]);
        assert!(mlp(&[3], Activation::Relu, 0).is_err());
        // seeded: same seed, same weights; other seed, other weights
        assert_eq!(lenet_mofhei(Activation::Relu, 1), l);
        assert_ne!(lenet_mofhei(Activation::Relu, 2), l);
        // He init: std close to sqrt(2 / fan_in) on conv2 (fan_in 400)
        if let Layer::Conv2d(c) = &l.layers[6] {
            let d = c.weight.data();
            let var = d.iter().map(|v| v * v).sum::<f32>() / d.len() as f32;
            assert!((var / (2.0 / 400.0) - 1.0).abs() < 0.05, "{var}");
        }
    }
}
