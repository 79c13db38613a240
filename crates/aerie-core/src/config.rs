//! An installation's configuration: checked against the plugin's schema, and served to the
//! plugin as `wasi:config` pairs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One way a configuration breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where: `config.greeting`, `config.retries`, or `config` for the whole object.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Checks `config` against `schema` (the manifest's `[config]`; a plugin without one takes
/// only an empty object) and returns it with the schema's top-level defaults filled in, or
/// every problem, each naming its field.
pub fn check_config(schema: Option<&Value>, config: Value) -> Result<Value, Vec<ConfigProblem>> {
    let Value::Object(mut object) = config else {
        return Err(vec![ConfigProblem {
            field: "config".into(),
            message: "must be a JSON object".into(),
        }]);
    };
    let Some(schema) = schema else {
        if let Some(key) = object.keys().next() {
            return Err(vec![ConfigProblem {
                field: format!("config.{key}"),
                message: "is not expected: this plugin takes no configuration".into(),
            }]);
        }
        return Ok(Value::Object(object));
    };
    fill_defaults(schema, &mut object);
    let config = Value::Object(object);
    let validator = jsonschema::validator_for(schema).map_err(|err| {
        vec![ConfigProblem {
            field: "config".into(),
            message: format!("the plugin's schema is not valid: {err}"),
        }]
    })?;
    let problems: Vec<ConfigProblem> = validator
        .iter_errors(&config)
        .map(|err| ConfigProblem {
            field: field_path(&err.instance_path().to_string()),
            message: err.to_string(),
        })
        .collect();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

fn fill_defaults(schema: &Value, object: &mut Map<String, Value>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        if let Some(default) = property.get("default")
            && !object.contains_key(name)
        {
            object.insert(name.clone(), default.clone());
        }
    }
}

/// `/a/0/b` as `config.a[0].b`.
fn field_path(pointer: &str) -> String {
    let path: String = pointer
        .split('/')
        .filter(|part| !part.is_empty())
        .map(|part| match part.parse::<usize>() {
            Ok(index) => format!("[{index}]"),
            Err(_) => format!(".{}", part.replace("~1", "/").replace("~0", "~")),
        })
        .collect();
    format!("config{path}")
}

/// The configuration as `wasi:config` pairs: each top-level property a key, a string as it
/// is and any other value as its JSON text (what the SDK's `config::get` reads back).
pub fn config_pairs(config: &Value) -> BTreeMap<String, String> {
    config
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "greeting": { "type": "string", "default": "Hello", "maxLength": 8 },
                "retries": { "type": "integer", "minimum": 0 },
                "hosts": { "type": "array", "items": { "type": "string", "format": "hostname" } }
            },
            "required": ["retries"]
        })
    }

    #[test]
    fn a_valid_config_gets_its_defaults() {
        let config = check_config(Some(&schema()), json!({ "retries": 2 })).unwrap();
        assert_eq!(config, json!({ "retries": 2, "greeting": "Hello" }));
        assert_eq!(
            config_pairs(&config),
            [
                ("greeting".to_string(), "Hello".to_string()),
                ("retries".to_string(), "2".to_string())
            ]
            .into_iter()
            .collect()
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let problems = check_config(
            Some(&schema()),
            json!({ "greeting": "Good morning", "retries": -1, "hosts": ["ok", 3], "extra": 1 }),
        )
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for expected in [
            "config.greeting",
            "config.retries",
            "config.hosts[1]",
            "config",
        ] {
            assert!(fields.contains(&expected), "{expected} in {problems:?}");
        }
        let missing = check_config(Some(&schema()), json!({})).unwrap_err();
        assert_eq!(missing[0].field, "config");
        assert!(missing[0].message.contains("retries"), "{missing:?}");
        let not_object = check_config(Some(&schema()), json!([1])).unwrap_err();
        assert_eq!(not_object[0].to_string(), "config: must be a JSON object");
    }

    #[test]
    fn a_plugin_without_a_schema_takes_only_an_empty_object() {
        assert_eq!(check_config(None, json!({})).unwrap(), json!({}));
        let problems = check_config(None, json!({ "x": 1 })).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "config.x: is not expected: this plugin takes no configuration"
        );
    }
}
