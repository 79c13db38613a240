use super::*;

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn name(text: &str) -> PluginName {
    text.parse().unwrap()
}

fn req(text: &str) -> VersionReq {
    VersionReq::parse(text).unwrap()
}

/// `(plugin, version, [(dependency, requirement)])`.
type Entry<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// A catalog of `entries`, each for API `^0.1` and not yanked.
fn catalog(entries: &[Entry<'_>]) -> Catalog {
    let mut catalog = Catalog::default();
    for (plugin, version, dependencies) in entries {
        catalog.add(
            name(plugin),
            Candidate {
                version: Version::parse(version).unwrap(),
                digest: digest_of(plugin, version),
                yanked: false,
                certified: false,
                api: req("^0.1"),
                dependencies: dependencies
                    .iter()
                    .map(|(dependency, requirement)| (name(dependency), req(requirement)))
                    .collect(),
            },
        );
    }
    catalog
}

fn digest_of(plugin: &str, version: &str) -> String {
    aerie_core::digest::Digest::of(format!("{plugin}@{version}").as_bytes()).to_string()
}

fn requested(entries: &[(&str, &str)]) -> BTreeMap<PluginName, VersionReq> {
    entries
        .iter()
        .map(|(plugin, requirement)| (name(plugin), req(requirement)))
        .collect()
}

fn host_api() -> Version {
    Version::new(0, 1, 0)
}

fn resolve_with(
    catalog: &Catalog,
    requested: &BTreeMap<PluginName, VersionReq>,
    locked: Option<&Lockfile>,
) -> Result<Lockfile, ResolveError> {
    resolve(
        catalog,
        &Request {
            requested,
            locked,
            host_api: &host_api(),
            require_certified: false,
        },
    )
}

/// The resolved versions, as `plugin@version` in name order.
fn versions(lockfile: &Lockfile) -> Vec<String> {
    lockfile
        .plugins
        .iter()
        .map(|(plugin, locked)| format!("{plugin}@{}", locked.version))
        .collect()
}

fn explanation(err: ResolveError) -> String {
    match err {
        ResolveError::NoSolution { explanation } => explanation,
        other => panic!("expected no solution, got {other:?}"),
    }
}

fn greeters() -> Catalog {
    catalog(&[
        ("examples/greeter", "1.0.0", &[]),
        ("examples/greeter", "1.2.0", &[]),
        ("examples/greeter", "2.0.0", &[]),
        (
            "examples/greeter-client",
            "1.0.0",
            &[("examples/greeter", "^1")],
        ),
        (
            "examples/greeter-client",
            "1.1.0",
            &[("examples/greeter", "^1.2")],
        ),
    ])
}

#[test]
fn the_newest_versions_that_satisfy_every_requirement_win() {
    let lockfile = resolve_with(
        &greeters(),
        &requested(&[("examples/greeter-client", "*")]),
        None,
    )
    .unwrap();
    assert_eq!(
        versions(&lockfile),
        ["examples/greeter@1.2.0", "examples/greeter-client@1.1.0"]
    );
    let client = &lockfile.plugins[&name("examples/greeter-client")];
    assert_eq!(
        client.dependencies,
        [name("examples/greeter")].into_iter().collect()
    );
    assert_eq!(client.digest, digest_of("examples/greeter-client", "1.1.0"));
}

#[test]
fn a_locked_version_is_kept_while_it_still_fits() {
    let catalog = greeters();
    let mut locked = resolve_with(
        &catalog,
        &requested(&[("examples/greeter-client", "=1.0.0")]),
        None,
    )
    .unwrap();
    // An older greeter, as if it had been the newest at the time.
    locked
        .plugins
        .get_mut(&name("examples/greeter"))
        .unwrap()
        .version = Version::new(1, 0, 0);
    let relaxed = requested(&[("examples/greeter-client", "^1.0")]);
    let kept = resolve_with(&catalog, &relaxed, Some(&locked)).unwrap();
    assert_eq!(
        versions(&kept),
        ["examples/greeter@1.0.0", "examples/greeter-client@1.0.0"]
    );
    // Without the lockfile the same request takes the newest.
    let fresh = resolve_with(&catalog, &relaxed, None).unwrap();
    assert_eq!(
        versions(&fresh),
        ["examples/greeter@1.2.0", "examples/greeter-client@1.1.0"]
    );
    // A requirement the locked version no longer fits moves it.
    let moved = resolve_with(
        &catalog,
        &requested(&[
            ("examples/greeter-client", "^1.0"),
            ("examples/greeter", ">=1.1"),
        ]),
        Some(&locked),
    )
    .unwrap();
    assert_eq!(
        versions(&moved),
        ["examples/greeter@1.2.0", "examples/greeter-client@1.0.0"]
    );
}

#[test]
fn yanked_versions_are_skipped_for_new_resolutions_but_honoured_when_locked() {
    let mut catalog = greeters();
    let locked = resolve_with(&catalog, &requested(&[("examples/greeter", "^1")]), None).unwrap();
    assert_eq!(versions(&locked), ["examples/greeter@1.2.0"]);
    let mut yanked = catalog.plugins[&name("examples/greeter")][&Version::new(1, 2, 0)].clone();
    yanked.yanked = true;
    catalog.add(name("examples/greeter"), yanked);

    let fresh = resolve_with(&catalog, &requested(&[("examples/greeter", "^1")]), None).unwrap();
    assert_eq!(versions(&fresh), ["examples/greeter@1.0.0"]);
    let honoured = resolve_with(
        &catalog,
        &requested(&[("examples/greeter", "^1")]),
        Some(&locked),
    )
    .unwrap();
    assert_eq!(versions(&honoured), ["examples/greeter@1.2.0"]);

    let err = resolve_with(
        &catalog,
        &requested(&[("examples/greeter", "=1.2.0")]),
        None,
    )
    .unwrap_err();
    insta::assert_snapshot!(explanation(err), @"Because examples/greeter 1.2.0 is yanked and the space requires examples/greeter 1.2.0, the requested plugins cannot be installed together.");
}

#[test]
fn a_policy_requiring_certification_chooses_only_certified_versions_even_when_locked() {
    let mut catalog = greeters();
    let locked = resolve_with(&catalog, &requested(&[("examples/greeter", "^1")]), None).unwrap();
    assert_eq!(versions(&locked), ["examples/greeter@1.2.0"]);
    let mut certified = catalog.plugins[&name("examples/greeter")][&Version::new(1, 0, 0)].clone();
    certified.certified = true;
    catalog.add(name("examples/greeter"), certified);
    let certified_only = |locked: Option<&Lockfile>, requirement: &str| {
        resolve(
            &catalog,
            &Request {
                requested: &requested(&[("examples/greeter", requirement)]),
                locked,
                host_api: &host_api(),
                require_certified: true,
            },
        )
    };
    // The newest version is passed over, even though the lockfile holds it.
    let lockfile = certified_only(Some(&locked), "^1").unwrap();
    assert_eq!(versions(&lockfile), ["examples/greeter@1.0.0"]);
    let err = certified_only(None, "=1.2.0").unwrap_err();
    insta::assert_snapshot!(explanation(err), @"Because examples/greeter 1.2.0 is not certified (the space runs only certified versions) and the space requires examples/greeter 1.2.0, the requested plugins cannot be installed together.");
}

#[test]
fn a_version_for_another_plugin_api_is_never_chosen_and_the_reason_is_given() {
    let mut catalog = greeters();
    let mut future = catalog.plugins[&name("examples/greeter")][&Version::new(2, 0, 0)].clone();
    future.api = req("^0.2");
    catalog.add(name("examples/greeter"), future);
    let lockfile = resolve_with(&catalog, &requested(&[("examples/greeter", "*")]), None).unwrap();
    assert_eq!(versions(&lockfile), ["examples/greeter@1.2.0"]);
    let err = resolve_with(&catalog, &requested(&[("examples/greeter", "^2")]), None).unwrap_err();
    insta::assert_snapshot!(explanation(err), @"
    Because no usable version of examples/greeter matches >2.0.0, <3.0.0 and examples/greeter 2.0.0 requires aerie:plugin ^0.2, but this host provides 0.1.0, examples/greeter >=2.0.0, <3.0.0 cannot be used.
    And because the space requires examples/greeter >=2.0.0, <3.0.0, the requested plugins cannot be installed together.
    ");
}

#[test]
fn a_conflict_is_explained_in_plain_sentences() {
    let catalog = catalog(&[
        ("examples/greeter", "1.0.0", &[]),
        ("examples/greeter", "2.0.0", &[]),
        ("acme/old-client", "1.0.0", &[("examples/greeter", "^1")]),
        ("acme/new-client", "1.0.0", &[("examples/greeter", "^2")]),
    ]);
    let err = resolve_with(
        &catalog,
        &requested(&[("acme/old-client", "*"), ("acme/new-client", "*")]),
        None,
    )
    .unwrap_err();
    insta::assert_snapshot!(explanation(err), @r#"
    Because acme/new-client depends on examples/greeter >=2.0.0, <3.0.0 and acme/old-client 1.0.0 depends on examples/greeter >=1.0.0, <2.0.0, acme/new-client and acme/old-client 1.0.0 cannot be installed together.
    And because the space requires acme/new-client and the space requires acme/old-client, the requested plugins cannot be installed together.
    "#);
}

#[test]
fn a_plugin_that_is_not_published_is_named() {
    let mut catalog = greeters();
    catalog.add(
        name("acme/needs-ghost"),
        Candidate {
            version: Version::new(1, 0, 0),
            digest: DIGEST.into(),
            yanked: false,
            certified: false,
            api: req("^0.1"),
            dependencies: [(name("acme/ghost"), req("^1"))].into_iter().collect(),
        },
    );
    assert_eq!(
        catalog.missing_dependencies(),
        [name("acme/ghost")].into_iter().collect()
    );
    catalog.add_plugin(name("acme/ghost"));
    assert!(catalog.missing_dependencies().is_empty());
    let err = resolve_with(&catalog, &requested(&[("acme/needs-ghost", "*")]), None).unwrap_err();
    insta::assert_snapshot!(explanation(err), @r#"
    Because acme/needs-ghost has no usable version other than 1.0.0 and acme/needs-ghost 1.0.0 depends on acme/ghost >=1.0.0, <2.0.0, but no version of acme/ghost is published, acme/needs-ghost cannot be used.
    And because the space requires acme/needs-ghost, the requested plugins cannot be installed together.
    "#);
}

#[test]
fn an_ungathered_plugin_is_a_caller_error_not_a_conflict() {
    let err = resolve_with(&greeters(), &requested(&[("acme/elsewhere", "*")]), None).unwrap_err();
    assert_eq!(err, ResolveError::NotGathered(name("acme/elsewhere")));
}

#[test]
fn pre_releases_are_chosen_only_when_asked_for() {
    let catalog = catalog(&[
        ("examples/greeter", "1.0.0", &[]),
        ("examples/greeter", "2.0.0-beta.1", &[]),
        ("acme/client", "1.0.0", &[("examples/greeter", ">=1")]),
    ]);
    let plain = resolve_with(&catalog, &requested(&[("acme/client", "*")]), None).unwrap();
    assert_eq!(
        versions(&plain),
        ["acme/client@1.0.0", "examples/greeter@1.0.0"]
    );
    let asked = resolve_with(
        &catalog,
        &requested(&[("acme/client", "*"), ("examples/greeter", ">=2.0.0-beta.1")]),
        None,
    )
    .unwrap();
    assert_eq!(
        versions(&asked),
        ["acme/client@1.0.0", "examples/greeter@2.0.0-beta.1"]
    );
}

#[test]
fn a_lockfile_round_trips_through_toml() {
    let lockfile = resolve_with(
        &greeters(),
        &requested(&[("examples/greeter-client", "*")]),
        None,
    )
    .unwrap();
    let text = lockfile.to_toml();
    assert_eq!(Lockfile::parse(&text).unwrap(), lockfile);
    insta::assert_snapshot!(text, @r#"
    # The plugins of an Aerie space at their resolved versions. Generated; do not edit.
    version = 1

    [[plugin]]
    name = "examples/greeter"
    version = "1.2.0"
    digest = "sha256:1b66ad84fa6cf3adc66c8ece978998a80c0e74d00f4b06d89bba14032f9d06c7"
    dependencies = []

    [[plugin]]
    name = "examples/greeter-client"
    version = "1.1.0"
    digest = "sha256:9e86903b8e67da1d4c36db2b4caf496e3d7c2e27e5790bdf469d326032d63ac8"
    dependencies = ["examples/greeter"]
    "#);
}

#[test]
fn hostile_lockfiles_are_refused_with_the_reason() {
    let plugin = |name: &str, digest: &str, dependencies: &str| {
        format!(
            "[[plugin]]\nname = \"{name}\"\nversion = \"1.0.0\"\ndigest = \"{digest}\"\ndependencies = [{dependencies}]\n"
        )
    };
    let good = plugin("acme/a", DIGEST, "");
    let cases = [
        ("x".repeat(2 * 1024 * 1024), "TooLarge"),
        (
            "version = 1\n[[plugin]]\nname = 3\n".to_string(),
            "Malformed",
        ),
        (format!("version = 2\n{good}"), "UnsupportedFormat"),
        (format!("version = 1\n{good}{good}"), "Duplicate"),
        (
            format!("version = 1\n{}", plugin("acme/a", "md5:abc", "")),
            "BadDigest",
        ),
        (
            format!("version = 1\n{}", plugin("acme/a", DIGEST, "\"acme/b\"")),
            "MissingDependency",
        ),
        (format!("version = 1\nextra = true\n{good}"), "Malformed"),
        (
            format!("version = 1\n{}", plugin("NOT A NAME", DIGEST, "")),
            "Malformed",
        ),
    ];
    for (text, expected) in cases {
        let err = Lockfile::parse(&text).unwrap_err();
        assert!(
            format!("{err:?}").starts_with(expected),
            "{expected}: got {err:?} ({err})"
        );
    }
}
