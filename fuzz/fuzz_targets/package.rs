//! A package as a client uploads it: decompressed, unpacked and checked within the limits,
//! never a panic.
#![no_main]

use aerie_core::package::{PackageLimits, read_package};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let limits = PackageLimits {
        // Small enough that a bomb is caught within a fuzz run's memory.
        max_uncompressed: 8 * 1024 * 1024,
        ..PackageLimits::default()
    };
    let _ = read_package(bytes, &limits);
});
