//! OS permissions across the boundary: an open, validated id (a string on the foreign side) and
//! the platform's state names, parsed by the core's one parser.

use consentkit_core::{OsPermission, OsState};

use crate::error::ConsentKitError;
use crate::guard::ffi_export;

// An OS permission id: a string on the foreign side, validated when it crosses (snake_case,
// bounded); a bad id is `ConsentKitError.InvalidInput` naming it, never a panic.
uniffi::custom_type!(OsPermission, String, {
    remote,
    lower: |permission| permission.as_str().to_string(),
    try_lift: |id| OsPermission::parse(&id).map_err(|why| uniffi::deps::anyhow::Error::new(ConsentKitError::InvalidInput(why))),
});

#[uniffi::remote(Enum)]
pub enum OsState {
    Granted,
    Limited,
    Provisional,
    Denied,
    NotDetermined,
    Restricted,
}

ffi_export! {
    /// The OS state with this snake_case name (`granted`, `limited`, `provisional`, `denied`,
    /// `not_determined`, `restricted`), as stores, exports and conformance files spell it; any
    /// other name is `InvalidInput` naming it.
    pub fn os_state_named(name: String) -> Result<OsState, ConsentKitError> {
        name.parse::<OsState>().map_err(ConsentKitError::InvalidInput)
    }

    /// The OS permission with this id, validated (`InvalidInput` naming a bad id).
    pub fn os_permission_named(id: String) -> Result<OsPermission, ConsentKitError> {
        OsPermission::parse(&id).map_err(ConsentKitError::InvalidInput)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_or_are_errors_naming_the_value() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(os_state_named("provisional".into())?, OsState::Provisional);
        let Err(err) = os_state_named("authorized_always".into()) else {
            return Err("os_state_named(\"authorized_always\") parsed, expected an error".into());
        };
        let err = err.to_string();
        assert!(err.contains("authorized_always"), "{err}");
        assert_eq!(os_permission_named("camera".into())?, OsPermission::CAMERA);
        let Err(err) = os_permission_named("Camera Roll".into()) else {
            return Err("os_permission_named(\"Camera Roll\") parsed, expected an error".into());
        };
        let err = err.to_string();
        assert!(err.contains("Camera Roll"), "{err}");
        Ok(())
    }
}
