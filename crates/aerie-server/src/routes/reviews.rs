//! Ratings and reviews: one per user per plugin, editable, deletable.

use crate::error::{Path, Query};
use aerie_api_types::{ErrorBody, ReviewRequest, ReviewView, ReviewsView};
use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, Json};
use crate::routes::namespaces::visible_namespace;
use crate::state::AppState;
use crate::views::time;

/// Longest review text, in characters.
const MAX_REVIEW_LEN: usize = 4000;

/// The plugin's row id and name, if the caller may see it.
async fn visible_plugin(
    state: &AppState,
    caller: &Caller,
    namespace: &str,
    name: &str,
) -> ApiResult<(i64, String)> {
    visible_namespace(state, caller, namespace, Scope::ReadPrivate).await?;
    let plugin = state.db.plugin(namespace, name).await?.ok_or_else(|| {
        ApiError::not_found(
            "plugin_not_found",
            format!("there is no plugin {namespace}/{name}"),
        )
    })?;
    Ok((plugin.id, format!("{namespace}/{name}")))
}

/// Paging of reviews.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ReviewPage {
    /// Reviews skipped.
    #[serde(default)]
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Reviews returned, 1 to 100 (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// A plugin's rating and reviews.
#[utoipa::path(get, path = "/api/v1/plugins/{namespace}/{name}/reviews", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path), ReviewPage),
    responses((status = 200, body = ReviewsView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    Query(page): Query<ReviewPage>,
) -> ApiResult<Json<ReviewsView>> {
    let (plugin_id, _) = visible_plugin(&state, &caller, &namespace, &name).await?;
    let limit = page.limit.unwrap_or(20);
    let offset = page.offset.unwrap_or(0);
    if !(1..=100).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request(
            "invalid_page",
            "limit must be 1 to 100 and offset 0 or more",
        ));
    }
    let (rating, ratings) = state.db.rating(plugin_id).await?;
    let reviews = state.db.reviews(plugin_id, limit, offset).await?;
    Ok(Json(ReviewsView {
        rating,
        ratings,
        reviews: reviews
            .into_iter()
            .map(|review| ReviewView {
                user: review.username,
                stars: review.stars,
                text_html: ammonia::clean_text(&review.body),
                text: review.body,
                created_at: time(review.created_at),
                updated_at: time(review.updated_at),
            })
            .collect(),
    }))
}

/// Rates and reviews a plugin as the caller, replacing the caller's earlier review.
#[utoipa::path(put, path = "/api/v1/plugins/{namespace}/{name}/reviews/mine", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path)), request_body = ReviewRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    Json(request): Json<ReviewRequest>,
) -> ApiResult<StatusCode> {
    let user = caller.user()?;
    let (plugin_id, plugin) = visible_plugin(&state, &caller, &namespace, &name).await?;
    if !(1..=5).contains(&request.stars) {
        return Err(ApiError::bad_request(
            "invalid_stars",
            "a rating is 1 to 5 stars",
        ));
    }
    if request.text.chars().count() > MAX_REVIEW_LEN {
        return Err(ApiError::bad_request(
            "review_too_long",
            format!("a review has at most {MAX_REVIEW_LEN} characters"),
        ));
    }
    state
        .db
        .set_review(
            &caller.actor(),
            plugin_id,
            &plugin,
            user.id,
            request.stars,
            request.text.trim(),
        )
        .await?;
    crate::search::reindex(&state.db, &state.search, plugin_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the caller's review of a plugin.
#[utoipa::path(delete, path = "/api/v1/plugins/{namespace}/{name}/reviews/mine", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let user = caller.user()?;
    let (plugin_id, plugin) = visible_plugin(&state, &caller, &namespace, &name).await?;
    state
        .db
        .delete_review(&caller.actor(), plugin_id, &plugin, user.id)
        .await
        .map_err(|err| match err {
            aerie_db::DbError::NotFound(_) => ApiError::not_found(
                "review_not_found",
                format!("you have not reviewed {plugin}"),
            ),
            other => other.into(),
        })?;
    crate::search::reindex(&state.db, &state.search, plugin_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
