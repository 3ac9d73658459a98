//! The role an API key or user acts with inside a project, from least to most powerful.

use std::fmt;
use std::str::FromStr;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What a caller may do: `VIEWER` reads, `OPERATOR` also runs and changes things, `ADMIN` also
/// manages keys and the project itself. Each role includes everything below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    #[sea_orm(string_value = "VIEWER")]
    Viewer,
    #[sea_orm(string_value = "OPERATOR")]
    Operator,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

impl Role {
    /// True when a caller holding `self` may do something that needs `needed`
    /// (`ADMIN` > `OPERATOR` > `VIEWER`).
    pub fn allows(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }

    fn rank(self) -> u8 {
        match self {
            Self::Viewer => 0,
            Self::Operator => 1,
            Self::Admin => 2,
        }
    }
}

/// A string that names no role; the message lists the accepted ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role {:?}: expected viewer, operator or admin",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;

    /// Accepts `viewer`, `operator` and `admin` in any letter case (`ADMIN`, `Admin`, ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Viewer, Self::Operator, Self::Admin]
            .into_iter()
            .find(|role| role.to_value().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_roles_include_lower_ones() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Admin.allows(Role::Viewer));
        assert!(Role::Operator.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
        assert!(!Role::Viewer.allows(Role::Operator));
    }

    #[test]
    fn parses_lower_and_upper_case() {
        assert_eq!("viewer".parse::<Role>(), Ok(Role::Viewer));
        assert_eq!("OPERATOR".parse::<Role>(), Ok(Role::Operator));
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
    }

    #[test]
    fn rejects_unknown_roles_with_a_useful_message() {
        let err = "owner".parse::<Role>().unwrap_err();
        assert_eq!(err, UnknownRole("owner".to_owned()));
        assert!(err.to_string().contains("viewer, operator or admin"));
        assert!(" admin".parse::<Role>().is_err());
    }
}
