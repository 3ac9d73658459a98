//! The rule parser for intent commands: pure, instant, and the fallback whenever a model is
//! not configured or not trusted with a command.
//!
//! ```text
//! <action> <application> [with <feature> [and <feature>…]] [in namespace <ns>]
//!          [on domain <d>] [with <n> replicas] [on docker|kubernetes]
//! ```
//!
//! Words are case-insensitive; the clauses come in any order after the application and may be
//! joined with `and` or commas. What each part accepts:
//!
//! | part | accepted words |
//! |---|---|
//! | action | `install`, `deploy`, `add` · `remove`, `uninstall`, `delete` · `scale` · `update`, `upgrade` · `restart` |
//! | application | a blueprint name of the caller's catalogue, or an alias of one ([`APPLICATION_ALIASES`]) |
//! | features | `with tls` (also `https`, `ssl`), `with ingress` (also `an ingress`), `with persistence` (also `persistent [storage\|volumes]`) |
//! | namespace | `in namespace X`, `in the X namespace`, `to namespace X`, `namespace X` (`ns` for `namespace`) |
//! | domain | `on domain X`, `at domain X`, `with domain X`, `domain X`, or `on X` / `at X` when X has a dot |
//! | replicas | `with N replicas`, `N replicas` (also `replica`, `instances`, `instance`, `copies`); for `scale`: `to N [replicas]` |
//! | version | `update X to version V`, `update X to V`, `version V` |
//! | platform | `on`, `in`, `to` or `using` followed by `docker`, `kubernetes` or `k8s` |
//!
//! Application, namespace and domain are lowercased; a version keeps its case. A period or
//! exclamation mark at the very end is ignored. Clauses must fit the action: only `install`
//! and `update` take features and a domain, only `update` a version, `remove` and `restart`
//! no replicas; `scale` needs a number (0 to 100; other actions 1 to 100). Anything left over
//! fails the command with what was and was not understood, so a typo never silently drops a
//! part of what was asked.
//!
//! [`APPLICATION_ALIASES`]: super::APPLICATION_ALIASES

mod clauses;

use std::fmt::Display;

use crate::blueprint::suggest::{closest, did_you_mean};

use self::clauses::{Clauses, Feature, Part, Word, split_words};
use super::model::{IntentAction, IntentFeatures, ParseFailure, ParsedIntent};
use super::validate::{MAX_COMMAND_CHARS, MAX_REPLICAS, check_intent};

/// The words that start a command, with the action each stands for.
const ACTIONS: &[(&str, IntentAction)] = &[
    ("install", IntentAction::Install),
    ("deploy", IntentAction::Install),
    ("add", IntentAction::Install),
    ("remove", IntentAction::Remove),
    ("uninstall", IntentAction::Remove),
    ("delete", IntentAction::Remove),
    ("scale", IntentAction::Scale),
    ("update", IntentAction::Update),
    ("upgrade", IntentAction::Update),
    ("restart", IntentAction::Restart),
];

/// Parses `text` by the intent grammar. `blueprints` are the names in the caller's catalogue:
/// the application must be one of them (or an alias of one), whatever the action.
///
/// On failure the [`ParseFailure`] says what was understood, lists the words that were not
/// (as written), and for an unknown application suggests the closest blueprint names.
pub fn parse_command(text: &str, blueprints: &[&str]) -> Result<ParsedIntent, ParseFailure> {
    let text = text.trim();
    check_length(text)?;
    let words = split_words(text);
    let first = &words[0];
    let Some(action) = action_of(&first.lower) else {
        return Err(unknown_action(text, first.raw));
    };
    let mut parser = Parser::new(text, action);
    parser.run(&words);
    parser.finish(blueprints)
}

/// Rejects an empty or too long command before anything else looks at it.
pub(crate) fn check_length(text: &str) -> Result<(), ParseFailure> {
    let message = if text.trim().is_empty() {
        "the command is empty; write what to do, e.g. \"install redis\"".to_owned()
    } else {
        let length = text.chars().count();
        if length <= MAX_COMMAND_CHARS {
            return Ok(());
        }
        format!("the command is {length} characters long; at most {MAX_COMMAND_CHARS} are accepted")
    };
    Err(ParseFailure {
        message,
        understood: Vec::new(),
        not_understood: Vec::new(),
        suggestions: Vec::new(),
    })
}

fn action_of(word: &str) -> Option<IntentAction> {
    ACTIONS
        .iter()
        .find(|(name, _)| *name == word)
        .map(|(_, action)| *action)
}

fn unknown_action(text: &str, first: &str) -> ParseFailure {
    let names: Vec<&str> = ACTIONS.iter().map(|(name, _)| *name).collect();
    let hint = did_you_mean(&closest(&first.to_lowercase(), names.iter().copied()));
    let (last, rest) = names.split_last().expect("there are actions");
    ParseFailure {
        message: format!(
            "could not understand \"{first}\" in \"{text}\": a command starts with {} or {last}{hint}",
            rest.join(", ")
        ),
        understood: Vec::new(),
        not_understood: vec![first.to_owned()],
        suggestions: Vec::new(),
    }
}

/// The state of one parse: the intent so far and what was and was not understood.
struct Parser<'t> {
    text: &'t str,
    intent: ParsedIntent,
    understood: Vec<String>,
    not_understood: Vec<String>,
    problems: Vec<String>,
}

impl<'t> Parser<'t> {
    fn new(text: &'t str, action: IntentAction) -> Self {
        Parser {
            text,
            intent: ParsedIntent {
                action,
                application: String::new(),
                platform: None,
                namespace: None,
                domain: None,
                replicas: None,
                version: None,
                features: IntentFeatures::default(),
            },
            understood: vec![format!("action: {}", action.as_str())],
            not_understood: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Reads the application (the word after the action, unless it starts a clause) and
    /// then clause after clause; runs of words no clause explains are kept as written.
    fn run(&mut self, words: &[Word<'_>]) {
        let clauses = Clauses::new(words, self.intent.action);
        let mut at = 1;
        if let Some(application) = clauses.value(1) {
            self.intent.application = application.to_owned();
            at = 2;
        }
        let mut leftover: Vec<&str> = Vec::new();
        while at < words.len() {
            match clauses.clause(at) {
                Some((used, parts)) => {
                    self.flush(&mut leftover);
                    parts.into_iter().for_each(|part| self.apply(part));
                    at += used;
                }
                None => {
                    leftover.push(words[at].raw);
                    at += 1;
                }
            }
        }
        self.flush(&mut leftover);
    }

    fn flush(&mut self, leftover: &mut Vec<&str>) {
        if !leftover.is_empty() {
            self.not_understood.push(leftover.join(" "));
            leftover.clear();
        }
    }

    fn apply(&mut self, part: Part) {
        let (understood, problems) = (&mut self.understood, &mut self.problems);
        match part {
            Part::Namespace(name) => settle(
                &mut self.intent.namespace,
                name,
                "namespace",
                "namespaces",
                understood,
                problems,
            ),
            Part::Domain(host) => settle(
                &mut self.intent.domain,
                host,
                "domain",
                "domains",
                understood,
                problems,
            ),
            Part::Platform(platform) => settle(
                &mut self.intent.platform,
                platform,
                "platform",
                "platforms",
                understood,
                problems,
            ),
            Part::Version(version) => settle(
                &mut self.intent.version,
                version,
                "version",
                "versions",
                understood,
                problems,
            ),
            Part::Replicas(digits) => match digits.parse::<u32>() {
                Ok(n) => settle(
                    &mut self.intent.replicas,
                    n,
                    "replicas",
                    "replica counts",
                    understood,
                    problems,
                ),
                Err(_) => problems.push(format!(
                    "replicas must be at most {MAX_REPLICAS}, got {digits}"
                )),
            },
            Part::Feature(feature) => {
                let (flag, name) = match feature {
                    Feature::Tls => (&mut self.intent.features.tls, "tls"),
                    Feature::Ingress => (&mut self.intent.features.ingress, "ingress"),
                    Feature::Persistence => (&mut self.intent.features.persistence, "persistence"),
                };
                if !*flag {
                    *flag = true;
                    understood.push(format!("feature: {name}"));
                }
            }
            Part::Missing(problem) => problems.push(problem.to_owned()),
        }
    }

    fn finish(mut self, blueprints: &[&str]) -> Result<ParsedIntent, ParseFailure> {
        let checked = check_intent(&mut self.intent, blueprints);
        if blueprints.contains(&self.intent.application.as_str()) {
            self.understood
                .insert(1, format!("application: {}", self.intent.application));
        }
        let mut problems = self.problems;
        problems.extend(checked.messages);
        if problems.is_empty() && self.not_understood.is_empty() {
            return Ok(self.intent);
        }
        if !self.not_understood.is_empty() {
            let quoted: Vec<String> = self
                .not_understood
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect();
            let mut sentence = format!(
                "could not understand {} in \"{}\"",
                quoted.join(" and "),
                self.text
            );
            if !self.understood.is_empty() {
                let parts: Vec<String> = self
                    .understood
                    .iter()
                    .map(|u| u.replacen(": ", " ", 1))
                    .collect();
                sentence.push_str(&format!("; understood: {}", parts.join(", ")));
            }
            problems.push(sentence);
        }
        Err(ParseFailure {
            message: join_sentences(&problems),
            understood: self.understood,
            not_understood: self.not_understood,
            suggestions: checked.suggestions,
        })
    }
}

/// Records a single-valued clause; saying the same thing twice is fine, two different values
/// are a conflict.
fn settle<T: PartialEq + Display>(
    slot: &mut Option<T>,
    value: T,
    label: &str,
    plural: &str,
    understood: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    match slot {
        Some(old) if *old != value => {
            problems.push(format!(
                "two {plural} given: '{old}' and '{value}'; give one"
            ));
        }
        Some(_) => {}
        None => {
            understood.push(format!("{label}: {value}"));
            *slot = Some(value);
        }
    }
}

/// Joins problems with `; `, except after a question ("did you mean 'x'?").
pub(crate) fn join_sentences(parts: &[String]) -> String {
    let mut message = String::new();
    for part in parts {
        if !message.is_empty() {
            message.push_str(if message.ends_with('?') { " " } else { "; " });
        }
        message.push_str(part);
    }
    message
}
