//! The plugin origin: where a space's plugins are served, never the API's origin.
//!
//! A plugin's HTTP responses are rendered by browsers, so they must not run on the origin that
//! holds Aerie's session cookie and API: there a plugin page's script would act with the
//! viewer's session. Each space gets an origin of its own, from a template such as
//! `https://{space}.plugins.example.com` (by default `http://{space}.localhost:PORT`, which
//! browsers and curl resolve to the loopback address without any DNS set-up), so a space's
//! pages cannot script another space's plugins either. A request whose host matches the
//! template goes to the plugin endpoints ([`crate::routes::endpoints`]); every other request
//! is the API's.
//!
//! - [`path`] turns the raw request path into the one that routes match and plugins receive.
//! - [`credential`] signs the short-lived credential that carries a signed-in user from the
//!   API's origin to one space's plugin origin.

pub mod credential;
pub mod path;

use aerie_core::name::check_name;

/// Where a space's plugins are served: a URL template with `{space}` in its host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginOrigin {
    secure: bool,
    /// The host before `{space}`, lowercase.
    prefix: String,
    /// The host after `{space}`, lowercase.
    suffix: String,
    /// The port, when it is not the scheme's default.
    port: Option<u16>,
}

/// The placeholder a template's host holds once.
const SPACE: &str = "{space}";

impl PluginOrigin {
    /// The embedded default: `http://{space}.localhost:PORT`, on the server's own port.
    pub fn localhost(port: u16) -> PluginOrigin {
        PluginOrigin {
            secure: false,
            prefix: String::new(),
            suffix: ".localhost".into(),
            port: (port != 80).then_some(port),
        }
    }

    /// Reads a template such as `https://{space}.plugins.example.com` or
    /// `http://{space}.localhost:8080`: a scheme, a host holding `{space}` once, an optional
    /// port, and no path.
    pub fn parse(template: &str) -> Result<PluginOrigin, String> {
        let invalid = |why: &str| {
            Err(format!(
                "the plugin origin {template:?} {why}; write it like \"https://{{space}}.plugins.example.com\""
            ))
        };
        let (secure, rest) = if let Some(rest) = template.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = template.strip_prefix("http://") {
            (false, rest)
        } else {
            return invalid("must start with http:// or https://");
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return invalid("must have no path, query or user");
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => match port.parse::<u16>() {
                Ok(port) if port > 0 => (host, Some(port)),
                _ => return invalid("has a port that is not a number from 1 to 65535"),
            },
            None => (authority, None),
        };
        let Some((prefix, suffix)) = host.split_once(SPACE) else {
            return invalid("must hold {space} in its host");
        };
        if suffix.contains(SPACE) {
            return invalid("must hold {space} once");
        }
        let host_chars = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        if !host_chars(prefix) || !host_chars(suffix) || suffix.is_empty() {
            return invalid(
                "must have a DNS name around {space}, like {space}.plugins.example.com",
            );
        }
        let default_port = if secure { 443 } else { 80 };
        Ok(PluginOrigin {
            secure,
            prefix: prefix.to_ascii_lowercase(),
            suffix: suffix.to_ascii_lowercase(),
            port: port.filter(|port| *port != default_port),
        })
    }

    /// Whether the origin is served over HTTPS (its cookies can then be `Secure`).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The origin of `space`'s plugins, like `https://team.plugins.example.com`.
    pub fn url(&self, space: &str) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        let port = self.port.map(|port| format!(":{port}")).unwrap_or_default();
        format!("{scheme}://{}{space}{}{port}", self.prefix, self.suffix)
    }

    /// The space whose plugin origin `authority` (a `Host` header or a URI's authority) names,
    /// if it names one.
    pub fn space_of<'a>(&self, authority: &'a str) -> Option<&'a str> {
        let (host, port) = split_authority(authority)?;
        let default_port = if self.secure { 443 } else { 80 };
        if port.filter(|port| *port != default_port) != self.port {
            return None;
        }
        let space = strip_prefix_ignore_case(host, &self.prefix)?;
        let space = strip_suffix_ignore_case(space, &self.suffix)?;
        check_name("space", space).ok()?;
        Some(space)
    }

    /// The template, as the operator would write it.
    pub fn template(&self) -> String {
        self.url(SPACE)
    }
}

/// A host and its port, from `host[:port]` (a bracketed IPv6 host is never a plugin origin).
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.starts_with('[') {
        return None;
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn strip_suffix_ignore_case<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let split = text.len().checked_sub(suffix.len())?;
    let tail = text.get(split..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &text[..split])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_names_each_space_its_own_origin() {
        let origin = PluginOrigin::parse("https://{space}.plugins.example.com").unwrap();
        assert_eq!(origin.url("team"), "https://team.plugins.example.com");
        assert!(origin.is_secure());
        assert_eq!(origin.space_of("team.plugins.example.com"), Some("team"));
        assert_eq!(
            origin.space_of("Team.Plugins.Example.com:443"),
            None,
            "a space name is lowercase"
        );
        assert_eq!(
            origin.space_of("team.PLUGINS.example.com:443"),
            Some("team")
        );
        for other in [
            "plugins.example.com",
            ".plugins.example.com",
            "a.b.plugins.example.com",
            "team.plugins.example.com:8443",
            "team.plugins.example.com.evil.test",
            "example.com",
            "[::1]:443",
            "team.plugins.example.com:x",
        ] {
            assert_eq!(origin.space_of(other), None, "{other}");
        }
    }

    #[test]
    fn the_default_origin_is_a_localhost_name_on_the_server_port() {
        let origin = PluginOrigin::localhost(7878);
        assert_eq!(origin.url("demo"), "http://demo.localhost:7878");
        assert_eq!(origin.space_of("demo.localhost:7878"), Some("demo"));
        assert_eq!(origin.space_of("demo.localhost"), None);
        assert_eq!(origin.space_of("127.0.0.1:7878"), None);
        assert_eq!(origin.space_of("localhost:7878"), None);
        assert_eq!(origin.template(), "http://{space}.localhost:7878");
        assert_eq!(PluginOrigin::parse(&origin.template()).unwrap(), origin);
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (template, why) in [
            ("{space}.example.com", "http:// or https://"),
            ("https://plugins.example.com", "hold {space}"),
            ("https://{space}.{space}.example.com", "once"),
            ("https://{space}.example.com/path", "no path"),
            ("https://{space}.example.com:0", "port"),
            ("https://{space}", "DNS name"),
            ("https://{space}_x.example.com", "DNS name"),
        ] {
            let err = PluginOrigin::parse(template).unwrap_err();
            assert!(err.contains(why), "{template}: {err}");
        }
    }
}
