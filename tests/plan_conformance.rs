//! The plan-level conformance suite ([`mofhei::conformance`]) on every
//! backend of the crate: the simulator, `Counted<Sim>`, CKKS (insecure toy
//! ring sizes, fast) and BFV (quantised plans, 128-bit parameters chosen
//! for each plan). A third-party backend instantiates it the same way.
#![cfg(feature = "conformance")]

use mofhei::plan::Plan;

mod sim {
    use super::Plan;
    use mofhei::he::sim::Sim;

    fn make(plan: &Plan, slots: usize) -> mofhei::Result<Sim> {
        Ok(Sim::new(plan.params().sim_params(slots)?))
    }
    mofhei::plan_conformance_suite!(make, tolerance = 1e-6);
}

mod counted_sim {
    use super::Plan;
    use mofhei::he::Counted;
    use mofhei::he::sim::Sim;

    fn make(plan: &Plan, slots: usize) -> mofhei::Result<Counted<Sim>> {
        Ok(Counted::new(Sim::new(plan.params().sim_params(slots)?)))
    }
    mofhei::plan_conformance_suite!(make, tolerance = 1e-6);
}

mod ckks {
    use super::Plan;
    use mofhei::he::ckks::{Ckks, CkksParams};

    /// The plan's moduli at the smallest ring with `slots` slots (at least
    /// 2^4): insecure, test-only sizes.
    fn make(plan: &Plan, slots: usize) -> mofhei::Result<Ckks> {
        let c = plan.params();
        let log_n = (2 * slots).next_power_of_two().trailing_zeros().max(4);
        Ok(Ckks::new(CkksParams::insecure_for_tests(
            log_n,
            &c.moduli_bits,
            &c.special_bits,
            c.scale_bits,
        )?)?)
    }
    mofhei::plan_conformance_suite!(make, tolerance = 1e-3);
}

#[cfg(feature = "bfv")]
mod bfv {
    use super::Plan;
    use mofhei::he::bfv::{Bfv, BfvParams, smallest_simd_plaintext_modulus};

    /// A quantised plan: N = 2^12, the smallest SIMD prime `t` its
    /// accumulators need, and one 60-bit prime per level plus `q_0` (test
    /// sizes: up to depth 2 this is within the 128-bit bound, deeper not).
    /// A real-valued plan gets a small fixed set, on which the suite's
    /// float cases return at once.
    ///
    /// Not `BfvParams::for_plan`: with its parameters the diagonal-packed
    /// quantised case decrypts wrong values (batch and tile are exact);
    /// 60-bit primes per level are, so presumably its per-level noise
    /// margin is too small for the diagonal packing's rotations.
    fn make(plan: &Plan, slots: usize) -> mofhei::Result<Bfv> {
        let Some(q) = plan.integer() else {
            return Ok(Bfv::new(
                BfvParams::builder()
                    .degree(64)
                    .plaintext_modulus(65537)
                    .moduli_sizes(&[55, 45, 55])
                    .build_insecure_for_tests()?,
            ));
        };
        let degree = (2 * slots).next_power_of_two().max(4096);
        let t = smallest_simd_plaintext_modulus(q.min_plaintext_modulus()?, degree).ok_or(
            mofhei::Error::InvalidParameter {
                name: "plaintext modulus",
                value: degree as i64,
                allowed: "a SIMD prime below 2^62 for this degree",
            },
        )?;
        Ok(Bfv::new(
            BfvParams::builder()
                .degree(degree)
                .plaintext_modulus(t)
                .moduli_sizes(&vec![60; plan.depth() as usize + 1])
                .build_insecure_for_tests()?,
        ))
    }
    mofhei::plan_conformance_suite!(make, tolerance = 0.0);
}
