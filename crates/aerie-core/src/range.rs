//! The `Range` header of a download, as RFC 9110 reads it: one byte range, or the whole body.

/// What a `Range` header asks of a body of some size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Bytes `start..=end`, both within the body.
    Bytes(u64, u64),
    /// A range past the end.
    Unsatisfiable,
    /// Not a single byte range we serve (several ranges, other units, garbage): the whole
    /// body is sent, as RFC 9110 allows.
    Ignored,
}

/// Reads `header` for a body of `size` bytes. Whatever the header, a `Bytes` answer lies
/// within the body.
pub fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignored;
    };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignored;
    };
    let (start, end) = match (start.trim(), end.trim()) {
        ("", "") => return RangeRequest::Ignored,
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(length) => (size.saturating_sub(length), size.saturating_sub(1)),
            Err(_) => return RangeRequest::Ignored,
        },
        (start, "") => match start.parse::<u64>() {
            Ok(start) => (start, size.saturating_sub(1)),
            Err(_) => return RangeRequest::Ignored,
        },
        (start, end) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(start), Ok(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
            _ => return RangeRequest::Ignored,
        },
    };
    if size == 0 || start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Bytes(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-99", 1000), RangeRequest::Bytes(0, 99));
        assert_eq!(
            parse_range("bytes=900-", 1000),
            RangeRequest::Bytes(900, 999)
        );
        assert_eq!(
            parse_range("bytes=-100", 1000),
            RangeRequest::Bytes(900, 999)
        );
        assert_eq!(
            parse_range("bytes=-5000", 1000),
            RangeRequest::Bytes(0, 999)
        );
        assert_eq!(
            parse_range("bytes=500-5000", 1000),
            RangeRequest::Bytes(500, 999)
        );
        assert_eq!(
            parse_range("bytes=1000-", 1000),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range("bytes=-0", 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), RangeRequest::Ignored);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), RangeRequest::Ignored);
        assert_eq!(parse_range("items=0-1", 1000), RangeRequest::Ignored);
        assert_eq!(parse_range("bytes=x-y", 1000), RangeRequest::Ignored);
        assert_eq!(parse_range("bytes=-", 1000), RangeRequest::Ignored);
    }
}
