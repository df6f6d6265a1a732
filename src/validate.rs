//! Checks on text fields, with errors that name the field and say what is
//! wrong, for INVALID_ARGUMENT answers.

/// A required, single-line text field: trimmed, 1 to `max_chars` characters,
/// no control characters. Returns the trimmed text.
pub fn required(field: &str, value: &str, max_chars: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("{field} is required"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(format!(
            "{field} must be a single line without control characters"
        ));
    }
    within(field, trimmed, max_chars)?;
    Ok(trimmed.to_owned())
}

/// An optional text field that may span lines: trimmed, at most `max_chars`
/// characters, no control characters but newlines and tabs. Empty (or all
/// blank) is `None`.
pub fn optional(field: &str, value: &str, max_chars: usize) -> Result<Option<String>, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(format!("{field} must not contain control characters"));
    }
    within(field, trimmed, max_chars)?;
    Ok(Some(trimmed.to_owned()))
}

fn within(field: &str, value: &str, max_chars: usize) -> Result<(), String> {
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(format!(
            "{field} must be at most {max_chars} characters, got {chars}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_text() {
        assert_eq!(required("name", "  Pho 88 ", 10), Ok("Pho 88".to_owned()));
        assert_eq!(required("name", "   ", 10), Err("name is required".to_owned()));
        assert!(required("name", "a\nb", 10).unwrap_err().contains("single line"));
        assert_eq!(
            required("name", "ééééééééééé", 10),
            Err("name must be at most 10 characters, got 11".to_owned())
        );
    }

    #[test]
    fn optional_text() {
        assert_eq!(optional("note", " ", 10), Ok(None));
        assert_eq!(
            optional("note", "ring\ntwice", 20),
            Ok(Some("ring\ntwice".to_owned()))
        );
        assert!(optional("note", "bell\u{7}", 20).is_err());
        assert!(optional("note", "far too long", 5).is_err());
    }
}
