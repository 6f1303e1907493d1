//! The OpenAPI 3.1 document, generated from the handlers' annotations and the DTOs (request
//! bodies deny unknown fields, so their schemas say `additionalProperties: false`).
//!
//! The answers every route can give whatever its handler does (a bad target, a slow or huge
//! body, the per-IP limit, an Idempotency-Key conflict, an outage…) are added by
//! [`EveryAnswer`] from the layers' rules, so that the document lists every status the server
//! can answer, each problem as `application/problem+json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{error, internal, me, ops, protection, public};

#[derive(OpenApi)]
#[openapi(
    info(title = "accountd", description = "The account service of a cloud provider (SPEC §3)."),
    paths(
        public::request_sms_code, public::sign_up, public::sign_in, public::sign_out,
        public::start_recovery, public::confirm_recovery, public::request_reset,
        public::reset_methods, public::send_reset_code, public::complete_reset,
        protection::secure_account,
        me::me, me::start_verification, me::confirm_verification, me::change_contact_mobile,
        me::change_contact_email, me::verify_contact_mobile, me::verify_contact_email,
        me::change_recovery_mobile, me::change_recovery_email, me::confirm_recovery_mobile,
        me::confirm_recovery_email, me::bind_login_email, me::confirm_login_email,
        me::change_password, me::history, me::list_sessions, me::end_session,
        me::end_other_sessions,
        internal::assign_server, internal::release_server, internal::profile,
        internal::lookup_mobile, internal::lookup_email, internal::lookup_server_ip,
        internal::notify, internal::audit_events, internal::audit_state, internal::audit_verification,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(error::Problem)),
    modifiers(&Security, &ClosedBodies, &EveryAnswer),
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

/// The statuses the layers of `http::router` can answer on any operation, added to each
/// operation that does not document them yet; and every problem as `application/problem+json`.
struct EveryAnswer;

impl EveryAnswer {
    /// The statuses the layers add to the operation `method path` (see `http::router`).
    fn layer_statuses(
        path: &str,
        method: &str,
        operation: &utoipa::openapi::path::Operation,
    ) -> Vec<(u16, &'static str)> {
        // Every request: a NUL in the target or a framework rejection (400), a body too slow
        // (408) or declared too large (413), the request timeout or an outage (503).
        let mut statuses = vec![
            (400, "The request is malformed."),
            (408, "The body did not arrive in time."),
            (413, "The body is larger than 64 KiB."),
            (503, "The service is temporarily unavailable."),
        ];
        if operation.request_body.is_some() {
            statuses.push((415, "The body is not application/json."));
        }
        if method == "post" {
            statuses.push((409, "A request with this Idempotency-Key is in flight."));
            statuses.push((422, "This Idempotency-Key was used with another body."));
        }
        if path.starts_with("/v1/") {
            statuses.push((429, "Too many requests."));
        }
        if operation.security.is_some() {
            statuses.push((401, "A valid bearer token is required."));
            statuses.push((403, "This caller may not use this route."));
        }
        if path.contains('{') {
            statuses.push((404, "Nothing was found here."));
        }
        statuses
    }
}

impl Modify for EveryAnswer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        const PROBLEM: &str = "application/problem+json";
        let is_problem = |schema: &Option<RefOr<utoipa::openapi::schema::Schema>>| matches!(schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                for (status, description) in Self::layer_statuses(path, method, operation) {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| {
                            let problem = ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("Problem")))
                                .build();
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(description)
                                    .content(PROBLEM, problem)
                                    .build(),
                            )
                        });
                }
                for response in operation.responses.responses.values_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    let problem_as_json = response
                        .content
                        .get("application/json")
                        .is_some_and(|content| is_problem(&content.schema));
                    if problem_as_json {
                        if let Some(content) = response.content.shift_remove("application/json") {
                            response.content.insert(PROBLEM.to_owned(), content);
                        }
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
