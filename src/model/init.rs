//! Seeded weight initialisation (He for ReLU layers, Glorot otherwise).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Activation, Layer, Network, Tensor};

/// A weight initialisation scheme. Biases start at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// He/Kaiming normal: `N(0, 2 / fan_in)`; for layers followed by ReLU.
    He,
    /// Glorot/Xavier uniform: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    Glorot,
}

/// A standard normal sample (Box-Muller).
pub(crate) fn normal<R: Rng>(rng: &mut R) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn fill(weight: &mut Tensor, fan_in: usize, fan_out: usize, init: Init, rng: &mut ChaCha8Rng) {
    match init {
        Init::He => {
            let std = (2.0 / fan_in.max(1) as f32).sqrt();
            weight
                .data_mut()
                .iter_mut()
                .for_each(|w| *w = normal(rng) * std);
        }
        Init::Glorot => {
            let a = (6.0 / fan_in.saturating_add(fan_out).max(1) as f32).sqrt();
            weight
                .data_mut()
                .iter_mut()
                .for_each(|w| *w = rng.random_range(-a..=a));
        }
    }
}

impl Network {
    /// Re-initialises every dense and convolution layer from `seed`: He if
    /// the next activation after it is ReLU, Glorot otherwise; biases zero,
    /// batch norms reset (gamma 1, beta 0, mean 0, var 1). Polynomial
    /// coefficients are left as they are.
    pub fn init_assign(&mut self, seed: u64) {
        let schemes: Vec<Init> = (0..self.layers.len())
            .map(|i| {
                let next_act = self.layers[i + 1..].iter().find_map(|l| match l {
                    Layer::Activation(a) => Some(a),
                    Layer::Dense(_) | Layer::Conv2d(_) => Some(&Activation::Square),
                    _ => None,
                });
                if matches!(next_act, Some(Activation::Relu)) {
                    Init::He
                } else {
                    Init::Glorot
                }
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for (layer, init) in self.layers.iter_mut().zip(schemes) {
            init_layer(layer, init, &mut rng);
        }
    }

    /// Re-initialises every dense and convolution layer with one scheme.
    pub fn init_with_assign(&mut self, init: Init, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for layer in &mut self.layers {
            init_layer(layer, init, &mut rng);
        }
    }
}

fn init_layer(layer: &mut Layer, init: Init, rng: &mut ChaCha8Rng) {
    match layer {
        Layer::Dense(d) => {
            let s = d.weight.shape().to_vec();
            let [o, i] = s[..] else { return };
            fill(&mut d.weight, i, o, init, rng);
            d.bias.iter_mut().for_each(|b| *b = 0.0);
        }
        Layer::Conv2d(c) => {
            let s = c.weight.shape().to_vec();
            let [o, i, kh, kw] = s[..] else { return };
            let k = kh.saturating_mul(kw);
            fill(
                &mut c.weight,
                i.saturating_mul(k),
                o.saturating_mul(k),
                init,
                rng,
            );
            c.bias.iter_mut().for_each(|b| *b = 0.0);
        }
        Layer::BatchNorm(b) => {
            b.gamma.iter_mut().for_each(|v| *v = 1.0);
            b.beta.iter_mut().for_each(|v| *v = 0.0);
            b.mean.iter_mut().for_each(|v| *v = 0.0);
            b.var.iter_mut().for_each(|v| *v = 1.0);
        }
        _ => {}
    }
}
