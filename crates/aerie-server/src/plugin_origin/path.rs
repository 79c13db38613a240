//! The path a plugin request is routed by and forwarded with, taken from the raw request
//! target — never a decoded copy — so that what a route's guard saw is what the plugin gets.
//!
//! Routes are matched on the path as sent, still percent-encoded, after one normalisation that
//! changes no meaning (RFC 3986 §6.2.2): escapes of unreserved characters (`%41` for `A`) are
//! decoded and the others written in upper case. What could make the plugin see another path
//! than the guard did is refused: encoded `/`, `\`, `?`, `#`, NUL and other control
//! characters, `.` and `..` segments, and empty segments (`//`). A trailing `/` routes like
//! the path without it, so `/admin/` cannot step around a guard on `/admin`.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub &'static str);

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A request path within a plugin, normalised and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginPath {
    /// The path to forward, starting with `/`.
    forwarded: String,
}

impl PluginPath {
    /// Normalises and checks `raw`, a path within a plugin as sent (starting with `/`, or
    /// empty for the plugin's root).
    pub fn parse(raw: &str) -> Result<PluginPath, PathError> {
        let raw = if raw.is_empty() { "/" } else { raw };
        if !raw.starts_with('/') {
            return Err(PathError("the path must start with `/`"));
        }
        let mut forwarded = String::with_capacity(raw.len());
        let bytes = raw.as_bytes();
        let mut index = 0;
        while index < bytes.len() {
            let byte = bytes[index];
            if byte == b'%' {
                let escaped = bytes
                    .get(index + 1..index + 3)
                    .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())
                    .ok_or(PathError(
                        "the path has a `%` that is not followed by two hex digits",
                    ))?;
                match escaped {
                    b'/' | b'\\' => {
                        return Err(PathError("the path has an encoded `/` or `\\`"));
                    }
                    b'?' | b'#' => {
                        return Err(PathError("the path has an encoded `?` or `#`"));
                    }
                    0..=0x1f | 0x7f => {
                        return Err(PathError("the path has an encoded control character"));
                    }
                    _ if is_unreserved(escaped) => forwarded.push(char::from(escaped)),
                    _ => {
                        forwarded.push('%');
                        forwarded.push_str(&format!("{escaped:02X}"));
                    }
                }
                index += 3;
                continue;
            }
            if byte == b'\\' {
                return Err(PathError("the path has a `\\`"));
            }
            if byte < 0x20 || byte == 0x7f || byte >= 0x80 {
                return Err(PathError("the path has a control or non-ASCII character"));
            }
            forwarded.push(char::from(byte));
            index += 1;
        }
        let inner = &forwarded[1..];
        let segments: Vec<&str> = inner.split('/').collect();
        let last = segments.len() - 1;
        for (position, segment) in segments.iter().enumerate() {
            match *segment {
                "." | ".." => {
                    return Err(PathError("the path has a `.` or `..` segment"));
                }
                "" if position != last => {
                    return Err(PathError("the path has an empty segment (`//`)"));
                }
                _ => {}
            }
        }
        Ok(PluginPath { forwarded })
    }

    /// The first two segments (a plugin's namespace and name, as sent) and the path after
    /// them within the plugin (`/` when there is none); `None` when the path has fewer
    /// segments.
    pub fn split_plugin(&self) -> Option<(&str, &str, PluginPath)> {
        let mut segments = self.forwarded[1..].splitn(3, '/');
        let namespace = segments.next().filter(|segment| !segment.is_empty())?;
        let name = segments.next().filter(|segment| !segment.is_empty())?;
        let forwarded = format!("/{}", segments.next().unwrap_or(""));
        Some((namespace, name, PluginPath { forwarded }))
    }

    /// The path the plugin receives.
    pub fn forwarded(&self) -> &str {
        &self.forwarded
    }

    /// The path routes are matched on: the forwarded one without a trailing `/` (the root
    /// stays `/`).
    pub fn routed(&self) -> &str {
        match self.forwarded.strip_suffix('/') {
            Some("") | None => &self.forwarded,
            Some(trimmed) => trimmed,
        }
    }
}

/// RFC 3986's unreserved characters: the only ones a route pattern holds besides `/`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_escapes_are_decoded_and_others_kept_in_upper_case() {
        let path = PluginPath::parse("/items/%31/%64elete%2b%c3%a9").unwrap();
        assert_eq!(path.forwarded(), "/items/1/delete%2B%C3%A9");
        assert_eq!(path.routed(), "/items/1/delete%2B%C3%A9");
        assert_eq!(PluginPath::parse("").unwrap().forwarded(), "/");
        assert_eq!(PluginPath::parse("/").unwrap().routed(), "/");
        let trailing = PluginPath::parse("/admin/").unwrap();
        assert_eq!(
            (trailing.forwarded(), trailing.routed()),
            ("/admin/", "/admin")
        );
        assert_eq!(
            PluginPath::parse("/a;b=c/~x").unwrap().forwarded(),
            "/a;b=c/~x"
        );
    }

    #[test]
    fn a_plugin_path_splits_into_the_plugin_and_its_own_path() {
        let split = |raw: &str| {
            let path = PluginPath::parse(raw).unwrap();
            path.split_plugin()
                .map(|(namespace, name, inner)| format!("{namespace} {name} {}", inner.forwarded()))
        };
        assert_eq!(split("/ns/name").as_deref(), Some("ns name /"));
        assert_eq!(split("/ns/name/").as_deref(), Some("ns name /"));
        assert_eq!(split("/ns/name/a/b/").as_deref(), Some("ns name /a/b/"));
        assert_eq!(split("/ns"), None);
        assert_eq!(split("/ns/"), None);
        assert_eq!(split("/"), None);
    }

    #[test]
    fn what_could_reach_another_path_than_the_guard_saw_is_refused() {
        for raw in [
            "/items/1/delete%3F",
            "/items/1/delete%3f",
            "/items/1/delete%23",
            "/items%2F1/delete",
            "/items%5C1",
            "/items\\1",
            "/items/%00",
            "/items/%0a",
            "/items/%7F",
            "/items/../admin",
            "/items/%2e%2e/admin",
            "/items/%2E/admin",
            "/items/./admin",
            "/..",
            "//admin",
            "/items//1",
            "/items/%",
            "/items/%4",
            "/items/%zz",
            "items",
        ] {
            assert!(PluginPath::parse(raw).is_err(), "{raw} was accepted");
        }
    }
}
