//! A `Range` header: whatever it says, a range answered lies within the body.
#![no_main]

use aerie_core::range::{RangeRequest, parse_range};

libfuzzer_sys::fuzz_target!(|input: (&str, u64)| {
    let (header, size) = input;
    if let RangeRequest::Bytes(start, end) = parse_range(header, size) {
        assert!(
            start <= end && end < size,
            "{header:?} over {size}: {start}-{end}"
        );
    }
});
