//! {{name}}: {{description}}

struct Plugin;

impl aerie_sdk::Lifecycle for Plugin {
    fn init(previous_version: Option<&str>) -> Result<(), String> {
        let previous = previous_version.unwrap_or("none");
        aerie_sdk::log::info("started", &[("previous_version", previous)]);
        Ok(())
    }

    fn health() -> Result<(), String> {
        Ok(())
    }
}

aerie_sdk::export!(Plugin: lifecycle);
