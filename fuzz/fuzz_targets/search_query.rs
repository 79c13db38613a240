//! A search as anyone may type it, over a small catalogue: typos, prefixes, filters, sorts and
//! pages, never a panic, and never more hits than asked for.
#![no_main]

use std::sync::OnceLock;

use aerie_search::{PluginDocument, SearchIndex, SearchQuery, Sort};

fn index() -> &'static SearchIndex {
    static INDEX: OnceLock<(SearchIndex, tempfile::TempDir)> = OnceLock::new();
    &INDEX
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let index = SearchIndex::open(dir.path()).unwrap();
            let plugins: Vec<PluginDocument> = [
                ("acme/hello", "Greets whoever calls it", "developer-tools"),
                (
                    "acme/greeter",
                    "A greeting service other plugins call",
                    "developer-tools",
                ),
                ("tools/cron", "Runs tasks on a schedule", "automation"),
                (
                    "tools/s3-sync",
                    "Keeps a bucket in step with a folder",
                    "storage",
                ),
            ]
            .iter()
            .enumerate()
            .map(|(index, (name, description, category))| PluginDocument {
                name: name.to_string(),
                version: "1.0.0".into(),
                description: description.to_string(),
                tags: vec!["example".into()],
                categories: vec![category.to_string()],
                license: "Apache-2.0".into(),
                dependencies: Vec::new(),
                readme: format!("# {name}\n\n{description}"),
                certified: index % 2 == 0,
                installable: true,
                downloads: index as u64 * 10,
                rating: 4.0,
                ratings: index as u64,
                created_at: index as i64,
                updated_at: index as i64,
            })
            .collect();
            index.upsert(&plugins, &[], 1).unwrap();
            (index, dir)
        })
        .0
}

libfuzzer_sys::fuzz_target!(|input: (&str, u8, u16, u8)| {
    let (text, options, offset, limit) = input;
    let sort = match options % 5 {
        0 => Sort::Relevance,
        1 => Sort::Downloads,
        2 => Sort::Rating,
        3 => Sort::Updated,
        _ => Sort::Newest,
    };
    let query = SearchQuery {
        text: text.to_string(),
        category: (options & 0x08 != 0).then(|| text.chars().take(20).collect()),
        tag: (options & 0x10 != 0).then(|| "example".into()),
        license: (options & 0x20 != 0).then(|| text.chars().rev().take(20).collect()),
        certified: (options & 0x40 != 0).then_some(options & 0x80 != 0),
        sort,
        offset: usize::from(offset),
        limit: usize::from(limit).clamp(1, 100),
    };
    if let Ok(results) = index().search(&query) {
        assert!(results.hits.len() <= query.limit);
    }
});
