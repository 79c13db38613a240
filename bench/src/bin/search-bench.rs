//! Search speed, tantivy beside PostgreSQL full-text search on the same catalogue.
//!
//! ```text
//! search-bench POSTGRES_URL INDEX_DIR [--seconds S] [--clients N] [--seed N] [--reuse-index]
//! search-bench --start-postgres COUNT INDEX_DIR [same options]
//! ```
//!
//! The first form runs against a catalogue that `catalog-gen` wrote into PostgreSQL (with the
//! same `--seed`, so that the queries match its plugins). The second starts a throwaway
//! PostgreSQL server with the default durability settings, generates a catalogue of COUNT
//! plugins into it with the same generator, and runs the benchmark; the server and its data
//! are gone when the command ends.
//!
//! Steps, each timed:
//!
//! 1. The tantivy index in INDEX_DIR is rebuilt from the database, as the server rebuilds it
//!    (`aerie_server::search::rebuild`). `--reuse-index` keeps an index that already holds
//!    every searchable plugin.
//! 2. PostgreSQL's peer is built: a table `bench_fts` with each searchable plugin's name,
//!    description, tags and categories (from its newest version's manifest), a `tsvector` of
//!    the name (weight A), tags (B) and description (C) with the `simple` configuration (no
//!    stemming, as tantivy's tokenizer), a GIN index on it and a GIN index on the categories.
//!    `--reuse-index` keeps a complete table.
//! 3. Eight query sets, drawn from the catalogue's own plugins: one word, two words, one word
//!    with a one-letter typo (the misspelt word appears in no plugin) and two words with a
//!    typo in one, each without and with a category filter (a category of the plugin the
//!    words came from).
//! 4. For each set and engine: one client running queries back to back for S seconds (at
//!    least one pass over the set, at most 4·S), giving p50 and p99 latency; then N clients
//!    (64 by default) for S seconds, giving queries per second.
//!
//! What each engine computes per query:
//!
//! - **tantivy** (`SearchIndex::search`, in process, one thread per client): every word must
//!   match the name, tags, categories, description or README, exactly, with a typo or, for the
//!   last word, as a prefix; the top 20 by relevance with their stored documents, the total
//!   number of matches, and facet counts (category, tag, license, certification) over all
//!   matches.
//! - **PostgreSQL** (`websearch_to_tsquery`, every word must match exactly, no typos, no
//!   prefixes, no README): the top 20 by `ts_rank` with name and description.
//! - **PostgreSQL + count**: the same with `count(*) OVER ()`, the total number of matches,
//!   which is what a results page shows. Neither PostgreSQL variant computes facets.
//!
//! PostgreSQL runs on the same machine and is reached over TCP from a pool of N connections;
//! tantivy pays no network. The tables at the end are Markdown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aerie_bench::catalog::{self, DEFAULT_SEED, Rng};
use aerie_search::{SearchIndex, SearchQuery};
use anyhow::{Context as _, anyhow, bail};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Executor as _, Row as _};

const USAGE: &str = "\
usage: search-bench POSTGRES_URL INDEX_DIR [options]
       search-bench --start-postgres COUNT INDEX_DIR [options]
options:
  --seconds S      time for each measurement (default 5)
  --clients N      concurrent clients for queries/s (default 64)
  --seed N         the seed the catalogue was generated with (default 1)
  --queries N      distinct queries per set (default 200)
  --reuse-index    keep a tantivy index and a bench_fts table that hold every plugin
  --print-queries  print the query sets (set, text, category; tab-separated) and stop";

/// A query ends with an error after this long on PostgreSQL: every run stays bounded.
const STATEMENT_TIMEOUT: &str = "60s";

/// Results per query.
const PAGE: usize = 20;

/// Random streams of the query sets (the catalogue's own streams are below 16).
const QUERY_STREAM: u64 = 16;

struct Options {
    target: Target,
    index_dir: PathBuf,
    seconds: f64,
    clients: usize,
    seed: u64,
    queries: usize,
    reuse_index: bool,
    print_queries: bool,
}

enum Target {
    Url(String),
    StartPostgres(u64),
}

fn parse_options() -> anyhow::Result<Options> {
    let mut positional = Vec::new();
    let mut start_postgres = false;
    let mut options = Options {
        target: Target::StartPostgres(0),
        index_dir: PathBuf::new(),
        seconds: 5.0,
        clients: 64,
        seed: DEFAULT_SEED,
        queries: 200,
        reuse_index: false,
        print_queries: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--seconds" => options.seconds = value("--seconds")?.parse()?,
            "--clients" => options.clients = value("--clients")?.parse()?,
            "--seed" => options.seed = value("--seed")?.parse()?,
            "--queries" => options.queries = value("--queries")?.parse()?,
            "--reuse-index" => options.reuse_index = true,
            "--print-queries" => options.print_queries = true,
            "--start-postgres" => start_postgres = true,
            "-h" | "--help" => bail!("{USAGE}"),
            flag if flag.starts_with("--") => bail!("unknown option {flag}\n{USAGE}"),
            _ => positional.push(arg),
        }
    }
    let [first, index_dir] = <[String; 2]>::try_from(positional)
        .map_err(|_| anyhow!("expected two arguments\n{USAGE}"))?;
    options.target = if start_postgres {
        Target::StartPostgres(first.parse().context("COUNT is a number")?)
    } else {
        Target::Url(first)
    };
    options.index_dir = index_dir.into();
    if options.clients == 0 || options.queries == 0 || options.seconds <= 0.0 {
        bail!("--clients, --queries and --seconds must be positive");
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    match try_main().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("search-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn try_main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let budget = Duration::from_secs_f64(options.seconds);
    let mut setup = Vec::new();

    let url = match &options.target {
        Target::Url(url) => url.clone(),
        Target::StartPostgres(count) => {
            eprintln!(
                "starting PostgreSQL and generating {count} plugins (seed {})",
                options.seed
            );
            let url = aerie_test_support::durable_postgres().fresh_database();
            let summary = catalog::generate(&url, *count, options.seed).await?;
            setup.push(format!(
                "catalogue generated: {} plugins, {} versions, {} namespaces, {} download rows, \
                 {} reviews in {:.1} s",
                summary.plugins,
                summary.versions,
                summary.namespaces,
                summary.download_rows,
                summary.reviews,
                summary.elapsed.as_secs_f64()
            ));
            url
        }
    };
    let pool = PgPoolOptions::new()
        .max_connections(options.clients as u32)
        .min_connections(options.clients as u32)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute(sqlx::AssertSqlSafe(format!(
                        "SET statement_timeout = '{STATEMENT_TIMEOUT}'"
                    )))
                    .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .context("connecting to PostgreSQL")?;

    let plugins: i64 = scalar(&pool, "SELECT COUNT(*) FROM plugins").await?;
    let searchable: i64 = scalar(
        &pool,
        "SELECT COUNT(*) FROM plugins p JOIN namespaces n ON n.id = p.namespace_id \
         WHERE n.private = 0 AND EXISTS (SELECT 1 FROM versions v WHERE v.plugin_id = p.id)",
    )
    .await?;
    if plugins == 0 {
        bail!("the database holds no plugins: fill it with catalog-gen first");
    }
    if options.print_queries {
        for set in query_sets(options.seed, plugins as u64, options.queries) {
            for query in &set.queries {
                println!(
                    "{}\t{}\t{}",
                    set.label,
                    query.text,
                    query.category.unwrap_or_default()
                );
            }
        }
        return Ok(());
    }
    let database_size: i64 = scalar(&pool, "SELECT pg_database_size(current_database())").await?;
    let server: String = scalar(&pool, "SHOW server_version").await?;
    let shared_buffers: String = scalar(&pool, "SHOW shared_buffers").await?;
    let work_mem: String = scalar(&pool, "SHOW work_mem").await?;
    setup.push(format!(
        "catalogue: {plugins} plugins ({searchable} searchable), database {}",
        megabytes(database_size as u64)
    ));
    setup.push(format!(
        "PostgreSQL {server}: shared_buffers {shared_buffers}, work_mem {work_mem}, \
         pool of {} connections",
        options.clients
    ));

    // 1. The tantivy index.
    let index = {
        let dir = options.index_dir.clone();
        Arc::new(tokio::task::spawn_blocking(move || SearchIndex::open(&dir)).await??)
    };
    if options.reuse_index && index.position().is_some() && index.len() == searchable as u64 {
        setup.push(format!("tantivy index reused: {} documents", index.len()));
    } else {
        eprintln!("rebuilding the tantivy index");
        let database = aerie_db::Database::connect(&url).await?;
        let started = Instant::now();
        let count = aerie_server::search::rebuild(&database, &index)
            .await
            .map_err(|err| anyhow!("rebuilding the index: {}", err.message))?;
        let elapsed = started.elapsed();
        database.close().await;
        setup.push(format!(
            "tantivy index rebuilt from the database: {count} documents in {:.1} s \
             ({:.0} documents/s); peak memory so far {}",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64(),
            peak_memory()
        ));
    }
    // The rebuild's commit starts background merges; the searches run on the index as it is
    // once they are done, opened afresh as after a restart.
    let (before, _) = index_files(&options.index_dir);
    let waited = settle_merges(&options.index_dir, Duration::from_secs(600)).await;
    drop(index);
    let index = {
        let dir = options.index_dir.clone();
        Arc::new(tokio::task::spawn_blocking(move || SearchIndex::open(&dir)).await??)
    };
    let (segments, bytes) = index_files(&options.index_dir);
    setup.push(format!(
        "tantivy index: {segments} segments ({before} before background merges, which took \
         {:.0} s), {} on disk",
        waited.as_secs_f64(),
        megabytes(bytes)
    ));

    // 2. PostgreSQL's full-text index.
    let fts_rows: Option<i64> =
        if scalar::<Option<String>>(&pool, "SELECT to_regclass('bench_fts')::text")
            .await?
            .is_some()
        {
            Some(scalar(&pool, "SELECT COUNT(*) FROM bench_fts").await?)
        } else {
            None
        };
    if options.reuse_index && fts_rows == Some(searchable) {
        setup.push(format!("PostgreSQL bench_fts reused: {searchable} rows"));
    } else {
        eprintln!("building PostgreSQL's full-text index");
        let elapsed = build_fts(&pool).await?;
        setup.push(format!(
            "PostgreSQL bench_fts built (table, GIN on the tsvector, GIN on categories, \
             VACUUM ANALYZE) in {:.1} s",
            elapsed.as_secs_f64()
        ));
    }
    let fts_size: i64 = scalar(&pool, "SELECT pg_total_relation_size('bench_fts')").await?;
    setup.push(format!(
        "PostgreSQL bench_fts with its indexes: {}",
        megabytes(fts_size as u64)
    ));

    // 3. The queries.
    let sets = query_sets(options.seed, plugins as u64, options.queries);

    // 4. The measurements.
    let mut results = Vec::new();
    for set in &sets {
        eprintln!(
            "{}: e.g. {}",
            set.label,
            set.queries
                .iter()
                .take(3)
                .map(BenchQuery::describe)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let tantivy = {
            let index = Arc::clone(&index);
            let queries: Vec<SearchQuery> = set.queries.iter().map(BenchQuery::tantivy).collect();
            let clients = options.clients;
            tokio::task::spawn_blocking(move || measure_tantivy(&index, &queries, clients, budget))
                .await??
        };
        eprintln!("  tantivy               {}", tantivy.line());
        let postgres =
            measure_postgres(&pool, Variant::Top, &set.queries, options.clients, budget).await?;
        eprintln!("  PostgreSQL            {}", postgres.line());
        let counted = measure_postgres(
            &pool,
            Variant::Counted,
            &set.queries,
            options.clients,
            budget,
        )
        .await?;
        eprintln!("  PostgreSQL + count    {}", counted.line());
        results.push((set.label.clone(), tantivy, postgres, counted));
    }
    pool.close().await;

    println!("### Setup\n");
    for line in &setup {
        println!("- {line}");
    }
    println!(
        "- {} queries per set; {} s per measurement; {} clients for queries/s",
        options.queries, options.seconds, options.clients
    );
    println!("- peak memory of this process: {}", peak_memory());
    print_tables(&results, options.clients);
    Ok(())
}

async fn scalar<T>(pool: &PgPool, sql: &'static str) -> anyhow::Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let row = sqlx::query(sql)
        .fetch_one(pool)
        .await
        .with_context(|| sql.to_string())?;
    Ok(row.try_get(0)?)
}

/// Builds `bench_fts` from each searchable plugin's newest installable version (the newest
/// if all are yanked), as the search index shows it. The newest is the one with the highest
/// id: catalog-gen inserts versions oldest first.
async fn build_fts(pool: &PgPool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut connection = pool.acquire().await?;
    let statements = [
        "SET statement_timeout = 0",
        "SET maintenance_work_mem = '512MB'",
        "DROP TABLE IF EXISTS bench_fts",
        "CREATE TABLE bench_fts AS \
         SELECT plugin_id, name, description, tags, categories, \
                setweight(to_tsvector('simple', translate(name, '/-', '  ')), 'A') \
                || setweight(to_tsvector('simple', \
                       translate(array_to_string(tags, ' '), '-', ' ')), 'B') \
                || setweight(to_tsvector('simple', description), 'C') AS document \
         FROM ( \
             SELECT p.id AS plugin_id, n.name || '/' || p.name AS name, \
                    COALESCE(m.plugin ->> 'description', '') AS description, \
                    ARRAY(SELECT jsonb_array_elements_text(m.plugin -> 'tags')) AS tags, \
                    ARRAY(SELECT jsonb_array_elements_text(m.plugin -> 'categories')) \
                        AS categories \
             FROM (SELECT DISTINCT ON (plugin_id) plugin_id, id FROM versions \
                   ORDER BY plugin_id, yanked, id DESC) newest \
             JOIN versions v ON v.id = newest.id \
             JOIN plugins p ON p.id = newest.plugin_id \
             JOIN namespaces n ON n.id = p.namespace_id \
             CROSS JOIN LATERAL (SELECT v.manifest::jsonb -> 'plugin' AS plugin) m \
             WHERE n.private = 0 \
         ) searchable",
        "CREATE INDEX bench_fts_document ON bench_fts USING GIN (document)",
        "CREATE INDEX bench_fts_categories ON bench_fts USING GIN (categories)",
        "VACUUM ANALYZE bench_fts",
        "RESET maintenance_work_mem",
        &format!("SET statement_timeout = '{STATEMENT_TIMEOUT}'"),
    ];
    for statement in statements {
        connection
            .execute(sqlx::AssertSqlSafe(statement.to_string()))
            .await
            .with_context(|| statement.to_string())?;
    }
    Ok(started.elapsed())
}

/// One query of a set.
#[derive(Clone, Debug)]
struct BenchQuery {
    text: String,
    category: Option<&'static str>,
}

impl BenchQuery {
    fn tantivy(&self) -> SearchQuery {
        SearchQuery {
            text: self.text.clone(),
            category: self.category.map(str::to_string),
            limit: PAGE,
            ..SearchQuery::default()
        }
    }

    fn describe(&self) -> String {
        match self.category {
            Some(category) => format!("\"{}\" in {category}", self.text),
            None => format!("\"{}\"", self.text),
        }
    }
}

struct QuerySet {
    label: String,
    queries: Vec<BenchQuery>,
}

#[derive(Clone, Copy)]
enum Shape {
    OneWord,
    TwoWords,
    OneWordTypo,
    TwoWordsTypo,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Shape::OneWord => "one word",
            Shape::TwoWords => "two words",
            Shape::OneWordTypo => "one word, typo",
            Shape::TwoWordsTypo => "two words, typo",
        }
    }
}

fn query_sets(seed: u64, plugins: u64, per_set: usize) -> Vec<QuerySet> {
    let shapes = [
        Shape::OneWord,
        Shape::TwoWords,
        Shape::OneWordTypo,
        Shape::TwoWordsTypo,
    ];
    let mut sets = Vec::new();
    for (number, shape) in shapes.into_iter().enumerate() {
        for in_category in [false, true] {
            let mut rng = Rng::stream(
                seed,
                QUERY_STREAM,
                number as u64 * 2 + u64::from(in_category),
            );
            let mut queries = Vec::with_capacity(per_set);
            while queries.len() < per_set {
                let plugin = catalog::plugin_text(seed, rng.below(plugins));
                if let Some(text) = query_text(&plugin.keywords, shape, &mut rng) {
                    let category = in_category.then(|| rng.pick(&plugin.categories));
                    queries.push(BenchQuery { text, category });
                }
            }
            let label = match in_category {
                false => shape.label().to_string(),
                true => format!("{}, category", shape.label()),
            };
            sets.push(QuerySet { label, queries });
        }
    }
    sets
}

/// Words someone looking for the plugin with `keywords` would type, in `shape`; `None` when
/// the plugin has no word fit for it.
fn query_text(keywords: &[&'static str], shape: Shape, rng: &mut Rng) -> Option<String> {
    // A typo goes into a word of five letters or more: one letter less still leaves four,
    // the shortest word a search allows a typo in.
    let long: Vec<&str> = keywords.iter().copied().filter(|w| w.len() >= 5).collect();
    match shape {
        Shape::OneWord => Some(rng.pick(keywords).to_string()),
        Shape::TwoWords => {
            let (first, second) = two_of(keywords, rng)?;
            Some(format!("{first} {second}"))
        }
        Shape::OneWordTypo => {
            if long.is_empty() {
                return None;
            }
            let word = rng.pick(&long);
            typo(word, rng)
        }
        Shape::TwoWordsTypo => {
            if long.is_empty() {
                return None;
            }
            let misspelt = rng.pick(&long);
            let others: Vec<&str> = keywords
                .iter()
                .copied()
                .filter(|word| *word != misspelt)
                .collect();
            if others.is_empty() {
                return None;
            }
            let other = rng.pick(&others);
            let misspelt = typo(misspelt, rng)?;
            Some(match rng.chance(0.5) {
                true => format!("{misspelt} {other}"),
                false => format!("{other} {misspelt}"),
            })
        }
    }
}

fn two_of<'a>(words: &[&'a str], rng: &mut Rng) -> Option<(&'a str, &'a str)> {
    if words.len() < 2 {
        return None;
    }
    let first = rng.below(words.len() as u64) as usize;
    let second = (first + 1 + rng.below(words.len() as u64 - 1) as usize) % words.len();
    Some((words[first], words[second]))
}

/// `word` with one letter substituted, deleted, inserted or swapped with its neighbour, such
/// that the result is in no generated text.
fn typo(word: &str, rng: &mut Rng) -> Option<String> {
    let letters: Vec<char> = word.chars().collect();
    let random_letter = |rng: &mut Rng| (b'a' + rng.below(26) as u8) as char;
    for _ in 0..20 {
        let mut changed = letters.clone();
        let at = rng.below(letters.len() as u64) as usize;
        match rng.below(4) {
            0 => changed[at] = random_letter(rng),
            1 => {
                changed.remove(at);
            }
            2 => changed.insert(at, random_letter(rng)),
            _ if at + 1 < changed.len() => changed.swap(at, at + 1),
            _ => continue,
        }
        let changed: String = changed.into_iter().collect();
        if changed != word && changed.len() >= 4 && !catalog::vocabulary().knows(&changed) {
            return Some(changed);
        }
    }
    None
}

/// What one query returned.
#[derive(Clone, Copy, Default)]
struct Answer {
    hits: usize,
    /// All matches, when the engine counts them.
    total: Option<u64>,
}

/// One client's run.
#[derive(Default)]
struct Latency {
    durations: Vec<Duration>,
    hits: u64,
    totals: u64,
    counted: bool,
    empty: u64,
}

impl Latency {
    fn record(&mut self, took: Duration, answer: Answer) {
        self.durations.push(took);
        self.hits += answer.hits as u64;
        if let Some(total) = answer.total {
            self.totals += total;
            self.counted = true;
        }
        if answer.hits == 0 {
            self.empty += 1;
        }
    }

    fn percentile(&self, fraction: f64) -> Duration {
        let mut sorted = self.durations.clone();
        sorted.sort();
        let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn mean_hits(&self) -> f64 {
        self.hits as f64 / self.durations.len() as f64
    }

    fn mean_total(&self) -> Option<f64> {
        self.counted
            .then(|| self.totals as f64 / self.durations.len() as f64)
    }

    fn empty_share(&self) -> f64 {
        self.empty as f64 / self.durations.len() as f64
    }
}

/// One engine on one set: a client alone, then many at once.
struct Measurement {
    latency: Latency,
    queries_per_second: f64,
}

impl Measurement {
    fn line(&self) -> String {
        let total = match self.latency.mean_total() {
            Some(total) => format!(", {total:.0} matches"),
            None => String::new(),
        };
        format!(
            "p50 {}  p99 {}  {:>8.0} q/s  ({} runs, {:.1} hits{total}, {:.0}% empty)",
            millis(self.latency.percentile(0.5)),
            millis(self.latency.percentile(0.99)),
            self.queries_per_second,
            self.latency.durations.len(),
            self.latency.mean_hits(),
            self.latency.empty_share() * 100.0
        )
    }
}

/// How long a one-client run goes on: `budget`, and at least one pass over the set unless
/// that takes over four times as long.
fn keep_going(started: Instant, done: usize, set: usize, budget: Duration) -> bool {
    let elapsed = started.elapsed();
    elapsed < budget * 4 && (elapsed < budget || done < set)
}

/// A warm-up: up to a second or one pass, whichever ends first.
fn warming(started: Instant, done: usize, set: usize) -> bool {
    started.elapsed() < Duration::from_secs(1) && done < set
}

fn measure_tantivy(
    index: &SearchIndex,
    queries: &[SearchQuery],
    clients: usize,
    budget: Duration,
) -> anyhow::Result<Measurement> {
    let run = |query: &SearchQuery| -> anyhow::Result<Answer> {
        let results = index.search(query)?;
        Ok(Answer {
            hits: results.hits.len(),
            total: Some(results.total as u64),
        })
    };
    let started = Instant::now();
    let mut done = 0;
    while warming(started, done, queries.len()) {
        run(&queries[done % queries.len()])?;
        done += 1;
    }
    let mut latency = Latency::default();
    let started = Instant::now();
    while keep_going(started, latency.durations.len(), queries.len(), budget) {
        let query = &queries[latency.durations.len() % queries.len()];
        let began = Instant::now();
        let answer = run(query)?;
        latency.record(began.elapsed(), answer);
    }

    let completed = AtomicU64::new(0);
    let started = Instant::now();
    let deadline = started + budget;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..clients)
            .map(|client| {
                let completed = &completed;
                let run = &run;
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut next = client * queries.len() / clients;
                    while Instant::now() < deadline {
                        run(&queries[next % queries.len()])?;
                        completed.fetch_add(1, Ordering::Relaxed);
                        next += 1;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow!("a search thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(Measurement {
        latency,
        queries_per_second: completed.into_inner() as f64 / started.elapsed().as_secs_f64(),
    })
}

#[derive(Clone, Copy)]
enum Variant {
    /// The top 20 by rank.
    Top,
    /// The top 20 by rank and the number of matches.
    Counted,
}

impl Variant {
    fn sql(self, in_category: bool) -> &'static str {
        match (self, in_category) {
            (Variant::Top, false) => {
                "SELECT plugin_id, name, description, ts_rank(document, q) AS rank \
                 FROM bench_fts, websearch_to_tsquery('simple', $1) q \
                 WHERE document @@ q ORDER BY rank DESC, name LIMIT 20"
            }
            (Variant::Top, true) => {
                "SELECT plugin_id, name, description, ts_rank(document, q) AS rank \
                 FROM bench_fts, websearch_to_tsquery('simple', $1) q \
                 WHERE document @@ q AND categories @> ARRAY[$2::text] \
                 ORDER BY rank DESC, name LIMIT 20"
            }
            (Variant::Counted, false) => {
                "SELECT plugin_id, name, description, ts_rank(document, q) AS rank, \
                        count(*) OVER () AS total \
                 FROM bench_fts, websearch_to_tsquery('simple', $1) q \
                 WHERE document @@ q ORDER BY rank DESC, name LIMIT 20"
            }
            (Variant::Counted, true) => {
                "SELECT plugin_id, name, description, ts_rank(document, q) AS rank, \
                        count(*) OVER () AS total \
                 FROM bench_fts, websearch_to_tsquery('simple', $1) q \
                 WHERE document @@ q AND categories @> ARRAY[$2::text] \
                 ORDER BY rank DESC, name LIMIT 20"
            }
        }
    }
}

async fn postgres_query(
    pool: &PgPool,
    variant: Variant,
    query: &BenchQuery,
) -> anyhow::Result<Answer> {
    let mut statement = sqlx::query(variant.sql(query.category.is_some())).bind(&query.text);
    if let Some(category) = query.category {
        statement = statement.bind(category);
    }
    let rows = statement.fetch_all(pool).await?;
    let total = match variant {
        Variant::Top => None,
        Variant::Counted => Some(match rows.first() {
            Some(row) => row.try_get::<i64, _>("total")? as u64,
            None => 0,
        }),
    };
    Ok(Answer {
        hits: rows.len(),
        total,
    })
}

async fn measure_postgres(
    pool: &PgPool,
    variant: Variant,
    queries: &[BenchQuery],
    clients: usize,
    budget: Duration,
) -> anyhow::Result<Measurement> {
    let started = Instant::now();
    let mut done = 0;
    while warming(started, done, queries.len()) {
        postgres_query(pool, variant, &queries[done % queries.len()]).await?;
        done += 1;
    }
    let mut latency = Latency::default();
    let started = Instant::now();
    while keep_going(started, latency.durations.len(), queries.len(), budget) {
        let query = &queries[latency.durations.len() % queries.len()];
        let began = Instant::now();
        let answer = postgres_query(pool, variant, query).await?;
        latency.record(began.elapsed(), answer);
    }

    let queries: Arc<[BenchQuery]> = queries.into();
    let completed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + budget;
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (pool, queries, completed) =
                (pool.clone(), Arc::clone(&queries), Arc::clone(&completed));
            tokio::spawn(async move {
                let mut next = client * queries.len() / clients;
                while Instant::now() < deadline {
                    postgres_query(&pool, variant, &queries[next % queries.len()]).await?;
                    completed.fetch_add(1, Ordering::Relaxed);
                    next += 1;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(Measurement {
        latency,
        queries_per_second: completed.load(Ordering::Relaxed) as f64
            / started.elapsed().as_secs_f64(),
    })
}

fn print_tables(results: &[(String, Measurement, Measurement, Measurement)], clients: usize) {
    println!("\n### One client: latency p50 / p99\n");
    println!("| queries | tantivy | PostgreSQL | PostgreSQL + count |");
    println!("|---|---|---|---|");
    for (label, tantivy, postgres, counted) in results {
        println!(
            "| {label} | {} / {} | {} / {} | {} / {} |",
            millis(tantivy.latency.percentile(0.5)),
            millis(tantivy.latency.percentile(0.99)),
            millis(postgres.latency.percentile(0.5)),
            millis(postgres.latency.percentile(0.99)),
            millis(counted.latency.percentile(0.5)),
            millis(counted.latency.percentile(0.99)),
        );
    }
    println!("\n### {clients} clients: queries per second\n");
    println!(
        "| queries | tantivy | PostgreSQL | PostgreSQL + count | tantivy ÷ PostgreSQL | \
         tantivy ÷ PostgreSQL + count |"
    );
    println!("|---|---|---|---|---|---|");
    for (label, tantivy, postgres, counted) in results {
        println!(
            "| {label} | {:.0} | {:.0} | {:.0} | {} | {} |",
            tantivy.queries_per_second,
            postgres.queries_per_second,
            counted.queries_per_second,
            ratio(tantivy.queries_per_second / postgres.queries_per_second),
            ratio(tantivy.queries_per_second / counted.queries_per_second),
        );
    }
    println!("\n### What the queries found (one-client runs)\n");
    println!(
        "| queries | tantivy: hits, matches | PostgreSQL: hits | PostgreSQL + count: matches | \
         empty (tantivy / PostgreSQL) |"
    );
    println!("|---|---|---|---|---|");
    for (label, tantivy, postgres, counted) in results {
        println!(
            "| {label} | {:.1}, {:.0} | {:.1} | {:.0} | {:.0}% / {:.0}% |",
            tantivy.latency.mean_hits(),
            tantivy.latency.mean_total().unwrap_or(0.0),
            postgres.latency.mean_hits(),
            counted.latency.mean_total().unwrap_or(0.0),
            tantivy.latency.empty_share() * 100.0,
            postgres.latency.empty_share() * 100.0,
        );
    }
    println!(
        "\nHits are results returned (at most {PAGE}), matches all plugins matching, both \
         averaged over the queries run."
    );
}

fn ratio(ratio: f64) -> String {
    if ratio < 1.0 {
        format!("{ratio:.2}×")
    } else {
        format!("{ratio:.1}×")
    }
}

fn millis(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 10.0 {
        format!("{millis:.2} ms")
    } else {
        format!("{millis:.0} ms")
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// Waits (at most `limit`) until every segment file in `dir` belongs to a live segment for
/// five seconds in a row: no merge is writing a new segment.
async fn settle_merges(dir: &Path, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut quiet_since = Instant::now();
    while started.elapsed() < limit {
        if !merging(dir) {
            if quiet_since.elapsed() >= Duration::from_secs(5) {
                break;
            }
        } else {
            quiet_since = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    started.elapsed().saturating_sub(Duration::from_secs(5))
}

/// Whether `dir` holds files of a segment its `meta.json` does not list (being merged, or
/// merged away and not yet removed).
fn merging(dir: &Path) -> bool {
    let live: Vec<String> = std::fs::read_to_string(dir.join("meta.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|meta| {
            meta["segments"].as_array().map(|segments| {
                segments
                    .iter()
                    .filter_map(|segment| segment["segment_id"].as_str())
                    .map(|id| id.replace('-', ""))
                    .collect()
            })
        })
        .unwrap_or_default();
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (stem, _) = name.split_once('.')?;
            (stem.len() == 32 && stem.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| stem.to_string())
        })
        .any(|stem| !live.contains(&stem))
}

/// The index's live segments (from its `meta.json`) and the bytes of its directory.
fn index_files(dir: &Path) -> (usize, u64) {
    let segments = std::fs::read_to_string(dir.join("meta.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|meta| meta["segments"].as_array().map(Vec::len))
        .unwrap_or(0);
    let bytes = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    (segments, bytes)
}

/// This process's peak resident memory.
fn peak_memory() -> String {
    aerie_bench::peak_rss_kib().map_or_else(
        || "unknown".to_string(),
        |kilobytes| megabytes(kilobytes * 1000),
    )
}
