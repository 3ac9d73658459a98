//! Shared pieces of the initial schema: the table-plus-indexes unit, index and foreign-key
//! builders, and the length of status-like columns.
//!
//! Index and constraint names are spelled out by the caller because PostgreSQL requires index
//! names to be unique across the whole schema, not per table.

use sea_orm_migration::prelude::*;

/// Length of every enum-like column (statuses, roles, priorities, platforms, outcomes). They
/// are bounded strings rather than native enums so that SQLite and PostgreSQL share one schema.
pub(super) const CODE_LEN: u32 = 16;

/// One table to create, with the indexes that go with it.
pub(super) struct TableSpec {
    /// The `CREATE TABLE`, including primary and foreign keys.
    pub(super) table: TableCreateStatement,
    /// Secondary indexes, created right after the table.
    pub(super) indexes: Vec<IndexCreateStatement>,
}

impl TableSpec {
    pub(super) fn new(table: TableCreateStatement, indexes: Vec<IndexCreateStatement>) -> Self {
        Self { table, indexes }
    }

    /// The `DROP TABLE` that undoes this table (its indexes go with it).
    pub(super) fn drop_statement(&self) -> TableDropStatement {
        let name = self
            .table
            .get_table_name()
            .cloned()
            .expect("every table of the schema is created with a name");
        Table::drop().table(name).to_owned()
    }
}

/// A non-unique index on `columns` of `table`, in that order.
pub(super) fn index<T, C>(
    name: &str,
    table: T,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement
where
    T: IntoIden,
    C: IntoIndexColumn,
{
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(column);
    }
    index
}

/// A unique index on `columns` of `table`. NULLs stay distinct, so rows whose key contains a
/// NULL never conflict (the same on SQLite and PostgreSQL).
pub(super) fn unique_index<T, C>(
    name: &str,
    table: T,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement
where
    T: IntoIden,
    C: IntoIndexColumn,
{
    let mut index = index(name, table, columns);
    index.unique();
    index
}

/// A foreign key from `child.column` to `parent.id` whose rows are deleted with the parent.
pub(super) fn cascade_to<C, F, P, K>(
    name: &str,
    child: C,
    column: F,
    parent: P,
    parent_key: K,
) -> ForeignKeyCreateStatement
where
    C: IntoIden,
    F: IntoIden,
    P: IntoIden,
    K: IntoIden,
{
    ForeignKey::create()
        .name(name)
        .from(child, column)
        .to(parent, parent_key)
        .on_delete(ForeignKeyAction::Cascade)
        .on_update(ForeignKeyAction::NoAction)
        .to_owned()
}
