//! Component inspection: what a plugin imports and exports, and what each import needs.
//!
//! The registry calls [`inspect_component`] at publish and [`check_against_manifest`] to refuse
//! a component that imports anything outside the host's vocabulary or not covered by the
//! manifest's permissions. Nothing here runs the component.

use std::collections::BTreeSet;
use std::fmt;

use semver::Version;
use serde::Serialize;
use wasmparser::{
    FuncToValidate, FuncValidatorAllocations, FunctionBody, Parser, Payload, ValidPayload,
    Validator, ValidatorResources, WasmFeatures,
};

use crate::PLUGIN_API_VERSION;
use crate::manifest::Manifest;

/// The WebAssembly features the host's engine runs components with, and so the features a
/// published component may use: WebAssembly 3.0 and the component model, without shared
/// memory and threads, exception handling, garbage-collected types or the component model's
/// async. A component the registry accepts is one the host compiles; the host's tests check
/// that its engine enables exactly these.
pub const HOST_FEATURES: WasmFeatures = WasmFeatures::WASM3
    .difference(WasmFeatures::GC_TYPES)
    .difference(WasmFeatures::EXCEPTIONS)
    .difference(WasmFeatures::THREADS)
    .union(WasmFeatures::COMPONENT_MODEL);

/// A permission a plugin must declare in its manifest to use an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// `permissions.outbound`: outbound HTTP.
    Outbound,
    /// `permissions.keyvalue`: durable key-value state.
    KeyValue,
    /// `permissions.secrets`: reading secrets.
    Secrets,
    /// `permissions.services`: calling other plugins' services.
    Services,
}

impl Permission {
    /// The manifest field that grants it.
    pub fn manifest_field(self) -> &'static str {
        match self {
            Permission::Outbound => "permissions.outbound",
            Permission::KeyValue => "permissions.keyvalue",
            Permission::Secrets => "permissions.secrets",
            Permission::Services => "permissions.services",
        }
    }

    /// What it lets a plugin do, in plain words for people deciding to install it.
    pub fn description(self) -> &'static str {
        match self {
            Permission::Outbound => "make HTTP requests to the hosts it lists",
            Permission::KeyValue => "store data that persists across restarts and updates",
            Permission::Secrets => "read the secrets it names",
            Permission::Services => "call services of the plugins it names",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.manifest_field())
    }
}

/// What an import needs from the installation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "permission")]
pub enum Need {
    /// Always linked: clocks, random, logging, config, streams, and the `wasi:cli` interfaces
    /// standard libraries import (empty environment, no directories, no sockets).
    Nothing,
    /// Needs the permission.
    Permission(Permission),
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Nothing => f.write_str("none"),
            Need::Permission(permission) => permission.fmt(f),
        }
    }
}

/// What Aerie calls a plugin through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entry {
    /// `wasi:http/incoming-handler`: HTTP endpoints.
    Http,
    /// `aerie:plugin/service`: services for other plugins.
    Service,
    /// `aerie:plugin/lifecycle`: init, health and shutdown hooks.
    Lifecycle,
}

/// A WIT interface name: `namespace:package/interface@version`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct InterfaceName {
    /// `namespace:package`, like `wasi:http`.
    pub package: String,
    /// The interface inside the package, like `outgoing-handler`.
    pub interface: String,
    /// The package version.
    pub version: Version,
}

impl InterfaceName {
    /// Parses `ns:pkg/iface@1.2.3`; `None` for anything else (plain names, missing versions).
    pub fn parse(text: &str) -> Option<InterfaceName> {
        let (path, version) = text.split_once('@')?;
        let (package, interface) = path.split_once('/')?;
        let (namespace, package_name) = package.split_once(':')?;
        if namespace.is_empty() || package_name.is_empty() || interface.is_empty() {
            return None;
        }
        Some(InterfaceName {
            package: package.to_string(),
            interface: interface.to_string(),
            version: Version::parse(version).ok()?,
        })
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.package, self.interface, self.version)
    }
}

/// One import of the component and what it needs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Import {
    /// The interface imported.
    pub name: String,
    /// What the installation must grant for it.
    pub needs: Need,
}

/// One export of the component.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Export {
    /// The interface exported.
    pub name: String,
    /// What Aerie calls it for, or `None` if Aerie ignores it.
    pub entry: Option<Entry>,
}

/// What a component imports and exports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComponentInfo {
    /// Imports, in the component's order.
    pub imports: Vec<Import>,
    /// Exports, in the component's order.
    pub exports: Vec<Export>,
}

impl ComponentInfo {
    /// The entry points the component exports.
    pub fn entries(&self) -> BTreeSet<Entry> {
        self.exports
            .iter()
            .filter_map(|export| export.entry)
            .collect()
    }

    /// The permissions its imports need.
    pub fn needed_permissions(&self) -> BTreeSet<Permission> {
        self.imports
            .iter()
            .filter_map(|import| match import.needs {
                Need::Permission(permission) => Some(permission),
                Need::Nothing => None,
            })
            .collect()
    }
}

/// Why a component was refused. Each message names the offending interface or rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// The bytes are not WebAssembly at all.
    #[error("plugin.wasm is not a WebAssembly binary")]
    NotWasm,
    /// A core module instead of a component.
    #[error(
        "plugin.wasm is a core WebAssembly module, not a component: build it for the \
         wasm32-wasip2 target, or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    /// The component failed validation.
    #[error("plugin.wasm is not a valid component: {0}")]
    Invalid(String),
    /// An import that is not an interface (a bare function, type or module).
    #[error(
        "plugin.wasm imports `{0}`, which is not an interface; plugins import only WIT interfaces"
    )]
    NotAnInterface(String),
    /// An interface the host does not provide.
    #[error("plugin.wasm imports `{0}`, which Aerie does not provide")]
    UnknownImport(String),
    /// A known interface at a newer version than the host provides.
    #[error("plugin.wasm imports `{name}`, but this version of Aerie provides at most {provided}")]
    UnsupportedVersion {
        /// The import.
        name: String,
        /// The highest version the host provides.
        provided: String,
    },
    /// An import the manifest's permissions do not cover.
    #[error("plugin.wasm imports `{name}`, which needs `{permission}` in aerie.toml")]
    NotPermitted {
        /// The import.
        name: String,
        /// The permission to declare.
        permission: Permission,
    },
    /// Nothing Aerie can call.
    #[error(
        "plugin.wasm exports nothing Aerie can call: export wasi:http/incoming-handler, \
         aerie:plugin/service or aerie:plugin/lifecycle"
    )]
    NoEntryPoint,
    /// The manifest and the exports disagree.
    #[error("{0}")]
    ProvidesMismatch(String),
}

impl InspectError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            InspectError::NotWasm => "component_not_wasm",
            InspectError::CoreModule => "component_core_module",
            InspectError::Invalid(_) => "component_invalid",
            InspectError::NotAnInterface(_) | InspectError::UnknownImport(_) => {
                "component_unknown_import"
            }
            InspectError::UnsupportedVersion { .. } => "component_unsupported_version",
            InspectError::NotPermitted { .. } => "component_import_not_permitted",
            InspectError::NoEntryPoint => "component_no_entry_point",
            InspectError::ProvidesMismatch(_) => "component_provides_mismatch",
        }
    }
}

/// An interface in the host's vocabulary.
struct Known {
    package: &'static str,
    interfaces: &'static [&'static str],
    /// The version the host implements. Older versions with the same major (or, before 1.0,
    /// the same minor) are accepted, as the host links semver-compatible imports; prerelease
    /// versions match only exactly.
    version: Version,
    needs: Need,
}

fn vocabulary() -> [Known; 13] {
    let wasi = Version::new(0, 2, 12);
    let nothing = |package, interfaces| Known {
        package,
        interfaces,
        version: wasi.clone(),
        needs: Need::Nothing,
    };
    [
        nothing("wasi:io", &["error", "poll", "streams"]),
        nothing("wasi:clocks", &["monotonic-clock", "wall-clock"]),
        nothing("wasi:random", &["random", "insecure", "insecure-seed"]),
        nothing(
            "wasi:cli",
            &[
                "environment",
                "exit",
                "stdin",
                "stdout",
                "stderr",
                "terminal-input",
                "terminal-output",
                "terminal-stdin",
                "terminal-stdout",
                "terminal-stderr",
            ],
        ),
        // Linked because standard libraries import them; no directory is preopened.
        nothing("wasi:filesystem", &["types", "preopens"]),
        // Linked because standard libraries import them; every address is refused.
        nothing(
            "wasi:sockets",
            &[
                "network",
                "instance-network",
                "udp",
                "udp-create-socket",
                "tcp",
                "tcp-create-socket",
                "ip-name-lookup",
            ],
        ),
        nothing("wasi:http", &["types"]),
        Known {
            package: "wasi:http",
            interfaces: &["outgoing-handler"],
            version: wasi.clone(),
            needs: Need::Permission(Permission::Outbound),
        },
        Known {
            package: "wasi:keyvalue",
            interfaces: &["store", "atomics", "batch"],
            version: Version::parse("0.2.0-draft").expect("valid version"),
            needs: Need::Permission(Permission::KeyValue),
        },
        Known {
            package: "wasi:config",
            interfaces: &["store"],
            version: Version::parse("0.2.0-rc.1").expect("valid version"),
            needs: Need::Nothing,
        },
        Known {
            package: "aerie:plugin",
            interfaces: &["logging"],
            version: PLUGIN_API_VERSION,
            needs: Need::Nothing,
        },
        Known {
            package: "aerie:plugin",
            interfaces: &["secrets"],
            version: PLUGIN_API_VERSION,
            needs: Need::Permission(Permission::Secrets),
        },
        Known {
            package: "aerie:plugin",
            interfaces: &["services"],
            version: PLUGIN_API_VERSION,
            needs: Need::Permission(Permission::Services),
        },
    ]
}

fn compatible(provided: &Version, wanted: &Version) -> bool {
    if !provided.pre.is_empty() || !wanted.pre.is_empty() {
        return provided == wanted;
    }
    let same_line = if provided.major == 0 {
        wanted.major == 0 && wanted.minor == provided.minor
    } else {
        wanted.major == provided.major
    };
    same_line && wanted <= provided
}

/// What an import of the interface `name` (like `wasi:http/types@0.2.3`) needs, or why the
/// host cannot provide it.
pub fn classify_import(name: &str) -> Result<Need, InspectError> {
    let interface =
        InterfaceName::parse(name).ok_or_else(|| InspectError::UnknownImport(name.to_string()))?;
    let known = vocabulary().into_iter().find(|known| {
        known.package == interface.package
            && known.interfaces.contains(&interface.interface.as_str())
    });
    let Some(known) = known else {
        return Err(InspectError::UnknownImport(name.to_string()));
    };
    if !compatible(&known.version, &interface.version) {
        return Err(InspectError::UnsupportedVersion {
            name: name.to_string(),
            provided: format!(
                "{}/{}@{}",
                known.package, interface.interface, known.version
            ),
        });
    }
    Ok(known.needs)
}

/// The entry point an export of the interface `name` serves, if Aerie calls it.
pub fn classify_export(name: &str) -> Option<Entry> {
    let interface = InterfaceName::parse(name)?;
    let wasi = Version::new(0, 2, 12);
    match (interface.package.as_str(), interface.interface.as_str()) {
        ("wasi:http", "incoming-handler") if compatible(&wasi, &interface.version) => {
            Some(Entry::Http)
        }
        ("aerie:plugin", "service") if compatible(&PLUGIN_API_VERSION, &interface.version) => {
            Some(Entry::Service)
        }
        ("aerie:plugin", "lifecycle") if compatible(&PLUGIN_API_VERSION, &interface.version) => {
            Some(Entry::Lifecycle)
        }
        _ => None,
    }
}

/// Validates `bytes` as a component and lists its imports and exports.
///
/// Fails for anything that is not a valid component, for an import outside the host's
/// vocabulary, and for a component that exports no entry point.
pub fn inspect_component(bytes: &[u8]) -> Result<ComponentInfo, InspectError> {
    if Parser::is_core_wasm(bytes) {
        return Err(InspectError::CoreModule);
    }
    if !Parser::is_component(bytes) {
        return Err(InspectError::NotWasm);
    }
    let invalid = |err: wasmparser::BinaryReaderError| InspectError::Invalid(err.to_string());
    let mut validator = Validator::new_with_features(HOST_FEATURES);
    let mut function_bodies = Vec::new();
    // (name, is an instance) of the outermost component's imports and exports; nested modules
    // and components are implementation details.
    let mut imports: Vec<(String, bool)> = Vec::new();
    let mut exports: Vec<(String, bool)> = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        if let ValidPayload::Func(function, body) = validator.payload(&payload).map_err(invalid)? {
            function_bodies.push((function, body));
        }
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    let import = import.map_err(invalid)?;
                    let is_instance =
                        matches!(import.ty, wasmparser::ComponentTypeRef::Instance(_));
                    imports.push((full_name(&import.name), is_instance));
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    let export = export.map_err(invalid)?;
                    let is_instance = export.kind == wasmparser::ComponentExternalKind::Instance;
                    exports.push((full_name(&export.name), is_instance));
                }
            }
            _ => {}
        }
    }
    validate_function_bodies(function_bodies)?;

    let imports = imports
        .into_iter()
        .map(|(name, is_instance)| {
            if !is_instance {
                return Err(InspectError::NotAnInterface(name));
            }
            let needs = classify_import(&name)?;
            Ok(Import { name, needs })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let exports = exports
        .into_iter()
        .map(|(name, is_instance)| Export {
            entry: if is_instance {
                classify_export(&name)
            } else {
                None
            },
            name,
        })
        .collect();
    let info = ComponentInfo { imports, exports };
    if info.entries().is_empty() {
        return Err(InspectError::NoEntryPoint);
    }
    Ok(info)
}

/// The full name of an import or export: its name, with the version suffix appended when the
/// name is a versioned interface name and the item does not name an interface it implements
/// (`a:b/c@0.2` with the suffix `.1` is `a:b/c@0.2.1`).
fn full_name(name: &wasmparser::ComponentExternName<'_>) -> String {
    match name.version_suffix {
        Some(suffix) if name.implements.is_none() && name.name.contains('@') => {
            format!("{}{suffix}", name.name)
        }
        _ => name.name.to_owned(),
    }
}

/// Validates function bodies on all cores: they are most of a component's bytes, and each is
/// independent of the others once the module's sections are known. The error reported is the
/// one in the earliest function, whatever thread finds it.
fn validate_function_bodies(
    bodies: Vec<(FuncToValidate<ValidatorResources>, FunctionBody<'_>)>,
) -> Result<(), InspectError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |cores| cores.get())
        .min(bodies.len().div_ceil(256))
        .max(1);
    let chunk_len = bodies.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<(usize, FuncToValidate<ValidatorResources>, FunctionBody<'_>)>> =
        Vec::new();
    for (index, (function, body)) in bodies.into_iter().enumerate() {
        if index % chunk_len == 0 {
            chunks.push(Vec::with_capacity(chunk_len));
        }
        chunks
            .last_mut()
            .expect("pushed above")
            .push((index, function, body));
    }
    let validate_chunk =
        |chunk: Vec<(usize, FuncToValidate<ValidatorResources>, FunctionBody<'_>)>| {
            let mut allocations = FuncValidatorAllocations::default();
            for (index, function, body) in chunk {
                let mut validator = function.into_validator(allocations);
                if let Err(err) = validator.validate(&body) {
                    return Err((index, err.to_string()));
                }
                allocations = validator.into_allocations();
            }
            Ok(())
        };
    let first_error = std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || validate_chunk(chunk)))
            .collect();
        workers
            .into_iter()
            .filter_map(|worker| worker.join().expect("validation does not panic").err())
            .min_by_key(|(index, _)| *index)
    });
    match first_error {
        Some((_, message)) => Err(InspectError::Invalid(message)),
        None => Ok(()),
    }
}

/// Checks that the manifest grants every permission the imports need and that its
/// `[provides]` section matches the exports.
pub fn check_against_manifest(
    info: &ComponentInfo,
    manifest: &Manifest,
) -> Result<(), InspectError> {
    let granted = manifest.granted_permissions();
    for import in &info.imports {
        if let Need::Permission(permission) = import.needs
            && !granted.contains(&permission)
        {
            return Err(InspectError::NotPermitted {
                name: import.name.clone(),
                permission,
            });
        }
    }
    let entries = info.entries();
    let provides = &manifest.provides;
    let mismatch = |message: &str| Err(InspectError::ProvidesMismatch(message.to_string()));
    match (entries.contains(&Entry::Http), provides.routes.is_empty()) {
        (true, true) => {
            return mismatch(
                "plugin.wasm exports wasi:http/incoming-handler, but aerie.toml declares no \
                 [[provides.routes]]",
            );
        }
        (false, false) => {
            return mismatch(
                "aerie.toml declares [[provides.routes]], but plugin.wasm does not export \
                 wasi:http/incoming-handler",
            );
        }
        _ => {}
    }
    match (
        entries.contains(&Entry::Service),
        provides.services.is_empty(),
    ) {
        (true, true) => mismatch(
            "plugin.wasm exports aerie:plugin/service, but aerie.toml declares no provides.services",
        ),
        (false, false) => mismatch(
            "aerie.toml declares provides.services, but plugin.wasm does not export \
             aerie:plugin/service",
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_parse() {
        let name = InterfaceName::parse("wasi:http/types@0.2.3").unwrap();
        assert_eq!(name.package, "wasi:http");
        assert_eq!(name.interface, "types");
        assert_eq!(name.version, Version::new(0, 2, 3));
        for bad in [
            "wasi:http/types",
            "types",
            "wasi:http@0.2.0",
            ":x/y@1.0.0",
            "a:b/c@x",
        ] {
            assert_eq!(InterfaceName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn imports_map_to_permissions() {
        let cases = [
            ("wasi:cli/stdout@0.2.0", Need::Nothing),
            ("wasi:io/streams@0.2.12", Need::Nothing),
            ("wasi:http/types@0.2.6", Need::Nothing),
            ("wasi:config/store@0.2.0-rc.1", Need::Nothing),
            ("aerie:plugin/logging@0.1.0", Need::Nothing),
            (
                "wasi:http/outgoing-handler@0.2.12",
                Need::Permission(Permission::Outbound),
            ),
            (
                "wasi:keyvalue/atomics@0.2.0-draft",
                Need::Permission(Permission::KeyValue),
            ),
            (
                "aerie:plugin/secrets@0.1.0",
                Need::Permission(Permission::Secrets),
            ),
            (
                "aerie:plugin/services@0.1.0",
                Need::Permission(Permission::Services),
            ),
        ];
        for (name, need) in cases {
            assert_eq!(classify_import(name), Ok(need), "{name}");
        }
    }

    #[test]
    fn unknown_and_newer_imports_are_refused_by_name() {
        assert_eq!(
            classify_import("acme:spy/keylogger@1.0.0")
                .unwrap_err()
                .to_string(),
            "plugin.wasm imports `acme:spy/keylogger@1.0.0`, which Aerie does not provide"
        );
        assert_eq!(
            classify_import("wasi:http/types@0.3.0")
                .unwrap_err()
                .to_string(),
            "plugin.wasm imports `wasi:http/types@0.3.0`, but this version of Aerie provides at most wasi:http/types@0.2.12"
        );
        assert_eq!(
            classify_import("wasi:http/types@0.2.13")
                .unwrap_err()
                .code(),
            "component_unsupported_version"
        );
        assert_eq!(
            classify_import("wasi:keyvalue/store@0.2.0-draft2")
                .unwrap_err()
                .code(),
            "component_unsupported_version"
        );
        assert_eq!(
            classify_import("wasi:cli/run@0.2.0").unwrap_err().code(),
            "component_unknown_import"
        );
        assert_eq!(
            classify_import("aerie:plugin/secrets@0.2.0")
                .unwrap_err()
                .code(),
            "component_unsupported_version"
        );
    }

    #[test]
    fn exports_map_to_entry_points() {
        assert_eq!(
            classify_export("wasi:http/incoming-handler@0.2.0"),
            Some(Entry::Http)
        );
        assert_eq!(
            classify_export("aerie:plugin/service@0.1.0"),
            Some(Entry::Service)
        );
        assert_eq!(
            classify_export("aerie:plugin/lifecycle@0.1.0"),
            Some(Entry::Lifecycle)
        );
        assert_eq!(classify_export("wasi:cli/run@0.2.0"), None);
        assert_eq!(classify_export("wasi:http/incoming-handler@0.3.0"), None);
    }

    #[test]
    fn core_modules_and_garbage_are_refused() {
        let module = wat::parse_str("(module)").unwrap();
        assert_eq!(inspect_component(&module), Err(InspectError::CoreModule));
        assert_eq!(
            inspect_component(b"\x7fELF...."),
            Err(InspectError::NotWasm)
        );
        assert_eq!(inspect_component(b""), Err(InspectError::NotWasm));
        let mut truncated = wat::parse_str("(component (core module))").unwrap();
        truncated.truncate(truncated.len() - 2);
        assert!(matches!(
            inspect_component(&truncated),
            Err(InspectError::Invalid(_))
        ));
    }

    #[test]
    fn components_are_read_without_running() {
        let component = wat::parse_str(
            r#"(component
                (import "wasi:cli/stdout@0.2.0" (instance))
                (import "wasi:http/outgoing-handler@0.2.12" (instance))
                (instance $lifecycle)
                (export "aerie:plugin/lifecycle@0.1.0" (instance $lifecycle))
                (export "acme:extra/thing@1.0.0" (instance $lifecycle))
            )"#,
        )
        .unwrap();
        let info = inspect_component(&component).unwrap();
        assert_eq!(
            info.imports,
            vec![
                Import {
                    name: "wasi:cli/stdout@0.2.0".into(),
                    needs: Need::Nothing
                },
                Import {
                    name: "wasi:http/outgoing-handler@0.2.12".into(),
                    needs: Need::Permission(Permission::Outbound)
                },
            ]
        );
        assert_eq!(info.entries(), BTreeSet::from([Entry::Lifecycle]));
        assert_eq!(info.exports[1].entry, None);
        assert_eq!(
            info.needed_permissions(),
            BTreeSet::from([Permission::Outbound])
        );
    }

    #[test]
    fn an_invalid_function_body_is_found_among_many_and_the_earliest_is_reported() {
        let valid = "(func (result i32) (i32.const 1))".repeat(600);
        let component = wat::parse_str(format!(
            r#"(component
                (core module {valid} (func (result i32) (i64.const 1)) {valid}
                    (func (result i32) (f32.const 1)))
                (instance $i)
                (export "aerie:plugin/lifecycle@0.1.0" (instance $i))
            )"#
        ))
        .unwrap();
        // The single-threaded validator's verdict is the reference.
        let expected = Validator::new_with_features(WasmFeatures::default())
            .validate_all(&component)
            .err()
            .expect("the component is invalid")
            .to_string();
        assert!(expected.contains("type mismatch"), "{expected}");
        assert_eq!(
            inspect_component(&component),
            Err(InspectError::Invalid(expected))
        );
    }

    #[test]
    fn a_function_import_is_not_an_interface() {
        let component = wat::parse_str(
            r#"(component
                (import "log" (func))
                (instance $i)
                (export "aerie:plugin/lifecycle@0.1.0" (instance $i))
            )"#,
        )
        .unwrap();
        assert_eq!(
            inspect_component(&component),
            Err(InspectError::NotAnInterface("log".into()))
        );
    }

    #[test]
    fn mutated_components_are_refused_or_read_but_never_panic() {
        let component = wat::parse_str(
            r#"(component
                (import "wasi:http/types@0.2.12" (instance))
                (core module (func (export "f") (param i32) (result i32) local.get 0))
                (instance $h)
                (export "wasi:http/incoming-handler@0.2.12" (instance $h))
            )"#,
        )
        .unwrap();
        let mut random = crate::test_support::XorShift(0x853c_49e6_748f_ea9b);
        for _ in 0..3000 {
            let mut mutated = component.clone();
            for _ in 0..3 {
                // Past the 8-byte header, which only selects "not a component".
                let at = 8 + random.below(mutated.len() - 8);
                mutated[at] = random.next() as u8;
            }
            let _ = inspect_component(&mutated);
        }
    }

    #[test]
    fn a_component_without_entry_points_is_refused() {
        let component = wat::parse_str("(component)").unwrap();
        assert_eq!(
            inspect_component(&component),
            Err(InspectError::NoEntryPoint)
        );
    }
}
