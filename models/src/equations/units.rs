//! Physical units of equation-defined models: dimensions over the SI base (kg, m, s, A) and the scale of each
//! unit in the model's working system — mV, ms, pA, nS, pF (consistent: nS × mV = pA, pF × mV/ms = pA, and the
//! resistance mV/pA = GΩ), the units of every built-in model.

use std::fmt;

/// Exponents of kg, m, s and A.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dim(pub [i8; 4]);

impl Dim {
    pub const NONE: Dim = Dim([0, 0, 0, 0]);
    pub const VOLT: Dim = Dim([1, 2, -3, -1]);
    pub const SECOND: Dim = Dim([0, 0, 1, 0]);
    pub const AMPERE: Dim = Dim([0, 0, 0, 1]);
    pub const SIEMENS: Dim = Dim([-1, -2, 3, 2]);
    pub const FARAD: Dim = Dim([-1, -2, 4, 2]);
    pub const OHM: Dim = Dim([1, 2, -3, -2]);

    /// The dimension of a product.
    pub fn times(self, o: Dim) -> Dim {
        Dim(std::array::from_fn(|k| self.0[k] + o.0[k]))
    }
    /// The dimension of a quotient.
    pub fn per(self, o: Dim) -> Dim {
        Dim(std::array::from_fn(|k| self.0[k] - o.0[k]))
    }
    pub fn powi(self, n: i8) -> Dim {
        Dim(std::array::from_fn(|k| self.0[k] * n))
    }
    /// The square root, when every exponent is even.
    pub fn sqrt(self) -> Option<Dim> {
        self.0.iter().all(|e| e % 2 == 0).then(|| Dim(std::array::from_fn(|k| self.0[k] / 2)))
    }
}

impl fmt::Display for Dim {
    /// The dimension in the working system's units when it is one of them (`mV`, `ms`, `pA`, `nS`, `pF`, `GΩ`,
    /// `1/ms`, `mV/ms`, `pA/ms`, `nS/ms`, `1`), else as SI base exponents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, d) in NAMED {
            if d == *self {
                return f.write_str(name);
            }
        }
        let names = ["kg", "m", "s", "A"];
        let parts: Vec<String> = (0..4)
            .filter(|&k| self.0[k] != 0)
            .map(|k| if self.0[k] == 1 { names[k].to_string() } else { format!("{}^{}", names[k], self.0[k]) })
            .collect();
        f.write_str(&parts.join(" "))
    }
}

const NAMED: [(&str, Dim); 11] = [
    ("1", Dim::NONE),
    ("mV", Dim::VOLT),
    ("ms", Dim::SECOND),
    ("pA", Dim::AMPERE),
    ("nS", Dim::SIEMENS),
    ("pF", Dim::FARAD),
    ("GΩ", Dim::OHM),
    ("1/ms", Dim([0, 0, -1, 0])),
    ("mV/ms", Dim([1, 2, -4, -1])),
    ("pA/ms", Dim([0, 0, -1, 1])),
    ("nS/ms", Dim([-1, -2, 2, 2])),
];

/// A unit symbol: its dimension and its size in the working system as a power of ten (e.g. `V` = 10^3 mV).
pub fn unit_exp(symbol: &str) -> Option<(Dim, i32)> {
    let base: &[(&str, Dim, i32)] = &[
        ("V", Dim::VOLT, 3),
        ("s", Dim::SECOND, 3),
        ("A", Dim::AMPERE, 12),
        ("S", Dim::SIEMENS, 9),
        ("F", Dim::FARAD, 12),
        ("ohm", Dim::OHM, -9),
        ("Ohm", Dim::OHM, -9),
        ("Hz", Dim([0, 0, -1, 0]), -3),
    ];
    let prefixes: &[(&str, i32)] =
        &[("", 0), ("k", 3), ("M", 6), ("G", 9), ("m", -3), ("u", -6), ("n", -9), ("p", -12), ("f", -15)];
    for (p, pe) in prefixes {
        if let Some(rest) = symbol.strip_prefix(p) {
            for (b, d, be) in base {
                if rest == *b {
                    return Some((*d, pe + be));
                }
            }
        }
    }
    None
}

/// `v × 10^k`, exact for the powers of ten a double holds exactly (division for negative `k`).
pub fn scale(v: f64, k: i32) -> f64 {
    if k >= 0 { v * 10f64.powi(k) } else { v / 10f64.powi(-k) }
}

/// A unit symbol: its dimension and its size in the working system (e.g. `V` = 1000 mV).
pub fn unit(symbol: &str) -> Option<(Dim, f64)> {
    unit_exp(symbol).map(|(d, k)| (d, scale(1.0, k)))
}

/// Parses a unit expression such as `mV`, `nS`, `1`, `mV/ms`, `pA/ms` or `1/ms` (products with `*`, one `/`)
/// into its dimension and its size as a power of ten of the working system.
pub fn parse_unit_exp(text: &str) -> Result<(Dim, i32), String> {
    let text = text.trim();
    let (num, den) = match text.split_once('/') {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (text, None),
    };
    let product = |s: &str| -> Result<(Dim, i32), String> {
        let mut d = Dim::NONE;
        let mut k = 0;
        for part in s.split('*').map(str::trim) {
            if part == "1" {
                continue;
            }
            let (pd, pk) = unit_exp(part).ok_or_else(|| {
                format!(
                    "unknown unit `{part}` (use V, s, A, S, F, ohm or Hz with a prefix k, M, G, m, u, n, p, f, e.g. \
                     mV, ms, pA, nS, pF)"
                )
            })?;
            d = d.times(pd);
            k += pk;
        }
        Ok((d, k))
    };
    let (d, k) = product(num)?;
    match den {
        None => Ok((d, k)),
        Some(den) => {
            let (dd, dk) = product(den)?;
            Ok((d.per(dd), k - dk))
        }
    }
}

/// [`parse_unit_exp`] with the size as a factor.
pub fn parse_unit(text: &str) -> Result<(Dim, f64), String> {
    parse_unit_exp(text).map(|(d, k)| (d, scale(1.0, k)))
}

/// Parses a quantity `"<number> <unit>"` (e.g. `"250 pF"`, `"-70 mV"`, `"0.5"`) into its value in the working
/// system and its dimension.
pub fn parse_quantity(text: &str) -> Result<(f64, Dim), String> {
    let text = text.trim();
    // "0.03 1/ms": a number, a space, then the unit (which may start with a digit).
    if let Some((num, unit)) = text.split_once(char::is_whitespace)
        && let Ok(value) = num.parse::<f64>()
        && value.is_finite()
    {
        let (d, k) = parse_unit_exp(unit)?;
        return Ok((scale(value, k), d));
    }
    let split = text.find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E').unwrap_or(text.len());
    // An exponent `e`/`E` directly followed by a letter is the start of a unit, not an exponent.
    let (mut num, mut rest) = text.split_at(split);
    if let Some(stripped) = num.trim_end().strip_suffix(['e', 'E'])
        && !stripped.is_empty()
        && rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
    {
        let cut = stripped.len();
        (num, rest) = text.split_at(cut);
    }
    let value: f64 =
        num.trim().parse().map_err(|_| format!("`{text}` is not a quantity such as \"250 pF\" or \"-70 mV\""))?;
    if !value.is_finite() {
        return Err(format!("`{text}` is not finite"));
    }
    let (d, k) = if rest.trim().is_empty() { (Dim::NONE, 0) } else { parse_unit_exp(rest)? };
    Ok((scale(value, k), d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_scaled_to_the_working_system() {
        assert_eq!(parse_quantity("250 pF").unwrap(), (250.0, Dim::FARAD));
        assert_eq!(parse_quantity("-70 mV").unwrap(), (-70.0, Dim::VOLT));
        assert_eq!(parse_quantity("0.2 nF").unwrap().0, 200.0);
        assert!((parse_quantity("16.7 uS").unwrap().0 - 16_700.0).abs() < 1e-9);
        assert!((parse_quantity("100 Mohm").unwrap().0 - 0.1).abs() < 1e-15);
        assert!((parse_quantity("5 Hz").unwrap().0 - 0.005).abs() < 1e-15);
        assert_eq!(parse_quantity("1e-3 V").unwrap().0, 1.0);
        assert_eq!(parse_quantity("2").unwrap(), (2.0, Dim::NONE));
        assert_eq!(parse_quantity("0.03 1/ms").unwrap(), (0.03, Dim([0, 0, -1, 0])));
        // pF mV / ms = pA; nS mV = pA
        assert_eq!(Dim::FARAD.times(Dim::VOLT).per(Dim::SECOND), Dim::AMPERE);
        assert_eq!(Dim::SIEMENS.times(Dim::VOLT), Dim::AMPERE);
        assert_eq!(parse_unit("mV/ms").unwrap().0.to_string(), "mV/ms");
        assert!(parse_quantity("3 parsecs").unwrap_err().contains("unknown unit `parsecs`"));
        assert!(parse_quantity("abc mV").is_err());
    }
}
