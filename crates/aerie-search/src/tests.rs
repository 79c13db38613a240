use super::*;

fn plugin(name: &str, description: &str, tags: &[&str], categories: &[&str]) -> PluginDocument {
    PluginDocument {
        name: name.into(),
        version: "1.0.0".into(),
        description: description.into(),
        tags: tags.iter().map(|tag| tag.to_string()).collect(),
        categories: categories.iter().map(|c| c.to_string()).collect(),
        license: "MIT".into(),
        dependencies: Vec::new(),
        readme: String::new(),
        certified: false,
        installable: true,
        downloads: 0,
        rating: 0.0,
        ratings: 0,
        created_at: 0,
        updated_at: 0,
    }
}

/// A small catalogue where names and words overlap on purpose.
fn catalogue() -> Vec<PluginDocument> {
    let mut plugins = vec![
        plugin(
            "acme/hello",
            "Greets whoever calls it",
            &["example", "http"],
            &["developer-tools"],
        ),
        plugin(
            "acme/hello-world",
            "Hello world, the long way round",
            &["example"],
            &["developer-tools"],
        ),
        plugin(
            "other/say-hello",
            "Says hello in many languages",
            &["i18n"],
            &["automation"],
        ),
        plugin(
            "acme/yellow",
            "Paints things yellow",
            &["color"],
            &["other"],
        ),
        plugin(
            "examples/greeter",
            "A greeting service other plugins call",
            &["service"],
            &["developer-tools"],
        ),
        plugin(
            "data/postgres-sync",
            "Synchronises tables into PostgreSQL",
            &["database", "sync"],
            &["data-integration"],
        ),
        plugin(
            "sec/vault",
            "Keeps secrets in a vault",
            &["secrets"],
            &["security"],
        ),
    ];
    for (index, plugin) in plugins.iter_mut().enumerate() {
        plugin.downloads = [50, 900, 10, 300, 700, 5, 120][index];
        plugin.rating = [4.5, 3.0, 5.0, 2.0, 4.0, 1.0, 3.5][index];
        plugin.created_at = index as i64 * 1000;
        plugin.updated_at = (7 - index as i64) * 1000;
        plugin.license = if index % 2 == 0 {
            "MIT".into()
        } else {
            "Apache-2.0".into()
        };
        plugin.certified = index % 3 == 0;
    }
    plugins[5].readme = "Streams every change with logical replication".into();
    plugins[6].installable = false;
    plugins[2].dependencies = vec!["examples/greeter".into()];
    plugins[0].dependencies = vec!["examples/greeter".into(), "sec/vault".into()];
    plugins
}

/// The catalogue as a rebuild reads it.
fn source() -> impl Iterator<Item = Result<PluginDocument, String>> {
    catalogue().into_iter().map(Ok)
}

fn index() -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    index.rebuild(source(), 7).unwrap();
    index
}

fn names(results: &SearchResults) -> Vec<&str> {
    results
        .hits
        .iter()
        .map(|hit| hit.plugin.name.as_str())
        .collect()
}

fn search(index: &SearchIndex, text: &str) -> SearchResults {
    index
        .search(&SearchQuery {
            text: text.into(),
            limit: 20,
            ..SearchQuery::default()
        })
        .unwrap()
}

#[test]
fn the_exact_name_ranks_first() {
    let index = index();
    assert_eq!(names(&search(&index, "hello"))[0], "acme/hello");
    assert_eq!(names(&search(&index, "acme/hello"))[0], "acme/hello");
    assert_eq!(names(&search(&index, "say-hello"))[0], "other/say-hello");
    assert_eq!(names(&search(&index, "Greeter"))[0], "examples/greeter");
}

#[test]
fn a_typo_still_finds_it() {
    let index = index();
    for typo in ["helo", "hellp", "greter", "gretter", "postgers", "vualt"] {
        let results = search(&index, typo);
        let found = names(&results);
        assert!(!found.is_empty(), "{typo} found nothing");
        let expected = match typo {
            "helo" | "hellp" => "acme/hello",
            "greter" | "gretter" => "examples/greeter",
            "postgers" => "data/postgres-sync",
            _ => "sec/vault",
        };
        assert!(found.contains(&expected), "{typo}: {found:?}");
    }
    assert_eq!(names(&search(&index, "helo"))[0], "acme/hello");
    assert_eq!(names(&search(&index, "greter"))[0], "examples/greeter");
    // Short words must match exactly: a two-letter typo is noise.
    assert!(search(&index, "zz").hits.is_empty());
}

#[test]
fn a_prefix_finds_it() {
    let index = index();
    assert_eq!(names(&search(&index, "gree"))[0], "examples/greeter");
    let postg = search(&index, "postg");
    assert!(names(&postg).contains(&"data/postgres-sync"));
    // Earlier words are whole; the last one is being typed.
    assert_eq!(
        names(&search(&index, "tables postg")),
        ["data/postgres-sync"]
    );
}

#[test]
fn every_word_must_match_somewhere_including_the_readme() {
    let index = index();
    assert_eq!(
        names(&search(&index, "hello languages")),
        ["other/say-hello"]
    );
    assert_eq!(
        names(&search(&index, "logical replication")),
        ["data/postgres-sync"]
    );
    assert!(search(&index, "hello vault").hits.is_empty());
}

#[test]
fn facet_counts_match_the_documents() {
    let index = index();
    let all = index
        .search(&SearchQuery {
            limit: 100,
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(all.total, catalogue().len());
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for plugin in catalogue() {
        for category in plugin.categories {
            *expected.entry(category).or_default() += 1;
        }
    }
    let got: BTreeMap<String, u64> = all.categories.iter().cloned().collect();
    assert_eq!(got, expected);
    assert_eq!(all.categories[0], ("developer-tools".to_string(), 3));
    let licenses: BTreeMap<String, u64> = all.licenses.iter().cloned().collect();
    assert_eq!(licenses["MIT"], 4);
    assert_eq!(licenses["Apache-2.0"], 3);
    let certification: BTreeMap<String, u64> = all.certification.iter().cloned().collect();
    assert_eq!(certification["certified"], 3);
    assert_eq!(certification["uncertified"], 4);
    // Counts follow the query.
    let hello = search(&index, "hello");
    let categories: BTreeMap<String, u64> = hello.categories.iter().cloned().collect();
    assert_eq!(categories["developer-tools"], 2);
    assert_eq!(categories["automation"], 1);
}

#[test]
fn filters_narrow_the_matches() {
    let index = index();
    let query = |category: Option<&str>, tag: Option<&str>, certified: Option<bool>| {
        let results = index
            .search(&SearchQuery {
                text: "hello".into(),
                category: category.map(String::from),
                tag: tag.map(String::from),
                certified,
                limit: 20,
                ..SearchQuery::default()
            })
            .unwrap();
        let mut found: Vec<String> = names(&results).into_iter().map(String::from).collect();
        found.sort();
        found
    };
    assert_eq!(query(Some("automation"), None, None), ["other/say-hello"]);
    assert_eq!(query(None, Some("http"), None), ["acme/hello"]);
    assert_eq!(query(None, None, Some(true)), ["acme/hello"]);
    assert_eq!(query(Some("security"), None, None), Vec::<String>::new());
}

#[test]
fn sorts_order_by_their_field_and_pages_cover_everything_once() {
    let index = index();
    let sorted = |sort: Sort| {
        let results = index
            .search(&SearchQuery {
                sort,
                limit: 3,
                ..SearchQuery::default()
            })
            .unwrap();
        names(&results)
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sorted(Sort::Downloads),
        ["acme/hello-world", "examples/greeter", "acme/yellow"]
    );
    assert_eq!(
        sorted(Sort::Rating),
        ["other/say-hello", "acme/hello", "examples/greeter"]
    );
    assert_eq!(
        sorted(Sort::Newest),
        ["sec/vault", "data/postgres-sync", "examples/greeter"]
    );
    assert_eq!(
        sorted(Sort::Updated),
        ["acme/hello", "acme/hello-world", "other/say-hello"]
    );

    let mut seen = Vec::new();
    for offset in (0..10).step_by(2) {
        let page = index
            .search(&SearchQuery {
                sort: Sort::Downloads,
                offset,
                limit: 2,
                ..SearchQuery::default()
            })
            .unwrap();
        assert_eq!(page.total, 7);
        seen.extend(names(&page).into_iter().map(String::from));
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (7, 7));
}

#[test]
fn a_yanked_only_plugin_is_found_but_not_installable() {
    let index = index();
    let results = search(&index, "vault");
    assert_eq!(names(&results), ["sec/vault"]);
    assert!(!results.hits[0].plugin.installable);
    assert!(
        search(&index, "hello")
            .hits
            .iter()
            .all(|hit| hit.plugin.installable)
    );
}

#[test]
fn a_change_is_searchable_right_after_it_commits() {
    let index = index();
    assert!(search(&index, "kubernetes").hits.is_empty());
    let mut new = plugin(
        "ops/kube",
        "Deploys to Kubernetes clusters",
        &["k8s"],
        &["automation"],
    );
    new.downloads = 1;
    index.upsert(&[new.clone()], &[], 8).unwrap();
    assert_eq!(names(&search(&index, "kubernetes")), ["ops/kube"]);
    assert_eq!(index.position(), Some(8));
    // Replaced, not duplicated.
    new.description = "Deploys to Nomad".into();
    index.upsert(&[new], &[], 9).unwrap();
    assert!(search(&index, "kubernetes").hits.is_empty());
    assert_eq!(names(&search(&index, "nomad")), ["ops/kube"]);
    assert_eq!(index.len(), 8);
    index.upsert(&[], &["ops/kube".into()], 10).unwrap();
    assert!(search(&index, "nomad").hits.is_empty());
    assert_eq!(index.len(), 7);
}

#[test]
fn an_index_rebuilt_from_scratch_answers_the_same() {
    // One built by changes, one rebuilt whole from the same documents.
    let incremental = SearchIndex::in_memory().unwrap();
    for (position, plugin) in catalogue().into_iter().enumerate() {
        incremental
            .upsert(&[plugin], &[], position as u64 + 1)
            .unwrap();
    }
    let rebuilt = index();
    for text in [
        "hello",
        "helo",
        "gree",
        "postgres sync",
        "",
        "acme/hello",
        "secrets",
    ] {
        for sort in [Sort::Relevance, Sort::Downloads, Sort::Rating, Sort::Newest] {
            let query = SearchQuery {
                text: text.into(),
                sort,
                limit: 20,
                ..SearchQuery::default()
            };
            let (a, b) = (
                incremental.search(&query).unwrap(),
                rebuilt.search(&query).unwrap(),
            );
            assert_eq!(names(&a), names(&b), "{text:?} {sort:?}");
            assert_eq!(
                (a.total, &a.categories, &a.tags),
                (b.total, &b.categories, &b.tags)
            );
        }
    }
}

#[test]
fn an_index_on_disk_survives_a_reopen_and_knows_its_position() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(index.position(), None, "a new index asks to be rebuilt");
        index.rebuild(source(), 42).unwrap();
    }
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(index.position(), Some(42));
    assert_eq!(names(&search(&index, "greeter"))[0], "examples/greeter");
}

#[test]
fn a_failed_rebuild_leaves_the_index_as_it_was() {
    let index = index();
    let failing = catalogue()
        .into_iter()
        .take(2)
        .map(Ok)
        .chain([Err("the database went away".to_string())]);
    let err = index.rebuild(failing, 99).unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading the catalogue failed: the database went away"
    );
    assert_eq!(index.len(), 7);
    assert_eq!(index.position(), Some(7));
}

#[test]
fn dependents_are_found_by_the_exact_name() {
    let index = index();
    assert_eq!(
        index.dependents("examples/greeter", 10).unwrap(),
        ["acme/hello", "other/say-hello"]
    );
    assert_eq!(index.dependents("sec/vault", 10).unwrap(), ["acme/hello"]);
    assert!(index.dependents("examples/greet", 10).unwrap().is_empty());
}

#[test]
fn a_query_matching_more_than_the_exact_limit_says_its_counts_are_partial() {
    let index = SearchIndex::in_memory().unwrap();
    let many = (0..EXACT_MATCHES as usize + 50).map(|n| {
        let mut document = plugin(
            &format!("bulk/plugin-{n}"),
            "common words",
            &["common"],
            &["other"],
        );
        if n % 1000 == 0 {
            document.categories = vec!["security".into()];
        }
        Ok::<_, String>(document)
    });
    index.rebuild(many, 1).unwrap();
    let broad = search(&index, "common");
    assert_eq!(
        (broad.total, broad.exhaustive),
        (EXACT_MATCHES as usize, false)
    );
    assert_eq!(broad.hits.len(), 20);
    let counted: u64 = broad.categories.iter().map(|(_, count)| count).sum();
    assert_eq!(counted, u64::from(EXACT_MATCHES));
    let narrow = index
        .search(&SearchQuery {
            text: "common".into(),
            category: Some("security".into()),
            limit: 5,
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!((narrow.total, narrow.exhaustive), (11, true));
    assert_eq!(narrow.categories, [("security".to_string(), 11)]);
    assert!(!search(&index, "").exhaustive);
    assert!(
        search(&index, "plugin-7").exhaustive,
        "a narrow query is counted whole"
    );
}

#[test]
fn words_as_typed_outrank_their_completions() {
    let index = SearchIndex::in_memory().unwrap();
    let plugins = [
        plugin(
            "y/datadog-export",
            "Exports datadog metrics",
            &[],
            &["other"],
        ),
        plugin("x/data-sync", "Moves data between stores", &[], &["other"]),
    ];
    index
        .rebuild(plugins.into_iter().map(Ok::<_, String>), 1)
        .unwrap();
    assert_eq!(
        names(&search(&index, "data")),
        ["x/data-sync", "y/datadog-export"]
    );
    // Being typed, or a typo of "data": the completion first.
    assert_eq!(
        names(&search(&index, "datad")),
        ["y/datadog-export", "x/data-sync"]
    );
    assert_eq!(names(&search(&index, "dtadog")), ["y/datadog-export"]);
}

/// A catalogue of `count` plugins over a few shared words, committed in several segments.
fn segmented_catalogue(count: usize) -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    let words = ["alpha", "beta", "gamma", "alphabet", "alps", "delta"];
    let plugins: Vec<PluginDocument> = (0..count)
        .map(|n| {
            // Different lengths and mixes give different scores.
            let description: Vec<&str> = (0..=n % 7).map(|k| words[(n + k * k) % 6]).collect();
            let mut document = plugin(
                &format!("bulk/p{n}-{}", words[n % 6]),
                &description.join(" "),
                &[words[(n / 6) % 6]],
                &[["other", "security"][n % 2]],
            );
            document.downloads = (n * 37 % 101) as u64;
            if n % 50 == 0 {
                document.tags.push("rare".into());
            }
            document
        })
        .collect();
    for (position, chunk) in plugins.chunks(count / 4).enumerate() {
        index.upsert(chunk, &[], position as u64 + 1).unwrap();
    }
    index
}

#[test]
fn short_pages_agree_with_one_long_page_across_segments_and_readings() {
    let index = segmented_catalogue(400);
    for text in ["alpha", "alpha beta", "gamma alp", "alpah", "beta deltta"] {
        // A common filter is checked on the matches, a rare one intersected.
        for (category, tag) in [(None, None), (Some("security"), None), (None, Some("rare"))] {
            for sort in [Sort::Relevance, Sort::Downloads] {
                let query = |offset, limit| SearchQuery {
                    text: text.into(),
                    category: category.map(String::from),
                    tag: tag.map(String::from),
                    sort,
                    offset,
                    limit,
                    ..SearchQuery::default()
                };
                let long = index.search(&query(0, 70)).unwrap();
                let mut short = Vec::new();
                for offset in (0..70).step_by(7) {
                    short.extend(index.search(&query(offset, 7)).unwrap().hits);
                }
                let key = |hits: &[SearchHit]| {
                    let mut names: Vec<String> =
                        hits.iter().map(|hit| hit.plugin.name.clone()).collect();
                    names.sort();
                    (hits.iter().map(|hit| hit.score).collect::<Vec<_>>(), names)
                };
                let case = format!("{text:?} in {category:?} with {tag:?} by {sort:?}");
                assert!(!long.hits.is_empty(), "{case} found nothing");
                assert_eq!(key(&short), key(&long.hits), "{case}");
                assert!(
                    long.hits.iter().all(|hit| {
                        category.is_none_or(|category| hit.plugin.categories == [category])
                            && tag.is_none_or(|tag| hit.plugin.tags.iter().any(|t| t == tag))
                    }),
                    "{case}: a plugin the filter excludes"
                );
            }
        }
    }
}

#[test]
fn the_best_scores_are_kept_once_per_plugin() {
    let address = |doc| DocAddress::new(0, doc);
    let mut best = Best::new(2);
    assert_eq!(
        best.threshold(),
        f32::MIN,
        "anything passes until two are kept"
    );
    best.offer(address(1), 1.0);
    best.offer(address(2), 2.0);
    assert_eq!(best.threshold(), 1.0);
    // A better score for a plugin kept replaces its own, not another's.
    best.offer(address(1), 3.0);
    assert_eq!(best.threshold(), 2.0);
    best.offer(address(1), 0.5);
    best.offer(address(3), 2.5);
    let mut kept: Vec<(DocAddress, f32)> = best.scores.into_iter().collect();
    kept.sort_by_key(|(address, _)| *address);
    assert_eq!(kept, [(address(1), 3.0), (address(3), 2.5)]);
}

#[test]
fn a_facet_returns_its_most_frequent_values() {
    let index = SearchIndex::in_memory().unwrap();
    let plugins = (0..300).map(|n| {
        let tag = format!("t{:03}", n % 150);
        Ok::<_, String>(plugin(
            &format!("bulk/p{n}"),
            "plugin",
            &["common", &tag],
            &["other"],
        ))
    });
    index.rebuild(plugins, 1).unwrap();
    let results = search(&index, "plugin");
    assert_eq!(results.tags.len(), MAX_FACET_VALUES);
    assert_eq!(results.tags[0], ("common".to_string(), 300));
    // Equal counts in value order.
    assert_eq!(results.tags[1], ("t000".to_string(), 2));
    assert_eq!(results.tags[99], ("t098".to_string(), 2));
}

#[test]
fn hostile_queries_are_answered() {
    let index = index();
    for text in [
        "!!!",
        "\u{0}",
        "a\"b:c(d)",
        &"x".repeat(10_000),
        "ünïcödé ☃",
        "* OR 1=1 --",
    ] {
        let results = index
            .search(&SearchQuery {
                text: text.to_string(),
                limit: 5,
                ..SearchQuery::default()
            })
            .unwrap();
        assert!(results.hits.len() <= 5, "{text:?}");
    }
    let past_the_end = index
        .search(&SearchQuery {
            text: "!!!".into(),
            offset: 100,
            limit: 10,
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(past_the_end.total, 7);
    assert!(past_the_end.hits.is_empty());
    let too_deep = index.search(&SearchQuery {
        offset: usize::MAX / 2,
        ..SearchQuery::default()
    });
    assert!(
        matches!(too_deep, Err(SearchError::OffsetTooLarge)),
        "{too_deep:?}"
    );
}

use std::collections::BTreeMap;
