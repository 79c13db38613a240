//! `GET /api/v1/search`: the catalogue, searched.

use crate::error::Query;
use aerie_api_types::{ErrorBody, FacetCountView, FacetsView, SearchHitView, SearchResponse};
use aerie_search::{MAX_OFFSET, MAX_PAGE_SIZE, SearchQuery, Sort};
use axum::extract::State;

use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;
use crate::views::time;

/// Most tag facet values returned.
const MAX_TAG_FACETS: usize = 30;

/// The query string of a search.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct SearchParams {
    /// Words to look for (typos and prefixes forgiven); every plugin when absent.
    #[serde(default)]
    pub q: Option<String>,
    /// Only this category.
    #[serde(default)]
    pub category: Option<String>,
    /// Only this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Only this license.
    #[serde(default)]
    pub license: Option<String>,
    /// Only certified (`true`) or uncertified (`false`) plugins.
    #[serde(default)]
    pub certified: Option<bool>,
    /// `relevance` (default), `downloads`, `rating`, `updated` or `newest`.
    #[serde(default)]
    #[param(pattern = "^(relevance|downloads|rating|updated|newest)$")]
    pub sort: Option<String>,
    /// The page, from 1; pages reach 10,000 results deep (`page` × `per_page`).
    #[serde(default)]
    #[param(minimum = 1, maximum = 10000)]
    pub page: Option<usize>,
    /// Results per page, 1 to 100 (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<usize>,
}

fn facet_counts(counts: Vec<(String, u64)>, most: usize) -> Vec<FacetCountView> {
    counts
        .into_iter()
        .take(most)
        .map(|(value, count)| FacetCountView { value, count })
        .collect()
}

/// Searches the catalogue: typo-tolerant, prefix-matching, with facet counts, sorts and pages.
#[utoipa::path(get, path = "/api/v1/search", tag = "plugins", params(SearchParams),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<SearchResponse>> {
    let sort = match params.sort.as_deref().unwrap_or("relevance") {
        "relevance" => Sort::Relevance,
        "downloads" => Sort::Downloads,
        "rating" => Sort::Rating,
        "updated" => Sort::Updated,
        "newest" => Sort::Newest,
        other => {
            return Err(ApiError::bad_request(
                "invalid_sort",
                format!(
                    "`{other}` is not a sort; use relevance, downloads, rating, updated or newest"
                ),
            ));
        }
    };
    let per_page = params.per_page.unwrap_or(20);
    if !(1..=MAX_PAGE_SIZE).contains(&per_page) {
        return Err(ApiError::bad_request(
            "invalid_page_size",
            format!("per_page must be 1 to {MAX_PAGE_SIZE}"),
        ));
    }
    let page = params.page.unwrap_or(1);
    let offset = page
        .checked_sub(1)
        .and_then(|before| before.checked_mul(per_page))
        .filter(|offset| *offset <= MAX_OFFSET)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_page",
                format!("page must be 1 or more, and reach no deeper than result {MAX_OFFSET}"),
            )
        })?;
    let query = SearchQuery {
        text: params.q.unwrap_or_default(),
        category: params.category,
        tag: params.tag,
        license: params.license,
        certified: params.certified,
        sort,
        offset,
        limit: per_page,
    };
    let index = std::sync::Arc::clone(&state.search);
    let span = tracing::info_span!("search", q = %query.text, offset, limit = per_page, total = tracing::field::Empty);
    let results = tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let results = index.search(&query);
            if let Ok(results) = &results {
                tracing::Span::current().record("total", results.total);
            }
            results
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(SearchResponse {
        total: results.total,
        exhaustive: results.exhaustive,
        page,
        per_page,
        hits: results
            .hits
            .into_iter()
            .map(|hit| SearchHitView {
                name: hit.plugin.name,
                version: hit.plugin.version,
                description: hit.plugin.description,
                tags: hit.plugin.tags,
                categories: hit.plugin.categories,
                license: hit.plugin.license,
                certified: hit.plugin.certified,
                installable: hit.plugin.installable,
                downloads: hit.plugin.downloads,
                rating: hit.plugin.rating,
                ratings: hit.plugin.ratings,
                updated_at: time(hit.plugin.updated_at),
                score: hit.score,
            })
            .collect(),
        facets: FacetsView {
            categories: facet_counts(results.categories, usize::MAX),
            tags: facet_counts(results.tags, MAX_TAG_FACETS),
            licenses: facet_counts(results.licenses, usize::MAX),
            certification: facet_counts(results.certification, usize::MAX),
        },
        took_ms: results.took.as_secs_f64() * 1000.0,
    }))
}
