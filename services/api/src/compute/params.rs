//! Nova-style parsing of request bodies.
//!
//! Nova validates bodies with JSON schemas that are lenient in one way
//! (numbers may come as numeric strings: `"ram": "512"`, booleans as
//! `"True"`) and strict in another (unknown keys are refused). Clients rely
//! on both, so the bodies that have such fields are parsed from a
//! `serde_json::Value` with these helpers; every error is a 400 whose
//! message names the field by its path (`flavor.ram`).

use crate::error::ApiError;
use serde_json::{Map, Value};

/// The largest integer Nova's database columns take (`db.MAX_INT`).
pub const MAX_INT: i64 = 0x7FFF_FFFF;

/// A 400 about `field`.
pub fn invalid(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Invalid input for field '{field}': {problem}"))
}

/// `value` as a JSON object, or a 400 naming `field`.
pub fn object<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| invalid(field, format!("{value} is not of type 'object'.")))
}

/// The object under `key` of the top-level body (`{"flavor": {...}}`);
/// the body may hold nothing else.
pub fn wrapped<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>, ApiError> {
    let top = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("Invalid request body: it must be a JSON object."))?;
    only_known(top, &[key], "")?;
    let inner = top
        .get(key)
        .ok_or_else(|| invalid(key, format!("'{key}' is a required property.")))?;
    object(inner, key)
}

/// Refuses keys not in `allowed` (Nova's `additionalProperties: false`).
/// `prefix` is the path of `obj` for the message (empty at the top).
pub fn only_known(
    obj: &Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
) -> Result<(), ApiError> {
    if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        let msg = format!("Additional properties are not allowed ('{extra}' was unexpected).");
        return Err(if prefix.is_empty() {
            ApiError::bad_request(format!("Invalid request body: {msg}"))
        } else {
            invalid(prefix, msg)
        });
    }
    Ok(())
}

/// An integer given as a JSON integer or a string of digits (with an
/// optional leading `-` when `min` is negative), within `min..=max`.
pub fn integer(value: &Value, field: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    let n = match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| invalid(field, format!("{n} is not an integer in range.")))?,
        Value::String(s) => {
            let digits = s.strip_prefix('-').filter(|_| min < 0).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(field, format!("'{s}' is not an integer.")));
            }
            s.parse::<i64>()
                .map_err(|_| invalid(field, format!("'{s}' is out of range.")))?
        }
        other => {
            return Err(invalid(
                field,
                format!("{other} is not of type 'integer', 'string'."),
            ));
        }
    };
    if n < min {
        return Err(invalid(
            field,
            format!("{n} is less than the minimum of {min}."),
        ));
    }
    if n > max {
        return Err(invalid(
            field,
            format!("{n} is greater than the maximum of {max}."),
        ));
    }
    Ok(n)
}

/// A positive number given as a JSON number or a decimal string
/// (`rxtx_factor`).
pub fn positive_number(value: &Value, field: &str, max: f64) -> Result<f64, ApiError> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let ok = match s.split_once('.') {
                Some((i, f)) => {
                    !i.is_empty()
                        && !f.is_empty()
                        && i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit())
                }
                None => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
            };
            if ok { s.parse::<f64>().ok() } else { None }
        }
        _ => None,
    }
    .ok_or_else(|| invalid(field, format!("{value} is not a number.")))?;
    if !(n > 0.0 && n <= max) {
        return Err(invalid(
            field,
            format!("{n} must be greater than 0 and at most {max}."),
        ));
    }
    Ok(n)
}

/// A boolean as Nova's `parameter_types.boolean` takes it: JSON `true` /
/// `false` or one of the usual spellings as a string.
pub fn boolean(value: &Value, field: &str) -> Result<bool, ApiError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" => Ok(true),
            "false" | "0" | "off" | "no" => Ok(false),
            _ => Err(invalid(field, format!("'{s}' is not a boolean."))),
        },
        other => Err(invalid(field, format!("{other} is not a boolean."))),
    }
}

/// A string field, or a 400 naming it.
pub fn string<'a>(value: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    value
        .as_str()
        .ok_or_else(|| invalid(field, format!("{value} is not of type 'string'.")))
}

/// Checks a Nova resource name (`parameter_types.name`): 1-255
/// printable characters, not blank, no leading or trailing whitespace.
pub fn name(value: &str, field: &str) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len == 0 || len > 255 {
        return Err(invalid(field, "must be 1 to 255 characters long."));
    }
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be blank."));
    }
    if value.trim() != value {
        return Err(invalid(
            field,
            "must not have leading or trailing whitespace.",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_may_be_numeric_strings() {
        assert_eq!(integer(&json!(512), "f.ram", 1, MAX_INT).unwrap(), 512);
        assert_eq!(integer(&json!("512"), "f.ram", 1, MAX_INT).unwrap(), 512);
        assert_eq!(integer(&json!("-1"), "q.cores", -1, MAX_INT).unwrap(), -1);
        for bad in [
            json!("-1"),
            json!(0),
            json!(""),
            json!("1e3"),
            json!(1.5),
            json!(null),
        ] {
            let e = integer(&bad, "f.ram", 1, MAX_INT).unwrap_err();
            assert!(e.0.message.contains("'f.ram'"), "{}", e.0.message);
        }
        assert!(integer(&json!(MAX_INT + 1), "f.ram", 1, MAX_INT).is_err());
        assert!(integer(&json!(-2), "q.cores", -1, MAX_INT).is_err());
    }

    #[test]
    fn numbers_booleans_and_names() {
        assert_eq!(positive_number(&json!("1.5"), "r", 10.0).unwrap(), 1.5);
        assert!(positive_number(&json!(0), "r", 10.0).is_err());
        assert!(positive_number(&json!("1."), "r", 10.0).is_err());
        assert!(boolean(&json!("True"), "b").unwrap());
        assert!(!boolean(&json!(false), "b").unwrap());
        assert!(boolean(&json!(1), "b").is_err());
        assert!(name("m1.tiny", "n").is_ok());
        for bad in ["", "   ", " a", "a ", "a\tb"] {
            assert!(name(bad, "n").is_err(), "{bad:?}");
        }
        assert!(name(&"x".repeat(256), "n").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let body = json!({"flavor": {"name": "a"}, "extra": 1});
        let e = wrapped(&body, "flavor").unwrap_err();
        assert!(e.0.message.contains("'extra' was unexpected"));
        assert!(wrapped(&json!({}), "flavor").is_err());
        assert!(wrapped(&json!({"flavor": 1}), "flavor").is_err());
    }
}
