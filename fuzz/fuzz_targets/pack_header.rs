#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| arca_fuzz::pack_header(data));
