//! Text helpers shared by every error message. A leaf module: it imports nothing of the crate,
//! so the vocabulary (`model`) can name bad values without depending on `error`.

/// Over-long values are named by their first 64 characters so an error line stays readable.
pub(crate) fn shorten(value: &str) -> String {
    if value.chars().count() <= 64 {
        value.to_string()
    } else {
        let head: String = value.chars().take(64).collect();
        format!("{head}… ({} bytes)", value.len())
    }
}
