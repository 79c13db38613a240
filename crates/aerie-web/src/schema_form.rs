//! An installation's config form, generated from the plugin's JSON Schema: one field per
//! top-level property, typed (text, number, checkbox, choice), with its default, whether it is
//! required, its description as help, and the problem the server found with it. Anything the
//! form cannot type (objects, arrays, several types) is edited as JSON. The values posted back
//! are read into the config the server checks against the same schema.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// How a field is edited.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A line of text.
    Text,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// A checkbox.
    Checkbox,
    /// One of the schema's `enum` values.
    Choice,
    /// JSON text.
    Json,
}

impl Kind {
    /// The HTML input type of a field of this kind.
    pub fn input_type(&self) -> &'static str {
        match self {
            Kind::Integer | Kind::Number => "number",
            Kind::Checkbox => "checkbox",
            _ => "text",
        }
    }
}

/// One field of the form.
pub struct Field {
    /// The property's name.
    pub name: String,
    /// The form field's name: `config.NAME`.
    pub input: String,
    /// How it is edited.
    pub kind: Kind,
    /// Whether the schema requires it.
    pub required: bool,
    /// The schema's description.
    pub help: Option<String>,
    /// The value shown: the config's, else the default.
    pub value: String,
    /// Whether a checkbox is ticked.
    pub checked: bool,
    /// The choices of a `Choice`: value and whether it is chosen.
    pub choices: Vec<(String, bool)>,
    /// The server's problem with this field.
    pub error: Option<String>,
}

fn kind_of(property: &Value) -> Kind {
    if property
        .get("enum")
        .and_then(Value::as_array)
        .is_some_and(|values| values.iter().all(Value::is_string))
    {
        return Kind::Choice;
    }
    match property.get("type").and_then(Value::as_str) {
        Some("string") => Kind::Text,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Checkbox,
        _ => Kind::Json,
    }
}

fn text_of(value: &Value, kind: Kind) -> String {
    match (value, kind) {
        (Value::Null, _) => String::new(),
        (Value::String(text), Kind::Text | Kind::Choice) => text.clone(),
        (Value::Number(number), Kind::Integer | Kind::Number) => number.to_string(),
        (value, _) => value.to_string(),
    }
}

/// The fields for `schema` (a JSON Schema object), showing `config`'s values (or the
/// defaults) and the `errors` by field (`config.NAME`, as the server names them).
pub fn fields(
    schema: Option<&Value>,
    config: &Value,
    errors: &BTreeMap<String, String>,
) -> Vec<Field> {
    let Some(properties) = schema
        .and_then(|schema| schema.get("properties"))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let required: Vec<&str> = schema
        .and_then(|schema| schema.get("required"))
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    properties
        .iter()
        .map(|(name, property)| {
            let kind = kind_of(property);
            let current = config
                .get(name)
                .or_else(|| property.get("default"))
                .cloned()
                .unwrap_or(Value::Null);
            let value = text_of(&current, kind);
            Field {
                input: format!("config.{name}"),
                kind,
                required: required.contains(&name.as_str()),
                help: property
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                checked: current == Value::Bool(true),
                choices: match kind {
                    Kind::Choice => property["enum"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|choice| (choice.to_string(), choice == value))
                        .collect(),
                    _ => Vec::new(),
                },
                error: errors.get(&format!("config.{name}")).cloned(),
                value,
                name: name.clone(),
            }
        })
        .collect()
}

/// The config the posted `pairs` describe under `schema`: each `config.NAME` read as its
/// field's type (an empty optional field left out, a checkbox absent meaning `false`). A
/// value that does not read as its type is a problem for that field.
pub fn config_from(
    schema: Option<&Value>,
    pairs: &[(String, String)],
) -> Result<Value, BTreeMap<String, String>> {
    let fields = fields(schema, &Value::Null, &BTreeMap::new());
    let posted = |input: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == input)
            .map(|(_, value)| value.as_str())
    };
    let mut config = Map::new();
    let mut problems = BTreeMap::new();
    for field in fields {
        let text = posted(&field.input).unwrap_or("").trim();
        let value = match field.kind {
            Kind::Checkbox => Some(Value::Bool(posted(&field.input).is_some())),
            _ if text.is_empty() => None,
            Kind::Text | Kind::Choice => Some(Value::String(text.to_string())),
            Kind::Integer => match text.parse::<i64>() {
                Ok(number) => Some(Value::from(number)),
                Err(_) => {
                    problems.insert(field.input.clone(), "must be a whole number".to_string());
                    None
                }
            },
            Kind::Number => match text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(number) => Some(Value::Number(number)),
                None => {
                    problems.insert(field.input.clone(), "must be a number".to_string());
                    None
                }
            },
            Kind::Json => match serde_json::from_str(text) {
                Ok(value) => Some(value),
                Err(err) => {
                    problems.insert(field.input.clone(), format!("must be JSON: {err}"));
                    None
                }
            },
        };
        if let Some(value) = value {
            config.insert(field.name, value);
        }
    }
    if problems.is_empty() {
        Ok(Value::Object(config))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["endpoint"],
            "properties": {
                "endpoint": { "type": "string", "description": "Where to send" },
                "retries": { "type": "integer", "default": 3 },
                "ratio": { "type": "number" },
                "verbose": { "type": "boolean", "default": true },
                "mode": { "enum": ["fast", "safe"], "default": "safe" },
                "labels": { "type": "object" }
            }
        })
    }

    #[test]
    fn each_property_becomes_a_typed_field_with_its_default_and_error() {
        let errors = BTreeMap::from([("config.retries".to_string(), "too many".to_string())]);
        let fields = fields(
            Some(&schema()),
            &json!({ "endpoint": "https://x" }),
            &errors,
        );
        let by_name = |name: &str| fields.iter().find(|field| field.name == name).unwrap();
        let endpoint = by_name("endpoint");
        assert_eq!(
            (endpoint.kind, endpoint.required, endpoint.value.as_str()),
            (Kind::Text, true, "https://x")
        );
        assert_eq!(endpoint.help.as_deref(), Some("Where to send"));
        let retries = by_name("retries");
        assert_eq!((retries.kind, retries.value.as_str()), (Kind::Integer, "3"));
        assert_eq!(retries.error.as_deref(), Some("too many"));
        assert!(by_name("verbose").checked);
        assert_eq!(
            by_name("mode").choices,
            vec![("fast".to_string(), false), ("safe".to_string(), true)]
        );
        assert_eq!(by_name("labels").kind, Kind::Json);
        assert_eq!(by_name("ratio").kind, Kind::Number);
    }

    #[test]
    fn posted_fields_read_as_their_types() {
        let pairs: Vec<(String, String)> = [
            ("config.endpoint", " https://x "),
            ("config.retries", "5"),
            ("config.ratio", ""),
            ("config.mode", "fast"),
            ("config.labels", r#"{"a": 1}"#),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
        assert_eq!(
            config_from(Some(&schema()), &pairs).unwrap(),
            json!({ "endpoint": "https://x", "retries": 5, "verbose": false, "mode": "fast", "labels": { "a": 1 } })
        );
    }

    #[test]
    fn values_that_do_not_read_are_problems_of_their_fields() {
        let pairs = vec![
            ("config.retries".to_string(), "three".to_string()),
            ("config.labels".to_string(), "{".to_string()),
        ];
        let problems = config_from(Some(&schema()), &pairs).unwrap_err();
        assert_eq!(problems["config.retries"], "must be a whole number");
        assert!(problems["config.labels"].starts_with("must be JSON"));
    }

    #[test]
    fn no_schema_means_no_fields() {
        assert!(fields(None, &json!({}), &BTreeMap::new()).is_empty());
        assert_eq!(config_from(None, &[]).unwrap(), json!({}));
    }
}
