//! One HTTP/1.1 keep-alive connection to the edge: requests go one after
//! another on it, and a broken connection is opened again on the next one.

use crate::{load::Outcome, scenario::Operation};
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpStream;

/// A keep-alive connection to an edge.
#[derive(Debug)]
pub(crate) struct HttpConnection {
    authority: String,
    /// `Bearer <token>`, sent with every request, if there is a token.
    authorization: Option<HeaderValue>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpConnection {
    /// A connection to `authority` (`host:port`), opened on first use, whose
    /// requests carry `token`.
    pub(crate) fn new(authority: &str, token: Option<Arc<str>>) -> Self {
        Self {
            authority: authority.to_owned(),
            authorization: token.map(|token| {
                HeaderValue::try_from(format!("Bearer {token}")).expect("a token is a header value")
            }),
            sender: None,
        }
    }

    /// Drops the connection (after a timeout, its request may still be on
    /// the wire); the next request opens a new one.
    pub(crate) fn reset(&mut self) {
        self.sender = None;
    }

    /// Sends `operation` and reads the whole answer.
    pub(crate) async fn send(&mut self, operation: &Operation) -> Outcome {
        let request = request(&self.authority, self.authorization.as_ref(), operation);
        match self.exchange(request).await {
            Ok((status, body)) => match operation {
                Operation::PlaceOrder { .. } if status == StatusCode::CREATED => {
                    Outcome::Placed(order_id(&body))
                }
                _ => Outcome::Ok,
            },
            Err(failed) => failed,
        }
    }

    /// GETs `path` (with its query): the body of a success.
    pub(crate) async fn get(&mut self, path: &str) -> Result<Bytes, Outcome> {
        let request = builder(&self.authority, self.authorization.as_ref(), Method::GET, path)
            .body(Full::new(Bytes::new()))
            .expect("a well-formed request");
        Ok(self.exchange(request).await?.1)
    }

    /// Sends `request` and reads the whole answer: its status and body if
    /// it is a success.
    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), Outcome> {
        let sender = match &mut self.sender {
            Some(sender) if sender.is_ready() => sender,
            _ => self.sender.insert(self.connect().await?),
        };
        let Ok(answer) = sender.send_request(request).await else {
            self.sender = None;
            return Err(Outcome::Failed("io".into()));
        };
        let status = answer.status();
        let Ok(body) = answer.into_body().collect().await else {
            self.sender = None;
            return Err(Outcome::Failed("io".into()));
        };
        if !status.is_success() {
            return Err(Outcome::Failed(format!("http {}", status.as_u16())));
        }
        Ok((status, body.to_bytes()))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Outcome> {
        let connect_failed = |_| Outcome::Failed("connect".into());
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(connect_failed)?;
        stream.set_nodelay(true).map_err(connect_failed)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Outcome::Failed("connect".into()))?;
        // The connection's I/O runs beside the requests; it ends with them.
        tokio::spawn(connection);
        Ok(sender)
    }
}

fn request(
    authority: &str,
    authorization: Option<&HeaderValue>,
    operation: &Operation,
) -> Request<Full<Bytes>> {
    let (method, path, body) = match operation {
        Operation::GetRestaurant(id) => (Method::GET, format!("/api/restaurants/{id}"), None),
        Operation::GetMenu(id) => (Method::GET, format!("/api/restaurants/{id}/menu"), None),
        Operation::ListRestaurants => (Method::GET, "/api/restaurants".to_owned(), None),
        Operation::PlaceOrder {
            restaurant_id,
            customer,
            items,
            ..
        } => {
            let items: Vec<_> = items
                .iter()
                .map(|(id, quantity)| serde_json::json!({"menuItemId": id, "quantity": quantity}))
                .collect();
            let body =
                serde_json::json!({"restaurantId": restaurant_id, "customer": customer, "items": items});
            (Method::POST, "/api/orders".to_owned(), Some(body))
        }
        Operation::MoveOrder { order_id, status } => (
            Method::PATCH,
            format!("/api/orders/{order_id}/status"),
            Some(serde_json::json!({ "status": status })),
        ),
    };
    let mut builder = builder(authority, authorization, method, &path);
    if let Operation::PlaceOrder { idempotency_key, .. } = operation {
        builder = builder.header("idempotency-key", idempotency_key.as_str());
    }
    let body = match body {
        Some(json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(json.to_string())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).expect("a well-formed request")
}

fn order_id(body: &[u8]) -> Option<String> {
    let order: serde_json::Value = serde_json::from_slice(body).ok()?;
    order["id"].as_str().map(str::to_owned)
}

/// A request to `path` of the edge at `authority`, carrying `authorization`.
fn builder(
    authority: &str,
    authorization: Option<&HeaderValue>,
    method: Method,
    path: &str,
) -> http::request::Builder {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, authority);
    match authorization {
        Some(authorization) => builder.header(header::AUTHORIZATION, authorization),
        None => builder,
    }
}
