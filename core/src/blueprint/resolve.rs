//! Install order: every dependency before what needs it, each blueprint once, the same order
//! every time.

use std::collections::HashSet;

use super::catalogue::Catalogue;
use super::suggest::did_you_mean;

/// Why an install order cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A root or dependency names no blueprint in the catalogue.
    #[error("no blueprint named '{name}'{}{}", required_by_text(required_by.as_deref()), did_you_mean(suggestions))]
    Unknown {
        /// The missing name.
        name: String,
        /// The blueprint that depends on it; `None` for a requested root.
        required_by: Option<String>,
        /// Existing names close to it.
        suggestions: Vec<String>,
    },
    /// Blueprints depend on each other in a circle.
    #[error("dependency cycle: {}", path.join(" -> "))]
    Cycle {
        /// The full circle, first name repeated at the end: `a -> b -> c -> a`.
        path: Vec<String>,
    },
}

fn required_by_text(required_by: Option<&str>) -> String {
    required_by
        .map(|by| format!(" (required by {by})"))
        .unwrap_or_default()
}

impl Catalogue {
    /// The blueprints to install for `roots`, dependencies first.
    ///
    /// Dependencies are visited in the order they are declared, roots in the order given;
    /// a dependency shared by several blueprints appears once, before the first that needs
    /// it. `authentik` gives `[postgresql, redis, authentik]`.
    pub fn resolve_install_order(&self, roots: &[&str]) -> Result<Vec<String>, ResolveError> {
        let mut walk = Walk {
            catalogue: self,
            done: HashSet::new(),
            stack: Vec::new(),
            order: Vec::new(),
        };
        for root in roots {
            walk.visit(root, None)?;
        }
        Ok(walk.order)
    }

    /// The dependencies of `name`, in install order, without `name` itself.
    pub fn dependencies_of(&self, name: &str) -> Result<Vec<String>, ResolveError> {
        let mut order = self.resolve_install_order(&[name])?;
        order.pop();
        Ok(order)
    }
}

struct Walk<'a> {
    catalogue: &'a Catalogue,
    done: HashSet<String>,
    stack: Vec<String>,
    order: Vec<String>,
}

impl Walk<'_> {
    fn visit(&mut self, name: &str, required_by: Option<&str>) -> Result<(), ResolveError> {
        if self.done.contains(name) {
            return Ok(());
        }
        if let Some(start) = self.stack.iter().position(|entry| entry == name) {
            let mut path = self.stack[start..].to_vec();
            path.push(name.to_owned());
            return Err(ResolveError::Cycle { path });
        }
        let Some(blueprint) = self.catalogue.get(name) else {
            return Err(ResolveError::Unknown {
                name: name.to_owned(),
                required_by: required_by.map(str::to_owned),
                suggestions: self.catalogue.closest(name),
            });
        };
        self.stack.push(name.to_owned());
        for dependency in &blueprint.dependencies {
            self.visit(dependency, Some(name))?;
        }
        self.stack.pop();
        self.done.insert(name.to_owned());
        self.order.push(name.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blueprint::parse_blueprint;

    fn catalogue(graph: &[(&str, &[&str])]) -> Catalogue {
        let blueprints = graph
            .iter()
            .map(|(name, deps)| {
                let yaml = format!(
                    "name: {name}\ndefaults: {{ image: busybox }}\ndependencies: [{}]\n",
                    deps.join(", ")
                );
                parse_blueprint(&yaml).expect("valid test blueprint")
            })
            .collect();
        Catalogue::from_blueprints(blueprints)
    }

    #[test]
    fn authentik_installs_its_database_and_cache_first() {
        let order = Catalogue::builtin()
            .resolve_install_order(&["authentik"])
            .expect("resolvable");
        assert_eq!(order, vec!["postgresql", "redis", "authentik"]);
    }

    #[test]
    fn a_diamond_installs_the_shared_dependency_once() {
        let graph = catalogue(&[
            ("app", &["api", "web"]),
            ("api", &["db"]),
            ("web", &["db"]),
            ("db", &[]),
        ]);
        let order = graph.resolve_install_order(&["app"]).expect("resolvable");
        assert_eq!(order, vec!["db", "api", "web", "app"]);
    }

    #[test]
    fn several_roots_share_dependencies_and_keep_their_order() {
        let order = Catalogue::builtin()
            .resolve_install_order(&["redis", "authentik", "redis"])
            .expect("resolvable");
        assert_eq!(order, vec!["redis", "postgresql", "authentik"]);
    }

    #[test]
    fn a_cycle_reports_the_full_path() {
        let graph = catalogue(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("x", &["a"])]);
        let error = graph.resolve_install_order(&["x"]).expect_err("cycle");
        assert_eq!(
            error,
            ResolveError::Cycle {
                path: vec!["a".into(), "b".into(), "c".into(), "a".into()]
            }
        );
        assert_eq!(error.to_string(), "dependency cycle: a -> b -> c -> a");
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let error = Catalogue::builtin()
            .resolve_install_order(&["postgress"])
            .expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "no blueprint named 'postgress'; did you mean 'postgresql'?"
        );
        let graph = catalogue(&[("app", &["reddis"]), ("redis", &[])]);
        let error = graph
            .resolve_install_order(&["app"])
            .expect_err("unknown dependency");
        assert_eq!(
            error.to_string(),
            "no blueprint named 'reddis' (required by app); did you mean 'redis'?"
        );
    }
}
