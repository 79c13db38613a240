//! What changes between two versions of a plugin, in the words people decide by: what it may
//! do (capabilities, memory, time), its routes and who may call them, its config schema and its
//! dependencies. Shown on the plugin page and where an update asks for consent again.

use std::collections::{BTreeMap, BTreeSet};

use aerie_api_types::PermissionsView;
use aerie_core::manifest::Manifest;
use serde_json::Value;

/// One difference.
#[derive(Debug, PartialEq)]
pub struct Change {
    /// What part: `permissions`, `routes`, `config` or `dependencies`.
    pub area: &'static str,
    /// `added`, `removed` or `changed`.
    pub kind: &'static str,
    /// The difference in words.
    pub text: String,
}

fn change(area: &'static str, kind: &'static str, text: String) -> Change {
    Change { area, kind, text }
}

/// The differences from `before` to `after`, each version given as its manifest and the
/// permissions consent shows for it.
pub fn between(
    before: (&Manifest, &PermissionsView),
    after: (&Manifest, &PermissionsView),
) -> Vec<Change> {
    let mut changes = Vec::new();
    // Permissions, as the sentences consent shows, routes aside (compared on their own).
    let capabilities = |view: &PermissionsView| -> BTreeSet<String> {
        let routes: BTreeSet<&str> = view
            .routes
            .iter()
            .map(|route| route.path.as_str())
            .collect();
        view.sentences
            .iter()
            .filter(|sentence| {
                !(sentence.starts_with("answer ")
                    && routes.iter().any(|path| sentence.ends_with(path)))
            })
            .cloned()
            .collect()
    };
    let (was, now) = (capabilities(before.1), capabilities(after.1));
    for added in now.difference(&was) {
        changes.push(change("permissions", "added", format!("may now {added}")));
    }
    for removed in was.difference(&now) {
        changes.push(change(
            "permissions",
            "removed",
            format!("no longer may {removed}"),
        ));
    }
    // Routes by path: added, removed, or with other methods or another guard.
    let routes = |manifest: &Manifest| -> BTreeMap<String, (String, String)> {
        manifest
            .provides
            .routes
            .iter()
            .map(|route| {
                let methods = if route.methods.is_empty() {
                    "any method".to_string()
                } else {
                    route.methods.join(", ")
                };
                let guard = serde_json::to_value(route.guard)
                    .ok()
                    .and_then(|guard| guard.as_str().map(str::to_string))
                    .unwrap_or_default();
                (route.path.clone(), (methods, guard))
            })
            .collect()
    };
    let (was, now) = (routes(before.0), routes(after.0));
    for (path, (methods, guard)) in &now {
        match was.get(path) {
            None => changes.push(change(
                "routes",
                "added",
                format!("{path} ({methods}), for {guard}"),
            )),
            Some((old_methods, old_guard)) if old_guard != guard => changes.push(change(
                "routes",
                "changed",
                format!("{path}: for {guard}, was {old_guard}"),
            )),
            Some((old_methods, _)) if old_methods != methods => changes.push(change(
                "routes",
                "changed",
                format!("{path}: {methods}, was {old_methods}"),
            )),
            Some(_) => {}
        }
    }
    for path in was.keys().filter(|path| !now.contains_key(*path)) {
        changes.push(change("routes", "removed", path.clone()));
    }
    // The config schema's top-level properties: added, removed, retyped, newly required.
    let properties = |manifest: &Manifest| -> BTreeMap<String, (String, bool)> {
        let schema = manifest.config.as_ref();
        let required: Vec<&str> = schema
            .and_then(|schema| schema.get("required"))
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        schema
            .and_then(|schema| schema.get("properties"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, property)| {
                let kind = property
                    .get("type")
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "any".into());
                (
                    name.clone(),
                    (
                        kind.trim_matches('"').to_string(),
                        required.contains(&name.as_str()),
                    ),
                )
            })
            .collect()
    };
    let (was, now) = (properties(before.0), properties(after.0));
    for (name, (kind, required)) in &now {
        let needed = if *required { ", required" } else { "" };
        match was.get(name) {
            None => changes.push(change(
                "config",
                "added",
                format!("{name} ({kind}{needed})"),
            )),
            Some((old_kind, _)) if old_kind != kind => changes.push(change(
                "config",
                "changed",
                format!("{name}: {kind}, was {old_kind}"),
            )),
            Some((_, false)) if *required => changes.push(change(
                "config",
                "changed",
                format!("{name} is now required"),
            )),
            Some(_) => {}
        }
    }
    for name in was.keys().filter(|name| !now.contains_key(*name)) {
        changes.push(change("config", "removed", name.clone()));
    }
    // Dependencies.
    for (name, requirement) in &after.0.dependencies {
        match before.0.dependencies.get(name) {
            None => changes.push(change(
                "dependencies",
                "added",
                format!("{name} {requirement}"),
            )),
            Some(old) if old != requirement => changes.push(change(
                "dependencies",
                "changed",
                format!("{name} {requirement}, was {old}"),
            )),
            Some(_) => {}
        }
    }
    for name in before
        .0
        .dependencies
        .keys()
        .filter(|name| !after.0.dependencies.contains_key(*name))
    {
        changes.push(change("dependencies", "removed", name.to_string()));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerie_core::manifest::Manifest;

    fn manifest(extra: &str) -> Manifest {
        Manifest::parse(&format!(
            "[plugin]\nname = \"acme/app\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\n\
             categories = [\"other\"]\napi = \"0.1\"\n{extra}"
        ))
        .unwrap()
    }

    fn view(sentences: &[&str], routes: &[&str]) -> PermissionsView {
        PermissionsView {
            sentences: sentences.iter().map(ToString::to_string).collect(),
            routes: routes
                .iter()
                .map(|path| aerie_api_types::RouteView {
                    path: path.to_string(),
                    methods: vec![],
                    guard: "public".into(),
                })
                .collect(),
            ..PermissionsView::default()
        }
    }

    #[test]
    fn every_kind_of_difference_is_said() {
        let before = manifest(
            "[dependencies]\n\"acme/base\" = \"^1\"\n\"acme/old\" = \"^1\"\n\
             [[provides.routes]]\npath = \"/\"\nguard = \"public\"\n\
             [[provides.routes]]\npath = \"/admin\"\nguard = \"admin\"\n\
             [config]\ntype = \"object\"\n[config.properties.name]\ntype = \"string\"\n[config.properties.gone]\ntype = \"string\"\n",
        );
        let after = manifest(
            "[dependencies]\n\"acme/base\" = \"^2\"\n\"acme/new\" = \"^1\"\n\
             [[provides.routes]]\npath = \"/\"\nguard = \"public\"\n\
             [[provides.routes]]\npath = \"/admin\"\nguard = \"public\"\n\
             [[provides.routes]]\npath = \"/more\"\nmethods = [\"GET\"]\nguard = \"viewer\"\n\
             [config]\ntype = \"object\"\nrequired = [\"name\"]\n[config.properties.name]\ntype = \"string\"\n[config.properties.port]\ntype = \"integer\"\n",
        );
        let changes = between(
            (
                &before,
                &view(&["answer anyone on /", "keep data of its own"], &["/"]),
            ),
            (
                &after,
                &view(
                    &[
                        "answer anyone on /",
                        "send HTTP requests to api.example.com",
                    ],
                    &["/"],
                ),
            ),
        );
        let said: Vec<(&str, &str, &str)> = changes
            .iter()
            .map(|c| (c.area, c.kind, c.text.as_str()))
            .collect();
        assert_eq!(
            said,
            vec![
                (
                    "permissions",
                    "added",
                    "may now send HTTP requests to api.example.com"
                ),
                (
                    "permissions",
                    "removed",
                    "no longer may keep data of its own"
                ),
                ("routes", "changed", "/admin: for public, was admin"),
                ("routes", "added", "/more (GET), for viewer"),
                ("config", "changed", "name is now required"),
                ("config", "added", "port (integer)"),
                ("config", "removed", "gone"),
                ("dependencies", "changed", "acme/base ^2, was ^1"),
                ("dependencies", "added", "acme/new ^1"),
                ("dependencies", "removed", "acme/old"),
            ]
        );
    }

    #[test]
    fn the_same_version_has_no_changes() {
        let same = manifest("[[provides.routes]]\npath = \"/\"\nguard = \"public\"\n");
        let permissions = view(&["answer anyone on /"], &["/"]);
        assert!(between((&same, &permissions), (&same, &permissions)).is_empty());
    }
}
