//! A signing key of one's own, for running dishpatch on one machine
//! without an identity provider: an Ed25519 key pair in the launcher's data
//! folder (`signing-key.pem`, readable by its owner only, and its public
//! half as `jwks.json`, which the edge is given as any provider's keys).
//! `stack token` and the edge's development sign-in sign tokens with it.

use super::{Claims, Principal};
use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding},
};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header,
    jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash},
};
use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// The private key's file in the folder of [`DevKey::load_or_create`].
pub const KEY_FILE: &str = "signing-key.pem";
/// The public key's file (a JWKS document) beside it.
pub const JWKS_FILE: &str = "jwks.json";
/// The issuer of the launcher's tokens.
pub const ISSUER: &str = "dishpatch-local";
/// The audience of the launcher's tokens.
pub const AUDIENCE: &str = "dishpatch";

/// An Ed25519 key that signs tokens, and its public half.
pub struct DevKey {
    encoding: EncodingKey,
    public: Jwk,
    kid: String,
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key, even in a debug print.
        f.debug_struct("DevKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevKey {
    /// The key of a PKCS#8 PEM file (as `openssl genpkey -algorithm
    /// ed25519` writes, or [`Self::load_or_create`]).
    pub fn load(path: &Path) -> Result<Self, String> {
        let pem = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|error| {
            format!(
                "{}: not an Ed25519 private key in PKCS#8 PEM: {error}",
                path.display()
            )
        })?;
        Self::from_signing_key(&signing)
    }

    /// The key in `dir` ([`KEY_FILE`]), made there first if it is not, and
    /// its public half written beside it ([`JWKS_FILE`]).
    pub fn load_or_create(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            create(&path)?;
        }
        let key = Self::load(&path)?;
        let jwks = serde_json::to_vec_pretty(&key.jwks()).expect("a JWKS serializes");
        let jwks_path = dir.join(JWKS_FILE);
        std::fs::write(&jwks_path, jwks).map_err(|error| format!("{}: {error}", jwks_path.display()))?;
        Ok(key)
    }

    fn from_signing_key(signing: &SigningKey) -> Result<Self, String> {
        let der = signing
            .to_pkcs8_der()
            .map_err(|error| format!("encoding the key: {error}"))?;
        let public = DecodingKey::from_ed_der(signing.verifying_key().as_bytes());
        let mut jwk =
            Jwk::from_decoding_key(&public, Some(Algorithm::EdDSA)).map_err(|error| error.to_string())?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|error| error.to_string())?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public: jwk,
            kid,
        })
    }

    /// Its id (the RFC 7638 thumbprint of its public key), which its
    /// tokens name as `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Its public half as a JWKS document.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public.clone()],
        }
    }

    /// A token for `principal` from `issuer` to `audience`, valid for `ttl`
    /// from now.
    pub fn sign(&self, principal: &Principal, issuer: &str, audience: &str, ttl: Duration) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.sign_claims(&Claims {
            sub: principal.sub.clone(),
            role: principal.role,
            restaurants: principal.restaurants.clone(),
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            iat: now,
            nbf: now,
            exp: now + ttl.as_secs(),
        })
    }

    /// A token of exactly `claims` (tests make expired or misdirected ones).
    pub fn sign_claims(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("an Ed25519 key signs")
    }
}

/// Makes a new key at `path`, readable by its owner only.
fn create(path: &Path) -> Result<(), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| format!("no randomness for a key: {error}"))?;
    let pem = SigningKey::from_bytes(&seed)
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| format!("encoding the key: {error}"))?;
    let failed = |error: std::io::Error| format!("{}: {error}", path.display());
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        // Another launcher made it first: that one is the key.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(error) => return Err(failed(error)),
    };
    file.write_all(pem.as_bytes()).map_err(failed)
}
