//! The [`Server`]: checks keys, levels and slots against the plan, encodes
//! the stored model, and runs the plan (the executor is in `exec.rs`).

use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Context, Error, Result};
use crate::he::OpKind;
use crate::he::{Counted, EvaluationKeys, HeScheme, HeWire, Level, Scale, SlotValue};
use crate::plan::{Instr, PlainUse, Plan};

use super::client::check_backend;
use super::encrypted::{EncryptedInput, EncryptedOutput};
use super::report::RunReport;
use super::view::ClientView;
use super::wire;

/// The server: runs a plan with evaluation keys only; cannot decrypt.
///
/// It owns its plan and shares its backend ([`Arc`]), so it can be moved
/// into a thread or an async task and shared between requests.
pub struct Server<S: HeScheme> {
    pub(super) scheme: Arc<S>,
    pub(super) plan: Arc<Plan>,
    pub(super) plan_hash: [u8; 32],
    pub(super) keys: S::EvalKeys,
    pub(super) plains: Vec<S::Plaintext>,
    /// Reset the process's peak-RSS mark before each run.
    pub(super) reset_peak_rss: bool,
}

impl<S: HeScheme> Server<S> {
    /// A server for `plan`. Before any ciphertext work, refuses: keys of
    /// other parameters ([`Error::ParameterMismatch`]), too few levels or
    /// slots, a missing relinearisation key
    /// ([`Error::MissingRelinearizationKey`]) or rotation key
    /// ([`Error::MissingRotationKey`]); input ciphertexts of another secret
    /// key than the keys' are refused when a run starts
    /// ([`Error::KeyMismatch`]). Encodes the plan's plaintexts (the stored
    /// model) at the level and scale each is used at.
    ///
    /// The backend is shared ([`Arc`]: one parameter set serves many key
    /// sets, and a [`Counted`] backend's counts stay readable by its owner);
    /// the plan is taken by value or as an [`Arc`] (one plan shared by the
    /// servers of several key sets).
    pub fn new(scheme: Arc<S>, plan: impl Into<Arc<Plan>>, keys: S::EvalKeys) -> Result<Server<S>> {
        let plan = plan.into();
        plan.validate()?;
        scheme.check_eval_keys(&keys)?;
        let view = ClientView::from_plan(&plan)?;
        check_backend(&*scheme, &view)?;
        let req = plan.key_requirements();
        if req.relinearization() && !keys.supports_relinearization() {
            return Err(Error::MissingRelinearizationKey);
        }
        if let Some(step) = req.rotations().find(|&r| !keys.supports_rotation(r)) {
            return Err(Error::MissingRotationKey { step });
        }
        // Scales of every value, from the backend's moduli (no ciphertext).
        let mut scales: Vec<Option<Scale>> = vec![None; plan.value_count()];
        for s in scales.iter_mut().take(plan.input_layout().cts.len()) {
            *s = Some(scheme.default_scale());
        }
        let mut plain_at: Vec<Option<(Level, Scale)>> = vec![None; plan.plains().len()];
        let bad = |what| Error::Decode {
            what: "plan",
            reason: crate::error::DecodeError::NotConforming { what },
        };
        for step in plan.steps() {
            let ins = step.instr.inputs();
            let lvl = plan.level(ins[0]);
            let sc = scales[ins[0] as usize].ok_or(bad("scale of an undefined value"))?;
            let out_scale = match &step.instr {
                Instr::Square { .. } => sc * sc / scheme.rescale_divisor(lvl)?,
                Instr::SquareLazy { .. } => sc * sc,
                Instr::RelinRescale { .. } => sc / scheme.rescale_divisor(lvl)?,
                _ => sc,
            };
            for p in step.instr.plains() {
                let usage = plan.plains()[p as usize].usage;
                let want = match usage {
                    PlainUse::Mul => (
                        lvl,
                        Scale::new(scheme.rescale_divisor(lvl)?).ok_or(bad("modulus"))?,
                    ),
                    PlainUse::Add => (lvl, sc),
                };
                match plain_at[p as usize] {
                    None => plain_at[p as usize] = Some(want),
                    Some((l, s)) if l == want.0 && s.approx_eq(want.1) => {}
                    Some(_) => return Err(bad("plaintext used at two levels or scales")),
                }
            }
            for o in step.instr.outputs() {
                scales[o as usize] = Some(out_scale);
            }
        }
        let slots = scheme.slot_count();
        let plains = plan
            .plains()
            .par_iter()
            .zip(plain_at)
            .map(|(p, at)| {
                let (lvl, sc) = at.unwrap_or((Level(0), scheme.default_scale()));
                let v: Vec<S::Value> = replicate(&p.values, plan.period(), slots);
                Ok(scheme.encode(&v, lvl, sc)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Server {
            scheme,
            plan,
            plan_hash: view.plan_hash(),
            keys,
            plains,
            reset_peak_rss: false,
        })
    }

    /// Reset the process's peak-RSS mark before each run (Linux
    /// `clear_refs`), so that [`RunReport::peak_rss_bytes`] is always the
    /// run's peak. Off by default: the mark is process-wide, and resetting
    /// it changes what every other reader of it sees (other servers in the
    /// process, a supervisor reading `VmHWM`); without it a run reports its
    /// peak only when it raised the process's mark.
    pub fn set_peak_rss_reset(&mut self, reset: bool) {
        self.reset_peak_rss = reset;
    }

    /// The plan served.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The backend.
    pub fn scheme(&self) -> &Arc<S> {
        &self.scheme
    }

    /// The evaluation keys held.
    pub fn keys(&self) -> &S::EvalKeys {
        &self.keys
    }

    /// Run the plan on encrypted inputs (all present from the start).
    pub fn run(&self, input: EncryptedInput<S>) -> Result<(EncryptedOutput<S>, RunReport)> {
        let plan = &*self.plan;
        if input.plan_hash != self.plan_hash {
            return Err(Error::WrongContext {
                what: "encrypted input",
                context: Context::Plan,
            });
        }
        if input.cts.len() != plan.input_layout().cts.len() {
            return Err(Error::CountMismatch {
                what: "input ciphertexts",
                expected: plan.input_layout().cts.len(),
                found: input.cts.len(),
            });
        }
        let samples = input.samples;
        let mut values: Vec<Option<S::Ciphertext>> = Vec::with_capacity(plan.value_count());
        values.extend(input.cts.into_iter().map(Some));
        values.resize_with(plan.value_count(), || None);
        self.execute(values, samples, None, plan.peak_live())
    }

    /// Run the plan fetching each input ciphertext just before the first wave
    /// that reads it (e.g. from [`Client::input_source`](super::Client::input_source)), so inputs occupy
    /// memory only while needed ([`Plan::peak_live_streamed`]).
    pub fn run_streamed<F>(
        &self,
        samples: usize,
        fetch: F,
    ) -> Result<(EncryptedOutput<S>, RunReport)>
    where
        F: Fn(usize) -> Result<S::Ciphertext> + Sync,
    {
        let mut values: Vec<Option<S::Ciphertext>> = Vec::with_capacity(self.plan.value_count());
        values.resize_with(self.plan.value_count(), || None);
        self.execute(
            values,
            samples,
            Some(&fetch),
            self.plan.peak_live_streamed(),
        )
    }

    pub(super) fn check_input_level(&self, ct: &S::Ciphertext) -> Result<()> {
        crate::he::checks::same_key(
            OpKind::Encrypt,
            self.keys.key_id(),
            self.scheme.ciphertext_key_id(ct),
        )?;
        let want = Level(self.plan.depth());
        if self.scheme.level(ct) != want {
            return Err(Error::LevelMismatch {
                op: OpKind::Encrypt,
                left: self.scheme.level(ct),
                right: want,
            });
        }
        Ok(())
    }
}

/// Replicate a period-long vector over `slots` slots.
fn replicate<V: SlotValue>(values: &[f64], period: Option<usize>, slots: usize) -> Vec<V> {
    let mut out = vec![V::zero(); slots];
    let period = period.unwrap_or(slots).max(1);
    for c in 0..slots / period {
        for (i, &v) in values.iter().enumerate() {
            if let Some(o) = out.get_mut(c * period + i) {
                *o = V::from_f64(v);
            }
        }
    }
    out
}

/// The most bytes an encrypted input of `plan` on `scheme` can take (a
/// server's request-size limit before it holds any key).
pub fn input_size_limit<S: HeWire>(scheme: &S, plan: &Plan) -> u64 {
    wire::bundle_limit(scheme, plan.input_layout().cts.len())
}

impl<S: HeWire> Server<S> {
    /// A server whose evaluation keys are read from bytes (the size limit
    /// derived from the parameters and the plan's key requirements, which
    /// the keys must meet).
    pub fn from_key_bytes(
        scheme: Arc<S>,
        plan: impl Into<Arc<Plan>>,
        bytes: &[u8],
    ) -> Result<Server<S>> {
        let plan = plan.into();
        let keys = scheme.eval_keys_from_bytes(bytes, plan.key_requirements())?;
        Server::new(scheme, plan, keys)
    }

    /// The client's view of the plan, with these parameters.
    pub fn client_view(&self) -> Result<ClientView> {
        ClientView::new(&self.plan, &*self.scheme)
    }

    /// The hash of the plan served.
    pub fn plan_hash(&self) -> [u8; 32] {
        self.plan_hash
    }

    /// The most bytes an encrypted input of this plan can take (for a
    /// request-size limit).
    pub fn input_size_limit(&self) -> u64 {
        input_size_limit(&*self.scheme, &self.plan)
    }

    /// Encrypted inputs from uploaded bytes ([`Client::encrypt_to_bytes`](super::Client::encrypt_to_bytes)):
    /// refuses another plan's or parameter set's ([`Error::WrongContext`])
    /// before decoding a ciphertext, then checks every ciphertext against
    /// the parameters and the plan's input level.
    pub fn input_from_bytes(&self, bytes: &[u8]) -> Result<EncryptedInput<S>> {
        let count = self.plan.input_layout().cts.len();
        let expect = wire::Expect {
            fingerprint: self.scheme.fingerprint(),
            plan_hash: self.plan_hash,
            count,
            max_samples: self.plan.samples(self.scheme.slot_count()),
        };
        let (samples, parts) = wire::open(&wire::INPUT, bytes, self.input_size_limit(), &expect)?;
        let cts = parts
            .into_par_iter()
            .map(|b| {
                let ct = self.scheme.fresh_ciphertext_from_bytes(b)?;
                self.check_input_level(&ct)?;
                Ok(ct)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedInput {
            cts,
            samples,
            plan_hash: self.plan_hash,
        })
    }

    /// Runs the plan on uploaded bytes and returns the outputs as bytes.
    pub fn run_bytes(&self, bytes: &[u8]) -> Result<(Vec<u8>, RunReport)> {
        let input = self.input_from_bytes(bytes)?;
        let (out, report) = self.run(input)?;
        Ok((out.to_bytes(&self.scheme)?, report))
    }
}

impl<X: HeScheme> Server<Counted<X>> {
    /// [`Server::run`] with the op counts of the run in the report (resets
    /// the wrapper's counts first; they hold the run's counts afterwards).
    pub fn run_counted(
        &self,
        input: EncryptedInput<Counted<X>>,
    ) -> Result<(EncryptedOutput<Counted<X>>, RunReport)> {
        let _ = self.scheme.take_counts();
        let (out, mut report) = self.run(input)?;
        report.counts = Some(self.scheme.counts());
        Ok((out, report))
    }
}
