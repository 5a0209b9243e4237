//! The one AEAD primitive every secret goes through: AES-256-GCM-SIV
//! (RFC 8452), with a random 96-bit nonce stored in front of the ciphertext.
//!
//! # Why GCM-SIV
//! Nonces are random, so two seals under one key could in principle repeat a
//! nonce. With plain AES-GCM that leaks the authentication key; GCM-SIV is
//! nonce-misuse resistant, so a repeat only reveals that two plaintexts were
//! equal. Both data-key wrapping and credential sealing use it.
//!
//! # Why the associated data is framed
//! The associated data binds a ciphertext to the record it belongs to. Each
//! part is length-prefixed after a domain label, so no two different
//! (label, parts) tuples encode to the same bytes and a wrapped key can never
//! be replayed as sealed credentials or vice versa.

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Key, Nonce, Tag};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::SecretError;

/// Length of the random nonce stored before the ciphertext.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of the authentication tag at the end of the ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// Associated data: `label`, a zero byte, then each part as a 4-byte
/// big-endian length followed by its bytes.
pub(crate) fn aad(label: &str, parts: &[&[u8]]) -> Vec<u8> {
    let len = label.len() + 1 + parts.iter().map(|p| 4 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(label.as_bytes());
    out.push(0);
    for part in parts {
        let n = u32::try_from(part.len()).expect("aad part under 4 GiB");
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Encrypts `plaintext` under a fresh random nonce; returns nonce || ct || tag.
pub(crate) fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    seal_with_nonce(key, &nonce, aad, plaintext)
}

/// `seal` with a chosen nonce; only the known-answer tests call it directly.
fn seal_with_nonce(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SecretError> {
    let cipher = Aes256GcmSiv::new(Key::<Aes256GcmSiv>::from_slice(key));
    // Sized up front so the buffer never reallocates: the plaintext is copied
    // in and encrypted in place, and no stray copy is left in freed memory.
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut out[NONCE_LEN..])
        .map_err(|_| SecretError::Encrypt)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypts nonce || ct || tag. `None` for any failure (too short, wrong
/// key, wrong associated data, tampering); callers pick the error to report.
pub(crate) fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let cipher = Aes256GcmSiv::new(Key::<Aes256GcmSiv>::from_slice(key));
    let mut buf = Zeroizing::new(ct.to_vec());
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            aad,
            &mut buf,
            Tag::from_slice(tag),
        )
        .ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vector {
        key: &'static str,
        nonce: &'static str,
        aad: &'static str,
        plaintext: &'static str,
        /// Ciphertext followed by the tag, as RFC 8452 lists "Result".
        result: &'static str,
    }

    /// RFC 8452 Appendix C.2 (AEAD_AES_256_GCM_SIV), with and without AAD.
    const RFC8452_C2: &[Vector] = &[
        Vector {
            key: "0100000000000000000000000000000000000000000000000000000000000000",
            nonce: "030000000000000000000000",
            aad: "",
            plaintext: "",
            result: "07f5f4169bbf55a8400cd47ea6fd400f",
        },
        Vector {
            key: "0100000000000000000000000000000000000000000000000000000000000000",
            nonce: "030000000000000000000000",
            aad: "",
            plaintext: "0100000000000000",
            result: "c2ef328e5c71c83b843122130f7364b761e0b97427e3df28",
        },
        Vector {
            key: "0100000000000000000000000000000000000000000000000000000000000000",
            nonce: "030000000000000000000000",
            aad: "01",
            plaintext: "0200000000000000",
            result: "1de22967237a813291213f267e3b452f02d01ae33e4ec854",
        },
        Vector {
            key: "0100000000000000000000000000000000000000000000000000000000000000",
            nonce: "030000000000000000000000",
            aad: "010000000000000000000000",
            plaintext: "02000000",
            result: "22b3f4cd1835e517741dfddccfa07fa4661b74cf",
        },
        Vector {
            key: "e66021d5eb8e4f4066d4adb9c33560e4f46e44bb3da0015c94f7088736864200",
            nonce: "e0eaf5284d884a0e77d31646",
            aad: "",
            plaintext: "",
            result: "169fbb2fbf389a995f6390af22228a62",
        },
        Vector {
            key: "bae8e37fc83441b16034566b7a806c46bb91c3c5aedb64a6c590bc84d1a5e269",
            nonce: "e4b47801afc0577e34699b9e",
            aad: "4fbdc66f14",
            plaintext: "671fdd",
            result: "0eaccb93da9bb81333aee0c785b240d319719d",
        },
        Vector {
            key: "6545fc880c94a95198874296d5cc1fd161320b6920ce07787f86743b275d1ab3",
            nonce: "2f6d1f0434d8848c1177441f",
            aad: "6787f3ea22c127aaf195",
            plaintext: "195495860f04",
            result: "a254dad4f3f96b62b84dc40c84636a5ec12020ec8c2c",
        },
    ];

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn rfc8452_known_answers_seal_and_open() {
        for (i, v) in RFC8452_C2.iter().enumerate() {
            let key: [u8; 32] = unhex(v.key);
            let nonce: [u8; NONCE_LEN] = unhex(v.nonce);
            let aad = hex::decode(v.aad).unwrap();
            let plaintext = hex::decode(v.plaintext).unwrap();
            let sealed = seal_with_nonce(&key, &nonce, &aad, &plaintext).unwrap();
            assert_eq!(&sealed[..NONCE_LEN], &nonce, "vector {i}: nonce prefix");
            assert_eq!(hex::encode(&sealed[NONCE_LEN..]), v.result, "vector {i}");
            let opened = open(&key, &aad, &sealed).expect("opens");
            assert_eq!(opened.as_slice(), plaintext.as_slice(), "vector {i}");
        }
    }

    #[test]
    fn tampering_and_wrong_aad_fail() {
        let v = &RFC8452_C2[2];
        let key: [u8; 32] = unhex(v.key);
        let mut sealed = hex::decode(v.nonce).unwrap();
        sealed.extend(hex::decode(v.result).unwrap());
        assert!(open(&key, b"\x01", &sealed).is_some());
        assert!(open(&key, b"\x02", &sealed).is_none(), "other aad");
        assert!(open(&key, b"", &sealed).is_none(), "no aad");
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN] ^= 1;
        assert!(open(&key, b"\x01", &flipped).is_none(), "flipped bit");
        assert!(open(&key, b"\x01", &sealed[..NONCE_LEN + 3]).is_none());
        let mut other = key;
        other[31] ^= 0x80;
        assert!(open(&other, b"\x01", &sealed).is_none(), "other key");
    }

    #[test]
    fn random_nonces_differ() {
        let key = [7u8; 32];
        let a = seal(&key, b"x", b"same").unwrap();
        let b = seal(&key, b"x", b"same").unwrap();
        assert_ne!(a, b);
        assert_eq!(open(&key, b"x", &a).unwrap().as_slice(), b"same");
    }

    #[test]
    fn aad_framing_is_unambiguous() {
        assert_ne!(aad("l", &[b"ab", b"c"]), aad("l", &[b"a", b"bc"]));
        assert_ne!(aad("l", &[b"ab"]), aad("m", &[b"ab"]));
    }
}
