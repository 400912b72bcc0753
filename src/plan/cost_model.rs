//! A per-operation cost model: time of one op as a function of its kind,
//! its level (number of RNS limbs = level + 1) and the ring degree.
//!
//! `seconds(kind, level) = (linear[kind] * limbs + quadratic[kind] * limbs^2)
//! * N / 2^ref_log_n`. Element-wise ops (adds, ct x pt, ct x scalar) are
//! linear in the limbs; rescale is dominated by NTTs (linear, larger
//! constant); key switching (relinearisation, rotation) is quadratic with
//! hybrid key switching. The defaults are rough figures for a native
//! RNS-CKKS on one core at N = 2^14; replace them with measured ones
//! ([`CostModel::set`]) from the HE primitive benches.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::he::{OpCounts, OpKind};

/// Per-op costs (seconds per limb and per limb squared at the reference degree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// log2 N the figures were measured at.
    pub ref_log_n: u32,
    /// Seconds per limb, per kind.
    pub linear: BTreeMap<OpKind, f64>,
    /// Seconds per limb squared, per kind.
    pub quadratic: BTreeMap<OpKind, f64>,
}

impl Default for CostModel {
    fn default() -> Self {
        let mut m = CostModel {
            ref_log_n: 14,
            linear: BTreeMap::new(),
            quadratic: BTreeMap::new(),
        };
        m.set(OpKind::CtCtAdd, 8e-6, 0.0);
        m.set(OpKind::CtPtAdd, 8e-6, 0.0);
        m.set(OpKind::CtScalarMul, 10e-6, 0.0);
        m.set(OpKind::CtPtMul, 16e-6, 0.0);
        m.set(OpKind::CtCtMul, 40e-6, 0.0);
        m.set(OpKind::Rescale, 120e-6, 0.0);
        m.set(OpKind::LevelDrop, 2e-6, 0.0);
        m.set(OpKind::Relinearize, 150e-6, 40e-6);
        m.set(OpKind::Rotation, 150e-6, 40e-6);
        m.set(OpKind::Encode, 150e-6, 0.0);
        m.set(OpKind::Encrypt, 400e-6, 0.0);
        m.set(OpKind::Decrypt, 100e-6, 0.0);
        m
    }
}

impl CostModel {
    /// Set the cost of one kind (seconds per limb, seconds per limb squared).
    pub fn set(&mut self, kind: OpKind, linear: f64, quadratic: f64) {
        self.linear.insert(kind, linear);
        self.quadratic.insert(kind, quadratic);
    }

    /// Seconds for one op of `kind` at `level` with ring degree `2^log_n`.
    pub fn seconds(&self, kind: OpKind, level: u32, log_n: u32) -> f64 {
        let limbs = f64::from(level + 1);
        let a = self.linear.get(&kind).copied().unwrap_or(0.0);
        let b = self.quadratic.get(&kind).copied().unwrap_or(0.0);
        (a * limbs + b * limbs * limbs) * (f64::from(log_n) - f64::from(self.ref_log_n)).exp2()
    }

    /// Seconds for all of `counts` (uses the per-level breakdown).
    pub fn estimate(&self, counts: &OpCounts, log_n: u32) -> f64 {
        counts
            .by_level
            .iter()
            .flat_map(|(lvl, kinds)| {
                kinds
                    .iter()
                    .map(move |(k, n)| *n as f64 * self.seconds(*k, *lvl, log_n))
            })
            .sum()
    }
}
