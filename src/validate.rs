//! Checks on input fields, with errors that name the field and say what is
//! wrong ([`FieldError`]), which services answer as INVALID_ARGUMENT.

/// A field of a request that is wrong: the message names the field and
/// says what is wrong with it, as `items[0].quantity must be between 1 and
/// 99, got 0`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

/// Whether `c` changes how text around it is shown without being seen
/// itself: the bidirectional controls (which can make `a\u{202e}b` read
/// as something else) and the invisible spaces and joiners but the
/// zero-width joiner and non-joiner (which scripts and emoji need).
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
}

/// A required, single-line text field: at most `max_chars` characters, no
/// control characters, no hidden ones ([`is_hidden`]), not blank. Returns
/// it trimmed. (The rules apply to the text as sent, so a schema can state
/// them exactly: the REST API's OpenAPI document does.)
pub fn required(field: &str, value: &str, max_chars: usize) -> Result<String, FieldError> {
    within(field, value, max_chars)?;
    if value.chars().any(char::is_control) {
        return Err(FieldError(format!(
            "{field} must be a single line without control characters"
        )));
    }
    hidden(field, value)?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldError(format!("{field} is required")));
    }
    Ok(trimmed.to_owned())
}

/// An optional text field that may span lines: at most `max_chars`
/// characters, no control characters but newlines and tabs, no hidden ones
/// ([`is_hidden`]). Returned trimmed; empty (or all blank) is `None`.
pub fn optional(field: &str, value: &str, max_chars: usize) -> Result<Option<String>, FieldError> {
    within(field, value, max_chars)?;
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(FieldError(format!("{field} must not contain control characters")));
    }
    hidden(field, value)?;
    let trimmed = value.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

fn hidden(field: &str, value: &str) -> Result<(), FieldError> {
    match value.chars().find(|c| is_hidden(*c)) {
        Some(c) => Err(FieldError(format!(
            "{field} must not contain bidirectional controls or invisible characters (found U+{:04X})",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

fn within(field: &str, value: &str, max_chars: usize) -> Result<(), FieldError> {
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(FieldError(format!(
            "{field} must be at most {max_chars} characters, got {chars}"
        )));
    }
    Ok(())
}

/// The most lines one order (and so one price request) may have.
pub const MAX_ORDER_LINES: usize = 50;
/// The most of one menu item an order line may ask for.
pub const MAX_QUANTITY: i32 = 99;

/// Checks the lines of an order or price request, given as (menu item id,
/// quantity) in the request's order: 1 to [`MAX_ORDER_LINES`] lines, each a
/// well-formed menu item id listed once, with a quantity of 1 to
/// [`MAX_QUANTITY`]. Errors name the line, as `items[2].quantity`.
pub fn order_lines<'a>(lines: impl ExactSizeIterator<Item = (&'a str, i32)>) -> Result<(), FieldError> {
    let count = lines.len();
    if count == 0 {
        return Err(FieldError("items must list at least one menu item".into()));
    }
    if count > MAX_ORDER_LINES {
        return Err(FieldError(format!(
            "items may list at most {MAX_ORDER_LINES} menu items, got {count}"
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(count);
    for (index, (menu_item_id, quantity)) in lines.enumerate() {
        crate::ids::MENU_ITEM.check(&format!("items[{index}].menu_item_id"), menu_item_id)?;
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(FieldError(format!(
                "items[{index}].quantity must be between 1 and {MAX_QUANTITY}, got {quantity}"
            )));
        }
        if !seen.insert(menu_item_id) {
            return Err(FieldError(format!(
                "items[{index}]: menu item {menu_item_id} is listed twice; list it once with the total quantity"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_text() {
        assert_eq!(required("name", "  Pho 88 ", 10), Ok("Pho 88".to_owned()));
        assert_eq!(
            required("name", "   ", 10),
            Err(FieldError("name is required".to_owned()))
        );
        assert!(
            required("name", "a\nb", 10)
                .unwrap_err()
                .0
                .contains("single line")
        );
        assert_eq!(
            required("name", "ééééééééééé", 10),
            Err(FieldError(
                "name must be at most 10 characters, got 11".to_owned()
            ))
        );
    }

    #[test]
    fn hidden_characters_are_refused_and_joiners_kept() {
        let refused = required("name", "a\u{202e}b", 10).unwrap_err().0;
        assert!(refused.contains("U+202E"), "{refused}");
        assert!(optional("note", "hi\u{200b}", 10).is_err());
        assert!(optional("note", "\u{feff}x", 10).is_err());
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        assert_eq!(optional("note", family, 10), Ok(Some(family.to_owned())));
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

    #[test]
    fn order_lines_rules() {
        let item = crate::ids::MENU_ITEM.generate();
        let lines = |quantities: &[i32]| -> Vec<(&str, i32)> {
            quantities.iter().map(|&q| (item.as_str(), q)).collect()
        };
        assert_eq!(order_lines(lines(&[3]).into_iter()), Ok(()));
        assert!(
            order_lines(lines(&[]).into_iter())
                .unwrap_err()
                .0
                .contains("at least one")
        );
        assert!(
            order_lines(lines(&[0]).into_iter())
                .unwrap_err()
                .0
                .contains("items[0].quantity")
        );
        assert!(
            order_lines(lines(&[1, 1]).into_iter())
                .unwrap_err()
                .0
                .contains("items[1]: menu item")
        );
        assert!(
            order_lines([("x", 1)].into_iter())
                .unwrap_err()
                .0
                .contains("items[0].menu_item_id")
        );
        let many: Vec<String> = (0..51).map(|_| crate::ids::MENU_ITEM.generate()).collect();
        let many = many.iter().map(|id| (id.as_str(), 1));
        assert!(order_lines(many).unwrap_err().0.contains("at most 50"));
    }
}
