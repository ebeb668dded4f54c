//! The trial's two languages: every label, screen message and printout is in English and
//! Chinese, and a user reads the app in one of them.

use std::fmt;
use std::str::FromStr;

/// A language of the screens and printouts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// Chinese (simplified).
    Zh,
}

impl Lang {
    /// The code kept in preferences and used by the exports' R scripts (`en`, `zh`).
    pub const fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "en" => Ok(Lang::En),
            "zh" => Ok(Lang::Zh),
            other => Err(format!("language {other:?}: en or zh")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_back_and_serde_uses_them() {
        for l in [Lang::En, Lang::Zh] {
            assert_eq!(l.code().parse::<Lang>(), Ok(l));
            assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{l}\""));
        }
        assert!("fr".parse::<Lang>().unwrap_err().contains("en or zh"));
    }
}
