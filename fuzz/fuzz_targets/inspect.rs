//! A component's bytes as a package carries them: inspected for imports and exports, never a
//! panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = aerie_core::inspect::inspect_component(bytes);
});
