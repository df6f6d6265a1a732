//! The REST API's contract: an OpenAPI 3.1 document generated from the
//! handlers and their JSON shapes (utoipa), so it cannot drift from the
//! code; served at `/openapi.json`. `edge/openapi.json` is a checked-in
//! copy that a test compares with, so a change of contract shows in review.
//!
//! What every operation shares is added once, here ([`Shared`]): the
//! `x-request-id` and `traceparent` headers on every response and
//! `x-served-by` on answers;
//! the failures every call to a service can meet (502, 503 with
//! `Retry-After`, 504), rate limits (429), those of every JSON body (400,
//! 413, 415) and of tokens (401, and 403 where a token is needed); the bearer scheme; and the
//! links from what a POST creates to where it can be read and moved.

use super::{
    dto::{
        Menu, MenuItem, NewMenuItem, NewOrder, NewRestaurant, NotificationList, Order, OrderList, Restaurant,
        RestaurantList, SignIn, SignedIn, StatusUpdate, fields,
    },
    error::ErrorBody,
    health, notification_stream, notifications, orders, restaurants, sign_in,
};
use crate::auth::Role;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        self, HttpMethod, Ref, RefOr, Response,
        header::Header,
        schema::{ObjectBuilder, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dishpatch",
        description = "Restaurants publish menus, customers place orders, kitchens move them through their states, and everyone is notified. JSON in and out, camelCase fields, RFC 3339 times, money in integer cents. Every error is `{\"error\": {\"code\", \"message\", \"requestId\"}}`.\n\nAnyone may browse restaurants and menus. Everything else needs a bearer token (a JWT whose `sub`, `role` — `customer`, `restaurant` or `admin` — and, for restaurant staff, `restaurants` name the caller): customers order and see their own orders, staff run their restaurants' menus and orders, admins do everything.",
    ),
    paths(
        restaurants::list,
        restaurants::create,
        restaurants::get,
        restaurants::menu,
        restaurants::add_item,
        orders::place,
        orders::list,
        orders::get,
        orders::move_status,
        notifications::list,
        notification_stream::stream,
        sign_in::sign_in,
        health::report,
    ),
    components(schemas(
        Restaurant,
        RestaurantList,
        NewRestaurant,
        Menu,
        MenuItem,
        NewMenuItem,
        Order,
        OrderList,
        NewOrder,
        StatusUpdate,
        NotificationList,
        SignIn,
        SignedIn,
        Role,
        ErrorBody,
        fields::RestaurantId,
        fields::OrderId,
        fields::RestaurantIdOrEmpty,
        fields::OrderIdOrEmpty,
        fields::Filter50,
        fields::Filter100,
        fields::Filter120,
        fields::SeqCursor,
        fields::IdempotencyKey,
    )),
    tags(
        (name = "restaurants", description = "Restaurants and their menus"),
        (name = "orders", description = "Placing orders and moving them through their states"),
        (name = "notifications", description = "Every order placed and every change, as notifications"),
        (name = "identity", description = "Signing in, on one machine (an identity provider issues the tokens of a deployment)"),
        (name = "health", description = "The edge and every replica behind it"),
    ),
    modifiers(&Shared),
)]
struct ApiDoc;

/// The document, as JSON.
pub(crate) fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serializes")
}

/// What every operation shares.
struct Shared;

impl Modify for Shared {
    fn modify(&self, document: &mut openapi::OpenApi) {
        document.info.version = env!("CARGO_PKG_VERSION").to_owned();
        document
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "A JWT signed with a key the edge trusts (EdDSA, ES256 or RS256), naming `sub`, `role` and, for restaurant staff, `restaurants`",
                        ))
                        .build(),
                ),
            );
        for (path, item) in &mut document.paths.paths {
            let is_api = path.starts_with("/api/");
            for method in [HttpMethod::Get, HttpMethod::Post, HttpMethod::Patch] {
                let Some(operation) = operation(item, &method) else {
                    continue;
                };
                let has_body = operation.request_body.is_some();
                let needs_token = operation
                    .security
                    .as_ref()
                    .is_some_and(|security| !security.is_empty());
                let responses = &mut operation.responses.responses;
                if needs_token {
                    add_error(
                        responses,
                        "401",
                        "No bearer token (`unauthenticated`), or a bad one (`invalid_token`): WWW-Authenticate says which",
                    );
                    add_error(
                        responses,
                        "403",
                        "The caller may not do this (`permission_denied`): the message says who may",
                    );
                } else if is_api {
                    add_error(
                        responses,
                        "401",
                        "A bearer token was sent and is bad (`invalid_token`); without one, this needs none",
                    );
                }
                if has_body {
                    add_error(
                        responses,
                        "400",
                        "The body is malformed: the message names the field",
                    );
                    add_error(responses, "408", "The body did not arrive in time");
                    add_error(responses, "413", "The body is over 64 KiB");
                    add_error(
                        responses,
                        "415",
                        "The body is not JSON (Content-Type: application/json)",
                    );
                }
                if is_api {
                    add_error(
                        responses,
                        "429",
                        "The caller is over its rate (`rate_limited`): nothing was done, retry after `Retry-After` seconds",
                    );
                    add_error(
                        responses,
                        "502",
                        "The service failed; for a write: `outcome_unknown`, it may or may not have been made",
                    );
                    add_error(
                        responses,
                        "503",
                        "No replica of the service is healthy, or the edge is at capacity (`overloaded`): nothing was done, retry after `Retry-After` seconds",
                    );
                    add_error(
                        responses,
                        "504",
                        "The deadline passed; for a write: `outcome_unknown`, it may or may not have been made",
                    );
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    response.headers.insert(
                        "x-request-id".to_owned(),
                        RefOr::T(header(
                            "The request's id: the client's `x-request-id` if sensible, else one made",
                        )),
                    );
                    response.headers.insert(
                        "traceparent".to_owned(),
                        RefOr::T(header(
                            "W3C trace context: the trace of the client's `traceparent` if valid, else a new one, and the edge's span",
                        )),
                    );
                    if is_api && status.starts_with('2') {
                        response.headers.insert(
                            "x-served-by".to_owned(),
                            RefOr::T(header("The replica that answered, as host:port")),
                        );
                    }
                    if status == "401" {
                        response.headers.insert(
                            "WWW-Authenticate".to_owned(),
                            RefOr::T(header(
                                "How to authenticate, and whether the token sent was the trouble",
                            )),
                        );
                    }
                    if status == "503" || status == "429" {
                        response.headers.insert(
                            "Retry-After".to_owned(),
                            RefOr::T(header("Seconds to wait before retrying")),
                        );
                    }
                    if status == "429" {
                        response.headers.insert(
                            "RateLimit-Policy".to_owned(),
                            RefOr::T(header(
                                "The caller's quota of this class of route: `\"reads\";q=100;w=1`",
                            )),
                        );
                        response.headers.insert(
                            "RateLimit".to_owned(),
                            RefOr::T(header(
                                "What is left of it, and when it refills: `\"reads\";r=0;t=1`",
                            )),
                        );
                    }
                }
                add_links(path, &method, responses);
            }
        }
    }
}

/// The operation of `item` for `method`.
fn operation<'a>(
    item: &'a mut openapi::path::PathItem,
    method: &HttpMethod,
) -> Option<&'a mut openapi::path::Operation> {
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Patch => item.patch.as_mut(),
        _ => None,
    }
}

/// Adds an error response with the error body, unless the operation
/// describes that status itself.
fn add_error(
    responses: &mut std::collections::BTreeMap<String, RefOr<Response>>,
    status: &str,
    description: &str,
) {
    responses.entry(status.to_owned()).or_insert_with(|| {
        RefOr::T(
            openapi::ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    openapi::content::ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                        .build(),
                )
                .build(),
        )
    });
}

fn header(description: &str) -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::String).build());
    header.description = Some(description.to_owned());
    header
}

/// Links from what a POST creates to the operations that read and move it
/// (OpenAPI links: clients, and the contract fuzzer's stateful phase,
/// follow them).
fn add_links(
    path: &str,
    method: &HttpMethod,
    responses: &mut std::collections::BTreeMap<String, RefOr<Response>>,
) {
    let links: &[(&str, &str)] = match (path, method) {
        ("/api/restaurants", HttpMethod::Post) => &[
            ("GetRestaurant", "getRestaurant"),
            ("GetMenu", "getMenu"),
            ("AddMenuItem", "addMenuItem"),
        ],
        ("/api/orders", HttpMethod::Post) => &[("GetOrder", "getOrder"), ("MoveOrder", "moveOrder")],
        _ => return,
    };
    let Some(RefOr::T(created)) = responses.get_mut("201") else {
        return;
    };
    for (name, operation_id) in links {
        let link = openapi::link::LinkBuilder::new()
            .operation_id(*operation_id)
            .parameter("id", "$response.body#/id")
            .build();
        created.links.insert((*name).to_owned(), RefOr::T(link));
    }
}
