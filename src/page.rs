//! Paging: every list takes `page_size` (0 means [`DEFAULT_PAGE_SIZE`], at
//! most [`MAX_PAGE_SIZE`]) and an opaque `page_token` from the previous page.

/// Items on a page when the request does not say.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// The most items one page may hold.
pub const MAX_PAGE_SIZE: i64 = 100;

use crate::validate::FieldError;

/// The number of items to return for a requested `page_size`, or why the
/// request is invalid.
pub fn size(requested: i32) -> Result<i64, FieldError> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n @ 1..=MAX_PAGE_SIZE => Ok(n),
        n => Err(FieldError(format!(
            "page_size must be between 1 and {MAX_PAGE_SIZE} (or 0 for {DEFAULT_PAGE_SIZE}), got {n}"
        ))),
    }
}

/// The token of the page after `page` (whose items are ordered by the key
/// `key_of` gives, an id or a sequence number): the last item's key when
/// `more` follow, else empty.
pub fn next_token<T, K: ToString>(page: &[T], more: bool, key_of: impl Fn(&T) -> K) -> String {
    match page.last() {
        Some(last) if more => key_of(last).to_string(),
        _ => String::new(),
    }
}

/// Splits one extra row off a page fetched with `LIMIT size + 1`: returns the
/// page and whether another page follows.
pub fn split<T>(mut rows: Vec<T>, size: i64) -> (Vec<T>, bool) {
    let size = usize::try_from(size).expect("page sizes are positive");
    let more = rows.len() > size;
    rows.truncate(size);
    (rows, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(size(1), Ok(1));
        assert_eq!(size(100), Ok(100));
        assert!(size(101).unwrap_err().0.contains("between 1 and 100"));
        assert!(size(-1).is_err());
    }

    #[test]
    fn the_next_token_is_the_last_id_when_more_follow() {
        let page = [(1, "a"), (2, "b")];
        assert_eq!(next_token(&page, true, |(_, id)| *id), "b");
        assert_eq!(next_token(&page, true, |(seq, _)| *seq), "2");
        assert_eq!(next_token(&page, false, |(_, id)| *id), "");
        assert_eq!(next_token(&[] as &[(u64, &str)], true, |(seq, _)| *seq), "");
    }

    #[test]
    fn split_detects_a_following_page() {
        assert_eq!(split(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(split(vec![1, 2], 2), (vec![1, 2], false));
    }
}
