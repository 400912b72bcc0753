//! The HE conformance suite on the BFV backend (`fhe` crate), directly and
//! wrapped in `Counted`.
//!
//! BFV slots hold integers centred modulo `t = 65537`: sample values in
//! [-100, 100] keep every law's result (products, sums of three products,
//! sums of four slots) far below `t / 2`, so the comparison is exact
//! (tolerance 0). The parameters are a small insecure test set (N = 64,
//! 32 slots) so the suite runs in seconds.
#![cfg(feature = "bfv")]

#[macro_use]
mod conformance;

#[expect(clippy::unwrap_used, reason = "test fixture: fixed, valid parameters")]
fn params() -> mofhei::he::bfv::BfvParams {
    mofhei::he::bfv::BfvParams::builder()
        .degree(64)
        .plaintext_modulus(65537)
        .moduli_sizes(&[55, 45, 45, 55])
        .build_insecure_for_tests()
        .unwrap()
}

/// Another parameter set (one modulus fewer), for the wrong-parameter law.
#[expect(clippy::unwrap_used, reason = "test fixture: fixed, valid parameters")]
fn other_params() -> mofhei::he::bfv::BfvParams {
    mofhei::he::bfv::BfvParams::builder()
        .degree(64)
        .plaintext_modulus(65537)
        .moduli_sizes(&[55, 45, 55])
        .build_insecure_for_tests()
        .unwrap()
}

mod bfv {
    use super::conformance;
    use mofhei::he::bfv::Bfv;

    conformance_suite!(
        Bfv::new(super::params()),
        other = Bfv::new(super::other_params()),
        tolerance = 0.0,
        magnitude = 100.0,
        cases = 16
    );
}

mod counted_bfv {
    use super::conformance;
    use mofhei::he::Counted;
    use mofhei::he::bfv::Bfv;

    conformance_suite!(
        Counted::new(Bfv::new(super::params())),
        other = Counted::new(Bfv::new(super::other_params())),
        tolerance = 0.0,
        magnitude = 100.0,
        cases = 8
    );
}
