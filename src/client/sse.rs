//! Server-sent events, read incrementally from the bytes of a response
//! (the WHATWG event-stream format: `id:`, `event:`, `data:` lines, a blank
//! line ends an event, `:` starts a comment).

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

/// Collects lines across chunks (a chunk may end mid-line, even mid-UTF-8).
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    id: Option<String>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut done = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.buf.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&raw[..raw.len() - 1]);
            let line = text.strip_suffix('\r').unwrap_or(&text);
            if let Some(e) = self.line(line) {
                done.push(e);
            }
        }
        done
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.data.is_empty() && self.event.is_none() {
                return None;
            }
            return Some(SseEvent {
                id: self.id.take(),
                event: self.event.take().unwrap_or_else(|| "message".into()),
                data: std::mem::take(&mut self.data).join("\n"),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.id = Some(value.to_owned()),
            "event" => self.event = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_split_into_chunks() {
        let stream = ":heartbeat\n\nid: 7\nevent: CallRinging\ndata: {\"a\":\"é\"}\n\r\nevent: closing\ndata: {}\n\n";
        let bytes = stream.as_bytes();
        for cut in 0..bytes.len() {
            let mut p = SseParser::default();
            let mut got = p.push(&bytes[..cut]);
            got.extend(p.push(&bytes[cut..]));
            assert_eq!(
                got,
                vec![
                    SseEvent {
                        id: Some("7".into()),
                        event: "CallRinging".into(),
                        data: "{\"a\":\"é\"}".into()
                    },
                    SseEvent {
                        id: None,
                        event: "closing".into(),
                        data: "{}".into()
                    },
                ],
                "cut at {cut}"
            );
        }
    }
}
