//! Typed access to `AnyRow` columns.
//!
//! The `Any` driver knows only integers, floats, text and blobs, so the
//! richer types are converted here, in one place: ids from text, booleans
//! from integers, timestamps from microseconds, JSON from text.

use cloud_model::{Error, Timestamp};
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Column accessors that turn decoding failures into internal errors
/// naming the column.
pub(crate) trait RowExt {
    /// A non-null text column.
    fn text(&self, col: &str) -> Result<String, Error>;
    /// A nullable text column.
    fn opt_text(&self, col: &str) -> Result<Option<String>, Error>;
    /// A non-null integer column.
    fn int(&self, col: &str) -> Result<i64, Error>;
    /// A nullable integer column.
    fn opt_int(&self, col: &str) -> Result<Option<i64>, Error>;
    /// A float column.
    fn float(&self, col: &str) -> Result<f64, Error>;
    /// A boolean stored as 0/1.
    fn flag(&self, col: &str) -> Result<bool, Error>;
    /// A timestamp stored as microseconds.
    fn ts(&self, col: &str) -> Result<Timestamp, Error>;
    /// A nullable timestamp.
    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>, Error>;
    /// A JSON document stored as text.
    fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T, Error>;
    /// A text column parsed with `parse`.
    fn parsed<T>(&self, col: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, Error>;
}

fn decode_error(col: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("cannot decode column {col}: {e}"))
}

impl RowExt for AnyRow {
    fn text(&self, col: &str) -> Result<String, Error> {
        self.try_get::<String, _>(col)
            .map_err(|e| decode_error(col, e))
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>, Error> {
        self.try_get::<Option<String>, _>(col)
            .map_err(|e| decode_error(col, e))
    }

    fn int(&self, col: &str) -> Result<i64, Error> {
        self.try_get::<i64, _>(col)
            .map_err(|e| decode_error(col, e))
    }

    fn opt_int(&self, col: &str) -> Result<Option<i64>, Error> {
        self.try_get::<Option<i64>, _>(col)
            .map_err(|e| decode_error(col, e))
    }

    fn float(&self, col: &str) -> Result<f64, Error> {
        self.try_get::<f64, _>(col)
            .map_err(|e| decode_error(col, e))
    }

    fn flag(&self, col: &str) -> Result<bool, Error> {
        self.int(col).map(|v| v != 0)
    }

    fn ts(&self, col: &str) -> Result<Timestamp, Error> {
        self.int(col).map(Timestamp::from_micros)
    }

    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>, Error> {
        Ok(self.opt_int(col)?.map(Timestamp::from_micros))
    }

    fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T, Error> {
        let s = self.text(col)?;
        serde_json::from_str(&s).map_err(|e| decode_error(col, e))
    }

    fn parsed<T>(&self, col: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, Error> {
        let s = self.text(col)?;
        parse(&s).ok_or_else(|| decode_error(col, format!("unexpected value '{s}'")))
    }
}
