//! The rules of the REST API's constrained fields, as OpenAPI schemas:
//! each stated once, exactly as the services check it (`dishpatch::ids`,
//! `dishpatch::validate`), so a client (or a fuzzer) that keeps to the
//! document is never refused for a field's form. The request and query
//! shapes name them with `#[schema(value_type = …)]`; the fields themselves
//! stay strings, checked by the services. The types are never made (they
//! have no values): they are names for schemas.

use dishpatch::validate::MAX_QUANTITY;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr,
        schema::{ObjectBuilder, Schema, Type},
    },
};

/// The characters no text may hold besides control characters: the
/// bidirectional controls and the invisible ones
/// (`dishpatch::validate::is_hidden`), as a regex class's contents.
macro_rules! hidden {
    () => {
        r"\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    };
}

/// Single-line text with something in it: no control characters (C0, DEL,
/// C1) or hidden ones, at least one character that is not white space.
const LINE: &str = concat!(
    r"^[^\x00-\x1f\x7f-\x9f",
    hidden!(),
    r"]*[^\s\x00-\x1f\x7f-\x9f",
    hidden!(),
    r"][^\x00-\x1f\x7f-\x9f",
    hidden!(),
    r"]*$"
);
/// Text that may span lines, or be empty: no control characters but tab,
/// line feed and carriage return, no hidden ones.
const TEXT: &str = concat!(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f", hidden!(), r"]*$");

/// Declares a string schema type: its name in the document, what it is,
/// its pattern and, for text, its most characters.
macro_rules! string_schemas {
    ($($(#[doc = $doc:literal])+ $name:ident: $pattern:expr $(, max $max:expr)?;)+) => {
        $(
            $(#[doc = $doc])+
            #[derive(Debug)]
            pub(crate) enum $name {}

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    let description = [$($doc.trim()),+].join(" ");
                    let schema = ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some(description))
                        .pattern(Some($pattern));
                    $(let schema = schema.max_length(Some($max));)?
                    schema.into()
                }
            }

            impl ToSchema for $name {}
        )+
    };
}

string_schemas! {
    /// A restaurant's id.
    RestaurantId: r"^rst_[0-9a-f]{32}$";
    /// A menu item's id.
    MenuItemId: r"^itm_[0-9a-f]{32}$";
    /// An order's id.
    OrderId: r"^ord_[0-9a-f]{32}$";
    /// A restaurant's id, or empty for none.
    RestaurantIdOrEmpty: r"^(rst_[0-9a-f]{32})?$";
    /// An order's id, or empty for none.
    OrderIdOrEmpty: r"^(ord_[0-9a-f]{32})?$";
    /// A name: one line, up to 100 characters (surrounding white space is
    /// trimmed).
    Name: LINE, max 100;
    /// A cuisine: one line, up to 50 characters.
    Cuisine: LINE, max 50;
    /// An address: one line, up to 200 characters.
    Address: LINE, max 200;
    /// A customer: one line, up to 100 characters.
    Customer: LINE, max 100;
    /// Text of up to 500 characters, lines allowed.
    Text500: TEXT, max 500;
    /// Text of up to 200 characters, lines allowed.
    Text200: TEXT, max 200;
    /// A filter of up to 120 characters (empty: no filter).
    Filter120: TEXT, max 120;
    /// A filter of up to 100 characters (empty: no filter).
    Filter100: TEXT, max 100;
    /// A filter of up to 50 characters (empty: no filter).
    Filter50: TEXT, max 50;
    /// The cursor of the next page of notifications, as `nextCursor` gave it.
    SeqCursor: r"^[0-9]{0,19}$";
    /// A key unique to one order of one customer: the same key with the same
    /// order gets the order placed the first time, never a second one.
    /// Visible ASCII and spaces, not blank, up to 100 characters.
    IdempotencyKey: r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$", max 100;
}

/// How many of a menu item: 1 to 99.
#[derive(Debug)]
pub(crate) enum Quantity {}

impl PartialSchema for Quantity {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some("How many of the menu item"))
            .minimum(Some(1))
            .maximum(Some(MAX_QUANTITY))
            .into()
    }
}

impl ToSchema for Quantity {}

/// The states of an order, in life order; `cancelled` from `placed` or
/// `accepted`.
#[derive(Debug, ToSchema)]
#[schema(as = OrderStatus, rename_all = "snake_case")]
#[allow(dead_code)] // Only its schema is used: statuses travel as strings.
pub(crate) enum StatusName {
    Placed,
    Accepted,
    Preparing,
    Ready,
    OutForDelivery,
    Delivered,
    Cancelled,
}
