//! `acme/hello`: the smallest useful plugin. `GET /` greets the world, `GET /NAME` greets
//! NAME, with the greeting taken from the installation's config.

use aerie_sdk::http::{Error, Method, Request, Response, Result};

#[derive(serde::Deserialize)]
struct Config {
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "Hello".to_string()
}

struct Hello;

impl aerie_sdk::Http for Hello {
    fn handle(request: Request) -> Result<Response> {
        if *request.method() != Method::Get {
            return Err(Error::method_not_allowed(request.method()));
        }
        let config: Config = aerie_sdk::config::get()?;
        let name = match request.path().trim_matches('/') {
            "" => "world",
            name => name,
        };
        Ok(Response::text(
            200,
            format!("{}, {name}!\n", config.greeting),
        ))
    }
}

aerie_sdk::export!(Hello: http);
