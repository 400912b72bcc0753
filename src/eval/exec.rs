//! The instruction executor: runs a plan wave by wave.

use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::he::doubling::rotate_sum;
use crate::he::{HeScheme, Level, Rotation, Scale, SlotValue};
use crate::plan::{Instr, Step, ValueId};

use super::encrypted::EncryptedOutput;
use super::memory::{PeakProbe, process_cpu_time};
use super::report::{LayerReport, RunReport};
use super::server::Server;

impl<S: HeScheme> Server<S> {
    pub(super) fn execute(
        &self,
        mut values: Vec<Option<S::Ciphertext>>,
        samples: usize,
        fetch: Option<&(dyn Fn(usize) -> Result<S::Ciphertext> + Sync)>,
        peak_live: usize,
    ) -> Result<(EncryptedOutput<S>, RunReport)> {
        let plan = &*self.plan;
        for ct in values.iter().take(plan.input_layout().cts.len()).flatten() {
            self.check_input_level(ct)?;
        }
        let rss = PeakProbe::start(self.reset_peak_rss);
        let cpu0 = process_cpu_time();
        let start = Instant::now();
        let n_layers = plan.layer_kinds().len();
        let mut busy = vec![Duration::ZERO; n_layers];
        let mut instrs = vec![0usize; n_layers];
        let mut begin = 0usize;
        for wave in plan.waves() {
            if let Some(fetch) = fetch {
                let loaded = wave
                    .loads
                    .par_iter()
                    .map(|&j| {
                        let ct = fetch(j as usize)?;
                        self.check_input_level(&ct)?;
                        Ok((j, ct))
                    })
                    .collect::<Result<Vec<_>>>()?;
                for (j, ct) in loaded {
                    if let Some(slot) = values.get_mut(j as usize) {
                        *slot = Some(ct);
                    }
                }
            }
            let end = wave.end as usize;
            let steps = plan.steps().get(begin..end).unwrap_or(&[]);
            // Dot products of a wave run as one blocked call per level
            // (inputs shared by several outputs are read once); the rest
            // instruction by instruction, in parallel.
            let (dots, rest): (Vec<&Step>, Vec<&Step>) = steps
                .iter()
                .partition(|s| matches!(s.instr, Instr::DotScalar { .. }));
            let mut results = rest
                .par_iter()
                .map(|s| {
                    let t = Instant::now();
                    let out = self.exec(s, &values)?;
                    Ok((s.layer as usize, t.elapsed(), out))
                })
                .collect::<Result<Vec<_>>>()?;
            results.extend(self.exec_dots(&dots, &values)?);
            for (layer, dt, outs) in results {
                if let (Some(b), Some(n)) = (busy.get_mut(layer), instrs.get_mut(layer)) {
                    *b += dt;
                    *n += 1;
                }
                for (id, ct) in outs {
                    if let Some(slot) = values.get_mut(id as usize) {
                        *slot = Some(ct);
                    }
                }
            }
            for &f in &wave.frees {
                if let Some(slot) = values.get_mut(f as usize) {
                    *slot = None;
                }
            }
            begin = end;
        }
        let mut cts = Vec::with_capacity(plan.outputs().len());
        for &o in plan.outputs() {
            let ct = match values.get_mut(o as usize).and_then(Option::take) {
                Some(ct) => ct,
                // An output that is an input never read by any wave.
                None => match fetch {
                    Some(f) => f(o as usize)?,
                    None => {
                        return Err(Error::Internal {
                            invariant: "a validated plan's outputs are defined values",
                        });
                    }
                },
            };
            cts.push(ct);
        }
        let wall = start.elapsed();
        let (peak_rss_bytes, rss_growth_bytes) = rss.finish();
        let layers = (0..n_layers)
            .filter(|&l| instrs[l] > 0)
            .map(|l| LayerReport {
                layer: l,
                kind: plan.layer_kinds()[l].clone(),
                instructions: instrs[l],
                busy: busy[l],
            })
            .collect();
        Ok((
            EncryptedOutput {
                cts,
                samples,
                plan_hash: self.plan_hash,
            },
            RunReport {
                wall,
                cpu: process_cpu_time()
                    .zip(cpu0)
                    .map(|(b, a)| b.saturating_sub(a)),
                layers,
                peak_rss_bytes,
                rss_growth_bytes,
                peak_live,
                counts: None,
            },
        ))
    }

    fn get<'v>(
        &self,
        values: &'v [Option<S::Ciphertext>],
        id: ValueId,
    ) -> Result<&'v S::Ciphertext> {
        values
            .get(id as usize)
            .and_then(Option::as_ref)
            .ok_or(Error::Internal {
                invariant: "a validated plan reads only live values",
            })
    }

    fn plain(&self, id: u32) -> Result<&S::Plaintext> {
        self.plains.get(id as usize).ok_or(Error::Internal {
            invariant: "a validated plan names only its own plaintexts",
        })
    }

    /// Runs [`Instr::DotScalar`] steps: per level, one
    /// [`HeScheme::dot_scalar_many`] over the union of their inputs, then a
    /// rescale and the bias per output. The call's time is shared among the
    /// steps' layers in proportion to their terms.
    #[expect(clippy::type_complexity, reason = "(layer, time, outputs) per step")]
    fn exec_dots(
        &self,
        dots: &[&Step],
        values: &[Option<S::Ciphertext>],
    ) -> Result<Vec<(usize, Duration, Vec<(ValueId, S::Ciphertext)>)>> {
        let s = &*self.scheme;
        let mut by_level: std::collections::BTreeMap<u32, Vec<&Step>> = Default::default();
        for &step in dots {
            if let Instr::DotScalar { inputs, .. } = &step.instr {
                let lvl = inputs.first().map_or(0, |&v| self.plan.level(v).0);
                by_level.entry(lvl).or_default().push(step);
            }
        }
        let mut results = Vec::with_capacity(dots.len());
        for (lvl, group) in by_level {
            let t = Instant::now();
            let mut pool: Vec<&S::Ciphertext> = Vec::new();
            let mut index: std::collections::HashMap<ValueId, usize> = Default::default();
            let mut rows = Vec::with_capacity(group.len());
            for step in &group {
                if let Instr::DotScalar {
                    inputs, weights, ..
                } = &step.instr
                {
                    let mut row = Vec::with_capacity(inputs.len());
                    for (&v, &w) in inputs.iter().zip(weights) {
                        let k = match index.get(&v) {
                            Some(&k) => k,
                            None => {
                                pool.push(self.get(values, v)?);
                                index.insert(v, pool.len() - 1);
                                pool.len() - 1
                            }
                        };
                        row.push((k, S::Value::from_f64(w)));
                    }
                    rows.push(row);
                }
            }
            let scale = Scale::new(s.rescale_divisor(Level(lvl))?).ok_or(Error::Internal {
                invariant: "a rescale divisor is a positive prime",
            })?;
            let cts = s.dot_scalar_many(&pool, &rows, scale)?;
            let done = cts
                .into_par_iter()
                .zip(group.par_iter())
                .map(|(mut ct, step)| {
                    s.rescale_assign(&mut ct)?;
                    let (out, bias) = match &step.instr {
                        Instr::DotScalar { out, bias, .. } => (*out, *bias),
                        _ => (0, 0.0),
                    };
                    if bias != 0.0 {
                        s.add_scalar_assign(&mut ct, S::Value::from_f64(bias))?;
                    }
                    Ok((out, ct))
                })
                .collect::<Result<Vec<_>>>()?;
            let dt = t.elapsed();
            let terms: usize = rows.iter().map(Vec::len).sum::<usize>().max(1);
            for ((step, row), outcome) in group.iter().zip(&rows).zip(done) {
                let share = dt.mul_f64(row.len() as f64 / terms as f64);
                results.push((step.layer as usize, share, vec![outcome]));
            }
        }
        Ok(results)
    }

    fn exec(
        &self,
        step: &Step,
        values: &[Option<S::Ciphertext>],
    ) -> Result<Vec<(ValueId, S::Ciphertext)>> {
        let s = &*self.scheme;
        let refs = |ids: &[ValueId]| -> Result<Vec<&S::Ciphertext>> {
            ids.iter().map(|&i| self.get(values, i)).collect()
        };
        Ok(match &step.instr {
            Instr::DotScalar { .. } => self
                .exec_dots(&[step], values)?
                .into_iter()
                .flat_map(|(_, _, outs)| outs)
                .collect(),
            Instr::Sum { out, inputs, bias } => {
                let r = refs(inputs)?;
                let mut ct = s.sum(&r)?;
                if *bias != 0.0 {
                    s.add_scalar_assign(&mut ct, S::Value::from_f64(*bias))?;
                }
                vec![(*out, ct)]
            }
            Instr::Square { out, input } => {
                let x = self.get(values, *input)?;
                vec![(*out, s.mul_relin_rescale(x, x, &self.keys)?)]
            }
            Instr::SquareLazy { out, input } => {
                let x = self.get(values, *input)?;
                vec![(*out, s.mul(x, x)?)]
            }
            Instr::RelinRescale { out, input } => {
                let mut ct = self.get(values, *input)?.clone();
                s.relinearize_assign(&mut ct, &self.keys)?;
                s.rescale_assign(&mut ct)?;
                vec![(*out, ct)]
            }
            Instr::AddScalar { out, input, value } => {
                let mut ct = self.get(values, *input)?.clone();
                s.add_scalar_assign(&mut ct, S::Value::from_f64(*value))?;
                vec![(*out, ct)]
            }
            Instr::DotPlain {
                out,
                inputs,
                plains,
            } => {
                let r = refs(inputs)?;
                let p = plains
                    .iter()
                    .map(|&i| self.plain(i))
                    .collect::<Result<Vec<_>>>()?;
                let mut ct = s.dot_plain(&r, &p)?;
                s.rescale_assign(&mut ct)?;
                vec![(*out, ct)]
            }
            Instr::MulPlain { out, input, plain } => {
                let mut ct = s.mul_plain(self.get(values, *input)?, self.plain(*plain)?)?;
                s.rescale_assign(&mut ct)?;
                vec![(*out, ct)]
            }
            Instr::AddPlain { out, input, plain } => {
                vec![(
                    *out,
                    s.add_plain(self.get(values, *input)?, self.plain(*plain)?)?,
                )]
            }
            Instr::RotateMany { outs, input, steps } => {
                let rs: Vec<Rotation> = steps.iter().map(|&k| Rotation(k)).collect();
                let cts = s.rotate_many(self.get(values, *input)?, &rs, &self.keys)?;
                outs.iter().copied().zip(cts).collect()
            }
            Instr::RotateSum {
                out,
                input,
                stride,
                count,
            } => {
                let acc = rotate_sum(
                    s,
                    self.get(values, *input)?,
                    *stride,
                    u64::from(*count),
                    &self.keys,
                )?;
                vec![(*out, acc)]
            }
            Instr::DropLevel { out, input } => {
                let mut ct = self.get(values, *input)?.clone();
                s.drop_level_assign(&mut ct, self.plan.level(*out))?;
                vec![(*out, ct)]
            }
        })
    }
}
