//! How the screen looks. Defaults use the 16 ANSI colours so they suit dark and light
//! terminals; every slot can be restyled in `[theme]`, and `NO_COLOR` keeps only modifiers.
//!
//! A style is written as words, case-insensitive, in any order:
//!
//! - modifiers: `bold`, `dim`, `italic`, `underlined` (or `underline`), `reversed` (or `reverse`);
//! - at most one foreground colour, and one background colour after `on`: `"black on cyan"`;
//! - a colour is one of
//!   - a name: `black`, `red`, `green`, `yellow`, `blue`, `magenta`, `cyan`, `white`,
//!     `gray` (also `grey`, `silver`, `light gray`), `dark gray` (also `bright black`),
//!     `light`/`bright` + `red`/`green`/`yellow`/`blue`/`magenta`/`cyan`/`white`,
//!     and `default` (or `reset`) for the terminal's own colour; two-word names may also be
//!     joined: `darkgray`, `dark_gray`, `bright-blue`;
//!   - `#rrggbb` (six hex digits, for terminals with true colour);
//!   - a palette index from 0 to 255, bare or after `colour`/`color`: `"208"`, `"colour 208"`;
//! - `"none"` (or an empty string) for no styling at all.

use std::collections::BTreeMap;

use ratatui::style::{Color, Modifier, Style};
use toml::Spanned;

/// Every slot: its name in `[theme]`, its default, and the modifiers that stand in for its
/// colour under `NO_COLOR` (for slots whose meaning is carried by colour).
const SLOTS: [(&str, &str, Modifier); 14] = [
    ("title", "bold", Modifier::BOLD),
    ("tab", "none", Modifier::empty()),
    ("tab_active", "bold reversed", Modifier::REVERSED),
    ("header", "bold", Modifier::BOLD),
    ("selected", "reversed", Modifier::REVERSED),
    ("pending", "bold yellow", Modifier::BOLD),
    ("error", "bold red", Modifier::BOLD),
    ("new_episode", "bold green", Modifier::BOLD),
    ("dim", "dark gray", Modifier::DIM),
    ("status_bar", "reversed", Modifier::REVERSED),
    ("hint_bar", "dark gray", Modifier::DIM),
    ("popup", "cyan", Modifier::empty()),
    (
        "match_highlight",
        "bold cyan",
        Modifier::BOLD.union(Modifier::UNDERLINED),
    ),
    ("score", "none", Modifier::empty()),
];

/// One style per part of the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Theme {
    /// The title bar.
    pub title: Style,
    /// A tab that is not the current one.
    pub tab: Style,
    /// The current tab.
    pub tab_active: Style,
    /// The table header.
    pub header: Style,
    /// The selected row.
    pub selected: Style,
    /// The `↑` marker of a change MyAnimeList has not confirmed yet.
    pub pending: Style,
    /// The `!` marker of a refused or conflicting change, and error text.
    pub error: Style,
    /// The marker of a newly aired episode.
    pub new_episode: Style,
    /// Secondary text: totals, hints.
    pub dim: Style,
    /// The status bar.
    pub status_bar: Style,
    /// The key hint bar.
    pub hint_bar: Style,
    /// Popup borders and titles.
    pub popup: Style,
    /// The characters a filter matched.
    pub match_highlight: Style,
    /// Scores.
    pub score: Style,
}

/// The `[theme]` table as read, with the positions of its keys and values for messages.
pub(super) type RawTheme = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

impl Default for Theme {
    fn default() -> Self {
        let mut theme = Theme::plain();
        for (name, spec, _) in SLOTS {
            theme
                .set(name, spec)
                .expect("the built-in theme is well-formed");
        }
        theme
    }
}

impl Theme {
    /// No styling anywhere.
    const fn plain() -> Theme {
        Theme::uniform(Style::new())
    }

    /// Every slot styled alike.
    const fn uniform(s: Style) -> Theme {
        Theme {
            title: s,
            tab: s,
            tab_active: s,
            header: s,
            selected: s,
            pending: s,
            error: s,
            new_episode: s,
            dim: s,
            status_bar: s,
            hint_bar: s,
            popup: s,
            match_highlight: s,
            score: s,
        }
    }

    /// The slot names accepted in `[theme]`, in the order the example file lists them.
    pub fn slot_names() -> impl Iterator<Item = &'static str> {
        SLOTS.iter().map(|(name, _, _)| *name)
    }

    /// The style of the slot called `name`.
    pub fn get(&self, name: &str) -> Option<Style> {
        self.clone().slot_mut(name).map(|style| *style)
    }

    fn slot_mut(&mut self, name: &str) -> Option<&mut Style> {
        match name {
            "title" => Some(&mut self.title),
            "tab" => Some(&mut self.tab),
            "tab_active" => Some(&mut self.tab_active),
            "header" => Some(&mut self.header),
            "selected" => Some(&mut self.selected),
            "pending" => Some(&mut self.pending),
            "error" => Some(&mut self.error),
            "new_episode" => Some(&mut self.new_episode),
            "dim" => Some(&mut self.dim),
            "status_bar" => Some(&mut self.status_bar),
            "hint_bar" => Some(&mut self.hint_bar),
            "popup" => Some(&mut self.popup),
            "match_highlight" => Some(&mut self.match_highlight),
            "score" => Some(&mut self.score),
            _ => None,
        }
    }

    /// Restyles the slot `name` from a spec like `"bold red"`; the error is one sentence
    /// naming the slot and the word at fault.
    pub fn set(&mut self, name: &str, spec: &str) -> Result<(), String> {
        let Some(slot) = self.slot_mut(name) else {
            return Err(unknown_slot(name));
        };
        *slot = parse_style(spec)
            .map_err(|problem| format!("[theme] {} = {spec:?}: {problem}", name.escape_debug()))?;
        Ok(())
    }

    /// Applies a `[theme]` table over the defaults. Errors carry the byte offset they are about.
    pub(super) fn from_raw(raw: RawTheme) -> Result<Theme, (usize, String)> {
        let mut entries: Vec<_> = raw.into_iter().collect();
        // Report the first mistake in the file, not the first in alphabetical order.
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut theme = Theme::default();
        for (key, value) in entries {
            let name = key.get_ref();
            if theme.get(name).is_none() {
                return Err((key.span().start, unknown_slot(name)));
            }
            let Some(spec) = value.get_ref().as_str() else {
                return Err((
                    value.span().start,
                    format!(
                        "[theme] {}: expected a style in quotes, like \"bold red\"",
                        name.escape_debug()
                    ),
                ));
            };
            theme
                .set(name, spec)
                .map_err(|message| (value.span().start, message))?;
        }
        Ok(theme)
    }

    /// The same theme without any colour. Modifiers stay, and a slot whose colour carried its
    /// meaning (the selection, errors, pending changes, …) gains a modifier in its place, so
    /// everything still stands out.
    pub fn no_color(mut self) -> Theme {
        for (name, _, fallback) in SLOTS {
            if let Some(style) = self.slot_mut(name) {
                let coloured = [style.fg, style.bg]
                    .into_iter()
                    .flatten()
                    .any(|c| c != Color::Reset);
                let mut plain = Style::new()
                    .add_modifier(style.add_modifier)
                    .remove_modifier(style.sub_modifier);
                if coloured {
                    plain = plain.add_modifier(fallback);
                }
                *style = plain;
            }
        }
        self
    }

    /// The theme to draw with: this one, or its colourless version when `no_color` is set
    /// (see [`from_env_no_color`]).
    pub fn effective(&self, no_color: bool) -> Theme {
        if no_color {
            self.clone().no_color()
        } else {
            self.clone()
        }
    }
}

/// Whether the user asked for no colour: `NO_COLOR` is set and not empty (<https://no-color.org>).
/// The one place malt reads it; configuration loading stays independent of the environment.
pub fn from_env_no_color() -> bool {
    no_color_requested(std::env::var_os("NO_COLOR").as_deref())
}

fn no_color_requested(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

fn unknown_slot(name: &str) -> String {
    let known: Vec<&str> = Theme::slot_names().collect();
    format!(
        "[theme] {}: no such slot (known: {})",
        name.escape_debug(),
        known.join(", ")
    )
}

const SYNTAX_HINT: &str = "a style is colours (red, bright blue, dark gray, #ff8800, 208), \
    modifiers (bold, dim, italic, underlined, reversed) and \"X on Y\" for a background";

/// Reads a style written as words (see the module documentation): `"bold red"`,
/// `"black on cyan"`, `"#ff8800"`, `"colour 208"`, `"underlined dim"`, `"none"`.
/// The error names the word at fault.
pub fn parse_style(spec: &str) -> Result<Style, String> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    if words.is_empty() || (words.len() == 1 && words[0].eq_ignore_ascii_case("none")) {
        return Ok(Style::new());
    }
    let mut style = Style::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        if let Some(modifier) = modifier(word) {
            style = style.add_modifier(modifier);
            i += 1;
        } else if word.eq_ignore_ascii_case("on") {
            if style.bg.is_some() {
                return Err("\"on\" may only come once: there is one background colour".into());
            }
            let Some((colour, used)) = colour_at(&words[i + 1..])? else {
                return Err(match words.get(i + 1) {
                    Some(next) => format!("{next:?} after \"on\" is not a colour"),
                    None => "\"on\" must be followed by a background colour".into(),
                });
            };
            style.bg = Some(colour);
            i += 1 + used;
        } else {
            let Some((colour, used)) = colour_at(&words[i..])? else {
                return Err(format!(
                    "{word:?} is neither a colour nor a modifier ({SYNTAX_HINT})"
                ));
            };
            if style.fg.is_some() {
                let phrase = words[i..i + used].join(" ");
                return Err(format!(
                    "{phrase:?} is a second foreground colour (write \"X on Y\" for a background)"
                ));
            }
            style.fg = Some(colour);
            i += used;
        }
    }
    Ok(style)
}

fn modifier(word: &str) -> Option<Modifier> {
    Some(match word.to_ascii_lowercase().as_str() {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" | "underline" => Modifier::UNDERLINED,
        "reversed" | "reverse" => Modifier::REVERSED,
        _ => return None,
    })
}

/// The colour at the start of `words` and how many words it took; `None` if the first word
/// does not start a colour, an error if it starts one badly (`#ff88`, `300`, `colour x`).
fn colour_at(words: &[&str]) -> Result<Option<(Color, usize)>, String> {
    let Some(first) = words.first() else {
        return Ok(None);
    };
    let lower = first.to_ascii_lowercase();
    if lower == "colour" || lower == "color" {
        return match words.get(1) {
            Some(next) => match next.parse::<u8>() {
                Ok(index) => Ok(Some((Color::Indexed(index), 2))),
                Err(_) => Err(format!(
                    "{next:?} after {first:?} is not a palette index: use 0 to 255"
                )),
            },
            None => Err(format!(
                "{first:?} must be followed by a palette index from 0 to 255"
            )),
        };
    }
    if matches!(lower.as_str(), "light" | "bright" | "dark") {
        if let Some(second) = words.get(1) {
            let phrase = format!("{first} {second}");
            return match named(&format!("{lower}{}", second.to_ascii_lowercase())) {
                Some(colour) => Ok(Some((colour, 2))),
                None => Err(format!("{phrase:?} is not a colour malt knows")),
            };
        }
        return Err(format!("{first:?} must be followed by a colour name"));
    }
    if let Some(colour) = named(&lower) {
        return Ok(Some((colour, 1)));
    }
    if let Some(hex) = lower.strip_prefix('#') {
        return match parse_hex(hex) {
            Some((r, g, b)) => Ok(Some((Color::Rgb(r, g, b), 1))),
            None => Err(format!(
                "{first:?} is not a colour: write #rrggbb, six hex digits"
            )),
        };
    }
    if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) {
        return match lower.parse::<u8>() {
            Ok(index) => Ok(Some((Color::Indexed(index), 1))),
            Err(_) => Err(format!("{first:?} is not a palette index: use 0 to 255")),
        };
    }
    Ok(None)
}

/// A colour name, lowercase, with any `light`/`bright`/`dark` prefix already joined on.
fn named(name: &str) -> Option<Color> {
    let joined: String = name.chars().filter(|c| !matches!(c, '-' | '_')).collect();
    let joined = joined.replace("grey", "gray");
    let joined = match joined.strip_prefix("bright") {
        Some(rest) => format!("light{rest}"),
        None => joined,
    };
    Some(match joined.as_str() {
        "default" | "reset" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "silver" | "lightgray" => Color::Gray,
        "darkgray" | "lightblack" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" | "lightwhite" => Color::White,
        _ => return None,
    })
}

fn parse_hex(hex: &str) -> Option<(u8, u8, u8)> {
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(spec: &str) -> Style {
        parse_style(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"))
    }

    #[test]
    fn every_slot_name_is_its_own_field() {
        let red = Style::new().fg(Color::Red);
        let mut all = Theme::plain();
        for name in Theme::slot_names() {
            let mut one = Theme::plain();
            one.set(name, "red").unwrap();
            for other in Theme::slot_names() {
                let expected = if other == name { red } else { Style::new() };
                assert_eq!(one.get(other), Some(expected), "{name} / {other}");
            }
            all.set(name, "red").unwrap();
        }
        assert_eq!(all, Theme::uniform(red), "a field no slot name reaches");
        assert_eq!(Theme::plain().get("nope"), None);
    }

    #[test]
    fn named_colours() {
        assert_eq!(style("yellow"), Style::new().fg(Color::Yellow));
        assert_eq!(style("White"), Style::new().fg(Color::White));
        for spec in ["gray", "grey", "silver", "light gray", "light-grey"] {
            assert_eq!(style(spec), Style::new().fg(Color::Gray), "{spec}");
        }
        for spec in [
            "dark gray",
            "dark grey",
            "darkgray",
            "dark_gray",
            "bright black",
        ] {
            assert_eq!(style(spec), Style::new().fg(Color::DarkGray), "{spec}");
        }
        for spec in ["bright blue", "light blue", "lightblue", "Bright-Blue"] {
            assert_eq!(style(spec), Style::new().fg(Color::LightBlue), "{spec}");
        }
        assert_eq!(style("bright white"), Style::new().fg(Color::White));
        assert_eq!(style("default"), Style::new().fg(Color::Reset));
    }

    #[test]
    fn modifiers_and_colours_combine() {
        assert_eq!(
            style("bold red"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            style("black on cyan"),
            Style::new().fg(Color::Black).bg(Color::Cyan)
        );
        assert_eq!(
            style("bold  bright yellow on dark gray"),
            Style::new()
                .fg(Color::LightYellow)
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(style("on blue"), Style::new().bg(Color::Blue));
        assert_eq!(
            style("reversed"),
            Style::new().add_modifier(Modifier::REVERSED)
        );
        assert_eq!(
            style("underlined dim"),
            Style::new().add_modifier(Modifier::UNDERLINED | Modifier::DIM)
        );
        assert_eq!(style("ITALIC"), Style::new().add_modifier(Modifier::ITALIC));
        assert_eq!(
            style("underline reverse"),
            Style::new().add_modifier(Modifier::UNDERLINED | Modifier::REVERSED)
        );
        assert_eq!(style("none"), Style::new());
        assert_eq!(style("  "), Style::new());
    }

    #[test]
    fn rgb_and_indexed_colours() {
        assert_eq!(style("#ff8800"), Style::new().fg(Color::Rgb(255, 136, 0)));
        assert_eq!(style("#FF8800"), Style::new().fg(Color::Rgb(255, 136, 0)));
        assert_eq!(style("208"), Style::new().fg(Color::Indexed(208)));
        assert_eq!(style("colour 208"), Style::new().fg(Color::Indexed(208)));
        assert_eq!(style("color 0"), Style::new().fg(Color::Indexed(0)));
        assert_eq!(
            style("15 on colour 236"),
            Style::new().fg(Color::Indexed(15)).bg(Color::Indexed(236))
        );
    }

    #[test]
    fn bad_words_are_named() {
        let err = |spec: &str| parse_style(spec).unwrap_err();
        assert!(
            err("bold purple").contains("\"purple\" is neither"),
            "{}",
            err("bold purple")
        );
        assert!(err("red blue").contains("\"blue\" is a second foreground"));
        assert!(err("red on").contains("\"on\" must be followed"));
        assert!(err("red on bold").contains("\"bold\" after \"on\""));
        assert!(err("red on blue on green").contains("only come once"));
        assert!(err("#ff88").contains("\"#ff88\" is not a colour"));
        assert!(err("#gg8800").contains("\"#gg8800\""));
        assert!(err("256").contains("\"256\" is not a palette index"));
        assert!(err("colour").contains("\"colour\" must be followed"));
        assert!(err("colour x").contains("\"x\" after \"colour\" is not a palette index"));
        assert!(err("Color 300").contains("\"300\" after \"Color\""));
        assert!(err("dark purple").contains("\"dark purple\" is not a colour"));
        assert!(err("light").contains("\"light\" must be followed"));
        assert!(!err("bold\npurple\u{7}").contains('\n'));
    }

    #[test]
    fn set_names_the_slot() {
        let mut theme = Theme::default();
        let msg = theme.set("error", "bold purple").unwrap_err();
        assert!(
            msg.starts_with("[theme] error = \"bold purple\": \"purple\" is neither"),
            "{msg}"
        );
        let msg = theme.set("eror", "red").unwrap_err();
        assert!(
            msg.starts_with("[theme] eror: no such slot (known: title, tab,"),
            "{msg}"
        );
        assert!(msg.contains("match_highlight, score)"), "{msg}");
        assert_eq!(theme, Theme::default(), "a failed set changes nothing");
    }

    #[test]
    fn defaults() {
        let theme = Theme::default();
        assert_eq!(
            theme.selected,
            Style::new().add_modifier(Modifier::REVERSED)
        );
        assert_eq!(
            theme.error,
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            theme.pending,
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            theme.new_episode,
            Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
        );
        assert_eq!(theme.dim, Style::new().fg(Color::DarkGray));
        assert_eq!(theme.tab, Style::new());
        // Only the 16 ANSI colours, so the terminal's palette decides what they look like.
        for name in Theme::slot_names() {
            let s = theme.get(name).unwrap();
            for c in [s.fg, s.bg].into_iter().flatten() {
                assert!(!matches!(c, Color::Rgb(..) | Color::Indexed(_)), "{name}");
            }
        }
    }

    #[test]
    fn no_color_strips_colours_keeps_modifiers() {
        let theme = Theme::default().no_color();
        for name in Theme::slot_names() {
            let s = theme.get(name).unwrap();
            assert_eq!((s.fg, s.bg), (None, None), "{name}");
        }
        assert_eq!(
            theme.selected,
            Style::new().add_modifier(Modifier::REVERSED)
        );
        assert_eq!(theme.error, Style::new().add_modifier(Modifier::BOLD));
        assert_eq!(theme.pending, Style::new().add_modifier(Modifier::BOLD));
        assert_eq!(theme.dim, Style::new().add_modifier(Modifier::DIM));
        assert_eq!(
            theme.match_highlight,
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        );
        assert_eq!(theme.tab, Style::new());
        // Colour-only meaning gets its stand-in; modifiers the user chose stay.
        let mut custom = Theme::default();
        custom.set("selected", "italic on blue").unwrap();
        custom.set("error", "red").unwrap();
        custom.set("popup", "underlined #ff8800").unwrap();
        custom.set("score", "none").unwrap();
        let plain = custom.no_color();
        assert_eq!(
            plain.selected,
            Style::new().add_modifier(Modifier::ITALIC | Modifier::REVERSED)
        );
        assert_eq!(plain.error, Style::new().add_modifier(Modifier::BOLD));
        assert_eq!(plain.popup, Style::new().add_modifier(Modifier::UNDERLINED));
        assert_eq!(plain.score, Style::new());
    }

    #[test]
    fn effective_applies_no_color_only_when_asked() {
        let theme = Theme::default();
        assert_eq!(theme.effective(false), theme);
        assert_eq!(theme.effective(true), theme.clone().no_color());
    }

    #[test]
    fn no_color_must_be_non_empty() {
        use std::ffi::OsStr;
        assert!(!no_color_requested(None));
        assert!(!no_color_requested(Some(OsStr::new(""))));
        assert!(no_color_requested(Some(OsStr::new("1"))));
        assert!(no_color_requested(Some(OsStr::new("0"))));
    }
}
