//! Which of a plugin's versions the catalogue shows: one rule for the API's `latest`, search,
//! the plugin page and the web UI, so they never disagree.
//!
//! The highest version that is not yanked, a release before any prerelease (a `2.0.0-rc.1`
//! published after `1.4.0` is not what a newcomer should be shown); when every version is
//! yanked, the highest of them, so the plugin still has a page.

use semver::Version;

/// The version [`shown`] picks from `versions`, each given as its version text and whether
/// it is yanked. A version that does not parse ranks below every one that does.
pub fn shown<T>(
    versions: impl IntoIterator<Item = T>,
    describe: impl Fn(&T) -> (&str, bool),
) -> Option<T> {
    versions.into_iter().max_by_key(|item| {
        let (text, yanked) = describe(item);
        let version = Version::parse(text).ok();
        let release = version
            .as_ref()
            .is_some_and(|version| version.pre.is_empty());
        (!yanked, release, version)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick<'a>(versions: &[(&'a str, bool)]) -> Option<&'a str> {
        shown(versions.iter(), |(text, yanked)| (text, *yanked)).map(|(text, _)| *text)
    }

    #[test]
    fn a_release_is_shown_before_a_newer_prerelease() {
        assert_eq!(
            pick(&[("1.4.0", false), ("2.0.0-rc.1", false), ("1.10.0", false)]),
            Some("1.10.0")
        );
    }

    #[test]
    fn yanked_versions_are_passed_over_until_every_one_is_yanked() {
        assert_eq!(pick(&[("1.0.0", false), ("1.1.0", true)]), Some("1.0.0"));
        assert_eq!(
            pick(&[("1.0.0", false), ("1.1.0-beta", false), ("1.1.0", true)]),
            Some("1.0.0")
        );
        assert_eq!(
            pick(&[("0.9.0-beta", false), ("1.0.0", true)]),
            Some("0.9.0-beta")
        );
        assert_eq!(pick(&[("1.0.0", true), ("1.2.0", true)]), Some("1.2.0"));
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn versions_compare_as_semver_not_as_text() {
        assert_eq!(pick(&[("0.9.0", false), ("0.10.0", false)]), Some("0.10.0"));
        assert_eq!(pick(&[("junk", false), ("0.1.0", false)]), Some("0.1.0"));
    }
}
