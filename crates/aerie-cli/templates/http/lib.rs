//! {{name}}: {{description}}

use aerie_sdk::http::{Request, Response, Result};

/// The installation's config, checked against `[config]` in aerie.toml.
#[derive(serde::Deserialize)]
struct Config {
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "Hello".to_string()
}

struct Plugin;

impl aerie_sdk::Http for Plugin {
    fn handle(request: Request) -> Result<Response> {
        let config: Config = aerie_sdk::config::get()?;
        let name = request
            .query_param("name")
            .unwrap_or_else(|| "world".to_string());
        Ok(Response::text(200, format!("{}, {name}!\n", config.greeting)))
    }
}

aerie_sdk::export!(Plugin: http);
