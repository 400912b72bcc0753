//! One forward + backward pass over a batch, and the gradients it yields.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Gradients;
use super::backprop::{BnStats, Cache, LayerMode, forward_train, layer_backward, param_lens};
use super::evaluate::check_data;
use super::loss::{self, Loss};
use crate::budget::Budget;
use crate::data::{Dataset, Targets};
use crate::error::Result;
use crate::model::Network;

/// What one batch's loss is computed against.
pub(super) enum Objective<'a> {
    Ce {
        labels: &'a [usize],
        k: usize,
    },
    Mse {
        target: &'a [f32],
    },
    Distill {
        labels: &'a [usize],
        k: usize,
        teacher: &'a [f32],
        temperature: f32,
        alpha: f32,
    },
}

impl Objective<'_> {
    pub(super) fn eval(&self, out: &[f32]) -> (f32, Vec<f32>) {
        match self {
            Objective::Ce { labels, k } => loss::cross_entropy(out, labels, *k),
            Objective::Mse { target } => loss::mse(out, target),
            Objective::Distill {
                labels,
                k,
                teacher,
                temperature,
                alpha,
            } => loss::distillation(out, teacher, labels, *k, *temperature, *alpha),
        }
    }
}

/// The result of one forward + backward pass.
pub(super) struct Pass {
    pub(super) loss: f32,
    pub(super) grads: Vec<Vec<Vec<f32>>>,
    pub(super) bn_stats: Vec<Option<BnStats>>,
    pub(super) dx: Option<Vec<f32>>,
}

/// Forward + backward over one batch. `trainable[i][j]` says whether
/// parameter `j` of layer `i` needs a gradient; backpropagation stops at the
/// lowest layer with a trainable parameter (or goes to the input when
/// `want_input`).
#[expect(clippy::too_many_arguments, reason = "internal entry point")]
pub(super) fn run_pass(
    net: &Network,
    shapes: &[Vec<usize>],
    n: usize,
    x: &[f32],
    objective: &Objective<'_>,
    trainable: &[Vec<bool>],
    frozen: &[bool],
    want_input: bool,
    rng: &mut ChaCha8Rng,
) -> Pass {
    let layers = net.layers.len();
    let first = if want_input {
        0
    } else {
        trainable
            .iter()
            .position(|t| t.iter().any(|b| *b))
            .unwrap_or(layers)
    };
    let modes: Vec<LayerMode> = (0..layers)
        .map(|i| LayerMode {
            cache: i >= first,
            bn_batch: !frozen[i],
        })
        .collect();
    let (out, caches) = forward_train(net, shapes, n, x, &modes, rng);
    let (loss, mut dy) = objective.eval(&out);
    let mut grads: Vec<Vec<Vec<f32>>> = net
        .layers
        .iter()
        .map(|l| param_lens(l).into_iter().map(|k| vec![0.0; k]).collect())
        .collect();
    let mut dx = None;
    for i in (first..layers).rev() {
        let in_shape = if i == 0 {
            &net.input_shape
        } else {
            &shapes[i - 1]
        };
        let want_params = trainable[i].iter().any(|b| *b);
        let want_dx = i > first || want_input;
        let r = layer_backward(
            &net.layers[i],
            in_shape,
            n,
            dy,
            &caches[i],
            &mut grads[i],
            want_params,
            want_dx,
        );
        match r {
            Some(d) if i > 0 => dy = d,
            Some(d) => {
                dx = Some(d);
                break;
            }
            None => break,
        }
    }
    let bn_stats = caches
        .into_iter()
        .map(|c| match c {
            Cache::BatchNorm { batch_stats, .. } => batch_stats,
            _ => None,
        })
        .collect();
    Pass {
        loss,
        grads,
        bn_stats,
        dx,
    }
}

/// Mean loss and parameter gradients of `net` on one batch, in training
/// mode (batch statistics for batch norm, dropout drawn from `seed`), e.g.
/// for gradient-based pruning scores. The batch's activations must fit
/// the default [`Budget`].
pub fn gradients(
    net: &Network,
    batch: &Dataset,
    loss: Loss,
    seed: u64,
) -> Result<(f32, Gradients)> {
    let (l, g, _) = gradients_with_input(net, batch, loss, seed)?;
    Ok((l, g))
}

/// [`gradients`] plus the gradient with respect to the input batch.
pub(crate) fn gradients_with_input(
    net: &Network,
    batch: &Dataset,
    loss: Loss,
    seed: u64,
) -> Result<(f32, Gradients, Vec<f32>)> {
    let k = check_data(net, batch, loss)?;
    net.check_budget(batch.len(), true, &Budget::default())?;
    let shapes = net.shapes()?;
    let trainable: Vec<Vec<bool>> = net
        .layers
        .iter()
        .map(|l| vec![true; param_lens(l).len()])
        .collect();
    let frozen = vec![false; net.layers.len()];
    let obj = match batch.targets() {
        Targets::Classes { labels, .. } => Objective::Ce { labels, k },
        Targets::Values(t) => Objective::Mse { target: t.data() },
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let p = run_pass(
        net,
        &shapes,
        batch.len(),
        batch.inputs().data(),
        &obj,
        &trainable,
        &frozen,
        true,
        &mut rng,
    );
    Ok((
        p.loss,
        Gradients { layers: p.grads },
        p.dx.unwrap_or_default(),
    ))
}

/// The training-mode loss (what [`gradients`] differentiates), for
/// finite-difference checks.
#[cfg(test)]
pub(super) fn train_mode_loss(net: &Network, batch: &Dataset, loss: Loss, seed: u64) -> f32 {
    gradients(net, batch, loss, seed)
        .map(|r| r.0)
        .unwrap_or(f32::NAN)
}
