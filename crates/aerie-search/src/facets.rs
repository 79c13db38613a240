//! Facet counts over the matches, by ordinal.
//!
//! tantivy's `FacetCollector` turns every facet ordinal seen into its label through the
//! segment's compressed dictionary on each query, and reads each document's ordinals from a
//! compressed column; at a million plugins that is most of a search's time. Segments never
//! change, so each segment's labels and ordinals per document are read once into plain arrays
//! here, and a query only counts.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::index::SegmentId;
use tantivy::schema::Facet;
use tantivy::{DocId, Score, SegmentReader};

/// Bits of an entry's ordinal; the bits above say which field it belongs to.
const ORD_BITS: u32 = 28;

/// The facet fields of one segment, read once.
pub(crate) struct SegmentFacets {
    /// Per field, labels by ordinal.
    labels: Vec<Vec<String>>,
    /// Where each document's entries start in `entries`; one more than there are documents.
    starts: Vec<u32>,
    /// Every document's ordinals of every field, one document after the other, each with its
    /// field's position above [`ORD_BITS`]: a document's facets are side by side in memory,
    /// read at the cost of one or two cache misses.
    entries: Vec<u32>,
}

impl SegmentFacets {
    fn read(reader: &SegmentReader, names: &[&str]) -> tantivy::Result<SegmentFacets> {
        let mut labels = Vec::with_capacity(names.len());
        let mut readers = Vec::with_capacity(names.len());
        for name in names {
            let facets = reader.facet_reader(name)?;
            let mut field_labels = Vec::with_capacity(facets.num_facets());
            let mut terms = facets.facet_dict().stream()?;
            while terms.advance() {
                let facet = Facet::from_encoded(terms.key().to_vec()).map_err(|err| {
                    tantivy::TantivyError::InvalidArgument(format!("a facet label: {err}"))
                })?;
                field_labels.push(
                    facet
                        .to_path()
                        .last()
                        .map(|part| part.to_string())
                        .unwrap_or_default(),
                );
            }
            if field_labels.len() >= 1 << ORD_BITS {
                return Err(tantivy::TantivyError::InvalidArgument(format!(
                    "facet {name}: {} values in one segment",
                    field_labels.len()
                )));
            }
            labels.push(field_labels);
            readers.push(facets);
        }
        let documents = reader.max_doc();
        let mut starts = Vec::with_capacity(documents as usize + 1);
        let mut entries = Vec::with_capacity(documents as usize * names.len());
        for doc in 0..documents {
            starts.push(entries.len() as u32);
            for (position, facets) in readers.iter().enumerate() {
                let field = (position as u32) << ORD_BITS;
                entries.extend(facets.facet_ords(doc).map(|ord| field | ord as u32));
            }
        }
        starts.push(entries.len() as u32);
        Ok(SegmentFacets {
            labels,
            starts,
            entries,
        })
    }
}

/// Each segment's facets, read on first use.
#[derive(Default)]
pub(crate) struct FacetCache {
    by_segment: Mutex<FxHashMap<SegmentId, Arc<SegmentFacets>>>,
}

impl FacetCache {
    /// The facets named `names` (always the same) in `reader`'s segment.
    fn facets(
        &self,
        reader: &SegmentReader,
        names: &[&str],
    ) -> tantivy::Result<Arc<SegmentFacets>> {
        let key = reader.segment_id();
        if let Some(facets) = self.lock().get(&key) {
            return Ok(Arc::clone(facets));
        }
        let facets = Arc::new(SegmentFacets::read(reader, names)?);
        self.lock().insert(key, Arc::clone(&facets));
        Ok(facets)
    }

    /// Forgets the segments not in `live` (merged away).
    pub(crate) fn retain(&self, live: &HashSet<SegmentId>) {
        self.lock().retain(|segment, _| live.contains(segment));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<SegmentId, Arc<SegmentFacets>>> {
        self.by_segment
            .lock()
            .unwrap_or_else(|err| err.into_inner())
    }
}

/// Counts per label of each facet field, over the documents a [`Tally`] counts.
pub(crate) struct FacetCounter<'a> {
    pub(crate) cache: &'a FacetCache,
    /// The facet fields' names in the schema.
    pub(crate) names: Vec<&'a str>,
    /// Labels kept per field, the most frequent.
    pub(crate) most: usize,
}

/// Per field, the most frequent labels with their counts, most frequent first (equal
/// counts in label order).
pub(crate) type LabelCounts = Vec<Vec<(String, u64)>>;

impl FacetCounter<'_> {
    fn for_segment(&self, reader: &SegmentReader) -> tantivy::Result<SegmentFacetCounter> {
        let facets = self.cache.facets(reader, &self.names)?;
        let counts = facets
            .labels
            .iter()
            .map(|labels| vec![0u32; labels.len()])
            .collect();
        Ok(SegmentFacetCounter { facets, counts })
    }

    fn merge(&self, segments: Vec<SegmentFacetCounter>) -> LabelCounts {
        let mut merged: Vec<FxHashMap<&str, u64>> = vec![FxHashMap::default(); self.names.len()];
        for segment in &segments {
            for ((into, labels), counts) in merged
                .iter_mut()
                .zip(&segment.facets.labels)
                .zip(&segment.counts)
            {
                for (ord, &count) in counts.iter().enumerate() {
                    if count > 0 {
                        *into.entry(labels[ord].as_str()).or_default() += u64::from(count);
                    }
                }
            }
        }
        merged
            .into_iter()
            .map(|counts| {
                let mut counts: Vec<(&str, u64)> = counts.into_iter().collect();
                let order = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then(a.0.cmp(b.0));
                if counts.len() > self.most {
                    counts.select_nth_unstable_by(self.most, order);
                    counts.truncate(self.most);
                }
                counts.sort_unstable_by(order);
                counts
                    .into_iter()
                    .map(|(label, count)| (label.to_string(), count))
                    .collect()
            })
            .collect()
    }
}

/// [`FacetCounter`] within one segment: the count of each ordinal, per field.
pub(crate) struct SegmentFacetCounter {
    facets: Arc<SegmentFacets>,
    counts: Vec<Vec<u32>>,
}

impl SegmentFacetCounter {
    fn count(&mut self, doc: DocId) {
        self.count_block(&[doc]);
    }

    /// Counts the facets of `docs` (at most a collector block): where each document's entries
    /// lie first, then the entries. Matches are scattered over the segment, so each read
    /// misses the cache; reading a block's positions together lets the processor wait for
    /// those misses at once instead of one after another.
    fn count_block(&mut self, docs: &[DocId]) {
        let mut ranges = [(0u32, 0u32); tantivy::COLLECT_BLOCK_BUFFER_LEN];
        for (range, &doc) in ranges.iter_mut().zip(docs) {
            let doc = doc as usize;
            *range = (self.facets.starts[doc], self.facets.starts[doc + 1]);
        }
        for &(start, end) in &ranges[..docs.len().min(ranges.len())] {
            for &entry in &self.facets.entries[start as usize..end as usize] {
                let field = (entry >> ORD_BITS) as usize;
                let ord = (entry & ((1 << ORD_BITS) - 1)) as usize;
                self.counts[field][ord] += 1;
            }
        }
    }
}

/// Counts matches with their facets, exactly up to `limit` matches; past it, counting stops
/// (a broad query at a million plugins matches hundreds of thousands) and the tally says so.
pub(crate) struct Tally<'a> {
    pub(crate) facets: FacetCounter<'a>,
    pub(crate) limit: u32,
    pub(crate) seen: std::sync::atomic::AtomicU32,
}

/// What a [`Tally`] counted.
pub(crate) struct TallyFruit {
    /// Matches counted.
    pub(crate) matches: u32,
    /// Whether every match was counted.
    pub(crate) exhaustive: bool,
    /// Facet counts over the matches counted.
    pub(crate) facets: LabelCounts,
}

/// [`Tally`] within one segment.
pub(crate) struct SegmentTally {
    facets: SegmentFacetCounter,
    matches: u32,
    exhaustive: bool,
}

impl SegmentCollector for SegmentTally {
    type Fruit = SegmentTally;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.matches += 1;
        self.facets.count(doc);
    }

    fn harvest(self) -> SegmentTally {
        self
    }
}

impl Collector for Tally<'_> {
    type Fruit = TallyFruit;
    type Child = SegmentTally;

    fn for_segment(
        &self,
        _segment_ord: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTally> {
        Ok(SegmentTally {
            facets: self.facets.for_segment(reader)?,
            matches: 0,
            exhaustive: true,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<SegmentTally>) -> tantivy::Result<TallyFruit> {
        let matches = fruits.iter().map(|fruit| fruit.matches).sum();
        let exhaustive = fruits.iter().all(|fruit| fruit.exhaustive);
        let facets = self
            .facets
            .merge(fruits.into_iter().map(|fruit| fruit.facets).collect());
        Ok(TallyFruit {
            matches,
            exhaustive,
            facets,
        })
    }

    fn collect_segment(
        &self,
        weight: &dyn tantivy::query::Weight,
        segment_ord: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTally> {
        use std::sync::atomic::Ordering;
        use tantivy::DocSet as _;
        let mut tally = self.for_segment(segment_ord, reader)?;
        let budget = self.limit.saturating_sub(self.seen.load(Ordering::Relaxed));
        let mut scorer = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        // Documents a block at a time: postings are decoded so, and a call per document costs.
        let mut docs = [0; tantivy::COLLECT_BLOCK_BUFFER_LEN];
        loop {
            let filled = scorer.fill_buffer(&mut docs);
            let mut live = 0;
            for index in 0..filled {
                if alive.is_none_or(|alive| alive.is_alive(docs[index])) {
                    docs[live] = docs[index];
                    live += 1;
                }
            }
            let room = (budget - tally.matches) as usize;
            let counted = live.min(room);
            tally.matches += counted as u32;
            tally.facets.count_block(&docs[..counted]);
            if live > room {
                tally.exhaustive = false;
                break;
            }
            if filled < docs.len() {
                break;
            }
        }
        self.seen.fetch_add(tally.matches, Ordering::Relaxed);
        Ok(tally.harvest())
    }
}
