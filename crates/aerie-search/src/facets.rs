//! Exact facet counts over every match, by ordinal.
//!
//! tantivy's `FacetCollector` turns every facet ordinal seen into its label through the
//! segment's compressed dictionary on each query; with thousands of tags that lookup is most of
//! a search's time. Segments never change, so each segment's labels are read once here and a
//! query only counts ordinals.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::fastfield::FacetReader;
use tantivy::index::SegmentId;
use tantivy::schema::{Facet, Field};
use tantivy::{DocId, Score, SegmentReader};

/// A segment's labels of one facet field, by ordinal.
type Labels = Arc<Vec<String>>;

/// Labels by segment and field.
type LabelsBySegment = HashMap<(SegmentId, Field), Labels>;

/// Each segment's facet labels by ordinal, per field.
#[derive(Default)]
pub(crate) struct FacetLabels {
    by_segment: Mutex<LabelsBySegment>,
}

impl FacetLabels {
    /// The labels of `field` in `reader`'s segment, read on first use.
    fn labels(
        &self,
        reader: &SegmentReader,
        field: Field,
        facets: &FacetReader,
    ) -> tantivy::Result<Labels> {
        let key = (reader.segment_id(), field);
        if let Some(labels) = self.lock().get(&key) {
            return Ok(Arc::clone(labels));
        }
        let mut labels = Vec::with_capacity(facets.num_facets());
        let mut terms = facets.facet_dict().stream()?;
        while terms.advance() {
            let facet = Facet::from_encoded(terms.key().to_vec()).map_err(|err| {
                tantivy::TantivyError::InvalidArgument(format!("a facet label: {err}"))
            })?;
            labels.push(
                facet
                    .to_path()
                    .last()
                    .map(|part| part.to_string())
                    .unwrap_or_default(),
            );
        }
        let labels = Arc::new(labels);
        self.lock().insert(key, Arc::clone(&labels));
        Ok(labels)
    }

    /// Forgets the segments not in `live` (merged away).
    pub(crate) fn retain(&self, live: &HashSet<SegmentId>) {
        self.lock().retain(|(segment, _), _| live.contains(segment));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LabelsBySegment> {
        self.by_segment
            .lock()
            .unwrap_or_else(|err| err.into_inner())
    }
}

/// Counts per label for each of `fields`, over the documents a [`Tally`] counts.
pub(crate) struct FacetCounter<'a> {
    pub(crate) labels: &'a FacetLabels,
    /// Each field with its name in the schema.
    pub(crate) fields: Vec<(Field, &'a str)>,
}

/// Per field, the count of each label.
pub(crate) type LabelCounts = Vec<HashMap<String, u64>>;

impl FacetCounter<'_> {
    fn for_segment(&self, reader: &SegmentReader) -> tantivy::Result<SegmentFacetCounter> {
        let mut fields = Vec::with_capacity(self.fields.len());
        for &(field, name) in &self.fields {
            let facets = reader.facet_reader(name)?;
            let labels = self.labels.labels(reader, field, &facets)?;
            let counts = vec![0u32; labels.len()];
            fields.push((facets, labels, counts));
        }
        Ok(SegmentFacetCounter { fields })
    }

    fn merge(&self, fruits: Vec<LabelCounts>) -> LabelCounts {
        let mut merged: LabelCounts = vec![HashMap::new(); self.fields.len()];
        for fruit in fruits {
            for (into, counts) in merged.iter_mut().zip(fruit) {
                for (label, count) in counts {
                    *into.entry(label).or_default() += count;
                }
            }
        }
        merged
    }
}

/// [`FacetCounter`] within one segment.
pub(crate) struct SegmentFacetCounter {
    fields: Vec<(FacetReader, Labels, Vec<u32>)>,
}

impl SegmentFacetCounter {
    fn count(&mut self, doc: DocId) {
        for (facets, _, counts) in &mut self.fields {
            for ord in facets.facet_ords(doc) {
                if let Some(count) = counts.get_mut(ord as usize) {
                    *count += 1;
                }
            }
        }
    }

    fn harvest(self) -> LabelCounts {
        self.fields
            .into_iter()
            .map(|(_, labels, counts)| {
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, count)| **count > 0)
                    .map(|(ord, count)| (labels[ord].clone(), u64::from(*count)))
                    .collect()
            })
            .collect()
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
    type Fruit = TallyFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.matches += 1;
        self.facets.count(doc);
    }

    fn harvest(self) -> TallyFruit {
        TallyFruit {
            matches: self.matches,
            exhaustive: self.exhaustive,
            facets: self.facets.harvest(),
        }
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

    fn merge_fruits(&self, fruits: Vec<TallyFruit>) -> tantivy::Result<TallyFruit> {
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
    ) -> tantivy::Result<TallyFruit> {
        use std::sync::atomic::Ordering;
        use tantivy::DocSet as _;
        let mut tally = self.for_segment(segment_ord, reader)?;
        let budget = self.limit.saturating_sub(self.seen.load(Ordering::Relaxed));
        let mut scorer = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let mut doc = scorer.doc();
        while doc != tantivy::TERMINATED {
            if alive.is_none_or(|alive| alive.is_alive(doc)) {
                if tally.matches == budget {
                    tally.exhaustive = false;
                    break;
                }
                tally.collect(doc, 0.0);
            }
            doc = scorer.advance();
        }
        self.seen.fetch_add(tally.matches, Ordering::Relaxed);
        Ok(tally.harvest())
    }
}
