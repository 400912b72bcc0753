//! Consistency checks of a [`Plan`] ([`Plan::validate`]): what a plan read
//! from bytes, or built by hand, must satisfy before a client or server
//! uses it.

use super::{Instr, OutputElem, Plan};
use crate::error::{Error, PlanError, Result};

impl Plan {
    /// Internal consistency: ids in range, values defined before use and not
    /// used after being freed, levels consistent with the instructions, waves
    /// covering every step, secure parameters, finite constants. A plan
    /// [`crate::compile::compile`] returns or [`Plan::from_bytes`] accepts
    /// passes; [`crate::eval::Client::new`] and [`crate::eval::Server::new`]
    /// check it again, so a plan built or altered in memory cannot be run
    /// inconsistent. Public so that a tool holding a plan from elsewhere
    /// (a cache, a registry) can check it before handing it out.
    ///
    /// # Errors
    /// [`Error::InvalidPlan`] naming the first check that failed.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason| Error::InvalidPlan { reason };
        self.validate_fields()?;
        let n = self.levels.len();
        let n_in = self.input.cts.len();
        if n_in > n || self.levels.iter().take(n_in).any(|&l| l != self.depth) {
            return Err(bad(PlanError::InputValues));
        }
        if self.levels.iter().any(|&l| l > self.depth) {
            return Err(bad(PlanError::LevelAboveDepth));
        }
        // 0 = undefined, 1 = live, 2 = freed.
        let mut state = vec![0u8; n];
        state.iter_mut().take(n_in).for_each(|s| *s = 1);
        let mut start = 0usize;
        let mut loaded = vec![false; n_in];
        for w in &self.waves {
            for &l in &w.loads {
                match loaded.get_mut(l as usize) {
                    Some(x) if !*x => *x = true,
                    _ => return Err(bad(PlanError::WaveLoads)),
                }
            }
            let end = w.end as usize;
            if end < start || end > self.steps.len() {
                return Err(bad(PlanError::WaveBounds));
            }
            let wave = &self.steps[start..end];
            for s in wave {
                let ins = s.instr.inputs();
                if ins.is_empty() {
                    return Err(bad(PlanError::InstructionWithoutInputs));
                }
                if ins.iter().any(|&v| state.get(v as usize) != Some(&1)) {
                    return Err(bad(PlanError::UseOutsideLifetime));
                }
                if ins
                    .iter()
                    .any(|&v| (v as usize) < n_in && !loaded[v as usize])
                {
                    return Err(bad(PlanError::InputBeforeLoad));
                }
                let lvl = self.levels[ins[0] as usize];
                if ins.iter().any(|&v| self.levels[v as usize] != lvl) {
                    return Err(bad(PlanError::OperandLevels));
                }
                if s.instr
                    .plains()
                    .iter()
                    .any(|&p| p as usize >= self.plains.len())
                {
                    return Err(bad(PlanError::PlainId));
                }
                let used = s.instr.levels_used();
                if lvl < used {
                    return Err(bad(PlanError::LevelExhausted));
                }
                match &s.instr {
                    Instr::DotScalar {
                        inputs, weights, ..
                    } if inputs.len() != weights.len() => {
                        return Err(bad(PlanError::DotTerms));
                    }
                    Instr::DotPlain { inputs, plains, .. } if inputs.len() != plains.len() => {
                        return Err(bad(PlanError::DotTerms));
                    }
                    Instr::RotateMany { outs, steps, .. } if outs.len() != steps.len() => {
                        return Err(bad(PlanError::RotationOutputs));
                    }
                    Instr::RotateSum { count, stride, .. }
                        if !count.is_power_of_two()
                            || stride.checked_mul(i64::from(*count)).is_none() =>
                    {
                        return Err(bad(PlanError::RotateSumCount));
                    }
                    _ => {}
                }
                for o in s.instr.outputs() {
                    let Some(st) = state.get(o as usize) else {
                        return Err(bad(PlanError::ValueId));
                    };
                    let want = match &s.instr {
                        Instr::DropLevel { .. } => self.levels[o as usize] <= lvl,
                        _ => self.levels[o as usize] == lvl - used,
                    };
                    if *st != 0 || !want {
                        return Err(bad(PlanError::OutputRedefined));
                    }
                }
            }
            for s in wave {
                for o in s.instr.outputs() {
                    state[o as usize] = 1;
                }
            }
            for &f in &w.frees {
                match state.get_mut(f as usize) {
                    Some(s) if *s == 1 => *s = 2,
                    _ => return Err(bad(PlanError::FreeOfDeadValue)),
                }
            }
            start = end;
        }
        if start != self.steps.len() {
            return Err(bad(PlanError::WavesIncomplete));
        }
        // The stored op counts (cost reports) must be those of the steps.
        if self.counts != self.count_ops(self.params.slots()) {
            return Err(bad(PlanError::OpCounts));
        }
        if self
            .outputs
            .iter()
            .any(|&o| state.get(o as usize) != Some(&1))
        {
            return Err(bad(PlanError::OutputValue));
        }
        for e in &self.output_map {
            if let OutputElem::Slot { ct, .. } = e
                && *ct as usize >= self.outputs.len()
            {
                return Err(bad(PlanError::OutputMap));
            }
        }
        let out_len =
            crate::model::checked_product(&self.output_shape).ok_or(bad(PlanError::OutputShape))?;
        let in_len =
            crate::model::checked_product(&self.input_shape).ok_or(bad(PlanError::InputShape))?;
        if self.output_map.len() != out_len {
            return Err(bad(PlanError::OutputMapLength));
        }
        if self
            .input
            .cts
            .iter()
            .flatten()
            .any(|&(_, e)| e as usize >= in_len)
        {
            return Err(bad(PlanError::InputLayoutElement));
        }
        if self
            .integer
            .as_ref()
            .is_some_and(|q| !q.is_consistent(out_len))
        {
            return Err(bad(PlanError::IntegerPlan));
        }
        let period = self.period.unwrap_or(usize::MAX);
        if self.period == Some(0)
            || self
                .input
                .cts
                .iter()
                .flatten()
                .any(|&(s, _)| s as usize >= period)
            || self.plains.iter().any(|p| p.values.len() > period)
        {
            return Err(bad(PlanError::SlotBeyondPeriod));
        }
        Ok(())
    }

    /// The checks of [`Plan::validate`] on single fields (no cross
    /// references): a sample count of at least one, secure and consistent
    /// CKKS parameters, finite constants, and stored plaintexts with at
    /// least one non-zero value (the compiler never emits an all-zero
    /// plaintext: a zero diagonal, tile or bias emits nothing, and trailing
    /// zeros are trimmed, so an empty or zero plaintext is a tampered plan
    /// that would silently compute zeros).
    fn validate_fields(&self) -> Result<()> {
        let bad = |reason| Error::InvalidPlan { reason };
        if self.samples == Some(0) {
            return Err(bad(PlanError::Samples));
        }
        let p = &self.params;
        let log_qp = p
            .moduli_bits
            .iter()
            .chain(&p.special_bits)
            .try_fold(0u32, |acc, &b| acc.checked_add(b));
        let secure = match log_qp {
            Some(q) => crate::he::security::check_128_bit(p.log_n, q).is_ok(),
            None => false,
        };
        if !(1..=16).contains(&p.log_n)
            || !secure
            || p.special_bits.is_empty()
            || p.scale_bits == 0
            || u64::try_from(p.moduli_bits.len()).ok() != Some(u64::from(self.depth) + 1)
        {
            return Err(bad(PlanError::Parameters));
        }
        let finite = |v: f64| v.is_finite();
        let instr_finite = |i: &Instr| match i {
            Instr::DotScalar { weights, bias, .. } => {
                weights.iter().all(|&w| finite(w)) && finite(*bias)
            }
            Instr::Sum { bias, .. } => finite(*bias),
            Instr::AddScalar { value, .. } => finite(*value),
            _ => true,
        };
        if !self.steps.iter().all(|s| instr_finite(&s.instr)) {
            return Err(bad(PlanError::NonFiniteInstruction));
        }
        if !self.output_map.iter().all(|o| match *o {
            OutputElem::Const(v) => finite(v),
            OutputElem::Slot { alpha, beta, .. } => finite(alpha) && finite(beta),
        }) {
            return Err(bad(PlanError::NonFiniteOutputMap));
        }
        for p in &self.plains {
            if !p.values.iter().all(|&v| finite(v)) {
                return Err(bad(PlanError::NonFinitePlain));
            }
            if p.values.last().is_none_or(|&v| v == 0.0) {
                return Err(bad(PlanError::ZeroPlain));
            }
        }
        Ok(())
    }
}
