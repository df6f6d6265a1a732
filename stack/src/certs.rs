//! The deployment's own CA and a certificate for each part, for mutual TLS
//! between the services and their callers ([`dishpatch::tls`]).
//!
//! `stack certs` keeps them in a folder (`data/tls` by default): `ca.pem`
//! and its key `ca-key.pem`, and for each part `<part>.pem` and
//! `<part>-key.pem`, whose certificate's DNS name is the part's name. Keys
//! are readable by their owner only. What is there is kept: a second run
//! only adds what is missing, signed by the CA already there.

use dishpatch::tls::TlsArgs;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

/// How long the CA's certificate lasts, in years; a part's, in years.
const CA_YEARS: i32 = 10;
const PART_YEARS: i32 = 2;
/// The mean Gregorian year.
const SECONDS_PER_YEAR: u64 = 31_556_952;

/// The CA's certificate, in the folder.
pub const CA: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";

/// A part's certificate and key in a folder of certificates.
#[derive(Debug, Clone)]
pub struct PartFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// Where `name`'s files are in `folder`.
pub fn files(folder: &Path, name: &str) -> PartFiles {
    PartFiles {
        cert: folder.join(format!("{name}.pem")),
        key: folder.join(format!("{name}-key.pem")),
        ca: folder.join(CA),
    }
}

impl PartFiles {
    /// These files as a part's TLS settings.
    pub fn tls_args(&self) -> TlsArgs {
        TlsArgs {
            tls_cert: Some(self.cert.clone()),
            tls_key: Some(self.key.clone()),
            tls_ca: Some(self.ca.clone()),
        }
    }

    /// The flags that give a part these files.
    pub fn args(&self) -> Vec<String> {
        [
            ("--tls-cert", &self.cert),
            ("--tls-key", &self.key),
            ("--tls-ca", &self.ca),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_owned(), path.display().to_string()])
        .collect()
    }
}

/// Makes the CA in `folder` if it is not there, and a certificate for each
/// of `names` that has none.
pub fn make(folder: &Path, names: &[&str]) -> Result<(), String> {
    std::fs::create_dir_all(folder).map_err(|error| format!("{}: {error}", folder.display()))?;
    let ca_key_path = folder.join(CA_KEY);
    let ca_key = if ca_key_path.is_file() {
        let pem = std::fs::read_to_string(&ca_key_path)
            .map_err(|error| format!("{}: {error}", ca_key_path.display()))?;
        KeyPair::from_pem(&pem).map_err(failed("reading the CA's key"))?
    } else {
        let key = KeyPair::generate().map_err(failed("making the CA's key"))?;
        let cert = ca_params().self_signed(&key).map_err(failed("making the CA"))?;
        write(&folder.join(CA), &cert.pem(), 0o644)?;
        write(&ca_key_path, &key.serialize_pem(), 0o600)?;
        key
    };
    // The same name and key as the CA certificate: what signs is the key,
    // and what chains is the name and the key's identifier.
    let issuer = Issuer::new(ca_params(), ca_key);
    for name in names {
        let PartFiles { cert, key, .. } = files(folder, name);
        if cert.is_file() && key.is_file() {
            continue;
        }
        let part_key = KeyPair::generate().map_err(failed("making a key"))?;
        let mut params =
            CertificateParams::new(vec![(*name).to_owned()]).map_err(failed("naming a certificate"))?;
        params.distinguished_name.push(DnType::CommonName, *name);
        // Each part both serves and calls with it.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        valid_for_years(&mut params, PART_YEARS);
        let signed = params
            .signed_by(&part_key, &issuer)
            .map_err(failed("signing a certificate"))?;
        write(&key, &part_key.serialize_pem(), 0o600)?;
        write(&cert, &signed.pem(), 0o644)?;
    }
    Ok(())
}

/// Names what failed.
fn failed(what: &'static str) -> impl Fn(rcgen::Error) -> String {
    move |error| format!("{what}: {error}")
}

/// What the CA certificate says of itself.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, "dishpatch deployment CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    valid_for_years(&mut params, CA_YEARS);
    params
}

/// From the start of last year to the start of the year `years` after this
/// one: whole years are precise enough, and a clock a little off either
/// way still finds the certificate valid.
fn valid_for_years(params: &mut CertificateParams, years: i32) {
    let since_1970 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let this_year = 1970 + i32::try_from(since_1970.as_secs() / SECONDS_PER_YEAR).unwrap_or(0);
    params.not_before = rcgen::date_time_ymd(this_year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(this_year + years, 1, 1);
}

/// Writes `text` to a new file `path` with permissions `mode`.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|error| format!("writing {}: {error}", path.display()))
}
