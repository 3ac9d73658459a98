//! Shared object types: connections with a total count.

use async_graphql::OutputType;
use async_graphql::SimpleObject;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use orchestrator_core::paging::Page;

/// Extra connection fields.
#[derive(SimpleObject, Debug, Clone, Copy)]
pub struct ConnectionTotals {
    /// Rows matching the filter, over all pages.
    pub total_count: u64,
}

/// A Relay connection with `totalCount`.
pub type CountedConnection<N> = Connection<String, N, ConnectionTotals, EmptyFields>;

/// Turns a page of domain rows into a connection.
pub fn connection<T, N: OutputType>(page: Page<T>, map: impl Fn(T) -> N) -> CountedConnection<N> {
    let mut conn = Connection::with_additional_fields(
        page.has_previous_page,
        page.has_next_page,
        ConnectionTotals {
            total_count: page.total_count,
        },
    );
    conn.edges.extend(
        page.items
            .into_iter()
            .map(|(cursor, row)| Edge::new(cursor, map(row))),
    );
    conn
}
