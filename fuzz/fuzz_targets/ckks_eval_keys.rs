//! Fuzz target `ckks_eval_keys`: see `tests/fuzz_targets/mod.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mofhei_fuzz::ckks_eval_keys(data));
