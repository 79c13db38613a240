//! The HTTP API's handlers, one module per resource.

pub mod accounts;
pub mod admin;
pub mod certification;
pub mod downloads;
pub mod endpoints;
pub mod namespaces;
pub mod pages;
pub mod plugins;
pub mod reviews;
pub mod search;
pub mod spaces;
