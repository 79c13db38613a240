//! Structured logging (`aerie:plugin/logging`).
//!
//! The host tags every line with the space, plugin and version; the plugin adds a message and
//! fields. Plain `println!`/`eprintln!` output also reaches the logs, at info and warn level.
//!
//! ```no_run
//! aerie_sdk::log::info("order placed", &[("order", "A-17"), ("items", "3")]);
//! ```

use crate::bindings::imports::aerie::plugin::logging::{self, Level};

fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    logging::log(level, message, &fields);
}

/// Logs at trace level.
pub fn trace(message: &str, fields: &[(&str, &str)]) {
    write(Level::Trace, message, fields);
}

/// Logs at debug level.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    write(Level::Debug, message, fields);
}

/// Logs at info level.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    write(Level::Info, message, fields);
}

/// Logs at warn level.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    write(Level::Warn, message, fields);
}

/// Logs at error level.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    write(Level::Error, message, fields);
}
