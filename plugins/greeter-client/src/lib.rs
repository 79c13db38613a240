//! `examples/greeter-client`: an HTTP endpoint that calls the `greet` service of
//! `examples/greeter`, its dependency.
//!
//! - `GET /?name=Ada` answers with the greeter's message;
//! - `GET /private` answers only a caller presenting the installation's `access-token` secret
//!   as `Authorization: Bearer ...`.

use aerie_sdk::http::{Error, Request, Response, Result};
use serde::{Deserialize, Serialize};

const GREETER: &str = "examples/greeter";

#[derive(Deserialize)]
struct Config {
    #[serde(rename = "default-name", default = "default_name")]
    default_name: String,
}

fn default_name() -> String {
    "world".to_string()
}

#[derive(Serialize)]
struct GreetRequest<'a> {
    name: &'a str,
}

#[derive(Deserialize)]
struct GreetResponse {
    message: String,
}

struct GreeterClient;

impl aerie_sdk::Http for GreeterClient {
    fn handle(request: Request) -> Result<Response> {
        match request.path() {
            "/" => {
                let config: Config = aerie_sdk::config::get()?;
                let name = request.query_param("name").unwrap_or(config.default_name);
                let greeting: GreetResponse =
                    aerie_sdk::services::call_json(GREETER, "greet", &GreetRequest { name: &name })
                        .map_err(|err| Error::bad_gateway(err.to_string()))?;
                Ok(Response::text(200, greeting.message + "\n"))
            }
            "/private" => {
                let token = aerie_sdk::secrets::get("access-token")?;
                let presented = request
                    .header("authorization")
                    .and_then(|value| value.strip_prefix("Bearer "));
                if presented != Some(token.as_str()) {
                    return Err(Error::unauthorized(
                        "present the access token as a bearer token",
                    ));
                }
                Ok(Response::text(200, "Welcome, token holder.\n"))
            }
            other => Err(Error::not_found(format!("no route {other}"))),
        }
    }
}

aerie_sdk::export!(GreeterClient: http);
