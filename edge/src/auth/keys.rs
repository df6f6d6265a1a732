//! The public keys tokens are checked against: from a JWKS file (an
//! identity provider's `jwks_uri` document, saved) or PEM files, each key
//! with its algorithm, several at once (rotation: a token names its key by
//! `kid`). The files are read again when they change, so keys rotate
//! without a restart.

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse},
};
use std::{path::PathBuf, sync::Mutex, time::SystemTime};

/// The algorithms a token may be signed with: EdDSA (Ed25519) and ES256
/// for keys of one's own, RS256 for the identity providers that sign with
/// RSA. (`none` and the HMAC ones, whose key would be the secret, never.)
pub(crate) const ACCEPTED: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// Where keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS document (`{"keys": […]}`).
    Jwks(PathBuf),
    /// A PEM public key (Ed25519, P-256 or RSA).
    Pem(PathBuf),
}

impl KeySource {
    fn path(&self) -> &PathBuf {
        match self {
            Self::Jwks(path) | Self::Pem(path) => path,
        }
    }

    fn read(&self) -> Result<Vec<VerifyingKey>, String> {
        let path = self.path();
        let text = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let keys = match self {
            Self::Jwks(_) => jwks(&text),
            Self::Pem(_) => pem(&text).map(|key| vec![key]),
        };
        keys.map_err(|error| format!("{}: {error}", path.display()))
    }
}

/// A key a token may be signed with.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    /// Its id, which tokens signed with it name in their header.
    pub(crate) kid: Option<String>,
    /// The one algorithm it verifies.
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The keys of every source, as last read.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// Reads every source; each must give at least one usable key.
    pub(crate) fn read(sources: &[KeySource]) -> Result<Self, String> {
        let mut keys = Vec::new();
        for source in sources {
            keys.extend(source.read()?);
        }
        Ok(Self { keys })
    }

    /// The keys of `algorithm` that may have signed a token whose header
    /// names `kid`: the one with that id, and those with no id (PEM keys);
    /// for a token naming none, every key of the algorithm.
    pub(crate) fn candidates(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter().filter(move |key| {
            key.algorithm == algorithm && (kid.is_none() || key.kid.is_none() || key.kid.as_deref() == kid)
        })
    }

    /// Whether a key with `kid` is in the set.
    pub(crate) fn has(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// What a file looked like when last read: a changed one is read again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Option<(SystemTime, u64)>);

impl Stamp {
    fn of(source: &KeySource) -> Self {
        Self(
            std::fs::metadata(source.path())
                .ok()
                .map(|meta| (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len())),
        )
    }
}

/// Key sources and how their files looked when last read.
#[derive(Debug)]
pub(crate) struct Sources {
    sources: Vec<KeySource>,
    stamps: Mutex<Vec<Stamp>>,
}

impl Sources {
    /// Reads `sources` for the first time.
    pub(crate) fn read(sources: Vec<KeySource>) -> Result<(Self, KeySet), String> {
        let stamps = sources.iter().map(Stamp::of).collect();
        let keys = KeySet::read(&sources)?;
        Ok((
            Self {
                sources,
                stamps: Mutex::new(stamps),
            },
            keys,
        ))
    }

    /// The keys read again, if a file changed since it was last read; an
    /// error if it changed into something unusable (the old keys stay).
    pub(crate) fn reread_if_changed(&self) -> Option<Result<KeySet, String>> {
        let now: Vec<Stamp> = self.sources.iter().map(Stamp::of).collect();
        let mut stamps = self.stamps.lock().expect("stamps are never poisoned");
        if *stamps == now {
            return None;
        }
        *stamps = now;
        Some(KeySet::read(&self.sources))
    }
}

/// The signing keys of a JWKS document, skipping those for encryption and
/// those of algorithms not [`ACCEPTED`].
fn jwks(text: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    let set: JwkSet =
        serde_json::from_slice(text).map_err(|error| format!("not a JWKS document: {error}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            continue;
        }
        let algorithm = match jwk.common.key_algorithm {
            Some(named) => Algorithm::try_from(named).ok(),
            // No `alg`: the one its type and curve imply.
            None => match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
                    Some(Algorithm::EdDSA)
                }
                AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
                    Some(Algorithm::ES256)
                }
                AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
                _ => None,
            },
        };
        let Some(algorithm) = algorithm.filter(|algorithm| ACCEPTED.contains(algorithm)) else {
            tracing::warn!(kid = ?jwk.common.key_id, "skipping a key of an algorithm tokens may not use");
            continue;
        };
        let key =
            DecodingKey::from_jwk(jwk).map_err(|error| format!("key {:?}: {error}", jwk.common.key_id))?;
        keys.push(VerifyingKey {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    if keys.is_empty() {
        return Err("no signing key of an accepted algorithm (EdDSA, ES256, RS256)".to_owned());
    }
    Ok(keys)
}

/// A PEM public key: Ed25519 (EdDSA), P-256 (ES256) or RSA (RS256).
fn pem(text: &[u8]) -> Result<VerifyingKey, String> {
    let parsed = [
        (Algorithm::EdDSA, DecodingKey::from_ed_pem as fn(&[u8]) -> _),
        (Algorithm::ES256, DecodingKey::from_ec_pem),
        (Algorithm::RS256, DecodingKey::from_rsa_pem),
    ]
    .into_iter()
    .find_map(|(algorithm, parse)| parse(text).ok().map(|key| (algorithm, key)));
    let (algorithm, key) =
        parsed.ok_or("not a PEM public key of Ed25519, P-256 or RSA (BEGIN PUBLIC KEY)")?;
    Ok(VerifyingKey {
        kid: None,
        algorithm,
        key,
    })
}
