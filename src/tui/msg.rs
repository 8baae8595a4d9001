use crossterm::event::KeyEvent;

use crate::sync::Event;

/// Everything that can change the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    Key(KeyEvent),
    /// The terminal's new size (columns, rows).
    Resize(u16, u16),
    /// Animation step; only sent while something is animating.
    Tick,
    /// Background work reported.
    Sync(Event),
    /// The terminal went away, or the process was asked to stop.
    Shutdown,
}
