//! How urgently an execution should be scheduled.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Scheduling priority of an execution; queues order by [`Priority::weight`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    #[sea_orm(string_value = "LOW")]
    Low,
    #[sea_orm(string_value = "NORMAL")]
    Normal,
    #[sea_orm(string_value = "HIGH")]
    High,
    #[sea_orm(string_value = "CRITICAL")]
    Critical,
}

impl Priority {
    /// A number that grows with urgency: `LOW` 0, `NORMAL` 1, `HIGH` 2, `CRITICAL` 3.
    pub fn weight(self) -> i32 {
        match self {
            Self::Low => 0,
            Self::Normal => 1,
            Self::High => 2,
            Self::Critical => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Iterable;

    #[test]
    fn weights_grow_with_urgency() {
        let weights: Vec<i32> = Priority::iter().map(Priority::weight).collect();
        assert_eq!(weights, [0, 1, 2, 3]);
    }
}
