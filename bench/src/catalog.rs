//! Synthetic plugin catalogues for the search benchmarks.
//!
//! [`generate`] fills an empty registry database with rows written directly (no HTTP, no
//! packages): one publisher and a thousand reviewers, namespaces of skewed sizes (about one
//! per 20 plugins, 1% private), plugins with 1–4 versions whose manifests and READMEs read
//! like real ones, Zipf-like download counts and a few reviews on the popular plugins.
//!
//! Everything follows from the seed, and plugin `i`'s text from its own random stream
//! ([`plugin_text`]), so the search benchmark draws queries that match real plugins of the
//! catalogue without reading it back. The text is written from a fixed vocabulary of a few
//! thousand developer words ([`vocabulary`]), each word class drawn with a Zipf-like
//! distribution: a few words are in a large share of the plugins, most are rare.
//!
//! Generated versions keep one invariant the benchmark relies on: a plugin's versions are
//! inserted oldest first, so the highest version id is also the highest version.

mod words;

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use aerie_db::Backend;
use anyhow::{Context as _, bail};
use sqlx::any::AnyArguments;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyConnection, Arguments as _, Connection as _, Row as _};

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 1;

/// The catalogue's clock stops here (2026-11-01, UTC), so the same seed gives the same rows
/// whenever it runs.
const END_MILLIS: i64 = 1_793_491_200_000;
const DAY_MILLIS: i64 = 86_400_000;
/// Plugins were created over the three years before [`END_MILLIS`].
const SPAN_MILLIS: i64 = 3 * 365 * DAY_MILLIS;
/// Plugins per transaction.
const CHUNK_PLUGINS: u64 = 5_000;
/// Bound parameters per statement: under SQLite's limit (32,766) and PostgreSQL's (65,535).
const MAX_PARAMETERS: usize = 30_000;
/// Reviewer accounts; a prime, so that any stride below it visits each reviewer once.
const REVIEWERS: u64 = 997;

/// A small, fast random number generator (SplitMix64): the same seed gives the same numbers
/// on every platform and with every version of the dependencies.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The generator for item `index` of stream `stream` under `seed`: independent of the
    /// others, and reachable without drawing them.
    pub fn stream(seed: u64, stream: u64, index: u64) -> Rng {
        Rng::new(mix(seed ^ mix(stream ^ mix(index))))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// A number in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() <= p
    }

    /// One of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights`, each chosen in proportion to its weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&weight| u64::from(weight)).sum();
        let mut left = self.below(total);
        for (index, &weight) in weights.iter().enumerate() {
            if left < u64::from(weight) {
                return index;
            }
            left -= u64::from(weight);
        }
        weights.len() - 1
    }
}

/// SplitMix64's finaliser: a bijective scramble of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Streams of [`Rng::stream`]: one per kind of thing drawn.
mod streams {
    pub const PLUGIN: u64 = 1;
    pub const NAMESPACES: u64 = 2;
    pub const BRANDS: u64 = 3;
    pub const ROWS: u64 = 4;
}

/// A Zipf–Mandelbrot distribution over ranks `0..n`: rank `k` has weight
/// `1 / (k + 1 + shift)^exponent`.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, exponent: f64, shift: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|rank| {
                total += 1.0 / (rank as f64 + 1.0 + shift).powf(exponent);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = rng.unit() * total;
        self.cumulative
            .partition_point(|&sum| sum < target)
            .min(self.cumulative.len() - 1)
    }
}

/// One class of words, most common first, with its distribution.
struct WordList {
    words: Vec<&'static str>,
    zipf: Zipf,
}

impl WordList {
    fn new(words: Vec<&'static str>, exponent: f64, shift: f64) -> WordList {
        let zipf = Zipf::new(words.len(), exponent, shift);
        WordList { words, zipf }
    }

    fn draw(&self, rng: &mut Rng) -> &'static str {
        self.words[self.zipf.sample(rng)]
    }
}

/// The words catalogues are written from.
pub struct Vocabulary {
    nouns: WordList,
    tech: WordList,
    verbs: WordList,
    adjectives: WordList,
    brands: WordList,
    /// Every word any generated text can contain, lowercase.
    known: HashSet<String>,
}

/// The vocabulary, built on first use.
pub fn vocabulary() -> &'static Vocabulary {
    static VOCABULARY: LazyLock<Vocabulary> = LazyLock::new(Vocabulary::build);
    &VOCABULARY
}

/// How many brand-like words to make.
const BRANDS: usize = 2_000;

impl Vocabulary {
    fn build() -> Vocabulary {
        let mut seen: HashSet<&'static str> = HashSet::new();
        // A word in two lists belongs to the first.
        let mut list = |text: &'static str| -> Vec<&'static str> {
            text.split_whitespace()
                .filter(|word| seen.insert(word))
                .collect()
        };
        let nouns = list(words::NOUNS);
        let tech = list(words::TECH);
        let verbs = list(words::VERBS);
        let adjectives = list(words::ADJECTIVES);
        let syllables: Vec<&str> = words::SYLLABLES.split_whitespace().collect();

        let mut known: HashSet<String> = seen.iter().map(|word| word.to_string()).collect();
        let templates = words::OPENINGS
            .iter()
            .chain(words::CLAUSES)
            .chain(words::REVIEW_OPENINGS)
            .chain(README_WORDS);
        for template in templates {
            known.extend(tokens(template));
        }
        for (category, _) in words::CATEGORY_SHARES {
            known.extend(tokens(category));
        }
        for suffix in words::NAMESPACE_SUFFIXES {
            known.extend(tokens(suffix));
        }

        let mut rng = Rng::stream(0, streams::BRANDS, 0);
        let mut brands = Vec::with_capacity(BRANDS);
        while brands.len() < BRANDS {
            let parts = if rng.chance(0.2) { 3 } else { 2 };
            let mut brand: String = (0..parts).map(|_| rng.pick(&syllables)).collect();
            brand.push_str(rng.pick(words::BRAND_ENDINGS));
            if (4..=12).contains(&brand.len()) && !known.contains(&brand) {
                known.insert(brand.clone());
                // Kept for the life of the process, like the lists above.
                brands.push(&*brand.leak());
            }
        }
        Vocabulary {
            nouns: WordList::new(nouns, 1.0, 2.0),
            tech: WordList::new(tech, 1.0, 2.0),
            verbs: WordList::new(verbs, 1.0, 1.0),
            adjectives: WordList::new(adjectives, 1.0, 1.0),
            brands: WordList::new(brands, 0.8, 5.0),
            known,
        }
    }

    /// How many distinct topical words there are (nouns, products, verbs, adjectives, brands).
    pub fn len(&self) -> usize {
        [
            &self.nouns,
            &self.tech,
            &self.verbs,
            &self.adjectives,
            &self.brands,
        ]
        .iter()
        .map(|list| list.words.len())
        .sum()
    }

    /// Whether the vocabulary is empty (it never is).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether generated text can contain `word` (lowercase).
    pub fn knows(&self, word: &str) -> bool {
        self.known.contains(word)
    }

    /// The word for a template slot: `N`oun, `T`ech, `V`erb, `A`djective, `B`rand.
    fn slot(&self, class: char, rng: &mut Rng) -> &'static str {
        match class {
            'N' => self.nouns.draw(rng),
            'T' => self.tech.draw(rng),
            'V' => self.verbs.draw(rng),
            'A' => self.adjectives.draw(rng),
            _ => self.brands.draw(rng),
        }
    }

    /// Appends `template` with its slots filled to `out`, recording the slot words in
    /// `keywords` when given.
    fn fill(
        &self,
        template: &str,
        rng: &mut Rng,
        out: &mut String,
        mut keywords: Option<&mut Vec<&'static str>>,
    ) {
        for part in template.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            match part
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
            {
                Some(class) => {
                    let word = self.slot(class.chars().next().unwrap_or('N'), rng);
                    out.push_str(word);
                    if let Some(keywords) = keywords.as_deref_mut() {
                        keywords.push(word);
                    }
                }
                None => out.push_str(part),
            }
        }
    }

    /// A sentence of `min_words` or more: an opening and clauses, capitalised.
    fn sentence(
        &self,
        rng: &mut Rng,
        min_words: usize,
        mut keywords: Option<&mut Vec<&'static str>>,
    ) -> String {
        let mut text = String::new();
        self.fill(
            rng.pick(words::OPENINGS),
            rng,
            &mut text,
            keywords.as_deref_mut(),
        );
        while text.split(' ').count() < min_words {
            self.fill(
                rng.pick(words::CLAUSES),
                rng,
                &mut text,
                keywords.as_deref_mut(),
            );
        }
        capitalise(&text)
    }
}

/// The fixed words READMEs add around the generated text.
const README_WORDS: &[&str] = &["Configuration Usage"];

/// The lowercase words of `text`, as search engines cut them (outside `{slots}`).
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '{' && c != '}')
        .filter(|token| !token.is_empty() && !token.starts_with('{'))
        .map(str::to_ascii_lowercase)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// What a plugin says about itself: the same in each of its versions.
#[derive(Clone, Debug)]
pub struct PluginText {
    /// The name within its namespace, before any suffix that keeps it unique there.
    pub name: String,
    /// One line, 8–25 words or a few more.
    pub description: String,
    /// 1–5 tags.
    pub tags: Vec<&'static str>,
    /// 1–2 categories from the manifest's list.
    pub categories: Vec<&'static str>,
    /// An SPDX license expression.
    pub license: &'static str,
    /// The vocabulary words of the name, tags and description, each once: what someone
    /// looking for this plugin would type.
    pub keywords: Vec<&'static str>,
    /// One to three short paragraphs of Markdown.
    pub readme: String,
}

/// Name shapes with their share of plugins, in percent.
const NAME_SHAPES: &[(&str, u32)] = &[
    ("T-N", 30),
    ("N-N", 14),
    ("V-T", 11),
    ("V-N", 10),
    ("T-N-N", 9),
    ("T-T-N", 5),
    ("N", 5),
    ("T", 4),
    ("T-V-N", 5),
    ("B-N", 5),
    ("A-N", 2),
];

/// Plugin `index`'s text in the catalogue made from `seed`.
pub fn plugin_text(seed: u64, index: u64) -> PluginText {
    let vocabulary = vocabulary();
    let mut rng = Rng::stream(seed, streams::PLUGIN, index);
    let mut keywords: Vec<&'static str> = Vec::new();

    let shape_weights: Vec<u32> = NAME_SHAPES.iter().map(|(_, weight)| *weight).collect();
    let shape = NAME_SHAPES[rng.weighted(&shape_weights)].0;
    let mut name_words: Vec<&'static str> = Vec::new();
    for class in shape.split('-') {
        let class = class.chars().next().unwrap_or('N');
        // A word at most once in a name: draw again (a few times) on a repeat.
        let mut word = vocabulary.slot(class, &mut rng);
        for _ in 0..4 {
            if !name_words.contains(&word) {
                break;
            }
            word = vocabulary.slot(class, &mut rng);
        }
        if !name_words.contains(&word) {
            name_words.push(word);
        }
    }
    let name = name_words.join("-");
    keywords.extend(&name_words);

    let mut tags: Vec<&'static str> = Vec::new();
    let tag_count = 1 + rng.weighted(&[15, 25, 30, 20, 10]);
    if rng.chance(0.7) {
        tags.push(name_words[0]);
    }
    for _ in 0..tag_count * 3 {
        if tags.len() >= tag_count {
            break;
        }
        let class = rng.pick(&['N', 'N', 'T', 'T', 'V']);
        let tag = vocabulary.slot(class, &mut rng);
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }

    let mut description_words = Vec::new();
    let length = rng.between(8, 25) as usize;
    let description = vocabulary.sentence(&mut rng, length, Some(&mut description_words));

    for word in tags.iter().chain(&description_words) {
        if !keywords.contains(word) {
            keywords.push(word);
        }
    }

    let category_weights: Vec<u32> = words::CATEGORY_SHARES.iter().map(|(_, w)| *w).collect();
    let mut categories = vec![words::CATEGORY_SHARES[rng.weighted(&category_weights)].0];
    if rng.chance(0.3) {
        let second = words::CATEGORY_SHARES[rng.weighted(&category_weights)].0;
        if second != categories[0] {
            categories.push(second);
        }
    }
    let license_weights: Vec<u32> = words::LICENSES.iter().map(|(_, w)| *w).collect();
    let license = words::LICENSES[rng.weighted(&license_weights)].0;

    let mut readme = format!("# {name}\n\n{description}.\n");
    let paragraphs = 1 + rng.weighted(&[45, 35, 20]);
    for paragraph in 0..paragraphs {
        if paragraph == 1 {
            readme.push_str("\n## Configuration\n");
        } else if paragraph == 2 {
            readme.push_str("\n## Usage\n");
        }
        readme.push('\n');
        for _ in 0..rng.between(1, 3) {
            let min_words = rng.between(6, 14) as usize;
            readme.push_str(&vocabulary.sentence(&mut rng, min_words, None));
            readme.push_str(". ");
        }
        readme.pop();
        readme.push('\n');
    }

    PluginText {
        name,
        description,
        tags,
        categories,
        license,
        keywords,
        readme,
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Users (one publisher and the reviewers).
    pub users: u64,
    /// Namespaces.
    pub namespaces: u64,
    /// Plugins.
    pub plugins: u64,
    /// Versions.
    pub versions: u64,
    /// Rows of daily download counts.
    pub download_rows: u64,
    /// Reviews.
    pub reviews: u64,
    /// Bytes of manifests and READMEs written.
    pub text_bytes: u64,
    /// Time taken, migrations included.
    pub elapsed: Duration,
}

struct NamespaceRow {
    id: i64,
    name: String,
    private: i64,
    created_at: i64,
}

struct PluginRow {
    id: i64,
    namespace_id: i64,
    name: String,
    created_at: i64,
    updated_at: i64,
}

struct VersionRow {
    id: i64,
    plugin_id: i64,
    version: String,
    digest: String,
    size: i64,
    manifest: String,
    readme: String,
    published_at: i64,
    yanked: i64,
}

struct ReviewRow {
    id: i64,
    plugin_id: i64,
    user_id: i64,
    stars: i64,
    body: String,
    at: i64,
}

/// The rows of a run of consecutive plugins, written in one transaction.
#[derive(Default)]
struct Chunk {
    namespaces: Vec<NamespaceRow>,
    plugins: Vec<PluginRow>,
    versions: Vec<VersionRow>,
    downloads: Vec<(i64, i64, i64)>,
    reviews: Vec<ReviewRow>,
    text_bytes: u64,
}

/// Writes plugin rows in order, keeping what spans plugins: the namespace being filled, the
/// names taken in it, the next ids.
struct RowWriter {
    seed: u64,
    first_reviewer_id: i64,
    next_plugin: u64,
    namespace_rng: Rng,
    namespace_names: HashSet<String>,
    namespace_id: i64,
    namespace_name: String,
    left_in_namespace: u64,
    names_in_namespace: HashSet<String>,
    next_version_id: i64,
    next_review_id: i64,
}

impl RowWriter {
    fn new(seed: u64, publisher_id: i64) -> RowWriter {
        RowWriter {
            seed,
            first_reviewer_id: publisher_id + 1,
            next_plugin: 0,
            namespace_rng: Rng::stream(seed, streams::NAMESPACES, 0),
            namespace_names: HashSet::new(),
            namespace_id: 0,
            namespace_name: String::new(),
            left_in_namespace: 0,
            names_in_namespace: HashSet::new(),
            next_version_id: 1,
            next_review_id: 1,
        }
    }

    fn chunk(&mut self, end: u64) -> Chunk {
        let mut chunk = Chunk::default();
        while self.next_plugin < end {
            if self.left_in_namespace == 0 {
                chunk.namespaces.push(self.next_namespace());
            }
            self.left_in_namespace -= 1;
            self.plugin(&mut chunk);
            self.next_plugin += 1;
        }
        chunk
    }

    /// A new publisher: sizes are skewed (most publish a few plugins, a few publish
    /// hundreds), about 20 plugins on average.
    fn next_namespace(&mut self) -> NamespaceRow {
        let rng = &mut self.namespace_rng;
        let vocabulary = vocabulary();
        self.left_in_namespace = match rng.weighted(&[650, 270, 75, 5]) {
            0 => rng.between(1, 8),
            1 => rng.between(9, 40),
            2 => rng.between(41, 150),
            _ => rng.between(151, 800),
        };
        let mut name = String::new();
        for attempt in 0.. {
            name = if rng.chance(0.85) {
                vocabulary.brands.draw(rng).to_string()
            } else {
                format!(
                    "{}-{}",
                    vocabulary.brands.draw(rng),
                    vocabulary.tech.draw(rng)
                )
            };
            name.push_str(rng.pick(words::NAMESPACE_SUFFIXES));
            if attempt >= 8 {
                name = format!("{name}-{}", self.namespace_id + 1);
            }
            if !self.namespace_names.contains(&name) {
                break;
            }
        }
        self.namespace_names.insert(name.clone());
        self.namespace_id += 1;
        self.namespace_name = name.clone();
        self.names_in_namespace.clear();
        NamespaceRow {
            id: self.namespace_id,
            name,
            private: i64::from(rng.chance(0.01)),
            created_at: END_MILLIS - SPAN_MILLIS - rng.below(30) as i64 * DAY_MILLIS,
        }
    }

    fn plugin(&mut self, chunk: &mut Chunk) {
        let index = self.next_plugin;
        let text = plugin_text(self.seed, index);
        let mut rng = Rng::stream(self.seed, streams::ROWS, index);
        let plugin_id = index as i64 + 1;

        let mut name = text.name.clone();
        let mut suffix = 2;
        while !self.names_in_namespace.insert(name.clone()) {
            name = format!("{}-{suffix}", text.name);
            suffix += 1;
        }
        let full_name = format!("{}/{name}", self.namespace_name);

        let created_at =
            END_MILLIS - SPAN_MILLIS + rng.below((SPAN_MILLIS - DAY_MILLIS) as u64) as i64;
        let count = 1 + rng.weighted(&[50, 25, 15, 10]);
        let updated_at = if count == 1 {
            created_at
        } else {
            created_at + rng.below((END_MILLIS - created_at) as u64) as i64
        };
        chunk.plugins.push(PluginRow {
            id: plugin_id,
            namespace_id: self.namespace_id,
            name,
            created_at,
            updated_at,
        });

        // Zipf-like downloads: half the plugins have under about 6, a few hundred in a
        // million have over 10,000, a handful millions.
        let downloads = (3.0 * rng.unit().powf(-1.1)).min(5e7) as i64;
        let mut version = first_version(&mut rng);
        let mut left = downloads;
        for number in 0..count {
            if number > 0 {
                version = next_version(&version, &mut rng);
            }
            let published_at = if count == 1 {
                created_at
            } else {
                created_at + (updated_at - created_at) * number as i64 / (count as i64 - 1)
            };
            let version_text = format!("{}.{}.{}", version.0, version.1, version.2);
            let manifest = manifest(&full_name, &version_text, &text, &mut rng);
            let version_id = self.next_version_id;
            self.next_version_id += 1;
            chunk.text_bytes += (manifest.len() + text.readme.len()) as u64;
            chunk.versions.push(VersionRow {
                id: version_id,
                plugin_id,
                version: version_text,
                digest: format!(
                    "sha256:{:016x}{:016x}{:016x}{:016x}",
                    rng.next_u64(),
                    rng.next_u64(),
                    rng.next_u64(),
                    rng.next_u64()
                ),
                size: (30_000.0 * rng.unit().powf(-0.7)).min(2e7) as i64,
                manifest,
                readme: text.readme.clone(),
                published_at,
                yanked: i64::from(rng.chance(0.03)),
            });
            // The newest version has most of the downloads.
            let share = if number + 1 == count {
                left
            } else {
                left * rng.between(5, 40) as i64 / 100
            };
            left -= share;
            add_download_days(chunk, version_id, published_at, share, &mut rng);
        }

        let rated = 0.02 + downloads as f64 / 25_000.0;
        if rng.chance(rated.min(0.6)) {
            let reviews = 1 + rng.below((1 + downloads as u64 / 300).min(40));
            let start = rng.below(REVIEWERS);
            let stride = rng.between(1, REVIEWERS - 1);
            for number in 0..reviews {
                let reviewer = (start + number * stride) % REVIEWERS;
                let mut body = String::new();
                vocabulary().fill(rng.pick(words::REVIEW_OPENINGS), &mut rng, &mut body, None);
                body.push('.');
                let at = created_at + rng.below((END_MILLIS - created_at) as u64) as i64;
                chunk.reviews.push(ReviewRow {
                    id: self.next_review_id,
                    plugin_id,
                    user_id: self.first_reviewer_id + reviewer as i64,
                    stars: 1 + rng.weighted(&[5, 5, 12, 30, 48]) as i64,
                    body,
                    at,
                });
                self.next_review_id += 1;
            }
        }
    }
}

type Semver = (u64, u64, u64);

fn first_version(rng: &mut Rng) -> Semver {
    let major = match rng.weighted(&[55, 40, 5]) {
        0 => 0,
        1 => 1,
        _ => 2,
    };
    (major, rng.below(10), rng.below(10))
}

fn next_version(&(major, minor, patch): &Semver, rng: &mut Rng) -> Semver {
    match rng.weighted(&[60, 30, 10]) {
        0 => (major, minor, patch + 1 + rng.below(3)),
        1 => (major, minor + 1, 0),
        _ => (major + 1, 0, 0),
    }
}

/// `downloads` spread over one to three days between `published_at` and the end.
fn add_download_days(
    chunk: &mut Chunk,
    version_id: i64,
    published_at: i64,
    downloads: i64,
    rng: &mut Rng,
) {
    if downloads <= 0 {
        return;
    }
    let first_day = published_at / DAY_MILLIS;
    let last_day = END_MILLIS / DAY_MILLIS - 1;
    let mut days: Vec<i64> = Vec::new();
    for _ in 0..rng.between(1, 3) {
        let day = last_day - rng.below((last_day - first_day).max(0) as u64 + 1) as i64;
        if !days.contains(&day) {
            days.push(day);
        }
    }
    let mut left = downloads;
    for (number, &day) in days.iter().enumerate() {
        let count = if number + 1 == days.len() {
            left
        } else {
            left * rng.between(20, 80) as i64 / 100
        };
        left -= count;
        if count > 0 {
            chunk.downloads.push((version_id, day, count));
        }
    }
}

/// The manifest as the registry stores it: the validated `aerie.toml`, as JSON.
fn manifest(name: &str, version: &str, text: &PluginText, rng: &mut Rng) -> String {
    let namespace = name.split('/').next().unwrap_or(name);
    let outbound: Vec<String> = match rng.weighted(&[40, 40, 20]) {
        0 => Vec::new(),
        1 => vec![format!("api.{}.com", text.keywords[0])],
        _ => vec![
            format!("api.{}.com", text.keywords[0]),
            format!("*.{namespace}.dev"),
        ],
    };
    let secrets: Vec<String> = if outbound.is_empty() {
        Vec::new()
    } else {
        vec![format!("{}_token", text.keywords[0]).to_ascii_uppercase()]
    };
    serde_json::json!({
        "plugin": {
            "name": name,
            "version": version,
            "description": text.description,
            "license": text.license,
            "authors": [format!("{namespace} maintainers")],
            "repository": format!("https://git.example.com/{name}"),
            "categories": text.categories,
            "tags": text.tags,
            "api": "^0.1",
        },
        "permissions": {
            "outbound": outbound,
            "secrets": secrets,
            "services": [],
            "keyvalue": rng.chance(0.3),
        },
        "dependencies": {},
        "provides": {
            "services": [],
            "routes": [{ "path": "/*", "methods": [], "guard": "public" }],
        },
    })
    .to_string()
}

/// Fills the empty registry at `database_url` (`sqlite://PATH` or `postgres://...`; the
/// migrations run first) with `plugins` plugins drawn from `seed`, printing progress.
pub async fn generate(database_url: &str, plugins: u64, seed: u64) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let database = aerie_db::Database::connect(database_url)
        .await
        .with_context(|| format!("connecting to {database_url}"))?;
    let backend = database.backend();
    database.close().await;

    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?;
    let mut connection = pool.acquire().await?;
    if backend == Backend::Sqlite {
        sqlx::query("PRAGMA synchronous = OFF")
            .execute(&mut *connection)
            .await?;
    }
    let existing: i64 = sqlx::query("SELECT COUNT(*) FROM namespaces")
        .fetch_one(&mut *connection)
        .await?
        .try_get(0)?;
    if existing > 0 {
        bail!("the database already holds {existing} namespaces; catalogues go into empty ones");
    }
    let publisher_id: i64 =
        sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) + 1 FROM users")
            .fetch_one(&mut *connection)
            .await?
            .try_get(0)?;

    let mut summary = Summary {
        users: 1 + REVIEWERS,
        ..Summary::default()
    };
    write_users(&mut connection, backend, publisher_id).await?;

    // Rows are made on a thread of their own while the previous chunk is written.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Chunk>(2);
    let maker = std::thread::spawn(move || {
        let mut writer = RowWriter::new(seed, publisher_id);
        let mut start = 0;
        while start < plugins {
            let end = (start + CHUNK_PLUGINS).min(plugins);
            if sender.blocking_send(writer.chunk(end)).is_err() {
                return;
            }
            start = end;
        }
    });

    let mut reported = Instant::now();
    while let Some(chunk) = receiver.recv().await {
        summary.namespaces += chunk.namespaces.len() as u64;
        summary.plugins += chunk.plugins.len() as u64;
        summary.versions += chunk.versions.len() as u64;
        summary.download_rows += chunk.downloads.len() as u64;
        summary.reviews += chunk.reviews.len() as u64;
        summary.text_bytes += chunk.text_bytes;
        write_chunk(&mut connection, backend, publisher_id, chunk).await?;
        if reported.elapsed() >= Duration::from_secs(5) || summary.plugins == plugins {
            reported = Instant::now();
            eprintln!(
                "  {:>9} / {plugins} plugins, {:>9} versions  ({:.1} s)",
                summary.plugins,
                summary.versions,
                started.elapsed().as_secs_f64()
            );
        }
    }
    maker
        .join()
        .map_err(|_| anyhow::anyhow!("the row maker panicked"))?;

    if backend == Backend::Postgres {
        for table in ["users", "namespaces", "plugins", "versions", "reviews"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 (SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )))
            .execute(&mut *connection)
            .await?;
        }
    }
    sqlx::query("ANALYZE").execute(&mut *connection).await?;
    drop(connection);
    pool.close().await;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

async fn write_users(
    connection: &mut AnyConnection,
    backend: Backend,
    publisher_id: i64,
) -> sqlx::Result<()> {
    let created_at = END_MILLIS - SPAN_MILLIS - 60 * DAY_MILLIS;
    let users = (0..=REVIEWERS).map(|number| {
        let username = if number == 0 {
            "catalog-publisher".to_string()
        } else {
            format!("catalog-reviewer-{number}")
        };
        (publisher_id + number as i64, username)
    });
    let mut transaction = connection.begin().await?;
    insert(
        &mut transaction,
        backend,
        "INSERT INTO users (id, username, email, password_hash, is_admin, created_at) ",
        6,
        users,
        |row, (id, username)| {
            row.bind(id)
                .bind(format!("{username}@example.com"))
                .bind(username)
                // No password hash verifies against this: the accounts cannot sign in.
                .bind("!")
                .bind(0i64)
                .bind(created_at);
        },
    )
    .await?;
    transaction.commit().await
}

async fn write_chunk(
    connection: &mut AnyConnection,
    backend: Backend,
    publisher_id: i64,
    chunk: Chunk,
) -> sqlx::Result<()> {
    let mut transaction = connection.begin().await?;
    let owners: Vec<i64> = chunk.namespaces.iter().map(|row| row.id).collect();
    insert(
        &mut transaction,
        backend,
        "INSERT INTO namespaces (id, name, require_signature, private, created_at) ",
        5,
        chunk.namespaces,
        |row, namespace| {
            row.bind(namespace.id)
                .bind(namespace.name)
                .bind(0i64)
                .bind(namespace.private)
                .bind(namespace.created_at);
        },
    )
    .await?;
    insert(
        &mut transaction,
        backend,
        "INSERT INTO namespace_members (namespace_id, user_id, role) ",
        3,
        owners,
        |row, namespace_id| {
            row.bind(namespace_id).bind(publisher_id).bind("owner");
        },
    )
    .await?;
    insert(
        &mut transaction,
        backend,
        "INSERT INTO plugins (id, namespace_id, name, created_at, updated_at) ",
        5,
        chunk.plugins,
        |row, plugin| {
            row.bind(plugin.id)
                .bind(plugin.namespace_id)
                .bind(plugin.name)
                .bind(plugin.created_at)
                .bind(plugin.updated_at);
        },
    )
    .await?;
    insert(
        &mut transaction,
        backend,
        "INSERT INTO versions (id, plugin_id, version, digest, size, manifest, readme, \
         publisher_id, published_at, yanked) ",
        10,
        chunk.versions,
        |row, version| {
            row.bind(version.id)
                .bind(version.plugin_id)
                .bind(version.version)
                .bind(version.digest)
                .bind(version.size)
                .bind(version.manifest)
                .bind(version.readme)
                .bind(publisher_id)
                .bind(version.published_at)
                .bind(version.yanked);
        },
    )
    .await?;
    insert(
        &mut transaction,
        backend,
        "INSERT INTO download_counts (version_id, day, count) ",
        3,
        chunk.downloads,
        |row, (version_id, day, count)| {
            row.bind(version_id).bind(day).bind(count);
        },
    )
    .await?;
    insert(
        &mut transaction,
        backend,
        "INSERT INTO reviews (id, plugin_id, user_id, stars, body, created_at, updated_at) ",
        7,
        chunk.reviews,
        |row, review| {
            row.bind(review.id)
                .bind(review.plugin_id)
                .bind(review.user_id)
                .bind(review.stars)
                .bind(review.body)
                .bind(review.at)
                .bind(review.at);
        },
    )
    .await?;
    transaction.commit().await
}

/// Inserts `rows` with as many rows per statement as the parameter limit allows.
///
/// The statement is written here, with each back end's placeholders (the `Any` driver's query
/// builder writes `?`, which PostgreSQL does not read).
async fn insert<R>(
    connection: &mut AnyConnection,
    backend: Backend,
    head: &'static str,
    columns: usize,
    rows: impl IntoIterator<Item = R>,
    mut bind: impl FnMut(&mut RowValues, R),
) -> sqlx::Result<()> {
    let per_statement = MAX_PARAMETERS / columns;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = format!("{head}VALUES ");
        let mut values = RowValues::default();
        for (number, row) in rows.by_ref().take(per_statement).enumerate() {
            if number > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                match backend {
                    Backend::Postgres => {
                        sql.push('$');
                        sql.push_str(&(number * columns + column + 1).to_string());
                    }
                    // SQLite reads `$N` too, but as a name, looked up one by one: slow.
                    Backend::Sqlite => sql.push('?'),
                }
            }
            sql.push(')');
            bind(&mut values, row);
        }
        sqlx::query_with(sqlx::AssertSqlSafe(sql), values.arguments)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// The values of the rows of one statement, bound in column order.
#[derive(Default)]
struct RowValues {
    arguments: AnyArguments,
}

impl RowValues {
    fn bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: sqlx::Encode<'t, Any> + sqlx::Type<Any>,
    {
        self.arguments
            .add(value)
            .expect("integers and text always encode");
        self
    }
}
