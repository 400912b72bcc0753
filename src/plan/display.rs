//! The human-readable summary of a [`Plan`].

use super::Plan;

impl std::fmt::Display for Plan {
    /// A human-readable summary: packing, depth, parameters, keys, counts,
    /// live set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.params;
        writeln!(f, "plan: {:?} packing", self.packing)?;
        writeln!(
            f,
            "  input {:?} -> output {:?}, {} input ciphertexts, {} output ciphertexts",
            self.input_shape,
            self.output_shape,
            self.input.cts.len(),
            self.outputs.len()
        )?;
        writeln!(
            f,
            "  depth {}; CKKS N = 2^{}, moduli {:?} + special {:?} ({} bits), scale 2^{}",
            self.depth,
            p.log_n,
            p.moduli_bits,
            p.special_bits,
            p.log_qp(),
            p.scale_bits
        )?;
        if let Some(q) = &self.integer {
            let max = q.layer_bounds().iter().copied().max().unwrap_or(0);
            writeln!(
                f,
                "  integer plan: accumulators up to {} ({:.1} bits), plaintext modulus needed t > {}",
                max,
                (max.max(1) as f64).log2(),
                max.saturating_mul(2)
            )?;
        }
        writeln!(
            f,
            "  keys: relinearization {}, {} rotation steps",
            self.keys.relinearization(),
            self.keys.rotations().count()
        )?;
        writeln!(
            f,
            "  {} instructions in {} waves, {} stored plaintexts, peak {} live ciphertexts ({} streamed)",
            self.steps.len(),
            self.waves.len(),
            self.plains.len(),
            self.peak_live,
            self.peak_live_streamed
        )?;
        write!(f, "  ops:")?;
        for (k, n) in &self.counts.total {
            write!(
                f,
                " {}={}",
                serde_json::to_string(k)
                    .unwrap_or_default()
                    .trim_matches('"'),
                n
            )?;
        }
        Ok(())
    }
}
