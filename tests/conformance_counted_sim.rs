//! The HE conformance suite on `Counted<Sim>`.
#[macro_use]
mod conformance;
use mofhei::he::Counted;
use mofhei::he::sim::{Sim, SimParams};

conformance_suite!(
    Counted::new(Sim::new(SimParams::new(64, &[60, 40, 40, 40], 40).unwrap())),
    other = Counted::new(Sim::new(SimParams::new(64, &[60, 40, 40], 40).unwrap())),
    tolerance = 1e-9,
    magnitude = 1.0,
    cases = 32
);
