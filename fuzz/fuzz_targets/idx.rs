//! Fuzz target `idx`: see `tests/fuzz_targets/mod.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mofhei_fuzz::idx_raw(data));
