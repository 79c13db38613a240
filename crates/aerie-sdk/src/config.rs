//! The installation's configuration (`wasi:config/store`), typed.
//!
//! The space's administrators set an installation's config as a JSON object, validated against
//! the schema in the plugin's manifest. The host serves each top-level property as one
//! `wasi:config` key: a string as it is, any other value as its JSON text. [`get`] turns those
//! pairs back into the plugin's own type.
//!
//! ```no_run
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     greeting: String,
//!     #[serde(default)]
//!     shout: bool,
//! }
//!
//! let config: Config = aerie_sdk::config::get().unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::bindings::imports::wasi::config::store;

/// Why the configuration could not be read.
#[derive(Debug)]
pub enum ConfigError {
    /// The host could not provide the configuration.
    Unavailable(String),
    /// The configuration does not fit the plugin's type; the message names the key.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unavailable(message) => write!(f, "config unavailable: {message}"),
            ConfigError::Invalid(message) => write!(f, "invalid config: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads the whole configuration into `T`.
pub fn get<T: DeserializeOwned>() -> Result<T, ConfigError> {
    let pairs = store::get_all().map_err(|err| ConfigError::Unavailable(store_error(err)))?;
    from_pairs(pairs)
}

/// Reads one raw value: a string as set, any other JSON value as its JSON text.
pub fn get_value(key: &str) -> Result<Option<String>, ConfigError> {
    store::get(key).map_err(|err| ConfigError::Unavailable(store_error(err)))
}

fn store_error(err: store::Error) -> String {
    match err {
        store::Error::Upstream(message) | store::Error::Io(message) => message,
    }
}

/// Deserialises `T` from `wasi:config` key-value pairs.
pub(crate) fn from_pairs<T: DeserializeOwned>(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let map: BTreeMap<String, ConfigValue> = pairs
        .into_iter()
        .map(|(key, value)| (key, ConfigValue(value)))
        .collect();
    T::deserialize(map.into_deserializer()).map_err(|err| ConfigError::Invalid(err.to_string()))
}

/// One `wasi:config` value. A string field takes the text as it is; any other type reads the
/// text as JSON, so `"42"` is a number for a `u32` field and the string `42` for a `String`.
struct ConfigValue(String);

impl<'de> IntoDeserializer<'de, de::value::Error> for ConfigValue {
    type Deserializer = ConfigValue;

    fn into_deserializer(self) -> ConfigValue {
        self
    }
}

impl<'de> de::Deserializer<'de> for ConfigValue {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        // Without a type to go by, text that parses as JSON is JSON; anything else a string.
        match serde_json::from_str::<serde_json::Value>(&self.0) {
            Ok(value) => {
                de::Deserializer::deserialize_any(value, visitor).map_err(de::Error::custom)
            }
            Err(_) => visitor.visit_string(self.0),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.0)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.0)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        // A key that is present has a value; `null` alone means none.
        if self.0 == "null" {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // A unit variant is written as a plain string; others as JSON.
        match serde_json::from_str::<serde_json::Value>(&self.0) {
            Ok(value @ serde_json::Value::Object(_)) => value
                .deserialize_enum(name, variants, visitor)
                .map_err(de::Error::custom),
            _ => visitor.visit_enum(self.0.into_deserializer()),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Mode {
        Quiet,
        Loud,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Config {
        greeting: String,
        code: String,
        retries: u32,
        ratio: f64,
        enabled: bool,
        hosts: Vec<String>,
        mode: Mode,
        missing: Option<String>,
        #[serde(default)]
        defaulted: u8,
        nested: BTreeMap<String, i64>,
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn strings_stay_text_and_other_values_are_json() {
        let config: Config = from_pairs(pairs(&[
            ("greeting", "Hello, world"),
            ("code", "42"),
            ("retries", "3"),
            ("ratio", "0.5"),
            ("enabled", "true"),
            ("hosts", r#"["a.example.com","b.example.com"]"#),
            ("mode", "loud"),
            ("nested", r#"{"x": -1}"#),
        ]))
        .unwrap();
        assert_eq!(
            config,
            Config {
                greeting: "Hello, world".into(),
                code: "42".into(),
                retries: 3,
                ratio: 0.5,
                enabled: true,
                hosts: vec!["a.example.com".into(), "b.example.com".into()],
                mode: Mode::Loud,
                missing: None,
                defaulted: 0,
                nested: BTreeMap::from([("x".to_string(), -1)]),
            }
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_problem() {
        #[derive(Debug, Deserialize)]
        struct Retries {
            #[allow(dead_code)]
            retries: u32,
        }
        let err = from_pairs::<Retries>(pairs(&[("retries", "many")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid config: invalid type: string "many", expected u32"#
        );
        let err = from_pairs::<Retries>(pairs(&[])).unwrap_err();
        assert_eq!(err.to_string(), "invalid config: missing field `retries`");
    }
}
