//! {{name}}: {{description}}

use aerie_sdk::service::{self, ServiceError};

#[derive(serde::Deserialize)]
struct GreetRequest {
    name: String,
}

#[derive(serde::Serialize)]
struct GreetResponse {
    message: String,
}

struct Plugin;

impl aerie_sdk::Service for Plugin {
    fn handle(name: &str, request: &[u8]) -> Result<Vec<u8>, ServiceError> {
        match name {
            "greet" => service::json(request, |request: GreetRequest| {
                Ok(GreetResponse {
                    message: format!("Hello, {}!", request.name),
                })
            }),
            _ => Err(ServiceError::UnknownService),
        }
    }
}

impl aerie_sdk::Lifecycle for Plugin {
    fn init(previous_version: Option<&str>) -> Result<(), String> {
        let previous = previous_version.unwrap_or("none");
        aerie_sdk::log::info("starting", &[("previous_version", previous)]);
        Ok(())
    }
}

aerie_sdk::export!(Plugin: service, lifecycle);
