//! Who is calling: bearer tokens (JWTs) checked against configured keys,
//! and the [`Principal`] a good one names. What a principal may do is the
//! REST API's business (`api::access`).
//!
//! - [`keys`]: the keys tokens are checked against (a JWKS, or PEM public
//!   keys), re-read when their files change.
//! - [`verify`]: a token to its principal, or why not.
//! - [`dev`]: a signing key of one's own for one machine: the launcher
//!   makes it, and `stack token` and the edge's development sign-in sign
//!   with it. Production gives the edge an identity provider's keys instead.

pub mod dev;
mod keys;
mod verify;

pub use keys::KeySource;
pub use verify::{Rejected, Verified, Verifier, VerifierSettings};

use dishpatch::{ids::RESTAURANT, validate};
use serde::{Deserialize, Serialize};

/// The most characters of a subject: a customer's subject is the name on
/// their orders, which holds as many.
const MAX_SUBJECT_CHARS: usize = 100;

/// The prefix of a restaurant's notification recipient
/// (`restaurant:rst_…`), which no customer may be named.
pub const RESTAURANT_RECIPIENT: &str = "restaurant:";

/// What a principal is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Orders for themselves.
    Customer,
    /// Works for one or more restaurants.
    Restaurant,
    /// May do everything.
    Admin,
}

impl Role {
    /// Its name in tokens.
    pub fn name(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Restaurant => "restaurant",
            Self::Admin => "admin",
        }
    }
}

/// A caller whose token verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Who: a customer's name (the one on their orders), or a staff
    /// member's or admin's id.
    pub sub: String,
    /// What they are.
    pub role: Role,
    /// The restaurants a staff member works for (empty for others).
    pub restaurants: Vec<String>,
}

impl Principal {
    /// A principal from a token's claims, if they name one that can exist:
    /// a subject that is a single line of 1 to 100 characters without
    /// surrounding spaces or hidden characters (a customer's is the name on
    /// their orders); restaurant staff working for at least one restaurant,
    /// named by id; a customer not named like a restaurant's recipient.
    pub fn new(sub: String, role: Role, restaurants: Vec<String>) -> Result<Self, String> {
        let checked = validate::required("sub", &sub, MAX_SUBJECT_CHARS).map_err(|error| error.0)?;
        if checked != sub {
            return Err("sub must not start or end with spaces".to_owned());
        }
        match role {
            Role::Customer if sub.starts_with(RESTAURANT_RECIPIENT) => {
                return Err(format!(
                    "a customer's sub must not start with {RESTAURANT_RECIPIENT:?}"
                ));
            }
            Role::Restaurant if restaurants.is_empty() => {
                return Err("restaurant staff must name the restaurants they work for".to_owned());
            }
            Role::Restaurant => {
                for (at, id) in restaurants.iter().enumerate() {
                    RESTAURANT
                        .check(&format!("restaurants[{at}]"), id)
                        .map_err(|error| error.0)?;
                }
            }
            Role::Customer | Role::Admin if !restaurants.is_empty() => {
                return Err(format!("a {} works for no restaurant", role.name()));
            }
            Role::Customer | Role::Admin => {}
        }
        Ok(Self {
            sub,
            role,
            restaurants,
        })
    }

    /// Whether this is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this is staff of `restaurant_id` (or an admin, who may act
    /// for any restaurant).
    pub fn acts_for(&self, restaurant_id: &str) -> bool {
        self.is_admin() || self.restaurants.iter().any(|id| id == restaurant_id)
    }
}

/// The claims of a dishpatch token: the standard ones it needs, and the
/// principal's role and restaurants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The principal.
    pub sub: String,
    /// Its role.
    pub role: Role,
    /// The restaurants a staff member works for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restaurants: Vec<String>,
    /// Who issued the token.
    pub iss: String,
    /// Whom it is for.
    pub aud: String,
    /// When it was issued (seconds since the Unix epoch).
    pub iat: u64,
    /// Not before (seconds since the Unix epoch).
    pub nbf: u64,
    /// When it expires (seconds since the Unix epoch).
    pub exp: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const A_RESTAURANT: &str = "rst_000000000000700080005eed00010000";

    #[test]
    fn a_principal_must_be_one_that_can_exist() {
        let customer = Principal::new("Ana María".into(), Role::Customer, vec![]).unwrap();
        assert!(!customer.acts_for(A_RESTAURANT));
        let staff = Principal::new("kim".into(), Role::Restaurant, vec![A_RESTAURANT.into()]).unwrap();
        assert!(staff.acts_for(A_RESTAURANT));
        assert!(!staff.acts_for("rst_000000000000700080005eed00020000"));
        let admin = Principal::new("root".into(), Role::Admin, vec![]).unwrap();
        assert!(admin.acts_for(A_RESTAURANT));

        for (sub, role, restaurants, expected) in [
            ("", Role::Customer, vec![], "sub is required"),
            (" ana", Role::Customer, vec![], "spaces"),
            ("a\u{202e}b", Role::Customer, vec![], "bidirectional"),
            ("restaurant:rst_1", Role::Customer, vec![], "must not start with"),
            ("kim", Role::Restaurant, vec![], "must name the restaurants"),
            ("kim", Role::Restaurant, vec!["nope".to_owned()], "restaurants[0]"),
            (
                "ana",
                Role::Customer,
                vec![A_RESTAURANT.to_owned()],
                "works for no restaurant",
            ),
        ] {
            let refused = Principal::new(sub.into(), role, restaurants).unwrap_err();
            assert!(refused.contains(expected), "{sub:?}: {refused}");
        }
        let long = "a".repeat(101);
        assert!(Principal::new(long, Role::Customer, vec![]).is_err());
    }
}
