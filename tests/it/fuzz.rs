//! Parsers under property tests: every input a client or a peer can send,
//! generated, against an oracle of what must be accepted. A short run (256
//! cases each) is part of the suite; `scripts/fuzz` runs 1,000,000 each.
//! Any failure is shrunk by proptest to a minimal input and saved under
//! `proptest-regressions/`.

mod callbacks;
mod credentials;
mod e164;
mod events;
mod jwt;
mod problems;

use proptest::prelude::*;

/// Strings a fuzzer should try: any Unicode, control characters, NUL, and
/// ASCII that is almost right.
pub fn nasty_string(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<char>(), 0..max).prop_map(|v| v.into_iter().collect()),
        proptest::collection::vec(
            prop_oneof![
                Just('+'),
                Just('0'),
                Just('1'),
                Just('9'),
                Just(' '),
                Just('\0'),
                Just('\n'),
                Just('a'),
                Just('A'),
                Just('-'),
                Just('\u{200b}'),
                Just('\u{ff11}'),
                Just('٣')
            ],
            0..max
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}
