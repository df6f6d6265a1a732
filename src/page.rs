//! Paging: every list takes `page_size` (0 means [`DEFAULT_PAGE_SIZE`], at
//! most [`MAX_PAGE_SIZE`]) and an opaque `page_token` from the previous page.

/// Items on a page when the request does not say.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// The most items one page may hold.
pub const MAX_PAGE_SIZE: i64 = 100;

/// The number of items to return for a requested `page_size`, or why the
/// request is invalid.
pub fn size(requested: i32) -> Result<i64, String> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n @ 1..=MAX_PAGE_SIZE => Ok(n),
        n => Err(format!(
            "page_size must be between 1 and {MAX_PAGE_SIZE} (or 0 for {DEFAULT_PAGE_SIZE}), got {n}"
        )),
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
        assert!(size(101).unwrap_err().contains("between 1 and 100"));
        assert!(size(-1).is_err());
    }

    #[test]
    fn split_detects_a_following_page() {
        assert_eq!(split(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(split(vec![1, 2], 2), (vec![1, 2], false));
    }
}
