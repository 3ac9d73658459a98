//! The clauses of an intent command: which words form one, and what it says. Recognising is
//! pure lookahead over the words; the parser decides what to do with the parts.

use crate::blueprint::Platform;
use crate::intent::model::IntentAction;

/// Words that start a clause, so they are never taken for a name or a value.
pub(super) const KEYWORDS: &[&str] = &[
    "with",
    "in",
    "into",
    "on",
    "at",
    "to",
    "using",
    "and",
    ",",
    "namespace",
    "ns",
    "domain",
    "version",
];

const REPLICA_UNITS: &[&str] = &["replicas", "replica", "instances", "instance", "copies"];

/// One word of the command, as written and lowercased.
pub(super) struct Word<'t> {
    pub raw: &'t str,
    pub lower: String,
}

/// Splits on whitespace, makes each comma a word of its own, and drops a sentence-ending
/// `.` or `!` from the last word.
pub(super) fn split_words(text: &str) -> Vec<Word<'_>> {
    let mut raws: Vec<&str> = Vec::new();
    for piece in text.split_whitespace() {
        let mut rest = piece;
        while let Some(comma) = rest.find(',') {
            if comma > 0 {
                raws.push(&rest[..comma]);
            }
            raws.push(",");
            rest = &rest[comma + 1..];
        }
        if !rest.is_empty() {
            raws.push(rest);
        }
    }
    if let Some(last) = raws.last_mut() {
        let trimmed = last.trim_end_matches(['.', '!']);
        if !trimmed.is_empty() {
            *last = trimmed;
        }
    }
    raws.into_iter()
        .map(|raw| Word {
            raw,
            lower: raw.to_lowercase(),
        })
        .collect()
}

/// A feature named after `with`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feature {
    Tls,
    Ingress,
    Persistence,
}

/// One recognised piece of a clause.
pub(super) enum Part {
    Namespace(String),
    Domain(String),
    Platform(Platform),
    /// Digits as written; converted (and range-checked) when applied.
    Replicas(String),
    Version(String),
    Feature(Feature),
    /// A clause keyword without its value, e.g. `in namespace` at the end.
    Missing(&'static str),
}

/// Recognises clauses in the words of one command.
pub(super) struct Clauses<'w, 't> {
    words: &'w [Word<'t>],
    action: IntentAction,
}

/// A recognised clause: how many words it spans and what it says.
pub(super) type Found = Option<(usize, Vec<Part>)>;

impl<'w, 't> Clauses<'w, 't> {
    pub(super) fn new(words: &'w [Word<'t>], action: IntentAction) -> Self {
        Clauses { words, action }
    }

    pub(super) fn word(&self, at: usize) -> Option<&str> {
        self.words.get(at).map(|w| w.lower.as_str())
    }

    /// The word at `at` when it can be a name or value (it exists and is no keyword).
    pub(super) fn value(&self, at: usize) -> Option<&str> {
        self.word(at).filter(|w| !KEYWORDS.contains(w))
    }

    /// The clause starting at `at`: how many words it spans and what it says.
    pub(super) fn clause(&self, at: usize) -> Found {
        let after = |found: Found| found.map(|(n, parts)| (n + 1, parts));
        match self.word(at)? {
            "and" | "," if !matches!(self.word(at + 1), Some("and" | ",")) => {
                after(self.clause(at + 1))
            }
            "with" => after(
                self.replicas(at + 1)
                    .or_else(|| self.domain(at + 1, false))
                    .or_else(|| self.namespace(at + 1))
                    .or_else(|| self.features(at + 1)),
            ),
            "in" | "into" => after(self.namespace(at + 1).or_else(|| self.platform(at + 1))),
            "to" => after(
                self.namespace(at + 1)
                    .or_else(|| self.platform(at + 1))
                    .or_else(|| self.target(at + 1)),
            ),
            "on" | "at" => after(
                self.domain(at + 1, true)
                    .or_else(|| self.platform(at + 1))
                    .or_else(|| self.version(at + 1)),
            ),
            "using" => after(self.platform(at + 1)),
            "namespace" | "ns" => self.namespace(at),
            "domain" => self.domain(at, false),
            "version" => self.version(at),
            _ => self.replicas(at),
        }
    }

    fn skip_the(&self, at: usize) -> usize {
        usize::from(self.word(at) == Some("the"))
    }

    /// `namespace X` or `X namespace`, after an optional `the`.
    fn namespace(&self, at: usize) -> Found {
        let the = self.skip_the(at);
        let at = at + the;
        if matches!(self.word(at)?, "namespace" | "ns") {
            let part = match self.value(at + 1) {
                Some(name) => (the + 2, Part::Namespace(name.to_owned())),
                None => (
                    the + 1,
                    Part::Missing("a namespace needs a name, e.g. \"in namespace auth\""),
                ),
            };
            return Some((part.0, vec![part.1]));
        }
        let name = self.value(at)?;
        matches!(self.word(at + 1), Some("namespace" | "ns"))
            .then(|| (the + 2, vec![Part::Namespace(name.to_owned())]))
    }

    /// `domain X`, or (when `dotted` is allowed) a bare host name with a dot in it.
    fn domain(&self, at: usize, dotted: bool) -> Found {
        let the = self.skip_the(at);
        let at = at + the;
        let word = self.word(at)?;
        if word == "domain" {
            return Some(match self.value(at + 1) {
                Some(host) => (the + 2, vec![Part::Domain(host.to_owned())]),
                None => (
                    the + 1,
                    vec![Part::Missing(
                        "a domain needs a host name, e.g. \"on domain auth.example.com\"",
                    )],
                ),
            });
        }
        (dotted && the == 0 && word.contains('.') && !KEYWORDS.contains(&word))
            .then(|| (1, vec![Part::Domain(word.to_owned())]))
    }

    fn platform(&self, at: usize) -> Found {
        let platform = match self.word(at)? {
            "kubernetes" | "k8s" => Platform::Kubernetes,
            "docker" => Platform::Docker,
            _ => return None,
        };
        Some((1, vec![Part::Platform(platform)]))
    }

    /// `N replicas` (or another unit word).
    fn replicas(&self, at: usize) -> Found {
        let digits = self.number(at)?;
        REPLICA_UNITS
            .contains(&self.word(at + 1)?)
            .then(|| (2, vec![Part::Replicas(digits.to_owned())]))
    }

    /// What follows `to` besides a namespace or platform: `scale … to N [replicas]`,
    /// `update … to [version] V`.
    fn target(&self, at: usize) -> Found {
        if let Some(found) = self.replicas(at).or_else(|| self.version(at)) {
            return Some(found);
        }
        match self.action {
            IntentAction::Scale => {
                let digits = self.number(at)?;
                Some((1, vec![Part::Replicas(digits.to_owned())]))
            }
            IntentAction::Update => {
                let raw = self.value(at).map(|_| self.words[at].raw)?;
                Some((1, vec![Part::Version(raw.to_owned())]))
            }
            _ => None,
        }
    }

    /// `version V`; the version keeps its case.
    fn version(&self, at: usize) -> Found {
        if self.word(at)? != "version" {
            return None;
        }
        Some(match self.value(at + 1) {
            Some(_) => (2, vec![Part::Version(self.words[at + 1].raw.to_owned())]),
            None => (
                1,
                vec![Part::Missing(
                    "a version needs a value, e.g. \"to version 16.2\"",
                )],
            ),
        })
    }

    /// `tls [and ingress [, persistence]]`: one or more features, joined by `and` or commas.
    fn features(&self, at: usize) -> Found {
        let (mut used, first) = self.feature(at)?;
        let mut parts = vec![Part::Feature(first)];
        while matches!(self.word(at + used), Some("and" | ",")) {
            let Some((n, next)) = self.feature(at + used + 1) else {
                break;
            };
            parts.push(Part::Feature(next));
            used += n + 1;
        }
        Some((used, parts))
    }

    fn feature(&self, at: usize) -> Option<(usize, Feature)> {
        let article = usize::from(matches!(self.word(at), Some("a" | "an")));
        let at = at + article;
        let (used, feature) = match self.word(at)? {
            "tls" | "https" | "ssl" => (1, Feature::Tls),
            "ingress" => (1, Feature::Ingress),
            "persistence" => (1, Feature::Persistence),
            "persistent" => {
                let noun = matches!(self.word(at + 1), Some("storage" | "volumes" | "volume"));
                (1 + usize::from(noun), Feature::Persistence)
            }
            _ => return None,
        };
        Some((article + used, feature))
    }

    fn number(&self, at: usize) -> Option<&str> {
        self.word(at)
            .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
    }
}
