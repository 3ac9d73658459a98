//! The checks every parsed intent passes, whoever produced it: the rule parser or a model.
//! A model's answer is held to exactly the rules a person's words are, so an answer naming a
//! blueprint outside the catalogue or a namespace Kubernetes would refuse never gets further.

use crate::blueprint::is_dns_label;
use crate::blueprint::suggest::{closest, did_you_mean};

use super::model::{IntentAction, ParsedIntent};

/// Longest command accepted, in characters.
pub const MAX_COMMAND_CHARS: usize = 500;

/// Most replicas a command may ask for.
pub const MAX_REPLICAS: u32 = 100;

/// Longest version accepted (`update … to version V`), in characters.
pub const MAX_VERSION_CHARS: usize = 64;

/// Short names accepted for blueprints: `(alias, blueprint)`. An alias applies only when the
/// catalogue has the blueprint and has nothing named like the alias itself, so a project's own
/// blueprint called `postgres` always wins.
pub const APPLICATION_ALIASES: &[(&str, &str)] =
    &[("postgres", "postgresql"), ("mongo", "mongodb")];

/// At most this many catalogue names are listed when an unknown application has no close match.
const LISTED_NAMES: usize = 12;

/// What is wrong with an intent, each problem phrased for a person.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    /// One sentence per problem.
    pub messages: Vec<String>,
    /// Closest blueprint names when the application is unknown.
    pub suggestions: Vec<String>,
}

impl Problems {
    fn push(&mut self, message: String) {
        self.messages.push(message);
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// Normalises `intent` in place (names lowercased, aliases resolved) and reports every rule
/// it breaks. `blueprints` are the names in the caller's catalogue.
pub(crate) fn check_intent(intent: &mut ParsedIntent, blueprints: &[&str]) -> Problems {
    let mut problems = Problems::default();
    check_application(intent, blueprints, &mut problems);
    if let Some(namespace) = &mut intent.namespace {
        *namespace = namespace.to_lowercase();
        if !is_dns_label(namespace) {
            problems.push(format!(
                "namespace '{namespace}' must be a DNS label (lowercase letters, digits and '-', \
                 at most 63 characters)"
            ));
        }
    }
    if let Some(domain) = &mut intent.domain {
        *domain = domain.to_lowercase();
        if !is_host_name(domain) {
            problems.push(format!(
                "domain '{domain}' is not a host name like auth.example.com"
            ));
        }
    }
    check_replicas(intent, &mut problems);
    if let Some(version) = &intent.version
        && !is_version(version)
    {
        problems.push(format!(
            "version '{version}' must be letters, digits, '.', '-', '+' or '_' \
             (at most {MAX_VERSION_CHARS} characters), e.g. 16.2 or v1.4.0"
        ));
    }
    check_clauses_fit_action(intent, &mut problems);
    problems
}

/// The catalogue name `word` stands for: itself, or the blueprint it is an alias of.
pub(crate) fn resolve_application(word: &str, blueprints: &[&str]) -> Option<String> {
    if blueprints.contains(&word) {
        return Some(word.to_owned());
    }
    APPLICATION_ALIASES
        .iter()
        .find(|(alias, target)| *alias == word && blueprints.contains(target))
        .map(|(_, target)| (*target).to_owned())
}

fn check_application(intent: &mut ParsedIntent, blueprints: &[&str], problems: &mut Problems) {
    let wanted = intent.application.trim().to_lowercase();
    if wanted.is_empty() {
        problems.push(format!(
            "missing the application, e.g. \"{} redis\"",
            intent.action.as_str()
        ));
        return;
    }
    if let Some(name) = resolve_application(&wanted, blueprints) {
        intent.application = name;
        return;
    }
    let suggestions = closest(&wanted, blueprints.iter().copied());
    let hint = if !suggestions.is_empty() {
        did_you_mean(&suggestions)
    } else if blueprints.is_empty() {
        "; the catalogue has no blueprints".to_owned()
    } else if blueprints.len() <= LISTED_NAMES {
        let mut names = blueprints.to_vec();
        names.sort_unstable();
        format!("; the catalogue has {}", names.join(", "))
    } else {
        String::new()
    };
    problems.push(format!("unknown application '{wanted}'{hint}"));
    problems.suggestions = suggestions;
    intent.application = wanted;
}

fn check_replicas(intent: &ParsedIntent, problems: &mut Problems) {
    let least = match intent.action {
        IntentAction::Scale => 0,
        _ => 1,
    };
    match intent.replicas {
        None if intent.action == IntentAction::Scale => problems.push(format!(
            "scale needs the number of replicas, e.g. \"scale {} to 3\"",
            display_name(&intent.application)
        )),
        Some(n) if !(least..=MAX_REPLICAS).contains(&n) => problems.push(format!(
            "replicas must be between {least} and {MAX_REPLICAS}, got {n}"
        )),
        _ => {}
    }
}

/// Rejects clauses that mean nothing for the action, e.g. a domain on `remove`.
fn check_clauses_fit_action(intent: &ParsedIntent, problems: &mut Problems) {
    use IntentAction::{Install, Remove, Restart, Update};
    let action = intent.action;
    let features = intent.features;
    let mut misplaced = Vec::new();
    if (features.tls || features.ingress || features.persistence)
        && !matches!(action, Install | Update)
    {
        misplaced.push("features (with tls, ingress, persistence)");
    }
    if intent.domain.is_some() && !matches!(action, Install | Update) {
        misplaced.push("a domain");
    }
    if intent.replicas.is_some() && matches!(action, Remove | Restart) {
        misplaced.push("replicas");
    }
    if intent.version.is_some() && action != Update {
        misplaced.push("a version");
    }
    if !misplaced.is_empty() {
        problems.push(format!(
            "{} cannot take {}",
            action.as_str(),
            misplaced.join(" or ")
        ));
    }
}

/// A host name: dot-separated DNS labels, at most 253 characters, not ending in a number
/// (that would be an IP address, not a domain).
pub(crate) fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(is_dns_label)
        && name
            .rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().any(|b| b.is_ascii_lowercase()))
}

/// A version or image tag: starts with a letter or digit, then letters, digits and `.-+_`.
pub(crate) fn is_version(version: &str) -> bool {
    let mut chars = version.chars();
    version.len() <= MAX_VERSION_CHARS
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
}

fn display_name(application: &str) -> &str {
    if application.is_empty() {
        "<application>"
    } else {
        application
    }
}
