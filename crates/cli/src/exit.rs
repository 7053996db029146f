//! Errors as the user sees them, and the exit codes scripts rely on.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success (for `plan`: also when there are changes) |
//! | 1 | failure: the server failed (5xx), could not be reached, or anything else |
//! | 2 | usage: bad arguments, unreadable or invalid files |
//! | 3 | authentication or permission refused (401, 403) |
//! | 4 | not found, or a name matching several resources |
//! | 5 | conflict (409): wrong state, reused idempotency key, quota on networks |
//! | 6 | a waited-for resource ended in ERROR |
//! | 7 | a wait timed out |
//! | 8 | `apply`/`destroy` not confirmed |
//! | 130 | interrupted (Ctrl-C) |

use cloud_client::Error as ClientError;

/// Success.
pub const OK: u8 = 0;
/// Generic failure.
pub const FAILURE: u8 = 1;
/// Bad usage or input file.
pub const USAGE: u8 = 2;
/// 401/403.
pub const AUTH: u8 = 3;
/// Not found or ambiguous.
pub const NOT_FOUND: u8 = 4;
/// 409.
pub const CONFLICT: u8 = 5;
/// Ended in ERROR.
pub const RESOURCE_ERROR: u8 = 6;
/// Wait timed out.
pub const TIMEOUT: u8 = 7;
/// Not confirmed.
pub const CANCELLED: u8 = 8;
/// Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub code: u8,
    /// What to print (after `error: `).
    pub message: String,
}

impl CliError {
    /// An error with `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }

    /// A generic failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(FAILURE, message)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Api(a) => match a.status {
                401 | 403 => AUTH,
                404 => NOT_FOUND,
                409 => CONFLICT,
                400..=499 => USAGE,
                _ => FAILURE,
            },
            ClientError::NotFound { .. } | ClientError::Ambiguous { .. } => NOT_FOUND,
            ClientError::Io { .. } | ClientError::Invalid(_) => USAGE,
            _ => FAILURE,
        };
        CliError::new(code, e.to_string())
    }
}

/// The result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_codes() {
        let api = |status| {
            CliError::from(ClientError::Api(cloud_client::ApiError {
                status,
                message: "m".into(),
                request_id: None,
                method: "GET".into(),
                url: "u".into(),
            }))
            .code
        };
        assert_eq!(api(401), AUTH);
        assert_eq!(api(404), NOT_FOUND);
        assert_eq!(api(409), CONFLICT);
        assert_eq!(api(400), USAGE);
        assert_eq!(api(503), FAILURE);
    }
}
