//! Why there is no solution, in sentences a space's owner can act on.
//!
//! PubGrub's derivation tree is walked by its reporter; this formatter chooses the words:
//! the root is "the space", which "requires" plugins, and an empty range is never shown.

use pubgrub::{
    DefaultStringReporter, Derived, External, Map, Ranges, ReportFormatter, Reporter as _, Term,
};
use semver::Version;

use crate::Node;

type Tree = pubgrub::DerivationTree<Node, Ranges<Version>, String>;
type Ext = External<Node, Ranges<Version>, String>;
type Terms = Map<Node, Term<Ranges<Version>>>;
type Der = Derived<Node, Ranges<Version>, String>;

pub(crate) fn explain(tree: &Tree) -> String {
    DefaultStringReporter::report_with_formatter(tree, &Sentences)
}

struct Sentences;

/// `plugin` with its range, or alone when any version would do.
fn versions(node: &Node, range: &Ranges<Version>) -> String {
    if range == &Ranges::full() {
        format!("{node}")
    } else {
        format!("{node} {}", range_text(range))
    }
}

fn range_text(range: &Ranges<Version>) -> String {
    range.to_string().replace(" | ", " or ")
}

impl ReportFormatter<Node, Ranges<Version>, String> for Sentences {
    type Output = String;

    fn format_external(&self, external: &Ext) -> String {
        match external {
            External::NotRoot(node, _) => format!("{node} is what is being resolved"),
            External::NoVersions(node, range) if range == &Ranges::full() => {
                format!("no version of {node} is published")
            }
            // What is left after the versions already ruled out: "the others".
            External::NoVersions(node, range) => match range.complement().as_singleton() {
                Some(version) => format!("{node} has no usable version other than {version}"),
                None => format!("no usable version of {node} matches {}", range_text(range)),
            },
            External::Custom(node, range, reason) => format!("{} {reason}", versions(node, range)),
            External::FromDependencyOf(Node::Space, _, dependency, range) => {
                format!("the space requires {}", versions(dependency, range))
            }
            External::FromDependencyOf(node, range, dependency, dependency_range) => format!(
                "{} depends on {}",
                versions(node, range),
                versions(dependency, dependency_range)
            ),
        }
    }

    fn format_terms(&self, terms: &Terms) -> String {
        let terms: Vec<_> = terms.iter().collect();
        match terms.as_slice() {
            [] | [(Node::Space, _)] => "the requested plugins cannot be installed together".into(),
            [(node, Term::Positive(range))] => format!("{} cannot be used", versions(node, range)),
            [(node, Term::Negative(range))] => format!("{} is required", versions(node, range)),
            [
                (node, Term::Positive(range)),
                (dependency, Term::Negative(dependency_range)),
            ]
            | [
                (dependency, Term::Negative(dependency_range)),
                (node, Term::Positive(range)),
            ] => self.format_external(&External::FromDependencyOf(
                (*node).clone(),
                range.clone(),
                (*dependency).clone(),
                dependency_range.clone(),
            )),
            terms => {
                let listed: Vec<String> = terms
                    .iter()
                    .map(|(node, term)| match term {
                        Term::Positive(range) => versions(node, range),
                        Term::Negative(range) => format!("not {}", versions(node, range)),
                    })
                    .collect();
                let (last, rest) = listed.split_last().expect("more than two terms");
                format!(
                    "{} and {last} cannot be installed together",
                    rest.join(", ")
                )
            }
        }
    }

    fn explain_both_external(&self, first: &Ext, second: &Ext, terms: &Terms) -> String {
        format!(
            "Because {} and {}, {}.",
            self.format_external(first),
            self.format_external(second),
            self.format_terms(terms)
        )
    }

    fn explain_both_ref(
        &self,
        first_id: usize,
        first: &Der,
        second_id: usize,
        second: &Der,
        terms: &Terms,
    ) -> String {
        format!(
            "Because {} ({first_id}) and {} ({second_id}), {}.",
            self.format_terms(&first.terms),
            self.format_terms(&second.terms),
            self.format_terms(terms)
        )
    }

    fn explain_ref_and_external(
        &self,
        id: usize,
        derived: &Der,
        external: &Ext,
        terms: &Terms,
    ) -> String {
        format!(
            "Because {} ({id}) and {}, {}.",
            self.format_terms(&derived.terms),
            self.format_external(external),
            self.format_terms(terms)
        )
    }

    fn and_explain_external(&self, external: &Ext, terms: &Terms) -> String {
        format!(
            "And because {}, {}.",
            self.format_external(external),
            self.format_terms(terms)
        )
    }

    fn and_explain_ref(&self, id: usize, derived: &Der, terms: &Terms) -> String {
        format!(
            "And because {} ({id}), {}.",
            self.format_terms(&derived.terms),
            self.format_terms(terms)
        )
    }

    fn and_explain_prior_and_external(&self, prior: &Ext, external: &Ext, terms: &Terms) -> String {
        format!(
            "And because {} and {}, {}.",
            self.format_external(prior),
            self.format_external(external),
            self.format_terms(terms)
        )
    }
}
