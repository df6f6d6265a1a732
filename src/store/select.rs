//! Queries whose WHERE clause holds only the conditions a request sets.
//!
//! A filter written once as `($1 IS NULL OR col = $1)` is one statement for
//! every request, and no index can serve it: the planner scans the table
//! (SQLite: `SCAN orders`, 0.2-0.5 s at 100k orders). Built here, each
//! combination of conditions present is a statement of its own (a handful
//! per query, each prepared once and cached by sqlx), in which `col = $1`
//! meets the index on `col`.

use sqlx::{Any, Arguments, Encode, Type, any::AnyArguments};

/// A `SELECT` being built: its SQL, numbered placeholders and their values.
#[allow(missing_debug_implementations)] // sqlx's arguments have no Debug
pub struct Select<'q> {
    sql: String,
    arguments: AnyArguments<'q>,
    bound: usize,
    conditions: usize,
}

impl<'q> Select<'q> {
    /// Starts from `select`, the statement up to where its WHERE clause
    /// would be (`SELECT … FROM …`).
    pub fn new(select: impl Into<String>) -> Self {
        Self {
            sql: select.into(),
            arguments: AnyArguments::default(),
            bound: 0,
            conditions: 0,
        }
    }

    /// Adds `condition` when `value` is some, its `$` bound to the value:
    /// `and("customer = $", filter.customer.as_deref())`.
    pub fn and<T>(mut self, condition: &str, value: Option<T>) -> Self
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        if let Some(value) = value {
            self.sql
                .push_str(if self.conditions == 0 { " WHERE " } else { " AND " });
            self.conditions += 1;
            self.push_bound(condition, value);
        }
        self
    }

    /// Appends `clause` (`ORDER BY id LIMIT $`), its `$` bound to `value`.
    pub fn then<T>(mut self, clause: &str, value: T) -> Self
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        self.sql.push(' ');
        self.push_bound(clause, value);
        self
    }

    /// The SQL, and the values of its placeholders in order.
    pub fn build(self) -> (String, AnyArguments<'q>) {
        (self.sql, self.arguments)
    }

    fn push_bound<T>(&mut self, text: &str, value: T)
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        let (before, after) = text
            .split_once('$')
            .expect("a condition or clause holds one `$` placeholder");
        self.bound += 1;
        self.sql.push_str(before);
        self.sql.push('$');
        self.sql.push_str(&self.bound.to_string());
        self.sql.push_str(after);
        self.arguments
            .add(value)
            .expect("strings and integers always encode");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_conditions_present_are_in_the_statement() {
        let (sql, arguments) = Select::new("SELECT id FROM orders")
            .and("status = $", None::<&str>)
            .and("customer = $", Some("ana"))
            .and("id < $", Some("ord_2"))
            .then("ORDER BY id DESC LIMIT $", 21_i64)
            .build();
        assert_eq!(
            sql,
            "SELECT id FROM orders WHERE customer = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        );
        assert_eq!(arguments.len(), 3);

        let (sql, _) = Select::new("SELECT id FROM orders")
            .and("customer = $", None::<&str>)
            .then("ORDER BY id LIMIT $", 1_i64)
            .build();
        assert_eq!(sql, "SELECT id FROM orders ORDER BY id LIMIT $1");
    }
}
