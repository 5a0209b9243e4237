//! Where a number goes: its country and whether it is a premium-rate or
//! satellite number, from the numbering plans of Google's libphonenumber
//! (the `phonenumber` crate carries its metadata; hand-kept tables of every
//! country's premium ranges would drift).

use super::E164;

/// The country of the ITU's non-geographic codes (+800, +870, +881, …).
pub const NON_GEOGRAPHIC: &str = "001";

/// A called number, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// ISO 3166-1 alpha-2 (`US`, `GB`), or `001` for a non-geographic code.
    pub country: String,
    pub premium_rate: bool,
    pub satellite: bool,
}

/// Satellite networks by E.164 prefix: Inmarsat (+870), the Global Mobile
/// Satellite System (+881: Iridium, Globalstar, …) and Thuraya (+882 16).
const SATELLITE_PREFIXES: [&str; 3] = ["+870", "+881", "+88216"];

/// Classifies `number`. A number libphonenumber cannot place in a region
/// (an unassigned range, say) takes the main country of its country code,
/// so an allowlist still judges it by where it would go.
pub fn classify(number: &E164) -> Destination {
    let s = number.as_str();
    let satellite = SATELLITE_PREFIXES.iter().any(|p| s.starts_with(p));
    let Ok(parsed) = phonenumber::parse(None, s) else {
        return Destination {
            country: NON_GEOGRAPHIC.to_owned(),
            premium_rate: false,
            satellite,
        };
    };
    // The number's region, looked up once: `country().id()` and
    // `number_type` would each look it up again (for +1, by trying the
    // plans of up to 25 regions in turn), and `number_type` goes on through
    // a dozen more descriptors once premium rate did not match. This asks
    // exactly what `number_type` asks before it answers `PremiumRate`.
    let meta = parsed.metadata(&phonenumber::metadata::DATABASE);
    let country = meta
        .and_then(|m| m.id().parse::<phonenumber::country::Id>().ok())
        .map(|id| id.as_ref().to_owned())
        .or_else(|| main_country(parsed.code().value()))
        .unwrap_or_else(|| NON_GEOGRAPHIC.to_owned());
    let premium_rate = meta.is_some_and(|m| {
        let national = parsed.national().value().to_string();
        let d = m.descriptors();
        d.general().is_match(&national) && d.premium_rate().is_some_and(|p| p.is_match(&national))
    });
    Destination {
        country,
        premium_rate,
        satellite,
    }
}

/// The main region of a country calling code (`44` → `GB`).
fn main_country(code: u16) -> Option<String> {
    phonenumber::metadata::DATABASE
        .region(&code)?
        .first()
        .map(|r| r.to_string())
        .filter(|r| r.len() == 2)
}

/// Whether `code` is an ISO 3166-1 alpha-2 code libphonenumber knows a
/// numbering plan for (what an allowlist may name).
pub fn is_country(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && code.parse::<phonenumber::country::Id>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(n: &str) -> Destination {
        classify(&E164::parse(n).unwrap())
    }

    #[test]
    fn countries_premium_rate_and_satellite() {
        assert_eq!(of("+12025550123").country, "US");
        assert_eq!(of("+16135550123").country, "CA");
        assert_eq!(of("+442071838750").country, "GB");
        let premium = of("+19005550123");
        assert_eq!(
            (premium.country.as_str(), premium.premium_rate),
            ("US", true)
        );
        assert!(!of("+14155550100").premium_rate);
        let iridium = of("+881612345678");
        assert!(iridium.satellite);
        assert_eq!(iridium.country, NON_GEOGRAPHIC);
        assert!(of("+870772123456").satellite);
        assert!(!of("+8613800138000").satellite);
        // An unassigned UK range still counts as the UK.
        assert_eq!(of("+447700900123").country, "GB");
    }

    /// What `classify` answered before it looked the region up only once.
    fn classify_by_number_type(number: &E164) -> Destination {
        let s = number.as_str();
        let satellite = SATELLITE_PREFIXES.iter().any(|p| s.starts_with(p));
        let Ok(parsed) = phonenumber::parse(None, s) else {
            return Destination {
                country: NON_GEOGRAPHIC.to_owned(),
                premium_rate: false,
                satellite,
            };
        };
        let country = parsed
            .country()
            .id()
            .map(|id| id.as_ref().to_owned())
            .or_else(|| main_country(parsed.code().value()))
            .unwrap_or_else(|| NON_GEOGRAPHIC.to_owned());
        let premium_rate = matches!(
            parsed.number_type(&phonenumber::metadata::DATABASE),
            phonenumber::Type::PremiumRate
        );
        Destination {
            country,
            premium_rate,
            satellite,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        /// Numbers across many plans (NANP, the UK, Germany, France,
        /// Australia, Japan, the non-geographic codes, …) with premium-rate
        /// ranges among them: the same answer as `number_type` gave.
        #[test]
        fn classify_answers_as_number_type_did(
            code in proptest::sample::select(vec![
                "1", "1900", "1976", "44", "449", "4487", "49", "4990", "33", "3389", "61",
                "61190", "81", "8199", "86", "91", "7", "870", "881", "882", "800", "979",
                "34", "3480", "39", "3989", "55", "52", "27", "234",
            ]),
            rest in "[0-9]{6,11}",
        ) {
            let Ok(n) = E164::parse(&format!("+{code}{rest}")) else {
                return Ok(());
            };
            proptest::prop_assert_eq!(classify(&n), classify_by_number_type(&n));
        }
    }

    #[test]
    fn allowlist_codes() {
        assert!(is_country("US") && is_country("GB") && is_country("DE"));
        for bad in ["us", "USA", "ZZ", "", "U1"] {
            assert!(!is_country(bad), "{bad}");
        }
    }
}
