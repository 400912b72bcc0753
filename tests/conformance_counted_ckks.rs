//! The HE conformance suite on `Counted<Ckks>`.
#[macro_use]
mod conformance;
use mofhei::he::Counted;
use mofhei::he::ckks::{Ckks, CkksParams};

conformance_suite!(
    Counted::new(
        Ckks::new(
            CkksParams::builder()
                .log_n(13)
                .moduli_bits(&[60, 40, 40])
                .special_bits(&[60])
                .scale_bits(40)
                .build()
                .unwrap()
        )
        .unwrap()
    ),
    other = Counted::new(
        Ckks::new(
            CkksParams::builder()
                .log_n(13)
                .moduli_bits(&[60, 40])
                .special_bits(&[60])
                .scale_bits(40)
                .build()
                .unwrap()
        )
        .unwrap()
    ),
    tolerance = 1e-5,
    magnitude = 1.0,
    cases = 4
);
