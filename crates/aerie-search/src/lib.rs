//! The plugin catalogue's full-text index, on tantivy.
//!
//! The database is the source of truth: the caller turns each plugin into a [`PluginDocument`]
//! and keeps the index current with [`SearchIndex::upsert`], which also removes plugins (or
//! rebuilds it whole with [`SearchIndex::rebuild`]). Each commit records the position in
//! the database's change log it reflects, so an index can be followed forward after a
//! restart and known to be stale.
//!
//! A query is forgiving: every word must match somewhere (name, tags, categories,
//! description, README — in falling weight), exactly, by a completion (the last word, as typed),
//! or, for a word the index does not hold, with one typo (two for long words); a plugin named
//! as typed outranks everything. Results come with facet counts (category, tag, license,
//! certification), any of the sorts a catalogue needs, and pages.
//!
//! Speed at a million plugins comes from the query's shape. All text goes into one field,
//! `words`, a field's weight being how often its text is repeated there. A query is searched
//! as its *readings*: each way to read its words (as typed, or the few likeliest completions
//! and corrections of a word) is a plain intersection of terms, which tantivy skips through
//! by block maxima for the best page, with the filters checked on the matches it yields. The
//! page is the best of every reading's page; the count runs over their union.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tantivy::collector::TopDocs;

use crate::facets::{FacetCache, FacetCounter, Tally};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, DfaWrapper, EmptyQuery, EnableScoring, FuzzyTermQuery,
    Occur, Query, TermQuery, Weight,
};
use tantivy::schema::{
    FAST, Facet, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TantivyDocument,
    TextFieldIndexing, TextOptions, Value as _,
};
use tantivy::tokenizer::TokenStream as _;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Term};

/// The schema's version: an index written with another is rebuilt.
const SCHEMA_VERSION: u32 = 3;

/// Memory for the writer's indexing buffer.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

/// Longest query text read, in characters; the rest is ignored.
const MAX_QUERY_LEN: usize = 200;

/// Most words of a query used.
const MAX_QUERY_WORDS: usize = 8;

/// Largest page.
pub const MAX_PAGE_SIZE: usize = 100;

/// How often each part of a plugin is repeated in the `words` field: its weight in scoring.
const NAME_REPEATS: usize = 3;
const TAG_REPEATS: usize = 2;
const CATEGORY_REPEATS: usize = 2;

/// Most completions of the word being typed when the index does not hold it.
const MAX_COMPLETIONS: usize = 6;

/// Most completions of a typed word the index holds as it is (it is likely typed out).
const MAX_COMPLETIONS_OF_A_WORD: usize = 2;

/// Most corrections of a word the index does not hold.
const MAX_CORRECTIONS: usize = 6;

/// Most ways to read one word.
const MAX_ALTERNATIVES: usize = 6;

/// Most readings of a query searched: each costs one intersection.
const MAX_READINGS: usize = 8;

/// Most dictionary words read to find a word's completions or corrections.
const MAX_EXPANSION_CANDIDATES: usize = 512;

/// How much a reading counts, by how each of its words was read (the weights multiply).
const AS_TYPED: f32 = 1.0;
const COMPLETED: f32 = 0.4;
const CORRECTED: f32 = 0.25;

/// How many times rarer than a reading's rarest word a filter is intersected with it.
const RARE_FILTER: u64 = 16;

/// Most plugins put first for carrying the name typed.
const MAX_NAMED: usize = 10;

/// Values of each facet returned, the most frequent.
pub const MAX_FACET_VALUES: usize = 100;

/// Matches counted exactly, with their facets, per search.
pub const EXACT_MATCHES: u32 = 10_000;

/// Deepest result reachable by paging: deeper pages cost more and serve no one.
pub const MAX_OFFSET: usize = 10_000;

/// Why the index failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// tantivy failed (the index directory, a corrupt segment, ...).
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The index directory could not be opened.
    #[error("search index directory: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    /// A page beyond [`MAX_OFFSET`].
    #[error("results beyond the first {MAX_OFFSET} are not paged to; narrow the search")]
    OffsetTooLarge,
    /// What a rebuild reads from failed; the index is left as it was.
    #[error("reading the catalogue failed: {0}")]
    Source(String),
}

/// The result of an index operation.
pub type SearchResult<T> = Result<T, SearchError>;

/// One plugin as the catalogue shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PluginDocument {
    /// `namespace/name`.
    pub name: String,
    /// The newest version that is not yanked, or the newest if all are.
    pub version: String,
    /// One line about it.
    pub description: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its categories.
    pub categories: Vec<String>,
    /// Its license (SPDX).
    pub license: String,
    /// The plugins it depends on, `namespace/name`.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Its README's text.
    pub readme: String,
    /// Whether any installable version is certified (a space that requires certification
    /// can install it).
    pub certified: bool,
    /// Whether any version can be installed (not every one yanked).
    pub installable: bool,
    /// Downloads, all versions.
    pub downloads: u64,
    /// Average rating, 0 when unrated.
    pub rating: f64,
    /// Number of ratings.
    pub ratings: u64,
    /// First publish, Unix milliseconds.
    pub created_at: i64,
    /// Last publish or change, Unix milliseconds.
    pub updated_at: i64,
}

/// How results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Best match first (most downloaded first without query text).
    #[default]
    Relevance,
    /// Most downloaded first.
    Downloads,
    /// Best rated first.
    Rating,
    /// Most recently updated first.
    Updated,
    /// Most recently created first.
    Newest,
}

/// A search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// Words to look for; empty for every plugin.
    pub text: String,
    /// Only this category.
    pub category: Option<String>,
    /// Only this tag.
    pub tag: Option<String>,
    /// Only this license.
    pub license: Option<String>,
    /// Only certified (`true`) or uncertified (`false`) plugins.
    pub certified: Option<bool>,
    /// The order.
    pub sort: Sort,
    /// Results skipped.
    pub offset: usize,
    /// Results returned (at most [`MAX_PAGE_SIZE`]).
    pub limit: usize,
}

/// One result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchHit {
    /// The plugin.
    pub plugin: PluginDocument,
    /// Its relevance score (0 when sorted by something else).
    pub score: f32,
}

/// A facet's values with their counts, most frequent first (equal counts in value order), at
/// most [`MAX_FACET_VALUES`].
pub type FacetCounts = Vec<(String, u64)>;

/// What a search found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchResults {
    /// How many plugins match, in all pages: exact up to [`EXACT_MATCHES`], else that many
    /// (see `exhaustive`).
    pub total: usize,
    /// Whether `total` and the facet counts cover every match. A query matching more than
    /// [`EXACT_MATCHES`] plugins counts (and counts facets over) the first that many only:
    /// "10,000+ results", as large search engines answer.
    pub exhaustive: bool,
    /// This page.
    pub hits: Vec<SearchHit>,
    /// Counts per category among the matches.
    pub categories: FacetCounts,
    /// Counts per tag among the matches.
    pub tags: FacetCounts,
    /// Counts per license among the matches.
    pub licenses: FacetCounts,
    /// Counts of `certified` and `uncertified` among the matches.
    pub certification: FacetCounts,
    /// Time taken.
    #[serde(serialize_with = "serialize_micros")]
    pub took: Duration,
}

fn serialize_micros<S: serde::Serializer>(
    took: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(took.as_micros() as u64)
}

#[derive(Clone, Copy)]
struct Fields {
    name: Field,
    short_name: Field,
    depends_on: Field,
    words: Field,
    filters: Field,
    category_facet: Field,
    tag_facet: Field,
    license_facet: Field,
    certification_facet: Field,
    downloads: Field,
    rating: Field,
    updated_at: Field,
    created_at: Field,
    stored: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Frequencies without positions: scoring needs them, phrases are not searched.
    let counted = |tokenizer| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let fields = Fields {
        name: builder.add_text_field("name", STRING),
        short_name: builder.add_text_field("short_name", STRING),
        depends_on: builder.add_text_field("depends_on", STRING),
        words: builder.add_text_field("words", counted("default")),
        // `kind:value` for each filter; with frequencies, so that a filter joins the
        // intersection of a reading's terms instead of breaking it.
        filters: builder.add_text_field("filters", counted("raw")),
        category_facet: builder.add_facet_field("category", INDEXED),
        tag_facet: builder.add_facet_field("tag", INDEXED),
        license_facet: builder.add_facet_field("license", INDEXED),
        certification_facet: builder.add_facet_field("certification", INDEXED),
        downloads: builder.add_u64_field("downloads", FAST),
        rating: builder.add_f64_field("rating", FAST),
        updated_at: builder.add_i64_field("updated_at", FAST),
        created_at: builder.add_i64_field("created_at", FAST),
        // The document as JSON, so a hit needs no database round trip.
        stored: builder.add_text_field("stored", STORED),
    };
    (builder.build(), fields)
}

fn facet(value: &str) -> Facet {
    Facet::from_path([value])
}

/// The term of `filters` a filter on `kind` = `value` looks for.
fn filter_term(kind: &str, value: &str) -> String {
    format!("{kind}:{value}")
}

fn certification(certified: bool) -> &'static str {
    if certified {
        "certified"
    } else {
        "uncertified"
    }
}

/// The catalogue's index: one writer, and readers that see each commit.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: std::sync::Mutex<IndexWriter>,
    fields: Fields,
    facets: FacetCache,
}

impl SearchIndex {
    /// An index in memory, for tests and tools.
    pub fn in_memory() -> SearchResult<SearchIndex> {
        let (schema, fields) = schema();
        SearchIndex::from_index(Index::create_in_ram(schema), fields)
    }

    /// The index in `dir`, created empty when missing or written by another schema version
    /// ([`SearchIndex::position`] then says `None`: rebuild it).
    pub fn open(dir: &std::path::Path) -> SearchResult<SearchIndex> {
        let (schema, fields) = schema();
        std::fs::create_dir_all(dir).map_err(|err| {
            tantivy::TantivyError::SystemError(format!("{}: {err}", dir.display()))
        })?;
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        let index = match Index::open_or_create(directory, schema.clone()) {
            Ok(index) if payload(&index).is_some_and(|(version, _)| version == SCHEMA_VERSION) => {
                index
            }
            // Another schema (or an unreadable one): start over in the same place.
            _ => {
                for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    let _ = std::fs::remove_file(entry.path());
                }
                let directory = tantivy::directory::MmapDirectory::open(dir)?;
                Index::create(directory, schema, tantivy::IndexSettings::default())?
            }
        };
        SearchIndex::from_index(index, fields)
    }

    fn from_index(index: Index, fields: Fields) -> SearchResult<SearchIndex> {
        // The writer's lock may still be held for a moment by the index this one replaces
        // (a restart in the same process).
        let mut attempts = 0;
        let writer = loop {
            match index.writer_with_num_threads(1, WRITER_MEMORY) {
                Err(tantivy::TantivyError::LockFailure(..)) if attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            index,
            reader,
            writer: std::sync::Mutex::new(writer),
            fields,
            facets: FacetCache::default(),
        })
    }

    /// The position in the change log the last commit reflects; `None` for an index never
    /// committed (or of another schema): rebuild it.
    pub fn position(&self) -> Option<u64> {
        payload(&self.index).map(|(_, position)| position)
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        self.writer.lock().unwrap_or_else(|err| err.into_inner())
    }

    fn document(&self, plugin: &PluginDocument) -> TantivyDocument {
        let fields = self.fields;
        let mut document = TantivyDocument::new();
        document.add_text(fields.name, &plugin.name);
        let short = plugin.name.rsplit('/').next().unwrap_or(&plugin.name);
        document.add_text(fields.short_name, short);
        for dependency in &plugin.dependencies {
            document.add_text(fields.depends_on, dependency);
        }
        for _ in 0..NAME_REPEATS {
            document.add_text(fields.words, &plugin.name);
        }
        for _ in 0..TAG_REPEATS {
            for tag in &plugin.tags {
                document.add_text(fields.words, tag);
            }
        }
        for _ in 0..CATEGORY_REPEATS {
            for category in &plugin.categories {
                document.add_text(fields.words, category);
            }
        }
        document.add_text(fields.words, &plugin.description);
        document.add_text(fields.words, &plugin.readme);
        for tag in &plugin.tags {
            document.add_facet(fields.tag_facet, facet(tag));
            document.add_text(fields.filters, filter_term("tag", tag));
        }
        for category in &plugin.categories {
            document.add_facet(fields.category_facet, facet(category));
            document.add_text(fields.filters, filter_term("category", category));
        }
        let certification = certification(plugin.certified);
        document.add_facet(fields.license_facet, facet(&plugin.license));
        document.add_text(fields.filters, filter_term("license", &plugin.license));
        document.add_facet(fields.certification_facet, facet(certification));
        document.add_text(fields.filters, filter_term("certification", certification));
        document.add_u64(fields.downloads, plugin.downloads);
        document.add_f64(fields.rating, plugin.rating);
        document.add_i64(fields.updated_at, plugin.updated_at);
        document.add_i64(fields.created_at, plugin.created_at);
        document.add_text(
            fields.stored,
            serde_json::to_string(plugin).expect("a document serialises"),
        );
        document
    }

    /// Adds or replaces `plugins` and removes `removed`, then commits at change-log
    /// `position`: searches see all of it or none of it.
    pub fn upsert(
        &self,
        plugins: &[PluginDocument],
        removed: &[String],
        position: u64,
    ) -> SearchResult<()> {
        let mut writer = self.writer();
        for name in removed
            .iter()
            .chain(plugins.iter().map(|plugin| &plugin.name))
        {
            writer.delete_term(Term::from_field_text(self.fields.name, name));
        }
        for plugin in plugins {
            writer.add_document(self.document(plugin))?;
        }
        self.commit(&mut writer, position)
    }

    /// Replaces the whole index with `plugins`, at change-log `position`. The plugins are
    /// streamed, so a catalogue of any size is rebuilt in bounded memory; if the source fails,
    /// nothing changes.
    pub fn rebuild<E: std::fmt::Display>(
        &self,
        plugins: impl IntoIterator<Item = Result<PluginDocument, E>>,
        position: u64,
    ) -> SearchResult<usize> {
        let mut writer = self.writer();
        writer.delete_all_documents()?;
        let mut count = 0;
        for plugin in plugins {
            let plugin = match plugin {
                Ok(plugin) => plugin,
                Err(err) => {
                    writer.rollback()?;
                    return Err(SearchError::Source(err.to_string()));
                }
            };
            writer.add_document(self.document(&plugin))?;
            count += 1;
        }
        self.commit(&mut writer, position)?;
        Ok(count)
    }

    /// The plugin stored at `address`.
    fn stored(
        &self,
        searcher: &tantivy::Searcher,
        address: DocAddress,
    ) -> SearchResult<PluginDocument> {
        let document: TantivyDocument = searcher.doc(address)?;
        let stored = document
            .get_first(self.fields.stored)
            .and_then(|value| value.as_str())
            .unwrap_or("{}");
        Ok(serde_json::from_str(stored).map_err(|err| {
            tantivy::TantivyError::InvalidArgument(format!("a stored document: {err}"))
        })?)
    }

    /// The plugins that depend on `name`, by name, at most `limit`.
    pub fn dependents(&self, name: &str, limit: usize) -> SearchResult<Vec<String>> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.depends_on, name),
            IndexRecordOption::Basic,
        );
        let mut names = searcher
            .search(&query, &TopDocs::with_limit(limit.max(1)).order_by_score())?
            .into_iter()
            .map(|(_, address)| self.stored(&searcher, address).map(|plugin| plugin.name))
            .collect::<SearchResult<Vec<_>>>()?;
        names.sort();
        Ok(names)
    }

    fn commit(&self, writer: &mut IndexWriter, position: u64) -> SearchResult<()> {
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&format!("{SCHEMA_VERSION} {position}"));
        commit.commit()?;
        self.reader.reload()?;
        let live = self
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|segment| segment.segment_id())
            .collect();
        self.facets.retain(&live);
        Ok(())
    }

    /// How many plugins the index holds.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `query`.
    pub fn search(&self, query: &SearchQuery) -> SearchResult<SearchResults> {
        let started = Instant::now();
        if query.offset > MAX_OFFSET {
            return Err(SearchError::OffsetTooLarge);
        }
        let searcher = self.reader.searcher();
        let plan = self.plan(&searcher, query)?;
        let limit = query.limit.clamp(1, MAX_PAGE_SIZE);
        let sort = match query.sort {
            Sort::Relevance if !plan.has_text => Sort::Downloads,
            sort => sort,
        };
        let page = match sort {
            Sort::Relevance => self.best(&searcher, &plan, query.offset, limit)?,
            Sort::Downloads => ordered::<u64>(&searcher, &plan, "downloads", query.offset, limit)?,
            Sort::Rating => ordered::<f64>(&searcher, &plan, "rating", query.offset, limit)?,
            Sort::Updated => ordered::<i64>(&searcher, &plan, "updated_at", query.offset, limit)?,
            Sort::Newest => ordered::<i64>(&searcher, &plan, "created_at", query.offset, limit)?,
        };
        // Counting needs no scores: the union of the readings, scored by none.
        let any_reading = plan.any_reading(Purpose::Count);
        let weight = any_reading.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        let tally = collect(
            &searcher,
            weight.as_ref(),
            &Tally {
                facets: FacetCounter {
                    cache: &self.facets,
                    names: [
                        self.fields.category_facet,
                        self.fields.tag_facet,
                        self.fields.license_facet,
                        self.fields.certification_facet,
                    ]
                    .into_iter()
                    .map(|field| searcher.schema().get_field_name(field))
                    .collect(),
                    most: MAX_FACET_VALUES,
                },
                limit: EXACT_MATCHES,
                seen: Default::default(),
            },
        )?;
        let mut hits = Vec::with_capacity(page.len());
        for (score, address) in page {
            let plugin = self.stored(&searcher, address)?;
            hits.push(SearchHit { plugin, score });
        }
        if sort == Sort::Relevance {
            // Equal scores side by side in name order, whatever the index's segments.
            for run in hits.chunk_by_mut(|a, b| a.score == b.score) {
                run.sort_by(|a, b| a.plugin.name.cmp(&b.plugin.name));
            }
        }
        let mut facet_counts = tally.facets.into_iter();
        let mut next = || facet_counts.next().unwrap_or_default();
        Ok(SearchResults {
            total: tally.matches as usize,
            exhaustive: tally.exhaustive,
            hits,
            categories: next(),
            tags: next(),
            licenses: next(),
            certification: next(),
            took: started.elapsed(),
        })
    }

    /// The page of `plan`'s best matches: plugins named as typed first, then every reading's
    /// best, each scored by its best reading.
    fn best(
        &self,
        searcher: &tantivy::Searcher,
        plan: &Plan,
        offset: usize,
        limit: usize,
    ) -> SearchResult<Vec<(f32, DocAddress)>> {
        let scoring = EnableScoring::enabled_from_searcher(searcher);
        let unscored = EnableScoring::disabled_from_searcher(searcher);
        let readings = plan
            .readings
            .iter()
            .map(|reading| {
                let checked = plan
                    .filters
                    .iter()
                    .filter(|filter| !filter.intersected(reading))
                    .map(|filter| {
                        TermQuery::new(filter.term.clone(), IndexRecordOption::Basic)
                            .weight(unscored)
                    })
                    .collect::<tantivy::Result<Vec<_>>>()?;
                Ok(Ranking {
                    weight: plan.query(reading, Purpose::Rank).weight(scoring)?,
                    boost: reading.weight,
                    checked,
                })
            })
            .collect::<SearchResult<Vec<Ranking>>>()?;
        let mut named: Vec<DocAddress> = Vec::new();
        for query in &plan.names {
            let popular =
                TopDocs::with_limit(MAX_NAMED).order_by_fast_field::<u64>("downloads", Order::Desc);
            for (_, address) in searcher.search(query.as_ref(), &popular)? {
                if !named.contains(&address) && named.len() < MAX_NAMED {
                    named.push(address);
                }
            }
        }
        let wanted = offset + limit + named.len();
        let mut scores = top_scored(searcher, &readings, wanted)?;
        let mut ranked = Vec::with_capacity(wanted);
        for address in &named {
            let score = match scores.remove(address) {
                Some(score) => score,
                None => score_of(searcher, &readings, *address),
            };
            ranked.push((score, *address));
        }
        let mut rest: Vec<(f32, DocAddress)> = scores
            .drain()
            .map(|(address, score)| (score, address))
            .collect();
        rest.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        ranked.extend(rest);
        Ok(ranked.into_iter().skip(offset).take(limit).collect())
    }

    /// What a search runs: its readings and the names it may mean.
    fn plan(&self, searcher: &tantivy::Searcher, query: &SearchQuery) -> SearchResult<Plan> {
        let mut filters = Vec::new();
        for (kind, value) in [
            ("category", query.category.as_deref()),
            ("tag", query.tag.as_deref()),
            ("license", query.license.as_deref()),
            ("certification", query.certified.map(certification)),
        ] {
            if let Some(value) = value {
                let term = Term::from_field_text(self.fields.filters, &filter_term(kind, value));
                let doc_freq = searcher.doc_freq(&term)?;
                filters.push(Filter { term, doc_freq });
            }
        }
        let text: String = query.text.chars().take(MAX_QUERY_LEN).collect();
        let words = self.words(&text);
        if words.is_empty() {
            return Ok(Plan {
                readings: vec![Reading {
                    words: Vec::new(),
                    weight: AS_TYPED,
                    rarest: u64::MAX,
                }],
                filters,
                names: Vec::new(),
                has_text: false,
            });
        }
        let last = words.len() - 1;
        let mut alternatives = Vec::with_capacity(words.len());
        for (position, word) in words.iter().enumerate() {
            alternatives.push(self.alternatives(searcher, word, position == last)?);
        }
        // The words read the most ways give up their least likely readings first.
        while alternatives.iter().map(Vec::len).product::<usize>() > MAX_READINGS {
            if let Some(most) = alternatives.iter_mut().max_by_key(|found| found.len()) {
                most.pop();
            }
        }
        let mut readings = vec![Reading {
            words: Vec::new(),
            weight: AS_TYPED,
            rarest: u64::MAX,
        }];
        for found in &alternatives {
            readings = readings
                .into_iter()
                .flat_map(|reading| {
                    found.iter().map(move |alternative| {
                        let mut words = reading.words.clone();
                        words.push(Term::from_field_text(self.fields.words, &alternative.word));
                        Reading {
                            words,
                            weight: reading.weight * alternative.weight,
                            rarest: reading.rarest.min(alternative.doc_freq),
                        }
                    })
                })
                .collect();
        }

        // A plugin named as typed (whole or without its namespace), then one named with a
        // typo, when it matches the words and the filters.
        let mut plan = Plan {
            readings,
            filters,
            names: Vec::new(),
            has_text: true,
        };
        if plan.readings.is_empty() {
            return Ok(plan);
        }
        let whole = text.trim().to_lowercase();
        let any_unknown = alternatives
            .iter()
            .any(|found| found.first().is_none_or(|first| first.weight != AS_TYPED));
        // A name has no spaces: several words are not a name with a typo (and walking a
        // million names with two typos allowed would cost more than the rest of the search).
        let typos = if any_unknown && words.len() == 1 {
            typos_allowed(&whole)
        } else {
            0
        };
        let mut names: Vec<Box<dyn Query>> = Vec::new();
        for field in [self.fields.name, self.fields.short_name] {
            let term = Term::from_field_text(field, &whole);
            names.push(Box::new(TermQuery::new(term, IndexRecordOption::Basic)));
        }
        if typos > 0 {
            for field in [self.fields.name, self.fields.short_name] {
                let term = Term::from_field_text(field, &whole);
                names.push(Box::new(FuzzyTermQuery::new(term, typos, true)));
            }
        }
        plan.names = names
            .into_iter()
            .map(|name| {
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, name),
                    (Occur::Must, plan.any_reading(Purpose::Count)),
                ])) as Box<dyn Query>
            })
            .collect();
        Ok(plan)
    }

    /// The ways to read `word`, likeliest first: as typed when the index holds it; as the
    /// start of a word when it is the `last` (being typed); with typos when the index does not
    /// hold it. Expanding a known word further costs several times more at a million plugins
    /// and would let a correct word drown in its neighbours.
    fn alternatives(
        &self,
        searcher: &tantivy::Searcher,
        word: &str,
        last: bool,
    ) -> SearchResult<Vec<Alternative>> {
        let term = Term::from_field_text(self.fields.words, word);
        let doc_freq = searcher.doc_freq(&term)?;
        let known = doc_freq > 0;
        let mut others = Vec::new();
        if last {
            let most = if known {
                MAX_COMPLETIONS_OF_A_WORD
            } else {
                MAX_COMPLETIONS
            };
            let prefix = FuzzyTermQuery::new_prefix(term.clone(), 0, true).automaton()?;
            for (completion, doc_freq) in self.expansions(searcher, &prefix, word, most)? {
                others.push(Alternative {
                    word: completion,
                    weight: COMPLETED,
                    doc_freq,
                });
            }
        }
        // The nearest corrections: two typos only when no word is one away (walking the
        // dictionary with two allowed costs several times more).
        let most_typos = if known { 0 } else { typos_allowed(word) };
        for typos in 1..=most_typos {
            let near = FuzzyTermQuery::new(term.clone(), typos, true).automaton()?;
            let corrections = self.expansions(searcher, &near, word, MAX_CORRECTIONS)?;
            let found = !corrections.is_empty();
            others.extend(
                corrections
                    .into_iter()
                    .map(|(correction, doc_freq)| Alternative {
                        word: correction,
                        weight: CORRECTED,
                        doc_freq,
                    }),
            );
            if found {
                break;
            }
        }
        // The most frequent first; a word both completing and correcting keeps the better
        // weight.
        others.sort_by(|a, b| {
            b.doc_freq
                .cmp(&a.doc_freq)
                .then_with(|| b.weight.total_cmp(&a.weight))
                .then_with(|| a.word.cmp(&b.word))
        });
        others.dedup_by(|b, a| a.word == b.word);
        let mut found = Vec::with_capacity(MAX_ALTERNATIVES);
        if known {
            found.push(Alternative {
                word: word.to_string(),
                weight: AS_TYPED,
                doc_freq,
            });
        }
        found.extend(others);
        found.truncate(MAX_ALTERNATIVES);
        Ok(found)
    }

    /// Up to `most` words of the `words` field other than `word` that `automaton` accepts,
    /// the most frequent first.
    fn expansions(
        &self,
        searcher: &tantivy::Searcher,
        automaton: &DfaWrapper,
        word: &str,
        most: usize,
    ) -> SearchResult<Vec<(String, u64)>> {
        let mut found: HashMap<Vec<u8>, u64> = HashMap::new();
        for segment in searcher.segment_readers() {
            let index = segment.inverted_index(self.fields.words)?;
            let mut terms = index
                .terms()
                .search(automaton)
                .into_stream()
                .map_err(tantivy::TantivyError::from)?;
            let mut read = 0;
            while read < MAX_EXPANSION_CANDIDATES && terms.advance() {
                read += 1;
                if terms.key() != word.as_bytes() {
                    *found.entry(terms.key().to_vec()).or_default() +=
                        u64::from(terms.value().doc_freq);
                }
            }
        }
        let mut found: Vec<(Vec<u8>, u64)> = found.into_iter().collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(found
            .into_iter()
            .take(most)
            .filter_map(|(word, doc_freq)| Some((String::from_utf8(word).ok()?, doc_freq)))
            .collect())
    }

    /// The words of `text` as the index's tokenizer cuts them.
    fn words(&self, text: &str) -> Vec<String> {
        let mut tokenizer = self
            .index
            .tokenizer_for_field(self.fields.words)
            .expect("the text fields use the default tokenizer");
        let mut stream = tokenizer.token_stream(text);
        let mut words = Vec::new();
        while stream.advance() {
            let word = stream.token().text.clone();
            if !words.contains(&word) {
                words.push(word);
            }
            if words.len() == MAX_QUERY_WORDS {
                break;
            }
        }
        words
    }
}

fn payload(index: &Index) -> Option<(u32, u64)> {
    let metas = index.load_metas().ok()?;
    let text = metas.payload?;
    let (version, position) = text.split_once(' ')?;
    Some((version.parse().ok()?, position.parse().ok()?))
}

/// One way to read a query word.
struct Alternative {
    /// The term of the `words` field.
    word: String,
    /// How much a match counts ([`AS_TYPED`], [`COMPLETED`] or [`CORRECTED`]).
    weight: f32,
    /// How many plugins hold it.
    doc_freq: u64,
}

/// One reading of a query: a term per word, all required.
struct Reading {
    /// Terms of the `words` field; none for a query without words (every plugin).
    words: Vec<Term>,
    /// What its scores are multiplied by.
    weight: f32,
    /// How many plugins hold its rarest word.
    rarest: u64,
}

/// A filter of a search: a term of the `filters` field.
struct Filter {
    term: Term,
    /// How many plugins pass it.
    doc_freq: u64,
}

impl Filter {
    /// Whether ranking `reading` intersects this filter with its words rather than checking
    /// it on the matches. A filter far rarer than every word (a rare tag) leads the
    /// intersection and skips the most, where checking would wait long for the page to fill;
    /// a common one (a category) would add a term of dense postings to every block-max window.
    fn intersected(&self, reading: &Reading) -> bool {
        self.doc_freq.saturating_mul(RARE_FILTER) <= reading.rarest
    }
}

/// A reading ready to rank.
struct Ranking {
    /// Its query's weight, scored.
    weight: Box<dyn Weight>,
    /// What its scores are multiplied by.
    boost: f32,
    /// The filters checked on its matches (those not intersected), unscored.
    checked: Vec<Box<dyn Weight>>,
}

/// What a search runs.
struct Plan {
    /// A plugin matches when one of them does (and the filters); none when a word cannot be
    /// read at all.
    readings: Vec<Reading>,
    /// The filters, all required.
    filters: Vec<Filter>,
    /// Plugins named as the query was typed, in their order of precedence; each also
    /// matches a reading.
    names: Vec<Box<dyn Query>>,
    /// Whether the query had words.
    has_text: bool,
}

/// What a query is built for.
#[derive(Clone, Copy, PartialEq)]
enum Purpose {
    /// Scores: the words, read with their frequencies, and the filters that are intersected
    /// (see [`Filter::intersected`]) as terms that weigh nothing, so that the query stays an
    /// intersection of terms with frequencies, which tantivy skips through by block maxima for
    /// the best page.
    Rank,
    /// Matches: the words and the filters, read without frequencies.
    Count,
}

impl Plan {
    /// The query of `reading` with its filters.
    fn query(&self, reading: &Reading, purpose: Purpose) -> Box<dyn Query> {
        let option = match purpose {
            Purpose::Rank => IndexRecordOption::WithFreqs,
            Purpose::Count => IndexRecordOption::Basic,
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in &reading.words {
            clauses.push((Occur::Must, Box::new(TermQuery::new(word.clone(), option))));
        }
        if reading.words.is_empty() {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        for filter in &self.filters {
            let term = Box::new(TermQuery::new(filter.term.clone(), option));
            match purpose {
                Purpose::Count => clauses.push((Occur::Must, term)),
                Purpose::Rank if filter.intersected(reading) => {
                    clauses.push((Occur::Must, Box::new(BoostQuery::new(term, 0.0))));
                }
                Purpose::Rank => {}
            }
        }
        match clauses.len() {
            1 => clauses.pop().expect("one clause").1,
            _ => Box::new(BooleanQuery::new(clauses)),
        }
    }

    /// The union of the readings.
    fn any_reading(&self, purpose: Purpose) -> Box<dyn Query> {
        match self.readings.as_slice() {
            [] => Box::new(EmptyQuery),
            [reading] => self.query(reading, purpose),
            readings => Box::new(BooleanQuery::union(
                readings
                    .iter()
                    .map(|reading| self.query(reading, purpose))
                    .collect(),
            )),
        }
    }
}

/// Typos allowed in `word`: none below four letters, one below eight, two from eight.
fn typos_allowed(word: &str) -> u8 {
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The best `wanted` plugins of the `readings` that pass their checked filters, each scored by
/// its best reading. One bar for every reading and segment: the strongest reading raises it,
/// and tantivy skips the blocks of the others that cannot pass it. Checked filters are read as
/// matches come, in document order, so each filter's postings are only read forward.
fn top_scored(
    searcher: &tantivy::Searcher,
    readings: &[Ranking],
    wanted: usize,
) -> SearchResult<HashMap<DocAddress, f32>> {
    let mut best = Best::new(wanted);
    let mut order: Vec<&Ranking> = readings.iter().collect();
    order.sort_by(|a, b| b.boost.total_cmp(&a.boost));
    for reading in order {
        let boost = reading.boost;
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let alive = segment.alive_bitset();
            let mut filters = reading
                .checked
                .iter()
                .map(|filter| filter.scorer(segment, 1.0))
                .collect::<tantivy::Result<Vec<_>>>()?;
            let threshold = best.threshold() / boost;
            let mut offer = |doc: tantivy::DocId, score: f32| {
                let mut passes = alive.is_none_or(|alive| alive.is_alive(doc));
                for filter in &mut filters {
                    if filter.doc() < doc {
                        filter.seek(doc);
                    }
                    if filter.doc() == tantivy::TERMINATED {
                        // Nothing further in this segment passes.
                        return f32::MAX;
                    }
                    passes &= filter.doc() == doc;
                }
                if passes {
                    best.offer(DocAddress::new(ord as u32, doc), score * boost);
                }
                best.threshold() / boost
            };
            reading
                .weight
                .for_each_pruning(threshold, segment, &mut offer)?;
        }
    }
    Ok(best.scores)
}

/// The best `wanted` scores offered, one per plugin (its best).
struct Best {
    wanted: usize,
    scores: HashMap<DocAddress, f32>,
    /// The scores offered, lowest on top; an entry whose plugin has since scored better (or
    /// left) is stale and skipped.
    lowest: std::collections::BinaryHeap<std::cmp::Reverse<Offer>>,
}

#[derive(PartialEq)]
struct Offer(f32, DocAddress);

impl Eq for Offer {}

impl PartialOrd for Offer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Offer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| other.1.cmp(&self.1))
    }
}

impl Best {
    fn new(wanted: usize) -> Best {
        Best {
            wanted: wanted.max(1),
            scores: HashMap::new(),
            lowest: std::collections::BinaryHeap::new(),
        }
    }

    fn offer(&mut self, address: DocAddress, score: f32) {
        match self.scores.get_mut(&address) {
            Some(known) if *known >= score => return,
            Some(known) => *known = score,
            None => {
                self.scores.insert(address, score);
            }
        }
        self.lowest.push(std::cmp::Reverse(Offer(score, address)));
        while self.scores.len() > self.wanted {
            let Some(std::cmp::Reverse(Offer(score, address))) = self.lowest.pop() else {
                break;
            };
            if self.scores.get(&address) == Some(&score) {
                self.scores.remove(&address);
            }
        }
    }

    /// The score to beat: the lowest kept once `wanted` are kept.
    fn threshold(&mut self) -> f32 {
        if self.scores.len() < self.wanted {
            return f32::MIN;
        }
        while let Some(std::cmp::Reverse(Offer(score, address))) = self.lowest.peek() {
            if self.scores.get(address) == Some(score) {
                return *score;
            }
            self.lowest.pop();
        }
        f32::MIN
    }
}

/// The best score the `readings` give the plugin at `address`.
fn score_of(searcher: &tantivy::Searcher, readings: &[Ranking], address: DocAddress) -> f32 {
    let segment = searcher.segment_reader(address.segment_ord);
    let mut best = 0.0f32;
    for reading in readings {
        // A reading the plugin does not match explains nothing.
        if let Ok(explanation) = reading.weight.explain(segment, address.doc_id) {
            best = best.max(explanation.value() * reading.boost);
        }
    }
    best
}

/// The page of `plan`'s matches ordered by the fast field `field`, greatest first.
fn ordered<T>(
    searcher: &tantivy::Searcher,
    plan: &Plan,
    field: &str,
    offset: usize,
    limit: usize,
) -> SearchResult<Vec<(f32, DocAddress)>>
where
    T: tantivy::fastfield::FastValue + PartialOrd + Clone + Send + Sync + 'static,
{
    let scoring = EnableScoring::disabled_from_searcher(searcher);
    let mut found: Vec<(Option<T>, DocAddress)> = Vec::new();
    for reading in &plan.readings {
        let weight = plan.query(reading, Purpose::Count).weight(scoring)?;
        let top = TopDocs::with_limit(offset + limit).order_by_fast_field::<T>(field, Order::Desc);
        found.extend(collect(searcher, weight.as_ref(), &top)?);
    }
    found.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.1.cmp(&b.1))
    });
    found.dedup_by_key(|(_, address)| *address);
    Ok(found
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, address)| (0.0, address))
        .collect())
}

/// Runs `collector` over every segment with a weight already built.
fn collect<C: tantivy::collector::Collector>(
    searcher: &tantivy::Searcher,
    weight: &dyn tantivy::query::Weight,
    collector: &C,
) -> tantivy::Result<C::Fruit> {
    let fruits = searcher
        .segment_readers()
        .iter()
        .enumerate()
        .map(|(ord, reader)| collector.collect_segment(weight, ord as u32, reader))
        .collect::<tantivy::Result<Vec<_>>>()?;
    collector.merge_fruits(fruits)
}

mod facets;
#[cfg(test)]
mod tests;
