//! `examples/greeter`: exports the service `greet`, which other plugins call.
//!
//! Request `{"name": "Ada"}`, answer `{"message": "Hello, Ada!"}`, with the greeting from
//! the installation's config.

use aerie_sdk::service::{self, ServiceError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Config {
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "Hello".to_string()
}

#[derive(Deserialize)]
struct GreetRequest {
    name: String,
}

#[derive(Serialize)]
struct GreetResponse {
    message: String,
}

struct Greeter;

impl aerie_sdk::Service for Greeter {
    fn handle(name: &str, request: &[u8]) -> Result<Vec<u8>, ServiceError> {
        match name {
            "greet" => service::json(request, |request: GreetRequest| {
                if request.name.trim().is_empty() {
                    return Err(ServiceError::BadRequest("name is empty".to_string()));
                }
                let config: Config = aerie_sdk::config::get()
                    .map_err(|err| ServiceError::Failed(err.to_string()))?;
                Ok(GreetResponse {
                    message: format!("{}, {}!", config.greeting, request.name),
                })
            }),
            _ => Err(ServiceError::UnknownService),
        }
    }
}

impl aerie_sdk::Lifecycle for Greeter {
    fn init(previous_version: Option<&str>) -> Result<(), String> {
        let previous = previous_version.unwrap_or("none");
        aerie_sdk::log::info("greeter starting", &[("previous_version", previous)]);
        Ok(())
    }
}

aerie_sdk::export!(Greeter: service, lifecycle);
