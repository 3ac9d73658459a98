//! Optional parsing of intent commands by an OpenAI-compatible chat-completions model.
