//! The training schedule of the HE-friendly transformation.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Replacement, fold_batchnorm, is_he_friendly, observe_inputs, replace_layer};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Activation, Layer, Network};
use crate::train::{Distillation, Freeze, Plateau, Progress, TrainConfig, Trainer, evaluate};

/// Layer by layer (MOFHEI) or everything at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Replace one layer at a time, from the last to the first; after each,
    /// train the layers from the replaced one on (earlier ones frozen), then
    /// fine-tune everything.
    LayerByLayer,
    /// Replace every layer, then train everything.
    AllAtOnce,
}

/// Hyper-parameters of the transformation. [`HeFriendlyConfig::mofhei`] is
/// the published setting.
#[derive(Debug, Clone)]
pub struct HeFriendlyConfig {
    /// What activations become.
    pub replacement: Replacement,
    /// Layer by layer or all at once.
    pub mode: Mode,
    /// Training after each replacement (layers before it frozen).
    pub train: TrainConfig,
    /// Fine-tuning of everything after each replacement (`epochs = 0` skips).
    pub fine_tune: TrainConfig,
    /// Knowledge distillation from the original network: `(temperature, alpha)`.
    pub distillation: Option<(f32, f32)>,
    /// Stop a phase as soon as the validation metric reaches the original's.
    pub stop_at_original: bool,
    /// Samples used to observe activation inputs (least-squares init).
    pub calibration_samples: usize,
}

impl HeFriendlyConfig {
    /// MOFHEI's setting: degree-2 polynomial per layer initialised to 1e-5;
    /// layer by layer; Adam lr 1e-3 then fine-tuning at 1e-4; batch 128;
    /// early stopping (patience 10) with best-weight restore;
    /// reduce-LR-on-plateau (x0.5, patience 5); no distillation.
    pub fn mofhei(max_epochs: usize, seed: u64) -> HeFriendlyConfig {
        let base = TrainConfig {
            epochs: max_epochs,
            batch_size: 128,
            lr: 1e-3,
            seed,
            early_stopping: Some(10),
            restore_best: true,
            plateau: Some(Plateau {
                factor: 0.5,
                patience: 5,
                min_lr: 1e-6,
            }),
            ..TrainConfig::default()
        };
        HeFriendlyConfig {
            replacement: Replacement::mofhei(),
            mode: Mode::LayerByLayer,
            fine_tune: TrainConfig {
                lr: 1e-4,
                ..base.clone()
            },
            train: base,
            distillation: None,
            stop_at_original: true,
            calibration_samples: 512,
        }
    }
}

/// What happened to one replaced layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Index of the replaced layer.
    pub layer: usize,
    /// Kind before (`relu`, `maxpool2d`, ...).
    pub from: String,
    /// Kind after (`poly`, `square`, `avgpool2d`).
    pub to: String,
    /// Validation metric right after the replacement, before training.
    pub metric_replaced: f32,
    /// Validation metric after training and fine-tuning.
    pub metric_trained: f32,
    /// Epochs run (train + fine-tune).
    pub epochs: usize,
    /// Wall time of this step, seconds.
    pub seconds: f64,
}

/// The report of one transformation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformReport {
    /// Validation metric of the original network.
    pub metric_before: f32,
    /// Validation metric of the HE-friendly network.
    pub metric_after: f32,
    /// Per replaced layer, in the order replaced.
    pub steps: Vec<StepReport>,
    /// The polynomial coefficients chosen, per activation layer index
    /// (`a_0` first; one set per layer or per channel).
    pub coefficients: Vec<(usize, Vec<Vec<f32>>)>,
    /// Total wall time, seconds.
    pub seconds: f64,
}

/// Makes `original` HE-friendly: batch-norm folded, max-pools averaged,
/// activations replaced by polynomials and trained per `config` on `train`,
/// monitored on `validation`. Returns the network (only layers every packing
/// supports: linear layers, average pools, flatten, dropout, polynomial
/// activations) and a report.
pub fn make_he_friendly(
    original: &Network,
    train: &Dataset,
    validation: &Dataset,
    config: &HeFriendlyConfig,
    progress: &mut dyn Progress,
) -> Result<(Network, TransformReport)> {
    config.replacement.validate()?;
    if validation.is_empty() {
        return Err(Error::EmptyInput {
            what: "validation samples",
        });
    }
    let start = Instant::now();
    let metric_before = evaluate(original, validation)?.metric;
    let mut net = fold_batchnorm(original)?;
    let mut pending: Vec<usize> = (0..net.layers.len())
        .filter(|&i| !is_he_friendly(&net.layers[i]))
        .collect();
    pending.reverse(); // last to first
    let calibration = {
        let n = config.calibration_samples.min(train.len()).max(1);
        let idx: Vec<usize> = (0..n).collect();
        train.subset(&idx)?
    };
    let target = config.stop_at_original.then_some(metric_before);
    let distill = config
        .distillation
        .map(|(temperature, alpha)| Distillation {
            teacher: original.clone(),
            temperature,
            alpha,
        });

    let groups: Vec<Vec<usize>> = match config.mode {
        Mode::LayerByLayer => pending.iter().map(|&i| vec![i]).collect(),
        Mode::AllAtOnce => vec![pending.clone()],
    };
    let total = groups.len();
    let mut steps = Vec::new();
    for (k, group) in groups.iter().enumerate() {
        let step_start = Instant::now();
        let first = group.iter().copied().min().unwrap_or(0);
        let from: Vec<&'static str> = group.iter().map(|&i| net.layers[i].kind()).collect();
        progress.on_stage(k + 1, total, first, &from.join("+"));
        let observed = observe_inputs(&net, calibration.inputs(), 4096)?;
        for &i in group {
            replace_layer(&mut net, i, config.replacement, Some(&observed[i]))?;
        }
        let metric_replaced = evaluate(&net, validation)?.metric;
        let mut epochs = 0;
        let phases = [
            (config.train.clone(), Freeze::before(first)),
            (config.fine_tune.clone(), Freeze::default()),
        ];
        for (phase, freeze) in phases {
            if phase.epochs == 0 {
                continue;
            }
            let cfg = TrainConfig {
                freeze,
                target_metric: target,
                distillation: distill.clone(),
                seed: phase.seed.wrapping_add(k as u64),
                ..phase
            };
            let mut trainer = Trainer::new(cfg);
            let history = trainer.fit(&mut net, train, Some(validation), progress)?;
            epochs += history.epochs.len();
        }
        let metric_trained = evaluate(&net, validation)?.metric;
        let to: Vec<&'static str> = group.iter().map(|&i| net.layers[i].kind()).collect();
        steps.push(StepReport {
            layer: first,
            from: from.join("+"),
            to: to.join("+"),
            metric_replaced,
            metric_trained,
            epochs,
            seconds: step_start.elapsed().as_secs_f64(),
        });
    }
    let coefficients = net
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match l {
            Layer::Activation(Activation::Poly(p)) => Some((i, p.coeffs.clone())),
            _ => None,
        })
        .collect();
    let metric_after = evaluate(&net, validation)?.metric;
    Ok((
        net,
        TransformReport {
            metric_before,
            metric_after,
            steps,
            coefficients,
            seconds: start.elapsed().as_secs_f64(),
        },
    ))
}
