//! The WIT files in `wit/` against the component inspector: what the ABI documents is exactly
//! what the registry accepts, and every item of `aerie:plugin` is documented.

use std::path::Path;

use aerie_core::inspect::{Entry, Need, classify_export, classify_import};
use wit_parser::{Resolve, WorldItem, WorldKey};

fn resolve() -> (Resolve, wit_parser::PackageId) {
    let mut resolve = Resolve::default();
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
    let (package, _) = resolve.push_dir(&wit).expect("wit/ parses");
    (resolve, package)
}

/// The full names (`ns:pkg/iface@version`) of the interfaces a world imports or exports.
fn interface_names<'a>(
    resolve: &Resolve,
    items: impl Iterator<Item = (&'a WorldKey, &'a WorldItem)>,
) -> Vec<String> {
    items
        .filter_map(|(_, item)| match item {
            WorldItem::Interface { id, .. } => Some(resolve.id_of(*id).expect("a named interface")),
            _ => None,
        })
        .collect()
}

#[test]
fn every_interface_the_abi_offers_is_accepted_by_the_inspector() {
    let (resolve, package) = resolve();
    let world = resolve.select_world(&[package], Some("imports")).unwrap();
    let imports = interface_names(&resolve, resolve.worlds[world].imports.iter());
    assert!(imports.len() > 30, "{imports:?}");
    for name in &imports {
        assert!(
            classify_import(name).is_ok(),
            "{name}: {:?}",
            classify_import(name)
        );
    }
    let mut guarded: Vec<&str> = imports
        .iter()
        .filter(|name| classify_import(name).unwrap() != Need::Nothing)
        .map(String::as_str)
        .collect();
    guarded.sort();
    assert_eq!(
        guarded,
        [
            "aerie:plugin/secrets@0.1.0",
            "aerie:plugin/services@0.1.0",
            "wasi:http/outgoing-handler@0.2.12",
            "wasi:keyvalue/atomics@0.2.0-draft",
            "wasi:keyvalue/batch@0.2.0-draft",
            "wasi:keyvalue/store@0.2.0-draft",
        ]
    );

    let world = resolve.select_world(&[package], Some("plugin")).unwrap();
    let exports = interface_names(&resolve, resolve.worlds[world].exports.iter());
    let entries: Vec<Option<Entry>> = exports.iter().map(|name| classify_export(name)).collect();
    assert_eq!(
        entries,
        [
            Some(Entry::Http),
            Some(Entry::Service),
            Some(Entry::Lifecycle)
        ],
        "{exports:?}"
    );
}

#[test]
fn every_item_of_the_aerie_plugin_package_is_documented() {
    let (resolve, package) = resolve();
    assert_eq!(
        resolve.packages[package].name.to_string(),
        "aerie:plugin@0.1.0"
    );
    let documented = |docs: &wit_parser::Docs| {
        docs.contents
            .as_deref()
            .is_some_and(|text| !text.trim().is_empty())
    };
    let mut undocumented = Vec::new();
    for (name, id) in &resolve.packages[package].interfaces {
        let interface = &resolve.interfaces[*id];
        if !documented(&interface.docs) {
            undocumented.push(format!("interface {name}"));
        }
        for (function, item) in &interface.functions {
            if !documented(&item.docs) {
                undocumented.push(format!("{name}.{function}"));
            }
        }
        for (type_name, type_id) in &interface.types {
            let ty = &resolve.types[*type_id];
            if !documented(&ty.docs) {
                undocumented.push(format!("{name}.{type_name}"));
            }
            let cases: Vec<(&str, &wit_parser::Docs)> = match &ty.kind {
                wit_parser::TypeDefKind::Variant(variant) => variant
                    .cases
                    .iter()
                    .map(|case| (case.name.as_str(), &case.docs))
                    .collect(),
                wit_parser::TypeDefKind::Enum(enumeration) => enumeration
                    .cases
                    .iter()
                    .map(|case| (case.name.as_str(), &case.docs))
                    .collect(),
                _ => Vec::new(),
            };
            for (case, docs) in cases {
                if !documented(docs) {
                    undocumented.push(format!("{name}.{type_name}.{case}"));
                }
            }
        }
    }
    for (name, id) in &resolve.packages[package].worlds {
        if !documented(&resolve.worlds[*id].docs) {
            undocumented.push(format!("world {name}"));
        }
    }
    assert!(undocumented.is_empty(), "undocumented: {undocumented:?}");
}
