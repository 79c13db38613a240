use super::*;

const VALID: &str = r#"
[plugin]
name = "acme/greeter-client"
version = "1.2.3-beta.1"
description = "Greets people through acme/greeter"
license = "MIT OR Apache-2.0"
authors = ["Ada <ada@example.com>"]
homepage = "https://example.com/greeter"
repository = "https://github.com/acme/greeter"
categories = ["developer-tools", "automation"]
tags = ["greeting", "example"]
api = "0.1"

[permissions]
outbound = ["api.example.com", "*.example.org:8443", "127.0.0.1", "[::1]:8080"]
secrets = ["api-token", "SIGNING_KEY"]
services = ["acme/greeter"]
keyvalue = true
memory = "64 MiB"
timeout = "2s"

[dependencies]
"acme/greeter" = "^1.0"

[provides]
services = ["greet"]

[[provides.routes]]
path = "/"
methods = ["GET"]
guard = "public"

[[provides.routes]]
path = "/admin/*"
guard = "admin"

[[provides.routes]]
path = "/items/{id}"
guard = "member"

[config]
type = "object"
required = ["greeting"]
[config.properties.greeting]
type = "string"
default = "Hello"
"#;

/// The valid manifest with `from` replaced by `to`, which must occur in it.
fn edited(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "the fixture has no {from:?}");
    VALID.replacen(from, to, 1)
}

fn problems(text: &str) -> String {
    match Manifest::parse(text) {
        Ok(_) => panic!("the manifest was accepted:\n{text}"),
        Err(err) => err
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn a_complete_manifest_parses_into_typed_fields() {
    let manifest = Manifest::parse(VALID).unwrap();
    assert_eq!(manifest.plugin.name.as_str(), "acme/greeter-client");
    assert_eq!(manifest.plugin.version.to_string(), "1.2.3-beta.1");
    assert_eq!(
        manifest.plugin.categories,
        ["developer-tools", "automation"]
    );
    let outbound: Vec<String> = manifest
        .permissions
        .outbound
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        outbound,
        [
            "api.example.com",
            "*.example.org:8443",
            "127.0.0.1",
            "[::1]:8080"
        ]
    );
    assert_eq!(manifest.permissions.memory, Some(64 << 20));
    assert_eq!(manifest.permissions.timeout, Some(Duration::from_secs(2)));
    assert_eq!(
        manifest
            .dependencies
            .keys()
            .map(|n| n.as_str())
            .collect::<Vec<_>>(),
        ["acme/greeter"]
    );
    assert_eq!(manifest.provides.routes.len(), 3);
    assert_eq!(manifest.provides.routes[1].guard, Guard::Admin);
    assert_eq!(
        manifest.config.as_ref().unwrap()["properties"]["greeting"]["default"],
        "Hello"
    );
    use crate::inspect::Permission;
    assert_eq!(
        manifest.granted_permissions(),
        BTreeSet::from([
            Permission::Outbound,
            Permission::Secrets,
            Permission::Services,
            Permission::KeyValue
        ])
    );
}

#[test]
fn a_minimal_manifest_needs_only_identity_and_api() {
    let manifest = Manifest::parse(
        r#"
        [plugin]
        name = "acme/x"
        version = "0.1.0"
        description = "x"
        license = "MIT"
        categories = ["other"]
        api = "0.1"
        "#,
    )
    .unwrap();
    assert_eq!(manifest.permissions, Permissions::default());
    assert!(manifest.dependencies.is_empty());
    assert_eq!(manifest.config, None);
}

#[test]
fn missing_required_fields_are_all_reported() {
    insta::assert_snapshot!(problems("[plugin]\ntags = []\n"), @r"
    plugin.name: is required
    plugin.version: is required
    plugin.description: is required
    plugin.license: is required
    plugin.categories: needs at least one of: service-management, business-intelligence, data-integration, automation, analytics, security, developer-tools, other
    plugin.api: is required
    ");
    insta::assert_snapshot!(problems(""), @"plugin: the [plugin] table is required");
}

#[test]
fn a_wrong_type_names_the_field_and_position() {
    insta::assert_snapshot!(
        problems(&edited(r#"version = "1.2.3-beta.1""#, "version = 1")),
        @"line 4, column 11: plugin.version: invalid type: integer `1`, expected a string"
    );
    insta::assert_snapshot!(
        problems(&edited("keyvalue = true", r#"keyvalue = "yes""#)),
        @r#"line 18, column 12: permissions.keyvalue: invalid type: string "yes", expected a boolean"#
    );
    insta::assert_snapshot!(
        problems(&edited(r#"tags = ["greeting", "example"]"#, r#"tags = "greeting""#)),
        @r#"line 11, column 8: plugin.tags: invalid type: string "greeting", expected a sequence"#
    );
    insta::assert_snapshot!(
        problems("plugin = 3"),
        @"line 1, column 10: plugin: invalid type: integer `3`, expected a table"
    );
}

#[test]
fn invalid_toml_reports_the_position() {
    insta::assert_snapshot!(
        problems("[plugin]\nname = \"acme/x\nversion = \"1.0.0\"\n"),
        @"line 2, column 15: invalid basic string, expected `\"`"
    );
}

#[test]
fn unknown_fields_suggest_the_field_meant() {
    let text = edited("description =", "descripton =")
        .replace("keyvalue = true", "key-value = true")
        .replace(r#"guard = "admin""#, "gaurd = \"admin\"\nguard = \"admin\"")
        .replace("[config]", "[extras]\nx = 1\n\n[config]");
    insta::assert_snapshot!(problems(&text), @r"
    extras: unknown field
    permissions.key-value: unknown field; did you mean `keyvalue`?
    plugin.descripton: unknown field; did you mean `description`?
    provides.routes[1].gaurd: unknown field; did you mean `guard`?
    plugin.description: is required
    ");
}

#[test]
fn every_table_lists_the_fields_its_struct_reads() {
    // A manifest naming every known field must produce no unknown-field problem, so the
    // did-you-mean lists cannot drift from the structs.
    let mut text = String::new();
    for (table, fields) in KNOWN_FIELDS {
        let header = match *table {
            "" => continue,
            "provides.routes[]" => "[[provides.routes]]".to_string(),
            other => format!("[{other}]"),
        };
        text.push_str(&header);
        text.push('\n');
        for field in *fields {
            let value = match (*table, *field) {
                ("permissions", "keyvalue") => "true",
                (
                    _,
                    "authors" | "categories" | "tags" | "outbound" | "secrets" | "services"
                    | "routes" | "methods",
                ) => "[]",
                _ => "\"x\"",
            };
            if *table == "provides" && *field == "routes" {
                continue;
            }
            text.push_str(&format!("{field} = {value}\n"));
        }
    }
    text.push_str("[dependencies]\n[config]\n");
    let err = Manifest::parse(&text).unwrap_err();
    let unknown: Vec<&Problem> = err
        .problems
        .iter()
        .filter(|problem| problem.message.starts_with("unknown field"))
        .collect();
    assert!(unknown.is_empty(), "{unknown:?}");
    let root: Vec<&str> = KNOWN_FIELDS[0].1.to_vec();
    assert_eq!(
        root,
        [
            "plugin",
            "permissions",
            "dependencies",
            "provides",
            "config"
        ]
    );
}

#[test]
fn invalid_names_state_the_rule() {
    insta::assert_snapshot!(problems(&edited("acme/greeter-client", "Acme/Greeter")), @r#"plugin.name: "Acme/Greeter" is not a plugin name: the namespace contains 'A'; only lowercase letters, digits and `-` are allowed (names are lowercase)"#);
    insta::assert_snapshot!(problems(&edited("acme/greeter-client", "greeter")), @r#"plugin.name: "greeter" is not a plugin name: expected `namespace/name`"#);
    let long = format!("acme/{}", "a".repeat(65));
    insta::assert_snapshot!(problems(&edited("acme/greeter-client", &long)), @r#"plugin.name: "acme/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" is not a plugin name: the name is longer than 64 characters"#);
}

#[test]
fn invalid_versions_and_requirements_are_refused() {
    insta::assert_snapshot!(problems(&edited("1.2.3-beta.1", "1.0")), @r#"plugin.version: "1.0" is not a semantic version (like 1.2.3): unexpected end of input while parsing minor version number"#);
    insta::assert_snapshot!(problems(&edited(r#""^1.0""#, r#""one or two""#)), @r#"dependencies."acme/greeter": "one or two" is not a version requirement (like "^1.2"): unexpected character 'o' while parsing major version number"#);
    insta::assert_snapshot!(problems(&edited(r#"api = "0.1""#, r#"api = "^2""#)), @"plugin.api: requires aerie:plugin ^2, but this version of Aerie provides 0.1.0");
}

#[test]
fn categories_come_from_the_fixed_list() {
    insta::assert_snapshot!(
        problems(&edited(r#""developer-tools", "automation""#, r#""analytic", "games", "automation", "automation""#)),
        @r#"
    plugin.categories: has 4 entries; at most 3 are allowed
    plugin.categories[0]: "analytic" is not a category; did you mean "analytics"? the categories are: service-management, business-intelligence, data-integration, automation, analytics, security, developer-tools, other
    plugin.categories[1]: "games" is not a category; the categories are: service-management, business-intelligence, data-integration, automation, analytics, security, developer-tools, other
    plugin.categories[3]: "automation" is listed twice
    "#
    );
}

#[test]
fn too_many_or_too_long_tags_are_refused() {
    let many: Vec<String> = (0..11).map(|i| format!("\"t{i}\"")).collect();
    insta::assert_snapshot!(
        problems(&edited(r#"tags = ["greeting", "example"]"#, &format!("tags = [{}]", many.join(", ")))),
        @"plugin.tags: has 11 tags; at most 10 are allowed"
    );
    let long = "t".repeat(33);
    insta::assert_snapshot!(
        problems(&edited(r#""example""#, &format!(r#""{long}", "Bad Tag", "greeting""#))),
        @r#"
    plugin.tags[1]: "ttttttttttttttttttttttttttttttttt" is longer than 32 characters
    plugin.tags[2]: "Bad Tag" may contain only lowercase letters, digits and `-`
    plugin.tags[3]: "greeting" is listed twice
    "#
    );
}

#[test]
fn outbound_hosts_are_host_names() {
    insta::assert_snapshot!(
        problems(&edited(
            r#"outbound = ["api.example.com", "*.example.org:8443", "127.0.0.1", "[::1]:8080"]"#,
            r#"outbound = ["ok.example.com", "https://api.example.com/v1", "exa mple.com", "API.example.com", "example.com:0", "*.10.0.0.1", "-bad.example.com", "[::1", "ok.example.com"]"#
        )),
        @r#"
    permissions.outbound[1]: "https://api.example.com/v1" is not a host name; write only the host, like "api.example.com"
    permissions.outbound[2]: "exa mple.com" is not a host name
    permissions.outbound[3]: "API.example.com" is not a host name: host names are written in lowercase
    permissions.outbound[4]: "example.com:0" is not a host name: the port must be a number from 1 to 65535
    permissions.outbound[5]: "*.10.0.0.1" is not a host name: `*.` applies to names, not addresses
    permissions.outbound[6]: "-bad.example.com" is not a host name
    permissions.outbound[7]: "[::1" is not a host name
    permissions.outbound[8]: "ok.example.com" is listed twice
    "#
    );
}

#[test]
fn outbound_patterns_match_hosts_and_ports() {
    let host = |text: &str| text.parse::<OutboundHost>().unwrap();
    assert!(host("api.example.com").allows("api.example.com", 443));
    assert!(!host("api.example.com").allows("evil-api.example.com", 443));
    assert!(host("*.example.com").allows("a.b.example.com", 80));
    assert!(!host("*.example.com").allows("example.com", 80));
    assert!(!host("*.example.com").allows("badexample.com", 80));
    assert!(host("127.0.0.1:8080").allows("127.0.0.1", 8080));
    assert!(!host("127.0.0.1:8080").allows("127.0.0.1", 8081));
    // Without a port, only the standard ones: never the operator's other services.
    assert!(host("[::1]").allows("::1", 443));
    assert!(!host("[::1]").allows("::1", 1));
    assert!(host("api.example.com").allows("api.example.com", 80));
    assert!(!host("api.example.com").allows("api.example.com", 6379));
}

#[test]
fn addresses_and_localhost_names_are_local() {
    let host = |text: &str| text.parse::<OutboundHost>().unwrap();
    for local in [
        "127.0.0.1",
        "169.254.169.254",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "localhost",
        "db.localhost:5432",
        "*.localhost",
    ] {
        assert!(host(local).is_local(), "{local}");
    }
    for public in ["api.example.com", "*.example.com", "localhost.example.com"] {
        assert!(!host(public).is_local(), "{public}");
    }
}

#[test]
fn service_permissions_must_be_dependencies() {
    insta::assert_snapshot!(
        problems(&edited(r#"services = ["acme/greeter"]"#, r#"services = ["acme/other", "Acme/x"]"#)),
        @r#"
    permissions.services[0]: "acme/other" must also be listed under [dependencies]
    permissions.services[1]: "Acme/x" is not a plugin name: the namespace contains 'A'; only lowercase letters, digits and `-` are allowed (names are lowercase)
    "#
    );
}

#[test]
fn limits_must_be_sizes_and_durations_in_range() {
    let text = edited(r#"memory = "64 MiB""#, r#"memory = "lots""#)
        .replace(r#"timeout = "2s""#, r#"timeout = "1h""#);
    insta::assert_snapshot!(problems(&text), @r#"
    permissions.memory: "lots" is not a size (like "64 MiB")
    permissions.timeout: "1h" is outside the allowed range, 1ms to 10m
    "#);
    insta::assert_snapshot!(problems(&edited(r#"memory = "64 MiB""#, r#"memory = "8 GiB""#)), @r#"permissions.memory: "8 GiB" is outside the allowed range, 1 MiB to 4 GiB"#);
}

#[test]
fn routes_need_a_path_and_a_guard() {
    let text = edited(r#"path = "/admin/*""#, r#"path = "admin""#)
        .replace(r#"guard = "member""#, r#"guard = "everyone""#)
        .replace(r#"methods = ["GET"]"#, r#"methods = ["GET", "FETCH"]"#)
        + "\n[[provides.routes]]\npath = \"/\"\nguard = \"public\"\n[[provides.routes]]\npath = \"/a/*/b\"\n";
    insta::assert_snapshot!(problems(&text), @r#"
    provides.routes[0].methods[1]: "FETCH" is not a method; use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
    provides.routes[1].path: "admin" must start with `/`
    provides.routes[2].guard: "everyone" is not a guard; use one of public, viewer, member, admin, owner
    provides.routes[3].path: "/" repeats the route at provides.routes[0] for the same methods
    provides.routes[4].path: "/a/*/b" may use `*` only as its last segment
    provides.routes[4].guard: is required
    "#);
}

#[test]
fn the_config_section_must_be_a_json_schema_for_an_object() {
    insta::assert_snapshot!(
        problems(&edited(r#"type = "object""#, r#"type = "array""#)),
        @r#"config.type: must be "object": the installation's config is an object"#
    );
    insta::assert_snapshot!(
        problems(&edited(r#"required = ["greeting"]"#, "required = \"greeting\"")),
        @r#"config.required: is not a valid JSON Schema: "greeting" is not of type "array""#
    );
}

#[test]
fn licenses_and_urls_are_checked() {
    let text = edited(r#"license = "MIT OR Apache-2.0""#, r#"license = "MIT OR""#)
        .replace("https://example.com/greeter", "ftp://example.com")
        .replace("https://github.com/acme/greeter", "not a url");
    insta::assert_snapshot!(problems(&text), @r#"
    plugin.license: "MIT OR" is not an SPDX license expression (like "MIT OR Apache-2.0"): expected one of `<license>`, `(` here
    plugin.homepage: "ftp://example.com" is not an http or https URL
    plugin.repository: "not a url" is not an http or https URL
    "#);
}

#[test]
fn a_plugin_cannot_depend_on_itself() {
    insta::assert_snapshot!(
        problems(&edited(r#""acme/greeter" = "^1.0""#, "\"acme/greeter\" = \"^1.0\"\n\"acme/greeter-client\" = \"*\"")),
        @r#"dependencies."acme/greeter-client": a plugin cannot depend on itself"#
    );
}

#[test]
fn the_error_message_lists_every_problem() {
    let err = Manifest::parse(&edited("acme/greeter-client", "x").replace("1.2.3-beta.1", "x"))
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r#"
    invalid aerie.toml (2 problems):
      plugin.name: "x" is not a plugin name: expected `namespace/name`
      plugin.version: "x" is not a semantic version (like 1.2.3): unexpected character 'x' while parsing major version number
    "#);
}

#[test]
fn mutated_manifests_are_refused_or_parsed_but_never_panic() {
    let mut random = crate::test_support::XorShift(0x2545_f491_4f6c_dd1d);
    let alphabet: Vec<char> = "[]{}=\"'.,#\n 0aZé\\-_*/:@".chars().collect();
    for _ in 0..3000 {
        let mut text: Vec<char> = VALID.chars().collect();
        for _ in 0..1 + random.below(6) {
            let at = random.below(text.len());
            let replacement = alphabet[random.below(alphabet.len())];
            match random.below(3) {
                0 => text[at] = replacement,
                1 => {
                    text.remove(at);
                }
                _ => text.insert(at, replacement),
            }
        }
        let text: String = text.into_iter().collect();
        if let Err(err) = Manifest::parse(&text) {
            assert!(!err.problems.is_empty());
        }
    }
}

#[test]
fn routes_match_exact_paths_params_and_prefixes_most_specific_first() {
    let route = |path: &str, methods: &[&str], guard: Guard| Route {
        path: path.into(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        guard,
    };
    let provides = Provides {
        services: vec![],
        routes: vec![
            route("/*", &[], Guard::Public),
            route("/items/{id}", &["GET"], Guard::Viewer),
            route("/items/new", &["GET", "POST"], Guard::Member),
            route("/admin/*", &[], Guard::Admin),
        ],
        pages: vec![],
    };
    let guard = |method: &str, path: &str| match provides.route_for(method, path) {
        RouteMatch::Found(route) => Some(route.guard),
        _ => None,
    };
    assert_eq!(guard("GET", "/items/new"), Some(Guard::Member));
    assert_eq!(guard("GET", "/items/7"), Some(Guard::Viewer));
    assert_eq!(guard("HEAD", "/items/7"), Some(Guard::Viewer));
    // POST /items/7: the param route refuses the method; the catch-all takes it.
    assert_eq!(guard("POST", "/items/7"), Some(Guard::Public));
    assert_eq!(guard("GET", "/admin"), Some(Guard::Admin));
    assert_eq!(guard("GET", "/admin/users"), Some(Guard::Admin));
    assert_eq!(guard("GET", "/administrator"), Some(Guard::Public));
    assert_eq!(guard("GET", "/"), Some(Guard::Public));

    let narrow = Provides {
        services: vec![],
        routes: vec![route("/", &["GET"], Guard::Public)],
        pages: vec![],
    };
    assert_eq!(narrow.route_for("POST", "/"), RouteMatch::MethodNotAllowed);
    assert_eq!(narrow.route_for("GET", "/other"), RouteMatch::NotFound);
    assert_eq!(narrow.route_for("GET", "/items/"), RouteMatch::NotFound);
}

/// The valid manifest with `pages` (`[[provides.pages]]` tables) added before its config.
fn with_pages(pages: &str) -> String {
    edited("[config]\n", &format!("{pages}\n[config]\n"))
}

#[test]
fn contributed_pages_are_get_routes_named_by_a_title() {
    let manifest = Manifest::parse(&with_pages(
        "[[provides.pages]]\ntitle = \"Overview\"\npath = \"/\"\n\
         [[provides.pages]]\ntitle = \"Settings\"\npath = \"/admin/settings\"\n",
    ))
    .unwrap();
    assert_eq!(
        manifest.provides.pages,
        vec![
            Page {
                title: "Overview".into(),
                path: "/".into()
            },
            Page {
                title: "Settings".into(),
                path: "/admin/settings".into()
            },
        ]
    );
    // Stored and read back, the pages stay.
    let stored = serde_json::to_string(&manifest).unwrap();
    assert_eq!(Manifest::from_stored(&stored).unwrap(), manifest);
}

#[test]
fn a_page_must_be_a_titled_literal_path_some_get_route_answers() {
    let found = problems(&with_pages(
        "[[provides.pages]]\ntitle = \"\"\npath = \"/nowhere\"\n\
         [[provides.pages]]\ntitle = \"Item\"\npath = \"/items/{id}\"\n\
         [[provides.pages]]\npath = \"/\"\n\
         [[provides.pages]]\ntitle = \"Bad\"\npath = \"relative\"\n",
    ));
    insta::assert_snapshot!(found, @r#"
    provides.pages[0].title: a title has 1 to 60 characters and no control characters
    provides.pages[0].path: "/nowhere" is not answered by any GET route in provides.routes
    provides.pages[1].path: "/items/{id}" is a pattern; a page is one literal path
    provides.pages[2].title: is required
    provides.pages[3].path: "relative" must start with `/`
    "#);
}

#[test]
fn a_manifest_stored_before_pages_existed_reads_with_none() {
    let manifest = Manifest::parse(VALID).unwrap();
    let mut stored = serde_json::to_value(&manifest).unwrap();
    stored["provides"].as_object_mut().unwrap().remove("pages");
    let read = Manifest::from_stored(&stored.to_string()).unwrap();
    assert!(read.provides.pages.is_empty());
    assert_eq!(read, manifest);
}
