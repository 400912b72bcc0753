//! The HE conformance suite on the native CKKS backend (N = 2^13, moduli
//! [60, 40, 40] + special [60], scale 2^40).
#[macro_use]
mod conformance;
use mofhei::he::ckks::{Ckks, CkksParams};

conformance_suite!(
    Ckks::new(
        CkksParams::builder()
            .log_n(13)
            .moduli_bits(&[60, 40, 40])
            .special_bits(&[60])
            .scale_bits(40)
            .build()
            .unwrap()
    )
    .unwrap(),
    other = Ckks::new(
        CkksParams::builder()
            .log_n(13)
            .moduli_bits(&[60, 40])
            .special_bits(&[60])
            .scale_bits(40)
            .build()
            .unwrap()
    )
    .unwrap(),
    tolerance = 1e-5,
    magnitude = 1.0,
    cases = 8
);
