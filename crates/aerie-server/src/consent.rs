//! What a plugin asks of a space, in plain words, and whether what was accepted covers it: the
//! consent an install or an update needs. A plugin's capabilities (outbound hosts, key-value
//! state, secrets, services), the memory and time it asks for above the operator's defaults,
//! and its routes with their guards are all shown; an update asking for more of any — a new
//! host, more memory, a new route, a guard opened wider — needs consent again.

use aerie_api_types::{PermissionsView, RouteView};
use aerie_core::manifest::{Guard, Manifest};

use crate::spaces::limits_for;

/// The plain-words view of what `manifest` asks for: its capabilities, the memory and time
/// it asks for above the operator's defaults (`tenants`), and its routes with their guards.
pub fn permissions_of(
    manifest: &Manifest,
    tenants: &crate::limits::PluginLimitsConfig,
) -> PermissionsView {
    let permissions = &manifest.permissions;
    let limits = limits_for(manifest, tenants);
    let defaults = tenants.defaults();
    in_words(PermissionsView {
        outbound: permissions
            .outbound
            .iter()
            .map(ToString::to_string)
            .collect(),
        keyvalue: permissions.keyvalue,
        secrets: permissions.secrets.clone(),
        services: permissions
            .services
            .iter()
            .map(ToString::to_string)
            .collect(),
        memory: (limits.memory > defaults.memory).then_some(limits.memory),
        timeout_seconds: (limits.timeout > defaults.timeout).then_some(limits.timeout.as_secs()),
        routes: manifest
            .provides
            .routes
            .iter()
            .map(|route| RouteView {
                path: route.path.clone(),
                methods: route.methods.clone(),
                guard: guard_name(route.guard).to_string(),
            })
            .collect(),
        sentences: Vec::new(),
    })
}

fn guard_name(guard: Guard) -> &'static str {
    match guard {
        Guard::Public => "public",
        Guard::Viewer => "viewer",
        Guard::Member => "member",
        Guard::Admin => "admin",
        Guard::Owner => "owner",
    }
}

/// How strict a guard is: a route whose guard drops in this order is opened wider.
fn guard_rank(guard: &str) -> u8 {
    match guard {
        "public" => 0,
        "viewer" => 1,
        "member" => 2,
        "admin" => 3,
        // Unknown names count as the strictest, so nothing is taken as narrower than it is.
        _ => 4,
    }
}

/// `permissions` with each one said as a sentence.
pub fn in_words(permissions: PermissionsView) -> PermissionsView {
    let mut sentences = Vec::new();
    if !permissions.outbound.is_empty() {
        sentences.push(format!(
            "send HTTP requests to {}",
            permissions.outbound.join(", ")
        ));
    }
    if permissions.keyvalue {
        sentences.push("keep data of its own that survives restarts and updates".to_string());
    }
    if !permissions.secrets.is_empty() {
        sentences.push(format!(
            "read the secrets you set for it: {}",
            permissions.secrets.join(", ")
        ));
    }
    if !permissions.services.is_empty() {
        sentences.push(format!(
            "call the services of {}",
            permissions.services.join(", ")
        ));
    }
    if let Some(memory) = permissions.memory {
        sentences.push(format!(
            "use up to {} MiB of memory per call",
            memory.div_ceil(1024 * 1024)
        ));
    }
    if let Some(seconds) = permissions.timeout_seconds {
        sentences.push(format!("take up to {seconds} s per call"));
    }
    for route in &permissions.routes {
        let who = match route.guard.as_str() {
            "public" => "anyone",
            "viewer" => "the space's members",
            "member" => "the space's members from the member role up",
            "admin" => "the space's admins and owners",
            _ => "the space's owners",
        };
        let methods = if route.methods.is_empty() {
            String::new()
        } else {
            format!("{} ", route.methods.join(", "))
        };
        sentences.push(format!("answer {who} on {methods}{}", route.path));
    }
    PermissionsView {
        sentences,
        ..permissions
    }
}

/// Whether `accepted` covers everything `needed` asks for: no capability, memory, time or
/// route more than was accepted, and no route's guard opened wider.
pub fn covers(accepted: &PermissionsView, needed: &PermissionsView) -> bool {
    let all = |needed: &[String], accepted: &[String]| needed.iter().all(|n| accepted.contains(n));
    let at_most = |needed: Option<u64>, accepted: Option<u64>| {
        needed.is_none_or(|needed| accepted.is_some_and(|accepted| accepted >= needed))
    };
    let route_covered = |route: &RouteView| {
        accepted.routes.iter().any(|accepted| {
            accepted.path == route.path
                && guard_rank(&accepted.guard) <= guard_rank(&route.guard)
                && (accepted.methods.is_empty() || all(&route.methods, &accepted.methods))
                && (!route.methods.is_empty() || accepted.methods.is_empty())
        })
    };
    all(&needed.outbound, &accepted.outbound)
        && (!needed.keyvalue || accepted.keyvalue)
        && all(&needed.secrets, &accepted.secrets)
        && all(&needed.services, &accepted.services)
        && at_most(needed.memory, accepted.memory)
        && at_most(needed.timeout_seconds, accepted.timeout_seconds)
        && needed.routes.iter().all(route_covered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str, methods: &[&str], guard: &str) -> RouteView {
        RouteView {
            path: path.into(),
            methods: methods.iter().map(|method| method.to_string()).collect(),
            guard: guard.into(),
        }
    }

    fn asking(memory: Option<u64>, routes: Vec<RouteView>) -> PermissionsView {
        PermissionsView {
            memory,
            routes,
            ..PermissionsView::default()
        }
    }

    #[test]
    fn asking_for_no_more_is_covered_and_any_widening_is_not() {
        let accepted = asking(
            Some(256),
            vec![
                route("/*", &["GET"], "public"),
                route("/admin", &[], "member"),
            ],
        );
        for narrower in [
            asking(None, vec![route("/*", &["GET"], "public")]),
            asking(Some(128), vec![route("/admin", &["POST"], "owner")]),
            asking(Some(256), vec![route("/admin", &[], "admin")]),
        ] {
            assert!(covers(&accepted, &narrower), "{narrower:?}");
        }
        for wider in [
            asking(Some(512), vec![]),
            asking(None, vec![route("/new", &[], "owner")]),
            asking(None, vec![route("/admin", &[], "public")]),
            asking(None, vec![route("/*", &["GET", "POST"], "public")]),
            asking(None, vec![route("/*", &[], "public")]),
        ] {
            assert!(!covers(&accepted, &wider), "{wider:?}");
        }
    }

    #[test]
    fn routes_and_resources_are_said_in_words() {
        let words = in_words(asking(
            Some(256 * 1024 * 1024),
            vec![
                route("/items/{id}", &["POST"], "admin"),
                route("/*", &[], "public"),
            ],
        ))
        .sentences;
        assert_eq!(
            words,
            [
                "use up to 256 MiB of memory per call",
                "answer the space's admins and owners on POST /items/{id}",
                "answer anyone on /*",
            ]
        );
    }
}
