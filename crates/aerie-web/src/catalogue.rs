//! The catalogue: the home page's shelves and search with facets, sorts and pages. Every
//! state of a search is its URL, so a result list can be shared and bookmarked.

use aerie_api_types::{FacetCountView, SearchHitView, SearchResponse};
use aerie_server::AppState;
use aerie_server::error::ApiError;
use aerie_server::routes::search::{SearchParams, search as search_service};
use askama::Template;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aerie_server::error::Query;
use axum::Extension;
use axum::extract::{RawQuery, State};

use crate::{
    Choice, Layout, OrPage, PageResult, Viewer, day, form_encode, read_fields, render, thousands,
};

/// A plugin as a result card shows it.
pub struct Card {
    pub name: String,
    pub url: String,
    pub version: String,
    pub description: String,
    pub downloads: String,
    pub rating: Option<String>,
    pub certified: bool,
    pub installable: bool,
    pub updated: String,
}

impl Card {
    fn of(hit: SearchHitView) -> Card {
        Card {
            url: format!("/plugins/{}", hit.name),
            downloads: thousands(hit.downloads),
            rating: (hit.ratings > 0).then(|| format!("{:.1}★ ({})", hit.rating, hit.ratings)),
            updated: day(&hit.updated_at).to_string(),
            name: hit.name,
            version: hit.version,
            description: hit.description,
            certified: hit.certified,
            installable: hit.installable,
        }
    }
}

async fn run(state: &AppState, params: SearchParams) -> Result<SearchResponse, ApiError> {
    search_service(State(state.clone()), Query(params))
        .await
        .map(|json| json.0)
}

/// One shelf of the home page.
pub struct Shelf {
    pub title: &'static str,
    pub more: &'static str,
    pub cards: Vec<Card>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home<'a> {
    layout: Layout,
    catalogue: &'a Catalogue,
}

/// What the home page shows of the catalogue: the same for every visitor, since search shows
/// public plugins only.
pub struct Catalogue {
    pub total: usize,
    pub shelves: Vec<Shelf>,
    pub categories: Vec<FacetCountView>,
}

/// The home page's [`Catalogue`], kept for [`HOME_FRESH`]: it is the dearest thing a page
/// computes (four searches with facet counts over the whole catalogue, 2.5 ms of CPU over
/// 100,000 plugins) on the page visited most. Once it is older, one request computes it anew
/// while the others are answered from the old one, so its expiry never stalls a crowd. One per
/// server.
#[derive(Default)]
pub struct HomeCache {
    kept: Mutex<Option<(Instant, Arc<Catalogue>)>>,
    refreshing: AtomicBool,
}

/// How long the home page's shelves are kept: a new plugin, rating or download shows within it.
const HOME_FRESH: Duration = Duration::from_secs(10);

/// What the home page shows now, from [`HomeCache::look`].
enum Kept {
    /// Fresh, or stale while another request computes it anew.
    Use(Arc<Catalogue>),
    /// This request computes it.
    Compute,
}

impl HomeCache {
    fn look(&self, now: Instant) -> Kept {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match kept.as_ref() {
            Some((at, catalogue)) if now.duration_since(*at) < HOME_FRESH => {
                Kept::Use(Arc::clone(catalogue))
            }
            Some((_, catalogue)) if self.refreshing.swap(true, Ordering::AcqRel) => {
                Kept::Use(Arc::clone(catalogue))
            }
            _ => Kept::Compute,
        }
    }

    fn keep(&self, catalogue: Arc<Catalogue>) {
        *self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((Instant::now(), catalogue));
    }
}

/// Held by the request computing the catalogue anew; when it ends, done or dropped midway (its
/// client gone), another request may compute it.
struct Refreshing<'a>(&'a HomeCache);

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

/// Plugins per shelf on the home page.
const SHELF: usize = 6;

/// `GET /`: featured (certified), popular, new and recently updated plugins, and the
/// categories with their counts.
pub async fn home(
    viewer: Viewer,
    State(state): State<AppState>,
    Extension(cache): Extension<Arc<HomeCache>>,
) -> PageResult {
    let catalogue = match cache.look(Instant::now()) {
        Kept::Use(catalogue) => catalogue,
        Kept::Compute => {
            let _refreshing = Refreshing(&cache);
            let catalogue = Arc::new(catalogue(&viewer, &state).await?);
            cache.keep(Arc::clone(&catalogue));
            catalogue
        }
    };
    Ok(render(&Home {
        layout: viewer.layout,
        catalogue: &catalogue,
    }))
}

async fn catalogue(viewer: &Viewer, state: &AppState) -> Result<Catalogue, crate::Refusal> {
    let shelf = |sort: &str, certified: Option<bool>| SearchParams {
        sort: Some(sort.to_string()),
        certified,
        per_page: Some(SHELF),
        ..SearchParams::default()
    };
    let everything = run(state, shelf("downloads", None)).await.or_page(viewer)?;
    let featured = run(state, shelf("rating", Some(true)))
        .await
        .or_page(viewer)?;
    let newest = run(state, shelf("newest", None)).await.or_page(viewer)?;
    let updated = run(state, shelf("updated", None)).await.or_page(viewer)?;
    let shelves = [
        (
            "Featured: certified and well rated",
            "/search?certified=true&sort=rating",
            featured,
        ),
        ("Popular", "/search?sort=downloads", everything.clone()),
        ("New", "/search?sort=newest", newest),
        ("Recently updated", "/search?sort=updated", updated),
    ]
    .into_iter()
    .filter(|(_, _, results)| !results.hits.is_empty())
    .map(|(title, more, results)| Shelf {
        title,
        more,
        cards: results.hits.into_iter().map(Card::of).collect(),
    })
    .collect();
    Ok(Catalogue {
        total: everything.total,
        shelves,
        categories: everything.facets.categories,
    })
}

/// A search's state as the URL carries it. Every field is text, so a malformed value is
/// answered by this page with its own message rather than by the query parser.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SearchState {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    license: String,
    #[serde(default)]
    certified: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: String,
}

/// The sorts a search offers, with their labels.
const SORTS: &[(&str, &str)] = &[
    ("relevance", "Best match"),
    ("downloads", "Most downloaded"),
    ("rating", "Best rated"),
    ("updated", "Recently updated"),
    ("newest", "Newest"),
];

/// Results per search page.
const PER_PAGE: usize = 20;

impl SearchState {
    fn params(&self) -> Result<SearchParams, ApiError> {
        let text = |value: &str| (!value.is_empty()).then(|| value.to_string());
        let certified = match self.certified.as_str() {
            "" => None,
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_certified",
                    "`certified` is `true` or `false`.",
                ));
            }
        };
        let page = match self.page.as_str() {
            "" => None,
            page => Some(page.parse().map_err(|_| {
                ApiError::bad_request("invalid_page", "`page` is a number from 1.")
            })?),
        };
        Ok(SearchParams {
            q: text(&self.q),
            category: text(&self.category),
            tag: text(&self.tag),
            license: text(&self.license),
            certified,
            sort: text(&self.sort),
            page,
            per_page: Some(PER_PAGE),
        })
    }

    /// This search's URL with one field changed (and the page reset unless it is the one
    /// changed); an empty value removes the field.
    fn with(&self, field: &str, value: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = [
            ("q", self.q.as_str()),
            ("category", &self.category),
            ("tag", &self.tag),
            ("license", &self.license),
            ("certified", &self.certified),
            ("sort", &self.sort),
        ]
        .into_iter()
        .filter(|(name, _)| *name != field)
        .collect();
        pairs.push((field, value));
        let query: Vec<String> = pairs
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={}", form_encode(value)))
            .collect();
        if query.is_empty() {
            "/search".into()
        } else {
            format!("/search?{}", query.join("&"))
        }
    }
}

/// One facet value as a link that narrows the search, or widens it again when chosen.
pub struct FacetLink {
    pub label: String,
    pub count: u64,
    pub url: String,
    pub chosen: bool,
}

/// A group of facet links.
pub struct Facet {
    pub title: &'static str,
    pub links: Vec<FacetLink>,
}

/// A link to another page of results.
pub struct PageLink {
    pub label: String,
    pub url: Option<String>,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    sorts: Vec<Choice>,
    hidden: Vec<(&'static str, String)>,
    summary: String,
    cards: Vec<Card>,
    facets: Vec<Facet>,
    pages: Vec<PageLink>,
    clear: Option<String>,
}

/// `GET /search`: results with facet counts, a sort and pages.
pub async fn search(
    mut viewer: Viewer,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let search: SearchState = read_fields(&viewer, query.unwrap_or_default().as_bytes())?;
    viewer.layout.query = search.q.clone();
    let params = search.params().or_page(&viewer)?;
    let results = run(&state, params).await.or_page(&viewer)?;
    let facet = |title, field: &'static str, chosen: &str, values: Vec<FacetCountView>| Facet {
        title,
        links: values
            .into_iter()
            .map(|value| {
                let is_chosen = value.value == chosen;
                FacetLink {
                    url: search.with(field, if is_chosen { "" } else { &value.value }),
                    label: value.value,
                    count: value.count,
                    chosen: is_chosen,
                }
            })
            .collect(),
    };
    let certification = results
        .facets
        .certification
        .into_iter()
        .map(|value| FacetCountView {
            value: (value.value == "certified").to_string(),
            count: value.count,
        })
        .collect();
    let mut certified = facet(
        "Certification",
        "certified",
        &search.certified,
        certification,
    );
    for link in &mut certified.links {
        link.label = if link.label == "true" {
            "Certified"
        } else {
            "Not certified"
        }
        .into();
    }
    let facets: Vec<Facet> = vec![
        facet(
            "Categories",
            "category",
            &search.category,
            results.facets.categories,
        ),
        certified,
        facet(
            "Licenses",
            "license",
            &search.license,
            results.facets.licenses,
        ),
        facet("Tags", "tag", &search.tag, results.facets.tags),
    ]
    .into_iter()
    .filter(|facet| !facet.links.is_empty())
    .collect();
    let last_page = results.total.div_ceil(PER_PAGE).max(1);
    let page = results.page;
    let page_url = |number: usize| {
        let base = search.with("page", &number.to_string());
        if number == 1 {
            search.with("page", "")
        } else {
            base
        }
    };
    let mut pages = Vec::new();
    if last_page > 1 {
        pages.push(PageLink {
            label: "Previous".into(),
            url: (page > 1).then(|| page_url(page - 1)),
            current: false,
        });
        for number in
            (1..=last_page).filter(|n| *n == 1 || *n == last_page || n.abs_diff(page) <= 2)
        {
            pages.push(PageLink {
                label: number.to_string(),
                url: Some(page_url(number)),
                current: number == page,
            });
        }
        pages.push(PageLink {
            label: "Next".into(),
            url: (page < last_page).then(|| page_url(page + 1)),
            current: false,
        });
    }
    let summary = match results.total {
        0 => "No plugins match.".to_string(),
        1 => "1 plugin".to_string(),
        total if results.exhaustive => format!("{} plugins", thousands(total as u64)),
        total => format!("More than {} plugins", thousands(total as u64)),
    };
    let narrowed = [
        &search.category,
        &search.tag,
        &search.license,
        &search.certified,
    ]
    .iter()
    .any(|value| !value.is_empty());
    let hidden = [
        ("category", &search.category),
        ("tag", &search.tag),
        ("license", &search.license),
        ("certified", &search.certified),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, value)| (name, value.clone()))
    .collect();
    Ok(render(&SearchPage {
        q: search.q.clone(),
        sorts: SORTS
            .iter()
            .map(|&(value, label)| Choice {
                value,
                label,
                chosen: value == search.sort || (search.sort.is_empty() && value == "relevance"),
            })
            .collect(),
        hidden,
        summary,
        cards: results.hits.into_iter().map(Card::of).collect(),
        facets,
        pages,
        clear: narrowed.then(|| {
            if search.q.is_empty() {
                "/search".to_string()
            } else {
                format!("/search?q={}", form_encode(&search.q))
            }
        }),
        layout: viewer.layout,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_facet_link_keeps_the_rest_of_the_search_and_resets_the_page() {
        let search = SearchState {
            q: "grafana dash".into(),
            category: "analytics".into(),
            page: "3".into(),
            ..SearchState::default()
        };
        assert_eq!(
            search.with("license", "MIT"),
            "/search?q=grafana+dash&category=analytics&license=MIT"
        );
        assert_eq!(search.with("category", ""), "/search?q=grafana+dash");
        assert_eq!(
            search.with("page", "2"),
            "/search?q=grafana+dash&category=analytics&page=2"
        );
    }

    #[test]
    fn an_expired_home_page_is_computed_by_one_request_while_the_rest_get_the_old_one() {
        let cache = HomeCache::default();
        let start = Instant::now();
        assert!(
            matches!(cache.look(start), Kept::Compute),
            "nothing kept yet"
        );
        cache.keep(Arc::new(Catalogue {
            total: 1,
            shelves: Vec::new(),
            categories: Vec::new(),
        }));
        assert!(matches!(cache.look(Instant::now()), Kept::Use(_)), "fresh");
        let later = Instant::now() + HOME_FRESH + Duration::from_secs(1);
        assert!(
            matches!(cache.look(later), Kept::Compute),
            "the first to see it expired"
        );
        let refreshing = Refreshing(&cache);
        assert!(
            matches!(cache.look(later), Kept::Use(_)),
            "the others, while it computes"
        );
        drop(refreshing);
        assert!(
            matches!(cache.look(later), Kept::Compute),
            "a dropped computation frees the next"
        );
    }

    #[test]
    fn malformed_search_fields_are_named() {
        let bad_page = SearchState {
            page: "abc".into(),
            ..SearchState::default()
        };
        assert_eq!(bad_page.params().unwrap_err().code, "invalid_page");
        let bad_flag = SearchState {
            certified: "maybe".into(),
            ..SearchState::default()
        };
        assert_eq!(bad_flag.params().unwrap_err().code, "invalid_certified");
    }
}
