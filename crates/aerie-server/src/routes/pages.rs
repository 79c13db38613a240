//! A plugin's page: what people read before installing.

use crate::error::Path;
use aerie_api_types::{DependencyView, ErrorBody, PluginPageView};
use axum::extract::State;
use semver::Version;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, Json};
use crate::routes::namespaces::visible_namespace;
use crate::state::AppState;
use crate::views;

/// Markdown as HTML that cannot run anything: rendered by `pulldown-cmark`, then cleaned by
/// `ammonia` (no scripts, no event handlers, no `javascript:` or other unsafe URL schemes),
/// with links marked so they pass on nothing.
pub fn sanitised_html(markdown: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut rendered = String::new();
    html::push_html(&mut rendered, Parser::new_ext(markdown, options));
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow ugc"))
        .clean(&rendered)
        .to_string()
}

/// A plugin's page: its shown version's README (sanitised), permissions in words,
/// dependencies and dependents, versions, downloads and rating.
#[utoipa::path(get, path = "/api/v1/plugins/{namespace}/{name}/page", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = PluginPageView), (status = 404, body = ErrorBody)))]
pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<PluginPageView>> {
    plugin_page(&state, &caller, &namespace, &name)
        .await
        .map(Json)
}

/// What [`page`] answers, for the API and the web UI alike.
pub async fn plugin_page(
    state: &AppState,
    caller: &Caller,
    namespace: &str,
    name: &str,
) -> ApiResult<PluginPageView> {
    visible_namespace(state, caller, namespace, Scope::ReadPrivate).await?;
    let missing = || {
        ApiError::not_found(
            "plugin_not_found",
            format!("there is no plugin {namespace}/{name}"),
        )
    };
    let summary = state
        .db
        .plugin(namespace, name)
        .await?
        .ok_or_else(missing)?;
    let mut versions = state.db.versions(namespace, name).await?;
    versions.sort_by_key(|record| std::cmp::Reverse(Version::parse(&record.version).ok()));
    let shown = views::shown(&versions).ok_or_else(missing)?;
    let manifest = views::manifest(shown)?;
    let permissions = crate::consent::permissions_of(&manifest, &state.config.plugin_limits);
    let dependencies = manifest
        .dependencies
        .iter()
        .map(|(name, requirement)| DependencyView {
            name: name.to_string(),
            requirement: requirement.to_string(),
        })
        .collect();
    let full_name = format!("{namespace}/{name}");
    // Dependents as the catalogue shows them: public plugins whose newest version needs it.
    let index = std::sync::Arc::clone(&state.search);
    let dependent_of = full_name.clone();
    let dependents =
        tokio::task::spawn_blocking(move || index.dependents(&dependent_of, MAX_DEPENDENTS))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    let (rating, ratings) = state.db.rating(summary.id).await?;
    let info = manifest.plugin;
    Ok(PluginPageView {
        name: full_name,
        version: shown.version.clone(),
        published_at: views::time(shown.published_at),
        certification: shown.certification.clone(),
        signing_key_id: shown.signing_key_id.clone(),
        description: info.description,
        license: info.license,
        homepage: info.homepage,
        repository: info.repository,
        readme_html: shown.readme.as_deref().map(sanitised_html),
        changelog_html: shown.changelog.as_deref().map(sanitised_html),
        permissions,
        dependencies,
        dependents,
        versions: versions.iter().map(views::version_summary).collect(),
        downloads: summary.downloads.max(0) as u64,
        rating,
        ratings,
    })
}

/// Most dependents a page lists.
const MAX_DEPENDENTS: usize = 100;

#[cfg(test)]
mod tests {
    use super::sanitised_html;

    #[test]
    fn nothing_in_a_readme_runs() {
        let html = sanitised_html(
            "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n\
             [safe](https://example.com) [bad](javascript:alert(1)) \
             <a href=\"javascript:alert(2)\" onclick=\"alert(3)\">raw</a>\n\n\
             <iframe src=\"https://evil\"></iframe><style>body{}</style>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        );
        for forbidden in [
            "<script",
            "onerror",
            "onclick",
            "javascript:",
            "<iframe",
            "<style",
        ] {
            assert!(!html.contains(forbidden), "{forbidden} in {html}");
        }
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        assert!(
            html.contains("rel=\"noopener noreferrer nofollow ugc\""),
            "{html}"
        );
        assert!(html.contains("<table>"), "{html}");
    }
}
