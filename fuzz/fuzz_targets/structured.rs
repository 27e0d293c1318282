#![no_main]
//! libFuzzer entry point: see `hippo_core_fuzz::check_structured`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hippo_core_fuzz::check_structured(data));
