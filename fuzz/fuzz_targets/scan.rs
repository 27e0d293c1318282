#![no_main]
//! libFuzzer entry point: see `hippo_core_fuzz::check_scan`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hippo_core_fuzz::check_scan(data));
