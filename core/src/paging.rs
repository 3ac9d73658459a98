//! Relay-style paging: `first`/`after` in, a window of rows plus page info out. Cursors are
//! opaque to clients (base64 of the row offset).

use base64::Engine;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, QuerySelect, Select};

use crate::error::{CoreError, CoreResult};

/// Largest page a client may ask for.
pub const MAX_PAGE: u64 = 100;
/// Page size when the client does not say.
pub const DEFAULT_PAGE: u64 = 20;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: u64,
    pub limit: u64,
}

impl PageRequest {
    /// Validates `first` and decodes `after`.
    pub fn new(first: Option<i32>, after: Option<&str>) -> CoreResult<PageRequest> {
        let limit = match first {
            None => DEFAULT_PAGE,
            Some(n) if n >= 0 && (n as u64) <= MAX_PAGE => n as u64,
            Some(n) => {
                return Err(CoreError::bad_input(
                    "first",
                    format!("must be between 0 and {MAX_PAGE}, got {n}"),
                ));
            }
        };
        let offset = match after {
            None => 0,
            Some(cursor) => {
                decode_cursor(cursor).ok_or_else(|| {
                    CoreError::bad_input("after", "not a cursor this API returned")
                })? + 1
            }
        };
        Ok(PageRequest { offset, limit })
    }

    /// This page of `query` (already filtered and ordered), with the total count.
    pub async fn fetch<E>(
        self,
        db: &impl ConnectionTrait,
        query: Select<E>,
    ) -> CoreResult<Page<E::Model>>
    where
        E: EntityTrait,
        E::Model: Sync,
    {
        let total = query.clone().count(db).await?;
        let rows = query
            .offset(self.offset)
            .limit(self.limit + 1)
            .all(db)
            .await?;
        Ok(Page::from_rows(self, rows, total))
    }
}

/// Rows of one page with what a connection needs.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// `(cursor, row)` pairs.
    pub items: Vec<(String, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub total_count: u64,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched at `req.offset` with `limit + 1` rows asked for.
    pub fn from_rows(req: PageRequest, mut rows: Vec<T>, total_count: u64) -> Page<T> {
        let has_next_page = rows.len() as u64 > req.limit;
        rows.truncate(req.limit as usize);
        let items = rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| (encode_cursor(req.offset + i as u64), row))
            .collect();
        Page {
            items,
            has_next_page,
            has_previous_page: req.offset > 0,
            total_count,
        }
    }

    /// Maps the rows, keeping cursors and page info.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        let mut f = f;
        Page {
            items: self.items.into_iter().map(|(c, t)| (c, f(t))).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        }
    }
}

fn encode_cursor(offset: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("o:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let page = Page::from_rows(PageRequest::new(Some(2), None).unwrap(), vec![1, 2, 3], 3);
        assert!(page.has_next_page);
        let next = PageRequest::new(Some(2), Some(&page.items[1].0)).unwrap();
        assert_eq!(next.offset, 2);
        assert!(PageRequest::new(Some(2), Some("garbage")).is_err());
        assert!(PageRequest::new(Some(1000), None).is_err());
    }
}
