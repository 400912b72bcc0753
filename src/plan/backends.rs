//! Backends chosen for a plan: the smallest 128-bit-secure parameters of
//! each scheme that hold it. These inherent impls live here, not in
//! [`crate::he`], so the HE layer does not depend on the plan.

use super::Plan;
use crate::error::Result;
#[cfg(feature = "bfv")]
use crate::he::bfv::{Bfv, BfvParams};
use crate::he::ckks::Ckks;

impl Ckks {
    /// The backend for the smallest 128-bit-secure parameters a plan fits,
    /// from the backend-neutral requirements it records (depth, slots,
    /// scale and prime sizes: [`Plan::params`]).
    pub fn for_plan(plan: &Plan) -> Result<Ckks> {
        Ok(Ckks::new(plan.params().ckks_params()?)?)
    }
}

#[cfg(feature = "bfv")]
impl Bfv {
    /// The backend for the smallest 128-bit-secure parameters a quantised
    /// plan fits ([`BfvParams::for_requirements`]: its slot count, a plaintext
    /// modulus its accumulators cannot overflow, one modulus per level).
    ///
    /// Errors: a real-valued plan ([`crate::Error::Incompatible`]), and
    /// those of [`BfvParams::for_requirements`].
    pub fn for_plan(plan: &Plan) -> Result<Bfv> {
        let integer = plan.integer().ok_or(crate::Error::Incompatible {
            what: "a real-valued plan",
            with: "BFV parameters (compile a quantised network with compile_quantized)",
        })?;
        let params = BfvParams::for_requirements(
            integer.min_plaintext_modulus()?,
            plan.depth(),
            plan.params().log_n,
            plan.key_requirements().rotations().next().is_some(),
        )?;
        Ok(Bfv::new(params))
    }
}
