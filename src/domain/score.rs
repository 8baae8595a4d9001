use serde::{Deserialize, Serialize};

/// How an account scores its entries. A score is kept as a whole number of the format's smallest
/// step: points for `Point100`/`Point10`/`Point5`/`Point3`, tenths for `Point10Decimal` (8.5 is
/// 85). 0 always means "no score". MyAnimeList always scores 0–10.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScoreFormat {
    /// 0–100.
    Point100,
    /// 0.0–10.0 in tenths.
    Point10Decimal,
    /// 0–10.
    #[default]
    Point10,
    /// 0–5 stars.
    Point5,
    /// 1–3 smileys.
    Point3,
}

impl ScoreFormat {
    pub const ALL: [ScoreFormat; 5] = [
        ScoreFormat::Point100,
        ScoreFormat::Point10Decimal,
        ScoreFormat::Point10,
        ScoreFormat::Point5,
        ScoreFormat::Point3,
    ];

    /// Stable key used in the database.
    pub fn key(self) -> &'static str {
        match self {
            ScoreFormat::Point100 => "point_100",
            ScoreFormat::Point10Decimal => "point_10_decimal",
            ScoreFormat::Point10 => "point_10",
            ScoreFormat::Point5 => "point_5",
            ScoreFormat::Point3 => "point_3",
        }
    }

    pub fn from_key(key: &str) -> Option<ScoreFormat> {
        ScoreFormat::ALL.into_iter().find(|f| f.key() == key)
    }

    /// The highest score, in steps.
    pub fn max(self) -> u8 {
        match self {
            ScoreFormat::Point100 | ScoreFormat::Point10Decimal => 100,
            ScoreFormat::Point10 => 10,
            ScoreFormat::Point5 => 5,
            ScoreFormat::Point3 => 3,
        }
    }

    /// How far ↑/↓ move a score in the score prompt.
    pub fn step(self) -> u8 {
        match self {
            ScoreFormat::Point100 => 5,
            ScoreFormat::Point10Decimal => 5,
            _ => 1,
        }
    }

    /// Few enough scores to pick from a menu (the others are typed).
    pub fn is_menu(self) -> bool {
        self.max() <= 10
    }

    /// The score as the account shows it: "85", "8.5", "8", "★★★★", ":)"; empty for no score.
    pub fn show(self, score: u8) -> String {
        let score = score.min(self.max());
        if score == 0 {
            return String::new();
        }
        match self {
            ScoreFormat::Point100 | ScoreFormat::Point10 => score.to_string(),
            ScoreFormat::Point10Decimal => format!("{}.{}", score / 10, score % 10),
            ScoreFormat::Point5 => "★".repeat(usize::from(score)),
            ScoreFormat::Point3 => match score {
                1 => ":(",
                2 => ":|",
                _ => ":)",
            }
            .to_string(),
        }
    }

    /// The score typed by the user ("85", "8.5", "8"), if it is one of this format's.
    pub fn parse(self, text: &str) -> Option<u8> {
        let text = text.trim();
        if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return None;
        }
        let value = match self {
            ScoreFormat::Point10Decimal => {
                let (whole, tenth) = match text.split_once('.') {
                    Some((w, t)) if t.len() <= 1 && !t.contains('.') => (w, t),
                    Some(_) => return None,
                    None => (text, ""),
                };
                let whole: u32 = if whole.is_empty() {
                    0
                } else {
                    whole.parse().ok()?
                };
                let tenth: u32 = if tenth.is_empty() {
                    0
                } else {
                    tenth.parse().ok()?
                };
                whole.checked_mul(10)?.checked_add(tenth)?
            }
            _ if text.contains('.') => return None,
            _ => text.parse().ok()?,
        };
        u8::try_from(value).ok().filter(|v| *v <= self.max())
    }

    /// A score in this format, from the service's number for it (a float in the account's own
    /// format: 8.5 for `Point10Decimal`, 85 for `Point100`). Out of range or not a number: 0.
    pub fn from_points(self, points: f64) -> u8 {
        if !points.is_finite() || points <= 0.0 {
            return 0;
        }
        let steps = match self {
            ScoreFormat::Point10Decimal => (points * 10.0).round(),
            _ => points.round(),
        };
        if steps > f64::from(self.max()) {
            self.max()
        } else {
            steps as u8
        }
    }

    /// The service's number for a score in this format (the reverse of [`ScoreFormat::from_points`]).
    pub fn to_points(self, score: u8) -> f64 {
        let score = score.min(self.max());
        match self {
            ScoreFormat::Point10Decimal => f64::from(score) / 10.0,
            _ => f64::from(score),
        }
    }

    /// The range in words, for the score prompt ("0–100", "0.0–10.0").
    pub fn range(self) -> &'static str {
        match self {
            ScoreFormat::Point100 => "1–100",
            ScoreFormat::Point10Decimal => "0.1–10.0",
            ScoreFormat::Point10 => "1–10",
            ScoreFormat::Point5 => "1–5 stars",
            ScoreFormat::Point3 => "1–3",
        }
    }

    /// The score one step up or down from `score`, within range.
    pub fn stepped(self, score: u8, up: bool) -> u8 {
        if up {
            score.saturating_add(self.step()).min(self.max())
        } else {
            score.saturating_sub(self.step())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_each_format_as_the_account_does() {
        assert_eq!(ScoreFormat::Point100.show(85), "85");
        assert_eq!(ScoreFormat::Point10Decimal.show(85), "8.5");
        assert_eq!(ScoreFormat::Point10Decimal.show(100), "10.0");
        assert_eq!(ScoreFormat::Point10.show(8), "8");
        assert_eq!(ScoreFormat::Point5.show(3), "★★★");
        assert_eq!(ScoreFormat::Point3.show(3), ":)");
        assert_eq!(ScoreFormat::Point3.show(1), ":(");
        for f in ScoreFormat::ALL {
            assert_eq!(f.show(0), "", "{f:?}");
            assert_eq!(ScoreFormat::from_key(f.key()), Some(f));
        }
    }

    #[test]
    fn parses_typed_scores_within_range() {
        assert_eq!(ScoreFormat::Point100.parse("85"), Some(85));
        assert_eq!(ScoreFormat::Point100.parse("101"), None);
        assert_eq!(ScoreFormat::Point100.parse("8.5"), None);
        assert_eq!(ScoreFormat::Point10Decimal.parse("8.5"), Some(85));
        assert_eq!(ScoreFormat::Point10Decimal.parse("8."), Some(80));
        assert_eq!(ScoreFormat::Point10Decimal.parse("10"), Some(100));
        assert_eq!(ScoreFormat::Point10Decimal.parse("10.5"), None);
        assert_eq!(ScoreFormat::Point10Decimal.parse("8.55"), None);
        assert_eq!(ScoreFormat::Point10.parse("10"), Some(10));
        assert_eq!(ScoreFormat::Point5.parse("6"), None);
        assert_eq!(ScoreFormat::Point3.parse("2"), Some(2));
        assert_eq!(ScoreFormat::Point3.parse("-1"), None);
        assert_eq!(ScoreFormat::Point3.parse(""), None);
    }

    #[test]
    fn converts_to_and_from_the_service_number() {
        assert_eq!(ScoreFormat::Point10Decimal.from_points(8.5), 85);
        assert_eq!(ScoreFormat::Point10Decimal.to_points(85), 8.5);
        assert_eq!(ScoreFormat::Point100.from_points(85.0), 85);
        assert_eq!(ScoreFormat::Point5.from_points(9.0), 5);
        assert_eq!(ScoreFormat::Point5.from_points(f64::NAN), 0);
        assert_eq!(ScoreFormat::Point3.from_points(-2.0), 0);
        assert_eq!(ScoreFormat::Point100.stepped(98, true), 100);
        assert_eq!(ScoreFormat::Point10.stepped(0, false), 0);
    }
}
