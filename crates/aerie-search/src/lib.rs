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
//! or, for a word the index does not hold, with one typo (two for long words); an exact plugin
//! name outranks everything. Results come with facet counts (category, tag, license,
//! certification), any of the sorts a catalogue needs, and pages.

use std::time::{Duration, Instant};

use tantivy::collector::TopDocs;

use crate::facets::{FacetCounter, FacetLabels, Tally};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Facet, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, TantivyDocument,
    Value as _,
};
use tantivy::tokenizer::TokenStream as _;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Term};

/// The schema's version: an index written with another is rebuilt.
const SCHEMA_VERSION: u32 = 2;

/// Memory for the writer's indexing buffer.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

/// Longest query text read, in characters; the rest is ignored.
const MAX_QUERY_LEN: usize = 200;

/// Most words of a query used.
const MAX_QUERY_WORDS: usize = 8;

/// Largest page.
pub const MAX_PAGE_SIZE: usize = 100;

/// Most completions of the word being typed, per field.
const MAX_COMPLETIONS: usize = 16;

/// Most completions of a typed word the index holds as it is, per field (names and tags).
const MAX_COMPLETIONS_OF_A_WORD: usize = 4;

/// Most words read from a field's dictionary to find the completions.
const MAX_COMPLETION_CANDIDATES: usize = 512;

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

/// A facet's values with their counts, most frequent first.
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
    name_text: Field,
    description: Field,
    tags: Field,
    categories: Field,
    readme: Field,
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
    let fields = Fields {
        name: builder.add_text_field("name", STRING),
        short_name: builder.add_text_field("short_name", STRING),
        depends_on: builder.add_text_field("depends_on", STRING),
        name_text: builder.add_text_field("name_text", TEXT),
        description: builder.add_text_field("description", TEXT),
        tags: builder.add_text_field("tags", TEXT),
        categories: builder.add_text_field("categories", TEXT),
        readme: builder.add_text_field("readme", TEXT),
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
    facet_labels: FacetLabels,
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
            facet_labels: FacetLabels::default(),
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
        document.add_text(fields.name_text, &plugin.name);
        for dependency in &plugin.dependencies {
            document.add_text(fields.depends_on, dependency);
        }
        document.add_text(fields.description, &plugin.description);
        document.add_text(fields.readme, &plugin.readme);
        for tag in &plugin.tags {
            document.add_text(fields.tags, tag);
            document.add_facet(fields.tag_facet, facet(tag));
        }
        for category in &plugin.categories {
            document.add_text(fields.categories, category);
            document.add_facet(fields.category_facet, facet(category));
        }
        document.add_facet(fields.license_facet, facet(&plugin.license));
        document.add_facet(
            fields.certification_facet,
            facet(certification(plugin.certified)),
        );
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
        self.facet_labels.retain(&live);
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
        let text_query = self.text_query(&searcher, &query.text)?;
        let has_text = text_query.is_some();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        clauses.push((
            Occur::Must,
            text_query.unwrap_or_else(|| Box::new(AllQuery)),
        ));
        let filters = [
            (self.fields.category_facet, query.category.as_deref()),
            (self.fields.tag_facet, query.tag.as_deref()),
            (self.fields.license_facet, query.license.as_deref()),
            (
                self.fields.certification_facet,
                query.certified.map(certification),
            ),
        ];
        for (field, value) in filters {
            if let Some(value) = value {
                let term = Term::from_facet(field, &facet(value));
                clauses.push((
                    Occur::Must,
                    Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                ));
            }
        }
        // Text alone is searched as built, so a one-word query stays a plain union of terms
        // that tantivy can skip through (block-max WAND) for the best page.
        let combined: Box<dyn Query> = if clauses.len() == 1 {
            clauses.pop().expect("one clause").1
        } else {
            Box::new(BooleanQuery::new(clauses))
        };

        let limit = query.limit.clamp(1, MAX_PAGE_SIZE);
        let page = TopDocs::with_limit(limit).and_offset(query.offset);
        let sort = match query.sort {
            Sort::Relevance if !has_text => Sort::Downloads,
            sort => sort,
        };
        // The query's weight is built once (a typo's automaton, the terms' statistics) for
        // two passes: the page first, on its own, since together with counting it could skip
        // nothing; then the tally.
        let weight = combined.weight(tantivy::query::EnableScoring::enabled_from_searcher(
            &searcher,
        ))?;
        let addresses: Vec<(f32, DocAddress)> = match sort {
            Sort::Relevance => collect(&searcher, weight.as_ref(), &page.order_by_score())?,
            Sort::Downloads => unscored(collect(
                &searcher,
                weight.as_ref(),
                &page.order_by_fast_field::<u64>("downloads", Order::Desc),
            )?),
            Sort::Rating => unscored(collect(
                &searcher,
                weight.as_ref(),
                &page.order_by_fast_field::<f64>("rating", Order::Desc),
            )?),
            Sort::Updated | Sort::Newest => {
                let field = if sort == Sort::Updated {
                    "updated_at"
                } else {
                    "created_at"
                };
                unscored(collect(
                    &searcher,
                    weight.as_ref(),
                    &page.order_by_fast_field::<i64>(field, Order::Desc),
                )?)
            }
        };
        let tally = collect(
            &searcher,
            weight.as_ref(),
            &Tally {
                facets: FacetCounter {
                    labels: &self.facet_labels,
                    fields: [
                        self.fields.category_facet,
                        self.fields.tag_facet,
                        self.fields.license_facet,
                        self.fields.certification_facet,
                    ]
                    .into_iter()
                    .map(|field| (field, searcher.schema().get_field_name(field)))
                    .collect(),
                },
                limit: EXACT_MATCHES,
                seen: Default::default(),
            },
        )?;
        let (total, exhaustive, facet_counts) =
            (tally.matches as usize, tally.exhaustive, tally.facets);
        let mut hits = Vec::with_capacity(addresses.len());
        for (score, address) in addresses {
            let plugin = self.stored(&searcher, address)?;
            hits.push(SearchHit { plugin, score });
        }
        if sort == Sort::Relevance {
            // Equal scores in name order, whatever the index's segments.
            hits.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then_with(|| a.plugin.name.cmp(&b.plugin.name))
            });
        }
        let mut facet_counts = facet_counts.into_iter().map(counts);
        let mut next = || facet_counts.next().unwrap_or_default();
        Ok(SearchResults {
            total,
            exhaustive,
            hits,
            categories: next(),
            tags: next(),
            licenses: next(),
            certification: next(),
            took: started.elapsed(),
        })
    }

    /// The query for the words of `text`, or `None` when it has none.
    ///
    /// A word the index holds is matched as written (and, as the last word, as the start of a
    /// name or tag); only a word it does not hold is also matched with typos and as a prefix
    /// in every field. Expanding every word costs several times more at a million plugins and
    /// would let a correct word drown in its neighbours.
    fn text_query(
        &self,
        searcher: &tantivy::Searcher,
        text: &str,
    ) -> SearchResult<Option<Box<dyn Query>>> {
        let text: String = text.chars().take(MAX_QUERY_LEN).collect();
        let words = self.words(&text);
        if words.is_empty() {
            return Ok(None);
        }
        let fields = self.fields;
        let weighted = [
            (fields.name_text, 3.0),
            (fields.tags, 2.0),
            (fields.categories, 1.5),
            (fields.description, 1.0),
            (fields.readme, 0.5),
        ];
        let last = words.len() - 1;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut any_unknown = false;
        for (position, word) in words.iter().enumerate() {
            let mut known = false;
            for (field, _) in weighted {
                if searcher.doc_freq(&Term::from_field_text(field, word))? > 0 {
                    known = true;
                    break;
                }
            }
            any_unknown |= !known;
            let typos: u8 = match (known, word.chars().count()) {
                (true, _) | (false, 0..=3) => 0,
                (false, 4..=7) => 1,
                (false, _) => 2,
            };
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, weight) in weighted {
                let term = Term::from_field_text(field, word);
                alternatives.push(boosted(term_query(term.clone()), weight * 2.0));
                if typos > 0 {
                    let fuzzy = FuzzyTermQuery::new(term, typos, true);
                    alternatives.push(boosted(Box::new(fuzzy), weight * 0.5));
                }
                // The word being typed: the most frequent words that start with it.
                let names = field == fields.name_text || field == fields.tags;
                if position == last && (!known || names) {
                    // A whole word is likely typed out: a few completions suffice.
                    let most = if known {
                        MAX_COMPLETIONS_OF_A_WORD
                    } else {
                        MAX_COMPLETIONS
                    };
                    for completion in self.completions(searcher, field, word, most)? {
                        let term = Term::from_field_text(field, &completion);
                        alternatives.push(boosted(term_query(term), weight * 0.75));
                    }
                }
            }
            if words.len() == 1 {
                // One word: a plain union, which tantivy can skip through for the best page.
                clauses.extend(alternatives);
            } else {
                clauses.push((Occur::Must, Box::new(BooleanQuery::new(alternatives))));
            }
        }
        // The exact name, whole or without its namespace, outranks everything; the name
        // with a typo comes next.
        let whole = text.trim().to_lowercase();
        let typos: u8 = match (any_unknown, whole.chars().count()) {
            (false, _) | (true, 0..=3) => 0,
            (true, 4..=7) => 1,
            (true, _) => 2,
        };
        for (field, boost) in [(fields.name, 40.0), (fields.short_name, 20.0)] {
            let term = Term::from_field_text(field, &whole);
            let exact = TermQuery::new(term.clone(), IndexRecordOption::Basic);
            clauses.push(boosted(Box::new(exact), boost));
            if typos > 0 {
                let near = FuzzyTermQuery::new(term, typos, true);
                clauses.push(boosted(Box::new(near), boost / 4.0));
            }
        }
        Ok(Some(Box::new(BooleanQuery::new(clauses))))
    }

    /// Up to `most` words of `field` that start with `prefix` (and are longer),
    /// the most frequent first.
    fn completions(
        &self,
        searcher: &tantivy::Searcher,
        field: Field,
        prefix: &str,
        most: usize,
    ) -> SearchResult<Vec<String>> {
        let mut found: std::collections::HashMap<Vec<u8>, u64> = std::collections::HashMap::new();
        for segment in searcher.segment_readers() {
            let index = segment.inverted_index(field)?;
            let mut terms = index
                .terms()
                .range()
                .ge(prefix.as_bytes())
                .into_stream()
                .map_err(tantivy::TantivyError::from)?;
            let mut read = 0;
            while terms.advance() && read < MAX_COMPLETION_CANDIDATES {
                let word = terms.key();
                if !word.starts_with(prefix.as_bytes()) {
                    break;
                }
                read += 1;
                if word.len() > prefix.len() {
                    *found.entry(word.to_vec()).or_default() += u64::from(terms.value().doc_freq);
                }
            }
        }
        let mut found: Vec<(Vec<u8>, u64)> = found.into_iter().collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(found
            .into_iter()
            .take(most)
            .filter_map(|(word, _)| String::from_utf8(word).ok())
            .collect())
    }

    /// The words of `text` as the index's tokenizer cuts them.
    fn words(&self, text: &str) -> Vec<String> {
        let mut tokenizer = self
            .index
            .tokenizer_for_field(self.fields.description)
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

fn unscored<T>(docs: Vec<(T, DocAddress)>) -> Vec<(f32, DocAddress)> {
    docs.into_iter()
        .map(|(_, address)| (0.0, address))
        .collect()
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

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))
}

fn boosted(query: Box<dyn Query>, boost: f32) -> (Occur, Box<dyn Query>) {
    (Occur::Should, Box::new(BoostQuery::new(query, boost)))
}

fn counts(labels: std::collections::HashMap<String, u64>) -> FacetCounts {
    let mut counts: FacetCounts = labels.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

mod facets;
#[cfg(test)]
mod tests;
