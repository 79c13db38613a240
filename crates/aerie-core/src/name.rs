//! Plugin names (`namespace/name`) and the other identifiers a manifest holds.

use std::fmt;
use std::str::FromStr;

/// The longest namespace or name part, in characters.
pub const MAX_PART_LEN: usize = 64;

/// A plugin's full name: `namespace/name`, each part 1–64 characters of `[a-z0-9-]`, starting
/// and ending with a letter or digit.
///
/// Because only lowercase letters, digits and `-` are allowed, two names that differ only by
/// case or by `-`/`_` cannot both exist.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginName {
    full: String,
    slash: usize,
}

impl PluginName {
    /// The namespace part, before the `/`.
    pub fn namespace(&self) -> &str {
        &self.full[..self.slash]
    }

    /// The name part, after the `/`.
    pub fn name(&self) -> &str {
        &self.full[self.slash + 1..]
    }

    /// `namespace/name`.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.full)
    }
}

/// Why a string is not a plugin name. The message quotes the input and states the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

impl FromStr for PluginName {
    type Err = NameError;

    fn from_str(text: &str) -> Result<PluginName, NameError> {
        let Some((namespace, name)) = text.split_once('/') else {
            return Err(NameError(format!(
                "{text:?} is not a plugin name: expected `namespace/name`"
            )));
        };
        check_part(text, "namespace", namespace)?;
        check_part(text, "name", name)?;
        Ok(PluginName {
            full: text.to_string(),
            slash: namespace.len(),
        })
    }
}

/// Checks a single name, such as a namespace or a user name, by the rules of one part of a
/// plugin name; `what` names it in the message.
pub fn check_name(what: &str, text: &str) -> Result<(), NameError> {
    check_rules(text, |rule| {
        NameError(format!("{text:?} is not a valid {what}: it {rule}"))
    })
}

fn check_part(full: &str, which: &str, part: &str) -> Result<(), NameError> {
    check_rules(part, |rule| {
        NameError(format!("{full:?} is not a plugin name: the {which} {rule}"))
    })
}

fn check_rules(part: &str, error: impl Fn(&str) -> NameError) -> Result<(), NameError> {
    let fail = |rule: &str| Err(error(rule));
    if part.is_empty() {
        return fail("is empty");
    }
    if part.chars().count() > MAX_PART_LEN {
        return fail(&format!("is longer than {MAX_PART_LEN} characters"));
    }
    if let Some(bad) = part
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
    {
        let hint = if bad.is_ascii_uppercase() {
            " (names are lowercase)"
        } else if bad == '_' {
            " (use `-` instead of `_`)"
        } else {
            ""
        };
        return fail(&format!(
            "contains {bad:?}; only lowercase letters, digits and `-` are allowed{hint}"
        ));
    }
    if part.starts_with('-') || part.ends_with('-') {
        return fail("must start and end with a letter or digit");
    }
    Ok(())
}

impl serde::Serialize for PluginName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full)
    }
}

impl<'de> serde::Deserialize<'de> for PluginName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PluginName, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks a short identifier (a service, tag or secret name): 1 to `max_len` characters, the
/// first a letter, the rest letters, digits and the `extra` punctuation. Returns the rule that
/// `text` breaks, for the caller to put after the field's path.
pub(crate) fn check_identifier(
    text: &str,
    max_len: usize,
    uppercase: bool,
    extra: &[char],
) -> Result<(), String> {
    let allowed = |c: char| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || extra.contains(&c)
            || (uppercase && c.is_ascii_uppercase())
    };
    let letters = if uppercase {
        "letters"
    } else {
        "lowercase letters"
    };
    let punctuation: String = extra.iter().map(|c| format!(" `{c}`")).collect();
    if text.is_empty() {
        Err("must not be empty".to_string())
    } else if text.chars().count() > max_len {
        Err(format!("{text:?} is longer than {max_len} characters"))
    } else if !text.chars().all(allowed) {
        Err(format!(
            "{text:?} may contain only {letters}, digits and{punctuation}"
        ))
    } else if !text.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Err(format!("{text:?} must start with a letter"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_split_into_parts() {
        let name: PluginName = "acme/hello-world2".parse().unwrap();
        assert_eq!(name.namespace(), "acme");
        assert_eq!(name.name(), "hello-world2");
        assert_eq!(name.to_string(), "acme/hello-world2");
        let longest = format!("{}/{}", "a".repeat(64), "b".repeat(64));
        assert!(longest.parse::<PluginName>().is_ok());
    }

    #[test]
    fn single_names_follow_the_same_rules() {
        assert!(check_name("namespace", "acme-corp").is_ok());
        assert_eq!(
            check_name("user name", "Ada").unwrap_err().to_string(),
            r#""Ada" is not a valid user name: it contains 'A'; only lowercase letters, digits and `-` are allowed (names are lowercase)"#
        );
        assert_eq!(
            check_name("namespace", "").unwrap_err().to_string(),
            r#""" is not a valid namespace: it is empty"#
        );
    }

    #[test]
    fn invalid_names_explain_the_rule() {
        let cases = [
            (
                "hello",
                r#""hello" is not a plugin name: expected `namespace/name`"#,
            ),
            (
                "/hello",
                r#""/hello" is not a plugin name: the namespace is empty"#,
            ),
            (
                "acme/",
                r#""acme/" is not a plugin name: the name is empty"#,
            ),
            (
                "Acme/hello",
                r#""Acme/hello" is not a plugin name: the namespace contains 'A'; only lowercase letters, digits and `-` are allowed (names are lowercase)"#,
            ),
            (
                "acme/hello_world",
                r#""acme/hello_world" is not a plugin name: the name contains '_'; only lowercase letters, digits and `-` are allowed (use `-` instead of `_`)"#,
            ),
            (
                "acme/a/b",
                r#""acme/a/b" is not a plugin name: the name contains '/'; only lowercase letters, digits and `-` are allowed"#,
            ),
            (
                "acme/-x",
                r#""acme/-x" is not a plugin name: the name must start and end with a letter or digit"#,
            ),
            (
                "acme/héllo",
                r#""acme/héllo" is not a plugin name: the name contains 'é'; only lowercase letters, digits and `-` are allowed"#,
            ),
        ];
        for (input, message) in cases {
            assert_eq!(
                input.parse::<PluginName>().unwrap_err().to_string(),
                message
            );
        }
        let too_long = format!("acme/{}", "x".repeat(65));
        assert!(
            too_long
                .parse::<PluginName>()
                .unwrap_err()
                .to_string()
                .ends_with("the name is longer than 64 characters")
        );
    }
}
