//! Fuzz target `plan`: see `tests/fuzz_targets/mod.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mofhei_fuzz::plan(data));
