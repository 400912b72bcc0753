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
    use mofhei::he::bfv::{Bfv, BfvParams};

    /// A quantised plan: the parameters the backend chooses for it
    /// (`Bfv::for_plan`, 128-bit secure). A real-valued plan gets a small
    /// fixed set, on which the suite's float cases return at once.
    fn make(plan: &Plan, _slots: usize) -> mofhei::Result<Bfv> {
        if plan.integer().is_none() {
            return Ok(Bfv::new(
                BfvParams::builder()
                    .degree(64)
                    .plaintext_modulus(65537)
                    .moduli_sizes(&[55, 45, 55])
                    .build_insecure_for_tests()?,
            ));
        }
        Bfv::for_plan(plan)
    }
    mofhei::plan_conformance_suite!(make, tolerance = 0.0);
}
