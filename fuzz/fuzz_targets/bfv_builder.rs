//! Fuzz target `bfv_builder`: see `tests/fuzz_targets/mod.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mofhei_fuzz::bfv_builder(data));
