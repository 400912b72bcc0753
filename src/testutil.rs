//! Test helpers: the networks and reference forward pass of
//! [`crate::conformance::reference`], and a simulator setup from a plan.

pub use crate::conformance::reference::*;

use crate::he::sim::{Sim, SimParams};
use crate::plan::Plan;

/// A simulator matching the plan's chosen moduli, with `slots` slots.
pub fn sim_for(plan: &Plan, slots: usize) -> Sim {
    let p: SimParams = plan.params().sim_params(slots).unwrap();
    Sim::new(p)
}
