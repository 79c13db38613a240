//! A plugin's page: the facts people judge it by above the fold, and tabs for its README,
//! versions, dependencies, reviews and statistics, each its own URL.

use std::collections::BTreeMap;

use aerie_api_types::{
    DownloadDayView, PermissionsView, PluginPageView, ReviewRequest, ReviewView, StatsView,
    VersionSummary,
};
use aerie_core::manifest::Manifest;
use aerie_server::AppState;
use aerie_server::error::{ApiError, Json};
use aerie_server::error::{Path, Query};
use aerie_server::routes::{pages, plugins, reviews};
use askama::Template;
use axum::extract::{RawQuery, State};
use bytes::Bytes;

use crate::changes::{self, Change};
use crate::chart::{self, Bar};
use crate::{
    Layout, OrPage, PageResult, Refusal, Viewer, day, read_fields, render, see_other, thousands,
};

/// The tabs of a plugin's page: path segment and label.
const TABS: &[(&str, &str)] = &[
    ("", "Overview"),
    ("versions", "Versions"),
    ("changes", "Changes"),
    ("changelog", "Changelog"),
    ("dependencies", "Dependencies"),
    ("reviews", "Reviews"),
    ("stats", "Statistics"),
];

/// Days of downloads a chart shows.
const CHART_DAYS: usize = 30;

/// One tab link.
pub struct TabLink {
    pub label: &'static str,
    pub url: String,
    pub current: bool,
}

/// Downloads per day over the last [`CHART_DAYS`] days with downloads: a chart and the same
/// figures as a table. The statistics tab and the publisher's dashboard show it.
pub struct DailyDownloads {
    pub chart: String,
    pub days: Vec<(String, String)>,
}

impl DailyDownloads {
    /// From the per-day, per-version counts the stats API answers.
    pub fn from_days(days: &[DownloadDayView]) -> DailyDownloads {
        let mut per_day: BTreeMap<&str, u64> = BTreeMap::new();
        for day in days {
            *per_day.entry(&day.date).or_default() += day.count.max(0) as u64;
        }
        let recent: Vec<Bar> = per_day
            .into_iter()
            .rev()
            .take(CHART_DAYS)
            .rev()
            .map(|(label, value)| Bar {
                label: label.to_string(),
                value,
            })
            .collect();
        DailyDownloads {
            chart: chart::bars("Downloads per day", &recent),
            days: recent
                .iter()
                .map(|bar| (bar.label.clone(), thousands(bar.value)))
                .collect(),
        }
    }
}

/// The statistics tab's contents.
pub struct Stats {
    pub daily: DailyDownloads,
    pub total: String,
    pub active: String,
    pub by_version: Vec<(String, String)>,
    pub installations_chart: String,
}

/// The reviews tab's contents.
pub struct Reviews {
    pub summary: String,
    pub reviews: Vec<ReviewRow>,
    /// Whether the viewer may write one (is signed in).
    pub can_write: bool,
    /// Whether the viewer has written one, shown in the form to edit.
    pub written: bool,
    /// The form's star choices, highest first, the viewer's own chosen.
    pub star_choices: Vec<(i64, bool)>,
    /// The viewer's own review's text.
    pub my_text: String,
}

/// A review as the list shows it.
pub struct ReviewRow {
    pub review: ReviewView,
    pub stars: String,
    pub updated: String,
}

/// A version as the versions tab lists it.
pub struct VersionRow {
    pub version: VersionSummary,
    pub published: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "plugin.html")]
struct PluginPage {
    layout: Layout,
    page: PluginPageView,
    base: String,
    tab: &'static str,
    tabs: Vec<TabLink>,
    downloads: String,
    rating: String,
    updated: String,
    certified: bool,
    versions: Vec<VersionRow>,
    /// The spaces the viewer may install into.
    install_spaces: Vec<String>,
    stats: Option<Stats>,
    reviews: Option<Reviews>,
    /// The changes tab's comparison; `None` there for a plugin with one version.
    comparison: Option<Comparison>,
}

/// `GET /plugins/{namespace}/{name}`: the overview tab.
pub async fn overview(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> PageResult {
    show(viewer, state, namespace, name, "", None).await
}

/// `GET /plugins/{namespace}/{name}/reviews`: the reviews tab (its path also takes the
/// review form's posts).
pub async fn reviews(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> PageResult {
    show(viewer, state, namespace, name, "reviews", None).await
}

/// `GET /plugins/{namespace}/{name}/{tab}`: another tab.
pub async fn tab(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((namespace, name, tab)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let Some(&(tab, _)) = TABS
        .iter()
        .find(|(path, _)| !path.is_empty() && *path == tab)
    else {
        return Err(viewer.error(ApiError::not_found(
            "no_route",
            "There is no such tab on a plugin's page.",
        )));
    };
    show(viewer, state, namespace, name, tab, query).await
}

async fn show(
    viewer: Viewer,
    state: AppState,
    namespace: String,
    name: String,
    tab: &'static str,
    query: Option<String>,
) -> PageResult {
    let page = pages::plugin_page(&state, &viewer.caller, &namespace, &name)
        .await
        .or_page(&viewer)?;
    let path = || Path((namespace.clone(), name.clone()));
    let stats = match tab {
        "stats" => Some(stats_tab(
            viewer
                .call(&state, |state, caller| {
                    plugins::stats(state, caller, path())
                })
                .await?,
        )),
        _ => None,
    };
    let reviews = match tab {
        "reviews" => {
            let listed = viewer
                .call(&state, |state, caller| {
                    reviews::list(
                        state,
                        caller,
                        path(),
                        Query(reviews::ReviewPage {
                            offset: None,
                            limit: Some(100),
                        }),
                    )
                })
                .await?;
            let me = viewer.layout.user.as_deref();
            let mine = listed
                .reviews
                .iter()
                .find(|review| Some(review.user.as_str()) == me);
            let my_stars = mine.map_or(5, |review| review.stars);
            Some(Reviews {
                summary: match listed.ratings {
                    0 => "No ratings yet.".to_string(),
                    1 => format!("{:.1} out of 5, from 1 rating", listed.rating),
                    n => format!("{:.1} out of 5, from {n} ratings", listed.rating),
                },
                can_write: me.is_some(),
                written: mine.is_some(),
                star_choices: (1..=5)
                    .rev()
                    .map(|stars| (stars, stars == my_stars))
                    .collect(),
                my_text: mine.map(|review| review.text.clone()).unwrap_or_default(),
                reviews: listed
                    .reviews
                    .into_iter()
                    .map(|review| ReviewRow {
                        stars: "★".repeat(review.stars.clamp(0, 5) as usize),
                        updated: day(&review.updated_at).to_string(),
                        review,
                    })
                    .collect(),
            })
        }
        _ => None,
    };
    let install_spaces = match viewer.layout.user {
        Some(_) => aerie_server::routes::spaces::list(State(state.clone()), viewer.caller.clone())
            .await
            .or_page(&viewer)?
            .0
            .into_iter()
            .filter(|space| matches!(space.role.as_str(), "owner" | "admin"))
            .map(|space| space.name)
            .collect(),
        None => Vec::new(),
    };
    let comparison = match tab {
        "changes" => {
            let query: CompareQuery = read_fields(&viewer, query.unwrap_or_default().as_bytes())?;
            comparison(&viewer, &state, &page, query).await?
        }
        _ => None,
    };
    let base = format!("/plugins/{}", page.name);
    let shown = page
        .versions
        .iter()
        .find(|version| version.version == page.version);
    let certified = shown.and_then(|version| version.certification.as_deref()) == Some("certified");
    Ok(render(&PluginPage {
        tabs: TABS
            .iter()
            .map(|(path, label)| TabLink {
                label,
                url: if path.is_empty() {
                    base.clone()
                } else {
                    format!("{base}/{path}")
                },
                current: *path == tab,
            })
            .collect(),
        downloads: thousands(page.downloads),
        rating: match page.ratings {
            0 => "not rated yet".to_string(),
            n => format!("{:.1}★ from {n}", page.rating),
        },
        updated: day(&page.published_at).to_string(),
        certified,
        versions: page
            .versions
            .iter()
            .map(|version| VersionRow {
                published: day(&version.published_at).to_string(),
                size: size(version.size),
                version: version.clone(),
            })
            .collect(),
        install_spaces,
        comparison,
        base,
        tab,
        stats,
        reviews,
        page,
        layout: viewer.layout,
    }))
}

/// A version's manifest and the permissions consent shows for it. The caller must already
/// have been shown the plugin (its namespace's visibility checked).
pub(crate) async fn version_facts(
    viewer: &Viewer,
    state: &AppState,
    namespace: &str,
    name: &str,
    version: &str,
) -> Result<(Manifest, PermissionsView), Refusal> {
    let record = state
        .version(namespace, name, version)
        .await
        .or_page(viewer)?
        .ok_or_else(|| {
            viewer.error(ApiError::not_found(
                "version_not_found",
                format!("{namespace}/{name} has no version {version}."),
            ))
        })?;
    let manifest = aerie_server::views::manifest(&record).or_page(viewer)?;
    let permissions = aerie_server::consent::permissions_of(&manifest, &state.config.plugin_limits);
    Ok((manifest, permissions))
}

/// The changes tab's contents: the two versions compared, the choices, and the changes.
pub struct Comparison {
    pub from: String,
    pub to: String,
    pub from_choices: Vec<(String, bool)>,
    pub to_choices: Vec<(String, bool)>,
    pub changes: Vec<Change>,
}

#[derive(Default, serde::Deserialize)]
struct CompareQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// The comparison `query` asks for: by default, the shown version against the one before it.
async fn comparison(
    viewer: &Viewer,
    state: &AppState,
    page: &PluginPageView,
    query: CompareQuery,
) -> Result<Option<Comparison>, Refusal> {
    let versions: Vec<&str> = page
        .versions
        .iter()
        .map(|version| version.version.as_str())
        .collect();
    let to = query.to.unwrap_or_else(|| page.version.clone());
    let Some(from) = query.from.or_else(|| {
        let at = versions.iter().position(|version| *version == to)?;
        versions.get(at + 1).map(|version| version.to_string())
    }) else {
        return Ok(None);
    };
    let (namespace, name) = page.name.split_once('/').unwrap_or_default();
    let before = version_facts(viewer, state, namespace, name, &from).await?;
    let after = version_facts(viewer, state, namespace, name, &to).await?;
    let choices = |chosen: &str| {
        versions
            .iter()
            .map(|version| (version.to_string(), *version == chosen))
            .collect()
    };
    Ok(Some(Comparison {
        changes: changes::between((&before.0, &before.1), (&after.0, &after.1)),
        from_choices: choices(&from),
        to_choices: choices(&to),
        from,
        to,
    }))
}

/// A size in bytes the way people read it.
fn size(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    match bytes {
        b if b < 1024.0 => format!("{b} B"),
        b if b < 1024.0 * 1024.0 => format!("{:.1} KiB", b / 1024.0),
        b => format!("{:.1} MiB", b / (1024.0 * 1024.0)),
    }
}

fn stats_tab(stats: StatsView) -> Stats {
    Stats {
        daily: DailyDownloads::from_days(&stats.days),
        total: thousands(stats.total.max(0) as u64),
        active: thousands(stats.active_installations.max(0) as u64),
        installations_chart: chart::bars(
            "Active installations by version",
            &stats
                .installations_by_version
                .iter()
                .rev()
                .map(|count| Bar {
                    label: count.version.clone(),
                    value: count.count.max(0) as u64,
                })
                .collect::<Vec<_>>(),
        ),
        by_version: stats
            .installations_by_version
            .into_iter()
            .map(|count| (count.version, thousands(count.count.max(0) as u64)))
            .collect(),
    }
}

/// `POST /plugins/{namespace}/{name}/reviews/delete`: deletes the viewer's review.
pub async fn delete_review(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> PageResult {
    viewer.require_user()?;
    reviews::delete(
        State(state),
        viewer.caller.clone(),
        Path((namespace.clone(), name.clone())),
    )
    .await
    .or_page(&viewer)?;
    Ok(see_other(&format!("/plugins/{namespace}/{name}/reviews")))
}

/// The review form's fields.
#[derive(serde::Deserialize)]
struct ReviewForm {
    stars: String,
    #[serde(default)]
    text: String,
}

/// `POST /plugins/{namespace}/{name}/reviews`: writes or replaces the viewer's review.
pub async fn write_review(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: ReviewForm = read_fields(&viewer, &body)?;
    let stars = form.stars.parse().map_err(|_| {
        viewer.error(ApiError::bad_request(
            "invalid_stars",
            "Choose 1 to 5 stars.",
        ))
    })?;
    reviews::set(
        State(state),
        viewer.caller.clone(),
        Path((namespace.clone(), name.clone())),
        Json(ReviewRequest {
            stars,
            text: form.text,
        }),
    )
    .await
    .or_page(&viewer)?;
    let user = viewer.layout.user.as_deref().unwrap_or_default();
    Ok(see_other(&format!(
        "/plugins/{namespace}/{name}/reviews#review-{user}"
    )))
}
