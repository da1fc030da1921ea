//! Synthetic contracts for bulk tests and benchmarks: short, realistic-looking agreements
//! whose every sentence varies with the seed, so no two share a chunk (the embedding cache
//! and the duplicate check would otherwise make the figures look better than they are).

const FIRST: [&str; 12] = [
    "Acme",
    "Borealis",
    "Cobalt",
    "Dunmore",
    "Everest",
    "Fairview",
    "Granite",
    "Harbor",
    "Ironwood",
    "Juniper",
    "Keystone",
    "Lakeshore",
];
const SECOND: [&str; 10] = [
    "Logistics",
    "Therapeutics",
    "Software",
    "Holdings",
    "Foods",
    "Energy",
    "Media",
    "Robotics",
    "Textiles",
    "Capital",
];
const FORM: [&str; 5] = ["Inc.", "LLC", "Ltd.", "GmbH", "S.A."];
const STATES: [&str; 8] = [
    "Delaware",
    "New York",
    "California",
    "Texas",
    "Ontario",
    "England and Wales",
    "Bavaria",
    "Illinois",
];
const SUBJECTS: [&str; 8] = [
    "distribution of industrial sensors",
    "hosting of a customer analytics platform",
    "supply of organic ingredients",
    "licensing of a patent portfolio",
    "maintenance of wind turbines",
    "co-branding of consumer electronics",
    "clinical trial services",
    "outsourced payroll processing",
];

/// A small PRNG (splitmix64): reproducible without a dependency.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn pick<'a>(list: &[&'a str], seed: u64, salt: u64) -> &'a str {
    list[(mix(seed ^ salt.wrapping_mul(0x1000_0000_01B3)) % list.len() as u64) as usize]
}

fn party(seed: u64, salt: u64) -> String {
    format!(
        "{} {} {}",
        pick(&FIRST, seed, salt),
        pick(&SECOND, seed, salt + 1),
        pick(&FORM, seed, salt + 2)
    )
}

/// Contract number `n` of a family `seed` (plain text, ~1,500 characters: one or two
/// chunks). Different `(seed, n)` give different text.
pub fn contract(seed: u64, n: u64) -> String {
    let s = mix(seed.wrapping_mul(1_000_003) ^ n);
    let (a, b) = (party(s, 1), party(s, 11));
    let day = 1 + mix(s ^ 3) % 28;
    let month = 1 + mix(s ^ 4) % 12;
    let year = 2000 + mix(s ^ 5) % 25;
    let term = 1 + mix(s ^ 6) % 9;
    let cap = 10_000 * (1 + mix(s ^ 7) % 500);
    let notice = 15 * (1 + mix(s ^ 8) % 8);
    let law = pick(&STATES, s, 9);
    let subject = pick(&SUBJECTS, s, 10);
    format!(
        "MASTER AGREEMENT No. {seed}-{n}\n\n\
         This Agreement is made on {year}-{month:02}-{day:02} between {a} (\"Supplier\") and {b} (\"Customer\") \
         concerning the {subject} (reference {s:x}).\n\n\
         1. Term. This Agreement begins on the Effective Date and continues for {term} years, and renews for \
         successive one-year periods unless either party gives {notice} days' written notice of non-renewal.\n\n\
         2. Fees. Customer pays the fees in Schedule {n} within {notice} days of each invoice; late amounts bear \
         interest at {r}% per month.\n\n\
         3. Termination for convenience. Either party may terminate this Agreement for convenience on {notice} \
         days' prior written notice to the other party.\n\n\
         4. Limitation of liability. Neither party's aggregate liability under this Agreement exceeds \
         USD {cap}, except for breaches of confidentiality.\n\n\
         5. Governing law. This Agreement is governed by the laws of {law}, without regard to its conflict of \
         laws rules.\n\n\
         Signed for {a} and for {b} (contract {seed}/{n}).\n",
        r = 1 + mix(s ^ 12) % 3,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn contracts_differ_and_are_stable() {
        assert_eq!(super::contract(1, 2), super::contract(1, 2));
        assert_ne!(super::contract(1, 2), super::contract(1, 3));
        assert_ne!(super::contract(1, 2), super::contract(2, 2));
    }
}
