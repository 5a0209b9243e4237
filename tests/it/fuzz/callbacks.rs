//! Callback signatures: what is signed verifies, anything changed does not,
//! and no header a peer can send panics or verifies without the secret.

use proptest::prelude::*;
use switchboard::callproc::{sign, verify};

const NOW: i64 = 1_796_277_600;

proptest! {
    #[test]
    fn a_signed_body_verifies_and_any_change_does_not(
        secret in proptest::collection::vec(any::<u8>(), 1..64),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        skew in -300i64..=300,
        flip in any::<usize>(),
        bit in 0u8..8,
    ) {
        let header = sign(&secret, NOW + skew, &body);
        prop_assert!(verify(&secret, Some(&header), &body, NOW, 300).is_ok());
        if !body.is_empty() {
            let mut changed = body.clone();
            let i = flip % changed.len();
            changed[i] ^= 1 << bit;
            prop_assert!(verify(&secret, Some(&header), &changed, NOW, 300).is_err());
        }
        let mut other = secret.clone();
        other[flip % secret.len()] ^= 1 << bit;
        prop_assert!(verify(&other, Some(&header), &body, NOW, 300).is_err());
        // Outside the window, either way.
        let stale = sign(&secret, NOW - 301 - skew.abs(), &body);
        prop_assert!(verify(&secret, Some(&stale), &body, NOW, 300).is_err());
    }

    #[test]
    fn no_header_verifies_without_the_secret(
        header in prop_oneof![
            ".{0,120}",
            "t=[0-9-]{0,12},v1=[0-9a-f]{0,70}",
            "(t=[0-9]{1,11},?|v1=[0-9a-f]{64},?|v0=[a-z]{0,4},?){0,5}",
        ],
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        prop_assert!(verify(b"the-secret", Some(&header), &body, NOW, 300).is_err());
    }
}
