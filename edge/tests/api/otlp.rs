//! Spans exported over OTLP: a stack whose every process (the edge's
//! included) is told of a collector, here a real OTLP/gRPC receiver the
//! test runs, exports one trace for one order, its spans covering the edge,
//! order-svc, restaurant-svc, the outbox relay and notify-svc, each child of
//! the span that caused it.

use super::{A_RESTAURANT, client_of};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value as AnyValue,
    trace::v1::span::SpanKind,
};
use serde_json::{Value, json};
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use test_support::{
    StackOptions, eventually,
    process::{ServiceProcess, binary},
    spawn_stack,
};
use tokio_util::sync::CancellationToken;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";
/// The trace of an order its caller chose not to sample.
const UNSAMPLED_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A span as the receiver got it, with the process that sent it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    kind: SpanKind,
    trace_id: String,
    span_id: String,
    parent_id: String,
}

/// The collector's trace service, keeping every span it is sent.
#[derive(Debug, Default, Clone)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| match attribute.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(name) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                received.push(Received {
                    service: service.clone(),
                    kind: span.kind(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_id: hex(&span.parent_span_id),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Starts the receiver on a free port, until `stop`.
async fn start_receiver(stop: CancellationToken) -> (SocketAddr, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(receiver.clone()))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            stop.cancelled_owned(),
        );
    tokio::spawn(server);
    (addr, receiver)
}

/// The one span of `spans` that `parent` caused, sent by `service`, of
/// `kind`, whose name contains `name`.
fn child<'a>(
    spans: &'a [Received],
    parent: &Received,
    service: &str,
    kind: SpanKind,
    name: &str,
) -> &'a Received {
    let children: Vec<&Received> = spans
        .iter()
        .filter(|span| span.parent_id == parent.span_id && span.service == service)
        .filter(|span| span.kind == kind && span.name.contains(name))
        .collect();
    assert_eq!(
        children.len(),
        1,
        "one {kind:?} span {name:?} of {service} under {parent:?}; the trace: {spans:#?}"
    );
    children[0]
}

#[tokio::test]
async fn one_order_is_one_trace_across_every_process() {
    let stop = CancellationToken::new();
    let (collector, receiver) = start_receiver(stop.clone()).await;
    // Batches are sent every 5 s (the default): what the test finds was sent
    // when each process stopped.
    let env = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))];
    let mut stack = spawn_stack(StackOptions {
        replicas: 1,
        env: env.clone(),
        ..Default::default()
    })
    .await;
    let edge_args = stack.edge_args();
    let edge_args: Vec<&str> = edge_args[1..].iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let mut edge = ServiceProcess::try_start_with_env(&binary("edge"), &edge_args, &env)
        .await
        .unwrap();
    let http = client_of(&stack.admin_token());
    let url = |path: &str| format!("http://{}{path}", edge.addr());
    eventually(
        "the edge to find every service healthy",
        Duration::from_secs(15),
        || async {
            let health = http.get(url("/health")).send().await.ok()?;
            (health.status() == 200).then_some(())
        },
    )
    .await;

    let menu: Value = http
        .get(url(&format!("{A_RESTAURANT}/menu")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = menu["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["available"] == true)
        .expect("an item to order");
    let order = json!({
        "restaurantId": A_RESTAURANT.rsplit('/').next(),
        "customer": "ana",
        "items": [{"menuItemId": item["id"], "quantity": 1}],
        "deliveryAddress": "5 Hungry Lane",
    });
    let place = |trace_id: &str, flags: &str| {
        http.post(url("/api/orders"))
            .header("traceparent", format!("00-{trace_id}-{CALLER_SPAN}-{flags}"))
            .json(&order)
            .send()
    };
    let placed = place(TRACE_ID, "01").await.unwrap();
    assert_eq!(placed.status(), 201, "{}", placed.text().await.unwrap());
    let answered = placed.headers()["traceparent"].to_str().unwrap().to_owned();
    let order_id = placed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unsampled = place(UNSAMPLED_TRACE_ID, "00").await.unwrap();
    assert_eq!(unsampled.status(), 201);
    let unsampled_id = unsampled.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(
        "both orders' notifications relayed",
        Duration::from_secs(10),
        || async {
            for order_id in [&order_id, &unsampled_id] {
                let listed: Value = http
                    .get(url(&format!("/api/notifications?orderId={order_id}")))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                listed["notifications"].as_array()?.first()?;
            }
            Some(())
        },
    )
    .await;

    // Stopping sends what each process still holds.
    let processes = std::iter::once(&mut edge)
        .chain(&mut stack.orders)
        .chain(&mut stack.restaurants)
        .chain(&mut stack.notifications);
    for process in processes {
        process.terminate();
        assert!(process.wait(Duration::from_secs(15)).await.success());
    }
    let received = receiver.0.lock().unwrap().clone();
    assert!(
        !received.iter().any(|span| span.trace_id == UNSAMPLED_TRACE_ID),
        "an unsampled trace records nothing"
    );
    let spans: Vec<Received> = received
        .into_iter()
        .filter(|span| span.trace_id == TRACE_ID)
        .collect();

    let roots: Vec<&Received> = spans
        .iter()
        .filter(|span| span.parent_id == CALLER_SPAN)
        .collect();
    assert_eq!(roots.len(), 1, "one span continues the caller's: {spans:#?}");
    let request = roots[0];
    assert_eq!(
        (request.service.as_str(), request.kind, request.name.as_str()),
        ("edge", SpanKind::Server, "POST /api/orders")
    );
    assert_eq!(
        answered,
        format!("00-{TRACE_ID}-{}-01", request.span_id),
        "the edge answers with its span"
    );
    let call = child(
        &spans,
        request,
        "edge",
        SpanKind::Client,
        "OrderService/PlaceOrder",
    );
    let placing = child(
        &spans,
        call,
        "order-svc",
        SpanKind::Server,
        "OrderService/PlaceOrder",
    );
    let pricing = child(
        &spans,
        placing,
        "order-svc",
        SpanKind::Client,
        "RestaurantService/",
    );
    child(
        &spans,
        pricing,
        "restaurant-svc",
        SpanKind::Server,
        "RestaurantService/",
    );
    // The relay delivers the order's notifications later, in a span of the
    // trace that placed it (linked to any other trace in its batch).
    let relaying: Vec<&Received> = spans
        .iter()
        .filter(|span| span.parent_id == placing.span_id && span.name == "relay notifications")
        .collect();
    assert!(!relaying.is_empty(), "the relay's span: {spans:#?}");
    let recorded = relaying
        .iter()
        .flat_map(|relay| spans.iter().filter(|span| span.parent_id == relay.span_id))
        .flat_map(|delivery| {
            spans.iter().filter(|span| {
                span.parent_id == delivery.span_id
                    && span.service == "notify-svc"
                    && span.name.ends_with("NotifyService/RecordNotifications")
            })
        })
        .count();
    assert_eq!(
        recorded,
        relaying.len(),
        "each delivery recorded by notify-svc: {spans:#?}"
    );
    for span in &spans {
        assert!(
            span.parent_id == CALLER_SPAN || spans.iter().any(|parent| parent.span_id == span.parent_id),
            "every span's parent is in the trace: {span:?} in {spans:#?}"
        );
    }
    stop.cancel();
}
