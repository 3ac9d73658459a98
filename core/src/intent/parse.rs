//! The rule parser for intent commands (grammar: see the README's "Intent commands").
