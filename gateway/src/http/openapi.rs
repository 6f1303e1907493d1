//! The OpenAPI 3.1 document, generated from the handlers' annotations and the DTOs (request
//! bodies deny unknown fields, so their schemas say `additionalProperties: false`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{error, internal, me, ops, public};

#[derive(OpenApi)]
#[openapi(
    info(title = "accountd", description = "The account service of a cloud provider (SPEC §3)."),
    paths(
        public::request_sms_code, public::sign_up, public::sign_in, public::sign_out,
        public::start_recovery, public::confirm_recovery, public::request_reset,
        public::reset_methods, public::send_reset_code, public::complete_reset,
        me::me, me::start_verification, me::confirm_verification, me::change_contact_mobile,
        me::change_contact_email, me::verify_contact_mobile, me::verify_contact_email,
        me::change_recovery_mobile, me::change_recovery_email, me::confirm_recovery_mobile,
        me::confirm_recovery_email, me::bind_login_email, me::confirm_login_email,
        me::change_password, me::history,
        internal::assign_server, internal::release_server, internal::profile,
        internal::lookup_mobile, internal::lookup_email, internal::lookup_server_ip,
        internal::notify, internal::audit_events, internal::audit_state, internal::audit_verification,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(error::Problem)),
    modifiers(&Security, &ClosedBodies),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("bearer", bearer());
        components.add_security_scheme("service", bearer());
    }
}

/// Request bodies that are a `oneOf` of inline objects (an internally tagged enum) get
/// `additionalProperties: false` on each object, as their structs deny unknown fields.
struct ClosedBodies;

impl Modify for ClosedBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AdditionalProperties, Schema};
        use utoipa::openapi::RefOr;
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            let RefOr::T(Schema::OneOf(one_of)) = schema else {
                continue;
            };
            for item in &mut one_of.items {
                if let RefOr::T(Schema::Object(object)) = item {
                    if object.additional_properties.is_none() {
                        object.additional_properties =
                            Some(Box::new(AdditionalProperties::FreeForm(false)));
                    }
                }
            }
        }
    }
}

/// The document served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
