//! OpenSSH public keys: validation, Nova's fingerprint, and server-side
//! generation of a keypair.
//!
//! A key line is `<type> <base64 blob> [comment]`. The blob is SSH wire
//! format: a length-prefixed type name that must equal `<type>`, then the
//! type's fields. We check that structure field by field for the types
//! clients send (the OSC uploads ed25519, tempest ecdsa-sha2-nistp384), so
//! a key that cannot work (`ssh-rsa JUNK`) is refused at upload rather than
//! at boot. The fingerprint is what Nova shows: MD5 of the blob as
//! colon-separated hex.

use base64::Engine;
use base64::engine::general_purpose::GeneralPurpose;
use base64::engine::{DecodePaddingMode, GeneralPurposeConfig};
use md5::{Digest, Md5};

/// Key types we accept.
pub const KEY_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
];

/// The comment of keys we generate.
const GENERATED_COMMENT: &str = "Generated-by-cloud";

/// Why a public key was refused; the message is shown to the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not `<type> <base64> [comment]`.
    #[error("the public key must be '<type> <base64 key> [comment]'")]
    Format,
    /// A type we do not know.
    #[error("unsupported key type '{0}' (supported: {list})", list = KEY_TYPES.join(", "))]
    UnsupportedType(String),
    /// The middle part is not base64.
    #[error("the key data is not valid base64")]
    Base64,
    /// The blob's structure does not match its type.
    #[error("the key data is not a valid {0} key")]
    Blob(String),
}

/// A validated public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// `ssh-ed25519`, ...
    pub key_type: String,
    /// The decoded wire-format blob.
    pub blob: Vec<u8>,
}

impl PublicKey {
    /// Nova's fingerprint: MD5 of the blob as `aa:bb:...`.
    pub fn fingerprint(&self) -> String {
        Md5::digest(&self.blob)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Reads SSH wire-format fields.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    /// A `string` (u32 big-endian length, then the bytes).
    fn string(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (s, rest) = rest.split_at(len);
        self.0 = rest;
        Some(s)
    }

    /// A non-empty `mpint` (positive, so its first byte is below 0x80).
    fn positive_mpint(&mut self) -> Option<&'a [u8]> {
        let n = self.string()?;
        match n.first() {
            Some(&first) if first < 0x80 => Some(n),
            _ => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks the fields after the type name; `None` if they do not fit.
fn check_fields(key_type: &str, w: &mut Wire<'_>) -> Option<()> {
    match key_type {
        "ssh-rsa" => {
            w.positive_mpint()?; // e
            w.positive_mpint()?; // n
        }
        "ssh-dss" => {
            for _ in 0..4 {
                w.positive_mpint()?; // p, q, g, y
            }
        }
        "ssh-ed25519" => {
            if w.string()?.len() != 32 {
                return None;
            }
        }
        ecdsa => {
            let curve = ecdsa.strip_prefix("ecdsa-sha2-")?;
            if w.string()? != curve.as_bytes() {
                return None;
            }
            let coord = match curve {
                "nistp256" => 32,
                "nistp384" => 48,
                "nistp521" => 66,
                _ => return None,
            };
            let point = w.string()?;
            let ok = match point.first() {
                Some(4) => point.len() == 1 + 2 * coord,
                Some(2 | 3) => point.len() == 1 + coord,
                _ => false,
            };
            if !ok {
                return None;
            }
        }
    }
    w.is_empty().then_some(())
}

/// Validates an OpenSSH public key line.
pub fn parse_public_key(line: &str) -> Result<PublicKey, KeyError> {
    let mut parts = line.split_whitespace();
    let (Some(key_type), Some(data)) = (parts.next(), parts.next()) else {
        return Err(KeyError::Format);
    };
    if !KEY_TYPES.contains(&key_type) {
        return Err(KeyError::UnsupportedType(
            key_type.chars().take(64).collect(),
        ));
    }
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let blob = engine.decode(data).map_err(|_| KeyError::Base64)?;
    let mut w = Wire(&blob);
    if w.string() != Some(key_type.as_bytes()) || check_fields(key_type, &mut w).is_none() {
        return Err(KeyError::Blob(key_type.to_owned()));
    }
    Ok(PublicKey {
        key_type: key_type.to_owned(),
        blob,
    })
}

/// A keypair made for a user who sent no public key. The private key is
/// shown once and never stored.
pub struct GeneratedKey {
    /// The public key line (`ssh-ed25519 AAAA... Generated-by-cloud`).
    pub public_key: String,
    /// The private key in OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    pub private_key: String,
    /// Nova's fingerprint of the public key.
    pub fingerprint: String,
}

/// Generates an ed25519 keypair.
pub fn generate() -> Result<GeneratedKey, cloud_model::Error> {
    let fail = |e: ssh_key::Error| cloud_model::Error::internal(format!("key generation: {e}"));
    let mut private =
        ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
            .map_err(fail)?;
    private.set_comment(GENERATED_COMMENT);
    let public_key = private.public_key().to_openssh().map_err(fail)?;
    let private_key = private
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(fail)?
        .to_string();
    let fingerprint = parse_public_key(&public_key)
        .map_err(|e| cloud_model::Error::internal(format!("generated key is invalid: {e}")))?
        .fingerprint();
    Ok(GeneratedKey {
        public_key,
        private_key,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with ssh-keygen; fingerprints from `ssh-keygen -l -E md5 -f`.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHasNbcXCnYVysygnXrzXD4g+Dr0hX8NvEcxG4iiM7hN test@example";
    const ED25519_MD5: &str = "ec:7d:5b:36:46:46:61:bf:b7:5d:c7:bc:1c:a1:8e:98";
    const ECDSA384: &str = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBDJAHN9rKjUaPeH0as2soqa3emYMGlHzvJtoNN77Vi/S8lTBp0tM7DqTCjQfjvWCGjzLn0eLyqDD0+MErg1n4iEcG2Kqczzm998m9IrhfikQ4YCbgsZZ3vNHlFv+yg9Ogg== ec@example";
    const ECDSA384_MD5: &str = "df:a8:d8:5b:fb:23:c4:19:94:b0:33:2e:35:6f:a6:f3";
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC1PgxOmF0Br8Pt9LcnHLN3Jk65eol8mb6crPPCLL9HnitikTO7j2wUwiYm010KTOSuHKYrVnpOSOGCHmZjhmV3+6R2nRRGeudfgopEW390qHR0HXfRwErnOKJCSohJLj1Djo9qHW9d3ew4rO/OcefFd0QVuo2V75d6sz55xZGJ+zxH3aysBxexlU2vrHRrlQTjuC0bhg9zcd3l7I7V0F3pOT3OtFk30tq/MkTc0TJfgt8ugUY6kFK8n6rt6P3pNZGsRa6yKMd/hzEyQRCQ3duJSATf7x8fzEBPA2TllqllXgcOfRmJGc+jHCcNi7Bc6HcTQHxNRVb4uuowL+TXexlt rsa@example";
    const RSA_MD5: &str = "aa:52:a2:21:1a:e3:97:0a:c4:22:68:e4:26:2c:48:cb";

    #[test]
    fn fingerprints_match_ssh_keygen() {
        for (line, md5) in [
            (ED25519, ED25519_MD5),
            (ECDSA384, ECDSA384_MD5),
            (RSA, RSA_MD5),
        ] {
            let key = parse_public_key(line).unwrap();
            assert_eq!(key.fingerprint(), md5, "{line}");
        }
        // No comment is fine too.
        let bare: String = ED25519.split(' ').take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(parse_public_key(&bare).unwrap().fingerprint(), ED25519_MD5);
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert_eq!(
            parse_public_key("ssh-rsa JUNK nova@ubuntu"),
            Err(KeyError::Blob("ssh-rsa".into()))
        );
        assert_eq!(parse_public_key(""), Err(KeyError::Format));
        assert_eq!(parse_public_key("ssh-rsa"), Err(KeyError::Format));
        assert!(matches!(
            parse_public_key("ssh-foo AAAA"),
            Err(KeyError::UnsupportedType(_))
        ));
        assert_eq!(parse_public_key("ssh-rsa !!!"), Err(KeyError::Base64));
        let long = format!("ssh-rsa {} openstack@ubuntu", "A".repeat(2048));
        assert!(parse_public_key(&long).is_err());
        // The type inside the blob must match the one in front.
        let swapped = ED25519.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert_eq!(
            parse_public_key(&swapped),
            Err(KeyError::Blob("ssh-rsa".into()))
        );
        // A truncated blob.
        let data = ED25519.split(' ').nth(1).unwrap();
        let cut = format!("ssh-ed25519 {}", &data[..data.len() - 8]);
        assert!(parse_public_key(&cut).is_err());
    }

    #[test]
    fn generated_keys_are_valid() {
        let k = generate().unwrap();
        assert!(k.public_key.starts_with("ssh-ed25519 "));
        assert!(k.public_key.ends_with(GENERATED_COMMENT));
        assert!(
            k.private_key
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        );
        assert_eq!(
            parse_public_key(&k.public_key).unwrap().fingerprint(),
            k.fingerprint
        );
    }
}
