//! The HE conformance suite on the simulator.
#[macro_use]
mod conformance;
use mofhei::he::sim::{Sim, SimParams};

conformance_suite!(
    Sim::new(SimParams::new(64, &[60, 40, 40, 40], 40).unwrap()),
    other = Sim::new(SimParams::new(64, &[60, 40, 40], 40).unwrap()),
    tolerance = 1e-9,
    magnitude = 1.0,
    cases = 64
);
