//! `aerie.toml` as a publisher writes it: parsed and checked, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = aerie_core::manifest::Manifest::parse(text);
});
