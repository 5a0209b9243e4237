//! `/api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' annotations and the response types, completed by `contract`
//! (statuses, request bodies, parameter bounds, links).

mod contract;

use std::sync::OnceLock;

use axum::Json;
use serde_json::Value;
use utoipa::OpenApi;

use super::{calls, destinations, limits, numbers, providers};

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "Telephony control plane API"),
    paths(
        providers::create, providers::list, providers::get_one, providers::update, providers::delete,
        numbers::create, numbers::list, numbers::get_one, numbers::update, numbers::delete,
        limits::get_limits, limits::patch_limits, limits::put_limits, limits::usage,
        destinations::get_destinations, destinations::put_destinations,
        calls::originate, calls::get_call, calls::list_calls,
        super::audit::events, super::audit::stream, super::audit::verify, super::feed::stream,
    ),
    components(schemas(providers::ProviderView, numbers::NumberView, limits::LimitsView,
        destinations::DestinationsView, calls::CallView)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The whole document, as served.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    contract::apply(&mut doc);
    doc
}

pub async fn serve() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(document).clone())
}
