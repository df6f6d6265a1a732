#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    dishpatch::service::main("order-svc", order_svc::build).await
}
