//! Which key does what. Defaults as in the design; any action can be rebound in `[keys]`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something the user can ask for with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Down,
    Up,
    Top,
    Bottom,
    PageDown,
    PageUp,
    NextTab,
    PrevTab,
    SwitchKind,
    SwitchService,
    Increment,
    Decrement,
    SetCount,
    Score,
    SetStatus,
    Repeat,
    Delete,
    Details,
    Add,
    Filter,
    Sort,
    Refresh,
    Retry,
    Discard,
    Help,
    Quit,
}

impl Action {
    pub const ALL: [Action; 26] = [
        Action::Down,
        Action::Up,
        Action::Top,
        Action::Bottom,
        Action::PageDown,
        Action::PageUp,
        Action::NextTab,
        Action::PrevTab,
        Action::SwitchKind,
        Action::SwitchService,
        Action::Increment,
        Action::Decrement,
        Action::SetCount,
        Action::Score,
        Action::SetStatus,
        Action::Repeat,
        Action::Delete,
        Action::Details,
        Action::Add,
        Action::Filter,
        Action::Sort,
        Action::Refresh,
        Action::Retry,
        Action::Discard,
        Action::Help,
        Action::Quit,
    ];

    /// The name used in `[keys]`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Down => "down",
            Action::Up => "up",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::PageDown => "page_down",
            Action::PageUp => "page_up",
            Action::NextTab => "next_tab",
            Action::PrevTab => "prev_tab",
            Action::SwitchKind => "switch_kind",
            Action::SwitchService => "switch_service",
            Action::Increment => "increment",
            Action::Decrement => "decrement",
            Action::SetCount => "set_count",
            Action::Score => "score",
            Action::SetStatus => "set_status",
            Action::Repeat => "repeat",
            Action::Delete => "delete",
            Action::Details => "details",
            Action::Add => "add",
            Action::Filter => "filter",
            Action::Sort => "sort",
            Action::Refresh => "refresh",
            Action::Retry => "retry",
            Action::Discard => "discard",
            Action::Help => "help",
            Action::Quit => "quit",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Action::Down => "move down",
            Action::Up => "move up",
            Action::Top => "go to the top",
            Action::Bottom => "go to the bottom",
            Action::PageDown => "one page down",
            Action::PageUp => "one page up",
            Action::NextTab => "next status tab",
            Action::PrevTab => "previous status tab",
            Action::SwitchKind => "anime list / manga list",
            Action::SwitchService => "next service's list",
            Action::Increment => "one more episode/chapter",
            Action::Decrement => "one less episode/chapter",
            Action::SetCount => "type the count",
            Action::Score => "set the score",
            Action::SetStatus => "change the status",
            Action::Repeat => "re-watching on/off",
            Action::Delete => "remove from the list",
            Action::Details => "details of the entry",
            Action::Add => "search and add a title",
            Action::Filter => "filter by title",
            Action::Sort => "change the sort order",
            Action::Refresh => "sync the list now",
            Action::Retry => "retry / keep your change",
            Action::Discard => "drop / keep theirs",
            Action::Help => "show or hide this help",
            Action::Quit => "quit",
        }
    }

    fn defaults(self) -> &'static [&'static str] {
        match self {
            Action::Down => &["j", "down"],
            Action::Up => &["k", "up"],
            Action::Top => &["g", "home"],
            Action::Bottom => &["G", "end"],
            Action::PageDown => &["pagedown", "ctrl-d"],
            Action::PageUp => &["pageup", "ctrl-u"],
            Action::NextTab => &["tab", "right", "l"],
            Action::PrevTab => &["shift-tab", "left", "h"],
            Action::SwitchKind => &["m"],
            Action::SwitchService => &["v"],
            Action::Increment => &["+"],
            Action::Decrement => &["-"],
            Action::SetCount => &["e"],
            Action::Score => &["s"],
            Action::SetStatus => &["S"],
            Action::Repeat => &["w"],
            Action::Delete => &["d"],
            Action::Details => &["enter"],
            Action::Add => &["a"],
            Action::Filter => &["/"],
            Action::Sort => &["o"],
            Action::Refresh => &["r"],
            Action::Retry => &["R"],
            Action::Discard => &["x"],
            Action::Help => &["?"],
            Action::Quit => &["q", "ctrl-c"],
        }
    }
}

/// A key as written in the config: `j`, `G`, `+`, `down`, `ctrl-c`, `shift-tab`, …
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    code: KeyCode,
    ctrl: bool,
    alt: bool,
}

impl Key {
    pub fn parse(spec: &str) -> Option<Key> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = spec;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.chars().count() > 1 && lower.starts_with("ctrl-") {
                ctrl = true;
                rest = &rest[5..];
            } else if rest.chars().count() > 1 && lower.starts_with("alt-") {
                alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => match rest.to_ascii_lowercase().as_str() {
                "down" => KeyCode::Down,
                "up" => KeyCode::Up,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pageup" | "pgup" => KeyCode::PageUp,
                "pagedown" | "pgdn" => KeyCode::PageDown,
                "enter" => KeyCode::Enter,
                "esc" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "shift-tab" | "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" => KeyCode::Delete,
                _ => return None,
            },
        };
        Some(Key { code, ctrl, alt })
    }

    fn matches(&self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let alt = ev.modifiers.contains(KeyModifiers::ALT);
        // Shift is already part of the character (`G`, `+`, `?`), so it is not compared.
        ev.code == self.code && ctrl == self.ctrl && alt == self.alt
    }

    /// How the key is shown in the help.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Down => "↓".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Backspace => "Backspace".into(),
            KeyCode::Delete => "Delete".into(),
            other => format!("{other:?}"),
        };
        let mut label = String::new();
        if self.ctrl {
            label.push_str("Ctrl-");
        }
        if self.alt {
            label.push_str("Alt-");
        }
        label + &base
    }
}

/// Every binding in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMap {
    bindings: Vec<(Action, Vec<Key>)>,
}

impl Default for KeyMap {
    fn default() -> Self {
        let bindings = Action::ALL
            .into_iter()
            .map(|a| {
                let keys = a.defaults().iter().filter_map(|s| Key::parse(s)).collect();
                (a, keys)
            })
            .collect();
        KeyMap { bindings }
    }
}

impl KeyMap {
    /// Applies a `[keys]` table (`action = "key"` or `action = ["key", "key"]`) over the defaults.
    pub fn from_table(table: &toml::Table) -> Result<KeyMap, String> {
        let mut map = KeyMap::default();
        for (name, value) in table {
            let Some(action) = Action::ALL.into_iter().find(|a| a.name() == name) else {
                let known: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                return Err(format!(
                    "[keys] {}: no such action (known: {})",
                    name.escape_debug(),
                    known.join(", ")
                ));
            };
            let specs: Vec<&str> = match value {
                toml::Value::String(s) => vec![s.as_str()],
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| {
                        v.as_str().ok_or_else(|| {
                            format!("[keys] {}: every key must be a string", name.escape_debug())
                        })
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(format!(
                        "[keys] {}: expected a key like \"j\" or a list of keys",
                        name.escape_debug()
                    ));
                }
            };
            let keys = specs
                .iter()
                .map(|s| {
                    Key::parse(s).ok_or_else(|| {
                        format!(
                            "[keys] {}: {s:?} is not a key malt knows",
                            name.escape_debug()
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(slot) = map.bindings.iter_mut().find(|(a, _)| *a == action) {
                slot.1 = keys;
            }
        }
        // A key bound in the table belongs to its action alone: it leaves the defaults of others.
        let chosen: Vec<(Action, Vec<Key>)> = map
            .bindings
            .iter()
            .filter(|(a, _)| table.contains_key(a.name()))
            .cloned()
            .collect();
        for (action, keys) in &mut map.bindings {
            if !table.contains_key(action.name()) {
                keys.retain(|k| !chosen.iter().any(|(_, taken)| taken.contains(k)));
            }
        }
        Ok(map)
    }

    /// The action bound to a key press, if any.
    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k.matches(ev)))
            .map(|(a, _)| *a)
    }

    /// Keys bound to an action, for the help and the hint line.
    pub fn keys_for(&self, action: Action) -> &[Key] {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map_or(&[], |(_, keys)| keys.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn defaults_follow_the_design() {
        let map = KeyMap::default();
        assert_eq!(
            map.action(&press(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            map.action(&press(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(
            map.action(&press(KeyCode::Char('+'), KeyModifiers::SHIFT)),
            Some(Action::Increment)
        );
        assert_eq!(
            map.action(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            map.action(&press(KeyCode::Char('c'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn keys_table_rebinds() {
        let table: toml::Table =
            toml::from_str("increment = [\"l\", \"right\"]\nquit = \"ctrl-q\"").unwrap();
        let map = KeyMap::from_table(&table).unwrap();
        assert_eq!(
            map.action(&press(KeyCode::Right, KeyModifiers::NONE)),
            Some(Action::Increment)
        );
        assert_eq!(
            map.action(&press(KeyCode::Char('+'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            map.action(&press(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
    }

    #[test]
    fn bad_keys_table_is_explained() {
        let table: toml::Table = toml::from_str("jump = \"x\"").unwrap();
        assert!(
            KeyMap::from_table(&table)
                .unwrap_err()
                .contains("no such action")
        );
        let table: toml::Table = toml::from_str("up = \"hyper-x\"").unwrap();
        assert!(
            KeyMap::from_table(&table)
                .unwrap_err()
                .contains("not a key")
        );
    }
}
