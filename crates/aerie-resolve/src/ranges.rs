//! Cargo-style version requirements as PubGrub ranges.

use pubgrub::Ranges;
use semver::{Comparator, Op, Version, VersionReq};

/// The versions `requirement` accepts, as a range. For versions without a pre-release part
/// the range contains exactly the versions `requirement.matches` accepts; pre-releases are
/// left to the resolver's own rule.
pub fn requirement_range(requirement: &VersionReq) -> Ranges<Version> {
    requirement
        .comparators
        .iter()
        .fold(Ranges::full(), |range, comparator| {
            range.intersection(&comparator_range(comparator))
        })
}

fn comparator_range(comparator: &Comparator) -> Ranges<Version> {
    let major = comparator.major;
    let at = |major, minor, patch| Version::new(major, minor, patch);
    // The comparator's version with missing parts as zero, keeping its pre-release.
    let given = Version {
        major,
        minor: comparator.minor.unwrap_or(0),
        patch: comparator.patch.unwrap_or(0),
        pre: comparator.pre.clone(),
        build: semver::BuildMetadata::EMPTY,
    };
    // The first version after everything a partial comparator covers: `1.2` covers `1.2.*`,
    // so it ends before `1.3.0`. (Full versions are handled on their own below.)
    let after_given = match (comparator.minor, comparator.patch) {
        (Some(minor), Some(patch)) => at(major, minor, patch + 1),
        (Some(minor), None) => at(major, minor + 1, 0),
        (None, _) => at(major + 1, 0, 0),
    };
    match comparator.op {
        Op::Exact | Op::Wildcard => match (comparator.minor, comparator.patch) {
            (Some(_), Some(_)) => Ranges::singleton(given),
            _ => Ranges::between(given, after_given),
        },
        Op::Greater => match (comparator.minor, comparator.patch) {
            (Some(_), Some(_)) => Ranges::strictly_higher_than(given),
            _ => Ranges::higher_than(after_given),
        },
        Op::GreaterEq => Ranges::higher_than(given),
        Op::Less => Ranges::strictly_lower_than(given),
        Op::LessEq => match (comparator.minor, comparator.patch) {
            (Some(_), Some(_)) => Ranges::lower_than(given),
            _ => Ranges::strictly_lower_than(after_given),
        },
        Op::Tilde => match comparator.minor {
            Some(minor) => Ranges::between(given, at(major, minor + 1, 0)),
            None => Ranges::between(given, at(major + 1, 0, 0)),
        },
        Op::Caret => {
            let end = match (major, comparator.minor, comparator.patch) {
                (0, Some(0), Some(patch)) => at(0, 0, patch + 1),
                (0, Some(minor), _) => at(0, minor + 1, 0),
                (0, None, _) => at(1, 0, 0),
                (major, ..) => at(major + 1, 0, 0),
            };
            Ranges::between(given, end)
        }
        // `Op` is non-exhaustive; every operator Cargo's syntax has is handled above.
        _ => Ranges::full(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For every requirement and every release version on a grid, the range and
    /// `VersionReq::matches` agree.
    #[test]
    fn ranges_accept_exactly_what_the_requirement_matches() {
        let requirements = [
            "*",
            "1",
            "1.2",
            "1.2.3",
            "=1",
            "=1.2",
            "=1.2.3",
            ">1",
            ">1.2",
            ">1.2.3",
            ">=1",
            ">=1.2",
            ">=1.2.3",
            "<1",
            "<1.2",
            "<1.2.3",
            "<=1",
            "<=1.2",
            "<=1.2.3",
            "~1",
            "~1.2",
            "~1.2.3",
            "^1",
            "^1.2",
            "^1.2.3",
            "^0",
            "^0.0",
            "^0.0.3",
            "^0.2",
            "^0.2.3",
            "1.*",
            "1.2.*",
            ">=1.2, <2",
            ">=0.1.0, <0.3",
            "^1.2, <1.5",
            "~0.0.1",
            "0.0",
            "0",
        ];
        let mut versions = Vec::new();
        for major in 0..4 {
            for minor in 0..5 {
                for patch in 0..5 {
                    versions.push(Version::new(major, minor, patch));
                }
            }
        }
        for text in requirements {
            let requirement = VersionReq::parse(text).unwrap();
            let range = requirement_range(&requirement);
            for version in &versions {
                assert_eq!(
                    range.contains(version),
                    requirement.matches(version),
                    "{text} and {version}: the range is {range}"
                );
            }
        }
    }

    #[test]
    fn a_pre_release_lower_bound_is_kept() {
        let range = requirement_range(&VersionReq::parse(">=2.0.0-beta.1").unwrap());
        assert!(range.contains(&Version::parse("2.0.0-beta.2").unwrap()));
        assert!(!range.contains(&Version::parse("2.0.0-alpha").unwrap()));
        assert!(range.contains(&Version::new(2, 0, 0)));
    }
}
