//! `BatchNormalization` in inference mode.

use super::super::attributes::{attr_float, attr_int};
use super::super::graph::Importer;
use crate::error::Result;
use crate::model::{BatchNorm, Layer};

impl<'g, 'r> Importer<'g, 'r> {
    pub(super) fn batch_norm(&mut self, index: usize) -> Result<()> {
        let (node, bad) = self.node_at(index);
        if attr_int(node, "training_mode").map_err(bad)?.unwrap_or(0) != 0 {
            return Err(bad(
                "training_mode = 1 is not supported: export in inference mode (model.eval())",
            ));
        }
        let eps = attr_float(node, "epsilon").map_err(bad)?.unwrap_or(1e-5);
        let momentum = attr_float(node, "momentum").map_err(bad)?.unwrap_or(0.9);
        let mut params = Vec::with_capacity(4);
        for slot in 1..=4 {
            let c = self.required_const(
                index,
                slot,
                "BatchNormalization needs constant scale, bias, mean and variance",
            )?;
            params.push(c.to_f32());
        }
        let [gamma, beta, mean, var] = <[Vec<f32>; 4]>::try_from(params)
            .map_err(|_| bad("BatchNormalization needs four parameter tensors"))?;
        self.push(Layer::BatchNorm(BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps,
            // ONNX keeps `momentum` of the old running value; the IR (as
            // PyTorch) gives the weight of the new batch statistic.
            momentum: 1.0 - momentum,
        }))
    }
}
