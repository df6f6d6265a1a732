//! A bearer token to the principal it names, or why not: its algorithm
//! one of [`ACCEPTED`], its signature by a known key, its `exp`, `nbf`,
//! `iss` and `aud` as configured (with a little leeway for clocks), and its
//! claims naming a principal that can exist.
//!
//! A token that verified is remembered until it expires (or the keys
//! change), so a client that sends the same token with every request pays
//! for the signature once.

use super::{
    Principal, Role,
    keys::{ACCEPTED, KeySet, KeySource, Sources},
};
use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::Deserialize;
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio_util::sync::CancellationToken;

/// How often the key files are checked for changes.
const KEY_RECHECK: Duration = Duration::from_secs(2);
/// The longest token accepted (identity providers' are well under 2 KiB).
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Verified tokens remembered at most (each a few hundred bytes).
const CACHE_CAPACITY: u64 = 100_000;

/// How tokens are checked.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Where the keys come from; none: no token is accepted.
    pub sources: Vec<KeySource>,
    /// The `iss` tokens must have.
    pub issuer: String,
    /// The `aud` tokens must have (or include).
    pub audience: String,
    /// How far `exp` and `nbf` may be off, for clocks that differ.
    pub leeway: Duration,
}

/// Why a token was refused; the message is for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Not a JWT, or its header or claims cannot be read.
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// Signed with an algorithm not accepted (`none`, HMAC, …).
    #[error("the token's algorithm {0:?} is not accepted: use EdDSA, ES256 or RS256")]
    Algorithm(Algorithm),
    /// Its `kid` names no known key.
    #[error("the token names a key ({0}) this edge does not know")]
    UnknownKey(String),
    /// No known key made its signature.
    #[error("the token's signature does not verify")]
    Signature,
    /// Past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before its `nbf`.
    #[error("the token is not valid yet")]
    NotYet,
    /// Its `iss` is not the configured issuer.
    #[error("the token's issuer is not trusted")]
    Issuer,
    /// Its `aud` is not (or does not include) the configured audience.
    #[error("the token is for another audience")]
    Audience,
    /// A claim it needs is missing or malformed.
    #[error("the token's claims are wrong: {0}")]
    Claims(String),
    /// The edge was given no keys.
    #[error("this edge accepts no tokens: it was started without keys")]
    NoKeys,
}

/// The claims that name the principal (the standard ones are checked by
/// [`jsonwebtoken`]).
#[derive(Debug, Deserialize)]
struct PrincipalClaims {
    sub: String,
    role: Role,
    #[serde(default)]
    restaurants: Vec<String>,
    exp: u64,
}

/// A principal whose token verified, and until when the token may be used.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Who the token names.
    pub principal: Arc<Principal>,
    /// Its `exp` with the leeway, in seconds since the Unix epoch.
    pub usable_until: u64,
}

impl Verified {
    /// How long the token may still be used, to the moment `usable_until`
    /// begins.
    pub fn usable_for(&self) -> Duration {
        Duration::from_secs(self.usable_until).saturating_sub(since_epoch())
    }
}

/// Checks tokens against the configured keys.
#[derive(Debug)]
pub struct Verifier {
    sources: Option<Sources>,
    keys: ArcSwap<KeySet>,
    /// One validation per accepted algorithm (a key verifies only its own).
    validations: Vec<(Algorithm, Validation)>,
    leeway: u64,
    verified: moka::sync::Cache<String, Verified>,
}

impl Verifier {
    /// Reads the keys. Every source must give keys; with no source, every
    /// token is refused ([`Rejected::NoKeys`]).
    pub fn new(settings: VerifierSettings) -> Result<Self, String> {
        let (sources, keys) = if settings.sources.is_empty() {
            (None, KeySet::default())
        } else {
            let (sources, keys) = Sources::read(settings.sources)?;
            (Some(sources), keys)
        };
        let validations = ACCEPTED
            .iter()
            .map(|&algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.leeway = settings.leeway.as_secs();
                validation.validate_nbf = true;
                validation.set_issuer(&[&settings.issuer]);
                validation.set_audience(&[&settings.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                (algorithm, validation)
            })
            .collect();
        Ok(Self {
            sources,
            keys: ArcSwap::from_pointee(keys),
            validations,
            leeway: settings.leeway.as_secs(),
            verified: moka::sync::Cache::builder().max_capacity(CACHE_CAPACITY).build(),
        })
    }

    /// Whether any key is configured.
    pub fn has_keys(&self) -> bool {
        self.sources.is_some()
    }

    /// Whether a key with id `kid` is among the keys.
    pub fn knows_key(&self, kid: &str) -> bool {
        self.keys.load().has(kid)
    }

    /// The principal `token` names, if it verifies.
    pub fn verify(&self, token: &str) -> Result<Verified, Rejected> {
        if let Some(verified) = self.verified.get(token)
            && verified.usable_until > unix_now()
        {
            return Ok(verified);
        }
        let verified = self.verify_afresh(token)?;
        self.verified.insert(token.to_owned(), verified.clone());
        Ok(verified)
    }

    fn verify_afresh(&self, token: &str) -> Result<Verified, Rejected> {
        if self.sources.is_none() {
            return Err(Rejected::NoKeys);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejected::Malformed(format!(
                "it is over {} KiB",
                MAX_TOKEN_BYTES / 1024
            )));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|error| Rejected::Malformed(error.to_string()))?;
        let validation = self
            .validations
            .iter()
            .find(|(algorithm, _)| *algorithm == header.alg)
            .map(|(_, validation)| validation)
            .ok_or(Rejected::Algorithm(header.alg))?;
        let keys = self.keys.load();
        let mut outcome = Err(match &header.kid {
            Some(kid) => Rejected::UnknownKey(kid.clone()),
            None => Rejected::Signature,
        });
        for key in keys.candidates(header.kid.as_deref(), header.alg) {
            outcome = jsonwebtoken::decode::<PrincipalClaims>(token, &key.key, validation)
                .map_err(|error| rejected(error.into_kind()));
            // Another key of the algorithm may have signed a token that
            // names none.
            if !matches!(outcome, Err(Rejected::Signature)) {
                break;
            }
        }
        let claims = outcome?.claims;
        // Expired from the second `exp` names on (RFC 7519 4.1.4: the time
        // must be before it), where jsonwebtoken allows that second too:
        // so a token is refused from the moment a stream it opened ends.
        let usable_until = claims.exp.saturating_add(self.leeway);
        if usable_until <= unix_now() {
            return Err(Rejected::Expired);
        }
        let principal =
            Principal::new(claims.sub, claims.role, claims.restaurants).map_err(Rejected::Claims)?;
        Ok(Verified {
            principal: Arc::new(principal),
            usable_until,
        })
    }

    /// Reads the key files again whenever they change, until `stop`. A
    /// file that changed into something unusable leaves the keys as they
    /// were (and says so in the log); tokens verified before a change are
    /// checked afresh after it, so a key taken out stops working at once.
    pub async fn watch_keys(self: Arc<Self>, stop: CancellationToken) {
        if self.sources.is_none() {
            return;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(KEY_RECHECK) => {}
                () = stop.cancelled() => return,
            }
            let verifier = self.clone();
            tokio::task::spawn_blocking(move || verifier.reread_keys())
                .await
                .ok();
        }
    }

    fn reread_keys(&self) {
        let Some(sources) = &self.sources else { return };
        match sources.reread_if_changed() {
            None => {}
            Some(Ok(keys)) => {
                tracing::info!(keys = keys.len(), "token keys read again");
                self.keys.store(Arc::new(keys));
                self.verified.invalidate_all();
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "a key file changed into one that cannot be used; keeping the keys read before");
            }
        }
    }
}

/// A [`jsonwebtoken`] failure as a reason a client can act on.
fn rejected(kind: ErrorKind) -> Rejected {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => Rejected::Signature,
        ErrorKind::ExpiredSignature => Rejected::Expired,
        ErrorKind::ImmatureSignature => Rejected::NotYet,
        ErrorKind::InvalidIssuer => Rejected::Issuer,
        ErrorKind::InvalidAudience => Rejected::Audience,
        ErrorKind::MissingRequiredClaim(claim) => Rejected::Claims(format!("{claim} is missing")),
        ErrorKind::InvalidClaimFormat(claim) => Rejected::Claims(format!("{claim} is malformed")),
        ErrorKind::Json(error) => Rejected::Claims(error.to_string()),
        other => Rejected::Malformed(format!("{other:?}")),
    }
}

fn unix_now() -> u64 {
    since_epoch().as_secs()
}

fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::dev::{AUDIENCE, DevKey, ISSUER, JWKS_FILE};

    fn verifier(sources: Vec<KeySource>) -> Result<Verifier, String> {
        Verifier::new(VerifierSettings {
            sources,
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            leeway: Duration::ZERO,
        })
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let verifier = verifier(vec![KeySource::Jwks(dir.path().join(JWKS_FILE))]).unwrap();
        let ana = Principal::new("ana".into(), Role::Customer, vec![]).unwrap();
        let token = key.sign(&ana, ISSUER, AUDIENCE, Duration::from_secs(1));
        assert_eq!(*verifier.verify(&token).unwrap().principal, ana);
        assert!(verifier.verified.get(&token).is_some(), "remembered");
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(verifier.verify(&token).unwrap_err(), Rejected::Expired);
    }

    #[test]
    fn a_pem_public_key_verifies_tokens_whatever_key_id_they_name() {
        use ed25519_dalek::{
            SigningKey,
            pkcs8::{DecodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding},
        };
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let private = std::fs::read_to_string(dir.path().join(crate::auth::dev::KEY_FILE)).unwrap();
        let public = SigningKey::from_pkcs8_pem(&private)
            .unwrap()
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let pem = dir.path().join("public.pem");
        std::fs::write(&pem, public).unwrap();
        let verifier = verifier(vec![KeySource::Pem(pem)]).unwrap();
        let admin = Principal::new("root".into(), Role::Admin, vec![]).unwrap();
        let token = key.sign(&admin, ISSUER, AUDIENCE, Duration::from_secs(60));
        assert_eq!(*verifier.verify(&token).unwrap().principal, admin);
    }

    #[test]
    fn without_keys_every_token_is_refused() {
        let verifier = verifier(vec![]).unwrap();
        assert!(!verifier.has_keys());
        assert_eq!(verifier.verify("a.b.c").unwrap_err(), Rejected::NoKeys);
    }

    #[test]
    fn unusable_key_files_are_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join(JWKS_FILE);
        for (text, expected) in [
            ("{", "not a JWKS document"),
            (
                r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}"#,
                "no signing key",
            ),
        ] {
            std::fs::write(&jwks, text).unwrap();
            let refused = verifier(vec![KeySource::Jwks(jwks.clone())]).unwrap_err();
            assert!(refused.contains(expected), "{text}: {refused}");
        }
        std::fs::write(&jwks, "not a key").unwrap();
        let refused = verifier(vec![KeySource::Pem(jwks)]).unwrap_err();
        assert!(refused.contains("not a PEM public key"), "{refused}");
        let refused = verifier(vec![KeySource::Pem(dir.path().join("nowhere.pem"))]).unwrap_err();
        assert!(refused.contains("nowhere.pem"), "{refused}");
    }
}
