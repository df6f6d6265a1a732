//! Typed, opaque ids: a kind prefix and a time-ordered UUID (v7) in hex,
//! such as `ord_0190c2a3e0f87d3a9c1e5b7a2d4f6e8b`.
//!
//! Ids created later sort after ids created earlier (to the millisecond),
//! which is what paging in creation order relies on.

use crate::validate::FieldError;
use uuid::Uuid;

/// The kind of thing an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdKind {
    prefix: &'static str,
}

/// `rst_…`: a restaurant.
pub const RESTAURANT: IdKind = IdKind { prefix: "rst_" };
/// `itm_…`: a menu item.
pub const MENU_ITEM: IdKind = IdKind { prefix: "itm_" };
/// `ord_…`: an order.
pub const ORDER: IdKind = IdKind { prefix: "ord_" };
/// `ntf_…`: a notification.
pub const NOTIFICATION: IdKind = IdKind { prefix: "ntf_" };
/// `req_…`: a request, as the edge names those that came without an id.
pub const REQUEST: IdKind = IdKind { prefix: "req_" };
/// `key_…`: the idempotency key the edge gives an order placed without
/// one, so that it may try the order on another replica safely.
pub const IDEMPOTENCY_KEY: IdKind = IdKind { prefix: "key_" };

const HEX_DIGITS: usize = 32;

impl IdKind {
    /// A new id of this kind.
    pub fn generate(self) -> String {
        self.format(Uuid::now_v7())
    }

    /// The id of this kind for a given UUID (for fixed ids such as seed data).
    pub fn format(self, uuid: Uuid) -> String {
        format!("{}{}", self.prefix, uuid.simple())
    }

    /// Checks that `value` is a well-formed id of this kind. The error names
    /// `field` and says what was expected.
    pub fn check(self, field: &str, value: &str) -> Result<(), FieldError> {
        if value.is_empty() {
            return Err(FieldError(format!("{field} is required")));
        }
        let well_formed = value.strip_prefix(self.prefix).is_some_and(|hex| {
            hex.len() == HEX_DIGITS
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if well_formed {
            Ok(())
        } else {
            Err(FieldError(format!(
                "{field} {:?} is malformed: expected {:?} followed by {HEX_DIGITS} lowercase hex digits",
                shorten(value),
                self.prefix
            )))
        }
    }
}

/// Keeps error messages short when a client sends something huge.
fn shorten(value: &str) -> &str {
    match value.char_indices().nth(64) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_check_and_sort_by_creation() {
        let first = ORDER.generate();
        let second = ORDER.generate();
        assert!(ORDER.check("id", &first).is_ok());
        assert!(first < second, "{first} should sort before {second}");
    }

    #[test]
    fn malformed_ids_are_refused_with_the_field_name() {
        let other_kind = RESTAURANT.generate();
        for bad in [
            "ord_",
            "ord_123",
            "ord_ZZZZ0000000000000000000000000000",
            "ORD_0190c2a3e0f87d3a9c1e5b7a2d4f6e8b",
            other_kind.as_str(),
        ] {
            let err = ORDER.check("order_id", bad).unwrap_err().0;
            assert!(err.starts_with("order_id "), "{err}");
            assert!(err.contains("malformed"), "{err}");
        }
        assert_eq!(ORDER.check("order_id", "").unwrap_err().0, "order_id is required");
    }
}
