//! Loss and metric of a network on a data set, in inference mode.

use super::loss::{self, Loss};
use crate::data::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::model::Network;

/// The quality measure reported per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Fraction of correctly classified samples (higher is better).
    Accuracy,
    /// Mean squared error (lower is better).
    Mse,
}

impl Metric {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f32, b: f32) -> bool {
        match self {
            Metric::Accuracy => a > b,
            Metric::Mse => a < b,
        }
    }

    /// Whether `value` reaches `target`.
    pub fn reaches(self, value: f32, target: f32) -> bool {
        match self {
            Metric::Accuracy => value >= target,
            Metric::Mse => value <= target,
        }
    }

    /// The metric for a data set's targets.
    pub fn for_targets(t: &Targets) -> Metric {
        match t {
            Targets::Classes { .. } => Metric::Accuracy,
            Targets::Values(_) => Metric::Mse,
        }
    }
}

/// Loss and metric of a network on a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss (cross-entropy or MSE).
    pub loss: f32,
    /// The metric's value.
    pub metric: f32,
    /// Which metric.
    pub kind: Metric,
}

/// Checks that `data` fits `net` and returns the objective's class count
/// (0 for values).
pub(super) fn check_data(net: &Network, data: &Dataset, loss: Loss) -> Result<usize> {
    if data.sample_shape() != net.input_shape.as_slice() {
        return Err(Error::ShapeMismatch {
            layer: 0,
            expected: net.input_shape.clone(),
            found: data.sample_shape().to_vec(),
        });
    }
    let out = net.output_shape()?;
    let out_len: usize = out.iter().product();
    match (data.targets(), loss) {
        (Targets::Classes { classes, .. }, Loss::CrossEntropy) => {
            if out_len < *classes {
                return Err(Error::ShapeMismatch {
                    layer: net.layers.len().saturating_sub(1),
                    expected: vec![*classes],
                    found: out,
                });
            }
            Ok(out_len)
        }
        (Targets::Values(t), Loss::Mse) => {
            let per = t.len().checked_div(data.len()).unwrap_or(out_len);
            if per != out_len {
                return Err(Error::ShapeMismatch {
                    layer: net.layers.len().saturating_sub(1),
                    expected: vec![per],
                    found: out,
                });
            }
            Ok(0)
        }
        (Targets::Values(_), Loss::CrossEntropy) => Err(Error::Incompatible {
            what: "cross-entropy loss",
            with: "target values (it needs class labels)",
        }),
        (Targets::Classes { .. }, Loss::Mse) => Err(Error::Incompatible {
            what: "MSE loss",
            with: "class labels (it needs target values)",
        }),
    }
}

pub(super) fn default_loss(t: &Targets) -> Loss {
    match t {
        Targets::Classes { .. } => Loss::CrossEntropy,
        Targets::Values(_) => Loss::Mse,
    }
}

/// Samples per chunk when evaluating (bounds memory on large sets).
pub(super) const EVAL_CHUNK: usize = 1024;

/// Loss and metric (accuracy for class labels, MSE for values) of `net` on
/// `data`, in inference mode.
pub fn evaluate(net: &Network, data: &Dataset) -> Result<Evaluation> {
    let loss_kind = default_loss(data.targets());
    let k = check_data(net, data, loss_kind)?;
    let n = data.len();
    let mut loss_sum = 0.0f64;
    let mut metric_sum = 0.0f64;
    let mut s = 0;
    while s < n {
        let e = (s + EVAL_CHUNK).min(n);
        let idx: Vec<usize> = (s..e).collect();
        let batch = data.subset(&idx)?;
        let out = net.forward(batch.inputs())?;
        let m = (e - s) as f64;
        match batch.targets() {
            Targets::Classes { labels, .. } => {
                let (l, _) = loss::cross_entropy(out.data(), labels, k);
                loss_sum += f64::from(l) * m;
                let pred = crate::model::forward::argmax_rows(&out);
                metric_sum += pred.iter().zip(labels).filter(|(p, y)| p == y).count() as f64;
            }
            Targets::Values(t) => {
                let (l, _) = loss::mse(out.data(), t.data());
                loss_sum += f64::from(l) * m;
                metric_sum += f64::from(l) * m;
            }
        }
        s = e;
    }
    let n = n.max(1) as f64;
    Ok(Evaluation {
        loss: (loss_sum / n) as f32,
        metric: (metric_sum / n) as f32,
        kind: Metric::for_targets(data.targets()),
    })
}

/// Classification accuracy of `net` on `data`.
pub fn accuracy(net: &Network, data: &Dataset) -> Result<f32> {
    Ok(evaluate(net, data)?.metric)
}
