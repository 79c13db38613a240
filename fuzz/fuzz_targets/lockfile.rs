//! A lockfile as stored for a space: parsed and checked, and what parses writes back the same.
#![no_main]

use aerie_resolve::Lockfile;

libfuzzer_sys::fuzz_target!(|text: &str| {
    if let Ok(lockfile) = Lockfile::parse(text) {
        let again = Lockfile::parse(&lockfile.to_toml()).expect("a lockfile written reads back");
        assert_eq!(again, lockfile);
    }
});
