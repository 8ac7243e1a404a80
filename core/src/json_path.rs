//! The JSON path (`$.categories[2].os_permission`) of a serde_json error, found from the error's
//! line and column by one scan of the document. Replaces a path-tracking deserializer wrapper
//! (serde_path_to_error), which is generic over every type it wraps and cost about 90 KB of
//! library; this is one small function that runs only when a document fails to parse.
//! A leaf module: it imports nothing of the crate.

use serde::de::DeserializeOwned;

/// Parses `text` as a `T`. On failure, returns the JSON path of the bad value (`$` for the root)
/// and serde_json's message (which names the bad value, and its line and column).
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, (String, String)> {
    serde_json::from_str(text).map_err(|e| (path_of(text, &e), e.to_string()))
}

/// The path of the value `e` is about. A missing field is about the object that lacks it.
fn path_of(text: &str, e: &serde_json::Error) -> String {
    if e.line() == 0 {
        return "$".into();
    }
    let whole_object = e.to_string().starts_with("missing field");
    path_at(text, end_of(text, e.line(), e.column()), whole_object)
}

/// The byte offset just past what serde_json had read at (1-based) `line`, `column`: its column
/// counts the bytes of the line it had read, including a byte it only peeked at.
fn end_of(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.bytes().enumerate().filter(|&(_, b)| b == b'\n').nth(line - 2).map_or(text.len(), |(i, _)| i + 1)
    };
    (line_start + column).min(text.len())
}

/// Where the scan is inside one open container.
enum Frame {
    /// An object and the key whose value is being read (none between a `,` and the next key).
    Object(Option<String>),
    /// An array, the index of the current element, and whether that element has begun.
    Array(usize, bool),
}

/// The path of the innermost value open at `end`. serde_json's position is either just past the
/// bad value or one byte further, the one it peeked at: a final `,`, `}` or `]` is that byte and
/// is not read, so an error about the last value of an object stays on that value. With
/// `whole_object`, the path is that of the object being read (its current key dropped).
fn path_at(text: &str, end: usize, whole_object: bool) -> String {
    let bytes = text.as_bytes();
    let end = match end.checked_sub(1).map(|last| bytes[last]) {
        Some(b',' | b'}' | b']') => end - 1,
        _ => end,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'{' => {
                element_begins(&mut stack);
                stack.push(Frame::Object(None));
            }
            b'[' => {
                element_begins(&mut stack);
                stack.push(Frame::Array(0, false));
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object(key)) => *key = None,
                Some(Frame::Array(index, begun)) => {
                    *index += 1;
                    *begun = false;
                }
                None => {}
            },
            b'"' => {
                let close = string_end(bytes, i + 1);
                match stack.last_mut() {
                    Some(Frame::Object(key @ None)) => *key = Some(text[i + 1..close.min(text.len())].to_string()),
                    _ => element_begins(&mut stack),
                }
                i = close;
            }
            b' ' | b'\t' | b'\n' | b'\r' | b':' => {}
            _ => element_begins(&mut stack),
        }
        i += 1;
    }
    if whole_object {
        if let Some(Frame::Object(key)) = stack.last_mut() {
            *key = None;
        }
    }
    let mut path = String::from("$");
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                path.push('.');
                path.push_str(&crate::text::shorten(key));
            }
            Frame::Array(index, true) => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
            _ => {}
        }
    }
    path
}

/// A value starts: in an array, its current element has begun.
fn element_begins(stack: &mut [Frame]) {
    if let Some(Frame::Array(_, begun)) = stack.last_mut() {
        *begun = true;
    }
}

/// The index of the `"` closing the string whose content starts at `from` (or the text's length).
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        tags: BTreeMap<String, u8>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: u32,
        kind: Kind,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Small,
        Large,
    }

    fn path(text: &str) -> String {
        let (path, why) = from_str::<Doc>(text).unwrap_err();
        assert!(why.contains("line"), "serde_json's message with its position: {why}");
        path
    }

    #[test]
    fn names_the_bad_value_at_any_depth_and_position() {
        let cases = [
            (r#"{"name": 5}"#, "$.name"),
            (r#"{"name": "a", "items": [{"id": 1, "kind": "huge"}]}"#, "$.items[0].kind"),
            (r#"{"name": "a", "items": [{"id": 1, "kind": "small"}, {"kind": "large", "id": -1}]}"#, "$.items[1].id"),
            (r#"{"name": "a", "items": [{"id": 1, "kind": "small"}, {"id": 2, "kind": []}]}"#, "$.items[1].kind"),
            (r#"{"name": "a", "items": [{"id": 1, "kind": "small", "x": 1}]}"#, "$.items[0].x"),
            (r#"{"name": "a", "items": [{"id": 1}]}"#, "$.items[0]"),
            (r#"{"name": "a", "items": [{"id": 1, "kind": "small"}, 7]}"#, "$.items[1]"),
            (r#"{"name": "a", "tags": {"k\"q": 300}}"#, r#"$.tags.k\"q"#),
            (r#"{"items": []}"#, "$"),
            ("{not json", "$"),
            ("", "$"),
        ];
        for (text, expected) in cases {
            assert_eq!(path(text), expected, "{text}");
        }
    }

    #[test]
    fn reads_positions_on_later_lines() {
        let text = "{\n  \"name\": \"a\",\n  \"items\": [\n    {\"id\": 1, \"kind\": \"small\"},\n    {\"id\": 2, \"kind\": \"tiny\"}\n  ]\n}";
        assert_eq!(path(text), "$.items[1].kind");
        let missing = "{\n  \"name\": \"a\",\n  \"items\": [\n    {\n      \"id\": 1\n    }\n  ]\n}";
        assert_eq!(path(missing), "$.items[0]");
    }

    #[test]
    fn a_valid_document_parses() {
        let doc: Doc = from_str(r#"{"name": "a", "items": [{"id": 1, "kind": "large"}]}"#).unwrap();
        assert_eq!((doc.name.as_str(), doc.items.len()), ("a", 1));
    }
}
