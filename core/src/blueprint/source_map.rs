//! Where each field of a YAML document sits, so errors found after deserializing (a port out
//! of range, an unknown dependency) can still name a line and column.
//!
//! Paths are written as in error messages: `ports[0].port`, `environment.FOO`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub line: u32,
    pub column: u32,
}

/// Positions of the keys and values of one YAML document, by path.
#[derive(Debug, Default)]
pub(crate) struct SourceMap {
    keys: HashMap<String, Position>,
    values: HashMap<String, Position>,
}

impl SourceMap {
    /// Maps the first document of `yaml`. A syntax error stops the walk; what was seen before
    /// it is kept (the YAML deserializer reports the error itself).
    pub fn build(yaml: &str) -> SourceMap {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(yaml);
        // Errors are reported by the deserializer, with better messages.
        let _ = parser.load(&mut walker, false);
        walker.map
    }

    /// Where the value at `path` starts, else where its key is.
    pub fn value(&self, path: &str) -> Option<Position> {
        self.values
            .get(path)
            .or_else(|| self.keys.get(path))
            .copied()
    }

    /// Where the key at `path` is, else where its value starts.
    pub fn key(&self, path: &str) -> Option<Position> {
        self.keys
            .get(path)
            .or_else(|| self.values.get(path))
            .copied()
    }
}

/// Appends a mapping key to a path.
pub(crate) fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a sequence index to a path.
pub(crate) fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

enum Frame {
    Map {
        path: String,
        awaiting_key: bool,
        key: String,
    },
    Seq {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct Walker {
    map: SourceMap,
    stack: Vec<Frame>,
}

impl Walker {
    /// Records a node starting at `position` and returns its path.
    fn enter(&mut self, position: Position, scalar: Option<&str>) -> String {
        match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Map {
                path,
                awaiting_key: true,
                key,
            }) => {
                *key = scalar.unwrap_or("?").to_owned();
                let key_path = join_key(path, key);
                self.map.keys.entry(key_path.clone()).or_insert(position);
                key_path
            }
            Some(Frame::Map { path, key, .. }) => {
                let value_path = join_key(path, key);
                self.map
                    .values
                    .entry(value_path.clone())
                    .or_insert(position);
                value_path
            }
            Some(Frame::Seq { path, index }) => {
                let item_path = join_index(path, *index);
                self.map.values.entry(item_path.clone()).or_insert(position);
                item_path
            }
        }
    }

    /// A node has ended: the parent moves on to its next key, value or item.
    fn leave(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { awaiting_key, .. }) => *awaiting_key = !*awaiting_key,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let position = Position {
            line: u32::try_from(mark.line()).unwrap_or(u32::MAX),
            // yaml-rust2 counts columns from 0.
            column: u32::try_from(mark.col() + 1).unwrap_or(u32::MAX),
        };
        match event {
            Event::Scalar(value, ..) => {
                self.enter(position, Some(&value));
                self.leave();
            }
            Event::Alias(_) => {
                self.enter(position, None);
                self.leave();
            }
            Event::MappingStart(..) => {
                let path = self.enter(position, None);
                self.stack.push(Frame::Map {
                    path,
                    awaiting_key: true,
                    key: String::new(),
                });
            }
            Event::SequenceStart(..) => {
                let path = self.enter(position, None);
                self.stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.leave();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: demo\nports:\n  - name: http\n    port: 70000\nenvironment:\n  A: x\ndefaults: { image: nginx, port: 80 }\n";

    #[test]
    fn finds_values_and_keys_by_path() {
        let map = SourceMap::build(DOC);
        assert_eq!(map.value("name"), Some(Position { line: 1, column: 7 }));
        assert_eq!(
            map.value("ports[0].port"),
            Some(Position {
                line: 4,
                column: 11
            })
        );
        assert_eq!(
            map.key("ports[0].port"),
            Some(Position { line: 4, column: 5 })
        );
        assert_eq!(
            map.key("environment.A"),
            Some(Position { line: 6, column: 3 })
        );
        assert_eq!(
            map.value("defaults.port"),
            Some(Position {
                line: 7,
                column: 33
            })
        );
        assert_eq!(map.value("nothing"), None);
    }
}
