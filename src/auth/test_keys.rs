//! Fixed key pairs for the auth tests, generated once with `openssl genpkey`
//! (RSA 2048, Ed25519, EC P-256). They protect nothing: test use only.

pub const RSA_PRIVATE_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDQDy7dROJCGMDW
IjvLfR7kUyd0lPQiCPn84QNYGg4oHJhR9NS2TIrwZApWfPmxD4GJsuqw6b52V7Re
FkQ/xrq/kLFCQNWoHbQv6wiMGrSsJ47Q6g3jOV55vAkrFsIT+OYKWWsmzqClTqOu
mH6zTau/woBqjpwmzStuimpLTI5bukcRtTpFNE3YyJ0SuOqi1m0rExb/Lgy5foQ/
gvYRi2cbRE2L0EguLtpDmj4K3aSVwTxB+0ZOVL61i0yi6JVE+zrQN1wtK2uMuRmh
vrXJ/M5ZSgiHaOqssr0uW4vZ0PGANXZIRLnGhxY9+W95zyvXCVnNEQtIxqD42Nee
m9ATrPo/AgMBAAECggEAC4ATWJKyqPGiUxPAV16aowc/oo+LMQhq/QHZA/kouCng
d4M/cLYpZeE5uw8cZB+Vyu0zUMUSzIrLgvnbGuVatDUEv0NDLBA8QfvNVKUzQGLN
X5nYW6tzn+n3XcTbxGvZF1Ba/mGkeo6uuHtgYXvVFvviykEIu5JSqMEI4BGiuson
GHLsrnvsvXYOatGjBphEv9l6/blsZQzBD+JE04VO94AtxuchPhXR47FUIzNftCrK
CSQHYva75Ooo/duwms4BLs/Fu2WyHtiJWwFJDRvIsPqvamBmpo53wqKH53Oe9sKM
/ZMbfrRq96ppGQlkrQ0uzKy6Kj5tLlXQbifrA5/UrQKBgQDp2umMMQ1hIbLRBqbo
ViEmEgwVD0nFD86or+uEpBGWgm1HEUadKnBhPqr9atRYxEquOgROw+OrVfqEMjzo
n9fCfJwSc4TwNiqK8DMzf/iY83z5ZkaTCfRX2WWvuNz//eyq2d014wfvkQFjKfQ1
/U2pe2I1mBG3dzplxhgtDbjTjQKBgQDjwu6Cw8sb9ztm23s2HopJUMTxYs5mOrCp
ln5pR7qVkPMz6dA4nvcLn0LdyrhHyYNm/b+YdKG0zp5kuWl1szGs6um6XDr+Ccx8
I862KwET89HoSs6GxnVxTZcW5D8AE0L7aC2z4u//e8qo4j9m4+Ja/u1aaNRUezlD
PctRpPiL+wKBgQDBmtP5lW6fOJfjB1/NP+knrI9GLCcFt4V/EE2qvW42LfqseHf+
i/EIASrsrLHqX2/4d92zG+fzpDXHlhPo/tRQlntbpzmq6R0lc6DgBRVaA1M24t6Q
wxAAXuIZrbGBWcbC16WVBEVAp8r/Pu+IdxIBuz1eY2xfeJznPy4qto6KzQKBgARk
jhUXkaNIcWzabtXsYN5pIGNHdJOkLiQXMvj02TRpR0eJCusMpdcjizab4lIAIPir
jDZ0iWnjUkq/CLmsaxjarwdZIAomRjtetW3uBmdMHJBOYQ1YZot446EdZdmqhXAz
4i3GArr6uD3pny9s1cDLiehkfTPj7IbPekxo0iJhAoGBANwm73sfYkmiTIlfdXyr
e2AItO+RNw59SjHPvF9PdgK0QxgPoJJkHCTfPBY2Z9OD9nxpzbJNh2dXeFTD8Mat
2jQ/kABWHPOdKmtqH9XobxUQwY6OG743v/OgxnctQeM+o+H03D4Zhw6wPibbatXB
ZWG3ZjkOrB90PJbvVprH7z1L
-----END PRIVATE KEY-----
";

pub const RSA_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA0A8u3UTiQhjA1iI7y30e
5FMndJT0Igj5/OEDWBoOKByYUfTUtkyK8GQKVnz5sQ+BibLqsOm+dle0XhZEP8a6
v5CxQkDVqB20L+sIjBq0rCeO0OoN4zleebwJKxbCE/jmCllrJs6gpU6jrph+s02r
v8KAao6cJs0rbopqS0yOW7pHEbU6RTRN2MidErjqotZtKxMW/y4MuX6EP4L2EYtn
G0RNi9BILi7aQ5o+Ct2klcE8QftGTlS+tYtMouiVRPs60DdcLStrjLkZob61yfzO
WUoIh2jqrLK9LluL2dDxgDV2SES5xocWPflvec8r1wlZzRELSMag+NjXnpvQE6z6
PwIDAQAB
-----END PUBLIC KEY-----
";

/// The RSA modulus, base64url without padding (`openssl rsa -pubin -modulus`).
pub const RSA_N: &str = "0A8u3UTiQhjA1iI7y30e5FMndJT0Igj5_OEDWBoOKByYUfTUtkyK8GQKVnz5sQ-BibLqsOm-dle0XhZEP8a6v5CxQkDVqB20L-sIjBq0rCeO0OoN4zleebwJKxbCE_jmCllrJs6gpU6jrph-s02rv8KAao6cJs0rbopqS0yOW7pHEbU6RTRN2MidErjqotZtKxMW_y4MuX6EP4L2EYtnG0RNi9BILi7aQ5o-Ct2klcE8QftGTlS-tYtMouiVRPs60DdcLStrjLkZob61yfzOWUoIh2jqrLK9LluL2dDxgDV2SES5xocWPflvec8r1wlZzRELSMag-NjXnpvQE6z6Pw";
pub const RSA_E: &str = "AQAB";

pub const ED25519_PRIVATE_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGpZh27p1s9EgcW0OsFdshNZmL6R6Eu5zqpZAY++Z01U
-----END PRIVATE KEY-----
";

/// The raw Ed25519 public key (last 32 bytes of the SPKI DER), base64url.
pub const ED25519_X: &str = "3GrZznoLP02Cx90LeDMxAAQ_zXdG37WQISn0MxRroTY";

pub const EC_P256_PRIVATE_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgbb+UXulHuW8FILXJ
qQIeO56LDFEGxmqu7vBVJFEPLiahRANCAASIUnd50QKA+ZhXZEPMgXnccaZyDLGm
3iUDo2Ch2Yqzs/8xsh8ISaprhdD9YBtMxzfZPOtSNOFakdx8vqe3Ljdt
-----END PRIVATE KEY-----
";

/// The P-256 public point coordinates, base64url.
pub const EC_P256_X: &str = "iFJ3edECgPmYV2RDzIF53HGmcgyxpt4lA6NgodmKs7M";
pub const EC_P256_Y: &str = "_zGyHwhJqmuF0P1gG0zHN9k861I04VqR3Hy-p7cuN20";
