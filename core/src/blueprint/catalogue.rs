//! The set of blueprints a deployment can draw on: the builtins compiled into the binary,
//! optionally overlaid with a project's own blueprints.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use super::model::Blueprint;
use super::parse::{BlueprintError, parse_blueprint};
use super::suggest::closest;

/// The builtin blueprint files, embedded so the binary needs no files at run time.
pub const BUILTIN_SOURCES: [(&str, &str); 10] = [
    (
        "aaf-backend",
        include_str!("../../../blueprints/aaf-backend.yaml"),
    ),
    (
        "authentik",
        include_str!("../../../blueprints/authentik.yaml"),
    ),
    (
        "database",
        include_str!("../../../blueprints/database.yaml"),
    ),
    ("mongodb", include_str!("../../../blueprints/mongodb.yaml")),
    ("nginx", include_str!("../../../blueprints/nginx.yaml")),
    (
        "postgresql",
        include_str!("../../../blueprints/postgresql.yaml"),
    ),
    ("redis", include_str!("../../../blueprints/redis.yaml")),
    (
        "simple-service",
        include_str!("../../../blueprints/simple-service.yaml"),
    ),
    ("traefik", include_str!("../../../blueprints/traefik.yaml")),
    ("webapp", include_str!("../../../blueprints/webapp.yaml")),
];

/// Where a catalogue entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Shipped in `blueprints/`.
    Builtin,
    /// Added by a user; shadows a builtin of the same name.
    User,
}

#[derive(Debug, Clone)]
struct Entry {
    blueprint: Arc<Blueprint>,
    origin: Origin,
}

/// Blueprints by name. Cheap to clone: entries are shared.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    entries: BTreeMap<String, Entry>,
}

impl Catalogue {
    /// The builtin blueprints.
    ///
    /// # Panics
    /// If a builtin file is invalid; the unit tests parse every builtin, so this cannot
    /// happen in a tested build.
    pub fn builtin() -> Catalogue {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN
            .get_or_init(|| match Catalogue::parse_builtins() {
                Ok(catalogue) => catalogue,
                Err((name, errors)) => panic!("builtin blueprint {name} is invalid: {errors:?}"),
            })
            .clone()
    }

    /// Parses the embedded builtin files, naming the first one that fails.
    pub fn parse_builtins() -> Result<Catalogue, (String, Vec<BlueprintError>)> {
        let mut catalogue = Catalogue::default();
        for (name, source) in BUILTIN_SOURCES {
            let blueprint = parse_blueprint(source).map_err(|errors| (name.to_owned(), errors))?;
            catalogue.insert(blueprint, Origin::Builtin);
        }
        Ok(catalogue)
    }

    /// A catalogue of exactly these blueprints, all counted as user blueprints.
    pub fn from_blueprints(blueprints: Vec<Blueprint>) -> Catalogue {
        Catalogue::default().with_overlay(blueprints)
    }

    /// This catalogue plus `user` blueprints; a user blueprint replaces an entry of the same
    /// name. Dependencies are not re-checked here; see [`super::validate_against`].
    pub fn with_overlay(&self, user: Vec<Blueprint>) -> Catalogue {
        let mut catalogue = self.clone();
        for blueprint in user {
            catalogue.insert(blueprint, Origin::User);
        }
        catalogue
    }

    fn insert(&mut self, blueprint: Blueprint, origin: Origin) {
        let entry = Entry {
            blueprint: Arc::new(blueprint),
            origin,
        };
        self.entries.insert(entry.blueprint.name.clone(), entry);
    }

    /// The blueprint called `name`.
    pub fn get(&self, name: &str) -> Option<&Blueprint> {
        self.entries.get(name).map(|entry| entry.blueprint.as_ref())
    }

    /// Where the entry called `name` came from.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.entries.get(name).map(|entry| entry.origin)
    }

    /// Whether a blueprint called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Names in alphabetical order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Blueprints in alphabetical order of name.
    pub fn iter(&self) -> impl Iterator<Item = &Blueprint> {
        self.entries.values().map(|entry| entry.blueprint.as_ref())
    }

    /// Number of blueprints.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the catalogue is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Up to three existing names closest to `name`, for "did you mean" messages.
    pub fn closest(&self, name: &str) -> Vec<String> {
        closest(name, self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(name: &str, image: &str) -> Blueprint {
        parse_blueprint(&format!(
            "name: {name}\ndefaults: {{ image: \"{image}\" }}\n"
        ))
        .expect("valid")
    }

    #[test]
    fn every_builtin_parses_and_is_named_after_its_file() {
        let catalogue = Catalogue::parse_builtins()
            .unwrap_or_else(|(name, errors)| panic!("{name}: {errors:#?}"));
        for (name, _) in BUILTIN_SOURCES {
            assert!(
                catalogue.contains(name),
                "{name} missing: file name and `name:` differ"
            );
        }
        assert_eq!(catalogue.len(), BUILTIN_SOURCES.len());
    }

    #[test]
    fn every_builtin_passes_the_catalogue_checks() {
        let catalogue = Catalogue::builtin();
        for blueprint in catalogue.iter() {
            super::super::validate_against(blueprint, &catalogue)
                .unwrap_or_else(|errors| panic!("{}: {errors:#?}", blueprint.name));
        }
    }

    #[test]
    fn overlay_shadows_builtins_of_the_same_name() {
        let builtin = Catalogue::builtin();
        let overlaid = builtin.with_overlay(vec![minimal("redis", "valkey/valkey:8")]);
        assert_eq!(
            overlaid.get("redis").map(|b| b.defaults.image.as_str()),
            Some("valkey/valkey:8")
        );
        assert_eq!(overlaid.origin("redis"), Some(Origin::User));
        assert_eq!(overlaid.origin("postgresql"), Some(Origin::Builtin));
        assert_eq!(
            builtin.get("redis").map(|b| b.defaults.image.as_str()),
            Some("redis:7")
        );
        assert_eq!(overlaid.len(), builtin.len());
    }

    #[test]
    fn closest_names_for_typos() {
        assert_eq!(Catalogue::builtin().closest("postgres"), vec!["postgresql"]);
        assert_eq!(Catalogue::builtin().closest("mongo")[0], "mongodb");
    }
}
