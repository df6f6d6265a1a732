//! The deployment's own CA and a certificate for each part, for mutual TLS
//! between the services and their callers ([`dishpatch::tls`]).
//!
//! `stack certs` keeps them in a folder (`data/tls` by default): the CA's
//! certificate `ca.pem` and key `ca-key.pem`, and a folder per part
//! holding only what that part is given, named as cert-manager names a
//! certificate's Secret: `<part>/tls.crt` (whose DNS name is the part's
//! name), `<part>/tls.key` and `<part>/ca.crt`. So a part's folder can be
//! mounted, or made a Secret, without the CA's key. Keys are readable by
//! their owner only. What is there is kept: a second run only adds what
//! is missing, signed by the CA already there.

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

/// The CA's certificate and key, in the folder.
const CA: &str = "ca.pem";
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
    in_folder(&folder.join(name))
}

/// A part's files in `folder`, its own (as mounted where it runs).
pub fn in_folder(folder: &Path) -> PartFiles {
    PartFiles {
        cert: folder.join("tls.crt"),
        key: folder.join("tls.key"),
        ca: folder.join("ca.crt"),
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
    create_folder(folder)?;
    let (ca_path, ca_key_path) = (folder.join(CA), folder.join(CA_KEY));
    let ca_key = if ca_key_path.is_file() {
        KeyPair::from_pem(&read(&ca_key_path)?).map_err(failed("reading the CA's key"))?
    } else if ca_path.exists() {
        return Err(format!(
            "{} is there without its key {}: certificates cannot be signed by it. Move the \
             folder aside to start a new CA",
            ca_path.display(),
            ca_key_path.display()
        ));
    } else {
        let key = KeyPair::generate().map_err(failed("making the CA's key"))?;
        write(&ca_key_path, &key.serialize_pem(), 0o600)?;
        key
    };
    if !ca_path.is_file() {
        // Its name and key are all a certificate it signed chains by.
        let cert = ca_params()
            .self_signed(&ca_key)
            .map_err(failed("making the CA"))?;
        write(&ca_path, &cert.pem(), 0o644)?;
    }
    let ca = read(&ca_path)?;
    // The same name and key as the CA certificate: what signs is the key,
    // and what chains is the name and the key's identifier.
    let issuer = Issuer::new(ca_params(), ca_key);
    for name in names {
        create_folder(&folder.join(name))?;
        let PartFiles {
            cert,
            key,
            ca: part_ca,
        } = files(folder, name);
        if !part_ca.is_file() {
            write(&part_ca, &ca, 0o644)?;
        }
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

fn create_folder(folder: &Path) -> Result<(), String> {
    std::fs::create_dir_all(folder).map_err(|error| format!("{}: {error}", folder.display()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("reading {}: {error}", path.display()))
}

/// Writes `text` to `path` with permissions `mode`: to a file made new
/// (never one already there, whose permissions may be wider, nor through a
/// link), then renamed into place, so a crash leaves no half-written key.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    let failed = |error: std::io::Error| format!("writing {}: {error}", path.display());
    let new = path.with_extension("new");
    match std::fs::remove_file(&new) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(failed(error)),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&new)
        .and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&new, path))
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_keeps_what_is_there_and_signs_what_is_missing() {
        let folder = tempfile::tempdir().unwrap();
        make(folder.path(), &["edge"]).unwrap();
        let edge = std::fs::read(files(folder.path(), "edge").cert).unwrap();
        make(folder.path(), &["edge", "order-svc"]).unwrap();
        assert_eq!(
            std::fs::read(files(folder.path(), "edge").cert).unwrap(),
            edge,
            "kept"
        );
        let order = files(folder.path(), "order-svc");
        assert_eq!(
            std::fs::read(&order.ca).unwrap(),
            std::fs::read(folder.path().join(CA)).unwrap(),
            "signed by the CA already there"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&order.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "its key is its owner's only");
    }

    #[test]
    fn a_ca_without_its_key_is_refused_not_replaced() {
        let folder = tempfile::tempdir().unwrap();
        make(folder.path(), &["edge"]).unwrap();
        std::fs::remove_file(folder.path().join(CA_KEY)).unwrap();
        let refused = make(folder.path(), &["order-svc"]).unwrap_err();
        assert!(refused.contains("without its key"), "{refused}");
        assert!(!folder.path().join(CA_KEY).exists(), "no new CA made");
    }
}
